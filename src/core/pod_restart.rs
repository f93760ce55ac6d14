//! Pod restarts as a strategy (issue 25): for a workload whose controller does not replace its
//! pods when the reloader changes its template, or that asks not to have its template changed,
//! the reloader deletes (evicts) the pods still running what came before, one at a time.
//!
//! - **Which workloads** ([`restart_mode`]): a StatefulSet or DaemonSet with `updateStrategy:
//!   OnDelete` (automatically: its template is stamped as for any other kind, and nothing else
//!   would restart its pods), and a Deployment, StatefulSet or DaemonSet annotated
//!   `reloader.stakater.com/rollout-strategy: restart` (its template is left alone; the hashes
//!   go to its metadata with the time of the restart, `reloader.stakater.com/restarted-at`).
//!   Argo Rollouts keep Stakater's meaning of `restart` (`spec.restartAt`).
//! - **Which pods are old** ([`RestartMode::is_old`]), read from the pods themselves so a
//!   restarted reloader resumes without deleting a pod twice: under OnDelete, a pod whose
//!   reloader stamp (the template annotation `reloader.stakater.com/hashes` and the
//!   `STAKATER_*` env vars, which a pod copies from its template) differs from its workload
//!   template's; so a person's own edit of an OnDelete workload (an image, a label) restarts
//!   nothing, only what the reloader stamped does. Under `restart`, a pod created before the
//!   recorded restart (creation times have a one-second resolution: a pod created in the
//!   second of the restart counts as new; it started after the change that caused it).
//! - **The next step** ([`next_step`]): nothing while a pod of the workload is terminating, while
//!   fewer pods exist than the workload wants, or while one is not Ready; else the next old pod
//!   is evicted: the highest ordinal first for a StatefulSet, else the oldest pod first.
//!   So at most one pod is missing or not Ready because of the reloader at any time, and each
//!   replacement is Ready before the next eviction. A PodDisruptionBudget may refuse an
//!   eviction; the engine then looks again later.
//!
//! Pure: the engine lists the pods and evicts ([`crate::engine`]'s `restarts`).

use std::cmp::Reverse;

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::json::JsonAt;
use super::vocabulary::{RolloutStrategy, fixed, parse_rollout_strategy};
use super::workload::{Workload, WorkloadKind};

/// How a workload's pods are restarted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestartMode {
    /// `updateStrategy: OnDelete`: the pods whose reloader stamp is not the template's (this
    /// stamp) are old.
    Stamp(String),
    /// `rollout-strategy: restart`: the pods created before this time (Unix seconds) are old;
    /// `None` when no restart was recorded yet.
    Since(Option<i64>),
}

/// Whether `kind` may take `rollout-strategy: restart` as pod restarts (Argo Rollouts take it as
/// Stakater does).
pub fn restartable(kind: WorkloadKind) -> bool {
    matches!(
        kind,
        WorkloadKind::Deployment | WorkloadKind::StatefulSet | WorkloadKind::DaemonSet
    )
}

/// Whether `workload` is annotated `rollout-strategy: restart` and restarts its pods for it.
pub fn restart_strategy(workload: &Workload<'_>) -> bool {
    restartable(workload.kind)
        && workload
            .annotation(fixed::ROLLOUT_STRATEGY)
            .is_some_and(|v| parse_rollout_strategy(fixed::ROLLOUT_STRATEGY, v) == Ok(RolloutStrategy::Restart))
}

/// Whether `workload` is a StatefulSet or DaemonSet with `updateStrategy: OnDelete`.
pub fn on_delete(workload: &Workload<'_>) -> bool {
    matches!(workload.kind, WorkloadKind::StatefulSet | WorkloadKind::DaemonSet)
        && workload.object.at("/spec/updateStrategy/type").and_then(Value::as_str) == Some("OnDelete")
}

/// How `workload`'s pods are restarted, if they are.
pub fn restart_mode(workload: &Workload<'_>) -> Option<RestartMode> {
    if restart_strategy(workload) {
        let since = workload.annotation(fixed::RESTARTED_AT).and_then(parse_time);
        return Some(RestartMode::Since(since));
    }
    if on_delete(workload) {
        return Some(RestartMode::Stamp(stamp_of(workload.template().ok()?)));
    }
    None
}

impl RestartMode {
    /// Whether a pod may be old at all: a workload the reloader never stamped or restarted has
    /// no pod to restart (so its pods are not even listed).
    pub fn may_restart(&self) -> bool {
        match self {
            RestartMode::Stamp(stamp) => !stamp.is_empty(),
            RestartMode::Since(since) => since.is_some(),
        }
    }

