//! The Helm chart (`manifests/helm/reloader`) with the real `helm` (tools/helm.sh): lint, the
//! templates of Stakater's default values file and of customised files, the values schema, and
//! `helm install` / `helm upgrade` into the control plane. Then, per mode, the reloader binary
//! runs with the args and environment the chart gives its container, under the chart's
//! ServiceAccount (impersonated), and does its whole job: the chart's RBAC suffices.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::engine::{Fixture, auto, uses};
pub use crate::helm_cli::{chart, helm, helm_ok, stakater_values, values_file};
use crate::support::{Reloader, TestNamespace, eventually, kubeconfig, template_annotation, unique_name};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Objects of a rendered chart.
pub struct Rendered(pub Vec<Value>);

impl Rendered {
    pub fn parse(text: &str) -> Self {
        let docs: Vec<Value> = serde_saphyr::from_multiple(text).expect("rendered YAML");
        Self(docs.into_iter().filter(|d| d.is_object()).collect())
    }

    pub fn all(&self, kind: &str) -> Vec<&Value> {
        self.0.iter().filter(|o| o["kind"] == kind).collect()
    }

    pub fn get(&self, kind: &str, name: &str) -> &Value {
        self.try_get(kind, name)
            .unwrap_or_else(|| panic!("no {kind} {name} in {:?}", self.names()))
    }

    pub fn try_get(&self, kind: &str, name: &str) -> Option<&Value> {
        self.0
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
    }

    pub fn names(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|o| {
                format!(
                    "{}/{}/{}",
                    o["kind"].as_str().unwrap_or_default(),
                    o["metadata"]["namespace"].as_str().unwrap_or("-"),
                    o["metadata"]["name"].as_str().unwrap_or_default()
                )
            })
            .collect()
    }

    /// The reloader's container.
    pub fn container(&self) -> &Value {
        let deployments = self.all("Deployment");
        assert_eq!(deployments.len(), 1, "{:?}", self.names());
        &deployments[0]["spec"]["template"]["spec"]["containers"][0]
    }

    pub fn args(&self) -> Vec<String> {
        self.container()["args"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    }

    /// The container's environment: name to its `value`, or to its `valueFrom` as JSON.
    pub fn env(&self) -> BTreeMap<String, Value> {
        self.container()["env"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                let value = if e.get("value").is_some() {
                    e["value"].clone()
                } else {
                    json!({"valueFrom": e["valueFrom"]})
                };
                (e["name"].as_str().unwrap().to_string(), value)
            })
            .collect()
    }

    /// The rules of a Role or ClusterRole, as (apiGroups, resources, resourceNames, verbs).
    pub fn rules(&self, kind: &str, name: &str, namespace: Option<&str>) -> Vec<Rule> {
        let role = self
            .0
            .iter()
            .find(|o| {
                o["kind"] == kind
                    && o["metadata"]["name"] == name
                    && namespace.is_none_or(|ns| o["metadata"]["namespace"] == ns)
            })
            .unwrap_or_else(|| panic!("no {kind} {name} in {namespace:?}: {:?}", self.names()));
        role["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let strings = |key: &str| -> Vec<String> {
                    r[key]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|v| v.as_str().unwrap().to_string())
                        .collect()
                };
                Rule {
                    groups: strings("apiGroups"),
                    resources: strings("resources"),
                    names: strings("resourceNames"),
                    verbs: strings("verbs"),
                }
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub groups: Vec<String>,
    pub resources: Vec<String>,
    pub names: Vec<String>,
    pub verbs: Vec<String>,
}

pub fn rule(groups: &[&str], resources: &[&str], names: &[&str], verbs: &[&str]) -> Rule {
    let own = |s: &[&str]| s.iter().map(|x| x.to_string()).collect();
    Rule {
        groups: own(groups),
        resources: own(resources),
        names: own(names),
        verbs: own(verbs),
    }
}

/// `helm template <release> <chart> -n <namespace> -f <files…> <extra…>`.
pub fn template(release: &str, namespace: &str, files: &[&Path], extra: &[&str]) -> Rendered {
    let chart = chart();
    let mut args = vec!["template", release, &chart, "--namespace", namespace];
    let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    for f in &files {
        args.extend(["-f", f.as_str()]);
    }
    args.extend(extra);
    Rendered::parse(&helm_ok(&args))
}

/// The error helm reports for a render that must fail.
fn template_error(files: &[&Path], extra: &[&str]) -> String {
    let chart = chart();
    let mut args = vec!["template", "rel", &chart, "--namespace", "ns"];
    let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    for f in &files {
        args.extend(["-f", f.as_str()]);
    }
    args.extend(extra);
    let out = helm(&args);
    assert!(!out.status.success(), "helm {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn field_ref(path: &str) -> Value {
    json!({"valueFrom": {"fieldRef": {"fieldPath": path}}})
}

/// The workload rules every watching Role or ClusterRole has with Stakater's defaults.
fn default_workload_rules() -> Vec<Rule> {
    vec![
        rule(&[""], &["configmaps", "secrets"], &[], &["get", "list", "watch"]),
        rule(
            &["apps"],
            &["deployments", "daemonsets", "statefulsets"],
            &[],
            &["get", "list", "watch", "patch"],
        ),
        rule(&["batch"], &["cronjobs"], &[], &["get", "list", "watch", "patch"]),
        rule(
            &["batch"],
            &["jobs"],
            &[],
            &["get", "list", "watch", "patch", "create", "delete"],
        ),
        // Pod restarts (reloader.podRestarts, on by default).
        rule(&[""], &["pods"], &[], &["list"]),
        rule(&[""], &["pods/eviction"], &[], &["create"]),
        rule(&["", "events.k8s.io"], &["events"], &[], &["create", "patch"]),
        // Each Namespace's reload window (and --namespace-selector's selection).
        rule(&[""], &["namespaces"], &[], &["get", "list", "watch"]),
    ]
}

/// The webhook's one cluster-wide rule: read and patch its two configurations, by name. The
/// chart creates them; no `create`, which cannot be limited by name.
fn webhook_rules(fullname: &str) -> Vec<Rule> {
    let configurations = ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"];
    vec![rule(
        &["admissionregistration.k8s.io"],
        &configurations,
        &[fullname],
        &["get", "patch"],
    )]
}

/// No Role or ClusterRole of the rendering lets the reloader create (or otherwise write beyond
/// patching its own, by name) any admission configuration.
pub fn assert_no_create_on_admission_configurations(r: &Rendered) {
    for role in r.all("ClusterRole").into_iter().chain(r.all("Role")) {
        for rule in role["rules"].as_array().into_iter().flatten() {
            let groups = rule["apiGroups"].to_string();
            if !groups.contains("admissionregistration") && !groups.contains("\"*\"") {
                continue;
            }
            let verbs: Vec<&str> = rule["verbs"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            assert!(
                verbs.iter().all(|v| ["get", "patch"].contains(v)),
                "{}: {rule}",
                role["metadata"]["name"]
            );
            assert!(
                rule["resourceNames"].as_array().is_some_and(|n| !n.is_empty()),
                "by name only: {rule}"
            );
        }
    }
}

fn meta_info_rules() -> Vec<Rule> {
    vec![
        rule(&[""], &["configmaps"], &[], &["create"]),
        rule(&[""], &["configmaps"], &["reloader-meta-info"], &["get", "update"]),
    ]
}

fn own_secret_rules(names: &[&str]) -> Vec<Rule> {
    vec![
        rule(&[""], &["secrets"], &[], &["create"]),
        rule(&[""], &["secrets"], names, &["get", "list", "watch", "update"]),
    ]
}

pub fn lease_rules() -> Vec<Rule> {
    vec![
        rule(&["coordination.k8s.io"], &["leases"], &[], &["create"]),
        rule(
            &["coordination.k8s.io"],
            &["leases"],
            &["stakater-reloader-lock"],
            &["get", "update", "patch"],
        ),
    ]
}

#[test]
fn helm_lint_passes_for_the_defaults_stakaters_values_and_a_customised_file() {
    let chart = chart();
    let stakater = stakater_values().display().to_string();
    let custom = values_file(CUSTOM_GLOBAL).display().to_string();
    let namespaced = values_file(CUSTOM_NAMESPACED).display().to_string();
    for extra in [
        vec![],
        vec!["-f", &stakater],
        vec!["-f", &stakater, "-f", &custom],
        vec!["-f", &namespaced],
    ] {
        let mut args = vec!["lint", "--strict", chart.as_str()];
        args.extend(extra.iter().copied());
        let out = helm_ok(&args);
        assert!(out.contains("0 chart(s) failed"), "{out}");
    }
}

#[test]
fn stakaters_default_values_render_the_reloader_with_stakaters_flags_and_least_rbac() {
    let r = template("rel", "tools", &[&stakater_values()], &[]);
    // The names and selector of Stakater's chart, so an in-place helm upgrade works.
    let deployment = r.get("Deployment", "rel-reloader");
    assert_eq!(
        deployment["spec"]["selector"]["matchLabels"],
        json!({"app": "rel-reloader", "release": "rel"})
    );
    assert_eq!(deployment["spec"]["replicas"], 1);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "rel-reloader");
    // Stakater's values file sets 65534; the reloader runs as any non-root user.
    assert_eq!(pod["securityContext"]["runAsUser"], 65534);
    let c = r.container();
    // Stakater's image in its values file means "the default image": ours.
    assert_eq!(c["image"], "ghcr.io/example/reloader:0.1.0");
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/live");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/ready");
    assert_eq!(r.args(), strings(&["--log-level=info"]));
    let env = r.env();
    assert_eq!(env["RELOADER_NAMESPACE"], field_ref("metadata.namespace"));
    assert_eq!(env["RELOADER_DEPLOYMENT_NAME"], "rel-reloader");
    assert_eq!(env["POD_NAME"], field_ref("metadata.name"));
    assert!(!env.contains_key("KUBERNETES_NAMESPACE"), "watches globally");
    assert!(!env.keys().any(|k| k.starts_with("GO")), "no Go runtime knobs: {env:?}");
    // Our defaults: webhook on (global), fail-open, self-managed certificates; pacing.
    assert_eq!(env["RELOADER_ADMISSION_ADDR"], "0.0.0.0:9443");
    assert_eq!(env["RELOADER_ADMISSION_SERVICE"], "rel-reloader-webhook");
    assert_eq!(env["RELOADER_ADMISSION_CONFIGURATION"], "rel-reloader");
    assert_eq!(env["RELOADER_ADMISSION_SECRET"], "rel-reloader-webhook-tls");
    assert_eq!(env["RELOADER_ADMISSION_FAILURE_POLICY"], "Ignore");
    assert!(
        !env.contains_key("RELOADER_ADMISSION_OWNER_CLUSTER_ROLE"),
        "the chart's configurations are deleted by helm uninstall, not collected"
    );
    assert_eq!(env["RELOADER_COALESCE_WINDOW"], "2s");
    assert!(
        !env.contains_key("RELOADER_RELOAD_WINDOW"),
        "no reload window by default"
    );
    assert!(
        !env.contains_key("RELOADER_PER_KEY_RELOADS"),
        "whole-content hashes by default"
    );
    assert_eq!(env["RELOADER_MAX_RELOADS_PER_SECOND"], "10");
    r.get("Service", "rel-reloader-webhook");

    let mut cluster = default_workload_rules();
    cluster.extend(webhook_rules("rel-reloader"));
    assert_eq!(r.rules("ClusterRole", "rel-reloader-role", None), cluster);
    let binding = r.get("ClusterRoleBinding", "rel-reloader-role-binding");
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "rel-reloader", "namespace": "tools"}])
    );
    let mut own = meta_info_rules();
    own.extend(own_secret_rules(&[
        "reloader-stamp-key",
        "rel-reloader-webhook-tls",
        "rel-reloader-webhook-tls-ca",
    ]));
    assert_eq!(r.rules("Role", "rel-reloader-metadata-role", Some("tools")), own);

    // Everything optional is off, as in Stakater's chart.
    for kind in [
        "ServiceMonitor",
        "PodMonitor",
        "PrometheusRule",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "VerticalPodAutoscaler",
        "ConfigMap",
        "Secret",
    ] {
        assert!(r.all(kind).is_empty(), "{kind} rendered: {:?}", r.names());
    }
    assert!(
        r.try_get("Service", "rel-reloader").is_none(),
        "reloader.service is {{}}"
    );
    // The webhook's configurations are the install's: created by the chart, without caBundle.
    for kind in ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"] {
        let configuration = r.get(kind, "rel-reloader");
        assert!(configuration["webhooks"][0]["clientConfig"].get("caBundle").is_none());
    }
    assert_no_create_on_admission_configurations(&r);

    // The chart's own defaults are Stakater's: the same container without the values file.
    let ours = template("rel", "tools", &[], &[]);
    assert_eq!(ours.args(), r.args());
    assert_eq!(ours.env(), r.env());
    assert_eq!(
        ours.rules("ClusterRole", "rel-reloader-role", None),
        r.rules("ClusterRole", "rel-reloader-role", None)
    );
}

