//! Rollout waves on the real node: six Deployments read one Secret whose changes roll them in
//! waves (`1,50%,100%`: one, then two more, then the last three), each wave once the one before
//! is rolled out with Ready pods; the reloader restarted in the middle of a wave resumes there.
//! A bad rotation (the app exits on it) fails the first wave's rollout, which halts the rest
//! (they keep serving the content before) with a Warning Event; the fix then rolls all six once,
//! wave by wave.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Secret};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::install::Release;
use crate::node::{RealNode, kill_reloader, kubectl_ok, ready_pods, restart_count, rolled_out, rollouts, wait_printed};
use crate::support::{DEADLINE, Reloader, TestNamespace, client, eventually};

const SECRET: &str = "wave-secret";
/// The Deployments in their waves: `w-5` is annotated first-wave, so it leads; then by name.
const WAVES: [&[&str]; 3] = [&["w-5"], &["w-0", "w-1"], &["w-2", "w-3", "w-4"]];
const HALTED: &str = "ReloadHalted";

/// One of the six: reads the Secret's mounted `content` at start, prints it, and exits 1 when it
/// says `bad`; Ready (by its probe) only once it has read a good one. A short progress deadline
/// makes a bad rollout fail quickly; the old pod keeps serving meanwhile (no unavailable pod).
fn wave_app(node: &RealNode, name: &str) -> Value {
    let mut pod = json!({
        "terminationGracePeriodSeconds": 2,
        "containers": [{
            "name": "app",
            "image": node.app_image,
            "imagePullPolicy": "Never",
            "command": ["sh", "-c",
                "c=$(cat /secret/content); echo \"content=$c\"; [ \"$c\" = bad ] && exit 1; \
                 touch /tmp/ready; trap 'exit 0' TERM; sleep 100000 & wait"],
            "readinessProbe": {"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 1},
            "volumeMounts": [{"name": "secret", "mountPath": "/secret"}],
        }],
        "volumes": [{"name": "secret", "secret": {"secretName": SECRET}}],
    });
    for (key, value) in node.placement().as_object().unwrap() {
        pod[key] = value.clone();
    }
    let mut annotations = json!({"reloader.stakater.com/auto": "true"});
    if name == WAVES[0][0] {
        annotations["reloader.stakater.com/first-wave"] = json!("true");
    }
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "replicas": 1,
            "progressDeadlineSeconds": 10,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod},
        },
    })
}

/// One look at a Deployment: when, its generation, whether it was rolled out.
type Sample = (Instant, i64, bool);

/// What the test saw of each Deployment, every 100 ms.
#[derive(Clone, Default)]
struct Timeline(Arc<Mutex<BTreeMap<String, Vec<Sample>>>>);

