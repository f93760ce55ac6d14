//! The binary's configuration: a drop-in for Stakater Reloader's command-line flags and
//! environment variables, plus the few settings of our own that Stakater hard-codes.
//!
//! [`Cli`] is what clap parses; [`Settings::from_cli`] validates it together with the environment
//! into the typed [`Settings`] the rest of the program uses. Problems Stakater treats as fatal are
//! [`ConfigError`]s; problems Stakater only logs (or silently ignores) are collected in
//! [`Settings::warnings`] for the binary to log once logging is set up, so that every
//! configuration Stakater starts with, we start with too.
//!
//! Every flag and variable, with how it differs from Stakater, is documented in
//! `docs/flags.md`.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser};
use thiserror::Error;

use crate::core::decision::DecisionOptions;
use crate::core::names::{check_label_value, check_qualified_name, is_dns_label, is_dns_subdomain};
use crate::core::plan::{PlanOptions, ReloadStrategy};
use crate::core::source::SourceKind;
use crate::core::vocabulary::{AnnotationKeys, defaults, parse_go_bool, parse_go_duration};
use crate::core::workload::WorkloadKind;

/// Command-line flags: every flag of Stakater Reloader under its own name, type and default,
/// then ours. Validation happens in [`Settings::from_cli`].
#[derive(Parser, Debug, Clone)]
#[command(
    name = "reloader",
    version,
    about = "Rolls Kubernetes workloads when the ConfigMaps, Secrets or CSI secrets they use change",
    args_override_self = true
)]
pub struct Cli {
    /// Treat every workload as annotated `auto: "true"` unless it sets auto or typed auto.
    #[arg(long, value_name = "BOOL", value_parser = go_bool, num_args = 0..=1,
          require_equals = true, default_value = "false", default_missing_value = "true",
          action = ArgAction::Set)]
    pub auto_reload_all: bool,

    /// Annotation naming the ConfigMaps a workload reloads on.
    #[arg(long, value_name = "KEY", default_value = defaults::CONFIGMAP_RELOAD)]
    pub configmap_annotation: String,

    /// Annotation naming the Secrets a workload reloads on.
    #[arg(long, value_name = "KEY", default_value = defaults::SECRET_RELOAD)]
    pub secret_annotation: String,

    /// Annotation making a workload reload on every ConfigMap and Secret it uses.
    #[arg(long, value_name = "KEY", default_value = defaults::AUTO)]
    pub auto_annotation: String,

    /// Annotation making a workload reload on every ConfigMap it uses.
    #[arg(long, value_name = "KEY", default_value = defaults::CONFIGMAP_AUTO)]
    pub configmap_auto_annotation: String,

    /// Annotation making a workload reload on every Secret it uses.
    #[arg(long, value_name = "KEY", default_value = defaults::SECRET_AUTO)]
    pub secret_auto_annotation: String,

    /// Annotation making a workload reload on the sources it uses that carry the match annotation.
    #[arg(long, value_name = "KEY", default_value = defaults::SEARCH)]
    pub auto_search_annotation: String,

    /// Annotation marking a ConfigMap or Secret for workloads using the search annotation.
    #[arg(long, value_name = "KEY", default_value = defaults::MATCH)]
    pub search_match_annotation: String,

    /// Annotation on a ConfigMap or Secret that stops it from triggering reloads.
    #[arg(long, value_name = "KEY", default_value = defaults::IGNORE)]
    pub ignore_annotation: String,

    /// Annotation holding a Deployment's pause period after a reload.
    #[arg(long, value_name = "KEY", default_value = defaults::PAUSE_PERIOD)]
    pub pause_deployment_annotation: String,

    /// Annotation recording when a Deployment was paused.
    #[arg(long, value_name = "KEY", default_value = defaults::PAUSED_AT)]
    pub pause_deployment_time_annotation: String,

    /// How a reload is recorded on the workload: `annotations` or `env-vars`.
    #[arg(long, value_name = "STRATEGY", default_value = "annotations")]
    pub reload_strategy: String,

    /// Roll workloads when a source they use is created ("true" to enable).
    #[arg(long, value_name = "STRING", default_value = "false")]
    pub reload_on_create: String,

    /// Roll workloads when a source they use is deleted ("true" to enable).
    #[arg(long, value_name = "STRING", default_value = "false")]
    pub reload_on_delete: String,

    /// Stakater: reload on the initial list after a restart. Here startup always reconciles.
    #[arg(long, value_name = "BOOL", value_parser = go_bool, num_args = 0..=1,
          require_equals = true, default_value = "false", default_missing_value = "true",
          action = ArgAction::Set)]
    pub sync_after_restart: bool,

    /// Run with Lease leader election (needs POD_NAME and POD_NAMESPACE).
    #[arg(long, value_name = "BOOL", value_parser = go_bool, num_args = 0..=1,
          require_equals = true, default_value = "false", default_missing_value = "true",
          action = ArgAction::Set)]
    pub enable_ha: bool,

    /// Also roll Argo Rollouts ("true" to enable).
    #[arg(long = "is-Argo-Rollouts", value_name = "STRING", default_value = "false")]
    pub is_argo_rollouts: String,

    /// Source kinds not to watch: `configmaps` or `secrets` (not both).
    #[arg(long, value_name = "LIST", action = ArgAction::Append)]
    pub resources_to_ignore: Vec<String>,

    /// Workload kinds not to roll: `jobs`, `cronjobs`, or both.
    #[arg(long, value_name = "LIST", action = ArgAction::Append)]
    pub ignored_workload_types: Vec<String>,

    /// Watch only these namespaces (takes precedence over KUBERNETES_NAMESPACE).
    #[arg(long, value_name = "LIST", action = ArgAction::Append)]
    pub namespaces: Vec<String>,

    /// Ignore events from these namespaces (only when watching all namespaces).
    #[arg(long, value_name = "LIST", action = ArgAction::Append)]
    pub namespaces_to_ignore: Vec<String>,

    /// Watch only namespaces whose labels match (`k=v`, `k:v`, `k:*`, or selector syntax).
    #[arg(long, value_name = "SELECTOR", action = ArgAction::Append)]
    pub namespace_selector: Vec<String>,

    /// Watch only ConfigMaps and Secrets whose labels match (same syntax).
    #[arg(long, value_name = "SELECTOR", action = ArgAction::Append)]
    pub resource_label_selector: Vec<String>,

    /// POST `{"webhook":"update successful"}` to this URL instead of reloading.
    #[arg(long, value_name = "URL", default_value = "")]
    pub webhook_url: String,

    /// Log format: empty for text, or `json`.
    #[arg(long, value_name = "FORMAT", default_value = "")]
    pub log_format: String,

    /// Log level: trace, debug, info, warning, error, fatal or panic.
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    pub log_level: String,

    /// Accepted for compatibility and ignored: pprof is a Go facility.
    #[arg(long, value_name = "BOOL", value_parser = go_bool, num_args = 0..=1,
          require_equals = true, default_value = "false", default_missing_value = "true",
          action = ArgAction::Set)]
    pub enable_pprof: bool,

    /// Accepted for compatibility and ignored: pprof is a Go facility.
    #[arg(long, value_name = "ADDR", default_value = ":6060")]
    pub pprof_addr: String,

    /// Watch SecretProviderClassPodStatuses of the Secrets Store CSI driver.
    #[arg(long, value_name = "BOOL", value_parser = go_bool, num_args = 0..=1,
          require_equals = true, default_value = "false", default_missing_value = "true",
          action = ArgAction::Set)]
    pub enable_csi_integration: bool,

    /// Listen address of the health and metrics server.
    #[arg(
        long,
        env = "RELOADER_HTTP_ADDR",
        value_name = "ADDR",
        default_value = "0.0.0.0:9090"
    )]
    pub http_addr: String,

    /// Changes to one workload's sources within this window roll it once (Go duration).
    #[arg(long, env = "RELOADER_RELOAD_WINDOW", value_name = "DURATION", default_value = "2s")]
    pub reload_window: String,

    /// Rollouts started per second, cluster-wide.
    #[arg(
        long,
        env = "RELOADER_MAX_RELOADS_PER_SECOND",
        value_name = "RATE",
        default_value_t = 10.0
    )]
    pub max_reloads_per_second: f64,

    /// Rollouts started per second in one namespace.
    #[arg(
        long,
        env = "RELOADER_MAX_RELOADS_PER_SECOND_PER_NAMESPACE",
        value_name = "RATE",
        default_value_t = 5.0
    )]
    pub max_reloads_per_second_per_namespace: f64,

    /// Capacity of each rollout token bucket.
    #[arg(long, env = "RELOADER_BURST", value_name = "N", default_value_t = 50)]
    pub burst: u32,

    /// Concurrent reconciles.
    #[arg(long, env = "RELOADER_WORKERS", value_name = "N", default_value_t = 4)]
    pub workers: usize,

    /// Field manager name for the writes.
    #[arg(
        long,
        env = "RELOADER_FIELD_MANAGER",
        value_name = "NAME",
        default_value = "reloader"
    )]
    pub field_manager: String,

    /// Name of the HA Lease (in POD_NAMESPACE).
    #[arg(
        long,
        env = "RELOADER_LEASE_NAME",
        value_name = "NAME",
        default_value = "stakater-reloader-lock"
    )]
    pub lease_name: String,

    /// Duration of the HA Lease (Go duration).
    #[arg(
        long,
        env = "RELOADER_LEASE_DURATION",
        value_name = "DURATION",
        default_value = "15s"
    )]
    pub lease_duration: String,

    /// Kubeconfig file; without it KUBECONFIG, ~/.kube/config, then the in-cluster config.
    #[arg(long, env = "RELOADER_KUBECONFIG", value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    #[command(flatten)]
    pub admission: AdmissionCli,
}

