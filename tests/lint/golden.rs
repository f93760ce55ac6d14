//! Golden outputs: each case is a command line, its exit status, and its exact stdout.

use std::path::Path;

use serde_json::Value;

use crate::{REPO, reloader};

struct Case {
    name: &'static str,
    args: &'static [&'static str],
    stdin: Option<&'static str>,
    code: i32,
    /// Extension of the golden file (the output format).
    ext: &'static str,
}

const RULES: &str = "tests/lint/corpus/rules.yaml";
const BROKEN: &str = "tests/lint/corpus/broken";
const EXTRA_KINDS: &str = "tests/lint/corpus/extra-kinds.yaml";
const EXTRA_KINDS_FLAG: &str =
    "--extra-workload-kinds=apps.kruise.io/v1alpha1/CloneSet,example.com/v1/App=spec.deploy.podTemplate";

const CASES: &[Case] = &[
    Case {
        name: "rules",
        args: &["lint", RULES],
        stdin: None,
        code: 1,
        ext: "txt",
    },
    Case {
        name: "rules",
        args: &["lint", RULES, "--output=json"],
        stdin: None,
        code: 1,
        ext: "json",
    },
    Case {
        name: "rules",
        args: &["lint", RULES, "-o", "sarif"],
        stdin: None,
        code: 1,
        ext: "sarif",
    },
    Case {
        name: "rules-strict",
        args: &["lint", "--strict", RULES],
        stdin: None,
        code: 1,
        ext: "txt",
    },
    Case {
        name: "broken",
        args: &["lint", BROKEN],
        stdin: None,
        code: 2,
        ext: "txt",
    },
    Case {
        name: "broken",
        args: &["lint", BROKEN, "-o", "json"],
        stdin: None,
        code: 2,
        ext: "json",
    },
    Case {
        name: "broken",
        args: &["lint", BROKEN, "-o", "sarif"],
        stdin: None,
        code: 2,
        ext: "sarif",
    },
    Case {
        name: "examples",
        // The kustomize install; the Helm chart's templates are Go templates, linted rendered.
        args: &[
            "lint",
            "examples",
            "manifests/deployment.yaml",
            "manifests/kustomization.yaml",
            "manifests/namespace.yaml",
            "manifests/pdb.yaml",
            "manifests/rbac.yaml",
            "manifests/service.yaml",
        ],
        stdin: None,
        code: 0,
        ext: "txt",
    },
    Case {
        name: "examples",
        args: &[
            "lint",
            "examples",
            "manifests/deployment.yaml",
            "manifests/kustomization.yaml",
            "manifests/namespace.yaml",
            "manifests/pdb.yaml",
            "manifests/rbac.yaml",
            "manifests/service.yaml",
            "-o",
            "sarif",
        ],
        stdin: None,
        code: 0,
        ext: "sarif",
    },
    Case {
        name: "helm-stdin",
        args: &["lint", "-"],
        stdin: Some("helm.yaml"),
        code: 0,
        ext: "txt",
    },
    Case {
        name: "list-stdin",
        args: &["lint", "-", "--output", "json"],
        stdin: Some("list.json"),
        code: 1,
        ext: "json",
    },
    Case {
        name: "warnings",
        args: &["lint", "tests/lint/corpus/warnings.yaml"],
        stdin: None,
        code: 0,
        ext: "txt",
    },
    Case {
        name: "warnings-strict",
        args: &["lint", "tests/lint/corpus/warnings.yaml", "--strict", "-o", "sarif"],
        stdin: None,
        code: 1,
        ext: "sarif",
    },
    Case {
        name: "renamed",
        args: &[
            "lint",
            "tests/lint/corpus/renamed.yaml",
            "--",
            "--auto-annotation=example.com/auto",
        ],
        stdin: None,
        code: 1,
        ext: "txt",
    },
    Case {
        name: "renamed-default-keys",
        args: &["lint", "tests/lint/corpus/renamed.yaml"],
        stdin: None,
        code: 0,
        ext: "txt",
    },
    Case {
        name: "extra-kinds",
        args: &["lint", EXTRA_KINDS, "--", EXTRA_KINDS_FLAG],
        stdin: None,
        code: 1,
        ext: "txt",
    },
    Case {
        name: "extra-kinds",
        args: &["lint", EXTRA_KINDS, "-o", "json", "--", EXTRA_KINDS_FLAG],
        stdin: None,
        code: 1,
        ext: "json",
    },
    Case {
        name: "extra-kinds-without-the-flag",
        args: &["lint", EXTRA_KINDS],
        stdin: None,
        code: 0,
        ext: "txt",
    },
    Case {
        name: "namespace-default",
        args: &["lint", "tests/lint/corpus/namespaced.yaml"],
        stdin: None,
        code: 0,
        ext: "txt",
    },
    Case {
        name: "namespace-shop",
        args: &["lint", "-n", "shop", "tests/lint/corpus/namespaced.yaml"],
        stdin: None,
        code: 0,
        ext: "txt",
    },
    Case {
        name: "color",
        args: &[
            "lint",
            "--color=always",
            "tests/lint/corpus/warnings.yaml",
            "tests/lint/corpus/renamed.yaml",
        ],
        stdin: None,
        code: 0,
        ext: "txt",
    },
];

