//! TLS material and an HTTPS server for axum routers: a CA and serving certificates made with
//! rcgen (no cert-manager, no openssl), PEM loading through rustls-pki-types, and an accept loop
//! speaking HTTP/1.1 and h2 over rustls; the same loop, with the same bounds, serves plain HTTP
//! (the health and metrics port, [`serve_plain_with`]).

use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DnType, ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, NameConstraints, SanType,
};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("generating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("reading PEM: {0}")]
    Pem(#[from] rustls_pki_types::pem::Error),
    #[error("PEM input holds no certificate")]
    NoCertificate,
    #[error("building the TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    #[error("building the client certificate verifier: {0}")]
    ClientVerifier(#[from] rustls::server::VerifierBuilderError),
    #[error("invalid subject alternative name {0:?}")]
    BadName(String),
}

/// A certificate authority able to issue serving certificates.
pub struct CertificateAuthority {
    pub cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A serving certificate and its private key, both PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct ServingCertificate {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Never prints the key.
impl std::fmt::Debug for ServingCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServingCertificate")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

fn validity(params: &mut CertificateParams, lifetime: Duration) {
    let now = OffsetDateTime::now_utc();
    // Tolerate small clock skew between us and the API server.
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + lifetime;
}

/// A CA that can sign only leaves (path length 0) and, when `names` are given, only for those
/// names: DNS names and their subdomains, exactly those IP addresses, and no IP address at all
/// when none is named. A stolen CA key can then impersonate nothing but the webhook.
fn ca_params(common_name: &str, names: &[String]) -> Result<CertificateParams, TlsError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    if !names.is_empty() {
        let mut permitted = Vec::new();
        let mut ips = false;
        for name in names {
            match name.parse::<IpAddr>() {
                Ok(ip) => {
                    ips = true;
                    let prefix = if ip.is_ipv4() { 32 } else { 128 };
                    permitted.push(GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(ip, prefix)));
                }
                Err(_) => permitted.push(GeneralSubtree::DnsName(name.clone())),
            }
        }
        let excluded = if ips {
            Vec::new()
        } else {
            vec![
                GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(IpAddr::from([0u8; 4]), 0)),
                GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(IpAddr::from([0u16; 8]), 0)),
            ]
        };
        params.name_constraints = Some(NameConstraints {
            permitted_subtrees: permitted,
            excluded_subtrees: excluded,
        });
    }
    Ok(params)
}

