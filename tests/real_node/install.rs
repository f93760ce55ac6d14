//! The reloader installed as users install it, running as pods of its image on the real node:
//! with Helm from Stakater's values file (then rotations, a killed container, an upgrade and the
//! uninstall), and with `kubectl apply -k manifests/`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, EvictParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::helm_cli::{chart, helm, helm_ok, stakater_values, values_file};
use crate::node::{
    RealNode, app_deployment, client_without_retries, kubectl, kubectl_ok, ready_pods, reloader_image, rollouts,
    wait_printed, wait_rolled_out,
};
use crate::support::{TestNamespace, client, eventually, kubeconfig, template_annotation, unique_name};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const LEASE: &str = "stakater-reloader-lock";
const HASHES: &str = "reloader.stakater.com/hashes";
const ACKNOWLEDGED: &str = "reloader.stakater.com/acknowledged-hashes";

/// Where an installed reloader runs and what it is called.
struct Install {
    namespace: String,
    deployment: String,
    /// The label selector of its pods.
    selector: String,
    /// The Service its webhook configurations must point at.
    webhook_service: String,
}

/// The install's pods run the image on the real node, pass their probes, elect a leader, and
/// the leader writes the caBundle into both webhook configurations the install created
/// (pointing at the Service); the API server calls them through it: a typo'd annotation is denied with its hint, a created Deployment is stamped at
/// create. Returns the leader's pod name.
async fn assert_serving(client: &Client, node: &RealNode, install: &Install, replicas: usize) -> String {
    let ns = &install.namespace;
    wait_rolled_out(client, ns, &install.deployment).await;
    let pods = ready_pods(client, ns, &install.selector).await;
    assert_eq!(pods.len(), replicas, "ready reloader pods");
    let (repository, tag) = reloader_image();
    for pod in &pods {
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.node_name.as_deref(), Some(node.name.as_str()), "on the real node");
        let container = &spec.containers[0];
        assert_eq!(container.image.as_deref(), Some(format!("{repository}:{tag}").as_str()));
        let status = &pod.status.as_ref().unwrap().container_statuses.as_ref().unwrap()[0];
        assert_eq!(status.restart_count, 0, "no restart: the liveness probe passes");
        assert!(status.ready, "the readiness probe passes");
    }
    let names: Vec<String> = pods.iter().map(|p| p.metadata.name.clone().unwrap()).collect();
    let leader = leader_of(client, ns, &names).await;

    // Both configurations point at the Service, not a URL, and trust the reloader's CA.
    let (mutating, validating) = eventually("both webhook configurations with a caBundle", || async {
        let (m, v) = webhooks_of(client, ns).await?;
        let trusted = |hooks: &[Value]| {
            !hooks.is_empty()
                && hooks
                    .iter()
                    .all(|w| w["clientConfig"]["caBundle"].as_str().is_some_and(|b| !b.is_empty()))
        };
        (trusted(&m) && trusted(&v)).then_some((m, v))
    })
    .await;
    for webhook in mutating.iter().chain(&validating) {
        let config = &webhook["clientConfig"];
        assert_eq!(config["service"]["name"], install.webhook_service.as_str(), "{webhook}");
        assert!(
            config["url"].is_null(),
            "addressed through the Service, not a URL: {webhook}"
        );
    }

    // The API server calls the webhook through the Service.
    let apps = TestNamespace::new(client, "rnapps").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &apps.name);
    let typo = workload("typo", json!({"reloader.stakater.com/atuo": "true"}), "cfg");
    let denial = eventually("the typo'd annotation denied", || async {
        match deployments.create(&PostParams::default(), &typo).await {
            Err(kube::Error::Api(e)) => Some(e.message),
            Ok(_) => {
                // Created before the webhook was called: try again.
                let _ = deployments.delete("typo", &DeleteParams::default()).await;
                None
            }
            Err(_) => None,
        }
    })
    .await;
    assert!(
        denial.contains("did you mean reloader.stakater.com/auto?"),
        "denied with the hint: {denial}"
    );
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &apps.name);
    config_maps
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "cfg"}, "data": {"k": "v"}})).unwrap(),
        )
        .await
        .unwrap();
    let stamp = eventually("a Deployment stamped at create", || async {
        let created = deployments
            .create(
                &PostParams::default(),
                &workload("stamped", json!({"reloader.stakater.com/auto": "true"}), "cfg"),
            )
            .await
            .ok()?;
        let stamp = template_annotation(&created, HASHES);
        if stamp.is_none() {
            let _ = deployments.delete("stamped", &DeleteParams::default()).await;
        }
        stamp
    })
    .await;
    assert!(
        stamp.starts_with("configmap/cfg=k1."),
        "a keyed stamp at create: {stamp}"
    );
    leader
}

