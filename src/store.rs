//! The in-memory view of the cluster that the engine and the admission webhook share: source
//! hashes (never source data), workload objects, and a reverse index from each source to the
//! workloads that depend on it, so a source change is answered from memory.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use serde_json::Value;

use crate::core::rollout_status::{RolloutFacts, RolloutStatus};
use crate::core::source::{LastChange, SourceRef, SourceState};
use crate::core::workload::WorkloadKind;

/// Identifies one workload.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkloadKey {
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for WorkloadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

/// What the index knows about one workload's dependencies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexEntry {
    /// Every source a change of which must re-evaluate the workload: its dependencies and the
    /// sources it names without depending on them.
    pub sources: BTreeSet<SourceRef>,
    /// The sources it depends on (rolls for); counted among `sources` too. Kept as a mark on
    /// each edge of the reverse index, so it costs no set per workload.
    pub dependencies: BTreeSet<SourceRef>,
    /// The workload must be re-evaluated on any source change in its namespace (reload-list
    /// patterns or search/match can pick up sources it does not depend on yet).
    pub scans: bool,
}

#[derive(Default)]
struct Inner {
    sources: HashMap<String, BTreeMap<SourceRef, SourceState>>,
    /// Each workload as compact JSON text, parsed when read: a `Value` tree costs about ten
    /// times its text (a B-tree node per JSON object), and a workload is read only when it is
    /// reconciled. See `docs/engine.md`. Grouped by namespace, so what one namespace's
    /// question costs does not grow with the rest of the cluster.
    workloads: HashMap<String, HashMap<WorkloadKey, StoredWorkload>>,
    /// Each indexed workload's entry (its dependencies are the edges' marks in `dependents`).
    entries: HashMap<WorkloadKey, Indexed>,
    /// Sorted, without duplicates; each dependent marked whether it depends on the source (or
    /// only names it). A `Vec` rather than a `BTreeSet`: most sources have one or a few
    /// dependents, and a B-tree's first node is sized for eleven.
    dependents: HashMap<(String, SourceRef), Vec<Edge>>,
    scanners: HashMap<String, BTreeSet<WorkloadKey>>,
    /// Bumped on every source change in a namespace, so a reconcile can tell whether the
    /// sources it read are still current when it records its index entry.
    generations: HashMap<String, u64>,
    /// The sequence that orders what the watchers deliver: source changes
    /// ([`SourceState::changed`]) against the first sight of each workload (`first_seen`).
    seq: u64,
    first_seen: HashMap<WorkloadKey, u64>,
    /// The workload lists the watchers will make (kind, scope), and those made: until every
    /// one is, some workload may not be known yet.
    workload_lists: BTreeMap<(WorkloadKind, Option<String>), bool>,
}

/// What the store keeps of an [`IndexEntry`]: which of its sources are dependencies is marked
/// on the edges instead, so no second set is kept per workload.
#[derive(Clone, Debug, Default)]
struct Indexed {
    sources: BTreeSet<SourceRef>,
    scans: bool,
}

/// One dependent in the reverse index.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Edge {
    key: WorkloadKey,
    /// It depends on the source (rather than only naming it).
    depends: bool,
}

/// Shared, synchronous store. Every operation holds the lock briefly and never across an await.
#[derive(Clone, Default)]
pub struct Store {
    inner: Arc<RwLock<Inner>>,
    /// How many stored workloads reads have looked at ([`Store::visited`]).
    visited: Arc<AtomicU64>,
}

/// Read access to the sources of one namespace, held under the store's read lock.
pub struct NamespaceSources<'a> {
    guard: RwLockReadGuard<'a, Inner>,
    namespace: String,
}

static EMPTY: BTreeMap<SourceRef, SourceState> = BTreeMap::new();

impl NamespaceSources<'_> {
    pub fn map(&self) -> &BTreeMap<SourceRef, SourceState> {
        self.guard.sources.get(&self.namespace).unwrap_or(&EMPTY)
    }
}

impl Store {
    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that matters
        // more than stopping would; keep serving.
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a source as a watcher delivers it, noting a content change (or its creation)
    /// in [`SourceState::changed`]; returns the workloads to re-evaluate when anything the
    /// decision reads (hash or annotations) changed.
    pub fn upsert_source(&self, namespace: &str, mut state: SourceState) -> BTreeSet<WorkloadKey> {
        let mut inner = self.write();
        let seq = inner.next_seq();
        let map = inner.sources.entry(namespace.to_string()).or_default();
        let old = map.get(&state.source);
        state.changed = match old {
            Some(old) if old.hash == state.hash => old.changed.clone(),
            Some(old) => Some(LastChange {
                previous: Some(old.hash.clone()),
                seq,
            }),
            None => Some(LastChange { previous: None, seq }),
        };
        if old == Some(&state) {
            return BTreeSet::new();
        }
        let source = state.source.clone();
        map.insert(source.clone(), state);
        inner.bump(namespace);
        inner.affected(namespace, &source)
    }

