//! Fault tests: the reloader killed mid-burst, the API server restarted under its watches, and
//! a leader killed under churn with a standby taking over.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::ListParams;
use reloader::core::hash::sha1_hex;
use reloader::core::source::{SourceKind, SourceRef};
use reloader::core::vocabulary::fixed;
use serde_json::json;
use tokio::time::Instant;

use crate::engine::Fixture;
use crate::support::{PrivateCluster, Reloader, client_for, eventually, stamp_value};

/// The `reloader.stakater.com/hashes` value of every ReplicaSet of an app.
async fn revision_stamps(f: &Fixture, app: &str) -> Vec<Option<String>> {
    let rs: Api<ReplicaSet> = Api::namespaced(f.client.clone(), &f.ns.name);
    rs.list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|rs| {
            rs.spec?
                .template?
                .metadata?
                .annotations?
                .get(fixed::TEMPLATE_HASHES)
                .cloned()
        })
        .collect()
}

/// The controller-manager's `deployment.kubernetes.io/revision` of an app's Deployment.
async fn deployment_revision(f: &Fixture, app: &str) -> Option<String> {
    let d = f.deployments.get(app).await.unwrap();
    d.metadata
        .annotations
        .unwrap_or_default()
        .get("deployment.kubernetes.io/revision")
        .cloned()
}

/// 0 lost: every app ends stamped with `expected`. 0 duplicate: every revision carries a
/// different stamp, no template was ever written back to an earlier one (the Deployment's
/// revision number equals its ReplicaSet count), and there are at most `changes` rollouts.
async fn assert_final_and_no_duplicates(f: &Fixture, apps: &[String], expected: &str, changes: usize) {
    for app in apps {
        eventually(&format!("{app} stamped with the final hash and observed"), || async {
            let hashes = f.template_hashes(app).await?;
            let d = f.deployments.get(app).await.ok()?;
            let observed = d.status?.observed_generation == d.metadata.generation;
            (observed && hashes.starts_with(expected)).then_some(())
        })
        .await;
        // The controller-manager records the Deployment's revision after it creates the
        // ReplicaSet, not with it, and a CI run once read 6 beside 7 ReplicaSets: read both until
        // they agree, briefly. A template written back to an earlier one keeps the revision
        // above the count for good (the old ReplicaSet is reused under a new revision).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let (stamps, revision) = loop {
            let stamps = revision_stamps(f, app).await;
            let revision = deployment_revision(f, app).await;
            if revision == Some(stamps.len().to_string()) || std::time::Instant::now() >= deadline {
                break (stamps, revision);
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        };
        let distinct: BTreeSet<_> = stamps.iter().collect();
        assert_eq!(
            distinct.len(),
            stamps.len(),
            "{app}: two revisions with one stamp: {stamps:?}"
        );
        assert!(
            stamps.len() <= changes + 1,
            "{app}: {} revisions for {changes} changes",
            stamps.len()
        );
        assert_eq!(
            revision,
            Some(stamps.len().to_string()),
            "{app}: a template went back to an earlier one"
        );
    }
}

#[tokio::test]
async fn sigkill_during_a_burst_loses_and_duplicates_nothing() {
    let f = Fixture::new("sigkill").await;
    f.config_map("cfg", json!({"k": "v0"})).await;
    f.secret("db", json!({"password": "p"})).await;
    let apps = f.apps(8).await;
    let mut first = Reloader::start(&f.ns.name, &["--coalesce-window=100ms"]);
    for app in &apps {
        f.wait_acknowledged(app).await;
    }
    let mut second = None;
    for v in 1..=10 {
        f.set_config_map("cfg", json!({"k": format!("v{v}")})).await;
        if v == 5 {
            first.kill();
            second = Some(Reloader::start(&f.ns.name, &["--coalesce-window=100ms"]));
        }
        tokio::time::sleep(Duration::from_millis(80)).await;
    }
    let expected = format!("configmap/cfg={}", sha1_hex(b"k=v10"));
    assert_final_and_no_duplicates(&f, &apps, &expected, 10).await;
    drop(second);
}

#[tokio::test]
async fn watches_resume_after_the_api_server_restarts() {
    let cluster = PrivateCluster::start("fault-apiserver");
    let kubeconfig = cluster.kubeconfig();
    let f = Fixture::on(client_for(&kubeconfig).await, &kubeconfig, "apiserver").await;
    f.config_map("cfg", json!({"k": "v1"})).await;
    f.secret("db", json!({"password": "p"})).await;
    let apps = f.apps(3).await;
    let reloader = Reloader::start_with(&kubeconfig, &f.ns.name, &[], &[]);
    for app in &apps {
        f.wait_acknowledged(app).await;
    }
    cluster.component("stop-component", "kube-apiserver");
    // Long enough for every watch to fail and back off.
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.component("start-component", "kube-apiserver");

    f.set_config_map("cfg", json!({"k": "v2"})).await;
    let expected = format!("configmap/cfg={}", sha1_hex(b"k=v2"));
    assert_final_and_no_duplicates(&f, &apps, &expected, 1).await;
    assert!(
        reloader.metric_sum("reloader_watch_errors_total") > 0.0,
        "the watches did break"
    );
}

