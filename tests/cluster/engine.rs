//! The reload engine against the real control plane: the reloader binary runs as a process,
//! watching the test's namespace; assertions read what the API server holds.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use reloader::core::vocabulary::{defaults, fixed};
use serde_json::{Value, json};

use crate::support::{Reloader, TestNamespace, client, eventually, wait_for};

pub struct Fixture {
    pub client: Client,
    pub ns: TestNamespace,
    pub deployments: Api<Deployment>,
    pub config_maps: Api<ConfigMap>,
    pub secrets: Api<Secret>,
}

impl Fixture {
    pub async fn new(prefix: &str) -> Self {
        Self::on(client().await, crate::support::kubeconfig(), prefix).await
    }

    /// A fixture in the control plane of `kubeconfig`.
    pub async fn on(client: Client, kubeconfig: &std::path::Path, prefix: &str) -> Self {
        let ns = TestNamespace::on(&client, kubeconfig, prefix).await;
        Self {
            deployments: Api::namespaced(client.clone(), &ns.name),
            config_maps: Api::namespaced(client.clone(), &ns.name),
            secrets: Api::namespaced(client.clone(), &ns.name),
            client,
            ns,
        }
    }

    pub async fn config_map(&self, name: &str, data: Value) {
        let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": name}, "data": data})).unwrap();
        self.config_maps.create(&PostParams::default(), &cm).await.unwrap();
    }

    pub async fn secret(&self, name: &str, data: Value) {
        let s: Secret = serde_json::from_value(json!({"metadata": {"name": name}, "stringData": data})).unwrap();
        self.secrets.create(&PostParams::default(), &s).await.unwrap();
    }

    pub async fn set_config_map(&self, name: &str, data: Value) {
        self.config_maps
            .patch(name, &PatchParams::default(), &Patch::Merge(&json!({"data": data})))
            .await
            .unwrap();
    }

    pub async fn set_secret(&self, name: &str, data: Value) {
        self.secrets
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"stringData": data})),
            )
            .await
            .unwrap();
    }

    /// A Deployment with `annotations` on its metadata, using `env_from` sources.
    pub async fn deployment(&self, name: &str, annotations: Value, env_from: Value) {
        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": name, "annotations": annotations},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "app", "image": "registry.example/app:1", "envFrom": env_from}]}
                }
            }
        }))
        .unwrap();
        self.deployments.create(&PostParams::default(), &d).await.unwrap();
    }

    /// `count` auto-reloading Deployments `app0..`, all using ConfigMap `cfg` and Secret `db`.
    pub async fn apps(&self, count: usize) -> Vec<String> {
        let apps: Vec<String> = (0..count).map(|i| format!("app{i}")).collect();
        for app in &apps {
            self.deployment(app, auto(), uses("cfg", "db")).await;
        }
        apps
    }

    /// How many ReplicaSets (revisions) a Deployment has had.
    pub async fn revisions(&self, app: &str) -> usize {
        let rs: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &self.ns.name);
        rs.list(&ListParams::default().labels(&format!("app={app}")))
            .await
            .unwrap()
            .items
            .len()
    }

    /// Waits until the Deployment controller has observed the latest spec and has `count`
    /// ReplicaSets.
    pub async fn wait_revisions(&self, app: &str, count: usize) {
        eventually(&format!("{app} at {count} revisions"), || async {
            let d = self.deployments.get(app).await.ok()?;
            let observed = d.status.as_ref()?.observed_generation == d.metadata.generation;
            (observed && self.revisions(app).await == count).then_some(())
        })
        .await;
    }

    pub async fn wait_acknowledged(&self, app: &str) {
        wait_for(
            &self.deployments,
            app,
            "acknowledged hashes",
            |d: Option<&Deployment>| d.is_some_and(|d| d.annotations().contains_key(fixed::ACKNOWLEDGED_HASHES)),
        )
        .await;
    }

    pub async fn template_hashes(&self, app: &str) -> Option<String> {
        let d = self.deployments.get(app).await.unwrap();
        d.spec?
            .template
            .metadata?
            .annotations?
            .get(fixed::TEMPLATE_HASHES)
            .cloned()
    }
}

