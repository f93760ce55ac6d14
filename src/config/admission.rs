//! The admission webhook's settings, from [`AdmissionCli`].

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::flags::FailurePolicy;
use super::selectors::{SelectorRequirement, selector_requirements};
use super::{AdmissionCli, ConfigError, WatchScope};
use crate::core::workload::WorkloadKind;

/// Where the API server reaches the webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdmissionEndpoint {
    /// `clientConfig.url` (local runs); the certificate is for the URL's host.
    Url { url: String, host: String },
    /// `clientConfig.service` in `namespace`; the certificate is for the service's DNS names.
    Service { name: String },
}

/// Where the serving certificate comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertSource {
    /// A CA and leaf kept in a Secret, created and rotated by the reloader.
    Managed {
        secret: String,
        cert_lifetime: Duration,
        ca_lifetime: Duration,
    },
    /// Files provided by the user (cert-manager), re-read when they change.
    Files { cert: PathBuf, key: PathBuf },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdmissionSettings {
    pub addr: SocketAddr,
    pub endpoint: AdmissionEndpoint,
    pub namespace: String,
    pub configuration: String,
    pub certs: CertSource,
    pub cert_check: Duration,
    /// `--admission-self-user`; when unset the binary asks the API server who it is.
    pub self_user: Option<String>,
    /// `--namespaces` (or KUBERNETES_NAMESPACE): the webhook covers only these.
    pub watched: Option<BTreeSet<String>>,
    /// `--namespaces-to-ignore` (cluster-wide mode only, as for the engine): never covered.
    pub ignored: BTreeSet<String>,
    /// `--namespace-selector` (cluster-wide mode only), as the configurations'
    /// `namespaceSelector` can hold it.
    pub namespace_selector: Vec<SelectorRequirement>,
    /// `--admission-failure-policy`: the validating webhook's failurePolicy at creation.
    pub failure_policy: FailurePolicy,
    /// `--admission-owner-cluster-role`: owner of the configurations; `None` when empty.
    pub owner_cluster_role: Option<String>,
    /// `--admission-client-ca`: callers must present a certificate chaining to these CAs.
    pub client_ca: Option<PathBuf>,
    /// `--extra-workload-kinds`: the configurations' rules name them too (those whose plural
    /// discovery found).
    pub extra_kinds: Vec<WorkloadKind>,
}

/// The engine's namespace filters, which the webhook honours too.
pub(super) struct NamespaceFilters<'a> {
    pub scope: &'a WatchScope,
    pub ignored: &'a BTreeSet<String>,
    pub selector: Option<&'a str>,
    /// Not a filter: the extra kinds, which the webhook covers as the engine rolls them.
    pub extra_kinds: &'a [WorkloadKind],
}