/// The webhooks of every mutating and validating configuration whose Service lives in
/// `namespace`.
async fn webhooks_of(client: &Client, namespace: &str) -> Option<(Vec<Value>, Vec<Value>)> {
    let ours = |configs: Vec<Value>| -> Vec<Value> {
        configs
            .iter()
            .flat_map(|c| c["webhooks"].as_array().cloned().unwrap_or_default())
            .filter(|w| w["clientConfig"]["service"]["namespace"] == namespace)
            .collect()
    };
    let m = listed::<MutatingWebhookConfiguration>(client).await?;
    let v = listed::<ValidatingWebhookConfiguration>(client).await?;
    Some((ours(m), ours(v)))
}

/// Every object of a cluster-scoped kind, as JSON.
async fn listed<K>(client: &Client) -> Option<Vec<Value>>
where
    K: kube::Resource<Scope = kube::core::ClusterResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::all(client.clone());
    let list = api.list(&ListParams::default()).await.ok()?;
    Some(list.items.iter().map(|o| json!(o)).collect())
}

async fn wait_no_webhooks(client: &Client, namespace: &str) {
    eventually(&format!("no webhook configuration for {namespace} left"), || async {
        let (m, v) = webhooks_of(client, namespace).await?;
        (m.is_empty() && v.is_empty()).then_some(())
    })
    .await;
}

/// A Deployment (scheduled on kwok's node: no placement) using a ConfigMap.
fn workload(name: &str, annotations: Value, config_map: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": "x",
                                                       "envFrom": [{"configMapRef": {"name": config_map}}]}]}}}
    }))
    .unwrap()
}

/// The Lease's holder, once it is one of `pods`.
async fn leader_of(client: &Client, namespace: &str, pods: &[String]) -> String {
    let leases: Api<Lease> = Api::namespaced(client.clone(), namespace);
    eventually(&format!("the Lease held by one of {pods:?}"), || async {
        let holder = leases.get_opt(LEASE).await.ok()??.spec?.holder_identity?;
        pods.contains(&holder).then_some(holder)
    })
    .await
}

/// The Lease's holder as read (`None` when the read failed; `Some(None)` when nobody holds it).
async fn holder(client: &Client, namespace: &str) -> Option<Option<String>> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), namespace);
    let lease = leases.get_opt(LEASE).await.ok()?;
    Some(lease.and_then(|l| l.spec?.holder_identity).filter(|h| !h.is_empty()))
}

/// The app's Secret (`password`) and ConfigMap (`greeting`) with new content.
async fn rotate(client: &Client, namespace: &str, secret: Option<&str>, greeting: Option<&str>) {
    let patch = PatchParams::default();
    if let Some(password) = secret {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
        let body = json!({"stringData": {"password": password}});
        secrets.patch("app-secret", &patch, &Patch::Merge(&body)).await.unwrap();
    }
    if let Some(greeting) = greeting {
        let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        let body = json!({"data": {"greeting": greeting}});
        config_maps
            .patch("app-config", &patch, &Patch::Merge(&body))
            .await
            .unwrap();
    }
}

