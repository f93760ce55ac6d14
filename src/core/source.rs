//! Sources: the ConfigMaps, Secrets and SecretProviderClasses a workload can reload on, and
//! the little the core needs to know about each one.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use serde::{Deserialize, Serialize};

use super::hash::{ContentHash, configmap_hash, secret_hash};
use super::per_key::KeyDigests;

/// Secret types never worth watching: Helm release payloads (large, many) and service-account
/// tokens. A server-side field selector, so they never reach our memory; a source of these
/// types is, to the reloader, absent.
pub const SECRET_FIELD_SELECTOR: &str = "type!=helm.sh/release.v1,type!=kubernetes.io/service-account-token";

/// The annotation `kubectl apply` keeps its last input in: a full copy of the object (for a
/// Secret, of its data). The reloader never reads it, so it is not kept (see `docs/engine.md`).
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A source's annotations as the reloader keeps them: without [`LAST_APPLIED`]. Rebuilt rather
/// than edited in place: a map emptied by `remove` keeps its node allocated (half a KB per
/// source, most sources having no other annotation).
pub fn kept_annotations(annotations: BTreeMap<String, String>) -> BTreeMap<String, String> {
    if !annotations.contains_key(LAST_APPLIED) {
        return annotations;
    }
    annotations.into_iter().filter(|(key, _)| key != LAST_APPLIED).collect()
}

/// The kind of a source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SourceKind {
    ConfigMap,
    Secret,
    SecretProviderClass,
}

impl SourceKind {
    pub const ALL: [SourceKind; 3] = [
        SourceKind::ConfigMap,
        SourceKind::Secret,
        SourceKind::SecretProviderClass,
    ];

    /// Stakater's upper-case type name: the env-var suffix, Event text and alert text.
    pub fn stakater_type(self) -> &'static str {
        match self {
            SourceKind::ConfigMap => "CONFIGMAP",
            SourceKind::Secret => "SECRET",
            SourceKind::SecretProviderClass => "SECRETPROVIDERCLASS",
        }
    }

    /// The lower-case tag used in our hash annotations (`configmap/app-config=…`).
    pub fn tag(self) -> &'static str {
        match self {
            SourceKind::ConfigMap => "configmap",
            SourceKind::Secret => "secret",
            SourceKind::SecretProviderClass => "secretproviderclass",
        }
    }

    pub fn from_tag(tag: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.tag() == tag)
    }

    /// Whether the content is secret: a plain hash of it is an offline oracle for it, so it is
    /// never given to a caller who may not read it (docs/security.md).
    pub fn is_confidential(self) -> bool {
        matches!(self, SourceKind::Secret | SourceKind::SecretProviderClass)
    }
}

impl SourceKind {
    /// The API kind, as written in manifests (`ConfigMap`).
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::ConfigMap => "ConfigMap",
            SourceKind::Secret => "Secret",
            SourceKind::SecretProviderClass => "SecretProviderClass",
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A source within the workload's namespace.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceRef {
    pub kind: SourceKind,
    pub name: String,
}

impl SourceRef {
    pub fn new(kind: SourceKind, name: impl Into<String>) -> Self {
        Self {
            kind,
            name: name.into(),
        }
    }
}

impl fmt::Display for SourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind.tag(), self.name)
    }
}

/// What the core knows of an existing source: its identity, annotations and content hash.
/// Never its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceState {
    pub source: SourceRef,
    pub annotations: BTreeMap<String, String>,
    pub hash: ContentHash,
    /// Its content per key, for per-key reloads (16 bytes a key; empty for a
    /// SecretProviderClass, whose content is never read by key).
    pub keys: KeyDigests,
    /// Its last content change the reloader saw happen (none for what was found at start-up).
    pub changed: Option<LastChange>,
}

/// A content change seen while the reloader watched: what the source held before, and when,
/// as a position in the store's sequence of events (see `Store`), so it can be ordered against
/// the moment a workload was first seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastChange {
    /// The hash it replaced; `None` when the source was created.
    pub previous: Option<ContentHash>,
    pub seq: u64,
}

impl SourceState {
    /// A ConfigMap's state; its data is hashed and not kept.
    pub fn of_config_map(cm: &ConfigMap) -> Self {
        let data = || cm.data.iter().flatten();
        let binary = || cm.binary_data.iter().flatten().map(|(k, v)| (k, v.0.as_slice()));
        Self {
            source: SourceRef::new(SourceKind::ConfigMap, cm.metadata.name.clone().unwrap_or_default()),
            annotations: kept_annotations(cm.metadata.annotations.clone().unwrap_or_default()),
            hash: configmap_hash(data(), binary()),
            keys: KeyDigests::of_config_map(data(), binary()),
            changed: None,
        }
    }

    /// A Secret's state; its data is hashed and not kept.
    pub fn of_secret(secret: &Secret) -> Self {
        let data = || secret.data.iter().flatten().map(|(k, v)| (k, v.0.as_slice()));
        Self {
            source: SourceRef::new(SourceKind::Secret, secret.metadata.name.clone().unwrap_or_default()),
            annotations: kept_annotations(secret.metadata.annotations.clone().unwrap_or_default()),
            hash: secret_hash(data()),
            keys: KeyDigests::of_secret(data()),
            changed: None,
        }
    }

