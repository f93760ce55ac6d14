//! Safe in the admission path: the reloader being down, stalled, restarted or out of scope never
//! blocks a write, what slips through is reported on the object itself, and the configurations
//! are the leader's without overriding what a person set by hand. The real kube-apiserver calls
//! the webhook over HTTPS throughout.

use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, ValidatingWebhook, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use reloader::core::vocabulary::defaults;
use serde_json::json;

use crate::engine::{Fixture, auto, uses};
use crate::helm::kubectl_patch;
use crate::support::{Reloader, TestNamespace, eventually, kubeconfig, unique_name};
use crate::webhook::{Configurations, deployment, free_port, stamp_of, start_webhook, typo_deployment};

async fn hooks(client: &Client, name: &str) -> (MutatingWebhook, ValidatingWebhook) {
    let m = Api::<MutatingWebhookConfiguration>::all(client.clone())
        .get(name)
        .await
        .unwrap();
    let v = Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .get(name)
        .await
        .unwrap();
    (m.webhooks.unwrap().remove(0), v.webhooks.unwrap().remove(0))
}

fn policy_and_timeout(failure_policy: Option<&String>, timeout: Option<i32>) -> (Option<&str>, Option<i32>) {
    (failure_policy.map(String::as_str), timeout)
}

/// Edits, as a person would, a field of each configuration that the leader owns.
fn edit_leader_fields(name: &str) {
    kubectl_patch(
        "validatingwebhookconfiguration",
        name,
        &json!([{"op": "replace", "path": "/webhooks/0/admissionReviewVersions", "value": ["v1", "v1beta1"]}]),
    );
    kubectl_patch(
        "mutatingwebhookconfiguration",
        name,
        &json!([{"op": "replace", "path": "/webhooks/0/reinvocationPolicy", "value": "Never"}]),
    );
}

/// Waits until the leader has applied both configurations again (its own fields are back).
async fn wait_reapplied(client: &Client, name: &str) -> (MutatingWebhook, ValidatingWebhook) {
    eventually("the leader re-applying the configurations", || async {
        let (m, v) = hooks(client, name).await;
        let healed = m.reinvocation_policy.as_deref() == Some("IfNeeded") && v.admission_review_versions == ["v1"];
        healed.then_some((m, v))
    })
    .await
}

#[tokio::test]
async fn both_webhooks_fail_open_and_values_set_by_hand_survive_the_leader() {
    let f = Fixture::new("av-hand").await;
    let mut webhook = start_webhook(&f, &["--admission-cert-check=300ms"]).await;
    let name = webhook.configuration.clone();
    let (m, v) = hooks(&f.client, &name).await;
    assert_eq!(
        policy_and_timeout(m.failure_policy.as_ref(), m.timeout_seconds),
        (Some("Ignore"), Some(3))
    );
    assert_eq!(
        policy_and_timeout(v.failure_policy.as_ref(), v.timeout_seconds),
        (Some("Ignore"), Some(3))
    );

    // A person opts into strict validation with a longer timeout, and lengthens the mutating
    // timeout, on the live objects.
    kubectl_patch(
        "validatingwebhookconfiguration",
        &name,
        &json!([{"op": "replace", "path": "/webhooks/0/failurePolicy", "value": "Fail"},
               {"op": "replace", "path": "/webhooks/0/timeoutSeconds", "value": 7}]),
    );
    kubectl_patch(
        "mutatingwebhookconfiguration",
        &name,
        &json!([{"op": "replace", "path": "/webhooks/0/timeoutSeconds", "value": 9}]),
    );
    // The leader re-applies (every certificate check): what it owns comes back, the hand-set
    // values stay.
    edit_leader_fields(&name);
    let (m, v) = wait_reapplied(&f.client, &name).await;
    assert_eq!(
        policy_and_timeout(v.failure_policy.as_ref(), v.timeout_seconds),
        (Some("Fail"), Some(7))
    );
    assert_eq!(
        policy_and_timeout(m.failure_policy.as_ref(), m.timeout_seconds),
        (Some("Ignore"), Some(9))
    );

    // A restart: the new process applies both at once, and still leaves them.
    webhook.reloader.kill();
    edit_leader_fields(&name);
    webhook.start_again().await;
    let (m, v) = wait_reapplied(&f.client, &name).await;
    assert_eq!(
        policy_and_timeout(v.failure_policy.as_ref(), v.timeout_seconds),
        (Some("Fail"), Some(7))
    );
    assert_eq!(m.timeout_seconds, Some(9));
}