impl CertificateAuthority {
    /// A new self-signed ECDSA P-256 CA, constrained to sign leaves for `names` only (none:
    /// unconstrained names).
    pub fn generate(common_name: &str, lifetime: Duration, names: &[String]) -> Result<Self, TlsError> {
        let key = KeyPair::generate()?;
        let mut params = ca_params(common_name, names)?;
        validity(&mut params, lifetime);
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// An existing CA, from its certificate and key, to issue more certificates. Leaves chain to
    /// `cert_pem` because the subject (`common_name`) and the key are the same.
    pub fn from_pem(cert_pem: &str, key_pem: &str, common_name: &str) -> Result<Self, TlsError> {
        let key = KeyPair::from_pem(key_pem)?;
        Ok(Self {
            cert_pem: cert_pem.to_string(),
            issuer: Issuer::new(ca_params(common_name, &[])?, key),
        })
    }

    /// The CA's private key, PEM.
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// A serving certificate for DNS names and IP addresses (`127.0.0.1`, `svc.ns.svc`).
    pub fn issue_serving(&self, names: &[&str], lifetime: Duration) -> Result<ServingCertificate, TlsError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        for name in names {
            let san = match name.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(
                    name.to_string()
                        .try_into()
                        .map_err(|_| TlsError::BadName(name.to_string()))?,
                ),
            };
            params.subject_alt_names.push(san);
        }
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or("reloader"));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        validity(&mut params, lifetime);
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(ServingCertificate {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

impl CertificateAuthority {
    /// A client certificate (for `--admission-client-ca` setups and tests): the API server
    /// presents one like it when its admission configuration names it.
    pub fn issue_client(&self, common_name: &str, lifetime: Duration) -> Result<ServingCertificate, TlsError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        validity(&mut params, lifetime);
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(ServingCertificate {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parses a PEM chain and key into what rustls serves.
fn certified_key(cert: &ServingCertificate) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes())?;
    Ok(Arc::new(CertifiedKey::from_der(chain, key, &provider())?))
}

/// The serving certificate, swappable while serving: new handshakes get the new certificate,
/// connections already established keep theirs, nothing restarts.
#[derive(Debug)]
pub struct ReloadableCert {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadableCert {
    pub fn new(cert: &ServingCertificate) -> Result<Arc<Self>, TlsError> {
        Ok(Arc::new(Self {
            current: RwLock::new(certified_key(cert)?),
        }))
    }

    /// Replaces the certificate; a bad one is rejected and the old one keeps serving.
    pub fn replace(&self, cert: &ServingCertificate) -> Result<(), TlsError> {
        let key = certified_key(cert)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = key;
        Ok(())
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

/// A TLS 1.2+ server configuration offering h2 and HTTP/1.1, serving `cert`.
pub fn server_config_with(cert: Arc<ReloadableCert>) -> Result<Arc<ServerConfig>, TlsError> {
    server_config_for(cert, None)
}

/// As [`server_config_with`]; with `client_ca` (PEM, one or more CA certificates), every client
/// must present a certificate chaining to one of them, or the handshake fails.
pub fn server_config_for(cert: Arc<ReloadableCert>, client_ca: Option<&str>) -> Result<Arc<ServerConfig>, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(pem) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                roots.add(cert?)?;
            }
            if roots.is_empty() {
                return Err(TlsError::NoCertificate);
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider()).build()?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A server configuration for a fixed certificate.
pub fn server_config(cert: &ServingCertificate) -> Result<Arc<ServerConfig>, TlsError> {
    server_config_with(ReloadableCert::new(cert)?)
}

/// What connections may cost the server; [`Default`] is what the binary uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeLimits {
    /// Open connections at most (handshaking or not); one more is closed at once. The API
    /// servers hold a few each (HTTP/2 multiplexes).
    pub max_connections: usize,
    /// A TLS handshake must finish within this.
    pub handshake_timeout: Duration,
    /// HTTP/1: a request's headers must arrive within this.
    pub header_read_timeout: Duration,
    /// A connection with no request in progress for this long is closed gracefully (HTTP/2
    /// GOAWAY, HTTP/1 after the current exchange); so is one that never sends a request.
    pub idle_timeout: Duration,
    /// After a graceful close starts, how long the connection may take to finish.
    pub close_grace: Duration,
    /// HTTP/2 streams (requests) at once per connection; clients open more connections.
    pub h2_max_concurrent_streams: u32,
    /// HTTP/2 header block size at most, per request.
    pub h2_max_header_list_size: u32,
    /// HTTP/2 flow-control windows: how much request body a client may send ahead of the
    /// server reading it, per stream and per connection (hyper's default is 1 MiB each). A
    /// request refused at once (413, 503) costs at most this much transfer; what a connection
    /// can make the server buffer is bounded by the connection window.
    pub h2_stream_window: u32,
    pub h2_connection_window: u32,
    /// HTTP/1 request head size at most (the read buffer).
    pub h1_max_buf_size: usize,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            max_connections: 1536,
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            close_grace: Duration::from_secs(10),
            h2_max_concurrent_streams: 32,
            h2_max_header_list_size: 16 * 1024,
            h2_stream_window: 256 * 1024,
            h2_connection_window: 512 * 1024,
            h1_max_buf_size: 64 * 1024,
        }
    }
}

/// Serves `router` over TLS on `listener` with the default [`ServeLimits`] until the task is
/// dropped.
pub async fn serve(listener: TcpListener, config: Arc<ServerConfig>, router: axum::Router) {
    serve_with(listener, config, router, ServeLimits::default()).await
}

/// Serves `router` over TLS on `listener` until the task is dropped. A failed handshake or a
/// broken connection only ends that connection; failing accepts (out of file descriptors)
/// back off instead of spinning.
pub async fn serve_with(listener: TcpListener, config: Arc<ServerConfig>, router: axum::Router, limits: ServeLimits) {
    serve_until(listener, config, router, limits, std::future::pending()).await
}

/// [`serve_with`] until `stop` resolves, then drains: no new connection is accepted (the
/// listener is closed), every open one is closed gracefully (HTTP/2 GOAWAY: the client sends
/// its next request elsewhere; HTTP/1 after the exchange in progress), and the requests in
/// flight are answered. Returns once every connection has ended, or after
/// [`ServeLimits::close_grace`] with the stragglers dropped.
pub async fn serve_until(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    router: axum::Router,
    limits: ServeLimits,
    stop: impl std::future::Future<Output = ()>,
) {
    accept_loop(listener, Some(TlsAcceptor::from(config)), router, limits, stop).await
}

/// As [`serve_with`], over plain TCP (HTTP/1.1, and h2 with prior knowledge): the same
/// connection cap, header-read and idle timeouts and HTTP/2 bounds, without the handshake.
pub async fn serve_plain_with(listener: TcpListener, router: axum::Router, limits: ServeLimits) {
    accept_loop(listener, None, router, limits, std::future::pending()).await
}

/// [`serve_until`]'s loop; `acceptor` is the TLS handshake, `None` for plain HTTP.
async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    router: axum::Router,
    limits: ServeLimits,
    stop: impl std::future::Future<Output = ()>,
) {
    let max_connections = limits.max_connections.max(1);
    let connections = Arc::new(Semaphore::new(max_connections));
    let (drain, draining) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let limits = Arc::new(limits);
    let mut backoff = AcceptBackoff::default();
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut stop => break,
            accepted = listener.accept() => accepted,
            // Ended connections are reaped as they end, so the set holds only open ones.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
        };
        let (tcp, peer) = match accepted {
            Ok(conn) => {
                backoff.reset();
                conn
            }
            Err(error) => {
                if let Some(pause) = backoff.failed(&error) {
                    if backoff.streak() == 1 {
                        tracing::warn!(%error, "accepting connections failed; backing off");
                    } else {
                        tracing::debug!(%error, ?pause, "accepting connections still failing");
                    }
                    tokio::time::sleep(pause).await;
                }
                continue;
            }
        };
        // Without it, a response written in two segments (h2 headers, then data) waits for the
        // client's delayed ACK: up to 40 ms on Linux.
        let _ = tcp.set_nodelay(true);
        let Ok(slot) = connections.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "connection limit reached; closing the new connection");
            drop(tcp);
            continue;
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        let limits = limits.clone();
        let draining = draining.clone();
        tasks.spawn(async move {
            let _slot = slot;
            serve_connection(tcp, peer, acceptor, router, &limits, draining).await;
        });
    }
    drop(listener);
    let open = tasks.len();
    tracing::info!(
        connections = open,
        "draining: no new connections; answering the requests in flight"
    );
    drain.send_replace(true);
    // Each connection closes within its close grace once told; a little more for the last writes.
    let all_closed = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(limits.close_grace + Duration::from_millis(500), all_closed)
        .await
        .is_err()
    {
        tracing::warn!(
            left = tasks.len(),
            "connections still open at the end of the drain; closing them"
        );
        tasks.abort_all();
    }
}

