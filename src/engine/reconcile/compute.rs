//! The compute phase: from the store alone (no API call), the workload's dependencies, its
//! index entry, and the plan that brings it up to date.

use std::sync::Arc;

use serde_json::Value;

use super::Reconciled;
use crate::core::decision::WorkloadPolicy;
use crate::core::pause::apply_pause;
use crate::core::plan::{Action, Plan, PlanError, Stamping, plan};
use crate::core::workload::Workload;
use crate::engine::context::Context;
use crate::metrics::{Outcome, SkipReason};
use crate::store::{IndexEntry, WorkloadKey};

/// A plan to write, with the exact object it was computed from.
pub(super) struct Planned {
    pub object: Arc<Value>,
    pub plan: Plan,
    /// What writing the plan amounts to.
    pub outcome: Outcome,
}

impl Planned {
    /// Whether the write rolls pods (and so is paced, and reported as a reload).
    pub fn rolls(&self) -> bool {
        matches!(self.outcome, Outcome::Rolled | Outcome::Restarted)
    }
}

pub(super) enum Computed {
    /// Nothing to write.
    Settled(Outcome),
    Planned(Planned),
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// Computes the plan for `key` and indexes its dependencies; notes in `result` when the
/// reconcile should run again.
pub(super) fn compute(ctx: &Context, key: &WorkloadKey, result: &mut Reconciled) -> Computed {
    let Some(object) = ctx.store.workload(key) else {
        return Computed::Settled(Outcome::Gone);
    };
    if object.pointer("/metadata/deletionTimestamp").is_some() {
        return Computed::Settled(Outcome::Deleting);
    }
    let now = time::OffsetDateTime::now_utc();
    let generation = ctx.store.generation(&key.namespace);
    let decision = &ctx.options.decision;
    let keys = ctx.options.keys.borrow().clone();
    let stamping = Stamping {
        keys: &keys,
        namespace: &key.namespace,
    };
    let computed = {
        let workload = Workload::new(key.kind, &object);
        // Reload lists are compiled before the store's lock is taken.
        WorkloadPolicy::read(&workload, decision).and_then(|policy| {
            let sources = ctx.store.sources(&key.namespace);
            let deps = policy.dependencies(sources.map(), decision);
            let planned = plan(
                &workload,
                &deps.dependencies,
                sources.map(),
                ctx.options.plan,
                stamping,
                &rfc3339(now),
            )
            .map_err(|PlanError::Workload(w)| w)?;
            Ok((deps, planned))
        })
    };
    let (deps, mut planned) = match computed {
        Ok(c) => c,
        Err(error) => {
            tracing::warn!(%error, "not a workload the reloader can read; skipped");
            ctx.store.index(key, IndexEntry::default());
            return Computed::Settled(Outcome::Invalid);
        }
    };
    // Everything the workload names is watched, dependency or not (an ignored source may
    // stop being ignored).
    let mut watched = deps.named.clone();
    watched.extend(deps.sources().cloned());
    ctx.store.index(
        key,
        IndexEntry {
            sources: watched,
            scans: deps.scans,
        },
    );
    // A source that changed between the read above and this index entry found no
    // dependents: look again.
    if ctx.store.generation(&key.namespace) != generation {
        result.source_changed = true;
    }
    for error in &deps.errors {
        tracing::debug!(%error, "invalid reload-list item skipped");
    }
    let workload = Workload::new(key.kind, &object);
    if let Some(after) = apply_pause(&mut planned, &workload, &decision.keys, now) {
        // The pause lives in the Deployment; this is only when to look again.
        result.look_again_after = Some(after);
    }
    let outcome = match planned.action {
        Action::UpToDate => {
            ctx.metrics.skip(SkipReason::NoDataChange);
            return Computed::Settled(Outcome::UpToDate);
        }
        Action::Acknowledge => Outcome::Acknowledged,
        Action::Roll => Outcome::Rolled,
        Action::Restart => Outcome::Restarted,
        Action::Resume => Outcome::Resumed,
        Action::Notify => Outcome::Notified,
    };
    Computed::Planned(Planned {
        object,
        plan: planned,
        outcome,
    })
}
