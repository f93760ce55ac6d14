//! The reload engine: watchers feed the shared [`Store`], source changes find their dependents
//! through its index, and workers reconcile each affected workload to its desired state.

pub mod csi;
pub mod queue;
pub mod reconcile;
pub mod watch;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::runtime::events::Recorder;
use kube::runtime::watcher;
use tokio::sync::watch as signal;
use tokio::time::Instant;

use crate::core::decision::DecisionOptions;
use crate::core::plan::PlanOptions;
use crate::core::source::SourceKind;
use crate::core::workload::WorkloadKind;
use crate::metrics::Metrics;
use crate::store::{Store, WorkloadKey};
use queue::{RateLimiter, WorkQueue};

/// Everything the engine needs to know from the configuration.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    pub decision: DecisionOptions,
    pub plan: PlanOptions,
    pub field_manager: String,
    /// Events for one workload within this window are answered by one reconcile.
    pub window: Duration,
    pub workers: usize,
    /// Namespaces to watch; `None` in the list means the whole cluster.
    pub scopes: Vec<Option<String>>,
    /// Honoured in cluster-wide mode only, as in Stakater.
    pub namespaces_to_ignore: BTreeSet<String>,
    pub namespace_selector: Option<String>,
    pub resource_label_selector: Option<String>,
    pub source_kinds: Vec<SourceKind>,
    pub workload_kinds: Vec<WorkloadKind>,
    pub max_reloads_per_second: f64,
    pub max_reloads_per_second_per_namespace: f64,
    pub burst: u32,
}

/// Where the engine reports what it did, besides the workload itself.
pub struct Outbound {
    /// Kubernetes Events on the workload.
    pub recorder: Recorder,
    /// Chat/webhook alerts after each reload.
    pub alerts: Option<crate::alerts::Alerts>,
    /// `--webhook-url`: announce changes instead of rolling.
    pub notifier: Option<crate::alerts::Notifier>,
}

/// The shared state of the engine's tasks.
pub struct Engine {
    pub client: kube::Client,
    pub store: Store,
    pub queue: WorkQueue,
    pub limiter: RateLimiter,
    pub metrics: Arc<Metrics>,
    pub options: EngineOptions,
    pub recorder: Recorder,
    synced: Mutex<BTreeSet<(SourceKind, Option<String>)>>,
    ready: signal::Sender<bool>,
    leader: signal::Receiver<bool>,
    selected_namespaces: RwLock<Option<BTreeSet<String>>>,
    first_queued: Mutex<HashMap<WorkloadKey, Instant>>,
    /// Jobs to create for a workload (a re-created Job, a CronJob's run) whose create failed.
    pending_creates: Mutex<HashMap<WorkloadKey, kube::api::DynamicObject>>,
    pub alerts: Option<crate::alerts::Alerts>,
    /// `--webhook-url`: announce changes instead of rolling.
    pub notifier: Option<crate::alerts::Notifier>,
}

impl Engine {
    pub fn new(
        client: kube::Client,
        store: Store,
        metrics: Arc<Metrics>,
        options: EngineOptions,
        outbound: Outbound,
        leader: signal::Receiver<bool>,
    ) -> Arc<Self> {
        let Outbound {
            recorder,
            alerts,
            notifier,
        } = outbound;
        let limiter = RateLimiter::new(
            options.max_reloads_per_second,
            options.max_reloads_per_second_per_namespace,
            options.burst,
        );
        let (ready, _) = signal::channel(false);
        let selected = options.namespace_selector.as_ref().map(|_| BTreeSet::new());
        Arc::new(Self {
            client,
            store,
            queue: WorkQueue::default(),
            limiter,
            metrics,
            options,
            recorder,
            synced: Mutex::new(BTreeSet::new()),
            ready,
            leader,
            selected_namespaces: RwLock::new(selected),
            first_queued: Mutex::new(HashMap::new()),
            pending_creates: Mutex::new(HashMap::new()),
            alerts,
            notifier,
        })
    }

    /// True once every source watcher has listed its sources: only then is "absent" trustworthy,
    /// so no workload is reconciled (and no admission answered) before.
    pub fn ready(&self) -> signal::Receiver<bool> {
        self.ready.subscribe()
    }

    fn source_synced(&self, kind: SourceKind, scope: Option<&str>) {
        let mut synced = self.synced.lock().unwrap_or_else(|e| e.into_inner());
        synced.insert((kind, scope.map(str::to_string)));
        let expected = self.options.source_kinds.len() * self.options.scopes.len();
        if synced.len() >= expected && !*self.ready.borrow() {
            tracing::info!("source caches synced; reconciling");
            self.ready.send_replace(true);
        }
    }

