//! The small inventory, and memory and start-up against it.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::json;

use crate::REPO;
use crate::harness::Bench;
use crate::inventory::{self, Object};
use crate::latency::LATENCY_OBJECTS;
use crate::probe::{self, Who};
use crate::stats::{mib, ms};

impl Bench {
    /// 10 namespaces of 500 Secrets (4 Helm releases of 200 KiB, the rest 2 KiB Opaque), 200
    /// ConfigMaps of 2 KiB and 50 auto Deployments using one ConfigMap and one Secret each; plus
    /// the latency namespace: 500 ConfigMaps and 500 Deployments, one each.
    pub async fn small_inventory(&mut self) -> Result<()> {
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

    pub async fn memory_small(&mut self) -> Result<()> {
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
}
