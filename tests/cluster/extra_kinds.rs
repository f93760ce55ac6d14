//! Extra workload kinds (`--extra-workload-kinds`, issue 25): any kind with a pod template,
//! served here by two stand-in CRDs of different shapes (its template at `spec.template`, and at
//! `spec.deploy.podTemplate`), no controller behind them (kwok's node is enough: nothing runs
//! their pods). Objects referencing a ConfigMap roll when it changes, the webhook the reloader
//! registers stamps them at create and denies their typos through the real API server, a CRD
//! installed after the reloader started is picked up, `explain` reads them; and the chart
//! renders them into the flag, the RBAC and the webhook configurations the binary computes.

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DeleteParams, DynamicObject, PostParams};
use kube::{Api, Client};
use reloader::core::hash::sha1_hex;
use reloader::core::source::{SourceKind, SourceRef};
use reloader::core::vocabulary::defaults;
use serde_json::{Value, json};

use crate::crds::ensure_crd;
use crate::engine::Fixture;
use crate::explain::explain_with;
use crate::helm::{Rendered, assert_configurations_are_the_reloaders, helm, rule, template, values_file};
use crate::support::{eventually, kubeconfig, stamp_value, unique_name};
use crate::webhook::start_webhook;

/// The stand-in with its template where Deployments have theirs (created once per control plane).
const FLAT_GROUP: &str = "extra-kinds.reloader.test";
const FLAT: (&str, &str, &str) = ("v1", "Flat", "flats");
/// The stand-in with a nested template; its group is made per run, so its CRD is new each time
/// (installed after the reloader started) and deleted afterwards.
const DEEP: (&str, &str, &str) = ("v1alpha1", "Deep", "deeps");
const DEEP_PATH: &str = "spec.deploy.podTemplate";

/// A stand-in kind in the test's namespace: its API and where its pod template is.
struct StandIn {
    api: Api<DynamicObject>,
    resource: ApiResource,
    /// The template's path, dotted.
    path: String,
}

impl StandIn {
    fn new(f: &Fixture, group: &str, (version, kind, plural): (&str, &str, &str), path: &str) -> Self {
        let resource = crate::crds::resource(group, version, kind, plural);
        Self {
            api: Api::namespaced_with(f.client.clone(), &f.ns.name, &resource),
            resource,
            path: path.into(),
        }
    }

    /// Creates `name`, its template reading `cfg`, with `annotations` on the object and
    /// `template_annotations` on its template.
    async fn create(&self, name: &str, annotations: Value, template_annotations: Value) -> kube::Result<Value> {
        let mut tree = json!({"metadata": {"labels": {"app": name}, "annotations": template_annotations},
                              "spec": {"containers": [{"name": "app", "image": "registry.example/app:1",
                                                       "envFrom": [{"configMapRef": {"name": "cfg"}}]}]}});
        for field in self.path.rsplit('.') {
            tree = json!({ field: tree });
        }
        tree["apiVersion"] = json!(self.resource.api_version);
        tree["kind"] = json!(self.resource.kind);
        tree["metadata"] = json!({"name": name, "annotations": annotations});
        let object: DynamicObject = serde_json::from_value(tree).unwrap();
        let created = self.api.create(&PostParams::default(), &object).await?;
        Ok(serde_json::to_value(created).unwrap())
    }

    /// Creates `name` with `auto` and returns its template stamp as created.
    async fn create_auto(&self, name: &str) -> Option<Value> {
        let created = self
            .create(name, json!({defaults::AUTO: "true"}), json!({}))
            .await
            .unwrap();
        created.pointer(&self.stamp_pointer()).cloned()
    }

    /// A typo on the template is denied by the webhook, with the hint.
    async fn assert_typo_denied(&self) {
        let typo = json!({"reloader.stakater.com/atuo": "true"});
        match self.create("typo", json!({}), typo).await {
            Err(kube::Error::Api(s)) => {
                assert!(s.message.contains("did you mean reloader.stakater.com/auto?"), "{s:?}")
            }
            other => panic!("a typo'd {} was not denied: {other:?}", self.resource.kind),
        }
    }

