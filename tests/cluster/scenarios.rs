//! Stakater Reloader's e2e scenario inventory (§5.2 of the behaviour reference), ported as
//! table-driven acceptance tests against the real control plane.
//!
//! A [`Table`] is one namespace, one reloader process and many workloads ([`Row`]s), each with
//! its annotations and pod spec and the sources it must reload on. The table then goes through
//! [`Step`]s of source changes; after each step every row must have exactly the expected number
//! of revisions (ReplicaSets for Deployments, ControllerRevisions for DaemonSets and
//! StatefulSets), carry the expected stamp (our `hashes` pod-template annotation, or a
//! `STAKATER_<NAME>_<TYPE>` env var on the right container under `env-vars`), and a StatefulSet
//! that rolled must have a new `status.updateRevision`.
//!
//! Negative assertions ("this row did not roll") are made only once the reloader has provably
//! answered the step. The reloader runs with a single worker; its queue hands out keys in due
//! order, and every enqueue is due one reload window after it. After each step the table bumps a
//! *barrier* ConfigMap and Secret, each used by one barrier Deployment, twice, waiting each time
//! for the barrier Deployments to carry the new stamp. A step's change of a kind reaches the
//! reloader before the first bump of that kind (one watch stream), so every reconcile it causes
//! is due before any key added after that bump arrived. The barrier reconcile that answers the
//! second bump was queued after the one answering the first had started (an earlier queue entry
//! of the barrier Deployment, e.g. from its own status update, can answer the first bump but not
//! the second), so it is due later than everything the step caused, and with one worker those
//! reconciles have finished when it has.
//!
//! Differences from Stakater are those of `docs/compatibility.md`: the default strategy is
//! `annotations` (deterministic hashes), workloads are acknowledged without rolling on first
//! sight, and create/delete are states (#4, #10).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use reloader::core::hash::{configmap_hash_of, secret_hash_of};
use reloader::core::hash_record::{HashRecord, Observed, env_var_name};
use reloader::core::source::{SourceKind, SourceRef};
use reloader::core::vocabulary::{defaults, fixed};
use serde::Serialize;
use serde_json::{Value, json};

use crate::support::{DEADLINE, Reloader, TestNamespace, client};

// ---------------------------------------------------------------------------------------------
// Table vocabulary
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Deployment,
    DaemonSet,
    StatefulSet,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Strategy {
    /// Our default: no `--reload-strategy` flag at all.
    Annotations,
    EnvVars,
}

fn cm(name: &str) -> SourceRef {
    SourceRef::new(SourceKind::ConfigMap, name)
}

fn secret(name: &str) -> SourceRef {
    SourceRef::new(SourceKind::Secret, name)
}

/// A ConfigMap or Secret of a table.
struct Source {
    source: SourceRef,
    labels: Value,
    annotations: Value,
    /// Created before the reloader starts; otherwise only by a [`Change::create`].
    exists: bool,
}

fn source(source: SourceRef) -> Source {
    Source {
        source,
        labels: json!({}),
        annotations: json!({}),
        exists: true,
    }
}

impl Source {
    fn annotated(mut self, annotations: Value) -> Self {
        self.annotations = annotations;
        self
    }

    fn labelled(mut self, labels: Value) -> Self {
        self.labels = labels;
        self
    }

    fn missing(mut self) -> Self {
        self.exists = false;
        self
    }
}

/// One workload: its annotations, pod spec, and what it must reload on.
struct Row {
    name: &'static str,
    kind: Kind,
    meta: Value,
    template: Value,
    spec: Value,
    /// The sources whose changes roll it, each with the index of the container that carries
    /// the `STAKATER_*` env var under `env-vars`.
    reloads: Vec<(SourceRef, usize)>,
}

fn row(name: &'static str, meta: Value, spec: Value) -> Row {
    Row {
        name,
        kind: Kind::Deployment,
        meta,
        template: json!({}),
        spec,
        reloads: Vec::new(),
    }
}

impl Row {
    fn kind(mut self, kind: Kind) -> Self {
        self.kind = kind;
        self
    }

    fn template(mut self, annotations: Value) -> Self {
        self.template = annotations;
        self
    }

    /// Reloads on these sources; the env var goes on `containers[0]`.
    fn reloads<'a>(mut self, sources: impl IntoIterator<Item = &'a SourceRef>) -> Self {
        self.reloads.extend(sources.into_iter().map(|s| (s.clone(), 0)));
        self
    }

    /// Reloads on `source`, with the env var on `containers[container]`.
    fn reloads_at(mut self, source: SourceRef, container: usize) -> Self {
        self.reloads.push((source, container));
        self
    }

    fn container_for(&self, source: &SourceRef) -> Option<usize> {
        self.reloads.iter().find(|(s, _)| s == source).map(|(_, c)| *c)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Data,
    Labels,
    Create,
    Delete,
}

struct Change {
    source: SourceRef,
    op: Op,
    /// Whether this change rolls the rows that list `source` in their `reloads`.
    rolls: bool,
}

impl Change {
    fn data(source: SourceRef) -> Self {
        Self {
            source,
            op: Op::Data,
            rolls: true,
        }
    }

    fn labels(source: SourceRef) -> Self {
        Self {
            source,
            op: Op::Labels,
            rolls: false,
        }
    }

    fn create(source: SourceRef, rolls: bool) -> Self {
        Self {
            source,
            op: Op::Create,
            rolls,
        }
    }

    fn delete(source: SourceRef, rolls: bool) -> Self {
        Self {
            source,
            op: Op::Delete,
            rolls,
        }
    }
}

struct Step {
    what: &'static str,
    changes: Vec<Change>,
}

fn step(what: &'static str, changes: Vec<Change>) -> Step {
    Step { what, changes }
}

struct Table {
    prefix: &'static str,
    strategy: Strategy,
    args: Vec<&'static str>,
    sources: Vec<Source>,
    rows: Vec<Row>,
    steps: Vec<Step>,
    /// Source kinds the reloader watches (barriers exist only for these).
    watched: Vec<SourceKind>,
}

fn table(prefix: &'static str, strategy: Strategy) -> Table {
    Table {
        prefix,
        strategy,
        args: Vec::new(),
        sources: Vec::new(),
        rows: Vec::new(),
        steps: Vec::new(),
        watched: vec![SourceKind::ConfigMap, SourceKind::Secret],
    }
}