    /// Forgets a source; returns the workloads to re-evaluate.
    pub fn remove_source(&self, namespace: &str, source: &SourceRef) -> BTreeSet<WorkloadKey> {
        let mut inner = self.write();
        let removed = inner
            .sources
            .get_mut(namespace)
            .and_then(|m| m.remove(source))
            .is_some();
        if removed {
            inner.affected(namespace, source)
        } else {
            BTreeSet::new()
        }
    }

    /// Replaces every source of one kind within `scope` (one namespace, or `None` for all)
    /// after a relist, returning the workloads affected by any difference. A changed hash is
    /// noted as a change; a source not known before is not (at start-up, everything is new).
    pub fn replace_sources(
        &self,
        kind: crate::core::source::SourceKind,
        scope: Option<&str>,
        fresh: Vec<(String, SourceState)>,
    ) -> BTreeSet<WorkloadKey> {
        let mut inner = self.write();
        let mut changed: Vec<(String, SourceRef)> = Vec::new();
        let mut seen: BTreeSet<(String, SourceRef)> = BTreeSet::new();
        for (namespace, mut state) in fresh {
            seen.insert((namespace.clone(), state.source.clone()));
            let seq = inner.next_seq();
            let map = inner.sources.entry(namespace.clone()).or_default();
            state.changed = match map.get(&state.source) {
                Some(old) if old.hash == state.hash => old.changed.clone(),
                Some(old) => Some(LastChange {
                    previous: Some(old.hash.clone()),
                    seq,
                }),
                None => None,
            };
            if map.get(&state.source) != Some(&state) {
                changed.push((namespace, state.source.clone()));
                map.insert(state.source.clone(), state);
            }
        }
        for (namespace, map) in inner.sources.iter_mut() {
            if scope.is_some_and(|s| s != namespace) {
                continue;
            }
            map.retain(|source, _| {
                let keep = source.kind != kind || seen.contains(&(namespace.clone(), source.clone()));
                if !keep {
                    changed.push((namespace.clone(), source.clone()));
                }
                keep
            });
        }
        let mut affected = BTreeSet::new();
        for (namespace, source) in changed {
            inner.bump(&namespace);
            affected.extend(inner.affected(&namespace, &source));
        }
        affected
    }

