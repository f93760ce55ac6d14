//! The admission webhook against an empty TLS handler, over HTTPS keep-alive on loopback
//! (issue #10): `/mutate` of a realistic ~5.5 KB Deployment review, at a fixed 1,000 req/s
//! (open loop, latency from each request's intended send time, so a stall is not hidden by the
//! generator waiting for it) and at saturation (closed loop, a fixed number in flight), over
//! HTTP/2 and HTTP/1.1.
//!
//! - **ours**: the release binary, its webhook on 127.0.0.1 with a certificate from files,
//!   scoped to one namespace of the control plane (`RELOADER_TEST_KUBECONFIG`, as
//!   `tools/with-cluster.sh` gives it; else `KUBECONFIG`) holding a few hundred ConfigMaps and
//!   Secrets; the review's Deployment uses several of them with `reloader.stakater.com/auto`,
//!   so every review is stamped (checked before measuring).
//! - **empty TLS handler**: this binary re-run as `--serve-empty`: rustls + hyper (h2 and
//!   HTTP/1.1 by ALPN), the same TLS configuration, reads the body and answers a fixed allowed
//!   review with a patch of about our answer's size; no parsing.
//!
//! Contenders alternate (empty, ours, empty, ours…) and rows are medians over the repetitions.
//! The machine has 2 cores shared by the server, this generator and whatever else runs: quote
//! ratios, not absolute numbers. Writes `target/bench/webhook.json`; exits non-zero only when a
//! measurement could not be taken.
//!
//! Environment: `WEBHOOK_BENCH_REPS` (default 3), `WEBHOOK_BENCH_SECONDS` (measured seconds
//! per run at 1,000 req/s, default 10; saturation runs half as long), `BENCH_RELOADER`
//! (the build of the binary to measure: `make bench` sets the release build; default, cargo's
//! own build for this bench).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use reloader::tls::{CertificateAuthority, ServingCertificate};
use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;

use reloader_dev_support::review;

const NAMESPACE: &str = "webhook-bench";
/// ConfigMaps and Secrets each in the namespace.
const INVENTORY: usize = 150;
const RATE: f64 = 1000.0;
const WARM_UP: Duration = Duration::from_secs(2);
/// Keep-alive connections at the fixed rate.
const H1_CONNECTIONS: usize = 8;
const H2_CONNECTIONS: usize = 2;
/// Requests in flight at saturation (h1: one connection each; h2: over 4 connections).
const IN_FLIGHT: usize = 32;
const H2_SATURATION_CONNECTIONS: usize = 4;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--serve-empty") {
        if let Err(error) = serve_empty(&args[2..]) {
            eprintln!("empty handler: {error:#}");
            std::process::exit(1);
        }
        return;
    }
    // `cargo bench` passes `--bench`; nothing else is read.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run()) {
        Ok(()) => {}
        Err(error) => {
            eprintln!("webhook bench: measurement not taken: {error:#}");
            std::process::exit(1);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The empty TLS handler (a separate process).

/// `--serve-empty <addr> <cert.pem> <key.pem> <response.json>`
fn serve_empty(args: &[String]) -> anyhow::Result<()> {
    let [addr, cert, key, response] = args else {
        bail!("usage: --serve-empty <addr> <cert.pem> <key.pem> <response.json>");
    };
    let addr: SocketAddr = addr.parse()?;
    let cert = ServingCertificate {
        cert_pem: std::fs::read_to_string(cert)?,
        key_pem: std::fs::read_to_string(key)?,
    };
    let answer = Bytes::from(std::fs::read(response)?);
    let config = reloader::tls::server_config(&cert)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(addr).await?;
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        loop {
            let (tcp, _) = listener.accept().await?;
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let answer = answer.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let answer = answer.clone();
                    async move {
                        let _ = request.into_body().collect().await;
                        hyper::Response::builder()
                            .header("content-type", "application/json")
                            .body(Full::new(answer))
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Setup.

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// Children are killed when the bench ends, however it ends.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn kubeconfig() -> anyhow::Result<PathBuf> {
    for var in ["RELOADER_TEST_KUBECONFIG", "KUBECONFIG"] {
        if let Some(path) = std::env::var_os(var).filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(path));
        }
    }
    bail!("no control plane: set RELOADER_TEST_KUBECONFIG (tools/with-cluster.sh does) or KUBECONFIG")
}

async fn kube_client(path: &Path) -> anyhow::Result<Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    Ok(Client::try_from(config)?)
}

fn meta(name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(NAMESPACE.into()),
        labels: Some(BTreeMap::from([("app".to_string(), "shop".to_string())])),
        ..Default::default()
    }
}

