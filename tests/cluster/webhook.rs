//! The admission webhook with the real kube-apiserver calling it over HTTPS: the reloader runs as
//! a process with `--admission-url`, registering its own configurations scoped to the test
//! namespace, and its CA and serving certificate in a Secret of a second ("home") namespace.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use reloader::core::hash::sha1_hex;
use reloader::core::source::{SourceKind, SourceRef};
use reloader::core::vocabulary::{defaults, fixed};
use serde_json::{Value, json};

use crate::engine::{Fixture, auto, uses};
use crate::support::{Reloader, TestNamespace, eventually, kubeconfig, stamp_value, unique_name};

fn cm(name: &str) -> SourceRef {
    SourceRef::new(SourceKind::ConfigMap, name)
}

fn secret(name: &str) -> SourceRef {
    SourceRef::new(SourceKind::Secret, name)
}

/// Deletes the webhook configurations a test's reloader registered, when dropped.
pub struct Configurations(pub String);

impl Drop for Configurations {
    fn drop(&mut self) {
        let name = self.0.clone();
        crate::support::clean_up(kubeconfig().to_path_buf(), |client| async move {
            let dp = DeleteParams::default();
            let _ = Api::<MutatingWebhookConfiguration>::all(client.clone())
                .delete(&name, &dp)
                .await;
            let _ = Api::<ValidatingWebhookConfiguration>::all(client)
                .delete(&name, &dp)
                .await;
        });
    }
}

/// A reloader serving the webhook. Fields drop in order: the process is killed before its
/// configurations are deleted, so nothing re-applies them.
pub struct Webhook {
    pub reloader: Reloader,
    pub home: TestNamespace,
    pub port: u16,
    pub configuration: String,
    /// What the reloader was started with, for [`Webhook::restart`].
    namespace: String,
    args: Vec<String>,
    _configurations: Configurations,
}

impl Webhook {
    /// Starts the reloader again with the same flags after it was killed (its webhook
    /// configurations stayed in place), and waits until it is ready.
    pub async fn start_again(&mut self) {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        self.reloader = Reloader::start_with(kubeconfig(), &self.namespace, &args, &[]);
        self.reloader.wait_ready().await;
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the reloader with its webhook for `f`'s namespace and waits until the API server
/// enforces it (a typo'd Deployment is denied).
pub async fn start_webhook(f: &Fixture, extra: &[&str]) -> Webhook {
    let home = TestNamespace::new(&f.client, "home").await;
    let port = free_port();
    let configuration = unique_name("rt-webhook");
    let args: Vec<String> = vec![
        format!("--namespaces={},{}", f.ns.name, home.name),
        format!("--admission-addr=127.0.0.1:{port}"),
        format!("--admission-url=https://127.0.0.1:{port}"),
        format!("--admission-namespace={}", home.name),
        format!("--admission-configuration={configuration}"),
        // The test runs as admin, like the reloader process: give the reloader its in-cluster
        // identity so the test's requests are not taken for the reloader's own.
        format!("--admission-self-user=system:serviceaccount:{}:reloader", home.name),
        // No owner: the install tests create and delete the manifests' ClusterRole, which
        // would garbage-collect this test's configurations (tests/cluster/install.rs).
        "--admission-owner-cluster-role=".to_string(),
    ];
    let mut args = args;
    args.extend(extra.iter().map(|a| a.to_string()));
    let all: Vec<&str> = args.iter().map(String::as_str).collect();
    let reloader = Reloader::start_with(kubeconfig(), &f.ns.name, &all, &[]);
    let webhook = Webhook {
        reloader,
        home,
        port,
        configuration: configuration.clone(),
        namespace: f.ns.name.clone(),
        args,
        _configurations: Configurations(configuration),
    };
    let probe = typo_deployment("probe");
    eventually("the webhook enforced by the API server", || async {
        match f.deployments.create(&PostParams::default(), &probe).await {
            Err(kube::Error::Api(s)) if s.message.contains("did you mean") => Some(()),
            Ok(_) => {
                let _ = f.deployments.delete("probe", &DeleteParams::default()).await;
                None
            }
            Err(_) => None,
        }
    })
    .await;
    webhook
}

pub fn typo_deployment(name: &str) -> Deployment {
    deployment(name, json!({"reloader.stakater.com/atuo": "true"}), uses("cfg", "db"))
}

pub fn deployment(name: &str, annotations: Value, env_from: Value) -> Deployment {
    serde_json::from_value(manifest(name, annotations, env_from)).unwrap()
}

fn manifest(name: &str, annotations: Value, env_from: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "app", "image": "registry.example/app:1", "envFrom": env_from}]}}}
    })
}