/// Two replicas, `reloader-a` and `reloader-b`, electing a leader in the fixture's namespace.
fn ha_pair(f: &Fixture, args: &[&str]) -> [Reloader; 2] {
    let start = |pod: &str| {
        Reloader::start_with(
            crate::support::kubeconfig(),
            &f.ns.name,
            args,
            &[("POD_NAME", pod), ("POD_NAMESPACE", &f.ns.name)],
        )
    };
    [start("reloader-a"), start("reloader-b")]
}

/// Who holds the Lease; `None` when nobody does (or it cannot be read).
async fn lease_holder(f: &Fixture) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(f.client.clone(), &f.ns.name);
    let lease = leases.get_opt("stakater-reloader-lock").await.ok()??;
    lease.spec?.holder_identity.filter(|h| !h.is_empty())
}

#[tokio::test]
async fn a_standby_takes_over_when_the_leader_is_killed() {
    let f = Fixture::new("ha").await;
    f.config_map("cfg", json!({"k": "v0"})).await;
    f.secret("db", json!({"password": "p"})).await;
    let apps = f.apps(4).await;
    let mut replicas = ha_pair(&f, &["--enable-ha", "--lease-duration=4s", "--coalesce-window=100ms"]);
    let holder = || lease_holder(&f);
    let leader = eventually("a lease holder", holder).await;
    for app in &apps {
        f.wait_acknowledged(app).await;
    }
    f.set_config_map("cfg", json!({"k": "v1"})).await;
    for app in &apps {
        f.wait_revisions(app, 2).await;
    }
    let (lead, standby) = if leader == "reloader-a" { (0, 1) } else { (1, 0) };
    assert_eq!(
        replicas[standby].metric("reloader_reload_executed_total{success=\"true\"}"),
        0.0,
        "only the leader writes"
    );

    // Kill the leader and keep changing the config meanwhile.
    replicas[lead].kill();
    let killed = Instant::now();
    for v in 2..=4 {
        f.set_config_map("cfg", json!({"k": format!("v{v}")})).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let new_leader = eventually("a new lease holder", || async {
        let h = holder().await?;
        (h != leader).then_some(h)
    })
    .await;
    let takeover = killed.elapsed();
    assert_eq!(new_leader, if standby == 0 { "reloader-a" } else { "reloader-b" });
    // The lease is 4 s; allow the renew period and scheduling on top.
    assert!(takeover < Duration::from_secs(8), "takeover took {takeover:?}");
    eprintln!("takeover after leader SIGKILL: {takeover:?}");
    // Keyed with the install's stamp key (POD_NAMESPACE gives it a home).
    let cfg = SourceRef::new(SourceKind::ConfigMap, "cfg");
    let value = stamp_value(&f.client, &f.ns.name, &f.ns.name, &cfg, &sha1_hex(b"k=v4")).await;
    assert!(value.starts_with("k1."), "{value}");
    let expected = format!("configmap/cfg={value}");
    assert_final_and_no_duplicates(&f, &apps, &expected, 4).await;
}

/// A graceful stop (SIGTERM: every rolling upgrade, every node drain) hands the Lease over at
/// once: the standby leads within 2 s, not when the leader's 15 s Lease would have expired, and
/// the stopped leader exits cleanly; the new leader then reloads.
#[tokio::test]
async fn a_standby_leads_within_two_seconds_of_the_leaders_sigterm() {
    let f = Fixture::new("handover").await;
    f.config_map("cfg", json!({"k": "v0"})).await;
    let apps = f.apps(2).await;
    // The default Lease (15 s): a takeover on expiry could not pass.
    let mut replicas = ha_pair(&f, &["--enable-ha", "--coalesce-window=100ms"]);
    let holder = || lease_holder(&f);
    let leader = eventually("a lease holder", holder).await;
    for app in &apps {
        f.wait_acknowledged(app).await;
    }
    let (lead, standby) = if leader == "reloader-a" { (0, 1) } else { (1, 0) };
    eventually("the standby ready", || async {
        replicas[standby].is_ready().then_some(())
    })
    .await;

    replicas[lead].terminate();
    let stopped = Instant::now();
    let deadline = stopped + Duration::from_secs(20);
    let new_leader = loop {
        if let Some(h) = holder().await
            && h != leader
        {
            break h;
        }
        assert!(Instant::now() < deadline, "no new leader 20 s after the SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let handover = stopped.elapsed();
    eprintln!("handover after the leader's SIGTERM: {handover:?}");
    assert_eq!(new_leader, if standby == 0 { "reloader-a" } else { "reloader-b" });
    assert!(handover < Duration::from_secs(2), "handover took {handover:?}");
    let status = eventually("the old leader's exit", || {
        let exited = replicas[lead].exited();
        async move { exited }
    })
    .await;
    assert!(status.success(), "the stopped leader exited with {status}");

    f.set_config_map("cfg", json!({"k": "v1"})).await;
    let expected = format!(
        "configmap/cfg={}",
        stamp_value(
            &f.client,
            &f.ns.name,
            &f.ns.name,
            &SourceRef::new(SourceKind::ConfigMap, "cfg"),
            &sha1_hex(b"k=v1")
        )
        .await
    );
    assert_final_and_no_duplicates(&f, &apps, &expected, 1).await;
}