    /// Whether `pod` runs what came before.
    pub fn is_old(&self, pod: &PodFacts) -> bool {
        match self {
            RestartMode::Stamp(stamp) => !stamp.is_empty() && pod.stamp != *stamp,
            RestartMode::Since(Some(since)) => pod.created.is_some_and(|c| c < *since),
            RestartMode::Since(None) => false,
        }
    }
}

/// RFC 3339, as Unix seconds.
pub fn parse_time(text: &str) -> Option<i64> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp)
}

/// The reloader's stamp in a pod template (or a pod, which carries its template's metadata and
/// spec): the `reloader.stakater.com/hashes` annotation and every `STAKATER_*` env var of its
/// containers and init containers, in order. Empty when it has none.
pub fn stamp_of(template: &Value) -> String {
    let mut stamp = String::new();
    if let Some(hashes) = template
        .at("/metadata/annotations")
        .and_then(|a| a.get(fixed::TEMPLATE_HASHES))
        .and_then(Value::as_str)
    {
        stamp.push_str(hashes);
    }
    for list in ["/spec/initContainers", "/spec/containers"] {
        let containers = template
            .at(list)
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        for env in containers.iter().filter_map(|c| c.get("env")?.as_array()) {
            for var in env {
                let name = var.get("name").and_then(Value::as_str).unwrap_or_default();
                if name.starts_with("STAKATER_") {
                    let value = var.get("value").and_then(Value::as_str).unwrap_or_default();
                    stamp.push_str(&format!(";{name}={value}"));
                }
            }
        }
    }
    stamp
}

/// What a restart reads of one pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodFacts {
    pub name: String,
    pub uid: String,
    /// Its `Ready` condition is `True`.
    pub ready: bool,
    /// It has a `deletionTimestamp`.
    pub terminating: bool,
    /// Its creation, Unix seconds.
    pub created: Option<i64>,
    /// Its reloader stamp ([`stamp_of`]).
    pub stamp: String,
}

impl PodFacts {
    /// The facts of a pod object; `None` without a name.
    pub fn read(pod: &Value) -> Option<Self> {
        let name = pod.at("/metadata/name")?.as_str()?.to_string();
        let text = |p: &str| pod.at(p).and_then(Value::as_str);
        let ready = pod
            .at("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter().any(|c| {
                    c.get("type").and_then(Value::as_str) == Some("Ready")
                        && c.get("status").and_then(Value::as_str) == Some("True")
                })
            });
        Some(Self {
            name,
            uid: text("/metadata/uid").unwrap_or_default().to_string(),
            ready,
            terminating: pod.at("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null()),
            created: text("/metadata/creationTimestamp").and_then(parse_time),
            stamp: stamp_of(pod),
        })
    }
}

/// Whether `pod` belongs to the workload `workload` of `kind`: its controller is the
/// StatefulSet or DaemonSet itself (by uid), or for a Deployment a ReplicaSet named after it and
/// the pod's `pod-template-hash` (`<deployment>-<hash>`, as the Deployment controller names them).
pub fn owned_by(pod: &Value, kind: WorkloadKind, workload: &Value) -> bool {
    let Some(owner) = pod
        .at("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .and_then(|os| {
            os.iter()
                .find(|o| o.get("controller").and_then(Value::as_bool) == Some(true))
        })
    else {
        return false;
    };
    let field = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    match kind {
        WorkloadKind::StatefulSet | WorkloadKind::DaemonSet => {
            let uid = workload.at("/metadata/uid").and_then(Value::as_str);
            field(owner, "kind").as_deref() == Some(kind.as_str())
                && uid.is_some()
                && field(owner, "uid").as_deref() == uid
        }
        WorkloadKind::Deployment => {
            let name = workload
                .at("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let hash = pod
                .at("/metadata/labels/pod-template-hash")
                .and_then(Value::as_str)
                .unwrap_or_default();
            field(owner, "kind").as_deref() == Some("ReplicaSet")
                && !hash.is_empty()
                && field(owner, "name") == Some(format!("{name}-{hash}"))
        }
        _ => false,
    }
}

