//! The reload engine: watchers feed the shared [`Store`], source changes find their dependents
//! through its index, and the scheduler's workers reconcile each affected workload to its
//! desired state.
//!
//! - [`watch`], [`csi`]: one task per kind and scope, feeding the store and the scheduler;
//!   [`extra`]: an extra kind's watchers, started once discovery finds the kind served;
//! - [`scheduler`]: when reconciles run (queue, retries, pacing, leadership, readiness, shutdown);
//! - [`context`]: what a reconcile needs (client, store, reporting, options);
//! - [`reconcile`]: one workload, in phases (compute, write, report);
//! - [`scope`]: which namespaces are ours.

pub mod context;
pub mod csi;
pub mod events;
pub mod extra;
pub mod gate;
pub mod held;
pub mod pacing;
pub mod queue;
pub mod reconcile;
pub mod restarts;
pub mod scheduler;
pub mod watch;
pub(crate) mod waves;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::runtime::watcher;
use tokio::sync::watch as signal;
use tracing::Instrument;

use crate::clock::Clock;
use crate::core::dependencies::DependencyOptions;
use crate::core::keyed_hash::StampKeyRing;
use crate::core::plan::PlanOptions;
use crate::core::source::SourceKind;
use crate::core::waves::WaveSizes;
use crate::core::window::ReloadWindow;
use crate::core::workload::WorkloadKind;
use crate::metrics::Metrics;
use crate::scope::NamespaceScope;
use crate::store::Store;
pub use context::{Context, EvictionClient, Outbound, ReconcileOptions};
use scheduler::{Scheduler, SchedulerOptions};

/// How long Events still on their way may delay the exit at shutdown (within its grace).
const EVENTS_AT_SHUTDOWN: Duration = Duration::from_secs(2);

/// Everything the engine needs to know from the configuration.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    pub dependency: DependencyOptions,
    pub plan: PlanOptions,
    /// The stamp key ring (see [`crate::stamp_key_secret`]).
    pub stamp_keys: signal::Receiver<Arc<StampKeyRing>>,
    pub field_manager: String,
    /// Events for one workload within this window are answered by one reconcile.
    pub coalesce_window: Duration,
    /// `--reload-window`: when rollouts may happen, unless a workload or Namespace says.
    pub default_window: Option<ReloadWindow>,
    /// The clock windows and waves are read at.
    pub clock: Clock,
    /// `--rollout-waves`: the waves of sources whose own annotation names none.
    pub default_waves: Option<WaveSizes>,
    /// `--rollout-wave-deadline`.
    pub wave_deadline: Duration,
    /// Pod restarts' evictions go through it (the main client where `None`).
    pub eviction_client: Option<EvictionClient>,
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

/// What the watchers watch.
struct WatchOptions {
    scopes: Vec<Option<String>>,
    namespace_selector: Option<String>,
    resource_label_selector: Option<String>,
    source_kinds: Vec<SourceKind>,
    workload_kinds: Vec<WorkloadKind>,
}

