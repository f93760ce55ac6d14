//! Whether a workload's rollout finished with its current pod template, read from what its
//! controller reports (`metadata.generation`, `spec`, `status`), for rollout waves
//! ([`super::wave_gate`]): the next wave starts once every workload rolled in the current one is
//! healthy, and a failed one halts the rest.
//!
//! | Kind | Healthy | Failed |
//! |---|---|---|
//! | Deployment | `observedGeneration` ≥ `generation`; updated = ready = available = current replicas = `spec.replicas` | `Progressing=False`, reason `ProgressDeadlineExceeded` (Kubernetes reports it after `progressDeadlineSeconds`) |
//! | StatefulSet | observed; `updateRevision` = `currentRevision`; `readyReplicas` = `spec.replicas` (with a `partition`: the replicas above it updated) | not healthy within the deadline |
//! | DaemonSet | observed; `updatedNumberScheduled` = `numberAvailable` = `desiredNumberScheduled` | not healthy within the deadline |
//! | Argo Rollout | observed; `status.phase` `Healthy` | phase `Degraded` (Argo reports its own progress deadline so) |
//! | DeploymentConfig | observed; updated = available = current replicas = `spec.replicas` | `Progressing=False`, or not healthy within the deadline |
//! | Job | `Complete`, or a pod ready or succeeded | `Failed=True` (its backoff limit), or no pod ready within the deadline |
//! | CronJob | always: its template is read at its next run, which no wave waits for | never |
//! | extra kind (`--extra-workload-kinds`) | observed, when it reports `observedGeneration`; no `Ready` condition other than `True`; `updatedReplicas` and `readyReplicas`, when it reports both, at `spec.replicas` | not healthy within the deadline |
//!
//! StatefulSets and DaemonSets with `updateStrategy: OnDelete` are healthy once their controller
//! observed the template: their pods take it when someone deletes them, which no wave waits for.
//! A paused Deployment (paused by a person, or by a pause period until it resumes) is
//! progressing, without a deadline: Kubernetes does not count one while paused.
//!
//! The deadline is measured from a time the cluster recorded, never from the reloader's memory,
//! so a restarted reloader judges as the one before it did:
//!
//! - a Deployment with `progressDeadlineSeconds` (the API server defaults it to 600) and an Argo
//!   Rollout: their controllers report the failure; no other deadline applies;
//! - a Job: from `status.startTime` (else its creation);
//! - a DeploymentConfig, or a Deployment without a progress deadline: from the `lastUpdateTime` of
//!   its `Progressing` condition;
//! - a StatefulSet or a DaemonSet, which report no condition: from the last write to anything but
//!   its status, the latest `time` among its `metadata.managedFields` entries other than the
//!   `status` subresource's (the API server sets an entry's time when its manager changes a
//!   field; a reload changes the pod template's stamp, so its roll sets it). A later write by
//!   anyone (a scale, a label) restarts that clock.
//!
//! No recorded time at all: progressing, without a deadline (said so in its reason).
//!
//! Pure: the current time and the deadline are parameters.

use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::json::JsonAt;
use super::workload::WorkloadKind;

/// How a workload's last rollout is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RolloutHealth {
    /// Rolled out with its current template.
    Healthy,
    /// Not yet; why, for people (`reloader explain`, Events).
    Progressing(String),
    /// It will not get there by itself; why (`ProgressDeadlineExceeded`, …).
    Failed(String),
}

/// The health of a workload at `now`: [`RolloutStatus::of`] its [`RolloutFacts`], judged
/// against `deadline` where no controller reports a missed deadline itself.
pub fn rollout_health(kind: WorkloadKind, object: &Value, now: OffsetDateTime, deadline: Duration) -> RolloutHealth {
    RolloutStatus::of(kind, &RolloutFacts::read(object)).health(now, deadline)
}

/// A workload's rollout health without the clock: what the store keeps of a workload's status
/// (its status itself is dropped), judged at each use by [`RolloutStatus::health`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RolloutStatus {
    Healthy,
    Progressing { why: String, clock: DeadlineClock },
    Failed(String),
}

