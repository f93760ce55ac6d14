//! The webhook's certificates without cert-manager: one CA and one serving certificate, kept
//! in a Secret in the reloader's namespace so every replica serves the same one.
//!
//! - Start-up (any replica): read the Secret; when absent, create it. Several replicas starting
//!   together race on the create; exactly one wins (409 for the others, who read the winner's).
//! - Renewal (leader): when a third of the serving certificate's life is left, or its names
//!   changed, issue a new one from the same CA. When a third of the CA's life is left, make a
//!   new CA: the caBundle first gets old + new CA, then the Secret gets the leaf of the new CA;
//!   the old CA leaves the bundle once it has expired. No moment exists where the API server
//!   does not trust the certificate being served.
//! - Every replica watches the Secret and swaps the served certificate in place.
//!
//! Secret keys: `ca.crt`, `ca.key`, `ca-bundle.crt` (every CA the API server must trust),
//! `tls.crt`, `tls.key`, and the bookkeeping `ca.not-after`, `tls.not-after` (RFC 3339) and
//! `tls.names` (comma list), so renewal needs no X.509 parser.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{PostParams, Resource};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::tls::{CertificateAuthority, ServingCertificate, TlsError};

const CA_CERT: &str = "ca.crt";
const CA_KEY: &str = "ca.key";
const BUNDLE: &str = "ca-bundle.crt";
const TLS_CERT: &str = "tls.crt";
const TLS_KEY: &str = "tls.key";
const CA_NOT_AFTER: &str = "ca.not-after";
const TLS_NOT_AFTER: &str = "tls.not-after";
const TLS_NAMES: &str = "tls.names";
/// The CA's subject; a CA is rebuilt from its key and this name to sign new leaves.
pub const CA_NAME: &str = "reloader-webhook-ca";

/// Everything the Secret holds, parsed. Its `Debug` never prints the CA key.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredTls {
    pub ca_cert: String,
    pub ca_key: String,
    /// PEM of every trusted CA: the current one first, then older ones until they expire.
    pub bundle: String,
    pub serving: ServingCertificate,
    pub ca_not_after: OffsetDateTime,
    pub tls_not_after: OffsetDateTime,
    pub names: Vec<String>,
}

impl std::fmt::Debug for StoredTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredTls")
            .field("ca_not_after", &self.ca_not_after)
            .field("tls_not_after", &self.tls_not_after)
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Lifetimes {
    pub cert: Duration,
    pub ca: Duration,
}

fn due(not_after: OffsetDateTime, lifetime: Duration, now: OffsetDateTime) -> bool {
    not_after - now < lifetime / 3
}

fn stamp(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}

fn new_leaf(
    ca: &CertificateAuthority,
    names: &[String],
    lifetime: Duration,
    now: OffsetDateTime,
) -> Result<(ServingCertificate, OffsetDateTime), TlsError> {
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    Ok((ca.issue_serving(&names, lifetime)?, now + lifetime))
}

/// A fresh CA and serving certificate.
pub fn generate(names: &[String], lifetimes: Lifetimes, now: OffsetDateTime) -> Result<StoredTls, TlsError> {
    let ca = CertificateAuthority::generate(CA_NAME, lifetimes.ca)?;
    let (serving, tls_not_after) = new_leaf(&ca, names, lifetimes.cert, now)?;
    Ok(StoredTls {
        ca_cert: ca.cert_pem.clone(),
        ca_key: ca.key_pem(),
        bundle: ca.cert_pem.clone(),
        serving,
        ca_not_after: now + lifetimes.ca,
        tls_not_after,
        names: names.to_vec(),
    })
}

/// Splits a PEM bundle into its certificates.
fn pem_blocks(bundle: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in bundle.lines() {
        current.push_str(line);
        current.push('\n');
        if line.starts_with("-----END ") {
            out.push(std::mem::take(&mut current));
        }
    }
    out
}

