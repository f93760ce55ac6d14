//! `reloader explain` against the real control plane: each verdict (acknowledge, up to date,
//! would roll, paused, cannot verify, excluded by a flag, an annotation, a namespace rule, an
//! ignore annotation), each followed by what the engine then does, which must match. Also
//! `--from-deployment` and the `kubectl reloader` plugin through the real kubectl.

use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use reloader::core::vocabulary::{defaults, fixed};
use serde_json::{Value, json};

use crate::engine::{Fixture, auto, uses};
use crate::support::{Reloader, eventually, kubeconfig, wait_for};

/// `reloader explain <target> -n <ns> -o json [extra] -- <flags>`, parsed.
fn explain(ns: &str, target: &str, extra: &[&str], flags: &[&str]) -> Value {
    explain_with(ns, target, extra, flags, &[])
}

/// [`explain`] with extra environment (a test clock).
pub fn explain_with(ns: &str, target: &str, extra: &[&str], flags: &[&str], env: &[(&str, &str)]) -> Value {
    let kubeconfig = format!("--kubeconfig={}", kubeconfig().display());
    let mut args = vec![target, "-n", ns, &kubeconfig];
    args.extend(extra);
    args.push("--");
    args.extend(flags);
    Reloader::explain_json(&args, env)
}

/// The verdicts of `explain` with the namespace's own reloader options.
fn verdict(v: &Value) -> &str {
    v["verdict"]["verdict"].as_str().unwrap_or_default()
}

fn source<'v>(v: &'v Value, name: &str) -> &'v Value {
    v["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == name)
        .unwrap_or_else(|| panic!("{name} not among the sources: {v:#}"))
}

fn skipped<'v>(v: &'v Value, name: &str) -> &'v Value {
    v["notReloadedOn"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == name)
        .unwrap_or_else(|| panic!("{name} not among the sources not reloaded on: {v:#}"))
}

