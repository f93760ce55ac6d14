//! Fairness: a storm of reloads in one namespace while sources change in another.

use std::time::{Duration, Instant};

use anyhow::Result;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::harness::Bench;
use crate::inventory::{self, Object};
use crate::probe::Who;
use crate::stats::{Samples, show};
use crate::support;

impl Bench {
    /// Namespace A: 500 dependents of one ConfigMap, paced by the per-namespace limit (5/s,
    /// the default). While A's reloads are queued, 20 sources in namespace B change, one
    /// dependent each, 100 ms apart; B's latencies are what a storm elsewhere costs.
    pub async fn fairness(&mut self) -> Result<()> {
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
}