pub fn auto() -> Value {
    json!({defaults::AUTO: "true"})
}

pub fn uses(cm: &str, secret: &str) -> Value {
    json!([{"configMapRef": {"name": cm}}, {"secretRef": {"name": secret}}])
}

#[tokio::test]
async fn a_data_change_rolls_each_dependent_once_and_a_label_change_rolls_nothing() {
    let f = Fixture::new("once").await;
    f.config_map("shared", json!({"k": "v1"})).await;
    f.config_map("unrelated", json!({"k": "v1"})).await;
    f.secret("db", json!({"password": "p1"})).await;
    f.deployment("a", auto(), uses("shared", "db")).await;
    f.deployment("b", auto(), uses("shared", "db")).await;
    f.deployment("c", auto(), uses("unrelated", "db")).await;
    f.deployment("plain", json!({}), uses("shared", "db")).await;
    let reloader = Reloader::start(&f.ns.name, &[]);
    for app in ["a", "b", "c"] {
        f.wait_acknowledged(app).await;
    }
    // Adoption rolled nothing.
    for app in ["a", "b", "c", "plain"] {
        f.wait_revisions(app, 1).await;
    }

    f.set_config_map("shared", json!({"k": "v2"})).await;
    for app in ["a", "b"] {
        f.wait_revisions(app, 2).await;
        let hashes = f.template_hashes(app).await.expect("stamped");
        assert!(hashes.starts_with("configmap/shared="), "{hashes}");
    }
    let reloads = reloader.metric("reloader_reload_executed_total{success=\"true\"}");
    assert_eq!(reloads, 2.0);

    // Labels and annotations are not content.
    let before = reloader.metric_sum("reloader_reconciles_total");
    f.config_maps
        .patch(
            "shared",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    f.secrets
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"annotations": {"x": "y"}}})),
        )
        .await
        .unwrap();
    // The label change itself changes nothing the decision reads, so the reloader may not even
    // reconcile; the annotation change on the Secret does re-evaluate its three dependents.
    reloader.settle(before + 3.0).await;
    assert_eq!(reloader.metric("reloader_reload_executed_total{success=\"true\"}"), 2.0);
    for (app, revisions) in [("a", 2), ("b", 2), ("c", 1), ("plain", 1)] {
        assert_eq!(f.revisions(app).await, revisions, "{app}");
    }
}

#[tokio::test]
async fn restarts_roll_nothing_and_changes_made_while_down_roll_once() {
    let f = Fixture::new("restart").await;
    f.config_map("cfg", json!({"k": "v1"})).await;
    f.secret("db", json!({"password": "p1"})).await;
    f.deployment("a", auto(), uses("cfg", "db")).await;
    f.deployment("b", auto(), uses("cfg", "db")).await;
    let mut first = Reloader::start(&f.ns.name, &[]);
    f.wait_acknowledged("a").await;
    f.wait_acknowledged("b").await;
    f.set_config_map("cfg", json!({"k": "v2"})).await;
    f.wait_revisions("a", 2).await;
    f.wait_revisions("b", 2).await;
    first.kill();

    // A restart with nothing changed writes nothing.
    let mut second = Reloader::start(&f.ns.name, &[]);
    second.wait_ready().await;
    second.settle(2.0).await;
    assert_eq!(second.metric("reloader_reconciles_total{outcome=\"rolled\"}"), 0.0);
    assert_eq!(
        second.metric("reloader_reconciles_total{outcome=\"acknowledged\"}"),
        0.0
    );
    assert_eq!(second.metric("reloader_reconciles_total{outcome=\"up_to_date\"}"), 2.0);
    second.kill();

    // Changes made while it is down are caught up once it is back: one rollout each.
    f.set_secret("db", json!({"password": "p2"})).await;
    let third = Reloader::start(&f.ns.name, &[]);
    f.wait_revisions("a", 3).await;
    f.wait_revisions("b", 3).await;
    third.settle(4.0).await;
    assert_eq!(third.metric("reloader_reload_executed_total{success=\"true\"}"), 2.0);
    for app in ["a", "b"] {
        assert_eq!(f.revisions(app).await, 3, "{app}");
    }
}