#[tokio::test]
async fn acknowledge_then_up_to_date_then_would_roll_as_the_engine_does() {
    let f = Fixture::new("explain-roll").await;
    let ns = f.ns.name.clone();
    let flags = [format!("--namespaces={ns}")];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let home = ["--reloader-namespace", ns.as_str()];
    f.config_map("cfg", json!({"a": "1"})).await;
    f.secret("db", json!({"password": "one"})).await;
    f.deployment("app", auto(), uses("cfg", "db")).await;
    f.wait_revisions("app", 1).await;

    // Never seen by a reloader: the first reconcile adopts it without a rollout.
    let v = explain(&ns, "deploy/app", &home, &flags);
    assert_eq!(verdict(&v), "acknowledge", "{v:#}");
    assert_eq!(v["verdict"]["sources"], json!(["configmap/cfg", "secret/db"]));
    assert_eq!(source(&v, "secret/db")["state"], "not-recorded");
    assert_eq!(source(&v, "secret/db")["why"], defaults::AUTO);
    assert_eq!(source(&v, "secret/db")["container"], "app");
    assert_eq!(source(&v, "secret/db")["referenced"], true);
    let env = [("POD_NAMESPACE", ns.as_str())];
    let reloader = Reloader::start_with(kubeconfig(), &ns, &[], &env);
    f.wait_acknowledged("app").await;
    reloader.settle(1.0).await;
    assert_eq!(
        reloader.metric("reloader_reconciles_total{outcome=\"acknowledged\"}"),
        1.0
    );
    assert_eq!(f.revisions("app").await, 1, "acknowledged, not rolled");

    // Recorded at the current content, keyed with the install's key.
    let v = explain(&ns, "deploy/app", &home, &flags);
    assert_eq!(verdict(&v), "up-to-date", "{v:#}");
    assert_eq!(v["stamps"]["keys"], "keyed", "{v:#}");
    let db = source(&v, "secret/db");
    assert_eq!(db["state"], "up-to-date");
    assert_eq!(db["recorded"], db["current"]);
    assert!(db["current"].as_str().unwrap().starts_with("k1."), "{db}");

    // Changed while no reloader runs: explain says it would roll, and the engine does.
    drop(reloader);
    f.set_secret("db", json!({"password": "two"})).await;
    let v = explain(&ns, "deploy/app", &home, &flags);
    assert_eq!(verdict(&v), "would-roll", "{v:#}");
    assert_eq!(
        v["verdict"]["changes"],
        json!([{"source": "secret/db", "change": "changed"}])
    );
    assert_eq!(source(&v, "secret/db")["state"], "changed");
    assert_eq!(source(&v, "configmap/cfg")["state"], "up-to-date");
    let reloader = Reloader::start_with(kubeconfig(), &ns, &[], &env);
    f.wait_revisions("app", 2).await;
    reloader.settle(1.0).await;
    assert_eq!(reloader.metric("reloader_reconciles_total{outcome=\"rolled\"}"), 1.0);

    let v = explain(&ns, "deploy/app", &home, &flags);
    assert_eq!(verdict(&v), "up-to-date", "{v:#}");
    let events = eventually("the Reloaded event", || async {
        let v = explain(&ns, "deploy/app", &home, &flags);
        let events = v["lastReloads"].as_array().cloned().unwrap_or_default();
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(events[0]["reason"], "Reloaded");
    assert!(
        events[0]["message"]
            .as_str()
            .unwrap()
            .contains("Changes detected in 'db' of type 'SECRET'"),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_pause_period_is_reported_until_its_end() {
    let f = Fixture::new("explain-pause").await;
    let ns = f.ns.name.clone();
    let flags = [format!("--namespaces={ns}")];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    f.config_map("cfg", json!({"a": "1"})).await;
    f.secret("db", json!({"p": "1"})).await;
    f.deployment(
        "app",
        json!({defaults::AUTO: "true", defaults::PAUSE_PERIOD: "1h"}),
        uses("cfg", "db"),
    )
    .await;
    let reloader = Reloader::start(&ns, &[]);
    f.wait_acknowledged("app").await;
    let v = explain(&ns, "deploy/app", &[], &flags);
    assert_eq!(verdict(&v), "up-to-date", "{v:#}");

    f.set_config_map("cfg", json!({"a": "2"})).await;
    wait_for(&f.deployments, "app", "paused", |d: Option<&Deployment>| {
        d.and_then(|d| d.spec.as_ref()?.paused) == Some(true)
    })
    .await;
    reloader.settle(2.0).await;
    let d = f.deployments.get("app").await.unwrap();
    let paused_at = d.annotations()[defaults::PAUSED_AT].clone();
    let at = time::OffsetDateTime::parse(&paused_at, &time::format_description::well_known::Rfc3339).unwrap();
    let until = reloader::core::evaluate::rfc3339(at + std::time::Duration::from_secs(3600));
    let v = explain(&ns, "deploy/app", &[], &flags);
    assert_eq!(verdict(&v), "paused", "{v:#}");
    assert_eq!(v["verdict"]["until"], until.as_str());
    assert_eq!(v["summary"], format!("paused until {until}"));

    // A change within the period: the engine records it in the paused template, no rollout.
    let revisions = f.revisions("app").await;
    f.set_secret("db", json!({"p": "2"})).await;
    eventually("the change recorded in the paused template", || async {
        let v = explain(&ns, "deploy/app", &[], &flags);
        (verdict(&v) == "paused" && source(&v, "secret/db")["state"] == "up-to-date").then_some(())
    })
    .await;
    assert_eq!(f.revisions("app").await, revisions, "paused: no new ReplicaSet");
}

#[tokio::test]
async fn keyed_stamps_cannot_be_verified_without_the_key() {
    let f = Fixture::new("explain-key").await;
    let ns = f.ns.name.clone();
    let flags = [format!("--namespaces={ns}")];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    f.config_map("cfg", json!({"a": "1"})).await;
    f.secret("db", json!({"p": "1"})).await;
    f.deployment("app", auto(), uses("cfg", "db")).await;
    let reloader = Reloader::start_with(kubeconfig(), &ns, &[], &[("POD_NAMESPACE", ns.as_str())]);
    f.wait_acknowledged("app").await;
    reloader.settle(1.0).await;
    drop(reloader);

    let v = explain(&ns, "deploy/app", &["--reloader-namespace", "kube-public"], &flags);
    assert_eq!(verdict(&v), "cannot-verify", "{v:#}");
    assert_eq!(v["verdict"]["sources"], json!(["configmap/cfg", "secret/db"]));
    assert_eq!(v["stamps"]["keys"], "unverifiable");
    let db = source(&v, "secret/db");
    assert_eq!(db["state"], "cannot-verify");
    assert!(
        !db["current"].as_str().unwrap().chars().all(|c| c.is_ascii_hexdigit()),
        "no plain SHA-1 of a Secret without the key: {db}"
    );
    let v = explain(&ns, "deploy/app", &["--reloader-namespace", &ns], &flags);
    assert_eq!(verdict(&v), "up-to-date", "{v:#}");
}

#[tokio::test]
async fn exclusions_by_flag_annotation_and_ignore_are_what_the_engine_does() {
    let f = Fixture::new("explain-exclude").await;
    let ns = f.ns.name.clone();
    let client = f.client.clone();
    let flags = [
        format!("--namespaces={ns}"),
        "--ignored-workload-types=jobs".to_string(),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    f.config_map("cfg", json!({"a": "1"})).await;
    f.secret("db", json!({"p": "1"})).await;
    let quiet: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "quiet", "annotations": {defaults::IGNORE: "true"}}, "data": {"a": "1"}
    }))
    .unwrap();
    f.config_maps.create(&PostParams::default(), &quiet).await.unwrap();
    // Reloads on cfg; db is excluded.
    f.deployment(
        "excluding",
        json!({defaults::AUTO: "true", fixed::SECRETS_EXCLUDE: "db"}),
        uses("cfg", "db"),
    )
    .await;
    // Uses only a source that carries the ignore annotation.
    f.deployment("ignoring", auto(), json!([{"configMapRef": {"name": "quiet"}}]))
        .await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": "job", "annotations": {defaults::AUTO: "true"}},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "job", "image": "registry.example/job:1", "envFrom": [{"configMapRef": {"name": "cfg"}}]}]}}}
    }))
    .unwrap();
    let job = jobs.create(&PostParams::default(), &job).await.unwrap();

    let v = explain(&ns, "job/job", &[], &flags);
    assert_eq!(verdict(&v), "excluded", "{v:#}");
    assert_eq!(v["verdict"]["by"], "--ignored-workload-types=jobs");
    let v = explain(&ns, "deploy/excluding", &[], &flags);
    assert_eq!(
        skipped(&v, "secret/db")["why"],
        format!("excluded by {}", fixed::SECRETS_EXCLUDE)
    );
    assert_eq!(v["sources"].as_array().unwrap().len(), 1, "{v:#}");
    let v = explain(&ns, "deploy/ignoring", &[], &flags);
    assert_eq!(
        skipped(&v, "configmap/quiet")["why"],
        format!("the source has {}: \"true\"", defaults::IGNORE)
    );
    assert!(v["sources"].as_array().unwrap().is_empty(), "{v:#}");
    assert_eq!(verdict(&v), "up-to-date");

    let reloader = Reloader::start(&ns, &["--ignored-workload-types=jobs"]);
    f.wait_acknowledged("excluding").await;
    reloader.settle(2.0).await;
    // What explain excluded, the engine leaves alone.
    f.set_secret("db", json!({"p": "2"})).await;
    f.set_config_map("quiet", json!({"a": "2"})).await;
    let v = explain(&ns, "deploy/excluding", &[], &flags);
    assert_eq!(verdict(&v), "up-to-date", "{v:#}");
    let cfg_before = source(&v, "configmap/cfg")["current"].clone();
    // cfg is a real dependency: its change rolls `excluding`, a sign the engine has answered
    // the changes before it.
    f.set_config_map("cfg", json!({"a": "2"})).await;
    let v = explain(&ns, "deploy/excluding", &[], &flags);
    // The engine rolls 300 ms after the change (the fixture's window); explain usually reads
    // before that, but on a loaded machine the engine can be first. Either way the verdict
    // must match what the workload shows.
    match verdict(&v) {
        "would-roll" => {}
        "up-to-date" => {
            let cfg = source(&v, "configmap/cfg");
            assert_ne!(cfg["current"], cfg_before, "explain read cfg's old content: {v:#}");
            assert_eq!(cfg["recorded"], cfg["current"], "{v:#}");
        }
        other => panic!("verdict {other} after a change of cfg: {v:#}"),
    }
    f.wait_revisions("excluding", 2).await;
    reloader.settle(3.0).await;
    assert_eq!(f.revisions("ignoring").await, 1, "ignored source: no rollout");
    let after = jobs.get("job").await.unwrap();
    assert_eq!(after.uid(), job.uid(), "the ignored Job was not re-created");
    assert!(!after.annotations().contains_key(fixed::ACKNOWLEDGED_HASHES));
    assert_eq!(reloader.metric("reloader_reconciles_total{outcome=\"rolled\"}"), 1.0);
}

