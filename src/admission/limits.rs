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
//!   [`AdmissionLimits::inline_body`] that compile no pattern on the async worker that read
//!   them, the rest on tokio's blocking pool), large ones, and those with many patterns to
//!   compile, one at a time on a dedicated thread; a review waits for a lane at most
//!   [`AdmissionLimits::cpu_wait`] and behind at most [`AdmissionLimits::cpu_queue`] others.
//! - API lookups of sources missing from the cache: one budget for all reviews together
//!   ([`LookupBudget`]); a lookup over it is not made (never waited for).
//! - Time: every wait of one review (for a lane, for lookups) ends by [`REVIEW_DEADLINE`] after
//!   the request arrived, inside the API server's own timeout ([`API_SERVER_TIMEOUT`]).

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
use tokio::time::Instant;

use crate::metrics::LookupRefusal;

/// How long the API server waits for the webhook's answer: both configurations'
/// `timeoutSeconds` ([`super::register::TIMEOUT_SECONDS`]). After it the answer is wasted.
pub const API_SERVER_TIMEOUT: Duration = Duration::from_secs(super::register::TIMEOUT_SECONDS as u64);
/// Kept back from [`API_SERVER_TIMEOUT`] for what is not a wait: reading the body, computing,
/// sending the answer, the network both ways.
pub const ANSWER_MARGIN: Duration = Duration::from_millis(500);
/// One review's waits all end by this long after its request arrived: at most two waits for a
/// CPU lane ([`AdmissionLimits::cpu_wait`], 500 ms each; a mutating review waits again after
/// its lookups) and the lookups ([`super::lookup::LOOKUP_TIMEOUT`], 1.5 s). Each wait takes
/// at most what is left of it, so however many there are, the answer leaves within the API
/// server's timeout (2.5 s of 3 s; a unit test checks the parts add up).
pub const REVIEW_DEADLINE: Duration = API_SERVER_TIMEOUT.saturating_sub(ANSWER_MARGIN);
/// A review compiling more new patterns than this runs in the large lane (one at a time, on
/// its own thread), not the small one: a single `\w{4}` costs milliseconds to compile.
pub const FEW_PATTERNS: usize = 8;

/// The webhook's bounds; [`Default`] is what the binary uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// How long one request, body included, may take; a client trickling bytes is cut off (408).
    /// The API server gives up after the webhook's `timeoutSeconds` ([`API_SERVER_TIMEOUT`],
    /// 3 s) anyway; this bounds what a caller that is not the API server can hold.
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
    /// a small-lane slot) unless they name patterns the cache lacks: such a review takes tens of
    /// microseconds, less than handing it to another thread and waking this one again, which at
    /// low load is most of its latency. A review that would compile a pattern (milliseconds
    /// each) goes to the blocking pool under the same slot, so the async workers, which also
    /// answer `/live`, never compile. 0: every review goes to the blocking pool.
    pub inline_body: usize,
    /// Large reviews computing at once. One: a 3 MiB review parses into tens of MiB, so their
    /// memory, not the cores, is the bound (a second one would wait for the first ~50 ms).
    pub large_cpu_slots: usize,
    /// Reviews waiting for a lane at most, per lane; more are answered 503 at once.
    pub cpu_queue: usize,
    /// How long a review waits for a lane at most before a 503, and never past its
    /// [`REVIEW_DEADLINE`]. A mutating review may wait twice (before and after a lookup).
    pub cpu_wait: Duration,
    /// API lookups in progress at once, all reviews together ([`LookupBudget`]).
    pub lookups_at_once: usize,
    /// API lookups started per second, all reviews together, on average.
    pub lookups_per_second: u32,
    /// API lookups that may start at once after a quiet while (the token bucket's size).
    pub lookup_burst: u32,
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
            cpu_wait: Duration::from_millis(500),
            // A lookup happens only when a workload names a source created a moment before it
            // (the cache has not seen it yet): a few per deploy. 25 at once covers a large
            // apply of fresh ConfigMaps with their Deployments, 50/s sustained is far more than
            // deploys make yet a small share of an API server's capacity, and 32 in progress
            // bounds what a slow API server (lookups lasting their 1.5 s) has open for us. A
            // forged review can make no more calls than this under the reloader's identity.
            lookups_at_once: 32,
            lookups_per_second: 50,
            lookup_burst: 25,
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
    pub lookups: LookupBudget,
}