fn template_of(d: &Deployment) -> Value {
    serde_json::to_value(&d.spec.as_ref().unwrap().template).unwrap()
}

pub fn stamp_of(d: &Deployment) -> Option<String> {
    crate::support::template_annotation(d, fixed::TEMPLATE_HASHES)
}

/// `kubectl <args>` with `stdin`, returning (success, stderr) — kubectl prints admission warnings.
fn kubectl(namespace: &str, args: &[&str], stdin: &str) -> (bool, String) {
    let mut child = Command::new("kubectl")
        .arg(format!("--kubeconfig={}", kubeconfig().display()))
        .arg(format!("--namespace={namespace}"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

async fn denial(api: &Api<Deployment>, d: &Deployment) -> String {
    match api.create(&PostParams::default(), d).await {
        Err(kube::Error::Api(s)) => s.message,
        other => panic!("expected a denial, got {other:?}"),
    }
}

#[tokio::test]
async fn typos_and_invalid_values_are_denied_and_valid_workloads_are_stamped() {
    let f = Fixture::new("wh-deny").await;
    f.config_map("cfg", json!({"k": "v1"})).await;
    f.secret("db", json!({"p": "1"})).await;
    let webhook = start_webhook(&f, &[]).await;

    // kubectl apply of the typo: rejected, with the suggestion in the message.
    let typo = serde_json::to_string(&manifest(
        "typo",
        json!({"reloader.stakater.com/atuo": "true"}),
        uses("cfg", "db"),
    ))
    .unwrap();
    let (ok, stderr) = kubectl(&f.ns.name, &["apply", "-f", "-"], &typo);
    assert!(!ok);
    assert!(
        stderr.contains("denied the request: unknown annotation reloader.stakater.com/atuo: did you mean reloader.stakater.com/auto?"),
        "{stderr}"
    );
    for (annotations, expected) in [
        (
            json!({"reloader.stakatar.com/auto": "true"}),
            "did you mean reloader.stakater.com/auto?",
        ),
        (
            json!({"configmaps.reloader.stakater.com/reload": "cfg"}),
            "did you mean configmap.reloader.stakater.com/reload?",
        ),
        (json!({defaults::AUTO: "yes"}), "is not a boolean"),
        (
            json!({defaults::SECRET_RELOAD: "db,tls-(("}),
            "is not a valid regular expression",
        ),
        (json!({defaults::PAUSE_PERIOD: "five minutes"}), "is not a duration"),
        (json!({fixed::ROLLOUT_STRATEGY: "restrat"}), "is not a strategy"),
    ] {
        let message = denial(
            &f.deployments,
            &deployment("bad", annotations.clone(), uses("cfg", "db")),
        )
        .await;
        assert!(message.contains(expected), "{annotations}: {message}");
        assert!(message.len() < 200, "short enough for kubectl: {message}");
    }
    // A valid one is admitted with the stamp injected at create: keyed, never the plain SHA-1
    // of the Secret's data.
    let created = f
        .deployments
        .create(&PostParams::default(), &deployment("good", auto(), uses("cfg", "db")))
        .await
        .unwrap();
    let cfg = stamp_value(
        &f.client,
        &webhook.home.name,
        &f.ns.name,
        &cm("cfg"),
        &sha1_hex(b"k=v1"),
    )
    .await;
    let db = stamp_value(
        &f.client,
        &webhook.home.name,
        &f.ns.name,
        &secret("db"),
        &sha1_hex(b"p=1"),
    )
    .await;
    assert!(db.starts_with("k1.") && cfg.starts_with("k1."), "{db} {cfg}");
    let stamp = stamp_of(&created).unwrap();
    assert_eq!(stamp, format!("configmap/cfg={cfg},secret/db={db}"));
    assert!(!stamp.contains(sha1_hex(b"p=1").as_str()));
}

#[tokio::test]
async fn workloads_created_through_the_webhook_are_not_rolled_again_and_reapplies_roll_nothing() {
    let f = Fixture::new("wh-once").await;
    f.config_map("cfg", json!({"k": "v1"})).await;
    f.secret("db", json!({"p": "1"})).await;
    let webhook = start_webhook(&f, &[]).await;
    let original = manifest("app", auto(), uses("cfg", "db"));
    f.deployments
        .create(
            &PostParams::default(),
            &serde_json::from_value(original.clone()).unwrap(),
        )
        .await
        .unwrap();
    f.wait_revisions("app", 1).await;
    let stamped = template_of(&f.deployments.get("app").await.unwrap());
    webhook.reloader.settle(1.0).await;
    assert_eq!(
        webhook.reloader.metric("reloader_reconciles_total{outcome=\"rolled\"}"),
        0.0
    );
    assert_eq!(
        webhook
            .reloader
            .metric("reloader_reconciles_total{outcome=\"acknowledged\"}"),
        0.0
    );

    // kubectl replace (a PUT of the stamp-less manifest), a server-side apply by another tool
    // (Helm-like), and kubectl apply: none changes the template.
    let mut replacement: Deployment = serde_json::from_value(original.clone()).unwrap();
    replacement.metadata.resource_version = f.deployments.get("app").await.unwrap().resource_version();
    f.deployments
        .replace("app", &PostParams::default(), &replacement)
        .await
        .unwrap();
    f.deployments
        .patch("app", &PatchParams::apply("helm").force(), &Patch::Apply(&original))
        .await
        .unwrap();
    let (ok, stderr) = kubectl(&f.ns.name, &["apply", "-f", "-"], &original.to_string());
    assert!(ok, "{stderr}");
    // Metadata-only updates: labels, annotations, replicas.
    f.deployments
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(
                &json!({"metadata": {"labels": {"team": "x"}, "annotations": {"note": "y"}}, "spec": {"replicas": 2}}),
            ),
        )
        .await
        .unwrap();
    let d = f.deployments.get("app").await.unwrap();
    assert_eq!(template_of(&d), stamped);
    f.wait_revisions("app", 1).await;
    assert_eq!(f.revisions("app").await, 1);

    // And a real change still rolls exactly once.
    f.set_config_map("cfg", json!({"k": "v2"})).await;
    f.wait_revisions("app", 2).await;
}

#[tokio::test]
async fn a_missing_source_is_admitted_with_a_warning_and_adopted_when_it_appears() {
    let f = Fixture::new("wh-missing").await;
    f.config_map("cfg", json!({"k": "v1"})).await;
    f.secret("db", json!({"p": "1"})).await;
    let webhook = start_webhook(&f, &[]).await;
    let m = manifest(
        "app",
        auto(),
        json!([{"configMapRef": {"name": "cfg"}}, {"secretRef": {"name": "later"}}]),
    );
    let (ok, stderr) = kubectl(&f.ns.name, &["apply", "-f", "-"], &m.to_string());
    assert!(ok, "{stderr}");
    assert!(stderr.contains("Warning: Secret later does not exist yet"), "{stderr}");
    let stamp = stamp_of(&f.deployments.get("app").await.unwrap()).unwrap();
    assert!(stamp.ends_with("secret/later=absent"), "{stamp}");

    f.secret("later", json!({"p": "1"})).await;
    let later = stamp_value(
        &f.client,
        &webhook.home.name,
        &f.ns.name,
        &secret("later"),
        &sha1_hex(b"p=1"),
    )
    .await;
    let expected = format!("secret/later={later}");
    eventually("the new Secret acknowledged", || async {
        let d = f.deployments.get("app").await.ok()?;
        d.annotations()
            .get(fixed::ACKNOWLEDGED_HASHES)?
            .contains(&expected)
            .then_some(())
    })
    .await;
    f.wait_revisions("app", 1).await;
    f.set_secret("later", json!({"p": "2"})).await;
    f.wait_revisions("app", 2).await;
}

#[tokio::test]
async fn dry_runs_get_the_same_answer_and_create_nothing() {
    let f = Fixture::new("wh-dry").await;
    f.config_map("cfg", json!({"k": "v1"})).await;
    f.secret("db", json!({"p": "1"})).await;
    let _webhook = start_webhook(&f, &[]).await;
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let answer = f
        .deployments
        .create(&dry, &deployment("app", auto(), uses("cfg", "db")))
        .await
        .unwrap();
    assert!(stamp_of(&answer).is_some());
    assert!(f.deployments.get_opt("app").await.unwrap().is_none());
    let message = match f.deployments.create(&dry, &typo_deployment("typo")).await {
        Err(kube::Error::Api(s)) => s.message,
        other => panic!("{other:?}"),
    };
    assert!(message.contains("did you mean"));
}

#[tokio::test]
async fn its_own_namespace_and_its_own_requests_are_left_alone() {
    let f = Fixture::new("wh-self").await;
    f.config_map("cfg", json!({"k": "v1"})).await;
    f.secret("db", json!({"p": "1"})).await;
    let webhook = start_webhook(&f, &[]).await;
    // Its own namespace: not even validated.
    let home: Api<Deployment> = Api::namespaced(f.client.clone(), &webhook.home.name);
    home.create(&PostParams::default(), &typo_deployment("typo"))
        .await
        .unwrap();

    // Its own requests (its service account, impersonated here) are admitted unchanged.
    let user = format!("system:serviceaccount:{}:reloader", webhook.home.name);
    let binding: k8s_openapi::api::rbac::v1::RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "reloader-edit"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}]
    }))
    .unwrap();
    Api::<k8s_openapi::api::rbac::v1::RoleBinding>::namespaced(f.client.clone(), &f.ns.name)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let kubeconfig = kube::config::Kubeconfig::read_from(kubeconfig()).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    config.auth_info.impersonate = Some(user);
    let as_reloader: Api<Deployment> = Api::namespaced(Client::try_from(config).unwrap(), &f.ns.name);
    let reviewed = || webhook.reloader.metric_sum("reloader_admission_requests_total");
    let before = reviewed();
    let created = eventually("RBAC for the impersonated user", || async {
        as_reloader
            .create(&PostParams::default(), &deployment("own", auto(), uses("cfg", "db")))
            .await
            .ok()
    })
    .await;
    assert_eq!(stamp_of(&created), None);
    // Not even sent: the configurations' match conditions leave the reloader's writes out, so
    // a typo it writes is not refused either (it writes only its own stamps).
    as_reloader
        .create(&PostParams::default(), &typo_deployment("own-typo"))
        .await
        .expect("not validated");
    assert_eq!(reviewed(), before, "no review for the reloader's own requests");
}

