//! [`Settings`]: the flags validated together with an explicit environment, plus the warnings
//! for what Stakater would only have logged.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::admission::{AdmissionSettings, NamespaceFilters, admission_settings};
use super::lists::list_items;
use super::selectors::label_selector;
use super::{Cli, ConfigError};
use crate::clock::{Clock, TEST_START_ENV};
use crate::core::dependencies::DependencyOptions;
use crate::core::names::{check_qualified_name, is_dns_label, is_dns_subdomain};
use crate::core::plan::{PlanOptions, ReloadStrategy};
use crate::core::source::SourceKind;
use crate::core::vocabulary::AnnotationKeys;
use crate::core::waves::WaveSizes;
use crate::core::window::ReloadWindow;
use crate::core::workload::WorkloadKind;
use crate::core::workload::extra::{self, ExtraKindError};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

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
    /// `--extra-workload-kinds`, registered ([`crate::core::workload::extra`]), in the flag's order.
    pub extra_workload_kinds: Vec<WorkloadKind>,
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
    /// `--webhook-url-per-workload`: our recorded per-workload announcements.
    pub webhook_url_per_workload: bool,
    /// `--per-key-reloads`: per-key reloads unless a workload's `reloader.stakater.com/per-key`
    /// says otherwise.
    pub per_key_reloads: bool,
    /// `--pod-restarts`: OnDelete workloads and `rollout-strategy: restart` restart their pods
    /// ([`crate::core::pod_restart`]).
    pub pod_restarts: bool,
    /// `--log-format`.
    pub log_format: LogFormat,
    /// `--log-level`.
    pub log_level: LogLevel,
    /// `--http-addr`.
    pub http_addr: SocketAddr,
    /// `--coalesce-window` (zero: no coalescing).
    pub coalesce_window: Duration,
    /// `--reload-window`: when rollouts may happen by default (docs/progressive.md).
    pub reload_window: Option<ReloadWindow>,
    /// `--rollout-waves`: the default waves.
    pub rollout_waves: Option<WaveSizes>,
    /// `--rollout-wave-deadline`.
    pub rollout_wave_deadline: Duration,
    /// The engine's clock: the system's, unless a test starts it elsewhere
    /// ([`crate::clock::TEST_START_ENV`]).
    pub clock: Clock,
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
    /// [`process_env`] in the binary, a map in tests). One area at a time, in this order (the
    /// order of the warnings, and which error is reported first).
    pub fn from_cli(cli: Cli, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut warnings = Vec::new();
        // Trimmed, and empty counts as unset.
        let var = |key: &str| env(key).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let pod_name = var("POD_NAME");
        let pod_namespace = var("POD_NAMESPACE");
        let reloader_namespace = var("RELOADER_NAMESPACE");

        let annotation_keys = annotation_keys(&cli, &mut warnings);
        let reloads = reloads(&cli, &mut warnings)?;
        let extra_workload_kinds = extra_workload_kinds(&cli)?;
        let scope = scope(&cli, var("KUBERNETES_NAMESPACE"), &mut warnings)?;
        let (log_format, log_level) = logging(&cli, &mut warnings);
        let pacing = pacing(&cli)?;
        let clock = clock(&var, &mut warnings)?;
        let leader_election = leader_election(&cli, pod_name.as_deref(), pod_namespace.as_deref())?;
        let alerts = alerts(&env, &var, &mut warnings);
        let admission = admission_settings(
            &cli.admission,
            pod_namespace.as_deref(),
            reloader_namespace.as_deref(),
            NamespaceFilters {
                scope: &scope.watch_scope,
                ignored: &scope.namespaces_to_ignore,
                selector: scope.namespace_selector.as_deref(),
                extra_kinds: &extra_workload_kinds,
            },
        )?;

        Ok(Settings {
            annotation_keys,
            auto_reload_all: cli.auto_reload_all,
            strategy: reloads.strategy,
            reload_on_create: reloads.reload_on_create,
            reload_on_delete: reloads.reload_on_delete,
            sync_after_restart: cli.sync_after_restart,
            ignored_source_kinds: reloads.ignored_source_kinds,
            ignored_workload_kinds: reloads.ignored_workload_kinds,
            argo_rollouts: reloads.argo_rollouts,
            extra_workload_kinds,
            csi_integration: cli.enable_csi_integration,
            watch_scope: scope.watch_scope,
            namespaces_to_ignore: scope.namespaces_to_ignore,
            namespace_selector: scope.namespace_selector,
            resource_label_selector: scope.resource_label_selector,
            webhook_url: reloads.webhook_url,
            webhook_url_per_workload: cli.webhook_url_per_workload,
            per_key_reloads: cli.per_key_reloads,
            pod_restarts: cli.pod_restarts,
            log_format,
            log_level,
            http_addr: cli.http_addr,
            coalesce_window: cli.coalesce_window,
            reload_window: cli.reload_window,
            rollout_waves: cli.rollout_waves,
            rollout_wave_deadline: cli.rollout_wave_deadline,
            clock,
            rate_limits: pacing.rate_limits,
            workers: pacing.workers,
            field_manager: pacing.field_manager,
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

    /// The dependency options. Kinds switched off by a feature flag count as ignored, so the
    /// decision never depends on what is not watched: SecretProviderClasses without
    /// `--enable-csi-integration`, Argo Rollouts without `--is-Argo-Rollouts=true` (Stakater
    /// neither watches nor rolls them then).
    pub fn dependency_options(&self) -> DependencyOptions {
        DependencyOptions {
            annotations: self.annotation_keys.clone(),
            auto_reload_all: self.auto_reload_all,
            ignored_workload_kinds: WorkloadKind::ALL
                .into_iter()
                .filter(|k| self.workload_kind_excluded_by(*k).is_some())
                .collect(),
            ignored_source_kinds: SourceKind::ALL
                .into_iter()
                .filter(|k| self.source_kind_excluded_by(*k).is_some())
                .collect(),
            per_key_reloads: self.per_key_reloads,
        }
    }

    /// The flag that keeps the reloader from rolling workloads of `kind`, if one does.
    pub fn workload_kind_excluded_by(&self, kind: WorkloadKind) -> Option<String> {
        if self.ignored_workload_kinds.contains(&kind) {
            return Some(format!(
                "--ignored-workload-types={}",
                kind.ignore_name().unwrap_or_default()
            ));
        }
        (kind == WorkloadKind::Rollout && !self.argo_rollouts).then(|| "--is-Argo-Rollouts is not \"true\"".to_string())
    }

    /// The flag that keeps the reloader from reloading on sources of `kind`, if one does.
    pub fn source_kind_excluded_by(&self, kind: SourceKind) -> Option<String> {
        if self.ignored_source_kinds.contains(&kind) {
            let name = match kind {
                SourceKind::ConfigMap => "configmaps",
                SourceKind::Secret => "secrets",
                SourceKind::SecretProviderClass => "secretproviderclasses",
            };
            return Some(format!("--resources-to-ignore={name}"));
        }
        (kind == SourceKind::SecretProviderClass && !self.csi_integration)
            .then(|| "--enable-csi-integration is not set".to_string())
    }

    /// The namespace of the stamp key Secret: the webhook's namespace, else `POD_NAMESPACE`,
    /// else `RELOADER_NAMESPACE`. `None` when none is known, and under the env-vars strategy
    /// without the webhook: its template stamps are Stakater's plain SHA-1, and only the
    /// webhook's records (on the workload metadata) are keyed under it.
    pub fn stamp_key_namespace(&self) -> Option<String> {
        if self.strategy != ReloadStrategy::Annotations && self.admission.is_none() {
            return None;
        }
        self.admission
            .as_ref()
            .map(|a| a.namespace.clone())
            .or_else(|| self.pod_namespace.clone())
            .or_else(|| self.reloader_namespace.clone())
    }

    pub fn plan_options(&self) -> PlanOptions {
        PlanOptions {
            strategy: self.strategy,
            reload_on_create: self.reload_on_create,
            reload_on_delete: self.reload_on_delete,
            notify_only: self.webhook_url.is_some() && self.webhook_url_per_workload,
            pod_restarts: self.pod_restarts,
        }
    }
}

/// `--extra-workload-kinds`, every occurrence, registered: each kind once, in order; the same
/// kind with another version or template path is an error.
fn extra_workload_kinds(cli: &Cli) -> Result<Vec<WorkloadKind>, ConfigError> {
    const FLAG: &str = "--extra-workload-kinds";
    let mut kinds: Vec<WorkloadKind> = Vec::new();
    for spec in cli.extra_workload_kinds.iter().flat_map(|list| &list.0) {
        let kind = extra::register(spec).map_err(|error| ConfigError::List {
            flag: FLAG,
            reason: error.to_string(),
        })?;
        if !kinds.contains(&WorkloadKind::Extra(kind)) {
            kinds.push(WorkloadKind::Extra(kind));
        }
    }
    if kinds.len() > extra::MAX_EXTRA_KINDS {
        return Err(ConfigError::List {
            flag: FLAG,
            reason: ExtraKindError::TooMany.to_string(),
        });
    }
    Ok(kinds)
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

/// What reloads and how: the strategy, Stakater's string switches, the kinds ignored, and
/// `--webhook-url` (announce instead of rolling).
struct Reloads {
    strategy: ReloadStrategy,
    reload_on_create: bool,
    reload_on_delete: bool,
    argo_rollouts: bool,
    ignored_source_kinds: BTreeSet<SourceKind>,
    ignored_workload_kinds: BTreeSet<WorkloadKind>,
    webhook_url: Option<String>,
}

fn reloads(cli: &Cli, warnings: &mut Vec<String>) -> Result<Reloads, ConfigError> {
    let strategy = ReloadStrategy::from_flag(&cli.reload_strategy).ok_or_else(|| ConfigError::ReloadStrategy {
        value: cli.reload_strategy.clone(),
    })?;
    let reload_on_create = exact_true("--reload-on-create", &cli.reload_on_create, warnings);
    let reload_on_delete = exact_true("--reload-on-delete", &cli.reload_on_delete, warnings);
    let argo_rollouts = exact_true("--is-Argo-Rollouts", &cli.is_argo_rollouts, warnings);
    Ok(Reloads {
        strategy,
        reload_on_create,
        reload_on_delete,
        argo_rollouts,
        ignored_source_kinds: ignored_source_kinds(&cli.resources_to_ignore)?,
        ignored_workload_kinds: ignored_workload_kinds(&cli.ignored_workload_types)?,
        webhook_url: Some(cli.webhook_url.trim().to_string()).filter(|u| !u.is_empty()),
    })
}

/// Which namespaces and sources are watched.
struct Scope {
    watch_scope: WatchScope,
    namespaces_to_ignore: BTreeSet<String>,
    namespace_selector: Option<String>,
    resource_label_selector: Option<String>,
}

/// The namespace filters are honoured only when watching all namespaces, as in Stakater:
/// otherwise dropped, with a warning.
fn scope(cli: &Cli, kubernetes_namespace: Option<String>, warnings: &mut Vec<String>) -> Result<Scope, ConfigError> {
    let watch_scope = watch_scope(&cli.namespaces, kubernetes_namespace)?;
    let mut namespaces_to_ignore: BTreeSet<String> = list_items("--namespaces-to-ignore", &cli.namespaces_to_ignore)?
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
    Ok(Scope {
        watch_scope,
        namespaces_to_ignore,
        namespace_selector,
        resource_label_selector: label_selector("--resource-label-selector", &cli.resource_label_selector)?,
    })
}

/// The log format and level, each falling back with a warning; `--enable-pprof` only warns.
fn logging(cli: &Cli, warnings: &mut Vec<String>) -> (LogFormat, LogLevel) {
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
    (log_format, log_level)
}

/// How the engine paces and writes.
struct Pacing {
    rate_limits: RateLimits,
    workers: usize,
    field_manager: String,
}

/// The engine's clock, started elsewhere only by a test; said loudly when it is.
fn clock(var: &impl Fn(&str) -> Option<String>, warnings: &mut Vec<String>) -> Result<Clock, ConfigError> {
    let Some(start) = var(TEST_START_ENV) else {
        return Ok(Clock::system());
    };
    let start = OffsetDateTime::parse(&start, &Rfc3339).map_err(|error| ConfigError::Value {
        flag: TEST_START_ENV,
        value: start.clone(),
        reason: format!("not an RFC 3339 time: {error}"),
    })?;
    warnings.push(format!(
        "{TEST_START_ENV} is set: the engine's clock started at {start} (for tests only)"
    ));
    Ok(Clock::starting_at(start))
}

fn pacing(cli: &Cli) -> Result<Pacing, ConfigError> {
    Ok(Pacing {
        rate_limits: RateLimits {
            per_second: rate("--max-reloads-per-second", cli.max_reloads_per_second)?,
            per_namespace_per_second: rate(
                "--max-reloads-per-second-per-namespace",
                cli.max_reloads_per_second_per_namespace,
            )?,
            burst: at_least_one("--burst", cli.burst)?,
        },
        workers: at_least_one("--workers", cli.workers)?,
        field_manager: field_manager(&cli.field_manager)?,
    })
}

/// `--enable-ha`'s Lease; the Lease flags are validated with or without it.
fn leader_election(
    cli: &Cli,
    pod_name: Option<&str>,
    pod_namespace: Option<&str>,
) -> Result<Option<LeaderElection>, ConfigError> {
    if !is_dns_subdomain(&cli.lease_name) {
        return Err(ConfigError::Value {
            flag: "--lease-name",
            value: cli.lease_name.clone(),
            reason: "a Lease name must be a lower-case RFC 1123 subdomain".into(),
        });
    }
    let lease_duration = cli.lease_duration;
    if lease_duration < Duration::from_secs(1) {
        return Err(ConfigError::Value {
            flag: "--lease-duration",
            value: format!("{lease_duration:?}"),
            reason: "must be at least 1s".into(),
        });
    }
    if !cli.enable_ha {
        return Ok(None);
    }
    let identity = pod_name.ok_or(ConfigError::HaEnvMissing { var: "POD_NAME" })?;
    let lease_namespace = pod_namespace.ok_or(ConfigError::HaEnvMissing { var: "POD_NAMESPACE" })?;
    Ok(Some(LeaderElection {
        lease_name: cli.lease_name.clone(),
        lease_namespace: lease_namespace.to_string(),
        identity: identity.to_string(),
        lease_duration,
        renew_deadline: lease_duration * 2 / 3,
        retry_period: lease_duration * 2 / 15,
    }))
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

#[cfg(test)]
mod tests {
    use super::super::testing::{cli, env_of, error, set, settings, settings_env};
    use super::*;

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
        assert_eq!(s.coalesce_window, Duration::from_secs(2));
        assert_eq!(s.reload_window, None);
        assert!(s.clock.is_system());
        assert_eq!(
            s.rate_limits,
            RateLimits {
                per_second: 10.0,
                per_namespace_per_second: 5.0,
                burst: 50
            }
        );
        assert_eq!(s.workers, 16);
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
        assert_eq!(s.dependency_options().annotations, s.annotation_keys);
        // An impossible key is accepted, as Stakater does, with a warning naming the flag.
        let s = settings(&["--auto-annotation=bad key"]);
        assert_eq!(s.annotation_keys.auto, "bad key");
        assert!(s.warnings[0].starts_with("--auto-annotation"), "{:?}", s.warnings);
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
                pod_restarts: true,
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
    fn extra_workload_kinds_are_registered_in_order_once_each() {
        let names = |s: &Settings| -> Vec<String> {
            s.extra_workload_kinds
                .iter()
                .map(|k| format!("{:?}", k.extra().unwrap()))
                .collect()
        };
        let s = settings(&[
            "--extra-workload-kinds=settings.test.io/v1/Web, settings.test.io/v1/Batch=spec.run.podTemplate",
            "--extra-workload-kinds=settings.test.io/v1/Web",
        ]);
        assert_eq!(names(&s), ["settings.test.io/v1/Web", "settings.test.io/v1/Batch"]);
        assert_eq!(s.extra_workload_kinds[1].template_pointer(), "/spec/run/podTemplate");
        assert_eq!(
            s.admission, None,
            "the webhook's settings carry them only when it is on"
        );
        let with_webhook = settings(&[
            "--admission-addr=:9443",
            "--extra-workload-kinds=settings.test.io/v1/Web",
        ]);
        assert_eq!(
            with_webhook.admission.unwrap().extra_kinds,
            &s.extra_workload_kinds[..1]
        );
        // Two occurrences naming one kind differently: refused, saying both.
        let e = error(&[
            "--extra-workload-kinds=settings.test.io/v1/Web",
            "--extra-workload-kinds=settings.test.io/v2/Web",
        ]);
        assert_eq!(
            e.to_string(),
            "--extra-workload-kinds: Web of settings.test.io is named twice, as \"settings.test.io/v1/Web\" and as \"settings.test.io/v2/Web\""
        );
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
            "--coalesce-window=500ms",
            "--max-reloads-per-second=2.5",
            "--max-reloads-per-second-per-namespace=1",
            "--burst=7",
            "--workers=1",
            "--field-manager=me",
            "--kubeconfig=/tmp/kc",
        ]);
        assert_eq!(s.http_addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(s.coalesce_window, Duration::from_millis(500));
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
        assert_eq!(settings(&["--coalesce-window=0"]).coalesce_window, Duration::ZERO);

        // Malformed addresses and durations are clap's errors (flags.rs); these are values.
        for (bad, flag) in [
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
    fn feature_flags_shape_the_decision_options() {
        let o = settings(&[]).dependency_options();
        assert!(o.ignored_source_kinds.contains(&SourceKind::SecretProviderClass));
        assert!(o.ignored_workload_kinds.contains(&WorkloadKind::Rollout));
        let o = settings(&[
            "--enable-csi-integration",
            "--is-Argo-Rollouts=true",
            "--auto-reload-all",
            "--resources-to-ignore=secrets",
            "--ignored-workload-types=cronjobs",
        ])
        .dependency_options();
        assert!(o.auto_reload_all);
        assert_eq!(o.ignored_source_kinds, set(&[SourceKind::Secret]));
        assert_eq!(o.ignored_workload_kinds, set(&[WorkloadKind::CronJob]));
    }
}
