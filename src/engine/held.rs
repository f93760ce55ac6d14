//! What the engine remembers of holds, beside the cluster (which alone says what is held):
//! the workloads held now and why (for the held gauge, and so each hold is told once), each
//! Namespace's reload window, and the halted waves already told. The gate ([`super::gate`]) and
//! the waves ([`super::waves`]) keep them up to date through the [`super::context::Context`].

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, RwLock};

use crate::core::hash::ContentHash;
use crate::core::hold::{Hold, HoldReason};
use crate::core::source::SourceRef;
use crate::store::WorkloadKey;

/// Each Namespace's `reload-window` annotation (cluster-wide installs watch Namespaces).
#[derive(Default)]
pub struct NamespaceWindows(RwLock<HashMap<String, String>>);

impl NamespaceWindows {
    /// Records a Namespace's window (`None`: it has none); true when it changed.
    pub fn set(&self, namespace: &str, window: Option<String>) -> bool {
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        match window {
            Some(w) => map.insert(namespace.to_string(), w.clone()).as_ref() != Some(&w),
            None => map.remove(namespace).is_some(),
        }
    }

    pub fn get(&self, namespace: &str) -> Option<String> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).get(namespace).cloned()
    }
}

/// The workloads held now, with what holds them.
#[derive(Default)]
pub struct Holds(Mutex<HashMap<WorkloadKey, (HoldReason, String)>>);

impl Holds {
    /// Notes `key` as held; true when this is news (not held, or held differently before),
    /// which is when it is told.
    pub(super) fn hold(&self, key: &WorkloadKey, hold: &Hold) -> bool {
        let entry = (hold.reason(), hold.describe());
        let mut held = self.0.lock().unwrap_or_else(|e| e.into_inner());
        held.insert(key.clone(), entry.clone()).as_ref() != Some(&entry)
    }

    /// Notes `key` as no longer held.
    pub(super) fn release(&self, key: &WorkloadKey) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(key).is_some()
    }

    /// How many workloads each reason holds.
    pub fn counts(&self) -> BTreeMap<HoldReason, usize> {
        let mut counts: BTreeMap<HoldReason, usize> = HoldReason::ALL.iter().map(|r| (*r, 0)).collect();
        for (reason, _) in self.0.lock().unwrap_or_else(|e| e.into_inner()).values() {
            *counts.entry(*reason).or_default() += 1;
        }
        counts
    }
}

/// The halts reported, per source: the content each was reported for.
#[derive(Default)]
pub struct HaltReports(Mutex<HashMap<(String, SourceRef), Option<ContentHash>>>);

impl HaltReports {
    /// Notes a halt of `source`'s waves at `content`; true when it is news.
    pub(super) fn note(&self, namespace: &str, source: &SourceRef, content: Option<&ContentHash>) -> bool {
        let mut reported = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let slot = (namespace.to_string(), source.clone());
        let content = content.cloned();
        if reported.get(&slot) == Some(&content) {
            return false;
        }
        reported.insert(slot, content);
        true
    }
}