/// A realistic customised values file for a global install (on top of Stakater's file).
const CUSTOM_GLOBAL: &str = r#"
global:
  imagePullSecrets: [regcred]
image:
  repository: registry.example.com/platform/reloader
  tag: "0.1.0"
reloader:
  isArgoRollouts: true
  enableCSIIntegration: true
  ignoreJobs: true
  ignoreNamespaces: kube-system,monitoring
  namespaceSelector: "team in (a,b),env=prod"
  resourceLabelSelector: reloader=enabled
  logFormat: json
  logLevel: debug
  reloadOnCreate: true
  reloadOnDelete: true
  reloadStrategy: env-vars
  enableHA: true
  enableMetricsByNamespace: true
  custom_annotations:
    auto: example.com/auto
    configmap: example.com/configmap
  deployment:
    replicas: 3
    nodeSelector: {kubernetes.io/os: linux}
    tolerations: [{key: infra, operator: Exists, effect: NoSchedule}]
    resources:
      limits: {cpu: 200m, memory: 128Mi}
    env:
      open: {ALERT_ON_RELOAD: "true", ALERT_SINK: slack}
      secret: {ALERT_WEBHOOK_URL: "https://hooks.example.com/T0/B0"}
      existing:
        alert-extra: {ALERT_ADDITIONAL_INFO: cluster}
      field: {NODE_NAME: spec.nodeName}
  service: {port: 9090}
  serviceMonitor: {enabled: true, interval: 30s}
  podMonitor: {enabled: true}
  podDisruptionBudget: {enabled: true, maxUnavailable: 1}
  netpol:
    enabled: true
    from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}}]
  webhook:
    failurePolicy: Fail
  coalesceWindow: 5s
  reloadWindow: "Mon-Fri 02:00-04:00 Europe/Berlin"
  rolloutWaves: "1,50%"
  perKeyReloads: true
  podRestarts: false
  rateLimits: {maxReloadsPerSecond: 20, maxReloadsPerSecondPerNamespace: 2, burst: 10}
  workers: 8
  prometheusRule: {enabled: true, labels: {release: kube-prometheus-stack}}
  grafanaDashboard: {enabled: true}
"#;

#[test]
fn a_customised_global_values_file_renders_each_value() {
    let custom = values_file(CUSTOM_GLOBAL);
    let r = template(
        "rel",
        "tools",
        &[&stakater_values(), &custom],
        &["--api-versions", "monitoring.coreos.com/v1"],
    );
    let c = r.container();
    assert_eq!(c["image"], "registry.example.com/platform/reloader:0.1.0");
    assert_eq!(
        r.args(),
        strings(&[
            "--log-format=json",
            "--log-level=debug",
            "--ignored-workload-types=jobs",
            "--namespaces-to-ignore=kube-system,monitoring",
            // One CSV item in quotes, as Stakater's chart writes it: the terms are ANDed.
            "--namespace-selector=\"team in (a,b),env=prod\"",
            "--resource-label-selector=reloader=enabled",
            "--enable-csi-integration=true",
            "--auto-annotation=example.com/auto",
            "--configmap-annotation=example.com/configmap",
            "--is-Argo-Rollouts=true",
            "--reload-on-create=true",
            "--reload-on-delete=true",
            "--reload-strategy=env-vars",
            "--enable-ha=true",
        ])
    );
    // The binary accepts exactly these flags (same parser as in production).
    let mut argv = vec!["reloader".to_string()];
    argv.extend(r.args());
    let cli = <reloader::config::Cli as clap::Parser>::try_parse_from(&argv).unwrap();
    let env = |key: &str| match key {
        "POD_NAME" => Some("rel-reloader-0".to_string()),
        "POD_NAMESPACE" => Some("tools".to_string()),
        _ => None,
    };
    reloader::config::Settings::from_cli(cli, env).expect("the rendered flags are valid");
    let d = r.get("Deployment", "rel-reloader");
    assert_eq!(d["spec"]["replicas"], 3);
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["imagePullSecrets"], json!([{"name": "regcred"}]));
    assert_eq!(pod["nodeSelector"], json!({"kubernetes.io/os": "linux"}));
    assert_eq!(
        pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]["topologyKey"],
        "kubernetes.io/hostname"
    );
    assert_eq!(c["resources"]["limits"], json!({"cpu": "200m", "memory": "128Mi"}));
    let env = r.env();
    assert_eq!(env["METRICS_COUNT_BY_NAMESPACE"], "enabled");
    assert_eq!(env["ALERT_ON_RELOAD"], "true");
    assert_eq!(
        env["ALERT_WEBHOOK_URL"],
        json!({"valueFrom": {"secretKeyRef": {"name": "rel-reloader", "key": "ALERT_WEBHOOK_URL"}}})
    );
    assert_eq!(
        env["ALERT_ADDITIONAL_INFO"],
        json!({"valueFrom": {"secretKeyRef": {"name": "alert-extra", "key": "cluster"}}})
    );
    assert_eq!(env["NODE_NAME"], field_ref("spec.nodeName"));
    assert_eq!(env["RELOADER_ADMISSION_FAILURE_POLICY"], "Fail");
    assert_eq!(env["RELOADER_COALESCE_WINDOW"], "5s");
    assert_eq!(env["RELOADER_RELOAD_WINDOW"], "Mon-Fri 02:00-04:00 Europe/Berlin");
    assert_eq!(env["RELOADER_ROLLOUT_WAVES"], "1,50%");
    assert_eq!(env["RELOADER_PER_KEY_RELOADS"], "true");
    // Pod restarts off: told to the reloader, and no pods rules below.
    assert_eq!(env["RELOADER_POD_RESTARTS"], "false");
    assert_eq!(env["RELOADER_MAX_RELOADS_PER_SECOND"], "20");
    assert_eq!(env["RELOADER_MAX_RELOADS_PER_SECOND_PER_NAMESPACE"], "2");
    assert_eq!(env["RELOADER_BURST"], "10");
    assert_eq!(env["RELOADER_WORKERS"], "8");
    let secret = r.get("Secret", "rel-reloader");
    assert_eq!(
        secret["data"]["ALERT_WEBHOOK_URL"],
        "aHR0cHM6Ly9ob29rcy5leGFtcGxlLmNvbS9UMC9CMA=="
    );

    // RBAC: Jobs only created (a CronJob's run), Rollouts, CSI, namespaces for the selector;
    // env-vars with the webhook: the webhook's records are keyed, so the stamp key Secret; HA
    // gets its Lease.
    let mut cluster = vec![
        rule(&[""], &["configmaps", "secrets"], &[], &["get", "list", "watch"]),
        rule(
            &["apps"],
            &["deployments", "daemonsets", "statefulsets"],
            &[],
            &["get", "list", "watch", "patch"],
        ),
        rule(&["batch"], &["cronjobs"], &[], &["get", "list", "watch", "patch"]),
        rule(&["batch"], &["jobs"], &[], &["create"]),
        rule(&["argoproj.io"], &["rollouts"], &[], &["get", "list", "watch", "patch"]),
        rule(
            &["secrets-store.csi.x-k8s.io"],
            &["secretproviderclasspodstatuses", "secretproviderclasses"],
            &[],
            &["get", "list", "watch"],
        ),
        rule(&["", "events.k8s.io"], &["events"], &[], &["create", "patch"]),
        rule(&[""], &["namespaces"], &[], &["get", "list", "watch"]),
    ];
    cluster.extend(webhook_rules("rel-reloader"));
    assert_eq!(r.rules("ClusterRole", "rel-reloader-role", None), cluster);
    let mut own = meta_info_rules();
    own.extend(own_secret_rules(&[
        "reloader-stamp-key",
        "rel-reloader-webhook-tls",
        "rel-reloader-webhook-tls-ca",
    ]));
    own.extend(lease_rules());
    assert_eq!(r.rules("Role", "rel-reloader-metadata-role", Some("tools")), own);

    // The optional objects.
    assert_eq!(
        r.get("PodDisruptionBudget", "rel-reloader")["spec"]["maxUnavailable"],
        1
    );
    assert_eq!(r.get("Service", "rel-reloader")["spec"]["ports"][0]["port"], 9090);
    assert_eq!(
        r.get("ServiceMonitor", "rel-reloader")["spec"]["endpoints"][0]["interval"],
        "30s"
    );
    r.get("PodMonitor", "rel-reloader");
    let netpol = r.get("NetworkPolicy", "rel-reloader");
    let ingress_ports: Vec<&Value> = netpol["spec"]["ingress"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["ports"][0]["port"])
        .collect();
    assert_eq!(ingress_ports, [&json!("http"), &json!("webhook")]);
    let rule = r.get("PrometheusRule", "rel-reloader");
    assert_eq!(rule["metadata"]["labels"]["release"], "kube-prometheus-stack");
    let dashboard = r.get("ConfigMap", "rel-reloader-dashboard");
    assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");
    let json: Value = serde_json::from_str(dashboard["data"]["reloader.json"].as_str().unwrap()).unwrap();
    assert!(json["panels"].as_array().is_some_and(|p| !p.is_empty()));
}

