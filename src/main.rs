//! The `reloader` binary: parses the configuration and wires the parts together. No logic of its
//! own lives here.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser};
use kube::config::{KubeConfigOptions, Kubeconfig};
use reloader::admission::AdmissionContext;
use reloader::config::commands::{
    self, ColorChoice, ExplainArgs, ExplainFormat, LintArgs, LintFormat, Tool, ToolCommand, reloader_settings,
};
use reloader::config::{Cli, Settings, WatchScope, process_env};
use reloader::core::keyed_hash::StampKeyRing;
use reloader::core::plan::ReloadStrategy;
use reloader::core::source::SourceKind;
use reloader::core::workload::WorkloadKind;
use reloader::engine::events::EventRecorder;
use reloader::engine::{Engine, EngineOptions, Outbound};
use reloader::health::{self, Health};
use reloader::leader::{ElectionSettings, Leadership};
use reloader::metrics::Metrics;
use reloader::stamp_key_secret;
use reloader::store::Store;
use tokio::sync::watch;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let program = args
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    if commands::wants_tool(&program, args.get(1).and_then(|a| a.to_str())) {
        return tool(&program, args);
    }
    let cli = Cli::parse_from(args);
    let settings = match Settings::from_cli(cli.clone(), process_env) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("reloader: {error}");
            return ExitCode::from(2);
        }
    };
    reloader::logging::init(&settings);
    for warning in &settings.warnings {
        tracing::warn!("{warning}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("reloader: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(settings, cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The Kubernetes client, every request of it counted in the `rest_client_*` metrics.
/// The API client; `retries`: kube's retries of 429/503/504 (off for evictions, whose 429 is a
/// PodDisruptionBudget's answer, not overload).
async fn kube_client(settings: &Settings, metrics: Arc<Metrics>, retries: bool) -> anyhow::Result<kube::Client> {
    let mut config = match &settings.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path).with_context(|| format!("reading {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?
        }
        None => kube::Config::infer()
            .await
            .context("finding a kubeconfig or in-cluster config")?,
    };
    config.default_retry = retries;
    let host = config
        .cluster_url
        .authority()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let layer = reloader::metrics::ApiRequestMetrics::new(metrics, host);
    Ok(kube::client::ClientBuilder::try_from(config)?
        .with_layer(&layer)
        .build())
}

/// Whether the API server serves `group/version` (Argo Rollouts, OpenShift, CSI). One discovery
/// call; an unreachable server counts as "not served" and the watchers report the real error.
async fn api_exists(client: &kube::Client, group_version: &str) -> bool {
    reloader::kube_api::served(client, group_version).await.unwrap_or(false)
}

async fn engine_options(settings: &Settings, client: &kube::Client, stamp_keys: StampKeyRingView) -> EngineOptions {
    let scopes = match &settings.watch_scope {
        WatchScope::All => vec![None],
        WatchScope::Namespaces(list) => list.iter().cloned().map(Some).collect(),
    };
    let source_kinds: Vec<SourceKind> = [SourceKind::ConfigMap, SourceKind::Secret]
        .into_iter()
        .filter(|k| !settings.ignored_source_kinds.contains(k))
        .collect();
    let mut workload_kinds: Vec<WorkloadKind> = [
        WorkloadKind::Deployment,
        WorkloadKind::StatefulSet,
        WorkloadKind::DaemonSet,
        WorkloadKind::CronJob,
        WorkloadKind::Job,
    ]
    .into_iter()
    .filter(|k| !settings.ignored_workload_kinds.contains(k))
    .collect();
    if settings.argo_rollouts {
        if api_exists(client, "argoproj.io/v1alpha1").await {
            workload_kinds.push(WorkloadKind::Rollout);
        } else {
            tracing::warn!("--is-Argo-Rollouts is set but argoproj.io/v1alpha1 is not served; Rollouts are skipped");
        }
    }
    if api_exists(client, "apps.openshift.io/v1").await {
        workload_kinds.push(WorkloadKind::DeploymentConfig);
    }
    // Watched once discovery finds them served (`engine::extra`).
    workload_kinds.extend(settings.extra_workload_kinds.iter().copied());
    let mut source_kinds = source_kinds;
    if settings.csi_integration {
        // Both of the driver's kinds are needed: pod statuses (content) and classes (annotations).
        let served: Vec<String> = client
            .list_api_group_resources(reloader::csi::GROUP_VERSION)
            .await
            .map(|list| list.resources.into_iter().map(|r| r.name).collect())
            .unwrap_or_default();
        if ["secretproviderclasspodstatuses", "secretproviderclasses"]
            .iter()
            .all(|r| served.iter().any(|s| s == r))
        {
            source_kinds.push(SourceKind::SecretProviderClass);
        } else {
            tracing::warn!(
                "--enable-csi-integration is set but the Secrets Store CSI driver's API is not served; skipped"
            );
        }
    }
    EngineOptions {
        dependency: settings.dependency_options(),
        stamp_keys,
        plan: settings.plan_options(),
        field_manager: settings.field_manager.clone(),
        coalesce_window: settings.coalesce_window,
        default_window: settings.reload_window.clone(),
        clock: settings.clock,
        default_waves: settings.rollout_waves.clone(),
        wave_deadline: settings.rollout_wave_deadline,
        eviction_client: None,
        workers: settings.workers,
        scopes,
        namespaces_to_ignore: settings.namespaces_to_ignore.clone(),
        namespace_selector: settings.namespace_selector.clone(),
        resource_label_selector: settings.resource_label_selector.clone(),
        source_kinds,
        workload_kinds,
        max_reloads_per_second: settings.rate_limits.per_second,
        max_reloads_per_second_per_namespace: settings.rate_limits.per_namespace_per_second,
        burst: settings.rate_limits.burst,
    }
}

type StampKeyRingView = watch::Receiver<Arc<StampKeyRing>>;

/// The key stamps are made with: read (or created) before the engine starts, then kept
/// current. The env-vars strategy's template stamps stay Stakater's plain SHA-1; with the
/// webhook, its records are keyed too ([`Settings::stamp_key_namespace`]).
async fn stamp_key_ring(settings: &Settings, client: &kube::Client) -> StampKeyRingView {
    let (tx, rx) = watch::channel(Arc::new(StampKeyRing::plain()));
    if settings.strategy != ReloadStrategy::Annotations && settings.admission.is_none() {
        return rx;
    }
    let Some(namespace) = settings.stamp_key_namespace() else {
        tracing::warn!(
            "no namespace for the stamp key (--admission-namespace, POD_NAMESPACE or RELOADER_NAMESPACE): stamps are plain SHA-1"
        );
        return rx;
    };
    if let Some(ring) = stamp_key_secret::load(client, &namespace, std::time::Duration::from_secs(10)).await {
        tx.send_replace(Arc::new(ring));
    }
    tokio::spawn(stamp_key_secret::maintain(client.clone(), namespace, tx));
    rx
}

/// Without HA this replica always leads. With HA, a Lease decides ([`reloader::leader`]);
/// standbys keep their caches warm and only stop writing.
fn leadership(settings: &Settings, client: &kube::Client) -> (watch::Receiver<bool>, Option<Leadership>) {
    let Some(election) = &settings.leader_election else {
        let (tx, rx) = watch::channel(true);
        // This replica leads for the life of the process: the sender is never dropped.
        std::mem::forget(tx);
        return (rx, None);
    };
    let leadership = reloader::leader::start(
        client.clone(),
        ElectionSettings {
            lease_name: election.lease_name.clone(),
            namespace: election.lease_namespace.clone(),
            identity: election.identity.clone(),
            field_manager: lease_field_manager(&settings.field_manager, &election.identity),
            lease_duration: election.lease_duration,
            renew_deadline: election.renew_deadline,
            retry_period: election.retry_period,
        },
    );
    (leadership.leader.clone(), Some(leadership))
}

/// Each replica writes the Lease under a field manager of its own: two replicas applying it
/// under one name never conflict, so both could take an unheld Lease at the same moment and both
/// lead (seen when two replicas start together). The API server allows 128 characters.
fn lease_field_manager(field_manager: &str, identity: &str) -> String {
    format!("{field_manager}-{identity}").chars().take(128).collect()
}

/// Who the reloader is to the API server, so the webhook can leave its own writes alone.
async fn own_username(client: &kube::Client, explicit: Option<String>) -> Option<String> {
    use k8s_openapi::api::authentication::v1::SelfSubjectReview;
    if explicit.is_some() {
        return explicit;
    }
    let api: kube::Api<SelfSubjectReview> = kube::Api::all(client.clone());
    match api.create(&Default::default(), &SelfSubjectReview::default()).await {
        Ok(review) => review.status.and_then(|s| s.user_info).and_then(|u| u.username),
        Err(error) => {
            tracing::warn!(%error, "could not ask the API server who the reloader is; its own writes go through the webhook");
            None
        }
    }
}

async fn run(settings: Settings, cli: Cli) -> anyhow::Result<()> {
    // kube and our TLS server both use rustls with ring; make it the process default.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // `--webhook-url`: Stakater's announcement per changed source, or ours per workload.
    let (notifier, announcer) = match &settings.webhook_url {
        Some(url) => {
            let notifier = reloader::alerts::Notifier::new(url)?;
            if settings.webhook_url_per_workload {
                (Some(notifier), None)
            } else {
                (None, Some(reloader::alerts::SourceAnnouncer::start(notifier)))
            }
        }
        None => (None, None),
    };
    let metrics = Arc::new(Metrics::new(settings.metrics_by_namespace));
    let client = kube_client(&settings, metrics.clone(), true).await?;
    let (leader, lease_holder) = leadership(&settings, &client);
    let events = EventRecorder::new(client.clone(), settings.pod_name.clone());
    if let Some(namespace) = &settings.reloader_namespace {
        let deployment = settings.reloader_deployment_name.clone().unwrap_or_default();
        reloader::meta_info::publish(&client, &cli, namespace, &deployment).await;
    }
    let stamp_keys = stamp_key_ring(&settings, &client).await;
    let mut options = engine_options(&settings, &client, stamp_keys.clone()).await;
    if settings.pod_restarts {
        let evictions = kube_client(&settings, metrics.clone(), false).await?;
        options.eviction_client = Some(reloader::engine::EvictionClient(evictions));
    }
    if announcer.is_some() {
        // Stakater's `--webhook-url`: announcements replace reloads; no workload is touched.
        options.workload_kinds.clear();
    }
    tracing::info!(
        strategy = ?settings.strategy,
        scopes = ?options.scopes,
        workloads = ?options.workload_kinds,
        sources = ?options.source_kinds,
        "starting"
    );
    let alerts = match settings.alerts.clone() {
        Some(alert_settings) => Some(reloader::alerts::start(alert_settings, metrics.clone())?),
        None => None,
    };
    let engine = Engine::new(
        client.clone(),
        Store::default(),
        metrics.clone(),
        options,
        Outbound {
            events,
            alerts,
            notifier,
            announcer,
        },
        leader.clone(),
    );
    let mut ready = vec![engine.ready()];
    let mut synced = engine.ready();
    tokio::spawn(async move {
        if synced.wait_for(|ready| *ready).await.is_ok() {
            release_freed_memory();
        }
    });
    // SIGTERM turns it true: the engine finishes its reconciles, the webhook drains.
    let (stop, shutdown) = watch::channel(false);
    let mut admission_task = None;
    if let Some(mut admission) = settings.admission.clone() {
        // Who the reloader is, so its own writes skip the webhooks (and are admitted unchanged).
        admission.self_user = own_username(&client, admission.self_user.clone()).await;
        let (cert_ready, cert_ready_rx) = watch::channel(false);
        ready.push(cert_ready_rx);
        let context = AdmissionContext {
            store: engine.store().clone(),
            dependency: settings.dependency_options(),
            strategy: settings.strategy,
            stamp_keys: stamp_keys.clone(),
            own_username: admission.self_user.clone(),
            ready: engine.ready(),
            metrics: metrics.clone(),
            lookup: Some(reloader::admission::lookup::SourceLookup::new(
                client.clone(),
                settings.resource_label_selector.clone(),
            )),
            scope: engine.scope(),
            limits: Default::default(),
        };
        admission_task = Some(tokio::spawn(reloader::admission::server::run(
            admission,
            context,
            client.clone(),
            settings.field_manager.clone(),
            leader.clone(),
            cert_ready,
            shutdown.clone(),
        )));
    }
    let live = settings
        .leader_election
        .is_some()
        .then(|| health::lost_leadership(leader.clone()));
    let health = health::router(Health {
        metrics,
        ready,
        leader: live,
    });
    let listener = tokio::net::TcpListener::bind(settings.http_addr)
        .await
        .with_context(|| format!("binding {}", settings.http_addr))?;
    tracing::info!(addr = %listener.local_addr()?, "serving /live, /ready and /metrics");
    let mut engine_task = tokio::spawn(engine.run(shutdown));
    tokio::select! {
        _ = &mut engine_task => anyhow::bail!("the engine stopped"),
        result = admission_stopped(&mut admission_task) => return result,
        // With the webhook's connection bounds (src/health.rs).
        () = health::serve(listener, health) => anyhow::bail!("the health server stopped"),
        () = shutdown_signal() => {}
    }
    tracing::info!("shutting down: finishing the reconciles in flight, draining the webhook");
    stop.send_replace(true);
    let engine_stopped = async {
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut engine_task).await.is_err() {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "reconciles still running at the end of the grace period");
            // Stopped before the Lease goes: nothing of this replica writes once another leads.
            engine_task.abort();
        }
    };
    // The webhook drains within its close grace (`tls::serve_until`); a bound here all the same.
    let webhook_drained = async {
        if let Some(task) = admission_task.as_mut()
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut *task).await.is_err()
        {
            task.abort();
        }
    };
    tokio::join!(engine_stopped, webhook_drained);
    // Last: the certificate maintainer (in the webhook's task) and the engine write no more.
    release_lease(lease_holder).await;
    Ok(())
}