/// The leader reads the configurations, then applies them: a person's edit in between is not
/// taken back, because the apply is made against the version it read (a 409 otherwise), and
/// the publish reads again.
#[tokio::test]
async fn a_hand_set_value_written_between_the_leaders_read_and_apply_is_kept() {
    use reloader::admission::register::{Live, apply_configurations, apply_configurations_over};
    let f = Fixture::new("av-race").await;
    let name = unique_name("av-race");
    let _configurations = Configurations(name.clone());
    let argv = [
        "reloader".to_string(),
        format!("--namespaces={}", f.ns.name),
        "--admission-addr=127.0.0.1:1".to_string(),
        "--admission-url=https://127.0.0.1:1".to_string(),
        format!("--admission-configuration={name}"),
        "--admission-owner-cluster-role=".to_string(),
    ];
    let cli = <reloader::config::Cli as clap::Parser>::try_parse_from(&argv).unwrap();
    let env = |key: &str| (key == "POD_NAMESPACE").then(|| f.ns.name.clone());
    let settings = reloader::config::Settings::from_cli(cli, env)
        .unwrap()
        .admission
        .unwrap();
    let manager = "reloader-race-test";
    apply_configurations(&f.client, manager, &settings, |_| "PEM".to_string())
        .await
        .expect("created");

    let read = Live::read(&f.client, &name).await.unwrap();
    kubectl_patch(
        "mutatingwebhookconfiguration",
        &name,
        &json!([{"op": "replace", "path": "/webhooks/0/timeoutSeconds", "value": 9}]),
    );
    match apply_configurations_over(&f.client, manager, &settings, &read, "PEM").await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 409, "{status:?}"),
        other => panic!("an apply over a stale read went through: {other:?}"),
    }
    assert_eq!(hooks(&f.client, &name).await.0.timeout_seconds, Some(9));

    // The publish itself reads again and applies: the value set by hand stays, and what the
    // leader owns is back.
    kubectl_patch(
        "mutatingwebhookconfiguration",
        &name,
        &json!([{"op": "replace", "path": "/webhooks/0/reinvocationPolicy", "value": "Never"}]),
    );
    apply_configurations(&f.client, manager, &settings, |live| {
        assert_eq!(live, "PEM\n");
        "PEM".to_string()
    })
    .await
    .expect("applied");
    let (m, v) = hooks(&f.client, &name).await;
    assert_eq!(
        (m.timeout_seconds, m.reinvocation_policy.as_deref()),
        (Some(9), Some("IfNeeded"))
    );
    assert_eq!(v.timeout_seconds, Some(3));
}

