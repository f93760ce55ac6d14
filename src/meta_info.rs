//! Stakater's `reloader-meta-info` ConfigMap: written at start in `RELOADER_NAMESPACE` (skipped
//! without it, as Stakater does), labelled `reloader.stakater.com/meta-info: reloader`, with
//! `buildInfo`, `reloaderOptions` (the command-line options as given) and `deploymentInfo`, each
//! JSON with Stakater's field names and order, so tools that read it keep working. Unlike
//! Stakater's, `webhookUrl` is shown redacted ([`crate::core::redact::url`]): whoever may read
//! ConfigMaps in that namespace must not get the webhook's token.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use serde::Serialize;

use crate::config::Cli;
use crate::core::vocabulary::fixed;

pub const NAME: &str = "reloader-meta-info";
pub const LABEL: (&str, &str) = ("reloader.stakater.com/meta-info", "reloader");

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BuildInfo {
    /// Stakater's Go version field; ours names the Rust toolchain the crate requires.
    go_version: &'static str,
    release_version: &'static str,
    commit_hash: &'static str,
    /// Go's zero time when unknown, as Stakater writes it.
    commit_time: &'static str,
    edition: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReloaderOptions<'a> {
    auto_reload_all: bool,
    configmap_update_on_change_annotation: &'a str,
    secret_update_on_change_annotation: &'a str,
    secret_provider_class_update_on_change_annotation: &'static str,
    reloader_auto_annotation: &'a str,
    ignore_resource_annotation: &'a str,
    configmap_reloader_auto_annotation: &'a str,
    secret_reloader_auto_annotation: &'a str,
    secret_provider_class_reloader_auto_annotation: &'static str,
    configmap_exclude_reloader_annotation: &'static str,
    secret_exclude_reloader_annotation: &'static str,
    secret_provider_class_exclude_reloader_annotation: &'static str,
    auto_search_annotation: &'a str,
    search_match_annotation: &'a str,
    rollout_strategy_annotation: &'static str,
    pause_deployment_annotation: &'a str,
    pause_deployment_time_annotation: &'a str,
    log_format: &'a str,
    log_level: &'a str,
    #[serde(rename = "isArgoRollouts")]
    is_argo_rollouts: bool,
    reload_strategy: &'a str,
    reload_on_create: bool,
    reload_on_delete: bool,
    sync_after_restart: bool,
    #[serde(rename = "enableHA")]
    enable_ha: bool,
    #[serde(rename = "enableCSIIntegration")]
    enable_csi_integration: bool,
    /// Redacted: user information, query and secret path parts hidden.
    webhook_url: String,
    resources_to_ignore: &'a [String],
    workload_types_to_ignore: &'a [String],
    namespace_selectors: &'a [String],
    resource_selectors: &'a [String],
    namespaces_to_ignore: &'a [String],
    #[serde(rename = "enablePProf")]
    enable_pprof: bool,
    pprof_addr: &'a str,
}

/// `metav1.ObjectMeta` as Go encodes one with only a name and a namespace.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeploymentInfo<'a> {
    name: &'a str,
    namespace: &'a str,
    creation_timestamp: Option<()>,
}

/// Go's `strconv.ParseBool` truth, as Stakater's `parseBool` reads these string flags.
fn go_true(value: &str) -> bool {
    matches!(value, "1" | "t" | "T" | "TRUE" | "true" | "True")
}

/// The ConfigMap's data.
pub fn data(cli: &Cli, namespace: &str, deployment: &str) -> BTreeMap<String, String> {
    let build = BuildInfo {
        go_version: concat!("rust", env!("CARGO_PKG_RUST_VERSION")),
        release_version: env!("CARGO_PKG_VERSION"),
        commit_hash: match option_env!("RELOADER_COMMIT") {
            Some(commit) => commit,
            None => "unknown",
        },
        commit_time: "0001-01-01T00:00:00Z",
        edition: "oss",
    };
    let options = ReloaderOptions {
        auto_reload_all: cli.auto_reload_all,
        configmap_update_on_change_annotation: &cli.configmap_annotation,
        secret_update_on_change_annotation: &cli.secret_annotation,
        secret_provider_class_update_on_change_annotation: fixed::SPC_RELOAD,
        reloader_auto_annotation: &cli.auto_annotation,
        ignore_resource_annotation: &cli.ignore_annotation,
        configmap_reloader_auto_annotation: &cli.configmap_auto_annotation,
        secret_reloader_auto_annotation: &cli.secret_auto_annotation,
        secret_provider_class_reloader_auto_annotation: fixed::SPC_AUTO,
        configmap_exclude_reloader_annotation: fixed::CONFIGMAPS_EXCLUDE,
        secret_exclude_reloader_annotation: fixed::SECRETS_EXCLUDE,
        secret_provider_class_exclude_reloader_annotation: fixed::SPC_EXCLUDE,
        auto_search_annotation: &cli.auto_search_annotation,
        search_match_annotation: &cli.search_match_annotation,
        rollout_strategy_annotation: fixed::ROLLOUT_STRATEGY,
        pause_deployment_annotation: &cli.pause_deployment_annotation,
        pause_deployment_time_annotation: &cli.pause_deployment_time_annotation,
        log_format: &cli.log_format,
        log_level: &cli.log_level,
        is_argo_rollouts: go_true(&cli.is_argo_rollouts),
        reload_strategy: &cli.reload_strategy,
        reload_on_create: go_true(&cli.reload_on_create),
        reload_on_delete: go_true(&cli.reload_on_delete),
        sync_after_restart: cli.sync_after_restart,
        enable_ha: cli.enable_ha,
        enable_csi_integration: cli.enable_csi_integration,
        webhook_url: crate::core::redact::url(&cli.webhook_url),
        resources_to_ignore: &cli.resources_to_ignore,
        workload_types_to_ignore: &cli.ignored_workload_types,
        namespace_selectors: &cli.namespace_selector,
        resource_selectors: &cli.resource_label_selector,
        namespaces_to_ignore: &cli.namespaces_to_ignore,
        enable_pprof: cli.enable_pprof,
        pprof_addr: &cli.pprof_addr,
    };
    let deployment = DeploymentInfo {
        name: deployment,
        namespace,
        creation_timestamp: None,
    };
    BTreeMap::from([
        ("buildInfo".to_string(), to_json(&build)),
        ("reloaderOptions".to_string(), to_json(&options)),
        ("deploymentInfo".to_string(), to_json(&deployment)),
    ])
}