impl Guards {
    pub fn new(limits: AdmissionLimits) -> Self {
        Self {
            bodies: BodyBudget::new(&limits),
            cpu: Cpu::new(&limits),
            lookups: LookupBudget::new(&limits),
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

    /// A slot, waiting at most `max_wait` and never past `until`.
    async fn acquire(&self, until: Instant) -> Result<OwnedSemaphorePermit, Rejection> {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let now = Instant::now();
        let until = until.min(now + self.max_wait);
        if until <= now {
            return Err(Rejection::Busy);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Rejection::Busy);
        }
        let _waiting = Waiting(&self.waiting);
        // Tokio's semaphore is fair: waiters are served in arrival order.
        match tokio::time::timeout_at(until, self.permits.clone().acquire_owned()).await {
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

    /// Runs `work` right here, on the async worker, once the small lane has room (waiting
    /// never past `until`). When `work` finds the rest is not cheap ([`Here::Off`]), the rest
    /// runs off the async workers: on the blocking pool under the same slot, or in the large
    /// lane (a second wait, within `until`).
    pub async fn run_here<T, F>(&self, until: Instant, work: impl FnOnce() -> Here<T, F>) -> Result<T, Rejection>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permit = self.small.acquire(until).await?;
        match work() {
            Here::Done(done) => Ok(done),
            Here::Off { large: false, rest } => blocking(permit, rest).await,
            Here::Off { large: true, rest } => {
                drop(permit);
                self.run(true, until, rest).await
            }
        }
    }

    /// Runs `work` off the async workers once its lane has room (waiting never past `until`);
    /// the lane's permit is held until `work` returns, even when the request is abandoned
    /// meanwhile.
    pub async fn run<T: Send + 'static>(
        &self,
        large: bool,
        until: Instant,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Rejection> {
        let lane = if large { &self.large } else { &self.small };
        let permit = lane.acquire(until).await?;
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
            _ => blocking(permit, work).await,
        }
    }
}

/// What [`Cpu::run_here`]'s work came to: done, or the rest to run off the async workers.
pub enum Here<T, F> {
    Done(T),
    /// `large`: in the large lane (many patterns to compile), else the blocking pool.
    Off {
        large: bool,
        rest: F,
    },
}

/// `work` on tokio's blocking pool, holding `permit` until it returns.
async fn blocking<T: Send + 'static>(
    permit: OwnedSemaphorePermit,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Rejection> {
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work()
    })
    .await
    .map_err(|_| Rejection::Internal)
}

/// The API lookups all reviews together may make ([`super::lookup`]): at most
/// [`AdmissionLimits::lookups_at_once`] in progress, and a token bucket refilled at
/// [`AdmissionLimits::lookups_per_second`] holding at most [`AdmissionLimits::lookup_burst`].
/// Taking is immediate: a lookup over the budget is refused, never queued, so a flood of forged
/// reviews naming missing sources costs the API server no more than the budget, and the
/// reviews are answered from the cache at once.
pub struct LookupBudget {
    at_once: Arc<Semaphore>,
    bucket: std::sync::Mutex<Bucket>,
    per_second: u128,
    /// The bucket's size, in [`TOKEN`] units.
    capacity: u128,
}

/// One token, in the bucket's units: a nanosecond of refill at one token a second. Integers,
/// so 90 ms then 10 ms at 10/s is exactly one token.
const TOKEN: u128 = 1_000_000_000;

struct Bucket {
    /// In [`TOKEN`] units.
    tokens: u128,
    refilled: Instant,
}

/// One lookup's share of the budget: its slot is given back when dropped (the lookup is over);
/// its token is spent.
pub struct LookupPermit {
    _slot: OwnedSemaphorePermit,
}

impl LookupBudget {
    pub fn new(limits: &AdmissionLimits) -> Self {
        let capacity = u128::from(limits.lookup_burst) * TOKEN;
        Self {
            at_once: Arc::new(Semaphore::new(limits.lookups_at_once)),
            bucket: std::sync::Mutex::new(Bucket {
                tokens: capacity,
                refilled: Instant::now(),
            }),
            per_second: u128::from(limits.lookups_per_second),
            capacity,
        }
    }

