//! When reconciles run: the work queue (coalescing, per-key retries through one error policy),
//! the workers, write pacing and leadership (lent to reconciles as a [`WriteGate`], from
//! [`super::pacing`]), readiness, and shutdown. What a reconcile does is in [`super::reconcile`].

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch as signal;
use tokio::time::Instant;
use tracing::Instrument;

use super::context::Context;
use super::pacing::{RateLimiter, WriteGate};
use super::queue::WorkQueue;
use super::reconcile::{self, ReconcileError, Reconciled};
use crate::core::source::SourceKind;
use crate::metrics::{Metrics, Outcome};
use crate::store::WorkloadKey;

/// How work is paced and spread.
#[derive(Clone, Debug)]
pub struct SchedulerOptions {
    /// Events for one workload within this window are answered by one reconcile.
    pub window: Duration,
    pub workers: usize,
    pub max_reloads_per_second: f64,
    pub max_reloads_per_second_per_namespace: f64,
    pub burst: u32,
}

/// How long a key waits after its `attempts`-th consecutive failure: 400 ms doubling to ~51 s.
pub fn error_policy(_error: &ReconcileError, attempts: u32) -> Duration {
    Duration::from_millis(200 * 2u64.pow(attempts.min(8)))
}

pub struct Scheduler {
    queue: WorkQueue,
    options: SchedulerOptions,
    gate: WriteGate,
    metrics: Arc<Metrics>,
    /// Source caches listed so far, by kind and scope; ready once all `expected` are.
    synced: Mutex<BTreeSet<(SourceKind, Option<String>)>>,
    expected: usize,
    ready: signal::Sender<bool>,
    /// When each queued key was first queued since its last reconcile (reload latency).
    first_queued: Mutex<HashMap<WorkloadKey, Instant>>,
}

impl Scheduler {
    /// `expected_syncs`: how many (source kind, scope) caches must list before work starts.
    pub fn new(
        options: SchedulerOptions,
        leader: signal::Receiver<bool>,
        metrics: Arc<Metrics>,
        expected_syncs: usize,
    ) -> Self {
        let limiter = Arc::new(RateLimiter::new(
            options.max_reloads_per_second,
            options.max_reloads_per_second_per_namespace,
            options.burst,
        ));
        let (ready, _) = signal::channel(false);
        Self {
            queue: {
                let metrics = metrics.clone();
                WorkQueue::reporting_depth(move |depth| metrics.workqueue_depth(depth))
            },
            options,
            gate: WriteGate::new(leader, limiter),
            metrics,
            synced: Mutex::new(BTreeSet::new()),
            expected: expected_syncs,
            ready,
            first_queued: Mutex::new(HashMap::new()),
        }
    }

    /// The gate reconciles pass before writing.
    pub fn gate(&self) -> WriteGate {
        self.gate.clone()
    }

    /// True once every source watcher has listed its sources: only then is "absent" trustworthy,
    /// so no workload is reconciled (and no admission answered) before.
    pub fn ready(&self) -> signal::Receiver<bool> {
        self.ready.subscribe()
    }

    pub fn source_synced(&self, kind: SourceKind, scope: Option<&str>) {
        let mut synced = self.synced.lock().unwrap_or_else(|e| e.into_inner());
        synced.insert((kind, scope.map(str::to_string)));
        if synced.len() >= self.expected && !*self.ready.borrow() {
            tracing::info!("source caches synced; reconciling");
            self.ready.send_replace(true);
        }
    }