/// Where a progressing rollout's deadline is counted from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeadlineClock {
    /// Its controller reports a missed deadline itself (then the status says Failed).
    Reported,
    /// Since this time (Unix seconds), which the cluster recorded.
    Since(i64),
    /// No time recorded: no deadline.
    Unknown,
}

/// Which of the three a health is, for noticing a change that matters to the waves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthClass {
    Healthy,
    Progressing,
    Failed,
}

impl RolloutHealth {
    pub fn class(&self) -> HealthClass {
        match self {
            RolloutHealth::Healthy => HealthClass::Healthy,
            RolloutHealth::Progressing(_) => HealthClass::Progressing,
            RolloutHealth::Failed(_) => HealthClass::Failed,
        }
    }
}

impl RolloutStatus {
    pub fn class(&self) -> HealthClass {
        match self {
            RolloutStatus::Healthy => HealthClass::Healthy,
            RolloutStatus::Progressing { .. } => HealthClass::Progressing,
            RolloutStatus::Failed(_) => HealthClass::Failed,
        }
    }

    /// The health at `now`: a rollout progressing for longer than `deadline` since its clock
    /// started has failed.
    pub fn health(&self, now: OffsetDateTime, deadline: Duration) -> RolloutHealth {
        match self {
            RolloutStatus::Healthy => RolloutHealth::Healthy,
            RolloutStatus::Failed(why) => RolloutHealth::Failed(why.clone()),
            RolloutStatus::Progressing {
                why,
                clock: DeadlineClock::Since(since),
            } => {
                let elapsed = now.unix_timestamp().saturating_sub(*since);
                if elapsed > i64::try_from(deadline.as_secs()).unwrap_or(i64::MAX) {
                    RolloutHealth::Failed(format!(
                        "DeadlineExceeded: not healthy {}s after its rollout started ({why})",
                        deadline.as_secs()
                    ))
                } else {
                    RolloutHealth::Progressing(why.clone())
                }
            }
            RolloutStatus::Progressing {
                why,
                clock: DeadlineClock::Unknown,
            } => RolloutHealth::Progressing(format!("{why}; no start time recorded, so no deadline")),
            RolloutStatus::Progressing { why, .. } => RolloutHealth::Progressing(why.clone()),
        }
    }