#[tokio::test]
async fn namespace_rules_and_invisible_sources() {
    let f = Fixture::new("explain-ns").await;
    let ns = f.ns.name.clone();
    f.config_map("cfg", json!({"a": "1"})).await;
    f.secret("db", json!({"p": "1"})).await;
    f.deployment("app", auto(), uses("cfg", "db")).await;
    let namespaces: Api<Namespace> = Api::all(f.client.clone());
    namespaces
        .patch(
            &ns,
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {"team": "blue"}}})),
        )
        .await
        .unwrap();

    let v = explain(&ns, "deploy/app", &[], &["--namespaces=elsewhere"]);
    assert_eq!(verdict(&v), "excluded");
    assert_eq!(
        v["verdict"]["by"],
        format!("namespace {ns} is not watched (--namespaces or KUBERNETES_NAMESPACE)")
    );
    let ignore = format!("--namespaces-to-ignore={ns}");
    let v = explain(&ns, "deploy/app", &[], &[&ignore]);
    assert_eq!(
        v["verdict"]["by"],
        format!("namespace {ns} is in --namespaces-to-ignore")
    );
    // The selector is evaluated by the API server, as for the engine's namespace watch.
    let v = explain(&ns, "deploy/app", &[], &["--namespace-selector=team=green"]);
    assert_eq!(
        v["verdict"]["by"],
        format!("namespace {ns} does not match --namespace-selector=team=green")
    );
    let v = explain(&ns, "deploy/app", &[], &["--namespace-selector=team=blue"]);
    assert_eq!(verdict(&v), "acknowledge", "{v:#}");

    // Sources the engine's filters hide exist, but count as absent, with a note.
    let v = explain(&ns, "deploy/app", &[], &["--resource-label-selector=reloadable=yes"]);
    assert_eq!(source(&v, "configmap/cfg")["current"], "absent");
    assert!(
        v["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "configmap/cfg exists but the reloader does not see it: its labels do not match --resource-label-selector=reloadable=yes"),
        "{v:#}"
    );
    let v = explain(&ns, "deploy/app", &[], &["--resources-to-ignore=secrets"]);
    assert_eq!(
        skipped(&v, "secret/db")["why"],
        "Secrets are ignored: --resources-to-ignore=secrets"
    );
}

