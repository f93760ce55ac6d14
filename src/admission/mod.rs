//! The admission webhook: `POST /mutate` stamps workloads with the current hashes of the sources
//! they reload on (the same desired-state function as the engine), `POST /validate` rejects
//! typo'd or invalid reloader annotations and warns about soft problems. Reads of the shared
//! store, with no side effects, so dry-run requests get the same answer; the one API call is a
//! lookup of a source the cache has not seen, before a stamp records it absent ([`lookup`]).

pub mod certs;
pub mod limits;
pub mod lookup;
pub mod register;
pub mod server;

mod review;

use crate::core::json::JsonAt;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use serde_json::{Value, json};
use tokio::sync::watch;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tracing::Instrument;

use crate::core::annotation_rules::{
    LookedIn, Severity, Subject, lint_object, marked_match, match_without_search, missing_message, missing_source,
    reload_list_names, uses_search,
};
use crate::core::dependencies::WorkloadPolicy;
use crate::core::keyed_hash::StampKeyRing;
use crate::core::plan::{ReloadStrategy, Stamping, admission_patch};
use crate::core::source::{Overlay, SourceRef, SourceView};
use crate::core::vocabulary::truncate_chars;
use crate::core::workload::{Workload, WorkloadKind, string_map};
use crate::metrics::{AdmissionLabels, AdmissionResult, Metrics, Webhook};
use crate::scope::NamespaceScope;
use crate::store::Store;
pub use limits::{AdmissionLimits, Rejection};
use limits::{Guards, Here};
use review::Review;

/// Kubernetes objects are at most ~1.5 MiB; anything larger is not a real review.
pub const BODY_LIMIT: usize = 3 * 1024 * 1024;

/// What the handlers read.
#[derive(Clone)]
pub struct AdmissionContext {
    pub store: Store,
    pub dependency: crate::core::dependencies::DependencyOptions,
    pub strategy: ReloadStrategy,
    /// The stamp key ring, shared with the engine.
    pub stamp_keys: watch::Receiver<Arc<StampKeyRing>>,
    /// Requests made by this user (the reloader itself) are admitted unchanged.
    pub own_username: Option<String>,
    /// True once the source caches are synced; before, nothing is stamped.
    pub ready: watch::Receiver<bool>,
    pub metrics: Arc<Metrics>,
    /// Confirms with the API server that a source missing from the cache is really absent;
    /// without it, the cache is trusted.
    pub lookup: Option<lookup::SourceLookup>,
    /// The engine's namespaces (`--namespaces`, `--namespaces-to-ignore`,
    /// `--namespace-selector`): a review from any other namespace is admitted untouched.
    pub scope: Arc<NamespaceScope>,
    /// What a review may cost ([`limits`]).
    pub limits: AdmissionLimits,
}

impl AdmissionContext {
    /// Handlers over `store` alone: Stakater's default annotations, plain stamps, no API server
    /// to confirm absent sources, every namespace, default limits, metrics of their own (tests
    /// and benchmarks set what they vary with struct update syntax).
    pub fn standalone(store: Store, ready: watch::Receiver<bool>) -> Self {
        Self {
            store,
            dependency: crate::core::dependencies::DependencyOptions::default(),
            strategy: ReloadStrategy::Annotations,
            stamp_keys: watch::channel(Arc::new(StampKeyRing::plain())).1,
            own_username: None,
            ready,
            metrics: Arc::new(Metrics::new(false)),
            lookup: None,
            scope: Arc::new(NamespaceScope::new(None, Default::default(), false)),
            limits: AdmissionLimits::default(),
        }
    }
}

/// The router's state: the context and the shared state of its limits.
#[derive(Clone)]
struct Shared {
    /// Shared, not cloned per request: the context holds dozens of strings (annotation keys).
    ctx: Arc<AdmissionContext>,
    guards: Arc<Guards>,
}