/// The app on the real node, rolled out and printing its first values; one rollout (the webhook
/// stamped it at create).
async fn start_app(client: &Client, node: &RealNode, namespace: &str) {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = json!({"metadata": {"name": "app-secret"}, "stringData": {"password": "p1"}});
    secrets
        .create(&PostParams::default(), &serde_json::from_value(secret).unwrap())
        .await
        .unwrap();
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let config = json!({"metadata": {"name": "app-config"}, "data": {"greeting": "g1"}});
    config_maps
        .create(&PostParams::default(), &serde_json::from_value(config).unwrap())
        .await
        .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let app = app_deployment(node, "app", "app-secret", "app-config", 1);
    let created = deployments
        .create(&PostParams::default(), &serde_json::from_value(app).unwrap())
        .await
        .unwrap();
    assert!(template_annotation(&created, HASHES).is_some(), "stamped at create");
    wait_printed(client, namespace, "app=app", 1, "password=p1 greeting=g1").await;
    assert_eq!(
        rollouts(client, namespace, "app").await,
        1,
        "no second rollout after create"
    );
}

/// After a change: the app's new pod prints `line`, and the change made exactly one rollout
/// (`before` + 1), still so once the reloader has had time to make a second.
async fn assert_rolled_once(client: &Client, namespace: &str, before: usize, line: &str) {
    wait_printed(client, namespace, "app=app", 1, line).await;
    wait_rolled_out(client, namespace, "app").await;
    assert_eq!(
        rollouts(client, namespace, "app").await,
        before + 1,
        "one rollout for {line}"
    );
    // A duplicate would follow within the reloader's coalescing window (1 s by default).
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        rollouts(client, namespace, "app").await,
        before + 1,
        "still one rollout for {line}"
    );
}

/// The Deployments created (name, stamped at create) and the errors of the writes refused.
type Writes = (Vec<(String, bool)>, Vec<String>);

