//! What one review, and all reviews together, may cost the webhook. Everything over a bound is
//! answered at once (413 for a body over the limit, 503 when busy, each with a short JSON body)
//! and the API server applies the webhook's failure policy; nothing waits in an unbounded queue.
//!
//! - Requests in flight: at most [`AdmissionLimits::max_in_flight`] (tower's load-shed over a
//!   global concurrency limit, in [`super::router`]).
//! - Request bodies held in memory: a byte budget ([`BodyBudget`]). A body takes its size from
//!   the budget as it arrives (all of it at once when Content-Length says); bodies larger than
//!   [`AdmissionLimits::large_body`] may only use [`AdmissionLimits::large_body_budget`] of it,
//!   so a flood of huge reviews leaves room for the ordinary, small ones.
//! - CPU: parsing, the decision, the lint rules and the patch run through two lanes ([`Cpu`]):
//!   small reviews as many at once as there are cores (those up to
//!   [`AdmissionLimits::inline_body`] on the async worker that read them, the rest on tokio's
//!   blocking pool), large ones one at a time on a dedicated thread; a review waits for a lane
//!   at most [`AdmissionLimits::cpu_wait`] and behind at most [`AdmissionLimits::cpu_queue`]
//!   others.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde_json::json;
use thiserror::Error;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The webhook's bounds; [`Default`] is what the binary uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// How long one request, body included, may take; a client trickling bytes is cut off (408).
    /// The API server gives up after the webhook's `timeoutSeconds` (5) anyway.
    pub request_timeout: Duration,
    /// Largest request body (413 above). Objects are at most ~1.5 MiB (etcd's limit); a review
    /// of an update carries two.
    pub body_limit: usize,
    /// Request bodies held in memory at once, all requests together.
    pub body_budget: usize,
    /// Bodies above this size are "large": they run in the large CPU lane and may only use
    /// `large_body_budget` of the budget. Real reviews of workloads are a few KiB to tens of KiB.
    pub large_body: usize,
    /// The part of `body_budget` large bodies may hold together.
    pub large_body_budget: usize,
    /// Requests in progress at once, all connections together.
    pub max_in_flight: usize,
    /// Reviews computing at once (the small lane): the cores.
    pub cpu_slots: usize,
    /// Bodies up to this size are computed on the async worker that read them (still holding
    /// a small-lane slot): such a review takes tens of microseconds, less than handing it to
    /// another thread and waking this one again, which at low load is most of its latency.
    /// 0: every review goes to the blocking pool.
    pub inline_body: usize,
    /// Large reviews computing at once. One: a 3 MiB review parses into tens of MiB, so their
    /// memory, not the cores, is the bound (a second one would wait for the first ~50 ms).
    pub large_cpu_slots: usize,
    /// Reviews waiting for a lane at most, per lane; more are answered 503 at once.
    pub cpu_queue: usize,
    /// How long a review waits for a lane at most before a 503. A mutating review may wait
    /// twice (before and after a lookup): both waits and the lookup fit in the API server's 5 s.
    pub cpu_wait: Duration,
}

impl Default for AdmissionLimits {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            request_timeout: Duration::from_secs(10),
            body_limit: super::BODY_LIMIT,
            body_budget: 32 * 1024 * 1024,
            large_body: 256 * 1024,
            large_body_budget: 16 * 1024 * 1024,
            max_in_flight: 512,
            cpu_slots: cores,
            inline_body: 32 * 1024,
            large_cpu_slots: 1,
            cpu_queue: 64,
            cpu_wait: Duration::from_secs(1),
        }
    }
}

/// Why a request was not (or not fully) served; each is a JSON `{"error": …}` with its status.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    #[error("the request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the webhook is busy; try again")]
    Busy,
    #[error("reading the request body failed")]
    Read,
    #[error("the request took too long")]
    TimedOut,
    #[error("the webhook failed to answer this review")]
    Internal,
}