#[tokio::test]
async fn soft_problems_are_warnings() {
    let f = Fixture::new("wh-warn").await;
    f.config_map("cfg", json!({"k": "v1"})).await;
    f.secret("db", json!({"p": "1"})).await;
    let _webhook = start_webhook(&f, &[]).await;
    let wrong_kind = manifest(
        "wrong",
        json!({defaults::MATCH: "true", defaults::SECRET_RELOAD: "nope"}),
        uses("cfg", "db"),
    );
    let (ok, stderr) = kubectl(&f.ns.name, &["apply", "-f", "-"], &wrong_kind.to_string());
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("Warning: reloader.stakater.com/match has no effect on a Deployment"),
        "{stderr}"
    );
    assert!(stderr.contains("Warning: Secret nope does not exist yet"), "{stderr}");
    let matched = json!({"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": "matched", "annotations": {defaults::MATCH: "true"}}, "data": {"a": "1"}});
    let (ok, stderr) = kubectl(&f.ns.name, &["apply", "-f", "-"], &matched.to_string());
    assert!(ok, "{stderr}");
    assert!(stderr.contains("no workload in"), "{stderr}");
}

/// An HTTPS client that opens a new connection per request (so every request sees the
/// certificate served at that moment) and returns the served leaf with the status.
async fn review_once(port: u16, ca_bundle: &str, body: &[u8]) -> Result<(Vec<u8>, u16), String> {
    use rustls_pki_types::pem::PemObject;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(ca_bundle.as_bytes()) {
        roots.add(cert.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    }
    let config =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    let head = format!(
        "POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.map_err(|e| e.to_string())?;
    tls.write_all(body).await.map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {text:?}"))?;
    Ok((leaf, status))
}

#[tokio::test]
async fn the_serving_certificate_rotates_under_load_without_a_failed_request() {
    let f = Fixture::new("wh-rotate").await;
    f.config_map("cfg", json!({"k": "v1"})).await;
    f.secret("db", json!({"p": "1"})).await;
    let webhook = start_webhook(&f, &["--admission-cert-lifetime=6s", "--admission-cert-check=500ms"]).await;
    let secrets: Api<Secret> = Api::namespaced(f.client.clone(), &webhook.home.name);
    let secret_name = "reloader-webhook-tls";
    let bundle = |s: &Secret| String::from_utf8(s.data.as_ref().unwrap()["ca-bundle.crt"].0.clone()).unwrap();
    let ca_bundle = bundle(&secrets.get(secret_name).await.unwrap());
    let review = serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "rotation", "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
                    "resource": {"group": "", "version": "v1", "resource": "configmaps"},
                    "name": "x", "namespace": f.ns.name, "operation": "CREATE", "userInfo": {"username": "load"},
                    "object": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}}
    }))
    .unwrap();
    let mut leaves = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    let mut requests = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(14);
    while tokio::time::Instant::now() < deadline {
        match review_once(webhook.port, &ca_bundle, &review).await {
            Ok((leaf, 200)) => {
                leaves.insert(leaf);
            }
            Ok((_, status)) => failures.push(format!("status {status}")),
            Err(e) => failures.push(e),
        }
        requests += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "rotation: {requests} requests, {} distinct certificates served",
        leaves.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {requests} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(leaves.len() >= 2, "the certificate never changed ({requests} requests)");
    assert!(requests >= 50);
    // The CA did not change: the API server's caBundle stayed valid throughout.
    assert_eq!(bundle(&secrets.get(secret_name).await.unwrap()), ca_bundle);
}