/// Resolves when the webhook's task ends before a shutdown asked it to: an error to report.
async fn admission_stopped(
    task: &mut Option<tokio::task::JoinHandle<Result<(), reloader::admission::server::ServeError>>>,
) -> anyhow::Result<()> {
    match task {
        Some(task) => match task.await {
            Ok(Ok(())) => anyhow::bail!("the admission server stopped"),
            Ok(Err(error)) => Err(anyhow::Error::new(error).context("admission webhook")),
            Err(error) => Err(anyhow::Error::new(error).context("admission webhook task")),
        },
        None => std::future::pending().await,
    }
}

/// Returns the memory freed since start-up to the kernel, once the caches are synced: the
/// start-up transients (list responses, objects being parsed) are never needed again at that
/// size. See docs/engine.md, Memory.
fn release_freed_memory() {
    // SAFETY: `mi_collect` takes no pointers; it frees the allocator's own empty pages.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

/// Gives the Lease up so a standby takes over at once rather than after it expires.
async fn release_lease(holder: Option<Leadership>) {
    let Some(leadership) = holder else {
        return;
    };
    if !leadership.release(std::time::Duration::from_secs(3)).await {
        tracing::warn!("the Lease was not released in time; a standby takes over when it expires");
    }
}

/// How long a reconcile in flight may take to finish after SIGTERM; below Kubernetes' default
/// 30 s termination grace period.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(20);

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

// ------------------------------------------------------------------------------------------
// `reloader lint` and `reloader explain` (also `kubectl reloader …`)
// ------------------------------------------------------------------------------------------

/// Runs a tool subcommand; clap's usage errors exit 2, as for the controller's flags.
fn tool(program: &str, args: Vec<std::ffi::OsString>) -> ExitCode {
    let plugin = std::path::Path::new(program)
        .file_name()
        .is_some_and(|n| n == commands::KUBECTL_PLUGIN);
    let command = Tool::command().bin_name(if plugin { "kubectl reloader" } else { "reloader" });
    let parsed = command
        .try_get_matches_from(args)
        .and_then(|m| Tool::from_arg_matches(&m));
    let tool = match parsed {
        Ok(tool) => tool,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() { 2 } else { 0 });
        }
    };
    match tool.command {
        ToolCommand::Lint(args) => lint(args),
        ToolCommand::Explain(args) => explain(args),
    }
}