/// A namespaced install (on top of Stakater's file): three namespaces, no cluster-scoped object.
const CUSTOM_NAMESPACED: &str = r#"
reloader:
  watchGlobally: false
  namespaces: "team-b, team-a,team-b"
  ignoreNamespaces: ignored-when-namespaced
  namespaceSelector: ignored=too
  ignoreConfigMaps: true
  ignoreJobs: true
  ignoreCronJobs: true
"#;

#[test]
fn a_namespaced_values_file_renders_roles_and_nothing_cluster_scoped() {
    let custom = values_file(CUSTOM_NAMESPACED);
    let r = template("rel", "tools", &[&stakater_values(), &custom], &[]);
    assert_eq!(
        r.args(),
        strings(&[
            "--log-level=info",
            "--resources-to-ignore=configmaps",
            "--ignored-workload-types=jobs,cronjobs",
            "--namespaces=team-a,team-b,tools",
        ])
    );
    assert!(!r.env().contains_key("KUBERNETES_NAMESPACE"));
    assert!(
        !r.env().contains_key("RELOADER_ADMISSION_ADDR"),
        "webhook off when namespaced"
    );
    for kind in [
        "ClusterRole",
        "ClusterRoleBinding",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        assert!(r.all(kind).is_empty(), "{kind}: {:?}", r.names());
    }
    assert!(r.try_get("Service", "rel-reloader-webhook").is_none());
    let watching = vec![
        rule(&[""], &["secrets"], &[], &["get", "list", "watch"]),
        rule(
            &["apps"],
            &["deployments", "daemonsets", "statefulsets"],
            &[],
            &["get", "list", "watch", "patch"],
        ),
        rule(&[""], &["pods"], &[], &["list"]),
        rule(&[""], &["pods/eviction"], &[], &["create"]),
        rule(&["", "events.k8s.io"], &["events"], &[], &["create", "patch"]),
    ];
    for ns in ["team-a", "team-b", "tools"] {
        assert_eq!(r.rules("Role", "rel-reloader-role", Some(ns)), watching, "{ns}");
        let binding = r
            .all("RoleBinding")
            .into_iter()
            .find(|b| b["metadata"]["namespace"] == ns && b["metadata"]["name"] == "rel-reloader-role-binding")
            .unwrap_or_else(|| panic!("no RoleBinding in {ns}"));
        assert_eq!(binding["subjects"][0]["namespace"], "tools");
    }
    // Only the release namespace: the single-namespace form sets KUBERNETES_NAMESPACE.
    let single = values_file("reloader: {watchGlobally: false}\n");
    let r = template("rel", "tools", &[&stakater_values(), &single], &[]);
    assert_eq!(r.env()["KUBERNETES_NAMESPACE"], field_ref("metadata.namespace"));
    assert_eq!(r.args(), strings(&["--log-level=info"]));
    assert_eq!(r.all("Role").len(), 2, "{:?}", r.names());
    assert!(r.all("ClusterRole").is_empty());
}

#[test]
fn the_schema_rejects_misspelled_keys_and_the_chart_rejects_contradictions() {
    for (set, path, key) in [
        ("reloader.atuoReloadAll=true", "/reloader", "atuoReloadAll"),
        ("reloader.deployment.replica=2", "/reloader/deployment", "replica"),
        (
            "reloader.webhook.failurepolicy=Fail",
            "/reloader/webhook",
            "failurepolicy",
        ),
        (
            "reloader.serviceMonitor.enable=true",
            "/reloader/serviceMonitor",
            "enable",
        ),
        ("imag.tag=x", "", "imag"),
    ] {
        let error = template_error(&[&stakater_values()], &["--set", set]);
        assert!(
            error.contains(&format!("at '{path}'")) && error.contains(&format!("'{key}' not allowed")),
            "{set}: {error}"
        );
    }
    let error = template_error(&[], &["--set", "reloader.reloadStrategy=env-var"]);
    assert!(error.contains("/reloader/reloadStrategy"), "{error}");
    let error = template_error(&[], &["--set", "reloader.webhook.failurePolicy=Open"]);
    assert!(error.contains("/reloader/webhook/failurePolicy"), "{error}");
    let error = template_error(
        &[],
        &[
            "--set",
            "reloader.ignoreSecrets=true",
            "--set",
            "reloader.ignoreConfigMaps=true",
        ],
    );
    assert!(error.contains("would watch nothing"), "{error}");
    let error = template_error(&[], &["--set", "reloader.namespaces={a}"]);
    assert!(error.contains("set reloader.watchGlobally=false"), "{error}");
    // The coalescing window's old value name, still holding a duration: refused, not misread.
    let error = template_error(&[], &["--set", "reloader.reloadWindow=2s"]);
    assert!(error.contains("reloader.coalesceWindow"), "{error}");
    // Parent charts put their own keys under global: accepted.
    template("rel", "ns", &[], &["--set", "global.someParentValue=x"]);
}

// ---- helm install / upgrade, then the reloader under the chart's identity --------------------

/// A Helm release installed for one test, uninstalled (its webhook configurations with it, and
/// removed by name in case the test left them behind) when dropped.
pub struct Release {
    pub name: String,
    pub namespace: String,
}

impl Release {
    pub fn install(name: &str, namespace: &str, files: &[&Path]) -> Self {
        let release = Self {
            name: name.into(),
            namespace: namespace.into(),
        };
        release.helm_with_values("install", files, &[]);
        release
    }

    pub fn upgrade(&self, files: &[&Path], extra: &[&str]) {
        self.helm_with_values("upgrade", files, extra);
    }

    fn helm_with_values(&self, verb: &str, files: &[&Path], extra: &[&str]) {
        let args = self.chart_args(verb, files, extra);
        helm_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }

    /// `helm <verb> <release> <chart>` in the release's namespace with `files` and `extra`.
    fn chart_args(&self, verb: &str, files: &[&Path], extra: &[&str]) -> Vec<String> {
        let mut args = vec![
            verb.to_string(),
            self.name.clone(),
            chart(),
            "--namespace".into(),
            self.namespace.clone(),
            "--kubeconfig".into(),
            kubeconfig().display().to_string(),
        ];
        for f in files {
            args.extend(["-f".to_string(), f.display().to_string()]);
        }
        args.extend(extra.iter().map(|e| e.to_string()));
        args
    }

