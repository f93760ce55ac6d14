//! Prometheus metrics, with Stakater Reloader's names and labels where they exist (§4.2) so
//! existing dashboards and alerts keep working, plus reload latency and our own reconcile
//! outcomes.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::core::source::SourceKind;

pub type Labels = Vec<(&'static str, String)>;

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
    pub reload_executed: Family<Labels, Counter>,
    /// `reloader_reload_executed_total_by_namespace{success,namespace}` (Stakater, opt-in). A
    /// gauge that only goes up: registered as a counter, the client library would append a
    /// second `_total` and break the name Stakater dashboards query.
    pub reload_executed_by_namespace: Option<Family<Labels, Gauge>>,
    /// `reloader_action_total{workload_kind,result}` (Stakater).
    pub action: Family<Labels, Counter>,
    /// `reloader_action_latency_seconds{workload_kind}`: from the first source event that queued
    /// the workload to the completed write.
    pub action_latency: Family<Labels, Histogram, fn() -> Histogram>,
    /// `reloader_events_received_total{event_type,resource_type}` (Stakater).
    pub events_received: Family<Labels, Counter>,
    /// `reloader_skipped_total{reason}` (Stakater).
    pub skipped: Family<Labels, Counter>,
    /// `reloader_workqueue_depth` (Stakater).
    pub workqueue_depth: Gauge,
    /// `reloader_reconciles_total{outcome}`: up_to_date, acknowledged, rolled, restarted, gone,
    /// error, not_leader.
    pub reconciles: Family<Labels, Counter>,
    /// `reloader_watch_errors_total{resource_type}`.
    pub watch_errors: Family<Labels, Counter>,
    /// `reloader_alerts_total{result}`.
    pub alerts: Family<Labels, Counter>,
    /// `reloader_admission_requests_total{webhook,operation,kind,result}`.
    pub admission_requests: Family<Labels, Counter>,
    /// `reloader_admission_duration_seconds{webhook}`.
    pub admission_duration: Family<Labels, Histogram, fn() -> Histogram>,
}

impl Metrics {
    pub fn new(by_namespace: bool) -> Self {
        let mut registry = Registry::with_prefix("reloader");
        let reload_executed = Family::<Labels, Counter>::default();
        registry.register(
            "reload_executed",
            "Reloads executed, by success",
            reload_executed.clone(),
        );
        // Stakater pre-initialises both label values.
        for success in ["true", "false"] {
            let _ = reload_executed.get_or_create(&vec![("success", success.to_string())]);
        }
        let reload_executed_by_namespace = by_namespace.then(|| {
            let family = Family::<Labels, Gauge>::default();
            registry.register(
                "reload_executed_total_by_namespace",
                "Reloads executed, by success and namespace",
                family.clone(),
            );
            family
        });
        let action = Family::<Labels, Counter>::default();
        registry.register("action", "Workload actions, by kind and result", action.clone());
        let action_latency = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(histogram);
        registry.register(
            "action_latency_seconds",
            "Seconds from the source change to the completed reload",
            action_latency.clone(),
        );
        let events_received = Family::<Labels, Counter>::default();
        registry.register(
            "events_received",
            "Watch events received, by event and resource type",
            events_received.clone(),
        );
        let skipped = Family::<Labels, Counter>::default();
        registry.register("skipped", "Reconciles that wrote nothing, by reason", skipped.clone());
        let workqueue_depth = Gauge::default();
        registry.register(
            "workqueue_depth",
            "Workloads waiting to be reconciled",
            workqueue_depth.clone(),
        );
        let reconciles = Family::<Labels, Counter>::default();
        registry.register("reconciles", "Workload reconciles, by outcome", reconciles.clone());
        let watch_errors = Family::<Labels, Counter>::default();
        registry.register(
            "watch_errors",
            "Watch stream errors, by resource type",
            watch_errors.clone(),
        );
        let alerts = Family::<Labels, Counter>::default();
        registry.register("alerts", "Reload alerts sent, by result", alerts.clone());
        let admission_requests = Family::<Labels, Counter>::default();
        registry.register(
            "admission_requests",
            "Admission reviews answered, by webhook, operation, kind and result",
            admission_requests.clone(),
        );
        let admission_duration =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(admission_histogram);
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

    pub fn event(&self, kind: SourceKind, event_type: &str) {
        let resource = match kind {
            SourceKind::ConfigMap => "configmaps",
            SourceKind::Secret => "secrets",
            SourceKind::SecretProviderClass => "secretproviderclasspodstatuses",
        };
        self.events_received
            .get_or_create(&vec![
                ("event_type", event_type.into()),
                ("resource_type", resource.into()),
            ])
            .inc();
    }

    pub fn reload(&self, namespace: &str, kind: &str, success: bool, seconds: Option<f64>) {
        let success_label = success.to_string();
        self.reload_executed
            .get_or_create(&vec![("success", success_label.clone())])
            .inc();
        if let Some(by_ns) = &self.reload_executed_by_namespace {
            by_ns
                .get_or_create(&vec![("success", success_label), ("namespace", namespace.into())])
                .inc();
        }
        let result = if success { "success" } else { "error" };
        self.action
            .get_or_create(&vec![("workload_kind", kind.into()), ("result", result.into())])
            .inc();
        if let Some(seconds) = seconds {
            self.action_latency
                .get_or_create(&vec![("workload_kind", kind.into())])
                .observe(seconds);
        }
    }

    pub fn admission(&self, webhook: &str, operation: &str, kind: &str, result: &str, took: std::time::Duration) {
        self.admission_requests
            .get_or_create(&vec![
                ("webhook", webhook.into()),
                ("operation", operation.into()),
                ("kind", kind.into()),
                ("result", result.into()),
            ])
            .inc();
        self.admission_duration
            .get_or_create(&vec![("webhook", webhook.into())])
            .observe(took.as_secs_f64());
    }

    /// A reconcile that wrote nothing, with Stakater's `reason` values.
    pub fn skip(&self, reason: &str) {
        self.skipped.get_or_create(&vec![("reason", reason.into())]).inc();
    }

    pub fn outcome(&self, outcome: &str) {
        self.reconciles.get_or_create(&vec![("outcome", outcome.into())]).inc();
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
        m.reload("ns", "Deployment", true, Some(0.2));
        m.event(SourceKind::Secret, "update");
        let text = m.render();
        for line in [
            "reloader_reload_executed_total{success=\"true\"} 1",
            "reloader_reload_executed_total{success=\"false\"} 0",
            "reloader_reload_executed_total_by_namespace{success=\"true\",namespace=\"ns\"} 1",
            "reloader_action_total{workload_kind=\"Deployment\",result=\"success\"} 1",
            "reloader_events_received_total{event_type=\"update\",resource_type=\"secrets\"} 1",
            "reloader_action_latency_seconds_count{workload_kind=\"Deployment\"} 1",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