fn color(choice: ColorChoice) -> bool {
    use std::io::IsTerminal;
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal(),
    }
}

fn current_thread_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

/// A client from `--kubeconfig`/`--context`, or KUBECONFIG, `~/.kube/config`, in-cluster.
async fn tool_client(path: Option<&std::path::Path>, context: Option<&str>) -> anyhow::Result<kube::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    let config = match path {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path).with_context(|| format!("reading {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options).await?
        }
        None if context.is_some() => kube::Config::from_kubeconfig(&options).await?,
        None => kube::Config::infer()
            .await
            .context("finding a kubeconfig or in-cluster config")?,
    };
    Ok(kube::Client::try_from(config)?)
}

fn lint(args: LintArgs) -> ExitCode {
    use reloader::lint::{LintOptions, analyse, existing_in_cluster, inputs, output};
    let settings = match reloader_settings(&args.reloader_flags, |_| None) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("reloader lint: {error}");
            return ExitCode::from(2);
        }
    };
    let options = LintOptions {
        annotations: settings.annotation_keys.clone(),
        namespace: args.namespace.clone(),
        strict: args.strict,
    };
    let (read, unreadable) = inputs::collect(&args.paths, &mut std::io::stdin().lock());
    let mut analysis = analyse(read, &options);
    analysis.add_input_errors(unreadable);
    let report = match &args.kubeconfig {
        None => analysis.finish(None),
        Some(path) => {
            let wanted = analysis.undefined_sources();
            let found = current_thread_runtime().and_then(|rt| {
                rt.block_on(async {
                    let client = tool_client(Some(path), args.context.as_deref()).await?;
                    let lookup = reloader::admission::lookup::SourceLookup::new(
                        client,
                        settings.resource_label_selector.clone(),
                    );
                    Ok(existing_in_cluster(&lookup, &wanted).await?)
                })
            });
            match found {
                Ok(found) => analysis.finish(Some(&found)),
                Err(error) => {
                    eprintln!("reloader lint: cannot check the sources against the cluster: {error:#}");
                    return ExitCode::from(2);
                }
            }
        }
    };
    let text = match args.output {
        LintFormat::Human => output::human(
            &report,
            output::Style {
                color: color(args.color),
            },
        ),
        LintFormat::Json => output::json(&report),
        LintFormat::Sarif => output::sarif(&report),
    };
    print!("{text}");
    ExitCode::from(report.exit_code())
}

