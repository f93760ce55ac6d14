//! Watchers: ConfigMaps and Secrets become [`SourceState`]s (hash, name, annotations; the data is
//! hashed while each object is parsed and never kept), workloads become stored JSON without what
//! the engine never reads, and every change is answered by queueing the affected workloads found
//! through the store's index. No LIST per change.
//!
//! Memory: the objects are parsed straight into these small forms ([`WatchedSource`],
//! [`WatchedWorkload`]), so neither an initial list nor a watch event ever holds a full object
//! tree, and the initial lists are streamed (`sendInitialEvents`) when the API server serves
//! them, one object at a time instead of pages (see `docs/engine.md`).

use crate::core::json::JsonAt;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::marker::PhantomData;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ApiResource, WatchEvent, WatchParams};
use kube::core::{DynamicResourceScope, NamespaceResourceScope};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::Engine;
use crate::core::hash::{configmap_hash, secret_hash};
use crate::core::per_key::KeyDigests;
use crate::core::rollout_status::{RolloutFacts, RolloutStatus};
use crate::core::source::{SourceKind, SourceRef, SourceState, kept_annotations};
use crate::core::workload::WorkloadKind;
use crate::kube_api::{api_resource, slim};
use crate::metrics::WatchEvent as WatchEventKind;
use crate::store::{StoredWorkload, WorkloadKey};

pub use crate::core::source::SECRET_FIELD_SELECTOR;

pub fn configmap_state(cm: &ConfigMap) -> SourceState {
    SourceState::of_config_map(cm)
}

pub fn secret_state(secret: &Secret) -> SourceState {
    SourceState::of_secret(secret)
}

/// The little of an object's metadata the watchers read: everything else (managed fields,
/// labels, owner references) is skipped while parsing, never allocated.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WatchedMeta {
    name: Option<String>,
    namespace: Option<String>,
    resource_version: Option<String>,
    annotations: Option<BTreeMap<String, String>>,
}

impl WatchedMeta {
    /// The `ObjectMeta` the watcher machinery reads (identity and resource version), and the
    /// annotations apart.
    fn split(self) -> (ObjectMeta, BTreeMap<String, String>) {
        let meta = ObjectMeta {
            name: self.name,
            namespace: self.namespace,
            resource_version: self.resource_version,
            ..ObjectMeta::default()
        };
        (meta, self.annotations.unwrap_or_default())
    }
}

/// A ConfigMap (`K = ConfigMap`) or Secret (`K = Secret`) as the source watchers parse it: its
/// [`SourceState`], the content hashed while the object is read, so an initial list never
/// holds source data beyond the one object being parsed.
#[derive(Clone, Debug)]
pub struct WatchedSource<K> {
    meta: ObjectMeta,
    pub state: SourceState,
    kind: PhantomData<fn() -> K>,
}

impl<K> WatchedSource<K> {
    fn new(kind: SourceKind, meta: WatchedMeta, hash: crate::core::hash::ContentHash, keys: KeyDigests) -> Self {
        let (meta, annotations) = meta.split();
        let state = SourceState {
            source: SourceRef::new(kind, meta.name.clone().unwrap_or_default()),
            annotations: kept_annotations(annotations),
            hash,
            keys,
            changed: None,
        };
        Self {
            meta,
            state,
            kind: PhantomData,
        }
    }
}

impl<K: Resource<DynamicType = (), Scope = NamespaceResourceScope>> Resource for WatchedSource<K> {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(dt: &()) -> Cow<'_, str> {
        K::kind(dt)
    }

    fn group(dt: &()) -> Cow<'_, str> {
        K::group(dt)
    }

    fn version(dt: &()) -> Cow<'_, str> {
        K::version(dt)
    }

    fn api_version(dt: &()) -> Cow<'_, str> {
        K::api_version(dt)
    }

    fn plural(dt: &()) -> Cow<'_, str> {
        K::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        &self.meta
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.meta
    }
}

impl<'de> Deserialize<'de> for WatchedSource<ConfigMap> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Raw {
            metadata: WatchedMeta,
            data: Option<BTreeMap<String, String>>,
            binary_data: Option<BTreeMap<String, ByteString>>,
        }
        let raw = Raw::deserialize(deserializer)?;
        let data = || raw.data.iter().flatten();
        let binary = || raw.binary_data.iter().flatten().map(|(k, v)| (k, v.0.as_slice()));
        let hash = configmap_hash(data(), binary());
        let keys = KeyDigests::of_config_map(data(), binary());
        Ok(Self::new(SourceKind::ConfigMap, raw.metadata, hash, keys))
    }
}