/// The engine's parts, wired: watchers feed the store and the scheduler, whose workers run
/// reconciles with the context.
pub struct Engine {
    pub ctx: Arc<Context>,
    pub scheduler: Arc<Scheduler>,
    watch: WatchOptions,
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
        let EngineOptions {
            dependency,
            plan,
            stamp_keys,
            field_manager,
            coalesce_window,
            default_window,
            clock,
            default_waves,
            wave_deadline,
            eviction_client,
            workers,
            scopes,
            namespaces_to_ignore,
            namespace_selector,
            resource_label_selector,
            source_kinds,
            workload_kinds,
            max_reloads_per_second,
            max_reloads_per_second_per_namespace,
            burst,
        } = options;
        let scheduler = Arc::new(Scheduler::new(
            SchedulerOptions {
                window: coalesce_window,
                workers,
                max_reloads_per_second,
                max_reloads_per_second_per_namespace,
                burst,
            },
            leader,
            metrics.clone(),
            source_kinds.len() * scopes.len(),
        ));
        let watched = scopes.iter().cloned().collect::<Option<BTreeSet<String>>>();
        let scope = Arc::new(NamespaceScope::new(
            watched,
            namespaces_to_ignore,
            namespace_selector.is_some(),
        ));
        let mut ctx = Context::new(
            client,
            store,
            metrics,
            ReconcileOptions {
                dependency,
                plan,
                stamp_keys,
                field_manager,
                default_waves,
                wave_deadline,
                default_window,
            },
            outbound,
            scope,
            scheduler.gate(),
        );
        ctx.clock = clock;
        if let Some(EvictionClient(evictions)) = eviction_client {
            ctx.evictions = evictions;
        }
        let ctx = Arc::new(ctx);
        Arc::new(Self {
            ctx,
            scheduler,
            watch: WatchOptions {
                scopes,
                namespace_selector,
                resource_label_selector,
                source_kinds,
                workload_kinds,
            },
        })
    }

    /// The shared in-memory view the watchers keep.
    pub fn store(&self) -> &Store {
        &self.ctx.store
    }

    /// Which namespaces are ours; the admission webhook shares it.
    pub fn scope(&self) -> Arc<NamespaceScope> {
        self.ctx.scope.clone()
    }

    /// True once every source cache is listed (see [`Scheduler::ready`]).
    pub fn ready(&self) -> signal::Receiver<bool> {
        self.scheduler.ready()
    }

    /// Queues every workload of `namespace` (it just entered the selector).
    fn enqueue_namespace(&self, namespace: &str) {
        let keys = self.ctx.store.workload_keys_in(namespace);
        self.scheduler.enqueue_all(keys);
    }

    /// Starts every watcher and worker. Returns once `shutdown` is set and the reconciles in
    /// flight have finished; the watchers are dropped then.
    pub async fn run(self: Arc<Self>, shutdown: signal::Receiver<bool>) {
        let mut watchers = tokio::task::JoinSet::new();
        let label_selector = self.watch.resource_label_selector.clone();
        let first_scope = self.watch.scopes.first().cloned().flatten();
        let streaming = watch::streaming_lists_served(self.ctx.client.clone(), first_scope.as_deref()).await;
        // Extra kinds start once discovery finds them served (`extra.rs`).
        let (extra_kinds, builtin_kinds): (Vec<WorkloadKind>, Vec<WorkloadKind>) =
            self.watch.workload_kinds.iter().partition(|k| k.extra().is_some());
        for scope in self.watch.scopes.clone() {
            let scope_label = scope.clone().unwrap_or_else(|| "*".into());
            for kind in self.watch.source_kinds.clone() {
                let span = tracing::info_span!("watch", %kind, scope = %scope_label);
                let mut config = watch::initial_lists(watcher::Config::default(), streaming);
                if let Some(selector) = &label_selector {
                    config = config.labels(selector);
                }
                let engine = self.clone();
                match kind {
                    SourceKind::ConfigMap => {
                        let task = watch::watch_sources::<ConfigMap>(engine, config, kind, scope.clone());
                        watchers.spawn(task.instrument(span));
                    }
                    SourceKind::Secret => {
                        let config = config.fields(watch::SECRET_FIELD_SELECTOR);
                        let task = watch::watch_sources::<Secret>(engine, config, kind, scope.clone());
                        watchers.spawn(task.instrument(span));
                    }
                    SourceKind::SecretProviderClass => {
                        let shared = csi::SharedCsi::default();
                        let classes = csi::watch_classes(engine.clone(), scope.clone(), shared.clone());
                        watchers.spawn(classes.instrument(span.clone()));
                        watchers.spawn(csi::watch_pod_statuses(engine, scope.clone(), shared).instrument(span));
                    }
                }
            }
            for kind in builtin_kinds.iter().copied() {
                let span = tracing::info_span!("watch", %kind, scope = %scope_label);
                watchers.spawn(watch::watch_workloads(self.clone(), kind, scope.clone(), streaming).instrument(span));
            }
        }
        for kind in extra_kinds {
            let span = tracing::info_span!("discover", %kind);
            let task = extra::watch_when_served(self.clone(), kind, self.watch.scopes.clone(), streaming);
            watchers.spawn(task.instrument(span));
        }
        if let Some(selector) = self.watch.namespace_selector.clone() {
            let span = tracing::info_span!("watch", kind = "Namespace", scope = "*");
            watchers.spawn(watch::watch_namespaces(self.clone(), selector).instrument(span));
        }
        // Namespaces' reload windows: read cluster-wide only (a namespaced install may not
        // read Namespaces; its workloads and `--reload-window` still name windows).
        if self.watch.scopes.contains(&None) {
            let span = tracing::info_span!("watch", kind = "Namespace", scope = "*", what = "reload-window");
            watchers.spawn(watch::watch_namespace_windows(self.clone()).instrument(span));
        }
        self.scheduler.clone().run(self.ctx.clone(), shutdown).await;
        watchers.abort_all();
        self.ctx.outbound.events.settled(EVENTS_AT_SHUTDOWN).await;
    }
}
