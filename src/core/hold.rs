//! Holds: a change that would roll a workload waits, outside its reload window
//! ([`super::window`]), or for its wave ([`super::wave_gate`]). Nothing about a hold is kept
//! in memory: a held workload is one whose record differs from its sources while its window is
//! closed or its wave not yet open, so a restart holds exactly what was held, and rolls it
//! once when the hold ends, with whatever the content is then.
//!
//! `reloader.stakater.com/reload-now: "true"` on the workload lets a held change through at
//! once; the reloader removes the annotation in the same write, so it lets one change through.

use std::collections::BTreeMap;

use serde_json::Value;

use super::plan::{Action, Plan};
use super::source::SourceRef;
use super::vocabulary::fixed;
use super::wave_gate::WaveWait;
use super::window::{ReloadWindow, WindowState};
use super::workload::Workload;

/// Why a change that would roll the workload waits.
#[derive(Clone, Debug, PartialEq)]
pub enum Hold {
    /// Outside the reload window: it rolls when the window opens.
    Window {
        window: ReloadWindow,
        opens_at: jiff::Timestamp,
    },
    /// A wave of a source's dependents is not done yet, or failed.
    Wave { source: SourceRef, wait: WaveWait },
}

/// The low-cardinality name of a hold, for metrics and Events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HoldReason {
    Window,
    Wave,
    /// A wave failed: nothing beyond it rolls until the source changes again.
    Halted,
}

impl HoldReason {
    pub const ALL: [HoldReason; 3] = [HoldReason::Window, HoldReason::Wave, HoldReason::Halted];

    pub fn as_str(self) -> &'static str {
        match self {
            HoldReason::Window => "window",
            HoldReason::Wave => "wave",
            HoldReason::Halted => "halted",
        }
    }
}

impl Hold {
    pub fn reason(&self) -> HoldReason {
        match self {
            Hold::Window { .. } => HoldReason::Window,
            Hold::Wave {
                wait: WaveWait::Halted { .. },
                ..
            } => HoldReason::Halted,
            Hold::Wave { .. } => HoldReason::Wave,
        }
    }

    /// When the hold ends by itself (a window's opening); waves end when others are healthy.
    pub fn ends_at(&self) -> Option<jiff::Timestamp> {
        match self {
            Hold::Window { opens_at, .. } => Some(*opens_at),
            Hold::Wave { .. } => None,
        }
    }

    /// One line for people: Events, logs and `reloader explain`.
    pub fn describe(&self) -> String {
        match self {
            Hold::Window { window, opens_at } => {
                format!("held until {} (reload window {window})", window.describe(*opens_at))
            }
            Hold::Wave { source, wait } => format!("held: {} ({source})", wait.describe()),
        }
    }
}

/// What the gate lets the plan do.
#[derive(Clone, Debug, PartialEq)]
pub enum Gate {
    /// Write the plan as it is.
    Proceed,
    /// Write the plan, and remove `reload-now` with it: it let a held change through.
    Override,
    /// Write nothing.
    Held(Hold),
}

/// The reload window that applies to a workload: its own annotation, else its Namespace's,
/// else the default. A value that does not parse is passed over (the workload's annotation
/// problems are reported apart; the webhook refuses them at apply time).
pub fn window_for(
    workload: &BTreeMap<String, String>,
    namespace: Option<&str>,
    default: Option<&ReloadWindow>,
) -> Option<ReloadWindow> {
    let parsed = |text: &str| text.parse::<ReloadWindow>().ok();
    workload
        .get(fixed::RELOAD_WINDOW)
        .and_then(|text| parsed(text))
        .or_else(|| namespace.and_then(parsed))
        .or_else(|| default.cloned())
}

/// Whether the workload asks for held changes to go through now.
pub fn reload_now(workload: &Workload<'_>) -> bool {
    workload.annotations().get(fixed::RELOAD_NOW).map(String::as_str) == Some("true")
}

