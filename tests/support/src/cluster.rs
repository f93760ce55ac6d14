//! Test fixture for cluster tests: a `kube::Client` to a real local control plane, a fresh
//! namespace per test, and the reloader binary run as its own process.
//!
//! The control plane is, in order of preference: the one named by `RELOADER_TEST_KUBECONFIG`
//! (what `make test` sets), the one `make cluster` runs (`.cluster/`), or a private one this
//! fixture starts under `target/test-cluster/` and leaves running for the next test binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{Condition, await_condition};
use kube::{Api, Client, Config, Resource};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::repo;

/// How long any single wait in a test may take before it fails.
pub const DEADLINE: Duration = Duration::from_secs(90);

fn cluster_script() -> PathBuf {
    repo().join("tools/cluster.sh")
}

fn kubeconfig_path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Ok(path) = std::env::var("RELOADER_TEST_KUBECONFIG") {
            return PathBuf::from(path);
        }
        let shared = Command::new(cluster_script())
            .arg("status")
            .env_remove("CLUSTER_DIR")
            .status()
            .expect("running tools/cluster.sh status");
        // A reloader left running by `make demo` or `make run` would stamp the tests' workloads.
        let demo = repo().join(".cluster/demo").exists()
            || std::fs::read_to_string(repo().join(".cluster/reloader.pid"))
                .ok()
                .is_some_and(|pid| Path::new("/proc").join(pid.trim()).exists());
        if shared.success() && !demo {
            return repo().join(".cluster/kubeconfig");
        }
        let dir = repo().join("target/test-cluster");
        eprintln!(
            "starting a private control plane in {} (stop it with CLUSTER_DIR={} tools/cluster.sh down)",
            dir.display(),
            dir.display()
        );
        let up = Command::new(cluster_script())
            .arg("up")
            .env("CLUSTER_DIR", &dir)
            .status()
            .expect("running tools/cluster.sh up");
        assert!(up.success(), "tools/cluster.sh up failed; see {}/logs", dir.display());
        dir.join("kubeconfig")
    })
}

/// A client for the test control plane. Built per test: a client belongs to the runtime that
/// made it, and every `#[tokio::test]` has its own.
pub async fn client() -> Client {
    client_for(kubeconfig_path()).await
}

/// A client for the control plane of a kubeconfig.
pub async fn client_for(path: &Path) -> Client {
    let kubeconfig = Kubeconfig::read_from(path).expect("reading the test kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("loading the test kubeconfig");
    Client::try_from(config).expect("building a client")
}

/// One annotation of a Deployment's pod template.
pub fn template_annotation(d: &k8s_openapi::api::apps::v1::Deployment, key: &str) -> Option<String> {
    d.spec
        .as_ref()?
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(key)
        .cloned()
}

/// A name no other test (or earlier run) uses.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{:x}{:x}{n}", std::process::id() % 0xfff, nanos % 0xfffff)
}

/// Runs async clean-up from a `Drop` (which cannot await): on its own thread and runtime, with a
/// fresh client to the control plane of `kubeconfig`, waiting for it to finish.
pub fn clean_up<F, Fut>(kubeconfig: PathBuf, work: F)
where
    F: FnOnce(Client) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let done = std::thread::spawn(move || {
        if !kubeconfig.exists() {
            return; // a private control plane already gone
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async { work(client_for(&kubeconfig).await).await });
    });
    let _ = done.join();
}

/// A namespace created for one test and deleted when it is dropped.
pub struct TestNamespace {
    pub name: String,
    kubeconfig: PathBuf,
}

impl TestNamespace {
    pub async fn new(client: &Client, prefix: &str) -> Self {
        Self::on(client, kubeconfig_path(), prefix).await
    }

    /// A namespace in the control plane of `kubeconfig` (which `client` talks to).
    pub async fn on(client: &Client, kubeconfig: &Path, prefix: &str) -> Self {
        let name = unique_name(prefix);
        let ns: Namespace = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"reloader-test": "true"}}
        }))
        .unwrap();
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("creating the test namespace");
        Self {
            name,
            kubeconfig: kubeconfig.to_path_buf(),
        }
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let name = self.name.clone();
        clean_up(self.kubeconfig.clone(), |client| async move {
            let _ = Api::<Namespace>::all(client)
                .delete(&name, &DeleteParams::background())
                .await;
        });
    }
}

/// Waits, by watching, until `condition` holds for the named object; panics after [`DEADLINE`].
pub async fn wait_for<K>(api: &Api<K>, name: &str, what: &str, condition: impl Condition<K>)
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    match tokio::time::timeout(DEADLINE, await_condition(api.clone(), name, condition)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => panic!("watching {name} for {what}: {e}"),
        Err(_) => {
            let last = api.get_opt(name).await.ok().flatten();
            panic!("{name}: no {what} within {DEADLINE:?}; last seen: {last:#?}")
        }
    }
}

