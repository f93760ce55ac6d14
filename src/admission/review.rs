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
use crate::core::workload::extra::{self, SpecField};

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

/// An object of a review as the handlers read it: only what some rule reads, so the rest is
/// skipped while parsing instead of being built into a tree, cloned, compared and dropped.
/// Skipped outright: `status`, `metadata.managedFields`, the content of `kubectl apply`'s copy
/// of the object ([`LAST_APPLIED`](crate::core::source::LAST_APPLIED)), and the workload spec's
/// fields around its pod template (replicas, selector, strategy; `paused` is read; what holds an
/// extra kind's template elsewhere in its spec is kept whole, [`extra::spec_field`]). Inside the
/// pod template, the pod spec's and its containers' fields that no rule reads (images, probes,
/// resources, affinity, ...) are each kept as a [`Fingerprint`] of their text. The applied copy
/// stays as an empty string, as in the engine's store: its annotation map is never seen empty,
/// so no patch computed on it can replace the map. Nothing in a patch touches what was skipped
/// or fingerprinted: a patch adds stamps to annotations and env lists, and a template that
/// differs only in fingerprinted fields of equal text is the same template.
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

/// Where a value sits in an object, and what is skipped there.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    /// The object itself: `status` skipped, `metadata` and `spec` read by their places.
    Object,
    /// `metadata`: `managedFields` skipped, `annotations` read as [`Place::Annotations`].
    Metadata,
    /// `metadata.annotations`: the applied copy's content skipped.
    Annotations,
    /// A workload's `spec` (or a CronJob's `jobTemplate.spec`): only `template`, `jobTemplate`
    /// and `paused` kept.
    WorkloadSpec,
    /// A CronJob's `spec.jobTemplate`.
    JobTemplate,
    /// A pod template: its `spec` read as [`Place::PodSpec`].
    Template,
    /// A pod spec: `containers`, `initContainers` and `volumes` kept, the rest fingerprinted.
    PodSpec,
    /// A list of containers.
    Containers,
    /// A container: `name`, `env`, `envFrom` and `volumeMounts` kept, the rest fingerprinted.
    Container,
}

impl<'de> Deserialize<'de> for ObjectJson {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(Pruning)
    }
}

/// Reads the object's top map as [`Place::Object`] says. Anything but a map is
/// [`ObjectJson::NotObject`], a refused review.
struct Pruning;

/// `metadata` or its `annotations`, read as the [`Place`] says; `null` when it is not a map
/// (no rule finds anything in one that is not a map; an API server never sends one).
struct Inner(Place);

impl<'de> DeserializeSeed<'de> for Inner {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        match deserializer.deserialize_any(Kept(self.0))? {
            map @ Value::Object(_) => Ok(map),
            _ => Ok(Value::Null),
        }
    }
}

/// A value below the object's top, read as its [`Place`] says when it is a map (or, for
/// [`Place::Containers`], a list); any other shape is kept as it is, so a rule sees what it
/// would have seen in the whole object.
#[derive(Clone, Copy)]
struct Kept(Place);

impl<'de> DeserializeSeed<'de> for Kept {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// The text of a value no rule reads, reduced to a number: equal text, equal number. Templates
/// that differ only where no rule reads still compare unequal, as the re-apply rule needs. The
/// seed is drawn at start, so a collision cannot be prepared in advance; one would only give
/// that update its old stamps back, as for a re-apply.
struct Fingerprint(Value);

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // foldhash rather than std's SipHash: a quarter of its instructions on these short texts.
        static KEY: std::sync::OnceLock<foldhash::quality::RandomState> = std::sync::OnceLock::new();
        let raw = <&serde_json::value::RawValue>::deserialize(deserializer)?;
        let hash = std::hash::BuildHasher::hash_one(KEY.get_or_init(Default::default), raw.get());
        Ok(Fingerprint(Value::from(hash)))
    }
}

