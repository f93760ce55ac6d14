//! Pod restarts on the real node (issue 25): an `updateStrategy: OnDelete` StatefulSet of three
//! replicas reading a mounted Secret, with a PodDisruptionBudget of `maxUnavailable: 1`. After a
//! rotation the reloader stamps its template, then evicts its old pods one at a time, the
//! highest ordinal first, each replacement Ready before the next eviction; its container killed
//! after the first eviction, it resumes without evicting any pod twice.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, Pod, Secret};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

use crate::install::Release;
use crate::node::{RealNode, kill_reloader, restart_count, wait_printed};
use crate::support::{TestNamespace, client, eventually};

const SECRET: &str = "restart-secret";
const SET: &str = "web";
const REPLICAS: usize = 3;

/// One look at the set's pods: per pod name, its uid, Ready and not terminating.
type Sample = (Instant, BTreeMap<String, (String, bool)>);

/// The set's pods every 100 ms, until the task is aborted.
#[derive(Clone, Default)]
struct Timeline(Arc<Mutex<Vec<Sample>>>);

impl Timeline {
    fn record(client: Client, namespace: String) -> (Self, tokio::task::JoinHandle<()>) {
        let timeline = Timeline::default();
        let samples = timeline.0.clone();
        let task = tokio::spawn(async move {
            let api: Api<Pod> = Api::namespaced(client, &namespace);
            let selector = format!("app={SET}");
            loop {
                if let Ok(list) = api.list(&ListParams::default().labels(&selector)).await {
                    let pods = list
                        .items
                        .iter()
                        .map(|p| {
                            let ready = p.metadata.deletion_timestamp.is_none()
                                && p.status
                                    .as_ref()
                                    .and_then(|s| s.conditions.as_ref())
                                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                            let uid = p.metadata.uid.clone().unwrap_or_default();
                            (p.metadata.name.clone().unwrap_or_default(), (uid, ready))
                        })
                        .collect();
                    samples.lock().unwrap().push((Instant::now(), pods));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        (timeline, task)
    }

    /// The uids each pod name had, in the order seen.
    fn uids(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (_, pods) in self.0.lock().unwrap().iter() {
            for (name, (uid, _)) in pods {
                let seen = out.entry(name.clone()).or_default();
                if !seen.contains(uid) {
                    seen.push(uid.clone());
                }
            }
        }
        out
    }

    /// When the pod `uid` was first seen not Ready (evicted: terminating, or gone) after being
    /// Ready.
    fn gone_at(&self, name: &str, uid: &str) -> Option<Instant> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .find_map(|(at, pods)| match pods.get(name) {
                Some((u, true)) if u == uid => None,
                _ => Some(*at),
            })
    }

    /// When the pod `uid` was first seen Ready.
    fn ready_at(&self, name: &str, uid: &str) -> Option<Instant> {
        let samples = self.0.lock().unwrap();
        samples
            .iter()
            .find(|(_, pods)| pods.get(name).is_some_and(|(u, ready)| u == uid && *ready))
            .map(|(at, _)| *at)
    }

    /// The most pods of the set seen missing or not Ready at once.
    fn most_unavailable(&self) -> usize {
        let samples = self.0.lock().unwrap();
        samples
            .iter()
            .map(|(_, pods)| {
                (0..REPLICAS)
                    .filter(|i| !pods.get(&format!("{SET}-{i}")).is_some_and(|(_, ready)| *ready))
                    .count()
            })
            .max()
            .unwrap_or_default()
    }
}

#[tokio::test]
async fn an_on_delete_statefulset_restarts_its_pods_one_at_a_time_across_a_reloader_restart() {
    let _turn = crate::one_at_a_time().await;
    let started = Instant::now();
    let node = RealNode::get();
    let client = client().await;
    let home = TestNamespace::new(&client, "rnrestartr").await;
    let (_release, reloader) = Release::one_replica(&client, node, &home, "p").await;

    let app = TestNamespace::new(&client, "rnrestart").await;
    let ns = app.name.as_str();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret = json!({"metadata": {"name": SECRET}, "stringData": {"content": "v1"}});
    secrets
        .create(&PostParams::default(), &serde_json::from_value(secret).unwrap())
        .await
        .unwrap();
    let budget = json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": SET},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": SET}}},
    });
    let budgets: Api<k8s_openapi::api::policy::v1::PodDisruptionBudget> = Api::namespaced(client.clone(), ns);
    budgets
        .create(&PostParams::default(), &serde_json::from_value(budget).unwrap())
        .await
        .unwrap();
    let mut pod = json!({
        "terminationGracePeriodSeconds": 2,
        "containers": [{
            "name": "app",
            "image": node.app_image,
            "imagePullPolicy": "Never",
            "command": ["sh", "-c",
                "echo \"content=$(cat /secret/content)\"; touch /tmp/ready; trap 'exit 0' TERM; sleep 100000 & wait"],
            "readinessProbe": {"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 1},
            "volumeMounts": [{"name": "secret", "mountPath": "/secret"}],
        }],
        "volumes": [{"name": "secret", "secret": {"secretName": SECRET}}],
    });
    for (key, value) in node.placement().as_object().unwrap() {
        pod[key] = value.clone();
    }
    let set = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": SET, "annotations": {"reloader.stakater.com/auto": "true"}},
        "spec": {
            "replicas": REPLICAS,
            "serviceName": SET,
            "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": "OnDelete"},
            "selector": {"matchLabels": {"app": SET}},
            "template": {"metadata": {"labels": {"app": SET}}, "spec": pod},
        },
    });
    let sets: Api<k8s_openapi::api::apps::v1::StatefulSet> = Api::namespaced(client.clone(), ns);
    sets.create(&PostParams::default(), &serde_json::from_value(set).unwrap())
        .await
        .unwrap();
    let selector = format!("app={SET}");
    wait_printed(&client, ns, &selector, REPLICAS, "content=v1").await;
    let (timeline, recorder) = Timeline::record(client.clone(), ns.to_string());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = timeline.uids();
    eprintln!(
        "pod restarts: installed and the set running after {:?}",
        started.elapsed()
    );

    // Rotate; kill the reloader's container once the first pod (the highest ordinal) is evicted.
    let round = Instant::now();
    let body = json!({"stringData": {"content": "v2"}});
    secrets
        .patch(SECRET, &PatchParams::default(), &Patch::Merge(&body))
        .await
        .unwrap();
    let last = format!("{SET}-{}", REPLICAS - 1);
    let first_uid = before[&last][0].clone();
    eventually("the highest ordinal evicted", || async {
        timeline.gone_at(&last, &first_uid)
    })
    .await;
    let killed = kill_reloader(&client, node, &home.name, &reloader).await;
    wait_printed(&client, ns, &selector, REPLICAS, "content=v2").await;
    // An eviction too many would follow within a look again (1 s).
    tokio::time::sleep(Duration::from_secs(3)).await;
    recorder.abort();
    assert_eq!(
        restart_count(&client, &home.name, &killed).await,
        1,
        "the reloader was restarted mid-way"
    );

    // Each pod replaced exactly once: its first uid and one more.
    let uids = timeline.uids();
    for i in 0..REPLICAS {
        let name = format!("{SET}-{i}");
        assert_eq!(uids[&name].len(), 2, "{name}: {:?}", uids[&name]);
        assert_eq!(uids[&name][0], before[&name][0], "{name}");
    }
    // Highest ordinal first; each replacement Ready before the next eviction.
    let at = |t: Instant| format!("{:.1}s", (t - round).as_secs_f64());
    let mut previous_ready: Option<Instant> = None;
    for i in (0..REPLICAS).rev() {
        let name = format!("{SET}-{i}");
        let gone = timeline.gone_at(&name, &uids[&name][0]).expect("evicted");
        let ready = timeline.ready_at(&name, &uids[&name][1]).expect("replacement ready");
        eprintln!(
            "pod restarts:   {name} evicted {}, replacement ready {}",
            at(gone),
            at(ready)
        );
        if let Some(previous) = previous_ready {
            assert!(
                gone >= previous,
                "{name} evicted before the previous replacement was Ready"
            );
        }
        previous_ready = Some(ready);
    }
    assert_eq!(timeline.most_unavailable(), 1, "one pod at a time");
    // The Events: one per eviction (one may be lost with the killed container).
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    let fields = format!("involvedObject.kind=StatefulSet,involvedObject.name={SET},reason=PodRestarted");
    let told = events.list(&ListParams::default().fields(&fields)).await.unwrap().items;
    let count: i32 = told.iter().map(|e| e.count.unwrap_or(1)).sum();
    assert!((2..=3).contains(&count), "{count} PodRestarted Events");
    eprintln!(
        "pod restarts: the rotation reached every pod in {:?}; {:?} in all",
        round.elapsed(),
        started.elapsed()
    );
}