    /// The sources of one namespace, for the decision and the plan.
    pub fn sources(&self, namespace: &str) -> NamespaceSources<'_> {
        NamespaceSources {
            guard: self.read(),
            namespace: namespace.to_string(),
        }
    }

    /// The namespace's source generation (see [`Store::index`]'s callers).
    pub fn generation(&self, namespace: &str) -> u64 {
        self.read().generations.get(namespace).copied().unwrap_or(0)
    }

    /// Records a workload as a watcher or a write delivers it; true when its rollout health
    /// changed class (healthy, progressing, failed), which may open or halt a wave.
    pub fn upsert_workload(&self, key: WorkloadKey, object: impl Into<StoredWorkload>) -> bool {
        let object = object.into();
        let class = object.rollout().class();
        let mut inner = self.write();
        inner.saw(&key);
        let before = inner.get_workload(&key).map(|w| w.rollout().class());
        inner.put_workload(key, object);
        before.is_some_and(|before| before != class)
    }

    /// [`Store::upsert_workload`] with what a write answered, kept only while the store still
    /// holds the version the write was made over (`made_over`, its resourceVersion): an answer
    /// never replaces a newer object a watcher delivered meanwhile (whose status would go back
    /// in time, and with it the rollout health the waves read), nor brings back one deleted.
    pub fn upsert_written(&self, key: WorkloadKey, object: impl Into<StoredWorkload>, made_over: Option<&str>) {
        let object = object.into();
        let mut inner = self.write();
        let current = inner.get_workload(&key).map(StoredWorkload::version);
        if current.is_some_and(|version| version.as_deref() == made_over) {
            inner.put_workload(key, object);
        }
    }

    pub fn remove_workload(&self, key: &WorkloadKey) {
        let mut inner = self.write();
        inner.take_workload(key);
        inner.first_seen.remove(key);
        inner.set_entry(key, IndexEntry::default());
        inner.entries.remove(key);
    }

    /// Replaces every workload of one kind within `scope` (one namespace, or `None` for all)
    /// after a relist; returns all keys now present there.
    pub fn replace_workloads(
        &self,
        kind: WorkloadKind,
        scope: Option<&str>,
        fresh: Vec<(WorkloadKey, StoredWorkload)>,
    ) -> Vec<WorkloadKey> {
        let mut inner = self.write();
        inner.workload_lists.insert((kind, scope.map(str::to_string)), true);
        let keep: BTreeSet<WorkloadKey> = fresh.iter().map(|(k, _)| k.clone()).collect();
        let gone: Vec<WorkloadKey> = inner
            .workloads
            .iter()
            .filter(|(namespace, _)| scope.is_none_or(|s| s == namespace.as_str()))
            .flat_map(|(_, workloads)| workloads.keys())
            .filter(|k| k.kind == kind && !keep.contains(*k))
            .cloned()
            .collect();
        for key in &gone {
            inner.take_workload(key);
            inner.first_seen.remove(key);
            inner.set_entry(key, IndexEntry::default());
            inner.entries.remove(key);
        }
        for (key, object) in fresh {
            inner.saw(&key);
            inner.put_workload(key, object);
        }
        keep.into_iter().collect()
    }

    /// The workload as last seen, parsed anew (outside the lock) for each call.
    pub fn workload(&self, key: &WorkloadKey) -> Option<Arc<Value>> {
        let stored = self.read().get_workload(key).cloned()?;
        self.visit(1);
        stored.parse().map(Arc::new)
    }

    /// Whether the workload is known, without parsing it.
    pub fn has_workload(&self, key: &WorkloadKey) -> bool {
        self.read().get_workload(key).is_some()
    }

    /// When the workload was first seen, in the sequence of [`SourceState::changed`].
    pub fn first_seen(&self, key: &WorkloadKey) -> Option<u64> {
        self.read().first_seen.get(key).copied()
    }

    /// Every workload's key, in every namespace.
    pub fn workload_keys(&self) -> Vec<WorkloadKey> {
        let keys: Vec<WorkloadKey> = self.read().workloads.values().flat_map(|w| w.keys()).cloned().collect();
        self.visit(keys.len());
        keys
    }

    /// The keys of one namespace's workloads; costs that namespace only.
    pub fn workload_keys_in(&self, namespace: &str) -> Vec<WorkloadKey> {
        let keys: Vec<WorkloadKey> = self
            .read()
            .workloads
            .get(namespace)
            .map(|w| w.keys().cloned().collect())
            .unwrap_or_default();
        self.visit(keys.len());
        keys
    }

    /// Whether any workload of `namespace` satisfies `predicate`, stopping at the first that
    /// does. Visits that namespace's workloads only; the lock is held just long enough to take
    /// their (shared) texts, which are parsed and tested after it is released.
    pub fn any_workload_in(&self, namespace: &str, mut predicate: impl FnMut(&WorkloadKey, &Value) -> bool) -> bool {
        let workloads: Vec<(WorkloadKey, StoredWorkload)> = match self.read().workloads.get(namespace) {
            Some(w) => w.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            None => return false,
        };
        for (key, stored) in workloads {
            self.visit(1);
            if stored.parse().is_some_and(|object| predicate(&key, &object)) {
                return true;
            }
        }
        false
    }

    /// How many stored workloads the reads so far have looked at (a key copied, an object
    /// parsed): what a question about one namespace costs, for tests that it does not grow
    /// with the other namespaces.
    pub fn visited(&self) -> u64 {
        self.visited.load(Ordering::Relaxed)
    }

    fn visit(&self, n: usize) {
        self.visited.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Records what a workload depends on, after a reconcile computed it.
    pub fn index(&self, key: &WorkloadKey, entry: IndexEntry) {
        self.write().set_entry(key, entry);
    }

    pub fn dependents(&self, namespace: &str, source: &SourceRef) -> BTreeSet<WorkloadKey> {
        self.read().affected(namespace, source)
    }

    /// Notes that a watcher will list the workloads of `kind` in `scope` (one namespace, or
    /// `None` for all); [`Store::replace_workloads`] notes the list made.
    pub fn expect_workload_list(&self, kind: WorkloadKind, scope: Option<&str>) {
        self.write()
            .workload_lists
            .entry((kind, scope.map(str::to_string)))
            .or_insert(false);
    }

    /// The workloads of `namespace` that depend on `source` (not those that only name it),
    /// with what the store holds of each; `None` while they may not all be known: a workload
    /// list not made yet, or a workload of the namespace not indexed yet (read but not yet
    /// reconciled).
    pub fn depending_on(&self, namespace: &str, source: &SourceRef) -> Option<Vec<(WorkloadKey, StoredWorkload)>> {
        let inner = self.read();
        if inner.workload_lists.values().any(|listed| !listed) {
            return None;
        }
        let workloads = inner.workloads.get(namespace);
        if workloads.is_some_and(|w| w.keys().any(|k| !inner.entries.contains_key(k))) {
            return None;
        }
        let edges = inner.dependents.get(&(namespace.to_string(), source.clone()));
        let members: Vec<(WorkloadKey, StoredWorkload)> = edges
            .into_iter()
            .flatten()
            .filter(|edge| edge.depends)
            .filter_map(|edge| Some((edge.key.clone(), inner.get_workload(&edge.key)?.clone())))
            .collect();
        self.visit(members.len());
        Some(members)
    }

    /// The sources `key` depends on, as last indexed.
    pub fn dependencies_of(&self, key: &WorkloadKey) -> Vec<SourceRef> {
        let inner = self.read();
        let Some(entry) = inner.entries.get(key) else {
            return Vec::new();
        };
        entry
            .sources
            .iter()
            .filter(|source| {
                inner
                    .dependents
                    .get(&(key.namespace.clone(), (*source).clone()))
                    .and_then(|edges| edges.iter().find(|e| &e.key == key))
                    .is_some_and(|e| e.depends)
            })
            .cloned()
            .collect()
    }

    /// Counts for metrics and tests: (sources, workloads, index edges).
    pub fn sizes(&self) -> (usize, usize, usize) {
        let inner = self.read();
        let sources = inner.sources.values().map(BTreeMap::len).sum();
        let edges = inner.dependents.values().map(Vec::len).sum();
        let workloads = inner.workloads.values().map(HashMap::len).sum();
        (sources, workloads, edges)
    }
}

