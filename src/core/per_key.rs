//! Per-key reloads (`reloader.stakater.com/per-key`, `--per-key-reloads`): a workload that reads
//! only some keys of a ConfigMap or Secret (`configMapKeyRef`/`secretKeyRef`, volume and
//! projection `items`) is stamped with a hash of those keys only, so a change to the others
//! rolls nothing. See `docs/engine.md`, Per-key reloads.
//!
//! The reloader keeps no source data, so each source carries its [`KeyDigests`]: per key, 8
//! bytes of the SHA-1 of its name and 8 bytes of the SHA-1 of its value, sorted by the first;
//! 16 bytes a key in one allocation (none for a source without keys). The hash of any set of
//! keys is computed from them ([`KeyDigests::subset_hash`]): the SHA-1 of `name=<value digest as
//! 16 hex digits>` for each key of the set the source has, sorted by name and joined with `;`.
//! A key of the set the source lacks adds nothing: an `optional` key that is absent changes
//! nothing until it appears.
//!
//! A stamp says which keys its hash covers by the set's [`KeySetId`] (`keys.<id>.<hash>`,
//! `super::hash_record`), so a record made for other keys (the template now reads another key,
//! which rolls the pods anyway) is told apart from a change of content.

use std::collections::BTreeSet;
use std::fmt;

use sha1::{Digest, Sha1};

use super::hash::{ContentHash, lower_hex, sha1_hex};

/// The first 8 bytes of a SHA-1, as a number.
fn digest64(bytes: &[u8]) -> u64 {
    let sha = Sha1::digest(bytes);
    let mut first = [0u8; 8];
    first.copy_from_slice(&sha[..8]);
    u64::from_be_bytes(first)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct KeyDigest {
    name: u64,
    value: u64,
}

/// A source's content as per-key digests, never its data (see the module's documentation).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyDigests(Box<[KeyDigest]>);

impl KeyDigests {
    /// The digests of `entries` (key, value bytes). A ConfigMap's `data` values count as their
    /// UTF-8 bytes and its `binaryData` values as their bytes, so a key moved from one to the
    /// other with the same bytes (the same file in a volume) is no change.
    pub fn new<'a>(entries: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Self {
        let mut digests: Vec<KeyDigest> = entries
            .into_iter()
            .map(|(name, value)| KeyDigest {
                name: digest64(name.as_bytes()),
                value: digest64(value),
            })
            .collect();
        digests.sort_unstable();
        digests.dedup_by_key(|d| d.name);
        Self(digests.into_boxed_slice())
    }

    /// A ConfigMap's `data` and `binaryData`.
    pub fn of_config_map<'a>(
        data: impl IntoIterator<Item = (&'a String, &'a String)>,
        binary_data: impl IntoIterator<Item = (&'a String, &'a [u8])>,
    ) -> Self {
        Self::new(
            data.into_iter()
                .map(|(k, v)| (k.as_str(), v.as_bytes()))
                .chain(binary_data.into_iter().map(|(k, v)| (k.as_str(), v))),
        )
    }

    /// A Secret's `data`.
    pub fn of_secret<'a>(data: impl IntoIterator<Item = (&'a String, &'a [u8])>) -> Self {
        Self::new(data.into_iter().map(|(k, v)| (k.as_str(), v)))
    }

    fn value(&self, key: &str) -> Option<u64> {
        let name = digest64(key.as_bytes());
        self.0
            .binary_search_by_key(&name, |d| d.name)
            .ok()
            .and_then(|i| self.0.get(i))
            .map(|d| d.value)
    }

    /// Whether the source has `key`.
    pub fn contains(&self, key: &str) -> bool {
        self.value(key).is_some()
    }

    /// How many keys the source has.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The hash of the keys of `keys` the source has (see the module's documentation).
    pub fn subset_hash(&self, keys: &KeySet) -> ContentHash {
        let mut text = String::new();
        for key in keys.iter() {
            let Some(value) = self.value(key) else {
                continue;
            };
            if !text.is_empty() {
                text.push(';');
            }
            text.push_str(key);
            text.push('=');
            text.push_str(&lower_hex(&value.to_be_bytes()));
        }
        sha1_hex(text.as_bytes())
    }
}

/// The keys a workload reads from one source, sorted bytewise.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeySet(BTreeSet<String>);

impl KeySet {
    pub fn insert(&mut self, key: impl Into<String>) {
        self.0.insert(key.into());
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Which set this is, as a stamp names it: the first 4 bytes of the SHA-1 of the names,
    /// each followed by a newline (no key name holds one).
    pub fn id(&self) -> KeySetId {
        let mut sha = Sha1::new();
        for key in &self.0 {
            sha.update(key.as_bytes());
            sha.update(b"\n");
        }
        let digest = sha.finalize();
        let mut first = [0u8; 4];
        first.copy_from_slice(&digest[..4]);
        KeySetId(u32::from_be_bytes(first))
    }
}

impl<S: Into<String>> FromIterator<S> for KeySet {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        Self(iter.into_iter().map(Into::into).collect())
    }
}

impl fmt::Display for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, key) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(key)?;
        }
        Ok(())
    }
}

/// A [`KeySet`]'s identity in a stamp: 8 lower-case hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeySetId(u32);

impl KeySetId {
    /// Accepts only what [`fmt::Display`] writes: 8 lower-case hex digits.
    pub fn parse(text: &str) -> Option<Self> {
        let hex = text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        (text.len() == 8 && hex)
            .then(|| u32::from_str_radix(text, 16).ok().map(Self))
            .flatten()
    }
}