    async fn at(&self, name: &str, pointer: &str) -> Option<Value> {
        let object = self.api.get_opt(name).await.ok()??;
        serde_json::to_value(object).ok()?.pointer(pointer).cloned()
    }

    fn stamp_pointer(&self) -> String {
        format!(
            "/{}/metadata/annotations/reloader.stakater.com~1hashes",
            self.path.replace('.', "/")
        )
    }

    async fn stamp(&self, name: &str) -> Option<Value> {
        self.at(name, &self.stamp_pointer()).await
    }

    async fn acknowledged(&self, name: &str) -> Option<Value> {
        self.at(name, "/metadata/annotations/reloader.stakater.com~1acknowledged-hashes")
            .await
    }
}

/// Deletes a CRD made for one run, when dropped.
struct OwnCrd(String);

impl Drop for OwnCrd {
    fn drop(&mut self) {
        let name = self.0.clone();
        crate::support::clean_up(kubeconfig().to_path_buf(), |client| async move {
            let _ = Api::<CustomResourceDefinition>::all(client)
                .delete(&name, &DeleteParams::default())
                .await;
        });
    }
}

/// Waits until the webhook configuration `name` names `plural` in its rules.
async fn wait_for_rule(client: &Client, name: &str, plural: &str) {
    let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    eventually(&format!("{plural} in the webhook's rules"), || async {
        let configuration = api.get_opt(name).await.ok()??;
        let rules = serde_json::to_value(configuration.webhooks?).ok()?[0]["rules"].to_string();
        rules.contains(&format!("\"{plural}\"")).then_some(())
    })
    .await;
}

#[tokio::test]
async fn stand_in_crds_of_two_shapes_are_stamped_at_create_and_roll_like_deployments() {
    let f = Fixture::new("extra").await;
    ensure_crd(&f.client, FLAT_GROUP, FLAT.1, FLAT.2, FLAT.0).await;
    let deep_group = format!("{}.reloader.test", unique_name("late"));
    let flag = format!(
        "--extra-workload-kinds={FLAT_GROUP}/{}/{},{deep_group}/{}/{}={DEEP_PATH}",
        FLAT.0, FLAT.1, DEEP.0, DEEP.1
    );
    f.config_map("cfg", json!({"k": "v1"})).await;
    let flats = StandIn::new(&f, FLAT_GROUP, FLAT, "spec.template");
    let deeps = StandIn::new(&f, &deep_group, DEEP, DEEP_PATH);
    // Before the reloader: adopted without a rollout.
    assert_eq!(flats.create_auto("before").await, None);

    let webhook = start_webhook(&f, &[&flag, "--admission-cert-check=1s"]).await;
    eventually("the Flat made before adopted", || flats.acknowledged("before")).await;
    wait_for_rule(&f.client, &webhook.configuration, FLAT.2).await;
    let cfg = SourceRef::new(SourceKind::ConfigMap, "cfg");
    let stamp = |content: &'static [u8]| {
        let (client, home, ns, cfg) = (
            f.client.clone(),
            webhook.home.name.clone(),
            f.ns.name.clone(),
            cfg.clone(),
        );
        async move {
            let value = stamp_value(&client, &home, &ns, &cfg, &sha1_hex(content)).await;
            json!(format!("configmap/cfg={value}"))
        }
    };
    let v1 = stamp(b"k=v1").await;
    // Stamped at create by the webhook: no rollout owed.
    assert_eq!(flats.create_auto("made").await, Some(v1.clone()), "stamped at create");
    flats.assert_typo_denied().await;

    // The nested kind's CRD arrives after the reloader started: discovery picks it up.
    let deep_crd = OwnCrd(format!("{}.{deep_group}", DEEP.2));
    ensure_crd(&f.client, &deep_group, DEEP.1, DEEP.2, DEEP.0).await;
    wait_for_rule(&f.client, &webhook.configuration, DEEP.2).await;
    assert_eq!(
        deeps.create_auto("deep").await,
        Some(v1),
        "stamped at its nested template"
    );
    // The validating webhook's conditions select the nested template's annotations too.
    deeps.assert_typo_denied().await;
    // Its watcher runs: what the engine holds of it is current (explain agrees).
    let home = ["--reloader-namespace", webhook.home.name.as_str()];
    let explained = eventually("the engine watching Deeps", || async {
        let v = explain_with(&f.ns.name, &format!("deep.{deep_group}/deep"), &home, &[&flag], &[]);
        (v["verdict"]["verdict"] == "up-to-date").then_some(v)
    })
    .await;
    assert_eq!(explained["kind"], "Deep", "{explained:#}");

    // The ConfigMap changes: all three roll, each at its own template.
    f.set_config_map("cfg", json!({"k": "v2"})).await;
    let v2 = stamp(b"k=v2").await;
    for (kind, name) in [(&flats, "before"), (&flats, "made"), (&deeps, "deep")] {
        eventually(&format!("{name} rolled"), || async {
            (kind.stamp(name).await? == v2).then_some(())
        })
        .await;
    }
    webhook.reloader.settle(3.0).await;
    let metric = |kind: &str| {
        webhook.reloader.metric(&format!(
            "reloader_action_total{{workload_kind=\"{kind}\",result=\"success\"}}"
        ))
    };
    assert_eq!((metric("Flat"), metric("Deep")), (2.0, 1.0), "by kind");
    // Its Reloaded Event, by its API kind, as explain finds it.
    eventually("the Reloaded Event of a Flat", || async {
        let v = explain_with(&f.ns.name, "flat/made", &home, &[&flag], &[]);
        let reason = v["lastReloads"][0]["reason"].clone();
        (v["verdict"]["verdict"] == "up-to-date" && reason == "Reloaded").then_some(())
    })
    .await;
    drop(deep_crd);
}