/// The CA itself rotates under load, with the real API server calling: the new CA is in the
/// configurations' caBundle before any replica serves a leaf it signed, so every create in the
/// meantime reaches the webhook (each one comes back stamped).
#[tokio::test]
async fn the_ca_rotates_under_load_and_the_api_server_always_trusts_what_is_served() {
    let f = Fixture::new("wh-ca").await;
    f.config_map("cfg", json!({"k": "v1"})).await;
    f.secret("db", json!({"p": "1"})).await;
    let args = [
        "--admission-ca-lifetime=9s",
        "--admission-cert-lifetime=6s",
        "--admission-cert-check=500ms",
    ];
    let webhook = start_webhook(&f, &args).await;
    let secrets: Api<Secret> = Api::namespaced(f.client.clone(), &webhook.home.name);
    let ca_of = || async {
        let s = secrets.get("reloader-webhook-tls-ca").await.unwrap();
        String::from_utf8(s.data.unwrap()["ca.crt"].0.clone()).unwrap()
    };
    let serving = secrets.get("reloader-webhook-tls").await.unwrap();
    assert!(
        !serving.data.as_ref().unwrap().contains_key("ca.key"),
        "the CA key is not in the Secret every replica reads"
    );
    let first_ca = ca_of().await;
    let mut created = 0;
    let mut unstamped = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(16);
    while tokio::time::Instant::now() < deadline {
        let name = format!("load-{created}");
        let d = f
            .deployments
            .create(&PostParams::default(), &deployment(&name, auto(), uses("cfg", "db")))
            .await
            .unwrap();
        if stamp_of(&d).is_none() {
            unstamped.push(name);
        }
        created += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        unstamped.is_empty(),
        "{} of {created} not stamped: {unstamped:?}",
        unstamped.len()
    );
    assert!(created >= 10, "{created}");
    assert_ne!(ca_of().await, first_ca, "the CA never rotated");
}

