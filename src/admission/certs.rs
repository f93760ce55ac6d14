//! The webhook's certificates without cert-manager: one CA and one serving certificate, shared by
//! every replica through two Secrets in the reloader's namespace.
//!
//! - `<name>` (every replica reads and watches it): the serving certificate and key, the
//!   `ca-bundle.crt` the API server must trust, and bookkeeping.
//! - `<name>-ca` (read only by the replica that signs: the leader, or the one replica that
//!   bootstraps): the CA certificate and key. The CA has path length 0 and name constraints to
//!   the webhook's names, so its key can sign nothing else that anyone trusts.
//!
//! Lifecycle:
//! - Start-up (any replica): read `<name>`; when absent, bootstrap: get or create the CA (one
//!   create wins a race; the others read the winner's), issue a leaf, create `<name>` (again one
//!   wins). A replica never needs the CA to serve.
//! - Renewal (leader): when a third of the leaf's life is left, or its names changed, a new leaf
//!   from the same CA. When a third of the CA's life is left, or the names leave its
//!   constraints, a new CA in two steps: first the new CA joins the bundle (published to the
//!   webhook configurations) while the old leaf keeps serving; at least one check later, the
//!   leaf of the new CA is served. The old CA leaves the bundle once the new one has served for a
//!   third of its life, and is remembered as retired so a merge never brings it back.
//! - Every replica watches `<name>` and swaps the served certificate in place.
//!
//! A Secret written by an earlier version (CA key inside `<name>`) is served as is and moved
//! apart by the leader's next check.

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
const CA_NOT_AFTER: &str = "ca.not-after";
const CA_NAMES: &str = "ca.names";
const BUNDLE: &str = "ca-bundle.crt";
const TLS_CERT: &str = "tls.crt";
const TLS_KEY: &str = "tls.key";
const TLS_NOT_AFTER: &str = "tls.not-after";
const TLS_NAMES: &str = "tls.names";
const PENDING_SINCE: &str = "ca.pending-since";
const RETIRED: &str = "ca.retired";
/// The CA's subject; a CA is rebuilt from its key and this name to sign new leaves.
pub const CA_NAME: &str = "reloader-webhook-ca";
/// CAs a published bundle holds at most (ours first, then others found in the live one).
pub const MAX_BUNDLE: usize = 4;

/// The name of the Secret holding the CA, beside the serving Secret `name`.
pub fn ca_secret_name(name: &str) -> String {
    format!("{name}-ca")
}

/// The CA: its certificate, key, expiry and the names it may sign for. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredCa {
    pub cert: String,
    pub key: String,
    pub not_after: OffsetDateTime,
    /// Empty for a CA from an earlier version, constrained to nothing.
    pub names: Vec<String>,
}

impl std::fmt::Debug for StoredCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCa")
            .field("not_after", &self.not_after)
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

/// What every replica reads: the served leaf and the trusted bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredServing {
    pub serving: ServingCertificate,
    /// PEM of every trusted CA: the current one first, then older ones until they retire.
    pub bundle: String,
    pub not_after: OffsetDateTime,
    pub names: Vec<String>,
    /// Set while a new CA is trusted but its leaf not yet served.
    pub pending_since: Option<OffsetDateTime>,
    /// CAs dropped from the bundle on purpose (PEM), never merged back.
    pub retired: String,
}

/// Both halves, as the leader sees them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredTls {
    pub ca: StoredCa,
    pub serving: StoredServing,
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

fn new_ca(
    names: &[String],
    lifetime: Duration,
    now: OffsetDateTime,
) -> Result<(CertificateAuthority, StoredCa), TlsError> {
    let ca = CertificateAuthority::generate(CA_NAME, lifetime, names)?;
    let stored = StoredCa {
        cert: ca.cert_pem.clone(),
        key: ca.key_pem(),
        not_after: now + lifetime,
        names: names.to_vec(),
    };
    Ok((ca, stored))
}

