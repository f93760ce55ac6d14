//! The three renderings of a [`Report`]: for people (`human`, coloured only on a terminal),
//! `json` for scripts, and `sarif` (SARIF 2.1.0) for code-scanning UIs.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{InputError, Level, Problem, Report};
use crate::core::annotation_rules::Rule;
use crate::manifests::Position;

/// The rule id of input that could not be used, in the reports.
pub const INVALID_INPUT: &str = "invalid-input";

/// ANSI styling, or none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn level(&self, level: Level) -> String {
        match level {
            Level::Error => self.paint("1;31", "error"),
            Level::Warning => self.paint("1;33", "warning"),
        }
    }
}

fn place(file: &str, at: Option<Position>) -> String {
    match at {
        Some(at) => format!("{file}:{}:{}", at.line, at.column),
        None => file.to_string(),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// File rank, document, position, and input errors before problems.
type LineOrder = (usize, Option<usize>, Option<Position>, u8);

/// One line per problem and per unusable input, then a summary line.
pub fn human(report: &Report, style: Style) -> String {
    let mut out = String::new();
    // Problems and unusable input together, in file order, then by position.
    let rank = |file: &str| report.file_order.iter().position(|f| f == file).unwrap_or(usize::MAX);
    let mut lines: Vec<(LineOrder, String)> = Vec::new();
    for e in &report.input_errors {
        let line = format!(
            "{}: {}[{INVALID_INPUT}]: {}",
            style.paint("1", &place(&e.file, e.at)),
            style.level(Level::Error),
            e.message
        );
        lines.push(((rank(&e.file), e.document, e.at, 0), line));
    }
    for p in &report.problems {
        let line = format!(
            "{}: {}[{}]: {} ({}, document {})",
            style.paint("1", &place(&p.file, p.at)),
            style.level(p.level),
            p.rule.id(),
            p.message,
            p.object,
            p.document
        );
        lines.push(((rank(&p.file), Some(p.document), p.at, 1), line));
    }
    // A stable sort: problems keep the report's order among equals.
    lines.sort_by_key(|(order, _)| *order);
    for (_, line) in lines {
        let _ = writeln!(out, "{line}");
    }
    let checked = format!(
        "{} ({}, {} checked)",
        plural(report.files, "file", "files"),
        plural(report.documents, "document", "documents"),
        plural(report.objects, "object", "objects")
    );
    let summary = if report.problems.is_empty() && report.input_errors.is_empty() {
        format!("no problems in {checked}")
    } else {
        let mut parts = vec![
            plural(report.errors(), "error", "errors"),
            plural(report.warnings(), "warning", "warnings"),
        ];
        if !report.input_errors.is_empty() {
            parts.push(plural(report.input_errors.len(), "unusable input", "unusable inputs"));
        }
        format!("{} in {checked}", parts.join(", "))
    };
    let _ = writeln!(out, "{summary}");
    out
}

fn position(at: Option<Position>) -> Value {
    match at {
        Some(at) => json!({"line": at.line, "column": at.column}),
        None => json!({}),
    }
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Some(b)) = (a.as_object_mut(), b.as_object()) {
        for (k, v) in b {
            a.insert(k.clone(), v.clone());
        }
    }
    a
}

/// The report as one JSON document.
pub fn json(report: &Report) -> String {
    let problems: Vec<Value> = report
        .problems
        .iter()
        .map(|p: &Problem| {
            let mut v = merge(json!({"file": p.file, "document": p.document}), position(p.at));
            v = merge(
                v,
                json!({
                    "level": p.level,
                    "rule": p.rule.id(),
                    "key": p.key,
                    "message": p.message,
                    "object": p.object,
                }),
            );
            if let Some(s) = &p.suggestion {
                v = merge(v, json!({"suggestion": s}));
            }
            v
        })
        .collect();
    let input_errors: Vec<Value> = report
        .input_errors
        .iter()
        .map(|e: &InputError| {
            let mut v = json!({"file": e.file});
            if let Some(d) = e.document {
                v = merge(v, json!({"document": d}));
            }
            merge(merge(v, position(e.at)), json!({"message": e.message}))
        })
        .collect();
    let value = json!({
        "summary": {
            "files": report.files,
            "documents": report.documents,
            "objects": report.objects,
            "errors": report.errors(),
            "warnings": report.warnings(),
            "inputErrors": report.input_errors.len(),
            "exitCode": report.exit_code(),
        },
        "problems": problems,
        "inputErrors": input_errors,
    });
    format!("{}\n", serde_json::to_string_pretty(&value).unwrap_or_default())
}

/// The SARIF 2.1.0 schema this output follows.
pub const SARIF_SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// A path as a relative URI reference: characters outside RFC 3986's unreserved set and `/`
/// are percent-encoded.
pub fn uri_of(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn sarif_level(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warning => "warning",
    }
}

fn sarif_location(file: &str, at: Option<Position>) -> Value {
    let mut physical = json!({"artifactLocation": {"uri": uri_of(file)}});
    if let Some(at) = at {
        physical["region"] = json!({"startLine": at.line, "startColumn": at.column});
    }
    json!({"physicalLocation": physical})
}

/// The report as a SARIF 2.1.0 log with one run. Under `--strict` warnings are already errors.
pub fn sarif(report: &Report) -> String {
    let mut rules: Vec<Value> = Rule::ALL
        .iter()
        .map(|r| {
            let level = match r.severity() {
                crate::core::annotation_rules::Severity::Deny => "error",
                crate::core::annotation_rules::Severity::Warn => "warning",
            };
            json!({
                "id": r.id(),
                "shortDescription": {"text": r.description()},
                "defaultConfiguration": {"level": level},
            })
        })
        .collect();
    rules.push(json!({
        "id": INVALID_INPUT,
        "shortDescription": {"text": "A file or document that could not be read as Kubernetes manifests."},
        "defaultConfiguration": {"level": "error"},
    }));
    let index = |id: &str| Rule::ALL.iter().position(|r| r.id() == id).unwrap_or(Rule::ALL.len());
    let mut results: Vec<Value> = report
        .input_errors
        .iter()
        .map(|e| {
            json!({
                "ruleId": INVALID_INPUT,
                "ruleIndex": Rule::ALL.len(),
                "level": "error",
                "message": {"text": e.message},
                "locations": [sarif_location(&e.file, e.at)],
            })
        })
        .collect();
    results.extend(report.problems.iter().map(|p| {
        let mut message = format!("{} ({}, document {})", p.message, p.object, p.document);
        if let Some(s) = &p.suggestion {
            let _ = write!(message, " Suggested key: {s}.");
        }
        json!({
            "ruleId": p.rule.id(),
            "ruleIndex": index(p.rule.id()),
            "level": sarif_level(p.level),
            "message": {"text": message},
            "locations": [sarif_location(&p.file, p.at)],
        })
    }));
    let log = json!({
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "reloader",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "columnKind": "unicodeCodePoints",
            "invocations": [{"executionSuccessful": report.input_errors.is_empty()}],
            "results": results,
        }],
    });
    format!("{}\n", serde_json::to_string_pretty(&log).unwrap_or_default())
}