/// The served leaf certificate of a TLS endpoint on 127.0.0.1, trusting `ca_pem`.
async fn served_leaf(port: u16, ca_pem: &str) -> Result<Vec<u8>, String> {
    let review = serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"})).unwrap();
    // The body is not a valid review (400), which is fine: only the handshake matters here.
    review_once(port, ca_pem, &review).await.map(|(leaf, _)| leaf)
}

fn der_of(pem: &str) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

#[tokio::test]
async fn replicas_starting_together_share_one_certificate() {
    let f = Fixture::new("wh-race").await;
    let home = TestNamespace::new(&f.client, "race-home").await;
    let ports = [free_port(), free_port()];
    let configuration = unique_name("rt-race");
    let _configurations = Configurations(configuration.clone());
    let replicas: Vec<Reloader> = ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            let args = [
                format!("--admission-addr=127.0.0.1:{port}"),
                format!("--admission-url=https://127.0.0.1:{}", ports[0]),
                format!("--admission-namespace={}", home.name),
                format!("--admission-configuration={configuration}"),
                "--admission-owner-cluster-role=".to_string(),
                "--enable-ha".to_string(),
            ];
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let pod = format!("reloader-{i}");
            Reloader::start_with(
                kubeconfig(),
                &f.ns.name,
                &args,
                &[("POD_NAME", &pod), ("POD_NAMESPACE", &home.name)],
            )
        })
        .collect();
    for r in &replicas {
        r.wait_ready().await;
    }
    let secret = Api::<Secret>::namespaced(f.client.clone(), &home.name)
        .get("reloader-webhook-tls")
        .await
        .unwrap();
    let data = secret.data.unwrap();
    let text = |k: &str| String::from_utf8(data[k].0.clone()).unwrap();
    let expected = der_of(&text("tls.crt"));
    for port in ports {
        assert_eq!(
            served_leaf(port, &text("ca-bundle.crt")).await.unwrap(),
            expected,
            "port {port}"
        );
    }
}

