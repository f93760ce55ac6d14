//! Reload windows against the real control plane. The reloader's clock is started at a chosen
//! instant (`RELOADER_TEST_CLOCK_START`) a few seconds before a window opens, so the opening is
//! seconds away rather than hours.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Namespace};
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use reloader::core::vocabulary::fixed;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::engine::{Fixture, auto, uses};
use crate::explain::explain_with;
use crate::support::{Reloader, eventually, kubeconfig};

const CLOCK: &str = "RELOADER_TEST_CLOCK_START";

/// The reloader's clock: `start` when the test began, running at the real pace since.
struct TestClock {
    start: OffsetDateTime,
    began: Instant,
}

impl TestClock {
    fn new(start: &str) -> Self {
        Self {
            start: OffsetDateTime::parse(start, &Rfc3339).unwrap(),
            began: Instant::now(),
        }
    }

    /// What the reloader's clock reads now, for a (re)started process.
    fn now(&self) -> String {
        let elapsed = time::Duration::try_from(self.began.elapsed()).unwrap();
        (self.start + elapsed).format(&Rfc3339).unwrap()
    }

    /// Real time left until the clock reads `at`.
    fn until(&self, at: &str) -> Duration {
        let at = OffsetDateTime::parse(at, &Rfc3339).unwrap();
        Duration::try_from(at - self.start)
            .unwrap()
            .saturating_sub(self.began.elapsed())
    }

    fn start(&self, namespace: &str, args: &[&str]) -> Reloader {
        let now = self.now();
        Reloader::start_with(kubeconfig(), namespace, args, &[(CLOCK, &now)])
    }
}

async fn events(f: &Fixture, reason: &str, name: &str) -> Vec<String> {
    let api: Api<Event> = Api::namespaced(f.client.clone(), &f.ns.name);
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason) && e.involved_object.name.as_deref() == Some(name))
        .filter_map(|e| e.message)
        .collect()
}

