//! Which namespaces' workloads are ours to reload: `--namespaces-to-ignore` (cluster-wide mode
//! only, as in Stakater) and the namespaces matching `--namespace-selector`, kept current by the
//! namespace watcher.

use std::collections::BTreeSet;
use std::sync::RwLock;

/// Why a namespace's workloads are left alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamespaceExclusion {
    /// `--namespaces-to-ignore` names it.
    Ignored,
    /// Its labels do not match `--namespace-selector`.
    NotSelected,
}

pub struct NamespaceScope {
    cluster_wide: bool,
    ignored: BTreeSet<String>,
    /// `None` without a selector: every namespace is selected.
    selected: RwLock<Option<BTreeSet<String>>>,
}

impl NamespaceScope {
    pub fn new(cluster_wide: bool, ignored: BTreeSet<String>, has_selector: bool) -> Self {
        Self {
            cluster_wide,
            ignored,
            selected: RwLock::new(has_selector.then(BTreeSet::new)),
        }
    }

    /// Whether workloads in `namespace` may be reloaded.
    pub fn allows(&self, namespace: &str) -> bool {
        self.exclusion(namespace).is_none()
    }

    /// Why workloads in `namespace` are not reloaded, if they are not.
    pub fn exclusion(&self, namespace: &str) -> Option<NamespaceExclusion> {
        if self.cluster_wide && self.ignored.contains(namespace) {
            return Some(NamespaceExclusion::Ignored);
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
        assert!(!NamespaceScope::new(true, ignored.clone(), false).allows("kube-system"));
        assert!(NamespaceScope::new(false, ignored, false).allows("kube-system"));

        let scope = NamespaceScope::new(true, BTreeSet::new(), true);
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
        assert_eq!(scope.exclusion("a"), Some(NamespaceExclusion::NotSelected));
        let ignoring = NamespaceScope::new(true, ["kube-system".to_string()].into(), false);
        assert_eq!(ignoring.exclusion("kube-system"), Some(NamespaceExclusion::Ignored));
    }
}