#[tokio::test]
async fn a_configmap_and_a_secret_changed_together_roll_once() {
    let f = Fixture::new("coalesce").await;
    f.config_map("cfg", json!({"k": "v1"})).await;
    f.secret("db", json!({"password": "p1"})).await;
    f.deployment("app", auto(), uses("cfg", "db")).await;
    let reloader = Reloader::start(&f.ns.name, &["--coalesce-window=3s"]);
    f.wait_acknowledged("app").await;
    f.set_config_map("cfg", json!({"k": "v2"})).await;
    f.set_secret("db", json!({"password": "p2"})).await;
    f.wait_revisions("app", 2).await;
    reloader.settle(2.0).await;
    assert_eq!(reloader.metric("reloader_reload_executed_total{success=\"true\"}"), 1.0);
    assert_eq!(f.revisions("app").await, 2);
    let hashes = f.template_hashes("app").await.unwrap();
    assert!(
        hashes.contains("configmap/cfg=") && hashes.contains("secret/db="),
        "{hashes}"
    );
}

#[tokio::test]
async fn the_rate_limit_paces_reloads_without_losing_any() {
    let f = Fixture::new("ratelimit").await;
    f.config_map("cfg", json!({"k": "v1"})).await;
    f.secret("db", json!({"password": "p1"})).await;
    let apps = f.apps(6).await;
    let reloader = Reloader::start(&f.ns.name, &["--max-reloads-per-second-per-namespace=2", "--burst=1"]);
    for app in &apps {
        f.wait_acknowledged(app).await;
    }
    let start = tokio::time::Instant::now();
    f.set_config_map("cfg", json!({"k": "v2"})).await;
    for app in &apps {
        f.wait_revisions(app, 2).await;
    }
    // Six writes at two per second with a burst of one take at least 2.5 s.
    let elapsed = start.elapsed();
    assert!(elapsed >= std::time::Duration::from_millis(2400), "{elapsed:?}");
    assert_eq!(reloader.metric("reloader_reload_executed_total{success=\"true\"}"), 6.0);
}

#[tokio::test]
async fn a_source_that_stops_being_ignored_is_adopted_and_then_reloads() {
    let f = Fixture::new("unignore").await;
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "cfg", "annotations": {defaults::IGNORE: "true"}}, "data": {"k": "v1"}
    }))
    .unwrap();
    f.config_maps.create(&PostParams::default(), &cm).await.unwrap();
    f.secret("db", json!({"password": "p1"})).await;
    f.deployment("app", auto(), uses("cfg", "db")).await;
    let _reloader = Reloader::start(&f.ns.name, &[]);
    f.wait_acknowledged("app").await;
    let record = |d: &Deployment| {
        d.annotations()
            .get(fixed::ACKNOWLEDGED_HASHES)
            .cloned()
            .unwrap_or_default()
    };
    assert!(
        !record(&f.deployments.get("app").await.unwrap()).contains("configmap/cfg"),
        "ignored: no dependency"
    );

    // The ignore annotation goes: the ConfigMap becomes a dependency (adopted, no rollout)...
    f.config_maps
        .patch(
            "cfg",
            &PatchParams::default(),
            &Patch::Json::<()>(
                serde_json::from_value(json!([
                    {"op": "remove", "path": "/metadata/annotations/reloader.stakater.com~1ignore"}
                ]))
                .unwrap(),
            ),
        )
        .await
        .unwrap();
    wait_for(
        &f.deployments,
        "app",
        "the ConfigMap adopted",
        |d: Option<&Deployment>| d.is_some_and(|d| record(d).contains("configmap/cfg=")),
    )
    .await;
    f.wait_revisions("app", 1).await;
    // ...and its next change rolls the workload.
    f.set_config_map("cfg", json!({"k": "v2"})).await;
    f.wait_revisions("app", 2).await;
}

