//! The command line: [`Cli`] and its flattened [`AdmissionCli`], with the value parsers that
//! give each flag its syntax. Parsing here is only syntax (a malformed duration or address is
//! clap's error, whether it came from the flag or its environment variable); what the values
//! mean together is checked by [`Settings::from_cli`](super::Settings::from_cli).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Arg, ArgAction, Parser};

use crate::core::vocabulary::{defaults, parse_go_bool, parse_go_duration};
use crate::core::waves::WaveSizes;
use crate::core::window::ReloadWindow;
use crate::core::workload::extra::{self, ExtraKindSpec};

/// Command-line flags: every flag of Stakater Reloader under its own name, type and default,
/// then ours. Validation happens in [`Settings::from_cli`](super::Settings::from_cli).
#[derive(Parser, Debug, Clone)]
#[command(
    name = "reloader",
    version,
    about = "Rolls Kubernetes workloads when the ConfigMaps, Secrets or CSI secrets they use change",
    after_help = "Tools (as the first argument; see their --help):\n  \
reloader lint PATH...      check manifests the way the validating webhook would\n  \
reloader explain KIND/NAME why a workload did or did not reload (also: kubectl reloader explain)",
    args_override_self = true
)]
pub struct Cli {
    /// Treat every workload as annotated `auto: "true"` unless it sets auto or typed auto.
    #[arg(long, pflag_bool())]
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
    #[arg(long, pflag_bool())]
    pub sync_after_restart: bool,

    /// Run with Lease leader election (needs POD_NAME and POD_NAMESPACE).
    #[arg(long, pflag_bool())]
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

    /// With `--webhook-url`: announce once per affected workload and record it on the workload
    /// (ours), instead of once per changed source with nothing written (Stakater's).
    #[arg(long, env = "RELOADER_WEBHOOK_URL_PER_WORKLOAD")]
    pub webhook_url_per_workload: bool,

    /// Per-key reloads for workloads whose `reloader.stakater.com/per-key` does not say: a
    /// workload is stamped with a hash of only the keys it reads of each ConfigMap and Secret
    /// (`configMapKeyRef`, `secretKeyRef`, volume `items`), so changes to other keys roll nothing.
    #[arg(long, env = "RELOADER_PER_KEY_RELOADS")]
    pub per_key_reloads: bool,

    /// Pod restarts: evict, one at a time, the pods of an `updateStrategy: OnDelete`
    /// StatefulSet or DaemonSet that still run the template before a reload, and of a
    /// Deployment, StatefulSet or DaemonSet annotated `reloader.stakater.com/rollout-strategy:
    /// restart` (whose template is then left alone). Needs `pods` list and `pods/eviction`
    /// create; `=false` without them.
    #[arg(long, env = "RELOADER_POD_RESTARTS", pflag_bool(), default_value = "true")]
    pub pod_restarts: bool,

