//! Prometheus metrics, with Stakater Reloader's names and labels where they exist (§4.2) so
//! existing dashboards and alerts keep working, plus reload latency and our own reconcile
//! outcomes.
//!
//! Every label set is a type and every closed label value an enum declared here with its
//! spelling, so an outcome or a skip reason exists in exactly one place (the docs are tested
//! against [`Outcome::ALL`]).

use std::fmt::Write as _;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::core::annotation_rules::Subject;
use crate::core::source::SourceKind;
use crate::core::workload::WorkloadKind;

/// Declares a closed set of label values: each variant's spelling is written once, `ALL` lists
/// them (to pre-initialise series and to check the docs).
macro_rules! label_values {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident => $label:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant,)+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $label,)+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl EncodeLabelValue for $name {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                encoder.write_str(self.as_str())
            }
        }
    };
}

label_values! {
    /// What one reconcile of a workload ended in (`reloader_reconciles_total{outcome}`).
    pub enum Outcome {
        /// The workload already carries every current hash: nothing written.
        UpToDate => "up_to_date",
        /// Hashes recorded on the metadata without a rollout (a workload seen for the first time).
        Acknowledged => "acknowledged",
        /// The pod template was patched: the pods roll.
        Rolled => "rolled",
        /// A Job re-created or an Argo Rollout restarted.
        Restarted => "restarted",
        /// A pause period ended: the Deployment was resumed.
        Resumed => "resumed",
        /// `--webhook-url`: announced instead of rolling.
        Notified => "notified",
        /// The workload no longer exists.
        Gone => "gone",
        /// Leadership was lost before writing; the new leader reconciles it.
        NotLeader => "not_leader",
        /// Over the reload rate limit: back in the queue until its reserved slot.
        Paced => "paced",
        /// Being deleted: nothing to reload.
        Deleting => "deleting",
        /// A change waits for the workload's reload window or its wave.
        Held => "held",
        /// Not ours to touch (namespace ignored or not selected).
        Excluded => "excluded",
        /// The object cannot be read as a workload (no pod template, invalid pod spec).
        Invalid => "invalid",
        /// The reconcile failed and is retried with backoff.
        Error => "error",
    }
}

label_values! {
    /// Why changes wait (`reloader_held_workloads{reason}`).
    pub enum HeldReason {
        /// Outside the workload's reload window.
        Window => "window",
        /// Its wave has not started yet.
        Wave => "wave",
        /// An earlier wave failed.
        Halted => "halted",
    }
}

