//! Reading an AdmissionReview from raw bytes, with errors that say what is wrong without quoting
//! the input (a field of the wrong type may hold Secret data, or megabytes).

use k8s_openapi::api::authentication::v1::UserInfo;
use kube::core::admission::{AdmissionRequest, Operation};
use kube::core::{DynamicObject, GroupVersionKind, GroupVersionResource, TypeMeta};
use serde::Deserialize;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::error::Category;
use serde_json::{Map, Value};
use thiserror::Error;

use crate::core::source::LAST_APPLIED;

/// The versions an API server may send; the answer is in the request's version.
const VERSIONS: [&str; 2] = ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"];
/// Request UIDs are UUIDs; the answer echoes the UID, so a forged one is bounded.
const MAX_UID: usize = 128;

#[derive(Debug, Error)]
pub enum ReviewError {
    #[error("not an AdmissionReview: {0}")]
    Json(JsonProblem),
    #[error("the AdmissionReview has no request")]
    NoRequest,
    #[error("not an AdmissionReview: kind must be AdmissionReview, apiVersion admission.k8s.io/v1 or v1beta1")]
    Version,
    #[error("the AdmissionReview's request.uid is longer than {MAX_UID} characters")]
    Uid,
    #[error("the AdmissionReview's request.object or request.oldObject is not a JSON object")]
    Object,
}

/// What is wrong with the JSON, and where; never the offending text.
#[derive(Debug, Error)]
pub enum JsonProblem {
    #[error("empty or truncated JSON")]
    Truncated,
    #[error("invalid JSON at line {line}, column {column}")]
    Syntax { line: usize, column: usize },
    #[error("JSON nested too deeply at line {line}, column {column}")]
    TooDeep { line: usize, column: usize },
    /// Field names come from the AdmissionReview schema, not from the input.
    #[error("{0}")]
    MissingField(String),
    #[error("a field has the wrong type or value at line {line}, column {column}")]
    Data { line: usize, column: usize },
}

impl From<serde_json::Error> for JsonProblem {
    fn from(error: serde_json::Error) -> Self {
        let (line, column) = (error.line(), error.column());
        match error.classify() {
            Category::Eof | Category::Io => JsonProblem::Truncated,
            Category::Syntax if error.to_string().starts_with("recursion limit exceeded") => {
                JsonProblem::TooDeep { line, column }
            }
            Category::Syntax => JsonProblem::Syntax { line, column },
            Category::Data => {
                let message = error.to_string();
                match message.strip_prefix("missing field `") {
                    Some(rest) => match rest.split_once('`') {
                        Some((field, _)) if field.len() <= 64 => {
                            JsonProblem::MissingField(format!("missing field `{field}`"))
                        }
                        _ => JsonProblem::Data { line, column },
                    },
                    None => JsonProblem::Data { line, column },
                }
            }
        }
    }
}

/// A review as read: the request's fields, and its objects as plain JSON.
pub struct Review {
    /// Everything but the objects (`object` and `old_object` are `None` here).
    pub request: AdmissionRequest<DynamicObject>,
    pub object: Option<Value>,
    pub old_object: Option<Value>,
}

/// The wire shape, read in one pass: no `#[serde(flatten)]` (which buffers a whole map before
/// reading it), and the objects straight into `Value`s, so a 3 MiB review is held once, not
/// three times (buffer, `DynamicObject`, `Value`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    request: Option<WireRequest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireRequest {
    uid: String,
    kind: GroupVersionKind,
    resource: GroupVersionResource,
    #[serde(default)]
    sub_resource: Option<String>,
    #[serde(default)]
    request_kind: Option<GroupVersionKind>,
    #[serde(default)]
    request_resource: Option<GroupVersionResource>,
    #[serde(default)]
    request_sub_resource: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: Option<String>,
    operation: Operation,
    user_info: UserInfo,
    #[serde(default)]
    object: Option<ObjectJson>,
    #[serde(default)]
    old_object: Option<ObjectJson>,
    #[serde(default)]
    dry_run: bool,
}