impl<'de> Deserialize<'de> for WatchedSource<Secret> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            metadata: WatchedMeta,
            data: Option<BTreeMap<String, ByteString>>,
        }
        let raw = Raw::deserialize(deserializer)?;
        let data = || raw.data.iter().flatten().map(|(k, v)| (k, v.0.as_slice()));
        let keys = KeyDigests::of_secret(data());
        Ok(Self::new(SourceKind::Secret, raw.metadata, secret_hash(data()), keys))
    }
}

/// A workload as the workload watchers parse it: the stored JSON (see [`slim`]), what its
/// rollout health is read from (taken before the status is dropped; the kind, which the health
/// depends on, is the watcher's), and the identity the watcher machinery reads.
#[derive(Clone, Debug)]
pub struct WatchedWorkload {
    meta: ObjectMeta,
    pub object: StoredWorkload,
    pub rollout: RolloutFacts,
}

impl WatchedWorkload {
    /// What the store keeps of a workload of `kind`.
    fn stored(self, kind: WorkloadKind) -> StoredWorkload {
        self.object.with_rollout(RolloutStatus::of(kind, &self.rollout))
    }
}

impl Resource for WatchedWorkload {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn group(dt: &ApiResource) -> Cow<'_, str> {
        dt.group.as_str().into()
    }

    fn version(dt: &ApiResource) -> Cow<'_, str> {
        dt.version.as_str().into()
    }

    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        dt.kind.as_str().into()
    }

    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        dt.api_version.as_str().into()
    }

    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        dt.plural.as_str().into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.meta
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.meta
    }
}

impl<'de> Deserialize<'de> for WatchedWorkload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let object = Value::deserialize(deserializer)?;
        let rollout = RolloutFacts::read(&object);
        let object = slim(object);
        let text = |field: &str| {
            object
                .at(&format!("/metadata/{field}"))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let meta = ObjectMeta {
            name: text("name"),
            namespace: text("namespace"),
            resource_version: text("resourceVersion"),
            ..ObjectMeta::default()
        };
        Ok(Self {
            meta,
            object: StoredWorkload::from(&object),
            rollout,
        })
    }
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

/// The page size of initial lists when they cannot be streamed: a page is held whole (as text
/// and parsed) until its last object is processed, so small pages keep the start-up peak low
/// at a few more requests.
const LIST_PAGE_SIZE: u32 = 100;

/// How the watchers list what exists when they start: streamed (`sendInitialEvents`, the
/// WatchList feature) when `streaming`, else in pages of [`LIST_PAGE_SIZE`].
pub fn initial_lists(config: watcher::Config, streaming: bool) -> watcher::Config {
    if streaming {
        config.streaming_lists()
    } else {
        config.page_size(LIST_PAGE_SIZE)
    }
}

/// Whether the API server streams initial lists (the WatchList feature): one watch of a
/// ConfigMap name that should not exist must end its initial events with the
/// `k8s.io/initial-events-end` bookmark. A server without the feature either rejects the
/// parameters or ignores them and never sends that bookmark; either way, paged lists.
pub async fn streaming_lists_served(client: kube::Client, scope: Option<&str>) -> bool {
    const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";
    let api: Api<ConfigMap> = scoped_api(client, scope);
    let params = WatchParams::streaming_lists()
        .fields("metadata.name=reloader.streaming-lists-probe")
        .timeout(5);
    let probe = async {
        let stream = match api.watch(&params, "0").await {
            Ok(stream) => stream,
            Err(error) => {
                tracing::debug!(%error, "streaming lists not served");
                return false;
            }
        };
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(WatchEvent::Bookmark(bookmark))
                    if bookmark.metadata.annotations.contains_key(INITIAL_EVENTS_END) =>
                {
                    return true;
                }
                Ok(WatchEvent::Error(_)) | Err(_) => return false,
                Ok(_) => {}
            }
        }
        false
    };
    let served = tokio::time::timeout(std::time::Duration::from_secs(10), probe)
        .await
        .unwrap_or(false);
    tracing::info!(
        streaming = served,
        "initial lists: {}",
        if served { "streamed" } else { "paged" }
    );
    served
}