#[tokio::test]
async fn updates_that_leave_the_reloader_annotations_alone_are_not_validated() {
    let f = Fixture::new("av-upd").await;
    f.config_map("cfg", json!({"k": "v1"})).await;
    f.secret("db", json!({"p": "1"})).await;
    let webhook = start_webhook(&f, &[]).await;
    let r = &webhook.reloader;
    let requests = |labels: &str| r.metric_sum_matching("reloader_admission_requests_total", labels);
    let validated = || requests(r#"webhook="validate",operation="UPDATE""#);
    let mutated = || requests(r#"webhook="mutate",operation="UPDATE""#);
    f.deployments
        .create(&PostParams::default(), &deployment("app", auto(), uses("cfg", "db")))
        .await
        .unwrap();
    let matched: Secret = serde_json::from_value(json!({
        "metadata": {"name": "matched", "annotations": {defaults::MATCH: "true"}}, "stringData": {"p": "1"}
    }))
    .unwrap();
    f.secrets.create(&PostParams::default(), &matched).await.unwrap();
    // Nothing of the reloader's own writes in flight (stamped at create, it has none to make).
    r.settle(1.0).await;
    let (validated_before, mutated_before) = (validated(), mutated());

    // Labels only: the API server calls the mutating webhook (every UPDATE), not the
    // validating one. Its calls are answered before the write returns: no waiting needed.
    let labels = Patch::Merge(json!({"metadata": {"labels": {"team": "a"}}}));
    f.deployments
        .patch("app", &PatchParams::default(), &labels)
        .await
        .unwrap();
    f.secrets
        .patch("matched", &PatchParams::default(), &labels)
        .await
        .unwrap();
    // An annotation that is not the reloader's.
    let note = Patch::Merge(json!({"metadata": {"annotations": {"note": "x"}}}));
    f.deployments
        .patch("app", &PatchParams::default(), &note)
        .await
        .unwrap();
    assert!(mutated() >= mutated_before + 2.0, "the webhooks are called for updates");
    assert_eq!(validated(), validated_before, "no reloader annotation changed");

    // A reloader annotation changed, on the metadata or on the pod template: validated.
    let search = Patch::Merge(json!({"metadata": {"annotations": {defaults::SEARCH: "true"}}}));
    f.deployments
        .patch("app", &PatchParams::default(), &search)
        .await
        .unwrap();
    // (At least: the API server runs admission again when its write meets a conflict, e.g.
    // with the Deployment controller's status update.)
    let after_search = validated();
    assert!(after_search > validated_before, "{after_search}");
    let template =
        Patch::Merge(json!({"spec": {"template": {"metadata": {"annotations": {defaults::CONFIGMAP_RELOAD: "cfg"}}}}}));
    f.deployments
        .patch("app", &PatchParams::default(), &template)
        .await
        .unwrap();
    assert!(validated() > after_search);
    // And a typo introduced by an update is still refused, on a workload and on a Secret.
    for result in [
        f.deployments
            .patch(
                "app",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": {"reloader.stakater.com/atuo": "true"}}})),
            )
            .await
            .map(|_| ()),
        f.secrets
            .patch(
                "matched",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": {"reloader.stakater.com/mtach": "true"}}})),
            )
            .await
            .map(|_| ()),
    ] {
        match result {
            Err(kube::Error::Api(s)) => assert!(s.message.contains("did you mean"), "{}", s.message),
            other => panic!("expected a denial, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_stalled_or_killed_reloader_blocks_no_write() {
    let f = Fixture::new("av-down").await;
    f.config_map("cfg", json!({"k": "v1"})).await;
    f.secret("db", json!({"p": "1"})).await;
    let mut webhook = start_webhook(&f, &[]).await;
    let name = webhook.configuration.clone();
    let matched = |name: &str| -> Secret {
        serde_json::from_value(json!({
            "metadata": {"name": name, "annotations": {defaults::MATCH: "true"}}, "stringData": {"p": "1"}
        }))
        .unwrap()
    };

    // Stalled: the process holds its port and answers nothing. Each webhook is waited for at
    // most its timeout (3 s), then ignored.
    webhook.reloader.signal("STOP");
    let started = Instant::now();
    let created = f
        .deployments
        .create(
            &PostParams::default(),
            &deployment("stalled", auto(), uses("cfg", "db")),
        )
        .await
        .expect("admitted while the reloader is stalled");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(2500),
        "the API server did call the webhook: {took:?}"
    );
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert_eq!(stamp_of(&created), None);
    f.secrets
        .create(&PostParams::default(), &matched("stalled"))
        .await
        .expect("admitted while the reloader is stalled");

    // Killed, its configurations still in place.
    webhook.reloader.kill();
    let (m, v) = hooks(&f.client, &name).await;
    assert_eq!(m.name, reloader::admission::register::MUTATING_WEBHOOK);
    assert_eq!(v.name, reloader::admission::register::VALIDATING_WEBHOOK);
    let started = Instant::now();
    f.deployments
        .create(&PostParams::default(), &deployment("down", auto(), uses("cfg", "db")))
        .await
        .expect("admitted while the reloader is down");
    f.secrets
        .create(&PostParams::default(), &matched("down"))
        .await
        .expect("admitted while the reloader is down");
    // Even a typo: the engine reports it on the object when it is back (next test).
    f.deployments
        .create(&PostParams::default(), &typo_deployment("typo"))
        .await
        .expect("admitted while the reloader is down");
    assert!(started.elapsed() < Duration::from_secs(15));
}

/// The Warning Events about annotation problems on the Deployment `name`.
async fn problem_events(client: &Client, namespace: &str, name: &str) -> Vec<Event> {
    Api::<Event>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| {
            e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
                && e.reason.as_deref() == Some("InvalidAnnotation")
        })
        .collect()
}

#[tokio::test]
async fn a_typo_that_slipped_past_a_down_webhook_is_reported_on_the_workload_once() {
    let f = Fixture::new("av-report").await;
    f.config_map("cfg", json!({"k": "v1"})).await;
    f.secret("db", json!({"p": "1"})).await;
    let mut webhook = start_webhook(&f, &[]).await;
    webhook.reloader.kill();
    f.deployments
        .create(&PostParams::default(), &typo_deployment("slipped"))
        .await
        .expect("admitted while the reloader is down");

    webhook.start_again().await;
    let events = eventually("a Warning Event on the Deployment", || async {
        let events = problem_events(&f.client, &f.ns.name, "slipped").await;
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].type_.as_deref(), Some("Warning"));
    let note = events[0].note.clone().unwrap_or_default();
    assert!(note.contains("did you mean reloader.stakater.com/auto?"), "{note}");

    // A forced resync: an unrelated change makes the engine look at the Deployment again.
    let r = &webhook.reloader;
    let reconciled = r.metric_sum("reloader_reconciles_total");
    f.deployments
        .patch(
            "slipped",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"resync": "1"}}})),
        )
        .await
        .unwrap();
    r.settle(reconciled + 1.0).await;
    let events = problem_events(&f.client, &f.ns.name, "slipped").await;
    assert_eq!(events.len(), 1);
    assert!(events[0].series.is_none(), "reported again: {:?}", events[0].series);
    assert_eq!(
        r.metric("reloader_annotation_problems_total{kind=\"Deployment\",problem=\"invalid\"}"),
        1.0
    );
}