    /// More kinds to roll like Deployments, any with a pod template: `GROUP/VERSION/KIND[=PATH]`,
    /// comma-separated, with PATH the dotted path of the pod template (default `spec.template`),
    /// e.g. "apps.kruise.io/v1alpha1/CloneSet,example.com/v1/App=spec.deploy.podTemplate".
    #[arg(
        long,
        env = "RELOADER_EXTRA_WORKLOAD_KINDS",
        value_name = "KINDS",
        value_parser = extra_workload_kinds,
        action = ArgAction::Append
    )]
    pub extra_workload_kinds: Vec<ExtraKinds>,

    /// Log format: empty for text, or `json`.
    #[arg(long, value_name = "FORMAT", default_value = "")]
    pub log_format: String,

    /// Log level: trace, debug, info, warning, error, fatal or panic.
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    pub log_level: String,

    /// Accepted for compatibility and ignored: pprof is a Go facility.
    #[arg(long, pflag_bool())]
    pub enable_pprof: bool,

    /// Accepted for compatibility and ignored: pprof is a Go facility.
    #[arg(long, value_name = "ADDR", default_value = ":6060")]
    pub pprof_addr: String,

    /// Watch SecretProviderClassPodStatuses of the Secrets Store CSI driver.
    #[arg(long, pflag_bool())]
    pub enable_csi_integration: bool,

    /// Listen address of the health and metrics server.
    #[arg(
        long,
        env = "RELOADER_HTTP_ADDR",
        value_name = "ADDR",
        value_parser = listen_addr,
        default_value = "0.0.0.0:9090"
    )]
    pub http_addr: SocketAddr,

    /// Changes to one workload's sources within this window roll it once (Go duration).
    #[arg(
        long,
        env = "RELOADER_COALESCE_WINDOW",
        value_name = "DURATION",
        value_parser = go_duration,
        default_value = "2s"
    )]
    pub coalesce_window: Duration,

    /// When rollouts may happen, for workloads whose own `reloader.stakater.com/reload-window`
    /// and Namespace name none: `[DAYS ]HH:MM-HH:MM[ TIMEZONE]`, `;`-separated (e.g.
    /// "Mon-Fri 02:00-04:00 Europe/Berlin"). Changes outside it are held until it opens.
    #[arg(long, env = "RELOADER_RELOAD_WINDOW", value_name = "WINDOW", value_parser = reload_window)]
    pub reload_window: Option<ReloadWindow>,

    /// Roll the dependents of a changed source in waves, each after the previous one is
    /// healthy, unless the source's `reloader.stakater.com/rollout-waves` says otherwise:
    /// cumulative sizes, counts or percentages (e.g. "1,10%,100%").
    #[arg(long, env = "RELOADER_ROLLOUT_WAVES", value_name = "SIZES", value_parser = wave_sizes)]
    pub rollout_waves: Option<WaveSizes>,

    /// How long a wave's workload may take to become healthy before the wave counts as
    /// failed, when the workload has no deadline of its own (a Deployment's
    /// `progressDeadlineSeconds`).
    #[arg(
        long,
        env = "RELOADER_ROLLOUT_WAVE_DEADLINE",
        value_name = "DURATION",
        value_parser = go_duration,
        default_value = "10m"
    )]
    pub rollout_wave_deadline: Duration,

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
    #[arg(long, env = "RELOADER_WORKERS", value_name = "N", default_value_t = 16)]
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
        value_parser = go_duration,
        default_value = "15s"
    )]
    pub lease_duration: Duration,

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
    #[arg(long, env = "RELOADER_ADMISSION_ADDR", value_name = "ADDR", value_parser = listen_addr)]
    pub admission_addr: Option<SocketAddr>,
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
        value_parser = go_duration,
        default_value = "2160h"
    )]
    pub admission_cert_lifetime: Duration,
    /// Lifetime of the managed CA; replaced (with an old+new caBundle overlap) when a third is left.
    #[arg(
        long,
        env = "RELOADER_ADMISSION_CA_LIFETIME",
        value_name = "DURATION",
        value_parser = go_duration,
        default_value = "87600h"
    )]
    pub admission_ca_lifetime: Duration,
    /// How often certificates are checked for renewal (and cert files for changes).
    #[arg(
        long,
        env = "RELOADER_ADMISSION_CERT_CHECK",
        value_name = "DURATION",
        value_parser = go_duration,
        default_value = "1m"
    )]
    pub admission_cert_check: Duration,
    /// Requests by this user are admitted unchanged [default: the identity the API server
    /// reports for the reloader (SelfSubjectReview)].
    #[arg(long, env = "RELOADER_ADMISSION_SELF_USER", value_name = "USER")]
    pub admission_self_user: Option<String>,
    /// failurePolicy of the validating webhook when the reloader creates it: `Ignore` (a down
    /// reloader blocks nothing) or `Fail` (typos are always refused, but a down reloader then
    /// blocks writes of objects with reloader annotations). A value set by hand on the live
    /// configuration is kept.
    #[arg(
        long,
        env = "RELOADER_ADMISSION_FAILURE_POLICY",
        value_name = "POLICY",
        value_parser = failure_policy,
        default_value = "Ignore"
    )]
    pub admission_failure_policy: FailurePolicy,
    /// ClusterRole of the install that owns the webhook configurations, so deleting the install
    /// garbage-collects them; empty, or a ClusterRole that does not exist, for no owner.
    #[arg(
        long,
        env = "RELOADER_ADMISSION_OWNER_CLUSTER_ROLE",
        value_name = "NAME",
        default_value = "reloader"
    )]
    pub admission_owner_cluster_role: String,
    /// Require callers of the webhook to present a client certificate signed by a CA in this
    /// PEM file (the API server's admission configuration gives it one); off when unset.
    #[arg(long, env = "RELOADER_ADMISSION_CLIENT_CA", value_name = "PATH")]
    pub admission_client_ca: Option<PathBuf>,
}

