//! The evaluation worded: for each source the workload reloads on, its state and why; for each
//! it names but does not reload on, why not; the verdict, and the verdict in one sentence.

use time::OffsetDateTime;

use super::{ChangeReport, Explanation, KeyRing, KeysReport, Scene, SkipReport, SourceReport, Verdict};
use crate::core::dependencies::{Dependency, KindAnnotations, Skip, Trigger, WorkloadPolicy};
use crate::core::evaluate::{Evaluation, evaluate, rfc3339};
use crate::core::hash_record::Observed;
use crate::core::hold::{Gate, gate, instant, window_for};
use crate::core::json::JsonAt;
use crate::core::pause::PauseState;
use crate::core::plan::Plan;
use crate::core::plan::{Action, Assessment, Change, SourceOutcome, Stamping};
use crate::core::rollout_status::{RolloutHealth, rollout_health};
use crate::core::source::{SourceKind, SourceRef};
use crate::core::vocabulary::fixed;
use crate::core::wave_gate::{Member, WaveWait, wave_wait};
use crate::core::waves::WaveSizes;
use crate::core::workload::Workload;

/// Evaluates the workload as the engine does and words the result into `explanation`: its
/// verdict, the sources it reloads on, the ones it names but does not reload on, and why.
pub(super) fn judge(scene: &Scene, workload: &Workload<'_>, now: OffsetDateTime, explanation: &mut Explanation) {
    let keys = scene.ring.keys();
    let excluded = scene
        .namespace_excluded
        .clone()
        .or_else(|| scene.settings.workload_kind_excluded_by(workload.kind));
    let stamping = Stamping {
        keys: &keys,
        namespace: &scene.namespace,
    };
    let dependency_options = scene.dependency_options();
    let evaluated = WorkloadPolicy::read(workload, &dependency_options).and_then(|policy| {
        evaluate(
            workload,
            &policy,
            &scene.sources,
            &dependency_options,
            scene.plan_options(),
            stamping,
            // The engine's first sight of the workload is in its memory only.
            None,
            now,
        )
    });
    explanation.verdict = if workload.object.at("/metadata/deletionTimestamp").is_some() {
        Verdict::Deleting
    } else if let Some(by) = excluded {
        Verdict::Excluded { by }
    } else {
        match &evaluated {
            Err(error) => Verdict::Unreadable {
                reason: error.to_string(),
            },
            Ok(evaluation) => {
                let deps = &evaluation.dependencies;
                explanation.scans = deps.scans;
                for assessment in &evaluation.assessments {
                    let dep = deps.dependencies.iter().find(|d| d.source == assessment.source);
                    explanation
                        .sources
                        .push(source_report(scene, workload, stamping, assessment, dep));
                }
                for skipped in &deps.skipped {
                    explanation.not_reloaded_on.push(SkipReport {
                        source: skipped.source.to_string(),
                        referenced: skipped.referenced,
                        why: skip_why(scene, &skipped.source, &skipped.skip),
                    });
                }
                for error in &deps.errors {
                    explanation.notes.push(format!("skipped, as the engine does: {error}"));
                }
                let verdict = verdict(scene, evaluation, &explanation.sources, now);
                held(scene, workload, evaluation, stamping, now, &mut explanation.notes).unwrap_or(verdict)
            }
        }
    };
}

/// The hold on a due rollout, as the engine's gate decides it: the workload's reload window
/// (its own, its Namespace's, the default) and the waves of the sources it rolls for.
fn held(
    scene: &Scene,
    workload: &Workload<'_>,
    evaluation: &Evaluation,
    stamping: Stamping<'_>,
    now: OffsetDateTime,
    notes: &mut Vec<String>,
) -> Option<Verdict> {
    let window = window_for(
        &workload.annotations(),
        scene.namespace_window.as_deref(),
        scene.settings.reload_window.as_ref(),
    );
    let wave = wave_hold(scene, workload, &evaluation.plan, stamping, now);
    match gate(&evaluation.plan, workload, window.as_ref(), wave, instant(now)) {
        Gate::Proceed => None,
        Gate::Override => {
            notes.push(format!(
                "{} lets this rollout through now, and is removed with it",
                fixed::RELOAD_NOW
            ));
            None
        }
        Gate::Held(hold) => Some(Verdict::Held {
            reason: hold.reason().as_str(),
            until: hold.ends_at().map(|at| at.to_string()),
            why: hold.describe(),
            pending: changes(evaluation),
        }),
    }
}

