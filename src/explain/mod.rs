//! `reloader explain`: for a workload, each source it depends on and why, the source's current
//! hash and the one recorded on the workload, and what the reloader does about it now — with
//! the running reloader's options, from the cluster's current state.
//!
//! Nothing here decides: the workload is evaluated with [`crate::core::evaluate::evaluate`],
//! the function the engine's reconcile calls, over the sources the engine would see (the same
//! filters: [`SourceLookup`]), with the same key ring (the `reloader-stamp-key` Secret) and the
//! same namespace rules ([`NamespaceScope`]). This module gathers those inputs and words the
//! result, one job per file:
//!
//! - `options.rs`: the running reloader's options, from its Deployment or from flags;
//! - `stamps.rs`: the key ring stamps are checked with, read from its Secret;
//! - `scene.rs`: what the engine would hold about the namespace, read from the cluster (its
//!   sources, CSI classes, the namespace rules), and per workload its reload Events and the
//!   named sources the engine cannot see;
//! - `verdict.rs`: the evaluation worded: each source's state and why, the verdict, its sentence;
//! - [`render`]: the output.
//!
//! [`SourceLookup`]: crate::admission::lookup::SourceLookup
//! [`NamespaceScope`]: crate::scope::NamespaceScope

mod options;
pub mod render;
mod scene;
mod stamps;
mod verdict;

use kube::Api;
use kube::api::{DynamicObject, ListParams};
use serde::Serialize;
use serde_json::Value;
use thiserror::Error;

use crate::config::commands::FlagsError;
use crate::core::workload::{Workload, WorkloadKind};
use crate::kube_api::{api_resource, to_value};
pub use options::{OptionsOrigin, settings_from_deployment, settings_from_flags};
pub use scene::Scene;
pub use stamps::{KeyRing, StampSummary, key_ring};
pub use verdict::summary;

#[derive(Debug, Error)]
pub enum ExplainError {
    #[error(
        "{0:?} is not KIND/NAME of a kind the reloader rolls (deploy/app, sts/db, ds/agent, cronjob/report, job/migrate, rollout/web, dc/legacy, or a kind of --extra-workload-kinds)"
    )]
    Target(String),
    #[error("--from-deployment {0}")]
    FromDeployment(String),
    #[error(transparent)]
    Flags(#[from] FlagsError),
    #[error("{what}: {source}")]
    Api {
        what: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("{0} is not served by this cluster (--extra-workload-kinds names it; is its CRD installed?)")]
    NotServed(WorkloadKind),
    #[error("{kind} {namespace}/{name} not found")]
    NotFound {
        kind: WorkloadKind,
        namespace: String,
        name: String,
    },
}

fn api_error(what: impl Into<String>) -> impl FnOnce(kube::Error) -> ExplainError {
    let what = what.into();
    move |source| ExplainError::Api {
        what,
        source: Box::new(source),
    }
}

/// `deploy/app`, `deployments.apps/app`, `StatefulSet/db`, … as a kind and a name; the kinds
/// of `--extra-workload-kinds` (`extra`) by their kind (`cloneset/web`, `CloneSet/web`) or plural
/// once discovered, with their group to tell them from a built-in kind of the same name
/// (`statefulset.apps.kruise.io/db`).
pub fn parse_target(text: &str, extra: &[WorkloadKind]) -> Result<(WorkloadKind, String), ExplainError> {
    let bad = || ExplainError::Target(text.to_string());
    let (kind, name) = text.split_once('/').ok_or_else(bad)?;
    if name.is_empty() || name.contains('/') {
        return Err(bad());
    }
    let kind = kind.to_ascii_lowercase();
    let (resource, group) = match kind.split_once('.') {
        Some((resource, group)) => (resource, Some(group)),
        None => (kind.as_str(), None),
    };
    let builtin = match resource {
        "deploy" | "deployment" | "deployments" => Some(WorkloadKind::Deployment),
        "sts" | "statefulset" | "statefulsets" => Some(WorkloadKind::StatefulSet),
        "ds" | "daemonset" | "daemonsets" => Some(WorkloadKind::DaemonSet),
        "cj" | "cronjob" | "cronjobs" => Some(WorkloadKind::CronJob),
        "job" | "jobs" => Some(WorkloadKind::Job),
        "ro" | "rollout" | "rollouts" => Some(WorkloadKind::Rollout),
        "dc" | "deploymentconfig" | "deploymentconfigs" => Some(WorkloadKind::DeploymentConfig),
        _ => None,
    };
    let extra = extra.iter().copied().filter_map(|k| Some((k, k.extra()?)));
    let named = |k: crate::core::workload::ExtraKind| k.short() == resource || k.plural() == Some(resource);
    // A group, when given, must be the kind's own.
    let same_group = |k: WorkloadKind| group.is_none_or(|g| g == k.resource().0);
    let found = builtin
        .filter(|k| same_group(*k))
        .or_else(|| {
            extra
                .filter(|(k, e)| named(*e) && same_group(*k))
                .map(|(k, _)| k)
                .next()
        })
        .ok_or_else(bad)?;
    Ok((found, name.to_string()))
}

