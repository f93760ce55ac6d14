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

fn resource(group: &str, (version, kind, plural): (&str, &str, &str)) -> ApiResource {
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: format!("{group}/{version}"),
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// An object of `r` whose pod template, at `path` (JSON pointer segments), reads `cfg`, with
/// `annotations` on the workload and `template_annotations` on the template.
fn object(
    r: &ApiResource,
    name: &str,
    path: &[&str],
    annotations: Value,
    template_annotations: Value,
) -> DynamicObject {
    let mut template = json!({"metadata": {"labels": {"app": name}, "annotations": template_annotations},
                              "spec": {"containers": [{"name": "app", "image": "registry.example/app:1",
                                                       "envFrom": [{"configMapRef": {"name": "cfg"}}]}]}});
    for field in path.iter().rev() {
        template = json!({ *field: template });
    }
    let mut value = json!({"apiVersion": r.api_version, "kind": r.kind,
                           "metadata": {"name": name, "annotations": annotations}});
    value
        .as_object_mut()
        .unwrap()
        .extend(template.as_object().unwrap().clone());
    serde_json::from_value(value).unwrap()
}

async fn at(api: &Api<DynamicObject>, name: &str, pointer: &str) -> Option<Value> {
    let object = api.get_opt(name).await.ok()??;
    serde_json::to_value(object).ok()?.pointer(pointer).cloned()
}

/// The template stamp's pointer for a template at `path`.
fn stamp_pointer(path: &str) -> String {
    format!(
        "/{}/metadata/annotations/reloader.stakater.com~1hashes",
        path.replace('.', "/")
    )
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

/// Whether the webhook configuration `name` names `plural` in its rules.
async fn rules_name(client: &Client, name: &str, plural: &str) -> bool {
    let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let Ok(Some(configuration)) = api.get_opt(name).await else {
        return false;
    };
    let rules =
        serde_json::to_value(configuration.webhooks.unwrap_or_default()).unwrap_or_default()[0]["rules"].clone();
    rules.to_string().contains(&format!("\"{plural}\""))
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
    let flats: Api<DynamicObject> = Api::namespaced_with(f.client.clone(), &f.ns.name, &resource(FLAT_GROUP, FLAT));
    let deeps: Api<DynamicObject> = Api::namespaced_with(f.client.clone(), &f.ns.name, &resource(&deep_group, DEEP));
    let pp = PostParams::default();
    let auto = json!({defaults::AUTO: "true"});
    let flat_template = ["spec", "template"];
    let deep_template: Vec<&str> = DEEP_PATH.split('.').collect();
    // Before the reloader: adopted without a rollout.
    let before = object(
        &resource(FLAT_GROUP, FLAT),
        "before",
        &flat_template,
        auto.clone(),
        json!({}),
    );
    flats.create(&pp, &before).await.unwrap();

    let webhook = start_webhook(&f, &[&flag, "--admission-cert-check=1s"]).await;
    let acked = "/metadata/annotations/reloader.stakater.com~1acknowledged-hashes";
    eventually("the Flat made before adopted", || at(&flats, "before", acked)).await;
    eventually("flats in the webhook's rules", || async {
        rules_name(&f.client, &webhook.configuration, FLAT.2)
            .await
            .then_some(())
    })
    .await;
    let cfg = SourceRef::new(SourceKind::ConfigMap, "cfg");
    let stamp = |content: &'static [u8]| {
        let (client, home, ns, cfg) = (
            f.client.clone(),
            webhook.home.name.clone(),
            f.ns.name.clone(),
            cfg.clone(),
        );
        async move {
            format!(
                "configmap/cfg={}",
                stamp_value(&client, &home, &ns, &cfg, &sha1_hex(content)).await
            )
        }
    };
    let v1 = stamp(b"k=v1").await;
    // Stamped at create by the webhook: no rollout owed.
    let made = object(
        &resource(FLAT_GROUP, FLAT),
        "made",
        &flat_template,
        auto.clone(),
        json!({}),
    );
    let created = flats.create(&pp, &made).await.unwrap();
    let flat_stamp = stamp_pointer("spec.template");
    assert_eq!(
        serde_json::to_value(&created).unwrap().pointer(&flat_stamp),
        Some(&json!(v1)),
        "stamped at create"
    );
    // A typo on the template is denied, with the hint.
    let typo = object(
        &resource(FLAT_GROUP, FLAT),
        "typo",
        &flat_template,
        json!({}),
        json!({"reloader.stakater.com/atuo": "true"}),
    );
    match flats.create(&pp, &typo).await {
        Err(kube::Error::Api(s)) => assert!(s.message.contains("did you mean reloader.stakater.com/auto?"), "{s:?}"),
        other => panic!("a typo'd Flat was not denied: {other:?}"),
    }

    // The nested kind's CRD arrives after the reloader started: discovery picks it up.
    let deep_crd = OwnCrd(format!("{}.{deep_group}", DEEP.2));
    ensure_crd(&f.client, &deep_group, DEEP.1, DEEP.2, DEEP.0).await;
    eventually("deeps in the webhook's rules", || async {
        rules_name(&f.client, &webhook.configuration, DEEP.2)
            .await
            .then_some(())
    })
    .await;
    let deep = object(
        &resource(&deep_group, DEEP),
        "deep",
        &deep_template,
        auto.clone(),
        json!({}),
    );
    let created = deeps.create(&pp, &deep).await.unwrap();
    let deep_stamp = stamp_pointer(DEEP_PATH);
    assert_eq!(
        serde_json::to_value(&created).unwrap().pointer(&deep_stamp),
        Some(&json!(v1)),
        "stamped at create, at its nested template"
    );
    // The validating webhook's conditions select the nested template's annotations too.
    let typo = object(
        &resource(&deep_group, DEEP),
        "typo",
        &deep_template,
        json!({}),
        json!({"reloader.stakater.com/atuo": "true"}),
    );
    match deeps.create(&pp, &typo).await {
        Err(kube::Error::Api(s)) => assert!(s.message.contains("did you mean reloader.stakater.com/auto?"), "{s:?}"),
        other => panic!("a typo'd Deep was not denied: {other:?}"),
    }
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
    for (api, name, pointer) in [
        (&flats, "before", &flat_stamp),
        (&flats, "made", &flat_stamp),
        (&deeps, "deep", &deep_stamp),
    ] {
        eventually(&format!("{name} rolled"), || async {
            (at(api, name, pointer).await? == json!(v2)).then_some(())
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
    let flats: Api<DynamicObject> = Api::namespaced_with(f.client.clone(), &f.ns.name, &resource(FLAT_GROUP, FLAT));
    let web = object(
        &resource(FLAT_GROUP, FLAT),
        "web",
        &["spec", "template"],
        json!({defaults::AUTO: "true"}),
        json!({}),
    );
    flats.create(&PostParams::default(), &web).await.unwrap();
    let local = release.run(&[]);
    local.reloader.wait_ready().await;
    let acked = "/metadata/annotations/reloader.stakater.com~1acknowledged-hashes";
    eventually("the Flat adopted", || at(&flats, "web", acked)).await;
    f.set_config_map("cfg", json!({"k": "v2"})).await;
    let stamped = stamp_pointer("spec.template");
    eventually("the Flat rolled", || at(&flats, "web", &stamped)).await;
    local.assert_no_denials();
}