/// The admission webhook's flags (ours; Stakater has no webhook). Stakater's `--webhook-url`
/// already means "notify instead of reloading", hence the `--admission-` prefix.
#[derive(clap::Args, Debug, Clone)]
pub struct AdmissionCli {
    /// Serve the admission webhook (HTTPS) on this address, e.g. 0.0.0.0:9443; off when unset.
    #[arg(long, env = "RELOADER_ADMISSION_ADDR", value_name = "ADDR")]
    pub admission_addr: Option<String>,
    /// Register the webhook configurations with this URL (local runs: https://127.0.0.1:9443);
    /// otherwise they reach the webhook through --admission-service.
    #[arg(long, env = "RELOADER_ADMISSION_URL", value_name = "URL")]
    pub admission_url: Option<String>,
    /// Service in front of the webhook (certificate names <svc>.<ns>.svc).
    #[arg(
        long,
        env = "RELOADER_ADMISSION_SERVICE",
        value_name = "NAME",
        default_value = "reloader"
    )]
    pub admission_service: String,
    /// Namespace of the service and the certificate Secret [default: POD_NAMESPACE, then
    /// RELOADER_NAMESPACE, then "default"].
    #[arg(long, env = "RELOADER_ADMISSION_NAMESPACE", value_name = "NAME")]
    pub admission_namespace: Option<String>,
    /// Secret holding the webhook CA and serving certificate (created when absent).
    #[arg(
        long,
        env = "RELOADER_ADMISSION_SECRET",
        value_name = "NAME",
        default_value = "reloader-webhook-tls"
    )]
    pub admission_secret: String,
    /// Name of the Mutating- and ValidatingWebhookConfiguration whose caBundle the leader keeps.
    #[arg(
        long,
        env = "RELOADER_ADMISSION_CONFIGURATION",
        value_name = "NAME",
        default_value = "reloader"
    )]
    pub admission_configuration: String,
    /// Serving certificate file (PEM); with --tls-key-file, replaces the managed Secret
    /// (cert-manager users). Re-read when it changes.
    #[arg(long, env = "RELOADER_TLS_CERT_FILE", value_name = "PATH", requires = "tls_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    /// Private key file (PEM) for --tls-cert-file.
    #[arg(long, env = "RELOADER_TLS_KEY_FILE", value_name = "PATH", requires = "tls_cert_file")]
    pub tls_key_file: Option<PathBuf>,
    /// Lifetime of a managed serving certificate; renewed when a third is left.
    #[arg(
        long,
        env = "RELOADER_ADMISSION_CERT_LIFETIME",
        value_name = "DURATION",
        default_value = "2160h"
    )]
    pub admission_cert_lifetime: String,
    /// Lifetime of the managed CA; replaced (with an old+new caBundle overlap) when a third is left.
    #[arg(
        long,
        env = "RELOADER_ADMISSION_CA_LIFETIME",
        value_name = "DURATION",
        default_value = "87600h"
    )]
    pub admission_ca_lifetime: String,
    /// How often certificates are checked for renewal (and cert files for changes).
    #[arg(
        long,
        env = "RELOADER_ADMISSION_CERT_CHECK",
        value_name = "DURATION",
        default_value = "1m"
    )]
    pub admission_cert_check: String,
    /// Requests by this user are admitted unchanged [default: the identity the API server
    /// reports for the reloader (SelfSubjectReview)].
    #[arg(long, env = "RELOADER_ADMISSION_SELF_USER", value_name = "USER")]
    pub admission_self_user: Option<String>,
}

/// Where the API server reaches the webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdmissionEndpoint {
    /// `clientConfig.url` (local runs); the certificate is for the URL's host.
    Url { url: String, host: String },
    /// `clientConfig.service` in `namespace`; the certificate is for the service's DNS names.
    Service { name: String },
}

/// Where the serving certificate comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertSource {
    /// A CA and leaf kept in a Secret, created and rotated by the reloader.
    Managed {
        secret: String,
        cert_lifetime: Duration,
        ca_lifetime: Duration,
    },
    /// Files provided by the user (cert-manager), re-read when they change.
    Files { cert: PathBuf, key: PathBuf },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdmissionSettings {
    pub addr: SocketAddr,
    pub endpoint: AdmissionEndpoint,
    pub namespace: String,
    pub configuration: String,
    pub certs: CertSource,
    pub cert_check: Duration,
    /// `--admission-self-user`; when unset the binary asks the API server who it is.
    pub self_user: Option<String>,
    /// `--namespaces` (or KUBERNETES_NAMESPACE): the webhook covers only these.
    pub watched: Option<BTreeSet<String>>,
}

fn admission_settings(
    cli: &AdmissionCli,
    pod_namespace: Option<&str>,
    reloader_namespace: Option<&str>,
    scope: &WatchScope,
) -> Result<Option<AdmissionSettings>, ConfigError> {
    let Some(addr) = &cli.admission_addr else {
        return Ok(None);
    };
    let addr = socket_addr("--admission-addr", addr)?;
    let namespace = cli
        .admission_namespace
        .clone()
        .or(pod_namespace.map(str::to_string))
        .or(reloader_namespace.map(str::to_string))
        .unwrap_or_else(|| "default".into());
    let bad = |flag: &'static str, value: &str, reason: &str| ConfigError::Value {
        flag,
        value: value.into(),
        reason: reason.into(),
    };
    let endpoint = match &cli.admission_url {
        Some(url) => {
            let rest = url
                .strip_prefix("https://")
                .ok_or_else(|| bad("--admission-url", url, "must start with https://"))?;
            let authority = rest.split('/').next().unwrap_or_default();
            let host = match authority.rsplit_once(':') {
                Some((h, port)) if port.parse::<u16>().is_ok() => h,
                _ => authority,
            };
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() {
                return Err(bad("--admission-url", url, "has no host"));
            }
            AdmissionEndpoint::Url {
                url: url.trim_end_matches('/').to_string(),
                host: host.to_string(),
            }
        }
        None => AdmissionEndpoint::Service {
            name: cli.admission_service.clone(),
        },
    };
    let certs = match (&cli.tls_cert_file, &cli.tls_key_file) {
        (Some(cert), Some(key)) => CertSource::Files {
            cert: cert.clone(),
            key: key.clone(),
        },
        _ => CertSource::Managed {
            secret: cli.admission_secret.clone(),
            cert_lifetime: duration("--admission-cert-lifetime", &cli.admission_cert_lifetime)?,
            ca_lifetime: duration("--admission-ca-lifetime", &cli.admission_ca_lifetime)?,
        },
    };
    let self_user = cli.admission_self_user.clone();
    Ok(Some(AdmissionSettings {
        addr,
        endpoint,
        namespace,
        configuration: cli.admission_configuration.clone(),
        certs,
        cert_check: duration("--admission-cert-check", &cli.admission_cert_check)?,
        self_user,
        watched: match scope {
            WatchScope::All => None,
            WatchScope::Namespaces(list) => Some(list.clone()),
        },
    }))
}

/// Go's `strconv.ParseBool`, as pflag's bool flags use it.
fn go_bool(value: &str) -> Result<bool, String> {
    parse_go_bool(value).ok_or_else(|| format!("{value:?} is not a boolean (use true or false)"))
}

