//! Switching from Stakater Reloader (docs/migrating.md): workloads stamped exactly as Stakater
//! stamps them, then the reloader installed from the chart with the same (Stakater's) values
//! file and run under the chart's identity. Nothing rolls at the switch; the first real change
//! rolls each dependent exactly once.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use kube::ResourceExt;
use kube::api::PostParams;
use reloader::core::hash::{configmap_hash_of, secret_hash_of};
use reloader::core::hash_record::env_var_name;
use reloader::core::source::{SourceKind, SourceRef};
use reloader::core::vocabulary::fixed;
use serde_json::{Value, json};

use crate::engine::{Fixture, auto, uses};
use crate::helm::{Release, stakater_values};
use crate::support::{TestNamespace, unique_name};

/// A Deployment using ConfigMap `cfg` and Secret `db`, with `env` on its container and
/// `template_annotations` on its pod template: what Stakater leaves after rolling it.
async fn stakater_stamped(f: &Fixture, name: &str, env: Value, template_annotations: Value) {
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": auto()},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": template_annotations},
                "spec": {"containers": [{"name": "app", "image": "registry.example/app:1",
                                         "envFrom": uses("cfg", "db"), "env": env}]}
            }
        }
    }))
    .unwrap();
    f.deployments.create(&PostParams::default(), &d).await.unwrap();
}

#[tokio::test]
async fn switching_from_stakater_with_its_values_rolls_nothing_then_each_change_rolls_once() {
    let f = Fixture::new("migrate").await;
    crate::helm::serve_openshift_api(&f.client).await;
    let home = TestNamespace::new(&f.client, "rlhome").await;
    let cfg = BTreeMap::from([("k".to_string(), "v1".to_string())]);
    let db = BTreeMap::from([("p".to_string(), b"1".to_vec())]);
    f.config_map("cfg", json!({"k": "v1"})).await;
    f.secret("db", json!({"p": "1"})).await;
    let cfg_hash = configmap_hash_of(Some(&cfg), None).to_string();
    let db_hash = secret_hash_of(Some(&db)).to_string();

    // Stakater's default strategy (env-vars): STAKATER_<NAME>_<TYPE>=<sha1> on the container.
    let cfg_var = env_var_name(&SourceRef::new(SourceKind::ConfigMap, "cfg"));
    let db_var = env_var_name(&SourceRef::new(SourceKind::Secret, "db"));
    assert_eq!(
        (cfg_var.as_str(), db_var.as_str()),
        ("STAKATER_CFG_CONFIGMAP", "STAKATER_DB_SECRET")
    );
    stakater_stamped(
        &f,
        "envvars",
        json!([{"name": cfg_var, "value": cfg_hash}, {"name": db_var, "value": db_hash}]),
        json!({}),
    )
    .await;
    // Stakater's annotations strategy: only last-reloaded-from, for the last source it rolled on.
    let last = json!({"type": "CONFIGMAP", "name": "cfg", "namespace": f.ns.name, "hash": cfg_hash,
                      "containerRefs": ["app"], "observedAt": 1_795_651_200});
    stakater_stamped(
        &f,
        "annotated",
        json!([]),
        json!({fixed::LAST_RELOADED_FROM: last.to_string()}),
    )
    .await;
    // A workload Stakater never rolled: no stamp at all.
    f.deployment("never", auto(), uses("cfg", "db")).await;
    let apps = ["envvars", "annotated", "never"];
    for app in apps {
        f.wait_revisions(app, 1).await;
    }

    // The reloader from the chart with Stakater's values file, unchanged. The local run is
    // confined to this test's namespaces (the chart's install is global).
    let release = Release::install(&unique_name("m"), &home.name, &[&stakater_values()]);
    let local = release.run(&[format!("--namespaces={},{}", f.ns.name, home.name)]);
    local.reloader.wait_ready().await;
    // Stamped workloads are up to date; the others are acknowledged (recorded on the
    // metadata, which never rolls pods).
    f.wait_acknowledged("annotated").await;
    f.wait_acknowledged("never").await;
    local.reloader.settle(3.0).await;
    for app in apps {
        assert_eq!(f.revisions(app).await, 1, "{app} rolled at the switch");
    }
    let envvars = f.deployments.get("envvars").await.unwrap();
    let record = envvars.annotations().get(fixed::ACKNOWLEDGED_HASHES);
    assert!(record.is_none(), "Stakater's env vars are a record already: {record:?}");

    // The first real change rolls each dependent exactly once.
    f.set_config_map("cfg", json!({"k": "v2"})).await;
    for app in apps {
        f.wait_revisions(app, 2).await;
    }
    let rolled = local
        .reloader
        .metric("reloader_reload_executed_total{success=\"true\"}");
    assert_eq!(rolled, 3.0);
    // And nothing more: a later reconcile of everything changes nothing.
    let before = local.reloader.metric_sum("reloader_reconciles_total");
    f.set_secret("db", json!({"p": "1"})).await; // same content: no change
    local.reloader.settle(before).await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    for app in apps {
        assert_eq!(f.revisions(app).await, 2, "{app} rolled twice");
    }
    // The env-vars workload now carries the keyed annotation (our default strategy) as well.
    let envvars = f.deployments.get("envvars").await.unwrap();
    let template = envvars.spec.unwrap().template;
    assert!(
        template
            .metadata
            .unwrap()
            .annotations
            .unwrap_or_default()
            .contains_key(fixed::TEMPLATE_HASHES)
    );
    local.assert_no_denials();
}

