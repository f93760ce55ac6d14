//! The results: `target/bench/cluster.json`, every part of the run merged into
//! bench/results.json, and the README's block rendered from it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{Map, Value, json};

use crate::harness::Bench;
use crate::{REPO, probe, render};

/// Folds parts measured after the cluster run (e.g. `cargo bench --bench webhook` run again on
/// its own) into bench/results.json: every `target/bench/*.json` but the cluster part replaces
/// the part of the same name; the run's machine, inventory and cluster figures stay.
pub fn merge_parts() -> Result<()> {
    let out = Path::new(REPO).join("bench/results.json");
    let mut results: Value = serde_json::from_slice(&std::fs::read(&out).context("reading bench/results.json")?)?;
    let dir = Path::new(REPO).join("target/bench");
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let part: Value =
            serde_json::from_slice(&std::fs::read(&path)?).with_context(|| format!("reading {}", path.display()))?;
        let Some(name) = part["part"].as_str().map(str::to_string) else {
            continue;
        };
        if name == "cluster" {
            continue;
        }
        for (who, about) in part["contenders"].as_object().into_iter().flatten() {
            if who != "reloader" {
                results["contenders"][who] = about.clone();
            }
        }
        results["parts"][name] = part;
    }
    let mut text = serde_json::to_string_pretty(&results)?;
    text.push('\n');
    std::fs::write(out, text)?;
    Ok(())
}

/// Re-renders the README block from bench/results.json; returns the block.
pub fn render_readme() -> Result<String> {
    let results: Value = serde_json::from_slice(&std::fs::read(Path::new(REPO).join("bench/results.json"))?)?;
    let block = render::render(&results);
    let readme_path = Path::new(REPO).join("README.md");
    let readme = std::fs::read_to_string(&readme_path)?;
    let updated = render::replace_block(&readme, &block).context("README.md has no bench:begin/bench:end block")?;
    std::fs::write(readme_path, updated)?;
    Ok(block)
}

impl Bench {
    pub fn write(&self, load_before: &str) -> Result<()> {
        let dir = Path::new(REPO).join("target/bench");
        std::fs::create_dir_all(&dir)?;
        let ours_version = ours_version();
        let ours = json!({"version": ours_version, "build": probe::ours_build()});
        let mut contenders = json!({"reloader": ours.clone()});
        if let Some(v) = &self.stakater_version {
            contenders["stakater-reloader"] = json!({"version": v});
        }
        let cluster = json!({
            "part": "cluster", "contenders": contenders,
            "rows": self.rows, "figures": self.figures,
        });
        std::fs::write(dir.join("cluster.json"), serde_json::to_vec_pretty(&cluster)?)?;

        // Merge every part written in this run (make bench clears target/bench first).
        let mut parts = Map::new();
        let mut all_contenders = Map::new();
        let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        for path in names {
            let part: Value = serde_json::from_slice(&std::fs::read(&path)?)
                .with_context(|| format!("reading {}", path.display()))?;
            let name = part["part"].as_str().unwrap_or("unnamed").to_string();
            for (who, about) in part["contenders"].as_object().into_iter().flatten() {
                // Ours is named by this harness (crate version and commit).
                if !all_contenders.contains_key(who) || who != "reloader" {
                    all_contenders.entry(who.clone()).or_insert(about.clone());
                }
            }
            parts.insert(name, part);
        }
        all_contenders.insert("reloader".into(), ours);
        let results = json!({
            "generated_at": time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            "machine": {
                "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
                "model": cpu_model(),
                "load_before": load_before,
                "load_after": std::fs::read_to_string("/proc/loadavg")
                    .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
                    .unwrap_or_default(),
            },
            "contenders": all_contenders,
            "inventory": self.inventory.join("; "),
            "parts": parts,
        });
        let out = Path::new(REPO).join("bench/results.json");
        std::fs::create_dir_all(out.parent().unwrap())?;
        let mut text = serde_json::to_string_pretty(&results)?;
        text.push('\n');
        std::fs::write(out, text)?;
        Ok(())
    }
}

fn ours_version() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(REPO)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "--short=10", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = git(&["status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock"]).is_some_and(|s| !s.is_empty());
    format!(
        "{} @ {commit}{}",
        env!("CARGO_PKG_VERSION"),
        if dirty { " (+ uncommitted src changes)" } else { "" }
    )
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")?
                    .split_once(':')
                    .map(|(_, m)| m.trim().to_string())
            })
        })
        .unwrap_or_default()
}
