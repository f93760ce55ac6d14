//! `reloader explain`: for a workload, each source it depends on and why, the source's current
//! hash and the one recorded on the workload, and what the reloader does about it now — with
//! the running reloader's options, from the cluster's current state.
//!
//! Nothing here decides: the workload is evaluated with [`crate::core::evaluate::evaluate`],
//! the function the engine's reconcile calls, over the sources the engine would see (the same
//! filters: [`SourceLookup`]), with the same key ring (the `reloader-stamp-key` Secret) and the
//! same namespace rules ([`NamespaceScope`]). This module gathers those inputs and words the
//! result; [`render`] prints it.

pub mod render;

use crate::core::json::JsonAt;
use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Secret};
use kube::api::{DynamicObject, ListParams};
use kube::{Api, Client};
use serde::Serialize;
use serde_json::Value;
use thiserror::Error;
use time::OffsetDateTime;

use crate::admission::lookup::SourceLookup;
use crate::config::commands::{FlagsError, reloader_settings};
use crate::config::{Settings, WatchScope};
use crate::core::dependencies::{DependencyOptions, KindAnnotations, Skip, Trigger, WorkloadPolicy};
use crate::core::evaluate::{Evaluation, evaluate, rfc3339};
use crate::core::hash_record::Observed;
use crate::core::keyed_hash::StampKeyRing;
use crate::core::pause::PauseState;
use crate::core::plan::{Action, Assessment, Change, PlanOptions, SourceOutcome, Stamping};
use crate::core::source::{SECRET_FIELD_SELECTOR, SourceKind, SourceRef, SourceState};
use crate::core::workload::{Workload, WorkloadKind};
use crate::kube_api::{api_resource, to_value};
use crate::scope::{NamespaceExclusion, NamespaceScope};

