//! Fan-out: one ConfigMap used by 500 (and 5,000) Deployments, and its floor.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::harness::Bench;
use crate::inventory::{self, Object};
use crate::probe::{self, Contender, Key, Who};
use crate::stats::{Samples, show};
use crate::support;

/// Requests in flight when the bench itself writes the fan-out (our default `--workers`).
const FLOOR_CONCURRENCY: usize = 16;

/// Ours, rate limits out of the way (the fan-out and latency rows measure the engine, not the
/// pacing); everything else at its default.
const UNLIMITED: [&str; 2] = [
    "--max-reloads-per-second=100000",
    "--max-reloads-per-second-per-namespace=100000",
];

impl Bench {
    pub async fn fan_out_namespace(&mut self, what: &str, dependents: usize) -> Result<(String, Vec<Key>)> {
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

    pub async fn fan_out_500(&mut self) -> Result<()> {
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

    pub async fn fan_out_5000(&mut self) -> Result<()> {
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
}
