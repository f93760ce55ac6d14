//! `make bench`'s cluster part (`cargo bench --bench cluster`): the reloader and, when
//! `STAKATER_BIN` is set, Stakater Reloader, each alone as its own process against the same
//! inventory on the local control plane (`RELOADER_TEST_KUBECONFIG`, set by tools/with-cluster.sh).
//! Writes `target/bench/cluster.json`, merges every `target/bench/*.json` of the run into
//! `bench/results.json` and renders the README's benchmark block from it.
//!
//! `cargo bench --bench cluster -- --render` only re-renders the README from bench/results.json;
//! `-- --merge` first folds the other parts found in `target/bench/` into it (a part re-run on
//! its own).
//!
//! Environment: `STAKATER_BIN`, `STAKATER_VERSION` (label), `BENCH_SAMPLES` (reload-latency
//! changes per contender, default 200: a p99 of 60 would be the slowest one alone),
//! `BENCH_SCALE=0` skips the 80,000-object inventory and the 1 → 5,000 fan-out, `BENCH_ONLY=memory,fan-out` runs only the steps whose names contain one
//! of the words (after the small inventory) and writes nothing but its printed rows.
//! `BENCH_RELOADER` is the binary measured as ours (default: cargo's bench-profile build) and
//! `BENCH_RELOADER_BUILD` what it is, for the results (`make bench`: "the release build").

#[allow(dead_code)]
#[path = "../../tests/cluster/support.rs"]
mod support;

mod inventory;
mod probe;
mod render;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Map, Value, json};

use inventory::Object;
use probe::{Contender, Key, Rollouts, Who};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// ConfigMaps (and a Deployment using each) in the latency namespace; samples reuse them in turn.
const LATENCY_OBJECTS: usize = 500;

/// Pause between two latency samples: slower than the default per-namespace pace (5 rollouts
/// a second), so the rows measure the reload, not the pacing (its burst of 50 hid this at 60
/// quick changes; at 200 every change past the 70th waited for its token).
const CHANGE_SPACING: Duration = Duration::from_millis(250);

/// Requests in flight when the bench itself writes the fan-out (our default `--workers`).
const FLOOR_CONCURRENCY: usize = 16;

/// Ours, rate limits out of the way (the fan-out and latency rows measure the engine, not the
/// pacing); everything else at its default.
const UNLIMITED: [&str; 2] = [
    "--max-reloads-per-second=100000",
    "--max-reloads-per-second-per-namespace=100000",
];