/// A Stakater release upgraded in place to this chart with its own values file, then rolled
/// back. Needs Stakater's chart (not part of this repository): run it with
/// `RELOADER_STAKATER_CHART=<checkout>/deployments/kubernetes/chart/reloader cargo test --test
/// cluster stakater_release -- --ignored`.
#[tokio::test]
#[ignore = "needs Stakater's chart: RELOADER_STAKATER_CHART"]
async fn a_stakater_release_upgrades_in_place_and_rolls_back() {
    use crate::helm::{Rendered, helm_ok};
    use k8s_openapi::api::apps::v1::Deployment;
    let stakater_chart = std::env::var("RELOADER_STAKATER_CHART").expect("RELOADER_STAKATER_CHART");
    let client = crate::support::client().await;
    let home = TestNamespace::new(&client, "rlmig").await;
    let config = crate::support::kubeconfig().display().to_string();
    let values = stakater_values().display().to_string();
    let release = unique_name("s");
    let chart = crate::helm::chart();
    let helm = |verb: &str, chart: &str| {
        helm_ok(&[
            verb,
            &release,
            chart,
            "-n",
            &home.name,
            "--kubeconfig",
            &config,
            "-f",
            &values,
        ])
    };
    helm("install", &stakater_chart);
    let deployments: kube::Api<Deployment> = kube::Api::namespaced(client.clone(), &home.name);
    let name = format!("{release}-reloader");
    let image = |d: Deployment| {
        d.spec.unwrap().template.spec.unwrap().containers[0]
            .image
            .clone()
            .unwrap()
    };
    assert!(image(deployments.get(&name).await.unwrap()).contains("stakater"));
    helm("upgrade", &chart);
    assert_eq!(
        image(deployments.get(&name).await.unwrap()),
        "ghcr.io/example/reloader:0.1.0"
    );
    let ours = Rendered::parse(&helm_ok(&[
        "get",
        "manifest",
        &release,
        "-n",
        &home.name,
        "--kubeconfig",
        &config,
    ]));
    ours.get("ClusterRole", &format!("{name}-role"));
    helm_ok(&["rollback", &release, "1", "-n", &home.name, "--kubeconfig", &config]);
    assert!(image(deployments.get(&name).await.unwrap()).contains("stakater"));
    helm_ok(&["uninstall", &release, "-n", &home.name, "--kubeconfig", &config]);
}
