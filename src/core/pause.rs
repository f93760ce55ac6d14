//! Pause periods (§3.7): a Deployment with `deployment.reloader.stakater.com/pause-period` is
//! paused when a reload rolls it, so further changes within the period accumulate into one
//! rollout, and resumed when the period is over.
//!
//! Unlike Stakater's in-memory timers, the state lives in the Deployment itself (`spec.paused`
//! plus the `paused-at` annotation), so any replica, after any restart, resumes on time: this
//! function tells the engine when to look again.

use crate::core::json::JsonAt;
use std::time::Duration;

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::plan::{Action, Plan};
use super::vocabulary::{AnnotationKeys, parse_go_duration};
use super::workload::{Workload, WorkloadKind};

/// Where a workload stands with pause periods, before a plan is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PauseState {
    /// No pause of ours. `period` is the valid, non-zero pause period a rollout would start;
    /// `by_person` when `spec.paused` is set without our marker (then no pause is started).
    NotPaused { period: Option<Duration>, by_person: bool },
    /// Paused by the reloader; changes accumulate until then.
    Paused { until: OffsetDateTime },
    /// Our marker is there but the pause is over (or its time unreadable, or the period or
    /// `spec.paused` removed): the next reconcile resumes it.
    Ending,
}

/// The pause state of a workload at `now` (only Deployments are ever paused).
pub fn pause_state(workload: &Workload<'_>, keys: &AnnotationKeys, now: OffsetDateTime) -> PauseState {
    if workload.kind != WorkloadKind::Deployment {
        return PauseState::NotPaused {
            period: None,
            by_person: false,
        };
    }
    let annotations = workload.annotations();
    let period = annotations
        .get(&keys.pause_period)
        .and_then(|v| parse_go_duration(&keys.pause_period, v).ok())
        .filter(|p| !p.is_zero());
    let spec_paused = workload.object.at("/spec/paused").and_then(Value::as_bool) == Some(true);
    match (annotations.get(&keys.paused_at), period) {
        (Some(at), Some(period)) if spec_paused => match OffsetDateTime::parse(at, &Rfc3339).ok().map(|t| t + period) {
            Some(until) if until > now => PauseState::Paused { until },
            _ => PauseState::Ending,
        },
        (Some(_), _) => PauseState::Ending,
        (None, period) => PauseState::NotPaused {
            period,
            by_person: spec_paused,
        },
    }
}

/// Adds pausing or resuming to `plan`, recomputing its patch. Returns when the engine should
/// reconcile the workload again (the end of a running pause), if ever.
pub fn apply_pause(
    plan: &mut Plan,
    workload: &Workload<'_>,
    keys: &AnnotationKeys,
    now: OffsetDateTime,
) -> Option<Duration> {
    if workload.kind != WorkloadKind::Deployment {
        return None;
    }
    let recheck = match pause_state(workload, keys, now) {
        // Paused by us and still within the period: let changes accumulate.
        PauseState::Paused { until } => Some(duration_between(now, until)),
        // Over, an unreadable timestamp (resume rather than stay paused forever), our marker
        // without a period (annotation removed) or without the pause (someone resumed it):
        // finish the resume and clear the marker.
        PauseState::Ending => {
            resume(plan, keys);
            None
        }
        // A rollout starts a pause, unless a person paused the Deployment themselves.
        PauseState::NotPaused {
            period: Some(period),
            by_person: false,
        } if plan.action == Action::Roll => {
            set(&mut plan.desired, "/spec", "paused", json!(true));
            set(
                &mut plan.desired,
                "/metadata/annotations",
                &keys.paused_at,
                json!(
                    now.replace_nanosecond(0)
                        .unwrap_or(now)
                        .format(&Rfc3339)
                        .unwrap_or_default()
                ),
            );
            Some(period)
        }
        PauseState::NotPaused { .. } => None,
    };
    plan.patch = crate::core::diff::diff(workload.object, &plan.desired);
    recheck
}

fn resume(plan: &mut Plan, keys: &AnnotationKeys) {
    set(&mut plan.desired, "/spec", "paused", json!(false));
    if let Some(map) = plan
        .desired
        .at_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        map.remove(&keys.paused_at);
    }
    if plan.action == Action::UpToDate {
        plan.action = Action::Resume;
    }
}

fn set(object: &mut Value, pointer: &str, key: &str, value: Value) {
    let mut node = object;
    for segment in pointer.split('/').skip(1) {
        if !node.get(segment).is_some_and(Value::is_object) {
            node[segment] = json!({});
        }
        node = &mut node[segment];
    }
    node[key] = value;
}

