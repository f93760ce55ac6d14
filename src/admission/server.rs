//! Running the webhook: load the certificate, serve HTTPS on every replica, follow certificate
//! changes in place, and (leader only) renew certificates and keep the configurations' caBundle.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use time::OffsetDateTime;
use tokio::sync::watch;

use super::certs::{self, CertError, Lifetimes};
use super::register;
use super::{AdmissionContext, router};
use crate::config::{AdmissionEndpoint, AdmissionSettings, CertSource};
use crate::tls::{self, ReloadableCert, ServeLimits, ServingCertificate, TlsError};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Cert(#[from] CertError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("reading {path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("binding {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The names the serving certificate must carry.
pub fn certificate_names(settings: &AdmissionSettings) -> Vec<String> {
    match &settings.endpoint {
        AdmissionEndpoint::Url { host, .. } => vec![host.clone()],
        AdmissionEndpoint::Service { name } => certs::service_names(name, &settings.namespace),
    }
}

fn read_files(cert: &std::path::Path, key: &std::path::Path) -> Result<ServingCertificate, ServeError> {
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).map_err(|source| ServeError::File {
            path: p.display().to_string(),
            source,
        })
    };
    Ok(ServingCertificate {
        cert_pem: read(cert)?,
        key_pem: read(key)?,
    })
}

/// Loads the certificate, binds, then serves until `stop` turns true, and drains
/// ([`tls::serve_until`]); `ready` turns true once a certificate is loaded and the port is bound.
pub async fn run(
    settings: AdmissionSettings,
    context: AdmissionContext,
    client: Client,
    field_manager: String,
    leader: watch::Receiver<bool>,
    ready: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ServeError> {
    let names = certificate_names(&settings);
    let cert = match &settings.certs {
        CertSource::Managed {
            secret,
            cert_lifetime,
            ca_lifetime,
        } => {
            let api: Api<Secret> = Api::namespaced(client.clone(), &settings.namespace);
            let lifetimes = Lifetimes {
                cert: *cert_lifetime,
                ca: *ca_lifetime,
            };
            let stored = certs::load_or_create(&api, secret, &names, lifetimes).await?;
            let cert = ReloadableCert::new(&stored.serving)?;
            tokio::spawn(follow_secret(api.clone(), secret.clone(), cert.clone()));
            let maintainer = Maintainer {
                api,
                client: client.clone(),
                secret: secret.clone(),
                names,
                lifetimes,
                settings: settings.clone(),
                field_manager,
            };
            tokio::spawn(maintainer.run(leader));
            cert
        }
        CertSource::Files { cert, key } => {
            let reloadable = ReloadableCert::new(&read_files(cert, key)?)?;
            tokio::spawn(follow_files(
                cert.clone(),
                key.clone(),
                reloadable.clone(),
                settings.cert_check,
            ));
            reloadable
        }
    };
    // Read once at start: a changed client CA takes a restart.
    let client_ca = match &settings.client_ca {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|source| ServeError::File {
            path: path.display().to_string(),
            source,
        })?),
        None => None,
    };
    let config = tls::server_config_for(cert, client_ca.as_deref())?;
    let listener = tokio::net::TcpListener::bind(settings.addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: settings.addr,
            source,
        })?;
    tracing::info!(
        addr = %settings.addr,
        client_certificates = client_ca.is_some(),
        "serving the admission webhook (/mutate, /validate)"
    );
    ready.send_replace(true);
    let stopped = async move {
        let _ = stop.wait_for(|stop| *stop).await;
    };
    tls::serve_until(listener, config, router(context), ServeLimits::default(), stopped).await;
    tracing::info!("the admission webhook is drained");
    Ok(())
}

/// Every replica: swap in the serving certificate whenever the Secret changes.
async fn follow_secret(api: Api<Secret>, name: String, cert: Arc<ReloadableCert>) {
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let stream = watcher::watcher(api, config).default_backoff();
    futures::pin_mut!(stream);
    let mut current: Option<ServingCertificate> = None;
    while let Some(event) = stream.next().await {
        let secret = match event {
            Ok(Event::Apply(s) | Event::InitApply(s)) => s,
            Ok(_) => continue,
            Err(error) => {
                tracing::warn!(%error, "watching the certificate Secret failed; retrying");
                continue;
            }
        };
        let Some(stored) = certs::serving_from_secret(&secret) else {
            tracing::warn!(
                secret = name,
                "certificate Secret is incomplete; keeping the current certificate"
            );
            continue;
        };
        if current.as_ref() == Some(&stored.serving) {
            continue;
        }
        match cert.replace(&stored.serving) {
            Ok(()) => {
                if current.is_some() {
                    tracing::info!(secret = name, not_after = %stored.not_after, "serving a renewed certificate");
                }
                current = Some(stored.serving);
            }
            Err(error) => tracing::error!(%error, "renewed certificate unusable; keeping the current one"),
        }
    }
}

/// User-provided files (cert-manager): re-read when their content changes.
async fn follow_files(
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    reloadable: Arc<ReloadableCert>,
    every: std::time::Duration,
) {
    let mut last = read_files(&cert, &key).ok();
    loop {
        tokio::time::sleep(every).await;
        match read_files(&cert, &key) {
            // Both files must have changed together into a loadable pair; a half-written pair
            // fails to load and is retried next time.
            Ok(now) if Some(&now) != last.as_ref() => match reloadable.replace(&now) {
                Ok(()) => {
                    tracing::info!(cert = %cert.display(), "serving the new certificate from file");
                    last = Some(now);
                }
                Err(error) => tracing::warn!(%error, "certificate files not loadable yet"),
            },
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "reading certificate files failed"),
        }
    }
}

