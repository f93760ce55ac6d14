//! Per-kind behaviour (§3.6) and the env-vars strategy, against the real control plane.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use reloader::core::hash::sha1_hex;
use reloader::core::hash_record::env_var_name;
use reloader::core::source::{SourceKind, SourceRef};
use reloader::core::vocabulary::fixed;
use serde_json::{Value, json};

use crate::engine::{Fixture, auto, uses};
use crate::support::{Reloader, eventually, wait_for};

fn pod_spec(cm: &str) -> Value {
    json!({"restartPolicy": "Never",
           "containers": [{"name": "job", "image": "registry.example/job:1", "envFrom": [{"configMapRef": {"name": cm}}]}]})
}

fn template_hashes(object: &Value, pointer: &str) -> Option<String> {
    object.pointer(pointer)?.as_str().map(str::to_string)
}

const CRON_HASHES: &str = "/spec/jobTemplate/spec/template/metadata/annotations/reloader.stakater.com~1hashes";
const JOB_HASHES: &str = "/spec/template/metadata/annotations/reloader.stakater.com~1hashes";

async fn cronjob(f: &Fixture, name: &str, suspend: bool) {
    let api: Api<CronJob> = Api::namespaced(f.client.clone(), &f.ns.name);
    let cj: CronJob = serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": auto()},
        "spec": {"schedule": "0 0 1 1 *", "suspend": suspend,
                 "jobTemplate": {"metadata": {"labels": {"from": name}}, "spec": {"template": {"spec": pod_spec("cfg")}}}}
    }))
    .unwrap();
    api.create(&PostParams::default(), &cj).await.unwrap();
}

async fn jobs_of(f: &Fixture, cronjob: &str) -> Vec<Job> {
    let api: Api<Job> = Api::namespaced(f.client.clone(), &f.ns.name);
    api.list(&ListParams::default().labels(&format!("from={cronjob}")))
        .await
        .unwrap()
        .items
}

#[tokio::test]
async fn cronjobs_get_the_new_template_and_run_once_unless_suspended() {
    let f = Fixture::new("cron").await;
    f.config_map("cfg", json!({"k": "v1"})).await;
    cronjob(&f, "active", false).await;
    cronjob(&f, "paused", true).await;
    let reloader = Reloader::start(&f.ns.name, &[]);
    let api: Api<CronJob> = Api::namespaced(f.client.clone(), &f.ns.name);
    for name in ["active", "paused"] {
        wait_for(&api, name, "acknowledged", |c: Option<&CronJob>| {
            c.is_some_and(|c| c.annotations().contains_key(fixed::ACKNOWLEDGED_HASHES))
        })
        .await;
    }
    assert!(jobs_of(&f, "active").await.is_empty(), "adoption starts no Job");

    f.set_config_map("cfg", json!({"k": "v2"})).await;
    let v2 = sha1_hex(b"k=v2");
    for name in ["active", "paused"] {
        let expected = format!("configmap/cfg={v2}");
        wait_for(&api, name, "a stamped job template", move |c: Option<&CronJob>| {
            c.and_then(|c| template_hashes(&serde_json::to_value(c).unwrap(), CRON_HASHES)) == Some(expected.clone())
        })
        .await;
    }
    let jobs = eventually("the manual Job", || async {
        let jobs = jobs_of(&f, "active").await;
        (!jobs.is_empty()).then_some(jobs)
    })
    .await;
    reloader.settle(4.0).await;
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(
        job.annotations()
            .get("cronjob.kubernetes.io/instantiate")
            .map(String::as_str),
        Some("manual")
    );
    let owner = &job.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("CronJob", "active", Some(true))
    );
    assert_eq!(
        template_hashes(&serde_json::to_value(job).unwrap(), JOB_HASHES),
        Some(format!("configmap/cfg={v2}"))
    );
    // The suspended CronJob got the template but started nothing (Stakater issue #822).
    assert!(jobs_of(&f, "paused").await.is_empty());
    assert_eq!(jobs_of(&f, "active").await.len(), 1, "exactly one Job");
}