/// The gate for `plan` at `now`: only a plan that rolls the pods (or restarts them) is ever
/// held; acknowledging, resuming a pause and announcing never wait.
pub fn gate(
    plan: &Plan,
    workload: &Workload<'_>,
    window: Option<&ReloadWindow>,
    wave: Option<(SourceRef, WaveWait)>,
    now: jiff::Timestamp,
) -> Gate {
    if !matches!(plan.action, Action::Roll | Action::Restart) {
        return Gate::Proceed;
    }
    let hold = match (window.map(|w| (w, w.state(now))), wave) {
        (Some((window, WindowState::Closed { opens_at })), _) => Some(Hold::Window {
            window: window.clone(),
            opens_at,
        }),
        (_, Some((source, wait))) => Some(Hold::Wave { source, wait }),
        _ => None,
    };
    match hold {
        None => Gate::Proceed,
        Some(_) if reload_now(workload) => Gate::Override,
        Some(hold) => Gate::Held(hold),
    }
}

/// `plan` with `reload-now` removed from the workload's metadata, its patch recomputed.
pub fn consume_reload_now(plan: &mut Plan, workload: &Workload<'_>) {
    if let Some(annotations) = plan
        .desired
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.remove(fixed::RELOAD_NOW);
    }
    plan.patch = super::diff::diff(workload.object, &plan.desired);
}

