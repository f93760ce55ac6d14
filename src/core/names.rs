//! Kubernetes name syntax: object names, namespace names, annotation and label keys, label
//! values. The one place these rules are written; the configuration, the annotation vocabulary
//! and the selectors all ask here.

use thiserror::Error;

/// Why a key or a label value is not valid.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum NameError {
    #[error("prefix {0:?} is not a lower-case DNS subdomain")]
    Prefix(String),
    #[error("{0:?} must be 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit")]
    Name(String),
    #[error(
        "value {0:?} must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
    )]
    LabelValue(String),
}

/// Longest RFC 1123 label, label name or label value.
pub const MAX_LABEL_LEN: usize = 63;
/// Longest RFC 1123 subdomain (also the longest key prefix).
pub const MAX_SUBDOMAIN_LEN: usize = 253;
/// Longest qualified name (annotation or label key): a prefix, `/`, then a name.
pub const MAX_QUALIFIED_NAME_LEN: usize = MAX_SUBDOMAIN_LEN + 1 + MAX_LABEL_LEN;

/// RFC 1123 subdomain, the syntax of ConfigMap and Secret names (and of key prefixes).
pub fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= MAX_SUBDOMAIN_LEN && name.split('.').all(|label| is_rfc1123_label(label, usize::MAX))
}

/// RFC 1123 label: the syntax of namespace names.
pub fn is_dns_label(name: &str) -> bool {
    is_rfc1123_label(name, MAX_LABEL_LEN)
}

/// The name part of a qualified name, and a non-empty label value: at most 63 alphanumerics,
/// `-`, `_` or `.`, starting and ending alphanumeric.
pub fn is_label_name(name: &str) -> bool {
    is_token(name, MAX_LABEL_LEN, u8::is_ascii_alphanumeric, |b| {
        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
    })
}

/// Kubernetes `IsQualifiedName` (annotation and label keys): an optional DNS-subdomain prefix and
/// `/`, then a name as in [`is_label_name`]. The error says which part is wrong.
pub fn check_qualified_name(key: &str) -> Result<(), NameError> {
    let name = match key.split_once('/') {
        Some((prefix, name)) => {
            if !is_dns_subdomain(prefix) {
                return Err(NameError::Prefix(prefix.to_string()));
            }
            name
        }
        None => key,
    };
    if !is_label_name(name) {
        return Err(NameError::Name(name.to_string()));
    }
    Ok(())
}

/// Kubernetes label values: empty, or a name as in [`is_label_name`].
pub fn check_label_value(value: &str) -> Result<(), NameError> {
    if value.is_empty() || is_label_name(value) {
        Ok(())
    } else {
        Err(NameError::LabelValue(value.to_string()))
    }
}

/// 1 to `max` lower-case alphanumerics or `-`, starting and ending alphanumeric.
fn is_rfc1123_label(label: &str, max: usize) -> bool {
    let lower_alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    is_token(label, max, lower_alnum, |b| lower_alnum(b) || *b == b'-')
}

/// 1 to `max` bytes, each one `inner`, the first and the last also `edge`.
fn is_token(s: &str, max: usize, edge: impl Fn(&u8) -> bool, inner: impl Fn(&u8) -> bool) -> bool {
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => bytes.len() <= max && edge(first) && edge(last) && bytes.iter().all(inner),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_subdomains() {
        assert!(is_dns_subdomain("my-config.v1"));
        for bad in ["", "My", "-a", "a-", "a..b", "a_b", "app-.*"] {
            assert!(!is_dns_subdomain(bad), "{bad:?}");
        }
        // Labels of a subdomain have no length limit of their own; the whole does.
        assert!(is_dns_subdomain(&"a".repeat(MAX_SUBDOMAIN_LEN)));
        assert!(!is_dns_subdomain(&"a".repeat(MAX_SUBDOMAIN_LEN + 1)));
    }

    #[test]
    fn dns_labels() {
        for good in ["a", "0", "kube-system", "a1-b2"] {
            assert!(is_dns_label(good), "{good:?}");
        }
        for bad in ["", "Prod", "a_b", "a.b", "-a", "a-"] {
            assert!(!is_dns_label(bad), "{bad:?}");
        }
        assert!(is_dns_label(&"a".repeat(MAX_LABEL_LEN)));
        assert!(!is_dns_label(&"a".repeat(MAX_LABEL_LEN + 1)));
    }

    #[test]
    fn qualified_names() {
        for good in ["app", "App_1.x-y", "reloader.stakater.com/auto", "x.io/Name"] {
            assert_eq!(check_qualified_name(good), Ok(()), "{good:?}");
        }
        for bad in ["", "/a", "a/", "Bad.io/a", "bad key", "a/b/c", "-a", "a."] {
            assert!(check_qualified_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(check_qualified_name("X.io/a"), Err(NameError::Prefix("X.io".into())));
        assert!(
            check_qualified_name("X.io/a")
                .unwrap_err()
                .to_string()
                .starts_with("prefix \"X.io\"")
        );
        assert!(check_qualified_name(&"n".repeat(MAX_LABEL_LEN + 1)).is_err());
        let longest = format!("{}/{}", "p".repeat(MAX_SUBDOMAIN_LEN), "n".repeat(MAX_LABEL_LEN));
        assert_eq!(longest.len(), MAX_QUALIFIED_NAME_LEN);
        assert_eq!(check_qualified_name(&longest), Ok(()));
    }

    #[test]
    fn label_values() {
        for good in ["", "v", "v1.2_3-x", "UPPER"] {
            assert_eq!(check_label_value(good), Ok(()), "{good:?}");
        }
        for bad in ["v w", "-v", "v-", "\"v\"", "a/b"] {
            assert!(check_label_value(bad).is_err(), "{bad:?}");
        }
    }
}