    fn pending_create(&self, key: &WorkloadKey, job: kube::api::DynamicObject) {
        self.pending_creates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.clone(), job);
    }

    fn take_pending_create(&self, key: &WorkloadKey) -> Option<kube::api::DynamicObject> {
        self.pending_creates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key)
    }

    /// Whether this replica may write now.
    pub fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }

    /// Queues a workload for reconcile. Standbys queue nothing (their caches stay warm through
    /// the watchers): a new leader queues every workload anyway.
    pub fn enqueue(&self, key: WorkloadKey) {
        if !self.is_leader() {
            return;
        }
        self.first_queued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.clone())
            .or_insert_with(Instant::now);
        self.queue.add(key, self.options.window);
        self.metrics.workqueue_depth.set(self.queue.len() as i64);
    }

    pub fn enqueue_all(&self, keys: impl IntoIterator<Item = WorkloadKey>) {
        for key in keys {
            self.enqueue(key);
        }
    }

    fn enqueue_namespace(&self, namespace: &str) {
        let keys: Vec<WorkloadKey> = self
            .store
            .workload_keys()
            .into_iter()
            .filter(|k| k.namespace == namespace)
            .collect();
        self.enqueue_all(keys);
    }

    /// When the key was first queued since its last reconcile (for latency metrics).
    fn take_first_queued(&self, key: &WorkloadKey) -> Option<Instant> {
        self.first_queued.lock().unwrap_or_else(|e| e.into_inner()).remove(key)
    }

    /// Adds or removes a namespace from the selector's set; true when it was newly added.
    fn select_namespace(&self, namespace: String, selected: bool) -> bool {
        let mut guard = self.selected_namespaces.write().unwrap_or_else(|e| e.into_inner());
        let set = guard.get_or_insert_with(BTreeSet::new);
        if selected {
            set.insert(namespace)
        } else {
            set.remove(&namespace);
            false
        }
    }

    /// Replaces the selected set after a relist; returns the namespaces that were added.
    fn replace_selected_namespaces(&self, fresh: BTreeSet<String>) -> Vec<String> {
        let mut guard = self.selected_namespaces.write().unwrap_or_else(|e| e.into_inner());
        let before = guard.take().unwrap_or_default();
        let added = fresh.difference(&before).cloned().collect();
        *guard = Some(fresh);
        added
    }

    /// Whether workloads in `namespace` may be reloaded (ignore list and namespace selector).
    pub fn namespace_allowed(&self, namespace: &str) -> bool {
        let cluster_wide = self.options.scopes.iter().any(Option::is_none);
        if cluster_wide && self.options.namespaces_to_ignore.contains(namespace) {
            return false;
        }
        match &*self.selected_namespaces.read().unwrap_or_else(|e| e.into_inner()) {
            Some(set) => set.contains(namespace),
            None => true,
        }
    }

    /// Starts every watcher and worker; returns when all of them end (they do not, normally).
    pub async fn run(self: Arc<Self>) {
        let mut tasks = tokio::task::JoinSet::new();
        let label_selector = self.options.resource_label_selector.clone();
        for scope in self.options.scopes.clone() {
            for kind in self.options.source_kinds.clone() {
                let mut config = watcher::Config::default();
                if let Some(selector) = &label_selector {
                    config = config.labels(selector);
                }
                let engine = self.clone();
                let scope = scope.clone();
                match kind {
                    SourceKind::ConfigMap => {
                        let api = watch::scoped_api::<ConfigMap>(self.client.clone(), scope.as_deref());
                        tasks.spawn(watch::watch_sources(
                            engine,
                            api,
                            config,
                            kind,
                            scope,
                            watch::configmap_state,
                        ));
                    }
                    SourceKind::Secret => {
                        let api = watch::scoped_api::<Secret>(self.client.clone(), scope.as_deref());
                        let config = config.fields(watch::SECRET_FIELD_SELECTOR);
                        tasks.spawn(watch::watch_sources(
                            engine,
                            api,
                            config,
                            kind,
                            scope,
                            watch::secret_state,
                        ));
                    }
                    SourceKind::SecretProviderClass => {
                        let shared = csi::SharedCsi::default();
                        tasks.spawn(csi::watch_classes(engine.clone(), scope.clone(), shared.clone()));
                        tasks.spawn(csi::watch_pod_statuses(engine, scope, shared));
                    }
                }
            }
            for kind in self.options.workload_kinds.clone() {
                tasks.spawn(watch::watch_workloads(self.clone(), kind, scope.clone()));
            }
        }
        if let Some(selector) = self.options.namespace_selector.clone() {
            tasks.spawn(watch::watch_namespaces(self.clone(), selector));
        }
        tasks.spawn(self.clone().follow_leadership());
        for _ in 0..self.options.workers.max(1) {
            tasks.spawn(self.clone().worker());
        }
        while tasks.join_next().await.is_some() {}
    }

    /// A new leader catches up on everything: standbys kept their caches warm, so this costs
    /// no LIST, only reconciles that mostly find nothing to do.
    async fn follow_leadership(self: Arc<Self>) {
        let mut leader = self.leader.clone();
        loop {
            if leader.wait_for(|l| *l).await.is_err() {
                return;
            }
            tracing::info!("leading: reconciling every workload");
            self.enqueue_all(self.store.workload_keys());
            if leader.wait_for(|l| !*l).await.is_err() {
                return;
            }
            tracing::warn!("lost leadership: writes stop");
        }
    }

    async fn worker(self: Arc<Self>) {
        let mut ready = self.ready();
        if ready.wait_for(|r| *r).await.is_err() {
            return;
        }
        let mut leader = self.leader.clone();
        let mut attempts: HashMap<WorkloadKey, u32> = HashMap::new();
        loop {
            if leader.wait_for(|l| *l).await.is_err() {
                return;
            }
            let key = self.queue.next().await;
            self.metrics.workqueue_depth.set(self.queue.len() as i64);
            let queued_at = self.take_first_queued(&key);
            match reconcile::reconcile(&self, &key, queued_at).await {
                Ok(outcome) => {
                    attempts.remove(&key);
                    self.metrics.outcome(outcome.label());
                }
                Err(error) => {
                    self.metrics.outcome("error");
                    let n = attempts.entry(key.clone()).or_insert(0);
                    *n += 1;
                    let backoff = Duration::from_millis(200 * 2u64.pow((*n).min(8)));
                    tracing::warn!(workload = %key, %error, attempt = *n, ?backoff, "reconcile failed; retrying");
                    self.queue.done(&key);
                    self.queue.add(key, backoff);
                    continue;
                }
            }
            self.queue.done(&key);
        }
    }
}