/// `time`'s instant as `jiff`'s (the window arithmetic is jiff's; the rest of the core is
/// `time`'s). Out of range (never, for a clock) reads as the epoch.
pub fn instant(now: time::OffsetDateTime) -> jiff::Timestamp {
    i64::try_from(now.unix_timestamp_nanos())
        .ok()
        .and_then(|nanos| jiff::Timestamp::from_nanosecond(nanos.into()).ok())
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::source::SourceKind;
    use crate::core::workload::WorkloadKind;
    use serde_json::json;

    fn deployment(annotations: Value) -> Value {
        json!({"metadata": {"name": "d", "annotations": annotations},
               "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}})
    }

    /// A plan that rolls (or does `action`) and adds a template annotation to `object`.
    fn plan_of(object: &Value, action: Action) -> Plan {
        let mut desired = object.clone();
        desired["spec"]["template"]["metadata"] = json!({"annotations": {"x": "1"}});
        Plan {
            action,
            changes: vec![],
            acknowledged: vec![],
            patch: super::super::diff::diff(object, &desired),
            desired,
        }
    }

    fn at(text: &str) -> jiff::Timestamp {
        text.parse().unwrap()
    }

    fn night() -> ReloadWindow {
        "02:00-04:00".parse().unwrap()
    }

    fn waiting() -> (SourceRef, WaveWait) {
        (
            SourceRef::new(SourceKind::Secret, "db"),
            WaveWait::Waiting {
                wave: 2,
                waves: 3,
                pending: vec!["deploy/a".into()],
            },
        )
    }

    #[test]
    fn only_a_rolling_plan_waits_for_a_closed_window() {
        let object = deployment(json!({}));
        let w = Workload::new(WorkloadKind::Deployment, &object);
        let noon = at("2026-01-07T12:00:00Z");
        for action in [Action::Roll, Action::Restart] {
            match gate(&plan_of(&object, action), &w, Some(&night()), None, noon) {
                Gate::Held(hold) => {
                    assert_eq!(hold.reason(), HoldReason::Window);
                    assert_eq!(hold.ends_at(), Some(at("2026-01-08T02:00:00Z")));
                    assert_eq!(
                        hold.describe(),
                        "held until Thu 02:00 UTC (reload window 02:00-04:00 UTC)"
                    );
                }
                other => panic!("{action:?}: {other:?}"),
            }
        }
        for action in [Action::UpToDate, Action::Acknowledge, Action::Resume, Action::Notify] {
            assert_eq!(
                gate(&plan_of(&object, action), &w, Some(&night()), Some(waiting()), noon),
                Gate::Proceed,
                "{action:?}"
            );
        }
        let inside = at("2026-01-07T03:00:00Z");
        assert_eq!(
            gate(&plan_of(&object, Action::Roll), &w, Some(&night()), None, inside),
            Gate::Proceed
        );
        assert_eq!(
            gate(&plan_of(&object, Action::Roll), &w, None, None, noon),
            Gate::Proceed
        );
    }

    #[test]
    fn a_wave_holds_inside_the_window_and_the_window_first() {
        let object = deployment(json!({}));
        let w = Workload::new(WorkloadKind::Deployment, &object);
        let plan = plan_of(&object, Action::Roll);
        let inside = at("2026-01-07T03:00:00Z");
        let Gate::Held(hold) = gate(&plan, &w, Some(&night()), Some(waiting()), inside) else {
            panic!("a wave not yet open holds");
        };
        assert_eq!(hold.reason(), HoldReason::Wave);
        assert_eq!(hold.ends_at(), None);
        assert!(hold.describe().contains("secret/db"), "{}", hold.describe());
        let halted = (
            SourceRef::new(SourceKind::Secret, "db"),
            WaveWait::Halted {
                failed: "deploy/a".into(),
                reason: "ProgressDeadlineExceeded".into(),
            },
        );
        let Gate::Held(hold) = gate(&plan, &w, None, Some(halted), inside) else {
            panic!("a halted wave holds");
        };
        assert_eq!(hold.reason(), HoldReason::Halted);
        let noon = at("2026-01-07T12:00:00Z");
        let Gate::Held(hold) = gate(&plan, &w, Some(&night()), Some(waiting()), noon) else {
            panic!("held");
        };
        assert_eq!(hold.reason(), HoldReason::Window, "the window is told first");
    }

    #[test]
    fn reload_now_lets_a_held_change_through_and_is_removed_with_it() {
        let object = deployment(json!({fixed::RELOAD_NOW: "true", "keep": "me"}));
        let w = Workload::new(WorkloadKind::Deployment, &object);
        let mut plan = plan_of(&object, Action::Roll);
        let noon = at("2026-01-07T12:00:00Z");
        assert_eq!(gate(&plan, &w, Some(&night()), None, noon), Gate::Override);
        assert_eq!(gate(&plan, &w, None, Some(waiting()), noon), Gate::Override);
        // Nothing held: the plan proceeds and the annotation stays for the next change.
        assert_eq!(gate(&plan, &w, None, None, noon), Gate::Proceed);
        consume_reload_now(&mut plan, &w);
        let mut applied = object.clone();
        json_patch::patch(&mut applied, &plan.patch).unwrap();
        assert_eq!(applied, plan.desired);
        assert_eq!(applied["metadata"]["annotations"], json!({"keep": "me"}));
        assert_eq!(applied["spec"]["template"]["metadata"]["annotations"]["x"], "1");
        // Only the exact "true" counts.
        let object = deployment(json!({fixed::RELOAD_NOW: "yes"}));
        let w = Workload::new(WorkloadKind::Deployment, &object);
        assert!(!reload_now(&w));
        assert!(matches!(
            gate(&plan_of(&object, Action::Roll), &w, Some(&night()), None, noon),
            Gate::Held(_)
        ));
    }

    #[test]
    fn the_workloads_window_wins_then_the_namespaces_then_the_default() {
        let own = BTreeMap::from([(fixed::RELOAD_WINDOW.to_string(), "Sat 01:00-02:00".to_string())]);
        let bad = BTreeMap::from([(fixed::RELOAD_WINDOW.to_string(), "25:00-26:00".to_string())]);
        let none = BTreeMap::new();
        let default = night();
        let shown = |w: Option<ReloadWindow>| w.map(|w| w.to_string());
        assert_eq!(
            shown(window_for(&own, Some("Sun 01:00-02:00"), Some(&default))),
            Some("Sat 01:00-02:00 UTC".into())
        );
        assert_eq!(
            shown(window_for(&none, Some("Sun 01:00-02:00"), Some(&default))),
            Some("Sun 01:00-02:00 UTC".into())
        );
        assert_eq!(
            shown(window_for(&bad, Some("garbage"), Some(&default))),
            Some("02:00-04:00 UTC".into()),
            "invalid values are passed over"
        );
        assert_eq!(window_for(&none, None, None), None);
    }

    #[test]
    fn the_instant_conversion_keeps_the_time() {
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(1_767_225_600_123_456_789).unwrap();
        assert_eq!(instant(t).as_nanosecond(), 1_767_225_600_123_456_789);
    }
}