    /// The status of a workload of `kind` whose object showed `facts`.
    pub fn of(kind: WorkloadKind, facts: &RolloutFacts) -> Self {
        use WorkloadKind::*;
        if kind == CronJob {
            return RolloutStatus::Healthy;
        }
        // A Job's template is immutable (a rolled Job is a new one) and it reports no
        // observed generation.
        let written = DeadlineClock::from(facts.last_write);
        if let (Some(generation), observed) = (facts.generation, facts.observed_generation)
            && kind != Job
            // An extra kind's controller may report no observed generation at all.
            && (observed.is_some() || kind.extra().is_none())
            && observed.is_none_or(|o| o < generation)
        {
            // Argo Rollouts once wrote a hash there: a value that is no number is not compared.
            if !(kind == Rollout && facts.observed_unreadable) {
                let clock = match kind {
                    Deployment if facts.progress_deadline.is_some() => DeadlineClock::Reported,
                    Rollout => DeadlineClock::Reported,
                    _ => written,
                };
                let why = format!("generation {generation} not yet observed by its controller");
                return RolloutStatus::Progressing { why, clock };
            }
        }
        let want = facts.replicas.unwrap_or(1);
        let count = |n: Option<i64>| n.unwrap_or(0);
        match kind {
            Deployment | DeploymentConfig => {
                let progressing = facts.condition("Progressing");
                if let Some(c) = progressing.filter(|c| c.status == "False") {
                    let failed = kind == DeploymentConfig || c.reason == "ProgressDeadlineExceeded";
                    if failed {
                        return RolloutStatus::Failed(c.reason.clone());
                    }
                }
                if kind == Deployment && facts.paused {
                    return RolloutStatus::Progressing {
                        why: "paused".into(),
                        clock: DeadlineClock::Reported,
                    };
                }
                let (updated, ready, available, current) = (
                    count(facts.updated),
                    count(facts.ready),
                    count(facts.available),
                    count(facts.status_replicas),
                );
                if updated == want && ready == want && available == want && current == want {
                    return RolloutStatus::Healthy;
                }
                let why = format!(
                    "{updated} of {want} replicas updated, {ready} ready, {available} available, {current} in all"
                );
                let clock = if kind == Deployment && facts.progress_deadline.is_some() {
                    DeadlineClock::Reported
                } else {
                    DeadlineClock::from(progressing.and_then(|c| c.last_update).or(facts.last_write))
                };
                RolloutStatus::Progressing { why, clock }
            }
            StatefulSet => {
                if facts.on_delete {
                    return RolloutStatus::Healthy;
                }
                let (updated, ready) = (count(facts.updated), count(facts.ready));
                let done = match facts.partition.filter(|p| *p > 0) {
                    Some(partition) => updated >= want.saturating_sub(partition) && ready == want,
                    None => facts.current_revision == facts.update_revision && ready == want,
                };
                if done {
                    return RolloutStatus::Healthy;
                }
                let revisions = if facts.current_revision == facts.update_revision {
                    String::new()
                } else {
                    ", revision not yet current".into()
                };
                RolloutStatus::Progressing {
                    why: format!("{updated} of {want} replicas updated, {ready} ready{revisions}"),
                    clock: written,
                }
            }
            DaemonSet => {
                if facts.on_delete {
                    return RolloutStatus::Healthy;
                }
                let (desired, updated, available) = (
                    count(facts.desired_scheduled),
                    count(facts.updated_scheduled),
                    count(facts.number_available),
                );
                if updated == desired && available == desired {
                    return RolloutStatus::Healthy;
                }
                RolloutStatus::Progressing {
                    why: format!("{updated} of {desired} scheduled pods updated, {available} available"),
                    clock: written,
                }
            }
            Rollout => match facts.phase.as_deref() {
                Some("Healthy") => RolloutStatus::Healthy,
                Some("Degraded") => RolloutStatus::Failed(match &facts.message {
                    Some(message) if !message.is_empty() => format!("Degraded: {message}"),
                    _ => "Degraded".into(),
                }),
                phase => RolloutStatus::Progressing {
                    why: format!("phase {}", phase.unwrap_or("not reported yet")),
                    clock: DeadlineClock::Reported,
                },
            },
            Job => {
                if let Some(failed) = facts.condition("Failed").filter(|c| c.status == "True") {
                    return RolloutStatus::Failed(if failed.reason.is_empty() {
                        "Failed".into()
                    } else {
                        failed.reason.clone()
                    });
                }
                let complete = ["Complete", "SuccessCriteriaMet"]
                    .iter()
                    .any(|t| facts.condition(t).is_some_and(|c| c.status == "True"));
                if complete || count(facts.job_ready) > 0 || count(facts.job_succeeded) > 0 {
                    return RolloutStatus::Healthy;
                }
                RolloutStatus::Progressing {
                    why: "no pod ready yet".into(),
                    clock: DeadlineClock::from(facts.job_start.or(facts.created)),
                }
            }
            CronJob => RolloutStatus::Healthy,
            // Any kind with a pod template: what most controllers report, read if reported.
            Extra(_) => {
                if let Some(c) = facts.condition("Ready").filter(|c| c.status != "True") {
                    let reason = if c.reason.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", c.reason)
                    };
                    return RolloutStatus::Progressing {
                        why: format!("Ready is {}{reason}", c.status),
                        clock: DeadlineClock::from(c.last_update.or(facts.last_write)),
                    };
                }
                if let (Some(updated), Some(ready)) = (facts.updated, facts.ready)
                    && (updated < want || ready < want)
                {
                    return RolloutStatus::Progressing {
                        why: format!("{updated} of {want} replicas updated, {ready} ready"),
                        clock: written,
                    };
                }
                RolloutStatus::Healthy
            }
        }
    }
}