impl Rejection {
    pub fn status(self) -> StatusCode {
        match self {
            Rejection::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Rejection::Read => StatusCode::BAD_REQUEST,
            Rejection::TimedOut => StatusCode::REQUEST_TIMEOUT,
            Rejection::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let mut response = (self.status(), axum::Json(json!({"error": self.to_string()}))).into_response();
        if self == Rejection::Busy {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}

/// The shared state behind the limits.
pub struct Guards {
    pub limits: AdmissionLimits,
    pub bodies: BodyBudget,
    pub cpu: Cpu,
}

impl Guards {
    pub fn new(limits: AdmissionLimits) -> Self {
        Self {
            bodies: BodyBudget::new(&limits),
            cpu: Cpu::new(&limits),
            limits,
        }
    }
}

/// Permits are bytes; a tokio semaphore counts up to `usize::MAX >> 3` and takes `u32` at a
/// time, so budgets and bodies stay far inside both.
fn permits(bytes: usize) -> u32 {
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

/// The memory held by request bodies, shared by all requests.
pub struct BodyBudget {
    all: Arc<Semaphore>,
    large: Arc<Semaphore>,
    large_body: usize,
    limit: usize,
}

/// Budget held for one body; returned when dropped (after the answer).
#[derive(Default)]
pub struct Held {
    all: Option<OwnedSemaphorePermit>,
    large: Option<OwnedSemaphorePermit>,
    bytes: usize,
    large_bytes: usize,
}

fn take(semaphore: &Arc<Semaphore>, held: &mut Option<OwnedSemaphorePermit>, more: usize) -> Result<(), Rejection> {
    if more == 0 {
        return Ok(());
    }
    let permit = semaphore
        .clone()
        .try_acquire_many_owned(permits(more))
        .map_err(|_| Rejection::Busy)?;
    match held {
        Some(h) => h.merge(permit),
        None => *held = Some(permit),
    }
    Ok(())
}

impl BodyBudget {
    fn new(limits: &AdmissionLimits) -> Self {
        Self {
            all: Arc::new(Semaphore::new(limits.body_budget)),
            large: Arc::new(Semaphore::new(limits.large_body_budget.min(limits.body_budget))),
            large_body: limits.large_body,
            limit: limits.body_limit,
        }
    }

    /// Holds budget for `bytes` of body in `held` (which may hold some already).
    fn reserve(&self, held: &mut Held, bytes: usize) -> Result<(), Rejection> {
        if bytes > held.bytes {
            take(&self.all, &mut held.all, bytes - held.bytes)?;
            held.bytes = bytes;
        }
        if bytes > self.large_body && bytes > held.large_bytes {
            take(&self.large, &mut held.large, bytes - held.large_bytes)?;
            held.large_bytes = bytes;
        }
        Ok(())
    }

    /// Reads a whole body within the size limit and the budget. A declared length over the
    /// limit, or one the budget cannot hold, is refused before a byte is read.
    pub async fn read(&self, body: Body, declared: Option<u64>) -> Result<(Bytes, Held), Rejection> {
        let too_large = Rejection::TooLarge { limit: self.limit };
        let mut held = Held::default();
        let declared = match declared {
            Some(n) if n > self.limit as u64 => return Err(too_large),
            Some(n) => n as usize,
            None => 0,
        };
        self.reserve(&mut held, declared)?;
        let mut buffer = Vec::with_capacity(declared);
        let mut body = body;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| Rejection::Read)?;
            let Ok(data) = frame.into_data() else {
                continue; // trailers
            };
            let total = buffer.len() + data.len();
            if total > self.limit {
                return Err(too_large);
            }
            self.reserve(&mut held, total)?;
            buffer.extend_from_slice(&data);
        }
        Ok((Bytes::from(buffer), held))
    }
}

/// One CPU lane: a few threads' worth of permits and a short, bounded wait for them.
pub struct Lane {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    max_wait: Duration,
}

/// Takes one waiter off the count however the wait ends (also when the request is dropped).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Lane {
    fn new(slots: usize, max_waiting: usize, max_wait: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(slots.max(1))),
            waiting: AtomicUsize::new(0),
            max_waiting,
            max_wait,
        }
    }

    async fn acquire(&self) -> Result<OwnedSemaphorePermit, Rejection> {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Rejection::Busy);
        }
        let _waiting = Waiting(&self.waiting);
        // Tokio's semaphore is fair: waiters are served in arrival order.
        match tokio::time::timeout(self.max_wait, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(Rejection::Busy),
        }
    }
}

/// The CPU lanes: small reviews on tokio's blocking pool, large ones on one dedicated thread
/// (which can never take every core, and whose memory is reused from one large review to the
/// next instead of spreading over the allocator arenas of many pool threads).
pub struct Cpu {
    small: Lane,
    large: Lane,
    large_thread: Option<Dedicated>,
}

type Job = Box<dyn FnOnce() + Send>;

