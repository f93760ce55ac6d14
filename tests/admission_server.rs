//! The admission webhook's real HTTPS server under abuse: real TLS over loopback, HTTP/1.1 and
//! h2, started the way `src/admission/server.rs` starts it (`tls::serve_with` on the admission
//! router), on 127.0.0.1:0. Every hostile request gets a clear JSON 4xx/503 or a bounded
//! allow/deny, and a probe sending an ordinary review keeps getting its stamp within 1 s
//! throughout (a correctness bound, not a benchmark).
//!
//! The scenarios share one process and two cores, so they run one at a time (`SERIAL`).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use http_body_util::BodyExt;
use hyper::body::Frame;
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use reloader::admission::{AdmissionContext, AdmissionLimits, router};
use reloader::core::hash::sha1_hex;
use reloader::core::source::{SourceKind, SourceRef, SourceState};
use reloader::core::vocabulary::defaults;
use reloader::store::Store;
use reloader::tls::{
    CertificateAuthority, ReloadableCert, ServeLimits, ServingCertificate, serve_with, server_config_for,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// One scenario at a time: they measure latency on a shared two-core machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const MIB: usize = 1024 * 1024;
/// The probe's bound on one ordinary review, under any abuse.
const PROBE_BOUND: Duration = Duration::from_secs(1);

/// Short request timeout so the trickle scenario ends quickly; the rest is the binary's.
fn test_limits() -> AdmissionLimits {
    AdmissionLimits {
        request_timeout: Duration::from_secs(3),
        ..AdmissionLimits::default()
    }
}

struct Server {
    addr: SocketAddr,
    /// PEM of the CA the serving certificate chains to.
    ca: String,
    /// In this process, or in a child process (to measure its memory alone).
    runs: Runs,
}

enum Runs {
    Task(JoinHandle<()>),
    Child(std::process::Child),
}

impl Drop for Server {
    fn drop(&mut self) {
        match &mut self.runs {
            Runs::Task(task) => task.abort(),
            Runs::Child(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn context(limits: AdmissionLimits) -> AdmissionContext {
    let store = Store::default();
    store.upsert_source(
        "shop",
        SourceState {
            source: SourceRef::new(SourceKind::ConfigMap, "cfg"),
            annotations: BTreeMap::new(),
            hash: sha1_hex(b"a=1"),
            keys: Default::default(),
            changed: None,
        },
    );
    let (_tx, ready) = watch::channel(true);
    AdmissionContext {
        limits,
        ..AdmissionContext::standalone(store, ready)
    }
}

async fn start(limits: AdmissionLimits, serve: ServeLimits, client_ca: Option<&str>) -> Server {
    let ca = CertificateAuthority::generate("test-ca", Duration::from_secs(3600), &[]).unwrap();
    let serving = ca.issue_serving(&["127.0.0.1"], Duration::from_secs(3600)).unwrap();
    let config = server_config_for(ReloadableCert::new(&serving).unwrap(), client_ca).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(serve_with(listener, config, router(context(limits)), serve));
    Server {
        addr,
        ca: ca.cert_pem,
        runs: Runs::Task(task),
    }
}

/// The environment variable naming the directory where [`serve_in_a_child_process`] writes
/// its address and CA.
const CHILD_DIR: &str = "RELOADER_TEST_SERVE_DIR";

/// A default server in a child process (this test binary, running the ignored
/// `serve_in_a_child_process`), so its memory is its own.
async fn start_child() -> Server {
    let dir =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("admission-server-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "serve_in_a_child_process", "--nocapture"])
        .env(CHILD_DIR, &dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Server {
        addr: "127.0.0.1:0".parse().unwrap(),
        ca: String::new(),
        runs: Runs::Child(child),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tick.tick().await;
        if let Ok(addr) = std::fs::read_to_string(dir.join("addr")) {
            server.addr = addr.parse().unwrap();
            server.ca = std::fs::read_to_string(dir.join("ca.pem")).unwrap();
            return server;
        }
        assert!(Instant::now() < deadline, "the child server did not start");
    }
}

/// Peak and current resident memory of a process, in MiB (Linux).
fn memory_of(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? / 1024)
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

/// Not a test of its own: the server of `huge_reviews_and_idle_connections_leave_room_for_ordinary_ones`,
/// started by it in a child process. Serves until its stdin closes.
#[test]
#[ignore = "started as a child process by another test"]
fn serve_in_a_child_process() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = runtime.block_on(default_server());
    std::fs::write(dir.join("ca.pem"), &server.ca).unwrap();
    std::fs::write(dir.join("addr.tmp"), server.addr.to_string()).unwrap();
    std::fs::rename(dir.join("addr.tmp"), dir.join("addr")).unwrap();
    // Until the parent goes away.
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
    drop(server);
}

async fn default_server() -> Server {
    start(test_limits(), ServeLimits::default(), None).await
}

fn client_config(ca_pem: &str, alpn: &[u8], identity: Option<&ServingCertificate>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some(id) => {
            let chain = CertificateDer::pem_slice_iter(id.cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes()).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    Arc::new(config)
}

async fn tls_to(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    TlsConnector::from(config)
        .connect(ServerName::from(addr.ip()), tcp)
        .await
}

type H2 = hyper::client::conn::http2::SendRequest<Body>;
type H1 = hyper::client::conn::http1::SendRequest<Body>;

async fn h2_with(server: &Server, identity: Option<&ServingCertificate>) -> Result<H2, String> {
    let io = tls_to(server.addr, client_config(&server.ca, b"h2", identity))
        .await
        .map_err(|e| format!("TLS: {e}"))?;
    let (send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
        .await
        .map_err(|e| format!("h2: {e}"))?;
    tokio::spawn(conn);
    Ok(send)
}

async fn h2(server: &Server) -> H2 {
    h2_with(server, None).await.unwrap()
}

async fn h1(server: &Server) -> H1 {
    let io = tls_to(server.addr, client_config(&server.ca, b"http/1.1", None))
        .await
        .unwrap();
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await.unwrap();
    tokio::spawn(conn);
    send
}

#[derive(Debug)]
struct Answer {
    status: StatusCode,
    body: Value,
    size: usize,
}

fn request(path: &str, body: Body, content_length: Option<usize>) -> Request<Body> {
    let mut request = Request::post(format!("https://127.0.0.1{path}"))
        .header("content-type", "application/json")
        .header("host", "127.0.0.1");
    if let Some(n) = content_length {
        request = request.header("content-length", n);
    }
    request.body(body).unwrap()
}

async fn answer_of(response: hyper::Response<hyper::body::Incoming>) -> Result<Answer, String> {
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?
        .to_bytes();
    Ok(Answer {
        status,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        size: bytes.len(),
    })
}

async fn send_h2(mut conn: H2, path: &str, body: Body, content_length: Option<usize>) -> Result<Answer, String> {
    conn.ready().await.map_err(|e| e.to_string())?;
    let response = conn
        .send_request(request(path, body, content_length))
        .await
        .map_err(|e| e.to_string())?;
    answer_of(response).await
}

async fn post_h2(conn: &H2, path: &str, bytes: impl Into<Bytes>) -> Answer {
    let bytes = bytes.into();
    let length = bytes.len();
    tokio::time::timeout(
        Duration::from_secs(10),
        send_h2(conn.clone(), path, Body::from(bytes), Some(length)),
    )
    .await
    .expect("an answer within 10 s")
    .unwrap()
}

async fn post_h1(conn: &mut H1, path: &str, bytes: impl Into<Bytes>) -> Answer {
    let bytes = bytes.into();
    let length = bytes.len();
    conn.ready().await.unwrap();
    let response = tokio::time::timeout(
        Duration::from_secs(10),
        conn.send_request(request(path, Body::from(bytes), Some(length))),
    )
    .await
    .expect("an answer within 10 s")
    .unwrap();
    answer_of(response).await.unwrap()
}

fn deployment(annotations: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "annotations": annotations},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "web:1",
                                                       "envFrom": [{"configMapRef": {"name": "cfg"}}]}]}}}
    })
}