/// A configuration that cannot start. Every message names the flag or variable at fault.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ConfigError {
    #[error("--reload-strategy must be one of: env-vars, annotations (got {value:?})")]
    ReloadStrategy { value: String },
    #[error("--resources-to-ignore only accepts 'configmaps' or 'secrets', not {value:?}")]
    ResourceToIgnore { value: String },
    #[error("--resources-to-ignore only accepts 'configmaps' or 'secrets', not both")]
    BothResourcesIgnored,
    #[error("--ignored-workload-types accepts 'jobs', 'cronjobs', or both, not {value:?}")]
    WorkloadType { value: String },
    #[error("--enable-ha needs the {var} environment variable, which is not set")]
    HaEnvMissing { var: &'static str },
    #[error("{flag}: {reason}")]
    List { flag: &'static str, reason: String },
    #[error("{flag}: bad label selector term {term:?}: {reason}")]
    Selector {
        flag: &'static str,
        term: String,
        reason: String,
    },
    #[error("{origin}: {name:?} is not a valid namespace name (lower-case RFC 1123 label)")]
    Namespace { origin: &'static str, name: String },
    #[error("{flag}: {value:?} is invalid: {reason}")]
    Value {
        flag: &'static str,
        value: String,
        reason: String,
    },
}

/// Which namespaces are watched, after Stakater's precedence: `--namespaces`, then
/// `KUBERNETES_NAMESPACE`, then all namespaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchScope {
    /// Every namespace (Stakater's global mode, the only one that needs a ClusterRole).
    All,
    /// Exactly these namespaces (never empty).
    Namespaces(BTreeSet<String>),
}

impl WatchScope {
    pub fn is_global(&self) -> bool {
        matches!(self, WatchScope::All)
    }

    /// True when events from `namespace` are in scope (ignoring `namespaces_to_ignore`).
    pub fn contains(&self, namespace: &str) -> bool {
        match self {
            WatchScope::All => true,
            WatchScope::Namespaces(set) => set.contains(namespace),
        }
    }
}

/// `--log-format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// `--log-level`, with logrus's level names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Trace,
    Debug,
    #[default]
    Info,
    Warn,
    Error,
    /// logrus `fatal`: logs at error level here (nothing exits because of a log line).
    Fatal,
    /// logrus `panic`: logs at error level here (nothing panics because of a log line).
    Panic,
}

impl LogLevel {
    /// logrus `ParseLevel`: case-insensitive, `warn` and `warning` alike.
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value.to_ascii_lowercase().as_str() {
            "trace" => LogLevel::Trace,
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "warn" | "warning" => LogLevel::Warn,
            "error" => LogLevel::Error,
            "fatal" => LogLevel::Fatal,
            "panic" => LogLevel::Panic,
            _ => return None,
        })
    }

    /// The `tracing` filter directive for this level (`fatal` and `panic` become `error`).
    pub fn filter_directive(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error | LogLevel::Fatal | LogLevel::Panic => "error",
        }
    }
}

/// Token-bucket limits on rollouts started.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimits {
    /// `--max-reloads-per-second`: refill rate of the cluster-wide bucket.
    pub per_second: f64,
    /// `--max-reloads-per-second-per-namespace`: refill rate of each namespace's bucket.
    pub per_namespace_per_second: f64,
    /// `--burst`: capacity of every bucket (at least 1).
    pub burst: u32,
}

/// HA leader election over a coordination Lease (Stakater's `leadership.go`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderElection {
    /// `--lease-name`.
    pub lease_name: String,
    /// `POD_NAMESPACE`: where the Lease lives.
    pub lease_namespace: String,
    /// `POD_NAME`: this replica's holder identity.
    pub identity: String,
    /// `--lease-duration` (15 s by default).
    pub lease_duration: Duration,
    /// Two thirds of the lease duration (10 s by default).
    pub renew_deadline: Duration,
    /// Two fifteenths of the lease duration (2 s by default).
    pub retry_period: Duration,
}

/// Where reload alerts go (`ALERT_SINK`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertSink {
    /// `slack`: `{"attachments":[{"color":"good","author_name":"Reloader","text":…}]}`.
    Slack,
    /// `teams`: `{"text":…}`.
    Teams,
    /// `gchat`: `{"text":…}`.
    GChat,
    /// Anything else (the README's `webhook`): the message as `text/plain`, `*` removed.
    Raw,
}

impl AlertSink {
    /// Stakater's rule: trimmed, lower-cased; anything unknown is raw.
    pub fn parse(value: &str) -> Self {
        match value.trim().to_lowercase().as_str() {
            "slack" => AlertSink::Slack,
            "teams" => AlertSink::Teams,
            "gchat" => AlertSink::GChat,
            _ => AlertSink::Raw,
        }
    }
}

/// Reload alerts, present only when `ALERT_ON_RELOAD` is exactly `true` and a URL is set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertSettings {
    /// `ALERT_SINK`.
    pub sink: AlertSink,
    /// `ALERT_WEBHOOK_URL`, trimmed.
    pub webhook_url: String,
    /// `ALERT_WEBHOOK_PROXY`, trimmed; `None` when unset or empty.
    pub proxy: Option<String>,
    /// `ALERT_ADDITIONAL_INFO`, trimmed; prefixed to messages as `"<info> : "`.
    pub additional_info: Option<String>,
}

/// The validated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// The ten renameable annotation keys.
    pub annotation_keys: AnnotationKeys,
    /// `--auto-reload-all`.
    pub auto_reload_all: bool,
    /// `--reload-strategy`.
    pub strategy: ReloadStrategy,
    /// `--reload-on-create == "true"`.
    pub reload_on_create: bool,
    /// `--reload-on-delete == "true"`.
    pub reload_on_delete: bool,
    /// `--sync-after-restart` (recorded; startup always reconciles).
    pub sync_after_restart: bool,
    /// `--resources-to-ignore`: at most one of ConfigMap and Secret.
    pub ignored_source_kinds: BTreeSet<SourceKind>,
    /// `--ignored-workload-types`: a subset of Job and CronJob.
    pub ignored_workload_kinds: BTreeSet<WorkloadKind>,
    /// `--is-Argo-Rollouts == "true"`.
    pub argo_rollouts: bool,
    /// `--enable-csi-integration`.
    pub csi_integration: bool,
    /// `--namespaces`, else `KUBERNETES_NAMESPACE`, else all.
    pub watch_scope: WatchScope,
    /// `--namespaces-to-ignore`. Honoured only in global mode, as in Stakater: empty (with a
    /// warning) when the scope is a namespace list.
    pub namespaces_to_ignore: BTreeSet<String>,
    /// `--namespace-selector` as a Kubernetes label selector. Global mode only, as in Stakater:
    /// `None` (with a warning if it was set) when the scope is a namespace list.
    pub namespace_selector: Option<String>,
    /// `--resource-label-selector` as a Kubernetes label selector, applied server-side to the
    /// ConfigMap and Secret list/watch.
    pub resource_label_selector: Option<String>,
    /// `--webhook-url`: when set, POST to it instead of reloading.
    pub webhook_url: Option<String>,
    /// `--log-format`.
    pub log_format: LogFormat,
    /// `--log-level`.
    pub log_level: LogLevel,
    /// `--http-addr`.
    pub http_addr: SocketAddr,
    /// `--reload-window` (zero: no coalescing).
    pub reload_window: Duration,
    /// `--max-reloads-per-second`, `--max-reloads-per-second-per-namespace`, `--burst`.
    pub rate_limits: RateLimits,
    /// `--workers` (at least 1).
    pub workers: usize,
    /// `--field-manager`.
    pub field_manager: String,
    /// `--kubeconfig`; `None` lets kube infer the config.
    pub kubeconfig: Option<PathBuf>,
    /// `POD_NAME`, if set.
    pub pod_name: Option<String>,
    /// `POD_NAMESPACE`, if set.
    pub pod_namespace: Option<String>,
    /// `--enable-ha`: `Some` with the Lease settings when enabled.
    pub leader_election: Option<LeaderElection>,
    /// `RELOADER_NAMESPACE`: where the `reloader-meta-info` ConfigMap goes; `None` skips it.
    pub reloader_namespace: Option<String>,
    /// `RELOADER_DEPLOYMENT_NAME`, recorded in the meta-info ConfigMap.
    pub reloader_deployment_name: Option<String>,
    /// `METRICS_COUNT_BY_NAMESPACE == "enabled"`: the per-namespace reload counter.
    pub metrics_by_namespace: bool,
    /// `ALERT_ON_RELOAD == "true"` with a webhook URL.
    pub alerts: Option<AlertSettings>,
    /// Non-fatal problems (ones Stakater also only logs or ignores), for the binary to log.
    pub warnings: Vec<String>,
    /// The admission webhook, when `--admission-addr` is set.
    pub admission: Option<AdmissionSettings>,
}