/// The namespace with `INVENTORY` ConfigMaps and Secrets of a few hundred bytes each; what
/// exists already is kept.
async fn inventory(client: &Client) -> anyhow::Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if namespaces.get_opt(NAMESPACE).await?.is_none() {
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(NAMESPACE.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        namespaces.create(&PostParams::default(), &ns).await?;
    }
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NAMESPACE);
    let have_cm = config_maps.list_metadata(&Default::default()).await?.items.len();
    let have_secrets = secrets.list_metadata(&Default::default()).await?.items.len();
    let value = "x".repeat(200);
    let creates = (0..INVENTORY).flat_map(|i| {
        let cm = ConfigMap {
            metadata: meta(format!("config-{i}")),
            data: Some(BTreeMap::from([
                ("app.properties".to_string(), format!("{value}{i}")),
                ("LOG_LEVEL".to_string(), "info".to_string()),
            ])),
            ..Default::default()
        };
        let secret = Secret {
            metadata: meta(format!("secret-{i}")),
            string_data: Some(BTreeMap::from([("password".to_string(), format!("{value}{i}"))])),
            ..Default::default()
        };
        let (config_maps, secrets) = (config_maps.clone(), secrets.clone());
        let cm_job = (have_cm < INVENTORY).then(|| {
            futures::future::Either::Left(async move {
                match config_maps.create(&PostParams::default(), &cm).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
                    Err(e) => Err(e),
                }
            })
        });
        let secret_job = (have_secrets < INVENTORY).then(|| {
            futures::future::Either::Right(async move {
                match secrets.create(&PostParams::default(), &secret).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
                    Err(e) => Err(e),
                }
            })
        });
        cm_job.into_iter().chain(secret_job)
    });
    let results: Vec<Result<(), kube::Error>> = futures::stream::iter(creates).buffer_unordered(16).collect().await;
    for result in results {
        result.context("creating the inventory")?;
    }
    Ok(())
}

/// What the empty handler answers: an allowed review with a JSON patch of six stamps, about
/// the size of ours.
fn empty_answer() -> Vec<u8> {
    use base64::Engine;
    let patch: Vec<Value> = (1..=6)
        .map(|i| {
            json!({"op": "add", "path": format!("/spec/template/metadata/annotations/configmap.reloader.stakater.com~1config-{i}"),
                   "value": format!("{:040x}", i * 7919)})
        })
        .collect();
    let patch = base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&patch).unwrap_or_default());
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "response": {"uid": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "allowed": true, "patchType": "JSONPatch", "patch": patch}
    }))
    .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// The load generator.

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Proto {
    H2,
    H1,
}

impl Proto {
    fn name(self) -> &'static str {
        match self {
            Proto::H2 => "h2",
            Proto::H1 => "h1",
        }
    }
    fn label(self) -> &'static str {
        match self {
            Proto::H2 => "HTTP/2",
            Proto::H1 => "HTTP/1.1",
        }
    }
}

#[derive(Clone)]
struct Target {
    addr: SocketAddr,
    tls: TlsConnector,
    body: Bytes,
}

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

async fn connect(target: &Target, proto: Proto) -> anyhow::Result<Sender> {
    let tcp = TcpStream::connect(target.addr).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::IpAddress(target.addr.ip().into());
    let tls = target.tls.connect(name, tcp).await?;
    let negotiated = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    let io = TokioIo::new(tls);
    match proto {
        Proto::H2 => {
            if negotiated.as_deref() != Some(b"h2") {
                bail!("the server did not negotiate h2");
            }
            let (sender, connection) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
            tokio::spawn(connection);
            Ok(Sender::H2(sender))
        }
        Proto::H1 => {
            let (sender, connection) = hyper::client::conn::http1::handshake(io).await?;
            tokio::spawn(connection);
            Ok(Sender::H1(sender))
        }
    }
}

fn request(target: &Target) -> hyper::Request<Full<Bytes>> {
    hyper::Request::post(format!("https://{}/mutate?timeout=3s", target.addr))
        .header("content-type", "application/json")
        .header("accept", "application/json, */*")
        .body(Full::new(target.body.clone()))
        .unwrap_or_default()
}

/// One exchange; Ok(true) when answered 200.
async fn exchange(sender: &mut Sender, target: &Target) -> anyhow::Result<(bool, Bytes)> {
    let response = match sender {
        Sender::H1(s) => {
            s.ready().await?;
            s.send_request(request(target)).await?
        }
        Sender::H2(s) => s.send_request(request(target)).await?,
    };
    let ok = response.status() == hyper::StatusCode::OK;
    let body = response.into_body().collect().await?.to_bytes();
    Ok((ok, body))
}