    /// Queues a workload for reconcile. Standbys queue nothing (their caches stay warm through
    /// the watchers): a new leader queues every workload anyway.
    pub fn enqueue(&self, key: WorkloadKey) {
        if !self.gate.is_leader() {
            return;
        }
        self.first_queued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.clone())
            .or_insert_with(Instant::now);
        self.queue.add(key, self.options.window);
        self.metrics.queued();
    }

    pub fn enqueue_all(&self, keys: impl IntoIterator<Item = WorkloadKey>) {
        for key in keys {
            self.enqueue(key);
        }
    }

    /// Starts the workers and the leadership follower; returns once `shutdown` is set and every
    /// reconcile in flight has finished.
    pub async fn run(self: Arc<Self>, ctx: Arc<Context>, shutdown: signal::Receiver<bool>) {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..self.options.workers.max(1) {
            tasks.spawn(self.clone().worker(ctx.clone(), shutdown.clone()));
        }
        let follower = tokio::spawn(self.clone().follow_leadership(ctx));
        while tasks.join_next().await.is_some() {}
        follower.abort();
    }

    /// A new leader catches up on everything: standbys kept their caches warm, so this costs
    /// no LIST, only reconciles that mostly find nothing to do.
    async fn follow_leadership(self: Arc<Self>, ctx: Arc<Context>) {
        let mut leader = self.gate.leadership();
        loop {
            if leader.wait_for(|l| *l).await.is_err() {
                return;
            }
            tracing::info!("leading: reconciling every workload");
            self.metrics.set_leader(true);
            self.enqueue_all(ctx.store.workload_keys());
            if leader.wait_for(|l| !*l).await.is_err() {
                return;
            }
            tracing::warn!("lost leadership: writes stop");
            self.metrics.set_leader(false);
        }
    }

    /// Takes keys while leading, one reconcile at a time, until shutdown. A reconcile in flight
    /// at shutdown is finished, never cut (a Job is never left deleted without its re-create).
    async fn worker(self: Arc<Self>, ctx: Arc<Context>, mut shutdown: signal::Receiver<bool>) {
        let mut ready = self.ready();
        let mut leader = self.gate.leadership();
        tokio::select! {
            biased;
            _ = shutdown.wait_for(|s| *s) => return,
            synced = ready.wait_for(|r| *r) => if synced.is_err() { return },
        }
        loop {
            let key = tokio::select! {
                biased;
                _ = shutdown.wait_for(|s| *s) => return,
                key = async {
                    let leading = leader.wait_for(|l| *l).await.is_ok();
                    if leading { Some(self.queue.next().await) } else { None }
                } => match key {
                    Some(key) => key,
                    None => return,
                },
            };
            let queued_at = self.first_queued.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
            if let Some(at) = queued_at {
                self.metrics.dequeued(at.elapsed());
            }
            let span = tracing::info_span!("reconcile", workload = %key);
            let started = Instant::now();
            let result = reconcile::reconcile(&key, &ctx).instrument(span.clone()).await;
            let outcome = result.as_ref().map_or(Outcome::Error, |done| done.outcome);
            self.metrics.reconciled(key.kind, outcome, started.elapsed());
            self.finish(key, result, queued_at, &span);
        }
    }

    /// Records a reconcile's result and schedules what it asks for, or its retry.
    fn finish(
        &self,
        key: WorkloadKey,
        result: Result<Reconciled, ReconcileError>,
        queued_at: Option<Instant>,
        span: &tracing::Span,
    ) {
        if !matches!(
            result,
            Ok(Reconciled {
                outcome: Outcome::Paced,
                ..
            })
        ) {
            self.gate.release(&key);
        } else if let Some(at) = queued_at {
            // Still waiting for the same change: its latency runs on.
            self.first_queued
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(key.clone())
                .or_insert(at);
        }
        match result {
            Ok(done) => {
                self.metrics.outcome(done.outcome);
                if matches!(done.outcome, Outcome::Rolled | Outcome::Restarted)
                    && let Some(at) = queued_at
                {
                    self.metrics.reload_latency(key.kind, at.elapsed().as_secs_f64());
                }
                self.queue.succeeded(&key);
                if let Some(after) = done.look_again_after {
                    // A paced key is work still to do; any other look again (a pause's end, a
                    // Job's create) only waits.
                    if done.outcome == Outcome::Paced {
                        self.queue.add(key.clone(), after);
                    } else {
                        self.queue.add_later(key.clone(), after);
                    }
                }
                if done.source_changed {
                    self.enqueue(key);
                }
            }
            Err(error) => {
                self.metrics.outcome(Outcome::Error);
                self.metrics.retried();
                let (attempt, backoff) = self.queue.retry(&key, |n| error_policy(&error, n));
                span.in_scope(|| tracing::warn!(%error, attempt, ?backoff, "reconcile failed; retrying"));
            }
        }
    }
}
