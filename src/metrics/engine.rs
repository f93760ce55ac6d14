//! What the engine records: watch events, reconciles and their outcomes (ours and Stakater's),
//! reloads, the work queue, leadership, alerts and annotation problems.

use super::{
    ActionLabels, ActionResult, AlertLabels, AlertResult, AnnotationProblem, AnnotationProblemLabels, ErrorType,
    EventLabels, EvictionResult, HeldLabels, Kind, KindLabels, Metrics, ObjectKind, Outcome, OutcomeLabels,
    PodRestartLabels, ProcessedLabels, ProcessedResult, ReconcileResult, ResourceLabels, ResourceType, ResultLabels,
    ScanLabels, SkipLabels, SkipReason, SuccessLabels, SuccessNamespaceLabels, WatchEvent,
};
use crate::core::annotation_rules::Subject;
use crate::core::source::SourceKind;
use crate::core::workload::WorkloadKind;

impl Metrics {
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

    /// An annotation problem reported on an object.
    pub fn annotation_problem(&self, kind: Subject, problem: AnnotationProblem) {
        self.annotation_problems
            .get_or_create(&AnnotationProblemLabels {
                kind: ObjectKind(kind),
                problem,
            })
            .inc();
    }

    /// An eviction of a pod restart.
    pub fn pod_restart(&self, kind: WorkloadKind, result: EvictionResult) {
        self.pod_restarts
            .get_or_create(&PodRestartLabels {
                workload_kind: Kind(kind),
                result,
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
}