/// The server-side label selector of a workload's pods: its `spec.selector.matchLabels`
/// (`matchExpressions` are not sent: ownership is checked on each pod anyway). `None` when it
/// has none (then every pod of the namespace is listed and checked).
pub fn label_selector(workload: &Value) -> Option<String> {
    let labels = workload.at("/spec/selector/matchLabels")?.as_object()?;
    let parts: Vec<String> = labels
        .iter()
        .filter_map(|(k, v)| Some(format!("{k}={}", v.as_str()?)))
        .collect();
    (!parts.is_empty()).then(|| parts.join(","))
}

/// How many pods the workload wants: `spec.replicas` (1 when unset), or a DaemonSet's
/// `status.desiredNumberScheduled`; `None` when it is not told (a DaemonSet never observed).
pub fn wanted_pods(kind: WorkloadKind, workload: &Value) -> Option<usize> {
    let number = |p: &str| {
        workload
            .at(p)
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
    };
    match kind {
        WorkloadKind::DaemonSet => number("/status/desiredNumberScheduled"),
        _ => Some(number("/spec/replicas").unwrap_or(1)),
    }
}

/// How far a restart is: `done` of `total` pods run the new content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} of {} done", self.done, self.total)
    }
}

/// What to do next about a workload's pods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// No old pod left.
    Done,
    /// Old pods remain; not now: why.
    Wait { why: String, progress: Progress },
    /// Evict this old pod now.
    Evict { pod: PodFacts, progress: Progress },
}

/// The StatefulSet ordinal of a pod name (`web-2` → 2).
fn ordinal(name: &str) -> Option<u64> {
    name.rsplit_once('-')?.1.parse().ok()
}