fn review_value(operation: &str, object: Value) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "0b5c-uid", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "name": "web", "namespace": "shop", "operation": operation,
            "userInfo": {"username": "alice"}, "object": object
        }
    })
}

fn review(operation: &str, object: Value) -> Vec<u8> {
    serde_json::to_vec(&review_value(operation, object)).unwrap()
}

fn normal_review() -> Vec<u8> {
    review("CREATE", deployment(json!({defaults::AUTO: "true"})))
}

/// A review of about `size` bytes: a Deployment whose container has that much env.
fn big_review(size: usize) -> Bytes {
    let entry = |i: usize| json!({"name": format!("VAR_{i:07}"), "value": "x".repeat(40)});
    let per_entry = serde_json::to_vec(&entry(0)).unwrap().len() + 1;
    let base = normal_review().len();
    let mut object = deployment(json!({defaults::AUTO: "true"}));
    object["spec"]["template"]["spec"]["containers"][0]["env"] =
        Value::Array((0..(size - base - 64) / per_entry).map(entry).collect());
    let bytes = review("CREATE", object);
    assert!(bytes.len() <= size, "{} > {size}", bytes.len());
    Bytes::from(bytes)
}

/// An ordinary review sent every 100 ms on its own h2 connection while a scenario runs; each
/// must come back stamped within [`PROBE_BOUND`].
struct Probe {
    stop: watch::Sender<bool>,
    task: JoinHandle<Vec<Result<Duration, String>>>,
}