    /// A state with no per-key content: a SecretProviderClass (never read by key), or a test's.
    pub fn new(source: SourceRef, annotations: BTreeMap<String, String>, hash: ContentHash) -> Self {
        Self {
            source,
            annotations,
            hash,
            keys: KeyDigests::default(),
            changed: None,
        }
    }
}

/// Read access to the existing sources of one namespace.
pub trait SourceView {
    fn get(&self, source: &SourceRef) -> Option<&SourceState>;
    /// Every existing source of a kind.
    fn of_kind(&self, kind: SourceKind) -> Box<dyn Iterator<Item = &SourceState> + '_>;

    fn content_hash(&self, source: &SourceRef) -> Option<&ContentHash> {
        self.get(source).map(|s| &s.hash)
    }
}

impl SourceView for [SourceState] {
    fn get(&self, source: &SourceRef) -> Option<&SourceState> {
        self.iter().find(|s| &s.source == source)
    }

    fn of_kind(&self, kind: SourceKind) -> Box<dyn Iterator<Item = &SourceState> + '_> {
        Box::new(self.iter().filter(move |s| s.source.kind == kind))
    }
}

impl SourceView for BTreeMap<SourceRef, SourceState> {
    fn get(&self, source: &SourceRef) -> Option<&SourceState> {
        BTreeMap::get(self, source)
    }

    fn of_kind(&self, kind: SourceKind) -> Box<dyn Iterator<Item = &SourceState> + '_> {
        Box::new(
            self.range(SourceRef::new(kind, "")..)
                .take_while(move |(s, _)| s.kind == kind)
                .map(|(_, state)| state),
        )
    }
}

/// A view with a few more sources than `base` (sources not in `base`).
pub struct Overlay<'a, B: SourceView + ?Sized> {
    pub base: &'a B,
    pub extra: &'a BTreeMap<SourceRef, SourceState>,
}

impl<B: SourceView + ?Sized> SourceView for Overlay<'_, B> {
    fn get(&self, source: &SourceRef) -> Option<&SourceState> {
        self.base.get(source).or_else(|| self.extra.get(source))
    }

    fn of_kind(&self, kind: SourceKind) -> Box<dyn Iterator<Item = &SourceState> + '_> {
        let extra = self.extra.of_kind(kind).filter(|s| self.base.get(&s.source).is_none());
        Box::new(self.base.of_kind(kind).chain(extra))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::hash::sha1_hex;

    #[test]
    fn an_overlay_adds_sources_without_duplicates() {
        let state = |kind, name: &str, h: &str| {
            SourceState::new(SourceRef::new(kind, name), BTreeMap::new(), sha1_hex(h.as_bytes()))
        };
        let base: BTreeMap<_, _> = [state(SourceKind::ConfigMap, "a", "1")]
            .into_iter()
            .map(|s| (s.source.clone(), s))
            .collect();
        let extra: BTreeMap<_, _> = [
            state(SourceKind::ConfigMap, "a", "2"),
            state(SourceKind::ConfigMap, "b", "3"),
        ]
        .into_iter()
        .map(|s| (s.source.clone(), s))
        .collect();
        let view = Overlay {
            base: &base,
            extra: &extra,
        };
        let a = SourceRef::new(SourceKind::ConfigMap, "a");
        assert_eq!(view.content_hash(&a), Some(&sha1_hex(b"1")), "the base wins");
        let names: Vec<_> = view
            .of_kind(SourceKind::ConfigMap)
            .map(|s| s.source.name.clone())
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(view.of_kind(SourceKind::Secret).count(), 0);
    }

    #[test]
    fn map_view_ranges_by_kind() {
        let state =
            |kind, name: &str| SourceState::new(SourceRef::new(kind, name), BTreeMap::new(), sha1_hex(name.as_bytes()));
        let all = [
            state(SourceKind::ConfigMap, "a"),
            state(SourceKind::ConfigMap, "b"),
            state(SourceKind::Secret, "a"),
            state(SourceKind::SecretProviderClass, "z"),
        ];
        let map: BTreeMap<SourceRef, SourceState> = all.iter().map(|s| (s.source.clone(), s.clone())).collect();
        for kind in SourceKind::ALL {
            let from_map: Vec<_> = map.of_kind(kind).map(|s| s.source.clone()).collect();
            let from_slice: Vec<_> = all[..].of_kind(kind).map(|s| s.source.clone()).collect();
            assert_eq!(from_map, from_slice, "{kind}");
        }
        assert_eq!(map.of_kind(SourceKind::ConfigMap).count(), 2);
        assert!(SourceView::get(&map, &SourceRef::new(SourceKind::Secret, "a")).is_some());
        assert!(SourceView::get(&map, &SourceRef::new(SourceKind::Secret, "b")).is_none());
    }
}