const CHART_GROUP: &str = "chart.extra-kinds.reloader.test";

fn chart_values(scope: &str) -> String {
    format!(
        "reloader:\n  extraWorkloadKinds:\n    - {{group: {CHART_GROUP}, version: v1, kind: Web, plural: webs}}\n    \
         - {{group: {CHART_GROUP}, version: v1, kind: Batch, plural: batches, templatePath: spec.run.podTemplate}}\n    \
         - {{group: other.{CHART_GROUP}, version: v2, kind: Svc, plural: svcs, templatePath: spec.template}}\n  {scope}\n"
    )
}

/// The chart renders `reloader.extraWorkloadKinds` into the flag (through its environment
/// variable), the RBAC of both modes and the webhook configurations, and these are what the
/// binary computes from that flag once discovery found the plurals.
#[test]
fn the_chart_renders_extra_kinds_into_the_flag_the_rbac_and_the_webhook_rules() {
    let flag = format!("{CHART_GROUP}/v1/Web,{CHART_GROUP}/v1/Batch=spec.run.podTemplate,other.{CHART_GROUP}/v2/Svc");
    // As discovery would find them (the test process's registry; the flags register the same).
    for (spec, plural) in flag.split(',').zip(["webs", "batches", "svcs"]) {
        let kind = reloader::core::workload::extra::register(&spec.parse().unwrap()).unwrap();
        kind.resolve_plural(plural);
    }
    let kind_rules = [
        rule(&[CHART_GROUP], &["webs"], &[], &["get", "list", "watch", "patch"]),
        rule(&[CHART_GROUP], &["batches"], &[], &["get", "list", "watch", "patch"]),
        rule(
            &[&format!("other.{CHART_GROUP}")],
            &["svcs"],
            &[],
            &["get", "list", "watch", "patch"],
        ),
    ];
    for (scope, roles) in [
        ("watchGlobally: true", vec![("ClusterRole", "rel-reloader-role", None)]),
        (
            "watchGlobally: false\n  namespaces: [team-a]\n  webhook: {enabled: true}",
            vec![
                ("Role", "rel-reloader-role", Some("tools")),
                ("Role", "rel-reloader-role", Some("team-a")),
            ],
        ),
    ] {
        let values = values_file(&chart_values(scope));
        let r: Rendered = template("rel", "tools", &[&values], &[]);
        assert_eq!(r.env()["RELOADER_EXTRA_WORKLOAD_KINDS"], json!(flag), "{scope}");
        for (kind, name, namespace) in roles {
            let rules = r.rules(kind, name, namespace);
            for expected in &kind_rules {
                assert!(
                    rules.contains(expected),
                    "{scope}: {expected:?} not in {kind} {name} {namespace:?}"
                );
            }
        }
        assert_configurations_are_the_reloaders(&r, "rel-reloader", "tools", scope);
        let validating = r.get("ValidatingWebhookConfiguration", "rel-reloader");
        let mentions = validating["webhooks"][0]["matchConditions"][0]["expression"]
            .as_str()
            .unwrap();
        assert!(
            mentions.contains("object.?spec.?run.?podTemplate.?metadata.?annotations"),
            "{mentions}"
        );
    }

    // The schema: a plural is required (helm cannot discover it), names are checked.
    for (item, expected) in [
        (
            format!("{{group: {CHART_GROUP}, version: v1, kind: Web}}"),
            "missing property 'plural'",
        ),
        (
            format!("{{group: {CHART_GROUP}, version: v1, kind: Web, plural: Webs}}"),
            "plural",
        ),
        (
            format!("{{group: {CHART_GROUP}, version: v1, kind: Web, plural: webs, templatePath: spec..x}}"),
            "templatePath",
        ),
        (
            format!("{{group: {CHART_GROUP}, version: v1, kind: Web, plural: webs, path: x}}"),
            "path",
        ),
    ] {
        let values = values_file(&format!("reloader:\n  extraWorkloadKinds:\n    - {item}\n"));
        let chart = crate::helm::chart();
        let values = values.display().to_string();
        let out = helm(&["template", "rel", &chart, "-f", &values]);
        assert!(!out.status.success(), "{item} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("extraWorkloadKinds") && stderr.contains(expected),
            "{item}: {stderr}"
        );
    }
}

