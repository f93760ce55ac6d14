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
        /// Being deleted: nothing to reload.
        Deleting => "deleting",
        /// Not ours to touch (namespace ignored or not selected).
        Excluded => "excluded",
        /// The object cannot be read as a workload (no pod template, invalid pod spec).
        Invalid => "invalid",
        /// The reconcile failed and is retried with backoff.
        Error => "error",
    }
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
pub struct WebhookLabels {
    pub webhook: Webhook,
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
}

impl Metrics {
    pub fn new(by_namespace: bool) -> Self {
        let mut registry = Registry::with_prefix("reloader");
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
        Self {
            registry,
            reload_executed,
            reload_executed_by_namespace,
            action,
            action_latency,
            events_received,
            skipped,
            workqueue_depth,
            reconciles,
            watch_errors,
            alerts,
            admission_requests,
            admission_duration,
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

    pub fn workqueue_depth(&self, depth: usize) {
        self.workqueue_depth.set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
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
        let text = m.render();
        for line in [
            "reloader_reload_executed_total{success=\"true\"} 1",
            "reloader_reload_executed_total{success=\"false\"} 0",
            "reloader_reload_executed_total_by_namespace{success=\"true\",namespace=\"ns\"} 1",
            "reloader_action_total{workload_kind=\"Deployment\",result=\"success\"} 1",
            "reloader_events_received_total{event_type=\"update\",resource_type=\"secrets\"} 1",
            "reloader_action_latency_seconds_count{workload_kind=\"Deployment\"} 1",
            "reloader_skipped_total{reason=\"no_data_change\"} 1",
            "reloader_reconciles_total{outcome=\"not_leader\"} 1",
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