pub fn router(context: AdmissionContext) -> Router {
    let guards = Arc::new(Guards::new(context.limits.clone()));
    let timeout = context.limits.request_timeout;
    // At most `max_in_flight` requests at once over both routes; one more is answered 503 at
    // once (load-shed), not queued.
    let metrics = context.metrics.clone();
    let in_flight = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(
            move |uri: axum::http::Uri, _: tower::BoxError| {
                let webhook = match uri.path() {
                    "/validate" => Webhook::Validate,
                    _ => Webhook::Mutate,
                };
                let labels = AdmissionLabels {
                    webhook,
                    operation: "",
                    kind: "",
                    result: AdmissionResult::Rejected,
                };
                metrics.admission(labels, std::time::Duration::ZERO);
                async { Rejection::Busy.into_response() }
            },
        ))
        .layer(LoadShedLayer::new())
        .layer(GlobalConcurrencyLimitLayer::new(context.limits.max_in_flight.max(1)));
    Router::new()
        .route("/mutate", post(mutate_handler))
        .route("/validate", post(validate_handler))
        .layer(in_flight)
        .layer(axum::middleware::from_fn(move |request, next| {
            deadline(timeout, request, next)
        }))
        .with_state(Shared {
            ctx: Arc::new(context),
            guards,
        })
}

/// How long one request (body included) may take; a client trickling bytes is cut off.
async fn deadline(
    timeout: std::time::Duration,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => Rejection::TimedOut.into_response(),
    }
}

/// A JSON error for input that is not an AdmissionReview at all. The API server then applies
/// the webhook's failurePolicy. The message never quotes the input.
fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(json!({"error": message}))).into_response()
}

async fn mutate_handler(State(shared): State<Shared>, request: Request) -> Response {
    serve_review(shared, Webhook::Mutate, request)
        .instrument(review_span(Webhook::Mutate))
        .await
}

async fn validate_handler(State(shared): State<Shared>, request: Request) -> Response {
    serve_review(shared, Webhook::Validate, request)
        .instrument(review_span(Webhook::Validate))
        .await
}

/// One span per review; what it is about and how it ended are recorded once known
/// ([`answer`]), so a trace of a slow review shows its phases (body, CPU lanes, lookups).
fn review_span(webhook: Webhook) -> tracing::Span {
    use tracing::field::Empty;
    tracing::info_span!(
        "review",
        %webhook,
        kind = Empty,
        namespace = Empty,
        name = Empty,
        operation = Empty,
        outcome = Empty
    )
}

fn declared_length(request: &Request) -> Option<u64> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Reads the body within the budget, then computes the answer in the lane the body's size and
/// its patterns pick (a small review that compiles nothing right here, larger ones, and those
/// with patterns the cache lacks, off the async workers). A mutating review that must confirm
/// sources with the API server does it between two CPU sections, holding neither a lane nor a
/// lock while it waits. Every wait ends by the review's deadline ([`limits::REVIEW_DEADLINE`]).
async fn serve_review(shared: Shared, webhook: Webhook, request: Request) -> Response {
    let started = Instant::now();
    let until = tokio::time::Instant::now() + limits::REVIEW_DEADLINE;
    let Shared { ctx, guards } = shared;
    let declared = declared_length(&request);
    // Work handed to other threads runs in this review's span too.
    let span = tracing::Span::current();
    let rejected = |rejection: Rejection| {
        tracing::Span::current().record("outcome", tracing::field::display(AdmissionResult::Rejected));
        let labels = AdmissionLabels {
            webhook,
            operation: "",
            kind: "",
            result: AdmissionResult::Rejected,
        };
        ctx.metrics.admission(labels, started.elapsed());
        tracing::debug!(%webhook, %rejection, "admission request rejected");
        rejection.into_response()
    };
    // The budget is held until the answer is sent: the parsed review is about as large.
    let (body, _budget) = match guards.bodies.read(request.into_body(), declared).await {
        Ok(read) => read,
        Err(rejection) => return rejected(rejection),
    };
    let large = body.len() > guards.limits.large_body;
    let here = body.len() <= guards.limits.inline_body;
    let first = if here {
        guards
            .cpu
            .run_here(until, || match parse(&ctx, webhook, &body, started) {
                Err(response) => Here::Done(Phase::Done(*response)),
                Ok(review) => match uncached_patterns(&ctx, &review) {
                    0 => Here::Done(first_phase(&ctx, webhook, review, started)),
                    n => {
                        let ctx = ctx.clone();
                        let span = span.clone();
                        Here::Off {
                            large: n > limits::FEW_PATTERNS,
                            rest: move || span.in_scope(|| first_phase(&ctx, webhook, review, started)),
                        }
                    }
                },
            })
            .await
    } else {
        let ctx = ctx.clone();
        let span = span.clone();
        guards
            .cpu
            .run(large, until, move || {
                span.in_scope(|| match parse(&ctx, webhook, &body, started) {
                    Err(response) => Phase::Done(*response),
                    Ok(review) => first_phase(&ctx, webhook, review, started),
                })
            })
            .await
    };
    let lookup = match first {
        Err(rejection) => return rejected(rejection),
        Ok(Phase::Done(response)) => return response,
        Ok(Phase::Lookup(lookup)) => lookup,
    };
    let found = match &ctx.lookup {
        Some(sources) => {
            let found = sources
                .find(&lookup.namespace, &lookup.unseen, &guards.lookups, until)
                .await;
            for &refusal in &found.refused {
                ctx.metrics.lookup_refused(refusal);
            }
            found
        }
        None => Default::default(),
    };
    let second = {
        let ctx = ctx.clone();
        guards
            .cpu
            .run(large, until, move || {
                span.in_scope(|| {
                    let response = stamp_found(&ctx, &lookup.review, lookup.kind, &lookup.policy, &found);
                    answer(&ctx, webhook, &lookup.review.request, response, started)
                })
            })
            .await
    };
    second.unwrap_or_else(rejected)
}