/// How long to pause after a failed accept. Errors of one connection (reset or aborted before
/// it was accepted) need no pause; anything else (EMFILE, ENFILE, ENOBUFS, ENOMEM) would fail
/// again at once, so the pause doubles from 10 ms up to 1 s until an accept succeeds.
#[derive(Debug, Default)]
struct AcceptBackoff {
    failures: u32,
}

impl AcceptBackoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);

    fn reset(&mut self) {
        self.failures = 0;
    }

    fn streak(&self) -> u32 {
        self.failures
    }

    fn failed(&mut self, error: &std::io::Error) -> Option<Duration> {
        use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, Interrupted};
        if matches!(error.kind(), ConnectionAborted | ConnectionReset | Interrupted) {
            return None;
        }
        self.failures = self.failures.saturating_add(1);
        let pause = Self::FIRST.saturating_mul(1 << (self.failures - 1).min(16));
        Some(pause.min(Self::MAX))
    }
}

/// Requests in progress on one connection, and when the last one ended.
struct Activity {
    state: std::sync::Mutex<(usize, Instant)>,
}

/// Counts one request in progress until dropped.
struct InProgress(Arc<Activity>);

impl Drop for InProgress {
    fn drop(&mut self) {
        let mut state = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 = state.0.saturating_sub(1);
        state.1 = Instant::now();
    }
}

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            state: std::sync::Mutex::new((0, Instant::now())),
        })
    }

    fn start(self: &Arc<Self>) -> InProgress {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).0 += 1;
        InProgress(self.clone())
    }

    /// Resolves once no request has been in progress for `timeout`.
    async fn idle(&self, timeout: Duration) {
        loop {
            let wait = {
                let (in_progress, since) = *self.state.lock().unwrap_or_else(|e| e.into_inner());
                match (in_progress, since.elapsed()) {
                    (0, idle) if idle >= timeout => return,
                    (0, idle) => timeout - idle,
                    _ => timeout,
                }
            };
            tokio::time::sleep(wait).await;
        }
    }
}

