//! Pod restarts against the real control plane (kwok's pods: scheduled, Running and Ready at
//! once): `rollout-strategy: restart` on a Deployment leaves its template alone and evicts its
//! pods one at a time, and a PodDisruptionBudget that refuses every eviction holds the restart
//! until it allows one. On the real node, `tests/real_node/pod_restarts.rs` restarts an OnDelete
//! StatefulSet's pods; there the reloader's own Ready gate means the budget never refuses.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use reloader::core::vocabulary::fixed;
use serde_json::json;

use crate::engine::Fixture;
use crate::support::{Reloader, eventually};

const REFUSED: &str = "reloader_pod_restarts_total{workload_kind=\"Deployment\",result=\"refused\"}";
const EVICTED: &str = "reloader_pod_restarts_total{workload_kind=\"Deployment\",result=\"evicted\"}";

async fn pod_uids(pods: &Api<Pod>) -> BTreeSet<String> {
    pods.list(&ListParams::default().labels("app=app"))
        .await
        .unwrap()
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| p.metadata.uid.clone())
        .collect()
}

async fn ready_uids(pods: &Api<Pod>) -> Option<BTreeSet<String>> {
    let list = pods.list(&ListParams::default().labels("app=app")).await.ok()?;
    let live: Vec<&Pod> = list
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    let ready = live.iter().all(|p| {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    });
    (live.len() == 2 && ready).then(|| live.iter().filter_map(|p| p.metadata.uid.clone()).collect())
}

#[tokio::test]
async fn restart_strategy_evicts_the_pods_without_a_rollout_and_waits_while_a_budget_refuses() {
    let f = Fixture::new("restart").await;
    f.config_map("cfg", json!({"k": "v1"})).await;
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "app", "annotations": {
            "reloader.stakater.com/auto": "true",
            fixed::ROLLOUT_STRATEGY: "restart"
        }},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "app"}},
            "template": {
                "metadata": {"labels": {"app": "app"}},
                "spec": {"containers": [{"name": "app", "image": "registry.example/app:1",
                                         "envFrom": [{"configMapRef": {"name": "cfg"}}]}]}
            }
        }
    }))
    .unwrap();
    f.deployments.create(&PostParams::default(), &d).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(f.client.clone(), &f.ns.name);
    let before = eventually("two Ready pods", || ready_uids(&pods)).await;
    // A budget that allows no disruption at all.
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(f.client.clone(), &f.ns.name);
    let pdb: PodDisruptionBudget = serde_json::from_value(json!({
        "metadata": {"name": "app"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "app"}}}
    }))
    .unwrap();
    budgets.create(&PostParams::default(), &pdb).await.unwrap();
    eventually("the budget observed", || async {
        let status = budgets.get("app").await.ok()?.status?;
        (status.observed_generation.is_some() && status.current_healthy == Some(2)).then_some(())
    })
    .await;

    // `restarted-at` and creation times are whole seconds, and a pod created in the second of
    // the restart counts as new (never evicted twice): let the pods' second pass first.
    let created = pods
        .list(&ListParams::default().labels("app=app"))
        .await
        .unwrap()
        .items
        .iter()
        .filter_map(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0.as_second()))
        .max()
        .unwrap();
    eventually("a second past the pods' creation", || async {
        (time::OffsetDateTime::now_utc().unix_timestamp() > created + 1).then_some(())
    })
    .await;
    let reloader = Reloader::start(&f.ns.name, &[]);
    f.wait_acknowledged("app").await;
    f.set_config_map("cfg", json!({"k": "v2"})).await;
    // The change is recorded without touching the template, and the first eviction is refused.
    eventually("restarted-at recorded", || async {
        let d = f.deployments.get("app").await.ok()?;
        d.annotations().contains_key(fixed::RESTARTED_AT).then_some(())
    })
    .await;
    eventually("an eviction refused by the budget", || async {
        (reloader.metric(REFUSED) >= 2.0).then_some(())
    })
    .await;
    assert_eq!(pod_uids(&pods).await, before, "no pod evicted past the budget");
    assert_eq!(reloader.metric(EVICTED), 0.0);
    assert_eq!(f.revisions("app").await, 1, "the template is left alone");

    // The budget allows one at a time: both pods are replaced, one after the other.
    budgets
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"minAvailable": 1}})),
        )
        .await
        .unwrap();
    let after = eventually("both pods replaced and Ready", || async {
        let now = ready_uids(&pods).await?;
        now.is_disjoint(&before).then_some(now)
    })
    .await;
    assert_eq!(after.len(), 2);
    eventually("two evictions counted", || async {
        (reloader.metric(EVICTED) == 2.0).then_some(())
    })
    .await;
    reloader.settle(1.0).await;
    assert_eq!(reloader.metric(EVICTED), 2.0, "each old pod evicted once");
    assert_eq!(f.revisions("app").await, 1, "still no rollout of the template");
}
