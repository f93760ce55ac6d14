//! The per-install stamp key ([`crate::core::keyed_hash`]): kept in the Secret `reloader-stamp-key` in
//! the reloader's own namespace, created once by whichever replica finds it missing (one create
//! wins; the others read the winner's), shared by every replica, rotatable by hand, and
//! published to the engine and the webhook as a key ring.
//!
//! The Secret holds `current` (the id new stamps are made with) and `key.<id>` (at least 32
//! random bytes) per key. To rotate: add `key.<new id>` and set `current` to it; keep the old
//! keys, so the stamps made with them are still checked (a stamp whose key is gone counts as no
//! record: acknowledged, never rolled). Deleting the Secret by mistake loses nothing: the
//! replica holding the ring writes it back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use ring::rand::{SecureRandom, SystemRandom};
use thiserror::Error;
use tokio::sync::watch;

use crate::core::keyed_hash::{KeyError, MIN_KEY_LEN, StampKeyRing};

pub const SECRET_NAME: &str = "reloader-stamp-key";
const CURRENT: &str = "current";
const KEY_PREFIX: &str = "key.";

#[derive(Debug, Error)]
pub enum StampKeyError {
    #[error("kubernetes API: {0}")]
    Api(#[from] kube::Error),
    #[error("Secret {SECRET_NAME}: {0}")]
    Invalid(String),
    #[error("Secret {SECRET_NAME}: {0}")]
    Ring(#[from] KeyError),
    #[error("no randomness for a new key")]
    Random,
}

/// The raw ring: the current id and every key's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Ring {
    current: String,
    keys: BTreeMap<String, Vec<u8>>,
}

impl Ring {
    fn generate() -> Result<Self, StampKeyError> {
        let random = SystemRandom::new();
        let mut key = vec![0u8; MIN_KEY_LEN];
        random.fill(&mut key).map_err(|_| StampKeyError::Random)?;
        let mut id = [0u8; 4];
        random.fill(&mut id).map_err(|_| StampKeyError::Random)?;
        let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self {
            current: id.clone(),
            keys: [(id, key)].into(),
        })
    }

    fn from_secret(secret: &Secret) -> Result<Self, StampKeyError> {
        let data = secret.data.clone().unwrap_or_default();
        let current = data
            .get(CURRENT)
            .and_then(|v| String::from_utf8(v.0.clone()).ok())
            .map(|v| v.trim().to_string())
            .ok_or_else(|| StampKeyError::Invalid(format!("no {CURRENT:?} entry")))?;
        let keys = data
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(KEY_PREFIX)?.to_string(), v.0.clone())))
            .collect();
        Ok(Self { current, keys })
    }

    fn to_secret(&self, namespace: &str) -> Secret {
        let mut data: BTreeMap<String, ByteString> = self
            .keys
            .iter()
            .map(|(id, key)| (format!("{KEY_PREFIX}{id}"), ByteString(key.clone())))
            .collect();
        data.insert(CURRENT.into(), ByteString(self.current.clone().into_bytes()));
        Secret {
            metadata: ObjectMeta {
                name: Some(SECRET_NAME.into()),
                namespace: Some(namespace.into()),
                labels: Some([("app.kubernetes.io/name".to_string(), "reloader".to_string())].into()),
                ..Default::default()
            },
            type_: Some("Opaque".into()),
            data: Some(data),
            ..Default::default()
        }
    }

    fn stamp_keys(&self) -> Result<StampKeyRing, StampKeyError> {
        Ok(StampKeyRing::new(&self.current, &self.keys)?)
    }
}

/// The key ring a key Secret holds (for tools and tests that check stamps).
pub fn keys_from_secret(secret: &Secret) -> Result<StampKeyRing, StampKeyError> {
    Ring::from_secret(secret)?.stamp_keys()
}

