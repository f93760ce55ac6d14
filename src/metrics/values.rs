//! Every closed label value: an enum with each value's spelling written once (`ALL` lists them,
//! to pre-initialise series and to check the docs); and the kinds as Stakater spells them.

use std::fmt::Write as _;

use prometheus_client::encoding::{EncodeLabelValue, LabelValueEncoder};

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
    /// How an eviction of a pod restart ended (`reloader_pod_restarts_total{workload_kind,result}`).
    pub enum EvictionResult {
        /// The pod was evicted.
        Evicted => "evicted",
        /// A PodDisruptionBudget refused (429): the restart waits and asks again.
        Refused => "refused",
        /// The API server failed the eviction otherwise.
        Error => "error",
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

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/engine.md lists the outcomes; it must list exactly these, in this order.
    #[test]
    fn the_docs_list_every_outcome() {
        let docs = include_str!("../../docs/engine.md");
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