/// What the Secret should hold now; `None` when nothing is due. `expired_cas` are CA PEMs known
/// to have expired, dropped from the bundle.
pub fn renew(
    stored: &StoredTls,
    names: &[String],
    lifetimes: Lifetimes,
    now: OffsetDateTime,
) -> Result<Option<StoredTls>, TlsError> {
    if due(stored.ca_not_after, lifetimes.ca, now) {
        let ca = CertificateAuthority::generate(CA_NAME, lifetimes.ca)?;
        let (serving, tls_not_after) = new_leaf(&ca, names, lifetimes.cert, now)?;
        // The old CA stays trusted until it expires (a third of its life from now at most).
        let mut bundle = ca.cert_pem.clone();
        if stored.ca_not_after > now {
            bundle.push_str(&stored.ca_cert);
        }
        return Ok(Some(StoredTls {
            ca_cert: ca.cert_pem.clone(),
            ca_key: ca.key_pem(),
            bundle,
            serving,
            ca_not_after: now + lifetimes.ca,
            tls_not_after,
            names: names.to_vec(),
        }));
    }
    let mut next = stored.clone();
    let mut changed = false;
    if due(stored.tls_not_after, lifetimes.cert, now) || stored.names != names {
        let ca = CertificateAuthority::from_pem(&stored.ca_cert, &stored.ca_key, CA_NAME)?;
        let (serving, tls_not_after) = new_leaf(&ca, names, lifetimes.cert, now)?;
        next.serving = serving;
        next.tls_not_after = tls_not_after;
        next.names = names.to_vec();
        changed = true;
    }
    // Once the leaf is signed by the current CA and older CAs have had their overlap, keep only
    // the current CA in the bundle: older ones are dropped when the leaf of the current CA has
    // served for a third of its life.
    let blocks = pem_blocks(&stored.bundle);
    if blocks.len() > 1 && now - (stored.ca_not_after - lifetimes.ca) > lifetimes.ca / 3 {
        next.bundle = stored.ca_cert.clone();
        changed = true;
    }
    Ok(changed.then_some(next))
}

fn text(data: &BTreeMap<String, ByteString>, key: &str) -> Option<String> {
    data.get(key).and_then(|v| String::from_utf8(v.0.clone()).ok())
}

fn time_of(data: &BTreeMap<String, ByteString>, key: &str) -> Option<OffsetDateTime> {
    text(data, key).and_then(|t| OffsetDateTime::parse(t.trim(), &Rfc3339).ok())
}