fn main() {
    let render_only = std::env::args().any(|a| a == "--render");
    let merge_only = std::env::args().any(|a| a == "--merge");
    let outcome = if render_only {
        render_readme().map(|block| print!("{block}"))
    } else if merge_only {
        merge_parts()
            .and_then(|()| render_readme())
            .map(|block| print!("{block}"))
    } else {
        run()
    };
    if let Err(e) = outcome {
        eprintln!("bench cluster: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let load_before = std::fs::read_to_string(Path::new(REPO).join("target/bench/loadavg-start"))
        .or_else(|_| std::fs::read_to_string("/proc/loadavg"))
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut bench = runtime.block_on(Bench::new())?;
    let failures = runtime.block_on(bench.all());
    runtime.block_on(inventory::delete_bench_namespaces(&bench.client));
    if std::env::var_os("BENCH_ONLY").is_some() {
        // A partial run: its rows are printed above; the results and the README keep the last
        // full run's.
        println!("BENCH_ONLY set: bench/results.json and the README left as they were");
    } else {
        bench.write(&load_before)?;
        let block = render_readme()?;
        println!("\n{block}");
    }
    if !failures.is_empty() {
        bail!("measurements not taken: {}", failures.join("; "));
    }
    Ok(())
}

/// Folds parts measured after the cluster run (e.g. `cargo bench --bench webhook` run again on
/// its own) into bench/results.json: every `target/bench/*.json` but the cluster part replaces
/// the part of the same name; the run's machine, inventory and cluster figures stay.
fn merge_parts() -> Result<()> {
    let out = Path::new(REPO).join("bench/results.json");
    let mut results: Value = serde_json::from_slice(&std::fs::read(&out).context("reading bench/results.json")?)?;
    let dir = Path::new(REPO).join("target/bench");
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let part: Value =
            serde_json::from_slice(&std::fs::read(&path)?).with_context(|| format!("reading {}", path.display()))?;
        let Some(name) = part["part"].as_str().map(str::to_string) else {
            continue;
        };
        if name == "cluster" {
            continue;
        }
        for (who, about) in part["contenders"].as_object().into_iter().flatten() {
            if who != "reloader" {
                results["contenders"][who] = about.clone();
            }
        }
        results["parts"][name] = part;
    }
    let mut text = serde_json::to_string_pretty(&results)?;
    text.push('\n');
    std::fs::write(out, text)?;
    Ok(())
}

/// Re-renders the README block from bench/results.json; returns the block.
fn render_readme() -> Result<String> {
    let results: Value = serde_json::from_slice(&std::fs::read(Path::new(REPO).join("bench/results.json"))?)?;
    let block = render::render(&results);
    let readme_path = Path::new(REPO).join("README.md");
    let readme = std::fs::read_to_string(&readme_path)?;
    let updated = render::replace_block(&readme, &block).context("README.md has no bench:begin/bench:end block")?;
    std::fs::write(readme_path, updated)?;
    Ok(block)
}

// ------------------------------------------------------------------ figures and rows

fn ms(seconds: f64) -> String {
    if seconds < 1.0 {
        format!("{:.1} ms", seconds * 1e3)
    } else {
        format!("{seconds:.2} s")
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// CPU seconds used so far: the contender's, the machine's, each control-plane process's.
type CpuBefore = (Option<f64>, Option<f64>, Vec<(String, f64)>);

/// Latency samples: the seconds of those that arrived, and how many never did.
#[derive(Default, Clone)]
struct Samples {
    seconds: Vec<f64>,
    missed: usize,
    /// Fan-out rounds: CPU seconds the contender used, and the machine's cores were busy, from
    /// the write until the last rollout was seen (the control plane and the contender share
    /// the machine's cores).
    contender_cpu_s: Vec<f64>,
    machine_busy_s: Vec<f64>,
}

impl Samples {
    /// One change started at `t0`: its rollout seen at `seen`, or missed (none before the deadline).
    fn record(&mut self, seen: Option<Instant>, t0: Instant) {
        match seen {
            Some(at) => self.seconds.push(at.saturating_duration_since(t0).as_secs_f64()),
            None => self.missed += 1,
        }
    }

    /// Records the CPU used since `before` (the contender's, when `pid` is one, and the
    /// machine's), and prints it.
    fn cpu_since(&mut self, before: CpuBefore, pid: Option<u32>) {
        let ours = pid
            .and_then(probe::process_cpu_seconds)
            .zip(before.0)
            .map(|(a, b)| a - b);
        let machine = probe::machine_busy_seconds().zip(before.1).map(|(a, b)| a - b);
        let parts: Vec<String> = probe::control_plane_cpu_seconds()
            .into_iter()
            .zip(before.2)
            .map(|((name, now), (_, then))| format!("{name} {:.2}", now - then))
            .collect();
        eprintln!(
            "[bench] CPU seconds: contender {ours:?}, machine {machine:?}; {}",
            parts.join(", ")
        );
        self.contender_cpu_s.extend(ours);
        self.machine_busy_s.extend(machine);
    }

    fn sorted(&self) -> Vec<f64> {
        let mut s = self.seconds.clone();
        s.sort_by(|a, b| a.total_cmp(b));
        s
    }
    fn p(&self, p: f64) -> f64 {
        // A missed sample counts as slower than every arrived one.
        let mut s = self.sorted();
        s.extend(std::iter::repeat_n(f64::INFINITY, self.missed));
        percentile(&s, p)
    }
    fn json(&self) -> Value {
        let s = self.sorted();
        let mut figure = json!({"samples": s.len() + self.missed, "missed": self.missed,
               "p50_s": finite(self.p(0.5)), "p99_s": finite(self.p(0.99)),
               "min_s": s.first(), "max_s": s.last(), "all_s": s});
        if !self.machine_busy_s.is_empty() {
            figure["contender_cpu_s"] = json!(self.contender_cpu_s);
            figure["machine_busy_s"] = json!(self.machine_busy_s);
        }
        figure
    }
}

fn finite(x: f64) -> Value {
    if x.is_finite() { json!(x) } else { Value::Null }
}

fn show(x: f64) -> String {
    if x.is_finite() {
        ms(x)
    } else {
        "never (deadline)".into()
    }
}

struct Bench {
    client: Client,
    kubeconfig: PathBuf,
    rollouts: Rollouts,
    stakater: Option<PathBuf>,
    stakater_version: Option<String>,
    run: String,
    samples: usize,
    scale: bool,
    rows: Vec<Value>,
    figures: Map<String, Value>,
    inventory: Vec<String>,
    logs: PathBuf,
    /// Figures by name, to put ours beside Stakater's.
    theirs: HashMap<String, f64>,
    /// Measurements not taken that did not stop their scenario.
    failures: Vec<String>,
    /// How long each latency series waited for the control plane to be idle ([`Bench::settle`]).
    settled: std::sync::Mutex<Map<String, Value>>,
}

impl Bench {
    async fn new() -> Result<Self> {
        let kubeconfig = support::kubeconfig().to_path_buf();
        let client = support::client_for(&kubeconfig).await;
        inventory::delete_bench_namespaces(&client).await;
        let rollouts = Rollouts::watch(client.clone()).await?;
        let stakater = std::env::var_os("STAKATER_BIN")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        if let Some(bin) = &stakater
            && !bin.is_file()
        {
            bail!("STAKATER_BIN={} is not a file", bin.display());
        }
        let stakater_version = stakater.as_ref().map(|bin| stakater_version(bin));
        Ok(Self {
            client,
            kubeconfig,
            rollouts,
            stakater,
            stakater_version,
            run: support::unique_name("b"),
            samples: std::env::var("BENCH_SAMPLES")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(200),
            scale: std::env::var("BENCH_SCALE").map_or(true, |v| v != "0"),
            rows: Vec::new(),
            figures: Map::new(),
            inventory: Vec::new(),
            logs: Path::new(REPO).join("target/bench/logs"),
            theirs: HashMap::new(),
            failures: Vec::new(),
            settled: Default::default(),
        })
    }

    fn ns(&self, what: &str) -> String {
        format!("{}-{what}", self.run)
    }

    fn contenders(&self) -> Vec<Who> {
        let mut who = vec![Who::Ours];
        if self.stakater.is_some() {
            who.push(Who::Stakater);
        }
        who
    }

    fn start(&self, who: Who, flags: &[&str], label: &str) -> Result<Contender> {
        match who {
            Who::Ours => Ok(Contender::ours(&self.kubeconfig, flags)),
            Who::Stakater => Contender::stakater(
                self.stakater.as_deref().context("no STAKATER_BIN")?,
                &self.kubeconfig,
                &self.logs,
                label,
            ),
        }
    }

    fn stakater_name(&self) -> String {
        format!("Stakater {}", self.stakater_version.as_deref().unwrap_or("?"))
    }

    #[allow(clippy::too_many_arguments)]
    fn row(
        &mut self,
        id: &str,
        what: &str,
        ours: String,
        theirs: Option<String>,
        ratio: Option<f64>,
        target: &str,
        met: Option<bool>,
    ) {
        let baseline_name = theirs.as_ref().map(|_| self.stakater_name());
        println!("{id}: {ours} (baseline {theirs:?}, target {target}, met {met:?})");
        self.rows.push(json!({
            "id": format!("cluster.{id}"), "what": what, "ours": ours,
            "baseline": theirs, "baseline_name": baseline_name,
            "ratio": ratio.filter(|r| r.is_finite()), "target": target, "met": met,
        }));
    }

    /// Ours failing fails the scenario; Stakater failing is recorded (the run then exits
    /// non-zero) and ours' rows are still written.
    fn baseline_may_fail<T>(&mut self, who: Who, what: &str, measured: Result<T>) -> Result<Option<T>> {
        match measured {
            Ok(m) => Ok(Some(m)),
            Err(e) if who == Who::Stakater => {
                eprintln!("[bench] Stakater, {what}: {e:#}");
                self.failures.push(format!("Stakater, {what}: {e:#}"));
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn figure(&mut self, name: &str, value: Value) {
        self.figures.insert(name.to_string(), value);
    }

    /// Before a latency series: waits (at most 5 minutes) for the control plane to be idle, so
    /// the series measures the contender rather than the controller-manager still catching up
    /// with an inventory just created or just acknowledged. Recorded under `tag`.
    async fn settle(&self, tag: &str) {
        let idle = probe::control_plane_idle(Duration::from_secs(300)).await;
        eprintln!(
            "[bench] control plane {} after {:.1} s ({:.2} cores) before {tag}",
            if idle.reached { "idle" } else { "still busy" },
            idle.waited.as_secs_f64(),
            idle.cores
        );
        let figure = json!({"waited_s": idle.waited.as_secs_f64(), "idle": idle.reached, "cores": idle.cores});
        self.settled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(tag.to_string(), figure);
    }

    /// Every scenario in priority order; returns those that could not be measured.
    async fn all(&mut self) -> Vec<String> {
        let mut failures = Vec::new();
        // `BENCH_ONLY=memory,fan-out` runs the steps whose names contain one of the words (the
        // inventory they need first); for re-measuring one figure after a change.
        let only: Option<Vec<String>> = std::env::var("BENCH_ONLY").ok().map(|v| {
            v.split(',')
                .map(|w| w.trim().to_string())
                .filter(|w| !w.is_empty())
                .collect()
        });
        let wanted = |name: &str| {
            only.as_ref()
                .is_none_or(|words| words.iter().any(|w| name.contains(w.as_str())))
        };
        macro_rules! step {
            ($name:literal, $call:expr) => {
                if !wanted($name) && $name != "small inventory" {
                    eprintln!("[bench] {} skipped (BENCH_ONLY)", $name);
                } else {
                    eprintln!("[bench] {}", $name);
                    if let Err(e) = $call.await {
                        eprintln!("[bench] {} failed: {e:#}", $name);
                        failures.push(format!("{}: {e:#}", $name));
                    }
                }
            };
        }
        step!("small inventory", self.small_inventory());
        if !failures.is_empty() {
            return failures;
        }
        step!("memory and start-up", self.memory_small());
        step!("reload latency and API requests", self.latency_small());
        step!("fan-out 1 -> 500", self.fan_out_500());
        step!("fairness under a storm", self.fairness());
        if self.scale {
            step!("fan-out 1 -> 5,000", self.fan_out_5000());
            step!("scale", self.scale());
        }
        let settled = std::mem::take(&mut *self.settled.lock().unwrap_or_else(|e| e.into_inner()));
        self.figure("control_plane_settled", Value::Object(settled));
        failures.append(&mut self.failures);
        failures
    }

    // -------------------------------------------------------------- inventories

    /// 10 namespaces of 500 Secrets (4 Helm releases of 200 KiB, the rest 2 KiB Opaque), 200
    /// ConfigMaps of 2 KiB and 50 auto Deployments using one ConfigMap and one Secret each; plus
    /// the latency namespace: 500 ConfigMaps and 500 Deployments, one each.
    async fn small_inventory(&mut self) -> Result<()> {
        let mut objects = Vec::new();
        for n in 0..10u64 {
            let ns = self.ns(&format!("inv{n}"));
            inventory::namespace(&self.client, &ns).await?;
            for i in 0..500u64 {
                let seed = n * 100_000 + i;
                let secret = if i < 4 {
                    inventory::helm_release_secret(&format!("release{i}"), 200 * 1024, seed)
                } else {
                    inventory::opaque_secret(&format!("secret-{i}"), 1536, seed)
                };
                objects.push(Object::Secret(ns.clone(), secret));
            }
            for i in 0..200u64 {
                objects.push(Object::ConfigMap(
                    ns.clone(),
                    inventory::config_map(&format!("config-{i}"), 2048, n * 100_000 + 50_000 + i),
                ));
            }
            for i in 0..50 {
                let d = inventory::deployment(
                    &format!("app-{i}"),
                    &[format!("config-{i}")],
                    &[format!("secret-{}", i + 4)],
                );
                objects.push(Object::Deployment(ns.clone(), d));
            }
        }
        let took = inventory::create(&self.client, objects).await?;
        self.figure("inventory_small_create_s", json!(took.as_secs_f64()));
        self.inventory.push(
            "small: 10 namespaces × (500 Secrets: 4 Helm release Secrets of 200 KiB, 496 Opaque of 1.5 KiB data; 200 ConfigMaps of 2 KiB; 50 Deployments, `auto`, 0 replicas, one ConfigMap + one Secret each)".into(),
        );
        let ns = self.ns("lat");
        inventory::namespace(&self.client, &ns).await?;
        let mut objects = Vec::new();
        for i in 0..LATENCY_OBJECTS as u64 {
            objects.push(Object::ConfigMap(
                ns.clone(),
                inventory::config_map(&format!("lat-{i}"), 64, 7_000_000 + i),
            ));
            objects.push(Object::Deployment(
                ns.clone(),
                inventory::deployment(&format!("lat-{i}"), &[format!("lat-{i}")], &[]),
            ));
        }
        inventory::create(&self.client, objects).await?;
        self.inventory.push(
            "latency: 1 namespace of 500 ConfigMaps and 500 Deployments using one each (1,000 Deployments in all)"
                .into(),
        );
        let totals = inventory::totals(&self.client).await?;
        eprintln!("[bench] small inventory in {took:?}: {totals}");
        self.figure("inventory_small", totals);
        Ok(())
    }

    // -------------------------------------------------------------- memory and start-up

    async fn memory_small(&mut self) -> Result<()> {
        for who in self.contenders() {
            let measured = async {
                let started = Instant::now();
                let mut c = self.start(who, &[], "memory")?;
                let ready = c.wait_ready(started, Duration::from_secs(300)).await?;
                let at_ready = probe::memory(c.pid()).context("reading /proc")?;
                let settle = c.wait_settled(Duration::from_secs(600)).await?;
                tokio::time::sleep(Duration::from_secs(3)).await;
                let (rss, hwm) = probe::memory(c.pid()).context("reading /proc")?;
                c.stop().await;
                anyhow::Ok((ready, at_ready, settle, rss, hwm))
            }
            .await;
            let Some((ready, at_ready, settle, rss, hwm)) = self.baseline_may_fail(who, "memory", measured)? else {
                continue;
            };
            let id = who.id();
            self.figure(
                &format!("memory_small_{id}"),
                json!({"ready_s": ready.as_secs_f64(), "settled_after_ready_s": settle.as_secs_f64(),
                       "rss_at_ready_bytes": at_ready.0, "rss_bytes": rss, "hwm_bytes": hwm}),
            );
            if who == Who::Stakater {
                self.theirs.insert("rss".into(), rss as f64);
                self.theirs.insert("hwm".into(), hwm as f64);
                self.theirs.insert("ready".into(), ready.as_secs_f64());
            } else {
                self.theirs.insert("ours_rss".into(), rss as f64);
                self.theirs.insert("ours_hwm".into(), hwm as f64);
                self.theirs.insert("ours_ready".into(), ready.as_secs_f64());
            }
        }
        let order = probe::code_order(
            &probe::ours_binary(),
            &Path::new(REPO).join("tools/link/symbol-order.txt"),
        );
        if let Some((found, listed)) = order {
            self.figure("code_order", json!({"names_found": found, "names_listed": listed}));
        }
        let rss = self.theirs["ours_rss"];
        let hwm = self.theirs["ours_hwm"];
        let ready = self.theirs["ours_ready"];
        let their_rss = self.theirs.get("rss").copied();
        let ratio = their_rss.map(|t| rss / t);
        let met = rss <= 24.0 * 1024.0 * 1024.0 && ratio.is_none_or(|r| r <= 0.25);
        let what = match order {
            Some((found, _)) => format!(
                "RSS after sync, small inventory (5,000 Secrets, 2,700 ConfigMaps, 1,000 Deployments); ours with {found} functions in the profiled code order"
            ),
            None => "RSS after sync, small inventory (5,000 Secrets, 2,700 ConfigMaps, 1,000 Deployments)".to_string(),
        };
        self.row(
            "memory.small.rss",
            &what,
            mib(rss as u64),
            their_rss.map(|t| mib(t as u64)),
            ratio,
            "≤ 24 MiB and ≤ 0.25× Stakater",
            Some(met),
        );
        let their_hwm = self.theirs.get("hwm").copied();
        self.row(
            "memory.small.peak",
            "Peak RSS (VmHWM) during start-up ÷ RSS after sync",
            format!("{} ({:.2}×)", mib(hwm as u64), hwm / rss),
            their_hwm.map(|t| format!("{} ({:.2}×)", mib(t as u64), t / their_rss.unwrap_or(t))),
            None,
            "≤ 1.25×",
            Some(hwm / rss <= 1.25),
        );
        let their_ready = self.theirs.get("ready").copied();
        self.row(
            "startup.small.ready",
            "Cold start → ready, small inventory (ours: `/ready`; Stakater: its log says both controllers started)",
            ms(ready),
            their_ready.map(ms),
            their_ready.map(|t| ready / t),
            "–",
            None,
        );
        Ok(())
    }

    // -------------------------------------------------------------- latency

    /// Changes `lat-<i>` for `indices` (modulo the [`LATENCY_OBJECTS`]) one after the other;
    /// each sample is the PATCH of the ConfigMap (clock started just before it) to its
    /// Deployment's rollout seen by the watch.
    async fn latency_samples(&self, tag: &str, indices: std::ops::Range<usize>, limit: Duration) -> Result<Samples> {
        let ns = self.ns("lat");
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &ns);
        let mut samples = Samples::default();
        for i in indices.map(|i| i % LATENCY_OBJECTS) {
            let key: Key = (ns.clone(), format!("lat-{i}"));
            let before = self.rollouts.snapshot(std::slice::from_ref(&key));
            let value = format!("{tag}-{i}-{}", support::unique_name("v"));
            let t0 = Instant::now();
            api.patch(
                &format!("lat-{i}"),
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"settings": value}})),
            )
            .await?;
            let changed = self.rollouts.wait_changed(&before, t0 + limit).await;
            samples.record(changed[&key], t0);
            tokio::time::sleep(CHANGE_SPACING).await;
        }
        Ok(samples)
    }

    async fn latency_small(&mut self) -> Result<()> {
        let n = self.samples;
        let mut api_rows = Vec::new();
        for who in self.contenders() {
            let flags: &[&str] = if who == Who::Ours { &["--reload-window=0s"] } else { &[] };
            let measured = async {
                let mut c = self.start(who, flags, "latency")?;
                c.wait_ready(Instant::now(), Duration::from_secs(300)).await?;
                c.wait_settled(Duration::from_secs(600)).await?;
                self.settle(&format!("latency_window0_{}", who.id())).await;
                let before = probe::api_requests(&self.client).await?;
                let samples = self.latency_samples(who.id(), 0..n, Duration::from_secs(60)).await?;
                tokio::time::sleep(Duration::from_secs(3)).await;
                let after = probe::api_requests(&self.client).await?;
                c.stop().await;
                anyhow::Ok((before, samples, after))
            }
            .await;
            let Some((before, samples, after)) = self.baseline_may_fail(who, "latency", measured)? else {
                continue;
            };
            let rolled = samples.seconds.len() as f64;
            api_rows.push((who, api_figures(&before, &after), rolled));
            self.figure(&format!("latency_window0_{}", who.id()), samples.json());
            if who == Who::Stakater {
                self.theirs.insert("lat_p50".into(), samples.p(0.5));
                self.theirs.insert("lat_p99".into(), samples.p(0.99));
            } else {
                self.theirs.insert("ours_lat_p50".into(), samples.p(0.5));
                self.theirs.insert("ours_lat_p99".into(), samples.p(0.99));
            }
        }
        let (p50, p99) = (self.theirs["ours_lat_p50"], self.theirs["ours_lat_p99"]);
        let their = self.theirs.get("lat_p50").copied();
        let ratio = their.map(|t| p50 / t);
        let what = format!(
            "Reload latency, ConfigMap PATCH → its Deployment's pod template patched (watch), `--reload-window=0s`, p50 of {n} changes, 1,000 Deployments present"
        );
        self.row(
            "latency.window0.p50",
            &what,
            show(p50),
            their.map(show),
            ratio,
            "≤ 15 ms and ≤ 0.25× Stakater",
            Some(p50 <= 0.015 && ratio.is_none_or(|r| r <= 0.25)),
        );
        let their99 = self.theirs.get("lat_p99").copied();
        self.row(
            "latency.window0.p99",
            "same, p99",
            show(p99),
            their99.map(show),
            their99.map(|t| p99 / t),
            "≤ 50 ms",
            Some(p99 <= 0.050),
        );

        // The floor under any watching controller: the bench itself writes what a controller
        // would, right after its own change of the source.
        self.settle("latency_floor").await;
        let floor = self.latency_floor(n).await?;
        self.figure("latency_floor", floor.json());
        let floor_p50 = floor.p(0.5);
        self.row(
            "latency.floor",
            &format!("Latency floor: the bench itself PATCHes the ConfigMap, then its Deployment's template (no contender), first PATCH → rollout seen (watch); p50 / p99 of {n} changes. Ratio: ours' p50 ÷ this p50"),
            format!("{} / {}", show(floor_p50), show(floor.p(0.99))),
            None,
            Some(p50 / floor_p50),
            "–",
            None,
        );

        // The default window: ours only (Stakater has none).
        let window_n = (n / 3).clamp(10, 30);
        let mut c = self.start(Who::Ours, &[], "latency-window")?;
        c.wait_ready(Instant::now(), Duration::from_secs(300)).await?;
        c.wait_settled(Duration::from_secs(600)).await?;
        self.settle("latency_window2s_ours").await;
        let samples = self
            .latency_samples("window", n..n + window_n, Duration::from_secs(60))
            .await?;
        c.stop().await;
        self.figure("latency_window2s_ours", samples.json());
        let p99 = samples.p(0.99);
        self.row(
            "latency.window2s",
            &format!("Reload latency at the default `--reload-window=2s`, p50 / p99 of {window_n} changes"),
            format!("{} / {}", show(samples.p(0.5)), show(p99)),
            None,
            None,
            "p99 ≤ 2 s + 50 ms",
            Some(p99 <= 2.05),
        );

        // What the controller-manager writes per rollout by itself (its own UPDATE of the
        // Deployment's revision annotation), to subtract from a contender's writes.
        let kcm = self.kcm_updates_per_rollout(n).await?;
        self.figure("kcm_deployment_updates_per_rollout", json!(kcm));
        for (who, figures, rolled) in api_rows {
            let per = |verb: &str| figures[verb].as_f64().unwrap_or(0.0) / rolled.max(1.0);
            let lists = per("LIST");
            let gets = per("GET");
            let writes = per("PATCH") + per("UPDATE") - kcm;
            self.figure(
                &format!("api_requests_{}", who.id()),
                json!({"rolled": rolled, "kcm_updates_per_rollout": kcm, "by_verb": figures}),
            );
            let value = format!("{lists:.2} LIST, {gets:.2} GET, {writes:.2} writes");
            if who == Who::Ours {
                let met = lists == 0.0 && gets == 0.0 && (writes - 1.0).abs() < 0.05;
                let their = self
                    .figures
                    .get("api_requests_stakater_value")
                    .and_then(|v| v.as_str().map(String::from));
                self.row(
                    "api.per_change",
                    &format!("API server requests per source change on workloads and sources (its `apiserver_request_total`, {} changes; writes net of the controller-manager's own)", rolled),
                    value,
                    their,
                    None,
                    "0 LIST, 0 GET, 1 write per rolled workload",
                    Some(met),
                );
            } else {
                // Rows are pushed after ours; keep Stakater's for ours' row.
                self.figure("api_requests_stakater_value", json!(value));
            }
        }
        // Stakater ran after ours: patch its figure into ours' row.
        if let Some(value) = self.figures.remove("api_requests_stakater_value") {
            let name = self.stakater_name();
            if let Some(row) = self.rows.iter_mut().find(|r| r["id"] == "cluster.api.per_change") {
                row["baseline"] = value;
                row["baseline_name"] = json!(name);
            }
        }
        Ok(())
    }

    /// What the latency rows cannot go below on this control plane: for each of `n` latency
    /// pairs, the bench PATCHes the ConfigMap and, once answered, its Deployment's template (as
    /// a controller would on seeing the change, with no time spent seeing or deciding); a
    /// sample is the first PATCH's start to the rollout seen by the watch. Same spacing as the
    /// contenders' samples.
    async fn latency_floor(&self, n: usize) -> Result<Samples> {
        let ns = self.ns("lat");
        let config_maps: Api<ConfigMap> = Api::namespaced(self.client.clone(), &ns);
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), &ns);
        let mut samples = Samples::default();
        for i in (0..n).map(|i| i % LATENCY_OBJECTS) {
            let name = format!("lat-{i}");
            let key: Key = (ns.clone(), name.clone());
            let before = self.rollouts.snapshot(std::slice::from_ref(&key));
            let value = support::unique_name("floor");
            let t0 = Instant::now();
            let data = json!({"data": {"settings": value}});
            config_maps
                .patch(&name, &PatchParams::default(), &Patch::Merge(data))
                .await?;
            let rolled = json!({"spec": {"template": {"metadata": {"annotations": {probe::ROLLED_KEY: value}}}}});
            deployments
                .patch(&name, &PatchParams::default(), &Patch::Merge(rolled))
                .await?;
            let changed = self.rollouts.wait_changed(&before, t0 + Duration::from_secs(60)).await;
            samples.record(changed[&key], t0);
            tokio::time::sleep(CHANGE_SPACING).await;
        }
        Ok(samples)
    }

    /// Rolls `n` latency Deployments by PATCHing their template directly, with no contender
    /// running, and returns the controller-manager's UPDATEs of Deployments per rollout.
    async fn kcm_updates_per_rollout(&self, n: usize) -> Result<f64> {
        let ns = self.ns("lat");
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &ns);
        let n = n.min(LATENCY_OBJECTS);
        let keys = inventory::keys(&ns, "lat", n);
        let before_values = self.rollouts.snapshot(&keys);
        let before = probe::api_requests(&self.client).await?;
        for (_, name) in &keys {
            let patch = json!({"spec": {"template": {"metadata": {"annotations": {probe::ROLLED_KEY: support::unique_name("kcm")}}}}});
            api.patch(name, &PatchParams::default(), &Patch::Merge(patch)).await?;
        }
        self.rollouts
            .wait_changed(&before_values, Instant::now() + Duration::from_secs(60))
            .await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let after = probe::api_requests(&self.client).await?;
        Ok(probe::delta(&before, &after, "deployments", "UPDATE") / n as f64)
    }

    // -------------------------------------------------------------- fan-out

    async fn fan_out_namespace(&mut self, what: &str, dependents: usize) -> Result<(String, Vec<Key>)> {
        let ns = self.ns(what);
        inventory::namespace(&self.client, &ns).await?;
        let mut objects = vec![Object::ConfigMap(ns.clone(), inventory::config_map("shared", 64, 1))];
        for i in 0..dependents {
            objects.push(Object::Deployment(
                ns.clone(),
                inventory::deployment(&format!("fan-{i}"), &["shared".into()], &[]),
            ));
        }
        let took = inventory::create(&self.client, objects).await?;
        self.figure(&format!("inventory_{what}_create_s"), json!(took.as_secs_f64()));
        Ok((ns.clone(), inventory::keys(&ns, "fan", dependents)))
    }

    /// Rounds of "PATCH the shared ConfigMap → every dependent's template patched".
    async fn fan_out_rounds(
        &self,
        c: &mut Contender,
        ns: &str,
        keys: &[Key],
        rounds: usize,
        limit: Duration,
    ) -> Result<Samples> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), ns);
        let mut samples = Samples::default();
        for round in 0..rounds {
            let before = self.rollouts.snapshot(keys);
            let cpu_before = (
                probe::process_cpu_seconds(c.pid()),
                probe::machine_busy_seconds(),
                probe::control_plane_cpu_seconds(),
            );
            let t0 = Instant::now();
            api.patch(
                "shared",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"settings": format!("r{round}-{}", support::unique_name("v"))}})),
            )
            .await?;
            let changed = self.rollouts.wait_changed(&before, t0 + limit).await;
            samples.cpu_since(cpu_before, Some(c.pid()));
            if changed.values().all(Option::is_some) {
                let last = changed.values().flatten().max().copied().unwrap_or(t0);
                samples.seconds.push(last.saturating_duration_since(t0).as_secs_f64());
            } else {
                let done = changed.values().filter(|v| v.is_some()).count();
                eprintln!("[bench] fan-out round {round}: {done}/{} within {limit:?}", keys.len());
                samples.missed += 1;
            }
            // Let the controller-manager finish the rollouts before the next round.
            let _ = c.wait_settled(Duration::from_secs(120)).await;
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        Ok(samples)
    }

    async fn fan_out_500(&mut self) -> Result<()> {
        let (ns, keys) = self.fan_out_namespace("fan500", 500).await?;
        let mut ours = Samples::default();
        let mut theirs = None;
        for who in self.contenders() {
            let flags: &[&str] = if who == Who::Ours { &UNLIMITED } else { &[] };
            let measured = async {
                let mut c = self.start(who, flags, "fanout")?;
                c.wait_ready(Instant::now(), Duration::from_secs(300)).await?;
                c.wait_settled(Duration::from_secs(600)).await?;
                // Stakater is throttled by client-go's defaults (5 requests/s): one slow round.
                let (rounds, limit) = if who == Who::Ours { (3, 60) } else { (1, 400) };
                let samples = self
                    .fan_out_rounds(&mut c, &ns, &keys, rounds, Duration::from_secs(limit))
                    .await?;
                c.stop().await;
                anyhow::Ok(samples)
            }
            .await;
            let Some(samples) = self.baseline_may_fail(who, "fan-out", measured)? else {
                continue;
            };
            self.figure(&format!("fanout_500_{}", who.id()), samples.json());
            if who == Who::Ours {
                ours = samples;
            } else {
                theirs = Some(samples);
            }
        }
        let floor = self.fan_out_floor(&keys, 3).await?;
        self.figure("fanout_500_floor", floor.json());
        let median = ours.p(0.5);
        let their = theirs.map(|s| s.p(0.5));
        self.row(
            "fanout.500",
            "Fan-out: 1 ConfigMap → 500 Deployments (0 replicas), write → all 500 patched, rate limits raised, default 2 s window; median of 3 rounds",
            show(median),
            their.map(show),
            their.map(|t| median / t),
            "≤ 3 s",
            Some(median <= 3.0),
        );
        let floor_median = floor.p(0.5);
        self.row(
            "fanout.500.floor",
            &format!("Fan-out floor: the bench itself PATCHes the same 500 Deployments' templates, {FLOOR_CONCURRENCY} at a time (no contender, no window), first PATCH → all 500 seen; median of 3 rounds. Ours beyond its 2 s window in brackets"),
            format!("{} ({})", show(floor_median), show(median - 2.0)),
            None,
            Some((median - 2.0) / floor_median),
            "–",
            None,
        );
        Ok(())
    }

    /// What 500 template PATCHes cost this control plane with nothing else running: the floor
    /// under any controller's fan-out (ours writes each with one JSON patch, as here).
    async fn fan_out_floor(&self, keys: &[Key], rounds: usize) -> Result<Samples> {
        let mut samples = Samples::default();
        for round in 0..rounds {
            let before = self.rollouts.snapshot(keys);
            let cpu_before = (None, probe::machine_busy_seconds(), probe::control_plane_cpu_seconds());
            let t0 = Instant::now();
            let writes = futures::stream::iter(keys.iter().cloned())
                .map(|(ns, name)| {
                    let api: Api<Deployment> = Api::namespaced(self.client.clone(), &ns);
                    async move {
                        let value = support::unique_name(&format!("floor{round}"));
                        let patch =
                            json!({"spec": {"template": {"metadata": {"annotations": {probe::ROLLED_KEY: value}}}}});
                        api.patch(&name, &PatchParams::default(), &Patch::Merge(patch)).await
                    }
                })
                .buffer_unordered(FLOOR_CONCURRENCY)
                .collect::<Vec<_>>()
                .await;
            if let Some(Err(e)) = writes.into_iter().find(Result::is_err) {
                bail!("a floor PATCH failed: {e}");
            }
            let changed = self.rollouts.wait_changed(&before, t0 + Duration::from_secs(60)).await;
            samples.cpu_since(cpu_before, None);
            if changed.values().all(Option::is_some) {
                let last = changed.values().flatten().max().copied().unwrap_or(t0);
                samples.seconds.push(last.saturating_duration_since(t0).as_secs_f64());
            } else {
                samples.missed += 1;
            }
            // The controller-manager's rollouts settle before the next round.
            tokio::time::sleep(Duration::from_secs(4)).await;
        }
        Ok(samples)
    }

    async fn fan_out_5000(&mut self) -> Result<()> {
        let (ns, keys) = self.fan_out_namespace("fan5000", 5000).await?;
        let mut c = self.start(Who::Ours, &UNLIMITED, "fanout5000")?;
        c.wait_ready(Instant::now(), Duration::from_secs(300)).await?;
        c.wait_settled(Duration::from_secs(900)).await?;
        let samples = self
            .fan_out_rounds(&mut c, &ns, &keys, 2, Duration::from_secs(300))
            .await?;
        c.stop().await;
        self.figure("fanout_5000_ours", samples.json());
        self.row(
            "fanout.5000",
            "Fan-out: 1 ConfigMap → 5,000 Deployments, same settings; median of 2 rounds",
            show(samples.p(0.5)),
            None,
            None,
            "– (reported)",
            None,
        );
        Ok(())
    }

    // -------------------------------------------------------------- fairness

    /// Namespace A: 500 dependents of one ConfigMap, paced by the per-namespace limit (5/s,
    /// the default). While A's reloads are queued, 20 sources in namespace B change, one
    /// dependent each, 100 ms apart; B's latencies are what a storm elsewhere costs.
    async fn fairness(&mut self) -> Result<()> {
        let (ns_a, keys_a) = self.fan_out_namespace("storm-a", 500).await?;
        let ns_b = self.ns("storm-b");
        inventory::namespace(&self.client, &ns_b).await?;
        let mut objects = Vec::new();
        for i in 0..20 {
            objects.push(Object::ConfigMap(
                ns_b.clone(),
                inventory::config_map(&format!("b-{i}"), 64, 9_000_000 + i as u64),
            ));
            objects.push(Object::Deployment(
                ns_b.clone(),
                inventory::deployment(&format!("b-{i}"), &[format!("b-{i}")], &[]),
            ));
        }
        inventory::create(&self.client, objects).await?;
        let keys_b = inventory::keys(&ns_b, "b", 20);

        let mut c = self.start(Who::Ours, &["--max-reloads-per-second-per-namespace=5"], "fairness")?;
        c.wait_ready(Instant::now(), Duration::from_secs(300)).await?;
        c.wait_settled(Duration::from_secs(600)).await?;
        let before_a = self.rollouts.snapshot(&keys_a);
        let api_a: Api<ConfigMap> = Api::namespaced(self.client.clone(), &ns_a);
        api_a
            .patch(
                "shared",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"settings": support::unique_name("storm")}})),
            )
            .await?;
        // Past the 2 s window: A's reloads are due and queued behind its token bucket.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let api_b: Api<ConfigMap> = Api::namespaced(self.client.clone(), &ns_b);
        let mut started = Vec::new();
        for (i, key) in keys_b.iter().enumerate() {
            let before = self.rollouts.snapshot(std::slice::from_ref(key));
            let t0 = Instant::now();
            api_b
                .patch(
                    &format!("b-{i}"),
                    &PatchParams::default(),
                    &Patch::Merge(json!({"data": {"settings": support::unique_name("b")}})),
                )
                .await?;
            started.push((before, t0));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let limit = Duration::from_secs(150);
        let mut samples = Samples::default();
        for (before, t0) in &started {
            let changed = self.rollouts.wait_changed(before, *t0 + limit).await;
            match changed.values().next().copied().flatten() {
                Some(at) => samples.seconds.push(at.saturating_duration_since(*t0).as_secs_f64()),
                None => samples.missed += 1,
            }
        }
        let a_done = self
            .rollouts
            .wait_changed(&before_a, Instant::now())
            .await
            .values()
            .filter(|v| v.is_some())
            .count();
        c.stop().await;
        // A's remaining rollouts would otherwise be done by the next contender's start-up.
        inventory::delete_namespace(&self.client, &ns_a).await;
        self.figure("fairness_b_ours", samples.json());
        self.figure("fairness_a_rolled_when_b_done", json!(a_done));
        let p99 = samples.p(0.99);
        self.row(
            "fairness.storm",
            "Fairness: namespace A rolls 500 Deployments at 5/s (per-namespace limit, defaults otherwise); meanwhile 20 changes in namespace B, one dependent each: B's p99 (p50)",
            format!("{} ({})", show(p99), show(samples.p(0.5))),
            None,
            None,
            "p99 ≤ 2 s window + 1 s",
            Some(p99 <= 3.0),
        );
        Ok(())
    }

    // -------------------------------------------------------------- scale

    /// Tops the cluster up to 50,000 Secrets, 20,000 ConfigMaps and 10,000 Deployments (small
    /// objects, 20 namespaces), then one cold start of ours and the latency samples again.
    async fn scale(&mut self) -> Result<()> {
        let have = inventory::totals(&self.client).await?;
        let need = |kind: &str, total: u64| total.saturating_sub(have[kind].as_u64().unwrap_or(0)) as usize;
        let (secrets, config_maps, deployments) = (
            need("secrets", 50_000),
            need("config_maps", 20_000),
            need("deployments", 10_000),
        );
        let mut objects = Vec::new();
        for n in 0..20usize {
            let ns = self.ns(&format!("scale{n}"));
            inventory::namespace(&self.client, &ns).await?;
            let share = |total: usize| total / 20 + usize::from(n < total % 20);
            for i in 0..share(secrets) {
                objects.push(Object::Secret(
                    ns.clone(),
                    inventory::opaque_secret(&format!("s-{i}"), 256, (n * 1_000_000 + i) as u64),
                ));
            }
            for i in 0..share(config_maps) {
                objects.push(Object::ConfigMap(
                    ns.clone(),
                    inventory::config_map(&format!("c-{i}"), 256, (n * 1_000_000 + 500_000 + i) as u64),
                ));
            }
            let cms = share(config_maps).max(1);
            for i in 0..share(deployments) {
                let d = inventory::deployment(&format!("d-{i}"), &[format!("c-{}", i % cms)], &[format!("s-{i}")]);
                objects.push(Object::Deployment(ns.clone(), d));
            }
        }
        let created = objects.len();
        let took = inventory::create(&self.client, objects).await?;
        let totals = inventory::totals(&self.client).await?;
        eprintln!("[bench] scale inventory: {created} objects in {took:?}: {totals}");
        self.figure("inventory_scale_create_s", json!(took.as_secs_f64()));
        self.figure("inventory_scale", totals.clone());
        self.inventory.push(format!(
            "scale: topped up with 20 namespaces of small objects (256 B) to {} Secrets, {} ConfigMaps, {} Deployments",
            totals["secrets"], totals["config_maps"], totals["deployments"]
        ));

        // The floor is taken before and after ours, each series once the control plane is idle:
        // right after the inventory is created the controller-manager is still rolling out the
        // new Deployments, and ours' start acknowledges every one of them (a metadata write
        // each), which the controller-manager then catches up with too.
        self.settle("scale_latency_floor_before").await;
        let floor_before = self.latency_floor(self.samples).await?;
        self.figure("scale_latency_floor_before", floor_before.json());

        let started = Instant::now();
        let mut c = self.start(Who::Ours, &["--reload-window=0s"], "scale")?;
        let ready = c.wait_ready(started, Duration::from_secs(600)).await?;
        let settle = c.wait_settled(Duration::from_secs(1800)).await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (rss, hwm) = probe::memory(c.pid()).context("reading /proc")?;
        let n = self.samples;
        self.settle("scale_ours").await;
        let samples = self
            .latency_samples("scale", 2 * n..3 * n, Duration::from_secs(60))
            .await?;
        c.stop().await;
        // The same floor as the small inventory's, with the scale inventory present.
        self.settle("scale_latency_floor").await;
        let floor = self.latency_floor(n).await?;
        self.figure("scale_latency_floor", floor.json());
        let floor_p99 = floor.p(0.99).max(floor_before.p(0.99));
        self.figure(
            "scale_ours",
            json!({"ready_s": ready.as_secs_f64(), "settled_after_ready_s": settle.as_secs_f64(),
                   "rss_bytes": rss, "hwm_bytes": hwm, "latency_window0": samples.json()}),
        );
        self.row(
            "scale.rss",
            "Scale: RSS after sync with 50,000 Secrets, 20,000 ConfigMaps, 10,000 Deployments (peak in brackets)",
            format!("{} ({})", mib(rss), mib(hwm)),
            None,
            None,
            "≤ 160 MiB",
            Some(rss <= 160 * 1024 * 1024),
        );
        self.row(
            "scale.ready",
            "Scale: cold start → ready",
            ms(ready.as_secs_f64()),
            None,
            None,
            "≤ 5 s",
            Some(ready.as_secs_f64() <= 5.0),
        );
        let small = self.theirs.get("ours_lat_p99").copied().unwrap_or(f64::NAN);
        let p99 = samples.p(0.99);
        self.row(
            "scale.latency",
            &format!("Scale: reload latency p99 (p50), `--reload-window=0s`, {n} changes"),
            format!("{} ({})", show(p99), show(samples.p(0.5))),
            None,
            Some(p99 / small).filter(|r| r.is_finite()),
            "p99 ≤ 2× the small inventory's",
            Some(p99 <= 2.0 * small),
        );
        self.row(
            "scale.latency.floor",
            "Scale: latency floor p99 (p50), as the small inventory's floor row, scale inventory present, taken before ours ran / after. Ratio: ours' p99 ÷ the larger floor p99",
            format!(
                "{} ({}) / {} ({})",
                show(floor_before.p(0.99)),
                show(floor_before.p(0.5)),
                show(floor.p(0.99)),
                show(floor.p(0.5))
            ),
            None,
            Some(p99 / floor_p99),
            "–",
            None,
        );
        Ok(())
    }

    // -------------------------------------------------------------- results

    fn write(&self, load_before: &str) -> Result<()> {
        let dir = Path::new(REPO).join("target/bench");
        std::fs::create_dir_all(&dir)?;
        let ours_version = ours_version();
        let ours = json!({"version": ours_version, "build": probe::ours_build()});
        let mut contenders = json!({"reloader": ours.clone()});
        if let Some(v) = &self.stakater_version {
            contenders["stakater-reloader"] = json!({"version": v});
        }
        let cluster = json!({
            "part": "cluster", "contenders": contenders,
            "rows": self.rows, "figures": self.figures,
        });
        std::fs::write(dir.join("cluster.json"), serde_json::to_vec_pretty(&cluster)?)?;

        // Merge every part written in this run (make bench clears target/bench first).
        let mut parts = Map::new();
        let mut all_contenders = Map::new();
        let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        for path in names {
            let part: Value = serde_json::from_slice(&std::fs::read(&path)?)
                .with_context(|| format!("reading {}", path.display()))?;
            let name = part["part"].as_str().unwrap_or("unnamed").to_string();
            for (who, about) in part["contenders"].as_object().into_iter().flatten() {
                // Ours is named by this harness (crate version and commit).
                if !all_contenders.contains_key(who) || who != "reloader" {
                    all_contenders.entry(who.clone()).or_insert(about.clone());
                }
            }
            parts.insert(name, part);
        }
        all_contenders.insert("reloader".into(), ours);
        let results = json!({
            "generated_at": time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            "machine": {
                "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
                "model": cpu_model(),
                "load_before": load_before,
                "load_after": std::fs::read_to_string("/proc/loadavg")
                    .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
                    .unwrap_or_default(),
            },
            "contenders": all_contenders,
            "inventory": self.inventory.join("; "),
            "parts": parts,
        });
        let out = Path::new(REPO).join("bench/results.json");
        std::fs::create_dir_all(out.parent().unwrap())?;
        let mut text = serde_json::to_string_pretty(&results)?;
        text.push('\n');
        std::fs::write(out, text)?;
        Ok(())
    }
}

