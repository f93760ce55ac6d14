//! The admission webhook: `POST /mutate` stamps workloads with the current hashes of the sources
//! they reload on (the same desired-state function as the engine), `POST /validate` rejects
//! typo'd or invalid reloader annotations and warns about soft problems. Reads of the shared
//! store, with no side effects, so dry-run requests get the same answer; the one API call is a
//! lookup of a source the cache has not seen, before a stamp records it absent ([`lookup`]).

pub mod certs;
pub mod lookup;
pub mod register;
pub mod server;

mod review;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::core::decision::{DecisionOptions, dependencies};
use crate::core::keys::StampKeys;
use crate::core::lint::{
    LookedIn, Severity, Subject, lint_object, marked_match, match_without_search, missing_message, missing_source,
    reload_list_names, uses_search,
};
use crate::core::plan::{ReloadStrategy, Stamping, admitted};
use crate::core::source::{Overlay, SourceRef, SourceView};
use crate::core::workload::{Workload, WorkloadKind, string_map};
use crate::metrics::{AdmissionLabels, AdmissionResult, Metrics, Webhook};
use crate::store::Store;

/// Kubernetes objects are at most ~1.5 MiB; anything larger is not a real review.
pub const BODY_LIMIT: usize = 3 * 1024 * 1024;

/// What the handlers read.
#[derive(Clone)]
pub struct AdmissionContext {
    pub store: Store,
    pub decision: DecisionOptions,
    pub strategy: ReloadStrategy,
    /// The stamp key ring, shared with the engine.
    pub keys: watch::Receiver<Arc<StampKeys>>,
    /// Requests made by this user (the reloader itself) are admitted unchanged.
    pub own_username: Option<String>,
    /// True once the source caches are synced; before, nothing is stamped.
    pub ready: watch::Receiver<bool>,
    pub metrics: Arc<Metrics>,
    /// Confirms with the API server that a source missing from the cache is really absent;
    /// without it, the cache is trusted.
    pub lookup: Option<lookup::SourceLookup>,
}

pub fn router(context: AdmissionContext) -> Router {
    Router::new()
        .route("/mutate", post(mutate_handler))
        .route("/validate", post(validate_handler))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(deadline))
        .with_state(context)
}

/// How long one request (body included) may take; a client trickling bytes is cut off.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

async fn deadline(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            axum::Json(json!({"error": "request timed out"})),
        )
            .into_response(),
    }
}

/// A JSON error for input that is not an AdmissionReview at all. The API server then applies
/// the webhook's failurePolicy.
fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(json!({"error": message}))).into_response()
}

async fn mutate_handler(State(ctx): State<AdmissionContext>, body: Bytes) -> Response {
    handle(&ctx, Webhook::Mutate, &body).await
}

async fn validate_handler(State(ctx): State<AdmissionContext>, body: Bytes) -> Response {
    handle(&ctx, Webhook::Validate, &body).await
}

async fn handle(ctx: &AdmissionContext, webhook: Webhook, body: &[u8]) -> Response {
    let started = Instant::now();
    let request = match review::parse(body) {
        Ok(request) => request,
        Err(error) => {
            let labels = AdmissionLabels {
                webhook,
                operation: "",
                kind: "",
                result: AdmissionResult::Malformed,
            };
            ctx.metrics.admission(labels, started.elapsed());
            tracing::warn!(%webhook, %error, "malformed admission review");
            return bad_request(error.to_string());
        }
    };
    let response = match webhook {
        Webhook::Mutate => mutate(ctx, &request).await,
        Webhook::Validate => validate(ctx, &request),
    };
    let result = if !response.allowed {
        AdmissionResult::Denied
    } else if response.patch.is_some() {
        AdmissionResult::Mutated
    } else {
        AdmissionResult::Allowed
    };
    // The kind label is bounded to the kinds we serve: the request's kind is caller-chosen.
    let kind = match subject(&request) {
        Some(Subject::Workload(k)) => k.as_str(),
        Some(Subject::Source(k)) => k.as_str(),
        None => "other",
    };
    let labels = AdmissionLabels {
        webhook,
        operation: operation_label(&request.operation),
        kind,
        result,
    };
    ctx.metrics.admission(labels, started.elapsed());
    // Never the object: a Secret's data would end up in the logs.
    tracing::debug!(
        %webhook,
        uid = %request.uid,
        kind = %request.kind.kind,
        namespace = request.namespace.as_deref().unwrap_or(""),
        name = %request.name,
        %result,
        dry_run = request.dry_run,
        "admission review"
    );
    axum::Json(response.into_review()).into_response()
}