// Pod-spec helpers -----------------------------------------------------------------------------

const IMAGE: &str = "registry.example/app:1";

fn env_from<'a>(sources: impl IntoIterator<Item = &'a SourceRef>) -> Value {
    Value::Array(
        sources
            .into_iter()
            .map(|s| match s.kind {
                SourceKind::ConfigMap => json!({"configMapRef": {"name": s.name}}),
                _ => json!({"secretRef": {"name": s.name}}),
            })
            .collect(),
    )
}

fn container(name: &str, extra: Value) -> Value {
    let mut c = json!({"name": name, "image": IMAGE});
    c.as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap_or_default());
    c
}

/// One container `app` using `sources` through `envFrom`.
fn uses<'a>(sources: impl IntoIterator<Item = &'a SourceRef>) -> Value {
    json!({"containers": [container("app", json!({"envFrom": env_from(sources)}))]})
}

fn volume_of(source: &SourceRef) -> Value {
    match source.kind {
        SourceKind::ConfigMap => json!({"name": "vol", "configMap": {"name": source.name}}),
        _ => json!({"name": "vol", "secret": {"secretName": source.name}}),
    }
}

fn projected<'a>(sources: impl IntoIterator<Item = &'a SourceRef>) -> Value {
    let items: Vec<Value> = sources
        .into_iter()
        .map(|s| match s.kind {
            SourceKind::ConfigMap => json!({"configMap": {"name": s.name}}),
            _ => json!({"secret": {"name": s.name}}),
        })
        .collect();
    json!({"name": "vol", "projected": {"sources": items}})
}

fn mount() -> Value {
    json!({"volumeMounts": [{"name": "vol", "mountPath": "/etc/vol"}]})
}

/// `app` mounts `volume`.
fn mounted(volume: Value) -> Value {
    json!({"containers": [container("app", mount())], "volumes": [volume]})
}

/// Only an init container uses the source; `app` uses nothing.
fn init_env_from(source: &SourceRef) -> Value {
    json!({
        "initContainers": [container("init", json!({"envFrom": env_from([source])}))],
        "containers": [container("app", json!({}))]
    })
}

fn init_mounted(source: &SourceRef) -> Value {
    json!({
        "initContainers": [container("init", mount())],
        "containers": [container("app", json!({}))],
        "volumes": [volume_of(source)]
    })
}

fn value_from(source: &SourceRef) -> Value {
    let reference = match source.kind {
        SourceKind::ConfigMap => json!({"configMapKeyRef": {"name": source.name, "key": "k"}}),
        _ => json!({"secretKeyRef": {"name": source.name, "key": "k"}}),
    };
    json!({"containers": [container("app", json!({"env": [{"name": "K", "valueFrom": reference}]}))]})
}

fn auto() -> Value {
    json!({defaults::AUTO: "true"})
}

fn none() -> Value {
    json!({})
}

// ---------------------------------------------------------------------------------------------
// Running a table
// ---------------------------------------------------------------------------------------------

/// What the API server holds about one workload.
#[derive(Debug)]
struct Seen {
    observed: bool,
    revisions: usize,
    acknowledged: bool,
    template: Value,
    update_revision: Option<String>,
}

/// Polls `check` until it returns `Ok`; panics with its last error after [`DEADLINE`].
async fn until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let error = match check().await {
            Ok(value) => return value,
            Err(error) => error,
        };
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {DEADLINE:?}: {error}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn to_value(object: impl Serialize) -> Value {
    serde_json::to_value(object).unwrap()
}

fn env_value<'a>(container: &'a Value, var: &str) -> Option<&'a str> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == var)?
        .get("value")?
        .as_str()
}

fn cm_observed(cm: &ConfigMap) -> Observed {
    Observed::Hash(configmap_hash_of(cm.data.as_ref(), None))
}

fn secret_observed(s: &Secret) -> Observed {
    let data: BTreeMap<String, Vec<u8>> = s.data.iter().flatten().map(|(k, v)| (k.clone(), v.0.clone())).collect();
    Observed::Hash(secret_hash_of(Some(&data)))
}

/// Whether a row uses or names `source` anywhere (pod spec, annotations, expectations).
fn involves(row: &Row, source: &SourceRef) -> bool {
    fn mentions(value: &Value, name: &str) -> bool {
        match value {
            Value::String(text) => text.split(',').any(|item| item.trim() == name),
            Value::Array(items) => items.iter().any(|v| mentions(v, name)),
            Value::Object(map) => map.values().any(|v| mentions(v, name)),
            _ => false,
        }
    }
    row.container_for(source).is_some()
        || [&row.spec, &row.meta, &row.template]
            .into_iter()
            .any(|v| mentions(v, &source.name))
}

fn barrier_row(kind: SourceKind) -> Row {
    let name = match kind {
        SourceKind::ConfigMap => "barrier-configmap",
        _ => "barrier-secret",
    };
    let barrier = SourceRef::new(kind, "barrier");
    row(name, auto(), uses([&barrier])).reloads(&[barrier])
}

struct Run {
    table: Table,
    barriers: Vec<Row>,
    client: Client,
    ns: TestNamespace,
    config_maps: Api<ConfigMap>,
    secrets: Api<Secret>,
    reloader: Option<Reloader>,
    counter: u32,
    /// The current content of every source.
    current: BTreeMap<SourceRef, Observed>,
    /// Per row: expected revisions, last pod template, last StatefulSet update revision.
    revisions: BTreeMap<&'static str, usize>,
    templates: BTreeMap<&'static str, Value>,
    update_revisions: BTreeMap<&'static str, Option<String>>,
    /// Per row: the stamps its last rollouts must have left.
    stamps: BTreeMap<&'static str, BTreeMap<SourceRef, Observed>>,
    /// Rollouts expected so far, barriers included.
    rolls: usize,
}

impl Run {
    async fn new(table: Table) -> Self {
        let client = client().await;
        let ns = TestNamespace::new(&client, table.prefix).await;
        let barriers = table.watched.iter().map(|k| barrier_row(*k)).collect();
        Self {
            barriers,
            config_maps: Api::namespaced(client.clone(), &ns.name),
            secrets: Api::namespaced(client.clone(), &ns.name),
            client,
            ns,
            table,
            reloader: None,
            counter: 0,
            current: BTreeMap::new(),
            revisions: BTreeMap::new(),
            templates: BTreeMap::new(),
            update_revisions: BTreeMap::new(),
            stamps: BTreeMap::new(),
            rolls: 0,
        }
    }

