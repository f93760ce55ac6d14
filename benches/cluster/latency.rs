//! Reload latency, its floor (the bench writing what a controller would), and the API requests
//! per change.

use std::time::{Duration, Instant};

use anyhow::Result;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Map, Value, json};

use crate::harness::Bench;
use crate::probe::{self, Key, Who};
use crate::stats::{Samples, show};
use crate::{inventory, support};

/// ConfigMaps (and a Deployment using each) in the latency namespace; samples reuse them in turn.
pub const LATENCY_OBJECTS: usize = 500;

/// Pause between two latency samples: slower than the default per-namespace pace (5 rollouts
/// a second), so the rows measure the reload, not the pacing (its burst of 50 hid this at 60
/// quick changes; at 200 every change past the 70th waited for its token).
const CHANGE_SPACING: Duration = Duration::from_millis(250);

impl Bench {
    /// Changes `lat-<i>` for `indices` (modulo the [`LATENCY_OBJECTS`]) one after the other;
    /// each sample is the PATCH of the ConfigMap (clock started just before it) to its
    /// Deployment's rollout seen by the watch.
    pub async fn latency_samples(
        &self,
        tag: &str,
        indices: std::ops::Range<usize>,
        limit: Duration,
    ) -> Result<Samples> {
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

    pub async fn latency_small(&mut self) -> Result<()> {
        let n = self.samples;
        let mut api_rows = Vec::new();
        for who in self.contenders() {
            let flags: &[&str] = if who == Who::Ours {
                &["--coalesce-window=0s"]
            } else {
                &[]
            };
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
            "Reload latency, ConfigMap PATCH → its Deployment's pod template patched (watch), `--coalesce-window=0s`, p50 of {n} changes, 1,000 Deployments present"
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
            &format!("Reload latency at the default `--coalesce-window=2s`, p50 / p99 of {window_n} changes"),
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
    pub async fn latency_floor(&self, n: usize) -> Result<Samples> {
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
