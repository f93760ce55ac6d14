//! The real `helm` (built once by tools/helm.sh) and the values files the chart's tests install
//! with: shared by the cluster tests and the real-node tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use crate::cluster::unique_name;
use crate::repo;

pub fn chart() -> String {
    repo().join("manifests/helm/reloader").display().to_string()
}

/// The helm binary: `RELOADER_HELM`, or the one tools/helm.sh builds once and caches.
fn helm_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(path) = std::env::var("RELOADER_HELM") {
            return PathBuf::from(path);
        }
        let out = Command::new(repo().join("tools/helm.sh"))
            .arg("--path")
            .output()
            .expect("running tools/helm.sh");
        assert!(
            out.status.success(),
            "tools/helm.sh --path: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

/// Stakater's chart's default values file, as users copy it: the workspace's shared fixture
/// (`../shared/fixtures` beside the checkout, or the workspace's `/work/shared/fixtures` for a
/// clone made elsewhere), or `RELOADER_STAKATER_VALUES`. Not vendored: it is Stakater's file.
pub fn stakater_values() -> PathBuf {
    const FILE: &str = "stakater-chart-2.2.16-values.yaml";
    let candidates: Vec<PathBuf> = match std::env::var("RELOADER_STAKATER_VALUES") {
        Ok(path) => vec![PathBuf::from(path)],
        Err(_) => vec![
            repo().join("../shared/fixtures").join(FILE),
            Path::new("/work/shared/fixtures").join(FILE),
        ],
    };
    let found = candidates.iter().find(|p| p.exists()).cloned();
    found.unwrap_or_else(|| panic!("Stakater's values file is missing; looked at {candidates:?}"))
}

pub fn helm(args: &[&str]) -> Output {
    Command::new(helm_bin())
        .args(args)
        // helm keeps its caches and config here, never in the user's home.
        .env("HELM_CACHE_HOME", repo().join("target/helm/cache"))
        .env("HELM_CONFIG_HOME", repo().join("target/helm/config"))
        .env("HELM_DATA_HOME", repo().join("target/helm/data"))
        .output()
        .expect("running helm")
}

pub fn helm_ok(args: &[&str]) -> String {
    let out = helm(args);
    assert!(
        out.status.success(),
        "helm {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A values file under target/, for helm's `-f`.
pub fn values_file(yaml: &str) -> PathBuf {
    let dir = repo().join("target/helm/values");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}.yaml", unique_name("values")));
    std::fs::write(&path, yaml).unwrap();
    path
}