/// Compact JSON, as Go's `json.Marshal`; these shapes cannot fail to serialise.
fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// Creates or replaces the ConfigMap; a failure is logged, never fatal (as in Stakater).
pub async fn publish(client: &kube::Client, cli: &Cli, namespace: &str, deployment: &str) {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let mut cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(NAME.into()),
            namespace: Some(namespace.into()),
            labels: Some([(LABEL.0.to_string(), LABEL.1.to_string())].into()),
            ..Default::default()
        },
        data: Some(data(cli, namespace, deployment)),
        ..Default::default()
    };
    let result = match api.get_opt(NAME).await {
        Ok(Some(existing)) => {
            cm.metadata.resource_version = existing.metadata.resource_version;
            api.replace(NAME, &PostParams::default(), &cm).await.map(|_| ())
        }
        Ok(None) => api.create(&PostParams::default(), &cm).await.map(|_| ()),
        Err(error) => Err(error),
    };
    match result {
        Ok(()) => tracing::info!(namespace, configmap = NAME, "published the meta info"),
        Err(error) => tracing::warn!(%error, namespace, "publishing the meta info ConfigMap failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn stakaters_field_names_in_stakaters_order() {
        let cli = Cli::parse_from([
            "reloader",
            "--reload-on-create=true",
            "--namespaces-to-ignore=kube-system",
        ]);
        let data = data(&cli, "ops", "reloader");
        assert_eq!(
            data["deploymentInfo"],
            r#"{"name":"reloader","namespace":"ops","creationTimestamp":null}"#
        );
        let options = &data["reloaderOptions"];
        assert!(options.starts_with(r#"{"autoReloadAll":false,"configmapUpdateOnChangeAnnotation":"configmap.reloader.stakater.com/reload","#), "{options}");
        assert!(options.contains(r#""reloadOnCreate":true,"reloadOnDelete":false,"syncAfterRestart":false,"enableHA":false,"enableCSIIntegration":false,"webhookUrl":"""#), "{options}");
        assert!(
            options.contains(r#""namespacesToIgnore":["kube-system"],"enablePProf":false,"pprofAddr":"#),
            "{options}"
        );
        let build: serde_json::Value = serde_json::from_str(&data["buildInfo"]).unwrap();
        let keys: Vec<&str> = data["buildInfo"].split('"').skip(1).step_by(4).collect();
        assert_eq!(
            keys,
            ["goVersion", "releaseVersion", "commitHash", "commitTime", "edition"]
        );
        assert_eq!(build["releaseVersion"], env!("CARGO_PKG_VERSION"));
    }

    /// The ConfigMap is readable by anyone who may read ConfigMaps in the reloader's namespace:
    /// the URL's host stays, its credentials do not.
    #[test]
    fn the_webhook_urls_secret_parts_are_not_published() {
        for (url, shown) in [
            (
                "https://bot:pa55word@alerts.example.com/notify?token=t0ken#frag",
                "https://<redacted>@alerts.example.com/notify?<redacted>#<redacted>",
            ),
            (
                "https://hooks.slack.com/services/T0AAA/B0BBB/slackSecretPart",
                "https://hooks.slack.com/services/<redacted>",
            ),
        ] {
            let cli = Cli::parse_from(["reloader", "--webhook-url", url]);
            let data = data(&cli, "ops", "reloader");
            for value in data.values() {
                for secret in ["pa55word", "t0ken", "frag", "T0AAA", "B0BBB", "slackSecretPart"] {
                    assert!(!value.contains(secret), "{secret} published: {value}");
                }
            }
            let options: serde_json::Value = serde_json::from_str(&data["reloaderOptions"]).unwrap();
            assert_eq!(options["webhookUrl"], shown);
        }
    }
}