/// The next step for the pods of a workload of `kind` (`pods`: those it owns) restarted by
/// `mode`, wanting `wanted` pods (`None`: unknown, then it waits).
pub fn next_step(kind: WorkloadKind, mode: &RestartMode, wanted: Option<usize>, pods: &[PodFacts]) -> Step {
    let live: Vec<&PodFacts> = pods.iter().filter(|p| !p.terminating).collect();
    let mut old: Vec<&PodFacts> = live.iter().copied().filter(|p| mode.is_old(p)).collect();
    if old.is_empty() {
        return Step::Done;
    }
    let total = wanted.unwrap_or(0).max(live.len());
    let progress = Progress {
        done: total.saturating_sub(old.len()),
        total,
    };
    let wait = |why: String| Step::Wait { why, progress };
    if let Some(p) = pods.iter().find(|p| p.terminating) {
        return wait(format!("pod {} is terminating", p.name));
    }
    let Some(wanted) = wanted else {
        return wait("the number of pods wanted is not known yet".into());
    };
    if live.len() < wanted {
        return wait(format!("{} of {wanted} pods exist", live.len()));
    }
    if let Some(p) = live.iter().find(|p| !p.ready) {
        return wait(format!("pod {} is not ready", p.name));
    }
    if kind == WorkloadKind::StatefulSet {
        old.sort_by_key(|p| (Reverse(ordinal(&p.name)), p.name.clone()));
    } else {
        old.sort_by_key(|p| (p.created, p.name.clone()));
    }
    let pod = old[0].clone();
    Step::Evict { pod, progress }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn pod(name: &str, stamp: &str, ready: bool) -> PodFacts {
        PodFacts {
            name: name.into(),
            uid: format!("uid-{name}-{stamp}"),
            ready,
            terminating: false,
            created: Some(100),
            stamp: stamp.into(),
        }
    }

    fn sts(strategy: &str, template_hashes: &str) -> Value {
        json!({"metadata": {"name": "web", "uid": "u1", "annotations": {}},
               "spec": {"replicas": 3, "updateStrategy": {"type": strategy},
                        "selector": {"matchLabels": {"app": "web"}},
                        "template": {"metadata": {"annotations": {"reloader.stakater.com/hashes": template_hashes}},
                                     "spec": {"containers": [{"name": "c"}]}}}})
    }

    #[test]
    fn modes() {
        let on_delete = sts("OnDelete", "h2");
        let w = Workload::new(WorkloadKind::StatefulSet, &on_delete);
        assert_eq!(restart_mode(&w), Some(RestartMode::Stamp("h2".into())));
        let rolling = sts("RollingUpdate", "h2");
        assert_eq!(restart_mode(&Workload::new(WorkloadKind::StatefulSet, &rolling)), None);
        let mut annotated = sts("RollingUpdate", "h2");
        annotated["metadata"]["annotations"][fixed::ROLLOUT_STRATEGY] = json!("restart");
        annotated["metadata"]["annotations"][fixed::RESTARTED_AT] = json!("1970-01-01T00:01:40Z");
        assert_eq!(
            restart_mode(&Workload::new(WorkloadKind::StatefulSet, &annotated)),
            Some(RestartMode::Since(Some(100)))
        );
        // Argo keeps `spec.restartAt`; a Deployment has no OnDelete.
        assert_eq!(restart_mode(&Workload::new(WorkloadKind::Rollout, &annotated)), None);
        assert_eq!(restart_mode(&Workload::new(WorkloadKind::Deployment, &on_delete)), None);
        // Never stamped: nothing to restart, pods not even listed.
        assert!(!RestartMode::Stamp(String::new()).may_restart());
        assert!(!RestartMode::Since(None).may_restart());
    }

    #[test]
    fn stamps_read_annotation_and_env() {
        let t = json!({"metadata": {"annotations": {"reloader.stakater.com/hashes": "x"}},
                       "spec": {"initContainers": [{"env": [{"name": "STAKATER_A_SECRET", "value": "1"}]}],
                                "containers": [{"env": [{"name": "OTHER", "value": "2"},
                                                        {"name": "STAKATER_B_CONFIGMAP", "value": "3"}]}]}});
        assert_eq!(stamp_of(&t), "x;STAKATER_A_SECRET=1;STAKATER_B_CONFIGMAP=3");
        assert_eq!(stamp_of(&json!(null)), "");
        assert_eq!(stamp_of(&json!({"spec": {"containers": "no"}})), "");
    }

    #[test]
    fn pod_facts_and_ownership() {
        let p = json!({"metadata": {"name": "web-2", "uid": "p", "creationTimestamp": "1970-01-01T00:01:40Z",
                                    "annotations": {"reloader.stakater.com/hashes": "h1"},
                                    "ownerReferences": [{"kind": "StatefulSet", "name": "web", "uid": "u1", "controller": true}]},
                       "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        let facts = PodFacts::read(&p).expect("a pod");
        assert_eq!(
            facts,
            PodFacts {
                name: "web-2".into(),
                uid: "p".into(),
                ready: true,
                terminating: false,
                created: Some(100),
                stamp: "h1".into()
            }
        );
        let set = sts("OnDelete", "h2");
        assert!(owned_by(&p, WorkloadKind::StatefulSet, &set));
        assert!(!owned_by(&p, WorkloadKind::DaemonSet, &set));
        let other = json!({"metadata": {"uid": "u2"}});
        assert!(!owned_by(&p, WorkloadKind::StatefulSet, &other));
        let rs = json!({"metadata": {"name": "api-5d8f", "labels": {"pod-template-hash": "5d8f"},
                                     "ownerReferences": [{"kind": "ReplicaSet", "name": "api-5d8f", "controller": true}]}});
        assert!(owned_by(
            &rs,
            WorkloadKind::Deployment,
            &json!({"metadata": {"name": "api"}})
        ));
        assert!(!owned_by(
            &rs,
            WorkloadKind::Deployment,
            &json!({"metadata": {"name": "api-5"}})
        ));
        assert!(PodFacts::read(&json!({})).is_none());
        assert_eq!(label_selector(&set).as_deref(), Some("app=web"));
        assert_eq!(label_selector(&json!({})), None);
        assert_eq!(wanted_pods(WorkloadKind::StatefulSet, &set), Some(3));
        assert_eq!(wanted_pods(WorkloadKind::DaemonSet, &set), None);
    }

    #[test]
    fn highest_ordinal_first_then_waits_for_ready() {
        let mode = RestartMode::Stamp("new".into());
        let pods = [
            pod("web-0", "old", true),
            pod("web-10", "old", true),
            pod("web-2", "old", true),
        ];
        let Step::Evict { pod: next, progress } = next_step(WorkloadKind::StatefulSet, &mode, Some(3), &pods) else {
            panic!("evicts");
        };
        assert_eq!(
            (next.name.as_str(), progress),
            ("web-10", Progress { done: 0, total: 3 })
        );
        // The replacement of web-10 is not ready yet.
        let pods = [
            pod("web-0", "old", true),
            pod("web-10", "new", false),
            pod("web-2", "old", true),
        ];
        assert!(
            matches!(next_step(WorkloadKind::StatefulSet, &mode, Some(3), &pods), Step::Wait { why, progress } if why == "pod web-10 is not ready" && progress.to_string() == "1 of 3 done")
        );
        // Not replaced yet.
        let pods = [pod("web-0", "old", true), pod("web-2", "old", true)];
        assert!(matches!(
            next_step(WorkloadKind::StatefulSet, &mode, Some(3), &pods),
            Step::Wait { .. }
        ));
        // Terminating.
        let mut going = pod("web-10", "old", true);
        going.terminating = true;
        let pods = [pod("web-0", "old", true), going, pod("web-2", "old", true)];
        assert!(matches!(
            next_step(WorkloadKind::StatefulSet, &mode, Some(3), &pods),
            Step::Wait { .. }
        ));
        let pods = [pod("web-0", "new", true), pod("web-1", "new", false)];
        assert_eq!(next_step(WorkloadKind::StatefulSet, &mode, Some(2), &pods), Step::Done);
    }

    #[test]
    fn since_mode_restarts_pods_created_before() {
        let mode = RestartMode::Since(Some(150));
        let mut young = pod("api-b", "", true);
        young.created = Some(150);
        let mut oldest = pod("api-c", "", true);
        oldest.created = Some(90);
        let pods = [pod("api-a", "", true), young, oldest];
        let Step::Evict { pod: next, .. } = next_step(WorkloadKind::Deployment, &mode, Some(3), &pods) else {
            panic!("evicts");
        };
        assert_eq!(next.name, "api-c");
        assert_eq!(
            next_step(WorkloadKind::Deployment, &RestartMode::Since(None), Some(3), &pods),
            Step::Done
        );
    }

    /// A simulated StatefulSet: its controller re-creates a missing pod (new, not ready) and a
    /// pod gets ready, in any order with the reloader's steps (which may come at any time, as a
    /// restarted reloader's would).
    #[derive(Clone, Debug)]
    enum Event {
        Reconcile,
        Recreate,
        Ready(usize),
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            Just(Event::Reconcile),
            Just(Event::Recreate),
            (0usize..5).prop_map(Event::Ready)
        ]
    }

    proptest! {
        #[test]
        fn one_at_a_time_never_a_new_pod(n in 1usize..5, events in proptest::collection::vec(event(), 0..80)) {
            let mode = RestartMode::Stamp("new".into());
            let mut pods: Vec<Option<PodFacts>> = (0..n).map(|i| Some(pod(&format!("web-{i}"), "old", true))).collect();
            let mut last_evicted: Option<usize> = None;
            let mut evicted = std::collections::BTreeSet::new();
            let run = |pods: &mut Vec<Option<PodFacts>>, last: &mut Option<usize>, evicted: &mut std::collections::BTreeSet<String>| -> Result<(), TestCaseError> {
                let present: Vec<PodFacts> = pods.iter().flatten().cloned().collect();
                let step = next_step(WorkloadKind::StatefulSet, &mode, Some(n), &present);
                if let Step::Evict { pod, .. } = step {
                    prop_assert_eq!(&pod.stamp, "old");
                    prop_assert!(evicted.insert(pod.uid.clone()), "evicted twice");
                    let i = ordinal(&pod.name).and_then(|o| usize::try_from(o).ok()).unwrap_or(0);
                    // Highest ordinal first: every old pod left is below it.
                    prop_assert!(present.iter().filter(|p| p.stamp == "old").all(|p| ordinal(&p.name) <= ordinal(&pod.name)));
                    pods[i] = None;
                    *last = Some(i);
                }
                let unavailable = pods.iter().filter(|p| p.as_ref().is_none_or(|p| !p.ready)).count();
                prop_assert!(unavailable <= 1, "{} pods unavailable", unavailable);
                Ok(())
            };
            for event in events {
                match event {
                    Event::Reconcile => run(&mut pods, &mut last_evicted, &mut evicted)?,
                    Event::Recreate => {
                        if let Some(i) = last_evicted.take() {
                            pods[i] = Some(pod(&format!("web-{i}"), "new", false));
                        }
                    }
                    Event::Ready(i) => {
                        if let Some(Some(p)) = pods.get_mut(i) {
                            p.ready = true;
                        }
                    }
                }
            }
            // Then the controller and the kubelet catch up each time: all are restarted.
            for _ in 0..(3 * n + 1) {
                for p in pods.iter_mut().flatten() {
                    p.ready = true;
                }
                run(&mut pods, &mut last_evicted, &mut evicted)?;
                if let Some(i) = last_evicted.take() {
                    pods[i] = Some(pod(&format!("web-{i}"), "new", true));
                }
            }
            prop_assert!(pods.iter().flatten().all(|p| p.stamp == "new"));
            prop_assert_eq!(pods.iter().flatten().count(), n);
        }
    }
}