impl From<Option<i64>> for DeadlineClock {
    fn from(since: Option<i64>) -> Self {
        since.map_or(DeadlineClock::Unknown, DeadlineClock::Since)
    }
}

/// One status condition, as far as the health reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Condition {
    pub type_: String,
    pub status: String,
    pub reason: String,
    /// `lastUpdateTime` (Unix seconds), else `lastTransitionTime`.
    pub last_update: Option<i64>,
}

/// What [`RolloutStatus::of`] reads of a workload, taken from the object of any kind (each kind
/// has the fields it has), so the watchers can take it while parsing, before they know the kind,
/// and drop the status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RolloutFacts {
    pub generation: Option<i64>,
    pub observed_generation: Option<i64>,
    /// `status.observedGeneration` is there but no number (an old Argo Rollout's hash).
    pub observed_unreadable: bool,
    pub created: Option<i64>,
    /// The latest managed-fields time outside the status subresource.
    pub last_write: Option<i64>,
    pub replicas: Option<i64>,
    pub paused: bool,
    pub progress_deadline: Option<i64>,
    pub on_delete: bool,
    pub partition: Option<i64>,
    pub status_replicas: Option<i64>,
    pub updated: Option<i64>,
    pub ready: Option<i64>,
    pub available: Option<i64>,
    pub current_revision: Option<String>,
    pub update_revision: Option<String>,
    pub desired_scheduled: Option<i64>,
    pub updated_scheduled: Option<i64>,
    pub number_available: Option<i64>,
    pub phase: Option<String>,
    pub message: Option<String>,
    pub job_ready: Option<i64>,
    pub job_succeeded: Option<i64>,
    pub job_start: Option<i64>,
    pub conditions: Vec<Condition>,
}

impl RolloutFacts {
    /// Reads the facts of `object`; a field of the wrong type reads as missing.
    pub fn read(object: &Value) -> Self {
        let int = |pointer: &str| object.at(pointer).and_then(Value::as_i64);
        let text = |pointer: &str| object.at(pointer).and_then(Value::as_str).map(str::to_string);
        let instant = |pointer: &str| object.at(pointer).and_then(Value::as_str).and_then(unix_seconds);
        let observed = object.at("/status/observedGeneration");
        let observed_generation = observed.and_then(|o| o.as_i64().or_else(|| o.as_str()?.parse().ok()));
        let strategy = text("/spec/updateStrategy/type");
        let conditions = object
            .at("/status/conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| {
                let field = |name: &str| c.get(name).and_then(Value::as_str).unwrap_or_default().to_string();
                let time = |name: &str| c.get(name).and_then(Value::as_str).and_then(unix_seconds);
                Condition {
                    type_: field("type"),
                    status: field("status"),
                    reason: field("reason"),
                    last_update: time("lastUpdateTime").or_else(|| time("lastTransitionTime")),
                }
            })
            .collect();
        Self {
            generation: int("/metadata/generation"),
            observed_unreadable: observed.is_some() && observed_generation.is_none(),
            observed_generation,
            created: instant("/metadata/creationTimestamp"),
            last_write: last_write(object),
            replicas: int("/spec/replicas"),
            paused: object.at("/spec/paused").and_then(Value::as_bool) == Some(true),
            progress_deadline: int("/spec/progressDeadlineSeconds"),
            on_delete: strategy.as_deref() == Some("OnDelete"),
            partition: int("/spec/updateStrategy/rollingUpdate/partition"),
            status_replicas: int("/status/replicas"),
            updated: int("/status/updatedReplicas"),
            ready: int("/status/readyReplicas"),
            available: int("/status/availableReplicas"),
            current_revision: text("/status/currentRevision"),
            update_revision: text("/status/updateRevision"),
            desired_scheduled: int("/status/desiredNumberScheduled"),
            updated_scheduled: int("/status/updatedNumberScheduled"),
            number_available: int("/status/numberAvailable"),
            phase: text("/status/phase"),
            message: text("/status/message"),
            job_ready: int("/status/ready"),
            job_succeeded: int("/status/succeeded"),
            job_start: instant("/status/startTime"),
            conditions,
        }
    }

    fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }
}

