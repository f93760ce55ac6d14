//! `reloader lint --kubeconfig`: reload-list names the input does not define are looked up in
//! the cluster, with the engine's filters, and reported in the webhook's words.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::engine::Fixture;
use crate::support::kubeconfig;

fn lint(ns: &str, manifest: &str, flags: &[&str]) -> (i32, Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_reloader"))
        .args(["lint", "-", "-o", "json", "-n", ns])
        .arg(format!("--kubeconfig={}", kubeconfig().display()))
        .arg("--")
        .args(flags)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running reloader lint");
    child.stdin.take().unwrap().write_all(manifest.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout}{}", String::from_utf8_lossy(&output.stderr)));
    (output.status.code().unwrap_or(-1), report)
}

fn missing(report: &Value) -> Vec<String> {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["rule"] == "missing-source")
        .map(|p| p["message"].as_str().unwrap().to_string())
        .collect()
}

const MANIFEST: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  annotations:
    secret.reloader.stakater.com/reload: in-cluster, nowhere, in-input
    configmap.reloader.stakater.com/reload: labelled
spec:
  template:
    spec:
      containers: [{name: app, image: registry.example/app:1}]
---
apiVersion: v1
kind: Secret
metadata:
  name: in-input
";

#[tokio::test]
async fn names_are_checked_against_the_cluster_with_the_engines_filters() {
    let f = Fixture::new("lint-cluster").await;
    let ns = f.ns.name.clone();
    f.secret("in-cluster", json!({"p": "1"})).await;
    f.config_map("labelled", json!({"a": "1"})).await;

    let (code, report) = lint(&ns, MANIFEST, &[]);
    assert_eq!(code, 0, "warnings only: {report:#}");
    assert_eq!(
        missing(&report),
        ["Secret nowhere does not exist yet; reloads on it start when it is created"]
    );

    // With the reloader's label selector, the unlabelled ConfigMap is invisible to it.
    let (_, report) = lint(&ns, MANIFEST, &["--resource-label-selector=reloadable=yes"]);
    let mut found = missing(&report);
    found.sort();
    assert_eq!(
        found,
        [
            "ConfigMap labelled does not exist yet; reloads on it start when it is created",
            "Secret in-cluster does not exist yet; reloads on it start when it is created",
            "Secret nowhere does not exist yet; reloads on it start when it is created",
        ]
    );

    // A cluster that cannot be asked is unusable input.
    let output = Command::new(env!("CARGO_BIN_EXE_reloader"))
        .args([
            "lint",
            "tests/lint/corpus/warnings.yaml",
            "--kubeconfig=/nonexistent/kubeconfig",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("cannot check the sources against the cluster"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
