//! The harness: the contenders, how they are started, the rows and figures a scenario records,
//! the wait for an idle control plane, and every scenario in priority order.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use kube::Client;
use serde_json::{Map, Value, json};

use crate::probe::{self, Contender, Rollouts, Who};
use crate::{REPO, inventory, support};

pub struct Bench {
    pub client: Client,
    pub kubeconfig: PathBuf,
    pub rollouts: Rollouts,
    pub stakater: Option<PathBuf>,
    pub stakater_version: Option<String>,
    pub run: String,
    pub samples: usize,
    pub scale: bool,
    pub rows: Vec<Value>,
    pub figures: Map<String, Value>,
    pub inventory: Vec<String>,
    pub logs: PathBuf,
    /// Figures by name, to put ours beside Stakater's.
    pub theirs: HashMap<String, f64>,
    /// Measurements not taken that did not stop their scenario.
    pub failures: Vec<String>,
    /// How long each latency series waited for the control plane to be idle ([`Bench::settle`]).
    pub settled: std::sync::Mutex<Map<String, Value>>,
}

impl Bench {
    pub async fn new() -> Result<Self> {
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

    pub fn ns(&self, what: &str) -> String {
        format!("{}-{what}", self.run)
    }

    pub fn contenders(&self) -> Vec<Who> {
        let mut who = vec![Who::Ours];
        if self.stakater.is_some() {
            who.push(Who::Stakater);
        }
        who
    }

    pub fn start(&self, who: Who, flags: &[&str], label: &str) -> Result<Contender> {
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

    pub fn stakater_name(&self) -> String {
        format!("Stakater {}", self.stakater_version.as_deref().unwrap_or("?"))
    }

    #[allow(clippy::too_many_arguments)]
    pub fn row(
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
    pub fn baseline_may_fail<T>(&mut self, who: Who, what: &str, measured: Result<T>) -> Result<Option<T>> {
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

    pub fn figure(&mut self, name: &str, value: Value) {
        self.figures.insert(name.to_string(), value);
    }

    /// Before a latency series: waits (at most 5 minutes) for the control plane to be idle, so
    /// the series measures the contender rather than the controller-manager still catching up
    /// with an inventory just created or just acknowledged. Recorded under `tag`.
    pub async fn settle(&self, tag: &str) {
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
    pub async fn all(&mut self) -> Vec<String> {
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
