//! Benchmarks against the real control plane (`make bench`; ignored in `make test`): fan-out of
//! one ConfigMap change to many Deployments, timed from the write to every Deployment stamped.

use std::time::{Duration, Instant};

use reloader::core::hash::sha1_hex;
use serde_json::json;

use crate::engine::{Fixture, auto, uses};
use crate::support::Reloader;

async fn all_stamped(f: &Fixture, apps: &[String], expected: &str) {
    loop {
        let list = f.deployments.list(&Default::default()).await.unwrap();
        let done = list
            .items
            .iter()
            .filter(|d| apps.contains(&d.metadata.name.clone().unwrap_or_default()))
            .filter(|d| {
                d.spec
                    .as_ref()
                    .and_then(|s| s.template.metadata.as_ref())
                    .and_then(|m| m.annotations.as_ref())
                    .and_then(|a| a.get(reloader::core::vocabulary::fixed::TEMPLATE_HASHES))
                    .is_some_and(|h| h.starts_with(expected))
            })
            .count();
        if done == apps.len() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
#[ignore = "benchmark: run by make bench"]
async fn bench_fanout_one_configmap_to_50_deployments() {
    let f = Fixture::new("bench").await;
    f.config_map("cfg", json!({"k": "v0"})).await;
    f.secret("db", json!({"p": "1"})).await;
    let apps: Vec<String> = (0..50).map(|i| format!("app{i:02}")).collect();
    for app in &apps {
        f.deployment(app, auto(), uses("cfg", "db")).await;
    }
    let reloader = Reloader::start(
        &f.ns.name,
        &[
            "--reload-window=0",
            "--max-reloads-per-second=1000",
            "--max-reloads-per-second-per-namespace=1000",
        ],
    );
    for app in &apps {
        f.wait_acknowledged(app).await;
    }
    let mut times = Vec::new();
    for round in 1..=7 {
        let value = format!("v{round}");
        let expected = format!("configmap/cfg={}", sha1_hex(format!("k={value}").as_bytes()));
        let start = Instant::now();
        f.set_config_map("cfg", json!({"k": value})).await;
        tokio::time::timeout(Duration::from_secs(120), all_stamped(&f, &apps, &expected))
            .await
            .expect("all stamped");
        times.push(start.elapsed());
    }
    times.sort();
    println!(
        "fan-out, 1 ConfigMap -> 50 Deployments, write to all stamped: median {:?} (min {:?}, max {:?}, 7 rounds)",
        times[3], times[0], times[6]
    );
    assert_eq!(
        reloader.metric("reloader_reload_executed_total{success=\"true\"}"),
        350.0
    );
}