/// Workloads stamped with plain SHA-1 (by Stakater, or an earlier version) meet a reloader with a
/// stamp key: nothing rolls; rotating the key rolls nothing; the next real change rolls once,
/// keyed with the current key, and the plain hash of the Secret is gone from the template.
#[tokio::test]
async fn plain_stamps_and_key_rotation_roll_nothing_and_the_next_change_is_keyed() {
    use reloader::core::hash::sha1_hex;
    use reloader::stamp_key_secret::SECRET_NAME;

    let f = Fixture::new("keyed").await;
    let home = TestNamespace::new(&f.client, "home").await;
    f.config_map("cfg", json!({"k": "v1"})).await;
    f.secret("db", json!({"p": "1"})).await;
    let plain = format!("configmap/cfg={},secret/db={}", sha1_hex(b"k=v1"), sha1_hex(b"p=1"));
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "app", "annotations": auto()},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "app"}},
                 "template": {"metadata": {"labels": {"app": "app"}, "annotations": {fixed::TEMPLATE_HASHES: plain}},
                              "spec": {"containers": [{"name": "app", "image": "registry.example/app:1",
                                                       "envFrom": uses("cfg", "db")}]}}}
    }))
    .unwrap();
    f.deployments.create(&PostParams::default(), &d).await.unwrap();
    f.wait_revisions("app", 1).await;
    let reloader = Reloader::start_with(
        crate::support::kubeconfig(),
        &f.ns.name,
        &[],
        &[("POD_NAMESPACE", &home.name)],
    );
    reloader.wait_ready().await;
    reloader.settle(1.0).await;
    assert_eq!(
        reloader.metric("reloader_reconciles_total{outcome=\"up_to_date\"}"),
        1.0
    );
    assert_eq!(f.template_hashes("app").await.as_deref(), Some(plain.as_str()));

    // Rotate: a new key becomes current, the old one stays.
    let secrets: Api<Secret> = Api::namespaced(f.client.clone(), &home.name);
    let key: Secret = secrets.get(SECRET_NAME).await.unwrap();
    let old = String::from_utf8(key.data.as_ref().unwrap()["current"].0.clone()).unwrap();
    secrets
        .patch(
            SECRET_NAME,
            &PatchParams::default(),
            &Patch::Merge(&json!({"stringData": {"current": "rotated", "key.rotated": "r".repeat(40)}})),
        )
        .await
        .unwrap();
    let loaded = |id: String| {
        let log = reloader.log.clone();
        async move {
            eventually(&format!("key ring {id} loaded"), || async {
                let text = std::fs::read_to_string(&log).ok()?;
                text.lines()
                    .any(|l| l.contains("stamp key ring loaded") && l.contains(id.as_str()))
                    .then_some(())
            })
            .await
        }
    };
    loaded("rotated".into()).await;
    // A touch of the workload makes the reloader look again after the rotation.
    f.deployments
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {"touched": "1"}}})),
        )
        .await
        .unwrap();
    reloader.settle(2.0).await;
    assert_eq!(f.template_hashes("app").await.as_deref(), Some(plain.as_str()));
    assert_eq!(f.revisions("app").await, 1);

    f.set_secret("db", json!({"p": "2"})).await;
    f.wait_revisions("app", 2).await;
    let stamp = f.template_hashes("app").await.unwrap();
    assert!(
        stamp.contains("secret/db=k1.rotated.") && stamp.contains("configmap/cfg=k1.rotated."),
        "{stamp}"
    );
    assert!(!stamp.contains(sha1_hex(b"p=2").as_str()) && !stamp.contains(sha1_hex(b"p=1").as_str()));
    // Rotating back (the old key current again) rolls nothing: the rotated key is still there.
    secrets
        .patch(
            SECRET_NAME,
            &PatchParams::default(),
            &Patch::Merge(&json!({"stringData": {"current": old}})),
        )
        .await
        .unwrap();
    f.deployments
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {"touched": "2"}}})),
        )
        .await
        .unwrap();
    reloader.settle(4.0).await;
    f.wait_revisions("app", 2).await;
    assert_eq!(f.template_hashes("app").await.as_deref(), Some(stamp.as_str()));
}