#[tokio::test]
async fn certificate_files_are_served_and_reloaded_when_they_change() {
    let f = Fixture::new("wh-files").await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(unique_name("certs"));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = reloader::tls::CertificateAuthority::generate("files-ca", Duration::from_secs(3600), &[]).unwrap();
    let write = |cert: &reloader::tls::ServingCertificate| {
        std::fs::write(dir.join("tls.key"), &cert.key_pem).unwrap();
        std::fs::write(dir.join("tls.crt"), &cert.cert_pem).unwrap();
    };
    let first = ca.issue_serving(&["127.0.0.1"], Duration::from_secs(3600)).unwrap();
    write(&first);
    let port = free_port();
    let args = [
        format!("--admission-addr=127.0.0.1:{port}"),
        format!("--tls-cert-file={}", dir.join("tls.crt").display()),
        format!("--tls-key-file={}", dir.join("tls.key").display()),
        "--admission-cert-check=200ms".to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let reloader = Reloader::start_with(kubeconfig(), &f.ns.name, &args, &[]);
    reloader.wait_ready().await;
    assert_eq!(served_leaf(port, &ca.cert_pem).await.unwrap(), der_of(&first.cert_pem));
    // cert-manager renews the files in place: the new certificate is served, no restart.
    let second = ca.issue_serving(&["127.0.0.1"], Duration::from_secs(3600)).unwrap();
    write(&second);
    eventually("the renewed file served", || async {
        (served_leaf(port, &ca.cert_pem).await.ok()? == der_of(&second.cert_pem)).then_some(())
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Stakater's e2e sequence that lost a reload: a ConfigMap created, a workload using it created
/// and the ConfigMap changed, back to back with no pause. The webhook's cache may not have seen
/// the ConfigMap when the workload is admitted; the change must still roll the workload, once.
#[tokio::test]
async fn a_change_right_after_creation_rolls_once_however_close_the_writes() {
    use kube::api::DynamicObject;
    use reloader::core::workload::WorkloadKind;
    use reloader::kube_api::api_resource;

    const ROUNDS: usize = 8;
    let f = Fixture::new("wh-race").await;
    let webhook = start_webhook(&f, &[]).await;
    let kinds = [
        WorkloadKind::Deployment,
        WorkloadKind::StatefulSet,
        WorkloadKind::DaemonSet,
    ];
    let api = |kind: WorkloadKind| -> Api<DynamicObject> {
        Api::namespaced_with(f.client.clone(), &f.ns.name, &api_resource(kind))
    };
    let cases: Vec<(WorkloadKind, String)> = (0..ROUNDS)
        .flat_map(|round| kinds.map(|kind| (kind, format!("{}-{round}", kind.as_str().to_lowercase()))))
        .collect();
    // Large ConfigMaps rewritten meanwhile keep the reloader's ConfigMap watch busy, so its
    // cache trails the API server as it does on a loaded cluster.
    let done = std::sync::atomic::AtomicBool::new(false);
    let noise = async {
        let configmaps: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(f.client.clone(), &f.ns.name);
        let mut n = 0u32;
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            n += 1;
            let name = format!("noise-{}", n % 4);
            let body = json!({"metadata": {"name": name}, "data": {"blob": format!("{n}").repeat(300_000 / 4)}});
            let _ = configmaps
                .patch(&name, &PatchParams::apply("noise").force(), &Patch::Apply(&body))
                .await;
        }
    };
    let rounds = futures::future::join_all(cases.iter().map(|(kind, name)| {
        let f = &f;
        let api = api(*kind);
        async move {
            let workload: DynamicObject = serde_json::from_value(json!({
                "apiVersion": api_resource(*kind).api_version, "kind": kind.as_str(),
                "metadata": {"name": name},
                "spec": {"selector": {"matchLabels": {"app": name}}, "serviceName": name,
                         "template": {"metadata": {"labels": {"app": name},
                                                   "annotations": {defaults::CONFIGMAP_RELOAD: name}},
                                      "spec": {"containers": [{"name": "app", "image": "registry.example/app:1",
                                                               "envFrom": [{"configMapRef": {"name": name}}]}]}}}
            }))
            .unwrap();
            let mut workload = workload;
            if *kind != WorkloadKind::StatefulSet
                && let Some(spec) = workload.data.get_mut("spec").and_then(Value::as_object_mut)
            {
                spec.remove("serviceName");
            }
            f.config_map(name, json!({"k": "v1"})).await;
            api.create(&PostParams::default(), &workload).await.unwrap();
            f.set_config_map(name, json!({"k": "v2"})).await;
        }
    }));
    let rounds = async {
        // Let the noise build up first.
        tokio::time::sleep(Duration::from_millis(500)).await;
        rounds.await;
        done.store(true, std::sync::atomic::Ordering::Relaxed);
    };
    futures::future::join(noise, rounds).await;

    let mut rolled_values = std::collections::BTreeMap::new();
    for (_, name) in &cases {
        let value = stamp_value(&f.client, &webhook.home.name, &f.ns.name, &cm(name), &sha1_hex(b"k=v2")).await;
        rolled_values.insert(name.clone(), value);
    }
    let rolled = |name: &str| format!("configmap/{name}={}", rolled_values[name]);
    for (kind, name) in &cases {
        let api = api(*kind);
        eventually(&format!("{kind} {name} rolled onto the change"), || async {
            let object = api.get(name).await.ok()?;
            let stamp = object
                .data
                .pointer("/spec/template/metadata/annotations")?
                .get(fixed::TEMPLATE_HASHES)?
                .as_str()?
                .to_string();
            (stamp == rolled(name)).then_some(())
        })
        .await;
    }
    webhook.reloader.settle(cases.len() as f64).await;
    for (kind, name) in &cases {
        let object = api(*kind).get(name).await.unwrap();
        // Created at generation 1; exactly one template change since.
        assert_eq!(object.metadata.generation, Some(2), "{kind} {name} rolled exactly once");
        // And it says why, as Stakater does.
        let last: Value = object
            .data
            .pointer("/spec/template/metadata/annotations")
            .and_then(|a| a.get(fixed::LAST_RELOADED_FROM))
            .and_then(Value::as_str)
            .and_then(|v| serde_json::from_str(v).ok())
            .unwrap_or_else(|| panic!("{kind} {name} has no last-reloaded-from"));
        assert_eq!(
            (
                &last["type"],
                &last["name"],
                &last["namespace"],
                &last["hash"],
                &last["containerRefs"]
            ),
            (
                &json!("CONFIGMAP"),
                &json!(name),
                &json!(f.ns.name),
                &json!(rolled_values[name]),
                &json!(["app"])
            ),
            "{kind} {name}"
        );
        assert!(last["observedAt"].as_i64().is_some_and(|t| t > 1_700_000_000), "{last}");
    }
}
