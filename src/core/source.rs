//! Sources: the ConfigMaps, Secrets and SecretProviderClasses a workload can reload on, and
//! the little the core needs to know about each one.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::hash::ContentHash;

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
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceKind::ConfigMap => "ConfigMap",
            SourceKind::Secret => "Secret",
            SourceKind::SecretProviderClass => "SecretProviderClass",
        })
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
}