/// Stakater's e2e sequence with the engine alone (no webhook to stamp at create): a workload is
/// created and, right after, its ConfigMap changes (or, with `--reload-on-create`, the one it
/// names is created), all inside the reload window before the engine first looks at it. Its
/// pods started with the old content, so it rolls, once. A workload created after the engine
/// saw a change started with the new content: adopted, no rollout.
// Best effort, not a guarantee: without the webhook the engine orders a workload's first
// sight and a source's change as two different watch streams deliver them, and the API server
// does not order events across streams. When the workload's event arrives after the source's
// change, the workload is adopted (the race the webhook closes). Failing runs were seen under
// load; run it by hand with `--ignored`.
#[tokio::test]
#[ignore = "best effort: two watch streams are not ordered (see the comment above)"]
async fn without_the_webhook_a_change_right_after_creation_rolls_once() {
    use kube::api::DynamicObject;
    use reloader::core::hash::sha1_hex;
    use reloader::core::workload::WorkloadKind;
    use reloader::kube_api::api_resource;

    let f = Fixture::new("race-engine").await;
    // The default window: the engine first reconciles a new workload 2 s after seeing it.
    let reloader = Reloader::start(&f.ns.name, &["--coalesce-window=2s", "--reload-on-create=true"]);
    reloader.wait_ready().await;
    let api = |kind: WorkloadKind| -> Api<DynamicObject> {
        Api::namespaced_with(f.client.clone(), &f.ns.name, &api_resource(kind))
    };
    let workload = |kind: WorkloadKind, name: &str, annotations: Value| -> DynamicObject {
        let mut spec = json!({"selector": {"matchLabels": {"app": name}},
                              "template": {"metadata": {"labels": {"app": name}},
                                           "spec": {"containers": [{"name": "app", "image": "registry.example/app:1",
                                                                    "envFrom": [{"configMapRef": {"name": name}}]}]}}});
        if kind == WorkloadKind::StatefulSet {
            spec["serviceName"] = json!(name);
        }
        serde_json::from_value(json!({
            "apiVersion": api_resource(kind).api_version, "kind": kind.as_str(),
            "metadata": {"name": name, "annotations": annotations}, "spec": spec
        }))
        .unwrap()
    };
    let kinds = [
        WorkloadKind::Deployment,
        WorkloadKind::StatefulSet,
        WorkloadKind::DaemonSet,
    ];
    let name = |kind: WorkloadKind, case: &str| format!("{}-{case}", kind.as_str().to_lowercase());
    let pp = PostParams::default();
    futures::future::join_all(kinds.map(|kind| {
        let (f, api, pp) = (&f, api(kind), &pp);
        async move {
            // Changed right after the workload's creation.
            let changed = name(kind, "changed");
            f.config_map(&changed, json!({"k": "v1"})).await;
            api.create(pp, &workload(kind, &changed, auto())).await.unwrap();
            f.set_config_map(&changed, json!({"k": "v2"})).await;
            // Created right after the workload that names it.
            let created = name(kind, "created");
            let list = json!({defaults::CONFIGMAP_RELOAD: created});
            api.create(pp, &workload(kind, &created, list)).await.unwrap();
            f.config_map(&created, json!({"k": "v2"})).await;
        }
    }))
    .await;
    // Changed, then (once the engine has seen the change) the workload created: adopted.
    f.config_map("before", json!({"k": "v1"})).await;
    f.set_config_map("before", json!({"k": "v2"})).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    api(WorkloadKind::Deployment)
        .create(&pp, &workload(WorkloadKind::Deployment, "before", auto()))
        .await
        .unwrap();

    let v2 = sha1_hex(b"k=v2");
    let template_stamp = |object: &DynamicObject| -> Option<String> {
        let annotations = object.data.pointer("/spec/template/metadata/annotations")?;
        Some(annotations.get(fixed::TEMPLATE_HASHES)?.as_str()?.to_string())
    };
    for kind in kinds {
        for case in ["changed", "created"] {
            let n = name(kind, case);
            eventually(&format!("{n} rolled onto the change"), || async {
                let object = api(kind).get(&n).await.ok()?;
                (template_stamp(&object)? == format!("configmap/{n}={v2}")).then_some(())
            })
            .await;
        }
    }
    eventually("before adopted", || async {
        let object = api(WorkloadKind::Deployment).get("before").await.ok()?;
        let record = object.metadata.annotations?.get(fixed::ACKNOWLEDGED_HASHES)?.clone();
        (record == format!("configmap/before={v2}")).then_some(())
    })
    .await;
    reloader.settle(7.0).await;
    for kind in kinds {
        for case in ["changed", "created"] {
            let object = api(kind).get(&name(kind, case)).await.unwrap();
            // Created at generation 1; exactly one template change since.
            assert_eq!(object.metadata.generation, Some(2), "{kind} {case} rolled exactly once");
        }
    }
    // Adopted without a rollout (the metadata write bumps a Deployment's generation, so count
    // ReplicaSets).
    let before = api(WorkloadKind::Deployment).get("before").await.unwrap();
    assert!(template_stamp(&before).is_none());
    f.wait_revisions("before", 1).await;
}