/// Writes that must pass while the reloader is being replaced: Deployments reloading on
/// `config_map`, created one after another until stopped. Returns the names created, with
/// whether the webhook stamped each at create, and the errors of those refused.
fn write_during(
    client: Client,
    namespace: String,
    config_map: &'static str,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Writes> {
    tokio::spawn(async move {
        let deployments: Api<Deployment> = Api::namespaced(client, &namespace);
        let (mut created, mut refused) = (Vec::new(), Vec::new());
        while !stop.load(Ordering::Relaxed) {
            let name = format!("during-{}", created.len() + refused.len() + 1);
            let auto = json!({"reloader.stakater.com/auto": "true"});
            match deployments
                .create(&PostParams::default(), &workload(&name, auto, config_map))
                .await
            {
                Ok(d) => created.push((name, template_annotation(&d, HASHES).is_some())),
                Err(e) => refused.push(format!("{name}: {e}")),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        (created, refused)
    })
}

/// A Helm release of the chart, uninstalled when dropped.
pub(crate) struct Release {
    pub name: String,
    pub namespace: String,
}

impl Release {
    /// The chart installed with one replica in `home` (its name from `prefix`), rolled out;
    /// with the name of its Deployment.
    pub async fn one_replica(
        client: &kube::Client,
        node: &RealNode,
        home: &TestNamespace,
        prefix: &str,
    ) -> (Self, String) {
        let release = Release {
            name: unique_name(prefix),
            namespace: home.name.clone(),
        };
        release.helm("install", &[&node_values_with(node, 1, "")]);
        let reloader = format!("{}-reloader", release.name);
        crate::node::wait_rolled_out(client, &home.name, &reloader).await;
        (release, reloader)
    }

    pub fn helm(&self, verb: &str, files: &[&Path]) {
        let chart = chart();
        let config = kubeconfig().display().to_string();
        let mut args = vec![verb, &self.name, &chart, "-n", &self.namespace, "--kubeconfig", &config];
        let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        for f in &files {
            args.extend(["-f", f.as_str()]);
        }
        helm_ok(&args);
    }

    fn uninstall(&self) -> std::process::Output {
        let config = kubeconfig().display().to_string();
        helm(&[
            "uninstall",
            &self.name,
            "-n",
            &self.namespace,
            "--kubeconfig",
            &config,
            "--wait",
        ])
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        let _ = self.uninstall();
    }
}

/// The values a user of the real node adds to Stakater's file: the image (built locally, no
/// registry) and the node's placement; HA with two replicas, so that a leader is elected.
fn node_values(node: &RealNode, extra: &str) -> std::path::PathBuf {
    node_values_with(node, 2, extra)
}

/// [`node_values`] with `replicas` replicas (HA above one).
pub(crate) fn node_values_with(node: &RealNode, replicas: usize, extra: &str) -> std::path::PathBuf {
    let (repository, tag) = reloader_image();
    let placement = node.placement();
    values_file(&format!(
        "image: {{repository: {repository}, tag: \"{tag}\"}}\nreloader:\n  enableHA: {}\n{extra}  deployment:\n    replicas: {replicas}\n    nodeSelector: {}\n    tolerations: {}\n",
        replicas > 1,
        placement["nodeSelector"],
        placement["tolerations"]
    ))
}

/// `helm install` with Stakater's values: serving as pods of the image through its Service; a
/// rotated Secret reaches the app's new pods in one rollout; the leader's container killed with
/// a change pending loses nothing; `helm upgrade` with a Secret rotated mid-upgrade rolls the app
/// once, refuses no write, and the new leader takes over promptly (the old one releases the
/// Lease on SIGTERM); `helm uninstall` leaves no webhook configuration and applies pass.
#[tokio::test]
async fn helm_install_serves_from_pods_and_survives_kill_upgrade_and_uninstall() {
    let _turn = crate::one_at_a_time().await;
    let node = RealNode::get();
    let client = client().await;
    let home = TestNamespace::new(&client, "rnhelm").await;
    let release = Release {
        name: unique_name("r"),
        namespace: home.name.clone(),
    };
    let stakater = stakater_values();
    let values = node_values(node, "");
    release.helm("install", &[&stakater, &values]);
    let install = Install {
        namespace: home.name.clone(),
        deployment: format!("{}-reloader", release.name),
        selector: format!("app={}-reloader", release.name),
        webhook_service: format!("{}-reloader-webhook", release.name),
    };
    let leader = assert_serving(&client, node, &install, 2).await;

    // An app that reads what gets rotated.
    let app = TestNamespace::new(&client, "rnapp").await;
    start_app(&client, node, &app.name).await;
    rotate(&client, &app.name, Some("p2"), None).await;
    assert_rolled_once(&client, &app.name, 1, "password=p2 greeting=g1").await;

    // The leader's container killed, a change made while it is down: its replacement (the
    // restarted container or the standby) rolls it, once.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &home.name);
    let pod = pods.get(&leader).await.unwrap();
    let container = pod.status.unwrap().container_statuses.unwrap()[0]
        .container_id
        .clone()
        .unwrap();
    node.kill_container(&container);
    rotate(&client, &app.name, None, Some("g2")).await;
    assert_rolled_once(&client, &app.name, 2, "password=p2 greeting=g2").await;
    eventually("the killed container restarted and ready", || async {
        let status = pods
            .get(&leader)
            .await
            .ok()?
            .status?
            .container_statuses?
            .first()?
            .clone();
        (status.restart_count == 1 && status.ready).then_some(())
    })
    .await;

    // `helm upgrade` with a changed value: the reloader's pods are replaced one by one. The
    // Secret is rotated as the leader's pod goes; writes keep passing throughout.
    let leader = leader_of(
        &client,
        &home.name,
        &[leader.clone(), other_pod(&client, &install, &leader).await],
    )
    .await;
    // The chart's preStop pause runs before the SIGTERM (so endpoints drop the pod first).
    let pre_stop = pods
        .get(&leader)
        .await
        .ok()
        .and_then(|p| p.spec?.containers.first()?.lifecycle.clone()?.pre_stop?.sleep)
        .map(|sleep| Duration::from_secs(sleep.seconds.try_into().unwrap_or_default()))
        .expect("the chart's preStop sleep");
    let stop = Arc::new(AtomicBool::new(false));
    let writes = write_during(client.clone(), app.name.clone(), "app-config", stop.clone());
    let upgraded = node_values(node, "  logLevel: debug\n");
    release.helm("upgrade", &[&stakater, &upgraded]);
    let leaving = eventually("the leader's pod being replaced", || async {
        let pod = pods.get_opt(&leader).await.ok()?;
        pod.is_none_or(|p| p.metadata.deletion_timestamp.is_some())
            .then(Instant::now)
    })
    .await;
    rotate(&client, &app.name, Some("p3"), None).await;
    let released = eventually("the leaving leader's Lease released", || async {
        let now = holder(&client, &home.name).await?;
        (now.as_deref() != Some(leader.as_str())).then(|| leaving.elapsed())
    })
    .await;
    let new_leader = eventually("a new leader", || async {
        holder(&client, &home.name).await?.filter(|h| *h != leader)
    })
    .await;
    let handover = leaving.elapsed();
    eprintln!(
        "upgrade: the Lease released {released:?} and taken {handover:?} after the leader's pod began to go ({leader} to {new_leader})"
    );
    wait_rolled_out(&client, &home.name, &install.deployment).await;
    stop.store(true, Ordering::Relaxed);
    let (created, refused) = writes.await.unwrap();
    assert!(refused.is_empty(), "writes refused during the upgrade: {refused:?}");
    assert!(!created.is_empty(), "writes made during the upgrade");
    // What the webhook did not stamp (a review that reached a replica on its way out fails
    // open) is recorded by the engine on the object: nothing slips through unseen.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &app.name);
    for (name, _) in &created {
        eventually(&format!("{name} stamped or acknowledged"), || async {
            let d = deployments.get(name).await.ok()?;
            let acknowledged = d.metadata.annotations.as_ref()?.contains_key(ACKNOWLEDGED);
            (acknowledged || template_annotation(&d, HASHES).is_some()).then_some(())
        })
        .await;
    }
    let stamped = created.iter().filter(|(_, stamped)| *stamped).count();
    eprintln!(
        "upgrade: {} writes passed, {stamped} stamped by the webhook at create",
        created.len()
    );
    assert_rolled_once(&client, &app.name, 3, "password=p3 greeting=g2").await;
    // The Lease is released on SIGTERM, which comes after the preStop pause, and the other
    // replica (the standby, or the upgrade's new pod) takes it within about a second. Unreleased,
    // it would be held until it expires: a leader renews it 2 s before that, so its expiry is
    // always at least 2 s away, up to 15 s.
    assert!(
        released < pre_stop + Duration::from_secs(2),
        "the Lease released {released:?} after the pod began to go (preStop {pre_stop:?})"
    );
    assert!(
        handover < released + Duration::from_secs(2),
        "the Lease taken {handover:?} after the pod began to go, released at {released:?}"
    );

    // `helm uninstall`: the webhook configurations go with it, and an annotated apply passes.
    let out = release.uninstall();
    assert!(
        out.status.success(),
        "helm uninstall: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_no_webhooks(&client, &home.name).await;
    let manifest =
        serde_json::to_string(&workload("after", json!({"reloader.stakater.com/auto": "true"}), "cfg")).unwrap();
    kubectl_ok(&["apply", "-n", &app.name, "-f", "-"], Some(&manifest));
}

/// The other reloader pod than `leader`.
async fn other_pod(client: &Client, install: &Install, leader: &str) -> String {
    let pods = ready_pods(client, &install.namespace, &install.selector).await;
    pods.into_iter()
        .filter_map(|p| p.metadata.name)
        .find(|n| n != leader)
        .expect("a standby pod")
}

/// `kubectl apply -k manifests/` with only the image and the node's placement overridden (an
/// overlay, as users make one): the same as the chart's install, read-only root filesystem and
/// all; its PodDisruptionBudget holds a replica through a drain; `kubectl delete -k` then takes
/// the webhook configurations with it.
#[tokio::test]
async fn kustomize_install_serves_from_pods() {
    let _turn = crate::one_at_a_time().await;
    let node = RealNode::get();
    let client = client().await;
    let (repository, tag) = reloader_image();
    let overlay = Path::new(REPO).join("target/real-node/kustomize");
    std::fs::create_dir_all(&overlay).unwrap();
    let placement = node.placement();
    let patch = json!([
        {"op": "add", "path": "/spec/template/spec/nodeSelector", "value": placement["nodeSelector"]},
        {"op": "add", "path": "/spec/template/spec/tolerations", "value": placement["tolerations"]},
    ]);
    std::fs::write(
        overlay.join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../../../manifests]\n\
             images: [{{name: ghcr.io/example/reloader, newName: {repository}, newTag: \"{tag}\"}}]\n\
             patches:\n  - target: {{kind: Deployment, name: reloader}}\n    patch: '{patch}'\n"
        ),
    )
    .unwrap();
    let overlay = overlay.display().to_string();
    kubectl_ok(&["apply", "-k", &overlay], None);
    struct Uninstall(String);
    impl Drop for Uninstall {
        fn drop(&mut self) {
            let _ = kubectl(&["delete", "-k", &self.0, "--ignore-not-found", "--wait"], None);
        }
    }
    let uninstall = Uninstall(overlay);
    let install = Install {
        namespace: "reloader".into(),
        deployment: "reloader".into(),
        selector: "app.kubernetes.io/name=reloader".into(),
        webhook_service: "reloader".into(),
    };
    assert_serving(&client, node, &install, 2).await;
    let deployment: Api<Deployment> = Api::namespaced(client.clone(), "reloader");
    let container = &deployment
        .get("reloader")
        .await
        .unwrap()
        .spec
        .unwrap()
        .template
        .spec
        .unwrap()
        .containers[0];
    let security = container.security_context.clone().unwrap();
    assert_eq!(
        security.read_only_root_filesystem,
        Some(true),
        "it runs with a read-only root"
    );
    let capabilities = security.capabilities.clone().unwrap_or_default();
    assert_eq!(capabilities.drop, Some(vec!["ALL".to_string()]), "no capabilities");
    assert_eq!(security.allow_privilege_escalation, Some(false));

    // A drain (the node cordoned, its pods evicted one by one): the first eviction passes, and
    // the PodDisruptionBudget refuses the second while the first's replacement cannot start,
    // so the webhook and the Lease always keep a replica.
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "reloader");
    eventually("the PodDisruptionBudget allowing one disruption", || async {
        let status = budgets.get("reloader").await.ok()?.status?;
        (status.disruptions_allowed == Some(1)).then_some(())
    })
    .await;
    let names: Vec<String> = ready_pods(&client, "reloader", &install.selector)
        .await
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    assert_eq!(names.len(), 2, "two ready replicas before the drain: {names:?}");
    let cordon = node.cordon(&client).await;
    let pods: Api<Pod> = Api::namespaced(client_without_retries().await, "reloader");
    pods.evict(&names[0], &EvictParams::default()).await.unwrap();
    match pods.evict(&names[1], &EvictParams::default()).await {
        Err(kube::Error::Api(e)) => assert_eq!(e.code, 429, "refused by the budget: {e:?}"),
        other => panic!("the second eviction passed the budget: {other:?}"),
    }
    drop(cordon);
    wait_rolled_out(&client, "reloader", "reloader").await;

    drop(uninstall);
    wait_no_webhooks(&client, "reloader").await;
}
