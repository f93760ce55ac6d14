//! The tool subcommands, `reloader lint` and `reloader explain` (also `kubectl reloader …`).
//! They exist beside Stakater's flat flags: the binary dispatches here only when its first
//! argument is exactly `lint` or `explain` (or when it runs as `kubectl-reloader`), so every
//! Stakater command line keeps its meaning.
//!
//! Both read the running reloader's own flags (renamed annotation keys, `--resources-to-ignore`,
//! `--namespaces`, …) after `--`, parsed by [`Cli`] and validated by [`Settings::from_cli`], so
//! they judge with exactly the options the engine and the webhook run with.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

use super::{Cli, ConfigError, Settings};

/// The first arguments that select a tool subcommand.
pub const SUBCOMMANDS: [&str; 2] = ["lint", "explain"];

/// The name the binary has as a kubectl plugin.
pub const KUBECTL_PLUGIN: &str = "kubectl-reloader";

#[derive(Parser, Debug, Clone)]
#[command(
    name = "reloader",
    version,
    about = "Check reloader annotations before applying them, and explain why a workload did or did not reload"
)]
pub struct Tool {
    #[command(subcommand)]
    pub command: ToolCommand,
}

#[derive(Subcommand, Debug, Clone)]
pub enum ToolCommand {
    /// Check manifests the way the validating webhook would, with no cluster needed.
    Lint(LintArgs),
    /// Explain what the reloader depends on for a workload, and what it does about it now.
    Explain(ExplainArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LintFormat {
    Human,
    Json,
    Sarif,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExplainFormat {
    Human,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    Always,
    Never,
}

#[derive(Args, Debug, Clone)]
#[command(
    after_help = "Exit status: 0 no errors (warnings allowed), 1 errors, 2 input that could not be used.\n\
Examples:\n  reloader lint manifests/\n  helm template my-release ./chart | reloader lint -\n  \
kustomize build overlays/prod | reloader lint --output=sarif - > reloader.sarif\n  \
reloader lint k8s/ -- --auto-annotation=example.com/auto"
)]
pub struct LintArgs {
    /// Files, directories (searched recursively for .yaml, .yml and .json) or `-` for stdin.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Report format.
    #[arg(short, long, value_enum, default_value = "human")]
    pub output: LintFormat,

    /// Treat warnings as errors.
    #[arg(long)]
    pub strict: bool,

    /// Namespace of the objects that name none (as `kubectl apply -n` would place them).
    #[arg(short, long, value_name = "NAMESPACE", default_value = "default")]
    pub namespace: String,

    /// Check the sources reload lists name against this cluster too (not only the input).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context to use with --kubeconfig.
    #[arg(long, value_name = "NAME", requires = "kubeconfig")]
    pub context: Option<String>,

    /// Colour in the human format.
    #[arg(long, value_enum, default_value = "auto")]
    pub color: ColorChoice,

    /// The running reloader's flags, after `--` (e.g. `-- --auto-annotation=example.com/auto`).
    #[arg(last = true, value_name = "RELOADER FLAGS")]
    pub reloader_flags: Vec<String>,
}

#[derive(Args, Debug, Clone)]
#[command(group(ArgGroup::new("target").required(true).args(["workload", "all"])))]
#[command(after_help = "Examples:\n  reloader explain deploy/app -n shop\n  \
reloader explain --all -n shop --from-deployment reloader/reloader\n  \
kubectl reloader explain sts/db -o json -- --reload-strategy=env-vars")]
pub struct ExplainArgs {
    /// The workload, as KIND/NAME (deploy/app, statefulset/db, cronjob.batch/report, …).
    #[arg(value_name = "KIND/NAME")]
    pub workload: Option<String>,

    /// Every workload in the namespace.
    #[arg(long)]
    pub all: bool,

    /// The workload's namespace [default: the kubeconfig context's].
    #[arg(short, long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// Report format.
    #[arg(short, long, value_enum, default_value = "human")]
    pub output: ExplainFormat,

    /// Read the reloader's flags and environment from its Deployment (NAMESPACE/NAME), as it runs.
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub from_deployment: Option<String>,

    /// The reloader's namespace, where its stamp key Secret is (without --from-deployment).
    #[arg(long, value_name = "NAMESPACE", default_value = "reloader")]
    pub reloader_namespace: String,

    /// How many of the last Reloaded/ReloadFail Events to show.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub events: usize,

    /// Kubeconfig file [default: KUBECONFIG, ~/.kube/config, or in-cluster].
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context to use.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// Colour in the human format.
    #[arg(long, value_enum, default_value = "auto")]
    pub color: ColorChoice,

