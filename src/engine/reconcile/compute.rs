//! The compute phase: from the store alone (no API call), the workload's dependencies, its
//! index entry, and the plan that brings it up to date.

use crate::core::json::JsonAt;
use std::sync::Arc;

use serde_json::Value;

use super::Reconciled;
use crate::core::dependencies::WorkloadPolicy;
use crate::core::evaluate::{Evaluation, evaluate};
use crate::core::hold::{Hold, consume_reload_now};
use crate::core::plan::{Action, Plan, Stamping};
use crate::core::workload::Workload;
use crate::engine::context::Context;
use crate::engine::gate::{Passage, pass};
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
    /// A change would roll the workload, and waits (its window, its wave); `news` when it was
    /// not held so before.
    Held {
        object: Arc<Value>,
        hold: Hold,
        news: bool,
    },
}

/// Computes the plan for `key` (as the store holds it: `object`) and indexes its dependencies;
/// notes in `result` when the reconcile should run again.
pub(super) fn compute(
    ctx: &Context,
    key: &WorkloadKey,
    object: Option<Arc<Value>>,
    result: &mut Reconciled,
) -> Computed {
    let Some(object) = object else {
        return Computed::Settled(Outcome::Gone);
    };
    if object.at("/metadata/deletionTimestamp").is_some() {
        // Indexed as depending on nothing: counted as known (rollout waves wait for every
        // workload of the namespace to be), never as a wave's member.
        ctx.store.index(key, IndexEntry::default());
        return Computed::Settled(Outcome::Deleting);
    }
    let now = ctx.clock.now();
    let generation = ctx.store.generation(&key.namespace);
    let keys = ctx.options.stamp_keys.borrow().clone();
    let stamping = Stamping {
        keys: &keys,
        namespace: &key.namespace,
    };
    // Read before the sources' guard below: the store's lock is not re-entrant (a second read
    // while a watcher waits to write would deadlock).
    let seen = ctx.store.first_seen(key);
    let evaluated = {
        let workload = Workload::new(key.kind, &object);
        // Reload lists are compiled before the store's lock is taken.
        WorkloadPolicy::read(&workload, &ctx.options.dependency).and_then(|policy| {
            let sources = ctx.store.sources(&key.namespace);
            evaluate(
                &workload,
                &policy,
                sources.map(),
                &ctx.options.dependency,
                ctx.options.plan,
                stamping,
                seen,
                now,
            )
        })
    };
    let Evaluation {
        dependencies: deps,
        plan: planned,
        recheck,
        ..
    } = match evaluated {
        Ok(e) => e,
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
            dependencies: deps.sources().cloned().collect(),
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
    if let Some(after) = recheck {
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
    let mut planned = planned;
    match pass(ctx, key, &Workload::new(key.kind, &object), &planned) {
        Passage::Proceed => {}
        Passage::Override => consume_reload_now(&mut planned, &Workload::new(key.kind, &object)),
        Passage::Held { hold, news, look_again } => {
            result.look_again_after = Some(result.look_again_after.map_or(look_again, |t| t.min(look_again)));
            return Computed::Held { object, hold, news };
        }
    }
    Computed::Planned(Planned {
        object,
        plan: planned,
        outcome,
    })
}