/// The first wave that holds the plan, computed from the namespace's workloads as read.
fn wave_hold(
    scene: &Scene,
    workload: &Workload<'_>,
    plan: &Plan,
    stamping: Stamping<'_>,
    now: OffsetDateTime,
) -> Option<(SourceRef, WaveWait)> {
    let options = scene.dependency_options();
    let strategy = scene.plan_options().strategy;
    plan.changes.iter().find_map(|change| {
        let source = &change.source;
        let state = scene.sources.get(source);
        let sizes = state
            .and_then(|s| s.annotations.get(fixed::ROLLOUT_WAVES))
            .and_then(|v| v.parse::<WaveSizes>().ok())
            .or_else(|| scene.settings.rollout_waves.clone())?;
        let mut members: Vec<Member> = scene
            .workloads
            .iter()
            .map(|(kind, object)| Workload::new(*kind, object))
            .filter(|w| {
                WorkloadPolicy::read(w, &options)
                    .is_ok_and(|p| p.dependencies(&scene.sources, &options).sources().any(|s| s == source))
            })
            .map(|w| {
                let health = rollout_health(w.kind, w.object, now, scene.settings.rollout_wave_deadline);
                Member::of(&w, source, state, options.per_key_reloads, strategy, stamping, health)
            })
            .collect();
        if !members
            .iter()
            .any(|m| m.kind == workload.kind && m.name == workload.name())
        {
            // Explained from a file, or created since the list: count it as not yet rolled.
            let mut asking = Member::of(
                workload,
                source,
                None,
                options.per_key_reloads,
                strategy,
                stamping,
                RolloutHealth::Healthy,
            );
            asking.carries_current = false;
            members.push(asking);
        }
        let boundaries = sizes.boundaries(members.len());
        let wait = wave_wait(&boundaries, &members, (workload.kind, workload.name()))?;
        Some((source.clone(), wait))
    })
}

fn change_name(change: &Change) -> &'static str {
    match change {
        Change::Changed { .. } => "changed",
        Change::Created { .. } => "created",
        Change::Deleted { .. } => "deleted",
    }
}

fn why(scene: &Scene, workload: &Workload<'_>, kind: SourceKind, trigger: &Trigger) -> String {
    let keys = &scene.settings.annotation_keys;
    let metadata = workload.annotations();
    let template = workload.template_annotations().unwrap_or_default();
    let place = if KindAnnotations::read(keys, kind, &metadata, &template).from_template {
        " on the pod template"
    } else {
        ""
    };
    match trigger {
        Trigger::Named { pattern } => format!("{}{place} names it (item {pattern:?})", keys.reload(kind)),
        Trigger::SearchMatch => format!("{}{place}, and {} on the source", keys.search, keys.match_),
        Trigger::Auto => format!("{}{place}", keys.auto),
        Trigger::TypedAuto => format!("{}{place}", keys.typed_auto(kind)),
        Trigger::AutoReloadAll => "--auto-reload-all".to_string(),
    }
}

/// The value the reloader would record for `source` now. Without the key, a Secret's plain
/// SHA-1 (of its content, or of the keys read) is not shown: keyed stamps exist so that it is
/// never published.
fn current_value(scene: &Scene, stamping: Stamping<'_>, source: &SourceRef, observed: &Observed) -> String {
    match &scene.ring {
        KeyRing::Unreadable { .. } if source.kind != SourceKind::ConfigMap && observed.is_plain() => {
            "(keyed; the stamp key cannot be read)".to_string()
        }
        _ => stamping.seal_one(source, observed).to_string(),
    }
}

/// The keys a dependency's stamp covers under per-key reloads, and those its source lacks.
fn keys_report(scene: &Scene, dependency: &Dependency) -> Option<KeysReport> {
    let keys = dependency.stamped_keys()?;
    let state = scene.sources.get(&dependency.source);
    Some(KeysReport {
        read: keys.iter().map(str::to_string).collect(),
        absent: keys
            .iter()
            .filter(|key| !state.is_some_and(|s| s.keys.contains(key)))
            .map(str::to_string)
            .collect(),
    })
}