/// A workload as the store keeps it: compact JSON text (see [`Inner::workloads`]), and how its
/// rollout is doing, read from its status before the status was dropped (for rollout waves;
/// nothing kept when healthy). The watchers make it as each object is parsed, so an initial
/// list never holds trees either.
#[derive(Clone, Debug)]
pub struct StoredWorkload {
    text: Arc<str>,
    rollout: Option<Arc<RolloutStatus>>,
}

static HEALTHY: RolloutStatus = RolloutStatus::Healthy;

impl StoredWorkload {
    /// A workload of `kind` as the API server sent it: its rollout status read, then slimmed
    /// ([`crate::kube_api::slim`]).
    pub fn of(kind: WorkloadKind, object: Value) -> Self {
        let rollout = RolloutStatus::of(kind, &RolloutFacts::read(&object));
        Self::from(&crate::kube_api::slim(object)).with_rollout(rollout)
    }

    /// A workload of `kind` as the API server answered a write with it.
    pub fn of_dynamic(kind: WorkloadKind, object: &kube::api::DynamicObject) -> Self {
        Self::of(kind, serde_json::to_value(object).unwrap_or(Value::Null))
    }

    /// The same object with this rollout status.
    pub fn with_rollout(mut self, rollout: RolloutStatus) -> Self {
        self.rollout = (rollout != RolloutStatus::Healthy).then(|| Arc::new(rollout));
        self
    }

    /// The object; `None` only if the text were not our own serialization of a `Value`.
    pub fn parse(&self) -> Option<Value> {
        serde_json::from_str(&self.text).ok()
    }

    /// Its `metadata.resourceVersion`, read from the text without building the object.
    fn version(&self) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Object {
            metadata: Option<Meta>,
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Meta {
            resource_version: Option<String>,
        }
        serde_json::from_str::<Object>(&self.text)
            .ok()?
            .metadata?
            .resource_version
    }

    /// How its rollout was doing when it was read.
    pub fn rollout(&self) -> &RolloutStatus {
        self.rollout.as_deref().unwrap_or(&HEALTHY)
    }
}

impl From<&Value> for StoredWorkload {
    /// The object as it is, its rollout taken as healthy (it has no status to read).
    fn from(object: &Value) -> Self {
        // Serializing a `Value` cannot fail (its map keys are strings).
        Self {
            text: serde_json::to_string(object).unwrap_or_default().into(),
            rollout: None,
        }
    }
}