/// A namespace catching up on many paced reloads does not hold the workers: a change in another
/// namespace, queued after all of them, rolls while most of them still wait for their slots.
/// (Ordering, not timing: before, every worker slept on the busy namespace's tokens and the
/// other change waited until the busy namespace's queue had drained.)
#[tokio::test]
async fn a_namespace_waiting_for_its_reload_slots_does_not_hold_up_another() {
    const BUSY: usize = 24;
    let busy = Fixture::new("paced").await;
    let other = Fixture::new("other").await;
    busy.config_map("cfg", json!({"k": "v0"})).await;
    busy.secret("db", json!({"p": "1"})).await;
    let apps = busy.apps(BUSY).await;
    other.config_map("cfg", json!({"k": "v0"})).await;
    other.secret("db", json!({"p": "1"})).await;
    other.deployment("app", auto(), uses("cfg", "db")).await;
    let reloader = Reloader::start(
        &format!("{},{}", busy.ns.name, other.ns.name),
        &[
            "--max-reloads-per-second=1000",
            "--max-reloads-per-second-per-namespace=1",
            "--burst=1",
            "--workers=2",
        ],
    );
    for app in &apps {
        busy.wait_acknowledged(app).await;
    }
    other.wait_acknowledged("app").await;

    reloader.settle(0.0).await;
    let reconciled = reloader.metric_sum("reloader_reconciles_total");
    busy.set_config_map("cfg", json!({"k": "v1"})).await;
    // Every busy workload has been reconciled once (one rolled, the rest paced) before the other
    // change is made: they are all ahead of it.
    eventually("every busy workload reconciled after the change", || async {
        (reloader.metric_sum("reloader_reconciles_total") >= reconciled + BUSY as f64).then_some(())
    })
    .await;
    other.set_config_map("cfg", json!({"k": "v1"})).await;
    eventually("the other namespace's workload rolled", || async {
        other
            .template_hashes("app")
            .await
            .filter(|h| h.contains("configmap/cfg="))
            .map(|_| ())
    })
    .await;
    let mut rolled = 0;
    for app in &apps {
        if busy
            .template_hashes(app)
            .await
            .is_some_and(|h| h.contains("configmap/cfg="))
        {
            rolled += 1;
        }
    }
    // At one reload a second, the busy namespace has rolled a handful by now, far from all.
    assert!(
        rolled < BUSY / 2,
        "{rolled} of {BUSY} paced reloads went first: the other namespace waited for them"
    );
    // And the paced ones all come, none dropped.
    for app in &apps {
        eventually(&format!("{app} rolled"), || async {
            busy.template_hashes(app)
                .await
                .filter(|h| h.contains("configmap/cfg="))
                .map(|_| ())
        })
        .await;
    }
}