/// Reads the Secret; `None` when it is missing keys (then it is regenerated).
pub fn from_secret(secret: &Secret) -> Option<StoredTls> {
    let data = secret.data.as_ref()?;
    Some(StoredTls {
        ca_cert: text(data, CA_CERT)?,
        ca_key: text(data, CA_KEY)?,
        bundle: text(data, BUNDLE).or_else(|| text(data, CA_CERT))?,
        serving: ServingCertificate {
            cert_pem: text(data, TLS_CERT)?,
            key_pem: text(data, TLS_KEY)?,
        },
        ca_not_after: time_of(data, CA_NOT_AFTER)?,
        tls_not_after: time_of(data, TLS_NOT_AFTER)?,
        names: text(data, TLS_NAMES)?
            .split(',')
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

pub fn to_data(stored: &StoredTls) -> BTreeMap<String, ByteString> {
    let entry = |k: &str, v: String| (k.to_string(), ByteString(v.into_bytes()));
    BTreeMap::from([
        entry(CA_CERT, stored.ca_cert.clone()),
        entry(CA_KEY, stored.ca_key.clone()),
        entry(BUNDLE, stored.bundle.clone()),
        entry(TLS_CERT, stored.serving.cert_pem.clone()),
        entry(TLS_KEY, stored.serving.key_pem.clone()),
        entry(CA_NOT_AFTER, stamp(stored.ca_not_after)),
        entry(TLS_NOT_AFTER, stamp(stored.tls_not_after)),
        entry(TLS_NAMES, stored.names.join(",")),
    ])
}

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("certificate Secret: {0}")]
    Api(#[from] kube::Error),
    #[error("certificate Secret {0} kept changing under us")]
    Unsettled(String),
}

/// Reads the Secret, creating it when absent. Exactly one of several racing replicas creates
/// it; the others read what it wrote.
pub async fn load_or_create(
    api: &Api<Secret>,
    name: &str,
    names: &[String],
    lifetimes: Lifetimes,
) -> Result<(StoredTls, Secret), CertError> {
    for _ in 0..3 {
        if let Some(secret) = api.get_opt(name).await?
            && let Some(stored) = from_secret(&secret)
        {
            return Ok((stored, secret));
        }
        let stored = generate(names, lifetimes, OffsetDateTime::now_utc())?;
        let mut secret = Secret {
            data: Some(to_data(&stored)),
            type_: Some("Opaque".into()),
            ..Default::default()
        };
        secret.meta_mut().name = Some(name.into());
        match api.create(&PostParams::default(), &secret).await {
            Ok(created) => {
                tracing::info!(secret = name, "created the webhook CA and serving certificate");
                return Ok((stored, created));
            }
            // Someone else created it first, or it exists but is unreadable: read again.
            Err(kube::Error::Api(s)) if s.code == 409 => {
                if let Some(existing) = api.get_opt(name).await?
                    && from_secret(&existing).is_none()
                {
                    // Present but incomplete (hand-edited): replace it, guarded by its version.
                    secret.metadata.resource_version = existing.metadata.resource_version.clone();
                    match api.replace(name, &PostParams::default(), &secret).await {
                        Ok(replaced) => return Ok((stored, replaced)),
                        Err(kube::Error::Api(s)) if s.code == 409 => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(CertError::Unsettled(name.to_string()))
}

/// The DNS names a certificate needs for an in-cluster service.
pub fn service_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
        format!("{service}.{namespace}"),
        service.to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lifetimes() -> Lifetimes {
        Lifetimes {
            cert: Duration::from_secs(90 * 86400),
            ca: Duration::from_secs(3650 * 86400),
        }
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::parse("2026-11-26T00:00:00Z", &Rfc3339).unwrap()
    }

    #[test]
    fn secret_round_trip() {
        let names = vec!["127.0.0.1".to_string()];
        let stored = generate(&names, lifetimes(), now()).unwrap();
        let secret = Secret {
            data: Some(to_data(&stored)),
            ..Default::default()
        };
        assert_eq!(from_secret(&secret), Some(stored));
        assert_eq!(from_secret(&Secret::default()), None);
    }

    #[test]
    fn nothing_is_due_early() {
        let names = vec!["127.0.0.1".to_string()];
        let stored = generate(&names, lifetimes(), now()).unwrap();
        assert_eq!(
            renew(&stored, &names, lifetimes(), now() + time::Duration::days(30)).unwrap(),
            None
        );
    }

    #[test]
    fn the_leaf_is_renewed_from_the_same_ca() {
        let names = vec!["127.0.0.1".to_string()];
        let stored = generate(&names, lifetimes(), now()).unwrap();
        let later = now() + time::Duration::days(61);
        let renewed = renew(&stored, &names, lifetimes(), later).unwrap().expect("due");
        assert_eq!(renewed.ca_cert, stored.ca_cert);
        assert_eq!(renewed.bundle, stored.bundle);
        assert_ne!(renewed.serving, stored.serving);
        assert_eq!(renewed.tls_not_after, later + lifetimes().cert);
        // The renewed leaf loads, and chains to the same CA (verified by rustls in tls tests).
        crate::tls::server_config(&renewed.serving).unwrap();
        // New names also renew.
        let more = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        assert!(renew(&stored, &more, lifetimes(), now()).unwrap().is_some());
    }

    #[test]
    fn a_new_ca_overlaps_with_the_old_one() {
        let names = vec!["svc.ns.svc".to_string()];
        let stored = generate(&names, lifetimes(), now()).unwrap();
        let late = now() + time::Duration::days(2500);
        let rotated = renew(&stored, &names, lifetimes(), late).unwrap().expect("CA due");
        assert_ne!(rotated.ca_cert, stored.ca_cert);
        let blocks = pem_blocks(&rotated.bundle);
        assert_eq!(blocks, vec![rotated.ca_cert.clone(), stored.ca_cert.clone()]);
        // A third of the new CA's life later, the old CA has left the bundle.
        let much_later = late + time::Duration::days(1300);
        let settled = renew(&rotated, &names, lifetimes(), much_later)
            .unwrap()
            .expect("bundle trimmed");
        assert_eq!(pem_blocks(&settled.bundle), vec![rotated.ca_cert.clone()]);
    }
}
