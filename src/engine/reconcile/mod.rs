//! Reconciling one workload, in three phases:
//!
//! - [`compute`]: from memory only, its dependencies and the plan that brings it up to date;
//! - [`write`]: past the [`WriteGate`](super::pacing::WriteGate) (leadership, pacing), only
//!   the difference, guarded by the resourceVersion it was computed from; a conflict means
//!   someone else wrote first: re-read, recompute, retry;
//! - [`report`]: Events, metrics, alerts and logs for what was written; and, before anything,
//!   the workload's annotation problems (what the validating webhook would say), once each.
//!
//! Nothing is written for an up-to-date workload. When the reconcile runs again, and after a
//! failure how long it waits, is the scheduler's business.

mod compute;
mod report;
mod write;

use std::time::Duration;

use thiserror::Error;

use super::context::Context;
use crate::alerts::NotifyError;
pub use crate::metrics::Outcome;
use crate::metrics::SkipReason;
use crate::store::WorkloadKey;
use compute::Computed;
use tracing::Instrument;
use write::Written;

const MAX_CONFLICTS: u32 = 5;

/// What a reconcile did, and when it asks to run again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reconciled {
    pub outcome: Outcome,
    /// A source changed while the dependencies were being indexed: look again, as for an event.
    pub source_changed: bool,
    /// A pause period ends then: look again at that time.
    pub look_again_after: Option<Duration>,
}

impl Reconciled {
    fn new(outcome: Outcome) -> Self {
        Self {
            outcome,
            source_changed: false,
            look_again_after: None,
        }
    }
}

#[derive(Debug, Error)]
pub enum ReconcileError {
    #[error("kubernetes API: {0}")]
    Api(#[from] kube::Error),
    #[error("re-reading after a conflict: {0}")]
    Reread(#[source] kube::Error),
    #[error("still conflicting after {MAX_CONFLICTS} attempts")]
    Conflicts,
    #[error("--webhook-url: {0}")]
    Notify(#[from] NotifyError),
    #[error("--webhook-url: no URL configured")]
    NoNotifier,
}

/// Brings one workload to its desired state, then takes the next step of its pod restart, if
/// it has one ([`super::restarts`]).
pub async fn reconcile(key: &WorkloadKey, ctx: &Context) -> Result<Reconciled, ReconcileError> {
    let mut result = bring_up_to_date(key, ctx).await?;
    if matches!(
        result.outcome,
        Outcome::UpToDate
            | Outcome::Acknowledged
            | Outcome::Rolled
            | Outcome::Restarted
            | Outcome::Resumed
            | Outcome::Notified
            | Outcome::Held
    ) && let Some(after) = super::restarts::step(ctx, key)
        .instrument(tracing::info_span!("restart"))
        .await
    {
        result.look_again_after = Some(result.look_again_after.map_or(after, |t| t.min(after)));
    }
    Ok(result)
}

async fn bring_up_to_date(key: &WorkloadKey, ctx: &Context) -> Result<Reconciled, ReconcileError> {
    if !ctx.scope.allows(&key.namespace) {
        ctx.metrics.skip(SkipReason::IgnoredOrNotSelected);
        return Ok(Reconciled::new(Outcome::Excluded));
    }
    // What the webhook would have refused or warned about, had it been called: told on the
    // workload itself, once.
    // The stored workload is kept as text: parsed once here for both phases.
    let object = ctx.store.workload(key);
    report::annotation_problems(ctx, key, object.as_deref())
        .instrument(tracing::info_span!("report"))
        .await;
    let created = write::create_pending(ctx, key)
        .instrument(tracing::info_span!("write"))
        .await?;
    if created && key.kind == crate::core::workload::WorkloadKind::Job {
        return Ok(Reconciled::new(Outcome::Rolled));
    }
    // A create may have changed what the store holds; after a conflict it holds a fresh read.
    let mut read = (!created).then_some(object).flatten();
    let mut result = Reconciled::new(Outcome::UpToDate);
    for attempt in 1..=MAX_CONFLICTS {
        let object = read.take().or_else(|| ctx.store.workload(key));
        let computed =
            tracing::info_span!("compute", attempt).in_scope(|| compute::compute(ctx, key, object, &mut result));
        let planned = match computed {
            Computed::Settled(outcome) => {
                ctx.release_hold(key);
                result.outcome = outcome;
                return Ok(result);
            }
            Computed::Held { object, hold, news } => {
                if news {
                    report::held(ctx, key, &object, &hold)
                        .instrument(tracing::info_span!("report"))
                        .await;
                }
                result.outcome = Outcome::Held;
                return Ok(result);
            }
            Computed::Planned(planned) => planned,
        };
        let written = write::write(ctx, key, &planned)
            .instrument(tracing::info_span!("write", attempt))
            .await;
        match written {
            Ok(Written::Done) => {
                report::written(ctx, key, &planned)
                    .instrument(tracing::info_span!("report"))
                    .await;
                result.outcome = planned.outcome;
                return Ok(result);
            }
            Ok(Written::NotLeader) => {
                result.outcome = Outcome::NotLeader;
                return Ok(result);
            }
            Ok(Written::Gone) => {
                result.outcome = Outcome::Gone;
                return Ok(result);
            }
            Ok(Written::Paced(wait)) => {
                result.outcome = Outcome::Paced;
                result.look_again_after = Some(wait);
                return Ok(result);
            }
            Ok(Written::Conflict) => continue,
            Err(error) => {
                if let (true, ReconcileError::Api(api_error)) = (planned.rolls(), &error) {
                    let first = planned.plan.changes.first().map(|c| c.source.kind);
                    report::failed(ctx, key, &planned.object, api_error, first)
                        .instrument(tracing::info_span!("report"))
                        .await;
                }
                return Err(error);
            }
        }
    }
    Err(ReconcileError::Conflicts)
}

#[cfg(test)]
mod tests;