/// A ConfigMap `cfg` and a Secret `db` in `namespace`.
async fn sources_in(client: &Client, namespace: &str) {
    let config_maps: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), namespace);
    let cm = serde_json::from_value(json!({"metadata": {"name": "cfg"}, "data": {"k": "v1"}})).unwrap();
    config_maps.create(&PostParams::default(), &cm).await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = serde_json::from_value(json!({"metadata": {"name": "db"}, "stringData": {"p": "1"}})).unwrap();
    secrets.create(&PostParams::default(), &secret).await.unwrap();
}

#[tokio::test]
async fn the_webhook_covers_only_the_engines_namespaces() {
    let f = Fixture::new("av-scope").await;
    // Selected but ignored; not selected; selected by the label but not by the numeric term,
    // which a namespaceSelector cannot express (the API server calls, the handlers decline).
    let ignored = TestNamespace::new(&f.client, "av-ignored").await;
    let unselected = TestNamespace::new(&f.client, "av-unselected").await;
    let numeric = TestNamespace::new(&f.client, "av-numeric").await;
    let home = TestNamespace::new(&f.client, "av-home").await;
    let label = unique_name("scope");
    let namespaces: Api<Namespace> = Api::all(f.client.clone());
    for (ns, tier) in [(&f.ns.name, "2"), (&ignored.name, "2"), (&numeric.name, "0")] {
        namespaces
            .patch(
                ns,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"reloader-scope": label, "tier": tier}}})),
            )
            .await
            .unwrap();
    }
    for ns in [&f.ns.name, &ignored.name, &unselected.name, &numeric.name] {
        sources_in(&f.client, ns).await;
    }

    // Cluster-wide, as Stakater's --namespace-selector and --namespaces-to-ignore need.
    let port = free_port();
    let configuration = unique_name("rt-scope");
    let _configurations = Configurations(configuration.clone());
    let args = [
        format!("--namespace-selector=reloader-scope={label},tier>1"),
        format!("--namespaces-to-ignore={}", ignored.name),
        format!("--admission-addr=127.0.0.1:{port}"),
        format!("--admission-url=https://127.0.0.1:{port}"),
        format!("--admission-namespace={}", home.name),
        format!("--admission-configuration={configuration}"),
        format!("--admission-self-user=system:serviceaccount:{}:reloader", home.name),
        "--admission-owner-cluster-role=".to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let reloader = Reloader::start_with(kubeconfig(), "", &args, &[]);
    eventually("the webhook enforced in the selected namespace", || async {
        match f
            .deployments
            .create(&PostParams::default(), &typo_deployment("probe"))
            .await
        {
            Err(kube::Error::Api(s)) if s.message.contains("did you mean") => Some(()),
            Ok(_) => {
                // Not registered yet: admitted, as everything is while the reloader is away.
                let _ = f.deployments.delete("probe", &Default::default()).await;
                None
            }
            Err(_) => None,
        }
    })
    .await;
    let (m, v) = hooks(&f.client, &configuration).await;
    for selector in [m.namespace_selector, v.namespace_selector] {
        let expressions = selector.unwrap().match_expressions.unwrap();
        assert!(
            expressions[0].values.as_ref().unwrap().contains(&ignored.name),
            "{expressions:?}"
        );
        assert!(
            expressions
                .iter()
                .any(|e| e.key == "reloader-scope" && e.values.as_deref() == Some(&[label.clone()][..])),
            "{expressions:?}"
        );
    }

    let asked = || reloader.metric_sum("reloader_admission_requests_total");
    let try_namespace = |ns: String| {
        let client = f.client.clone();
        async move {
            let deployments: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(client, &ns);
            deployments
                .create(&PostParams::default(), &typo_deployment("typo"))
                .await
                .unwrap_or_else(|e| panic!("{ns}: {e}"));
            let created = deployments
                .create(&PostParams::default(), &deployment("app", auto(), uses("cfg", "db")))
                .await
                .unwrap();
            assert_eq!(stamp_of(&created), None, "{ns}");
        }
    };
    // Ignored, and not selected: the API server asks nothing; nothing stamped or refused.
    let before = asked();
    try_namespace(ignored.name.clone()).await;
    try_namespace(unselected.name.clone()).await;
    assert_eq!(
        asked(),
        before,
        "the API server called the webhook for another namespace"
    );
    // Past the namespaceSelector but outside the exact selector: asked, and it declines.
    try_namespace(numeric.name.clone()).await;
    assert!(asked() > before, "the API server did call for {}", numeric.name);
    // In scope, the same create is stamped.
    let created = f
        .deployments
        .create(&PostParams::default(), &deployment("app", auto(), uses("cfg", "db")))
        .await
        .unwrap();
    assert!(stamp_of(&created).is_some());
    drop(reloader);
}
