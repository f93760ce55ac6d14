//! Keyed stamps. A plain SHA-1 of a Secret's data in a pod template is readable by anyone who
//! may read Deployments, and is an offline brute-force oracle for low-entropy secrets. Under the
//! annotations strategy the reloader records instead an HMAC-SHA256 (shortened to 160 bits) of
//! the source's identity and content hash, under a per-install key:
//! `secret/db=k1.<key id>.<40 hex>`.
//!
//! The recorded value says which form it is, so every form stays readable:
//! - a plain SHA-1 (Stakater, earlier versions, the env-vars strategy) is compared as such:
//!   switching to keyed stamps rolls nothing, and the next real change writes the keyed form;
//! - a keyed value is checked with the key it names, which stays in the key ring after a
//!   rotation: rotating rolls nothing either;
//! - a keyed value naming a key the ring does not have cannot be checked: it counts as no
//!   record (the workload is acknowledged, never rolled on a guess).

use std::collections::BTreeMap;
use std::fmt;

use ring::hmac;
use thiserror::Error;

use super::hash::ContentHash;
use super::source::SourceRef;

/// Scheme tag of keyed values: HMAC-SHA256 truncated to 20 bytes, hex.
const SCHEME: &str = "k1";
const MAC_BYTES: usize = 20;
/// Longest key id; ids are lower-case letters and digits.
pub const MAX_KEY_ID_LEN: usize = 16;
/// Shortest key accepted.
pub const MIN_KEY_LEN: usize = 32;

/// A keyed stamp value: which key, and the MAC.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyedHash {
    key_id: String,
    mac: String,
}

impl KeyedHash {
    /// Parses `k1.<key id>.<40 hex>`.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('.');
        let (scheme, key_id, mac) = (parts.next()?, parts.next()?, parts.next()?);
        let hex = |s: &str| s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        (scheme == SCHEME && parts.next().is_none() && is_key_id(key_id) && mac.len() == 2 * MAC_BYTES && hex(mac))
            .then(|| Self {
                key_id: key_id.to_string(),
                mac: mac.to_string(),
            })
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }
}

impl fmt::Display for KeyedHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}.{}.{}", self.key_id, self.mac)
    }
}

/// 1 to [`MAX_KEY_ID_LEN`] lower-case letters or digits.
pub fn is_key_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_KEY_ID_LEN && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("key id {0:?} must be 1-{MAX_KEY_ID_LEN} lower-case letters or digits")]
    BadId(String),
    #[error("key {0:?} is shorter than {MIN_KEY_LEN} bytes")]
    TooShort(String),
    #[error("the current key {0:?} is not in the key ring")]
    NoCurrent(String),
}

/// The key ring stamps are made and checked with. Without a current key (the env-vars
/// strategy, or no key available yet) stamps are plain SHA-1, as Stakater's.
#[derive(Clone, Default)]
pub struct StampKeyRing {
    current: Option<String>,
    keys: BTreeMap<String, hmac::Key>,
}