impl From<crate::core::hold::HoldReason> for HeldReason {
    fn from(reason: crate::core::hold::HoldReason) -> Self {
        use crate::core::hold::HoldReason as R;
        match reason {
            R::Window => HeldReason::Window,
            R::Wave => HeldReason::Wave,
            R::Halted => HeldReason::Halted,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct HeldLabels {
    pub reason: HeldReason,
}

label_values! {
    /// Stakater's `reloader_skipped_total{reason}` values that we produce.
    pub enum SkipReason {
        NoDataChange => "no_data_change",
        IgnoredOrNotSelected => "ignored_or_not_selected",
    }
}

label_values! {
    /// Stakater's `reloader_action_total{result}`.
    pub enum ActionResult {
        Success => "success",
        Error => "error",
    }
}

label_values! {
    /// Stakater's `reloader_events_received_total{event_type}`.
    pub enum WatchEvent {
        Add => "add",
        Update => "update",
        Delete => "delete",
    }
}

label_values! {
    /// `reloader_alerts_total{result}`.
    pub enum AlertResult {
        Sent => "sent",
        Failed => "failed",
        Dropped => "dropped",
    }
}

label_values! {
    /// Stakater's `reloader_reconcile_total{result}`: wrote something, wrote nothing, failed.
    pub enum ReconcileResult {
        Success => "success",
        Error => "error",
        Skipped => "skipped",
    }
}

label_values! {
    /// Stakater's `reloader_errors_total{type}`.
    pub enum ErrorType {
        HandlerError => "handler_error",
    }
}

label_values! {
    /// Stakater's `reloader_events_processed_total{result}`.
    pub enum ProcessedResult {
        Success => "success",
        Dropped => "dropped",
    }
}

impl Outcome {
    /// Stakater's reconcile result: a write is a success, no write is skipped.
    pub fn result(self) -> ReconcileResult {
        match self {
            Outcome::Acknowledged | Outcome::Rolled | Outcome::Restarted | Outcome::Resumed | Outcome::Notified => {
                ReconcileResult::Success
            }
            Outcome::Error => ReconcileResult::Error,
            _ => ReconcileResult::Skipped,
        }
    }

    /// Whether a changed source matched the workload (Stakater's `workloads_matched_total`).
    pub fn matched(self) -> bool {
        matches!(self, Outcome::Rolled | Outcome::Restarted | Outcome::Notified)
    }
}

label_values! {
    /// Which admission webhook answered.
    pub enum Webhook {
        Mutate => "mutate",
        Validate => "validate",
    }
}

label_values! {
    /// How an admission review was answered.
    pub enum AdmissionResult {
        Malformed => "malformed",
        /// Not answered: busy (503), a body over the limit (413), too slow (408), unreadable.
        Rejected => "rejected",
        Denied => "denied",
        Mutated => "mutated",
        Allowed => "allowed",
    }
}

label_values! {
    /// Why the webhook did not make an API lookup of a source missing from its cache
    /// (`reloader_admission_lookups_refused_total{reason}`): the budget all reviews share.
    pub enum LookupRefusal {
        /// As many lookups in progress as allowed at once.
        Concurrency => "concurrency",
        /// The rate's token bucket is empty.
        Rate => "rate",
    }
}

label_values! {
    /// What is wrong with an annotation the engine found on an object
    /// (`reloader_annotation_problems_total{kind,problem}`), as the validating webhook judges it.
    pub enum AnnotationProblem {
        /// An unknown key or an invalid value: the webhook denies it; the engine skips it.
        Invalid => "invalid",
        /// A valid key where the reloader never reads it: the webhook warns about it.
        Ineffective => "ineffective",
    }
}

/// The kind of object an annotation problem is on (`Deployment`, `ConfigMap`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ObjectKind(pub Subject);

impl EncodeLabelValue for ObjectKind {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        write!(encoder, "{}", self.0)
    }
}

/// A source kind as Stakater names the watched resource (`configmaps`, `secrets`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ResourceType(pub SourceKind);

impl EncodeLabelValue for ResourceType {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(match self.0 {
            SourceKind::ConfigMap => "configmaps",
            SourceKind::Secret => "secrets",
            SourceKind::SecretProviderClass => "secretproviderclasspodstatuses",
        })
    }
}

/// A workload kind as Stakater spells it in `workload_kind` (`Deployment`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Kind(pub WorkloadKind);

impl EncodeLabelValue for Kind {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        write!(encoder, "{}", self.0)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct SuccessLabels {
    pub success: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct SuccessNamespaceLabels {
    pub success: bool,
    pub namespace: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ActionLabels {
    pub workload_kind: Kind,
    pub result: ActionResult,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct KindLabels {
    pub workload_kind: Kind,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct EventLabels {
    pub event_type: WatchEvent,
    pub resource_type: ResourceType,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ResourceLabels {
    pub resource_type: ResourceType,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct SkipLabels {
    pub reason: SkipReason,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: Outcome,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct AlertLabels {
    pub result: AlertResult,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct AdmissionLabels {
    pub webhook: Webhook,
    /// `CREATE`, `UPDATE`, …; empty for a review that could not be read.
    pub operation: &'static str,
    /// A kind we serve, or `other`: never the caller's string.
    pub kind: &'static str,
    pub result: AdmissionResult,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct LookupRefusalLabels {
    pub reason: LookupRefusal,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct AnnotationProblemLabels {
    pub kind: ObjectKind,
    pub problem: AnnotationProblem,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct WebhookLabels {
    pub webhook: Webhook,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: ReconcileResult,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ProcessedLabels {
    /// Always `unknown`, as Stakater's.
    pub event_type: &'static str,
    pub resource_type: ResourceType,
    pub result: ProcessedResult,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ScanLabels {
    pub kind: Kind,
}

/// `type` is a Rust keyword: the one label set spelled as a pair.
pub type ErrorLabels = [(&'static str, ErrorType); 1];

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RestRequestLabels {
    pub code: String,
    pub method: String,
    pub host: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RestDurationLabels {
    pub verb: String,
    pub host: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// 50 µs .. ~1.6 s: answering a review is a memory lookup.
fn admission_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.00005, 2.0, 16))
}

fn histogram() -> Histogram {
    // 5 ms .. ~82 s
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

/// 1 ms .. ~8 s, Stakater's range for reconciles and API requests.
fn fast_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 14))
}

pub struct Metrics {
    registry: Registry,
    /// `reloader_reload_executed_total{success}` (Stakater).
    reload_executed: Family<SuccessLabels, Counter>,
    /// `reloader_reload_executed_total_by_namespace{success,namespace}` (Stakater, opt-in). A
    /// gauge that only goes up: registered as a counter, the client library would append a
    /// second `_total` and break the name Stakater dashboards query.
    reload_executed_by_namespace: Option<Family<SuccessNamespaceLabels, Gauge>>,
    /// `reloader_action_total{workload_kind,result}` (Stakater).
    action: Family<ActionLabels, Counter>,
    /// `reloader_action_latency_seconds{workload_kind}`: from the first source event that queued
    /// the workload to the completed write.
    action_latency: HistogramFamily<KindLabels>,
    /// `reloader_events_received_total{event_type,resource_type}` (Stakater).
    events_received: Family<EventLabels, Counter>,
    /// `reloader_skipped_total{reason}` (Stakater).
    skipped: Family<SkipLabels, Counter>,
    /// `reloader_workqueue_depth` (Stakater).
    workqueue_depth: Gauge,
    /// `reloader_leader`: 1 while this replica leads (writes), 0 on a standby.
    leader: Gauge,
    /// `reloader_held_workloads{reason}`: workloads with a change held now.
    held_workloads: Family<HeldLabels, Gauge>,
    /// `reloader_reconciles_total{outcome}`.
    reconciles: Family<OutcomeLabels, Counter>,
    /// `reloader_watch_errors_total{resource_type}`.
    watch_errors: Family<ResourceLabels, Counter>,
    /// `reloader_alerts_total{result}`.
    alerts: Family<AlertLabels, Counter>,
    /// `reloader_admission_requests_total{webhook,operation,kind,result}`.
    admission_requests: Family<AdmissionLabels, Counter>,
    /// `reloader_admission_duration_seconds{webhook}`.
    admission_duration: HistogramFamily<WebhookLabels>,
    /// `reloader_admission_lookups_refused_total{reason}`: API lookups over the budget.
    admission_lookups_refused: Family<LookupRefusalLabels, Counter>,
    /// Stakater's `reloader_reconcile_total{result}` and `…_duration_seconds{result}`.
    reconcile: Family<ResultLabels, Counter>,
    reconcile_duration: HistogramFamily<ResultLabels>,
    /// Stakater's `reloader_workqueue_adds_total` and `reloader_workqueue_latency_seconds`.
    workqueue_adds: Counter,
    workqueue_latency: Histogram,
    /// Stakater's `reloader_errors_total{type}` and `reloader_retries_total`.
    errors: Family<ErrorLabels, Counter>,
    retries: Counter,
    /// Stakater's `reloader_events_processed_total{event_type,resource_type,result}`.
    events_processed: Family<ProcessedLabels, Counter>,
    /// Stakater's `reloader_workloads_scanned_total{kind}` / `…_matched_total{kind}`.
    workloads_scanned: Family<ScanLabels, Counter>,
    workloads_matched: Family<ScanLabels, Counter>,
    /// client-go's `rest_client_requests_total{code,method,host}` and
    /// `rest_client_request_duration_seconds{verb,host}` (no prefix), as Stakater exposes them.
    rest_requests: Family<RestRequestLabels, Counter>,
    rest_duration: HistogramFamily<RestDurationLabels>,
    process: ProcessMetrics,
    /// `reloader_annotation_problems_total{kind,problem}`: problems reported on objects, each
    /// once.
    annotation_problems: Family<AnnotationProblemLabels, Counter>,
}

/// The standard `process_*` metrics, read from `/proc/self` when rendered (Linux; elsewhere
/// they stay 0).
struct ProcessMetrics {
    resident: Gauge,
    virtual_memory: Gauge,
    cpu: Counter<f64, std::sync::atomic::AtomicU64>,
    open_fds: Gauge,
    start_time: Gauge,
}

impl ProcessMetrics {
    fn register(registry: &mut Registry) -> Self {
        let m = Self {
            resident: Gauge::default(),
            virtual_memory: Gauge::default(),
            cpu: Counter::default(),
            open_fds: Gauge::default(),
            start_time: Gauge::default(),
        };
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            m.resident.clone(),
        );
        registry.register(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            m.virtual_memory.clone(),
        );
        registry.register(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            m.cpu.clone(),
        );
        registry.register(
            "process_open_fds",
            "Number of open file descriptors",
            m.open_fds.clone(),
        );
        registry.register(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds",
            m.start_time.clone(),
        );
        m
    }

    /// Linux's clock ticks per second and page size, as every mainstream kernel configures them.
    const TICKS: f64 = 100.0;
    const PAGE: i64 = 4096;

    fn refresh(&self) {
        let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
            return;
        };
        // Fields after the command name (which may hold spaces) start after the last ')'.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let field = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
        // man proc(5): utime 14, stime 15, starttime 22, vsize 23, rss 24 (1-based, from pid);
        // here 0-based from the state field (3).
        let cpu = (field(11) + field(12)) / Self::TICKS;
        let before = self.cpu.get();
        if cpu > before {
            self.cpu.inc_by(cpu - before);
        }
        self.virtual_memory.set(field(20) as i64);
        self.resident.set(field(21) as i64 * Self::PAGE);
        if let Some(boot) = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse::<f64>().ok()))
        }) {
            self.start_time.set((boot + field(19) / Self::TICKS) as i64);
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds.set(fds.count() as i64);
        }
    }
}

impl Metrics {
    pub fn new(by_namespace: bool) -> Self {
        let mut root = Registry::default();
        let rest_requests = Family::<RestRequestLabels, Counter>::default();
        root.register(
            "rest_client_requests",
            "Number of HTTP requests to the API server, by status code, method and host",
            rest_requests.clone(),
        );
        let rest_duration = HistogramFamily::new_with_constructor(fast_histogram as fn() -> Histogram);
        root.register(
            "rest_client_request_duration_seconds",
            "Request latency to the API server, by verb and host",
            rest_duration.clone(),
        );
        let process = ProcessMetrics::register(&mut root);
        let registry = root.sub_registry_with_prefix("reloader");
        let reload_executed = Family::<SuccessLabels, Counter>::default();
        registry.register(
            "reload_executed",
            "Reloads executed, by success",
            reload_executed.clone(),
        );
        // Stakater pre-initialises both label values.
        for success in [true, false] {
            let _ = reload_executed.get_or_create(&SuccessLabels { success });
        }
        let reload_executed_by_namespace = by_namespace.then(|| {
            let family = Family::<SuccessNamespaceLabels, Gauge>::default();
            registry.register(
                "reload_executed_total_by_namespace",
                "Reloads executed, by success and namespace",
                family.clone(),
            );
            family
        });
        let action = Family::default();
        registry.register("action", "Workload actions, by kind and result", action.clone());
        let action_latency = HistogramFamily::new_with_constructor(histogram as fn() -> Histogram);
        registry.register(
            "action_latency_seconds",
            "Seconds from the source change to the completed reload",
            action_latency.clone(),
        );
        let events_received = Family::default();
        registry.register(
            "events_received",
            "Watch events received, by event and resource type",
            events_received.clone(),
        );
        let skipped = Family::default();
        registry.register("skipped", "Reconciles that wrote nothing, by reason", skipped.clone());
        let workqueue_depth = Gauge::default();
        registry.register(
            "workqueue_depth",
            "Workloads waiting to be reconciled",
            workqueue_depth.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica leads and writes, 0 on a standby",
            leader.clone(),
        );
        let held_workloads = Family::<HeldLabels, Gauge>::default();
        for reason in crate::core::hold::HoldReason::ALL {
            drop(held_workloads.get_or_create(&HeldLabels { reason: reason.into() }));
        }
        registry.register(
            "held_workloads",
            "Workloads with a change waiting for their reload window or wave, by reason",
            held_workloads.clone(),
        );
        let reconciles = Family::default();
        registry.register("reconciles", "Workload reconciles, by outcome", reconciles.clone());
        let watch_errors = Family::default();
        registry.register(
            "watch_errors",
            "Watch stream errors, by resource type",
            watch_errors.clone(),
        );
        let alerts = Family::default();
        registry.register("alerts", "Reload alerts sent, by result", alerts.clone());
        let admission_requests = Family::default();
        registry.register(
            "admission_requests",
            "Admission reviews answered, by webhook, operation, kind and result",
            admission_requests.clone(),
        );
        let admission_duration = HistogramFamily::new_with_constructor(admission_histogram as fn() -> Histogram);
        registry.register(
            "admission_duration_seconds",
            "Seconds spent answering an admission review",
            admission_duration.clone(),
        );
        let admission_lookups_refused = Family::<LookupRefusalLabels, Counter>::default();
        registry.register(
            "admission_lookups_refused",
            "API lookups of sources missing from the cache that the webhook's budget refused, by reason",
            admission_lookups_refused.clone(),
        );
        for &reason in LookupRefusal::ALL {
            let _ = admission_lookups_refused.get_or_create(&LookupRefusalLabels { reason });
        }
        let reconcile = Family::default();
        registry.register("reconcile", "Reconciles, by result", reconcile.clone());
        let reconcile_duration = HistogramFamily::new_with_constructor(fast_histogram as fn() -> Histogram);
        registry.register(
            "reconcile_duration_seconds",
            "Seconds one reconcile took, by result",
            reconcile_duration.clone(),
        );
        let workqueue_adds = Counter::default();
        registry.register(
            "workqueue_adds",
            "Workloads added to the work queue",
            workqueue_adds.clone(),
        );
        let workqueue_latency = fast_histogram();
        registry.register(
            "workqueue_latency_seconds",
            "Seconds a workload waited in the queue (the coalescing window included)",
            workqueue_latency.clone(),
        );
        let errors = Family::default();
        registry.register("errors", "Reconcile errors, by type", errors.clone());
        let retries = Counter::default();
        registry.register("retries", "Reconciles retried after an error", retries.clone());
        let events_processed = Family::default();
        registry.register(
            "events_processed",
            "Watch events processed, by resource type and result",
            events_processed.clone(),
        );
        let workloads_scanned = Family::default();
        registry.register(
            "workloads_scanned",
            "Workloads evaluated, by kind",
            workloads_scanned.clone(),
        );
        let workloads_matched = Family::default();
        registry.register(
            "workloads_matched",
            "Workloads a source change applied to, by kind",
            workloads_matched.clone(),
        );
        let annotation_problems = Family::default();
        registry.register(
            "annotation_problems",
            "Annotation problems reported on objects (once each), by kind and problem",
            annotation_problems.clone(),
        );
        Self {
            registry: root,
            reconcile,
            reconcile_duration,
            workqueue_adds,
            workqueue_latency,
            errors,
            retries,
            events_processed,
            workloads_scanned,
            workloads_matched,
            rest_requests,
            rest_duration,
            process,
            reload_executed,
            reload_executed_by_namespace,
            action,
            action_latency,
            events_received,
            skipped,
            workqueue_depth,
            leader,
            held_workloads,
            reconciles,
            watch_errors,
            alerts,
            admission_requests,
            admission_duration,
            admission_lookups_refused,
            annotation_problems,
        }
    }

    /// A watch event on a source.
    pub fn event(&self, kind: SourceKind, event_type: WatchEvent) {
        self.events_received
            .get_or_create(&EventLabels {
                event_type,
                resource_type: ResourceType(kind),
            })
            .inc();
    }

    pub fn watch_error(&self, kind: SourceKind) {
        self.watch_errors
            .get_or_create(&ResourceLabels {
                resource_type: ResourceType(kind),
            })
            .inc();
    }

    /// A reload written (or refused by the API server).
    pub fn reload(&self, namespace: &str, kind: WorkloadKind, success: bool) {
        self.reload_executed.get_or_create(&SuccessLabels { success }).inc();
        if let Some(by_ns) = &self.reload_executed_by_namespace {
            by_ns
                .get_or_create(&SuccessNamespaceLabels {
                    success,
                    namespace: namespace.into(),
                })
                .inc();
        }
        let result = if success {
            ActionResult::Success
        } else {
            ActionResult::Error
        };
        self.action
            .get_or_create(&ActionLabels {
                workload_kind: Kind(kind),
                result,
            })
            .inc();
    }

    /// Seconds from the first event that queued a workload to its completed reload.
    pub fn reload_latency(&self, kind: WorkloadKind, seconds: f64) {
        self.action_latency
            .get_or_create(&KindLabels {
                workload_kind: Kind(kind),
            })
            .observe(seconds);
    }

    pub fn admission(&self, labels: AdmissionLabels, took: std::time::Duration) {
        self.admission_duration
            .get_or_create(&WebhookLabels {
                webhook: labels.webhook,
            })
            .observe(took.as_secs_f64());
        self.admission_requests.get_or_create(&labels).inc();
    }

    /// An API lookup the webhook's budget refused.
    pub fn lookup_refused(&self, reason: LookupRefusal) {
        self.admission_lookups_refused
            .get_or_create(&LookupRefusalLabels { reason })
            .inc();
    }

    /// An annotation problem reported on an object.
    pub fn annotation_problem(&self, kind: Subject, problem: AnnotationProblem) {
        self.annotation_problems
            .get_or_create(&AnnotationProblemLabels {
                kind: ObjectKind(kind),
                problem,
            })
            .inc();
    }

    /// A reconcile that wrote nothing, with Stakater's `reason` values.
    pub fn skip(&self, reason: SkipReason) {
        self.skipped.get_or_create(&SkipLabels { reason }).inc();
    }

    pub fn outcome(&self, outcome: Outcome) {
        self.reconciles.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    pub fn alert(&self, result: AlertResult) {
        self.alerts.get_or_create(&AlertLabels { result }).inc();
    }

    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// How many workloads each reason holds now.
    pub fn set_held(&self, counts: &std::collections::BTreeMap<crate::core::hold::HoldReason, usize>) {
        for (reason, count) in counts {
            self.held_workloads
                .get_or_create(&HeldLabels {
                    reason: (*reason).into(),
                })
                .set(i64::try_from(*count).unwrap_or(i64::MAX));
        }
    }

    pub fn workqueue_depth(&self, depth: usize) {
        self.workqueue_depth.set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// One reconcile, Stakater's way: its result, duration, the workload scanned and matched.
    pub fn reconciled(&self, kind: WorkloadKind, outcome: Outcome, took: std::time::Duration) {
        let result = outcome.result();
        self.reconcile.get_or_create(&ResultLabels { result }).inc();
        self.reconcile_duration
            .get_or_create(&ResultLabels { result })
            .observe(took.as_secs_f64());
        self.workloads_scanned
            .get_or_create(&ScanLabels { kind: Kind(kind) })
            .inc();
        if outcome.matched() {
            self.workloads_matched
                .get_or_create(&ScanLabels { kind: Kind(kind) })
                .inc();
        }
        if result == ReconcileResult::Error {
            self.errors.get_or_create(&[("type", ErrorType::HandlerError)]).inc();
        }
    }

    pub fn retried(&self) {
        self.retries.inc();
    }

    pub fn queued(&self) {
        self.workqueue_adds.inc();
    }

    /// Seconds a key waited from its first add to a worker taking it.
    pub fn dequeued(&self, waited: std::time::Duration) {
        self.workqueue_latency.observe(waited.as_secs_f64());
    }

    /// A source watch event applied to the store.
    pub fn processed(&self, kind: SourceKind) {
        self.events_processed
            .get_or_create(&ProcessedLabels {
                event_type: "unknown",
                resource_type: ResourceType(kind),
                result: ProcessedResult::Success,
            })
            .inc();
    }

    /// One request to the API server.
    pub fn rest_request(&self, method: &str, host: &str, code: &str, took: std::time::Duration) {
        self.rest_requests
            .get_or_create(&RestRequestLabels {
                code: code.into(),
                method: method.into(),
                host: host.into(),
            })
            .inc();
        self.rest_duration
            .get_or_create(&RestDurationLabels {
                verb: method.into(),
                host: host.into(),
            })
            .observe(took.as_secs_f64());
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        self.process.refresh();
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// A tower layer for the Kubernetes client that records every request to the API server in
/// client-go's `rest_client_*` metrics (watches: the time to the response headers).
#[derive(Clone)]
pub struct ApiRequestMetrics {
    metrics: std::sync::Arc<Metrics>,
    host: String,
}

impl ApiRequestMetrics {
    pub fn new(metrics: std::sync::Arc<Metrics>, host: String) -> Self {
        Self { metrics, host }
    }
}

impl<S> tower::Layer<S> for ApiRequestMetrics {
    type Service = Measured<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Measured {
            inner,
            metrics: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Measured<S> {
    inner: S,
    metrics: ApiRequestMetrics,
}

impl<S, B, R> tower::Service<hyper::Request<B>> for Measured<S>
where
    S: tower::Service<hyper::Request<B>, Response = hyper::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: hyper::Request<B>) -> Self::Future {
        let method = request.method().as_str().to_string();
        let started = std::time::Instant::now();
        let response = self.inner.call(request);
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let result = response.await;
            let code = match &result {
                Ok(r) => r.status().as_u16().to_string(),
                Err(_) => "<error>".to_string(),
            };
            metrics
                .metrics
                .rest_request(&method, &metrics.host, &code, started.elapsed());
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stakater_names_are_exposed() {
        let m = Metrics::new(true);
        m.reload("ns", WorkloadKind::Deployment, true);
        m.reload_latency(WorkloadKind::Deployment, 0.2);
        m.event(SourceKind::Secret, WatchEvent::Update);
        m.skip(SkipReason::NoDataChange);
        m.outcome(Outcome::NotLeader);
        m.reconciled(
            WorkloadKind::Deployment,
            Outcome::Rolled,
            std::time::Duration::from_millis(3),
        );
        m.reconciled(
            WorkloadKind::Deployment,
            Outcome::Error,
            std::time::Duration::from_millis(3),
        );
        m.retried();
        m.set_leader(true);
        m.queued();
        m.dequeued(std::time::Duration::from_millis(5));
        m.processed(SourceKind::ConfigMap);
        m.rest_request("GET", "127.0.0.1:6443", "200", std::time::Duration::from_millis(2));
        m.annotation_problem(Subject::Workload(WorkloadKind::Deployment), AnnotationProblem::Invalid);
        m.lookup_refused(LookupRefusal::Rate);
        let text = m.render();
        let rss: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0);
        assert!(rss > 1e6, "a real RSS from /proc: {rss}");
        for line in [
            "reloader_reload_executed_total{success=\"true\"} 1",
            "reloader_reload_executed_total{success=\"false\"} 0",
            "reloader_reload_executed_total_by_namespace{success=\"true\",namespace=\"ns\"} 1",
            "reloader_action_total{workload_kind=\"Deployment\",result=\"success\"} 1",
            "reloader_events_received_total{event_type=\"update\",resource_type=\"secrets\"} 1",
            "reloader_action_latency_seconds_count{workload_kind=\"Deployment\"} 1",
            "reloader_skipped_total{reason=\"no_data_change\"} 1",
            "reloader_reconciles_total{outcome=\"not_leader\"} 1",
            "reloader_reconcile_total{result=\"success\"} 1",
            "reloader_reconcile_duration_seconds_count{result=\"success\"} 1",
            "reloader_workloads_scanned_total{kind=\"Deployment\"} 2",
            "reloader_reconcile_total{result=\"error\"} 1",
            "reloader_workloads_matched_total{kind=\"Deployment\"} 1",
            "reloader_errors_total{type=\"handler_error\"} 1",
            "reloader_retries_total 1",
            "reloader_leader 1",
            "reloader_workqueue_adds_total 1",
            "reloader_workqueue_latency_seconds_count 1",
            "reloader_events_processed_total{event_type=\"unknown\",resource_type=\"configmaps\",result=\"success\"} 1",
            "rest_client_requests_total{code=\"200\",method=\"GET\",host=\"127.0.0.1:6443\"} 1",
            "rest_client_request_duration_seconds_count{verb=\"GET\",host=\"127.0.0.1:6443\"} 1",
            "process_resident_memory_bytes ",
            "process_cpu_seconds_total ",
            "reloader_annotation_problems_total{kind=\"Deployment\",problem=\"invalid\"} 1",
            "reloader_admission_lookups_refused_total{reason=\"rate\"} 1",
            "reloader_admission_lookups_refused_total{reason=\"concurrency\"} 0",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }

    /// docs/engine.md lists the outcomes; it must list exactly these, in this order.
    #[test]
    fn the_docs_list_every_outcome() {
        let docs = include_str!("../docs/engine.md");
        let start = docs
            .find("`reloader_reconciles_total{outcome}` (")
            .expect("docs/engine.md documents reloader_reconciles_total");
        let rest = &docs[start..];
        let open = rest.find('(').unwrap_or(0) + 1;
        let close = rest.find(')').unwrap_or(open);
        let listed: Vec<String> = rest[open..close]
            .split(',')
            .map(|s| s.split_whitespace().collect::<String>().trim_matches('`').to_string())
            .collect();
        let expected: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(listed, expected);
        for reason in SkipReason::ALL {
            assert!(
                docs.contains(reason.as_str()),
                "docs/engine.md misses skip reason {reason}"
            );
        }
    }
}
