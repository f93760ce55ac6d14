//! The cluster tests' fixture: the shared one (reloader-dev-support's `cluster`: clients, test
//! namespaces, waits, the reloader as a process, private control planes), and what of it needs
//! the reloader library: the stamp an install records, TLS for webhooks the tests serve.

use std::time::Duration;

use kube::{Api, Client};
use reloader::tls::{CertificateAuthority, ServingCertificate};
pub use reloader_dev_support::cluster::*;

/// What the reloader records for `source` in `namespace` with content `hash`: keyed with the key
/// of the install whose key Secret lives in `home`, plain when there is none (no namespace for
/// a key, or the env-vars strategy).
pub async fn stamp_value(
    client: &Client,
    home: &str,
    namespace: &str,
    source: &reloader::core::source::SourceRef,
    hash: &reloader::core::hash::ContentHash,
) -> String {
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), home);
    match secrets.get_opt(reloader::stamp_key_secret::SECRET_NAME).await.unwrap() {
        Some(secret) => reloader::stamp_key_secret::keys_from_secret(&secret)
            .unwrap()
            .seal(namespace, source, hash)
            .map_or_else(|| hash.to_string(), |k| k.to_string()),
        None => hash.to_string(),
    }
}

/// A CA and a serving certificate for `127.0.0.1`, for webhooks registered by URL.
pub struct WebhookTls {
    pub ca_pem: String,
    pub serving: ServingCertificate,
}

pub fn webhook_tls() -> WebhookTls {
    let lifetime = Duration::from_secs(3600);
    let ca = CertificateAuthority::generate("reloader-test-ca", lifetime, &[]).unwrap();
    let serving = ca.issue_serving(&["127.0.0.1", "localhost"], lifetime).unwrap();
    WebhookTls {
        ca_pem: ca.cert_pem,
        serving,
    }
}
