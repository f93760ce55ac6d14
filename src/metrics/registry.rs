//! The registry: every family registered with its name (Stakater's where it has one), help
//! and buckets, the series pre-initialised as Stakater does; and the text exposition.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::process::ProcessMetrics;
use super::{
    HeldLabels, HistogramFamily, LookupRefusal, LookupRefusalLabels, Metrics, RestRequestLabels, SuccessLabels,
    SuccessNamespaceLabels,
};

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
        let pod_restarts = Family::default();
        registry.register(
            "pod_restarts",
            "Evictions of pods restarted for a reload (OnDelete workloads, rollout-strategy restart), by kind and result",
            pod_restarts.clone(),
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
            pod_restarts,
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::annotation_rules::Subject;
    use crate::core::source::SourceKind;
    use crate::core::workload::WorkloadKind;
    use crate::metrics::{AnnotationProblem, LookupRefusal, Outcome, SkipReason, WatchEvent};

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
}
