//! Secrets Store CSI driver integration: SecretProviderClassPodStatuses (one per pod and class,
//! listing the mounted objects' versions) become one source per SecretProviderClass.
//!
//! During a rotation the pods' statuses change one by one, so the class's content is the
//! version set reported by the most statuses (ties: the greatest hash). While the statuses
//! converge on the new versions this flips exactly once, so a rotation rolls each dependent
//! once — never once per pod, as Stakater's per-event handling risks, and never back.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use futures::StreamExt;
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, ResourceExt};
use serde_json::Value;

use super::Engine;
use crate::core::hash::ContentHash;
use crate::core::source::{SourceKind, SourceRef, SourceState};
use crate::csi::{PodStatus, class_hash, class_resource, pod_status_resource, read_pod_status};
use crate::store::WorkloadKey;

/// What the CSI watchers of one scope know: pod statuses per namespace (by status name) and
/// the annotations of each SecretProviderClass (for `ignore` and `match`).
#[derive(Default)]
pub struct CsiState {
    statuses: HashMap<String, BTreeMap<String, PodStatus>>,
    annotations: HashMap<(String, String), BTreeMap<String, String>>,
    /// The last content of each class, kept while no pod mounts it (a pod restarting must not
    /// look like the class being deleted): only deleting the SecretProviderClass removes it.
    last: HashMap<(String, String), ContentHash>,
    statuses_listed: bool,
    classes_listed: bool,
}

impl CsiState {
    fn state(&mut self, namespace: &str, class: &str) -> Option<SourceState> {
        let key = (namespace.to_string(), class.to_string());
        let voted = self.statuses.get(namespace).and_then(|s| class_hash(s.values(), class));
        if let Some(hash) = &voted {
            self.last.insert(key.clone(), hash.clone());
        }
        let hash = voted.or_else(|| self.last.get(&key).cloned())?;
        Some(SourceState::new(
            SourceRef::new(SourceKind::SecretProviderClass, class),
            self.annotations.get(&key).cloned().unwrap_or_default(),
            hash,
        ))
    }

    /// Every class state: classes some pod mounts, and classes known from before.
    fn states(&mut self) -> Vec<(String, SourceState)> {
        let mut classes: BTreeSet<(String, String)> = self.last.keys().cloned().collect();
        for (ns, statuses) in &self.statuses {
            classes.extend(statuses.values().map(|s| (ns.clone(), s.class.clone())));
        }
        classes
            .into_iter()
            .filter_map(|(ns, class)| self.state(&ns, &class).map(|st| (ns, st)))
            .collect()
    }

    /// Re-publishes one class to the store; returns the workloads to re-evaluate.
    fn publish(&mut self, engine: &Engine, namespace: &str, class: &str) -> BTreeSet<WorkloadKey> {
        match self.state(namespace, class) {
            Some(state) => engine.ctx.store.upsert_source(namespace, state),
            None => engine
                .ctx
                .store
                .remove_source(namespace, &SourceRef::new(SourceKind::SecretProviderClass, class)),
        }
    }

    fn remove_status(&mut self, engine: &Engine, namespace: &str, name: &str) -> BTreeSet<WorkloadKey> {
        match self.statuses.get_mut(namespace).and_then(|m| m.remove(name)) {
            Some(old) => self.publish(engine, namespace, &old.class),
            None => BTreeSet::new(),
        }
    }

    /// After either watcher relisted: the store gets every class of the scope afresh. The
    /// kind counts as synced once both have listed, so `ignore` on a class is known before any
    /// workload is reconciled.
    fn republish(&mut self, engine: &Engine, scope: Option<&str>) -> BTreeSet<WorkloadKey> {
        let affected = engine
            .ctx
            .store
            .replace_sources(SourceKind::SecretProviderClass, scope, self.states());
        if self.statuses_listed && self.classes_listed {
            engine.scheduler.source_synced(SourceKind::SecretProviderClass, scope);
        }
        affected
    }
}

pub type SharedCsi = Arc<std::sync::Mutex<CsiState>>;

fn lock(state: &SharedCsi) -> std::sync::MutexGuard<'_, CsiState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

fn api(engine: &Engine, scope: &Option<String>, resource: &ApiResource) -> Api<DynamicObject> {
    match scope {
        Some(ns) => Api::namespaced_with(engine.ctx.client.clone(), ns, resource),
        None => Api::all_with(engine.ctx.client.clone(), resource),
    }
}