#[tokio::test]
async fn jobs_are_recreated_with_the_new_template() {
    let f = Fixture::new("job").await;
    f.config_map("cfg", json!({"k": "v1"})).await;
    let api: Api<Job> = Api::namespaced(f.client.clone(), &f.ns.name);
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": "migrate", "annotations": auto(), "labels": {"team": "db"}},
        "spec": {"template": {"metadata": {"labels": {"team": "db"}}, "spec": pod_spec("cfg")}}
    }))
    .unwrap();
    api.create(&PostParams::default(), &job).await.unwrap();
    let _reloader = Reloader::start(&f.ns.name, &[]);
    wait_for(&api, "migrate", "acknowledged", |j: Option<&Job>| {
        j.is_some_and(|j| j.annotations().contains_key(fixed::ACKNOWLEDGED_HASHES))
    })
    .await;
    let old_uid = api.get("migrate").await.unwrap().uid().unwrap();

    f.set_config_map("cfg", json!({"k": "v2"})).await;
    let expected = format!("configmap/cfg={}", sha1_hex(b"k=v2"));
    let recreated = eventually("a re-created Job", || async {
        let job = api.get_opt("migrate").await.ok()??;
        (job.uid().as_deref() != Some(old_uid.as_str())).then_some(job)
    })
    .await;
    let value = serde_json::to_value(&recreated).unwrap();
    assert_eq!(template_hashes(&value, JOB_HASHES), Some(expected));
    assert_eq!(
        recreated.labels().get("team").map(String::as_str),
        Some("db"),
        "user labels kept"
    );
}

#[tokio::test]
async fn env_vars_written_by_stakater_are_up_to_date_and_then_updated_in_place() {
    let f = Fixture::new("envvars").await;
    f.config_map("cfg", json!({"k": "v1"})).await;
    f.secret("db", json!({"password": "p1"})).await;
    let var = env_var_name(&SourceRef::new(SourceKind::ConfigMap, "cfg"));
    // As Stakater Reloader leaves a workload after reloading it once on `cfg`.
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "app", "annotations": auto()},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "app"}},
                 "template": {"metadata": {"labels": {"app": "app"}},
                              "spec": {"containers": [{"name": "app", "image": "registry.example/app:1",
                                                       "envFrom": uses("cfg", "db"),
                                                       "env": [{"name": var, "value": sha1_hex(b"k=v1").to_string()}]}]}}}
    }))
    .unwrap();
    f.deployments.create(&PostParams::default(), &d).await.unwrap();
    let reloader = Reloader::start(&f.ns.name, &["--reload-strategy=env-vars"]);
    // The Secret has no var yet: acknowledged, not rolled; the ConfigMap's var is current.
    f.wait_acknowledged("app").await;
    reloader.settle(1.0).await;
    assert_eq!(reloader.metric("reloader_reconciles_total{outcome=\"rolled\"}"), 0.0);
    f.wait_revisions("app", 1).await;

    f.set_config_map("cfg", json!({"k": "v2"})).await;
    f.wait_revisions("app", 2).await;
    let d = f.deployments.get("app").await.unwrap();
    let env = d.spec.unwrap().template.spec.unwrap().containers[0]
        .env
        .clone()
        .unwrap();
    let value = |name: &str| env.iter().find(|e| e.name == name).and_then(|e| e.value.clone());
    assert_eq!(value(&var), Some(sha1_hex(b"k=v2").to_string()));
    assert_eq!(
        value(&env_var_name(&SourceRef::new(SourceKind::Secret, "db"))),
        Some(sha1_hex(b"password=p1").to_string())
    );
}

