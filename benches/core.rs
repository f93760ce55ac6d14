//! In-process benchmarks of the hot paths: a reconcile decision against a large namespace, an
//! admission review through the router, and hashing. `make bench` runs them (release build)
//! and prints medians over rounds; the machine is noisy, so compare medians, not single runs.
//! Every figure also goes to `target/bench/core.json`, which the cluster harness merges into
//! `bench/results.json` and the README's table.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use reloader::admission::{AdmissionContext, router};
use reloader::core::dependencies::{DependencyOptions, dependencies};
use reloader::core::hash::{secret_hash_of, sha1_hex};
use reloader::core::keyed_hash::StampKeyRing;
use reloader::core::plan::{PlanOptions, Stamping, plan};
use reloader::core::source::{SourceKind, SourceRef, SourceState};
use reloader::core::workload::{Workload, WorkloadKind};
use reloader::store::Store;
use serde_json::{Value, json};
use tower::ServiceExt;

use reloader_dev_support::review;

const ROUNDS: usize = 15;

/// The rows and raw figures of `target/bench/core.json`.
#[derive(Default)]
struct Report {
    rows: Vec<Value>,
    figures: serde_json::Map<String, Value>,
}

impl Report {
    fn write(&self) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
        let doc = json!({
            "part": "core",
            "contenders": {"reloader": {"version": env!("CARGO_PKG_VERSION")}},
            "rows": self.rows,
            "figures": self.figures,
        });
        let written = std::fs::create_dir_all(&dir).and_then(|()| {
            std::fs::write(
                dir.join("core.json"),
                serde_json::to_vec_pretty(&doc).unwrap_or_default(),
            )
        });
        if let Err(e) = written {
            eprintln!("writing target/bench/core.json: {e}");
            std::process::exit(1);
        }
    }
}

/// A duration as people read it: µs below a millisecond, ms above.
fn human(d: Duration) -> String {
    let micros = d.as_secs_f64() * 1e6;
    if micros < 1000.0 {
        format!("{micros:.1} µs")
    } else {
        format!("{:.2} ms", micros / 1000.0)
    }
}

/// Median time per iteration over `ROUNDS` rounds of `iterations` each, printed and recorded as
/// row `id` of the report.
/// `cargo bench --bench core -- admission` measures only the ids containing `admission` (and
/// writes no report: a partial one would replace the full one in `bench/results.json`).
fn filter() -> Option<&'static str> {
    static FILTER: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    FILTER
        .get_or_init(|| std::env::args().skip(1).find(|a| !a.starts_with("--")))
        .as_deref()
}

fn measure(report: &mut Report, id: &str, name: &str, iterations: u32, mut f: impl FnMut()) {
    if filter().is_some_and(|only| !id.contains(only)) {
        return;
    }
    let mut per_iter: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iterations {
                f();
            }
            start.elapsed() / iterations
        })
        .collect();
    per_iter.sort();
    let median = per_iter[ROUNDS / 2];
    let (lo, hi) = (per_iter[ROUNDS / 4], per_iter[3 * ROUNDS / 4]);
    println!("{name:<58} median {median:>10.2?}   (IQR {lo:.2?} .. {hi:.2?})");
    report.rows.push(json!({
        "id": format!("core.{id}"),
        "what": name,
        "ours": format!("{} (IQR {}–{})", human(median), human(lo), human(hi)),
        "baseline": null, "baseline_name": null, "ratio": null, "target": null, "met": null,
    }));
    report.figures.insert(
        id.to_string(),
        json!({"median_s": median.as_secs_f64(), "q1_s": lo.as_secs_f64(), "q3_s": hi.as_secs_f64(),
               "rounds": ROUNDS, "iterations_per_round": iterations}),
    );
}

fn deployment(annotations: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "7", "annotations": annotations},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [
                                  {"name": "web", "image": "web:1",
                                   "envFrom": [{"configMapRef": {"name": "cfg-17"}}, {"secretRef": {"name": "secret-17"}}],
                                   "volumeMounts": [{"name": "tls", "mountPath": "/tls"}]},
                                  {"name": "sidecar", "image": "side:1"}],
                                       "volumes": [{"name": "tls", "secret": {"secretName": "secret-18"}}]}}}
    })
}

fn namespace(sources: usize) -> BTreeMap<SourceRef, SourceState> {
    let mut map = BTreeMap::new();
    for i in 0..sources / 2 {
        for (kind, prefix) in [(SourceKind::ConfigMap, "cfg"), (SourceKind::Secret, "secret")] {
            let source = SourceRef::new(kind, format!("{prefix}-{i}"));
            map.insert(
                source.clone(),
                SourceState {
                    source,
                    annotations: BTreeMap::new(),
                    hash: sha1_hex(format!("{prefix}{i}").as_bytes()),
                    keys: Default::default(),
                    changed: None,
                },
            );
        }
    }
    map
}