fn golden_path(case: &Case) -> std::path::PathBuf {
    Path::new(REPO)
        .join("tests/lint/golden")
        .join(format!("{}.{}", case.name, case.ext))
}

#[test]
fn every_case_matches_its_golden_output() {
    let update = std::env::var_os("RELOADER_UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for case in CASES {
        let run = reloader(case.args, case.stdin);
        let path = golden_path(case);
        if update {
            std::fs::write(&path, &run.stdout).unwrap();
        }
        let want = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("missing {}", path.display()));
        if run.stdout != want {
            failures.push(format!(
                "{} {:?}: stdout differs from {}\n--- got ---\n{}--- stderr ---\n{}",
                case.name,
                case.args,
                path.display(),
                run.stdout,
                run.stderr
            ));
        }
        if run.code != case.code {
            failures.push(format!(
                "{} {:?}: exit {} (want {})\n{}",
                case.name, case.args, run.code, case.code, run.stderr
            ));
        }
        assert!(run.stderr.is_empty(), "{} wrote to stderr: {}", case.name, run.stderr);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_rule_and_every_output_format_is_covered() {
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(Path::new(REPO).join("tests/lint/golden/rules.json")).unwrap())
            .unwrap();
    let seen: std::collections::BTreeSet<&str> = json["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["rule"].as_str().unwrap())
        .collect();
    for rule in reloader::core::annotation_rules::Rule::ALL {
        assert!(seen.contains(rule.id()), "no golden case for {}", rule.id());
    }
    let broken: Value =
        serde_json::from_str(&std::fs::read_to_string(Path::new(REPO).join("tests/lint/golden/broken.json")).unwrap())
            .unwrap();
    assert!(!broken["inputErrors"].as_array().unwrap().is_empty());
    for ext in ["txt", "json", "sarif"] {
        assert!(CASES.iter().any(|c| c.ext == ext && c.name == "rules"), "{ext}");
        assert!(CASES.iter().any(|c| c.ext == ext && c.name == "broken"), "{ext}");
    }
}

#[test]
fn json_summary_agrees_with_the_exit_status() {
    for case in CASES.iter().filter(|c| c.ext == "json") {
        let run = reloader(case.args, case.stdin);
        let v: Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(v["summary"]["exitCode"], case.code, "{}", case.name);
        let problems = v["problems"].as_array().unwrap();
        let errors = problems.iter().filter(|p| p["level"] == "error").count();
        assert_eq!(v["summary"]["errors"], errors, "{}", case.name);
        for p in problems {
            assert!(
                p["line"].as_u64().unwrap() >= 1 && p["column"].as_u64().unwrap() >= 1,
                "{p}"
            );
        }
    }
}

#[test]
fn usage_errors_exit_2() {
    let run = reloader(&["lint"], None);
    assert_eq!(run.code, 2, "a PATH is required");
    let run = reloader(&["lint", RULES, "--", "--reload-strategy=sometimes"], None);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--reload-strategy"), "{}", run.stderr);
    assert!(run.stdout.is_empty());
    let run = reloader(
        &["lint", RULES, "--", "--extra-workload-kinds=apps.kruise.io/CloneSet"],
        None,
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("\"apps.kruise.io/CloneSet\" is not GROUP/VERSION/KIND[=PATH]"),
        "{}",
        run.stderr
    );
    let run = reloader(&["lint", RULES, "--", "--no-such-flag"], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let run = reloader(&["lint", "--help"], None);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("Exit status: 0"));
}

#[test]
fn the_controller_flags_are_untouched() {
    // Not a subcommand: the flat Stakater flags, parsed as before (here: a bad value).
    let run = reloader(&["--reload-strategy=sometimes"], None);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("reload-strategy"), "{}", run.stderr);
    let run = reloader(&["--help"], None);
    assert!(run.stdout.contains("--auto-reload-all"));
    assert!(run.stdout.contains("reloader lint PATH"));
}