/// What the API server does when the webhook cannot be reached or does not answer in time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FailurePolicy {
    /// The request is admitted (fail open).
    #[default]
    Ignore,
    /// The request is refused (fail closed).
    Fail,
}

impl FailurePolicy {
    /// The value in a webhook configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            FailurePolicy::Ignore => "Ignore",
            FailurePolicy::Fail => "Fail",
        }
    }
}

/// `Fail` or `Ignore`, as Kubernetes spells them (any case).
fn failure_policy(value: &str) -> Result<FailurePolicy, String> {
    match value.to_ascii_lowercase().as_str() {
        "ignore" => Ok(FailurePolicy::Ignore),
        "fail" => Ok(FailurePolicy::Fail),
        _ => Err("must be Fail or Ignore".to_string()),
    }
}

/// Stakater's boolean flags, parsed as pflag parses them: `--flag` alone means true,
/// `--flag=VALUE` takes any spelling of Go's `strconv.ParseBool`, and a separate word is never
/// the value. Used as `#[arg(long, pflag_bool())]`: clap's derive calls any `Arg` method named in
/// the attribute, after the defaults it infers for a `bool` field, so these settings replace them.
trait PflagBool {
    fn pflag_bool(self) -> Self;
}

impl PflagBool for Arg {
    fn pflag_bool(self) -> Self {
        self.value_name("BOOL")
            .value_parser(go_bool)
            .num_args(0..=1)
            .require_equals(true)
            .default_value("false")
            .default_missing_value("true")
            .action(ArgAction::Set)
    }
}

/// Go's `strconv.ParseBool`, as pflag's bool flags use it.
fn go_bool(value: &str) -> Result<bool, String> {
    parse_go_bool(value).ok_or_else(|| format!("{value:?} is not a boolean (use true or false)"))
}

/// Go's `time.ParseDuration` syntax (`500ms`, `2s`, `1m30s`; `0` alone), not negative.
fn go_duration(value: &str) -> Result<Duration, String> {
    parse_go_duration("", value).map_err(|_| "not a duration (examples: 500ms, 2s, 1m30s)".to_string())
}

/// `--reload-window`: a reload window. It once took the coalescing window's duration: that is
/// refused with the flag's new name rather than misread.
fn reload_window(value: &str) -> Result<ReloadWindow, String> {
    if parse_go_duration("", value).is_ok() {
        return Err(
            "a duration: the window within which changes are coalesced is now --coalesce-window; \
             --reload-window names when rollouts may happen (e.g. \"Mon-Fri 02:00-04:00 Europe/Berlin\")"
                .to_string(),
        );
    }
    value.parse::<ReloadWindow>().map_err(|error| error.to_string())
}

/// One occurrence of `--extra-workload-kinds`: its kinds, each checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtraKinds(pub Vec<ExtraKindSpec>);

fn extra_workload_kinds(value: &str) -> Result<ExtraKinds, String> {
    extra::parse_list(value)
        .map(ExtraKinds)
        .map_err(|error| error.to_string())
}

fn wave_sizes(value: &str) -> Result<WaveSizes, String> {
    value.parse::<WaveSizes>().map_err(|error| error.to_string())
}

