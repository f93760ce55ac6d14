//! Scale: the cluster topped up to 80,000 objects, then ours' start-up, memory and latency.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::json;

use crate::harness::Bench;
use crate::inventory::{self, Object};
use crate::probe::{self, Who};
use crate::stats::{mib, ms, show};

impl Bench {
    /// Tops the cluster up to 50,000 Secrets, 20,000 ConfigMaps and 10,000 Deployments (small
    /// objects, 20 namespaces), then one cold start of ours and the latency samples again.
    pub async fn scale(&mut self) -> Result<()> {
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
        let mut c = self.start(Who::Ours, &["--coalesce-window=0s"], "scale")?;
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
            &format!("Scale: reload latency p99 (p50), `--coalesce-window=0s`, {n} changes"),
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
}