/// How many patterns answering `review` would compile: the items of its reload lists (on the
/// metadata and the pod template of the object and the old object, where the decision and the
/// lint rules read them) that the pattern cache does not hold. A lookup in the cache, never a
/// compile.
fn uncached_patterns(ctx: &AdmissionContext, review: &Review) -> usize {
    use crate::core::source::SourceKind;
    let keys = &ctx.dependency.annotations;
    let kind = workload_kind(&review.request);
    let mut count = 0;
    for object in [review.object.as_ref(), review.old_object.as_ref()]
        .into_iter()
        .flatten()
    {
        let metadata = object.at("/metadata/annotations");
        let workload = kind.map(|k| Workload::new(k, object));
        for source in SourceKind::ALL {
            let key = keys.reload(source);
            let values = [
                metadata.and_then(|a| a.get(key)).and_then(Value::as_str),
                workload
                    .as_ref()
                    .and_then(|w| w.template_annotation(key).ok().flatten()),
            ];
            count += values
                .into_iter()
                .flatten()
                .map(crate::core::vocabulary::uncached_patterns)
                .sum::<usize>();
        }
    }
    count
}

/// What the first blocking section ends with.
enum Phase {
    Done(Response),
    /// A mutating review waiting for the API server to confirm sources the cache lacks.
    Lookup(Box<Pending>),
}

struct Pending {
    review: Review,
    kind: WorkloadKind,
    policy: Box<WorkloadPolicy>,
    namespace: String,
    unseen: Vec<SourceRef>,
}

/// The review, or the answer to a body that is not one.
fn parse(ctx: &AdmissionContext, webhook: Webhook, body: &[u8], started: Instant) -> Result<Review, Box<Response>> {
    match review::parse(body) {
        Ok(review) => Ok(review),
        Err(error) => {
            let labels = AdmissionLabels {
                webhook,
                operation: "",
                kind: "",
                result: AdmissionResult::Malformed,
            };
            ctx.metrics.admission(labels, started.elapsed());
            // Debug only: a flood of garbage must not become a flood of logs; the metric counts it.
            tracing::debug!(%webhook, %error, "malformed admission review");
            Err(Box::new(bad_request(error.to_string())))
        }
    }
}

/// Answers the review, unless a mutating review needs a lookup first.
fn first_phase(ctx: &AdmissionContext, webhook: Webhook, review: Review, started: Instant) -> Phase {
    let response = match webhook {
        // Not ours: admitted as is, with nothing that reveals what the reloader knows.
        _ if !in_scope(ctx, &review.request) => AdmissionResponse::from(&review.request),
        Webhook::Validate => validate(ctx, &review),
        Webhook::Mutate => match mutate(ctx, &review) {
            Mutation::Answer(response) => *response,
            Mutation::Lookup {
                kind,
                policy,
                namespace,
                unseen,
            } => {
                return Phase::Lookup(Box::new(Pending {
                    review,
                    kind,
                    policy,
                    namespace,
                    unseen,
                }));
            }
        },
    };
    Phase::Done(answer(ctx, webhook, &review.request, response, started))
}

/// Longest name, namespace or kind written to a log line (a forged review can carry any size).
const MAX_LOGGED: usize = 253;

