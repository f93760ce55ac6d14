//! The real node of the test control plane (tools/node.sh): what `tools/cluster.sh up` recorded
//! about it, the reloader's image imported into its containerd, pods placed on it, what their
//! containers print, and their containers killed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{ListParams, LogParams, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::support::{clean_up, eventually, kubeconfig};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// The reloader's image as `make image` names it (its archive is target/image/reloader.tar).
pub fn reloader_image() -> (String, String) {
    let toml = std::fs::read_to_string(Path::new(REPO).join("Cargo.toml")).unwrap();
    let version = toml
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("the crate version")
        .to_string();
    ("localhost/reloader".to_string(), version)
}

/// What `tools/cluster.sh up` wrote about the real node into `cluster.env`.
pub struct RealNode {
    pub name: String,
    pub taint: String,
    pub app_image: String,
    ctr: PathBuf,
    ctr_address: String,
}

impl RealNode {
    /// The node, with the reloader's current image imported (once per test binary). Fails when
    /// the control plane has no real node: these tests are about real pods.
    pub fn get() -> &'static RealNode {
        static NODE: OnceLock<RealNode> = OnceLock::new();
        NODE.get_or_init(|| {
            let env_file = kubeconfig().with_file_name("cluster.env");
            let text =
                std::fs::read_to_string(&env_file).unwrap_or_else(|e| panic!("reading {}: {e}", env_file.display()));
            let env: BTreeMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
            assert_eq!(
                env.get("REAL_NODE").copied(),
                Some("1"),
                "the control plane in {} has no real node: tools/cluster.sh starts one as root, \
                 when no other cluster directory runs it (`make cluster-down` stops the demo's)",
                env_file.display()
            );
            let node = RealNode {
                name: env["REAL_NODE_NAME"].to_string(),
                taint: env["REAL_NODE_TAINT"].to_string(),
                app_image: env["APP_IMAGE"].to_string(),
                ctr: Path::new(env["REAL_NODE_BIN"]).join("ctr"),
                ctr_address: env["REAL_NODE_CTR_ADDRESS"].to_string(),
            };
            node.import_reloader_image();
            node
        })
    }

    fn ctr(&self, args: &[&str]) -> String {
        let out = Command::new(&self.ctr)
            .args(["--address", &self.ctr_address, "-n", "k8s.io"])
            .args(args)
            .output()
            .expect("running ctr");
        assert!(
            out.status.success(),
            "ctr {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `make test` builds the image before the tests (`make image` by hand): import what it
    /// built, so the pods run this very tree's binary.
    fn import_reloader_image(&self) {
        let archive = Path::new(REPO).join("target/image/reloader.tar");
        assert!(
            archive.exists(),
            "{} is missing: run `make image` (make test builds it)",
            archive.display()
        );
        self.ctr(&["images", "import", "--local", archive.to_str().unwrap()]);
        let (repository, tag) = reloader_image();
        let names = self.ctr(&["images", "ls", "-q"]);
        assert!(
            names.lines().any(|n| n == format!("{repository}:{tag}")),
            "{repository}:{tag} not in the node's images after the import: {names}"
        );
    }

    /// SIGKILLs a container (`containerd://<id>` from the pod's status), as the OOM killer or
    /// a crash would: the kubelet sees it die and restarts it.
    pub fn kill_container(&self, container_id: &str) {
        let id = container_id
            .strip_prefix("containerd://")
            .unwrap_or_else(|| panic!("not a containerd container: {container_id}"));
        self.ctr(&["tasks", "kill", "--signal", "SIGKILL", id]);
    }

    /// Marks the node unschedulable, as `kubectl drain` does first, until the guard is dropped.
    pub async fn cordon(&self, client: &Client) -> Cordon {
        set_unschedulable(client, &self.name, true).await;
        Cordon(self.name.clone())
    }

    /// A pod spec's placement on this node: its label and a toleration of its taint.
    pub fn placement(&self) -> Value {
        json!({
            "nodeSelector": {self.taint.as_str(): "true"},
            "tolerations": [{"key": self.taint, "operator": "Exists", "effect": "NoSchedule"}],
        })
    }
}

async fn set_unschedulable(client: &Client, node: &str, unschedulable: bool) {
    let nodes: Api<Node> = Api::all(client.clone());
    let patch = json!({"spec": {"unschedulable": unschedulable}});
    nodes
        .patch(node, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_or_else(|e| panic!("setting {node} unschedulable={unschedulable}: {e}"));
}

/// The node cordoned; uncordoned when dropped, whatever the test did.
pub struct Cordon(String);

impl Drop for Cordon {
    fn drop(&mut self) {
        let node = self.0.clone();
        clean_up(kubeconfig().to_path_buf(), |client| async move {
            set_unschedulable(&client, &node, false).await;
        });
    }
}

/// A client that hands a 429 back instead of retrying it (kube retries 429s by default): for
/// the eviction API, whose 429 is the answer (a PodDisruptionBudget refused it).
pub async fn client_without_retries() -> Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(kubeconfig()).unwrap();
    let options = kube::config::KubeConfigOptions::default();
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .unwrap();
    config.default_retry = false;
    Client::try_from(config).unwrap()
}

/// `kubectl` against the test control plane; returns its output, stdout then stderr, and
/// whether it succeeded.
pub fn kubectl(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig())
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running kubectl");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default().as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

pub fn kubectl_ok(args: &[&str], stdin: Option<&str>) -> String {
    let (ok, text) = kubectl(args, stdin);
    assert!(ok, "kubectl {args:?}: {text}");
    text
}

/// The Deployment's rollout is complete: every replica updated, ready and available, observed.
pub fn rolled_out(d: &Deployment) -> bool {
    let (Some(spec), Some(status)) = (&d.spec, &d.status) else {
        return false;
    };
    let want = spec.replicas.unwrap_or(1);
    status.observed_generation == d.metadata.generation
        && status.updated_replicas == Some(want)
        && status.ready_replicas == Some(want)
        && status.available_replicas == Some(want)
        && status.replicas == Some(want)
}

/// Waits until the Deployment has rolled out; returns it.
pub async fn wait_rolled_out(client: &Client, namespace: &str, name: &str) -> Deployment {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    eventually(&format!("deployment {namespace}/{name} rolled out"), || async {
        api.get_opt(name).await.ok()?.filter(rolled_out)
    })
    .await
}

/// How many rollouts the Deployment has had: its ReplicaSets (each template gets one).
pub async fn rollouts(client: &Client, namespace: &str, name: &str) -> usize {
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), namespace);
    let all = api.list(&ListParams::default()).await.unwrap();
    all.items
        .iter()
        .filter(|rs| {
            rs.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.kind == "Deployment" && o.name == name)
        })
        .count()
}

