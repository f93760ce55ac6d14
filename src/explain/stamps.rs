//! How stamps are checked: the key ring the reloader stamps with, read from its Secret, and
//! its summary for the report.

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use serde::Serialize;

use crate::config::Settings;
use crate::core::keyed_hash::StampKeyRing;

/// The key ring stamps are checked with.
#[derive(Clone, Debug)]
pub enum KeyRing {
    /// The env-vars strategy, or no namespace for a key: stamps are plain SHA-1.
    Plain { reason: String },
    /// Read from the key Secret.
    Read { secret: String, keys: StampKeyRing },
    /// The key Secret could not be read: keyed stamps cannot be checked.
    Unreadable { secret: String, reason: String },
}

impl KeyRing {
    pub(super) fn keys(&self) -> StampKeyRing {
        match self {
            KeyRing::Read { keys, .. } => keys.clone(),
            _ => StampKeyRing::plain(),
        }
    }
}

/// How stamps are made and checked, for the report.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StampSummary {
    pub strategy: &'static str,
    /// `keyed`, `plain` or `unverifiable`.
    pub keys: &'static str,
    pub detail: String,
}

impl KeyRing {
    pub(super) fn summary(&self, settings: &Settings) -> StampSummary {
        let strategy = match settings.strategy {
            crate::core::plan::ReloadStrategy::Annotations => "annotations",
            crate::core::plan::ReloadStrategy::EnvVars => "env-vars",
        };
        let (keys, detail) = match self {
            KeyRing::Plain { reason } => ("plain", reason.clone()),
            KeyRing::Read { secret, keys } => (
                "keyed",
                format!("key {} (Secret {secret})", keys.current().unwrap_or("?")),
            ),
            KeyRing::Unreadable { secret, reason } => (
                "unverifiable",
                format!("cannot read Secret {secret}: {reason}; keyed stamps cannot be checked"),
            ),
        };
        StampSummary { strategy, keys, detail }
    }
}

/// Reads the key ring the reloader stamps with.
pub async fn key_ring(client: &Client, settings: &Settings) -> KeyRing {
    use crate::stamp_key_secret::{SECRET_NAME, keys_from_secret};
    if settings.strategy != crate::core::plan::ReloadStrategy::Annotations {
        return KeyRing::Plain {
            reason: "the env-vars strategy stamps plain SHA-1 values".into(),
        };
    }
    let Some(namespace) = settings.stamp_key_namespace() else {
        return KeyRing::Plain {
            reason: "no namespace for a stamp key: stamps are plain SHA-1".into(),
        };
    };
    let secret = format!("{namespace}/{SECRET_NAME}");
    match Api::<Secret>::namespaced(client.clone(), &namespace)
        .get_opt(SECRET_NAME)
        .await
    {
        Ok(Some(found)) => match keys_from_secret(&found) {
            Ok(keys) => KeyRing::Read { secret, keys },
            Err(error) => KeyRing::Unreadable {
                secret,
                reason: error.to_string(),
            },
        },
        Ok(None) => KeyRing::Unreadable {
            secret,
            reason: "it does not exist (is the reloader running there?)".into(),
        },
        Err(error) => KeyRing::Unreadable {
            secret,
            reason: error.to_string(),
        },
    }
}