async fn probe(server: &Server) -> Probe {
    let conn = h2(server).await;
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let mut samples = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                _ = tick.tick() => {}
            }
            let started = Instant::now();
            let sent = send_h2(conn.clone(), "/mutate", Body::from(normal_review()), None);
            let sample = match tokio::time::timeout(PROBE_BOUND, sent).await {
                Ok(Ok(a)) if a.status == StatusCode::OK && has_patch(&a) => Ok(started.elapsed()),
                Ok(Ok(a)) => Err(format!("{}: {}", a.status, a.body)),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(format!("no answer within {PROBE_BOUND:?}")),
            };
            samples.push(sample);
        }
        samples
    });
    Probe { stop, task }
}

impl Probe {
    /// Stops the probe; every ordinary review was answered, stamped, within the bound.
    async fn finish(self) -> Duration {
        self.stop.send_replace(true);
        let samples = self.task.await.unwrap();
        assert!(!samples.is_empty());
        let failures: Vec<&String> = samples.iter().filter_map(|s| s.as_ref().err()).collect();
        assert!(
            failures.is_empty(),
            "{} of {} probes failed: {failures:?}",
            failures.len(),
            samples.len()
        );
        samples.into_iter().map(Result::unwrap).max().unwrap()
    }
}

/// kube serializes the patch as an array of bytes (the API server reads it like base64).
fn has_patch(answer: &Answer) -> bool {
    let patch = &answer.body["response"]["patch"];
    patch.is_array() || patch.is_string()
}