    fn reloader(&self) -> &Reloader {
        self.reloader.as_ref().expect("reloader started")
    }

    fn next_value(&mut self) -> String {
        self.counter += 1;
        format!("v{}", self.counter)
    }

    async fn create_source(&mut self, s: &Source) {
        let value = self.next_value();
        let meta = json!({"name": s.source.name, "labels": s.labels, "annotations": s.annotations});
        let observed = match s.source.kind {
            SourceKind::ConfigMap => {
                let object: ConfigMap =
                    serde_json::from_value(json!({"metadata": meta, "data": {"k": value}})).unwrap();
                let created = self.config_maps.create(&PostParams::default(), &object).await.unwrap();
                cm_observed(&created)
            }
            _ => {
                let object: Secret =
                    serde_json::from_value(json!({"metadata": meta, "stringData": {"k": value}})).unwrap();
                let created = self.secrets.create(&PostParams::default(), &object).await.unwrap();
                secret_observed(&created)
            }
        };
        self.current.insert(s.source.clone(), observed);
    }

    async fn patch_source(&mut self, source: &SourceRef, patch: Value) {
        let params = PatchParams::default();
        let observed = match source.kind {
            SourceKind::ConfigMap => cm_observed(
                &self
                    .config_maps
                    .patch(&source.name, &params, &Patch::Merge(&patch))
                    .await
                    .unwrap(),
            ),
            _ => secret_observed(
                &self
                    .secrets
                    .patch(&source.name, &params, &Patch::Merge(&patch))
                    .await
                    .unwrap(),
            ),
        };
        self.current.insert(source.clone(), observed);
    }

    async fn apply(&mut self, change: &Change) {
        let source = &change.source;
        match change.op {
            Op::Data => {
                let value = self.next_value();
                let field = match source.kind {
                    SourceKind::ConfigMap => "data",
                    _ => "stringData",
                };
                self.patch_source(source, json!({field: {"k": value}})).await;
            }
            Op::Labels => {
                let value = self.next_value();
                self.patch_source(source, json!({"metadata": {"labels": {"touched": value}}}))
                    .await;
            }
            Op::Create => {
                let spec = self
                    .table
                    .sources
                    .iter()
                    .find(|s| &s.source == source)
                    .map(|s| Source {
                        source: s.source.clone(),
                        labels: s.labels.clone(),
                        annotations: s.annotations.clone(),
                        exists: true,
                    })
                    .unwrap_or_else(|| self::source(source.clone()));
                self.create_source(&spec).await;
            }
            Op::Delete => {
                let params = DeleteParams::default();
                match source.kind {
                    SourceKind::ConfigMap => {
                        self.config_maps.delete(&source.name, &params).await.unwrap();
                    }
                    _ => {
                        self.secrets.delete(&source.name, &params).await.unwrap();
                    }
                }
                self.current.insert(source.clone(), Observed::Absent);
            }
        }
    }

    async fn create_workload(&self, row: &Row) {
        let mut spec = json!({
            "revisionHistoryLimit": 50,
            "selector": {"matchLabels": {"app": row.name}},
            "template": {
                "metadata": {"labels": {"app": row.name}, "annotations": row.template},
                "spec": row.spec,
            }
        });
        if row.kind != Kind::DaemonSet {
            spec["replicas"] = json!(1);
        }
        if row.kind == Kind::StatefulSet {
            spec["serviceName"] = json!(row.name);
        }
        let object = json!({
            "metadata": {"name": row.name, "labels": {"app": row.name}, "annotations": row.meta},
            "spec": spec,
        });
        let pp = PostParams::default();
        let ns = &self.ns.name;
        let client = self.client.clone();
        match row.kind {
            Kind::Deployment => {
                let d: Deployment = serde_json::from_value(object).unwrap();
                Api::namespaced(client, ns).create(&pp, &d).await.map(drop)
            }
            Kind::DaemonSet => {
                let d: DaemonSet = serde_json::from_value(object).unwrap();
                Api::namespaced(client, ns).create(&pp, &d).await.map(drop)
            }
            Kind::StatefulSet => {
                let s: StatefulSet = serde_json::from_value(object).unwrap();
                Api::namespaced(client, ns).create(&pp, &s).await.map(drop)
            }
        }
        .unwrap_or_else(|e| panic!("creating {}: {e}", row.name));
    }

    /// Every workload of the namespace, by name.
    async fn snapshot(&self) -> BTreeMap<String, Seen> {
        let lp = ListParams::default();
        let ns = &self.ns.name;
        let c = || self.client.clone();
        let mut objects: Vec<Value> = Vec::new();
        let deployments: Api<Deployment> = Api::namespaced(c(), ns);
        objects.extend(deployments.list(&lp).await.unwrap().items.into_iter().map(to_value));
        let daemon_sets: Api<DaemonSet> = Api::namespaced(c(), ns);
        objects.extend(daemon_sets.list(&lp).await.unwrap().items.into_iter().map(to_value));
        let stateful_sets: Api<StatefulSet> = Api::namespaced(c(), ns);
        objects.extend(stateful_sets.list(&lp).await.unwrap().items.into_iter().map(to_value));

        let mut revisions: BTreeMap<String, usize> = BTreeMap::new();
        let replica_sets: Api<ReplicaSet> = Api::namespaced(c(), ns);
        let controller_revisions: Api<ControllerRevision> = Api::namespaced(c(), ns);
        let mut apps: Vec<Option<String>> = Vec::new();
        apps.extend(
            replica_sets
                .list(&lp)
                .await
                .unwrap()
                .items
                .iter()
                .map(|r| r.labels().get("app").cloned()),
        );
        apps.extend(
            controller_revisions
                .list(&lp)
                .await
                .unwrap()
                .items
                .iter()
                .map(|r| r.labels().get("app").cloned()),
        );
        for app in apps.into_iter().flatten() {
            *revisions.entry(app).or_default() += 1;
        }

        objects
            .into_iter()
            .map(|o| {
                let name = o["metadata"]["name"].as_str().unwrap().to_string();
                let generation = o["metadata"]["generation"].as_i64().unwrap_or_default();
                let seen = Seen {
                    observed: o["status"]["observedGeneration"].as_i64() == Some(generation),
                    revisions: revisions.get(&name).copied().unwrap_or_default(),
                    acknowledged: o["metadata"]["annotations"].get(fixed::ACKNOWLEDGED_HASHES).is_some(),
                    template: o["spec"]["template"].clone(),
                    update_revision: o["status"]["updateRevision"].as_str().map(str::to_string),
                };
                (name, seen)
            })
            .collect()
    }