/// What changed, for a per-key dependency: the key, when it reads one; which of several is not
/// recorded (the stamp holds one hash for them all).
fn changed_detail(keys: Option<&KeysReport>) -> String {
    match keys.map(|k| k.read.as_slice()) {
        None => "changed since the pods were rolled".to_string(),
        Some([key]) => format!("{key}, the key it reads, changed since the pods were rolled"),
        Some(read) => format!(
            "one or more of the keys it reads ({}) changed since the pods were rolled; which is not recorded",
            read.join(", ")
        ),
    }
}

fn source_report(
    scene: &Scene,
    workload: &Workload<'_>,
    stamping: Stamping<'_>,
    assessment: &Assessment,
    dependency: Option<&Dependency>,
) -> SourceReport {
    let options = scene.plan_options();
    let keys_read = dependency.and_then(|d| keys_report(scene, d));
    let unknown_key = assessment
        .recorded
        .as_ref()
        .and_then(Observed::keyed)
        .filter(|keyed| !stamping.keys.knows(keyed))
        .map(|keyed| keyed.key_id().to_string());
    let (state, detail) = match (&scene.ring, &unknown_key, &assessment.outcome) {
        (KeyRing::Unreadable { reason, .. }, Some(_), _) => (
            "cannot-verify",
            format!("recorded with a keyed value; the key cannot be read ({reason})"),
        ),
        (KeyRing::Plain { .. }, Some(id), _) => (
            "unknown-key",
            format!("recorded with key {id}, but these options stamp plain values: recorded again without a rollout"),
        ),
        (_, Some(id), _) => (
            "unknown-key",
            format!("recorded with key {id}, which the key ring no longer has: recorded again without a rollout"),
        ),
        (_, None, SourceOutcome::UpToDate) => ("up-to-date", "recorded at its current content".to_string()),
        (_, None, SourceOutcome::Change(change)) => {
            let detail = match change {
                Change::Changed { .. } => changed_detail(keys_read.as_ref()),
                Change::Created { .. } => "created since it was recorded absent (--reload-on-create)".to_string(),
                Change::Deleted { .. } => "deleted since it was recorded (--reload-on-delete)".to_string(),
            };
            (change_name(change), detail)
        }
        (_, None, SourceOutcome::Adopt(Observed::Absent)) => (
            "not-recorded",
            "absent and never recorded: recorded as absent (--reload-on-create)".to_string(),
        ),
        (_, None, SourceOutcome::Adopt(_)) => match &assessment.recorded {
            Some(Observed::Absent) => (
                "recorded-absent",
                "created since it was recorded absent: recorded without a rollout (--reload-on-create is off)"
                    .to_string(),
            ),
            Some(_) => (
                "recorded-other-form",
                "recorded as the content its pods read, in another form (whole content, or other keys: per-key \
                 reloads turned on or off, or the template reads other keys now): recorded again without a rollout"
                    .to_string(),
            ),
            None => (
                "not-recorded",
                "never recorded on the workload: recorded without a rollout".to_string(),
            ),
        },
        (_, None, SourceOutcome::Absent) => (
            "absent",
            if options.reload_on_create {
                "does not exist".to_string()
            } else {
                "does not exist and was never recorded: nothing to do".to_string()
            },
        ),
        (_, None, SourceOutcome::DeletedKept) => (
            "deleted-kept",
            "deleted since it was recorded; --reload-on-delete is off: nothing to do".to_string(),
        ),
    };
    SourceReport {
        source: assessment.source.to_string(),
        why: why(scene, workload, assessment.source.kind, &assessment.trigger),
        container: dependency.and_then(|d| d.container.clone()),
        referenced: dependency.is_some_and(|d| d.referenced),
        current: current_value(scene, stamping, &assessment.source, &assessment.current),
        recorded: assessment.recorded.as_ref().map(ToString::to_string),
        keys: keys_read,
        state,
        detail,
    }
}

fn skip_why(scene: &Scene, source: &SourceRef, skip: &Skip) -> String {
    match skip {
        Skip::KindIgnored => scene.settings.source_kind_excluded_by(source.kind).map_or_else(
            || "its kind is ignored".into(),
            |flag| format!("{}s are ignored: {flag}", source.kind),
        ),
        Skip::Excluded { key } => format!("excluded by {key}"),
        Skip::Ignored { key } => format!("the source has {key}: \"true\""),
        Skip::NotSelected => "no reload annotation selects it".into(),
        Skip::EmptyName => "a reference without a name".into(),
    }
}

