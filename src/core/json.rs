//! JSON Pointer lookups without allocating: `serde_json::Value::pointer` builds a new `String`
//! for every token it reads (to undo `~0`/`~1` escapes), and the admission and reconcile paths
//! read a dozen literal paths per object. Same answers as `pointer`/`pointer_mut`; a token with
//! an escape is unescaped as there.

use std::borrow::Cow;

use serde_json::Value;

pub trait JsonAt {
    /// As `Value::pointer`.
    fn at(&self, pointer: &str) -> Option<&Value>;
    /// As `Value::pointer_mut`.
    fn at_mut(&mut self, pointer: &str) -> Option<&mut Value>;
}

impl JsonAt for Value {
    fn at(&self, pointer: &str) -> Option<&Value> {
        let Some(rest) = tokens(pointer)? else {
            return Some(self);
        };
        rest.split('/').try_fold(self, |value, token| match value {
            Value::Object(map) => map.get(unescape(token).as_ref()),
            Value::Array(items) => index(token).and_then(|i| items.get(i)),
            _ => None,
        })
    }

    fn at_mut(&mut self, pointer: &str) -> Option<&mut Value> {
        let Some(rest) = tokens(pointer)? else {
            return Some(self);
        };
        rest.split('/').try_fold(self, |value, token| match value {
            Value::Object(map) => map.get_mut(unescape(token).as_ref()),
            Value::Array(items) => index(token).and_then(|i| items.get_mut(i)),
            _ => None,
        })
    }
}

/// The pointer after its leading `/`; `Some(None)` for the whole document (""), `None` for a
/// pointer that is not one.
fn tokens(pointer: &str) -> Option<Option<&str>> {
    if pointer.is_empty() {
        return Some(None);
    }
    pointer.strip_prefix('/').map(Some)
}

fn unescape(token: &str) -> Cow<'_, str> {
    if token.contains('~') {
        Cow::Owned(token.replace("~1", "/").replace("~0", "~"))
    } else {
        Cow::Borrowed(token)
    }
}

/// An array index as RFC 6901 spells it: digits, no leading zero (but "0"), no sign.
fn index(token: &str) -> Option<usize> {
    if token.is_empty() || token.starts_with('+') || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    token.parse().ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn answers_as_serde_json_pointer() {
        let mut doc = json!({
            "metadata": {"annotations": {"reloader.stakater.com/auto": "true", "a~b": "tilde", "": "empty"}},
            "spec": {"template": {"spec": {"containers": [{"name": "app", "env": [{"name": "X"}]}]}}},
            "list": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
            "n": 1
        });
        let pointers = [
            "",
            "/",
            "/metadata",
            "/metadata/annotations/reloader.stakater.com~1auto",
            "/metadata/annotations/a~0b",
            "/metadata/annotations/",
            "/metadata/annotations/missing",
            "/spec/template/spec/containers/0/env/0/name",
            "/spec/template/spec/containers/1",
            "/spec/template/spec/containers/00",
            "/spec/template/spec/containers/+0",
            "/spec/template/spec/containers/-1",
            "/spec/template/spec/containers/x",
            "/list/10",
            "/list/010",
            "/n/0",
            "metadata",
            "//",
        ];
        for pointer in pointers {
            assert_eq!(doc.at(pointer), doc.pointer(pointer), "{pointer:?}");
            let expected = doc.clone().pointer_mut(pointer).cloned();
            assert_eq!(doc.at_mut(pointer).cloned(), expected, "{pointer:?}");
        }
        *doc.at_mut("/spec/template/spec/containers/0/name").unwrap() = json!("renamed");
        assert_eq!(doc["spec"]["template"]["spec"]["containers"][0]["name"], "renamed");
    }
}