/// Installed by the chart in namespaced mode (Roles only) with an extra kind, the reloader,
/// run under the chart's ServiceAccount, adopts and rolls it: the chart's RBAC suffices.
#[tokio::test]
async fn under_the_charts_identity_an_extra_kind_rolls() {
    use crate::helm::{Release, stakater_values};
    use crate::support::TestNamespace;
    let f = Fixture::new("hextra").await;
    ensure_crd(&f.client, FLAT_GROUP, FLAT.1, FLAT.2, FLAT.0).await;
    let home = TestNamespace::new(&f.client, "rlhome").await;
    let (version, kind, plural) = FLAT;
    let values = values_file(&format!(
        "reloader:\n  watchGlobally: false\n  namespaces: [{}]\n  extraWorkloadKinds:\n    \
         - {{group: {FLAT_GROUP}, version: {version}, kind: {kind}, plural: {plural}}}\n",
        f.ns.name
    ));
    let release = Release::install(&unique_name("x"), &home.name, &[&stakater_values(), &values]);
    f.config_map("cfg", json!({"k": "v1"})).await;
    let flats = StandIn::new(&f, FLAT_GROUP, FLAT, "spec.template");
    flats.create_auto("web").await;
    let local = release.run(&[]);
    local.reloader.wait_ready().await;
    eventually("the Flat adopted", || flats.acknowledged("web")).await;
    f.set_config_map("cfg", json!({"k": "v2"})).await;
    eventually("the Flat rolled", || flats.stamp("web")).await;
    local.assert_no_denials();
}