impl fmt::Display for KeySetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn digests(pairs: &[(&str, &str)]) -> KeyDigests {
        KeyDigests::new(pairs.iter().map(|(k, v)| (*k, v.as_bytes())))
    }

    fn keys(names: &[&str]) -> KeySet {
        names.iter().copied().collect()
    }

    /// Stamps already on workloads must keep matching across releases: a changed subset hash
    /// would roll every per-key workload once. SHA-1("DB_HOST=0352a8acc949c7df"), the value's
    /// digest being the first 8 bytes of SHA-1("db"); computed independently with Python's
    /// hashlib, as is the id (SHA-1("DB_HOST\n")).
    #[test]
    fn subset_hash_golden_value() {
        let d = digests(&[("DB_HOST", "db"), ("DB_PORT", "5432")]);
        assert_eq!(
            d.subset_hash(&keys(&["DB_HOST"])).as_str(),
            "4d6a1a15a8bf3e741d32ff51c3450c456aed2025"
        );
        assert_eq!(keys(&["DB_HOST"]).id().to_string(), "8cc1c6d1");
    }

    #[test]
    fn a_subset_hash_covers_only_its_keys() {
        let before = digests(&[("a", "1"), ("b", "2"), ("c", "3")]);
        let b_changed = digests(&[("a", "1"), ("b", "20"), ("c", "3")]);
        let a_changed = digests(&[("a", "10"), ("b", "2"), ("c", "3")]);
        let read = keys(&["a", "c"]);
        assert_eq!(before.subset_hash(&read), b_changed.subset_hash(&read));
        assert_ne!(before.subset_hash(&read), a_changed.subset_hash(&read));
        // A key removed or added outside the set changes nothing either.
        assert_eq!(
            before.subset_hash(&read),
            digests(&[("a", "1"), ("c", "3"), ("z", "9")]).subset_hash(&read)
        );
        // An absent key of the set adds nothing until it appears.
        let optional = keys(&["a", "c", "missing"]);
        assert_eq!(before.subset_hash(&optional), before.subset_hash(&read));
        let appeared = digests(&[("a", "1"), ("b", "2"), ("c", "3"), ("missing", "")]);
        assert_ne!(appeared.subset_hash(&optional), before.subset_hash(&optional));
        // Values are not shuffled between keys.
        assert_ne!(
            digests(&[("a", "1"), ("c", "3")]).subset_hash(&read),
            digests(&[("a", "3"), ("c", "1")]).subset_hash(&read)
        );
    }

    #[test]
    fn config_map_data_and_binary_data_count_as_bytes() {
        let data = [("a".to_string(), "x".to_string())];
        let binary = [("b".to_string(), b"\xff".to_vec())];
        let d = KeyDigests::of_config_map(
            data.iter().map(|(k, v)| (k, v)),
            binary.iter().map(|(k, v)| (k, &v[..])),
        );
        assert!(d.contains("a") && d.contains("b") && !d.contains("c"));
        assert_eq!(d.len(), 2);
        let moved = KeyDigests::of_config_map(
            std::iter::empty(),
            [("a".to_string(), b"x".to_vec())].iter().map(|(k, v)| (k, &v[..])),
        );
        assert_eq!(moved.subset_hash(&keys(&["a"])), d.subset_hash(&keys(&["a"])));
        assert!(KeyDigests::default().is_empty());
    }

    /// What a source's per-key content costs in the store (docs/engine.md, Memory): 16 bytes in
    /// its state, and 16 a key in one allocation (none for a source without keys).
    #[test]
    fn a_source_costs_16_bytes_and_16_a_key() {
        assert_eq!(std::mem::size_of::<KeyDigests>(), 16);
        let d = digests(&[("a", "1"), ("b", "2"), ("c", "3")]);
        assert_eq!(std::mem::size_of_val(&*d.0), 3 * 16);
        assert_eq!(std::mem::size_of_val(&*KeyDigests::default().0), 0);
    }

    #[test]
    fn key_set_ids_parse_back_and_tell_sets_apart() {
        let id = keys(&["a", "b"]).id();
        assert_eq!(KeySetId::parse(&id.to_string()), Some(id));
        assert_ne!(keys(&["a"]).id(), keys(&["a", "b"]).id());
        assert_ne!(keys(&["ab"]).id(), keys(&["a", "b"]).id());
        for bad in ["", "1234567", "123456789", "ABCDEF01", "g0000000", "+1234567"] {
            assert_eq!(KeySetId::parse(bad), None, "{bad}");
        }
        assert_eq!(keys(&["b", "a"]).to_string(), "a, b");
    }

    proptest! {
        /// Whatever the other keys hold, the subset hash is that of the read keys alone.
        #[test]
        fn unread_keys_never_move_the_subset_hash(
            read in prop::collection::btree_map("[a-c]{1,2}", "[a-z]{0,3}", 0..4),
            other in prop::collection::btree_map("[d-f]{1,2}", "[a-z]{0,3}", 0..4),
            other_again in prop::collection::btree_map("[d-f]{1,2}", "[a-z]{0,3}", 0..4),
            extra_names in prop::collection::btree_set("[a-c]{1,2}", 0..3),
        ) {
            let mut set: KeySet = read.keys().cloned().collect();
            for name in &extra_names {
                set.insert(name.clone());
            }
            let with = |others: &std::collections::BTreeMap<String, String>| {
                KeyDigests::new(read.iter().chain(others).map(|(k, v)| (k.as_str(), v.as_bytes())))
            };
            let alone = KeyDigests::new(read.iter().map(|(k, v)| (k.as_str(), v.as_bytes())));
            prop_assert_eq!(with(&other).subset_hash(&set), alone.subset_hash(&set));
            prop_assert_eq!(with(&other).subset_hash(&set), with(&other_again).subset_hash(&set));
        }
    }
}