    /// Why `seen` does not carry the stamp `expected` for `source` on `container`, if it does not.
    fn stamp_error(&self, seen: &Seen, source: &SourceRef, container: usize, expected: &Observed) -> Option<String> {
        match self.table.strategy {
            Strategy::Annotations => {
                let text = seen.template["metadata"]["annotations"]
                    .get(fixed::TEMPLATE_HASHES)
                    .and_then(Value::as_str);
                let Some(text) = text else {
                    return Some(format!("no {} on the pod template", fixed::TEMPLATE_HASHES));
                };
                let record = match HashRecord::parse(text) {
                    Ok(r) => r,
                    Err(e) => return Some(format!("{text:?}: {e}")),
                };
                let recorded = record.0.get(source);
                (recorded != Some(expected))
                    .then(|| format!("pod template records {source} as {recorded:?}, expected {expected}"))
            }
            Strategy::EnvVars => {
                let var = env_var_name(source);
                let containers = seen.template["spec"]["containers"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                for (i, c) in containers.iter().enumerate() {
                    let found = env_value(c, &var);
                    let wanted = match expected {
                        Observed::Hash(h) if i == container => Some(h.as_str()),
                        _ => None,
                    };
                    if found != wanted {
                        return Some(format!("container {i}: {var}={found:?}, expected {wanted:?}"));
                    }
                }
                let inits = seen.template["spec"]["initContainers"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                if let Some(i) = inits.iter().position(|c| env_value(c, &var).is_some()) {
                    return Some(format!("init container {i} carries {var}"));
                }
                None
            }
        }
    }

    fn stamps_error(&self, name: &str, seen: &Seen) -> Option<String> {
        let row = self.row(name);
        self.stamps.get(name)?.iter().find_map(|(source, expected)| {
            let container = row.container_for(source).unwrap_or(0);
            self.stamp_error(seen, source, container, expected)
        })
    }

    fn row(&self, name: &str) -> &Row {
        self.table
            .rows
            .iter()
            .chain(&self.barriers)
            .find(|r| r.name == name)
            .unwrap()
    }

    fn row_names(&self) -> Vec<&'static str> {
        self.table.rows.iter().map(|r| r.name).collect()
    }

    /// Bumps the barrier sources twice, each time waiting until the barrier workloads carry the
    /// new stamp: then everything the reloader was told before has been answered (module doc).
    async fn barrier(&mut self) {
        self.barrier_phase().await;
        self.barrier_phase().await;
        let kinds = &self.table.watched;
        if let Some(unwatched) = [SourceKind::ConfigMap, SourceKind::Secret]
            .into_iter()
            .find(|k| !kinds.contains(k))
        {
            // The ignored kind is not even watched.
            let resource = match unwatched {
                SourceKind::ConfigMap => "configmaps",
                _ => "secrets",
            };
            for event in ["update", "delete"] {
                let sample =
                    format!("reloader_events_received_total{{event_type=\"{event}\",resource_type=\"{resource}\"}}");
                assert_eq!(self.reloader().metric(&sample), 0.0, "{sample}");
            }
        }
    }

    async fn barrier_phase(&mut self) {
        let kinds = self.table.watched.clone();
        for kind in &kinds {
            self.apply(&Change::data(SourceRef::new(*kind, "barrier"))).await;
        }
        let names: Vec<&'static str> = self.barriers.iter().map(|r| r.name).collect();
        for kind in &kinds {
            let barrier = SourceRef::new(*kind, "barrier");
            let name = barrier_row(*kind).name;
            self.stamps
                .entry(name)
                .or_default()
                .insert(barrier.clone(), self.current[&barrier].clone());
        }
        self.rolls += kinds.len();
        let (this, names) = (&*self, &names);
        until("barrier workloads stamped", move || async move {
            let seen = this.snapshot().await;
            for name in names {
                let s = seen.get(*name).ok_or(format!("{name} missing"))?;
                if let Some(e) = this.stamps_error(name, s) {
                    return Err(format!("{name}: {e}"));
                }
            }
            Ok(())
        })
        .await;
    }

    /// Waits until every row is observed by its controller, then checks every row against the
    /// expectations: revisions, pod template, StatefulSet update revision, stamps.
    async fn verify(&mut self, after: &str, rolled: &[&'static str]) {
        let names = self.row_names();
        let (this, names_ref) = (&*self, &names);
        let last = until(&format!("{after}: controllers caught up"), move || async move {
            let seen = this.snapshot().await;
            for name in names_ref {
                let s = seen.get(*name).ok_or(format!("{name} missing"))?;
                if !s.observed || s.revisions == 0 {
                    return Err(format!("{name} not observed yet: {s:?}"));
                }
            }
            Ok(seen)
        })
        .await;
        let mut failures = Vec::new();
        for name in &names {
            let s = &last[*name];
            let row = self.row(name);
            let rolled_now = rolled.contains(name);
            let expected = self.revisions[name];
            if s.revisions != expected {
                failures.push(format!(
                    "{name}: {} revisions, expected {expected} ({})",
                    s.revisions,
                    if rolled_now { "should roll" } else { "should not roll" }
                ));
            }
            // (Not `generation`: a Deployment's also counts metadata annotation changes, such
            // as the acknowledgement.)
            if let Some(before) = self.templates.get(name)
                && !rolled_now
                && s.template != *before
            {
                failures.push(format!(
                    "{name}: pod template changed without a rollout expected:\n    {before}\n -> {}",
                    s.template
                ));
            }
            if row.kind == Kind::StatefulSet {
                if s.update_revision.is_none() {
                    failures.push(format!("{name}: no status.updateRevision"));
                }
                if let Some(before) = self.update_revisions.get(name)
                    && rolled_now == (s.update_revision == *before)
                {
                    failures.push(format!(
                        "{name}: updateRevision {before:?} -> {:?} (should roll: {rolled_now})",
                        s.update_revision
                    ));
                }
            }
            if let Some(e) = self.stamps_error(name, s) {
                failures.push(format!("{name}: {e}"));
            }
        }
        assert!(
            failures.is_empty(),
            "after {after}:\n  {}\nreloader log: {}",
            failures.join("\n  "),
            self.reloader().log.display()
        );
        for name in names {
            self.templates.insert(name, last[name].template.clone());
            self.update_revisions.insert(name, last[name].update_revision.clone());
        }
    }

    async fn start(&mut self) {
        let sources: Vec<Source> = std::mem::take(&mut self.table.sources);
        for s in sources.iter().filter(|s| s.exists) {
            self.create_source(s).await;
        }
        self.table.sources = sources;
        for kind in self.table.watched.clone() {
            let barrier = source(SourceRef::new(kind, "barrier")).labelled(json!({"reload": "true"}));
            self.create_source(&barrier).await;
        }
        for row in self.table.rows.iter().chain(&self.barriers) {
            self.create_workload(row).await;
        }
        for row in &self.table.rows {
            self.revisions.insert(row.name, 1);
        }

        let mut args: Vec<&str> = vec![
            "--workers=1",
            "--max-reloads-per-second=1000",
            "--max-reloads-per-second-per-namespace=1000",
            "--burst=1000",
            // No row reloads on two sources changed in one step, so nothing relies on
            // coalescing; a short window only makes the steps faster.
            "--coalesce-window=50ms",
        ];
        if self.table.strategy == Strategy::EnvVars {
            args.push("--reload-strategy=env-vars");
        }
        args.extend(self.table.args.iter().copied());
        let reloader = Reloader::start(&self.ns.name, &args);
        reloader.wait_ready().await;
        self.reloader = Some(reloader);

        // The barrier workloads must be acknowledged before their first change can roll them.
        let barriers: Vec<&'static str> = self.barriers.iter().map(|r| r.name).collect();
        let (this, barriers) = (&*self, &barriers);
        until("barrier workloads acknowledged", move || async move {
            let seen = this.snapshot().await;
            for name in barriers {
                if !seen.get(*name).is_some_and(|s| s.acknowledged) {
                    return Err(format!("{name} not acknowledged"));
                }
            }
            Ok(())
        })
        .await;
        self.barrier().await;

        // Adoption rolls nothing, and acknowledges every row that reloads on an existing source.
        self.verify("adoption", &[]).await;
        let seen = self.snapshot().await;
        let unacknowledged: Vec<&str> = self
            .table
            .rows
            .iter()
            .filter(|r| {
                // Only sources that exist are recorded; a row using only missing ones may have
                // nothing to acknowledge yet.
                let uses_existing = r
                    .reloads
                    .iter()
                    .any(|(s, _)| matches!(self.current.get(s), Some(Observed::Hash(_))));
                uses_existing && !seen[r.name].acknowledged
            })
            .map(|r| r.name)
            .collect();
        assert!(
            unacknowledged.is_empty(),
            "not acknowledged after adoption: {unacknowledged:?}; reloader log: {}",
            self.reloader().log.display()
        );
    }

    async fn run_step(&mut self, step: &Step) {
        // A row touched by two changes of one step could roll once for both (the reload window
        // coalesces them), which would hide whether the second one counts: keep tables honest.
        for row in &self.table.rows {
            let touching: Vec<&SourceRef> = step
                .changes
                .iter()
                .filter(|c| c.op != Op::Labels && involves(row, &c.source))
                .map(|c| &c.source)
                .collect();
            assert!(
                touching.len() <= 1,
                "table design: {} is involved in several changes of step {:?}: {touching:?}",
                row.name,
                step.what
            );
        }
        for change in &step.changes {
            self.apply(change).await;
        }
        let mut rolled: Vec<&'static str> = Vec::new();
        for row in &self.table.rows {
            let mut rolls = false;
            for change in &step.changes {
                if row.container_for(&change.source).is_none() {
                    continue;
                }
                let stamps = self.stamps.entry(row.name).or_default();
                if change.rolls {
                    rolls = true;
                    stamps.insert(change.source.clone(), self.current[&change.source].clone());
                } else if change.op != Op::Labels {
                    // Acknowledged without a rollout: what the pods run with stays unchecked.
                    stamps.remove(&change.source);
                }
            }
            if rolls {
                rolled.push(row.name);
                *self.revisions.get_mut(row.name).unwrap() += 1;
            }
        }
        self.rolls += rolled.len();

        // The rows that must roll, first: this is what the step waits for.
        let (this, rolled_ref) = (&*self, &rolled);
        until(&format!("{}: rows rolled", step.what), move || async move {
            let seen = this.snapshot().await;
            for name in rolled_ref {
                let s = seen.get(*name).ok_or(format!("{name} missing"))?;
                let expected = this.revisions[name];
                if !s.observed || s.revisions != expected {
                    return Err(format!(
                        "{name}: {} revisions (observed: {}), expected {expected}",
                        s.revisions, s.observed
                    ));
                }
                if let Some(e) = this.stamps_error(name, s) {
                    return Err(format!("{name}: {e}"));
                }
            }
            Ok(())
        })
        .await;
        // Then, once the reloader has provably answered the step, everything else.
        self.barrier().await;
        self.verify(step.what, &rolled).await;
    }

    async fn finish(&self) {
        let reloader = self.reloader();
        assert_eq!(
            reloader.metric("reloader_reload_executed_total{success=\"true\"}"),
            self.rolls as f64,
            "rollouts in total (barriers included); reloader log: {}",
            reloader.log.display()
        );
        assert_eq!(
            reloader.metric("reloader_reload_executed_total{success=\"false\"}"),
            0.0
        );
        assert_eq!(
            reloader.metric("reloader_reconciles_total{outcome=\"error\"}"),
            0.0,
            "failed reconciles; reloader log: {}",
            reloader.log.display()
        );
    }
}

async fn run(mut table: Table) {
    let steps = std::mem::take(&mut table.steps);
    let mut run = Run::new(table).await;
    run.start().await;
    for step in &steps {
        run.run_step(step).await;
    }
    run.finish().await;
}

// ---------------------------------------------------------------------------------------------
// The inventory: annotations, reference methods, containers, kinds (both strategies)
// ---------------------------------------------------------------------------------------------

fn inventory(prefix: &'static str, strategy: Strategy) -> Table {
    let (cfg, cfg_b, creds, creds_b) = (cm("cfg"), cm("cfg-b"), secret("creds"), secret("creds-b"));
    let (app_config, other_config, app_secret) = (cm("app-config-main"), cm("other-config"), secret("app-secret-main"));
    let (matched, ignored_cm, ignored_secret, side) = (
        cm("matched"),
        cm("ignored-cm"),
        secret("ignored-secret"),
        cm("side-cfg"),
    );
    let both = [cfg.clone(), creds.clone()];
    let mut t = table(prefix, strategy);
    t.sources = vec![
        source(cfg.clone()),
        source(cfg_b.clone()),
        source(creds.clone()),
        source(creds_b.clone()),
        source(app_config.clone()),
        source(other_config.clone()),
        source(app_secret.clone()),
        source(matched.clone()).annotated(json!({defaults::MATCH: "true"})),
        source(ignored_cm.clone()).annotated(json!({defaults::IGNORE: "true"})),
        source(ignored_secret.clone()).annotated(json!({defaults::IGNORE: "true"})),
        source(side.clone()),
    ];
    t.rows = vec![
        // annotations/auto_reload_test.go
        row("auto-cm", auto(), uses([&cfg])).reloads([&cfg]),
        row("auto-secret", auto(), uses([&creds])).reloads([&creds]),
        row("auto-either", auto(), uses(&both)).reloads(&both),
        row("cm-auto", json!({defaults::CONFIGMAP_AUTO: "true"}), uses(&both)).reloads([&cfg]),
        row("secret-auto", json!({defaults::SECRET_AUTO: "true"}), uses(&both)).reloads([&creds]),
        // explicit lists, multiple names, regex (combination_test.go, regex_test.go)
        row("cm-list", json!({defaults::CONFIGMAP_RELOAD: "cfg"}), uses([&cfg])).reloads([&cfg]),
        row(
            "cm-list-multi",
            json!({defaults::CONFIGMAP_RELOAD: "cfg-b, cfg"}),
            uses([&cfg, &cfg_b]),
        )
        .reloads([&cfg, &cfg_b]),
        row("secret-list", json!({defaults::SECRET_RELOAD: "creds"}), uses([&creds])).reloads([&creds]),
        row(
            "secret-list-multi",
            json!({defaults::SECRET_RELOAD: "creds,creds-b"}),
            uses([&creds, &creds_b]),
        )
        .reloads([&creds, &creds_b]),
        row(
            "cm-and-secret-lists",
            json!({defaults::CONFIGMAP_RELOAD: "cfg", defaults::SECRET_RELOAD: "creds"}),
            uses(&both),
        )
        .reloads(&both),
        // An explicit list needs no reference: the stamp goes on containers[0].
        row(
            "list-unreferenced",
            json!({defaults::CONFIGMAP_RELOAD: "cfg-b"}),
            uses([&cfg]),
        )
        .reloads([&cfg_b]),
        row(
            "regex-cm",
            json!({defaults::CONFIGMAP_RELOAD: "app-config-.*"}),
            uses([&app_config, &other_config]),
        )
        .reloads([&app_config]),
        row(
            "regex-secret",
            json!({defaults::SECRET_RELOAD: "app-secret-.*"}),
            uses([&app_secret]),
        )
        .reloads([&app_secret]),
        // auto + explicit list; auto + exclude (combination_test.go, exclude_test.go)
        row(
            "auto-and-cm-list",
            json!({defaults::AUTO: "true", defaults::CONFIGMAP_RELOAD: "cfg-b"}),
            uses([&cfg]),
        )
        .reloads([&cfg, &cfg_b]),
        row(
            "auto-and-secret-list",
            json!({defaults::AUTO: "true", defaults::SECRET_RELOAD: "creds-b"}),
            uses([&cfg]),
        )
        .reloads([&cfg, &creds_b]),
        row(
            "auto-exclude-cm",
            json!({defaults::AUTO: "true", fixed::CONFIGMAPS_EXCLUDE: "cfg"}),
            uses([&cfg, &cfg_b]),
        )
        .reloads([&cfg_b]),
        row(
            "auto-exclude-secret",
            json!({defaults::AUTO: "true", fixed::SECRETS_EXCLUDE: "creds"}),
            uses([&creds, &creds_b]),
        )
        .reloads([&creds_b]),
        // search_match_test.go: two workloads share `matched`, only the searching one reloads.
        row("search-match", json!({defaults::SEARCH: "true"}), uses([&matched])).reloads([&matched]),
        row("search-no-match", json!({defaults::SEARCH: "true"}), uses([&cfg])),
        row("match-no-search", none(), uses([&matched])),
        // resource_ignore_test.go
        row("ignored-cm", auto(), uses([&ignored_cm])),
        row("ignored-secret", auto(), uses([&ignored_secret])),
        // no annotation; auto "false" (and the kept quirk: it does not block an explicit list)
        row("unannotated", none(), uses(&both)),
        row("auto-false", json!({defaults::AUTO: "false"}), uses(&both)),
        row(
            "auto-false-cm-list",
            json!({defaults::AUTO: "false", defaults::CONFIGMAP_RELOAD: "cfg"}),
            uses(&both),
        )
        .reloads([&cfg]),
        // pod-template annotations (core/workloads_test.go)
        row("tpl-cm-list", none(), uses(&both))
            .template(json!({defaults::CONFIGMAP_RELOAD: "cfg"}))
            .reloads([&cfg]),
        // Stakater's "pod-template CM annotation does not react to a Secret change": the
        // workload uses only the Secret; the listed ConfigMap still rolls it (no reference needed).
        row("tpl-cm-list-uses-secret", none(), uses([&creds]))
            .template(json!({defaults::CONFIGMAP_RELOAD: "cfg"}))
            .reloads([&cfg]),
        row("tpl-secret-list", none(), uses([&creds]))
            .template(json!({defaults::SECRET_RELOAD: "creds"}))
            .reloads([&creds]),
        row("tpl-auto", none(), uses([&cfg])).template(auto()).reloads([&cfg]),
        row("meta-and-tpl", json!({defaults::CONFIGMAP_RELOAD: "cfg"}), uses([&cfg]))
            .template(json!({defaults::CONFIGMAP_RELOAD: "cfg"}))
            .reloads([&cfg]),
        // The fallback is per source kind: metadata decides ConfigMaps, the template Secrets.
        row(
            "meta-cm-tpl-secret",
            json!({defaults::CONFIGMAP_RELOAD: "cfg"}),
            uses(&both),
        )
        .template(json!({defaults::SECRET_RELOAD: "creds"}))
        .reloads(&both),
        // ... and all-or-nothing: a ConfigMap key on the metadata masks the template's auto.
        row(
            "meta-masks-tpl",
            json!({defaults::CONFIGMAP_AUTO: "false"}),
            uses(&both),
        )
        .template(auto())
        .reloads([&creds]),
        // reference methods (core/reference_methods_test.go)
        row("value-from-cm", auto(), value_from(&cfg)).reloads([&cfg]),
        row("value-from-secret", auto(), value_from(&creds)).reloads([&creds]),
        row("projected-cm", auto(), mounted(projected([&cfg]))).reloads([&cfg]),
        row("projected-secret", auto(), mounted(projected([&creds]))).reloads([&creds]),
        row("projected-mixed", auto(), mounted(projected(&both))).reloads(&both),
        row("volume-cm", auto(), mounted(volume_of(&cfg))).reloads([&cfg]),
        row("volume-secret", auto(), mounted(volume_of(&creds))).reloads([&creds]),
        row("init-env-cm", auto(), init_env_from(&cfg)).reloads([&cfg]),
        row("init-env-secret", auto(), init_env_from(&creds)).reloads([&creds]),
        row("init-volume-cm", auto(), init_mounted(&cfg)).reloads([&cfg]),
        row("init-volume-secret", auto(), init_mounted(&creds)).reloads([&creds]),
        // multiple containers (advanced/multi_container_test.go)
        row(
            "two-containers-one-cm",
            auto(),
            json!({"containers": [
                container("app", json!({"envFrom": env_from([&cfg])})),
                container("sidecar", json!({"envFrom": env_from([&cfg])})),
            ]}),
        )
        .reloads([&cfg]),
        row(
            "sidecar-own-cm",
            auto(),
            json!({"containers": [
                container("app", json!({"envFrom": env_from([&cfg])})),
                container("sidecar", json!({"envFrom": env_from([&side])})),
            ]}),
        )
        .reloads_at(cfg.clone(), 0)
        .reloads_at(side.clone(), 1),
        row(
            "sidecar-mount",
            auto(),
            json!({
                "containers": [container("app", json!({})), container("sidecar", mount())],
                "volumes": [volume_of(&cfg_b)]
            }),
        )
        .reloads_at(cfg_b.clone(), 1),
        // other kinds
        row("daemonset-auto", auto(), uses(&both))
            .kind(Kind::DaemonSet)
            .reloads(&both),
        row("statefulset-auto", auto(), uses(&both))
            .kind(Kind::StatefulSet)
            .reloads(&both),
        row("daemonset-unannotated", none(), uses(&both)).kind(Kind::DaemonSet),
        row("statefulset-unannotated", none(), uses(&both)).kind(Kind::StatefulSet),
    ];
    // No row reloads on two sources changed in the same step, so each rolls at most once a step.
    t.steps = vec![
        step("cfg changes", vec![Change::data(cfg.clone())]),
        step("creds changes", vec![Change::data(creds.clone())]),
        // `other-config` alone: `regex-cm` uses it but its pattern does not match it.
        step(
            "cfg-b, creds-b and other-config change",
            vec![
                Change::data(cfg_b.clone()),
                Change::data(creds_b.clone()),
                Change::data(other_config),
            ],
        ),
        step(
            "pattern, match, ignored and sidecar sources change",
            vec![
                Change::data(app_config),
                Change::data(app_secret),
                Change::data(matched),
                Change::data(ignored_cm),
                Change::data(ignored_secret),
                Change::data(side),
            ],
        ),
        step("cfg changes again", vec![Change::data(cfg.clone())]),
        step(
            "only labels change",
            vec![Change::labels(cfg), Change::labels(creds), Change::labels(cfg_b)],
        ),
    ];
    t
}

#[tokio::test]
async fn inventory_with_the_default_annotations_strategy() {
    run(inventory("sc-annotations", Strategy::Annotations)).await;
}

#[tokio::test]
async fn inventory_with_the_env_vars_strategy() {
    run(inventory("sc-env-vars", Strategy::EnvVars)).await;
}

// ---------------------------------------------------------------------------------------------
// Flags (flags/*): each table starts the reloader with the flag under test
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn auto_reload_all_reloads_unannotated_workloads_and_respects_opt_outs() {
    let (cfg, creds) = (cm("cfg"), secret("creds"));
    let both = [cfg.clone(), creds.clone()];
    let mut t = table("sc-auto-all", Strategy::Annotations);
    t.args = vec!["--auto-reload-all"];
    t.sources = vec![source(cfg.clone()), source(creds.clone())];
    t.rows = vec![
        row("unannotated", none(), uses(&both)).reloads(&both),
        row("auto-false", json!({defaults::AUTO: "false"}), uses(&both)),
        // Kept quirk: a typed auto for one kind does not opt out of the other.
        row("cm-auto-only", json!({defaults::CONFIGMAP_AUTO: "true"}), uses(&both)).reloads(&both),
        row("cm-auto-false", json!({defaults::CONFIGMAP_AUTO: "false"}), uses(&both)).reloads([&creds]),
        // Auto-style triggers still need a reference.
        row("secret-only", none(), uses([&creds])).reloads([&creds]),
    ];
    t.steps = vec![
        step("cfg changes", vec![Change::data(cfg)]),
        step("creds changes", vec![Change::data(creds)]),
    ];
    run(t).await;
}

fn ignore_table(prefix: &'static str, flag: &'static str, watched: SourceKind) -> Table {
    let (cfg, creds) = (cm("cfg"), secret("creds"));
    let both = [cfg.clone(), creds.clone()];
    let kept = match watched {
        SourceKind::ConfigMap => cfg.clone(),
        _ => creds.clone(),
    };
    let ignored = match watched {
        SourceKind::ConfigMap => creds.clone(),
        _ => cfg.clone(),
    };
    let mut t = table(prefix, Strategy::Annotations);
    t.args = vec![flag];
    t.watched = vec![watched];
    t.sources = vec![source(cfg.clone()), source(creds.clone())];
    t.rows = vec![
        row("uses-both", auto(), uses(&both)).reloads([&kept]),
        row("uses-kept", auto(), uses([&kept])).reloads([&kept]),
        row("uses-ignored", auto(), uses([&ignored])),
        row(
            "lists-ignored",
            json!({defaults::CONFIGMAP_RELOAD: "cfg", defaults::SECRET_RELOAD: "creds"}),
            uses([&ignored]),
        )
        .reloads([&kept]),
    ];
    // The ignored kind first: nothing may roll, and the reloader must not even see the event.
    t.steps = vec![
        step("the ignored kind changes", vec![Change::data(ignored)]),
        step("the watched kind changes", vec![Change::data(kept)]),
    ];
    t
}

#[tokio::test]
async fn resources_to_ignore_secrets() {
    run(ignore_table(
        "sc-ignore-secrets",
        "--resources-to-ignore=secrets",
        SourceKind::ConfigMap,
    ))
    .await;
}

#[tokio::test]
async fn resources_to_ignore_configmaps() {
    run(ignore_table(
        "sc-ignore-cms",
        "--resources-to-ignore=configMaps",
        SourceKind::Secret,
    ))
    .await;
}

#[tokio::test]
async fn resource_label_selector_reloads_only_on_labelled_sources() {
    let (labelled, unlabelled) = (cm("labelled"), cm("unlabelled"));
    let (labelled_secret, unlabelled_secret) = (secret("labelled-secret"), secret("unlabelled-secret"));
    let selected = json!({"reload": "true"});
    let mut t = table("sc-label-selector", Strategy::Annotations);
    t.args = vec!["--resource-label-selector=reload=true"];
    t.sources = vec![
        source(labelled.clone()).labelled(selected.clone()),
        source(unlabelled.clone()),
        source(labelled_secret.clone()).labelled(selected),
        source(unlabelled_secret.clone()),
    ];
    t.rows = vec![
        row("uses-labelled", auto(), uses([&labelled])).reloads([&labelled]),
        row("uses-unlabelled", auto(), uses([&unlabelled])),
        row("uses-labelled-secret", auto(), uses([&labelled_secret])).reloads([&labelled_secret]),
        row("uses-unlabelled-secret", auto(), uses([&unlabelled_secret])),
    ];
    t.steps = vec![step(
        "all four sources change",
        vec![
            Change::data(labelled),
            Change::data(unlabelled),
            Change::data(labelled_secret),
            Change::data(unlabelled_secret),
        ],
    )];
    run(t).await;
}

/// Rows using sources that are created or deleted during the table.
fn lifecycle_table(prefix: &'static str, args: Vec<&'static str>, on_create: bool, on_delete: bool) -> Table {
    let (later, later_secret, later_listed, late_pattern) = (
        cm("later"),
        secret("later-secret"),
        cm("later-listed"),
        cm("late-pattern"),
    );
    let (doomed, doomed_secret) = (cm("doomed"), secret("doomed-secret"));
    let optional = |s: &SourceRef| {
        let r = match s.kind {
            SourceKind::ConfigMap => json!({"configMapRef": {"name": s.name, "optional": true}}),
            _ => json!({"secretRef": {"name": s.name, "optional": true}}),
        };
        json!({"containers": [container("app", json!({"envFrom": [r]}))]})
    };
    let mut t = table(prefix, Strategy::Annotations);
    t.args = args;
    t.sources = vec![
        source(later.clone()).missing(),
        source(later_secret.clone()).missing(),
        source(later_listed.clone()).missing(),
        source(late_pattern.clone()).missing(),
        source(doomed.clone()),
        source(doomed_secret.clone()),
    ];
    t.rows = vec![
        row("wants-later", auto(), optional(&later)).reloads([&later]),
        row("wants-later-secret", auto(), optional(&later_secret)).reloads([&later_secret]),
        // A plain name in a list is a definite dependency even when missing (compatibility #10).
        row(
            "lists-later",
            json!({defaults::CONFIGMAP_RELOAD: "later-listed"}),
            json!({"containers": [container("app", json!({}))]}),
        )
        .reloads([&later_listed]),
        // A pattern only matches existing sources: its creation is acknowledged, not rolled
        // (compatibility #10); the next change rolls.
        row(
            "lists-late-pattern",
            json!({defaults::CONFIGMAP_RELOAD: "late-p.*"}),
            json!({"containers": [container("app", json!({}))]}),
        )
        .reloads([&late_pattern]),
        row("uses-doomed", auto(), uses([&doomed])).reloads([&doomed]),
        row("uses-doomed-secret", auto(), uses([&doomed_secret])).reloads([&doomed_secret]),
    ];
    t.steps = vec![
        step(
            "missing sources are created, used ones deleted",
            vec![
                Change::create(later.clone(), on_create),
                Change::create(later_secret.clone(), on_create),
                Change::create(later_listed.clone(), on_create),
                Change::create(late_pattern.clone(), false),
                Change::delete(doomed, on_delete),
                Change::delete(doomed_secret, on_delete),
            ],
        ),
        // Whether or not the creation rolled, the created sources are now recorded: their
        // first data change rolls.
        step(
            "the created sources change",
            vec![
                Change::data(later),
                Change::data(later_secret),
                Change::data(later_listed),
                Change::data(late_pattern),
            ],
        ),
    ];
    t
}

#[tokio::test]
async fn create_and_delete_roll_nothing_by_default() {
    run(lifecycle_table("sc-lifecycle", vec![], false, false)).await;
}

#[tokio::test]
async fn reload_on_create_rolls_when_a_used_source_appears() {
    run(lifecycle_table(
        "sc-on-create",
        vec!["--reload-on-create=true"],
        true,
        false,
    ))
    .await;
}

#[tokio::test]
async fn reload_on_delete_rolls_when_a_used_source_goes() {
    run(lifecycle_table(
        "sc-on-delete",
        vec!["--reload-on-delete=true"],
        false,
        true,
    ))
    .await;
}