impl Timeline {
    /// Records the namespace's Deployments until the returned task is aborted.
    fn record(client: Client, namespace: String) -> (Self, tokio::task::JoinHandle<()>) {
        let timeline = Timeline::default();
        let samples = timeline.0.clone();
        let task = tokio::spawn(async move {
            let api: Api<Deployment> = Api::namespaced(client, &namespace);
            loop {
                if let Ok(list) = api.list(&ListParams::default()).await {
                    let now = Instant::now();
                    let mut samples = samples.lock().unwrap();
                    for d in &list.items {
                        let name = d.metadata.name.clone().unwrap_or_default();
                        let generation = d.metadata.generation.unwrap_or_default();
                        samples.entry(name).or_default().push((now, generation, rolled_out(d)));
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        (timeline, task)
    }

    fn generation(&self, name: &str) -> i64 {
        self.0.lock().unwrap()[name].last().map(|s| s.1).unwrap_or_default()
    }

    /// When `name` was first seen past generation `from` (rolled by the reloader).
    fn rolled_at(&self, name: &str, from: i64) -> Option<Instant> {
        let samples = self.0.lock().unwrap();
        samples[name].iter().find(|s| s.1 > from).map(|s| s.0)
    }

    /// When `name` was first seen rolled out at generation `at` or later.
    fn healthy_at(&self, name: &str, at: i64) -> Option<Instant> {
        let samples = self.0.lock().unwrap();
        samples[name].iter().find(|s| s.1 >= at && s.2).map(|s| s.0)
    }
}

/// The Secret's content becomes `content`.
async fn rotate(secrets: &Api<Secret>, content: &str) {
    let body = json!({"stringData": {"content": content}});
    secrets
        .patch(SECRET, &PatchParams::default(), &Patch::Merge(&body))
        .await
        .unwrap();
}

/// Every Deployment's generation now.
fn generations(timeline: &Timeline) -> BTreeMap<&'static str, i64> {
    WAVES
        .iter()
        .flat_map(|w| w.iter())
        .map(|n| (*n, timeline.generation(n)))
        .collect()
}

/// Every ReplicaSet count (one per rollout).
async fn rollout_counts(client: &Client, namespace: &str) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for name in WAVES.iter().flat_map(|w| w.iter()) {
        counts.insert(*name, rollouts(client, namespace, name).await);
    }
    counts
}

/// Each of `names` rolled once past `before` and rolled out, in waves: no Deployment of a wave
/// was rolled before every Deployment of the wave before it was seen rolled out. `since`: when
/// the round began, for the log.
async fn assert_waves(timeline: &Timeline, before: &BTreeMap<&str, i64>, waves: &[&[&str]], since: Instant) {
    eventually("every wave rolled out", || async {
        let done = waves
            .iter()
            .flat_map(|w| w.iter())
            .all(|n| timeline.healthy_at(n, before[n] + 1).is_some());
        done.then_some(())
    })
    .await;
    for (i, wave) in waves.iter().enumerate() {
        let at = |t: Option<Instant>| t.map(|t| format!("{:.1}s", (t - since).as_secs_f64()));
        let seen: Vec<String> = wave
            .iter()
            .map(|n| {
                let rolled = at(timeline.rolled_at(n, before[n])).unwrap_or_default();
                let healthy = at(timeline.healthy_at(n, before[n] + 1)).unwrap_or_default();
                format!("{n} rolled {rolled}, rolled out {healthy}")
            })
            .collect();
        eprintln!("waves:   wave {}: {}", i + 1, seen.join("; "));
    }
    for pair in waves.windows(2) {
        let (previous, next) = (pair[0], pair[1]);
        let healthy = previous
            .iter()
            .map(|n| timeline.healthy_at(n, before[n] + 1).unwrap())
            .max()
            .unwrap();
        for name in next {
            let rolled = timeline.rolled_at(name, before[name]).unwrap();
            assert!(
                rolled >= healthy,
                "{name} rolled {:?} before the wave {previous:?} was rolled out",
                healthy - rolled
            );
        }
    }
    for name in waves.iter().flat_map(|w| w.iter()) {
        assert_eq!(
            timeline.generation(name),
            before[name] + 1,
            "{name} rolled exactly once"
        );
    }
}

/// Warning `ReloadHalted` Events about `kind`/`name`.
async fn halted_events(client: &Client, namespace: &str, kind: &str, name: &str) -> Vec<Event> {
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    let fields = format!("involvedObject.kind={kind},involvedObject.name={name},reason={HALTED}");
    let list = events.list(&ListParams::default().fields(&fields)).await.unwrap();
    list.items
}

/// Six Deployments of one Secret with waves `1,50%,100%`, the reloader installed with the chart
/// (one replica): a good rotation rolls them wave by wave, each wave only after the previous
/// one's pods are Ready, also across a restart of the reloader in the middle of a wave; a bad
/// one halts after the first wave, the others still serving the content before, with a Warning
/// Event on the Secret and the failed Deployment; the fix rolls all six, once each.
#[tokio::test]
async fn waves_roll_wave_by_wave_halt_on_failure_and_resume_after_a_restart() {
    let _turn = crate::one_at_a_time().await;
    let started = Instant::now();
    let node = RealNode::get();
    let client = client().await;
    let home = TestNamespace::new(&client, "rnwavesr").await;
    let (release, reloader) = Release::one_replica(&client, node, &home, "w").await;

    let app = TestNamespace::new(&client, "rnwaves").await;
    let ns = app.name.as_str();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret = json!({"metadata": {"name": SECRET, "annotations": {"reloader.stakater.com/rollout-waves": "1,50%,100%"}},
                        "stringData": {"content": "good-1"}});
    secrets
        .create(&PostParams::default(), &serde_json::from_value(secret).unwrap())
        .await
        .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let all: Vec<&str> = WAVES.iter().flat_map(|w| w.iter().copied()).collect();
    for name in &all {
        deployments
            .create(
                &PostParams::default(),
                &serde_json::from_value(wave_app(node, name)).unwrap(),
            )
            .await
            .unwrap();
    }
    for name in &all {
        wait_printed(&client, ns, &format!("app={name}"), 1, "content=good-1").await;
    }
    let (timeline, recorder) = Timeline::record(client.clone(), ns.to_string());
    let counts = rollout_counts(&client, ns).await;
    eprintln!("waves: installed and the apps running after {:?}", started.elapsed());

    // A good rotation; the reloader's container killed once the first wave has rolled.
    let round = Instant::now();
    let before = generations(&timeline);
    rotate(&secrets, "good-2").await;
    eventually("the first wave rolled", || async {
        timeline.rolled_at(WAVES[0][0], before[WAVES[0][0]])
    })
    .await;
    for name in WAVES[1..].iter().flat_map(|w| w.iter()) {
        assert_eq!(
            timeline.generation(name),
            before[name],
            "{name} rolled with the first wave"
        );
    }
    let killed = kill_reloader(&client, node, &home.name, &reloader).await;
    assert_waves(&timeline, &before, &WAVES, round).await;
    for name in &all {
        wait_printed(&client, ns, &format!("app={name}"), 1, "content=good-2").await;
    }
    assert_eq!(
        restart_count(&client, &home.name, &killed).await,
        1,
        "the reloader was restarted mid-wave"
    );
    let after_good = rollout_counts(&client, ns).await;
    for name in &all {
        assert_eq!(after_good[name], counts[name] + 1, "{name}: one rollout for good-2");
    }
    eprintln!("waves: the good rotation rolled out in {:?}", round.elapsed());

    // A bad rotation: the first wave fails, the rest halt.
    let round = Instant::now();
    let before = generations(&timeline);
    rotate(&secrets, "bad").await;
    let failed = WAVES[0][0];
    eventually("the Secret's ReloadHalted Event", || async {
        let events = halted_events(&client, ns, "Secret", SECRET).await;
        (!events.is_empty()).then_some(())
    })
    .await;
    let on_workload = eventually(&format!("the ReloadHalted Event on {failed}"), || async {
        let events = halted_events(&client, ns, "Deployment", failed).await;
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(on_workload.len(), 1, "one ReloadHalted Event on {failed}");
    let message = on_workload[0].message.clone().unwrap_or_default();
    assert!(
        message.contains(&format!("deploy/{failed} failed")) && message.contains("ProgressDeadlineExceeded"),
        "{message}"
    );
    assert_eq!(timeline.generation(failed), before[failed] + 1, "the first wave rolled");
    // The rest stay as they were, serving the content before, for longer than a next wave
    // would take to start (the failure wakes them; the coalescing window is 2 s).
    let quiet = Instant::now();
    while quiet.elapsed() < Duration::from_secs(6) {
        for name in WAVES[1..].iter().flat_map(|w| w.iter()) {
            assert_eq!(timeline.generation(name), before[name], "{name} rolled past the halt");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for name in WAVES[1..].iter().flat_map(|w| w.iter()) {
        wait_printed(&client, ns, &format!("app={name}"), 1, "content=good-2").await;
    }
    assert_eq!(
        halted_events(&client, ns, "Secret", SECRET).await.len(),
        1,
        "the halt told once on the Secret"
    );
    // Where else people look: the held gauge (the five behind the failed wave), and explain.
    let pod = ready_pods(
        &client,
        &home.name,
        &format!("app.kubernetes.io/instance={}", release.name),
    )
    .await
    .into_iter()
    .next()
    .and_then(|p| p.metadata.name)
    .expect("the reloader's pod");
    eventually("reloader_held_workloads{reason=\"halted\"} at 5", || async {
        let metrics = kubectl_ok(
            &[
                "get",
                "--raw",
                &format!("/api/v1/namespaces/{}/pods/{pod}:9090/proxy/metrics", home.name),
            ],
            None,
        );
        metrics
            .lines()
            .any(|l| l == "reloader_held_workloads{reason=\"halted\"} 5")
            .then_some(())
    })
    .await;
    let pending = WAVES[1][0];
    let (target, deployment) = (format!("deploy/{pending}"), format!("{}/{reloader}", home.name));
    let kubeconfig = format!("--kubeconfig={}", crate::support::kubeconfig().display());
    let verdict = Reloader::explain_json(&[&target, "-n", ns, "--from-deployment", &deployment, &kubeconfig], &[]);
    assert_eq!(verdict["verdict"]["verdict"], "held", "{verdict:#}");
    assert_eq!(verdict["verdict"]["reason"], "halted", "{verdict:#}");
    let summary = verdict["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains(&format!("deploy/{failed}")) && summary.contains("ProgressDeadlineExceeded"),
        "{summary}"
    );
    eprintln!("waves: the bad rotation halted, checked in {:?}", round.elapsed());

    // The fix: all six roll once more, wave by wave, the failed one first.
    let round = Instant::now();
    let before = generations(&timeline);
    let before_fix = rollout_counts(&client, ns).await;
    rotate(&secrets, "good-3").await;
    assert_waves(&timeline, &before, &WAVES, round).await;
    for name in &all {
        wait_printed(&client, ns, &format!("app={name}"), 1, "content=good-3").await;
    }
    // A duplicate would follow within the coalescing window (2 s by the chart's default).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after_fix = rollout_counts(&client, ns).await;
    for name in &all {
        assert_eq!(after_fix[name], before_fix[name] + 1, "{name}: one rollout for the fix");
    }
    for name in &all {
        let d = deployments.get(name).await.unwrap();
        assert!(rolled_out(&d), "{name} rolled out");
    }
    recorder.abort();
    eprintln!(
        "waves: the fix rolled out in {:?}; {:?} in all (deadline per wait {DEADLINE:?})",
        round.elapsed(),
        started.elapsed()
    );
}