async fn serve_connection(
    tcp: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    acceptor: Option<TlsAcceptor>,
    router: axum::Router,
    limits: &ServeLimits,
    draining: tokio::sync::watch::Receiver<bool>,
) {
    let Some(acceptor) = acceptor else {
        return serve_http(tcp, peer, router, limits, draining).await;
    };
    let tls = match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    serve_http(tls, peer, router, limits, draining).await
}

/// HTTP/1.1 or h2 on one connection, after its handshake if any, within `limits`.
async fn serve_http<I>(
    io: I,
    peer: std::net::SocketAddr,
    router: axum::Router,
    limits: &ServeLimits,
    mut draining: tokio::sync::watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new();
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            let in_progress = activity.start();
            let call = router.clone().oneshot(request.map(axum::body::Body::new));
            async move {
                let response = call.await;
                drop(in_progress);
                response
            }
        })
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // A client that never finishes its headers must not hold a connection forever.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.h1_max_buf_size.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.h2_max_concurrent_streams)
        .max_header_list_size(limits.h2_max_header_list_size)
        .initial_stream_window_size(limits.h2_stream_window)
        .initial_connection_window_size(limits.h2_connection_window);
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let ended = tokio::select! {
        ended = connection.as_mut() => ended,
        reason = async {
            tokio::select! {
                () = activity.idle(limits.idle_timeout) => "idle",
                _ = draining.wait_for(|draining| *draining) => "draining",
            }
        } => {
            tracing::debug!(%peer, reason, "closing the connection gracefully");
            connection.as_mut().graceful_shutdown();
            match tokio::time::timeout(limits.close_grace, connection.as_mut()).await {
                Ok(ended) => ended,
                Err(_) => Ok(()),
            }
        }
    };
    if let Err(error) = ended {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_issues_a_loadable_serving_certificate() {
        let ca = CertificateAuthority::generate("test-ca", Duration::from_secs(3600), &[]).unwrap();
        assert!(ca.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let serving = ca
            .issue_serving(&["127.0.0.1", "reloader.ns.svc"], Duration::from_secs(3600))
            .unwrap();
        let config = server_config(&serving).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
    }

    #[test]
    fn a_bad_replacement_keeps_the_old_certificate() {
        let ca = CertificateAuthority::generate("test-ca", Duration::from_secs(60), &[]).unwrap();
        let good = ca.issue_serving(&["127.0.0.1"], Duration::from_secs(60)).unwrap();
        let cert = ReloadableCert::new(&good).unwrap();
        let before = cert.current.read().unwrap().cert.clone();
        let bad = ServingCertificate {
            cert_pem: "nope".into(),
            key_pem: "nope".into(),
        };
        assert!(cert.replace(&bad).is_err());
        assert_eq!(cert.current.read().unwrap().cert, before);
        let next = ca.issue_serving(&["127.0.0.1"], Duration::from_secs(60)).unwrap();
        cert.replace(&next).unwrap();
        assert_ne!(cert.current.read().unwrap().cert, before);
    }

    /// Verifies `cert` for `name` the way a TLS client does, trusting only `ca`.
    fn verify(ca: &CertificateAuthority, cert: &ServingCertificate, name: &str) -> Result<(), rustls::Error> {
        use rustls::client::danger::ServerCertVerifier;
        let mut roots = rustls::RootCertStore::empty();
        for der in CertificateDer::pem_slice_iter(ca.cert_pem.as_bytes()) {
            roots.add(der.unwrap()).unwrap();
        }
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .unwrap();
        let leaf = CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        let name = rustls_pki_types::ServerName::try_from(name.to_string()).unwrap();
        verifier
            .verify_server_cert(&leaf, &[], &name, &[], rustls_pki_types::UnixTime::now())
            .map(|_| ())
    }

    #[test]
    fn a_constrained_ca_signs_only_for_its_names() {
        let names = vec!["reloader.ns.svc".to_string(), "127.0.0.1".to_string()];
        let ca = CertificateAuthority::generate("test-ca", Duration::from_secs(3600), &names).unwrap();
        let good = ca
            .issue_serving(&["reloader.ns.svc", "127.0.0.1"], Duration::from_secs(3600))
            .unwrap();
        verify(&ca, &good, "reloader.ns.svc").unwrap();
        verify(&ca, &good, "127.0.0.1").unwrap();
        // Its key signs a certificate for another name, but no client accepts it.
        let evil = ca
            .issue_serving(&["bank.example.com"], Duration::from_secs(3600))
            .unwrap();
        assert!(verify(&ca, &evil, "bank.example.com").is_err());
        let other_ip = ca.issue_serving(&["10.0.0.1"], Duration::from_secs(3600)).unwrap();
        assert!(verify(&ca, &other_ip, "10.0.0.1").is_err());
        // A DNS-only CA permits no IP address at all.
        let dns_only = CertificateAuthority::generate("test-ca", Duration::from_secs(3600), &names[..1]).unwrap();
        let ip = dns_only
            .issue_serving(&["127.0.0.1"], Duration::from_secs(3600))
            .unwrap();
        assert!(verify(&dns_only, &ip, "127.0.0.1").is_err());
    }

    #[test]
    fn garbage_pem_is_an_error_not_a_panic() {
        let bad = ServingCertificate {
            cert_pem: "not a certificate".into(),
            key_pem: "not a key".into(),
        };
        assert!(matches!(server_config(&bad), Err(TlsError::NoCertificate)));
        let ca = CertificateAuthority::generate("test-ca", Duration::from_secs(60), &[]).unwrap();
        let no_key = ServingCertificate {
            cert_pem: ca.cert_pem.clone(),
            key_pem: String::new(),
        };
        assert!(server_config(&no_key).is_err());
    }

    #[test]
    fn failing_accepts_back_off_up_to_a_second() {
        let mut backoff = AcceptBackoff::default();
        let emfile = std::io::Error::from_raw_os_error(24);
        let pauses: Vec<Duration> = (0..10).map(|_| backoff.failed(&emfile).unwrap()).collect();
        assert_eq!(pauses[0], Duration::from_millis(10));
        assert_eq!(pauses[1], Duration::from_millis(20));
        assert!(pauses.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(pauses[9], Duration::from_secs(1));
        assert_eq!(backoff.streak(), 10);
        // One connection's trouble is not the listener's.
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionAborted);
        assert_eq!(backoff.failed(&reset), None);
        backoff.reset();
        assert_eq!(backoff.failed(&emfile), Some(Duration::from_millis(10)));
        for _ in 0..100 {
            assert!(backoff.failed(&emfile).unwrap() <= Duration::from_secs(1));
        }
    }

    #[test]
    fn client_ca_configurations() {
        let ca = CertificateAuthority::generate("clients", Duration::from_secs(60), &[]).unwrap();
        let serving = ca.issue_serving(&["127.0.0.1"], Duration::from_secs(60)).unwrap();
        let cert = ReloadableCert::new(&serving).unwrap();
        assert!(server_config_for(cert.clone(), Some(&ca.cert_pem)).is_ok());
        assert!(matches!(
            server_config_for(cert.clone(), Some("no PEM here")),
            Err(TlsError::NoCertificate)
        ));
        assert!(ca.issue_client("kube-apiserver", Duration::from_secs(60)).is_ok());
    }
}