fn duration_between(from: OffsetDateTime, to: OffsetDateTime) -> Duration {
    Duration::try_from(to - from).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::vocabulary::defaults;
    use json_patch::Patch;

    fn deployment(annotations: Value, paused: bool) -> Value {
        json!({"metadata": {"name": "d", "annotations": annotations},
               "spec": {"paused": paused, "template": {"spec": {"containers": [{"name": "c"}]}}}})
    }

    fn plan_of(object: &Value, action: Action) -> Plan {
        Plan {
            action,
            changes: vec![],
            acknowledged: vec![],
            desired: object.clone(),
            patch: Patch(vec![]),
        }
    }

    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &Rfc3339).unwrap()
    }

    #[test]
    fn a_rollout_starts_a_pause() {
        let obj = deployment(json!({defaults::PAUSE_PERIOD: "5m"}), false);
        let mut plan = plan_of(&obj, Action::Roll);
        let w = Workload::new(WorkloadKind::Deployment, &obj);
        let recheck = apply_pause(&mut plan, &w, &AnnotationKeys::default(), at("2026-11-26T10:00:00Z"));
        assert_eq!(recheck, Some(Duration::from_secs(300)));
        assert_eq!(plan.desired["spec"]["paused"], json!(true));
        assert_eq!(
            plan.desired["metadata"]["annotations"][defaults::PAUSED_AT],
            json!("2026-11-26T10:00:00Z")
        );
        assert_eq!(plan.patch.0.len(), 2);
    }

    #[test]
    fn within_the_period_changes_accumulate_then_it_resumes_once() {
        let obj = deployment(
            json!({defaults::PAUSE_PERIOD: "5m", defaults::PAUSED_AT: "2026-11-26T10:00:00Z"}),
            true,
        );
        let w = Workload::new(WorkloadKind::Deployment, &obj);
        let keys = AnnotationKeys::default();
        let mut rolling = plan_of(&obj, Action::Roll);
        assert_eq!(
            apply_pause(&mut rolling, &w, &keys, at("2026-11-26T10:01:00Z")),
            Some(Duration::from_secs(240))
        );
        assert!(rolling.patch.0.is_empty(), "stays paused; no second pause");

        let mut due = plan_of(&obj, Action::UpToDate);
        assert_eq!(apply_pause(&mut due, &w, &keys, at("2026-11-26T10:05:00Z")), None);
        assert_eq!(due.action, Action::Resume);
        assert_eq!(due.desired["spec"]["paused"], json!(false));
        assert!(
            due.desired["metadata"]["annotations"]
                .get(defaults::PAUSED_AT)
                .is_none()
        );

        // After the resume is applied, nothing more to do.
        let w = Workload::new(WorkloadKind::Deployment, &due.desired);
        let mut again = plan_of(&due.desired, Action::UpToDate);
        assert_eq!(apply_pause(&mut again, &w, &keys, at("2026-11-26T10:06:00Z")), None);
        assert!(again.patch.0.is_empty());
        assert_eq!(again.action, Action::UpToDate);
    }

    #[test]
    fn pause_states() {
        let keys = AnnotationKeys::default();
        let state = |obj: &Value, now| pause_state(&Workload::new(WorkloadKind::Deployment, obj), &keys, at(now));
        let paused = deployment(
            json!({defaults::PAUSE_PERIOD: "5m", defaults::PAUSED_AT: "2026-11-26T10:00:00Z"}),
            true,
        );
        assert_eq!(
            state(&paused, "2026-11-26T10:01:00Z"),
            PauseState::Paused {
                until: at("2026-11-26T10:05:00Z")
            }
        );
        assert_eq!(state(&paused, "2026-11-26T10:05:00Z"), PauseState::Ending);
        assert_eq!(
            state(
                &deployment(json!({defaults::PAUSE_PERIOD: "5m"}), true),
                "2026-11-26T10:00:00Z"
            ),
            PauseState::NotPaused {
                period: Some(Duration::from_secs(300)),
                by_person: true
            }
        );
        assert_eq!(
            state(
                &deployment(json!({defaults::PAUSE_PERIOD: "0s"}), false),
                "2026-11-26T10:00:00Z"
            ),
            PauseState::NotPaused {
                period: None,
                by_person: false
            }
        );
    }

    #[test]
    fn a_pause_by_a_person_is_left_alone() {
        let obj = deployment(json!({defaults::PAUSE_PERIOD: "5m"}), true);
        let w = Workload::new(WorkloadKind::Deployment, &obj);
        let mut plan = plan_of(&obj, Action::Roll);
        assert_eq!(
            apply_pause(&mut plan, &w, &AnnotationKeys::default(), at("2026-11-26T10:00:00Z")),
            None
        );
        assert!(plan.patch.0.is_empty());
    }

    #[test]
    fn broken_or_orphaned_markers_resume() {
        let keys = AnnotationKeys::default();
        for obj in [
            deployment(
                json!({defaults::PAUSE_PERIOD: "5m", defaults::PAUSED_AT: "yesterday"}),
                true,
            ),
            deployment(json!({defaults::PAUSED_AT: "2026-11-26T10:00:00Z"}), true),
        ] {
            let w = Workload::new(WorkloadKind::Deployment, &obj);
            let mut plan = plan_of(&obj, Action::UpToDate);
            assert_eq!(apply_pause(&mut plan, &w, &keys, at("2026-11-26T10:00:01Z")), None);
            assert_eq!(plan.action, Action::Resume, "{obj}");
        }
    }

    #[test]
    fn other_kinds_and_invalid_periods_never_pause() {
        let keys = AnnotationKeys::default();
        let obj = deployment(json!({defaults::PAUSE_PERIOD: "5m"}), false);
        let sts = Workload::new(WorkloadKind::StatefulSet, &obj);
        let mut plan = plan_of(&obj, Action::Roll);
        assert_eq!(apply_pause(&mut plan, &sts, &keys, at("2026-11-26T10:00:00Z")), None);
        let bad = deployment(json!({defaults::PAUSE_PERIOD: "five minutes"}), false);
        let w = Workload::new(WorkloadKind::Deployment, &bad);
        let mut plan = plan_of(&bad, Action::Roll);
        assert_eq!(apply_pause(&mut plan, &w, &keys, at("2026-11-26T10:00:00Z")), None);
        assert!(plan.patch.0.is_empty());
    }
}
