//! Building inventories fast: objects are POSTed concurrently through the kube client (so no
//! last-applied annotation doubles them), every one labelled `reloader-bench=true`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::probe::{BENCH_LABEL, Key};

/// Concurrent creates in flight.
const CONCURRENCY: usize = 48;

/// A small, fast, deterministic byte source for object payloads (content is irrelevant; it only
/// has to be incompressible-looking and differ between objects).
pub struct Bytes(u64);

impl Bytes {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn take(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            out.extend_from_slice(&self.0.to_le_bytes());
        }
        out.truncate(n);
        out
    }

    /// `n` printable characters (ConfigMap values are strings).
    pub fn text(&mut self, n: usize) -> String {
        self.take(n).iter().map(|b| char::from(b'a' + b % 26)).collect()
    }
}

fn labels() -> Value {
    json!({BENCH_LABEL: "true"})
}

pub fn opaque_secret(name: &str, bytes: usize, seed: u64) -> Secret {
    let data = k8s_openapi::ByteString(Bytes::new(seed).take(bytes));
    let mut s: Secret =
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels()}, "type": "Opaque"})).unwrap();
    s.data = Some([("blob".to_string(), data)].into());
    s
}

/// A Secret as Helm 3 stores a release: type `helm.sh/release.v1`, one large `release` key.
pub fn helm_release_secret(release: &str, bytes: usize, seed: u64) -> Secret {
    let data = k8s_openapi::ByteString(Bytes::new(seed).take(bytes));
    let mut s: Secret = serde_json::from_value(json!({
        "metadata": {"name": format!("sh.helm.release.v1.{release}.v1"),
                     "labels": {BENCH_LABEL: "true", "owner": "helm", "name": release, "status": "deployed", "version": "1"}},
        "type": "helm.sh/release.v1"
    }))
    .unwrap();
    s.data = Some([("release".to_string(), data)].into());
    s
}

pub fn config_map(name: &str, chars: usize, seed: u64) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels()},
        "data": {"settings": Bytes::new(seed).text(chars)}
    }))
    .unwrap()
}

/// A Deployment annotated `reloader.stakater.com/auto: "true"` with 0 replicas (no pods: the
/// reload, not the rollout's pods, is measured), using `config_maps` by envFrom and `secrets`
/// as volumes.
pub fn deployment(name: &str, config_maps: &[String], secrets: &[String]) -> Deployment {
    let env_from: Vec<Value> = config_maps
        .iter()
        .map(|c| json!({"configMapRef": {"name": c}}))
        .collect();
    let volumes: Vec<Value> = secrets
        .iter()
        .enumerate()
        .map(|(i, s)| json!({"name": format!("s{i}"), "secret": {"secretName": s}}))
        .collect();
    let mounts: Vec<Value> = (0..secrets.len())
        .map(|i| json!({"name": format!("s{i}"), "mountPath": format!("/secrets/{i}")}))
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels(), "annotations": {"reloader.stakater.com/auto": "true"}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
                                         "envFrom": env_from, "volumeMounts": mounts}],
                         "volumes": volumes}
            }
        }
    }))
    .unwrap()
}

/// Creates a labelled namespace.
pub async fn namespace(client: &Client, name: &str) -> Result<()> {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name, "labels": labels()}}))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .with_context(|| format!("creating namespace {name}"))?;
    Ok(())
}

/// One object to create, in its namespace.
#[allow(clippy::large_enum_variant)] // built once each and moved straight into a request
pub enum Object {
    Secret(String, Secret),
    ConfigMap(String, ConfigMap),
    Deployment(String, Deployment),
}

/// Creates `objects` with [`CONCURRENCY`] requests in flight; returns the time taken.
pub async fn create(client: &Client, objects: Vec<Object>) -> Result<Duration> {
    let start = Instant::now();
    let pp = PostParams::default();
    futures::stream::iter(objects)
        .map(|object| {
            let client = client.clone();
            let pp = pp.clone();
            async move {
                let result = match &object {
                    Object::Secret(ns, o) => Api::namespaced(client, ns).create(&pp, o).await.map(drop),
                    Object::ConfigMap(ns, o) => Api::namespaced(client, ns).create(&pp, o).await.map(drop),
                    Object::Deployment(ns, o) => Api::namespaced(client, ns).create(&pp, o).await.map(drop),
                };
                match result {
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
                    other => other.context("creating an inventory object"),
                }
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(start.elapsed())
}

/// How many objects of a kind the whole cluster holds (metadata list of one item).
pub async fn count<K>(client: &Client) -> Result<u64>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let list = Api::<K>::all(client.clone())
        .list_metadata(&ListParams::default().limit(1))
        .await?;
    Ok(list.items.len() as u64 + list.metadata.remaining_item_count.unwrap_or(0).max(0) as u64)
}

/// Deletes one namespace (in the background: the namespace controller empties it).
pub async fn delete_namespace(client: &Client, name: &str) {
    let _ = Api::<Namespace>::all(client.clone())
        .delete(name, &DeleteParams::background())
        .await;
}

/// Deletes every namespace the harness created (this run's or an earlier one's).
pub async fn delete_bench_namespaces(client: &Client) {
    let api = Api::<Namespace>::all(client.clone());
    let params = ListParams::default().labels(&format!("{BENCH_LABEL}=true"));
    let Ok(list) = api.list_metadata(&params).await else {
        return;
    };
    for ns in &list.items {
        if let Some(name) = &ns.metadata.name {
            let _ = api.delete(name, &DeleteParams::background()).await;
        }
    }
    // Until they are gone: a contender started next would otherwise list what they still hold
    // (a run after an interrupted one, or `BENCH_ONLY` runs one after another).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while std::time::Instant::now() < deadline {
        match api.list_metadata(&params).await {
            Ok(left) if left.items.is_empty() => return,
            Ok(left) => eprintln!(
                "[bench] waiting for {} bench namespaces to be deleted",
                left.items.len()
            ),
            Err(_) => {}
        }
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    }
    eprintln!("[bench] bench namespaces still terminating after 300 s");
}

/// Deployment keys `prefix-0 .. prefix-(n-1)` in `namespace`.
pub fn keys(namespace: &str, prefix: &str, n: usize) -> Vec<Key> {
    (0..n)
        .map(|i| (namespace.to_string(), format!("{prefix}-{i}")))
        .collect()
}

/// Cheap counts of what a namespace-set holds (for the figures).
pub async fn totals(client: &Client) -> Result<Value> {
    Ok(json!({
        "secrets": count::<Secret>(client).await?,
        "config_maps": count::<ConfigMap>(client).await?,
        "deployments": count::<Deployment>(client).await?,
    }))
}