/// The process environment, for [`Settings::from_cli`] in the binary.
pub fn process_env(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

impl Settings {
    /// Validates the flags together with the environment, read through `env` (use
    /// [`process_env`] in the binary, a map in tests).
    pub fn from_cli(cli: Cli, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut warnings = Vec::new();
        // Trimmed, and empty counts as unset.
        let var = |key: &str| env(key).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());

        let annotation_keys = annotation_keys(&cli, &mut warnings);

        let strategy = ReloadStrategy::from_flag(&cli.reload_strategy).ok_or_else(|| ConfigError::ReloadStrategy {
            value: cli.reload_strategy.clone(),
        })?;

        let reload_on_create = exact_true("--reload-on-create", &cli.reload_on_create, &mut warnings);
        let reload_on_delete = exact_true("--reload-on-delete", &cli.reload_on_delete, &mut warnings);
        let argo_rollouts = exact_true("--is-Argo-Rollouts", &cli.is_argo_rollouts, &mut warnings);

        let ignored_source_kinds = ignored_source_kinds(&cli.resources_to_ignore)?;
        let ignored_workload_kinds = ignored_workload_kinds(&cli.ignored_workload_types)?;

        let watch_scope = watch_scope(&cli.namespaces, var("KUBERNETES_NAMESPACE"))?;
        let mut namespaces_to_ignore: BTreeSet<String> =
            list_items("--namespaces-to-ignore", &cli.namespaces_to_ignore)?
                .into_iter()
                .collect();
        let namespace_selector = if watch_scope.is_global() {
            label_selector("--namespace-selector", &cli.namespace_selector)?
        } else {
            if !namespaces_to_ignore.is_empty() {
                warnings.push(
                    "--namespaces-to-ignore is honoured only when watching all namespaces; \
                     ignoring it"
                        .to_string(),
                );
                namespaces_to_ignore.clear();
            }
            if cli.namespace_selector.iter().any(|s| !s.trim().is_empty()) {
                warnings.push(
                    "--namespace-selector is honoured only when watching all namespaces; \
                     ignoring it"
                        .to_string(),
                );
            }
            None
        };
        let resource_label_selector = label_selector("--resource-label-selector", &cli.resource_label_selector)?;

        let webhook_url = Some(cli.webhook_url.trim().to_string()).filter(|u| !u.is_empty());

        let log_format = match cli.log_format.as_str() {
            "" | "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                warnings.push(format!(
                    "--log-format: unsupported logging formatter {other:?}; using text"
                ));
                LogFormat::Text
            }
        };
        let log_level = LogLevel::parse(&cli.log_level).unwrap_or_else(|| {
            warnings.push(format!(
                "--log-level: {:?} is not a level (trace, debug, info, warning, error, fatal, \
                 panic); using info",
                cli.log_level
            ));
            LogLevel::Info
        });

        if cli.enable_pprof {
            warnings.push(format!(
                "--enable-pprof is accepted for compatibility but pprof does not exist in this \
                 implementation; nothing listens on {}",
                cli.pprof_addr
            ));
        }

        let http_addr = socket_addr("--http-addr", &cli.http_addr)?;
        let reload_window = duration("--reload-window", &cli.reload_window)?;
        let rate_limits = RateLimits {
            per_second: rate("--max-reloads-per-second", cli.max_reloads_per_second)?,
            per_namespace_per_second: rate(
                "--max-reloads-per-second-per-namespace",
                cli.max_reloads_per_second_per_namespace,
            )?,
            burst: at_least_one("--burst", cli.burst)?,
        };
        let workers = at_least_one("--workers", cli.workers)?;
        let field_manager = field_manager(&cli.field_manager)?;

        if !is_dns_subdomain(&cli.lease_name) {
            return Err(ConfigError::Value {
                flag: "--lease-name",
                value: cli.lease_name,
                reason: "a Lease name must be a lower-case RFC 1123 subdomain".into(),
            });
        }
        let lease_duration = duration("--lease-duration", &cli.lease_duration)?;
        if lease_duration < Duration::from_secs(1) {
            return Err(ConfigError::Value {
                flag: "--lease-duration",
                value: cli.lease_duration,
                reason: "must be at least 1s".into(),
            });
        }

        let pod_name = var("POD_NAME");
        let pod_namespace = var("POD_NAMESPACE");
        let leader_election = if cli.enable_ha {
            let identity = pod_name.clone().ok_or(ConfigError::HaEnvMissing { var: "POD_NAME" })?;
            let lease_namespace = pod_namespace
                .clone()
                .ok_or(ConfigError::HaEnvMissing { var: "POD_NAMESPACE" })?;
            Some(LeaderElection {
                lease_name: cli.lease_name,
                lease_namespace,
                identity,
                lease_duration,
                renew_deadline: lease_duration * 2 / 3,
                retry_period: lease_duration * 2 / 15,
            })
        } else {
            None
        };

        let alerts = alerts(&env, &var, &mut warnings);
        let reloader_namespace = var("RELOADER_NAMESPACE");
        let admission = admission_settings(
            &cli.admission,
            pod_namespace.as_deref(),
            reloader_namespace.as_deref(),
            &watch_scope,
        )?;

        Ok(Settings {
            annotation_keys,
            auto_reload_all: cli.auto_reload_all,
            strategy,
            reload_on_create,
            reload_on_delete,
            sync_after_restart: cli.sync_after_restart,
            ignored_source_kinds,
            ignored_workload_kinds,
            argo_rollouts,
            csi_integration: cli.enable_csi_integration,
            watch_scope,
            namespaces_to_ignore,
            namespace_selector,
            resource_label_selector,
            webhook_url,
            log_format,
            log_level,
            http_addr,
            reload_window,
            rate_limits,
            workers,
            field_manager,
            kubeconfig: cli.kubeconfig,
            pod_name,
            pod_namespace,
            leader_election,
            reloader_namespace,
            reloader_deployment_name: var("RELOADER_DEPLOYMENT_NAME"),
            metrics_by_namespace: env("METRICS_COUNT_BY_NAMESPACE").as_deref() == Some("enabled"),
            alerts,
            warnings,
            admission,
        })
    }

    /// True with `--enable-ha`.
    pub fn ha(&self) -> bool {
        self.leader_election.is_some()
    }

    /// The decision options. Kinds switched off by a feature flag count as ignored, so the
    /// decision never depends on what is not watched: SecretProviderClasses without
    /// `--enable-csi-integration`, Argo Rollouts without `--is-Argo-Rollouts=true` (Stakater
    /// neither watches nor rolls them then).
    pub fn decision_options(&self) -> DecisionOptions {
        let mut ignored_source_kinds = self.ignored_source_kinds.clone();
        if !self.csi_integration {
            ignored_source_kinds.insert(SourceKind::SecretProviderClass);
        }
        let mut ignored_workload_kinds = self.ignored_workload_kinds.clone();
        if !self.argo_rollouts {
            ignored_workload_kinds.insert(WorkloadKind::Rollout);
        }
        DecisionOptions {
            keys: self.annotation_keys.clone(),
            auto_reload_all: self.auto_reload_all,
            ignored_workload_kinds,
            ignored_source_kinds,
        }
    }

    pub fn plan_options(&self) -> PlanOptions {
        PlanOptions {
            strategy: self.strategy,
            reload_on_create: self.reload_on_create,
            reload_on_delete: self.reload_on_delete,
            notify_only: self.webhook_url.is_some(),
        }
    }
}

fn annotation_keys(cli: &Cli, warnings: &mut Vec<String>) -> AnnotationKeys {
    let keys = AnnotationKeys {
        auto: cli.auto_annotation.clone(),
        configmap_auto: cli.configmap_auto_annotation.clone(),
        secret_auto: cli.secret_auto_annotation.clone(),
        configmap_reload: cli.configmap_annotation.clone(),
        secret_reload: cli.secret_annotation.clone(),
        search: cli.auto_search_annotation.clone(),
        match_: cli.search_match_annotation.clone(),
        ignore: cli.ignore_annotation.clone(),
        pause_period: cli.pause_deployment_annotation.clone(),
        paused_at: cli.pause_deployment_time_annotation.clone(),
    };
    let renamed = [
        ("--auto-annotation", &keys.auto),
        ("--configmap-auto-annotation", &keys.configmap_auto),
        ("--secret-auto-annotation", &keys.secret_auto),
        ("--configmap-annotation", &keys.configmap_reload),
        ("--secret-annotation", &keys.secret_reload),
        ("--auto-search-annotation", &keys.search),
        ("--search-match-annotation", &keys.match_),
        ("--ignore-annotation", &keys.ignore),
        ("--pause-deployment-annotation", &keys.pause_period),
        ("--pause-deployment-time-annotation", &keys.paused_at),
    ];
    for (flag, key) in renamed {
        if let Err(reason) = check_qualified_name(key) {
            warnings.push(format!(
                "{flag}: {key:?} is not a valid annotation key ({reason}); no object can carry it"
            ));
        }
    }
    keys
}

/// Stakater's `== "true"` string flags; other values are off, with a warning unless `false`.
fn exact_true(flag: &str, value: &str, warnings: &mut Vec<String>) -> bool {
    match value {
        "true" => true,
        "false" | "" => false,
        other => {
            warnings.push(format!(
                "{flag}={other:?} is off: only the exact string \"true\" turns it on"
            ));
            false
        }
    }
}

