//! One workload, evaluated as the engine reconciles it: its dependencies, each compared with
//! what the workload recorded, the plan, and pause periods. The engine acts on the result;
//! `reloader explain` prints it. One function, so the two can never disagree.

use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::dependencies::{Dependencies, DependencyOptions, WorkloadPolicy};
use super::pause::{PauseState, apply_pause, pause_state};
use super::plan::{Assessment, Plan, PlanOptions, Stamping, assess, plan_assessed};
use super::source::SourceView;
use super::workload::{Workload, WorkloadError};

#[derive(Clone, Debug)]
pub struct Evaluation {
    pub dependencies: Dependencies,
    /// Each dependency compared with its record.
    pub assessments: Vec<Assessment>,
    /// The pause state before the plan (a Deployment with a pause period).
    pub pause: PauseState,
    /// What to write, pause periods included.
    pub plan: Plan,
    /// When to look at the workload again (the end of a running pause).
    pub recheck: Option<Duration>,
}

/// `now` without sub-second digits, as written on workloads.
pub fn rfc3339(now: OffsetDateTime) -> String {
    now.replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// Evaluates `workload` against the sources of its namespace at `now`. `policy` is the
/// workload's, read (its reload lists compiled) before the caller takes the store's lock.
/// `seen`: when the engine first saw the workload, in the store's change sequence (`None`:
/// unknown; every unrecorded source is then adopted).
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    workload: &Workload<'_>,
    policy: &WorkloadPolicy,
    existing: &(impl SourceView + ?Sized),
    dependency: &DependencyOptions,
    options: PlanOptions,
    stamping: Stamping<'_>,
    seen: Option<u64>,
    now: OffsetDateTime,
) -> Result<Evaluation, WorkloadError> {
    let deps = policy.dependencies(existing, dependency);
    let assessments = assess(workload, &deps.dependencies, existing, options, stamping, seen)
        .map_err(|super::plan::PlanError::Workload(error)| error)?;
    let mut plan = plan_assessed(
        workload,
        &deps.dependencies,
        &assessments,
        existing,
        options,
        stamping,
        &rfc3339(now),
    );
    let pause = pause_state(workload, &dependency.annotations, now);
    let recheck = apply_pause(&mut plan, workload, &dependency.annotations, now);
    Ok(Evaluation {
        dependencies: deps,
        assessments,
        pause,
        plan,
        recheck,
    })
}