pub fn parse(body: &[u8]) -> Result<Review, ReviewError> {
    // serde_json stops at 128 levels of nesting, so hostile depth costs nothing.
    let wire: Wire = match std::str::from_utf8(body) {
        // UTF-8 checked once for the whole body, so serde_json need not check each string.
        Ok(text) => serde_json::from_str(text),
        // serde_json's own error, with its line and column.
        Err(_) => serde_json::from_slice(body),
    }
    .map_err(|e| ReviewError::Json(e.into()))?;
    // The answer repeats the request's type fields: only ours go back.
    if wire.kind != "AdmissionReview" || !VERSIONS.contains(&wire.api_version.as_str()) {
        return Err(ReviewError::Version);
    }
    let request = wire.request.ok_or(ReviewError::NoRequest)?;
    if request.uid.len() > MAX_UID {
        return Err(ReviewError::Uid);
    }
    let object = request.object.map(ObjectJson::into_value).transpose()?;
    let old_object = request.old_object.map(ObjectJson::into_value).transpose()?;
    Ok(Review {
        request: AdmissionRequest {
            types: TypeMeta {
                api_version: wire.api_version,
                kind: wire.kind,
            },
            uid: request.uid,
            kind: request.kind,
            resource: request.resource,
            sub_resource: request.sub_resource,
            request_kind: request.request_kind,
            request_resource: request.request_resource,
            request_sub_resource: request.request_sub_resource,
            name: request.name,
            namespace: request.namespace,
            operation: request.operation,
            user_info: request.user_info,
            object: None,
            old_object: None,
            dry_run: request.dry_run,
            options: None,
        },
        object,
        old_object,
    })
}

/// An object of a review as the handlers read it: everything but `metadata.managedFields`,
/// `status` and the content of `kubectl apply`'s copy of the object
/// ([`LAST_APPLIED`](crate::core::source::LAST_APPLIED)), which no rule reads and which are
/// often most of the object (an update's status, the field managers and the applied copy of a
/// kubectl-applied workload), so they are skipped while parsing instead of being built into a
/// tree, cloned and compared. Nothing in a patch touches them. The applied copy stays as an
/// empty string, as in the engine's store: its annotation map is never seen empty, so no patch
/// computed on it can replace the map.
enum ObjectJson {
    Object(Value),
    /// Anything but a JSON object (refused, without quoting it).
    NotObject,
}

impl ObjectJson {
    fn into_value(self) -> Result<Value, ReviewError> {
        match self {
            ObjectJson::Object(value) => Ok(value),
            ObjectJson::NotObject => Err(ReviewError::Object),
        }
    }
}

/// Where a map sits in an object, and what is skipped there.
#[derive(Clone, Copy)]
enum Place {
    /// The object itself: `status` skipped, `metadata` read as [`Place::Metadata`].
    Object,
    /// `metadata`: `managedFields` skipped, `annotations` read as [`Place::Annotations`].
    Metadata,
    /// `metadata.annotations`: the applied copy's content skipped.
    Annotations,
}

impl<'de> Deserialize<'de> for ObjectJson {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(Pruning(Place::Object))
    }
}

/// Reads a map without what its [`Place`] skips. Anything but a map is
/// [`ObjectJson::NotObject`]: a refused review at the top, a `null` `metadata` or
/// `annotations` below it (no rule finds anything in one that is not a map; an API server
/// never sends one).
struct Pruning(Place);

/// A map below the top (`metadata`, `annotations`) read as its [`Place`] says; `null` when it
/// is not a map.
struct Inner(Place);

impl<'de> DeserializeSeed<'de> for Inner {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        match deserializer.deserialize_any(Pruning(self.0))? {
            ObjectJson::Object(value) => Ok(value),
            ObjectJson::NotObject => Ok(Value::Null),
        }
    }
}

