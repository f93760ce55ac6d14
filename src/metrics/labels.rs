//! Every label set, a type: the labels a family's series carry.

use prometheus_client::encoding::EncodeLabelSet;

use super::values::{
    ActionResult, AdmissionResult, AlertResult, AnnotationProblem, ErrorType, EvictionResult, HeldReason, Kind,
    LookupRefusal, ObjectKind, Outcome, ProcessedResult, ReconcileResult, ResourceType, SkipReason, WatchEvent,
    Webhook,
};

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct HeldLabels {
    pub reason: HeldReason,
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
pub struct PodRestartLabels {
    pub workload_kind: Kind,
    pub result: EvictionResult,
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