impl fmt::Debug for StampKeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key material.
        f.debug_struct("StampKeyRing")
            .field("current", &self.current)
            .field("ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl StampKeyRing {
    /// Plain SHA-1 stamps; only plain values can be checked.
    pub fn plain() -> Self {
        Self::default()
    }

    /// A ring of `keys` by id, stamping with `current`.
    pub fn new(current: &str, keys: &BTreeMap<String, Vec<u8>>) -> Result<Self, KeyError> {
        let mut ring = BTreeMap::new();
        for (id, bytes) in keys {
            if !is_key_id(id) {
                return Err(KeyError::BadId(id.clone()));
            }
            if bytes.len() < MIN_KEY_LEN {
                return Err(KeyError::TooShort(id.clone()));
            }
            ring.insert(id.clone(), hmac::Key::new(hmac::HMAC_SHA256, bytes));
        }
        if !ring.contains_key(current) {
            return Err(KeyError::NoCurrent(current.to_string()));
        }
        Ok(Self {
            current: Some(current.to_string()),
            keys: ring,
        })
    }

    /// The id new stamps are made with; `None` for plain stamps.
    pub fn current(&self) -> Option<&str> {
        self.current.as_deref()
    }

    /// Whether a keyed value can be checked here.
    pub fn knows(&self, keyed: &KeyedHash) -> bool {
        self.keys.contains_key(&keyed.key_id)
    }

    fn mac(key: &hmac::Key, namespace: &str, source: &SourceRef, hash: &ContentHash) -> String {
        // The message is "{SCHEME}\n{namespace}\n{kind tag}/{name}\n{hash}", fed in parts: the
        // webhook seals every source of every review, so no string is built for it.
        let mut context = hmac::Context::with_key(key);
        for part in [
            SCHEME,
            "\n",
            namespace,
            "\n",
            source.kind.tag(),
            "/",
            &source.name,
            "\n",
            hash.as_str(),
        ] {
            context.update(part.as_bytes());
        }
        let tag = context.sign();
        crate::core::hash::lower_hex(&tag.as_ref()[..MAC_BYTES])
    }

    /// The keyed stamp of `source` in `namespace` with content `hash`; `None` for plain stamps.
    pub fn seal(&self, namespace: &str, source: &SourceRef, hash: &ContentHash) -> Option<KeyedHash> {
        let id = self.current.as_ref()?;
        let key = self.keys.get(id)?;
        Some(KeyedHash {
            key_id: id.clone(),
            mac: Self::mac(key, namespace, source, hash),
        })
    }

    /// Whether `keyed` is the stamp of content `hash`; false for a key the ring does not have.
    pub fn verifies(&self, keyed: &KeyedHash, namespace: &str, source: &SourceRef, hash: &ContentHash) -> bool {
        self.keys.get(&keyed.key_id).is_some_and(|key| {
            let expected = Self::mac(key, namespace, source, hash);
            // Both are public values on the workload; equal length, compared whole.
            expected.as_bytes() == keyed.mac.as_bytes()
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::core::hash::sha1_hex;
    use crate::core::source::SourceKind;

    /// Stamps already on workloads must keep verifying across releases: a changed MAC would
    /// roll every stamped workload once. HMAC-SHA256 of "k1\n{namespace}\n{kind}/{name}\n{hash}",
    /// first 20 bytes in hex (computed independently with Python's hmac).
    #[test]
    fn keyed_stamp_golden_value() {
        let keys = ring("a", &["a"]);
        let source = SourceRef {
            kind: SourceKind::ConfigMap,
            name: "app-config".into(),
        };
        let hash = ContentHash::parse("dc30e0faa89a70dec1033016a2309bbeb9efcbd0").unwrap();
        let sealed = keys.seal("shop", &source, &hash).unwrap();
        assert_eq!(sealed.to_string(), "k1.a.37e186251e40ef6b62ea4afb16c08ccfb064485c");
        assert!(keys.verifies(&sealed, "shop", &source, &hash));
    }

    pub fn ring(current: &str, ids: &[&str]) -> StampKeyRing {
        let keys = ids
            .iter()
            .map(|id| (id.to_string(), id.repeat(MIN_KEY_LEN).into_bytes()))
            .collect();
        StampKeyRing::new(current, &keys).unwrap()
    }

    #[test]
    fn a_keyed_stamp_depends_on_key_namespace_source_and_content_and_parses_back() {
        let db = SourceRef::new(SourceKind::Secret, "db");
        let keys = ring("a", &["a", "b"]);
        let h = sha1_hex(b"p=1");
        let sealed = keys.seal("ns", &db, &h).unwrap();
        assert_eq!(KeyedHash::parse(&sealed.to_string()), Some(sealed.clone()));
        assert!(sealed.to_string().starts_with("k1.a."));
        assert!(keys.verifies(&sealed, "ns", &db, &h));
        assert!(!keys.verifies(&sealed, "other", &db, &h));
        assert!(!keys.verifies(&sealed, "ns", &SourceRef::new(SourceKind::ConfigMap, "db"), &h));
        assert!(!keys.verifies(&sealed, "ns", &db, &sha1_hex(b"p=2")));
        let rotated = ring("b", &["a", "b"]);
        assert!(rotated.verifies(&sealed, "ns", &db, &h), "old keys still check");
        assert_ne!(rotated.seal("ns", &db, &h), Some(sealed.clone()));
        assert!(!ring("b", &["b"]).knows(&sealed));
        assert!(!sealed.to_string().contains(h.as_str()));
        assert_eq!(StampKeyRing::plain().seal("ns", &db, &h), None);
    }

    #[test]
    fn malformed_values_and_rings_are_refused() {
        for bad in [
            "k1.a",
            "k1.A.00",
            "k2.a.0000000000000000000000000000000000000000",
            "k1..x",
            "k1.a.b.c",
        ] {
            assert_eq!(KeyedHash::parse(bad), None, "{bad}");
        }
        let short: BTreeMap<String, Vec<u8>> = [("a".to_string(), vec![0; 8])].into();
        assert_eq!(
            StampKeyRing::new("a", &short).unwrap_err(),
            KeyError::TooShort("a".into())
        );
        let ok: BTreeMap<String, Vec<u8>> = [("a".to_string(), vec![0; 32])].into();
        assert_eq!(
            StampKeyRing::new("b", &ok).unwrap_err(),
            KeyError::NoCurrent("b".into())
        );
        let bad_id: BTreeMap<String, Vec<u8>> = [("A".to_string(), vec![0; 32])].into();
        assert_eq!(
            StampKeyRing::new("A", &bad_id).unwrap_err(),
            KeyError::BadId("A".into())
        );
        assert!(
            !format!("{:?}", ring("a", &["a"])).contains("aaaa"),
            "Debug shows no key"
        );
    }
}