#[derive(Debug, Error)]
pub enum ExplainError {
    #[error(
        "{0:?} is not KIND/NAME of a kind the reloader rolls (deploy/app, sts/db, ds/agent, cronjob/report, job/migrate, rollout/web, dc/legacy)"
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

/// `deploy/app`, `deployments.apps/app`, `StatefulSet/db`, … as a kind and a name.
pub fn parse_target(text: &str) -> Result<(WorkloadKind, String), ExplainError> {
    let bad = || ExplainError::Target(text.to_string());
    let (kind, name) = text.split_once('/').ok_or_else(bad)?;
    if name.is_empty() || name.contains('/') {
        return Err(bad());
    }
    let kind = kind.to_ascii_lowercase();
    let resource = kind.split_once('.').map_or(kind.as_str(), |(r, _)| r);
    let found = match resource {
        "deploy" | "deployment" | "deployments" => WorkloadKind::Deployment,
        "sts" | "statefulset" | "statefulsets" => WorkloadKind::StatefulSet,
        "ds" | "daemonset" | "daemonsets" => WorkloadKind::DaemonSet,
        "cj" | "cronjob" | "cronjobs" => WorkloadKind::CronJob,
        "job" | "jobs" => WorkloadKind::Job,
        "ro" | "rollout" | "rollouts" => WorkloadKind::Rollout,
        "dc" | "deploymentconfig" | "deploymentconfigs" => WorkloadKind::DeploymentConfig,
        _ => return Err(bad()),
    };
    // A group, when given, must be the kind's own.
    if let Some((_, group)) = kind.split_once('.')
        && group != found.resource().0
    {
        return Err(bad());
    }
    Ok((found, name.to_string()))
}

/// Where the options came from.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OptionsOrigin {
    /// `Deployment reloader/reloader`, or `flags`.
    pub from: String,
    /// The reloader flags the verdicts use, as shown: URLs redacted ([`crate::core::redact::flags`]).
    pub flags: Vec<String>,
    /// What could not be read from the Deployment (environment from Secrets, …).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The running reloader's flags and environment, read from its Deployment; `extra` flags are
/// added after them.
pub async fn settings_from_deployment(
    client: &Client,
    namespace: &str,
    name: &str,
    extra: &[String],
) -> Result<(Settings, OptionsOrigin), ExplainError> {
    let deployment = Api::<Deployment>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(api_error(format!("reading Deployment {namespace}/{name}")))?
        .ok_or_else(|| ExplainError::FromDeployment(format!("{namespace}/{name}: no such Deployment")))?;
    let containers = deployment
        .spec
        .and_then(|s| s.template.spec)
        .map(|s| s.containers)
        .unwrap_or_default();
    let container = containers
        .iter()
        .find(|c| c.name == "reloader")
        .or_else(|| containers.first())
        .ok_or_else(|| ExplainError::FromDeployment(format!("{namespace}/{name}: no containers")))?;
    let mut flags: Vec<String> = container.command.iter().flatten().skip(1).cloned().collect();
    flags.extend(container.args.iter().flatten().cloned());
    flags.extend(extra.iter().cloned());
    let mut env = BTreeMap::new();
    let mut notes = Vec::new();
    for var in container.env.iter().flatten() {
        let field = var
            .value_from
            .as_ref()
            .and_then(|f| f.field_ref.as_ref())
            .map(|f| f.field_path.as_str());
        match (&var.value, field) {
            (Some(value), _) => {
                env.insert(var.name.clone(), value.clone());
            }
            (None, Some("metadata.namespace")) => {
                env.insert(var.name.clone(), namespace.to_string());
            }
            (None, Some("metadata.name")) => {
                env.insert(var.name.clone(), format!("{name}-explain"));
            }
            (None, _) if var.value_from.is_some() => {
                notes.push(format!("environment variable {} is not resolved (valueFrom)", var.name));
            }
            (None, _) => {
                env.insert(var.name.clone(), String::new());
            }
        }
    }
    if container.env_from.as_ref().is_some_and(|e| !e.is_empty()) {
        notes.push("envFrom is not resolved".into());
    }
    let settings = reloader_settings(&flags, |k| env.get(k).cloned())?;
    Ok((
        settings,
        OptionsOrigin {
            from: format!("Deployment {namespace}/{name}, container {}", container.name),
            flags: crate::core::redact::flags(&flags),
            notes,
        },
    ))
}

/// The reloader's settings from flags alone; `POD_NAMESPACE` is the reloader's namespace (so
/// the stamp key is looked for there).
pub fn settings_from_flags(
    flags: &[String],
    reloader_namespace: &str,
) -> Result<(Settings, OptionsOrigin), ExplainError> {
    let env: BTreeMap<&str, String> = [
        ("POD_NAMESPACE", reloader_namespace.to_string()),
        ("POD_NAME", "reloader-explain".to_string()),
    ]
    .into();
    let settings = reloader_settings(flags, |k| env.get(k).cloned())?;
    Ok((
        settings,
        OptionsOrigin {
            from: "flags".into(),
            flags: crate::core::redact::flags(flags),
            notes: Vec::new(),
        },
    ))
}

/// The key ring stamps are checked with.
#[derive(Clone, Debug)]
pub enum KeyRing {
    /// The env-vars strategy, or no namespace for a key: stamps are plain SHA-1.
    Plain { reason: String },
    /// Read from the key Secret.
    Read { secret: String, keys: StampKeyRing },
    /// The key Secret could not be read: keyed stamps cannot be checked.
    Unreadable { secret: String, reason: String },
}

impl KeyRing {
    fn keys(&self) -> StampKeyRing {
        match self {
            KeyRing::Read { keys, .. } => keys.clone(),
            _ => StampKeyRing::plain(),
        }
    }
}

/// How stamps are made and checked, for the report.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StampSummary {
    pub strategy: &'static str,
    /// `keyed`, `plain` or `unverifiable`.
    pub keys: &'static str,
    pub detail: String,
}

impl KeyRing {
    fn summary(&self, settings: &Settings) -> StampSummary {
        let strategy = match settings.strategy {
            crate::core::plan::ReloadStrategy::Annotations => "annotations",
            crate::core::plan::ReloadStrategy::EnvVars => "env-vars",
        };
        let (keys, detail) = match self {
            KeyRing::Plain { reason } => ("plain", reason.clone()),
            KeyRing::Read { secret, keys } => (
                "keyed",
                format!("key {} (Secret {secret})", keys.current().unwrap_or("?")),
            ),
            KeyRing::Unreadable { secret, reason } => (
                "unverifiable",
                format!("cannot read Secret {secret}: {reason}; keyed stamps cannot be checked"),
            ),
        };
        StampSummary { strategy, keys, detail }
    }
}

