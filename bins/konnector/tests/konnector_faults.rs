//! Faults with the konnector binary between two real clusters of their own: two replicas (one
//! leader), 500 objects synced while the provider apiserver restarts five times (gracefully, and
//! twice killed with SIGKILL together with etcd, then started again on the same data) and the
//! leading konnector is killed and restarted. Every object converges; none is duplicated, lost or
//! orphaned, on either side.

mod harness;

use std::time::Duration;

use futures::{StreamExt as _, TryStreamExt as _};
use harness::*;
use k8s_openapi::api::coordination::v1::Lease;
use klutch_sdk::testenv::TestEnv;
use kube::ResourceExt as _;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use serde_json::json;

const N: usize = 500;

async fn leader(consumer: &kube::Client) -> Option<String> {
    Api::<Lease>::namespaced(consumer.clone(), "klutch-bind")
        .get_opt("klutch-bind")
        .await
        .ok()??
        .spec?
        .holder_identity
}

#[tokio::test]
async fn every_object_converges_through_restarts_and_failover() {
    klutch_sdk::tls::install_crypto_provider();
    let env = TestEnv::builder()
        .cluster("control-plane")
        .cluster("app")
        .controller_manager(false)
        .start()
        .await
        .expect("start the clusters");
    let consumer = env["app"].client().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    create_namespace(&consumer, "klutch-bind").await;
    let space = space(&env["control-plane"], "cluster-faults").await;
    let mut a = Konnector::start(env["app"].kubeconfig_path(), "konnector-a", dir.path());
    let mut b = Konnector::start(env["app"].kubeconfig_path(), "konnector-b", dir.path());

    let outcome = tokio::time::timeout(
        Duration::from_secs(900),
        futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(scenario(
            &env,
            &consumer,
            &space,
            &mut a,
            &mut b,
            dir.path(),
        ))),
    )
    .await;
    let logs = || {
        format!(
            "--- konnector-a\n{}\n--- konnector-b\n{}",
            tail(&a.log_text()),
            tail(&b.log_text())
        )
    };
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(panic)) => {
            eprintln!("{}", logs());
            std::panic::resume_unwind(panic);
        }
        Err(_) => panic!("the fault scenario took longer than 15 minutes\n{}", logs()),
    }
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.contains("DEBUG")).collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