/// Watches pod statuses in one scope until the task is dropped.
pub async fn watch_pod_statuses(engine: Arc<Engine>, scope: Option<String>, csi: SharedCsi) {
    let mut relist: HashMap<String, BTreeMap<String, PodStatus>> = HashMap::new();
    let stream =
        watcher::watcher(api(&engine, &scope, &pod_status_resource()), watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        let parse = |o: &DynamicObject| {
            let value = serde_json::to_value(o).unwrap_or(Value::Null);
            (o.namespace().unwrap_or_default(), o.name_any(), read_pod_status(&value))
        };
        let affected = match event {
            Err(error) => {
                tracing::warn!(%error, "SecretProviderClassPodStatus watch failed; retrying with backoff");
                continue;
            }
            Ok(Event::Apply(o)) => {
                engine
                    .ctx
                    .metrics
                    .event(SourceKind::SecretProviderClass, crate::metrics::WatchEvent::Update);
                let (ns, name, status) = parse(&o);
                // Replace the status, then publish each class touched once: no in-between state.
                let mut state = lock(&csi);
                let statuses = state.statuses.entry(ns.clone()).or_default();
                let old = statuses.remove(&name).map(|o| o.class);
                let new = status.map(|st| {
                    let class = st.class.clone();
                    statuses.insert(name, st);
                    class
                });
                let mut affected = BTreeSet::new();
                for class in old.iter().chain(new.iter()).collect::<BTreeSet<_>>() {
                    affected.extend(state.publish(&engine, &ns, class));
                }
                affected
            }
            Ok(Event::Delete(o)) => {
                engine
                    .ctx
                    .metrics
                    .event(SourceKind::SecretProviderClass, crate::metrics::WatchEvent::Delete);
                let (ns, name, _) = parse(&o);
                lock(&csi).remove_status(&engine, &ns, &name)
            }
            Ok(Event::Init) => {
                relist.clear();
                continue;
            }
            Ok(Event::InitApply(o)) => {
                let (ns, name, status) = parse(&o);
                if let Some(status) = status {
                    relist.entry(ns).or_default().insert(name, status);
                }
                continue;
            }
            Ok(Event::InitDone) => {
                let mut state = lock(&csi);
                state.statuses = std::mem::take(&mut relist);
                state.statuses_listed = true;
                state.republish(&engine, scope.as_deref())
            }
        };
        engine.scheduler.enqueue_all(affected);
    }
}

/// Watches SecretProviderClass objects for their annotations (`ignore`, `match`).
pub async fn watch_classes(engine: Arc<Engine>, scope: Option<String>, csi: SharedCsi) {
    let mut relist: HashMap<(String, String), BTreeMap<String, String>> = HashMap::new();
    let stream =
        watcher::watcher(api(&engine, &scope, &class_resource()), watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        let key = |o: &DynamicObject| (o.namespace().unwrap_or_default(), o.name_any());
        let affected = match event {
            Err(error) => {
                tracing::warn!(%error, "SecretProviderClass watch failed; retrying with backoff");
                continue;
            }
            Ok(Event::Apply(o)) => {
                let (ns, class) = key(&o);
                let mut state = lock(&csi);
                state
                    .annotations
                    .insert((ns.clone(), class.clone()), o.annotations().clone());
                state.publish(&engine, &ns, &class)
            }
            Ok(Event::Delete(o)) => {
                // The class itself is gone: so is its content, unless pods still report it.
                let (ns, class) = key(&o);
                let mut state = lock(&csi);
                state.annotations.remove(&(ns.clone(), class.clone()));
                state.last.remove(&(ns.clone(), class.clone()));
                state.publish(&engine, &ns, &class)
            }
            Ok(Event::Init) => {
                relist.clear();
                continue;
            }
            Ok(Event::InitApply(o)) => {
                relist.insert(key(&o), o.annotations().clone());
                continue;
            }
            Ok(Event::InitDone) => {
                let mut state = lock(&csi);
                state.annotations = std::mem::take(&mut relist);
                state.classes_listed = true;
                state.republish(&engine, scope.as_deref())
            }
        };
        engine.scheduler.enqueue_all(affected);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csi::tests::status;

    #[test]
    fn a_class_keeps_its_content_while_no_pod_mounts_it() {
        let mut state = CsiState::default();
        let v1 = status("c", "1");
        state
            .statuses
            .entry("ns".into())
            .or_default()
            .insert("pod-a".into(), v1.clone());
        assert_eq!(state.state("ns", "c").map(|s| s.hash), Some(v1.hash.clone()));
        // The only pod restarts: its status is deleted before the new one appears.
        state.statuses.get_mut("ns").unwrap().clear();
        assert_eq!(state.state("ns", "c").map(|s| s.hash), Some(v1.hash.clone()));
        assert_eq!(state.states().len(), 1);
        // Only the class being deleted removes it.
        state.last.clear();
        assert_eq!(state.state("ns", "c"), None);
    }
}
