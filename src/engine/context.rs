//! What a reconcile needs, and nothing about when it runs: the API client, the shared store,
//! where it reports (Events, alerts, `--webhook-url`), metrics, its options, and the
//! [`WriteGate`] it must pass before writing. Scheduling lives in [`super::scheduler`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use kube::api::DynamicObject;

use super::held::{HaltReports, Holds, NamespaceWindows};
use super::pacing::WriteGate;
use crate::alerts::{Alerts, Notifier, SourceAnnouncer};
use crate::clock::Clock;
use crate::core::dependencies::DependencyOptions;
use crate::core::hold::Hold;
use crate::core::keyed_hash::StampKeyRing;
use crate::core::plan::PlanOptions;
use crate::core::waves::WaveSizes;
use crate::core::window::ReloadWindow;
use crate::metrics::Metrics;
use crate::scope::NamespaceScope;
use crate::store::{Store, WorkloadKey};

/// How a workload is reconciled.
#[derive(Clone, Debug)]
pub struct ReconcileOptions {
    pub dependency: DependencyOptions,
    pub plan: PlanOptions,
    /// The key ring stamps are made and checked with, kept current by its owner.
    pub stamp_keys: watch::Receiver<Arc<StampKeyRing>>,
    pub field_manager: String,
    /// `--rollout-waves`: the waves of sources whose own annotation names none.
    pub default_waves: Option<WaveSizes>,
    /// How long a workload rolled in a wave may take to be healthy where its controller reports
    /// no deadline itself ([`crate::core::rollout_status`]).
    pub wave_deadline: Duration,
    /// `--reload-window`: the reload window of workloads whose own annotation and Namespace
    /// name none.
    pub default_window: Option<ReloadWindow>,
}

/// The client pod evictions go through: one without kube's retries of 429s, which would wait
/// out a PodDisruptionBudget's refusal inside the reconcile for minutes (15 retries, backoff
/// growing to 1,000 s) instead of looking again in a few seconds.
#[derive(Clone)]
pub struct EvictionClient(pub kube::Client);

impl std::fmt::Debug for EvictionClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EvictionClient")
    }
}

/// Where the engine reports what it did, besides the workload itself.
pub struct Outbound {
    /// Kubernetes Events on the workload, as Stakater writes them.
    pub events: super::events::EventRecorder,
    /// Chat/webhook alerts after each reload.
    pub alerts: Option<Alerts>,
    /// `--webhook-url-per-workload`: announce each workload's changes instead of rolling.
    pub notifier: Option<Notifier>,
    /// `--webhook-url` (Stakater's meaning): announce each changed source; nothing rolls.
    pub announcer: Option<SourceAnnouncer>,
}

pub struct Context {
    pub client: kube::Client,
    /// Evictions' client ([`EvictionClient`]); the main client where none is given.
    pub evictions: kube::Client,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub options: ReconcileOptions,
    pub outbound: Outbound,
    pub scope: Arc<NamespaceScope>,
    pub gate: WriteGate,
    /// Reload windows, waves and `--reload-window` hours are read at this clock.
    pub clock: Clock,
    pub namespace_windows: NamespaceWindows,
    /// What is held now (see [`super::gate`]).
    holds: Holds,
    /// Jobs to create for a workload (a re-created Job, a CronJob's run) whose create failed.
    pending_creates: Mutex<HashMap<WorkloadKey, DynamicObject>>,
    /// The annotation problems already reported on each workload.
    reported: Mutex<HashMap<WorkloadKey, Reported>>,
    /// The halted waves already reported.
    pub(super) halts: HaltReports,
}

/// What was reported on one workload, so each problem is reported once (per process).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Reported {
    /// The workload's uid: a re-created workload starts afresh.
    pub uid: String,
    /// A fingerprint of the annotations the problems were found in; `None` to look again (a
    /// report failed).
    pub fingerprint: Option<u64>,
    /// The problems reported (their messages), still present at the last look.
    pub problems: std::collections::BTreeSet<String>,
}

impl Context {
    pub fn new(
        client: kube::Client,
        store: Store,
        metrics: Arc<Metrics>,
        options: ReconcileOptions,
        outbound: Outbound,
        scope: Arc<NamespaceScope>,
        gate: WriteGate,
    ) -> Self {
        Self {
            evictions: client.clone(),
            client,
            store,
            metrics,
            options,
            outbound,
            scope,
            gate,
            pending_creates: Mutex::new(HashMap::new()),
            reported: Mutex::new(HashMap::new()),
            clock: Clock::system(),
            namespace_windows: NamespaceWindows::default(),
            holds: Holds::default(),
            halts: HaltReports::default(),
        }
    }

    /// Notes `key` as held by `hold`; true when that is news (to be told).
    pub(super) fn note_hold(&self, key: &WorkloadKey, hold: &Hold) -> bool {
        let news = self.holds.hold(key, hold);
        if news {
            self.metrics.set_held(&self.holds.counts());
        }
        news
    }

    /// Notes `key` as not held (any more).
    pub fn release_hold(&self, key: &WorkloadKey) {
        if self.holds.release(key) {
            self.metrics.set_held(&self.holds.counts());
        }
    }

    /// Keeps a Job to create for `key` until a reconcile manages to.
    pub(super) fn pending_create(&self, key: &WorkloadKey, job: DynamicObject) {
        self.pending_creates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.clone(), job);
    }

    /// What was reported on `key` so far, if it is still the workload with `uid`.
    pub(super) fn reported(&self, key: &WorkloadKey, uid: &str) -> Reported {
        let reported = self.reported.lock().unwrap_or_else(|e| e.into_inner());
        match reported.get(key) {
            Some(r) if r.uid == uid => r.clone(),
            _ => Reported {
                uid: uid.to_string(),
                ..Default::default()
            },
        }
    }

    pub(super) fn set_reported(&self, key: &WorkloadKey, reported: Reported) {
        self.reported
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.clone(), reported);
    }

    /// Forgets what was reported on a deleted workload.
    pub fn forget_reported(&self, key: &WorkloadKey) {
        self.reported.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }

    /// Forgets what was reported on workloads the store no longer holds (after a relist).
    pub fn prune_reported(&self) {
        self.reported
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|key, _| self.store.has_workload(key));
    }

    pub(super) fn take_pending_create(&self, key: &WorkloadKey) -> Option<DynamicObject> {
        self.pending_creates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key)
    }
}