struct Maintainer {
    api: Api<Secret>,
    client: Client,
    secret: String,
    names: Vec<String>,
    lifetimes: Lifetimes,
    settings: AdmissionSettings,
    field_manager: String,
}

impl Maintainer {
    /// Leader only: renew what is due and keep the configurations trusting what is served.
    async fn run(self, mut leader: watch::Receiver<bool>) {
        loop {
            if leader.wait_for(|l| *l).await.is_err() {
                return;
            }
            let unserved = self.discover_extra_kinds().await;
            if let Err(error) = self.tick().await {
                tracing::warn!(%error, "certificate maintenance failed; retrying");
            }
            // An extra kind's rule joins the configurations soon after it is served.
            let pause = if unserved {
                self.settings.cert_check.min(crate::kube_api::DISCOVERY_MAX_RETRY)
            } else {
                self.settings.cert_check
            };
            tokio::time::sleep(pause).await;
        }
    }

    /// Asks discovery for the extra kinds whose plural is not known yet (the engine asks too;
    /// whichever learns it first), so the configurations' rules can name them. Returns whether
    /// any is still unknown.
    async fn discover_extra_kinds(&self) -> bool {
        let mut unserved = false;
        for extra in self.settings.extra_kinds.iter().filter_map(|k| k.extra()) {
            if extra.plural().is_none()
                && let Err(error) = crate::kube_api::discover(&self.client, extra).await
            {
                tracing::debug!(%error, "extra workload kind not in the webhook's rules yet");
                unserved |= error.retryable();
            }
        }
        unserved
    }

    /// Keeps both configurations trusting `bundle`, merged into the live caBundle (CAs someone
    /// else put there stay; ones we retired do not come back): the install's get only their
    /// caBundle, the reloader's own are re-applied whole, a missing one is created when the
    /// reloader may (`register.rs`).
    async fn publish_bundle(&self, bundle: &str, retired: &str) -> Result<(), kube::Error> {
        let merged = |live: &str| certs::merge_bundle(bundle, live, retired);
        register::apply_configurations(&self.client, &self.field_manager, &self.settings, merged).await
    }

    async fn tick(&self) -> Result<(), CertError> {
        let secret = self.api.get_opt(&self.secret).await?;
        let serving = match secret.as_ref().and_then(certs::serving_from_secret) {
            Some(serving) => serving,
            // Deleted or broken: make a new one and trust it at once (replicas serve it as
            // soon as they see it).
            None => {
                let stored = certs::load_or_create(&self.api, &self.secret, &self.names, self.lifetimes).await?;
                return Ok(self.publish_bundle(&stored.bundle, &stored.retired).await?);
            }
        };
        let ca =
            certs::load_or_create_ca(&self.api, &self.secret, &self.names, self.lifetimes, secret.as_ref()).await?;
        let stored = certs::StoredTls { ca, serving };
        let legacy = secret.as_ref().is_some_and(certs::holds_ca_key);
        let next = match certs::renew(
            &stored,
            &self.names,
            self.lifetimes,
            self.settings.cert_check,
            OffsetDateTime::now_utc(),
        )? {
            Some(next) => next,
            None if legacy => stored.clone(),
            None => {
                return Ok(self
                    .publish_bundle(&stored.serving.bundle, &stored.serving.retired)
                    .await?);
            }
        };
        // Trust first: the API server must trust every CA whose leaf anyone may serve.
        let trusted = union(&stored.serving.bundle, &next.serving.bundle);
        self.publish_bundle(&trusted, &next.serving.retired).await?;
        if next.ca != stored.ca {
            let ca_name = certs::ca_secret_name(&self.secret);
            let mut ca_secret = self.api.get(&ca_name).await?;
            ca_secret.data = Some(certs::ca_data(&next.ca));
            self.api.replace(&ca_name, &PostParams::default(), &ca_secret).await?;
            tracing::info!(not_after = %next.ca.not_after, "made a new webhook CA; its certificate is served after the next check");
        }
        let Some(mut updated) = secret else {
            return Ok(());
        };
        // The whole data: an earlier version's CA key leaves this Secret here.
        updated.data = Some(certs::serving_data(&next.serving));
        match self.api.replace(&self.secret, &PostParams::default(), &updated).await {
            Ok(_) => {
                if next.serving.serving != stored.serving.serving {
                    tracing::info!(not_after = %next.serving.not_after, "renewed the webhook certificate");
                }
                if legacy {
                    tracing::info!("moved the webhook CA key to its own Secret");
                }
                self.publish_bundle(&next.serving.bundle, &next.serving.retired).await?;
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                tracing::debug!("certificate Secret changed meanwhile; next check decides again");
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }
}

/// Both bundles' CAs, without repeats.
fn union(a: &str, b: &str) -> String {
    let mut blocks = certs::pem_blocks(b);
    for block in certs::pem_blocks(a) {
        if !blocks.iter().any(|x| x.trim() == block.trim()) {
            blocks.push(block);
        }
    }
    blocks.concat()
}