fn changes(evaluation: &Evaluation) -> Vec<ChangeReport> {
    evaluation
        .plan
        .changes
        .iter()
        .map(|c| ChangeReport {
            source: c.source.to_string(),
            change: change_name(&c.change),
        })
        .collect()
}

fn verdict(scene: &Scene, evaluation: &Evaluation, reports: &[SourceReport], now: OffsetDateTime) -> Verdict {
    if let KeyRing::Unreadable { reason, secret } = &scene.ring {
        let unverifiable: Vec<String> = reports
            .iter()
            .filter(|r| r.state == "cannot-verify")
            .map(|r| r.source.clone())
            .collect();
        if !unverifiable.is_empty() {
            return Verdict::CannotVerify {
                sources: unverifiable,
                reason: format!("cannot read Secret {secret}: {reason}"),
            };
        }
    }
    let plan = &evaluation.plan;
    if let PauseState::Paused { until } = evaluation.pause {
        return Verdict::Paused {
            until: rfc3339(until),
            pending: changes(evaluation),
        };
    }
    match plan.action {
        Action::UpToDate => Verdict::UpToDate,
        Action::Acknowledge => Verdict::Acknowledge {
            sources: plan.acknowledged.iter().map(ToString::to_string).collect(),
        },
        Action::Roll => Verdict::WouldRoll {
            changes: changes(evaluation),
            paused_until: match (evaluation.pause, evaluation.recheck) {
                (PauseState::NotPaused { .. }, Some(period)) => Some(rfc3339(now + period)),
                _ => None,
            },
        },
        Action::Restart => Verdict::WouldRestart {
            changes: changes(evaluation),
        },
        Action::Notify => Verdict::WouldNotify {
            changes: changes(evaluation),
        },
        Action::Resume => Verdict::WouldResume,
    }
}

/// The verdict in one sentence.
pub fn summary(verdict: &Verdict) -> String {
    let list = |changes: &[ChangeReport]| {
        changes
            .iter()
            .map(|c| format!("{} {}", c.source, c.change))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match verdict {
        Verdict::UpToDate => "up to date: nothing to do".into(),
        Verdict::WouldRoll {
            changes,
            paused_until: None,
        } => format!("would roll now: {}", list(changes)),
        Verdict::WouldRoll {
            changes,
            paused_until: Some(until),
        } => format!("would roll now: {}; then paused until {until}", list(changes)),
        Verdict::WouldRestart { changes } => format!("would restart now (spec.restartAt): {}", list(changes)),
        Verdict::WouldNotify { changes } => format!("would notify --webhook-url now: {}", list(changes)),
        Verdict::Acknowledge { sources } => {
            format!("acknowledged only: would record {} without rolling", sources.join(", "))
        }
        Verdict::WouldResume => "pause period over: would resume the Deployment now".into(),
        Verdict::Paused { until, pending } if pending.is_empty() => format!("paused until {until}"),
        Verdict::Paused { until, pending } => format!("paused until {until}; then rolls out: {}", list(pending)),
        Verdict::CannotVerify { sources, reason } => format!("cannot verify {}: {reason}", sources.join(", ")),
        Verdict::Excluded { by } => format!("excluded: {by}"),
        Verdict::Unreadable { reason } => format!("not a workload the reloader can read: {reason}"),
        Verdict::Deleting => "being deleted: left alone".into(),
        Verdict::Held { why, pending, .. } => format!("{why}; then rolls out: {}", list(pending)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_name_the_changes() {
        let roll = Verdict::WouldRoll {
            changes: vec![ChangeReport {
                source: "secret/db".into(),
                change: "changed",
            }],
            paused_until: Some("2026-11-26T10:05:00Z".into()),
        };
        assert_eq!(
            summary(&roll),
            "would roll now: secret/db changed; then paused until 2026-11-26T10:05:00Z"
        );
        let json = serde_json::to_value(&roll).unwrap();
        assert_eq!(json["verdict"], "would-roll");
        assert_eq!(json["changes"][0]["source"], "secret/db");
    }
}
