//! Workloads that are custom resources: Argo Rollouts (with and without
//! `rollout-strategy: restart`) and OpenShift DeploymentConfigs, served here by stand-in CRDs
//! with the real group, version and pod-template path (no Argo or OpenShift controller runs).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, PostParams};
use kube::{Api, Client};
use reloader::core::hash::sha1_hex;
use reloader::core::vocabulary::{defaults, fixed};
use serde_json::{Value, json};

use crate::engine::{Fixture, uses};
use crate::support::{Reloader, eventually, wait_for};

/// Creates (once per control plane) a namespaced CRD that keeps any fields.
pub async fn ensure_crd(client: &Client, group: &str, kind: &str, plural: &str, version: &str) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = format!("{plural}.{group}");
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.to_lowercase(), "listKind": format!("{kind}List")},
            "versions": [{"name": version, "served": true, "storage": true,
                          "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]
        }
    }))
    .unwrap();
    match crds.create(&PostParams::default(), &crd).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("creating CRD {name}: {e}"),
    }
    wait_for(&crds, &name, "Established", |c: Option<&CustomResourceDefinition>| {
        c.and_then(|c| c.status.as_ref())
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Established" && c.status == "True"))
    })
    .await;
}

pub fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: format!("{group}/{version}"),
        kind: kind.into(),
        plural: plural.into(),
    }
}

fn with_template(api_version: &str, kind: &str, name: &str, annotations: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": api_version, "kind": kind,
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"replicas": 1, "template": {"metadata": {"labels": {"app": name}},
                 "spec": {"containers": [{"name": "app", "image": "registry.example/app:1", "envFrom": uses("cfg", "db")}]}}}
    }))
    .unwrap()
}

async fn value_at(api: &Api<DynamicObject>, name: &str, pointer: &str) -> Option<Value> {
    let obj = api.get(name).await.ok()?;
    serde_json::to_value(obj).ok()?.pointer(pointer).cloned()
}

#[tokio::test]
async fn argo_rollouts_roll_or_restart_and_deployment_configs_roll() {
    let f = Fixture::new("crds").await;
    ensure_crd(&f.client, "argoproj.io", "Rollout", "rollouts", "v1alpha1").await;
    ensure_crd(
        &f.client,
        "apps.openshift.io",
        "DeploymentConfig",
        "deploymentconfigs",
        "v1",
    )
    .await;
    f.config_map("cfg", json!({"k": "v1"})).await;
    f.secret("db", json!({"password": "p"})).await;
    let rollouts: Api<DynamicObject> = Api::namespaced_with(
        f.client.clone(),
        &f.ns.name,
        &resource("argoproj.io", "v1alpha1", "Rollout", "rollouts"),
    );
    let configs: Api<DynamicObject> = Api::namespaced_with(
        f.client.clone(),
        &f.ns.name,
        &resource("apps.openshift.io", "v1", "DeploymentConfig", "deploymentconfigs"),
    );
    let pp = PostParams::default();
    rollouts
        .create(
            &pp,
            &with_template(
                "argoproj.io/v1alpha1",
                "Rollout",
                "canary",
                json!({defaults::AUTO: "true"}),
            ),
        )
        .await
        .unwrap();
    let restart = json!({defaults::AUTO: "true", fixed::ROLLOUT_STRATEGY: "restart"});
    rollouts
        .create(
            &pp,
            &with_template("argoproj.io/v1alpha1", "Rollout", "restarter", restart),
        )
        .await
        .unwrap();
    configs
        .create(
            &pp,
            &with_template(
                "apps.openshift.io/v1",
                "DeploymentConfig",
                "legacy",
                json!({defaults::AUTO: "true"}),
            ),
        )
        .await
        .unwrap();
    let reloader = Reloader::start(&f.ns.name, &["--is-Argo-Rollouts=true"]);
    let acked = "/metadata/annotations/reloader.stakater.com~1acknowledged-hashes";
    for (api, name) in [(&rollouts, "canary"), (&rollouts, "restarter"), (&configs, "legacy")] {
        eventually(&format!("{name} acknowledged"), || async {
            value_at(api, name, acked).await
        })
        .await;
    }
    let restarter_template = value_at(&rollouts, "restarter", "/spec/template").await;

    f.set_config_map("cfg", json!({"k": "v2"})).await;
    let stamp = json!(format!(
        "configmap/cfg={},secret/db={}",
        sha1_hex(b"k=v2"),
        sha1_hex(b"password=p")
    ));
    let template_hashes = "/spec/template/metadata/annotations/reloader.stakater.com~1hashes";
    for (api, name) in [(&rollouts, "canary"), (&configs, "legacy")] {
        eventually(&format!("{name} stamped"), || async {
            (value_at(api, name, template_hashes).await? == stamp).then_some(())
        })
        .await;
    }
    // restart: spec.restartAt set, template untouched, hashes recorded on the metadata.
    let restart_at = eventually("restartAt", || async {
        value_at(&rollouts, "restarter", "/spec/restartAt").await
    })
    .await;
    assert!(restart_at.as_str().is_some_and(|t| t.ends_with('Z')), "{restart_at}");
    assert_eq!(
        value_at(&rollouts, "restarter", "/spec/template").await,
        restarter_template
    );
    assert_eq!(value_at(&rollouts, "restarter", acked).await, Some(stamp.clone()));
    reloader.settle(6.0).await;
    assert_eq!(reloader.metric("reloader_reconciles_total{outcome=\"restarted\"}"), 1.0);
    assert_eq!(reloader.metric("reloader_reconciles_total{outcome=\"rolled\"}"), 2.0);
}