    pub fn fullname(&self) -> String {
        format!("{}-reloader", self.name)
    }

    /// What the release installed, as the API server has it.
    pub fn manifest(&self) -> Rendered {
        let config = kubeconfig().display().to_string();
        Rendered::parse(&helm_ok(&[
            "get",
            "manifest",
            &self.name,
            "--namespace",
            &self.namespace,
            "--kubeconfig",
            &config,
        ]))
    }

    pub fn revision(&self) -> u64 {
        let config = kubeconfig().display().to_string();
        let status: Value = serde_json::from_str(&helm_ok(&[
            "status",
            &self.name,
            "--namespace",
            &self.namespace,
            "--kubeconfig",
            &config,
            "-o",
            "json",
        ]))
        .unwrap();
        status["version"].as_u64().unwrap()
    }

    /// Runs the reloader binary as the release's container would run: the rendered args and
    /// env (field references resolved as the kubelet would), under the release's
    /// ServiceAccount, serving on loopback. `extra` args come last. The chart's webhook
    /// configurations are pointed at that loopback address first (and, with a `--namespaces`
    /// in `extra`, scoped to those namespaces), as the Service would route to a pod.
    pub fn run(&self, extra: &[String]) -> Local {
        self.run_routed(extra, true)
    }

    /// As [`Release::run`], leaving the chart's configurations exactly as installed (pointing
    /// at the Service, which has no pods here).
    pub fn run_unrouted(&self, extra: &[String]) -> Local {
        self.run_routed(extra, false)
    }

    fn run_routed(&self, extra: &[String], route: bool) -> Local {
        let r = self.manifest();
        let pod_name = format!("{}-0", self.fullname());
        let mut env: Vec<(String, String)> = Vec::new();
        for (name, value) in r.env() {
            let resolved = match &value {
                Value::String(s) => Some(s.clone()),
                v => match v["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                    Some("metadata.namespace") => Some(self.namespace.clone()),
                    Some("metadata.name") => Some(pod_name.clone()),
                    _ => None, // Secrets and other fields: not needed by these tests
                },
            };
            if let Some(resolved) = resolved {
                env.push((name, resolved));
            }
        }
        let mut args = r.args();
        // Faster coalescing for the test; the chart's own value is in RELOADER_COALESCE_WINDOW.
        args.push("--coalesce-window=300ms".into());
        let webhook = env.iter().any(|(k, _)| k == "RELOADER_ADMISSION_ADDR");
        if webhook {
            // The API server reaches the webhook on loopback, by URL, instead of the Service.
            let p = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            args.push(format!("--admission-addr=127.0.0.1:{p}"));
            args.push(format!("--admission-url=https://127.0.0.1:{p}"));
            if route {
                let scope = extra.iter().find_map(|a| a.strip_prefix("--namespaces="));
                for (kind, path) in [
                    ("mutatingwebhookconfiguration", "/mutate"),
                    ("validatingwebhookconfiguration", "/validate"),
                ] {
                    let mut patch = vec![json!({"op": "replace", "path": "/webhooks/0/clientConfig",
                                                "value": {"url": format!("https://127.0.0.1:{p}{path}")}})];
                    if let Some(scope) = scope {
                        patch.push(json!({"op": "replace", "path": "/webhooks/0/namespaceSelector",
                                          "value": {"matchExpressions": [{"key": "kubernetes.io/metadata.name",
                                                    "operator": "In", "values": scope.split(',').collect::<Vec<_>>()}]}}));
                    }
                    kubectl_patch(kind, &self.fullname(), &Value::Array(patch));
                }
            }
        }
        args.extend(extra.iter().cloned());
        let sa = r.all("Deployment")[0]["spec"]["template"]["spec"]["serviceAccountName"]
            .as_str()
            .unwrap()
            .to_string();
        let path = impersonating(&format!("system:serviceaccount:{}:{sa}", self.namespace));
        Local {
            reloader: Reloader::start_exact(&path, &args, &env),
        }
    }
}

pub struct Local {
    pub reloader: Reloader,
}

impl Local {
    /// No RBAC denial in the log, no failed reload, no failed reconcile.
    pub fn assert_no_denials(&self) {
        let r = &self.reloader;
        assert_eq!(r.metric("reloader_reload_executed_total{success=\"false\"}"), 0.0);
        assert_eq!(r.metric("reloader_reconciles_total{outcome=\"error\"}"), 0.0);
        let log = std::fs::read_to_string(&r.log).unwrap();
        assert!(
            !log.contains("forbidden") && !log.contains("Forbidden"),
            "an RBAC denial in {}",
            r.log.display()
        );
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        let config = kubeconfig().display().to_string();
        let _ = helm(&[
            "uninstall",
            &self.name,
            "--namespace",
            &self.namespace,
            "--kubeconfig",
            &config,
        ]);
        let name = self.fullname();
        crate::support::clean_up(kubeconfig().to_path_buf(), |client| async move {
            use k8s_openapi::api::admissionregistration::v1::{
                MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
            };
            let dp = kube::api::DeleteParams::default();
            let _ = Api::<MutatingWebhookConfiguration>::all(client.clone())
                .delete(&name, &dp)
                .await;
            let _ = Api::<ValidatingWebhookConfiguration>::all(client)
                .delete(&name, &dp)
                .await;
        });
    }
}

/// `kubectl patch <resource> <name> --type=json -p <patch>` with the admin kubeconfig: a
/// person's edit, under kubectl's own field manager.
pub fn kubectl_patch(resource: &str, name: &str, patch: &Value) {
    let out = std::process::Command::new("kubectl")
        .arg(format!("--kubeconfig={}", kubeconfig().display()))
        .args(["patch", resource, name, "--type=json", "-p", &patch.to_string()])
        .output()
        .expect("kubectl");
    assert!(
        out.status.success(),
        "kubectl patch {resource} {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A kubeconfig for the test control plane that acts as `user` (impersonation).
pub fn impersonating(user: &str) -> PathBuf {
    let original = std::fs::read_to_string(kubeconfig()).unwrap();
    let changed = original.replacen(
        "    client-certificate-data:",
        &format!("    as: {user}\n    client-certificate-data:"),
        1,
    );
    assert_ne!(changed, original, "kubeconfig layout changed");
    let path = Path::new(REPO).join(format!("target/{}.kubeconfig", unique_name("as")));
    std::fs::write(&path, changed).unwrap();
    path
}

/// The DeploymentConfig API, which other tests serve (a stand-in CRD): the reloader watches
/// DeploymentConfigs whenever the API is served, so the chart must see it at install time, as on
/// OpenShift. Served before every install here, so no test depends on another's timing.
pub async fn serve_openshift_api(client: &kube::Client) {
    crate::crds::ensure_crd(
        client,
        "apps.openshift.io",
        "DeploymentConfig",
        "deploymentconfigs",
        "v1",
    )
    .await;
}

async fn label_namespace(f: &Fixture, key: &str, value: &str) {
    Api::<Namespace>::all(f.client.clone())
        .patch(
            &f.ns.name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {key: value}}})),
        )
        .await
        .unwrap();
}

/// Creates an auto-reloading Deployment once the API server calls the webhook (its
/// configuration is registered a moment after the reloader is ready): a create that came too
/// early, unstamped, is deleted and made again. Returns it as stored.
async fn create_through_webhook(f: &Fixture, name: &str, stamped: fn(&Deployment) -> bool) -> Deployment {
    eventually("a create stamped by the webhook", || async {
        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": name, "annotations": auto()},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "x", "envFrom": uses("cfg", "db")}]}}}
        }))
        .unwrap();
        let created = f.deployments.create(&PostParams::default(), &d).await.ok()?;
        if stamped(&created) {
            return Some(created);
        }
        let _ = f.deployments.delete(name, &Default::default()).await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        None
    })
    .await
}

fn has_keyed_stamp(d: &Deployment) -> bool {
    template_annotation(d, reloader::core::vocabulary::fixed::TEMPLATE_HASHES).is_some()
}

/// The env-vars strategy's stamp at create: keyed values of both sources in the workload's
/// metadata record, and no env var (the webhook answers whoever calls it, so it writes no
/// Stakater SHA-1; the engine does when it rolls).
fn has_keyed_record(d: &Deployment) -> bool {
    let record = d
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("reloader.stakater.com/acknowledged-hashes"));
    let no_env = d.spec.as_ref().and_then(|s| s.template.spec.as_ref()).is_some_and(|p| {
        p.containers[0]
            .env
            .iter()
            .flatten()
            .all(|e| !e.name.starts_with("STAKATER_"))
    });
    no_env
        && record.is_some_and(|r| {
            r.split(',').count() == 2
                && r.split(',')
                    .all(|entry| entry.split_once('=').is_some_and(|(_, v)| v.starts_with("k1.")))
        })
}