/// The map at `place` without what the place skips.
fn pruned_map<'de, A: MapAccess<'de>>(place: Place, mut map: A) -> Result<Value, A::Error> {
    let mut out = Map::new();
    while let Some(key) = map.next_key::<String>()? {
        let value = match (place, key.as_str()) {
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
            (Place::Object | Place::JobTemplate, "spec") => map.next_value_seed(Kept(Place::WorkloadSpec))?,
            (Place::WorkloadSpec, "template") => map.next_value_seed(Kept(Place::Template))?,
            (Place::WorkloadSpec, "jobTemplate") => map.next_value_seed(Kept(Place::JobTemplate))?,
            (Place::WorkloadSpec, "paused") => map.next_value()?,
            // An extra kind's template elsewhere in its spec (`--extra-workload-kinds`).
            (Place::WorkloadSpec, field) => match extra::spec_field(field) {
                Some(SpecField::Template) => map.next_value_seed(Kept(Place::Template))?,
                Some(SpecField::Holds) => map.next_value()?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            },
            (Place::Template, "spec") => map.next_value_seed(Kept(Place::PodSpec))?,
            (Place::PodSpec, "containers" | "initContainers") => map.next_value_seed(Kept(Place::Containers))?,
            (Place::PodSpec, "volumes") | (Place::Container, "name" | "env" | "envFrom" | "volumeMounts") => {
                map.next_value()?
            }
            (Place::PodSpec | Place::Container, _) => map.next_value::<Fingerprint>()?.0,
            _ => map.next_value()?,
        };
        out.insert(key, value);
    }
    Ok(Value::Object(out))
}