/// Watches one source kind in one scope until the task is dropped.
pub async fn watch_sources<K>(engine: Arc<Engine>, config: watcher::Config, kind: SourceKind, scope: Option<String>)
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + std::fmt::Debug + Send + 'static,
    WatchedSource<K>: DeserializeOwned,
{
    let api: Api<WatchedSource<K>> = scoped_api(engine.ctx.client.clone(), scope.as_deref());
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
                let state = obj.state;
                let before = engine
                    .ctx
                    .store
                    .sources(&ns)
                    .map()
                    .get(&state.source)
                    .map(|s| s.hash.clone());
                let event = if before.is_some() {
                    WatchEventKind::Update
                } else {
                    WatchEventKind::Add
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
                engine.ctx.metrics.event(kind, WatchEventKind::Delete);
                engine.ctx.metrics.processed(kind);
                let source = obj.state.source;
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
                relist.push((obj.namespace().unwrap_or_default(), obj.state));
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

pub fn workload_key(kind: WorkloadKind, obj: &impl Resource) -> WorkloadKey {
    WorkloadKey {
        kind,
        namespace: obj.namespace().unwrap_or_default(),
        name: obj.name_any(),
    }
}

/// Watches one workload kind in one scope until the task is dropped. The store learns at once
/// (before the task first runs) that this list is to come: no wave is computed before it is
/// made.
pub fn watch_workloads(
    engine: Arc<Engine>,
    kind: WorkloadKind,
    scope: Option<String>,
    streaming: bool,
) -> impl Future<Output = ()> + Send + 'static {
    engine.ctx.store.expect_workload_list(kind, scope.as_deref());
    watching_workloads(engine, kind, scope, streaming)
}

async fn watching_workloads(engine: Arc<Engine>, kind: WorkloadKind, scope: Option<String>, streaming: bool) {
    let resource = api_resource(kind);
    let api: Api<WatchedWorkload> = match &scope {
        Some(ns) => Api::namespaced_with(engine.ctx.client.clone(), ns, &resource),
        None => Api::all_with(engine.ctx.client.clone(), &resource),
    };
    let mut relist: Vec<(WorkloadKey, StoredWorkload)> = Vec::new();
    let config = initial_lists(watcher::Config::default(), streaming);
    let stream = watcher::watcher(api, config).default_backoff();
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Err(error) => {
                tracing::warn!(%error, "workload watch failed; retrying with backoff");
            }
            Ok(Event::Apply(obj)) => {
                let key = workload_key(kind, &obj);
                let health_changed = engine.ctx.store.upsert_workload(key.clone(), obj.stored(kind));
                if health_changed {
                    // The next wave of its sources may open, or theirs halt.
                    engine
                        .scheduler
                        .enqueue_all(super::waves::wave_dependents(&engine.ctx, &key));
                }
                engine.scheduler.enqueue(key);
            }
            Ok(Event::Delete(obj)) => {
                let key = workload_key(kind, &obj);
                engine.ctx.store.remove_workload(&key);
                engine.ctx.forget_reported(&key);
                engine.ctx.release_hold(&key);
            }
            Ok(Event::Init) => relist.clear(),
            Ok(Event::InitApply(obj)) => relist.push((workload_key(kind, &obj), obj.stored(kind))),
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

/// Keeps each Namespace's `reload-window` annotation (metadata only); a change reconciles the
/// Namespace's workloads, so what a window held rolls when it is removed or widened.
pub async fn watch_namespace_windows(engine: Arc<Engine>) {
    use crate::core::vocabulary::fixed::RELOAD_WINDOW;
    let api: Api<kube::core::PartialObjectMeta<Namespace>> = Api::all(engine.ctx.client.clone());
    let window_of = |ns: &kube::core::PartialObjectMeta<Namespace>| ns.annotations().get(RELOAD_WINDOW).cloned();
    let mut relist: BTreeMap<String, Option<String>> = BTreeMap::new();
    let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Err(error) => tracing::warn!(%error, "namespace watch failed; retrying with backoff"),
            Ok(Event::Apply(ns)) => {
                if engine.ctx.namespace_windows.set(&ns.name_any(), window_of(&ns)) {
                    engine.enqueue_namespace(&ns.name_any());
                }
            }
            Ok(Event::Delete(ns)) => {
                engine.ctx.namespace_windows.set(&ns.name_any(), None);
            }
            Ok(Event::Init) => relist.clear(),
            Ok(Event::InitApply(ns)) => {
                relist.insert(ns.name_any(), window_of(&ns));
            }
            Ok(Event::InitDone) => {
                for (ns, window) in std::mem::take(&mut relist) {
                    if engine.ctx.namespace_windows.set(&ns, window) {
                        engine.enqueue_namespace(&ns);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::source::LAST_APPLIED;
    use serde_json::json;

    fn secret_json() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {
                "name": "db", "namespace": "ns", "resourceVersion": "7",
                "annotations": {LAST_APPLIED: "{\"data\":{\"password\":\"czM=\"}}", "note": "x"},
                "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:data": {}}}],
            },
            "data": {"password": "czM=", "user": "YWRtaW4="},
        })
    }

    #[test]
    fn sources_parse_to_the_state_of_the_full_object() {
        let slim: WatchedSource<Secret> = serde_json::from_value(secret_json()).unwrap();
        let full: Secret = serde_json::from_value(secret_json()).unwrap();
        assert_eq!(slim.state, SourceState::of_secret(&full));
        // Per key too, for per-key reloads.
        assert!(slim.state.keys.contains("password") && slim.state.keys.contains("user"));
        assert_eq!(slim.state.keys.len(), 2);
        assert_eq!(slim.meta.resource_version.as_deref(), Some("7"));
        assert_eq!(slim.namespace().as_deref(), Some("ns"));
        // kubectl's copy of the data is not kept; other annotations are.
        assert_eq!(
            slim.state.annotations,
            BTreeMap::from([("note".to_string(), "x".to_string())])
        );

        let cm = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cfg", "namespace": "ns", "annotations": {LAST_APPLIED: "{}"}},
            "data": {"a": "1"}, "binaryData": {"b": "AAE="},
        });
        let slim: WatchedSource<ConfigMap> = serde_json::from_value(cm.clone()).unwrap();
        let full: ConfigMap = serde_json::from_value(cm).unwrap();
        assert_eq!(slim.state, SourceState::of_config_map(&full));
        assert!(slim.state.keys.contains("a") && slim.state.keys.contains("b"));
        assert!(slim.state.annotations.is_empty());
    }

    #[test]
    fn sources_without_data_hash_as_empty() {
        let bare = json!({"metadata": {"name": "empty"}, "data": null});
        let slim: WatchedSource<Secret> = serde_json::from_value(bare).unwrap();
        assert_eq!(slim.state.hash, secret_hash(std::iter::empty()));
        assert!(serde_json::from_value::<WatchedSource<Secret>>(json!({"data": {"k": "not base64!"}})).is_err());
    }

    #[test]
    fn workloads_keep_what_the_engine_reads() {
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {
                "name": "app", "namespace": "ns", "resourceVersion": "9", "uid": "u",
                "annotations": {LAST_APPLIED: "{\"spec\":{}}", "reloader.stakater.com/auto": "true"},
                "managedFields": [{"manager": "kubectl"}],
            },
            "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}},
            "status": {"replicas": 1},
        });
        let slim: WatchedWorkload = serde_json::from_value(deployment.clone()).unwrap();
        assert_eq!(slim.name_any(), "app");
        assert_eq!(slim.resource_version().as_deref(), Some("9"));
        let mut expected = deployment;
        expected.as_object_mut().unwrap().remove("status");
        let meta = expected["metadata"].as_object_mut().unwrap();
        meta.remove("managedFields");
        meta["annotations"][LAST_APPLIED] = json!("");
        assert_eq!(slim.object.parse().unwrap(), expected);

        // A Job is re-created from what is stored: it keeps kubectl's annotation.
        let job = json!({"kind": "Job", "metadata": {"name": "j", "annotations": {LAST_APPLIED: "{}"}}});
        let slim: WatchedWorkload = serde_json::from_value(job).unwrap();
        assert_eq!(
            slim.object.parse().unwrap()["metadata"]["annotations"][LAST_APPLIED],
            "{}"
        );
    }
}