fn ignored_source_kinds(values: &[String]) -> Result<BTreeSet<SourceKind>, ConfigError> {
    let mut kinds = BTreeSet::new();
    for item in list_items("--resources-to-ignore", values)? {
        let kind = match item.to_lowercase().as_str() {
            "configmaps" => SourceKind::ConfigMap,
            "secrets" => SourceKind::Secret,
            _ => return Err(ConfigError::ResourceToIgnore { value: item }),
        };
        kinds.insert(kind);
    }
    if kinds.len() > 1 {
        return Err(ConfigError::BothResourcesIgnored);
    }
    Ok(kinds)
}

fn ignored_workload_kinds(values: &[String]) -> Result<BTreeSet<WorkloadKind>, ConfigError> {
    list_items("--ignored-workload-types", values)?
        .into_iter()
        .map(|item| match item.to_lowercase().as_str() {
            "jobs" => Ok(WorkloadKind::Job),
            "cronjobs" => Ok(WorkloadKind::CronJob),
            _ => Err(ConfigError::WorkloadType { value: item }),
        })
        .collect()
}

fn watch_scope(namespaces: &[String], kubernetes_namespace: Option<String>) -> Result<WatchScope, ConfigError> {
    let listed = list_items("--namespaces", namespaces)?;
    let (origin, names) = if !listed.is_empty() {
        ("--namespaces", listed)
    } else if let Some(ns) = kubernetes_namespace {
        ("KUBERNETES_NAMESPACE", vec![ns])
    } else {
        return Ok(WatchScope::All);
    };
    let mut set = BTreeSet::new();
    for name in names {
        if !is_dns_label(&name) {
            return Err(ConfigError::Namespace { origin, name });
        }
        set.insert(name);
    }
    Ok(WatchScope::Namespaces(set))
}

fn alerts(
    env: &impl Fn(&str) -> Option<String>,
    var: &impl Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
) -> Option<AlertSettings> {
    if env("ALERT_ON_RELOAD").as_deref() != Some("true") {
        return None;
    }
    let Some(webhook_url) = var("ALERT_WEBHOOK_URL") else {
        warnings
            .push("ALERT_ON_RELOAD is \"true\" but ALERT_WEBHOOK_URL is not set; no alerts will be sent".to_string());
        return None;
    };
    Some(AlertSettings {
        sink: AlertSink::parse(&env("ALERT_SINK").unwrap_or_default()),
        webhook_url,
        proxy: var("ALERT_WEBHOOK_PROXY"),
        additional_info: var("ALERT_ADDITIONAL_INFO"),
    })
}

fn socket_addr(flag: &'static str, value: &str) -> Result<SocketAddr, ConfigError> {
    // Go's `:9090` means every interface.
    let parsed = match value.strip_prefix(':') {
        Some(port) => port
            .parse::<u16>()
            .map(|port| SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)))
            .map_err(|e| e.to_string()),
        None => value.parse::<SocketAddr>().map_err(|e| e.to_string()),
    };
    parsed.map_err(|reason| ConfigError::Value {
        flag,
        value: value.to_string(),
        reason: format!("{reason} (expected IP:PORT or :PORT)"),
    })
}

fn duration(flag: &'static str, value: &str) -> Result<Duration, ConfigError> {
    parse_go_duration(flag, value).map_err(|_| ConfigError::Value {
        flag,
        value: value.to_string(),
        reason: "not a duration (examples: 500ms, 2s, 1m30s)".into(),
    })
}

fn rate(flag: &'static str, value: f64) -> Result<f64, ConfigError> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(ConfigError::Value {
            flag,
            value: value.to_string(),
            reason: "must be a positive number".into(),
        })
    }
}

fn at_least_one<T: PartialOrd + From<u8> + ToString>(flag: &'static str, value: T) -> Result<T, ConfigError> {
    if value >= T::from(1) {
        Ok(value)
    } else {
        Err(ConfigError::Value {
            flag,
            value: value.to_string(),
            reason: "must be at least 1".into(),
        })
    }
}

fn field_manager(value: &str) -> Result<String, ConfigError> {
    let reason = if value.trim().is_empty() {
        "must not be empty"
    } else if value.len() > 128 {
        "must be at most 128 characters"
    } else if value.chars().any(char::is_control) {
        "must not contain control characters"
    } else {
        return Ok(value.to_string());
    };
    Err(ConfigError::Value {
        flag: "--field-manager",
        value: value.to_string(),
        reason: reason.into(),
    })
}

/// The items of a pflag `StringSlice` flag given `values` (one string per occurrence): each
/// occurrence is one Go CSV record; items are trimmed and empty items dropped.
fn list_items(flag: &'static str, values: &[String]) -> Result<Vec<String>, ConfigError> {
    let mut items = Vec::new();
    for value in values {
        let record = csv_record(value).map_err(|reason| ConfigError::List {
            flag,
            reason: format!("{reason} in {value:?}"),
        })?;
        items.extend(record.into_iter().filter(|item| !item.is_empty()));
    }
    Ok(items)
}

/// One record of Go's `encoding/csv` with `,` as separator (what pflag uses for slices), except
/// that fields are trimmed and spaces around a quoted field are allowed.
fn csv_record(value: &str) -> Result<Vec<String>, &'static str> {
    let mut fields = Vec::new();
    let mut rest = value;
    loop {
        let start = rest.trim_start();
        if let Some(quoted) = start.strip_prefix('"') {
            let mut field = String::new();
            let mut chars = quoted.char_indices();
            let tail = loop {
                match chars.next() {
                    None => return Err("unterminated quoted field"),
                    Some((i, '"')) => {
                        if quoted[i + 1..].starts_with('"') {
                            field.push('"');
                            chars.next();
                        } else {
                            break quoted[i + 1..].trim_start();
                        }
                    }
                    Some((_, c)) => field.push(c),
                }
            };
            fields.push(field.trim().to_string());
            if tail.is_empty() {
                return Ok(fields);
            }
            rest = tail.strip_prefix(',').ok_or("text after a closing quote")?;
        } else {
            let (field, next) = match rest.split_once(',') {
                Some((field, next)) => (field, Some(next)),
                None => (rest, None),
            };
            if field.contains('"') {
                return Err("bare \" in a non-quoted field");
            }
            fields.push(field.trim().to_string());
            match next {
                Some(next) => rest = next,
                None => return Ok(fields),
            }
        }
    }
}

/// Converts Stakater's selector flags to one Kubernetes label selector (terms ANDed), or `None`
/// when no term is given. Each term is `k=v`, legacy `k:v`, `k:*` / `k=*` (key exists), or
/// selector syntax passed through: `k==v`, `k!=v`, `!k`, `k`, `k in (a,b)`, `k notin (a,b)`,
/// `k>1`, `k<1`.
fn label_selector(flag: &'static str, values: &[String]) -> Result<Option<String>, ConfigError> {
    let joined = list_items(flag, values)?.join(",");
    let mut terms = Vec::new();
    for term in split_terms(&joined).map_err(|reason| ConfigError::Selector {
        flag,
        term: joined.clone(),
        reason: reason.into(),
    })? {
        let term = term.trim();
        if term.is_empty() {
            continue;
        }
        terms.push(selector_term(term).map_err(|reason| ConfigError::Selector {
            flag,
            term: term.to_string(),
            reason,
        })?);
    }
    Ok(if terms.is_empty() { None } else { Some(terms.join(",")) })
}