impl<'de> Visitor<'de> for Pruning {
    type Value = ObjectJson;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ObjectJson, A::Error> {
        pruned_map(Place::Object, map).map(ObjectJson::Object)
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

/// As serde_json's own `Value` visitor, but maps and container lists are read by their place.
impl<'de> Visitor<'de> for Kept {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        pruned_map(self.0, map)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        if self.0 == Place::Containers {
            while let Some(container) = seq.next_element_seed(Kept(Place::Container))? {
                out.push(container);
            }
        } else {
            while let Some(value) = seq.next_element()? {
                out.push(value);
            }
        }
        Ok(Value::Array(out))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
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
                      "spec":{"template":{"status":"kept"}},"status":{"replicas":3}},
            "oldObject":{"metadata":"odd","status":[1,2]}}}"#;
        let review = parse(body.as_bytes()).unwrap();
        let object = review.object.unwrap();
        assert_eq!(
            object,
            serde_json::json!({"metadata": {"name": "web", "annotations": {"a": "b"}}, "spec": {"template": {"status": "kept"}}})
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

    fn object_of(object: &Value) -> Value {
        let body = serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                        "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
                        "operation": "CREATE", "userInfo": {}, "object": object}});
        parse(body.to_string().as_bytes()).unwrap().object.unwrap()
    }

    fn pod_spec() -> Value {
        serde_json::json!({
            "containers": [
                {"name": "web", "image": "web:1", "ports": [{"containerPort": 8080}],
                 "env": [{"name": "A", "value": "1"},
                         {"name": "DB", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}}],
                 "envFrom": [{"configMapRef": {"name": "cfg"}}],
                 "resources": {"limits": {"cpu": "1"}},
                 "volumeMounts": [{"name": "tls", "mountPath": "/tls"}]},
                {"name": "proxy", "image": "proxy:1", "envFrom": [{"secretRef": {"name": "proxy"}}]}],
            "initContainers": [{"name": "init", "image": "init:1", "env": [{"name": "X",
                "valueFrom": {"configMapKeyRef": {"name": "init-cfg", "key": "x"}}}]}],
            "volumes": [{"name": "tls", "secret": {"secretName": "tls"}},
                        {"name": "all", "projected": {"sources": [{"configMap": {"name": "p"}}]}},
                        {"name": "csi", "csi": {"driver": "d", "volumeAttributes": {"secretProviderClass": "spc"}}}],
            "nodeSelector": {"disk": "ssd"},
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}},
            "restartPolicy": "Always"
        })
    }

    #[test]
    fn workloads_are_read_as_far_as_rules_read_them() {
        use crate::core::workload::{Workload, WorkloadKind};
        let template = serde_json::json!({"metadata": {"labels": {"app": "web"}, "annotations": {"t": "1"}},
                                          "spec": pod_spec()});
        let deployment = serde_json::json!({"metadata": {"name": "web", "annotations": {"a": "b"}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "paused": true,
                     "strategy": {"type": "RollingUpdate"}, "template": template}});
        let cronjob = serde_json::json!({"metadata": {"name": "job"},
            "spec": {"schedule": "* * * * *", "jobTemplate": {"metadata": {"labels": {"j": "1"}},
                "spec": {"backoffLimit": 2, "template": template}}}});
        for (kind, full) in [
            (WorkloadKind::Deployment, &deployment),
            (WorkloadKind::CronJob, &cronjob),
        ] {
            let read = object_of(full);
            let (whole, pruned) = (Workload::new(kind, full), Workload::new(kind, &read));
            // What the rules read is all there, and the same.
            assert_eq!(pruned.annotations(), whole.annotations());
            assert_eq!(
                pruned.template_annotations().unwrap(),
                whole.template_annotations().unwrap()
            );
            let spec = |w: &Workload| w.pod_spec().unwrap();
            assert_eq!(
                crate::core::references::references(&spec(&pruned)),
                crate::core::references::references(&spec(&whole)),
                "{kind:?}"
            );
            assert_eq!(format!("{:?}", spec(&pruned)), format!("{:?}", spec(&whole)));
            let (t_read, t_full) = (pruned.template().unwrap(), whole.template().unwrap());
            assert_eq!(t_read["metadata"], t_full["metadata"]);
            for c in ["containers", "initContainers"] {
                for (read, full) in t_read["spec"][c]
                    .as_array()
                    .unwrap()
                    .iter()
                    .zip(t_full["spec"][c].as_array().unwrap())
                {
                    for field in ["name", "env", "envFrom", "volumeMounts"] {
                        assert_eq!(read.get(field), full.get(field), "{kind:?} {c} {field}");
                    }
                    assert!(read["image"].is_u64(), "fingerprinted: {read}");
                }
            }
            assert_eq!(t_read["spec"]["volumes"], t_full["spec"]["volumes"]);
            assert!(t_read["spec"]["nodeSelector"].is_u64() && t_read["spec"]["affinity"].is_u64());
        }
        // Around the template, only `paused` is kept.
        let read = object_of(&deployment);
        let spec = read["spec"].as_object().unwrap();
        assert_eq!(spec.keys().collect::<Vec<_>>(), ["paused", "template"]);
        assert_eq!(read["spec"]["paused"], true);
        let read = object_of(&cronjob);
        assert_eq!(
            read["spec"].as_object().unwrap().keys().collect::<Vec<_>>(),
            ["jobTemplate"]
        );
        assert_eq!(
            read["spec"]["jobTemplate"]["spec"]
                .as_object()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            ["template"]
        );
    }

    #[test]
    fn fingerprints_are_equal_for_equal_text_only() {
        let object = |image: &str, args: Value| {
            let mut spec = pod_spec();
            spec["containers"][0]["image"] = image.into();
            spec["containers"][0]["args"] = args;
            object_of(&serde_json::json!({"spec": {"template": {"spec": spec}}}))
        };
        let a = object("web:1", serde_json::json!(["-v"]));
        assert_eq!(a, object("web:1", serde_json::json!(["-v"])));
        assert_ne!(a, object("web:2", serde_json::json!(["-v"])));
        assert_ne!(a, object("web:1", serde_json::json!(["-v", "-q"])));
        let at = |o: &Value, field: &str| o["spec"]["template"]["spec"]["containers"][0][field].clone();
        assert_ne!(at(&a, "image"), at(&a, "args"));
    }

    #[test]
    fn odd_shapes_below_the_top_are_kept_as_they_are() {
        for spec in [
            serde_json::json!("text"),
            serde_json::json!({"template": [1, {"a": null}]}),
            serde_json::json!({"template": {"spec": {"containers": {"name": "not a list"}, "volumes": 7}}}),
            serde_json::json!({"template": {"spec": {"containers": [1.5, "c", null, [true]]}}}),
            serde_json::json!({"template": {"spec": null}, "paused": "yes"}),
        ] {
            let object = serde_json::json!({"metadata": {"name": "x"}, "spec": spec});
            assert_eq!(object_of(&object), object);
        }
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
