//! Stakater's selector flags (`--namespace-selector`, `--resource-label-selector`) as one
//! Kubernetes label selector.

use super::ConfigError;
use super::lists::list_items;
use crate::core::names::{check_label_value, check_qualified_name};

/// Converts Stakater's selector flags to one Kubernetes label selector (terms ANDed), or `None`
/// when no term is given. Each term is `k=v`, legacy `k:v`, `k:*` / `k=*` (key exists), or
/// selector syntax passed through: `k==v`, `k!=v`, `!k`, `k`, `k in (a,b)`, `k notin (a,b)`,
/// `k>1`, `k<1`.
pub(super) fn label_selector(flag: &'static str, values: &[String]) -> Result<Option<String>, ConfigError> {
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

/// A selector operator that a Kubernetes `LabelSelectorRequirement` can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelectorOperator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl SelectorOperator {
    pub fn as_str(self) -> &'static str {
        match self {
            SelectorOperator::In => "In",
            SelectorOperator::NotIn => "NotIn",
            SelectorOperator::Exists => "Exists",
            SelectorOperator::DoesNotExist => "DoesNotExist",
        }
    }
}

/// One term of a selector in the structured form of a `LabelSelectorRequirement`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectorRequirement {
    pub key: String,
    pub operator: SelectorOperator,
    /// Empty for `Exists` and `DoesNotExist`.
    pub values: Vec<String>,
}

/// The terms of a selector made by [`label_selector`] as `LabelSelectorRequirement`s, for a
/// webhook configuration's `namespaceSelector`. The numeric comparisons (`k>1`, `k<1`) have no
/// such form and are left out: the result then selects a superset, and the webhook's handlers
/// apply the exact selector.
pub(super) fn selector_requirements(selector: &str) -> Vec<SelectorRequirement> {
    let terms = split_terms(selector).unwrap_or_default();
    terms.into_iter().filter_map(|term| requirement(term.trim())).collect()
}

fn requirement(term: &str) -> Option<SelectorRequirement> {
    let make = |key: &str, operator, values: Vec<String>| {
        Some(SelectorRequirement {
            key: key.trim().to_string(),
            operator,
            values,
        })
    };
    if let Some(open) = term.find('(') {
        let (key, op) = term[..open].trim_end().rsplit_once(char::is_whitespace)?;
        let values = term[open + 1..]
            .trim_end_matches(')')
            .split(',')
            .map(|v| v.trim().to_string())
            .collect();
        let operator = if op == "notin" {
            SelectorOperator::NotIn
        } else {
            SelectorOperator::In
        };
        return make(key, operator, values);
    }
    if let Some(key) = term.strip_prefix('!') {
        return make(key, SelectorOperator::DoesNotExist, Vec::new());
    }
    if term.contains(['<', '>']) {
        return None;
    }
    for (op, operator) in [
        ("!=", SelectorOperator::NotIn),
        ("==", SelectorOperator::In),
        ("=", SelectorOperator::In),
    ] {
        if let Some((key, value)) = term.split_once(op) {
            return make(key, operator, vec![value.trim().to_string()]);
        }
    }
    make(term, SelectorOperator::Exists, Vec::new())
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
            check_label_value(value).map_err(|e| e.to_string())?;
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
        check_label_value(value).map_err(|e| e.to_string())?;
    }
    Ok(term.to_string())
}

fn checked_key(key: &str) -> Result<&str, String> {
    if key.is_empty() {
        return Err("empty key".into());
    }
    check_qualified_name(key).map_err(|e| e.to_string())?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{error, settings};
    use super::*;

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
    fn selectors_become_label_selector_requirements() {
        use SelectorOperator::*;
        let req = |key: &str, operator, values: &[&str]| SelectorRequirement {
            key: key.into(),
            operator,
            values: values.iter().map(|v| v.to_string()).collect(),
        };
        let s = settings(&["--namespace-selector=a=b,c:*,d!=e,!f,g==h,tier notin (x, y),k in (z),gen>3,env="]);
        let selector = s.namespace_selector.unwrap();
        assert_eq!(
            selector_requirements(&selector),
            vec![
                req("a", In, &["b"]),
                req("c", Exists, &[]),
                req("d", NotIn, &["e"]),
                req("f", DoesNotExist, &[]),
                req("g", In, &["h"]),
                req("tier", NotIn, &["x", "y"]),
                req("k", In, &["z"]),
                req("env", In, &[""]),
            ],
            "{selector}"
        );
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
}