/// The latest `time` of the object's managed-fields entries other than the status
/// subresource's: the last write to its spec or metadata.
fn last_write(object: &Value) -> Option<i64> {
    object
        .at("/metadata/managedFields")?
        .as_array()?
        .iter()
        .filter(|entry| entry.get("subresource").and_then(Value::as_str) != Some("status"))
        .filter_map(|entry| entry.get("time").and_then(Value::as_str).and_then(unix_seconds))
        .max()
}

fn unix_seconds(text: &str) -> Option<i64> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DEADLINE: Duration = Duration::from_secs(600);

    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &Rfc3339).unwrap()
    }

    fn now() -> OffsetDateTime {
        at("2026-03-01T12:00:00Z")
    }

    fn health(kind: WorkloadKind, object: &Value) -> RolloutHealth {
        rollout_health(kind, object, now(), DEADLINE)
    }

    fn progressing(h: &RolloutHealth) -> bool {
        matches!(h, RolloutHealth::Progressing(_))
    }

    fn deployment(spec: Value, status: Value) -> Value {
        json!({"metadata": {"generation": 3}, "spec": spec, "status": status})
    }

    fn done_deployment() -> Value {
        deployment(
            json!({"replicas": 2, "progressDeadlineSeconds": 600}),
            json!({"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2,
                   "availableReplicas": 2,
                   "conditions": [{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}),
        )
    }

    #[test]
    fn deployments() {
        use WorkloadKind::Deployment;
        assert_eq!(health(Deployment, &done_deployment()), RolloutHealth::Healthy);
        // Not observed yet: whatever the counts say is about the template before.
        let mut unobserved = done_deployment();
        unobserved["metadata"]["generation"] = json!(4);
        assert!(progressing(&health(Deployment, &unobserved)));
        // A stale failure of the rollout before does not count once a new one is not observed.
        unobserved["status"]["conditions"][0] =
            json!({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"});
        assert!(progressing(&health(Deployment, &unobserved)));
        // Each count short of the replicas keeps it progressing.
        for field in ["updatedReplicas", "readyReplicas", "availableReplicas"] {
            let mut short = done_deployment();
            short["status"][field] = json!(1);
            assert!(progressing(&health(Deployment, &short)), "{field}");
            short["status"].as_object_mut().unwrap().remove(field);
            assert!(progressing(&health(Deployment, &short)), "{field} missing");
        }
        // Old pods still there.
        let mut surge = done_deployment();
        surge["status"]["replicas"] = json!(3);
        assert!(progressing(&health(Deployment, &surge)));
        // Kubernetes gave up: failed, whatever the time.
        let mut failed = done_deployment();
        failed["status"]["updatedReplicas"] = json!(1);
        failed["status"]["conditions"][0] = json!({"type": "Progressing", "status": "False",
            "reason": "ProgressDeadlineExceeded", "lastUpdateTime": "2026-03-01T11:59:00Z"});
        assert_eq!(
            health(Deployment, &failed),
            RolloutHealth::Failed("ProgressDeadlineExceeded".into())
        );
        // With a progress deadline, Kubernetes' word is awaited however long it takes.
        let mut slow = done_deployment();
        slow["status"]["readyReplicas"] = json!(0);
        slow["status"]["conditions"][0]["lastUpdateTime"] = json!("2026-02-01T00:00:00Z");
        assert!(progressing(&health(Deployment, &slow)));
        // Without one, the condition's last update starts our deadline.
        slow["spec"].as_object_mut().unwrap().remove("progressDeadlineSeconds");
        assert!(matches!(health(Deployment, &slow), RolloutHealth::Failed(r) if r.starts_with("DeadlineExceeded")));
        slow["status"]["conditions"][0]["lastUpdateTime"] = json!("2026-03-01T11:55:00Z");
        assert!(progressing(&health(Deployment, &slow)));
        // Paused: progressing, no deadline.
        let mut paused = done_deployment();
        paused["spec"]["paused"] = json!(true);
        paused["status"]["updatedReplicas"] = json!(0);
        assert_eq!(health(Deployment, &paused), RolloutHealth::Progressing("paused".into()));
        // No replicas field: one.
        let one = deployment(
            json!({}),
            json!({"observedGeneration": 3, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1}),
        );
        assert_eq!(health(Deployment, &one), RolloutHealth::Healthy);
        // Scaled to zero: nothing to wait for.
        let zero = deployment(json!({"replicas": 0}), json!({"observedGeneration": 3}));
        assert_eq!(health(Deployment, &zero), RolloutHealth::Healthy);
        // No status at all (just created): progressing.
        assert!(progressing(&health(
            Deployment,
            &json!({"metadata": {"generation": 1}})
        )));
    }

    fn managed(times: &[(&str, Option<&str>)]) -> Value {
        json!(
            times
                .iter()
                .map(|(time, sub)| match sub {
                    Some(s) => json!({"manager": "m", "time": time, "subresource": s}),
                    None => json!({"manager": "m", "time": time}),
                })
                .collect::<Vec<_>>()
        )
    }

    #[test]
    fn statefulsets() {
        use WorkloadKind::StatefulSet;
        let sts = |status: Value| {
            json!({"metadata": {"generation": 2,
                                "managedFields": managed(&[("2026-03-01T11:58:00Z", None),
                                                           ("2026-03-01T11:59:30Z", Some("status"))])},
                   "spec": {"replicas": 3}, "status": status})
        };
        let done = sts(
            json!({"observedGeneration": 2, "readyReplicas": 3, "updatedReplicas": 3,
                              "currentRevision": "web-2", "updateRevision": "web-2"}),
        );
        assert_eq!(health(StatefulSet, &done), RolloutHealth::Healthy);
        let rolling = sts(
            json!({"observedGeneration": 2, "readyReplicas": 3, "updatedReplicas": 1,
                                 "currentRevision": "web-1", "updateRevision": "web-2"}),
        );
        assert!(progressing(&health(StatefulSet, &rolling)));
        let unready = sts(json!({"observedGeneration": 2, "readyReplicas": 2,
                                 "currentRevision": "web-2", "updateRevision": "web-2"}));
        assert!(progressing(&health(StatefulSet, &unready)));
        // The deadline runs from the last write to the spec (the status subresource's is not
        // one): 2 minutes ago.
        assert!(progressing(&rollout_health(
            StatefulSet,
            &rolling,
            now(),
            Duration::from_secs(180)
        )));
        assert!(matches!(
            rollout_health(StatefulSet, &rolling, now(), Duration::from_secs(60)),
            RolloutHealth::Failed(r) if r.starts_with("DeadlineExceeded")
        ));
        // A partition: the replicas above it updated is done.
        let mut partitioned = rolling.clone();
        partitioned["spec"]["updateStrategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 2}});
        assert_eq!(health(StatefulSet, &partitioned), RolloutHealth::Healthy);
        partitioned["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = json!(1);
        assert!(progressing(&health(StatefulSet, &partitioned)));
        // OnDelete: the pods take the template when deleted, which nobody waits for.
        let mut on_delete = rolling.clone();
        on_delete["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
        assert_eq!(health(StatefulSet, &on_delete), RolloutHealth::Healthy);
        let mut unobserved = on_delete;
        unobserved["status"]["observedGeneration"] = json!(1);
        assert!(progressing(&health(StatefulSet, &unobserved)));
        // No managed fields: no deadline, and said so.
        let mut bare = rolling;
        bare["metadata"].as_object_mut().unwrap().remove("managedFields");
        match rollout_health(StatefulSet, &bare, now(), Duration::ZERO) {
            RolloutHealth::Progressing(why) => assert!(why.contains("no deadline"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn daemonsets() {
        use WorkloadKind::DaemonSet;
        let ds = |status: Value| {
            json!({"metadata": {"generation": 5, "managedFields": managed(&[("2026-03-01T11:00:00Z", None)])},
                   "spec": {}, "status": status})
        };
        let done = ds(json!({"observedGeneration": 5, "desiredNumberScheduled": 2,
                             "updatedNumberScheduled": 2, "numberAvailable": 2}));
        assert_eq!(health(DaemonSet, &done), RolloutHealth::Healthy);
        let rolling = ds(json!({"observedGeneration": 5, "desiredNumberScheduled": 2,
                                "updatedNumberScheduled": 1, "numberAvailable": 2}));
        // An hour since the last write, past the 10-minute deadline.
        assert!(matches!(health(DaemonSet, &rolling), RolloutHealth::Failed(_)));
        assert!(progressing(&rollout_health(
            DaemonSet,
            &rolling,
            now(),
            Duration::from_secs(7200)
        )));
        let unavailable = ds(json!({"observedGeneration": 5, "desiredNumberScheduled": 2,
                                    "updatedNumberScheduled": 2, "numberAvailable": 1}));
        assert!(!matches!(
            rollout_health(DaemonSet, &unavailable, now(), Duration::from_secs(7200)),
            RolloutHealth::Healthy
        ));
        let mut on_delete = rolling;
        on_delete["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
        assert_eq!(health(DaemonSet, &on_delete), RolloutHealth::Healthy);
    }

    #[test]
    fn argo_rollouts() {
        use WorkloadKind::Rollout;
        let rollout = |observed: Value, phase: &str| {
            json!({"metadata": {"generation": 7}, "spec": {},
                   "status": {"observedGeneration": observed, "phase": phase, "message": "boom"}})
        };
        assert_eq!(health(Rollout, &rollout(json!("7"), "Healthy")), RolloutHealth::Healthy);
        assert_eq!(health(Rollout, &rollout(json!(7), "Healthy")), RolloutHealth::Healthy);
        // Healthy from the template before.
        assert!(progressing(&health(Rollout, &rollout(json!("6"), "Healthy"))));
        assert!(progressing(&health(Rollout, &rollout(json!("7"), "Progressing"))));
        assert!(progressing(&health(Rollout, &rollout(json!("7"), "Paused"))));
        assert_eq!(
            health(Rollout, &rollout(json!("7"), "Degraded")),
            RolloutHealth::Failed("Degraded: boom".into())
        );
        // A hash where the generation should be is not compared.
        assert_eq!(
            health(Rollout, &rollout(json!("5d8f9c"), "Healthy")),
            RolloutHealth::Healthy
        );
    }

    #[test]
    fn jobs_and_cronjobs() {
        use WorkloadKind::{CronJob, Job};
        assert_eq!(
            health(CronJob, &json!({"metadata": {"generation": 9}})),
            RolloutHealth::Healthy
        );
        let job = |status: Value| {
            json!({"metadata": {"generation": 1, "creationTimestamp": "2026-03-01T11:30:00Z"},
                   "spec": {}, "status": status})
        };
        let started = job(json!({"startTime": "2026-03-01T11:55:00Z", "active": 1, "ready": 0}));
        assert!(progressing(&health(Job, &started)));
        assert!(matches!(
            rollout_health(Job, &started, now(), Duration::from_secs(60)),
            RolloutHealth::Failed(_)
        ));
        // Not started: from its creation, 30 minutes ago.
        assert!(matches!(health(Job, &job(json!({}))), RolloutHealth::Failed(_)));
        assert_eq!(
            health(
                Job,
                &job(json!({"startTime": "2026-03-01T11:55:00Z", "active": 1, "ready": 1}))
            ),
            RolloutHealth::Healthy
        );
        assert_eq!(health(Job, &job(json!({"succeeded": 1}))), RolloutHealth::Healthy);
        let complete = job(json!({"conditions": [{"type": "Complete", "status": "True"}]}));
        assert_eq!(health(Job, &complete), RolloutHealth::Healthy);
        let failed =
            job(json!({"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}));
        assert_eq!(
            health(Job, &failed),
            RolloutHealth::Failed("BackoffLimitExceeded".into())
        );
    }

    #[test]
    fn deployment_configs() {
        use WorkloadKind::DeploymentConfig;
        let dc = |status: Value| json!({"metadata": {"generation": 2}, "spec": {"replicas": 1}, "status": status});
        let done = dc(
            json!({"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1,
                             "readyReplicas": 1}),
        );
        assert_eq!(health(DeploymentConfig, &done), RolloutHealth::Healthy);
        let failed = dc(json!({"observedGeneration": 2, "conditions": [
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}));
        assert_eq!(
            health(DeploymentConfig, &failed),
            RolloutHealth::Failed("ProgressDeadlineExceeded".into())
        );
        let rolling = dc(json!({"observedGeneration": 2, "replicas": 1, "conditions": [
            {"type": "Progressing", "status": "True", "lastUpdateTime": "2026-03-01T11:59:00Z"}]}));
        assert!(progressing(&health(DeploymentConfig, &rolling)));
    }

    #[test]
    fn extra_kinds_are_judged_by_what_they_report() {
        let spec = "rollout-status.test.io/v1alpha1/CloneSet".parse().unwrap();
        let kind = WorkloadKind::Extra(crate::core::workload::extra::register(&spec).unwrap());
        let set = |status: Value| json!({"metadata": {"generation": 3}, "spec": {"replicas": 2}, "status": status});
        assert_eq!(
            health(kind, &set(json!({}))),
            RolloutHealth::Healthy,
            "nothing reported"
        );
        let done = set(json!({"observedGeneration": 3, "updatedReplicas": 2, "readyReplicas": 2}));
        assert_eq!(health(kind, &done), RolloutHealth::Healthy);
        let unobserved = set(json!({"observedGeneration": 2, "updatedReplicas": 2, "readyReplicas": 2}));
        assert!(progressing(&health(kind, &unobserved)));
        let rolling = set(json!({"observedGeneration": 3, "updatedReplicas": 1, "readyReplicas": 2}));
        assert_eq!(
            RolloutStatus::of(kind, &RolloutFacts::read(&rolling)),
            RolloutStatus::Progressing {
                why: "1 of 2 replicas updated, 2 ready".into(),
                clock: DeadlineClock::Unknown
            }
        );
        let not_ready = set(
            json!({"conditions": [{"type": "Ready", "status": "False", "reason": "Rolling",
                                                   "lastTransitionTime": "2026-03-01T11:00:00Z"}]}),
        );
        assert_eq!(
            health(kind, &not_ready),
            RolloutHealth::Failed(
                "DeadlineExceeded: not healthy 600s after its rollout started (Ready is False (Rolling))".into()
            )
        );
    }

    #[test]
    fn odd_input_never_panics_and_reads_as_missing() {
        for object in [
            json!(null),
            json!("text"),
            json!({"metadata": "x", "spec": [], "status": 3}),
            json!({"metadata": {"generation": "two", "managedFields": [{"time": 5}, "x"]},
                   "status": {"conditions": [1, {"type": 2}], "replicas": "many"}}),
            json!({"metadata": {"generation": i64::MAX}, "status": {"observedGeneration": i64::MIN}}),
        ] {
            for kind in WorkloadKind::ALL {
                let _ = rollout_health(kind, &object, now(), Duration::MAX);
                let _ = rollout_health(kind, &object, OffsetDateTime::UNIX_EPOCH, Duration::ZERO);
            }
        }
    }

    #[test]
    fn the_status_is_the_health_without_the_clock() {
        let facts = RolloutFacts::read(&done_deployment());
        let status = RolloutStatus::of(WorkloadKind::Deployment, &facts);
        assert_eq!(status, RolloutStatus::Healthy);
        assert_eq!(status.class(), HealthClass::Healthy);
        let stuck = RolloutStatus::Progressing {
            why: "x".into(),
            clock: DeadlineClock::Since(now().unix_timestamp() - 10),
        };
        assert_eq!(
            stuck.health(now(), Duration::from_secs(10)).class(),
            HealthClass::Progressing
        );
        assert_eq!(stuck.health(now(), Duration::from_secs(9)).class(), HealthClass::Failed);
    }
}