/// A thread running jobs one after the other; it ends when this is dropped.
struct Dedicated {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl Dedicated {
    fn spawn() -> Option<Self> {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("admission-large".into())
            .spawn(move || {
                for job in queue {
                    // Nothing here panics; if it ever did, the thread keeps serving.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            })
            .ok()?;
        Some(Self { jobs })
    }
}

impl Cpu {
    fn new(limits: &AdmissionLimits) -> Self {
        Self {
            small: Lane::new(limits.cpu_slots, limits.cpu_queue, limits.cpu_wait),
            large: Lane::new(limits.large_cpu_slots, limits.cpu_queue, limits.cpu_wait),
            // One thread serves one slot; with more slots, large reviews use the pool too.
            large_thread: (limits.large_cpu_slots <= 1).then(Dedicated::spawn).flatten(),
        }
    }

    /// Runs `work` right here, on the async worker, once the small lane has room.
    pub async fn run_here<T>(&self, work: impl FnOnce() -> T) -> Result<T, Rejection> {
        let _permit = self.small.acquire().await?;
        Ok(work())
    }

    /// Runs `work` off the async workers once its lane has room; the lane's permit is held
    /// until `work` returns, even when the request is abandoned meanwhile.
    pub async fn run<T: Send + 'static>(
        &self,
        large: bool,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Rejection> {
        let lane = if large { &self.large } else { &self.small };
        let permit = lane.acquire().await?;
        match (large, &self.large_thread) {
            (true, Some(thread)) => {
                let (done, answer) = tokio::sync::oneshot::channel();
                let job: Job = Box::new(move || {
                    let _permit = permit;
                    let _ = done.send(work());
                });
                thread.jobs.send(job).map_err(|_| Rejection::Internal)?;
                answer.await.map_err(|_| Rejection::Internal)
            }
            _ => tokio::task::spawn_blocking(move || {
                let _permit = permit;
                work()
            })
            .await
            .map_err(|_| Rejection::Internal),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> AdmissionLimits {
        AdmissionLimits {
            body_limit: 100,
            body_budget: 250,
            large_body: 50,
            large_body_budget: 150,
            cpu_slots: 1,
            large_cpu_slots: 1,
            cpu_queue: 1,
            cpu_wait: Duration::from_millis(200),
            ..AdmissionLimits::default()
        }
    }

    fn body(n: usize) -> Body {
        Body::from(vec![b'x'; n])
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_refused_declared_or_not() {
        let budget = BodyBudget::new(&limits());
        assert_eq!(
            budget.read(body(10), Some(101)).await.err(),
            Some(Rejection::TooLarge { limit: 100 })
        );
        assert_eq!(
            budget.read(body(101), None).await.err(),
            Some(Rejection::TooLarge { limit: 100 })
        );
        // A lying Content-Length does not get more than the limit either.
        assert_eq!(
            budget.read(body(101), Some(10)).await.err(),
            Some(Rejection::TooLarge { limit: 100 })
        );
        let (bytes, _held) = budget.read(body(100), None).await.unwrap();
        assert_eq!(bytes.len(), 100);
    }

    #[tokio::test]
    async fn large_bodies_leave_room_for_small_ones() {
        let budget = BodyBudget::new(&limits());
        let first = budget.read(body(80), Some(80)).await.unwrap();
        // 80 of the 150 the large ones may hold: another 80 does not fit, declared or not.
        assert_eq!(budget.read(body(80), Some(80)).await.err(), Some(Rejection::Busy));
        assert_eq!(budget.read(body(80), None).await.err(), Some(Rejection::Busy));
        let second = budget.read(body(70), None).await.unwrap();
        // Large ones are at their share; small ones still have the rest of the budget.
        assert_eq!(budget.read(body(51), None).await.err(), Some(Rejection::Busy));
        let small = budget.read(body(50), None).await.unwrap();
        let small2 = budget.read(body(40), None).await.unwrap();
        assert_eq!(budget.read(body(20), None).await.err(), Some(Rejection::Busy));
        drop((first, second, small, small2));
        // Everything was given back.
        assert_eq!(budget.all.available_permits(), 250);
        assert_eq!(budget.large.available_permits(), 150);
        budget.read(body(100), None).await.unwrap();
    }

    #[tokio::test]
    async fn a_busy_lane_queues_briefly_then_refuses() {
        let cpu = Arc::new(Cpu::new(&limits()));
        let (release, wait) = std::sync::mpsc::channel::<()>();
        // One slot, taken until released.
        let busy = tokio::spawn({
            let cpu = cpu.clone();
            async move { cpu.run(false, move || wait.recv().is_ok()).await }
        });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while cpu.small.permits.available_permits() > 0 {
            assert!(tokio::time::Instant::now() < deadline, "the first job never started");
            tokio::task::yield_now().await;
        }
        // One may wait; it times out after cpu_wait.
        let waiter = tokio::spawn({
            let cpu = cpu.clone();
            async move { cpu.run(false, || ()).await }
        });
        while cpu.small.waiting.load(Ordering::Acquire) == 0 {
            assert!(tokio::time::Instant::now() < deadline, "the waiter never queued");
            tokio::task::yield_now().await;
        }
        // The queue is full: refused at once.
        assert_eq!(cpu.run(false, || ()).await, Err(Rejection::Busy));
        // The large lane is separate.
        assert_eq!(cpu.run(true, || 7).await, Ok(7));
        assert_eq!(waiter.await.unwrap(), Err(Rejection::Busy));
        assert_eq!(cpu.small.waiting.load(Ordering::Acquire), 0);
        release.send(()).unwrap();
        assert_eq!(busy.await.unwrap(), Ok(true));
        assert_eq!(cpu.run(false, || 1).await, Ok(1));
    }
}