/// Reads the key Secret, creating it with a fresh key if it does not exist.
async fn read_or_create(api: &Api<Secret>, namespace: &str) -> Result<Ring, StampKeyError> {
    if let Some(secret) = api.get_opt(SECRET_NAME).await? {
        return Ring::from_secret(&secret);
    }
    let fresh = Ring::generate()?;
    match api.create(&PostParams::default(), &fresh.to_secret(namespace)).await {
        Ok(_) => {
            tracing::info!(secret = SECRET_NAME, key = %fresh.current, "created the stamp key");
            Ok(fresh)
        }
        // Another replica created it first: use theirs.
        Err(kube::Error::Api(s)) if s.code == 409 => Ring::from_secret(&api.get(SECRET_NAME).await?),
        Err(error) => Err(error.into()),
    }
}

/// Loads (or creates) the key ring, trying for up to `patience`; `None` when it could not be,
/// and stamps stay plain until [`maintain`] manages.
pub async fn load(client: &Client, namespace: &str, patience: Duration) -> Option<StampKeyRing> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let deadline = tokio::time::Instant::now() + patience;
    let mut delay = Duration::from_millis(200);
    loop {
        match read_or_create(&api, namespace).await.and_then(|ring| ring.stamp_keys()) {
            Ok(keys) => return Some(keys),
            Err(error) if tokio::time::Instant::now() + delay >= deadline => {
                tracing::error!(%error, namespace, "no stamp key: stamps stay plain SHA-1 until it can be read");
                return None;
            }
            Err(error) => {
                tracing::warn!(%error, "reading the stamp key failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// Keeps `keys` current with the Secret (a rotation is picked up at once) and writes the ring
/// back if the Secret is deleted.
pub async fn maintain(client: Client, namespace: String, keys: watch::Sender<Arc<StampKeyRing>>) {
    let api: Api<Secret> = Api::namespaced(client, &namespace);
    let mut held: Option<Ring> = None;
    let config = watcher::Config::default().fields(&format!("metadata.name={SECRET_NAME}"));
    let stream = watcher::watcher(api.clone(), config).default_backoff();
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        let secret = match event {
            Ok(Event::Apply(s) | Event::InitApply(s)) => s,
            Ok(Event::Delete(_)) => {
                let ring = match held.clone() {
                    Some(ring) => ring,
                    None => continue,
                };
                tracing::warn!(
                    secret = SECRET_NAME,
                    "the stamp key Secret was deleted; writing it back"
                );
                if let Err(error) = api.create(&PostParams::default(), &ring.to_secret(&namespace)).await {
                    tracing::warn!(%error, "writing the stamp key back failed");
                }
                continue;
            }
            Ok(Event::InitDone) => {
                if held.is_none() {
                    match read_or_create(&api, &namespace).await {
                        Ok(ring) => held = publish(ring, &keys).or(held),
                        Err(error) => tracing::warn!(%error, "the stamp key is still unavailable"),
                    }
                }
                continue;
            }
            Ok(Event::Init) => continue,
            Err(error) => {
                tracing::warn!(%error, "watching the stamp key failed; retrying with backoff");
                continue;
            }
        };
        match Ring::from_secret(&secret) {
            Ok(ring) if Some(&ring) != held.as_ref() => held = publish(ring, &keys).or(held),
            Ok(_) => {}
            Err(error) => tracing::error!(%error, "the stamp key Secret is invalid; keeping the previous key ring"),
        }
    }
}

/// Publishes a valid ring; returns it, or `None` (and keeps the old one) when it is invalid.
fn publish(ring: Ring, keys: &watch::Sender<Arc<StampKeyRing>>) -> Option<Ring> {
    match ring.stamp_keys() {
        Ok(ring_keys) => {
            tracing::info!(current = %ring.current, keys = ring.keys.len(), "stamp key ring loaded");
            keys.send_replace(Arc::new(ring_keys));
            Some(ring)
        }
        Err(error) => {
            tracing::error!(%error, "the stamp key Secret is invalid; keeping the previous key ring");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_ring_round_trips_through_its_secret() {
        let ring = Ring::generate().unwrap();
        assert!(ring.stamp_keys().is_ok());
        let secret = ring.to_secret("reloader");
        assert_eq!(Ring::from_secret(&secret).unwrap(), ring);
        assert_ne!(Ring::generate().unwrap(), ring, "random");
        let mut broken = secret.clone();
        broken.data.as_mut().unwrap().remove(CURRENT);
        assert!(Ring::from_secret(&broken).is_err());
    }
}