/// Records the metric, logs the outcome (never the object: a Secret's data would end up in the
/// logs) and serializes the review.
fn answer(
    ctx: &AdmissionContext,
    webhook: Webhook,
    request: &AdmissionRequest<DynamicObject>,
    response: AdmissionResponse,
    started: Instant,
) -> Response {
    let result = if !response.allowed {
        AdmissionResult::Denied
    } else if response.patch.is_some() {
        AdmissionResult::Mutated
    } else {
        AdmissionResult::Allowed
    };
    // The kind label is bounded to the kinds we serve: the request's kind is caller-chosen.
    let kind = match subject(request) {
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
    let span = tracing::Span::current();
    // Recorded only when someone listens: every review passes here.
    if !span.is_disabled() {
        span.record("kind", kind);
        span.record(
            "namespace",
            truncate_chars(request.namespace.as_deref().unwrap_or(""), MAX_LOGGED),
        );
        span.record("name", truncate_chars(&request.name, MAX_LOGGED));
        span.record("operation", operation_label(&request.operation));
        span.record("outcome", tracing::field::display(result));
    }
    tracing::debug!(
        %webhook,
        uid = %request.uid,
        kind = %truncate_chars(&request.kind.kind, MAX_LOGGED),
        namespace = %truncate_chars(request.namespace.as_deref().unwrap_or(""), MAX_LOGGED),
        name = %truncate_chars(&request.name, MAX_LOGGED),
        %result,
        dry_run = request.dry_run,
        "admission review"
    );
    match serde_json::to_vec(&WireReview::of(&request.types, &response)) {
        Ok(bytes) => {
            let mut response = Bytes::from(bytes).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        Err(error) => {
            tracing::error!(%error, "serializing an admission response failed");
            Rejection::Internal.into_response()
        }
    }
}

/// The answer as the API server reads it. kube's own `AdmissionReview` writes the patch as a
/// JSON array of numbers (about four bytes per byte, which the API server then parses number by
/// number); Kubernetes' `[]byte` is base64, a third larger than the patch.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct WireReview<'a> {
    api_version: &'a str,
    kind: &'a str,
    response: WireResponse<'a>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct WireResponse<'a> {
    uid: &'a str,
    allowed: bool,
    status: &'a kube::core::Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "std::collections::HashMap::is_empty")]
    audit_annotations: &'a std::collections::HashMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<&'a [String]>,
}

impl<'a> WireReview<'a> {
    fn of(types: &'a kube::core::TypeMeta, response: &'a AdmissionResponse) -> Self {
        use base64::Engine;
        let patch = response
            .patch
            .as_deref()
            .map(|p| base64::engine::general_purpose::STANDARD.encode(p));
        Self {
            api_version: &types.api_version,
            kind: &types.kind,
            response: WireResponse {
                uid: &response.uid,
                allowed: response.allowed,
                status: &response.result,
                patch_type: patch.as_ref().map(|_| "JSONPatch"),
                patch,
                audit_annotations: &response.audit_annotations,
                warnings: response.warnings.as_deref(),
            },
        }
    }
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

/// Whether the review's namespace is one the engine reloads in.
fn in_scope(ctx: &AdmissionContext, request: &AdmissionRequest<DynamicObject>) -> bool {
    request.namespace.as_deref().is_some_and(|ns| ctx.scope.allows(ns))
}

fn is_write(op: &Operation) -> bool {
    matches!(op, Operation::Create | Operation::Update)
}

fn is_self(ctx: &AdmissionContext, request: &AdmissionRequest<DynamicObject>) -> bool {
    ctx.own_username
        .as_deref()
        .is_some_and(|me| request.user_info.username.as_deref() == Some(me))
}

/// Where a mutating review stands after its first look.
enum Mutation {
    /// Answered (stamped, nothing to stamp, or not yet).
    Answer(Box<AdmissionResponse>),
    /// To stamp once the API server has confirmed the sources the cache lacks.
    Lookup {
        kind: WorkloadKind,
        policy: Box<WorkloadPolicy>,
        namespace: String,
        unseen: Vec<SourceRef>,
    },
}

/// Stamps a workload so it starts with the hashes it reloads on: what to do. The workload's
/// policy is read once (reload lists compiled before any lock), its dependencies found once.
fn mutate(ctx: &AdmissionContext, review: &Review) -> Mutation {
    let request = &review.request;
    let response = AdmissionResponse::from(request);
    let (Some(kind), true, false) = (
        workload_kind(request),
        is_write(&request.operation),
        is_self(ctx, request),
    ) else {
        return Mutation::Answer(Box::new(response));
    };
    let Some(object) = review.object.as_ref() else {
        return Mutation::Answer(Box::new(response));
    };
    if !*ctx.ready.borrow() {
        return Mutation::Answer(Box::new(warn(
            response,
            vec!["reloader is starting: not stamped now; it will adopt this workload without a rollout".into()],
        )));
    }
    let policy = match WorkloadPolicy::read(&Workload::new(kind, object), &ctx.dependency) {
        Ok(policy) => policy,
        // Not a workload we can read (no pod template): the API server validates it, not us.
        Err(_) => return Mutation::Answer(Box::new(response)),
    };
    match stamp(ctx, review, kind, &policy, None) {
        Stamped::Answer(response) => Mutation::Answer(response),
        Stamped::Unseen(unseen) => Mutation::Lookup {
            kind,
            policy: Box::new(policy),
            namespace: request.namespace.clone().unwrap_or_default(),
            unseen,
        },
    }
}

/// What stamping came to.
enum Stamped {
    Answer(Box<AdmissionResponse>),
    /// Sources the cache lacks, to confirm with the API server first.
    Unseen(Vec<SourceRef>),
}

/// The stamp, from the cache plus the sources `found` by a lookup. Without a lookup yet
/// (`found` is `None`) and with a lookup configured, dependencies the cache lacks are returned
/// to be looked up instead.
fn stamp(
    ctx: &AdmissionContext,
    review: &Review,
    kind: WorkloadKind,
    policy: &WorkloadPolicy,
    found: Option<&lookup::Found>,
) -> Stamped {
    let request = &review.request;
    let response = AdmissionResponse::from(request);
    let Some(object) = review.object.as_ref() else {
        return Stamped::Answer(Box::new(response));
    };
    let namespace = request.namespace.clone().unwrap_or_default();
    let workload = Workload::new(kind, object);
    let old_workload = review.old_object.as_ref().map(|o| Workload::new(kind, o));
    let none = std::collections::BTreeMap::new();
    let patch = {
        let cached = ctx.store.sources(&namespace);
        let sources = Overlay {
            base: cached.map(),
            extra: found.map_or(&none, |f| &f.states),
        };
        let deps = policy.dependencies(&sources, &ctx.dependency);
        let missing = deps.dependencies.iter().filter(|d| sources.get(&d.source).is_none());
        if found.is_none() && ctx.lookup.is_some() {
            let unseen: Vec<SourceRef> = missing.clone().map(|d| d.source.clone()).collect();
            if !unseen.is_empty() {
                return Stamped::Unseen(unseen);
            }
        }
        let unconfirmed = |source: &SourceRef| found.and_then(|f| f.unconfirmed.get(source)).copied();
        let mut warnings: Vec<String> = missing
            .map(|d| match unconfirmed(&d.source) {
                Some(why) => lookup::unconfirmed_message(&d.source, why),
                None => missing_message(&d.source),
            })
            .collect();
        let keys = ctx.stamp_keys.borrow().clone();
        if keys.current().is_none() {
            warnings.extend(unstamped_without_key(&deps.dependencies, &sources));
        }
        let stamping = Stamping {
            keys: &keys,
            namespace: &namespace,
        };
        admission_patch(
            &workload,
            old_workload.as_ref(),
            &deps.dependencies,
            &sources,
            ctx.strategy,
            stamping,
        )
        .map(|patch| (patch, warnings))
    };
    let Ok((patch, warnings)) = patch else {
        return Stamped::Answer(Box::new(response));
    };
    if patch.0.is_empty() {
        return Stamped::Answer(Box::new(warn(response, warnings)));
    }
    Stamped::Answer(Box::new(match response.clone().with_patch(patch) {
        Ok(patched) => warn(patched, warnings),
        Err(error) => {
            tracing::error!(%error, "serializing an admission patch failed");
            response
        }
    }))
}

/// Without a stamp key the webhook leaves confidential sources out of its stamp (their plain
/// hash would be an oracle for whoever called it; `Stamping::answerable`): say so.
fn unstamped_without_key(
    dependencies: &[crate::core::dependencies::Dependency],
    sources: &(impl SourceView + ?Sized),
) -> Vec<String> {
    dependencies
        .iter()
        .filter(|d| d.source.kind.is_confidential() && sources.get(&d.source).is_some())
        .map(|d| {
            format!(
                "{} {} not stamped: the reloader's stamp key is not loaded; it adopts the workload without a rollout",
                d.source.kind, d.source.name
            )
        })
        .collect()
}

/// The answer once a lookup is done.
fn stamp_found(
    ctx: &AdmissionContext,
    review: &Review,
    kind: WorkloadKind,
    policy: &WorkloadPolicy,
    found: &lookup::Found,
) -> AdmissionResponse {
    match stamp(ctx, review, kind, policy, Some(found)) {
        Stamped::Answer(response) => *response,
        // Not returned once `found` is given.
        Stamped::Unseen(_) => AdmissionResponse::from(&review.request),
    }
}

/// Warnings per answer at most; the API server truncates more (and longer ones) anyway.
const MAX_WARNINGS: usize = 10;
/// Characters of one warning or one denial reason at most (kubectl shows ~120 whole).
const MAX_MESSAGE: usize = 256;
/// Denial reasons listed at most; the rest are counted.
const MAX_DENIALS: usize = 4;

fn warn(mut response: AdmissionResponse, warnings: Vec<String>) -> AdmissionResponse {
    let warnings: Vec<String> = warnings
        .iter()
        .take(MAX_WARNINGS)
        .map(|w| truncate_chars(w, MAX_MESSAGE))
        .collect();
    if !warnings.is_empty() {
        response.warnings = Some(warnings);
    }
    response
}

/// One bounded message for every denial: the first few, then how many more.
fn denial(denials: &[String]) -> String {
    let mut message = denials
        .iter()
        .take(MAX_DENIALS)
        .map(|d| truncate_chars(d, MAX_MESSAGE))
        .collect::<Vec<_>>()
        .join("; ");
    if denials.len() > MAX_DENIALS {
        message.push_str(&format!(" (and {} more)", denials.len() - MAX_DENIALS));
    }
    message
}

/// Rejects invalid reloader annotations; warns about soft problems.
fn validate(ctx: &AdmissionContext, review: &Review) -> AdmissionResponse {
    let request = &review.request;
    let response = AdmissionResponse::from(request);
    // The reloader's own writes (a re-created Job carrying the user's old annotations) must
    // never be refused: the user's problem is reported when the user writes.
    if !is_write(&request.operation) || is_self(ctx, request) {
        return response;
    }
    let Some(subject) = subject(request) else {
        return response;
    };
    let Some(object) = review.object.as_ref() else {
        return response;
    };
    let findings_of = |object: &Value| lint_object(&ctx.dependency.annotations, subject, object);
    let mut findings = findings_of(object);
    // An update is not blocked by problems the object already had: they only warn, so
    // installing the webhook never breaks unrelated writes to existing objects.
    if let Some(old) = review.old_object.as_ref() {
        let before = findings_of(old);
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
        return warn(response.deny(denial(&denials)), warnings);
    }
    let namespace = request.namespace.clone().unwrap_or_default();
    if *ctx.ready.borrow() {
        warnings.extend(store_warnings(ctx, subject, object, &namespace));
    }
    warn(response, warnings)
}

/// Soft problems only the cluster state reveals (the rules are in [`crate::core::annotation_rules`]).
fn store_warnings(ctx: &AdmissionContext, subject: Subject, object: &Value, namespace: &str) -> Vec<String> {
    let keys = &ctx.dependency.annotations;
    match subject {
        Subject::Workload(kind) => {
            let workload = Workload::new(kind, object);
            let metadata = workload.annotations();
            let template = workload.template_annotations().unwrap_or_default();
            // Reload lists are compiled before the store's lock is taken.
            let named = reload_list_names(keys, &metadata, &template);
            let sources = ctx.store.sources(namespace);
            named
                .iter()
                .filter(|named| sources.map().content_hash(&named.source).is_none())
                .map(|named| missing_source(named, LookedIn::Cluster).message)
                .collect()
        }
        Subject::Source(_) => {
            let annotations = string_map(object.at("/metadata/annotations"));
            if !marked_match(keys, &annotations) {
                return Vec::new();
            }
            // This namespace's workloads only: a review costs its namespace, not the cluster.
            let searched = ctx.store.any_workload_in(namespace, |key, o| {
                let w = Workload::new(key.kind, o);
                uses_search(keys, &w.annotations(), &w.template_annotations().unwrap_or_default())
            });
            if searched {
                Vec::new()
            } else {
                vec![match_without_search(keys, namespace).message]
            }
        }
    }
}