/// Splits a selector on the commas outside parentheses.
fn split_terms(selector: &str) -> Result<Vec<&str>, &'static str> {
    let mut terms = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in selector.char_indices() {
        match c {
            '(' if depth > 0 => return Err("nested parentheses"),
            '(' => depth = 1,
            ')' if depth == 0 => return Err("unbalanced ')'"),
            ')' => depth = 0,
            ',' if depth == 0 => {
                terms.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth > 0 {
        return Err("unbalanced '('");
    }
    terms.push(&selector[start..]);
    Ok(terms)
}

/// One term, converted and validated.
fn selector_term(term: &str) -> Result<String, String> {
    if let Some(open) = term.find('(') {
        return set_term(term, open);
    }
    if let Some(key) = term.strip_prefix('!') {
        let key = checked_key(key.trim())?;
        return Ok(format!("!{key}"));
    }
    let Some(at) = term.find(['!', '=', ':', '<', '>']) else {
        return Ok(checked_key(term)?.to_string());
    };
    let key = checked_key(term[..at].trim())?;
    let after = &term[at..];
    let (op, value) = ["!=", "==", "=", ":", "<", ">"]
        .into_iter()
        .find_map(|op| after.strip_prefix(op).map(|v| (op, v.trim())))
        .ok_or_else(|| format!("unknown operator in {after:?}"))?;
    match (op, value) {
        // Stakater's wildcard: the key exists.
        ("=" | "==" | ":", "*") => Ok(key.to_string()),
        ("!=", "*") => Err(format!("\"!=*\" is not supported; use \"!{key}\"")),
        ("<" | ">", _) => {
            value
                .parse::<i64>()
                .map_err(|_| format!("{op} needs an integer, not {value:?}"))?;
            Ok(format!("{key}{op}{value}"))
        }
        _ => {
            check_label_value(value)?;
            // Legacy `k:v` means `k=v`.
            let op = if op == ":" { "=" } else { op };
            Ok(format!("{key}{op}{value}"))
        }
    }
}

/// `key in (a,b)` / `key notin (a,b)`, passed through unchanged once validated.
fn set_term(term: &str, open: usize) -> Result<String, String> {
    let values = term[open + 1..].strip_suffix(')').ok_or("text after ')'")?;
    let head = term[..open].trim_end();
    let (key, op) = head
        .rsplit_once(char::is_whitespace)
        .ok_or("expected \"key in (…)\" or \"key notin (…)\"")?;
    if op != "in" && op != "notin" {
        return Err(format!("unknown set operator {op:?} (use in or notin)"));
    }
    checked_key(key.trim())?;
    let values: Vec<&str> = values.split(',').map(str::trim).collect();
    if values.iter().all(|v| v.is_empty()) {
        return Err(format!("{op} needs at least one value"));
    }
    for value in values {
        check_label_value(value)?;
    }
    Ok(term.to_string())
}

fn checked_key(key: &str) -> Result<&str, String> {
    if key.is_empty() {
        return Err("empty key".into());
    }
    check_qualified_name(key)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use clap::CommandFactory;

    use super::*;

    fn cli(args: &[&str]) -> Cli {
        let mut argv = vec!["reloader"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: BTreeMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |key| map.get(key).cloned()
    }

    fn settings_env(args: &[&str], vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::from_cli(cli(args), env_of(vars))
    }

    fn settings(args: &[&str]) -> Settings {
        settings_env(args, &[]).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    fn error(args: &[&str]) -> ConfigError {
        match settings_env(args, &[]) {
            Err(e) => e,
            Ok(s) => panic!("{args:?} was accepted: {s:?}"),
        }
    }

    fn set<T: Ord + Clone>(items: &[T]) -> BTreeSet<T> {
        items.iter().cloned().collect()
    }

    #[test]
    fn defaults_equal_stakater() {
        let c = cli(&[]);
        assert!(!c.auto_reload_all && !c.sync_after_restart && !c.enable_ha);
        assert!(!c.enable_pprof && !c.enable_csi_integration);
        assert_eq!(c.reload_on_create, "false");
        assert_eq!(c.reload_on_delete, "false");
        assert_eq!(c.is_argo_rollouts, "false");
        assert_eq!(c.log_format, "");
        assert_eq!(c.log_level, "info");
        assert_eq!(c.pprof_addr, ":6060");
        assert_eq!(c.webhook_url, "");
        assert!(c.resources_to_ignore.is_empty() && c.namespaces.is_empty());

        let s = Settings::from_cli(c, env_of(&[])).unwrap();
        assert_eq!(s.annotation_keys, AnnotationKeys::default());
        // The one deliberate difference: docs/compatibility.md #1.
        assert_eq!(s.strategy, ReloadStrategy::Annotations);
        assert!(!s.auto_reload_all && !s.reload_on_create && !s.reload_on_delete);
        assert!(!s.sync_after_restart && !s.argo_rollouts && !s.csi_integration && !s.ha());
        assert!(s.ignored_source_kinds.is_empty() && s.ignored_workload_kinds.is_empty());
        assert_eq!(s.watch_scope, WatchScope::All);
        assert!(s.namespaces_to_ignore.is_empty());
        assert_eq!(s.namespace_selector, None);
        assert_eq!(s.resource_label_selector, None);
        assert_eq!(s.webhook_url, None);
        assert_eq!(s.log_format, LogFormat::Text);
        assert_eq!(s.log_level, LogLevel::Info);
        assert_eq!(s.http_addr, "0.0.0.0:9090".parse().unwrap());
        assert_eq!(s.reload_window, Duration::from_secs(2));
        assert_eq!(
            s.rate_limits,
            RateLimits {
                per_second: 10.0,
                per_namespace_per_second: 5.0,
                burst: 50
            }
        );
        assert_eq!(s.workers, 4);
        assert_eq!(s.field_manager, "reloader");
        assert_eq!(s.kubeconfig, None);
        assert_eq!(s.admission, None, "the webhook is opt-in");
        assert!(!s.metrics_by_namespace);
        assert_eq!(s.alerts, None);
        assert_eq!(s.reloader_namespace, None);
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    }

    #[test]
    fn ha_lease_defaults_equal_stakater() {
        let s = settings_env(
            &["--enable-ha"],
            &[("POD_NAME", "reloader-0"), ("POD_NAMESPACE", "ops")],
        )
        .unwrap();
        assert_eq!(
            s.leader_election,
            Some(LeaderElection {
                lease_name: "stakater-reloader-lock".into(),
                lease_namespace: "ops".into(),
                identity: "reloader-0".into(),
                lease_duration: Duration::from_secs(15),
                renew_deadline: Duration::from_secs(10),
                retry_period: Duration::from_secs(2),
            })
        );
    }

    #[test]
    fn every_rename_flag_lands_in_annotation_keys() {
        let s = settings(&[
            "--configmap-annotation=x.io/cm",
            "--secret-annotation=x.io/secret",
            "--auto-annotation=x.io/auto",
            "--configmap-auto-annotation=x.io/cm-auto",
            "--secret-auto-annotation=x.io/secret-auto",
            "--auto-search-annotation=x.io/search",
            "--search-match-annotation=x.io/match",
            "--ignore-annotation=x.io/ignore",
            "--pause-deployment-annotation",
            "x.io/pause",
            "--pause-deployment-time-annotation",
            "x.io/paused-at",
        ]);
        assert_eq!(
            s.annotation_keys,
            AnnotationKeys {
                auto: "x.io/auto".into(),
                configmap_auto: "x.io/cm-auto".into(),
                secret_auto: "x.io/secret-auto".into(),
                configmap_reload: "x.io/cm".into(),
                secret_reload: "x.io/secret".into(),
                search: "x.io/search".into(),
                match_: "x.io/match".into(),
                ignore: "x.io/ignore".into(),
                pause_period: "x.io/pause".into(),
                paused_at: "x.io/paused-at".into(),
            }
        );
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        assert_eq!(s.decision_options().keys, s.annotation_keys);
        // An impossible key is accepted, as Stakater does, with a warning naming the flag.
        let s = settings(&["--auto-annotation=bad key"]);
        assert_eq!(s.annotation_keys.auto, "bad key");
        assert!(s.warnings[0].starts_with("--auto-annotation"), "{:?}", s.warnings);
    }

    #[test]
    fn bool_flags_take_go_bools_like_pflag() {
        assert!(settings(&["--auto-reload-all"]).auto_reload_all);
        assert!(settings(&["--auto-reload-all=true"]).auto_reload_all);
        assert!(settings(&["--auto-reload-all=1"]).auto_reload_all);
        assert!(!settings(&["--auto-reload-all=false"]).auto_reload_all);
        // Repeats: the last one wins, as in pflag.
        assert!(!settings(&["--auto-reload-all", "--auto-reload-all=F"]).auto_reload_all);
        assert!(settings(&["--enable-csi-integration=true"]).csi_integration);
        assert!(settings(&["--sync-after-restart=True"]).sync_after_restart);
        assert!(Cli::try_parse_from(["reloader", "--auto-reload-all=yes"]).is_err());
        // A bool takes its value only after `=`, as in pflag; a separate word is not a value.
        assert!(Cli::try_parse_from(["reloader", "--enable-ha", "true"]).is_err());
        // Repeated string flags: the last one wins too.
        assert_eq!(
            settings(&["--log-level=debug", "--log-level=error"]).log_level,
            LogLevel::Error
        );
    }

    #[test]
    fn string_switches_compare_with_exact_true() {
        let s = settings(&[
            "--reload-on-create=true",
            "--reload-on-delete",
            "true",
            "--is-Argo-Rollouts=true",
        ]);
        assert!(s.reload_on_create && s.reload_on_delete && s.argo_rollouts);
        assert_eq!(
            s.plan_options(),
            PlanOptions {
                strategy: ReloadStrategy::Annotations,
                reload_on_create: true,
                reload_on_delete: true,
                notify_only: false,
            }
        );
        let s = settings(&["--reload-on-create=True", "--is-Argo-Rollouts=1"]);
        assert!(!s.reload_on_create && !s.argo_rollouts);
        assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
        assert!(s.warnings[0].starts_with("--reload-on-create"));
        assert!(s.warnings[1].starts_with("--is-Argo-Rollouts"));
    }

    #[test]
    fn strategies() {
        assert_eq!(
            settings(&["--reload-strategy=env-vars"]).strategy,
            ReloadStrategy::EnvVars
        );
        assert_eq!(
            settings(&["--reload-strategy=annotations"]).strategy,
            ReloadStrategy::Annotations
        );
        for bad in ["default", "Env-Vars", "restart", ""] {
            let e = error(&[&format!("--reload-strategy={bad}")]);
            assert_eq!(e, ConfigError::ReloadStrategy { value: bad.into() });
            assert!(e.to_string().starts_with("--reload-strategy"), "{e}");
        }
    }

    #[test]
    fn resources_to_ignore() {
        assert_eq!(
            settings(&["--resources-to-ignore=configMaps"]).ignored_source_kinds,
            set(&[SourceKind::ConfigMap])
        );
        assert_eq!(
            settings(&["--resources-to-ignore=SECRETS,secrets"]).ignored_source_kinds,
            set(&[SourceKind::Secret])
        );
        let both = error(&["--resources-to-ignore=configmaps,secrets"]);
        assert_eq!(both, ConfigError::BothResourcesIgnored);
        assert!(both.to_string().contains("--resources-to-ignore"));
        assert_eq!(
            error(&["--resources-to-ignore=secrets", "--resources-to-ignore=configmaps"]),
            ConfigError::BothResourcesIgnored
        );
        let unknown = error(&["--resources-to-ignore=deployments"]);
        assert!(unknown.to_string().starts_with("--resources-to-ignore"));
    }

    #[test]
    fn ignored_workload_types() {
        assert_eq!(
            settings(&["--ignored-workload-types=jobs,cronjobs"]).ignored_workload_kinds,
            set(&[WorkloadKind::Job, WorkloadKind::CronJob])
        );
        assert_eq!(
            settings(&["--ignored-workload-types=jobs"]).ignored_workload_kinds,
            set(&[WorkloadKind::Job])
        );
        let e = error(&["--ignored-workload-types=jobs,deployments"]);
        assert_eq!(
            e,
            ConfigError::WorkloadType {
                value: "deployments".into()
            }
        );
        assert!(e.to_string().starts_with("--ignored-workload-types"), "{e}");
    }

    #[test]
    fn ha_needs_pod_name_and_namespace() {
        for vars in [
            &[("POD_NAMESPACE", "ops")][..],
            &[("POD_NAME", ""), ("POD_NAMESPACE", "ops")][..],
        ] {
            let e = settings_env(&["--enable-ha=true"], vars).unwrap_err();
            assert_eq!(e, ConfigError::HaEnvMissing { var: "POD_NAME" });
            assert!(e.to_string().contains("--enable-ha") && e.to_string().contains("POD_NAME"));
        }
        let e = settings_env(&["--enable-ha"], &[("POD_NAME", "r-0")]).unwrap_err();
        assert_eq!(e, ConfigError::HaEnvMissing { var: "POD_NAMESPACE" });
        // Without HA the variables are optional and merely recorded.
        let s = settings_env(&[], &[("POD_NAME", "r-0")]).unwrap();
        assert_eq!(s.pod_name.as_deref(), Some("r-0"));
        assert!(!s.ha());
        let s = settings_env(
            &["--enable-ha", "--lease-name=my-lock", "--lease-duration=30s"],
            &[("POD_NAME", "r-0"), ("POD_NAMESPACE", "ops")],
        )
        .unwrap();
        let le = s.leader_election.unwrap();
        assert_eq!(le.lease_name, "my-lock");
        assert_eq!(le.renew_deadline, Duration::from_secs(20));
        assert_eq!(le.retry_period, Duration::from_secs(4));
    }

    #[test]
    fn selector_conversion_table() {
        let table = [
            (&["env=test"][..], "env=test"),
            (&["env:test"], "env=test"),
            (&["team:*"], "team"),
            (&["team=*"], "team"),
            (&["team==*"], "team"),
            (&["a=b,c:*"], "a=b,c"),
            (&["tier in (a,b)"], "tier in (a,b)"),
            (&["tier notin (a, b),x!=y"], "tier notin (a,b),x!=y"),
            (
                &["!legacy", "app.kubernetes.io/name=web"],
                "!legacy,app.kubernetes.io/name=web",
            ),
            (&["a=b", "c"], "a=b,c"),
            (&["a=b,c", "d:e", "f in (g)"], "a=b,c,d=e,f in (g)"),
            (&[" a = b , c : * "], "a=b,c"),
            (&["env="], "env="),
            (&["gen>3,gen<9"], "gen>3,gen<9"),
            // The Helm chart quotes the whole value: a Go CSV quoted field.
            (&["\"a=b,c:*\""], "a=b,c"),
        ];
        for (flags, want) in table {
            for flag in ["--namespace-selector", "--resource-label-selector"] {
                let args: Vec<String> = flags.iter().map(|v| format!("{flag}={v}")).collect();
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let s = settings(&args);
                let got = if flag == "--namespace-selector" {
                    s.namespace_selector
                } else {
                    s.resource_label_selector
                };
                assert_eq!(got.as_deref(), Some(want), "{flag} {flags:?}");
            }
        }
        assert_eq!(settings(&["--resource-label-selector="]).resource_label_selector, None);
    }

    #[test]
    fn bad_selectors_name_the_flag() {
        for bad in [
            "=v",
            ":v",
            ":*",
            "!",
            "a=b=c",
            "a!=*",
            "tier in ()",
            "tier in (a",
            "tier (a)",
            "tier within (a)",
            "a>b",
            "Bad Key=1",
            "k=v w",
            "k=\"v\"x",
        ] {
            let e = error(&[&format!("--resource-label-selector={bad}")]);
            assert!(e.to_string().starts_with("--resource-label-selector"), "{bad:?}: {e}");
        }
        match error(&["--namespace-selector==v"]) {
            ConfigError::Selector { flag, reason, .. } => {
                assert_eq!(flag, "--namespace-selector");
                assert_eq!(reason, "empty key");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn namespace_scope_precedence() {
        let ns = |names: &[&str]| WatchScope::Namespaces(names.iter().map(|n| n.to_string()).collect());
        // --namespaces first, repeated and comma-separated...
        let s = settings_env(
            &["--namespaces=b,a", "--namespaces", "c"],
            &[("KUBERNETES_NAMESPACE", "k")],
        )
        .unwrap();
        assert_eq!(s.watch_scope, ns(&["a", "b", "c"]));
        assert!(s.watch_scope.contains("a") && !s.watch_scope.contains("k"));
        // ...then KUBERNETES_NAMESPACE...
        let s = settings_env(&[], &[("KUBERNETES_NAMESPACE", "k")]).unwrap();
        assert_eq!(s.watch_scope, ns(&["k"]));
        // ...then everything (an empty value is unset).
        let s = settings_env(&["--namespaces="], &[("KUBERNETES_NAMESPACE", "")]).unwrap();
        assert_eq!(s.watch_scope, WatchScope::All);
        assert!(s.watch_scope.contains("anything"));

        let e = error(&["--namespaces=Prod"]);
        assert!(e.to_string().starts_with("--namespaces"), "{e}");
        let e = settings_env(&[], &[("KUBERNETES_NAMESPACE", "a_b")]).unwrap_err();
        assert!(e.to_string().starts_with("KUBERNETES_NAMESPACE"), "{e}");
    }

    #[test]
    fn namespace_filters_only_in_global_mode() {
        let args = [
            "--namespaces-to-ignore=kube-system,kube-public",
            "--namespace-selector=team:*",
        ];
        let s = settings(&args);
        assert_eq!(
            s.namespaces_to_ignore,
            set(&["kube-public".to_string(), "kube-system".to_string()])
        );
        assert_eq!(s.namespace_selector.as_deref(), Some("team"));

        let s = settings_env(&args, &[("KUBERNETES_NAMESPACE", "apps")]).unwrap();
        assert!(s.namespaces_to_ignore.is_empty());
        assert_eq!(s.namespace_selector, None);
        assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
    }

    #[test]
    fn list_flags_parse_like_pflag_string_slices() {
        let items = |v: &[&str]| {
            let v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
            list_items("--x", &v)
        };
        assert_eq!(items(&["a,b", "c"]).unwrap(), ["a", "b", "c"]);
        assert_eq!(items(&["", " a , ,b "]).unwrap(), ["a", "b"]);
        assert_eq!(items(&["\"a,b\",c"]).unwrap(), ["a,b", "c"]);
        assert_eq!(items(&["\"say \"\"hi\"\"\""]).unwrap(), ["say \"hi\""]);
        for bad in ["a\"b", "\"open", "\"a\"b"] {
            let e = items(&[bad]).unwrap_err();
            assert!(e.to_string().starts_with("--x: "), "{bad:?}: {e}");
        }
    }

    #[test]
    fn alert_sinks() {
        let cases = [
            ("slack", AlertSink::Slack),
            (" Slack ", AlertSink::Slack),
            ("TEAMS", AlertSink::Teams),
            ("gchat", AlertSink::GChat),
            ("webhook", AlertSink::Raw),
            ("", AlertSink::Raw),
            ("google-chat", AlertSink::Raw),
        ];
        for (value, sink) in cases {
            assert_eq!(AlertSink::parse(value), sink, "{value:?}");
        }
    }

    #[test]
    fn alerts_only_when_alert_on_reload_is_exactly_true() {
        let url = ("ALERT_WEBHOOK_URL", " https://hooks.example/x ");
        for on in ["True", "1", "yes", ""] {
            let s = settings_env(&[], &[("ALERT_ON_RELOAD", on), url]).unwrap();
            assert_eq!(s.alerts, None, "{on:?}");
        }
        let s = settings_env(&[], &[("ALERT_ON_RELOAD", "true"), url]).unwrap();
        assert_eq!(
            s.alerts,
            Some(AlertSettings {
                sink: AlertSink::Raw,
                webhook_url: "https://hooks.example/x".into(),
                proxy: None,
                additional_info: None,
            })
        );
        let s = settings_env(
            &[],
            &[
                ("ALERT_ON_RELOAD", "true"),
                ("ALERT_SINK", "Teams"),
                url,
                ("ALERT_WEBHOOK_PROXY", "http://proxy:3128"),
                ("ALERT_ADDITIONAL_INFO", " cluster-a "),
            ],
        )
        .unwrap();
        let alerts = s.alerts.unwrap();
        assert_eq!(alerts.sink, AlertSink::Teams);
        assert_eq!(alerts.proxy.as_deref(), Some("http://proxy:3128"));
        assert_eq!(alerts.additional_info.as_deref(), Some("cluster-a"));
        // On without a URL: a warning, no alerts.
        let s = settings_env(&[], &[("ALERT_ON_RELOAD", "true")]).unwrap();
        assert_eq!(s.alerts, None);
        assert!(s.warnings[0].contains("ALERT_WEBHOOK_URL"));
    }

    #[test]
    fn meta_info_and_metrics_env() {
        let s = settings_env(
            &[],
            &[
                ("RELOADER_NAMESPACE", "ops"),
                ("RELOADER_DEPLOYMENT_NAME", "reloader"),
                ("METRICS_COUNT_BY_NAMESPACE", "enabled"),
            ],
        )
        .unwrap();
        assert_eq!(s.reloader_namespace.as_deref(), Some("ops"));
        assert_eq!(s.reloader_deployment_name.as_deref(), Some("reloader"));
        assert!(s.metrics_by_namespace);
        let s = settings_env(&[], &[("METRICS_COUNT_BY_NAMESPACE", "true")]).unwrap();
        assert!(!s.metrics_by_namespace);
    }

    #[test]
    fn logging() {
        let s = settings(&["--log-format=json", "--log-level=WARNING"]);
        assert_eq!((s.log_format, s.log_level), (LogFormat::Json, LogLevel::Warn));
        assert_eq!(s.log_level.filter_directive(), "warn");
        assert_eq!(settings(&["--log-level=panic"]).log_level.filter_directive(), "error");
        // Stakater only warns about bad values; so do we.
        let s = settings(&["--log-format=xml", "--log-level=loud"]);
        assert_eq!((s.log_format, s.log_level), (LogFormat::Text, LogLevel::Info));
        assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
    }

    #[test]
    fn pprof_and_webhook_url_are_accepted() {
        let s = settings(&[
            "--enable-pprof",
            "--pprof-addr=:7070",
            "--webhook-url",
            "https://example.com/hook",
        ]);
        assert_eq!(s.webhook_url.as_deref(), Some("https://example.com/hook"));
        assert!(s.warnings[0].contains("pprof") && s.warnings[0].contains(":7070"));
    }

    #[test]
    fn our_flags() {
        let s = settings(&[
            "--http-addr=127.0.0.1:8080",
            "--reload-window=500ms",
            "--max-reloads-per-second=2.5",
            "--max-reloads-per-second-per-namespace=1",
            "--burst=7",
            "--workers=1",
            "--field-manager=me",
            "--kubeconfig=/tmp/kc",
        ]);
        assert_eq!(s.http_addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(s.reload_window, Duration::from_millis(500));
        assert_eq!(
            s.rate_limits,
            RateLimits {
                per_second: 2.5,
                per_namespace_per_second: 1.0,
                burst: 7
            }
        );
        assert_eq!(s.workers, 1);
        assert_eq!(s.field_manager, "me");
        assert_eq!(s.kubeconfig, Some(PathBuf::from("/tmp/kc")));
        assert_eq!(settings(&["--http-addr=:9091"]).http_addr.port(), 9091);
        assert_eq!(settings(&["--reload-window=0"]).reload_window, Duration::ZERO);

        for (bad, flag) in [
            ("--http-addr=localhost", "--http-addr"),
            ("--reload-window=2", "--reload-window"),
            ("--max-reloads-per-second=0", "--max-reloads-per-second"),
            ("--max-reloads-per-second=NaN", "--max-reloads-per-second"),
            (
                "--max-reloads-per-second-per-namespace=-1",
                "--max-reloads-per-second-per-namespace",
            ),
            ("--burst=0", "--burst"),
            ("--workers=0", "--workers"),
            ("--field-manager=", "--field-manager"),
            ("--lease-name=Not_A_Name", "--lease-name"),
            ("--lease-duration=100ms", "--lease-duration"),
        ] {
            let e = error(&[bad]);
            assert!(e.to_string().starts_with(flag), "{bad}: {e}");
        }
    }

    #[test]
    fn admission_settings_from_flags() {
        let s = settings(&[
            "--admission-addr=127.0.0.1:9443",
            "--admission-url=https://127.0.0.1:9443/",
            "--admission-cert-lifetime=10s",
        ]);
        let a = s.admission.expect("enabled");
        assert_eq!(a.addr.to_string(), "127.0.0.1:9443");
        assert_eq!(
            a.endpoint,
            AdmissionEndpoint::Url {
                url: "https://127.0.0.1:9443".into(),
                host: "127.0.0.1".into()
            }
        );
        assert_eq!(a.namespace, "default");
        assert_eq!(a.self_user, None, "asked of the API server at start");
        assert!(
            matches!(a.certs, CertSource::Managed { cert_lifetime, .. } if cert_lifetime == Duration::from_secs(10))
        );
        let e = error(&["--admission-addr=127.0.0.1:9443", "--admission-url=http://x"]);
        assert!(e.to_string().starts_with("--admission-url"), "{e}");
        let files = settings(&["--admission-addr=:9443", "--tls-cert-file=/c", "--tls-key-file=/k"]);
        assert!(matches!(files.admission.unwrap().certs, CertSource::Files { .. }));
    }

    #[test]
    fn our_flags_read_reloader_env_vars() {
        let command = Cli::command();
        let ours = [
            "http-addr",
            "reload-window",
            "max-reloads-per-second",
            "max-reloads-per-second-per-namespace",
            "burst",
            "workers",
            "field-manager",
            "lease-name",
            "lease-duration",
            "kubeconfig",
            "admission-addr",
            "admission-url",
            "admission-service",
            "admission-namespace",
            "admission-secret",
            "admission-configuration",
            "tls-cert-file",
            "tls-key-file",
            "admission-cert-lifetime",
            "admission-ca-lifetime",
            "admission-cert-check",
            "admission-self-user",
        ];
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            let env = arg.get_env().and_then(|e| e.to_str());
            if ours.contains(&long) {
                let want = format!("RELOADER_{}", long.to_uppercase().replace('-', "_"));
                assert_eq!(env, Some(want.as_str()), "{long}");
            } else {
                // Stakater's flags have no environment variables.
                assert_eq!(env, None, "{long}");
            }
        }
    }

    #[test]
    fn feature_flags_shape_the_decision_options() {
        let o = settings(&[]).decision_options();
        assert!(o.ignored_source_kinds.contains(&SourceKind::SecretProviderClass));
        assert!(o.ignored_workload_kinds.contains(&WorkloadKind::Rollout));
        let o = settings(&[
            "--enable-csi-integration",
            "--is-Argo-Rollouts=true",
            "--auto-reload-all",
            "--resources-to-ignore=secrets",
            "--ignored-workload-types=cronjobs",
        ])
        .decision_options();
        assert!(o.auto_reload_all);
        assert_eq!(o.ignored_source_kinds, set(&[SourceKind::Secret]));
        assert_eq!(o.ignored_workload_kinds, set(&[WorkloadKind::CronJob]));
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