impl Sender {
    fn h2_clone(&self) -> Option<hyper::client::conn::http2::SendRequest<Full<Bytes>>> {
        match self {
            Sender::H2(s) => Some(s.clone()),
            Sender::H1(_) => None,
        }
    }
}

/// What one run measured.
#[derive(Debug, Default, Clone)]
struct Run {
    latencies: Vec<f64>,
    errors: usize,
    /// Answered 200 within the measured window, per second (saturation runs).
    throughput: f64,
    /// Answered 200 in the whole run, warm-up included (saturation runs).
    answered_in_all: usize,
}

/// CPU time (user + system, all threads) the process `pid` has used so far.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses; utime and stime are
    // the 14th and 15th fields of the line, the 12th and 13th after it.
    let mut rest = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let (user, system): (f64, f64) = (rest.next()?.parse().ok()?, rest.next()?.parse().ok()?);
    let ticks = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<f64>().ok())
        .unwrap_or(100.0);
    Some((user + system) / ticks)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

impl Run {
    fn sorted(mut self) -> Self {
        self.latencies.sort_by(f64::total_cmp);
        self
    }
    fn p50(&self) -> f64 {
        percentile(&self.latencies, 0.50)
    }
    fn p99(&self) -> f64 {
        percentile(&self.latencies, 0.99)
    }
}

struct Sample {
    intended: Instant,
    latency: Duration,
    ok: bool,
}

/// Open loop at `RATE` for `WARM_UP + measured`: a pacer thread releases each request at its
/// intended time (whether or not earlier ones are answered); latency counts from that time.
async fn fixed_rate(target: &Target, proto: Proto, measured: Duration) -> anyhow::Result<Run> {
    let connections = match proto {
        Proto::H1 => H1_CONNECTIONS,
        Proto::H2 => H2_CONNECTIONS,
    };
    let mut senders = Vec::new();
    for _ in 0..connections {
        senders.push(connect(target, proto).await?);
    }
    let total = ((WARM_UP + measured).as_secs_f64() * RATE) as usize;
    let (release, mut released) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let start = Instant::now() + Duration::from_millis(20);
    let pacer = std::thread::spawn(move || {
        for i in 0..total {
            let intended = start + Duration::from_secs_f64(i as f64 / RATE);
            let now = Instant::now();
            if intended > now {
                std::thread::sleep(intended - now);
            }
            if release.send(intended).is_err() {
                return;
            }
        }
    });
    let samples = Arc::new(Mutex::new(Vec::<Sample>::with_capacity(total)));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    match proto {
        Proto::H2 => {
            let h2: Vec<_> = senders.iter().filter_map(Sender::h2_clone).collect();
            let mut tasks = Vec::with_capacity(total);
            let mut next = 0;
            while let Some(intended) = released.recv().await {
                let mut sender = Sender::H2(h2[next % h2.len()].clone());
                next += 1;
                let (target, samples, failures) = (target.clone(), samples.clone(), failures.clone());
                tasks.push(tokio::spawn(async move {
                    let result = exchange(&mut sender, &target).await;
                    record(&samples, &failures, intended, result);
                }));
            }
            for task in tasks {
                let _ = task.await;
            }
        }
        Proto::H1 => {
            let queue = Arc::new(tokio::sync::Mutex::new(released));
            let mut workers = Vec::new();
            for mut sender in senders {
                let (target, samples, failures, queue) =
                    (target.clone(), samples.clone(), failures.clone(), queue.clone());
                workers.push(tokio::spawn(async move {
                    loop {
                        let Some(intended) = queue.lock().await.recv().await else {
                            return;
                        };
                        let result = exchange(&mut sender, &target).await;
                        let broken = result.is_err();
                        record(&samples, &failures, intended, result);
                        if broken {
                            match connect(&target, Proto::H1).await {
                                Ok(fresh) => sender = fresh,
                                Err(_) => return,
                            }
                        }
                    }
                }));
            }
            for worker in workers {
                let _ = worker.await;
            }
        }
    }
    let _ = pacer.join();
    let measured_from = start + WARM_UP;
    let samples = std::mem::take(&mut *samples.lock().unwrap_or_else(|e| e.into_inner()));
    let mut run = Run::default();
    for s in samples.iter().filter(|s| s.intended >= measured_from) {
        if s.ok {
            run.latencies.push(s.latency.as_secs_f64());
        } else {
            run.errors += 1;
        }
    }
    if run.latencies.is_empty() {
        let failures = failures.lock().unwrap_or_else(|e| e.into_inner());
        bail!("no request answered: {:?}", failures.first());
    }
    Ok(run.sorted())
}