/// Polls `check` every 200 ms until it returns `Some`; the caller bounds it.
async fn eventually_quietly<T, F, Fut>(mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    loop {
        if let Some(value) = check().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls an async check until it returns `Some`, or panics after [`DEADLINE`]. For conditions
/// that span several objects, where a single watch does not fit.
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    tokio::time::timeout(DEADLINE, eventually_quietly(check))
        .await
        .unwrap_or_else(|_| panic!("no {what} within {DEADLINE:?}"))
}

/// The kubeconfig the tests use, for processes started by a test.
pub fn kubeconfig() -> &'static Path {
    kubeconfig_path()
}

/// The reloader binary cargo built for the running test or bench: the one cargo names in
/// `CARGO_BIN_EXE_reloader` when it runs them, else (the test binary run by hand, or a cargo
/// that names it only at compile time) the one beside the `deps/` directory holding the
/// running executable, where cargo puts it.
fn reloader_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("CARGO_BIN_EXE_reloader") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the path of the running executable");
    exe.parent()
        .and_then(Path::parent)
        .map(|profile| profile.join("reloader"))
        .expect("the running executable is in cargo's target/<profile>/deps/")
}

/// A reloader binary running as its own process, as users run it, watching one namespace.
/// Killed (SIGKILL) when dropped.
pub struct Reloader {
    child: std::process::Child,
    /// Where it serves /live, /ready and /metrics: it binds port 0 and logs the port it got, so
    /// no other process can take the port between choosing and binding it.
    http: std::sync::OnceLock<std::net::SocketAddr>,
    pub log: PathBuf,
}

const HTTP_ANY_PORT: &str = "--http-addr=127.0.0.1:0";

impl Reloader {
    /// Starts `reloader --namespaces=<namespace> <args>` with a short coalescing window.
    pub fn start(namespace: &str, args: &[&str]) -> Self {
        Self::start_with(kubeconfig(), namespace, args, &[])
    }

    /// As [`Reloader::start`], against any control plane and with extra environment. An empty
    /// `namespace` watches the whole cluster (give it a `--namespace-selector`).
    pub fn start_with(kubeconfig: &Path, namespace: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut all: Vec<String> = (!namespace.is_empty())
            .then(|| format!("--namespaces={namespace}"))
            .into_iter()
            .collect();
        all.push("--coalesce-window=300ms".into());
        all.extend(args.iter().map(|a| a.to_string()));
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Self::spawn(&reloader_binary(), kubeconfig, namespace, &all, &env)
    }

    /// The binary with exactly `args` and `env` (plus `--kubeconfig` and `--http-addr`), as an
    /// install's manifests run it: no `--namespaces` and no short window added.
    pub fn start_exact(kubeconfig: &Path, args: &[String], env: &[(String, String)]) -> Self {
        Self::start_binary(&reloader_binary(), kubeconfig, args, env)
    }

    /// As [`Reloader::start_exact`], with another build of the binary (the image's).
    pub fn start_binary(binary: &Path, kubeconfig: &Path, args: &[String], env: &[(String, String)]) -> Self {
        Self::spawn(binary, kubeconfig, "exact", args, env)
    }

    /// `binary --kubeconfig=… --http-addr=127.0.0.1:0 <args>`, logging to
    /// `target/test-logs/<log_prefix>-….log`.
    fn spawn(binary: &Path, kubeconfig: &Path, log_prefix: &str, args: &[String], env: &[(String, String)]) -> Self {
        let logs = repo().join("target/test-logs");
        std::fs::create_dir_all(&logs).unwrap();
        let log = logs.join(format!("{}.log", unique_name(log_prefix)));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(binary)
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg(HTTP_ANY_PORT)
            .args(args)
            .env("RELOADER_LOG", "info,reloader=debug")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("starting the reloader binary");
        Self {
            child,
            http: std::sync::OnceLock::new(),
            log,
        }
    }

    /// `reloader explain -o json <args>` (with `env`), its JSON answer; panics with its stderr
    /// when it fails.
    pub fn explain_json(args: &[&str], env: &[(&str, &str)]) -> serde_json::Value {
        let output = Command::new(reloader_binary())
            .args(["explain", "-o", "json"])
            .args(args)
            .envs(env.iter().copied())
            .output()
            .expect("running reloader explain");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "explain {args:?}: {}\n{stdout}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("explain {args:?}: {e}: {stdout}"))
    }

    /// The process id (for its /proc entry).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether `/ready` answers 200 right now (source caches synced).
    pub fn is_ready(&self) -> bool {
        self.get("/ready").is_some_and(|(status, _)| status == 200)
    }