async fn scenario(
    env: &TestEnv,
    consumer: &kube::Client,
    space: &Space,
    a: &mut Konnector,
    b: &mut Konnector,
    dir: &std::path::Path,
) {
    space
        .export(
            &crd(
                "faults.klutch.test",
                "Widget",
                "widgets",
                "Namespaced",
                None,
            ),
            None,
            vec![],
        )
        .await;
    bind(consumer, space, "widgets.faults.klutch.test", vec![]).await;
    eventually("binding Ready", || async {
        binding_condition(consumer, "widgets.faults.klutch.test", "Ready")
            .await
            .filter(|(s, _)| s == "True")
    })
    .await;

    // Exactly one replica leads.
    let first = eventually("a leader", || leader(consumer)).await;
    let leaders = [a.get("/metrics").await, b.get("/metrics").await]
        .into_iter()
        .flatten()
        .filter(|(_, m)| m.lines().any(|l| l == "konnector_leader 1"))
        .count();
    assert_eq!(leaders, 1, "one leader among two replicas");

    create_namespace(consumer, "team-f").await;
    let widgets = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("faults.klutch.test", "v1", "Widget"),
        "widgets",
    );
    let mine: Api<DynamicObject> = Api::namespaced_with(consumer.clone(), "team-f", &widgets);
    let served = Api::<DynamicObject>::all_with(consumer.clone(), &widgets);
    eventually("resource served", || async {
        served.list(&ListParams::default()).await.ok().map(drop)
    })
    .await;

    // Create 500 objects while the provider apiserver restarts five times and the leading
    // konnector is killed and started again.
    let creates = futures::stream::iter(0..N)
        .map(|i| {
            let mine = mine.clone();
            let widgets = widgets.clone();
            async move {
                let mut w = DynamicObject::new(&format!("w{i:03}"), &widgets);
                w.data = json!({ "spec": { "size": i } });
                loop {
                    match mine.create(&PostParams::default(), &w).await {
                        Ok(_) => break,
                        Err(kube::Error::Api(s)) if s.code == 409 => break,
                        Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                    }
                }
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<()>>();
    let faults = async {
        for round in 0..5 {
            tokio::time::sleep(Duration::from_millis(700)).await;
            if round % 2 == 1 {
                // A crash, not a shutdown: SIGKILL to the provider apiserver and to etcd (which
                // the app cluster shares here, so it loses its storage too), then both come
                // back on the same data.
                env["control-plane"].kill_apiserver();
                env.kill_etcd();
                tokio::time::sleep(Duration::from_millis(300)).await;
                env.start_etcd().await.expect("start etcd again");
                env["control-plane"]
                    .start()
                    .await
                    .expect("start the provider apiserver again");
            } else {
                env["control-plane"]
                    .restart()
                    .await
                    .expect("restart the provider apiserver");
            }
            if round == 2 {
                // Kill the leader mid-sync; start it again.
                let holder = leader(consumer).await.unwrap_or_default();
                let victim = if holder == "konnector-a" {
                    &mut *a
                } else {
                    &mut *b
                };
                victim.kill().await;
                *victim = Konnector::start(env["app"].kubeconfig_path(), &holder, dir);
            }
        }
    };
    tokio::join!(creates, faults);

    // Every object converges: one copy each, spec equal, nothing extra.
    let theirs: Api<DynamicObject> = Api::namespaced_with(
        space.provider.clone(),
        &space.service_ns("team-f"),
        &widgets,
    );
    eventually("all copies", || async {
        let list = theirs.list(&ListParams::default()).await.ok()?;
        (list.items.len() == N
            && list.items.iter().all(|o| {
                let i: usize = o.name_any()[1..].parse().unwrap_or(usize::MAX);
                o.data["spec"]["size"] == json!(i) && klutch_sdk::sync::copy::is_bound(o)
            }))
        .then_some(())
    })
    .await;
    // Nothing stray on the provider: one service namespace mapping, no copies elsewhere.
    let mappings = Api::<klutch_sdk::api::APIServiceNamespace>::namespaced(
        space.provider.clone(),
        &space.cluster_ns,
    )
    .list(&ListParams::default())
    .await
    .unwrap();
    assert_eq!(
        mappings.iter().map(|m| m.name_any()).collect::<Vec<_>>(),
        ["team-f"],
        "one APIServiceNamespace"
    );
    let everywhere = Api::<DynamicObject>::all_with(space.provider.clone(), &widgets)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(
        everywhere.items.len(),
        N,
        "no provider copy outside team-f's service namespace"
    );
    let consumer_list = mine.list(&ListParams::default()).await.unwrap();
    assert_eq!(
        consumer_list.items.len(),
        N,
        "nothing duplicated or lost on the consumer side"
    );
    assert!(consumer_list.items.iter().all(|o| {
        o.finalizers() == ["klutch.anynines.com/syncer"] && klutch_sdk::sync::copy::is_bound(o)
    }));
    let everywhere = Api::<DynamicObject>::all_with(consumer.clone(), &widgets)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(
        everywhere.items.len(),
        N,
        "no app-cluster object outside team-f"
    );
    let second = leader(consumer).await;
    tracing_free_log(&format!("leaders: {first} then {second:?}"));

    // Status comes down for all of them.
    futures::stream::iter(consumer_list.items.iter().map(|o| o.name_any()))
        .map(|name| {
            let theirs = theirs.clone();
            async move {
                theirs
                    .patch_status(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({ "status": { "phase": "Ready" } })),
                    )
                    .await
                    .map(drop)
            }
        })
        .buffer_unordered(8)
        .try_collect::<Vec<()>>()
        .await
        .unwrap();
    eventually("all statuses down", || async {
        let list = mine.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .all(|o| o.data.get("status") == Some(&json!({ "phase": "Ready" })))
            .then_some(())
    })
    .await;

    // Deleting everything orphans nothing.
    mine.delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .unwrap();
    eventually("consumer objects gone", || async {
        mine.list(&ListParams::default())
            .await
            .ok()?
            .items
            .is_empty()
            .then_some(())
    })
    .await;
    // (Each app-cluster object kept its finalizer until its provider copy was gone.)
    assert!(
        Api::<DynamicObject>::all_with(space.provider.clone(), &widgets)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "no orphaned provider copies"
    );
    assert!(a.running() && b.running(), "both replicas still run");
}

fn tracing_free_log(s: &str) {
    eprintln!("{s}");
}
