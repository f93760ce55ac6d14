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

mod fairness;
mod fan_out;
mod harness;
mod inventory;
mod latency;
mod probe;
mod results;
mod scale;
mod small;
mod stats;

use std::path::Path;

use anyhow::{Result, bail};
use reloader_dev_support::{cluster as support, render};

use harness::Bench;
use results::{merge_parts, render_readme};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

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