fn operation_label(op: &Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

/// What a request's object is to the reloader, by group and kind.
fn subject(request: &AdmissionRequest<DynamicObject>) -> Option<Subject> {
    Subject::of(&request.kind.group, &request.kind.kind)
}

/// The workload kind of a request, by group and kind.
fn workload_kind(request: &AdmissionRequest<DynamicObject>) -> Option<WorkloadKind> {
    match subject(request)? {
        Subject::Workload(kind) => Some(kind),
        Subject::Source(_) => None,
    }
}

fn as_value(object: Option<&DynamicObject>) -> Option<Value> {
    object.and_then(|o| serde_json::to_value(o).ok())
}

fn is_write(op: &Operation) -> bool {
    matches!(op, Operation::Create | Operation::Update)
}

fn is_self(ctx: &AdmissionContext, request: &AdmissionRequest<DynamicObject>) -> bool {
    ctx.own_username
        .as_deref()
        .is_some_and(|me| request.user_info.username.as_deref() == Some(me))
}

/// Stamps a workload so it starts with the hashes it reloads on.
async fn mutate(ctx: &AdmissionContext, request: &AdmissionRequest<DynamicObject>) -> AdmissionResponse {
    let response = AdmissionResponse::from(request);
    let (Some(kind), true, false) = (
        workload_kind(request),
        is_write(&request.operation),
        is_self(ctx, request),
    ) else {
        return response;
    };
    let Some(object) = as_value(request.object.as_ref()) else {
        return response;
    };
    if !*ctx.ready.borrow() {
        return warn(
            response,
            vec!["reloader is starting: not stamped now; it will adopt this workload without a rollout".into()],
        );
    }
    let namespace = request.namespace.clone().unwrap_or_default();
    let found = match &ctx.lookup {
        Some(lookup) => {
            let unseen = unseen_dependencies(ctx, kind, &object, &namespace);
            if unseen.is_empty() {
                Default::default()
            } else {
                lookup.find(&namespace, &unseen).await
            }
        }
        None => Default::default(),
    };
    let old = as_value(request.old_object.as_ref());
    let workload = Workload::new(kind, &object);
    let old_workload = old.as_ref().map(|o| Workload::new(kind, o));
    let cached = ctx.store.sources(&namespace);
    let sources = Overlay {
        base: cached.map(),
        extra: &found,
    };
    let deps = match dependencies(&workload, &sources, &ctx.decision) {
        Ok(deps) => deps,
        // Not a workload we can read (no pod template): the API server validates it, not us.
        Err(_) => return response,
    };
    let warnings: Vec<String> = deps
        .dependencies
        .iter()
        .filter(|d| sources.get(&d.source).is_none())
        .map(|d| missing_message(&d.source))
        .collect();
    let keys = ctx.keys.borrow().clone();
    let stamping = Stamping {
        keys: &keys,
        namespace: &namespace,
    };
    let desired = match admitted(
        &workload,
        old_workload.as_ref(),
        &deps.dependencies,
        &sources,
        ctx.strategy,
        stamping,
    ) {
        Ok(desired) => desired,
        Err(_) => return response,
    };
    drop(cached);
    let patch = json_patch::diff(&object, &desired);
    if patch.0.is_empty() {
        return warn(response, warnings);
    }
    match response.clone().with_patch(patch) {
        Ok(patched) => warn(patched, warnings),
        Err(error) => {
            tracing::error!(%error, "serializing an admission patch failed");
            response
        }
    }
}

/// The dependencies of a workload that this replica's cache does not hold.
fn unseen_dependencies(ctx: &AdmissionContext, kind: WorkloadKind, object: &Value, namespace: &str) -> Vec<SourceRef> {
    let sources = ctx.store.sources(namespace);
    let workload = Workload::new(kind, object);
    match dependencies(&workload, sources.map(), &ctx.decision) {
        Ok(deps) => deps
            .dependencies
            .into_iter()
            .map(|d| d.source)
            .filter(|s| sources.map().get(s).is_none())
            .collect(),
        Err(_) => Vec::new(),
    }
}

const MAX_WARNINGS: usize = 10;

fn warn(mut response: AdmissionResponse, mut warnings: Vec<String>) -> AdmissionResponse {
    warnings.truncate(MAX_WARNINGS);
    if !warnings.is_empty() {
        response.warnings = Some(warnings);
    }
    response
}

/// Rejects invalid reloader annotations; warns about soft problems.
fn validate(ctx: &AdmissionContext, request: &AdmissionRequest<DynamicObject>) -> AdmissionResponse {
    let response = AdmissionResponse::from(request);
    // The reloader's own writes (a re-created Job carrying the user's old annotations) must
    // never be refused: the user's problem is reported when the user writes.
    if !is_write(&request.operation) || is_self(ctx, request) {
        return response;
    }
    let Some(subject) = subject(request) else {
        return response;
    };
    let Some(object) = as_value(request.object.as_ref()) else {
        return response;
    };
    let findings_of = |object: &Value| lint_object(&ctx.decision.keys, subject, object);
    let mut findings = findings_of(&object);
    // An update is not blocked by problems the object already had: they only warn, so
    // installing the webhook never breaks unrelated writes to existing objects.
    if let Some(old) = as_value(request.old_object.as_ref()) {
        let before = findings_of(&old);
        for f in findings.iter_mut() {
            if f.severity == Severity::Deny && before.contains(f) {
                f.severity = Severity::Warn;
            }
        }
    }
    let denials: Vec<String> = findings
        .iter()
        .filter(|f| f.severity == Severity::Deny)
        .map(|f| f.message.clone())
        .collect();
    let mut warnings: Vec<String> = findings
        .iter()
        .filter(|f| f.severity == Severity::Warn)
        .map(|f| f.message.clone())
        .collect();
    if !denials.is_empty() {
        return warn(response.deny(denials.join("; ")), warnings);
    }
    let namespace = request.namespace.clone().unwrap_or_default();
    if *ctx.ready.borrow() {
        warnings.extend(store_warnings(ctx, subject, &object, &namespace));
    }
    warn(response, warnings)
}

/// Soft problems only the cluster state reveals (the rules are in [`crate::core::lint`]).
fn store_warnings(ctx: &AdmissionContext, subject: Subject, object: &Value, namespace: &str) -> Vec<String> {
    let keys = &ctx.decision.keys;
    match subject {
        Subject::Workload(kind) => {
            let workload = Workload::new(kind, object);
            let sources = ctx.store.sources(namespace);
            let metadata = workload.annotations();
            let template = workload.template_annotations().unwrap_or_default();
            reload_list_names(keys, &metadata, &template)
                .iter()
                .filter(|named| sources.map().content_hash(&named.source).is_none())
                .map(|named| missing_source(named, LookedIn::Cluster).message)
                .collect()
        }
        Subject::Source(_) => {
            let annotations = string_map(object.pointer("/metadata/annotations"));
            if !marked_match(keys, &annotations) {
                return Vec::new();
            }
            let searched = ctx.store.workload_keys().into_iter().any(|key| {
                key.namespace == namespace
                    && ctx.store.workload(&key).is_some_and(|o| {
                        let w = Workload::new(key.kind, &o);
                        uses_search(keys, &w.annotations(), &w.template_annotations().unwrap_or_default())
                    })
            });
            if searched {
                Vec::new()
            } else {
                vec![match_without_search(keys, namespace).message]
            }
        }
    }
}
