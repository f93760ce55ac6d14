//! What the harness observes: pod-template changes (by watching Deployments), a process's memory
//! (/proc), the API server's own request counters, and the contenders as processes.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};

use crate::support::Reloader;

/// Label on every object the harness creates.
pub const BENCH_LABEL: &str = "reloader-bench";
/// The pod-template annotation both contenders write with each rollout (annotations strategy).
pub const ROLLED_KEY: &str = "reloader.stakater.com/last-reloaded-from";

/// A Deployment, by namespace and name.
pub type Key = (String, String);

/// Per Deployment: the last value of [`ROLLED_KEY`] and when the watch delivered it.
type Seen = HashMap<Key, (Option<String>, Instant)>;

/// The last value of [`ROLLED_KEY`] seen on each bench Deployment's pod template, and when the
/// watch delivered it. Fed by one watch over all namespaces; never polled against the API.
#[derive(Clone, Default)]
pub struct Rollouts {
    seen: Arc<Mutex<Seen>>,
}

impl Rollouts {
    /// Starts the watch; returns once its initial list is in.
    pub async fn watch(client: Client) -> Result<Self> {
        let rollouts = Self::default();
        let api: Api<Deployment> = Api::all(client);
        let config = watcher::Config::default().labels(&format!("{BENCH_LABEL}=true"));
        let seen = rollouts.seen.clone();
        let (synced_tx, synced_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut synced = Some(synced_tx);
            let mut events = watcher(api, config).boxed();
            while let Some(event) = events.next().await {
                let now = Instant::now();
                let object = match event {
                    Ok(watcher::Event::Apply(d) | watcher::Event::InitApply(d)) => d,
                    Ok(watcher::Event::InitDone) => {
                        if let Some(tx) = synced.take() {
                            let _ = tx.send(());
                        }
                        continue;
                    }
                    Ok(_) => continue,
                    Err(e) => {
                        eprintln!("deployment watch: {e}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                let value = object
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.metadata.as_ref())
                    .and_then(|m| m.annotations.as_ref())
                    .and_then(|a| a.get(ROLLED_KEY))
                    .cloned();
                let key = (object.namespace().unwrap_or_default(), object.name_any());
                let mut seen = seen.lock().unwrap();
                match seen.get(&key) {
                    Some((old, _)) if *old == value => {}
                    _ => {
                        seen.insert(key, (value, now));
                    }
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(120), synced_rx)
            .await
            .context("the Deployment watch did not list within 120 s")??;
        Ok(rollouts)
    }

    /// The current values of `keys`, to compare against later.
    pub fn snapshot(&self, keys: &[Key]) -> HashMap<Key, Option<String>> {
        let seen = self.seen.lock().unwrap();
        keys.iter()
            .map(|k| (k.clone(), seen.get(k).and_then(|(v, _)| v.clone())))
            .collect()
    }

    /// Waits until every key's value differs from `before`; returns, per key, when the watch
    /// delivered the change (`None` for those still unchanged at `deadline`).
    pub async fn wait_changed(
        &self,
        before: &HashMap<Key, Option<String>>,
        deadline: Instant,
    ) -> HashMap<Key, Option<Instant>> {
        loop {
            let changed: HashMap<Key, Option<Instant>> = {
                let seen = self.seen.lock().unwrap();
                before
                    .iter()
                    .map(|(k, old)| {
                        let at = seen.get(k).filter(|(v, _)| v != old).map(|(_, at)| *at);
                        (k.clone(), at)
                    })
                    .collect()
            };
            if changed.values().all(Option::is_some) || Instant::now() >= deadline {
                return changed;
            }
            // The watch task stamps the time of arrival, so this interval costs no precision.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// VmRSS and VmHWM of a process, in bytes.
pub fn memory(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// CPU seconds (user + system) process `pid` has used so far (`/proc/<pid>/stat`, in the
/// kernel's 100 ticks a second).
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some((ticks(11)? + ticks(12)?) as f64 / 100.0)
}

/// CPU seconds each control-plane process has used so far, by command name.
pub fn control_plane_cpu_seconds() -> Vec<(String, f64)> {
    const NAMES: [&str; 5] = ["etcd", "kube-apiserver", "kube-controller", "kube-scheduler", "kwok"];
    let mut used: Vec<(String, f64)> = NAMES.iter().map(|n| (n.to_string(), 0.0)).collect();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if let Some(slot) = used.iter_mut().find(|(n, _)| comm.trim().starts_with(n.as_str())) {
            slot.1 += process_cpu_seconds(pid).unwrap_or(0.0);
        }
    }
    used
}

/// The control plane counts as idle below this share of one core, averaged over [`IDLE_SPAN`]
/// (at rest it used 0.02–0.03 of a core with the small inventory, 0.1 with 80,000 objects).
const IDLE_CORES: f64 = 0.25;
const IDLE_SPAN: Duration = Duration::from_secs(3);

/// How [`control_plane_idle`] ended.
pub struct Idle {
    pub waited: Duration,
    /// Whether it got idle within the limit (the series is measured either way).
    pub reached: bool,
    /// Cores it used over the last span before returning.
    pub cores: f64,
}

/// Waits until the control plane (etcd, the API server, the controller-manager, the
/// scheduler, kwok) has used under [`IDLE_CORES`] over the last [`IDLE_SPAN`], or `limit`
/// passed. Right after an inventory is created the controller-manager is still rolling its
/// Deployments out; a latency series taken then measures that, not the contender.
pub async fn control_plane_idle(limit: Duration) -> Idle {
    let started = Instant::now();
    let step = Duration::from_millis(500);
    let used = || control_plane_cpu_seconds().iter().map(|(_, s)| s).sum::<f64>();
    let mut window = std::collections::VecDeque::from([(Instant::now(), used())]);
    loop {
        tokio::time::sleep(step).await;
        let now = (Instant::now(), used());
        window.push_back(now);
        while window.len() > 2 && now.0.duration_since(window[1].0) >= IDLE_SPAN {
            window.pop_front();
        }
        let (since, then) = window[0];
        let span = now.0.duration_since(since);
        let cores = (now.1 - then) / span.as_secs_f64();
        let reached = span >= IDLE_SPAN && cores < IDLE_CORES;
        if reached || started.elapsed() >= limit {
            return Idle {
                waited: started.elapsed(),
                reached,
                cores,
            };
        }
    }
}

/// CPU seconds the machine's cores have been busy so far, summed (`/proc/stat`: all but idle
/// and iowait).
pub fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect();
    let idle = ticks.get(3)? + ticks.get(4)?;
    Some((ticks.iter().take(8).sum::<u64>() - idle) as f64 / 100.0)
}

/// How much of ours is linked in the profiled code order: of the function names in `order`
/// (`tools/link/symbol-order.txt`, which lists the host's and the image build's names), how
/// many `binary` defines. A low count means a stale file or another build (docs/engine.md,
/// Memory), and an RSS row to read with that in mind. None when `nm` cannot read the binary.
pub fn code_order(binary: &Path, order: &Path) -> Option<(usize, usize)> {
    let output = Command::new("nm").arg("--defined-only").arg(binary).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let listing = String::from_utf8_lossy(&output.stdout);
    let defined: std::collections::HashSet<&str> =
        listing.lines().filter_map(|l| l.split_whitespace().nth(2)).collect();
    let order = std::fs::read_to_string(order).ok()?;
    let names: Vec<&str> = order.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let found = names.iter().filter(|n| defined.contains(*n)).count();
    Some((found, names.len()))
}

/// `apiserver_request_total` summed by (resource, subresource, verb).
pub type RequestCounts = BTreeMap<(String, String, String), f64>;

/// The API server's request counters, read from its `/metrics` as the cluster admin.
pub async fn api_requests(client: &Client) -> Result<RequestCounts> {
    let request = axum::http::Request::get("/metrics").body(Vec::new())?;
    let body = client
        .request_text(request)
        .await
        .context("GET /metrics of the API server")?;
    let mut counts = RequestCounts::new();
    for line in body.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let label = |name: &str| {
            labels
                .split("\",")
                .find_map(|pair| pair.strip_prefix(&format!("{name}=\"")))
                .map(|v| v.trim_end_matches('"').to_string())
                .unwrap_or_default()
        };
        *counts
            .entry((label("resource"), label("subresource"), label("verb")))
            .or_default() += value;
    }
    Ok(counts)
}

/// `after - before` for one resource's main object (no subresource) and verb.
pub fn delta(before: &RequestCounts, after: &RequestCounts, resource: &str, verb: &str) -> f64 {
    let key = (resource.to_string(), String::new(), verb.to_string());
    after.get(&key).copied().unwrap_or(0.0) - before.get(&key).copied().unwrap_or(0.0)
}

/// Which program is measured.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Who {
    Ours,
    Stakater,
}

impl Who {
    pub fn id(self) -> &'static str {
        match self {
            Who::Ours => "ours",
            Who::Stakater => "stakater",
        }
    }
}

/// The binary measured as ours: `BENCH_RELOADER` when set (`make bench` sets it to a copy of the
/// release build, the binary that ships, linked in its profiled code order), else cargo's own
/// build for this bench, which has the bench profile's symbol names and so little of that order.
pub fn ours_binary() -> PathBuf {
    std::env::var_os("BENCH_RELOADER").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_reloader")), PathBuf::from)
}

/// Which build [`ours_binary`] is, for the results: `BENCH_RELOADER_BUILD` says what the
/// binary in `BENCH_RELOADER` is (`make bench`: the release build); a binary given without it
/// is not presumed to be any build in particular.
pub fn ours_build() -> String {
    if std::env::var_os("BENCH_RELOADER").is_none() {
        return "cargo bench's build (bench profile)".into();
    }
    match std::env::var("BENCH_RELOADER_BUILD") {
        Ok(build) if !build.trim().is_empty() => format!("{} (BENCH_RELOADER)", build.trim()),
        _ => "the binary given in BENCH_RELOADER".into(),
    }
}

/// A contender running as its own process; killed when dropped.
pub enum Contender {
    Ours(Reloader),
    Stakater { child: Child, log: PathBuf },
}

impl Contender {
    /// Starts ours ([`ours_binary`]), cluster-wide, engine only, with `flags`.
    pub fn ours(kubeconfig: &Path, flags: &[&str]) -> Self {
        let args: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
        let env = vec![("RELOADER_LOG".to_string(), "info".to_string())];
        Contender::Ours(Reloader::start_binary(&ours_binary(), kubeconfig, &args, &env))
    }

    /// Starts Stakater Reloader (`STAKATER_BIN`) with the annotations strategy, cluster-wide.
    pub fn stakater(binary: &Path, kubeconfig: &Path, log_dir: &Path, label: &str) -> Result<Self> {
        std::fs::create_dir_all(log_dir)?;
        let log = log_dir.join(format!("stakater-{label}.log"));
        let out = std::fs::File::create(&log)?;
        let child = Command::new(binary)
            .arg("--reload-strategy=annotations")
            .env("KUBECONFIG", kubeconfig)
            .env_remove("KUBERNETES_NAMESPACE")
            .env_remove("RELOADER_NAMESPACE")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(Contender::Stakater { child, log })
    }

    pub fn pid(&self) -> u32 {
        match self {
            Contender::Ours(r) => r.pid(),
            Contender::Stakater { child, .. } => child.id(),
        }
    }

    fn alive(&mut self) -> bool {
        match self {
            Contender::Ours(r) => r.exited().is_none(),
            Contender::Stakater { child, .. } => child.try_wait().ok().flatten().is_none(),
        }
    }

    /// Waits until the contender says it is ready and returns how long that took from `started`.
    /// Ours: `/ready` is 200 (every source cache synced). Stakater has no readiness endpoint:
    /// its log shows it started the ConfigMap and Secret controllers.
    pub async fn wait_ready(&mut self, started: Instant, limit: Duration) -> Result<Duration> {
        loop {
            if !self.alive() {
                bail!("the contender exited during start-up");
            }
            let ready = match self {
                Contender::Ours(r) => r.is_ready(),
                Contender::Stakater { log, .. } => {
                    let text = std::fs::read_to_string(&*log).unwrap_or_default();
                    ["configmaps", "secrets"]
                        .iter()
                        .all(|kind| text.contains(&format!("Starting Controller to watch resource type: {kind}")))
                }
            };
            if ready {
                return Ok(started.elapsed());
            }
            if started.elapsed() > limit {
                bail!("not ready within {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until the contender has nothing left to do from its start: ours, its work queue
    /// empty for 2 s in a row; Stakater (no such metric), its RSS within 1 MiB over 3 s. Returns
    /// the time spent.
    pub async fn wait_settled(&mut self, limit: Duration) -> Result<Duration> {
        let start = Instant::now();
        let mut quiet_since: Option<Instant> = None;
        let mut samples: Vec<u64> = Vec::new();
        loop {
            if !self.alive() {
                bail!("the contender exited while settling");
            }
            let settled = match self {
                Contender::Ours(r) => {
                    let idle = r.metric("reloader_workqueue_depth") == 0.0 && !r.metrics_text().is_empty();
                    let since = if idle {
                        *quiet_since.get_or_insert_with(Instant::now)
                    } else {
                        quiet_since = None;
                        Instant::now()
                    };
                    idle && since.elapsed() >= Duration::from_secs(2)
                }
                Contender::Stakater { child, .. } => {
                    samples.push(memory(child.id()).map_or(0, |(rss, _)| rss));
                    let last = &samples[samples.len().saturating_sub(7)..];
                    last.len() == 7 && last.iter().max().unwrap_or(&0) - last.iter().min().unwrap_or(&0) <= 1 << 20
                }
            };
            if settled {
                return Ok(start.elapsed());
            }
            if start.elapsed() > limit {
                bail!("did not settle within {limit:?}");
            }
            let pause = if matches!(self, Contender::Stakater { .. }) {
                500
            } else {
                100
            };
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
    }

    /// Stops the process (TERM, then KILL after 10 s) and waits until it is gone.
    pub async fn stop(mut self) {
        let pid = self.pid();
        let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        for _ in 0..100 {
            if !self.alive() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        match &mut self {
            Contender::Ours(r) => r.kill(),
            Contender::Stakater { child, .. } => {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Drop for Contender {
    fn drop(&mut self) {
        if let Contender::Stakater { child, .. } = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