fn pod_status(name: &str, class: &str, version: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "secrets-store.csi.x-k8s.io/v1", "kind": "SecretProviderClassPodStatus",
        "metadata": {"name": name},
        "status": {"podName": name, "secretProviderClassName": class, "mounted": true,
                   "objects": [{"id": "secret/data/db", "version": version}]}
    }))
    .unwrap()
}

#[tokio::test]
async fn a_csi_secret_rotation_across_pods_rolls_once() {
    use k8s_openapi::api::apps::v1::Deployment;
    let f = Fixture::new("csi").await;
    ensure_crd(
        &f.client,
        "secrets-store.csi.x-k8s.io",
        "SecretProviderClassPodStatus",
        "secretproviderclasspodstatuses",
        "v1",
    )
    .await;
    ensure_crd(
        &f.client,
        "secrets-store.csi.x-k8s.io",
        "SecretProviderClass",
        "secretproviderclasses",
        "v1",
    )
    .await;
    let classes: Api<DynamicObject> = Api::namespaced_with(
        f.client.clone(),
        &f.ns.name,
        &resource(
            "secrets-store.csi.x-k8s.io",
            "v1",
            "SecretProviderClass",
            "secretproviderclasses",
        ),
    );
    // An ignored class next to the real one: its rotation must roll nothing.
    let ignored: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "secrets-store.csi.x-k8s.io/v1", "kind": "SecretProviderClass",
        "metadata": {"name": "vault-ignored", "annotations": {"reloader.stakater.com/ignore": "true"}},
        "spec": {"provider": "vault"}
    }))
    .unwrap();
    classes.create(&PostParams::default(), &ignored).await.unwrap();
    let statuses: Api<DynamicObject> = Api::namespaced_with(
        f.client.clone(),
        &f.ns.name,
        &resource(
            "secrets-store.csi.x-k8s.io",
            "v1",
            "SecretProviderClassPodStatus",
            "secretproviderclasspodstatuses",
        ),
    );
    // As the CSI driver reports it for two pods of the app.
    for pod in ["app-a", "app-b"] {
        statuses
            .create(&PostParams::default(), &pod_status(pod, "vault-db", "1"))
            .await
            .unwrap();
    }
    statuses
        .create(&PostParams::default(), &pod_status("app-ignored", "vault-ignored", "1"))
        .await
        .unwrap();
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "app", "annotations": {"secretproviderclass.reloader.stakater.com/auto": "true"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "app"}},
                 "template": {"metadata": {"labels": {"app": "app"}},
                              "spec": {"containers": [{"name": "app", "image": "registry.example/app:1",
                                                       "volumeMounts": [{"name": "secrets", "mountPath": "/mnt/secrets"},
                                                                        {"name": "other", "mountPath": "/mnt/other"}]}],
                                       "volumes": [{"name": "secrets", "csi": {"driver": "secrets-store.csi.k8s.io", "readOnly": true,
                                                    "volumeAttributes": {"secretProviderClass": "vault-db"}}},
                                                   {"name": "other", "csi": {"driver": "secrets-store.csi.k8s.io", "readOnly": true,
                                                    "volumeAttributes": {"secretProviderClass": "vault-ignored"}}}]}}}
    }))
    .unwrap();
    f.deployments.create(&PostParams::default(), &d).await.unwrap();
    // Discovery follows a new CRD a moment after it is Established.
    eventually("the CSI kinds in discovery", || async {
        let list = f
            .client
            .list_api_group_resources("secrets-store.csi.x-k8s.io/v1")
            .await
            .ok()?;
        (list.resources.len() >= 2).then_some(())
    })
    .await;
    let reloader = Reloader::start(&f.ns.name, &["--enable-csi-integration"]);
    f.wait_acknowledged("app").await;
    let record = f.deployments.get("app").await.unwrap().metadata.annotations.unwrap()
        [reloader::core::vocabulary::fixed::ACKNOWLEDGED_HASHES]
        .clone();
    assert!(record.starts_with("secretproviderclass/vault-db="), "{record}");
    assert!(
        !record.contains("vault-ignored"),
        "an ignored class is no dependency: {record}"
    );

    // The ignored class rotates: nothing happens.
    let mut other = statuses.get("app-ignored").await.unwrap();
    other.data["status"]["objects"][0]["version"] = json!("9");
    statuses
        .replace("app-ignored", &PostParams::default(), &other)
        .await
        .unwrap();
    // The rotation reaches the pods one at a time.
    let v2 = reloader::core::hash::sha1_hex(b"SecretProviderClassName=vault-db;secret/data/db=2");
    for pod in ["app-a", "app-b"] {
        let mut status = statuses.get(pod).await.unwrap();
        status.data["status"]["objects"][0]["version"] = json!("2");
        statuses.replace(pod, &PostParams::default(), &status).await.unwrap();
    }
    let expected = format!("secretproviderclass/vault-db={v2}");
    eventually("stamped with the new version", || async {
        f.template_hashes("app").await.filter(|h| *h == expected)
    })
    .await;
    reloader.settle(3.0).await;
    f.wait_revisions("app", 2).await;
    assert_eq!(reloader.metric("reloader_reload_executed_total{success=\"true\"}"), 1.0);
}