fn error_of(answer: &Answer) -> &str {
    answer.body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no JSON error: {answer:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_reviews_get_clear_json_errors_over_both_protocols() {
    let _serial = SERIAL.lock().await;
    let server = default_server().await;
    let probe = probe(&server).await;
    let conn = h2(&server).await;
    let mut http1 = h1(&server).await;
    let deep = format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"object":{{"spec":{}"#,
        "[".repeat(100_000)
    );
    let mut invalid_utf8 =
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":""#.to_vec();
    invalid_utf8.extend_from_slice(&[0xff, 0xfe, 0xc3]);
    invalid_utf8.extend_from_slice(br#""}}"#);
    let mut no_kind = review_value("CREATE", deployment(json!({})));
    no_kind["request"].as_object_mut().unwrap().remove("kind");
    let mut string_object = review_value("CREATE", json!("s3cr3t"));
    string_object["request"]["object"] = json!("s3cr3t-data");
    let array_object = review_value("CREATE", json!([1, 2, 3]));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "malformed JSON",
            b"{not json".to_vec(),
            "invalid JSON at line 1, column 2",
        ),
        ("empty body", Vec::new(), "empty or truncated JSON"),
        ("null", b"null".to_vec(), "wrong type or value"),
        ("[]", b"[]".to_vec(), "wrong type or value"),
        ("invalid UTF-8", invalid_utf8, "invalid JSON"),
        ("100,000 nested arrays", deep.into_bytes(), "nested too deeply"),
        (
            "100,000 nested arrays at the top",
            "[".repeat(100_000).into_bytes(),
            "wrong type or value",
        ),
        (
            "no request",
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(),
            "the AdmissionReview has no request",
        ),
        ("no kind", serde_json::to_vec(&no_kind).unwrap(), "missing field `kind`"),
        (
            "object a string",
            serde_json::to_vec(&string_object).unwrap(),
            "is not a JSON object",
        ),
        (
            "object an array",
            serde_json::to_vec(&array_object).unwrap(),
            "is not a JSON object",
        ),
        (
            "not a review",
            br#"{"apiVersion":"v1","kind":"Pod"}"#.to_vec(),
            "kind must be AdmissionReview",
        ),
    ];
    for (name, body, expected) in cases {
        for path in ["/mutate", "/validate"] {
            for answer in [
                post_h2(&conn, path, body.clone()).await,
                post_h1(&mut http1, path, body.clone()).await,
            ] {
                assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{name}: {answer:?}");
                let error = error_of(&answer);
                assert!(error.contains(expected), "{name}: {error}");
                assert!(!error.contains("s3cr3t"), "{name}: the input is echoed: {error}");
                assert!(answer.size < 300, "{name}: {} bytes", answer.size);
            }
        }
    }
    let slowest = probe.finish().await;
    eprintln!("slowest ordinary review meanwhile: {slowest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_but_wellformed_reviews_get_bounded_answers() {
    let _serial = SERIAL.lock().await;
    let server = default_server().await;
    let conn = h2(&server).await;
    // v1beta1: answered in the request's version.
    let mut beta = review_value("CREATE", deployment(json!({defaults::AUTO: "true"})));
    beta["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let answer = post_h2(&conn, "/mutate", serde_json::to_vec(&beta).unwrap()).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["apiVersion"], "admission.k8s.io/v1beta1");
    assert!(has_patch(&answer), "{answer:?}");
    // No object (as on DELETE), DELETE and CONNECT: allowed, untouched.
    let mut no_object = review_value("CREATE", json!(null));
    no_object["request"].as_object_mut().unwrap().remove("object");
    for body in [
        serde_json::to_vec(&no_object).unwrap(),
        review("DELETE", deployment(json!({defaults::AUTO: "true"}))),
        review("CONNECT", deployment(json!({"reloader.stakater.com/atuo": "x"}))),
    ] {
        for path in ["/mutate", "/validate"] {
            let answer = post_h2(&conn, path, body.clone()).await;
            assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
            assert_eq!(answer.body["response"]["allowed"], true, "{answer:?}");
            assert!(answer.body["response"].get("patch").is_none(), "{answer:?}");
        }
    }
    // A huge uid is not echoed back.
    let mut long_uid = review_value("CREATE", deployment(json!({})));
    long_uid["request"]["uid"] = json!("u".repeat(100_000));
    let answer = post_h2(&conn, "/mutate", serde_json::to_vec(&long_uid).unwrap()).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.size < 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_are_refused_with_and_without_content_length() {
    let _serial = SERIAL.lock().await;
    let server = default_server().await;
    let probe = probe(&server).await;
    let conn = h2(&server).await;
    let limit = AdmissionLimits::default().body_limit;
    let over = Bytes::from(vec![b' '; limit + 1]);
    // Declared: refused before the body is read.
    let declared = send_h2(conn.clone(), "/mutate", Body::from(over.clone()), Some(over.len()))
        .await
        .unwrap();
    assert_eq!(declared.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(error_of(&declared).contains("larger than 3145728 bytes"));
    // Streamed without a length: refused once the limit is passed.
    let chunks: Vec<Result<Frame<Bytes>, Infallible>> = over
        .chunks(64 * 1024)
        .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
        .collect();
    let streamed = Body::new(http_body_util::StreamBody::new(futures::stream::iter(chunks)));
    let answer = send_h2(conn.clone(), "/validate", streamed, None).await.unwrap();
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    // A body just under the limit is read and answered (whitespace is not a review).
    let under = Bytes::from(vec![b' '; limit]);
    let answer = post_h2(&conn, "/validate", under).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    probe.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_trickled_a_byte_a_second_is_cut_off() {
    let _serial = SERIAL.lock().await;
    let server = default_server().await;
    let probe = probe(&server).await;
    let conn = h2(&server).await;
    let trickle = futures::stream::unfold(0u32, |sent| async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Some((Ok::<_, Infallible>(Frame::data(Bytes::from_static(b" "))), sent + 1))
    });
    let started = Instant::now();
    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        send_h2(
            conn,
            "/mutate",
            Body::new(http_body_util::StreamBody::new(trickle)),
            None,
        ),
    )
    .await
    .expect("cut off well within 10 s")
    .unwrap();
    let took = started.elapsed();
    assert_eq!(answer.status, StatusCode::REQUEST_TIMEOUT, "{answer:?}");
    assert_eq!(error_of(&answer), "the request took too long");
    let timeout = test_limits().request_timeout;
    assert!(took >= timeout && took < timeout + Duration::from_secs(2), "{took:?}");
    probe.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_annotations_get_bounded_allows_and_denials() {
    let _serial = SERIAL.lock().await;
    let server = default_server().await;
    let probe = probe(&server).await;
    let conn = h2(&server).await;
    // A multi-megabyte reload list.
    let list = "app-.*,".repeat(2 * MIB / 7);
    let reload = review(
        "CREATE",
        deployment(json!({defaults::AUTO: "true", defaults::CONFIGMAP_RELOAD: list})),
    );
    // 60,000 near-miss keys.
    let near: serde_json::Map<String, Value> = (0..60_000)
        .map(|i| (format!("reloader.stakatar.com/auto{i}"), json!("true")))
        .collect();
    let near = review("CREATE", deployment(Value::Object(near)));
    // Under Kubernetes' annotation limit, still abusive: 100,000-odd near-miss keys would not
    // fit, 8,000 do; and a list just over the item limit.
    let some_near: serde_json::Map<String, Value> = (0..8_000)
        .map(|i| (format!("reloader.stakatar.com/x{i}"), json!("")))
        .collect();
    let some_near = review("CREATE", deployment(Value::Object(some_near)));
    let long_list = review(
        "CREATE",
        deployment(json!({defaults::SECRET_RELOAD: vec!["db"; 101].join(",")})),
    );
    for (name, body, denial) in [
        ("multi-megabyte reload list", reload, "metadata.annotations total"),
        ("60,000 near-miss keys", near, "metadata.annotations total"),
        ("8,000 near-miss keys", some_near, "reloader.stakatar.com/x"),
        (
            "101 items",
            long_list,
            "the list has 101 items; at most 100 are allowed",
        ),
    ] {
        let started = Instant::now();
        let validated = post_h2(&conn, "/validate", body.clone()).await;
        assert_eq!(validated.status, StatusCode::OK, "{name}");
        assert_eq!(validated.body["response"]["allowed"], false, "{name}");
        let message = validated.body["response"]["status"]["message"].as_str().unwrap();
        assert!(message.contains(denial), "{name}: {message}");
        assert!(message.len() <= 1200, "{name}: {} bytes", message.len());
        assert!(validated.size <= 4096, "{name}: {} bytes", validated.size);
        let mutated = post_h2(&conn, "/mutate", body).await;
        assert_eq!(mutated.status, StatusCode::OK, "{name}");
        assert_eq!(mutated.body["response"]["allowed"], true, "{name}");
        assert!(mutated.size <= 4096, "{name}: {} bytes", mutated.size);
        eprintln!("{name}: validated and mutated in {:?}", started.elapsed());
    }
    probe.finish().await;
}

/// Sends `count` ~3 MiB reviews at once, each on its own clone of `conns`' connections
/// (round-robin); every answer is a stamp (200) or busy (503), both JSON.
async fn flood(conns: &[H2], count: usize, body: Bytes) -> (usize, usize) {
    let sends: Vec<_> = (0..count)
        .map(|i| {
            let conn = conns[i % conns.len()].clone();
            let body = body.clone();
            tokio::spawn(async move {
                let length = body.len();
                tokio::time::timeout(
                    Duration::from_secs(20),
                    send_h2(conn, "/mutate", Body::from(body), Some(length)),
                )
                .await
            })
        })
        .collect();
    let (mut stamped, mut busy) = (0, 0);
    for send in sends {
        let answer = send.await.unwrap().expect("an answer within 20 s").unwrap();
        match answer.status {
            StatusCode::OK => {
                assert!(has_patch(&answer), "{answer:?}");
                stamped += 1;
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(error_of(&answer), "the webhook is busy; try again");
                busy += 1;
            }
            other => panic!("{other}: {answer:?}"),
        }
    }
    (stamped, busy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_huge_bodies_on_one_h2_connection() {
    let _serial = SERIAL.lock().await;
    let server = default_server().await;
    let probe = probe(&server).await;
    let conn = h2(&server).await;
    let (stamped, busy) = flood(&[conn], 64, big_review(3 * MIB - 1024)).await;
    eprintln!("one h2 connection, 64 × 3 MiB: {stamped} stamped, {busy} busy");
    assert!(stamped >= 1);
    let slowest = probe.finish().await;
    eprintln!("slowest ordinary review meanwhile: {slowest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_reviews_and_idle_connections_leave_room_for_ordinary_ones() {
    let _serial = SERIAL.lock().await;
    // In its own process, as in a pod: its memory is measured alone.
    let server = start_child().await;
    let Runs::Child(child) = &server.runs else {
        unreachable!()
    };
    let pid = child.id();
    // A thousand idle TLS connections, handshaken and silent.
    let mut idle = Vec::new();
    for batch in 0..34 {
        let opened =
            futures::future::join_all((0..30).map(|_| tls_to(server.addr, client_config(&server.ca, b"h2", None))))
                .await;
        for (i, tls) in opened.into_iter().enumerate() {
            idle.push(tls.unwrap_or_else(|e| panic!("idle connection {}: {e}", batch * 30 + i)));
        }
    }
    let body = big_review(3 * MIB - 1024);
    let conns: Vec<H2> = futures::future::join_all((0..64).map(|_| h2(&server))).await;
    let before = memory_of(pid);
    let probe = probe(&server).await;
    let started = Instant::now();
    let (stamped, busy) = flood(&conns, 64, body).await;
    let took = started.elapsed();
    let slowest = probe.finish().await;
    let after = memory_of(pid);
    eprintln!(
        "1,020 idle connections, 64 connections × 3 MiB: {stamped} stamped, {busy} busy in {took:?}; \
         slowest ordinary review {slowest:?}; server memory (peak, resident) MiB: {before:?} before, {after:?} after"
    );
    assert!(stamped >= 1);
    // Bodies are bounded by the budget (48 MiB), h2 windows by the connection window, parsing
    // by the lanes: far from the 64 × 3 MiB (and their parsed copies) an unbounded server
    // would hold. The pod's memory limit is 256 MiB.
    if let Some((peak, _)) = after {
        assert!(peak < 160, "peak {peak} MiB");
    }
    // The idle connections are still open (no idle timeout yet).
    let mut one = idle.pop().unwrap();
    one.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    drop(idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_are_required_when_configured() {
    let _serial = SERIAL.lock().await;
    let clients = CertificateAuthority::generate("api-server-clients", Duration::from_secs(3600), &[]).unwrap();
    let server = start(test_limits(), ServeLimits::default(), Some(&clients.cert_pem)).await;
    // No certificate: refused in the handshake (TLS 1.3 reports it at the first read).
    let refused = match h2_with(&server, None).await {
        Err(error) => error,
        Ok(conn) => send_h2(conn, "/mutate", Body::from(normal_review()), None)
            .await
            .unwrap_err(),
    };
    eprintln!("without a client certificate: {refused}");
    // A certificate from another CA: refused too.
    let stranger = CertificateAuthority::generate("someone-else", Duration::from_secs(3600), &[])
        .unwrap()
        .issue_client("kube-apiserver", Duration::from_secs(3600))
        .unwrap();
    let refused = match h2_with(&server, Some(&stranger)).await {
        Err(error) => error,
        Ok(conn) => send_h2(conn, "/mutate", Body::from(normal_review()), None)
            .await
            .unwrap_err(),
    };
    eprintln!("with a stranger's certificate: {refused}");
    // Signed by the configured CA: served.
    let apiserver = clients
        .issue_client("kube-apiserver", Duration::from_secs(3600))
        .unwrap();
    let conn = h2_with(&server, Some(&apiserver)).await.unwrap();
    let answer = post_h2(&conn, "/mutate", normal_review()).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(has_patch(&answer));
}

/// Reads until the server closes the connection; how long that took.
async fn closed_within(mut stream: impl tokio::io::AsyncRead + Unpin, bound: Duration) -> Duration {
    let started = Instant::now();
    let mut buffer = [0u8; 1024];
    loop {
        match tokio::time::timeout_at((started + bound).into(), stream.read(&mut buffer)).await {
            Err(_) => panic!("still open after {bound:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_stalled_connections_are_closed() {
    let _serial = SERIAL.lock().await;
    let limits = ServeLimits {
        idle_timeout: Duration::from_secs(1),
        header_read_timeout: Duration::from_secs(1),
        handshake_timeout: Duration::from_secs(1),
        ..ServeLimits::default()
    };
    let server = start(test_limits(), limits, None).await;
    // A TCP connection that never starts TLS.
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let took = closed_within(tcp, Duration::from_secs(4)).await;
    assert!(took >= Duration::from_millis(900), "{took:?}");
    // A TLS connection that never sends a request.
    let tls = tls_to(server.addr, client_config(&server.ca, b"http/1.1", None))
        .await
        .unwrap();
    closed_within(tls, Duration::from_secs(4)).await;
    // HTTP/1.1 headers that never finish.
    let mut tls = tls_to(server.addr, client_config(&server.ca, b"http/1.1", None))
        .await
        .unwrap();
    tls.write_all(b"POST /mutate HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    closed_within(tls, Duration::from_secs(4)).await;
    // An h2 connection left idle after a request: closed (GOAWAY), the client sees it end.
    let io = tls_to(server.addr, client_config(&server.ca, b"h2", None))
        .await
        .unwrap();
    let (send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    let answer = post_h2(&send, "/mutate", normal_review()).await;
    assert_eq!(answer.status, StatusCode::OK);
    let ended = tokio::time::timeout(Duration::from_secs(4), conn).await;
    assert!(ended.is_ok(), "the idle h2 connection is still open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_are_closed_at_once() {
    let _serial = SERIAL.lock().await;
    let limits = ServeLimits {
        max_connections: 4,
        ..ServeLimits::default()
    };
    let server = start(test_limits(), limits, None).await;
    let mut open = Vec::new();
    for _ in 0..4 {
        let conn = h2(&server).await;
        assert_eq!(post_h2(&conn, "/mutate", normal_review()).await.status, StatusCode::OK);
        open.push(conn);
    }
    let started = Instant::now();
    let refused = h2_with(&server, None).await;
    assert!(refused.is_err(), "a fifth connection was served");
    assert!(started.elapsed() < Duration::from_secs(1));
    // The open ones still work; closing one makes room.
    assert_eq!(
        post_h2(&open[0], "/validate", normal_review()).await.status,
        StatusCode::OK
    );
    drop(open.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(conn) = h2_with(&server, None).await
            && let Ok(answer) = send_h2(conn, "/mutate", Body::from(normal_review()), None).await
        {
            assert_eq!(answer.status, StatusCode::OK);
            break;
        }
        assert!(Instant::now() < deadline, "no room after a connection closed");
        tokio::task::yield_now().await;
    }
}

/// A reload list of [`MAX_LIST_ITEMS`](reloader::core::vocabulary::MAX_LIST_ITEMS) patterns no
/// cache has seen (`nonce` makes each review's distinct), each compiling to a large program:
/// `\w` is every Unicode word character, `\w{4}` nearly the 256 KiB compiled-size limit.
fn hostile_patterns(nonce: usize) -> String {
    (0..100)
        .map(|i| format!(r"\w{{4}}-{nonce}-{i}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A review under the inline size (32 KiB) whose reload lists are all patterns never seen.
fn hostile_review(nonce: usize) -> Bytes {
    let annotations = json!({
        defaults::CONFIGMAP_RELOAD: hostile_patterns(nonce),
        defaults::SECRET_RELOAD: hostile_patterns(nonce + 1),
    });
    let bytes = review("CREATE", deployment(annotations));
    assert!(bytes.len() < 32 * 1024, "{} bytes", bytes.len());
    Bytes::from(bytes)
}

/// The p-th percentile (0..=100) of `samples`, sorted in place.
fn percentile(samples: &mut [Duration], p: usize) -> Duration {
    samples.sort();
    samples[(samples.len() * p / 100).min(samples.len() - 1)]
}

/// When a `/live` sample gives up (the sample is then this long).
const LIVE_GIVE_UP: Duration = Duration::from_secs(10);

/// `GET /live` on a new HTTP/1.1 connection: the status.
async fn live(addr: SocketAddr) -> StatusCode {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);
    let request = Request::get("/live")
        .header("host", "127.0.0.1")
        .body(Body::empty())
        .unwrap();
    let response = send.send_request(request).await.unwrap();
    let status = response.status();
    response.into_body().collect().await.unwrap();
    status
}

/// `/live` shares the runtime with the webhook (as in the binary: one runtime, as many async
/// workers as cores). Reviews full of reload-list patterns no cache has seen, sent as fast as
/// they are answered from 16 streams, must not take those workers: a `/live` asked every 20 ms
/// meanwhile answers with a p99 under a generous bound (the bench measures it; on 2 cores it
/// was seconds before such reviews left the async workers).
#[test]
fn live_stays_fast_while_hostile_patterns_saturate_the_webhook() {
    let _serial = SERIAL.blocking_lock();
    // The server's runtime, apart from the client's: two async workers, and CPU slots to match.
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // No request deadline short of the senders' own: every hostile review is computed to the end.
    let limits = AdmissionLimits {
        cpu_slots: 2,
        request_timeout: Duration::from_secs(60),
        ..AdmissionLimits::default()
    };
    let (server, live_addr) = server_runtime.block_on(async {
        let server = start(limits, ServeLimits::default(), None).await;
        let live = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let live_addr = live.local_addr().unwrap();
        let app = axum::Router::new().route("/live", axum::routing::get(|| async { "alive" }));
        tokio::spawn(async move { axum::serve(live, app).await });
        (server, live_addr)
    });
    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (samples, answered, busy, lost) = client_runtime.block_on(async {
        let conns: Vec<H2> = futures::future::join_all((0..4).map(|_| h2(&server))).await;
        let (stop, stopped) = watch::channel(false);
        let nonce = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let senders: Vec<JoinHandle<(usize, usize, usize)>> = (0..16)
            .map(|i| {
                let conn = conns[i % conns.len()].clone();
                let nonce = nonce.clone();
                let stopped = stopped.clone();
                tokio::spawn(async move {
                    let (mut answered, mut busy, mut lost) = (0, 0, 0);
                    while !*stopped.borrow() {
                        let n = nonce.fetch_add(2, std::sync::atomic::Ordering::Relaxed);
                        let path = if n.is_multiple_of(4) { "/mutate" } else { "/validate" };
                        let sent = send_h2(conn.clone(), path, Body::from(hostile_review(n)), None);
                        match tokio::time::timeout(Duration::from_secs(30), sent).await {
                            // Not even the request deadline fired: the server's runtime is stalled.
                            Err(_) => lost += 1,
                            Ok(Ok(a)) if a.status == StatusCode::OK => answered += 1,
                            // Busy (503) or cut off by the request deadline (408).
                            Ok(Ok(a))
                                if a.status == StatusCode::SERVICE_UNAVAILABLE
                                    || a.status == StatusCode::REQUEST_TIMEOUT =>
                            {
                                busy += 1
                            }
                            other => panic!("a hostile review: {other:?}"),
                        }
                    }
                    (answered, busy, lost)
                })
            })
            .collect();
        // Let the flood reach saturation, then ask /live every 20 ms for 4 s.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut samples = Vec::new();
        let until = Instant::now() + Duration::from_secs(4);
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        while Instant::now() < until {
            tick.tick().await;
            let started = Instant::now();
            // A connection of its own each time: a stalled answer is abandoned at the bound.
            match tokio::time::timeout(LIVE_GIVE_UP, live(live_addr)).await {
                Ok(status) => assert_eq!(status, StatusCode::OK),
                Err(_) => eprintln!("/live: no answer within {LIVE_GIVE_UP:?}"),
            }
            samples.push(started.elapsed());
        }
        stop.send_replace(true);
        let (mut answered, mut busy, mut lost) = (0, 0, 0);
        for sender in senders {
            let (a, b, c) = sender.await.unwrap();
            answered += a;
            busy += b;
            lost += c;
        }
        (samples, answered, busy, lost)
    });
    let mut samples = samples;
    let p50 = percentile(&mut samples, 50);
    let p99 = percentile(&mut samples, 99);
    let max = *samples.last().unwrap();
    eprintln!(
        "/live under hostile patterns: {} samples, p50 {p50:?}, p99 {p99:?}, max {max:?}; \
         {answered} hostile reviews answered, {busy} busy or timed out, {lost} unanswered in 30 s",
        samples.len()
    );
    drop(server);
    server_runtime.shutdown_background();
    client_runtime.shutdown_background();
    assert!(answered > 0, "no hostile review was answered");
    assert_eq!(lost, 0, "hostile reviews left unanswered: the server's runtime stalled");
    assert!(p99 < Duration::from_millis(500), "/live p99 {p99:?}");
}

/// A stopped server (SIGTERM) drains: the listener closes at once (new connections are
/// refused), an h2 connection gets GOAWAY (a new request on it is refused, so the API server
/// sends it to another replica), the request in flight is still answered, and the server returns
/// once it is.
#[tokio::test]
async fn a_stopped_server_drains_before_it_returns() {
    let _serial = SERIAL.lock().await;
    let (started_tx, mut started) = watch::channel(false);
    let (release, released) = watch::channel(false);
    let app = axum::Router::new()
        .route(
            "/slow",
            axum::routing::post(move || {
                let mut released = released.clone();
                started_tx.send_replace(true);
                async move {
                    let _ = released.wait_for(|r| *r).await;
                    axum::Json(json!({"answered": true}))
                }
            }),
        )
        .route("/fast", axum::routing::post(|| async { axum::Json(json!({})) }));
    let ca = CertificateAuthority::generate("test-ca", Duration::from_secs(3600), &[]).unwrap();
    let serving = ca.issue_serving(&["127.0.0.1"], Duration::from_secs(3600)).unwrap();
    let config = server_config_for(ReloadableCert::new(&serving).unwrap(), None).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(reloader::tls::serve_until(
        listener,
        config,
        app,
        ServeLimits::default(),
        async {
            let _ = stopped.await;
        },
    ));
    let server = Server {
        addr,
        ca: ca.cert_pem,
        runs: Runs::Task(tokio::spawn(async {})),
    };
    let conn = h2(&server).await;
    assert_eq!(post_h2(&conn, "/fast", "{}").await.status, StatusCode::OK);
    let in_flight = tokio::spawn(send_h2(conn.clone(), "/slow", Body::from("{}"), None));
    started.wait_for(|s| *s).await.unwrap();

    stop.send(()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(addr).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting connections after the stop");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // GOAWAY: the connection takes no new request.
    loop {
        let attempt = tokio::time::timeout(
            Duration::from_secs(2),
            send_h2(conn.clone(), "/fast", Body::from("{}"), None),
        )
        .await;
        if matches!(attempt, Ok(Err(_))) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the connection kept taking requests: {attempt:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!serving.is_finished(), "returned with a request in flight");
    release.send_replace(true);
    let answer = tokio::time::timeout(Duration::from_secs(5), in_flight)
        .await
        .expect("the request in flight answered")
        .unwrap()
        .expect("answered, not reset");
    assert_eq!(
        (answer.status, answer.body),
        (StatusCode::OK, json!({"answered": true}))
    );
    tokio::time::timeout(Duration::from_secs(5), serving)
        .await
        .expect("the server returned once drained")
        .unwrap();
}