    /// SIGTERM, as the kubelet stops a pod; [`Reloader::exited`] tells when it is done.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success(), "kill -TERM failed");
    }

    /// The exit status once the process has ended; `None` while it runs.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGKILL: no graceful shutdown, no lease release.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends `signal` (`STOP`, `CONT`) to the process: a stopped reloader still holds its
    /// sockets but answers nothing, as a stalled one would.
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{signal} {}", self.child.id());
    }

    /// The address it serves on, once its log has said so.
    pub fn http(&self) -> Option<std::net::SocketAddr> {
        if let Some(addr) = self.http.get() {
            return Some(*addr);
        }
        let log = std::fs::read_to_string(&self.log).ok()?;
        let line = log.lines().find(|l| l.contains("serving /live, /ready and /metrics"))?;
        // Text (`addr=127.0.0.1:N`) or JSON (`"addr":"127.0.0.1:N"`).
        let port = line.split("127.0.0.1:").nth(1)?;
        let port: u16 = port[..port.find(|c: char| !c.is_ascii_digit()).unwrap_or(port.len())]
            .parse()
            .ok()?;
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        Some(*self.http.get_or_init(|| addr))
    }

    fn get(&self, path: &str) -> Option<(u16, String)> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect_timeout(&self.http()?, Duration::from_secs(1)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let status = response.split_whitespace().nth(1)?.parse().ok()?;
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Some((status, body))
    }

    /// Waits until `/ready` answers 200 (source caches synced).
    pub async fn wait_ready(&self) {
        eventually("reloader ready", || async {
            let (status, _) = self.get("/ready")?;
            (status == 200).then_some(())
        })
        .await;
    }

    /// The value of one sample, e.g. `reloader_reconciles_total{outcome="rolled"}`; 0 if absent.
    pub fn metric(&self, sample: &str) -> f64 {
        let Some((_, body)) = self.get("/metrics") else {
            return 0.0;
        };
        body.lines()
            .find_map(|line| line.strip_prefix(sample)?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// The whole `/metrics` exposition ("" when it does not answer).
    pub fn metrics_text(&self) -> String {
        self.get("/metrics").map(|(_, body)| body).unwrap_or_default()
    }

    /// Sum of every sample of a metric family, e.g. all `reloader_reconciles_total` outcomes.
    pub fn metric_sum(&self, name: &str) -> f64 {
        let Some((_, body)) = self.get("/metrics") else {
            return 0.0;
        };
        body.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Sum of the samples of a metric family whose labels contain `labels`, e.g.
    /// `webhook="validate",operation="UPDATE"`.
    pub fn metric_sum_matching(&self, name: &str, labels: &str) -> f64 {
        let Some((_, body)) = self.get("/metrics") else {
            return 0.0;
        };
        body.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
            .filter(|l| l.split_once('}').is_some_and(|(set, _)| set.contains(labels)))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Waits until the reloader has reconciled at least `count` times in total and has nothing
    /// queued: everything it was told about so far is answered.
    pub async fn settle(&self, count: f64) {
        let last = std::cell::Cell::new((0.0, 0.0));
        let settled = tokio::time::timeout(
            DEADLINE,
            eventually_quietly(|| async {
                let done = self.metric_sum("reloader_reconciles_total");
                let queued = self.metric("reloader_workqueue_depth");
                last.set((done, queued));
                (done >= count && queued == 0.0).then_some(())
            }),
        )
        .await;
        let (done, queued) = last.get();
        assert!(
            settled.is_ok(),
            "reloader not settled within {DEADLINE:?}: {done} of {count} reconciles, {queued} queued"
        );
    }
}

impl Drop for Reloader {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("reloader log: {}", self.log.display());
        }
    }
}

/// A private control plane for a test that breaks it on purpose (stops the apiserver); stopped
/// when dropped.
pub struct PrivateCluster {
    pub dir: PathBuf,
}

impl PrivateCluster {
    pub fn start(name: &str) -> Self {
        let dir = repo().join("target").join(name);
        let up = Command::new(cluster_script())
            .arg("up")
            .env("CLUSTER_DIR", &dir)
            // One real node per host, and it belongs to the shared control plane.
            .env("CLUSTER_REAL_NODE", "0")
            .status()
            .expect("running tools/cluster.sh up");
        assert!(
            up.success(),
            "private control plane did not start; see {}/logs",
            dir.display()
        );
        Self { dir }
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// `tools/cluster.sh stop-component|start-component <component>`.
    pub fn component(&self, action: &str, component: &str) {
        let ok = Command::new(cluster_script())
            .args([action, component])
            .env("CLUSTER_DIR", &self.dir)
            .status()
            .expect("running tools/cluster.sh");
        assert!(ok.success(), "{action} {component} failed");
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = Command::new(cluster_script())
            .arg("down")
            .env("CLUSTER_DIR", &self.dir)
            .status();
    }
}
