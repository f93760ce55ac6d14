//! Content hashes, byte-compatible with Stakater Reloader (`internal/pkg/util/util.go`), so a
//! workload it already stamped is up to date for us too.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use sha1::{Digest, Sha1};

/// A lower-case hex SHA-1 of a source's content.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash(String);

impl ContentHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Accepts only what [`sha1_hex`] produces: 40 lower-case hex digits.
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == 40 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
            .then(|| Self(text.to_string()))
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// SHA-1 of `bytes` as lower-case hex (Stakater's `crypto.GenerateSHA`).
pub fn sha1_hex(bytes: &[u8]) -> ContentHash {
    ContentHash(lower_hex(&Sha1::digest(bytes)))
}

/// `bytes` as lower-case hex, two digits each.
pub fn lower_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(2 * bytes.len());
    for b in bytes {
        hex.push(char::from(DIGITS[usize::from(b >> 4)]));
        hex.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    hex
}

/// Sorts `key=value` entries bytewise (Go's `sort.Strings`), joins them with `;` and hashes.
fn hash_entries(mut entries: Vec<Vec<u8>>) -> ContentHash {
    entries.sort();
    sha1_hex(&entries.join(&b';'))
}

fn entry(key: &str, value: &[u8]) -> Vec<u8> {
    let mut e = Vec::with_capacity(key.len() + 1 + value.len());
    e.extend_from_slice(key.as_bytes());
    e.push(b'=');
    e.extend_from_slice(value);
    e
}

/// ConfigMap: `key=value` for `data`, `key=<standard base64>` for `binaryData`.
pub fn configmap_hash<'a>(
    data: impl IntoIterator<Item = (&'a String, &'a String)>,
    binary_data: impl IntoIterator<Item = (&'a String, &'a [u8])>,
) -> ContentHash {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut entries: Vec<Vec<u8>> = data.into_iter().map(|(k, v)| entry(k, v.as_bytes())).collect();
    entries.extend(binary_data.into_iter().map(|(k, v)| entry(k, b64.encode(v).as_bytes())));
    hash_entries(entries)
}

/// Secret: `key=<raw bytes>` for `data` (the API server folds `stringData` into it).
pub fn secret_hash<'a>(data: impl IntoIterator<Item = (&'a String, &'a [u8])>) -> ContentHash {
    hash_entries(data.into_iter().map(|(k, v)| entry(k, v)).collect())
}

/// SecretProviderClassPodStatus: `id=version` per mounted object plus
/// `SecretProviderClassName=<class>`.
pub fn secret_provider_class_hash<'a>(
    class_name: &str,
    objects: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> ContentHash {
    let mut entries: Vec<Vec<u8>> = objects
        .into_iter()
        .map(|(id, version)| entry(id, version.as_bytes()))
        .collect();
    entries.push(entry("SecretProviderClassName", class_name.as_bytes()));
    hash_entries(entries)
}

/// Convenience for owned maps, as the Kubernetes types hold them.
pub fn configmap_hash_of(
    data: Option<&BTreeMap<String, String>>,
    binary_data: Option<&BTreeMap<String, Vec<u8>>>,
) -> ContentHash {
    configmap_hash(
        data.into_iter().flatten(),
        binary_data.into_iter().flatten().map(|(k, v)| (k, v.as_slice())),
    )
}

/// Convenience for owned maps, as the Kubernetes types hold them.
pub fn secret_hash_of(data: Option<&BTreeMap<String, Vec<u8>>>) -> ContentHash {
    secret_hash(data.into_iter().flatten().map(|(k, v)| (k, v.as_slice())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map<V: Clone>(pairs: &[(&str, V)]) -> BTreeMap<String, V> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn golden_values_from_stakater() {
        assert_eq!(
            sha1_hex(b"www.stakater.com").as_str(),
            "abd4ed82fb04548388a6cf3c339fd9dc84d275df"
        );
        assert_eq!(
            configmap_hash_of(Some(&map(&[("key", "value".to_string())])), None).as_str(),
            "dc30e0faa89a70dec1033016a2309bbeb9efcbd0"
        );
        assert_eq!(
            configmap_hash_of(Some(&map(&[("a", "1".to_string()), ("b", "2".to_string())])), None).as_str(),
            "f83e99e324ba68ccc373a58ef1eb42f8ab88646a"
        );
        assert_eq!(
            configmap_hash_of(
                Some(&map(&[("a", "1".to_string())])),
                Some(&map(&[("bin", b"test".to_vec())]))
            )
            .as_str(),
            "ec3b1c96c74b2bfc7face6c4e9254645c5cc0ba8"
        );
        assert_eq!(
            sha1_hex(b"__RELOADER_EMPTY_DELETE_MARKER__").as_str(),
            "aae45badef99284e4dae01d6046154ea9d99532f"
        );
    }

    #[test]
    fn empty_data_is_sha1_of_nothing() {
        let empty = "da39a3ee5e6b4b0d3255bfef95601890afd80709";
        assert_eq!(configmap_hash_of(None, None).as_str(), empty);
        assert_eq!(
            configmap_hash_of(Some(&BTreeMap::new()), Some(&BTreeMap::new())).as_str(),
            empty
        );
        assert_eq!(secret_hash_of(None).as_str(), empty);
    }

    #[test]
    fn secret_values_are_raw_bytes_not_base64() {
        // The same content as the ConfigMap golden value.
        assert_eq!(
            secret_hash_of(Some(&map(&[("key", b"value".to_vec())]))).as_str(),
            "dc30e0faa89a70dec1033016a2309bbeb9efcbd0"
        );
        // Non-UTF-8 bytes hash as bytes.
        let raw = secret_hash_of(Some(&map(&[("k", vec![0xff, 0x00])])));
        assert_eq!(raw, sha1_hex(b"k=\xff\x00"));
    }

    #[test]
    fn entries_sort_bytewise_like_go() {
        // "a=2" < "a_=1" bytewise ('=' is 0x3d, '_' is 0x5f).
        let h = configmap_hash_of(Some(&map(&[("a_", "1".to_string()), ("a", "2".to_string())])), None);
        assert_eq!(h, sha1_hex(b"a=2;a_=1"));
    }

    #[test]
    fn secret_provider_class_status() {
        let h = secret_provider_class_hash("vault-db", [("secret/db", "v2"), ("secret/api", "v7")]);
        assert_eq!(
            h,
            sha1_hex(b"SecretProviderClassName=vault-db;secret/api=v7;secret/db=v2")
        );
        let empty = secret_provider_class_hash("vault-db", []);
        assert_eq!(empty, sha1_hex(b"SecretProviderClassName=vault-db"));
    }

    #[test]
    fn parse_accepts_only_sha1_hex() {
        assert!(ContentHash::parse("dc30e0faa89a70dec1033016a2309bbeb9efcbd0").is_some());
        assert!(ContentHash::parse("DC30E0FAA89A70DEC1033016A2309BBEB9EFCBD0").is_none());
        assert!(ContentHash::parse("absent").is_none());
        assert!(ContentHash::parse("").is_none());
    }
}