/// What `explain` says about one workload: printed by [`render`], serialized for `-o json`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
    pub verdict: Verdict,
    /// The verdict in one sentence.
    pub summary: String,
    pub options: OptionsOrigin,
    pub stamps: StampSummary,
    /// The sources it reloads on.
    pub sources: Vec<SourceReport>,
    /// Sources it names (references, reload-list names) but does not reload on, and why.
    pub not_reloaded_on: Vec<SkipReport>,
    /// Whether new sources matching a pattern (or carrying `match`) may add dependencies.
    pub scans: bool,
    pub last_reloads: Vec<EventReport>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// What the reloader does about the workload now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Verdict {
    /// Every dependency is recorded at its current content.
    UpToDate,
    /// A rollout now, for these changes; with a pause period, paused after it until then.
    WouldRoll {
        changes: Vec<ChangeReport>,
        #[serde(skip_serializing_if = "Option::is_none")]
        paused_until: Option<String>,
    },
    /// An Argo Rollout with `rollout-strategy: restart`: `spec.restartAt` is set.
    WouldRestart { changes: Vec<ChangeReport> },
    /// `--webhook-url`: the change is announced instead of rolling.
    WouldNotify { changes: Vec<ChangeReport> },
    /// The hashes are recorded on the workload metadata; nothing rolls.
    Acknowledge { sources: Vec<String> },
    /// The pause period the reloader started is over: it resumes the Deployment.
    WouldResume,
    /// Paused by the reloader until then; changes accumulate and roll out at the end.
    Paused { until: String, pending: Vec<ChangeReport> },
    /// Keyed stamps cannot be checked without the key.
    CannotVerify { sources: Vec<String>, reason: String },
    /// The reloader leaves the workload alone.
    Excluded { by: String },
    /// Not a workload the reloader can read (no pod template).
    Unreadable { reason: String },
    /// Being deleted: left alone.
    Deleting,
    /// A rollout is due and waits: for the reload window (`until` its opening) or for a wave
    /// (`until` none: when the wave before is healthy), or a wave failed (`halted`).
    Held {
        reason: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        until: Option<String>,
        why: String,
        pending: Vec<ChangeReport>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeReport {
    pub source: String,
    /// `changed`, `created` or `deleted`.
    pub change: &'static str,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceReport {
    /// `configmap/app-config`.
    pub source: String,
    /// Which annotation, reference or pattern selected it.
    pub why: String,
    /// The container an env-var stamp goes on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Whether the pod template uses it.
    pub referenced: bool,
    /// The value the reloader would record now (`absent` when it does not exist).
    pub current: String,
    /// The value recorded on the workload, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded: Option<String>,
    /// Per-key reloads: the keys its stamp covers, when it covers only those.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys: Option<KeysReport>,
    /// `up-to-date`, `changed`, `created`, `deleted`, `not-recorded`, `recorded-absent`,
    /// `recorded-other-form`, `absent`, `deleted-kept`, `unknown-key` or `cannot-verify`.
    pub state: &'static str,
    pub detail: String,
}

/// The keys a workload reads of a source, under per-key reloads.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeysReport {
    /// Every key it reads, sorted.
    pub read: Vec<String>,
    /// Those the source does not have (optional keys not there yet).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub absent: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SkipReport {
    pub source: String,
    pub referenced: bool,
    pub why: String,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventReport {
    pub time: String,
    pub reason: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<i32>,
}

/// Explains one workload object of the scene's namespace.
pub async fn explain_object(scene: &Scene, kind: WorkloadKind, object: &Value) -> Explanation {
    // Now, by this process's clock (a test may start it elsewhere, as it does the engine's).
    let now = crate::clock::Clock::from_env().unwrap_or_default().now();
    let workload = Workload::new(kind, object);
    let name = workload.name().to_string();
    let mut explanation = Explanation {
        kind,
        namespace: scene.namespace.clone(),
        name: name.clone(),
        verdict: Verdict::UpToDate,
        summary: String::new(),
        options: scene.origin.clone(),
        stamps: scene.ring.summary(&scene.settings),
        sources: Vec::new(),
        not_reloaded_on: Vec::new(),
        scans: false,
        last_reloads: scene::last_reloads(scene, kind, &name).await,
        notes: scene.notes.clone(),
    };
    explanation.notes.extend(scene.origin.notes.iter().cloned());
    verdict::judge(scene, &workload, now, &mut explanation);
    explanation
        .notes
        .extend(scene::unseen_sources(scene, &explanation).await);
    explanation.notes.extend(scene::pod_restart(scene, kind, object).await);
    explanation.summary = summary(&explanation.verdict);
    explanation
}

/// Reads one workload and explains it.
pub async fn explain(scene: &Scene, kind: WorkloadKind, name: &str) -> Result<Explanation, ExplainError> {
    if kind.plural().is_none() {
        return Err(ExplainError::NotServed(kind));
    }
    let api: Api<DynamicObject> = Api::namespaced_with(scene.client.clone(), &scene.namespace, &api_resource(kind));
    let object = api
        .get_opt(name)
        .await
        .map_err(api_error(format!("reading {kind} {}/{name}", scene.namespace)))?
        .ok_or_else(|| ExplainError::NotFound {
            kind,
            namespace: scene.namespace.clone(),
            name: name.to_string(),
        })?;
    Ok(explain_object(scene, kind, &to_value(&object)).await)
}

/// Explains every workload of the namespace, of every kind the cluster serves, by kind then name.
pub async fn explain_all(scene: &Scene) -> Result<Vec<Explanation>, ExplainError> {
    let mut out = Vec::new();
    // Extra kinds whose plural discovery did not find are not served.
    let extra = scene
        .settings
        .extra_workload_kinds
        .iter()
        .filter(|k| k.plural().is_some());
    for kind in WorkloadKind::ALL.iter().chain(extra).copied() {
        let api: Api<DynamicObject> = Api::namespaced_with(scene.client.clone(), &scene.namespace, &api_resource(kind));
        let list = match api.list(&ListParams::default()).await {
            Ok(list) => list,
            // Argo Rollouts, DeploymentConfigs, extra kinds: not served by every cluster.
            Err(kube::Error::Api(status)) if status.code == 404 && kind.resource().0.contains('.') => continue,
            Err(error) => return Err(api_error(format!("listing {kind}s in {}", scene.namespace))(error)),
        };
        let mut objects: Vec<Value> = list.items.iter().map(to_value).collect();
        objects.sort_by(|a, b| Workload::new(kind, a).name().cmp(Workload::new(kind, b).name()));
        for object in objects {
            out.push(explain_object(scene, kind, &object).await);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_like_kubectl() {
        for (text, kind) in [
            ("deploy/app", WorkloadKind::Deployment),
            ("Deployment/app", WorkloadKind::Deployment),
            ("deployments.apps/app", WorkloadKind::Deployment),
            ("sts/app", WorkloadKind::StatefulSet),
            ("ds/app", WorkloadKind::DaemonSet),
            ("cronjob.batch/app", WorkloadKind::CronJob),
            ("jobs/app", WorkloadKind::Job),
            ("rollouts.argoproj.io/app", WorkloadKind::Rollout),
            ("dc/app", WorkloadKind::DeploymentConfig),
        ] {
            assert_eq!(parse_target(text, &[]).unwrap(), (kind, "app".to_string()), "{text}");
        }
        for bad in ["app", "deploy/", "svc/app", "deployments.batch/app", "deploy/a/b"] {
            assert!(parse_target(bad, &[]).is_err(), "{bad}");
        }
    }

    #[test]
    fn extra_kinds_are_targets_by_kind_plural_or_with_their_group() {
        use crate::core::workload::extra::register;
        let clones = WorkloadKind::Extra(register(&"explain.test.io/v1alpha1/CloneSet".parse().unwrap()).unwrap());
        let sts = WorkloadKind::Extra(register(&"explain.test.io/v1beta1/StatefulSet".parse().unwrap()).unwrap());
        let extra = [clones, sts];
        for (text, kind) in [
            ("cloneset/app", clones),
            ("CloneSet/app", clones),
            ("cloneset.explain.test.io/app", clones),
            ("statefulset/app", WorkloadKind::StatefulSet),
            ("statefulset.apps/app", WorkloadKind::StatefulSet),
            ("statefulset.explain.test.io/app", sts),
        ] {
            assert_eq!(parse_target(text, &extra).unwrap(), (kind, "app".to_string()), "{text}");
        }
        for bad in ["clonesets/app", "cloneset.apps/app", "cloneset/"] {
            assert!(parse_target(bad, &extra).is_err(), "{bad}");
        }
        assert!(parse_target("cloneset/app", &[]).is_err(), "not named by the flags");
        // The plural, once discovery found it.
        clones.extra().unwrap().resolve_plural("clonesets");
        assert_eq!(parse_target("clonesets/app", &extra).unwrap().0, clones);
        assert_eq!(parse_target("clonesets.explain.test.io/app", &extra).unwrap().0, clones);
    }
}