async fn annotate(f: &Fixture, name: &str, key: &str, value: &str) {
    f.deployments
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"annotations": {key: value}}})),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_change_outside_the_window_is_held_and_rolls_once_when_it_opens_across_a_restart() {
    let f = Fixture::new("window").await;
    f.config_map("cfg", json!({"k": "v1"})).await;
    f.secret("db", json!({"password": "p1"})).await;
    // Monday 2026-01-05, 20 s before a 02:00-04:00 UTC window opens.
    let clock = TestClock::new("2026-01-05T01:59:40Z");
    let opening = "2026-01-05T02:00:00Z";
    let mut windowed = auto();
    windowed[fixed::RELOAD_WINDOW] = json!("Mon-Fri 02:00-04:00");
    f.deployment("held", windowed, uses("cfg", "db")).await;
    f.deployment("free", auto(), uses("cfg", "db")).await;
    let mut reloader = clock.start(&f.ns.name, &[]);
    f.wait_acknowledged("held").await;
    f.wait_acknowledged("free").await;

    f.set_config_map("cfg", json!({"k": "v2"})).await;
    f.wait_revisions("free", 2).await;
    let held = eventually("the ReloadHeld Event", || async {
        events(&f, "ReloadHeld", "held").await.into_iter().next()
    })
    .await;
    assert!(
        held.contains("held until Mon 02:00 UTC") && held.contains("Mon-Fri 02:00-04:00"),
        "{held}"
    );
    eventually("the held gauge", || async {
        (reloader.metric("reloader_held_workloads{reason=\"window\"}") == 1.0).then_some(())
    })
    .await;
    assert_eq!(f.revisions("held").await, 1, "held outside the window");

    // A second change while held, and a restart: still held, and later one rollout with the
    // content of the moment the window opens.
    f.set_config_map("cfg", json!({"k": "v3"})).await;
    f.wait_revisions("free", 3).await;
    reloader.terminate();
    let deadline = Instant::now() + Duration::from_secs(30);
    while reloader.exited().is_none() {
        assert!(Instant::now() < deadline, "the first reloader did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reloader = clock.start(&f.ns.name, &[]);
    reloader.wait_ready().await;
    eventually("the restarted reloader's held gauge", || async {
        (reloader.metric("reloader_held_workloads{reason=\"window\"}") == 1.0).then_some(())
    })
    .await;
    assert_eq!(f.revisions("held").await, 1, "still held after the restart");
    assert!(
        clock.until(opening) > Duration::ZERO,
        "the test ran past the opening too early"
    );

    f.wait_revisions("held", 2).await;
    assert!(
        clock.until(opening).is_zero(),
        "rolled {:?} before the window opened",
        clock.until(opening)
    );
    let free = f.template_hashes("free").await.unwrap();
    let rolled = f.template_hashes("held").await.unwrap();
    assert_eq!(rolled, free, "rolled with the content of the opening (v3)");
    eventually("the gauge back to zero", || async {
        (reloader.metric("reloader_held_workloads{reason=\"window\"}") == 0.0).then_some(())
    })
    .await;
    reloader.settle(1.0).await;
    assert_eq!(f.revisions("held").await, 2, "rolled once");
}

#[tokio::test]
async fn reload_now_lets_a_held_change_through_once() {
    let f = Fixture::new("reload-now").await;
    f.config_map("cfg", json!({"k": "v1"})).await;
    f.secret("db", json!({"password": "p1"})).await;
    // Midday on a Wednesday: the night window is hours away.
    let clock = TestClock::new("2026-01-07T12:00:00Z");
    f.deployment("app", auto(), uses("cfg", "db")).await;
    let reloader = clock.start(&f.ns.name, &["--reload-window=22:00-06:00 Europe/Berlin"]);
    f.wait_acknowledged("app").await;
    f.set_config_map("cfg", json!({"k": "v2"})).await;
    let held = eventually("the ReloadHeld Event", || async {
        events(&f, "ReloadHeld", "app").await.into_iter().next()
    })
    .await;
    assert!(held.contains("held until Wed 22:00 CET"), "{held}");
    assert_eq!(f.revisions("app").await, 1);
    // `explain` says the same, at the same clock.
    let now = clock.now();
    let v = explain_with(
        &f.ns.name,
        "deploy/app",
        &[],
        &["--reload-window=22:00-06:00 Europe/Berlin"],
        &[(CLOCK, &now)],
    );
    assert_eq!(v["verdict"]["verdict"], "held", "{v:#}");
    assert_eq!(v["verdict"]["reason"], "window");
    let summary = v["summary"].as_str().unwrap();
    assert!(
        summary.starts_with(
            "held until Wed 22:00 CET (reload window 22:00-06:00 Europe/Berlin); then rolls out: configmap/cfg changed"
        ),
        "{summary}"
    );

    annotate(&f, "app", fixed::RELOAD_NOW, "true").await;
    f.wait_revisions("app", 2).await;
    let d: Deployment = f.deployments.get("app").await.unwrap();
    assert!(
        !d.annotations().contains_key(fixed::RELOAD_NOW),
        "reload-now is consumed by the rollout it let through"
    );
    eventually("nothing held", || async {
        (reloader.metric("reloader_held_workloads{reason=\"window\"}") == 0.0).then_some(())
    })
    .await;
    // The next change waits for the window again.
    f.set_config_map("cfg", json!({"k": "v3"})).await;
    eventually("held again", || async {
        (reloader.metric("reloader_held_workloads{reason=\"window\"}") == 1.0).then_some(())
    })
    .await;
    assert_eq!(f.revisions("app").await, 2);
}

#[tokio::test]
async fn a_namespace_window_holds_its_workloads_and_a_workload_window_wins() {
    let f = Fixture::new("ns-window").await;
    f.config_map("cfg", json!({"k": "v1"})).await;
    f.secret("db", json!({"password": "p1"})).await;
    let namespaces: Api<Namespace> = Api::all(f.client.clone());
    let label = f.ns.name.clone();
    namespaces
        .patch(
            &f.ns.name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {
                "labels": {"reloader-window-test": label},
                "annotations": {fixed::RELOAD_WINDOW: "Sat,Sun 00:00-24:00"}
            }})),
        )
        .await
        .unwrap();
    // A Thursday: the Namespace's weekend window is closed; the workload's own is open.
    let clock = TestClock::new("2026-01-08T10:00:00Z");
    let mut open_now = auto();
    open_now[fixed::RELOAD_WINDOW] = json!("Thu 09:00-11:00 UTC");
    f.deployment("own", open_now, uses("cfg", "db")).await;
    f.deployment("ns", auto(), uses("cfg", "db")).await;
    let selector = format!("--namespace-selector=reloader-window-test={label}");
    let reloader = clock.start("", &[&selector]);
    f.wait_acknowledged("own").await;
    f.wait_acknowledged("ns").await;
    f.set_config_map("cfg", json!({"k": "v2"})).await;
    f.wait_revisions("own", 2).await;
    eventually("the Namespace's window holding ns", || async {
        events(&f, "ReloadHeld", "ns").await.into_iter().next()
    })
    .await;
    assert_eq!(f.revisions("ns").await, 1);
    // Removing the Namespace's window lets it through.
    namespaces
        .patch(
            &f.ns.name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"annotations": {fixed::RELOAD_WINDOW: null}}})),
        )
        .await
        .unwrap();
    f.wait_revisions("ns", 2).await;
    reloader.settle(1.0).await;
    assert_eq!(f.revisions("own").await, 2);
}