/// Global (ClusterRole) with HA, installed from Stakater's values, then upgraded to HA with two
/// replicas; no webhook here (its scope is cluster-wide and would reach other tests' objects);
/// a namespace selector confines the engine to this test's namespace while it lists and watches
/// cluster-wide.
#[tokio::test]
async fn global_install_then_upgrade_to_ha_the_rbac_suffices() {
    let f = Fixture::new("hglobal").await;
    serve_openshift_api(&f.client).await;
    let home = TestNamespace::new(&f.client, "rlhome").await;
    let selector = unique_name("sel");
    label_namespace(&f, "reloader-helm", &selector).await;
    let values = values_file(&format!(
        "reloader:\n  namespaceSelector: reloader-helm={selector}\n  webhook: {{enabled: false}}\n"
    ));
    let release = Release::install(&unique_name("g"), &home.name, &[&stakater_values(), &values]);
    assert_eq!(release.revision(), 1);
    assert!(
        release
            .manifest()
            .rules("Role", &format!("{}-metadata-role", release.fullname()), None)
            .iter()
            .all(|r| r.resources != ["leases"]),
        "no Lease rights without HA"
    );
    let ha = values_file("reloader: {enableHA: true, deployment: {replicas: 2}}\n");
    release.upgrade(&[&stakater_values(), &values, &ha], &[]);
    assert_eq!(release.revision(), 2);
    let deployments: Api<Deployment> = Api::namespaced(f.client.clone(), &home.name);
    let installed = deployments.get(&release.fullname()).await.unwrap();
    assert_eq!(installed.spec.unwrap().replicas, Some(2));

    f.config_map("cfg", json!({"k": "v1"})).await;
    f.secret("db", json!({"p": "1"})).await;
    f.deployment("adopted", auto(), uses("cfg", "db")).await;
    let local = release.run(&[]);
    assert!(release.manifest().args().contains(&"--enable-ha=true".to_string()));
    local.reloader.wait_ready().await;
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
    // The stamp key Secret, created under the chart's Role.
    let secrets: Api<Secret> = Api::namespaced(f.client.clone(), &home.name);
    eventually("the stamp key", || async {
        secrets.get_opt("reloader-stamp-key").await.ok()?
    })
    .await;
    f.wait_acknowledged("adopted").await;
    f.set_secret("db", json!({"p": "2"})).await;
    f.wait_revisions("adopted", 2).await;
    local.assert_no_denials();
}

/// Global with the self-managed webhook and ignoreSecrets: the ClusterRole has no Secrets, so
/// the stamp key and the webhook's certificate Secrets are reached through the Role's names.
#[tokio::test]
async fn global_install_with_webhook_and_no_secrets_the_rbac_suffices() {
    let f = Fixture::new("hwebhook").await;
    serve_openshift_api(&f.client).await;
    let home = TestNamespace::new(&f.client, "rlhome").await;
    let values = values_file("reloader:\n  ignoreSecrets: true\n");
    let release = Release::install(&unique_name("w"), &home.name, &[&stakater_values(), &values]);
    f.config_map("cfg", json!({"k": "v1"})).await;
    f.secret("db", json!({"p": "1"})).await;
    f.deployment("adopted", auto(), uses("cfg", "db")).await;
    // The webhook's configurations cover only these namespaces, so no other test is touched.
    let local = release.run(&[format!("--namespaces={},{}", f.ns.name, home.name)]);
    local.reloader.wait_ready().await;
    let secrets: Api<Secret> = Api::namespaced(f.client.clone(), &home.name);
    assert!(
        secrets
            .get_opt(&format!("{}-webhook-tls", release.fullname()))
            .await
            .unwrap()
            .is_some()
    );
    assert!(secrets.get_opt("reloader-stamp-key").await.unwrap().is_some());
    let created = create_through_webhook(&f, "created", has_keyed_stamp).await;
    let stamp = template_annotation(&created, reloader::core::vocabulary::fixed::TEMPLATE_HASHES).unwrap();
    assert!(stamp.starts_with("configmap/cfg=k1."), "keyed stamp at create: {stamp}");
    f.wait_acknowledged("adopted").await;
    f.set_config_map("cfg", json!({"k": "v2"})).await;
    f.wait_revisions("adopted", 2).await;
    f.wait_revisions("created", 2).await;
    local.assert_no_denials();

    // Every reloader metric the PrometheusRule and the dashboard query is one the binary exposes.
    // The binary's series, plus those it shows only once something happened (an alert, a
    // watch error), from the same metrics code in-process.
    let mut exposed = exposed_series(&local.reloader.metrics_text());
    {
        use reloader::core::source::SourceKind;
        use reloader::core::workload::WorkloadKind;
        use reloader::metrics::{AlertResult, Metrics, Outcome, SkipReason, WatchEvent};
        let m = Metrics::new(true);
        m.alert(AlertResult::Sent);
        m.skip(SkipReason::NoDataChange);
        m.watch_error(SourceKind::ConfigMap);
        m.event(SourceKind::ConfigMap, WatchEvent::Update);
        m.reload("ns", WorkloadKind::Deployment, true);
        m.reload_latency(WorkloadKind::Deployment, 1.0);
        m.outcome(Outcome::Error);
        m.workqueue_depth(1);
        exposed.extend(exposed_series(&m.render()));
    }
    let r = template(
        "rel",
        "tools",
        &[],
        &[
            "--set",
            "reloader.prometheusRule.enabled=true",
            "--set",
            "reloader.grafanaDashboard.enabled=true",
        ],
    );
    let queries = format!(
        "{}{}",
        r.get("PrometheusRule", "rel-reloader")["spec"],
        r.get("ConfigMap", "rel-reloader-dashboard")["data"]["reloader.json"]
    );
    let used = metric_names(&queries);
    assert!(used.len() >= 8, "{used:?}");
    for name in used {
        assert!(exposed.contains(&name), "{name} is queried but not exposed");
    }
}

/// Series names a `/metrics` exposition can have, from its `# TYPE` lines.
fn exposed_series(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
            continue;
        };
        let suffixes: &[&str] = match kind {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            _ => &[""],
        };
        for suffix in suffixes {
            let full = if name.ends_with(suffix) {
                name.to_string()
            } else {
                format!("{name}{suffix}")
            };
            names.insert(full);
        }
    }
    names
}

/// Every `reloader_…` metric name in a text of PromQL.
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("reloader_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let preceded = rest[..at]
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !preceded {
            names.insert(tail[..end].to_string());
        }
        rest = &tail[end..];
    }
    names
}

/// watchGlobally false: a Role in the release namespace, nothing cluster-scoped, and the
/// reloader watches that namespace (KUBERNETES_NAMESPACE).
#[tokio::test]
async fn namespaced_install_has_nothing_cluster_scoped_and_the_rbac_suffices() {
    // The release lives in the namespace it watches, with the workloads.
    let f = Fixture::new("rlns").await;
    serve_openshift_api(&f.client).await;
    let values = values_file("reloader: {watchGlobally: false}\n");
    let release = Release::install(&unique_name("n"), &f.ns.name, &[&stakater_values(), &values]);
    let installed = release.manifest();
    assert!(installed.all("ClusterRole").is_empty() && installed.all("ClusterRoleBinding").is_empty());
    f.config_map("cfg", json!({"k": "v1"})).await;
    f.secret("db", json!({"p": "1"})).await;
    f.deployment("adopted", auto(), uses("cfg", "db")).await;
    let local = release.run(&[]);
    local.reloader.wait_ready().await;
    f.wait_acknowledged("adopted").await;
    f.set_config_map("cfg", json!({"k": "v2"})).await;
    f.wait_revisions("adopted", 2).await;
    local.assert_no_denials();
}

/// watchGlobally false with a namespace list, the webhook switched on explicitly and the
/// env-vars strategy: Roles in both namespaces, a ClusterRole holding only the webhook's rules.
#[tokio::test]
async fn namespaced_list_with_webhook_and_env_vars_the_rbac_suffices() {
    let f = Fixture::new("hlist").await;
    serve_openshift_api(&f.client).await;
    let home = TestNamespace::new(&f.client, "rlhome").await;
    let values = values_file(&format!(
        "reloader:\n  watchGlobally: false\n  namespaces: [{}]\n  reloadStrategy: env-vars\n  webhook: {{enabled: true}}\n",
        f.ns.name
    ));
    let release = Release::install(&unique_name("l"), &home.name, &[&stakater_values(), &values]);
    let installed = release.manifest();
    assert_eq!(
        installed.rules("ClusterRole", &format!("{}-role", release.fullname()), None),
        webhook_rules(&release.fullname())
    );
    f.config_map("cfg", json!({"k": "v1"})).await;
    f.secret("db", json!({"p": "1"})).await;
    f.deployment("adopted", auto(), uses("cfg", "db")).await;
    let local = release.run(&[]);
    local.reloader.wait_ready().await;
    // Stamped at create with keyed records (the env-vars strategy), env vars left to the engine.
    create_through_webhook(&f, "created", has_keyed_record).await;
    f.wait_acknowledged("adopted").await;
    f.set_secret("db", json!({"p": "2"})).await;
    f.wait_revisions("adopted", 2).await;
    f.wait_revisions("created", 2).await;
    local.assert_no_denials();
}