    /// The running reloader's flags, after `--`; with --from-deployment, added after its own.
    #[arg(last = true, value_name = "RELOADER FLAGS")]
    pub reloader_flags: Vec<String>,
}

/// A reloader command line that does not parse.
#[derive(Debug, thiserror::Error)]
pub enum FlagsError {
    #[error("the reloader flags {flags:?} do not parse: {message}")]
    Parse { flags: Vec<String>, message: String },
    #[error("the reloader flags are not valid: {0}")]
    Invalid(#[from] ConfigError),
}

/// The reloader's settings from its flags and environment, as the binary would validate them.
pub fn reloader_settings(flags: &[String], env: impl Fn(&str) -> Option<String>) -> Result<Settings, FlagsError> {
    let argv = std::iter::once("reloader".to_string()).chain(flags.iter().cloned());
    let cli = Cli::try_parse_from(argv).map_err(|e| FlagsError::Parse {
        flags: crate::core::redact::flags(flags),
        message: e.kind().to_string() + ": " + e.to_string().lines().next().unwrap_or_default(),
    })?;
    Ok(Settings::from_cli(cli, env)?)
}

/// Whether the command line asks for a tool subcommand: its first argument is exactly one of
/// [`SUBCOMMANDS`], or the binary runs as the kubectl plugin.
pub fn wants_tool(program: &str, first: Option<&str>) -> bool {
    let name = std::path::Path::new(program)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    name == KUBECTL_PLUGIN || first.is_some_and(|a| SUBCOMMANDS.contains(&a))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn subcommands_only_on_the_exact_first_word() {
        assert!(wants_tool("reloader", Some("lint")));
        assert!(wants_tool("/usr/bin/reloader", Some("explain")));
        assert!(!wants_tool("reloader", Some("--lint")));
        assert!(!wants_tool("reloader", Some("--auto-reload-all")));
        assert!(!wants_tool("reloader", None));
        assert!(wants_tool("/home/u/bin/kubectl-reloader", Some("explain")));
        assert!(
            wants_tool("kubectl-reloader", None),
            "the plugin has no controller mode"
        );
        // Stakater's flat flags still parse as before.
        assert!(Cli::try_parse_from(["reloader", "--auto-reload-all", "--namespaces=a"]).is_ok());
    }

    #[test]
    fn lint_and_explain_parse() {
        let t = Tool::try_parse_from([
            "reloader",
            "lint",
            "-",
            "a.yaml",
            "--strict",
            "-o",
            "sarif",
            "--",
            "--auto-annotation=x.io/auto",
        ])
        .unwrap();
        let ToolCommand::Lint(lint) = t.command else { panic!() };
        assert_eq!(lint.paths.len(), 2);
        assert!(lint.strict);
        assert_eq!(lint.output, LintFormat::Sarif);
        assert_eq!(lint.reloader_flags, ["--auto-annotation=x.io/auto"]);
        let settings = reloader_settings(&lint.reloader_flags, |_| None).unwrap();
        assert_eq!(settings.annotation_keys.auto, "x.io/auto");

        let t = Tool::try_parse_from(["kubectl-reloader", "explain", "deploy/app", "-n", "shop"]).unwrap();
        let ToolCommand::Explain(e) = t.command else { panic!() };
        assert_eq!(e.workload.as_deref(), Some("deploy/app"));
        assert_eq!(e.namespace.as_deref(), Some("shop"));
        assert!(
            Tool::try_parse_from(["reloader", "explain"]).is_err(),
            "KIND/NAME or --all"
        );
        assert!(Tool::try_parse_from(["reloader", "explain", "deploy/a", "--all"]).is_err());
        assert!(
            Tool::try_parse_from(["reloader", "lint"]).is_err(),
            "a PATH is required"
        );
        assert!(matches!(
            reloader_settings(&["--reload-strategy=nope".into()], |_| None),
            Err(FlagsError::Invalid(_))
        ));
        assert!(matches!(
            reloader_settings(&["--no-such-flag".into()], |_| None),
            Err(FlagsError::Parse { .. })
        ));
        // The message quotes the flags, URLs redacted.
        let error = reloader_settings(
            &[
                "--webhook-url=https://hooks.slack.com/services/T0/B0/s3cret".into(),
                "--no-such-flag".into(),
            ],
            |_| None,
        )
        .unwrap_err();
        assert!(error.to_string().contains("services/<redacted>"), "{error}");
        assert!(!error.to_string().contains("s3cret"), "{error}");
    }

    #[test]
    fn clap_definition_is_consistent() {
        Tool::command().debug_assert();
    }
}