impl<'de> Visitor<'de> for Pruning {
    type Value = ObjectJson;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ObjectJson, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = match (self.0, key.as_str()) {
                (Place::Object, "status") | (Place::Metadata, "managedFields") => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
                (Place::Object, "metadata") => map.next_value_seed(Inner(Place::Metadata))?,
                (Place::Metadata, "annotations") => map.next_value_seed(Inner(Place::Annotations))?,
                (Place::Annotations, LAST_APPLIED) => {
                    map.next_value::<IgnoredAny>()?;
                    Value::String(String::new())
                }
                _ => map.next_value()?,
            };
            out.insert(key, value);
        }
        Ok(ObjectJson::Object(Value::Object(out)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ObjectJson, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(ObjectJson::NotObject)
    }

    fn visit_bool<E>(self, _: bool) -> Result<ObjectJson, E> {
        Ok(ObjectJson::NotObject)
    }

    fn visit_i64<E>(self, _: i64) -> Result<ObjectJson, E> {
        Ok(ObjectJson::NotObject)
    }

    fn visit_u64<E>(self, _: u64) -> Result<ObjectJson, E> {
        Ok(ObjectJson::NotObject)
    }

    fn visit_f64<E>(self, _: f64) -> Result<ObjectJson, E> {
        Ok(ObjectJson::NotObject)
    }

    fn visit_str<E>(self, _: &str) -> Result<ObjectJson, E> {
        Ok(ObjectJson::NotObject)
    }

    fn visit_unit<E>(self) -> Result<ObjectJson, E> {
        Ok(ObjectJson::NotObject)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(body: &str) -> String {
        parse(body.as_bytes()).map(|_| ()).unwrap_err().to_string()
    }

    #[test]
    fn errors_locate_the_problem_without_quoting_it() {
        assert_eq!(error_of(""), "not an AdmissionReview: empty or truncated JSON");
        assert_eq!(error_of("{\"a\": "), "not an AdmissionReview: empty or truncated JSON");
        assert_eq!(
            error_of("{not json"),
            "not an AdmissionReview: invalid JSON at line 1, column 2"
        );
        let deep = format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"object":{{"spec":{}"#,
            "[".repeat(100_000)
        );
        assert!(error_of(&deep).contains("nested too deeply"), "{}", error_of(&deep));
        assert!(error_of(&"[".repeat(100_000)).contains("wrong type or value"));
        let secret = "s3cr3t-value";
        let wrong = format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"u","kind":{{"group":"","version":"v1","kind":"Secret"}},"resource":{{"group":"","version":"v1","resource":"secrets"}},"operation":"CREATE","userInfo":{{}},"object":"{secret}"}}}}"#
        );
        let message = error_of(&wrong);
        assert!(message.contains("is not a JSON object"), "{message}");
        assert!(!message.contains(secret), "{message}");
        let unknown_op = wrong.replace("\"CREATE\"", &format!("\"{secret}\""));
        assert!(error_of(&unknown_op).contains("wrong type or value"));
        assert!(!error_of(&unknown_op).contains(secret));
        assert_eq!(
            error_of(r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}"#),
            "not an AdmissionReview: missing field `uid`"
        );
    }

    #[test]
    fn objects_are_read_without_field_managers_and_status() {
        let body = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u",
            "kind":{"group":"apps","version":"v1","kind":"Deployment"},
            "resource":{"group":"apps","version":"v1","resource":"deployments"},
            "operation":"UPDATE","userInfo":{},
            "object":{"metadata":{"name":"web","managedFields":[{"manager":"kubectl"}],"annotations":{"a":"b"}},
                      "spec":{"status":"kept"},"status":{"replicas":3}},
            "oldObject":{"metadata":"odd","status":[1,2]}}}"#;
        let review = parse(body.as_bytes()).unwrap();
        let object = review.object.unwrap();
        assert_eq!(
            object,
            serde_json::json!({"metadata": {"name": "web", "annotations": {"a": "b"}}, "spec": {"status": "kept"}})
        );
        assert_eq!(review.old_object.unwrap(), serde_json::json!({"metadata": null}));
    }

    #[test]
    fn the_applied_copy_is_read_as_an_empty_string() {
        let applied = serde_json::json!({"spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}});
        let body = serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                        "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
                        "operation": "UPDATE", "userInfo": {},
                        "object": {"metadata": {"annotations": {LAST_APPLIED: applied.to_string(), "a": "b"},
                                                "labels": {LAST_APPLIED: "kept"}},
                                   "spec": {"template": {"metadata": {"annotations": {LAST_APPLIED: "kept"}}}}},
                        "oldObject": {"metadata": {"annotations": "odd"}}}});
        let review = parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            review.object.unwrap(),
            serde_json::json!({"metadata": {"annotations": {LAST_APPLIED: "", "a": "b"}, "labels": {LAST_APPLIED: "kept"}},
                               "spec": {"template": {"metadata": {"annotations": {LAST_APPLIED: "kept"}}}}})
        );
        assert_eq!(
            review.old_object.unwrap(),
            serde_json::json!({"metadata": {"annotations": null}})
        );
    }

    #[test]
    fn only_admission_reviews_in_our_versions() {
        let review = |version: &str, kind: &str| format!(r#"{{"apiVersion":"{version}","kind":"{kind}"}}"#);
        assert_eq!(
            error_of(&review("admission.k8s.io/v1", "AdmissionReview")),
            "the AdmissionReview has no request"
        );
        assert_eq!(
            error_of(&review("admission.k8s.io/v1beta1", "AdmissionReview")),
            "the AdmissionReview has no request"
        );
        assert!(error_of(&review(&"x".repeat(10_000), "AdmissionReview")).contains("apiVersion admission.k8s.io/v1"));
        assert!(error_of(&review("admission.k8s.io/v1", "Pod")).contains("kind must be AdmissionReview"));
    }
}