#[tokio::test]
async fn options_from_the_reloader_deployment() {
    let f = Fixture::new("explain-from").await;
    let ns = f.ns.name.clone();
    f.config_map("cfg", json!({"a": "1"})).await;
    f.secret("db", json!({"p": "1"})).await;
    // No reloader annotation at all: only --auto-reload-all makes it reload.
    f.deployment("plain", json!({}), uses("cfg", "db")).await;
    let reloader_deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "reloader"},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "reloader"}},
            "template": {
                "metadata": {"labels": {"app": "reloader"}},
                "spec": {"containers": [{
                    "name": "reloader", "image": "registry.example/reloader:1",
                    "args": [format!("--namespaces={ns}"), "--auto-reload-all", "--reload-strategy=env-vars"],
                    "env": [{"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}]
                }]}
            }
        }
    }))
    .unwrap();
    f.deployments
        .create(&PostParams::default(), &reloader_deployment)
        .await
        .unwrap();
    let from = format!("{ns}/reloader");
    let v = explain(&ns, "deploy/plain", &["--from-deployment", &from], &[]);
    assert_eq!(
        v["options"]["from"],
        format!("Deployment {ns}/reloader, container reloader")
    );
    assert_eq!(v["stamps"]["strategy"], "env-vars");
    assert_eq!(source(&v, "configmap/cfg")["why"], "--auto-reload-all");
    assert_eq!(verdict(&v), "acknowledge");
    // The same verdict the engine reaches with those flags.
    let reloader = Reloader::start(&ns, &["--auto-reload-all", "--reload-strategy=env-vars"]);
    f.wait_acknowledged("plain").await;
    reloader.settle(2.0).await;
    assert_eq!(f.revisions("plain").await, 1);
    let v = explain(&ns, "deploy/plain", &["--from-deployment", &from], &[]);
    assert_eq!(verdict(&v), "up-to-date", "{v:#}");
    // Flags after `--` come after the Deployment's.
    let v = explain(
        &ns,
        "deploy/plain",
        &["--from-deployment", &from],
        &["--auto-reload-all=false"],
    );
    assert!(v["sources"].as_array().unwrap().is_empty(), "{v:#}");
}

