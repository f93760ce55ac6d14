//! Stamps: how a workload records which content of each source its pods were rolled with.
//!
//! - Our annotation format, used both on the pod template ([`fixed::TEMPLATE_HASHES`], changing
//!   it rolls the pods) and on the workload metadata ([`fixed::ACKNOWLEDGED_HASHES`], hashes
//!   acknowledged without a rollout):
//!   `configmap/app-config=<sha1>,secret/db=<sha1>,secret/optional=absent`, sorted by kind then
//!   name; with a stamp key, each hash is a keyed value `k1.<key id>.<mac>` ([`super::keyed_hash`]).
//!   Under per-key reloads ([`super::per_key`]) the hash of only the keys a workload reads is
//!   recorded as `keys.<key set id>.<sha1 or keyed value>`.
//!   Object names cannot contain `,`, `=` or `/`, so the format is unambiguous.
//! - Stakater's env vars `STAKATER_<NAME>_<TYPE>=<sha1>` (§3.3); under per-key reloads, the
//!   plain `keys.<key set id>.<sha1>` form.
//!
//! [`fixed::TEMPLATE_HASHES`]: super::vocabulary::fixed::TEMPLATE_HASHES
//! [`fixed::ACKNOWLEDGED_HASHES`]: super::vocabulary::fixed::ACKNOWLEDGED_HASHES

use std::collections::BTreeMap;
use std::fmt;

use thiserror::Error;

use super::hash::ContentHash;
use super::keyed_hash::KeyedHash;
use super::per_key::KeySetId;
use super::source::{SourceKind, SourceRef};

/// What a stamp says about one source.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Observed {
    /// The plain content hash (Stakater's form).
    Hash(ContentHash),
    /// A keyed stamp of the content hash.
    Keyed(KeyedHash),
    /// The source did not exist.
    Absent,
    /// Per-key reloads: the hash of only the keys of the identified set, as a plain
    /// [`Observed::Hash`] or a [`Observed::Keyed`] value (never another form; see
    /// [`Observed::subset`]).
    Subset(KeySetId, Box<Observed>),
}

const ABSENT: &str = "absent";
const SUBSET: &str = "keys.";

impl Observed {
    /// A subset record; `None` unless `value` is a plain or keyed hash.
    pub fn subset(keys: KeySetId, value: Observed) -> Option<Self> {
        matches!(value, Observed::Hash(_) | Observed::Keyed(_)).then(|| Observed::Subset(keys, Box::new(value)))
    }

    /// Parses one recorded value: `absent`, a SHA-1, a keyed value, or a subset of either.
    pub fn parse(value: &str) -> Option<Self> {
        if value == ABSENT {
            return Some(Observed::Absent);
        }
        if let Some(rest) = value.strip_prefix(SUBSET) {
            let (id, inner) = rest.split_once('.')?;
            let inner = Self::parse(inner).filter(|o| !matches!(o, Observed::Absent))?;
            return Self::subset(KeySetId::parse(id)?, inner);
        }
        ContentHash::parse(value)
            .map(Observed::Hash)
            .or_else(|| KeyedHash::parse(value).map(Observed::Keyed))
    }

    /// The keyed value this is, or holds (a keyed subset).
    pub fn keyed(&self) -> Option<&KeyedHash> {
        match self {
            Observed::Keyed(keyed) => Some(keyed),
            Observed::Subset(_, inner) => inner.keyed(),
            Observed::Hash(_) | Observed::Absent => None,
        }
    }

    /// The plain content hash this is, or holds (a plain subset); `None` for a keyed value or
    /// an absent source.
    pub fn content(&self) -> Option<&ContentHash> {
        match self {
            Observed::Hash(hash) => Some(hash),
            Observed::Subset(_, inner) => inner.content(),
            Observed::Keyed(_) | Observed::Absent => None,
        }
    }