    /// One lookup's permit now, or why not.
    pub fn try_take(&self) -> Result<LookupPermit, LookupRefusal> {
        let slot = self
            .at_once
            .clone()
            .try_acquire_owned()
            .map_err(|_| LookupRefusal::Concurrency)?;
        // Nothing panics under this lock; a poisoned one still holds a valid bucket.
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let refill = now.saturating_duration_since(bucket.refilled).as_nanos() * self.per_second;
        bucket.tokens = bucket.tokens.saturating_add(refill).min(self.capacity);
        bucket.refilled = now;
        if bucket.tokens < TOKEN {
            return Err(LookupRefusal::Rate);
        }
        bucket.tokens -= TOKEN;
        Ok(LookupPermit { _slot: slot })
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

    /// A deadline no test reaches.
    fn later() -> Instant {
        Instant::now() + Duration::from_secs(60)
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
            async move { cpu.run(false, later(), move || wait.recv().is_ok()).await }
        });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while cpu.small.permits.available_permits() > 0 {
            assert!(tokio::time::Instant::now() < deadline, "the first job never started");
            tokio::task::yield_now().await;
        }
        // One may wait; it times out after cpu_wait.
        let waiter = tokio::spawn({
            let cpu = cpu.clone();
            async move { cpu.run(false, later(), || ()).await }
        });
        while cpu.small.waiting.load(Ordering::Acquire) == 0 {
            assert!(tokio::time::Instant::now() < deadline, "the waiter never queued");
            tokio::task::yield_now().await;
        }
        // The queue is full: refused at once.
        assert_eq!(cpu.run(false, later(), || ()).await, Err(Rejection::Busy));
        // The large lane is separate.
        assert_eq!(cpu.run(true, later(), || 7).await, Ok(7));
        assert_eq!(waiter.await.unwrap(), Err(Rejection::Busy));
        assert_eq!(cpu.small.waiting.load(Ordering::Acquire), 0);
        release.send(()).unwrap();
        assert_eq!(busy.await.unwrap(), Ok(true));
        assert_eq!(cpu.run(false, later(), || 1).await, Ok(1));
    }

    #[test]
    fn a_reviews_waits_add_up_to_less_than_the_api_servers_timeout() {
        let limits = AdmissionLimits::default();
        let waits = 2 * limits.cpu_wait + super::super::lookup::LOOKUP_TIMEOUT;
        assert!(waits <= REVIEW_DEADLINE, "{waits:?} > {REVIEW_DEADLINE:?}");
        assert!(REVIEW_DEADLINE + ANSWER_MARGIN <= API_SERVER_TIMEOUT);
        // Something is left for computing and the network.
        assert!(ANSWER_MARGIN >= Duration::from_millis(250));
        assert_eq!(
            API_SERVER_TIMEOUT,
            Duration::from_secs(u64::from(super::super::register::TIMEOUT_SECONDS))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_lane_wait_ends_at_the_reviews_deadline() {
        let cpu = Arc::new(Cpu::new(&AdmissionLimits {
            cpu_slots: 1,
            cpu_queue: 4,
            cpu_wait: Duration::from_secs(1),
            ..AdmissionLimits::default()
        }));
        // The one slot, taken.
        let busy = cpu.small.acquire(later()).await.unwrap();
        // 200 ms left of the review's deadline: the wait ends then, not after cpu_wait.
        let started = Instant::now();
        let deadline = started + Duration::from_millis(200);
        assert_eq!(cpu.run(false, deadline, || ()).await, Err(Rejection::Busy));
        assert_eq!(started.elapsed(), Duration::from_millis(200));
        // Past it: refused without waiting.
        assert_eq!(cpu.run(false, Instant::now(), || ()).await, Err(Rejection::Busy));
        assert_eq!(started.elapsed(), Duration::from_millis(200));
        // The lane's own bound still holds with a later deadline.
        let started = Instant::now();
        assert_eq!(cpu.run(false, later(), || ()).await, Err(Rejection::Busy));
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        drop(busy);
        assert_eq!(cpu.run_here(later(), || Here::<_, fn() -> u8>::Done(1)).await, Ok(1));
    }

    #[tokio::test(start_paused = true)]
    async fn the_lookup_budget_caps_concurrency_and_rate_and_never_waits() {
        let budget = LookupBudget::new(&AdmissionLimits {
            lookups_at_once: 3,
            lookups_per_second: 10,
            lookup_burst: 5,
            ..AdmissionLimits::default()
        });
        // Three at once, the fourth refused for concurrency (no token spent on it).
        let held: Vec<LookupPermit> = (0..3).map(|_| budget.try_take().unwrap()).collect();
        assert_eq!(budget.try_take().err(), Some(LookupRefusal::Concurrency));
        drop(held);
        // Two tokens of the burst of five are left; then the rate refuses.
        budget.try_take().unwrap();
        budget.try_take().unwrap();
        assert_eq!(budget.try_take().err(), Some(LookupRefusal::Rate));
        // 10 per second: one more token after 100 ms, not before.
        tokio::time::advance(Duration::from_millis(90)).await;
        assert_eq!(budget.try_take().err(), Some(LookupRefusal::Rate));
        tokio::time::advance(Duration::from_millis(10)).await;
        budget.try_take().unwrap();
        assert_eq!(budget.try_take().err(), Some(LookupRefusal::Rate));
        // A long quiet while refills the burst, no more.
        tokio::time::advance(Duration::from_secs(60)).await;
        let burst: Vec<LookupPermit> = (0..3).map(|_| budget.try_take().unwrap()).collect();
        assert_eq!(budget.try_take().err(), Some(LookupRefusal::Concurrency));
        drop(burst);
        budget.try_take().unwrap();
        budget.try_take().unwrap();
        assert_eq!(budget.try_take().err(), Some(LookupRefusal::Rate));
        // Sustained: over 10 s at most 10 per second get through.
        let mut taken = 0;
        for _ in 0..1000 {
            tokio::time::advance(Duration::from_millis(10)).await;
            taken += usize::from(budget.try_take().is_ok());
        }
        assert!((99..=101).contains(&taken), "{taken} in 10 s");
    }
}