fn record(
    samples: &Mutex<Vec<Sample>>,
    failures: &Mutex<Vec<String>>,
    intended: Instant,
    result: anyhow::Result<(bool, Bytes)>,
) {
    let latency = intended.elapsed();
    let ok = match result {
        Ok((ok, _)) => ok,
        Err(error) => {
            let mut failures = failures.lock().unwrap_or_else(|e| e.into_inner());
            if failures.len() < 10 {
                failures.push(format!("{error:#}"));
            }
            false
        }
    };
    samples
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Sample { intended, latency, ok });
}

/// Closed loop: `IN_FLIGHT` requests always outstanding, for `WARM_UP + measured`; throughput
/// is what was answered 200 in the measured window.
async fn saturation(target: &Target, proto: Proto, measured: Duration) -> anyhow::Result<Run> {
    let connections = match proto {
        Proto::H1 => IN_FLIGHT,
        Proto::H2 => H2_SATURATION_CONNECTIONS,
    };
    let mut senders = Vec::new();
    for _ in 0..connections {
        senders.push(connect(target, proto).await?);
    }
    let start = Instant::now();
    let (measured_from, end) = (start + WARM_UP, start + WARM_UP + measured);
    let samples = Arc::new(Mutex::new(Vec::<Sample>::new()));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let (mut h1, mut h2) = (Vec::new(), Vec::new());
    for sender in senders {
        match sender {
            Sender::H1(s) => h1.push(s),
            Sender::H2(s) => h2.push(s),
        }
    }
    let mut loops = Vec::new();
    for i in 0..IN_FLIGHT {
        let mut sender = match (h1.pop(), h2.get(i % h2.len().max(1))) {
            (Some(s), _) => Sender::H1(s),
            (None, Some(s)) => Sender::H2(s.clone()),
            (None, None) => bail!("no connection"),
        };
        let (target, samples, failures) = (target.clone(), samples.clone(), failures.clone());
        loops.push(tokio::spawn(async move {
            while Instant::now() < end {
                let sent = Instant::now();
                let result = exchange(&mut sender, &target).await;
                let broken = result.is_err();
                record(&samples, &failures, sent, result);
                if broken && let Ok(fresh) = connect(&target, proto).await {
                    sender = fresh;
                }
            }
        }));
    }
    for task in loops {
        let _ = task.await;
    }
    let samples = std::mem::take(&mut *samples.lock().unwrap_or_else(|e| e.into_inner()));
    let mut run = Run {
        answered_in_all: samples.iter().filter(|s| s.ok).count(),
        ..Run::default()
    };
    let mut answered = 0usize;
    for s in &samples {
        let done = s.intended + s.latency;
        if s.intended < measured_from || done > end {
            continue;
        }
        if s.ok {
            answered += 1;
            run.latencies.push(s.latency.as_secs_f64());
        } else {
            run.errors += 1;
        }
    }
    if answered == 0 {
        let failures = failures.lock().unwrap_or_else(|e| e.into_inner());
        bail!("no request answered: {:?}", failures.first());
    }
    run.throughput = answered as f64 / measured.as_secs_f64();
    Ok(run.sorted())
}

// ---------------------------------------------------------------------------------------------
// `/live` while hostile reviews saturate the webhook.

/// A review whose reload lists are 200 patterns no cache has seen (`nonce` makes each review's
/// distinct), each compiling near the 256 KiB program limit (`\w` is every Unicode word
/// character): what a caller who can reach the port can send to make the webhook compile.
fn hostile_review(nonce: usize) -> Bytes {
    let patterns = |n: usize| {
        (0..100)
            .map(|i| format!(r"\w{{4}}-{n}-{i}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": format!("hostile-{nonce}"), "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "name": "hostile", "namespace": NAMESPACE, "operation": "CREATE",
            "userInfo": {"username": "mallory"},
            "object": {
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "hostile", "namespace": NAMESPACE, "annotations": {
                    "configmap.reloader.stakater.com/reload": patterns(nonce),
                    "secret.reloader.stakater.com/reload": patterns(nonce + 1),
                }},
                "spec": {"selector": {"matchLabels": {"app": "hostile"}},
                         "template": {"metadata": {"labels": {"app": "hostile"}},
                                      "spec": {"containers": [{"name": "app", "image": "app:1"}]}}}
            }
        }
    });
    Bytes::from(serde_json::to_vec(&review).unwrap_or_default())
}