    /// Whether this is readable content, not a keyed value: a plain hash, or a subset of one.
    pub fn is_plain(&self) -> bool {
        match self {
            Observed::Hash(_) => true,
            Observed::Subset(_, inner) => inner.is_plain(),
            Observed::Keyed(_) | Observed::Absent => false,
        }
    }
}

impl fmt::Display for Observed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Observed::Hash(h) => f.write_str(h.as_str()),
            Observed::Keyed(k) => k.fmt(f),
            Observed::Absent => f.write_str(ABSENT),
            Observed::Subset(keys, inner) => write!(f, "{SUBSET}{keys}.{inner}"),
        }
    }
}

/// A parsed hash annotation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HashRecord(pub BTreeMap<SourceRef, Observed>);

/// A hash annotation that does not parse. The engine treats it as no record at all (and
/// rewrites it on the next write), so a hand-edited value can never wedge a workload.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("entry {entry:?} is not <kind>/<name>=<sha1|keyed hash|keys.<id>.<sha1|keyed hash>|absent>")]
pub struct RecordError {
    pub entry: String,
}

impl HashRecord {
    pub fn parse(text: &str) -> Result<Self, RecordError> {
        let mut record = BTreeMap::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bad = || RecordError { entry: entry.into() };
            let (source, value) = entry.split_once('=').ok_or_else(bad)?;
            let (tag, name) = source.split_once('/').ok_or_else(bad)?;
            let kind = SourceKind::from_tag(tag).ok_or_else(bad)?;
            if name.is_empty() {
                return Err(bad());
            }
            let observed = Observed::parse(value).ok_or_else(bad)?;
            record.insert(SourceRef::new(kind, name), observed);
        }
        Ok(Self(record))
    }

    /// `kind/name=observed,...`, written into one string: every review renders one, and a
    /// `format!` per entry and a join took most of its time.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut out = String::with_capacity(self.0.len() * 96);
        for (i, (source, observed)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(source.kind.tag());
            out.push('/');
            out.push_str(&source.name);
            out.push('=');
            match observed {
                Observed::Hash(hash) => out.push_str(hash.as_str()),
                Observed::Absent => out.push_str(ABSENT),
                // Writing into a String cannot fail.
                other => {
                    let _ = write!(out, "{other}");
                }
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Stakater's `ConvertToEnvVarName`: upper-case, keep `[A-Z0-9]`, collapse each run of other
/// bytes into one `_` but only after a kept character.
pub fn env_var_fragment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last_valid = false;
    for b in text.bytes().map(|b| b.to_ascii_uppercase()) {
        if b.is_ascii_uppercase() || b.is_ascii_digit() {
            out.push(b as char);
            last_valid = true;
        } else {
            if last_valid {
                out.push('_');
            }
            last_valid = false;
        }
    }
    out
}

pub const ENV_VAR_PREFIX: &str = "STAKATER_";

/// `STAKATER_<NAME>_<TYPE>` for a source.
pub fn env_var_name(source: &SourceRef) -> String {
    format!(
        "{ENV_VAR_PREFIX}{}_{}",
        env_var_fragment(&source.name),
        source.kind.stakater_type()
    )
}

/// Whether an env var name has the shape of a reloader stamp (for garbage collection).
pub fn is_stamp_env_var(name: &str) -> bool {
    name.strip_prefix(ENV_VAR_PREFIX).is_some_and(|rest| {
        SourceKind::ALL
            .iter()
            .any(|k| rest.len() > k.stakater_type().len() && rest.ends_with(&format!("_{}", k.stakater_type())))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::hash::sha1_hex;

    #[test]
    fn env_var_names_follow_stakater() {
        let cm = |n: &str| env_var_name(&SourceRef::new(SourceKind::ConfigMap, n));
        assert_eq!(cm("my-config"), "STAKATER_MY_CONFIG_CONFIGMAP");
        assert_eq!(env_var_fragment("www.stakater.com"), "WWW_STAKATER_COM");
        assert_eq!(env_var_fragment("--leading"), "LEADING");
        assert_eq!(env_var_fragment("trailing-"), "TRAILING_");
        assert_eq!(env_var_fragment("a--b..c"), "A_B_C");
        // Distinct names can collide, as in Stakater.
        assert_eq!(cm("a-b"), cm("a.b"));
        assert_eq!(
            env_var_name(&SourceRef::new(SourceKind::Secret, "db")),
            "STAKATER_DB_SECRET"
        );
        assert_eq!(
            env_var_name(&SourceRef::new(SourceKind::SecretProviderClass, "vault-db")),
            "STAKATER_VAULT_DB_SECRETPROVIDERCLASS"
        );
    }

    #[test]
    fn stamp_env_var_shape() {
        assert!(is_stamp_env_var("STAKATER_MY_CONFIG_CONFIGMAP"));
        assert!(is_stamp_env_var("STAKATER_DB_SECRET"));
        assert!(!is_stamp_env_var("STAKATER_SECRET"));
        assert!(!is_stamp_env_var("STAKATER_DB_PASSWORD"));
        assert!(!is_stamp_env_var("DB_SECRET"));
    }

    #[test]
    fn record_round_trip_is_sorted() {
        let h = sha1_hex(b"x");
        let mut map = BTreeMap::new();
        map.insert(SourceRef::new(SourceKind::Secret, "db"), Observed::Hash(h.clone()));
        map.insert(SourceRef::new(SourceKind::ConfigMap, "z"), Observed::Absent);
        map.insert(SourceRef::new(SourceKind::ConfigMap, "a"), Observed::Hash(h.clone()));
        let mac = "0123456789abcdef0123456789abcdef01234567";
        let keyed = crate::core::keyed_hash::KeyedHash::parse(&format!("k1.key1.{mac}")).unwrap();
        map.insert(
            SourceRef::new(SourceKind::SecretProviderClass, "spc"),
            Observed::Keyed(keyed),
        );
        let record = HashRecord(map);
        let text = record.render();
        assert_eq!(
            text,
            format!("configmap/a={h},configmap/z=absent,secret/db={h},secretproviderclass/spc=k1.key1.{mac}")
        );
        assert_eq!(HashRecord::parse(&text).unwrap(), record);
    }

    #[test]
    fn subset_records_round_trip_plain_and_keyed() {
        let h = sha1_hex(b"x");
        let id = crate::core::per_key::KeySetId::parse("0123abcd").unwrap();
        let mac = "0123456789abcdef0123456789abcdef01234567";
        let keyed = Observed::Keyed(crate::core::keyed_hash::KeyedHash::parse(&format!("k1.key1.{mac}")).unwrap());
        let mut map = BTreeMap::new();
        let plain = Observed::subset(id, Observed::Hash(h.clone())).unwrap();
        assert!(plain.is_plain());
        map.insert(SourceRef::new(SourceKind::ConfigMap, "app"), plain);
        let sealed = Observed::subset(id, keyed).unwrap();
        assert!(!sealed.is_plain());
        map.insert(SourceRef::new(SourceKind::Secret, "db"), sealed);
        let record = HashRecord(map);
        let text = record.render();
        assert_eq!(
            text,
            format!("configmap/app=keys.0123abcd.{h},secret/db=keys.0123abcd.k1.key1.{mac}")
        );
        assert_eq!(HashRecord::parse(&text).unwrap(), record);
        assert_eq!(Observed::subset(id, Observed::Absent), None);
        for bad in [
            "configmap/a=keys.0123abcd.absent",
            "configmap/a=keys.0123abcd",
            "configmap/a=keys.0123ABCD.{h}",
            "configmap/a=keys.0123abcd.keys.0123abcd.{h}",
            "configmap/a=keys..{h}",
        ] {
            let bad = bad.replace("{h}", h.as_str());
            assert!(HashRecord::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_records_are_errors() {
        for bad in [
            "configmap/a",
            "cm/a=absent",
            "configmap/=absent",
            "configmap/a=XYZ",
            "a=absent",
        ] {
            assert!(HashRecord::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(HashRecord::parse("").unwrap(), HashRecord::default());
    }
}
