//! The work queue: keyed by workload, so any number of source events for one workload within
//! the coalescing window become one reconcile; a key is never processed by two workers at once;
//! a key's failed attempts are counted here, whichever worker ran them, so its backoff grows
//! until it succeeds. Write pacing is in [`super::pacing`].

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::store::WorkloadKey;

#[derive(Default)]
struct QueueState {
    due: HashMap<WorkloadKey, Instant>,
    order: BTreeSet<(Instant, WorkloadKey)>,
    /// Due keys that only wait to be looked at again (a retry's backoff, a pause's end): not
    /// counted in the depth, as client-go's delayed adds are not.
    deferred: HashSet<WorkloadKey>,
    active: HashSet<WorkloadKey>,
    /// Added again while being processed: re-queued at this time when done.
    again: HashMap<WorkloadKey, (Instant, Wait)>,
    /// Consecutive failed attempts per key, until one succeeds.
    failures: HashMap<WorkloadKey, u32>,
}

impl QueueState {
    fn depth(&self) -> usize {
        self.due.len() - self.deferred.len()
    }
}

/// Why a key waits: work that came in (counted in the depth), or a look again later.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Wait {
    Queued,
    Deferred,
}

impl Wait {
    /// A key both queued and deferred is queued.
    fn and(self, other: Wait) -> Wait {
        if self == Wait::Queued || other == Wait::Queued {
            Wait::Queued
        } else {
            Wait::Deferred
        }
    }
}

/// Told the number of waiting keys on every change, under the queue's lock, so a gauge fed by it
/// never keeps a stale value written by a slower thread.
type DepthReport = Box<dyn Fn(usize) + Send + Sync>;

pub struct WorkQueue {
    state: Mutex<QueueState>,
    notify: Notify,
    report_depth: DepthReport,
}

impl Default for WorkQueue {
    fn default() -> Self {
        Self::reporting_depth(|_| {})
    }
}