#[tokio::test]
async fn a_concurrent_writer_keeps_its_changes_and_the_final_stamp_is_current() {
    let f = Fixture::new("writer").await;
    f.config_map("cfg", json!({"k": "v0"})).await;
    f.secret("db", json!({"password": "p1"})).await;
    f.deployment("app", auto(), uses("cfg", "db")).await;
    let _reloader = Reloader::start(&f.ns.name, &["--coalesce-window=0"]);
    f.wait_acknowledged("app").await;

    // Another controller keeps writing the same object while the config changes.
    let writer = {
        let deployments = f.deployments.clone();
        tokio::spawn(async move {
            for i in 0..40 {
                let patch = json!({"metadata": {"labels": {"writer": format!("w{i}")}}});
                let _ = deployments
                    .patch("app", &PatchParams::default(), &Patch::Merge(&patch))
                    .await;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
    };
    for v in 1..=5 {
        f.set_config_map("cfg", json!({"k": format!("v{v}")})).await;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    writer.await.unwrap();
    let expected = format!("configmap/cfg={}", sha1_hex(b"k=v5"));
    eventually("the final stamp", || async {
        let hashes = f.template_hashes("app").await?;
        hashes.starts_with(&expected).then_some(())
    })
    .await;
    let d = f.deployments.get("app").await.unwrap();
    assert_eq!(
        d.labels().get("writer").map(String::as_str),
        Some("w39"),
        "the other writer's field survives"
    );
}

#[tokio::test]
async fn a_pause_period_batches_changes_and_survives_a_restart() {
    use reloader::core::vocabulary::defaults;
    let f = Fixture::new("pause").await;
    f.config_map("cfg", json!({"k": "v1"})).await;
    f.secret("db", json!({"password": "p"})).await;
    f.deployment(
        "app",
        json!({defaults::AUTO: "true", defaults::PAUSE_PERIOD: "4s"}),
        uses("cfg", "db"),
    )
    .await;
    let mut first = Reloader::start(&f.ns.name, &[]);
    f.wait_acknowledged("app").await;

    f.set_config_map("cfg", json!({"k": "v2"})).await;
    wait_for(
        &f.deployments,
        "app",
        "paused by the reloader",
        |d: Option<&Deployment>| {
            d.is_some_and(|d| {
                d.spec.as_ref().and_then(|s| s.paused) == Some(true)
                    && d.annotations().contains_key(defaults::PAUSED_AT)
            })
        },
    )
    .await;
    // A second change within the period lands in the template but does not roll yet.
    f.set_config_map("cfg", json!({"k": "v3"})).await;
    let v3 = format!("configmap/cfg={}", sha1_hex(b"k=v3"));
    eventually("the second change stamped", || async {
        f.template_hashes("app").await?.starts_with(&v3).then_some(())
    })
    .await;
    assert_eq!(f.revisions("app").await, 1, "paused: no rollout yet");

    // The reloader restarts mid-pause; the new process resumes on time from the annotation.
    first.kill();
    let _second = Reloader::start(&f.ns.name, &[]);
    wait_for(&f.deployments, "app", "resumed", |d: Option<&Deployment>| {
        d.is_some_and(|d| {
            // `paused: false` is the default, which the API server omits.
            d.spec.as_ref().and_then(|s| s.paused) != Some(true) && !d.annotations().contains_key(defaults::PAUSED_AT)
        })
    })
    .await;
    f.wait_revisions("app", 2).await;
}

/// SIGTERM while a Job is between its delete and its re-create (a finalizer keeps the old one's
/// name taken): the reloader finishes the re-create before it exits, so the Job is never lost.
#[tokio::test]
async fn sigterm_in_the_middle_of_a_job_re_create_leaves_the_job_created() {
    let f = Fixture::new("job-term").await;
    f.config_map("cfg", json!({"k": "v1"})).await;
    let api: Api<Job> = Api::namespaced(f.client.clone(), &f.ns.name);
    let finalizer = "reloader.test/hold";
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": "migrate", "annotations": auto(), "finalizers": [finalizer]},
        "spec": {"template": {"spec": pod_spec("cfg")}}
    }))
    .unwrap();
    api.create(&PostParams::default(), &job).await.unwrap();
    let mut reloader = Reloader::start(&f.ns.name, &[]);
    wait_for(&api, "migrate", "acknowledged", |j: Option<&Job>| {
        j.is_some_and(|j| j.annotations().contains_key(fixed::ACKNOWLEDGED_HASHES))
    })
    .await;
    let old_uid = api.get("migrate").await.unwrap().uid().unwrap();

    f.set_config_map("cfg", json!({"k": "v2"})).await;
    // Deleted, but held by the finalizer: the re-create waits for the name.
    wait_for(&api, "migrate", "the old Job terminating", |j: Option<&Job>| {
        j.is_some_and(|j| j.metadata.deletion_timestamp.is_some())
    })
    .await;
    reloader.terminate();
    // Still running: it does not exit with the Job deleted and not re-created.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(reloader.exited().is_none(), "exited in the middle of a re-create");
    api.patch(
        "migrate",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    let recreated = eventually("a re-created Job", || async {
        let job = api.get_opt("migrate").await.ok()??;
        (job.uid().as_deref() != Some(old_uid.as_str())).then_some(job)
    })
    .await;
    let value = serde_json::to_value(&recreated).unwrap();
    let expected = format!("configmap/cfg={}", sha1_hex(b"k=v2"));
    assert_eq!(template_hashes(&value, JOB_HASHES), Some(expected));
    let deadline = std::time::Instant::now() + crate::support::DEADLINE;
    let status = loop {
        if let Some(status) = reloader.exited() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the reloader did not exit");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(status.success(), "{status}");
}
