//! Which namespaces are ours: `--namespaces` (or `KUBERNETES_NAMESPACE`), `--namespaces-to-ignore`
//! (cluster-wide mode only, as in Stakater) and the namespaces matching `--namespace-selector`,
//! kept current by the namespace watcher. The engine reconciles, and the admission webhook
//! answers, only for namespaces this allows.

use std::collections::BTreeSet;
use std::sync::RwLock;

/// Why a namespace's workloads are left alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamespaceExclusion {
    /// Not among `--namespaces` (or `KUBERNETES_NAMESPACE`).
    NotWatched,
    /// `--namespaces-to-ignore` names it.
    Ignored,
    /// Its labels do not match `--namespace-selector`.
    NotSelected,
}

pub struct NamespaceScope {
    /// `--namespaces`; `None` when watching the whole cluster.
    watched: Option<BTreeSet<String>>,
    ignored: BTreeSet<String>,
    /// `None` without a selector: every namespace is selected.
    selected: RwLock<Option<BTreeSet<String>>>,
}

impl NamespaceScope {
    /// `watched`: the namespaces watched, `None` for the whole cluster. `ignored` applies only
    /// cluster-wide. With a selector, nothing is selected until [`Self::replace_selected`].
    pub fn new(watched: Option<BTreeSet<String>>, ignored: BTreeSet<String>, has_selector: bool) -> Self {
        Self {
            watched,
            ignored,
            selected: RwLock::new(has_selector.then(BTreeSet::new)),
        }
    }

    /// Whether `namespace` is ours: its workloads may be reloaded, its reviews answered.
    pub fn allows(&self, namespace: &str) -> bool {
        self.exclusion(namespace).is_none()
    }

    /// Why `namespace` is not ours, if it is not.
    pub fn exclusion(&self, namespace: &str) -> Option<NamespaceExclusion> {
        match &self.watched {
            Some(watched) if !watched.contains(namespace) => return Some(NamespaceExclusion::NotWatched),
            Some(_) => {}
            None if self.ignored.contains(namespace) => return Some(NamespaceExclusion::Ignored),
            None => {}
        }
        match &*self.selected.read().unwrap_or_else(|e| e.into_inner()) {
            Some(set) if !set.contains(namespace) => Some(NamespaceExclusion::NotSelected),
            _ => None,
        }
    }

    /// Adds or removes a namespace from the selector's set; true when it was newly added.
    pub fn select(&self, namespace: String, selected: bool) -> bool {
        let mut guard = self.selected.write().unwrap_or_else(|e| e.into_inner());
        let set = guard.get_or_insert_with(BTreeSet::new);
        if selected {
            set.insert(namespace)
        } else {
            set.remove(&namespace);
            false
        }
    }

    /// Replaces the selected set after a relist; returns the namespaces that were added.
    pub fn replace_selected(&self, fresh: BTreeSet<String>) -> Vec<String> {
        let mut guard = self.selected.write().unwrap_or_else(|e| e.into_inner());
        let before = guard.take().unwrap_or_default();
        let added = fresh.difference(&before).cloned().collect();
        *guard = Some(fresh);
        added
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignore_list_applies_cluster_wide_only_and_the_selector_follows_the_watch() {
        let ignored: BTreeSet<String> = ["kube-system".to_string()].into();
        assert!(!NamespaceScope::new(None, ignored.clone(), false).allows("kube-system"));
        let listed = NamespaceScope::new(Some(["kube-system".to_string()].into()), ignored, false);
        assert!(
            listed.allows("kube-system"),
            "the ignore list is for cluster-wide mode only"
        );
        assert!(!listed.allows("other"), "only the listed namespaces");

        let scope = NamespaceScope::new(None, BTreeSet::new(), true);
        assert!(!scope.allows("a"), "nothing selected before the namespace watch lists");
        assert!(scope.select("a".into(), true));
        assert!(!scope.select("a".into(), true), "already selected");
        assert!(scope.allows("a"));
        assert_eq!(
            scope.replace_selected(["a".into(), "b".into()].into()),
            vec!["b".to_string()]
        );
        scope.select("a".into(), false);
        assert!(!scope.allows("a") && scope.allows("b"));
    }
}
