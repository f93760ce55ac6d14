//! Per-key reloads against the real control plane (kwok pods): a Deployment reading one key of
//! a ConfigMap (`configMapKeyRef`) and one key of a Secret (a volume's `items`), under both
//! strategies. A change to keys it does not read rolls nothing, with the reloader settled; a
//! change to a key it reads rolls it once; turning per-key reloads off rolls nothing, and then
//! any change rolls again. `reloader explain` names the keys it reads.

use k8s_openapi::api::apps::v1::Deployment;
use kube::ResourceExt;
use kube::api::{Patch, PatchParams, PostParams};
use reloader::core::vocabulary::{defaults, fixed};
use serde_json::{Value, json};

use crate::engine::Fixture;
use crate::explain::explain_with;
use crate::support::{Reloader, eventually};

const APP: &str = "app";

/// The Deployment: `DB_HOST` of ConfigMap `cfg`, `password` of Secret `db` as a file.
async fn reader(f: &Fixture) {
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": APP, "annotations": {defaults::AUTO: "true", fixed::PER_KEY: "true"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": APP}},
            "template": {
                "metadata": {"labels": {"app": APP}},
                "spec": {
                    "containers": [{"name": "app", "image": "registry.example/app:1",
                        "env": [{"name": "DB_HOST", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "DB_HOST"}}}],
                        "volumeMounts": [{"name": "db", "mountPath": "/etc/db"}]}],
                    "volumes": [{"name": "db", "secret": {"secretName": "db", "items": [{"key": "password", "path": "password"}]}}]
                }
            }
        }
    }))
    .unwrap();
    f.deployments.create(&PostParams::default(), &d).await.unwrap();
}

/// How many source updates the reloader has received.
fn updates(reloader: &Reloader) -> f64 {
    reloader.metric_sum_matching("reloader_events_received_total", "event_type=\"update\"")
}

/// Makes `change`, waits until the reloader has received its `events` updates and answered
/// them, and returns how many reloads it then has made.
async fn changed<F: std::future::Future<Output = ()>>(reloader: &Reloader, events: f64, change: F) -> f64 {
    let (received, done) = (updates(reloader), reloader.metric_sum("reloader_reconciles_total"));
    change.await;
    eventually("the updates received", || async {
        (updates(reloader) >= received + events).then_some(())
    })
    .await;
    reloader.settle(done + 1.0).await;
    reloader.metric("reloader_reload_executed_total{success=\"true\"}")
}

/// The value the workload's pods were rolled with for `source` (`configmap/cfg`): the template
/// annotation's entry, or the env var's value.
async fn stamp(f: &Fixture, strategy: &str, source: &str) -> String {
    let d: Value = serde_json::to_value(f.deployments.get(APP).await.unwrap()).unwrap();
    let template = &d["spec"]["template"];
    if strategy == "annotations" {
        let record = template["metadata"]["annotations"][fixed::TEMPLATE_HASHES]
            .as_str()
            .unwrap_or_default();
        let prefix = format!("{source}=");
        record
            .split(',')
            .find_map(|e| e.strip_prefix(&prefix))
            .unwrap_or_default()
            .to_string()
    } else {
        let (kind, name) = source.split_once('/').unwrap();
        let var = format!("STAKATER_{}_{}", name.to_uppercase(), kind.to_uppercase());
        let env = template["spec"]["containers"][0]["env"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let found = env.iter().find(|e| e["name"] == var.as_str());
        found.and_then(|e| e["value"].as_str()).unwrap_or_default().to_string()
    }
}

#[tokio::test]
async fn an_unread_key_rolls_nothing_and_a_read_key_rolls_once_under_both_strategies() {
    for strategy in ["annotations", "env-vars"] {
        let f = Fixture::new("per-key").await;
        let ns = f.ns.name.clone();
        f.config_map("cfg", json!({"DB_HOST": "db1", "DB_PORT": "5432", "LOG": "info"}))
            .await;
        f.secret("db", json!({"password": "p1", "user": "admin"})).await;
        reader(&f).await;
        let flag = format!("--reload-strategy={strategy}");
        let reloader = Reloader::start(&ns, &[&flag]);
        f.wait_acknowledged(APP).await;
        f.wait_revisions(APP, 1).await;
        let acknowledged = f.deployments.get(APP).await.unwrap().annotations()[fixed::ACKNOWLEDGED_HASHES].clone();
        assert!(
            acknowledged.contains("configmap/cfg=keys.") && acknowledged.contains("secret/db=keys."),
            "{strategy}: {acknowledged}"
        );

        // Keys it does not read, in both sources: nothing rolls.
        let reloads = changed(&reloader, 2.0, async {
            f.set_config_map("cfg", json!({"DB_PORT": "6543", "LOG": "debug", "NEW": "x"}))
                .await;
            f.set_secret("db", json!({"user": "root"})).await;
        })
        .await;
        assert_eq!(reloads, 0.0, "{strategy}");
        assert_eq!(f.revisions(APP).await, 1, "{strategy}: an unread key rolled it");

        // The key it reads of the ConfigMap: one rollout, stamped with the keys' hash.
        let reloads = changed(&reloader, 1.0, f.set_config_map("cfg", json!({"DB_HOST": "db2"}))).await;
        f.wait_revisions(APP, 2).await;
        assert_eq!(reloads, 1.0, "{strategy}");
        let cfg = stamp(&f, strategy, "configmap/cfg").await;
        assert!(cfg.starts_with("keys."), "{strategy}: {cfg}");
        // The key it reads of the Secret (a file of the volume): one more.
        let reloads = changed(&reloader, 1.0, f.set_secret("db", json!({"password": "p2"}))).await;
        f.wait_revisions(APP, 3).await;
        assert_eq!(reloads, 2.0, "{strategy}");
        assert!(
            stamp(&f, strategy, "secret/db").await.starts_with("keys."),
            "{strategy}"
        );
        // Nothing more came of either.
        let reloads = changed(&reloader, 1.0, f.set_config_map("cfg", json!({"LOG": "warn"}))).await;
        assert_eq!((reloads, f.revisions(APP).await), (2.0, 3), "{strategy}");

        // explain names the keys it reads, as up to date.
        let flags = [format!("--namespaces={ns}"), flag.clone()];
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let v = explain_with(
            &ns,
            &format!("deploy/{APP}"),
            &["--reloader-namespace", &ns],
            &flags,
            &[],
        );
        let report = v["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["source"] == "configmap/cfg");
        let report = report.unwrap_or_else(|| panic!("{v:#}"));
        assert_eq!(report["keys"]["read"], json!(["DB_HOST"]), "{v:#}");
        assert_eq!(report["state"], "up-to-date", "{v:#}");

        // Turned off: the record is adopted without a rollout; then any change rolls again.
        f.deployments
            .patch(
                APP,
                &PatchParams::default(),
                &Patch::Merge(&json!({"metadata": {"annotations": {fixed::PER_KEY: "false"}}})),
            )
            .await
            .unwrap();
        eventually("the whole content acknowledged", || async {
            let d = f.deployments.get(APP).await.ok()?;
            let record = d.annotations().get(fixed::ACKNOWLEDGED_HASHES)?.clone();
            (!record.contains("configmap/cfg=keys.")).then_some(())
        })
        .await;
        reloader.settle(0.0).await;
        assert_eq!(f.revisions(APP).await, 3, "{strategy}: turning per-key off rolled it");
        let reloads = changed(&reloader, 1.0, f.set_config_map("cfg", json!({"LOG": "error"}))).await;
        f.wait_revisions(APP, 4).await;
        assert_eq!(reloads, 3.0, "{strategy}");
    }
}