/// Running, ready pods of a label selector that are not being deleted.
pub async fn ready_pods(client: &Client, namespace: &str, selector: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let pods = api.list(&ListParams::default().labels(selector)).await.unwrap();
    pods.items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .collect()
}

/// What a pod's container printed (its log, read through the kubelet).
pub async fn pod_log(client: &Client, namespace: &str, pod: &str) -> String {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    api.logs(pod, &LogParams::default()).await.unwrap_or_default()
}

/// Waits until every ready pod of the selector (and at least `count`) printed `line`, and no
/// other pod of the selector is still running; returns the pods' names.
pub async fn wait_printed(client: &Client, namespace: &str, selector: &str, count: usize, line: &str) -> Vec<String> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    eventually(&format!("{count} pods of {selector} printing {line:?}"), || async {
        let all = api.list(&ListParams::default().labels(selector)).await.ok()?;
        let ready = ready_pods(client, namespace, selector).await;
        if ready.len() < count || all.items.len() != ready.len() {
            return None;
        }
        let mut names = Vec::new();
        for pod in &ready {
            let name = pod.metadata.name.clone().unwrap();
            if !pod_log(client, namespace, &name).await.lines().any(|l| l == line) {
                return None;
            }
            names.push(name);
        }
        Some(names)
    })
    .await
}

/// The app of the tests and the demo: a Deployment on the real node whose container reads a
/// Secret's key as an environment variable and a ConfigMap's key as a mounted file, prints both
/// once at start, then waits (exiting at once on SIGTERM).
pub fn app_deployment(node: &RealNode, name: &str, secret: &str, config_map: &str, replicas: i32) -> Value {
    let mut pod = json!({
        "terminationGracePeriodSeconds": 5,
        "containers": [{
            "name": "app",
            "image": node.app_image,
            "imagePullPolicy": "Never",
            "command": ["sh", "-c",
                "echo \"password=$PASSWORD greeting=$(cat /config/greeting)\"; trap 'exit 0' TERM; sleep 100000 & wait"],
            "env": [{"name": "PASSWORD",
                     "valueFrom": {"secretKeyRef": {"name": secret, "key": "password"}}}],
            "volumeMounts": [{"name": "config", "mountPath": "/config"}],
        }],
        "volumes": [{"name": "config", "configMap": {"name": config_map}}],
    });
    for (key, value) in node.placement().as_object().unwrap() {
        pod[key] = value.clone();
    }
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "annotations": {"reloader.stakater.com/auto": "true"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod},
        },
    })
}

/// Kills the container of the reloader's (first) pod `app=<reloader>` in `namespace`; returns
/// the pod's name, for [`restart_count`].
pub async fn kill_reloader(client: &Client, node: &RealNode, namespace: &str, reloader: &str) -> String {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let selector = format!("app={reloader}");
    let pod = pods.list(&ListParams::default().labels(&selector)).await.unwrap().items[0].clone();
    let container = pod.status.unwrap().container_statuses.unwrap()[0]
        .container_id
        .clone()
        .unwrap();
    node.kill_container(&container);
    pod.metadata.name.unwrap()
}

/// How many times the first container of the pod `name` was restarted.
pub async fn restart_count(client: &Client, namespace: &str, name: &str) -> i32 {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    pods.get(name)
        .await
        .unwrap()
        .status
        .unwrap()
        .container_statuses
        .unwrap()[0]
        .restart_count
}
