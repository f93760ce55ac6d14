//! What `explain` reads from the cluster: the [`Scene`] (what the engine would hold about a
//! namespace: its sources as the engine filters them, the CSI classes, the namespace rules, the
//! key ring) and, per workload, its last reload Events and the named sources that exist but
//! the engine does not see.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Secret};
use kube::api::{DynamicObject, ListParams};
use kube::{Api, Client};
use serde_json::Value;

use super::{EventReport, ExplainError, Explanation, KeyRing, OptionsOrigin, api_error, key_ring};
use crate::admission::lookup::SourceLookup;
use crate::config::{Settings, WatchScope};
use crate::core::dependencies::DependencyOptions;
use crate::core::plan::PlanOptions;
use crate::core::source::{SECRET_FIELD_SELECTOR, SourceKind, SourceRef, SourceState};
use crate::core::vocabulary::fixed;
use crate::core::workload::WorkloadKind;
use crate::kube_api::api_resource;
use crate::scope::{NamespaceExclusion, NamespaceScope};

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
    /// The Namespace's `reload-window` annotation.
    pub namespace_window: Option<String>,
    /// The namespace's workloads, with their status: read only when some source has waves,
    /// for the wave gate's members.
    pub workloads: Vec<(WorkloadKind, Value)>,
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
        // The engine reads Namespaces' windows only cluster-wide (a namespaced install may not).
        let namespace_window = match &settings.watch_scope {
            WatchScope::Namespaces(_) => None,
            WatchScope::All => match Api::<Namespace>::all(client.clone()).get_opt(namespace).await {
                Ok(found) => found.and_then(|ns| ns.metadata.annotations?.remove(fixed::RELOAD_WINDOW)),
                Err(error) => {
                    notes.push(format!(
                        "the Namespace could not be read ({error}); its reload window, if any, is not shown"
                    ));
                    None
                }
            },
        };
        let waves = settings.rollout_waves.is_some()
            || sources
                .values()
                .any(|s| s.annotations.contains_key(fixed::ROLLOUT_WAVES));
        let workloads = if waves {
            namespace_workloads(&client, &settings, namespace, &mut notes).await
        } else {
            Vec::new()
        };
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
            namespace_window,
            workloads,
        })
    }

    pub(super) fn dependency_options(&self) -> DependencyOptions {
        self.settings.dependency_options()
    }

    pub(super) fn plan_options(&self) -> PlanOptions {
        self.settings.plan_options()
    }
}

/// Every workload of `namespace` the engine would watch, with its status (the wave gate reads
/// the members' rollout health).
async fn namespace_workloads(
    client: &Client,
    settings: &Settings,
    namespace: &str,
    notes: &mut Vec<String>,
) -> Vec<(WorkloadKind, Value)> {
    let mut out = Vec::new();
    let extra = settings.extra_workload_kinds.iter().filter(|k| k.plural().is_some());
    for kind in WorkloadKind::ALL.iter().chain(extra).copied() {
        if settings.workload_kind_excluded_by(kind).is_some() {
            continue;
        }
        let api = Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &api_resource(kind));
        match api.list(&ListParams::default()).await {
            Ok(list) => out.extend(
                list.items
                    .iter()
                    .filter_map(|o| serde_json::to_value(o).ok())
                    .map(|o| (kind, o)),
            ),
            Err(error) => notes.push(format!(
                "{kind}s could not be listed ({error}); the waves are shown without them"
            )),
        }
    }
    out
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
            Some(SourceState::new(
                SourceRef::new(SourceKind::SecretProviderClass, class),
                annotations.get(class).cloned().unwrap_or_default(),
                class_hash(&statuses, class)?,
            ))
        })
        .collect())
}

/// Notes on named sources the engine does not see although they exist: filtered out by
/// `--resource-label-selector`, or Secrets of a type it never watches.
pub(super) async fn unseen_sources(scene: &Scene, explanation: &Explanation) -> Vec<String> {
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

/// A pod restart under way ([`crate::core::pod_restart`]): "restarting pods: 1 of 3 done", and
/// what it waits for; nothing when none is, or the pods cannot be listed (said so).
pub(super) async fn pod_restart(scene: &Scene, kind: WorkloadKind, object: &Value) -> Option<String> {
    use crate::core::pod_restart::{Step, next_step, restart_mode, wanted_pods};
    use crate::core::workload::Workload;
    if !scene.settings.pod_restarts {
        return None;
    }
    let mode = restart_mode(&Workload::new(kind, object)).filter(|m| m.may_restart())?;
    let pods = match crate::kube_api::owned_pods(&scene.client, &scene.namespace, kind, object).await {
        Ok(pods) => pods,
        Err(error) => return Some(format!("pod restarts: its pods could not be listed ({error})")),
    };
    match next_step(kind, &mode, wanted_pods(kind, object), &pods) {
        Step::Done => None,
        Step::Wait { why, progress } => Some(format!("restarting pods: {progress}; waiting: {why}")),
        Step::Evict { pod, progress } => Some(format!("restarting pods: {progress}; next: {}", pod.name)),
    }
}

/// The last `Reloaded` and `ReloadFail` Events on the workload, newest first.
pub(super) async fn last_reloads(scene: &Scene, kind: WorkloadKind, name: &str) -> Vec<EventReport> {
    if scene.events == 0 {
        return Vec::new();
    }
    let params = ListParams::default().fields(&format!(
        "involvedObject.kind={},involvedObject.name={name}",
        kind.api_kind()
    ));
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
