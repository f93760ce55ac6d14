//! Prometheus metrics, with Stakater Reloader's names and labels where they exist (§4.2) so
//! existing dashboards and alerts keep working, plus reload latency and our own reconcile
//! outcomes.
//!
//! Every label set is a type and every closed label value an enum declared with its
//! spelling, so an outcome or a skip reason exists in exactly one place (the docs are tested
//! against [`Outcome::ALL`]).
//!
//! - [`Metrics`] (here): every metric, each a family of the one registry;
//! - `values.rs`, `labels.rs`: every closed label value and every label set;
//! - `registry.rs`: the families registered with their names, help and buckets; the exposition;
//! - `engine.rs`, `admission.rs`, `api_requests.rs`: what the engine, the webhook and the
//!   Kubernetes client record; `process.rs`: the `process_*` metrics.

mod admission;
mod api_requests;
mod engine;
mod labels;
mod process;
mod registry;
mod values;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub use api_requests::{ApiRequestMetrics, Measured};
pub use labels::*;
use process::ProcessMetrics;
pub use values::*;

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

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
    /// `reloader_pod_restarts_total{workload_kind,result}`: evictions of pod restarts.
    pod_restarts: Family<PodRestartLabels, Counter>,
}
