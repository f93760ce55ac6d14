//! Stamps: how a workload records which content of each source its pods were rolled with.
//!
//! - Our annotation format, used both on the pod template ([`fixed::TEMPLATE_HASHES`], changing
//!   it rolls the pods) and on the workload metadata ([`fixed::ACKNOWLEDGED_HASHES`], hashes
//!   acknowledged without a rollout):
//!   `configmap/app-config=<sha1>,secret/db=<sha1>,secret/optional=absent`, sorted by kind then
//!   name; with a stamp key, each hash is a keyed value `k1.<key id>.<mac>` ([`super::keyed_hash`]).
//!   Object names cannot contain `,`, `=` or `/`, so the format is unambiguous.
//! - Stakater's env vars `STAKATER_<NAME>_<TYPE>=<sha1>` (§3.3).
//!
//! [`fixed::TEMPLATE_HASHES`]: super::vocabulary::fixed::TEMPLATE_HASHES
//! [`fixed::ACKNOWLEDGED_HASHES`]: super::vocabulary::fixed::ACKNOWLEDGED_HASHES

use std::collections::BTreeMap;
use std::fmt;

use thiserror::Error;

use super::hash::ContentHash;
use super::keyed_hash::KeyedHash;
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
}

const ABSENT: &str = "absent";

impl fmt::Display for Observed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Observed::Hash(h) => f.write_str(h.as_str()),
            Observed::Keyed(k) => k.fmt(f),
            Observed::Absent => f.write_str(ABSENT),
        }
    }
}

/// A parsed hash annotation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HashRecord(pub BTreeMap<SourceRef, Observed>);

/// A hash annotation that does not parse. The engine treats it as no record at all (and
/// rewrites it on the next write), so a hand-edited value can never wedge a workload.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("entry {entry:?} is not <kind>/<name>=<sha1|keyed hash|absent>")]
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
            let observed = if value == ABSENT {
                Observed::Absent
            } else if let Some(hash) = ContentHash::parse(value) {
                Observed::Hash(hash)
            } else {
                Observed::Keyed(KeyedHash::parse(value).ok_or_else(bad)?)
            };
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
                Observed::Keyed(keyed) => {
                    let _ = write!(out, "{keyed}");
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