#[tokio::test]
async fn kubectl_runs_it_as_a_plugin() {
    let f = Fixture::new("explain-kubectl").await;
    let ns = f.ns.name.clone();
    f.config_map("cfg", json!({"a": "1"})).await;
    f.secret("db", json!({"p": "1"})).await;
    f.deployment("app", auto(), uses("cfg", "db")).await;
    f.deployment("other", json!({}), uses("cfg", "db")).await;
    let bin = std::env::temp_dir().join(crate::support::unique_name("kubectl-plugin"));
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_reloader"), bin.join("kubectl-reloader")).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let kubectl = |args: &[&str]| {
        let output = Command::new("kubectl")
            .args(args)
            .env("PATH", &path)
            .env("KUBECONFIG", kubeconfig())
            .output()
            .expect("running kubectl");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let flags = format!("--namespaces={ns}");
    let (code, out, err) = kubectl(&["reloader", "explain", "deploy/app", "-n", &ns, "--", &flags]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.starts_with(&format!(
            "Deployment {ns}/app: acknowledged only: would record configmap/cfg, secret/db without rolling"
        )),
        "{out}"
    );
    assert!(
        out.contains("reloader.stakater.com/auto; container app, referenced by the pod template"),
        "{out}"
    );
    let (code, out, err) = kubectl(&["reloader", "explain", "--all", "-n", &ns, "--", &flags]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("Deployment/app    acknowledged only"), "{out}");
    assert!(out.contains("Deployment/other  up to date: nothing to do"), "{out}");
    let (code, out, _) = kubectl(&["reloader", "--help"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("Usage: kubectl reloader <COMMAND>"), "{out}");
    let (code, _, err) = kubectl(&["reloader", "explain", "svc/app", "-n", &ns]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("is not KIND/NAME of a kind the reloader rolls"), "{err}");
    let _ = std::fs::remove_dir_all(&bin);
}