impl From<Value> for StoredWorkload {
    fn from(object: Value) -> Self {
        Self::from(&object)
    }
}

impl Inner {
    fn get_workload(&self, key: &WorkloadKey) -> Option<&StoredWorkload> {
        self.workloads.get(&key.namespace)?.get(key)
    }

    fn put_workload(&mut self, key: WorkloadKey, object: StoredWorkload) {
        match self.workloads.get_mut(&key.namespace) {
            Some(workloads) => {
                workloads.insert(key, object);
            }
            None => {
                self.workloads
                    .insert(key.namespace.clone(), HashMap::from([(key, object)]));
            }
        }
    }

    fn take_workload(&mut self, key: &WorkloadKey) {
        if let Some(workloads) = self.workloads.get_mut(&key.namespace) {
            workloads.remove(key);
            if workloads.is_empty() {
                self.workloads.remove(&key.namespace);
            }
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn saw(&mut self, key: &WorkloadKey) {
        if !self.first_seen.contains_key(key) {
            let seq = self.next_seq();
            self.first_seen.insert(key.clone(), seq);
        }
    }

    fn bump(&mut self, namespace: &str) {
        *self.generations.entry(namespace.to_string()).or_default() += 1;
    }

    fn affected(&self, namespace: &str, source: &SourceRef) -> BTreeSet<WorkloadKey> {
        let mut out: BTreeSet<WorkloadKey> = self
            .dependents
            .get(&(namespace.to_string(), source.clone()))
            .into_iter()
            .flatten()
            .map(|edge| edge.key.clone())
            .collect();
        if let Some(scanners) = self.scanners.get(namespace) {
            out.extend(scanners.iter().cloned());
        }
        out
    }

    fn set_entry(&mut self, key: &WorkloadKey, entry: IndexEntry) {
        let IndexEntry {
            mut sources,
            dependencies,
            scans,
        } = entry;
        sources.extend(dependencies.iter().cloned());
        let entry = Indexed { sources, scans };
        let old = self.entries.insert(key.clone(), entry.clone()).unwrap_or_default();
        for source in old.sources.difference(&entry.sources) {
            let slot = (key.namespace.clone(), source.clone());
            if let Some(list) = self.dependents.get_mut(&slot) {
                if let Ok(at) = list.binary_search_by(|e| e.key.cmp(key)) {
                    list.remove(at);
                }
                if list.is_empty() {
                    self.dependents.remove(&slot);
                }
            }
        }
        for source in &entry.sources {
            let depends = dependencies.contains(source);
            let list = self
                .dependents
                .entry((key.namespace.clone(), source.clone()))
                .or_default();
            match list.binary_search_by(|e| e.key.cmp(key)) {
                Ok(at) => list[at].depends = depends,
                Err(at) => list.insert(
                    at,
                    Edge {
                        key: key.clone(),
                        depends,
                    },
                ),
            }
        }
        if entry.scans {
            self.scanners
                .entry(key.namespace.clone())
                .or_default()
                .insert(key.clone());
        } else if let Some(set) = self.scanners.get_mut(&key.namespace) {
            set.remove(key);
            if set.is_empty() {
                self.scanners.remove(&key.namespace);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::hash::sha1_hex;
    use crate::core::rollout_status::HealthClass;
    use crate::core::source::SourceKind;

    fn key(name: &str) -> WorkloadKey {
        WorkloadKey {
            kind: WorkloadKind::Deployment,
            namespace: "ns".into(),
            name: name.into(),
        }
    }

    fn cm(name: &str, content: &str) -> SourceState {
        SourceState {
            source: SourceRef::new(SourceKind::ConfigMap, name),
            annotations: BTreeMap::new(),
            hash: sha1_hex(content.as_bytes()),
            keys: Default::default(),
            changed: None,
        }
    }

    fn entry(sources: &[&str], scans: bool) -> IndexEntry {
        let sources: BTreeSet<SourceRef> = sources
            .iter()
            .map(|n| SourceRef::new(SourceKind::ConfigMap, *n))
            .collect();
        IndexEntry {
            dependencies: sources.clone(),
            sources,
            scans,
        }
    }

    fn config_map(name: &str) -> SourceRef {
        SourceRef::new(SourceKind::ConfigMap, name)
    }

    #[test]
    fn wave_members_are_the_indexed_workloads_that_depend() {
        let store = Store::default();
        let depending = |store: &Store| {
            store
                .depending_on("ns", &config_map("cfg"))
                .map(|m| m.into_iter().map(|(k, _)| k.name).collect::<Vec<_>>())
        };
        assert_eq!(depending(&store), Some(vec![]), "nothing known, nothing expected");
        store.expect_workload_list(WorkloadKind::Deployment, None);
        assert_eq!(depending(&store), None, "a list not made yet");
        store.replace_workloads(
            WorkloadKind::Deployment,
            None,
            vec![
                (key("a"), serde_json::json!({"a": 1}).into()),
                (key("b"), serde_json::json!({}).into()),
                (key("named"), serde_json::json!({}).into()),
            ],
        );
        assert_eq!(depending(&store), None, "listed, not indexed yet");
        store.index(&key("a"), entry(&["cfg", "other"], false));
        store.index(&key("b"), entry(&["other"], false));
        // Names cfg (say, an ignored source) without depending on it.
        store.index(
            &key("named"),
            IndexEntry {
                sources: BTreeSet::from([config_map("cfg")]),
                ..IndexEntry::default()
            },
        );
        assert_eq!(depending(&store), Some(vec!["a".to_string()]));
        let members = store.depending_on("ns", &config_map("cfg")).unwrap();
        assert_eq!(members[0].1.parse().unwrap(), serde_json::json!({"a": 1}));
        assert_eq!(
            store.dependencies_of(&key("a")),
            vec![config_map("cfg"), config_map("other")]
        );
        assert!(store.dependencies_of(&key("named")).is_empty());
        // Both a dependency and a change of one are noticed by source changes as before.
        assert_eq!(
            store.upsert_source("ns", cm("cfg", "v1")),
            BTreeSet::from([key("a"), key("named")])
        );
        // The mark follows re-indexing.
        store.index(&key("named"), entry(&["cfg"], false));
        assert_eq!(depending(&store), Some(vec!["a".to_string(), "named".to_string()]));
        store.index(&key("a"), entry(&["other"], false));
        assert_eq!(depending(&store), Some(vec!["named".to_string()]));
        // A workload seen but not reconciled yet makes the members unknown again.
        store.upsert_workload(key("new"), serde_json::json!({}));
        assert_eq!(depending(&store), None);
        store.index(&key("new"), IndexEntry::default());
        assert!(depending(&store).is_some());
        // Another namespace's unindexed workload does not matter.
        let elsewhere = WorkloadKey {
            namespace: "elsewhere".into(),
            ..key("x")
        };
        store.upsert_workload(elsewhere, serde_json::json!({}));
        assert!(depending(&store).is_some());
    }

    #[test]
    fn a_write_answer_never_replaces_a_newer_object() {
        let store = Store::default();
        let at = |rv: &str| serde_json::json!({"metadata": {"resourceVersion": rv}, "spec": {"x": rv}});
        let version = |store: &Store| store.workload(&key("a")).unwrap()["metadata"]["resourceVersion"].clone();
        store.upsert_workload(key("a"), at("5"));
        // The answer to a write made over version 5: kept.
        store.upsert_written(key("a"), at("6"), Some("5"));
        assert_eq!(version(&store), "6");
        // The watcher delivered 8 before the answer to a write made over 6 came back.
        store.upsert_workload(key("a"), at("8"));
        store.upsert_written(key("a"), at("7"), Some("6"));
        assert_eq!(version(&store), "8");
        // Deleted meanwhile: not brought back.
        store.remove_workload(&key("a"));
        store.upsert_written(key("a"), at("9"), Some("8"));
        assert!(!store.has_workload(&key("a")));
    }

    #[test]
    fn rollout_health_is_kept_apart_and_its_changes_told() {
        let store = Store::default();
        let rolling = serde_json::json!({"metadata": {"generation": 2}, "spec": {"replicas": 1},
                                        "status": {"observedGeneration": 1}});
        let done = serde_json::json!({"metadata": {"generation": 2}, "spec": {"replicas": 1},
                                     "status": {"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1,
                                                "readyReplicas": 1, "availableReplicas": 1}});
        let stored = StoredWorkload::of(WorkloadKind::Deployment, rolling.clone());
        assert_eq!(stored.rollout().class(), HealthClass::Progressing);
        assert!(
            stored.parse().unwrap().get("status").is_none(),
            "the status is not kept"
        );
        assert!(!store.upsert_workload(key("a"), stored), "first sight");
        assert!(!store.upsert_workload(key("a"), StoredWorkload::of(WorkloadKind::Deployment, rolling)));
        assert!(store.upsert_workload(key("a"), StoredWorkload::of(WorkloadKind::Deployment, done.clone())));
        let members = {
            store.index(&key("a"), entry(&["cfg"], false));
            store.depending_on("ns", &config_map("cfg")).unwrap()
        };
        assert_eq!(members[0].1.rollout(), &RolloutStatus::Healthy);
        assert!(!store.upsert_workload(key("a"), StoredWorkload::of(WorkloadKind::Deployment, done)));
    }

    #[test]
    fn source_changes_find_dependents_from_the_index() {
        let store = Store::default();
        store.index(&key("a"), entry(&["cfg"], false));
        store.index(&key("b"), entry(&["other"], false));
        assert_eq!(store.upsert_source("ns", cm("cfg", "v1")), BTreeSet::from([key("a")]));
        // Same content and annotations: nothing to do.
        assert!(store.upsert_source("ns", cm("cfg", "v1")).is_empty());
        assert_eq!(store.upsert_source("ns", cm("cfg", "v2")), BTreeSet::from([key("a")]));
        // Another namespace's source of the same name is someone else's.
        assert!(store.upsert_source("elsewhere", cm("cfg", "v1")).is_empty());
        assert_eq!(
            store.remove_source("ns", &SourceRef::new(SourceKind::ConfigMap, "cfg")),
            BTreeSet::from([key("a")])
        );
    }

    #[test]
    fn source_changes_are_ordered_against_the_first_sight_of_workloads() {
        let store = Store::default();
        let changed = |name: &str| {
            store.sources("ns").map()[&SourceRef::new(SourceKind::ConfigMap, name)]
                .changed
                .clone()
        };
        // Found at start-up: no change known.
        store.replace_sources(SourceKind::ConfigMap, None, vec![("ns".into(), cm("old", "1"))]);
        assert_eq!(changed("old"), None);
        store.upsert_workload(key("a"), serde_json::json!({}));
        let a = store.first_seen(&key("a")).unwrap();
        // Updates and copies of the workload keep its first sight.
        store.upsert_workload(key("a"), serde_json::json!({"v": 2}));
        assert_eq!(store.first_seen(&key("a")), Some(a));

        store.upsert_source("ns", cm("old", "2"));
        let change = changed("old").unwrap();
        assert_eq!(change.previous, Some(sha1_hex(b"1")));
        assert!(change.seq > a);
        // The same content again (an annotation or label edit) keeps the change.
        let mut annotated = cm("old", "2");
        annotated.annotations.insert("note".into(), "x".into());
        store.upsert_source("ns", annotated);
        assert_eq!(changed("old"), Some(change.clone()));
        // A relist that finds other content notes a change; one that finds the same keeps it.
        store.replace_sources(SourceKind::ConfigMap, None, vec![("ns".into(), cm("old", "2"))]);
        assert_eq!(changed("old"), Some(change.clone()));
        store.replace_sources(SourceKind::ConfigMap, None, vec![("ns".into(), cm("old", "3"))]);
        assert_eq!(changed("old").unwrap().previous, Some(sha1_hex(b"2")));

        // A source created while watching: a change from nothing.
        store.upsert_source("ns", cm("new", "1"));
        let created = changed("new").unwrap();
        assert_eq!(created.previous, None);
        // A workload first seen after it orders after it.
        store.upsert_workload(key("b"), serde_json::json!({}));
        assert!(store.first_seen(&key("b")).unwrap() > created.seq);
        // Deleted and re-created: seen anew.
        store.remove_workload(&key("a"));
        assert_eq!(store.first_seen(&key("a")), None);
        store.replace_workloads(
            WorkloadKind::Deployment,
            None,
            vec![(key("a"), serde_json::json!({}).into())],
        );
        assert!(store.first_seen(&key("a")).unwrap() > created.seq);
    }

    #[test]
    fn scanners_see_every_source_of_their_namespace() {
        let store = Store::default();
        store.index(&key("patterns"), entry(&[], true));
        assert_eq!(
            store.upsert_source("ns", cm("new", "v1")),
            BTreeSet::from([key("patterns")])
        );
        assert!(store.upsert_source("other-ns", cm("new", "v1")).is_empty());
        store.index(&key("patterns"), entry(&[], false));
        assert!(store.upsert_source("ns", cm("new", "v2")).is_empty());
    }

    #[test]
    fn reindexing_moves_edges() {
        let store = Store::default();
        store.index(&key("a"), entry(&["x", "y"], false));
        store.index(&key("a"), entry(&["y", "z"], false));
        let deps = |n: &str| store.dependents("ns", &SourceRef::new(SourceKind::ConfigMap, n));
        assert!(deps("x").is_empty());
        assert_eq!(deps("y"), BTreeSet::from([key("a")]));
        assert_eq!(deps("z"), BTreeSet::from([key("a")]));
        store.upsert_workload(key("a"), serde_json::json!({}));
        store.remove_workload(&key("a"));
        assert!(deps("y").is_empty());
        assert_eq!(store.sizes(), (0, 0, 0));
    }

    #[test]
    fn relists_report_differences_only() {
        let store = Store::default();
        store.index(&key("a"), entry(&["same"], false));
        store.index(&key("b"), entry(&["changed"], false));
        store.index(&key("c"), entry(&["gone"], false));
        store.upsert_source("ns", cm("same", "1"));
        store.upsert_source("ns", cm("changed", "1"));
        store.upsert_source("ns", cm("gone", "1"));
        store.upsert_source("other", cm("kept", "1"));
        let affected = store.replace_sources(
            SourceKind::ConfigMap,
            Some("ns"),
            vec![("ns".into(), cm("same", "1")), ("ns".into(), cm("changed", "2"))],
        );
        assert_eq!(affected, BTreeSet::from([key("b"), key("c")]));
        assert_eq!(store.sources("ns").map().len(), 2);
        assert_eq!(store.sources("other").map().len(), 1, "outside the relist scope");
    }

    #[test]
    fn a_namespace_question_visits_that_namespace_only() {
        let store = Store::default();
        let in_ns = |namespace: &str, name: &str| WorkloadKey {
            kind: WorkloadKind::Deployment,
            namespace: namespace.into(),
            name: name.into(),
        };
        for i in 0..2000 {
            store.upsert_workload(
                in_ns(&format!("other-{}", i % 50), &format!("w{i}")),
                serde_json::json!({"i": i}),
            );
        }
        store.upsert_workload(in_ns("shop", "a"), serde_json::json!({"search": false}));
        store.upsert_workload(in_ns("shop", "b"), serde_json::json!({"search": true}));
        let before = store.visited();
        let mut seen = Vec::new();
        let found = store.any_workload_in("shop", |key, object| {
            seen.push(key.clone());
            object["search"] == true
        });
        assert!(found);
        assert!(seen.iter().all(|k| k.namespace == "shop"), "{seen:?}");
        assert!(store.visited() - before <= 2, "visited {}", store.visited() - before);
        // None satisfies it, or the namespace has no workload: every one of its own is asked.
        seen.clear();
        assert!(!store.any_workload_in("shop", |key, _| {
            seen.push(key.clone());
            false
        }));
        assert_eq!(seen.len(), 2);
        assert!(!store.any_workload_in("empty", |_, _| true));
        let mut keys = store.workload_keys_in("shop");
        keys.sort();
        assert_eq!(keys, vec![in_ns("shop", "a"), in_ns("shop", "b")]);
        // Removing the last workload of a namespace forgets the namespace.
        store.remove_workload(&in_ns("shop", "a"));
        store.remove_workload(&in_ns("shop", "b"));
        assert!(store.workload_keys_in("shop").is_empty());
        assert!(!store.read().workloads.contains_key("shop"));
        assert_eq!(store.sizes().1, 2000);
        assert_eq!(store.workload_keys().len(), 2000);
        // A scoped relist touches its namespace only.
        store.replace_workloads(WorkloadKind::Deployment, Some("other-0"), Vec::new());
        assert_eq!(store.sizes().1, 2000 - 40);
        assert!(store.has_workload(&in_ns("other-1", "w1")));
    }

    #[test]
    fn workload_relist_drops_the_missing() {
        let store = Store::default();
        store.upsert_workload(key("a"), serde_json::json!({"v": 1}));
        store.upsert_workload(key("b"), serde_json::json!({"v": 1}));
        store.index(&key("b"), entry(&["cfg"], false));
        let keys = store.replace_workloads(
            WorkloadKind::Deployment,
            None,
            vec![(key("a"), serde_json::json!({"v": 2}).into())],
        );
        assert_eq!(keys, vec![key("a")]);
        assert!(store.workload(&key("b")).is_none());
        assert_eq!(store.workload(&key("a")).unwrap()["v"], 2);
        assert!(
            store
                .dependents("ns", &SourceRef::new(SourceKind::ConfigMap, "cfg"))
                .is_empty()
        );
    }
}
