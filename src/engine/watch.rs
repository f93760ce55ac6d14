//! Watchers: ConfigMaps and Secrets become [`SourceState`]s (hash, name, annotations; the data is
//! hashed and dropped at once), workloads become stored JSON, and every change is answered by
//! queueing the affected workloads found through the store's index. No LIST per change.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Engine;
use crate::core::source::{SourceKind, SourceRef, SourceState};
use crate::core::workload::WorkloadKind;
use crate::metrics::WatchEvent;
use crate::store::WorkloadKey;

pub use crate::core::source::SECRET_FIELD_SELECTOR;

pub fn configmap_state(cm: &ConfigMap) -> SourceState {
    SourceState::of_config_map(cm)
}

pub fn secret_state(secret: &Secret) -> SourceState {
    SourceState::of_secret(secret)
}

/// Where a watcher looks: the whole cluster or one namespace.
pub fn scoped_api<K>(client: kube::Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    <K as Resource>::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    }
}

/// Watches one source kind in one scope until the task is dropped.
pub async fn watch_sources<K>(
    engine: Arc<Engine>,
    api: Api<K>,
    config: watcher::Config,
    kind: SourceKind,
    scope: Option<String>,
    to_state: fn(&K) -> SourceState,
) where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let mut relist: Vec<(String, SourceState)> = Vec::new();
    let stream = watcher::watcher(api, config).default_backoff();
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                tracing::warn!(%error, "source watch failed; retrying with backoff");
                engine.ctx.metrics.watch_error(kind);
                continue;
            }
        };
        let affected = match event {
            Event::Apply(obj) => {
                let ns = obj.namespace().unwrap_or_default();
                let state = to_state(&obj);
                let before = engine
                    .ctx
                    .store
                    .sources(&ns)
                    .map()
                    .get(&state.source)
                    .map(|s| s.hash.clone());
                let event = if before.is_some() {
                    WatchEvent::Update
                } else {
                    WatchEvent::Add
                };
                let changed = match &before {
                    Some(hash) => *hash != state.hash,
                    None => engine.ctx.options.plan.reload_on_create,
                };
                if changed {
                    announce(&engine, &state.source, &ns);
                }
                engine.ctx.metrics.event(kind, event);
                engine.ctx.metrics.processed(kind);
                engine.ctx.store.upsert_source(&ns, state)
            }
            Event::Delete(obj) => {
                let ns = obj.namespace().unwrap_or_default();
                engine.ctx.metrics.event(kind, WatchEvent::Delete);
                engine.ctx.metrics.processed(kind);
                let source = SourceRef::new(kind, obj.name_any());
                if engine.ctx.options.plan.reload_on_delete {
                    announce(&engine, &source, &ns);
                }
                engine.ctx.store.remove_source(&ns, &source)
            }
            Event::Init => {
                relist.clear();
                continue;
            }
            Event::InitApply(obj) => {
                relist.push((obj.namespace().unwrap_or_default(), to_state(&obj)));
                continue;
            }
            Event::InitDone => {
                let fresh = std::mem::take(&mut relist);
                tracing::info!(sources = fresh.len(), "sources listed");
                let affected = engine.ctx.store.replace_sources(kind, scope.as_deref(), fresh);
                engine.scheduler.source_synced(kind, scope.as_deref());
                affected
            }
        };
        engine.scheduler.enqueue_all(affected);
    }
}

/// `--webhook-url` in Stakater's meaning: the leader announces a source change, once.
fn announce(engine: &Engine, source: &SourceRef, namespace: &str) {
    if let Some(announcer) = &engine.ctx.outbound.announcer
        && engine.scheduler.gate().is_leader()
    {
        announcer.announce(&source.name, source.kind.stakater_type(), namespace);
    }
}

/// Strips what the engine never reads and that costs memory (managed fields, status).
fn slim(mut object: Value) -> Value {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    if let Some(obj) = object.as_object_mut() {
        obj.remove("status");
    }
    object
}

pub fn workload_key(kind: WorkloadKind, obj: &DynamicObject) -> WorkloadKey {
    WorkloadKey {
        kind,
        namespace: obj.namespace().unwrap_or_default(),
        name: obj.name_any(),
    }
}

pub fn to_value(obj: &DynamicObject) -> Value {
    slim(serde_json::to_value(obj).unwrap_or(Value::Null))
}

/// The API resource of a workload kind.
pub fn api_resource(kind: WorkloadKind) -> ApiResource {
    let (group, version, plural) = kind.resource();
    let api_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version,
        kind: kind.to_string(),
        plural: plural.into(),
    }
}

/// Watches one workload kind in one scope until the task is dropped.
pub async fn watch_workloads(engine: Arc<Engine>, kind: WorkloadKind, scope: Option<String>) {
    let resource = api_resource(kind);
    let api: Api<DynamicObject> = match &scope {
        Some(ns) => Api::namespaced_with(engine.ctx.client.clone(), ns, &resource),
        None => Api::all_with(engine.ctx.client.clone(), &resource),
    };
    let mut relist: Vec<(WorkloadKey, Value)> = Vec::new();
    let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Err(error) => {
                tracing::warn!(%error, "workload watch failed; retrying with backoff");
            }
            Ok(Event::Apply(obj)) => {
                let key = workload_key(kind, &obj);
                engine.ctx.store.upsert_workload(key.clone(), to_value(&obj));
                engine.scheduler.enqueue(key);
            }
            Ok(Event::Delete(obj)) => {
                let key = workload_key(kind, &obj);
                engine.ctx.store.remove_workload(&key);
                engine.ctx.forget_reported(&key);
            }
            Ok(Event::Init) => relist.clear(),
            Ok(Event::InitApply(obj)) => relist.push((workload_key(kind, &obj), to_value(&obj))),
            Ok(Event::InitDone) => {
                let fresh = std::mem::take(&mut relist);
                tracing::info!(workloads = fresh.len(), "workloads listed");
                let keys = engine.ctx.store.replace_workloads(kind, scope.as_deref(), fresh);
                engine.ctx.prune_reported();
                engine.scheduler.enqueue_all(keys);
            }
        }
    }
}

/// Keeps the set of namespaces matching `--namespace-selector`; workloads elsewhere are left
/// alone. A namespace entering the set has its workloads reconciled.
pub async fn watch_namespaces(engine: Arc<Engine>, selector: String) {
    let api: Api<Namespace> = Api::all(engine.ctx.client.clone());
    let mut relist: BTreeSet<String> = BTreeSet::new();
    let stream = watcher::watcher(api, watcher::Config::default().labels(&selector)).default_backoff();
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Err(error) => tracing::warn!(%error, "namespace watch failed; retrying with backoff"),
            Ok(Event::Apply(ns)) => {
                if engine.ctx.scope.select(ns.name_any(), true) {
                    engine.enqueue_namespace(&ns.name_any());
                }
            }
            Ok(Event::Delete(ns)) => {
                engine.ctx.scope.select(ns.name_any(), false);
            }
            Ok(Event::Init) => relist.clear(),
            Ok(Event::InitApply(ns)) => {
                relist.insert(ns.name_any());
            }
            Ok(Event::InitDone) => {
                for ns in engine.ctx.scope.replace_selected(std::mem::take(&mut relist)) {
                    engine.enqueue_namespace(&ns);
                }
            }
        }
    }
}
