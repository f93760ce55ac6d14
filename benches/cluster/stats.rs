//! Latency samples and their percentiles, and how figures are shown in rows.

use std::time::Instant;

use serde_json::{Value, json};

use crate::probe;

pub fn ms(seconds: f64) -> String {
    if seconds < 1.0 {
        format!("{:.1} ms", seconds * 1e3)
    } else {
        format!("{seconds:.2} s")
    }
}

pub fn mib(bytes: u64) -> String {
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
pub struct Samples {
    pub seconds: Vec<f64>,
    pub missed: usize,
    /// Fan-out rounds: CPU seconds the contender used, and the machine's cores were busy, from
    /// the write until the last rollout was seen (the control plane and the contender share
    /// the machine's cores).
    contender_cpu_s: Vec<f64>,
    machine_busy_s: Vec<f64>,
}

impl Samples {
    /// One change started at `t0`: its rollout seen at `seen`, or missed (none before the deadline).
    pub fn record(&mut self, seen: Option<Instant>, t0: Instant) {
        match seen {
            Some(at) => self.seconds.push(at.saturating_duration_since(t0).as_secs_f64()),
            None => self.missed += 1,
        }
    }

    /// Records the CPU used since `before` (the contender's, when `pid` is one, and the
    /// machine's), and prints it.
    pub fn cpu_since(&mut self, before: CpuBefore, pid: Option<u32>) {
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
    pub fn p(&self, p: f64) -> f64 {
        // A missed sample counts as slower than every arrived one.
        let mut s = self.sorted();
        s.extend(std::iter::repeat_n(f64::INFINITY, self.missed));
        percentile(&s, p)
    }
    pub fn json(&self) -> Value {
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

pub fn show(x: f64) -> String {
    if x.is_finite() {
        ms(x)
    } else {
        "never (deadline)".into()
    }
}