impl WorkQueue {
    pub fn reporting_depth(report: impl Fn(usize) + Send + Sync + 'static) -> Self {
        Self {
            state: Mutex::new(QueueState::default()),
            notify: Notify::new(),
            report_depth: Box::new(report),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Schedules `key` after `delay`. An already scheduled key keeps the earlier time, so a
    /// burst of events is answered once, at most `delay` after the first.
    pub fn add(&self, key: WorkloadKey, delay: Duration) {
        self.schedule(key, delay, Wait::Queued);
    }

    /// As [`WorkQueue::add`], for a key to look at again later; it is not counted in the depth
    /// until something queues it for real.
    pub fn add_later(&self, key: WorkloadKey, delay: Duration) {
        self.schedule(key, delay, Wait::Deferred);
    }

    fn schedule(&self, key: WorkloadKey, delay: Duration, wait: Wait) {
        let at = Instant::now() + delay;
        let mut state = self.lock();
        if state.active.contains(&key) {
            let slot = state.again.entry(key).or_insert((at, wait));
            *slot = (slot.0.min(at), slot.1.and(wait));
            return;
        }
        let wait = match state.due.get(&key).copied() {
            Some(existing) => {
                let was = if state.deferred.contains(&key) {
                    Wait::Deferred
                } else {
                    Wait::Queued
                };
                if existing > at {
                    state.order.remove(&(existing, key.clone()));
                    state.order.insert((at, key.clone()));
                    state.due.insert(key.clone(), at);
                }
                was.and(wait)
            }
            None => {
                state.due.insert(key.clone(), at);
                state.order.insert((at, key.clone()));
                wait
            }
        };
        match wait {
            Wait::Queued => state.deferred.remove(&key),
            Wait::Deferred => state.deferred.insert(key),
        };
        (self.report_depth)(state.depth());
        drop(state);
        self.notify.notify_waiters();
    }

    /// Waits for the next due key and marks it active until [`WorkQueue::done`].
    pub async fn next(&self) -> WorkloadKey {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wait_until = {
                let mut state = self.lock();
                match state.order.first().cloned() {
                    Some((at, key)) if at <= Instant::now() => {
                        state.order.remove(&(at, key.clone()));
                        state.due.remove(&key);
                        state.deferred.remove(&key);
                        state.active.insert(key.clone());
                        (self.report_depth)(state.depth());
                        return key;
                    }
                    Some((at, _)) => Some(at),
                    None => None,
                }
            };
            match wait_until {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = &mut notified => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Marks `key` finished; a key added meanwhile is scheduled again.
    pub fn done(&self, key: &WorkloadKey) {
        let again = {
            let mut state = self.lock();
            state.active.remove(key);
            state.again.remove(key)
        };
        if let Some((at, wait)) = again {
            self.schedule(key.clone(), at.saturating_duration_since(Instant::now()), wait);
        }
    }

    /// Marks `key` finished after a failed attempt and schedules it again after the backoff
    /// `policy` gives for the number of consecutive failures (returned with the backoff).
    pub fn retry(&self, key: &WorkloadKey, policy: impl FnOnce(u32) -> Duration) -> (u32, Duration) {
        let attempts = {
            let mut state = self.lock();
            let n = state.failures.entry(key.clone()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        };
        let backoff = policy(attempts);
        self.done(key);
        self.add_later(key.clone(), backoff);
        (attempts, backoff)
    }

    /// Marks `key` finished after a successful attempt: its failures are forgotten.
    pub fn succeeded(&self, key: &WorkloadKey) {
        self.lock().failures.remove(key);
        self.done(key);
    }

    /// Keys queued (not counting those being processed or deferred).
    pub fn len(&self) -> usize {
        self.lock().depth()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::workload::WorkloadKind;

    fn key(name: &str) -> WorkloadKey {
        WorkloadKey {
            kind: WorkloadKind::Deployment,
            namespace: "ns".into(),
            name: name.into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn events_within_the_window_coalesce() {
        let q = WorkQueue::default();
        q.add(key("a"), Duration::from_secs(2));
        tokio::time::advance(Duration::from_secs(1)).await;
        q.add(key("a"), Duration::from_secs(2));
        assert_eq!(q.len(), 1);
        let start = Instant::now();
        assert_eq!(q.next().await, key("a"));
        // Due 2 s after the first add, not postponed by the second.
        assert_eq!(Instant::now() - start, Duration::from_secs(1));
        assert!(q.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn earlier_schedule_wins_and_order_is_by_time() {
        let q = WorkQueue::default();
        q.add(key("late"), Duration::from_secs(5));
        q.add(key("soon"), Duration::from_secs(1));
        q.add(key("late"), Duration::from_millis(500));
        assert_eq!(q.next().await, key("late"));
        assert_eq!(q.next().await, key("soon"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_reported_depth_ends_at_what_is_left_however_threads_interleave() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let reported = Arc::new(AtomicUsize::new(usize::MAX));
        let q = Arc::new({
            let reported = reported.clone();
            WorkQueue::reporting_depth(move |d| reported.store(d, Ordering::SeqCst))
        });
        let mut tasks = tokio::task::JoinSet::new();
        for t in 0..4 {
            let q = q.clone();
            tasks.spawn(async move {
                for i in 0..500 {
                    let k = key(&format!("{t}-{i}"));
                    q.add(k, Duration::ZERO);
                    let taken = q.next().await;
                    q.succeeded(&taken);
                }
            });
        }
        while tasks.join_next().await.is_some() {}
        assert_eq!(q.len(), 0);
        assert_eq!(reported.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_look_again_later_is_not_counted_until_something_queues_it() {
        let q = WorkQueue::default();
        q.add_later(key("paused"), Duration::from_secs(60));
        assert_eq!(q.len(), 0, "deferred keys are not depth");
        q.add(key("paused"), Duration::from_secs(1));
        assert_eq!(q.len(), 1, "an event queues it for real, at the earlier time");
        let start = Instant::now();
        assert_eq!(q.next().await, key("paused"));
        assert_eq!(Instant::now() - start, Duration::from_secs(1));
        // A look again booked while active stays deferred when it is re-scheduled.
        q.add_later(key("paused"), Duration::from_secs(5));
        q.succeeded(&key("paused"));
        assert_eq!(q.len(), 0);
        assert_eq!(q.next().await, key("paused"));
    }

    #[tokio::test(start_paused = true)]
    async fn an_active_key_is_not_handed_out_twice() {
        let q = WorkQueue::default();
        q.add(key("a"), Duration::ZERO);
        let k = q.next().await;
        q.add(key("a"), Duration::ZERO);
        assert!(q.is_empty(), "held back while active");
        q.done(&k);
        assert_eq!(q.len(), 1);
        assert_eq!(q.next().await, key("a"));
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_consumer_wakes_on_add() {
        let q = std::sync::Arc::new(WorkQueue::default());
        let consumer = tokio::spawn({
            let q = q.clone();
            async move { q.next().await }
        });
        tokio::task::yield_now().await;
        q.add(key("x"), Duration::from_millis(10));
        assert_eq!(consumer.await.unwrap(), key("x"));
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_counted_per_key_until_one_succeeds() {
        let q = WorkQueue::default();
        let policy = |n: u32| Duration::from_secs(u64::from(n));
        q.add(key("a"), Duration::ZERO);
        let k = q.next().await;
        assert_eq!(q.retry(&k, policy), (1, Duration::from_secs(1)));
        let start = Instant::now();
        let k = q.next().await;
        assert_eq!(Instant::now() - start, Duration::from_secs(1));
        // Whoever takes it next, the count goes on.
        assert_eq!(q.retry(&k, policy), (2, Duration::from_secs(2)));
        let k = q.next().await;
        q.succeeded(&k);
        q.add(key("a"), Duration::ZERO);
        let k = q.next().await;
        assert_eq!(q.retry(&k, policy), (1, Duration::from_secs(1)), "reset by the success");
    }
}