/// The webhook's settings from its flags, `None` when `--admission-addr` is unset.
pub(super) fn admission_settings(
    cli: &AdmissionCli,
    pod_namespace: Option<&str>,
    reloader_namespace: Option<&str>,
    filters: NamespaceFilters<'_>,
) -> Result<Option<AdmissionSettings>, ConfigError> {
    let Some(addr) = cli.admission_addr else {
        return Ok(None);
    };
    let namespace = cli
        .admission_namespace
        .clone()
        .or(pod_namespace.map(str::to_string))
        .or(reloader_namespace.map(str::to_string))
        .unwrap_or_else(|| "default".into());
    // Only URLs go through it; shown redacted, as every URL is.
    let bad = |flag: &'static str, value: &str, reason: &str| ConfigError::Value {
        flag,
        value: crate::core::redact::url(value),
        reason: reason.into(),
    };
    let endpoint = match &cli.admission_url {
        Some(url) => {
            let rest = url
                .strip_prefix("https://")
                .ok_or_else(|| bad("--admission-url", url, "must start with https://"))?;
            let authority = rest.split('/').next().unwrap_or_default();
            let host = match authority.rsplit_once(':') {
                Some((h, port)) if port.parse::<u16>().is_ok() => h,
                _ => authority,
            };
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() {
                return Err(bad("--admission-url", url, "has no host"));
            }
            AdmissionEndpoint::Url {
                url: url.trim_end_matches('/').to_string(),
                host: host.to_string(),
            }
        }
        None => AdmissionEndpoint::Service {
            name: cli.admission_service.clone(),
        },
    };
    let certs = match (&cli.tls_cert_file, &cli.tls_key_file) {
        (Some(cert), Some(key)) => CertSource::Files {
            cert: cert.clone(),
            key: key.clone(),
        },
        _ => CertSource::Managed {
            secret: cli.admission_secret.clone(),
            cert_lifetime: cli.admission_cert_lifetime,
            ca_lifetime: cli.admission_ca_lifetime,
        },
    };
    let self_user = cli.admission_self_user.clone();
    Ok(Some(AdmissionSettings {
        addr,
        endpoint,
        namespace,
        configuration: cli.admission_configuration.clone(),
        certs,
        cert_check: cli.admission_cert_check,
        self_user,
        watched: match filters.scope {
            WatchScope::All => None,
            WatchScope::Namespaces(list) => Some(list.clone()),
        },
        ignored: filters.ignored.clone(),
        namespace_selector: filters.selector.map(selector_requirements).unwrap_or_default(),
        failure_policy: cli.admission_failure_policy,
        owner_cluster_role: Some(cli.admission_owner_cluster_role.trim().to_string()).filter(|n| !n.is_empty()),
        client_ca: cli.admission_client_ca.clone(),
        extra_kinds: filters.extra_kinds.to_vec(),
    }))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{error, settings};
    use super::*;

    #[test]
    fn admission_settings_from_flags() {
        let s = settings(&[
            "--admission-addr=127.0.0.1:9443",
            "--admission-url=https://127.0.0.1:9443/",
            "--admission-cert-lifetime=10s",
        ]);
        let a = s.admission.expect("enabled");
        assert_eq!(a.addr.to_string(), "127.0.0.1:9443");
        assert_eq!(
            a.endpoint,
            AdmissionEndpoint::Url {
                url: "https://127.0.0.1:9443".into(),
                host: "127.0.0.1".into()
            }
        );
        assert_eq!(a.namespace, "default");
        assert_eq!(a.self_user, None, "asked of the API server at start");
        assert_eq!(a.client_ca, None, "callers are not authenticated by default");
        assert!(
            matches!(a.certs, CertSource::Managed { cert_lifetime, .. } if cert_lifetime == Duration::from_secs(10))
        );
        let e = error(&["--admission-addr=127.0.0.1:9443", "--admission-url=http://x"]);
        assert!(e.to_string().starts_with("--admission-url"), "{e}");
        let e = error(&[
            "--admission-addr=127.0.0.1:9443",
            "--admission-url=http://me:pa55@x/?k=t0ken",
        ]);
        assert!(
            !e.to_string().contains("pa55") && !e.to_string().contains("t0ken"),
            "{e}"
        );
        let files = settings(&[
            "--admission-addr=:9443",
            "--tls-cert-file=/c",
            "--tls-key-file=/k",
            "--admission-client-ca=/ca.pem",
        ]);
        let files = files.admission.unwrap();
        assert!(matches!(files.certs, CertSource::Files { .. }));
        assert_eq!(files.client_ca, Some(PathBuf::from("/ca.pem")));
    }

    #[test]
    fn failure_policy_owner_and_namespace_filters() {
        let a = settings(&["--admission-addr=:9443"]).admission.unwrap();
        assert_eq!(a.failure_policy, FailurePolicy::Ignore, "fails open by default");
        assert_eq!(
            a.owner_cluster_role.as_deref(),
            Some("reloader"),
            "the manifests' ClusterRole"
        );
        assert!(a.ignored.is_empty() && a.namespace_selector.is_empty() && a.watched.is_none());
        let a = settings(&[
            "--admission-addr=:9443",
            "--admission-failure-policy=fail",
            "--admission-owner-cluster-role=",
            "--namespaces-to-ignore=legacy",
            "--namespace-selector=team",
        ])
        .admission
        .unwrap();
        assert_eq!(a.failure_policy, FailurePolicy::Fail);
        assert_eq!(a.owner_cluster_role, None);
        assert_eq!(a.ignored, BTreeSet::from(["legacy".to_string()]));
        assert_eq!(a.namespace_selector.len(), 1);
        use clap::Parser;
        let e = super::super::Cli::try_parse_from(["reloader", "--admission-failure-policy=Open"]).unwrap_err();
        assert!(e.to_string().contains("must be Fail or Ignore"), "{e}");
    }
}