fn new_leaf(ca: &CertificateAuthority, names: &[String], lifetime: Duration) -> Result<ServingCertificate, TlsError> {
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    ca.issue_serving(&names, lifetime)
}

/// A fresh CA and serving certificate.
pub fn generate(names: &[String], lifetimes: Lifetimes, now: OffsetDateTime) -> Result<StoredTls, TlsError> {
    let (ca, stored_ca) = new_ca(names, lifetimes.ca, now)?;
    Ok(StoredTls {
        serving: StoredServing {
            serving: new_leaf(&ca, names, lifetimes.cert)?,
            bundle: stored_ca.cert.clone(),
            not_after: now + lifetimes.cert,
            names: names.to_vec(),
            pending_since: None,
            retired: String::new(),
        },
        ca: stored_ca,
    })
}

/// A leaf for `names` from an existing CA.
fn leaf_from(ca: &StoredCa, names: &[String], lifetime: Duration) -> Result<ServingCertificate, TlsError> {
    new_leaf(
        &CertificateAuthority::from_pem(&ca.cert, &ca.key, CA_NAME)?,
        names,
        lifetime,
    )
}

/// Splits a PEM bundle into its certificates.
pub fn pem_blocks(bundle: &str) -> Vec<String> {
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

/// Whether a CA may sign for every one of `names` (a CA of an earlier version is constrained to
/// nothing: it is replaced).
fn covers(ca: &StoredCa, names: &[String]) -> bool {
    !ca.names.is_empty() && names.iter().all(|n| ca.names.contains(n))
}

/// What the Secrets should hold now; `None` when nothing is due. `sync` is the leader's check
/// period: a new CA is trusted for at least that long before its leaf is served.
pub fn renew(
    stored: &StoredTls,
    names: &[String],
    lifetimes: Lifetimes,
    sync: Duration,
    now: OffsetDateTime,
) -> Result<Option<StoredTls>, TlsError> {
    let mut next = stored.clone();
    if let Some(since) = stored.serving.pending_since {
        if now - since < sync {
            return Ok(None);
        }
        // The new CA has been trusted for a check: serve its leaf.
        next.serving.serving = leaf_from(&stored.ca, names, lifetimes.cert)?;
        next.serving.not_after = now + lifetimes.cert;
        next.serving.names = names.to_vec();
        next.serving.pending_since = None;
        return Ok(Some(next));
    }
    if due(stored.ca.not_after, lifetimes.ca, now) || !covers(&stored.ca, names) {
        let (_, ca) = new_ca(names, lifetimes.ca, now)?;
        // Trust first: the old leaf keeps serving, its CA stays in the bundle.
        let mut bundle = ca.cert.clone();
        for block in pem_blocks(&stored.serving.bundle).into_iter().take(MAX_BUNDLE - 1) {
            bundle.push_str(&block);
        }
        next.ca = ca;
        next.serving.bundle = bundle;
        next.serving.pending_since = Some(now);
        return Ok(Some(next));
    }
    let mut changed = false;
    if due(stored.serving.not_after, lifetimes.cert, now) || stored.serving.names != names {
        next.serving.serving = leaf_from(&stored.ca, names, lifetimes.cert)?;
        next.serving.not_after = now + lifetimes.cert;
        next.serving.names = names.to_vec();
        changed = true;
    }
    // Older CAs leave the bundle once the current one has served for a third of its life.
    let blocks = pem_blocks(&stored.serving.bundle);
    if blocks.len() > 1 && now - (stored.ca.not_after - lifetimes.ca) > lifetimes.ca / 3 {
        next.serving.bundle = stored.ca.cert.clone();
        let mut retired: Vec<String> = blocks
            .into_iter()
            .filter(|b| b.trim() != stored.ca.cert.trim())
            .collect();
        retired.extend(pem_blocks(&stored.serving.retired));
        retired.truncate(2 * MAX_BUNDLE);
        next.serving.retired = retired.concat();
        changed = true;
    }
    Ok(changed.then_some(next))
}

/// The bundle to publish: ours, then the CAs of the live configuration we did not put there and
/// did not retire (someone else's, or a replica's from before a re-created Secret), at most
/// [`MAX_BUNDLE`] in all. An existing caBundle is merged, never dropped.
pub fn merge_bundle(ours: &str, live: &str, retired: &str) -> String {
    let mut out: Vec<String> = pem_blocks(ours);
    let known = |b: &String, list: &[String]| list.iter().any(|o| o.trim() == b.trim());
    let retired = pem_blocks(retired);
    for block in pem_blocks(live) {
        if out.len() >= MAX_BUNDLE {
            break;
        }
        if !known(&block, &out) && !known(&block, &retired) {
            out.push(block);
        }
    }
    out.concat()
}

fn text(data: &BTreeMap<String, ByteString>, key: &str) -> Option<String> {
    data.get(key).and_then(|v| String::from_utf8(v.0.clone()).ok())
}

fn time_of(data: &BTreeMap<String, ByteString>, key: &str) -> Option<OffsetDateTime> {
    text(data, key).and_then(|t| OffsetDateTime::parse(t.trim(), &Rfc3339).ok())
}

fn list_of(data: &BTreeMap<String, ByteString>, key: &str) -> Option<Vec<String>> {
    Some(
        text(data, key)?
            .split(',')
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect(),
    )
}

/// The serving half of `<name>`; `None` when it is missing keys (then it is regenerated).
pub fn serving_from_secret(secret: &Secret) -> Option<StoredServing> {
    let data = secret.data.as_ref()?;
    Some(StoredServing {
        serving: ServingCertificate {
            cert_pem: text(data, TLS_CERT)?,
            key_pem: text(data, TLS_KEY)?,
        },
        bundle: text(data, BUNDLE).or_else(|| text(data, CA_CERT))?,
        not_after: time_of(data, TLS_NOT_AFTER)?,
        names: list_of(data, TLS_NAMES)?,
        pending_since: time_of(data, PENDING_SINCE),
        retired: text(data, RETIRED).unwrap_or_default(),
    })
}

/// The CA from `<name>-ca`, or from `<name>` as an earlier version kept it there.
pub fn ca_from_secret(secret: &Secret) -> Option<StoredCa> {
    let data = secret.data.as_ref()?;
    Some(StoredCa {
        cert: text(data, CA_CERT)?,
        key: text(data, CA_KEY)?,
        not_after: time_of(data, CA_NOT_AFTER)?,
        names: list_of(data, CA_NAMES).unwrap_or_default(),
    })
}

fn entry(k: &str, v: String) -> (String, ByteString) {
    (k.to_string(), ByteString(v.into_bytes()))
}

pub fn serving_data(stored: &StoredServing) -> BTreeMap<String, ByteString> {
    let mut data = BTreeMap::from([
        entry(BUNDLE, stored.bundle.clone()),
        entry(TLS_CERT, stored.serving.cert_pem.clone()),
        entry(TLS_KEY, stored.serving.key_pem.clone()),
        entry(TLS_NOT_AFTER, stamp(stored.not_after)),
        entry(TLS_NAMES, stored.names.join(",")),
    ]);
    if let Some(since) = stored.pending_since {
        data.extend([entry(PENDING_SINCE, stamp(since))]);
    }
    if !stored.retired.is_empty() {
        data.extend([entry(RETIRED, stored.retired.clone())]);
    }
    data
}

pub fn ca_data(ca: &StoredCa) -> BTreeMap<String, ByteString> {
    BTreeMap::from([
        entry(CA_CERT, ca.cert.clone()),
        entry(CA_KEY, ca.key.clone()),
        entry(CA_NOT_AFTER, stamp(ca.not_after)),
        entry(CA_NAMES, ca.names.join(",")),
    ])
}

/// Whether `<name>` still holds a CA key (written by an earlier version).
pub fn holds_ca_key(secret: &Secret) -> bool {
    secret.data.as_ref().is_some_and(|d| d.contains_key(CA_KEY))
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

fn secret_with(name: &str, data: BTreeMap<String, ByteString>) -> Secret {
    let mut secret = Secret {
        data: Some(data),
        type_: Some("Opaque".into()),
        ..Default::default()
    };
    secret.meta_mut().name = Some(name.into());
    secret
}

/// Reads the CA Secret, creating it (with a CA for `names`) when absent; one of several racing
/// replicas creates it, the others read it. A CA kept by an earlier version inside `legacy`
/// is moved here rather than replaced.
pub async fn load_or_create_ca(
    api: &Api<Secret>,
    name: &str,
    names: &[String],
    lifetimes: Lifetimes,
    legacy: Option<&Secret>,
) -> Result<StoredCa, CertError> {
    let ca_name = ca_secret_name(name);
    for _ in 0..3 {
        if let Some(secret) = api.get_opt(&ca_name).await?
            && let Some(ca) = ca_from_secret(&secret)
        {
            return Ok(ca);
        }
        let ca = match legacy.and_then(ca_from_secret) {
            Some(ca) => ca,
            None => new_ca(names, lifetimes.ca, OffsetDateTime::now_utc())?.1,
        };
        match api
            .create(&PostParams::default(), &secret_with(&ca_name, ca_data(&ca)))
            .await
        {
            Ok(_) => {
                tracing::info!(secret = ca_name, "stored the webhook CA");
                return Ok(ca);
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                // Someone else's, or incomplete (hand-edited): replace only the latter.
                if let Some(existing) = api.get_opt(&ca_name).await?
                    && ca_from_secret(&existing).is_none()
                {
                    let mut fixed = secret_with(&ca_name, ca_data(&ca));
                    fixed.metadata.resource_version = existing.metadata.resource_version.clone();
                    match api.replace(&ca_name, &PostParams::default(), &fixed).await {
                        Ok(_) => return Ok(ca),
                        Err(kube::Error::Api(s)) if s.code == 409 => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(CertError::Unsettled(ca_name))
}

/// Reads the serving Secret, bootstrapping both when it is absent or incomplete. Exactly one of
/// several racing replicas creates each; the others read what it wrote.
pub async fn load_or_create(
    api: &Api<Secret>,
    name: &str,
    names: &[String],
    lifetimes: Lifetimes,
) -> Result<StoredServing, CertError> {
    for _ in 0..3 {
        let existing = api.get_opt(name).await?;
        if let Some(serving) = existing.as_ref().and_then(serving_from_secret) {
            return Ok(serving);
        }
        let ca = load_or_create_ca(api, name, names, lifetimes, existing.as_ref()).await?;
        let now = OffsetDateTime::now_utc();
        let serving = StoredServing {
            serving: leaf_from(&ca, names, lifetimes.cert)?,
            bundle: ca.cert.clone(),
            not_after: now + lifetimes.cert,
            names: names.to_vec(),
            pending_since: None,
            retired: String::new(),
        };
        let mut secret = secret_with(name, serving_data(&serving));
        let written = match &existing {
            // Present but incomplete (hand-edited): replace it, guarded by its version.
            Some(old) => {
                secret.metadata.resource_version = old.metadata.resource_version.clone();
                api.replace(name, &PostParams::default(), &secret).await
            }
            None => api.create(&PostParams::default(), &secret).await,
        };
        match written {
            Ok(_) => {
                tracing::info!(secret = name, "created the webhook serving certificate");
                return Ok(serving);
            }
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
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

    const SYNC: Duration = Duration::from_secs(60);

    fn now() -> OffsetDateTime {
        OffsetDateTime::parse("2026-11-26T00:00:00Z", &Rfc3339).unwrap()
    }

    fn names() -> Vec<String> {
        vec!["reloader.ns.svc".to_string()]
    }

    #[test]
    fn secrets_round_trip_and_the_serving_one_holds_no_ca_key() {
        let stored = generate(&names(), lifetimes(), now()).unwrap();
        let serving = secret_with("s", serving_data(&stored.serving));
        assert_eq!(serving_from_secret(&serving), Some(stored.serving.clone()));
        assert!(!holds_ca_key(&serving));
        assert_eq!(ca_from_secret(&serving), None);
        let ca = secret_with("s-ca", ca_data(&stored.ca));
        assert_eq!(ca_from_secret(&ca), Some(stored.ca.clone()));
        assert_eq!(serving_from_secret(&Secret::default()), None);
        assert!(!format!("{:?}", stored.ca).contains("PRIVATE"));
    }

    #[test]
    fn nothing_is_due_early() {
        let stored = generate(&names(), lifetimes(), now()).unwrap();
        assert_eq!(
            renew(&stored, &names(), lifetimes(), SYNC, now() + time::Duration::days(30)).unwrap(),
            None
        );
    }

    #[test]
    fn the_leaf_is_renewed_from_the_same_ca() {
        let stored = generate(&names(), lifetimes(), now()).unwrap();
        let later = now() + time::Duration::days(61);
        let renewed = renew(&stored, &names(), lifetimes(), SYNC, later)
            .unwrap()
            .expect("due");
        assert_eq!(renewed.ca, stored.ca);
        assert_eq!(renewed.serving.bundle, stored.serving.bundle);
        assert_ne!(renewed.serving.serving, stored.serving.serving);
        assert_eq!(renewed.serving.not_after, later + lifetimes().cert);
        crate::tls::server_config(&renewed.serving.serving).unwrap();
    }

    #[test]
    fn a_new_ca_is_trusted_a_check_before_its_leaf_is_served_and_the_old_one_retires() {
        let stored = generate(&names(), lifetimes(), now()).unwrap();
        let late = now() + time::Duration::days(2500);
        let trusted = renew(&stored, &names(), lifetimes(), SYNC, late)
            .unwrap()
            .expect("CA due");
        assert_ne!(trusted.ca, stored.ca);
        assert_eq!(
            trusted.serving.serving, stored.serving.serving,
            "the old leaf keeps serving"
        );
        assert_eq!(
            pem_blocks(&trusted.serving.bundle),
            vec![trusted.ca.cert.clone(), stored.ca.cert.clone()]
        );
        // Not within the same check period.
        assert_eq!(
            renew(
                &trusted,
                &names(),
                lifetimes(),
                SYNC,
                late + time::Duration::seconds(10)
            )
            .unwrap(),
            None
        );
        let served = renew(
            &trusted,
            &names(),
            lifetimes(),
            SYNC,
            late + time::Duration::seconds(61),
        )
        .unwrap()
        .expect("the new leaf");
        assert_ne!(served.serving.serving, stored.serving.serving);
        assert_eq!(served.serving.pending_since, None);
        // A third of the new CA's life later, the old CA has left the bundle, retired.
        let much_later = late + time::Duration::days(1300);
        let settled = renew(&served, &names(), lifetimes(), SYNC, much_later)
            .unwrap()
            .expect("bundle trimmed");
        assert_eq!(pem_blocks(&settled.serving.bundle), vec![served.ca.cert.clone()]);
        assert_eq!(pem_blocks(&settled.serving.retired), vec![stored.ca.cert.clone()]);
        // And a merge with the live configuration never brings it back.
        let live = format!(
            "{}{}",
            stored.ca.cert, "-----BEGIN CERTIFICATE-----\nOTHER\n-----END CERTIFICATE-----\n"
        );
        let merged = merge_bundle(&settled.serving.bundle, &live, &settled.serving.retired);
        assert_eq!(pem_blocks(&merged).len(), 2);
        assert!(!merged.contains(stored.ca.cert.trim()) && merged.contains("OTHER"));
    }

    #[test]
    fn names_outside_the_constraints_bring_a_new_ca() {
        let stored = generate(&names(), lifetimes(), now()).unwrap();
        let more = vec!["reloader.ns.svc".to_string(), "reloader.other.svc".to_string()];
        let next = renew(&stored, &more, lifetimes(), SYNC, now())
            .unwrap()
            .expect("new CA");
        assert_eq!(next.ca.names, more);
        assert!(next.serving.pending_since.is_some());
    }
}
