//! The install manifests: accepted by the API server, and their RBAC is enough — the reloader
//! runs as the manifests' ServiceAccount (impersonated) with HA and the webhook, and does its
//! whole job.

use std::process::Command;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

use crate::engine::{Fixture, auto, uses};
use crate::support::{Reloader, TestNamespace, eventually, kubeconfig};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn kubectl(args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut child = Command::new("kubectl")
        .arg(format!("--kubeconfig={}", kubeconfig().display()))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Removes what the test installed cluster-wide, even when it fails.
struct Installed {
    configuration: String,
}

impl Drop for Installed {
    fn drop(&mut self) {
        use k8s_openapi::api::admissionregistration::v1::{
            MutatingWebhookConfiguration, ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
            ValidatingWebhookConfiguration,
        };
        use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
        let name = self.configuration.clone();
        crate::support::clean_up(kubeconfig().to_path_buf(), |client| async move {
            let dp = kube::api::DeleteParams::default();
            let _ = Api::<MutatingWebhookConfiguration>::all(client.clone())
                .delete(&name, &dp)
                .await;
            let _ = Api::<ValidatingWebhookConfiguration>::all(client.clone())
                .delete(&name, &dp)
                .await;
            let _ = Api::<ClusterRoleBinding>::all(client.clone())
                .delete("reloader", &dp)
                .await;
            let _ = Api::<ClusterRole>::all(client.clone()).delete("reloader", &dp).await;
            let policy = "reloader-webhook-configurations";
            let _ = Api::<ValidatingAdmissionPolicyBinding>::all(client.clone())
                .delete(policy, &dp)
                .await;
            let _ = Api::<ValidatingAdmissionPolicy>::all(client).delete(policy, &dp).await;
        });
    }
}

/// The install tests share the manifests' cluster-wide objects (ClusterRole `reloader`, the
/// configurations named `reloader`): one at a time.
static CLUSTER_WIDE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The manifests as `kubectl kustomize manifests/` renders them.
fn rendered() -> crate::helm::Rendered {
    crate::helm::Rendered::parse(&kubectl(&["kustomize", &format!("{REPO}/manifests")], None))
}

/// The manifests as `kubectl kustomize manifests/` renders them, moved to the namespace `home`,
/// without the Deployment (no container image here: the binary runs as a process under the
/// ServiceAccount's identity instead) and the Namespace; the webhook configurations call the
/// process at `https://127.0.0.1:<port>` (as the Service would route to a pod) and select only
/// the `scope` namespaces (no other test's writes). A `kind: List`, for `kubectl apply -f -`.
fn manifests_in(home: &str, port: u16, scope: &[&str]) -> String {
    let text = kubectl(&["kustomize", &format!("{REPO}/manifests")], None);
    let text = text
        .replace("namespace: reloader", &format!("namespace: {home}"))
        .replace(
            "system:serviceaccount:reloader:reloader",
            &format!("system:serviceaccount:{home}:reloader"),
        );
    let mut items = Vec::new();
    for mut doc in crate::helm::Rendered::parse(&text).0 {
        match doc["kind"].as_str() {
            Some("Deployment" | "Namespace") => continue,
            Some(kind @ ("MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration")) => {
                let path = if kind.starts_with("Mutating") {
                    "/mutate"
                } else {
                    "/validate"
                };
                let hook = &mut doc["webhooks"][0];
                hook["clientConfig"] = json!({"url": format!("https://127.0.0.1:{port}{path}")});
                hook["namespaceSelector"] = json!({"matchExpressions": [
                    {"key": "kubernetes.io/metadata.name", "operator": "In", "values": scope}]});
            }
            _ => {}
        }
        items.push(doc);
    }
    json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()
}

/// A kubeconfig acting as the manifests' ServiceAccount in `home` (impersonated).
fn service_account_kubeconfig(home: &str) -> std::path::PathBuf {
    let user = format!("system:serviceaccount:{home}:reloader");
    let original = std::fs::read_to_string(kubeconfig()).unwrap();
    let impersonating = original.replacen(
        "    client-certificate-data:",
        &format!("    as: {user}\n    client-certificate-data:"),
        1,
    );
    assert_ne!(impersonating, original, "kubeconfig layout changed");
    let path = std::path::Path::new(REPO).join(format!("target/{home}.kubeconfig"));
    std::fs::write(&path, impersonating).unwrap();
    path
}

/// The reloader as the install runs it (HA, the webhook, the default configuration name the
/// RBAC is restricted to), as a process under the ServiceAccount's identity.
fn start_installed(path: &std::path::Path, f: &Fixture, home: &str, port: u16, extra: &[&str]) -> Reloader {
    let namespaces = format!("--namespaces={},{home}", f.ns.name);
    let addr = format!("--admission-addr=127.0.0.1:{port}");
    let url = format!("--admission-url=https://127.0.0.1:{port}");
    let mut args = vec![
        namespaces.as_str(),
        "--enable-ha",
        "--lease-duration=5s",
        &addr,
        &url,
        "--admission-configuration=reloader",
    ];
    args.extend_from_slice(extra);
    Reloader::start_with(
        path,
        &f.ns.name,
        &args,
        &[("POD_NAME", "reloader-0"), ("POD_NAMESPACE", home)],
    )
}

#[tokio::test]
async fn the_manifests_install_and_their_rbac_is_sufficient() {
    let _one_at_a_time = CLUSTER_WIDE.lock().await;
    let f = Fixture::new("install").await;
    let home = TestNamespace::new(&f.client, "rlhome").await;
    let port = crate::webhook::free_port();
    kubectl(
        &["apply", "-f", "-"],
        Some(&manifests_in(&home.name, port, &[&f.ns.name, &home.name])),
    );

    // The default configuration name, which the manifests' RBAC is restricted to.
    let _cleanup = Installed {
        configuration: "reloader".into(),
    };
    let path = service_account_kubeconfig(&home.name);

    f.config_map("cfg", json!({"k": "v1"})).await;
    f.secret("db", json!({"p": "1"})).await;
    f.deployment("adopted", auto(), uses("cfg", "db")).await;
    let reloader = start_installed(&path, &f, &home.name, port, &[]);
    reloader.wait_ready().await;
    // HA: it holds the Lease. Webhook: its certificate Secret exists and a create gets stamped.
    let leases: Api<Lease> = Api::namespaced(f.client.clone(), &home.name);
    eventually("the lease held", || async {
        leases
            .get_opt("stakater-reloader-lock")
            .await
            .ok()??
            .spec?
            .holder_identity
    })
    .await;
    let secrets: Api<Secret> = Api::namespaced(f.client.clone(), &home.name);
    assert!(secrets.get_opt("reloader-webhook-tls").await.unwrap().is_some());
    f.wait_acknowledged("adopted").await;
    let stamped = eventually("a stamped create", || async {
        let d: k8s_openapi::api::apps::v1::Deployment = serde_json::from_value(json!({
            "metadata": {"name": "created", "annotations": auto()},
            "spec": {"selector": {"matchLabels": {"app": "created"}},
                     "template": {"metadata": {"labels": {"app": "created"}},
                                  "spec": {"containers": [{"name": "c", "image": "x", "envFrom": uses("cfg", "db")}]}}}
        }))
        .unwrap();
        f.deployments.create(&PostParams::default(), &d).await.ok()
    })
    .await;
    assert!(
        stamped
            .spec
            .unwrap()
            .template
            .metadata
            .unwrap()
            .annotations
            .is_some_and(|a| a.contains_key(reloader::core::vocabulary::fixed::TEMPLATE_HASHES))
    );
    // The configurations are the install's (the reloader, without the right to create any,
    // wrote their caBundle).
    {
        use k8s_openapi::api::admissionregistration::v1::{
            MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
        };
        let m = Api::<MutatingWebhookConfiguration>::all(f.client.clone())
            .get("reloader")
            .await
            .unwrap();
        let v = Api::<ValidatingWebhookConfiguration>::all(f.client.clone())
            .get("reloader")
            .await
            .unwrap();
        for meta in [&m.metadata, &v.metadata] {
            assert!(!reloader::admission::register::created_by_reloader(meta), "{meta:?}");
            assert_eq!(meta.owner_references, None);
        }
        assert!(m.webhooks.unwrap()[0].client_config.ca_bundle.is_some());
        assert!(v.webhooks.unwrap()[0].client_config.ca_bundle.is_some());
    }
    // Engine: a change rolls both, and nothing failed for lack of permissions.
    f.set_config_map("cfg", json!({"k": "v2"})).await;
    f.wait_revisions("adopted", 2).await;
    f.wait_revisions("created", 2).await;
    assert_eq!(
        reloader.metric("reloader_reload_executed_total{success=\"false\"}"),
        0.0
    );
    assert_eq!(reloader.metric("reloader_reconciles_total{outcome=\"error\"}"), 0.0);
    let log = std::fs::read_to_string(&reloader.log).unwrap();
    assert!(
        !log.contains("forbidden"),
        "an RBAC denial in {}",
        reloader.log.display()
    );
    drop(reloader);
}

#[tokio::test]
async fn uninstalling_leaves_nothing_that_intercepts_writes() {
    use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};

    let _one_at_a_time = CLUSTER_WIDE.lock().await;
    let f = Fixture::new("uninstall").await;
    let home = TestNamespace::new(&f.client, "rlhome").await;
    let port = crate::webhook::free_port();
    let manifests = manifests_in(&home.name, port, &[&f.ns.name, &home.name]);
    kubectl(&["apply", "-f", "-"], Some(&manifests));
    let _cleanup = Installed {
        configuration: "reloader".into(),
    };
    let path = service_account_kubeconfig(&home.name);
    f.config_map("cfg", json!({"k": "v1"})).await;
    f.secret("db", json!({"p": "1"})).await;
    let reloader = start_installed(&path, &f, &home.name, port, &["--admission-cert-check=500ms"]);
    reloader.wait_ready().await;

    // The install created both configurations; the leader fills their caBundle.
    let mutating: Api<MutatingWebhookConfiguration> = Api::all(f.client.clone());
    let validating: Api<ValidatingWebhookConfiguration> = Api::all(f.client.clone());
    eventually("both configurations trusting the reloader", || async {
        let m = mutating.get_opt("reloader").await.ok()??;
        let v = validating.get_opt("reloader").await.ok()??;
        let trusted = |bundle: Option<&k8s_openapi::ByteString>| bundle.is_some_and(|b| !b.0.is_empty());
        (trusted(m.webhooks?[0].client_config.ca_bundle.as_ref())
            && trusted(v.webhooks?[0].client_config.ca_bundle.as_ref()))
        .then_some(())
    })
    .await;
    let stamped = eventually("the webhook stamping", || async {
        let d = crate::webhook::deployment("before", auto(), uses("cfg", "db"));
        let created = f.deployments.create(&PostParams::default(), &d).await.ok()?;
        let _ = f.deployments.delete("before", &Default::default()).await;
        crate::webhook::stamp_of(&created)
    })
    .await;
    assert!(stamped.starts_with("configmap/cfg="), "{stamped}");
    let log = std::fs::read_to_string(&reloader.log).unwrap();
    assert!(
        !log.contains("forbidden"),
        "an RBAC denial in {}",
        reloader.log.display()
    );

    // `kubectl delete -k manifests/`, the reloader still running meanwhile (a terminating pod):
    // both configurations are deleted with the install, and the reloader, which may not create
    // any, cannot put them back.
    kubectl(&["delete", "-f", "-"], Some(&manifests));
    eventually("both configurations deleted", || async {
        let m = mutating.get_opt("reloader").await.ok()?;
        let v = validating.get_opt("reloader").await.ok()?;
        (m.is_none() && v.is_none()).then_some(())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert!(mutating.get_opt("reloader").await.unwrap().is_none(), "not re-created");
    drop(reloader);

    // Nothing intercepts writes any more: an annotated Deployment applies, unstamped.
    let created = f
        .deployments
        .create(
            &PostParams::default(),
            &crate::webhook::deployment("after", auto(), uses("cfg", "db")),
        )
        .await
        .expect("applies after the uninstall");
    assert_eq!(crate::webhook::stamp_of(&created), None);
}

/// `kubectl kustomize manifests/`: the Role names every object it lets the reloader read or
/// write in its namespace (create, which cannot be limited by name, alone and only for what
/// the reloader creates); no rule lets it create admission configurations; the two
/// configurations are what `src/admission/register.rs` computes for the Deployment's flags.
#[test]
fn the_kustomize_manifests_name_their_resources_and_ship_the_configurations() {
    use crate::helm::{lease_rules, rule};
    let r = rendered();
    let mut own = lease_rules();
    own.extend([
        rule(&[""], &["secrets"], &[], &["create"]),
        rule(
            &[""],
            &["secrets"],
            &["reloader-webhook-tls", "reloader-webhook-tls-ca", "reloader-stamp-key"],
            &["get", "list", "watch", "update"],
        ),
        rule(&[""], &["configmaps"], &[], &["create"]),
        rule(&[""], &["configmaps"], &["reloader-meta-info"], &["get", "update"]),
    ]);
    assert_eq!(r.rules("Role", "reloader", Some("reloader")), own);
    crate::helm::assert_no_create_on_admission_configurations(&r);
    let cluster = r.rules("ClusterRole", "reloader", None);
    assert!(
        cluster.iter().all(|rule| rule.resources != ["clusterroles"]),
        "{cluster:?}"
    );
    assert!(cluster.contains(&rule(
        &["admissionregistration.k8s.io"],
        &["mutatingwebhookconfigurations", "validatingwebhookconfigurations"],
        &["reloader"],
        &["get", "patch"]
    )));
    crate::helm::assert_configurations_are_the_reloaders(&r, "reloader", "reloader", "kustomize");
    // The chart's policy, with the same expression.
    let ours = crate::helm::assert_configuration_policy(&r, "reloader", "system:serviceaccount:reloader:reloader");
    let chart = crate::helm::template(
        "rel",
        "tools",
        &[],
        &[
            "--api-versions",
            "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy",
        ],
    );
    let charts =
        crate::helm::assert_configuration_policy(&chart, "rel-reloader", "system:serviceaccount:tools:rel-reloader");
    assert_eq!(ours, charts);
}