/// Requests on workloads and sources by verb, `after - before`, as JSON (every verb seen).
fn api_figures(before: &probe::RequestCounts, after: &probe::RequestCounts) -> Value {
    let resources = ["deployments", "statefulsets", "daemonsets", "configmaps", "secrets"];
    let mut by_verb: Map<String, Value> = Map::new();
    let mut detail: Map<String, Value> = Map::new();
    for ((resource, subresource, verb), value) in after {
        if !resources.contains(&resource.as_str()) || !subresource.is_empty() {
            continue;
        }
        let d = value
            - before
                .get(&(resource.clone(), subresource.clone(), verb.clone()))
                .copied()
                .unwrap_or(0.0);
        if d == 0.0 {
            continue;
        }
        // Our own PATCHes of the ConfigMaps are the bench's, not the contender's.
        if resource == "configmaps" && verb == "PATCH" {
            detail.insert(format!("{resource} {verb} (bench)"), json!(d));
            continue;
        }
        detail.insert(format!("{resource} {verb}"), json!(d));
        let total = by_verb.get(verb).and_then(Value::as_f64).unwrap_or(0.0) + d;
        by_verb.insert(verb.clone(), json!(total));
    }
    let events = ["POST", "PATCH"]
        .iter()
        .map(|verb| probe::delta(before, after, "events", verb))
        .sum::<f64>();
    for verb in ["LIST", "GET", "PATCH", "UPDATE"] {
        by_verb.entry(verb).or_insert(json!(0.0));
    }
    by_verb.insert("events_written".into(), json!(events));
    by_verb.insert("detail".into(), Value::Object(detail));
    Value::Object(by_verb)
}

fn ours_version() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(REPO)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "--short=10", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = git(&["status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock"]).is_some_and(|s| !s.is_empty());
    format!(
        "{} @ {commit}{}",
        env!("CARGO_PKG_VERSION"),
        if dirty { " (+ uncommitted src changes)" } else { "" }
    )
}

fn stakater_version(bin: &Path) -> String {
    if let Ok(v) = std::env::var("STAKATER_VERSION")
        && !v.is_empty()
    {
        return v;
    }
    std::process::Command::new("go")
        .args(["version", "-m"])
        .arg(bin)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find_map(|l| l.trim().strip_prefix("mod\t").map(|m| m.replace('\t', " ")))
        })
        .unwrap_or_else(|| "unknown version".into())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")?
                    .split_once(':')
                    .map(|(_, m)| m.trim().to_string())
            })
        })
        .unwrap_or_default()
}