/// Reads the key ring the reloader stamps with.
pub async fn key_ring(client: &Client, settings: &Settings) -> KeyRing {
    use crate::stamp_key_secret::{SECRET_NAME, keys_from_secret};
    if settings.strategy != crate::core::plan::ReloadStrategy::Annotations {
        return KeyRing::Plain {
            reason: "the env-vars strategy stamps plain SHA-1 values".into(),
        };
    }
    let Some(namespace) = settings.stamp_key_namespace() else {
        return KeyRing::Plain {
            reason: "no namespace for a stamp key: stamps are plain SHA-1".into(),
        };
    };
    let secret = format!("{namespace}/{SECRET_NAME}");
    match Api::<Secret>::namespaced(client.clone(), &namespace)
        .get_opt(SECRET_NAME)
        .await
    {
        Ok(Some(found)) => match keys_from_secret(&found) {
            Ok(keys) => KeyRing::Read { secret, keys },
            Err(error) => KeyRing::Unreadable {
                secret,
                reason: error.to_string(),
            },
        },
        Ok(None) => KeyRing::Unreadable {
            secret,
            reason: "it does not exist (is the reloader running there?)".into(),
        },
        Err(error) => KeyRing::Unreadable {
            secret,
            reason: error.to_string(),
        },
    }
}

/// Everything about one namespace that every workload in it shares.
pub struct Scene {
    pub client: Client,
    pub settings: Settings,
    pub origin: OptionsOrigin,
    pub ring: KeyRing,
    pub namespace: String,
    /// Why the reloader leaves the namespace alone, if it does.
    pub namespace_excluded: Option<String>,
    /// The namespace's sources as the engine sees them.
    pub sources: BTreeMap<SourceRef, SourceState>,
    /// Notes about sources the engine cannot see (CSI not served, …).
    pub notes: Vec<String>,
    pub events: usize,
}

impl Scene {
    /// Reads what the engine would know about `namespace`.
    pub async fn load(
        client: Client,
        settings: Settings,
        origin: OptionsOrigin,
        namespace: &str,
        events: usize,
    ) -> Result<Self, ExplainError> {
        let ring = key_ring(&client, &settings).await;
        let namespace_excluded = namespace_exclusion(&client, &settings, namespace).await?;
        let lookup = SourceLookup::new(client.clone(), settings.resource_label_selector.clone());
        let mut sources: BTreeMap<SourceRef, SourceState> = lookup
            .all(namespace)
            .await
            .map_err(api_error(format!("listing the ConfigMaps and Secrets of {namespace}")))?
            .into_iter()
            .filter(|s| settings.source_kind_excluded_by(s.source.kind).is_none())
            .map(|s| (s.source.clone(), s))
            .collect();
        let mut notes = Vec::new();
        if settings.csi_integration {
            match csi_sources(&client, namespace).await {
                Ok(found) => sources.extend(found.into_iter().map(|s| (s.source.clone(), s))),
                Err(error) => notes.push(format!(
                    "SecretProviderClasses could not be read ({error}); they count as absent"
                )),
            }
        }
        Ok(Self {
            client,
            settings,
            origin,
            ring,
            namespace: namespace.to_string(),
            namespace_excluded,
            sources,
            notes,
            events,
        })
    }

    fn dependency_options(&self) -> DependencyOptions {
        self.settings.dependency_options()
    }

    fn plan_options(&self) -> PlanOptions {
        self.settings.plan_options()
    }
}

/// Why workloads in `namespace` are left alone, by the same rules as the engine.
async fn namespace_exclusion(
    client: &Client,
    settings: &Settings,
    namespace: &str,
) -> Result<Option<String>, ExplainError> {
    if !settings.watch_scope.contains(namespace) {
        return Ok(Some(format!(
            "namespace {namespace} is not watched (--namespaces or KUBERNETES_NAMESPACE)"
        )));
    }
    let watched = match &settings.watch_scope {
        WatchScope::All => None,
        WatchScope::Namespaces(set) => Some(set.clone()),
    };
    let scope = NamespaceScope::new(
        watched,
        settings.namespaces_to_ignore.clone(),
        settings.namespace_selector.is_some(),
    );
    if let Some(selector) = &settings.namespace_selector {
        // The engine watches namespaces with this selector, server-side; so does this.
        let params = ListParams::default()
            .labels(selector)
            .fields(&format!("metadata.name={namespace}"));
        let matched = Api::<Namespace>::all(client.clone())
            .list(&params)
            .await
            .map_err(api_error("listing namespaces with --namespace-selector"))?;
        scope.select(namespace.to_string(), !matched.items.is_empty());
    }
    Ok(scope.exclusion(namespace).map(|e| match e {
        NamespaceExclusion::NotWatched => {
            format!("namespace {namespace} is not watched (--namespaces or KUBERNETES_NAMESPACE)")
        }
        NamespaceExclusion::Ignored => format!("namespace {namespace} is in --namespaces-to-ignore"),
        NamespaceExclusion::NotSelected => format!(
            "namespace {namespace} does not match --namespace-selector={}",
            settings.namespace_selector.as_deref().unwrap_or_default()
        ),
    }))
}