/// `GET /live` latencies (seconds, sorted), one every 20 ms on a fresh connection, for `how_long`;
/// a sample that gets no answer within 10 s counts as 10 s.
fn sample_live(http: SocketAddr, how_long: Duration) -> Vec<f64> {
    use std::io::{Read, Write};
    let mut samples = Vec::new();
    let end = Instant::now() + how_long;
    while Instant::now() < end {
        let started = Instant::now();
        let answered = std::net::TcpStream::connect_timeout(&http, Duration::from_secs(10)).and_then(|mut stream| {
            stream.set_read_timeout(Some(Duration::from_secs(10)))?;
            write!(stream, "GET /live HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
            let mut answer = String::new();
            stream.read_to_string(&mut answer)?;
            Ok(answer)
        });
        let took = started.elapsed();
        samples.push(match answered {
            Ok(_) => took.as_secs_f64(),
            Err(_) => took.as_secs_f64().max(10.0),
        });
        std::thread::sleep(Duration::from_millis(20).saturating_sub(took));
    }
    samples.sort_by(f64::total_cmp);
    samples
}

/// What the hostile run measured: `/live` at rest and under the flood, and the reviews' fate.
struct Hostile {
    idle: Run,
    flooded: Run,
    answered: usize,
    refused: usize,
}

/// `/live` sampled for `measured` at rest, then for `measured` while `IN_FLIGHT` hostile reviews
/// are always outstanding (after the warm-up), `/mutate` and `/validate` alternately.
async fn hostile(target: &Target, http: SocketAddr, measured: Duration) -> anyhow::Result<Hostile> {
    let idle = tokio::task::spawn_blocking(move || sample_live(http, measured)).await?;
    let mut senders = Vec::new();
    for _ in 0..H2_SATURATION_CONNECTIONS {
        senders.push(
            connect(target, Proto::H2)
                .await?
                .h2_clone()
                .context("an h2 connection")?,
        );
    }
    let end = Instant::now() + WARM_UP + measured;
    let nonce = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut loops = Vec::new();
    for i in 0..IN_FLIGHT {
        let (mut sender, nonce, addr) = (senders[i % senders.len()].clone(), nonce.clone(), target.addr);
        loops.push(tokio::spawn(async move {
            let (mut answered, mut refused) = (0usize, 0usize);
            while Instant::now() < end {
                let n = nonce.fetch_add(2, std::sync::atomic::Ordering::Relaxed);
                let path = if n.is_multiple_of(4) { "mutate" } else { "validate" };
                let request = hyper::Request::post(format!("https://{addr}/{path}?timeout=3s"))
                    .header("content-type", "application/json")
                    .body(Full::new(hostile_review(n)))
                    .unwrap_or_default();
                let Ok(response) = sender.send_request(request).await else {
                    break;
                };
                let ok = response.status() == hyper::StatusCode::OK;
                let _ = response.into_body().collect().await;
                if ok { answered += 1 } else { refused += 1 }
            }
            (answered, refused)
        }));
    }
    tokio::time::sleep(WARM_UP).await;
    let flooded = tokio::task::spawn_blocking(move || sample_live(http, measured)).await?;
    let (mut answered, mut refused) = (0, 0);
    for task in loops {
        if let Ok((a, r)) = task.await {
            answered += a;
            refused += r;
        }
    }
    let run = |latencies: Vec<f64>| Run {
        latencies,
        ..Run::default()
    };
    Ok(Hostile {
        idle: run(idle),
        flooded: run(flooded),
        answered,
        refused,
    })
}

// ---------------------------------------------------------------------------------------------
// The run.

fn wait_for_port(addr: SocketAddr, process: &mut Process, what: &str, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Some(status) = process.0.try_wait()? {
            bail!("{what} exited ({status})");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("{what} did not listen on {addr} within {within:?}")
}

fn wait_ready(http: SocketAddr, process: &mut Process, log: &Path) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(mut stream) = std::net::TcpStream::connect_timeout(&http, Duration::from_millis(200)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut answer = String::new();
            if write!(stream, "GET /ready HTTP/1.0\r\nHost: localhost\r\n\r\n").is_ok()
                && stream.read_to_string(&mut answer).is_ok()
                && answer.split_whitespace().nth(1) == Some("200")
            {
                return Ok(());
            }
        }
        if let Some(status) = process.0.try_wait()? {
            bail!("the reloader exited ({status}); see {}", log.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("the reloader was not ready within 60 s; see {}", log.display())
}

fn ms(seconds: f64) -> String {
    format!("{:.2} ms", seconds * 1e3)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn run() -> anyhow::Result<()> {
    let reps = env_number("WEBHOOK_BENCH_REPS", 3).max(1) as usize;
    let seconds = Duration::from_secs(env_number("WEBHOOK_BENCH_SECONDS", 10).max(1));
    let saturation_seconds = (seconds / 2).max(Duration::from_secs(2));
    let out_dir = target_dir().join("bench");
    let work = out_dir.join("webhook-work");
    std::fs::create_dir_all(&work)?;

    // Certificates: one CA, one leaf for 127.0.0.1, served by both.
    let ca = CertificateAuthority::generate("webhook-bench", Duration::from_secs(86_400), &[])?;
    let leaf = ca.issue_serving(&["127.0.0.1"], Duration::from_secs(86_400))?;
    let (cert_path, key_path) = (work.join("tls.crt"), work.join("tls.key"));
    std::fs::write(&cert_path, &leaf.cert_pem)?;
    std::fs::write(&key_path, &leaf.key_pem)?;
    let answer = empty_answer();
    let answer_path = work.join("empty-answer.json");
    std::fs::write(&answer_path, &answer)?;

    // The control plane's inventory.
    let kubeconfig = kubeconfig()?;
    let client = kube_client(&kubeconfig).await?;
    inventory(&client).await?;

    // The empty handler.
    let empty_addr = free_addr()?;
    let mut empty = Process(
        Command::new(std::env::current_exe()?)
            .arg("--serve-empty")
            .arg(empty_addr.to_string())
            .args([&cert_path, &key_path, &answer_path])
            .stdin(Stdio::null())
            .spawn()
            .context("starting the empty handler")?,
    );
    wait_for_port(empty_addr, &mut empty, "the empty handler", Duration::from_secs(10))?;

    // Ours.
    let binary = std::env::var_os("BENCH_RELOADER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_reloader")));
    let version = Command::new(&binary)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let version = if version.is_empty() {
        env!("CARGO_PKG_VERSION").to_string()
    } else {
        version
    };
    let (ours_addr, http_addr) = (free_addr()?, free_addr()?);
    let log = out_dir.join("webhook-reloader.log");
    let log_file = std::fs::File::create(&log)?;
    let mut ours = Process(
        Command::new(&binary)
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg(format!("--namespaces={NAMESPACE}"))
            .arg(format!("--http-addr={http_addr}"))
            .arg(format!("--admission-addr={ours_addr}"))
            .arg(format!("--admission-namespace={NAMESPACE}"))
            .arg(format!("--tls-cert-file={}", cert_path.display()))
            .arg(format!("--tls-key-file={}", key_path.display()))
            .arg("--admission-self-user=system:serviceaccount:reloader:reloader")
            .env("RELOADER_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .context("starting the reloader")?,
    );
    wait_ready(http_addr, &mut ours, &log)?;

    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca.cert_pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let body = Bytes::from(serde_json::to_vec(&review::deployment_review(NAMESPACE))?);
    let target = |addr: SocketAddr, proto: Proto| -> anyhow::Result<Target> {
        let mut config =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots.clone())
                .with_no_client_auth();
        config.alpn_protocols = vec![match proto {
            Proto::H2 => b"h2".to_vec(),
            Proto::H1 => b"http/1.1".to_vec(),
        }];
        Ok(Target {
            addr,
            tls: TlsConnector::from(Arc::new(config)),
            body: body.clone(),
        })
    };

    // Ours must really stamp: otherwise the comparison says nothing.
    let probe = target(ours_addr, Proto::H2)?;
    let mut sender = connect(&probe, Proto::H2).await?;
    let (ok, ours_answer) = exchange(&mut sender, &probe).await?;
    let parsed: Value = serde_json::from_slice(&ours_answer).context("our answer is not JSON")?;
    if !ok || parsed.pointer("/response/allowed") != Some(&json!(true)) || parsed.pointer("/response/patch").is_none() {
        bail!(
            "our webhook did not stamp the review: {}",
            String::from_utf8_lossy(&ours_answer)
        );
    }
    drop(sender);
    println!(
        "webhook bench: review {} bytes; answers: ours {} bytes, empty {} bytes; {reps} repetitions, \
         {} s at {RATE} req/s (+{} s warm-up), saturation {IN_FLIGHT} in flight for {} s",
        body.len(),
        ours_answer.len(),
        answer.len(),
        seconds.as_secs(),
        WARM_UP.as_secs(),
        saturation_seconds.as_secs()
    );

    // Alternate contenders within each repetition.
    let contenders = [("empty", empty_addr, empty.0.id()), ("ours", ours_addr, ours.0.id())];
    let mut fixed: BTreeMap<(Proto, &str), Vec<Run>> = BTreeMap::new();
    let mut saturated: BTreeMap<(Proto, &str), Vec<Run>> = BTreeMap::new();
    // The server process's CPU time over a saturation run ÷ the requests it answered.
    let mut cpu_per_request: BTreeMap<(Proto, &str), Vec<f64>> = BTreeMap::new();
    for rep in 0..reps {
        for proto in [Proto::H2, Proto::H1] {
            for (name, addr, _) in contenders {
                let run = fixed_rate(&target(addr, proto)?, proto, seconds).await?;
                println!(
                    "  rep {} {} {name:<5} 1000/s: p50 {} p99 {} ({} answered, {} errors)",
                    rep + 1,
                    proto.name(),
                    ms(run.p50()),
                    ms(run.p99()),
                    run.latencies.len(),
                    run.errors
                );
                fixed.entry((proto, name)).or_default().push(run);
            }
            for (name, addr, pid) in contenders {
                let cpu_before = cpu_seconds(pid);
                let run = saturation(&target(addr, proto)?, proto, saturation_seconds).await?;
                let cpu = cpu_seconds(pid).zip(cpu_before).map(|(after, before)| after - before);
                let per_request = cpu.map_or(f64::NAN, |c| c / run.answered_in_all.max(1) as f64);
                println!(
                    "  rep {} {} {name:<5} saturation: {:.0} req/s p50 {} p99 {} ({} errors), {:.0} µs CPU per request",
                    rep + 1,
                    proto.name(),
                    run.throughput,
                    ms(run.p50()),
                    ms(run.p99()),
                    run.errors,
                    per_request * 1e6
                );
                saturated.entry((proto, name)).or_default().push(run);
                cpu_per_request.entry((proto, name)).or_default().push(per_request);
            }
        }
    }
    // `/live` while reviews full of never-seen patterns saturate the webhook (ours only: the
    // empty handler compiles nothing).
    let hostile = hostile(&target(ours_addr, Proto::H2)?, http_addr, saturation_seconds).await?;
    println!(
        "  /live p50 {} p99 {} at rest; p50 {} p99 {} max {} under hostile patterns \
         ({} reviews answered, {} refused)",
        ms(hostile.idle.p50()),
        ms(hostile.idle.p99()),
        ms(hostile.flooded.p50()),
        ms(hostile.flooded.p99()),
        ms(hostile.flooded.latencies.last().copied().unwrap_or(f64::NAN)),
        hostile.answered,
        hostile.refused
    );
    drop(ours);
    drop(empty);

    // Rows and figures.
    let mut rows = Vec::new();
    let mut figures = serde_json::Map::new();
    let stat = |runs: &[Run], f: fn(&Run) -> f64| median(runs.iter().map(f).collect());
    for proto in [Proto::H2, Proto::H1] {
        let (ours_runs, empty_runs) = (&fixed[&(proto, "ours")], &fixed[&(proto, "empty")]);
        let (ours_p99, empty_p99) = (stat(ours_runs, Run::p99), stat(empty_runs, Run::p99));
        let (ours_p50, empty_p50) = (stat(ours_runs, Run::p50), stat(empty_runs, Run::p50));
        let ratio = ours_p99 / empty_p99;
        rows.push(json!({
            "id": format!("webhook.{}.p99_at_1000", proto.name()),
            "what": format!("`/mutate` p99 at 1,000 req/s, {}, {:.1} KB review", proto.label(), body.len() as f64 / 1000.0),
            "ours": ms(ours_p99), "baseline": ms(empty_p99), "baseline_name": "empty TLS handler",
            "ratio": round2(ratio), "target": "≤ 1.5×", "met": ratio <= 1.5
        }));
        rows.push(json!({
            "id": format!("webhook.{}.p50_at_1000", proto.name()),
            "what": format!("`/mutate` p50 at 1,000 req/s, {}", proto.label()),
            "ours": ms(ours_p50), "baseline": ms(empty_p50), "baseline_name": "empty TLS handler",
            "ratio": round2(ours_p50 / empty_p50), "target": null, "met": null
        }));
        let (ours_sat, empty_sat) = (&saturated[&(proto, "ours")], &saturated[&(proto, "empty")]);
        let (ours_tput, empty_tput) = (stat(ours_sat, |r| r.throughput), stat(empty_sat, |r| r.throughput));
        let tput_ratio = ours_tput / empty_tput;
        rows.push(json!({
            "id": format!("webhook.{}.saturation", proto.name()),
            "what": format!("`/mutate` saturation throughput, {}, {IN_FLIGHT} in flight", proto.label()),
            "ours": format!("{ours_tput:.0} req/s (p99 {})", ms(stat(ours_sat, Run::p99))),
            "baseline": format!("{empty_tput:.0} req/s (p99 {})", ms(stat(empty_sat, Run::p99))),
            "baseline_name": "empty TLS handler",
            "ratio": round2(tput_ratio), "target": "≥ 0.8×", "met": tput_ratio >= 0.8
        }));
        let (ours_cpu, empty_cpu) = (
            median(cpu_per_request[&(proto, "ours")].clone()),
            median(cpu_per_request[&(proto, "empty")].clone()),
        );
        rows.push(json!({
            "id": format!("webhook.{}.cpu_per_request", proto.name()),
            "what": format!("`/mutate` server CPU per request at saturation (user + system, all threads), {}", proto.label()),
            "ours": format!("{:.0} µs", ours_cpu * 1e6), "baseline": format!("{:.0} µs", empty_cpu * 1e6),
            "baseline_name": "empty TLS handler",
            "ratio": round2(ours_cpu / empty_cpu), "target": null, "met": null
        }));
        for (name, runs, sat) in [("ours", ours_runs, ours_sat), ("empty", empty_runs, empty_sat)] {
            figures.insert(
                format!("{}.{name}.at_1000", proto.name()),
                json!({
                    "p50_seconds": runs.iter().map(Run::p50).collect::<Vec<_>>(),
                    "p99_seconds": runs.iter().map(Run::p99).collect::<Vec<_>>(),
                    "max_seconds": runs.iter().map(|r| r.latencies.last().copied().unwrap_or(f64::NAN)).collect::<Vec<_>>(),
                    "samples": runs.iter().map(|r| r.latencies.len()).collect::<Vec<_>>(),
                    "errors": runs.iter().map(|r| r.errors).collect::<Vec<_>>(),
                }),
            );
            figures.insert(
                format!("{}.{name}.saturation", proto.name()),
                json!({
                    "throughput_per_second": sat.iter().map(|r| r.throughput).collect::<Vec<_>>(),
                    "p50_seconds": sat.iter().map(Run::p50).collect::<Vec<_>>(),
                    "p99_seconds": sat.iter().map(Run::p99).collect::<Vec<_>>(),
                    "samples": sat.iter().map(|r| r.latencies.len()).collect::<Vec<_>>(),
                    "errors": sat.iter().map(|r| r.errors).collect::<Vec<_>>(),
                    "cpu_seconds_per_request": cpu_per_request[&(proto, name)],
                }),
            );
        }
    }
    rows.push(json!({
        "id": "webhook.live_p99_under_hostile_patterns",
        "what": format!("`/live` p99 (p50) while {IN_FLIGHT} reviews of never-seen reload-list patterns are always in flight, against `/live` at rest"),
        "ours": format!("{} ({})", ms(hostile.flooded.p99()), ms(hostile.flooded.p50())),
        "baseline": format!("{} ({})", ms(hostile.idle.p99()), ms(hostile.idle.p50())),
        "baseline_name": "the same `/live` at rest",
        "ratio": round2(hostile.flooded.p99() / hostile.idle.p99()),
        "target": "p99 < 100 ms", "met": hostile.flooded.p99() < 0.1
    }));
    figures.insert(
        "live_under_hostile_patterns".into(),
        json!({
            "idle_seconds": hostile.idle.latencies, "flooded_seconds": hostile.flooded.latencies,
            "reviews_answered": hostile.answered, "reviews_refused": hostile.refused,
        }),
    );
    figures.insert(
        "conditions".into(),
        json!({
            "review_bytes": body.len(), "ours_answer_bytes": ours_answer.len(), "empty_answer_bytes": answer.len(),
            "repetitions": reps, "rate_per_second": RATE, "measured_seconds": seconds.as_secs(),
            "warm_up_seconds": WARM_UP.as_secs(), "saturation_seconds": saturation_seconds.as_secs(),
            "saturation_in_flight": IN_FLIGHT, "h1_connections": H1_CONNECTIONS, "h2_connections": H2_CONNECTIONS,
            "h2_saturation_connections": H2_SATURATION_CONNECTIONS,
            "inventory": {"namespace": NAMESPACE, "config_maps": INVENTORY, "secrets": INVENTORY, "sources_used": 6},
            "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
            "note": "server, generator and other work share the machine's cores; contenders alternate, medians over repetitions"
        }),
    );
    let report = json!({
        "part": "webhook",
        "contenders": {
            "reloader": {"version": version},
            "empty-tls-handler": {"what": "rustls + hyper (h2 and HTTP/1.1), same TLS configuration, reads the body and answers a fixed allowed review with a patch; no parsing (benches/webhook.rs --serve-empty)"}
        },
        "rows": rows,
        "figures": figures,
    });
    let path = out_dir.join("webhook.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&report)?)?;
    println!();
    for row in report["rows"].as_array().into_iter().flatten() {
        println!(
            "{:<28} ours {:<28} empty {:<28} ratio {:<5} target {:<6} met {}",
            row["id"].as_str().unwrap_or(""),
            row["ours"].as_str().unwrap_or(""),
            row["baseline"].as_str().unwrap_or(""),
            row["ratio"],
            row["target"].as_str().unwrap_or("-"),
            row["met"]
        );
    }
    println!("wrote {}", path.display());
    Ok(())
}

fn round2(x: f64) -> Value {
    if x.is_finite() {
        json!((x * 100.0).round() / 100.0)
    } else {
        Value::Null
    }
}