/// The chart creates both configurations and the reloader, under the chart's RBAC (no create on
/// them), writes only their caBundle: `helm upgrade` keeps that caBundle, and a value the
/// upgrade changes stays the chart's (the reloader, still running with the old value, does not
/// take it back). Configurations deleted by hand are reported once each, not re-created, while
/// the reloader serves on; the next upgrade brings them back and the reloader fills them again;
/// `helm uninstall` deletes both.
#[tokio::test]
async fn the_chart_owns_the_configurations_and_the_reloader_only_their_ca_bundle() {
    use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
    let f = Fixture::new("hown").await;
    serve_openshift_api(&f.client).await;
    let home = TestNamespace::new(&f.client, "rlhome").await;
    // Namespaced, so the configurations select only this test's namespaces.
    let values = values_file(&format!(
        "reloader:\n  watchGlobally: false\n  namespaces: [{}]\n  webhook: {{enabled: true}}\n",
        f.ns.name
    ));
    let files = [stakater_values(), values];
    let files: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let release = Release::install(&unique_name("o"), &home.name, &files);
    let name = release.fullname();
    let mutating: Api<MutatingWebhookConfiguration> = Api::all(f.client.clone());
    let validating: Api<ValidatingWebhookConfiguration> = Api::all(f.client.clone());
    let bundles = || async {
        let m = mutating.get_opt(&name).await.ok()??;
        let v = validating.get_opt(&name).await.ok()??;
        let m = m.webhooks?.remove(0).client_config.ca_bundle.map(|b| b.0);
        let v = v.webhooks?.remove(0).client_config.ca_bundle.map(|b| b.0);
        Some((m, v))
    };
    assert_eq!(bundles().await, Some((None, None)), "installed without a caBundle");

    let local = release.run_unrouted(&["--admission-cert-check=300ms".to_string()]);
    local.reloader.wait_ready().await;
    let bundle = eventually("both caBundles written by the reloader", || async {
        match bundles().await? {
            (Some(m), Some(v)) if m == v && !m.is_empty() => Some(m),
            _ => None,
        }
    })
    .await;
    assert!(String::from_utf8_lossy(&bundle).contains("BEGIN CERTIFICATE"));
    // Written under the chart's policy, which lets the ServiceAccount change nothing else: a
    // compromised reloader pod cannot widen what the API server sends it.
    let sa = format!("system:serviceaccount:{}:{name}", home.name);
    let as_reloader = crate::support::client_for(&impersonating(&sa)).await;
    let widen = || -> Patch<()> {
        let patch = json!([{"op": "replace", "path": "/webhooks/0/rules/0/resources", "value": ["pods"]}]);
        Patch::Json(serde_json::from_value(patch).unwrap())
    };
    release
        .manifest()
        .get("ValidatingAdmissionPolicy", &format!("{name}-webhook-configurations"));
    let try_widen = |dry_run: bool, mutating_one: bool| {
        let params = PatchParams {
            dry_run,
            ..Default::default()
        };
        let client = as_reloader.clone();
        let name = name.clone();
        async move {
            let result = if mutating_one {
                Api::<MutatingWebhookConfiguration>::all(client)
                    .patch(&name, &params, &widen())
                    .await
                    .map(|_| ())
            } else {
                Api::<ValidatingWebhookConfiguration>::all(client)
                    .patch(&name, &params, &widen())
                    .await
                    .map(|_| ())
            };
            result.err().map(|e| e.to_string())
        }
    };
    // The API server loads a new policy asynchronously: a dry run shows when it is in force.
    eventually("the chart's policy in force", || async {
        try_widen(true, true)
            .await
            .filter(|error| error.contains("only the caBundle"))
    })
    .await;
    for mutating_one in [true, false] {
        let error = try_widen(false, mutating_one).await;
        assert!(
            error.as_deref().is_some_and(|e| e.contains("only the caBundle")),
            "the reloader's identity widened its webhook's rules (mutating: {mutating_one}): {error:?}"
        );
    }
    // Still the install's: helm's labels, no owner; the reloader's field manager holds the
    // caBundle and nothing else.
    let m = mutating.get(&name).await.unwrap();
    assert_eq!(
        m.metadata.labels.as_ref().unwrap()["app.kubernetes.io/managed-by"],
        "Helm"
    );
    assert_eq!(m.metadata.owner_references, None);
    let v = validating.get(&name).await.unwrap();
    for managed in [&m.metadata.managed_fields, &v.metadata.managed_fields] {
        let ours: Vec<String> = managed
            .iter()
            .flatten()
            .filter(|e| e.manager.as_deref() == Some("reloader"))
            .map(|e| serde_json::to_string(&e.fields_v1).unwrap())
            .collect();
        assert_eq!(ours.len(), 1, "{ours:?}");
        assert!(ours[0].contains("f:caBundle"), "{ours:?}");
        for field in [
            "f:failurePolicy",
            "f:rules",
            "f:namespaceSelector",
            "f:matchConditions",
            "f:service",
        ] {
            assert!(!ours[0].contains(field), "the reloader owns {field}: {ours:?}");
        }
    }

    // helm upgrade with a value of the configurations changed: the caBundle stays, the new
    // value is the chart's and stays through the reloader's next checks.
    release.upgrade(&files, &["--set", "reloader.webhook.failurePolicy=Fail"]);
    for _ in 0..4 {
        let v = validating.get(&name).await.unwrap().webhooks.unwrap().remove(0);
        assert_eq!(v.failure_policy.as_deref(), Some("Fail"));
        assert_eq!(
            v.client_config.ca_bundle.map(|b| b.0),
            Some(bundle.clone()),
            "caBundle kept"
        );
        let m = mutating.get(&name).await.unwrap().webhooks.unwrap().remove(0);
        assert_eq!(
            m.client_config.ca_bundle.map(|b| b.0),
            Some(bundle.clone()),
            "caBundle kept"
        );
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    }

    // Deleted by hand: the reloader may not create them, says so once for each, and serves on.
    let dp = kube::api::DeleteParams::default();
    mutating.delete(&name, &dp).await.unwrap();
    validating.delete(&name, &dp).await.unwrap();
    let reported = || {
        std::fs::read_to_string(&local.reloader.log)
            .unwrap()
            .matches("does not exist and the reloader may not create it")
            .count()
    };
    eventually("both missing configurations reported", || async {
        (reported() == 2).then_some(())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(reported(), 2, "reported once each, not at every check");
    assert!(mutating.get_opt(&name).await.unwrap().is_none(), "not re-created");
    assert!(validating.get_opt(&name).await.unwrap().is_none(), "not re-created");
    assert!(local.reloader.is_ready(), "serving on");
    release.upgrade(&files, &["--set", "reloader.webhook.failurePolicy=Fail"]);
    eventually("the caBundle written into the re-created configurations", || async {
        match bundles().await? {
            (Some(m), Some(v)) if m == bundle && v == bundle => Some(()),
            _ => None,
        }
    })
    .await;

    // helm uninstall deletes both.
    let config = kubeconfig().display().to_string();
    helm_ok(&[
        "uninstall",
        &release.name,
        "--namespace",
        &release.namespace,
        "--kubeconfig",
        &config,
    ]);
    eventually("both configurations deleted with the release", || async {
        let m = mutating.get_opt(&name).await.ok()?;
        let v = validating.get_opt(&name).await.ok()?;
        (m.is_none() && v.is_none()).then_some(())
    })
    .await;
}

/// The reloader's admission settings from a rendered container, as the binary reads them: its
/// args, our RELOADER_* variables as their flags (same names), the pod's namespace and name;
/// and who the API server says it is (the pod's service account in `namespace`).
pub fn binary_settings(r: &Rendered, namespace: &str) -> reloader::config::AdmissionSettings {
    let mut argv = vec!["reloader".to_string()];
    argv.extend(r.args());
    let mut plain: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in &r.env() {
        let value = match value {
            Value::String(s) => s.clone(),
            v if v["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace" => namespace.into(),
            v if v["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name" => "reloader-0".into(),
            _ => continue,
        };
        match name.strip_prefix("RELOADER_") {
            Some(flag) if !["NAMESPACE", "DEPLOYMENT_NAME"].contains(&flag) => {
                argv.push(format!("--{}={value}", flag.to_lowercase().replace('_', "-")));
            }
            _ => {
                plain.insert(name.clone(), value);
            }
        }
    }
    let cli = <reloader::config::Cli as clap::Parser>::try_parse_from(&argv).unwrap();
    let settings = reloader::config::Settings::from_cli(cli, |k: &str| plain.get(k).cloned()).unwrap();
    let mut admission = settings.admission.expect("the webhook is on");
    let deployment = r.all("Deployment")[0];
    let account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
        .as_str()
        .unwrap();
    admission.self_user = Some(format!("system:serviceaccount:{namespace}:{account}"));
    admission
}

/// The install's two configurations (`r`, named `name`) are what `src/admission/register.rs`
/// computes for the settings the install gives the binary, webhook for webhook, except the
/// caBundle, which the install leaves out (the reloader or cert-manager writes it).
pub fn assert_configurations_are_the_reloaders(r: &Rendered, name: &str, namespace: &str, context: &str) {
    use reloader::admission::register::{Target, mutating, validating};
    let admission = binary_settings(r, namespace);
    let target = Target {
        settings: &admission,
        bundle: "",
        owner: None,
    };
    for (kind, expected) in [
        ("MutatingWebhookConfiguration", mutating(name, &target)),
        ("ValidatingWebhookConfiguration", validating(name, &target)),
    ] {
        let shipped = r.get(kind, name);
        let webhooks = shipped["webhooks"].as_array().unwrap();
        assert_eq!(webhooks.len(), 1, "{kind} ({context})");
        assert!(
            webhooks[0]["clientConfig"].get("caBundle").is_none(),
            "no caBundle in the install's {kind} ({context})"
        );
        let mut expected = expected["webhooks"][0].clone();
        expected["clientConfig"].as_object_mut().unwrap().remove("caBundle");
        assert_eq!(webhooks[0], expected, "{kind} ({context})");
    }
}

/// The chart ships the two webhook configurations in both certificate modes, and they are
/// what `src/admission/register.rs` computes from the settings the chart's own args and env
/// give the binary (scopes, selectors, failure policy, its identity), so the two cannot drift;
/// the reloader has no right to create admission configurations in any of them.
#[test]
fn the_chart_ships_the_configurations_the_reloader_computes() {
    for mode in ["self-managed", "cert-manager"] {
        for scope in [
            "{}",
            "{ignoreNamespaces: 'zeta, alpha'}",
            "{namespaceSelector: 'team,env!=dev,gen>3,tier in (a, b),!legacy,x:*,y:z,w==q,v=*'}",
            "{watchGlobally: false, namespaces: [team-a], webhook: {enabled: true}}",
            "{watchGlobally: false, webhook: {enabled: true}, serviceAccount: {name: custom}}",
        ] {
            let scoped = values_file(&format!("reloader: {scope}\n"));
            let values = values_file(&format!(
                "reloader:\n  webhook:\n    failurePolicy: Fail\n    certificates: {{mode: {mode}}}\n"
            ));
            let r = template("rel", "tools", &[&scoped, &values], &[]);
            assert_configurations_are_the_reloaders(&r, "rel-reloader", "tools", &format!("{mode} {scope}"));
            assert_no_create_on_admission_configurations(&r);
            let injected = r.get("MutatingWebhookConfiguration", "rel-reloader")["metadata"]["annotations"]
                ["cert-manager.io/inject-ca-from"]
                .clone();
            if mode == "cert-manager" {
                assert_eq!(injected, "tools/rel-reloader-webhook");
                assert_eq!(r.env()["RELOADER_TLS_CERT_FILE"], "/etc/reloader/webhook-tls/tls.crt");
                assert!(!r.env().contains_key("RELOADER_ADMISSION_SECRET"));
                assert_eq!(
                    r.get("Certificate", "rel-reloader-webhook")["spec"]["secretName"],
                    "rel-reloader-webhook-tls"
                );
                // Nothing to patch: no rule on configurations at all.
                assert!(
                    r.all("ClusterRole")
                        .iter()
                        .all(|c| !c["rules"].to_string().contains("admissionregistration"))
                );
            } else {
                assert!(injected.is_null());
                assert_eq!(r.env()["RELOADER_ADMISSION_SECRET"], "rel-reloader-webhook-tls");
            }
        }
    }
}

/// The policy pinning what the reloader's ServiceAccount may change of its two configurations
/// to their caBundle, as rendered for `configurations` and `user`; its CEL expression.
pub fn assert_configuration_policy(r: &Rendered, configurations: &str, user: &str) -> String {
    let name = format!("{configurations}-webhook-configurations");
    let spec = &r.get("ValidatingAdmissionPolicy", &name)["spec"];
    assert_eq!(spec["failurePolicy"], "Fail");
    let rule = &spec["matchConstraints"]["resourceRules"][0];
    assert_eq!(rule["resourceNames"], json!([configurations]));
    assert_eq!(rule["operations"], json!(["UPDATE"]));
    assert_eq!(
        spec["matchConditions"][0]["expression"],
        format!("request.userInfo.username == '{user}'")
    );
    let binding = &r.get("ValidatingAdmissionPolicyBinding", &name)["spec"];
    assert_eq!(binding["policyName"], name.as_str());
    assert_eq!(binding["validationActions"], json!(["Deny"]));
    spec["validations"][0]["expression"].as_str().unwrap().to_string()
}

/// The API group and kind that make the chart render its configuration policy.
const POLICY_API: [&str; 2] = [
    "--api-versions",
    "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy",
];

/// Where the API server serves ValidatingAdmissionPolicy, the chart pins the reloader's patches
/// of its configurations to their caBundle, for its own ServiceAccount; not without the webhook,
/// nor with `configurationPolicy: false`, nor on an older API server.
#[test]
fn the_chart_lets_the_reloader_change_only_the_ca_bundle() {
    let r = template("rel", "tools", &[], &POLICY_API);
    let expression = assert_configuration_policy(&r, "rel-reloader", "system:serviceaccount:tools:rel-reloader");
    for field in [
        "rules",
        "namespaceSelector",
        "matchConditions",
        "service",
        "url",
        "failurePolicy",
    ] {
        assert!(expression.contains(&format!(".?{field} == ")), "{field}: {expression}");
    }
    assert!(!expression.contains("caBundle"), "{expression}");
    let custom = values_file(
        "reloader:
  serviceAccount: {name: custom}
",
    );
    let r = template("rel", "tools", &[&custom], &POLICY_API);
    assert_eq!(
        assert_configuration_policy(&r, "rel-reloader", "system:serviceaccount:tools:custom"),
        expression
    );
    for absent in [
        template("rel", "tools", &[], &[]),
        template(
            "rel",
            "tools",
            &[&values_file(
                "reloader:
  webhook: {configurationPolicy: false}
",
            )],
            &POLICY_API,
        ),
        template(
            "rel",
            "tools",
            &[&values_file(
                "reloader:
  watchGlobally: false
",
            )],
            &POLICY_API,
        ),
    ] {
        assert!(
            absent
                .try_get("ValidatingAdmissionPolicy", "rel-reloader-webhook-configurations")
                .is_none()
        );
    }
}

/// No values file renders a rule that lets the reloader create admission configurations, and
/// none renders the owner-ClusterRole rule the binary needed when it created them itself.
#[test]
fn no_rendering_grants_create_on_admission_configurations() {
    let custom = values_file(CUSTOM_GLOBAL);
    let namespaced = values_file(CUSTOM_NAMESPACED);
    let renders = [
        template("rel", "tools", &[], &[]),
        template("rel", "tools", &[&stakater_values()], &[]),
        template("rel", "tools", &[&stakater_values(), &custom], &[]),
        template("rel", "tools", &[&stakater_values(), &namespaced], &[]),
        template(
            "rel",
            "tools",
            &[&stakater_values(), &namespaced],
            &["--set", "reloader.webhook.enabled=true"],
        ),
        template(
            "rel",
            "tools",
            &[],
            &[
                "--set",
                "reloader.enableHA=true",
                "--set",
                "reloader.deployment.replicas=3",
            ],
        ),
    ];
    for r in &renders {
        assert_no_create_on_admission_configurations(r);
        for role in r.all("ClusterRole") {
            assert!(!role["rules"].to_string().contains("clusterroles"), "{role}");
        }
    }
}

/// watchGlobally false with the webhook: both configurations, scoped to the watched namespaces
/// (the release's and the list), and one ClusterRole holding only get and patch on them.
#[test]
fn a_namespaced_install_runs_the_webhook_with_one_narrow_cluster_rule() {
    let namespaced = values_file(CUSTOM_NAMESPACED);
    let r = template(
        "rel",
        "tools",
        &[&stakater_values(), &namespaced],
        &["--set", "reloader.webhook.enabled=true"],
    );
    assert_eq!(r.env()["RELOADER_ADMISSION_ADDR"], "0.0.0.0:9443");
    assert_eq!(
        r.rules("ClusterRole", "rel-reloader-role", None),
        webhook_rules("rel-reloader")
    );
    assert_eq!(r.all("ClusterRole").len(), 1, "{:?}", r.names());
    for kind in ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"] {
        let selector = &r.get(kind, "rel-reloader")["webhooks"][0]["namespaceSelector"]["matchExpressions"];
        assert_eq!(
            selector[1],
            json!({"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["team-a", "team-b", "tools"]}),
            "{kind}"
        );
    }
    assert_configurations_are_the_reloaders(&r, "rel-reloader", "tools", "namespaced");
    // Without webhook.enabled, a namespaced install stays free of cluster-scoped objects.
    let r = template("rel", "tools", &[&stakater_values(), &namespaced], &[]);
    assert!(r.all("ClusterRole").is_empty() && r.all("MutatingWebhookConfiguration").is_empty());
}

/// A PodDisruptionBudget whenever more than one replica runs, none with one (unless Stakater's
/// `enabled: true` asks for it), with Stakater's minAvailable / maxUnavailable.
#[test]
fn a_budget_whenever_more_than_one_replica_runs() {
    let budget = |extra: &[&str]| {
        template("rel", "tools", &[&stakater_values()], extra)
            .try_get("PodDisruptionBudget", "rel-reloader")
            .map(|p| p["spec"].clone())
    };
    let ha = [
        "--set",
        "reloader.enableHA=true",
        "--set",
        "reloader.deployment.replicas=2",
    ];
    assert_eq!(budget(&[]), None, "one replica");
    assert_eq!(
        budget(&["--set", "reloader.deployment.replicas=2"]),
        None,
        "replicas are 1 without enableHA"
    );
    assert_eq!(
        budget(&["--set", "reloader.enableHA=true"]),
        None,
        "HA with one replica"
    );
    let spec = budget(&ha).expect("two replicas: a budget");
    assert_eq!(spec["minAvailable"], 1);
    assert_eq!(
        spec["selector"]["matchLabels"],
        json!({"app": "rel-reloader", "release": "rel"})
    );
    let mut capped = ha.to_vec();
    capped.extend(["--set", "reloader.podDisruptionBudget.maxUnavailable=1"]);
    assert_eq!(budget(&capped).unwrap()["maxUnavailable"], 1);
    // Stakater's key keeps its meaning: enabled renders one with one replica too.
    let enabled = [
        "--set",
        "reloader.podDisruptionBudget.enabled=true",
        "--set",
        "reloader.podDisruptionBudget.minAvailable=0",
    ];
    assert_eq!(budget(&enabled).unwrap()["minAvailable"], 0);
}

/// The container pauses before it stops (as kustomize's does), and the client CA value wires
/// `--admission-client-ca` to a mounted file, from the chart's ConfigMap or the user's object.
#[test]
fn the_container_pauses_before_stopping_and_the_client_ca_wires_the_flag() {
    let r = template("rel", "tools", &[&stakater_values()], &[]);
    assert_eq!(r.container()["lifecycle"]["preStop"], json!({"sleep": {"seconds": 5}}));
    assert!(!r.env().contains_key("RELOADER_ADMISSION_CLIENT_CA"), "off by default");
    let r = template("rel", "tools", &[], &["--set", "reloader.preStopSleepSeconds=0"]);
    assert!(r.container().get("lifecycle").is_none());

    let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    let inline = values_file(&format!(
        "reloader:\n  webhook:\n    clientCA:\n      pem: {}\n",
        json!(pem)
    ));
    for (extra, volume) in [
        (
            vec!["-f".to_string(), inline.display().to_string()],
            json!({"name": "client-ca", "configMap": {"name": "rel-reloader-client-ca"}}),
        ),
        (
            strings(&[
                "--set",
                "reloader.webhook.clientCA.secret=api-server-ca",
                "--set",
                "reloader.webhook.clientCA.key=ca.pem",
            ]),
            json!({"name": "client-ca", "secret": {"secretName": "api-server-ca"}}),
        ),
        (
            strings(&["--set", "reloader.webhook.clientCA.configMap=cas"]),
            json!({"name": "client-ca", "configMap": {"name": "cas"}}),
        ),
    ] {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let r = template("rel", "tools", &[], &extra);
        let path = r.env()["RELOADER_ADMISSION_CLIENT_CA"].as_str().unwrap().to_string();
        assert!(path.starts_with("/etc/reloader/client-ca/"), "{path}");
        let pod = &r.all("Deployment")[0]["spec"]["template"]["spec"];
        assert!(
            pod["volumes"].as_array().unwrap().contains(&volume),
            "{}",
            pod["volumes"]
        );
        let mounts = r.container()["volumeMounts"].as_array().unwrap();
        assert!(
            mounts.contains(&json!({"name": "client-ca", "mountPath": "/etc/reloader/client-ca", "readOnly": true}))
        );
        // The binary reads the flag from that variable.
        assert_eq!(
            binary_settings(&r, "tools").client_ca,
            Some(std::path::PathBuf::from(&path))
        );
        if volume["configMap"]["name"] == "rel-reloader-client-ca" {
            assert_eq!(r.get("ConfigMap", "rel-reloader-client-ca")["data"]["ca.crt"], pem);
        }
    }
    let error = template_error(
        &[],
        &[
            "--set",
            "reloader.webhook.clientCA.secret=a",
            "--set",
            "reloader.webhook.clientCA.configMap=b",
        ],
    );
    assert!(error.contains("set one of pem, configMap and secret"), "{error}");
}

/// Argo Rollouts and the Secrets Store CSI driver (stand-in CRDs with their real APIs):
/// the chart's rules for them suffice, and a Rollout rolls.
#[tokio::test]
async fn argo_rollouts_and_csi_the_rbac_suffices() {
    use kube::api::{ApiResource, DynamicObject};
    let f = Fixture::new("hargo").await;
    serve_openshift_api(&f.client).await;
    crate::crds::ensure_crd(&f.client, "argoproj.io", "Rollout", "rollouts", "v1alpha1").await;
    for (kind, plural) in [
        ("SecretProviderClassPodStatus", "secretproviderclasspodstatuses"),
        ("SecretProviderClass", "secretproviderclasses"),
    ] {
        crate::crds::ensure_crd(&f.client, "secrets-store.csi.x-k8s.io", kind, plural, "v1").await;
    }
    let home = TestNamespace::new(&f.client, "rlhome").await;
    let values = values_file(&format!(
        "reloader:\n  watchGlobally: false\n  namespaces: [{}]\n  isArgoRollouts: true\n  enableCSIIntegration: true\n",
        f.ns.name
    ));
    let release = Release::install(&unique_name("a"), &home.name, &[&stakater_values(), &values]);
    f.config_map("cfg", json!({"k": "v1"})).await;
    f.secret("db", json!({"p": "1"})).await;
    let rollouts: Api<DynamicObject> = Api::namespaced_with(
        f.client.clone(),
        &f.ns.name,
        &ApiResource {
            group: "argoproj.io".into(),
            version: "v1alpha1".into(),
            api_version: "argoproj.io/v1alpha1".into(),
            kind: "Rollout".into(),
            plural: "rollouts".into(),
        },
    );
    let rollout: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "canary", "annotations": auto()},
        "spec": {"replicas": 1, "template": {"metadata": {"labels": {"app": "canary"}},
                 "spec": {"containers": [{"name": "app", "image": "x", "envFrom": uses("cfg", "db")}]}}}
    }))
    .unwrap();
    rollouts.create(&PostParams::default(), &rollout).await.unwrap();
    let local = release.run(&[]);
    local.reloader.wait_ready().await;
    let stamp_of = || async {
        let obj = serde_json::to_value(rollouts.get("canary").await.ok()?).ok()?;
        obj.pointer("/spec/template/metadata/annotations/reloader.stakater.com~1hashes")
            .cloned()
    };
    let acked = || async {
        let obj = serde_json::to_value(rollouts.get("canary").await.ok()?).ok()?;
        obj.pointer("/metadata/annotations/reloader.stakater.com~1acknowledged-hashes")
            .cloned()
    };
    eventually("the Rollout acknowledged", acked).await;
    f.set_config_map("cfg", json!({"k": "v2"})).await;
    eventually("the Rollout stamped", stamp_of).await;
    local.assert_no_denials();
}

/// A release of an earlier chart, whose reloader created the two configurations itself (labelled
/// `app.kubernetes.io/managed-by: reloader`), moves to this chart with `--take-ownership`: helm
/// refuses objects it did not create without it, and with it takes them over, and the reloader
/// then fills their caBundle as the install's.
#[tokio::test]
async fn configurations_the_reloader_created_are_taken_over_by_helm_with_take_ownership() {
    use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
    let f = Fixture::new("htake").await;
    serve_openshift_api(&f.client).await;
    let home = TestNamespace::new(&f.client, "rlhome").await;
    let release = Release {
        name: unique_name("t"),
        namespace: home.name.clone(),
    };
    let name = release.fullname();
    // As the earlier reloader left them.
    let (label, value) = reloader::admission::register::CREATED_BY_LABEL;
    let webhook = |hook: &str| {
        json!({"name": hook, "admissionReviewVersions": ["v1"], "sideEffects": "None",
               "failurePolicy": "Ignore", "timeoutSeconds": 3,
               "clientConfig": {"service": {"name": format!("{name}-webhook"), "namespace": home.name, "path": "/mutate"}},
               "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": f.ns.name}},
               "rules": [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["deployments"]}]})
    };
    let metadata = json!({"name": name, "labels": {label: value}});
    let mutating: Api<MutatingWebhookConfiguration> = Api::all(f.client.clone());
    let validating: Api<ValidatingWebhookConfiguration> = Api::all(f.client.clone());
    let m =
        serde_json::from_value(json!({"metadata": metadata, "webhooks": [webhook("mutate.reloader.stakater.com")]}));
    mutating.create(&PostParams::default(), &m.unwrap()).await.unwrap();
    let v =
        serde_json::from_value(json!({"metadata": metadata, "webhooks": [webhook("validate.reloader.stakater.com")]}));
    validating.create(&PostParams::default(), &v.unwrap()).await.unwrap();

    let values = values_file(&format!(
        "reloader:\n  watchGlobally: false\n  namespaces: [{}]\n  webhook: {{enabled: true}}\n",
        f.ns.name
    ));
    let files = [stakater_values(), values];
    let files: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let install = |extra: &[&str]| {
        let args = release.chart_args("install", &files, extra);
        helm(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let refused = install(&[]);
    assert!(!refused.status.success(), "helm took over objects it did not create");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("cannot be imported"), "{stderr}");
    let config = kubeconfig().display().to_string();
    helm(&[
        "uninstall",
        &release.name,
        "--namespace",
        &home.name,
        "--kubeconfig",
        &config,
    ]);

    let taken = install(&["--take-ownership"]);
    assert!(
        taken.status.success(),
        "helm install --take-ownership: {}",
        String::from_utf8_lossy(&taken.stderr)
    );
    let m = mutating.get(&name).await.unwrap();
    assert_eq!(
        m.metadata.labels.as_ref().unwrap()["app.kubernetes.io/managed-by"],
        "Helm",
        "the chart's now"
    );
    assert_eq!(
        m.webhooks.unwrap()[0].client_config.ca_bundle,
        None,
        "the chart's webhook, without a caBundle yet"
    );
    let local = release.run_unrouted(&["--admission-cert-check=300ms".to_string()]);
    local.reloader.wait_ready().await;
    eventually("the caBundle written by the reloader", || async {
        let v = validating.get_opt(&name).await.ok()??;
        v.webhooks?
            .remove(0)
            .client_config
            .ca_bundle
            .filter(|b| !b.0.is_empty())
    })
    .await;
    local.assert_no_denials();
}