/// SecretProviderClasses of the namespace, as the CSI watchers would publish them: the content
/// most pod statuses report, and the class's annotations.
async fn csi_sources(client: &Client, namespace: &str) -> Result<Vec<SourceState>, kube::Error> {
    use crate::csi::{class_hash, class_resource, pod_status_resource, read_pod_status};
    let statuses: Vec<_> = Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &pod_status_resource())
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter_map(|o| read_pod_status(&serde_json::to_value(o).unwrap_or(Value::Null)))
        .collect();
    let classes = Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &class_resource())
        .list(&ListParams::default())
        .await?;
    let annotations: BTreeMap<String, BTreeMap<String, String>> = classes
        .items
        .iter()
        .map(|c| {
            (
                c.metadata.name.clone().unwrap_or_default(),
                c.metadata.annotations.clone().unwrap_or_default(),
            )
        })
        .collect();
    let names: BTreeSet<&str> = statuses.iter().map(|s| s.class.as_str()).collect();
    Ok(names
        .into_iter()
        .filter_map(|class| {
            Some(SourceState {
                source: SourceRef::new(SourceKind::SecretProviderClass, class),
                annotations: annotations.get(class).cloned().unwrap_or_default(),
                hash: class_hash(&statuses, class)?,
                changed: None,
            })
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// The explanation
// ---------------------------------------------------------------------------------------------

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
    /// `up-to-date`, `changed`, `created`, `deleted`, `not-recorded`, `recorded-absent`,
    /// `absent`, `deleted-kept`, `unknown-key` or `cannot-verify`.
    pub state: &'static str,
    pub detail: String,
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
/// SHA-1 is not shown: keyed stamps exist so that it is never published.
fn current_value(scene: &Scene, keys: &StampKeyRing, source: &SourceRef, observed: &Observed) -> String {
    match (observed, &scene.ring) {
        (Observed::Hash(_), KeyRing::Unreadable { .. }) if source.kind != SourceKind::ConfigMap => {
            "(keyed; the stamp key cannot be read)".to_string()
        }
        (Observed::Hash(hash), _) => keys
            .seal(&scene.namespace, source, hash)
            .map_or_else(|| hash.to_string(), |k| k.to_string()),
        (other, _) => other.to_string(),
    }
}

fn source_report(
    scene: &Scene,
    workload: &Workload<'_>,
    keys: &StampKeyRing,
    assessment: &Assessment,
    container: Option<String>,
    referenced: bool,
) -> SourceReport {
    let options = scene.plan_options();
    let unknown_key = match &assessment.recorded {
        Some(Observed::Keyed(keyed)) if !keys.knows(keyed) => Some(keyed.key_id().to_string()),
        _ => None,
    };
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
                Change::Changed { .. } => "changed since the pods were rolled".to_string(),
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
            _ => (
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
        container,
        referenced,
        current: current_value(scene, keys, &assessment.source, &assessment.current),
        recorded: assessment.recorded.as_ref().map(ToString::to_string),
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
    }
}

/// Explains one workload object of the scene's namespace.
pub async fn explain_object(scene: &Scene, kind: WorkloadKind, object: &Value) -> Explanation {
    let now = OffsetDateTime::now_utc();
    let workload = Workload::new(kind, object);
    let name = workload.name().to_string();
    let keys = scene.ring.keys();
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
        last_reloads: last_reloads(scene, kind, &name).await,
        notes: scene.notes.clone(),
    };
    explanation.notes.extend(scene.origin.notes.iter().cloned());
    let excluded = scene
        .namespace_excluded
        .clone()
        .or_else(|| scene.settings.workload_kind_excluded_by(kind));
    let stamping = Stamping {
        keys: &keys,
        namespace: &scene.namespace,
    };
    let dependency_options = scene.dependency_options();
    let evaluated = WorkloadPolicy::read(&workload, &dependency_options).and_then(|policy| {
        evaluate(
            &workload,
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
    explanation.verdict = if object.at("/metadata/deletionTimestamp").is_some() {
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
                    explanation.sources.push(source_report(
                        scene,
                        &workload,
                        &keys,
                        assessment,
                        dep.and_then(|d| d.container.clone()),
                        dep.is_some_and(|d| d.referenced),
                    ));
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
                verdict(scene, evaluation, &explanation.sources, now)
            }
        }
    };
    explanation.notes.extend(unseen_sources(scene, &explanation).await);
    explanation.summary = summary(&explanation.verdict);
    explanation
}

/// Notes on named sources the engine does not see although they exist: filtered out by
/// `--resource-label-selector`, or Secrets of a type it never watches.
async fn unseen_sources(scene: &Scene, explanation: &Explanation) -> Vec<String> {
    let mut notes = Vec::new();
    let absent = explanation
        .sources
        .iter()
        .filter(|s| s.current == "absent")
        .map(|s| s.source.clone());
    for text in absent {
        let Some((tag, name)) = text.split_once('/') else {
            continue;
        };
        let client = scene.client.clone();
        let ns = scene.namespace.as_str();
        let found = match SourceKind::from_tag(tag) {
            Some(SourceKind::ConfigMap) => Api::<ConfigMap>::namespaced(client, ns)
                .get_opt(name)
                .await
                .ok()
                .flatten()
                .map(|_| None),
            Some(SourceKind::Secret) => Api::<Secret>::namespaced(client, ns)
                .get_opt(name)
                .await
                .ok()
                .flatten()
                .map(|s| s.type_),
            _ => None,
        };
        let Some(secret_type) = found else { continue };
        let hidden_type = secret_type.filter(|t| SECRET_FIELD_SELECTOR.contains(&format!("type!={t}")));
        let reason = match (hidden_type, &scene.settings.resource_label_selector) {
            (Some(t), _) => format!("Secrets of type {t} are never watched"),
            (None, Some(selector)) => format!("its labels do not match --resource-label-selector={selector}"),
            (None, None) => "it appeared after the sources were listed".into(),
        };
        notes.push(format!("{text} exists but the reloader does not see it: {reason}"));
    }
    notes
}

fn event_time(event: &Event) -> String {
    let micro = event
        .series
        .as_ref()
        .and_then(|s| s.last_observed_time.as_ref())
        .or(event.event_time.as_ref())
        .map(|t| t.0);
    let time = micro
        .or_else(|| event.last_timestamp.as_ref().map(|t| t.0))
        .or_else(|| event.first_timestamp.as_ref().map(|t| t.0))
        .or_else(|| event.metadata.creation_timestamp.as_ref().map(|t| t.0));
    time.map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// The last `Reloaded` and `ReloadFail` Events on the workload, newest first.
async fn last_reloads(scene: &Scene, kind: WorkloadKind, name: &str) -> Vec<EventReport> {
    if scene.events == 0 {
        return Vec::new();
    }
    let params = ListParams::default().fields(&format!("involvedObject.kind={kind},involvedObject.name={name}"));
    let Ok(list) = Api::<Event>::namespaced(scene.client.clone(), &scene.namespace)
        .list(&params)
        .await
    else {
        return Vec::new();
    };
    let mut events: Vec<EventReport> = list
        .items
        .iter()
        .filter(|e| matches!(e.reason.as_deref(), Some("Reloaded" | "ReloadFail")))
        .map(|e| EventReport {
            time: event_time(e),
            reason: e.reason.clone().unwrap_or_default(),
            message: e.message.clone().unwrap_or_default(),
            count: e.series.as_ref().and_then(|s| s.count).or(e.count).filter(|c| *c > 1),
        })
        .collect();
    events.sort_by(|a, b| b.time.cmp(&a.time));
    events.truncate(scene.events);
    events
}

/// Reads one workload and explains it.
pub async fn explain(scene: &Scene, kind: WorkloadKind, name: &str) -> Result<Explanation, ExplainError> {
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
    for kind in WorkloadKind::ALL {
        let api: Api<DynamicObject> = Api::namespaced_with(scene.client.clone(), &scene.namespace, &api_resource(kind));
        let list = match api.list(&ListParams::default()).await {
            Ok(list) => list,
            // Argo Rollouts, DeploymentConfigs: not served by every cluster.
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

    /// What `explain` prints of the reloader's flags carries no webhook secret; the settings
    /// still hold the URL as given.
    #[test]
    fn shown_flags_have_urls_redacted() {
        let url = "https://hooks.slack.com/services/T0/B0/s3cret";
        let (settings, origin) = settings_from_flags(&[format!("--webhook-url={url}")], "reloader").unwrap();
        assert_eq!(settings.webhook_url.as_deref(), Some(url));
        assert_eq!(
            origin.flags,
            ["--webhook-url=https://hooks.slack.com/services/<redacted>"]
        );
    }

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
            assert_eq!(parse_target(text).unwrap(), (kind, "app".to_string()), "{text}");
        }
        for bad in ["app", "deploy/", "svc/app", "deployments.batch/app", "deploy/a/b"] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }

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