fn review(operation: &str, object: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "b", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                    "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
                    "name": "web", "namespace": "shop", "operation": operation,
                    "userInfo": {"username": "bench"}, "object": object}
    }))
    .unwrap()
}

// The binary's allocator (src/main.rs), so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    println!("reloader benchmarks (release, {ROUNDS} rounds, median per operation)");
    let mut report = Report::default();
    for sources in [100, 10_000] {
        let ns = namespace(sources);
        let options = DependencyOptions::default();
        let keys = StampKeyRing::plain();
        for (id, label, annotations) in [
            ("decision_auto", "`auto`", json!({"reloader.stakater.com/auto": "true"})),
            (
                "decision_regex",
                "regex reload list (scans the namespace)",
                json!({"secret.reloader.stakater.com/reload": "secret-1.*"}),
            ),
        ] {
            let object = deployment(annotations);
            measure(
                &mut report,
                &format!("{id}_{sources}"),
                &format!("Reconcile decision + plan, {label}, namespace of {sources} sources"),
                200,
                || {
                    let w = Workload::new(WorkloadKind::Deployment, &object);
                    let deps = dependencies(&w, &ns, &options).unwrap();
                    black_box(
                        plan(
                            &w,
                            &deps.dependencies,
                            &ns,
                            PlanOptions::default(),
                            Stamping {
                                keys: &keys,
                                namespace: "bench",
                            },
                            "2026-11-26T00:00:00Z",
                        )
                        .unwrap(),
                    );
                },
            );
        }
    }

    let store = Store::default();
    for (source, state) in namespace(10_000) {
        let _ = source;
        store.upsert_source("shop", state);
    }
    let (_tx, ready) = tokio::sync::watch::channel(true);
    let app = router(AdmissionContext::standalone(store.clone(), ready));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let object = deployment(json!({"reloader.stakater.com/auto": "true"}));
    for path in ["/mutate", "/validate"] {
        let body = review("CREATE", &object);
        measure(
            &mut report,
            &format!("admission{}", path.replace('/', "_")),
            &format!("Admission review `{path}`, in-process router, 10,000 sources"),
            500,
            || {
                let request = Request::post(path).body(Body::from(body.clone())).unwrap();
                let response = runtime.block_on(app.clone().oneshot(request)).unwrap();
                black_box(
                    runtime
                        .block_on(axum::body::to_bytes(response.into_body(), 1 << 20))
                        .unwrap(),
                );
            },
        );
    }

    // The HTTPS benchmark's review (benches/webhook.rs), in-process: what that bench's CPU per
    // review spends beyond TLS and HTTP.
    let namespace = "webhook-bench";
    for i in 0..150 {
        for (kind, prefix) in [(SourceKind::ConfigMap, "config"), (SourceKind::Secret, "secret")] {
            let source = SourceRef::new(kind, format!("{prefix}-{i}"));
            let hash = sha1_hex(format!("{prefix}{i}").as_bytes());
            store.upsert_source(
                namespace,
                SourceState {
                    source,
                    annotations: BTreeMap::new(),
                    hash,
                    keys: Default::default(),
                    changed: None,
                },
            );
        }
    }
    let body = serde_json::to_vec(&review::deployment_review(namespace)).unwrap();
    let mutate = |body: &[u8]| {
        let request = Request::post("/mutate").body(Body::from(body.to_vec())).unwrap();
        let response = runtime.block_on(app.clone().oneshot(request)).unwrap();
        runtime
            .block_on(axum::body::to_bytes(response.into_body(), 1 << 20))
            .unwrap()
    };
    let answer: Value = serde_json::from_slice(&mutate(&body)).unwrap();
    assert!(
        answer.pointer("/response/patch").is_some(),
        "the kubectl review was not stamped: {answer}"
    );
    measure(
        &mut report,
        "admission_mutate_kubectl",
        &format!(
            "Admission review `/mutate`, in-process, {} B kubectl review",
            body.len()
        ),
        500,
        || {
            black_box(mutate(&body));
        },
    );

    for size in [1024usize, 1 << 20] {
        let data = BTreeMap::from([("payload".to_string(), vec![7u8; size])]);
        measure(
            &mut report,
            &format!("secret_hash_{size}"),
            &format!("Secret content hash, {} KiB", size / 1024),
            50,
            || {
                black_box(secret_hash_of(Some(&data)));
            },
        );
    }
    if filter().is_none() {
        report.write();
    }
}