/// A listen address: `IP:PORT`, or Go's `:PORT` for every interface.
fn listen_addr(value: &str) -> Result<SocketAddr, String> {
    let parsed = match value.strip_prefix(':') {
        Some(port) => port
            .parse::<u16>()
            .map(|port| SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)))
            .map_err(|e| e.to_string()),
        None => value.parse::<SocketAddr>().map_err(|e| e.to_string()),
    };
    parsed.map_err(|reason| format!("{reason} (expected IP:PORT or :PORT)"))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::super::LogLevel;
    use super::super::testing::{cli, settings};
    use super::*;

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
    fn our_flags_read_reloader_env_vars() {
        let command = Cli::command();
        let ours = [
            "http-addr",
            "coalesce-window",
            "reload-window",
            "rollout-waves",
            "rollout-wave-deadline",
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
            "admission-failure-policy",
            "admission-owner-cluster-role",
            "admission-client-ca",
            "webhook-url-per-workload",
            "per-key-reloads",
            "pod-restarts",
            "extra-workload-kinds",
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
    fn durations_and_addresses_are_typed_by_clap() {
        let c = cli(&[
            "--http-addr=:9091",
            "--coalesce-window=1m30s",
            "--lease-duration=0",
            "--admission-addr=[::1]:9443",
            "--admission-cert-lifetime=1.5h",
            "--admission-ca-lifetime=+10s",
            "--admission-cert-check=500ms",
        ]);
        assert_eq!(c.http_addr, "0.0.0.0:9091".parse().unwrap());
        assert_eq!(c.coalesce_window, Duration::from_secs(90));
        assert_eq!(c.lease_duration, Duration::ZERO);
        assert_eq!(c.admission.admission_addr, Some("[::1]:9443".parse().unwrap()));
        assert_eq!(c.admission.admission_cert_lifetime, Duration::from_secs(5400));
        assert_eq!(c.admission.admission_ca_lifetime, Duration::from_secs(10));
        assert_eq!(c.admission.admission_cert_check, Duration::from_millis(500));

        let c = cli(&[]);
        assert_eq!(c.http_addr, "0.0.0.0:9090".parse().unwrap());
        assert_eq!(c.coalesce_window, Duration::from_secs(2));
        assert_eq!(c.reload_window, None);
        assert_eq!(c.rollout_wave_deadline, Duration::from_secs(600));
        assert_eq!(c.lease_duration, Duration::from_secs(15));
        assert_eq!(c.admission.admission_addr, None);
        assert_eq!(c.admission.admission_cert_lifetime, Duration::from_secs(2160 * 3600));
        assert_eq!(c.admission.admission_ca_lifetime, Duration::from_secs(87600 * 3600));
        assert_eq!(c.admission.admission_cert_check, Duration::from_secs(60));

        for (bad, reason) in [
            ("--http-addr=localhost", "(expected IP:PORT or :PORT)"),
            ("--http-addr=:http", "(expected IP:PORT or :PORT)"),
            ("--admission-addr=127.0.0.1", "(expected IP:PORT or :PORT)"),
            ("--coalesce-window=2", "not a duration (examples: 500ms, 2s, 1m30s)"),
            ("--reload-window=2s", "now --coalesce-window"),
            ("--reload-window=25:00-26:00", "is not a time range HH:MM-HH:MM"),
            ("--rollout-waves=0", "rollout-waves"),
            ("--extra-workload-kinds=CloneSet", "is not GROUP/VERSION/KIND[=PATH]"),
            (
                "--extra-workload-kinds=x.io/v1/App=spec.pod-template",
                "is not dotted field names",
            ),
            ("--extra-workload-kinds=apps/v1/Deployment", "is built in"),
            ("--lease-duration=-5s", "not a duration"),
            ("--admission-cert-lifetime=90d", "not a duration"),
            ("--admission-ca-lifetime=", "not a duration"),
            ("--admission-cert-check=1 m", "not a duration"),
        ] {
            let e = Cli::try_parse_from(["reloader", bad]).unwrap_err();
            assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation, "{bad}");
            let flag = bad.split('=').next().unwrap();
            let message = e.to_string();
            assert!(message.contains(&format!("'{flag} <")), "{bad}: {message}");
            assert!(message.contains(reason), "{bad}: {message}");
        }
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
