//! Write pacing and leadership, as reconciles meet them: the [`WriteGate`] a reconcile passes
//! before writing (this replica leads; the reload rate limits allow this workload now), and the
//! [`RateLimiter`] behind it, token buckets (global and per namespace) that pace writes by
//! reservation without dropping any.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch as signal;
use tokio::time::Instant;

use crate::store::WorkloadKey;

/// Leadership and write pacing, lent to reconciles: a reconcile writes only after passing it.
#[derive(Clone)]
pub struct WriteGate {
    leader: signal::Receiver<bool>,
    limiter: Arc<RateLimiter>,
}

impl WriteGate {
    pub fn new(leader: signal::Receiver<bool>, limiter: Arc<RateLimiter>) -> Self {
        Self { leader, limiter }
    }

    /// Whether this replica may write now.
    pub fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }

    /// Leadership as it changes (the scheduler's workers wait on it).
    pub fn leadership(&self) -> signal::Receiver<bool> {
        self.leader.clone()
    }

    /// Whether `key` may roll its pods now under the reload rate limits; when not, its slot
    /// is reserved and the reconcile comes back then, leaving its worker to others.
    pub fn pace(&self, key: &WorkloadKey) -> Pace {
        let pace = self.limiter.pace(key);
        if let Pace::Later(wait) = pace {
            tracing::debug!(?wait, "paced by the reload rate limit");
        }
        pace
    }

    /// Drops the slots `key` reserved: its reconcile ended without needing them.
    pub fn release(&self, key: &WorkloadKey) {
        self.limiter.forget(key);
    }
}

/// A token bucket that hands out reservations: a caller over the limit waits its turn instead
/// of being refused, so pacing never loses a reload.
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: f64, burst: f64) -> Self {
        Self {
            rate,
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    fn reserve(&mut self, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// What a writer must do before writing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pace {
    /// Its slot has come: write now.
    Go,
    /// Its slot is this far away: come back then (the slot stays reserved for it).
    Later(Duration),
}

/// Slots a workload holds while it waits: first in its namespace's bucket, then, once that
/// slot has come, in the global one.
#[derive(Clone, Copy, Debug)]
struct Reservation {
    namespace_at: Instant,
    global_at: Option<Instant>,
}

/// Global and per-namespace write pacing, by reservation: a workload over the limit is given
/// the time of its slot and goes back to the queue until then, so a namespace waiting for its
/// tokens never holds the workers that other namespaces need. The global slot is taken only
/// once the namespace slot has come, so one busy namespace cannot book the global bucket far
/// into the future either.
pub struct RateLimiter {
    global: Mutex<Bucket>,
    per_namespace: Mutex<HashMap<String, Bucket>>,
    reservations: Mutex<HashMap<WorkloadKey, Reservation>>,
    namespace_rate: f64,
    burst: f64,
}

impl RateLimiter {
    /// Rates are writes per second; non-positive rates mean "unlimited".
    pub fn new(global_rate: f64, namespace_rate: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        let unlimited = |r: f64| if r > 0.0 { r } else { f64::INFINITY };
        Self {
            global: Mutex::new(Bucket::new(unlimited(global_rate), burst)),
            per_namespace: Mutex::new(HashMap::new()),
            reservations: Mutex::new(HashMap::new()),
            namespace_rate: unlimited(namespace_rate),
            burst,
        }
    }

    /// Whether `key` may write now, reserving its slots when it may not.
    pub fn pace(&self, key: &WorkloadKey) -> Pace {
        let now = Instant::now();
        let mut reservations = self.reservations.lock().unwrap_or_else(|e| e.into_inner());
        let reservation = match reservations.get(key).copied() {
            Some(r) => r,
            None => {
                let wait = self
                    .per_namespace
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(key.namespace.clone())
                    .or_insert_with(|| Bucket::new(self.namespace_rate, self.burst))
                    .reserve(now);
                Reservation {
                    namespace_at: now + wait,
                    global_at: None,
                }
            }
        };
        if reservation.namespace_at > now {
            reservations.insert(key.clone(), reservation);
            return Pace::Later(reservation.namespace_at - now);
        }
        let global_at = reservation
            .global_at
            .unwrap_or_else(|| now + self.global.lock().unwrap_or_else(|e| e.into_inner()).reserve(now));
        if global_at > now {
            reservations.insert(
                key.clone(),
                Reservation {
                    global_at: Some(global_at),
                    ..reservation
                },
            );
            return Pace::Later(global_at - now);
        }
        reservations.remove(key);
        Pace::Go
    }

    /// Drops what `key` reserved: its reconcile ended without writing (nothing left to do,
    /// leadership lost). The slot is not given back: pacing errs on the slow side.
    pub fn forget(&self, key: &WorkloadKey) {
        self.reservations.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }

    /// Workloads holding a reservation.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.reservations.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::workload::WorkloadKind;

    fn in_ns(namespace: &str, name: &str) -> WorkloadKey {
        WorkloadKey {
            kind: WorkloadKind::Deployment,
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limiter_paces_by_reservation_without_refusing() {
        let limiter = RateLimiter::new(10.0, 2.0, 1);
        assert_eq!(limiter.pace(&in_ns("a", "1")), Pace::Go);
        // Namespace a is limited to 2/s with burst 1: the next slot is 0.5 s away, and asking
        // again before then neither moves it nor books another.
        assert_eq!(limiter.pace(&in_ns("a", "2")), Pace::Later(Duration::from_millis(500)));
        tokio::time::advance(Duration::from_millis(200)).await;
        assert_eq!(limiter.pace(&in_ns("a", "2")), Pace::Later(Duration::from_millis(300)));
        let Pace::Later(third) = limiter.pace(&in_ns("a", "3")) else {
            panic!("a third reload in namespace a must wait")
        };
        assert!(
            third.abs_diff(Duration::from_millis(800)) < Duration::from_millis(1),
            "{third:?}"
        );
        assert_eq!(limiter.waiting(), 2);
        tokio::time::advance(Duration::from_millis(300)).await;
        assert_eq!(limiter.pace(&in_ns("a", "2")), Pace::Go);
        // A forgotten reservation is dropped (its slot is not handed back).
        limiter.forget(&in_ns("a", "3"));
        assert_eq!(limiter.waiting(), 0);
        let unlimited = RateLimiter::new(0.0, 0.0, 1);
        for i in 0..100 {
            assert_eq!(unlimited.pace(&in_ns("a", &i.to_string())), Pace::Go);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_namespace_does_not_book_the_global_bucket_ahead() {
        // Global 10/s, namespace 1/s, burst 1: a storm of 100 workloads in namespace a.
        let limiter = RateLimiter::new(10.0, 1.0, 1);
        assert_eq!(limiter.pace(&in_ns("a", "0")), Pace::Go);
        for i in 1..100 {
            assert!(matches!(limiter.pace(&in_ns("a", &i.to_string())), Pace::Later(_)));
        }
        // Namespace b waits only for the global bucket's next token (0.1 s), not behind a's
        // 99 queued reloads.
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(limiter.pace(&in_ns("b", "x")), Pace::Go);
    }
}