fn explain(args: ExplainArgs) -> ExitCode {
    let result = current_thread_runtime().and_then(|rt| rt.block_on(explain_run(&args)));
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("reloader explain: {error:#}");
            let target = matches!(
                error.downcast_ref::<reloader::explain::ExplainError>(),
                Some(reloader::explain::ExplainError::Target(_))
            );
            if target { ExitCode::from(2) } else { ExitCode::FAILURE }
        }
    }
}

async fn explain_run(args: &ExplainArgs) -> anyhow::Result<String> {
    use reloader::explain::{
        Scene, explain, explain_all, parse_target, render, settings_from_deployment, settings_from_flags,
    };
    let client = tool_client(args.kubeconfig.as_deref(), args.context.as_deref()).await?;
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let (settings, origin) = match &args.from_deployment {
        Some(reference) => {
            let (ns, name) = reference
                .split_once('/')
                .with_context(|| format!("--from-deployment {reference:?}: expected NAMESPACE/NAME"))?;
            settings_from_deployment(&client, ns, name, &args.reloader_flags).await?
        }
        None => settings_from_flags(&args.reloader_flags, &args.reloader_namespace)?,
    };
    for extra in settings.extra_workload_kinds.iter().filter_map(|k| k.extra()) {
        if let Err(error) = reloader::kube_api::discover(&client, extra).await {
            tracing::debug!(%error, "extra workload kind not served");
        }
    }
    // Read once the reloader's flags are: they name the extra kinds.
    let target = args
        .workload
        .as_deref()
        .map(|t| parse_target(t, &settings.extra_workload_kinds))
        .transpose()?;
    let scene = Scene::load(client, settings, origin, &namespace, args.events).await?;
    let color = color(args.color);
    Ok(match target {
        Some((kind, name)) => {
            let explanation = explain(&scene, kind, &name).await?;
            match args.output {
                ExplainFormat::Human => render::human(&explanation, color),
                ExplainFormat::Json => render::json(&explanation),
            }
        }
        None => {
            let all = explain_all(&scene).await?;
            match args.output {
                ExplainFormat::Human => render::human_all(&namespace, &all, color),
                ExplainFormat::Json => render::json_all(&all),
            }
        }
    })
}
