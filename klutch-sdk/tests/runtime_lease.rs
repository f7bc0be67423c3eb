//! `klutch_sdk::runtime::lease` against a real kube-apiserver: two electors campaign for one
//! Lease; one leads, the other takes over when the first stops; a replica whose Lease is taken
//! stops its work (and `run_forever` campaigns again); `/healthz` and the `LeaderState` follow.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use klutch_sdk::runtime::health::{Endpoints, HealthChecks, serve};
use klutch_sdk::runtime::lease::{Error, LeaderElection, LeaderState, LossReason};
use klutch_sdk::testenv::{TestEnv, eventually};
use kube::api::{Api, Patch, PatchParams};

const LEASE: &str = "runtime-lease-test";
const WAIT: Duration = Duration::from_secs(60);

fn election(client: &kube::Client, identity: &str) -> LeaderElection {
    LeaderElection::new(client.clone(), "default", LEASE)
        .with_identity(identity)
        .with_duration(Duration::from_secs(4))
        .with_grace(Duration::from_secs(1))
        .with_field_manager(format!("runtime-test-{identity}"))
}

async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt(LEASE)
        .await
        .unwrap()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

/// Another party takes the Lease for 5 s, as a replica with a newer claim would.
async fn take_over(leases: &Api<Lease>) {
    let now = MicroTime(Timestamp::now());
    leases
        .patch(
            LEASE,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "spec": {
                "holderIdentity": "intruder",
                "leaseDurationSeconds": 5,
                "acquireTime": now,
                "renewTime": now,
            }})),
        )
        .await
        .unwrap();
}

async fn healthz(addr: std::net::SocketAddr) -> (u16, String) {
    let resp = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn until_leader(state: &LeaderState, leader: bool, what: &str) {
    eventually(what, WAIT, || async {
        (state.is_leader() == leader).then_some(())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn one_elector_leads_and_the_other_takes_over() {
    klutch_sdk::tls::install_crypto_provider();
    let env = TestEnv::builder()
        .cluster("leases")
        .controller_manager(false)
        .start()
        .await
        .expect("start the test environment");
    let client = env["leases"].client().await.unwrap();
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");

    // Replica A: one term, stopped by its shutdown signal.
    let a = election(&client, "replica-a");
    let a_state = a.state();
    let a_working = Arc::new(AtomicBool::new(false));
    let a_health = serve(
        "127.0.0.1:0".parse().unwrap(),
        Endpoints::new()
            .healthz(HealthChecks::new().leader_election(a.state()))
            .router(),
    )
    .await
    .unwrap();
    let (stop_a, a_shutdown) = tokio::sync::oneshot::channel::<()>();
    let working = a_working.clone();
    let a_task = tokio::spawn(async move {
        a.run(a_shutdown, |stop| async move {
            working.store(true, Ordering::SeqCst);
            stop.cancelled().await;
            working.store(false, Ordering::SeqCst);
            "a stopped"
        })
        .await
    });
    until_leader(&a_state, true, "A leads").await;
    assert!(a_working.load(Ordering::SeqCst));
    assert_eq!(holder(&leases).await.as_deref(), Some("replica-a"));

    // Replica B: term after term, counting them.
    let b = election(&client, "replica-b");
    let b_state = b.state();
    let b_terms = Arc::new(AtomicUsize::new(0));
    let b_working = Arc::new(AtomicBool::new(false));
    let b_changes = Arc::new(AtomicUsize::new(0));
    let changes = b_changes.clone();
    let b = b.on_change(move |_| {
        changes.fetch_add(1, Ordering::SeqCst);
    });
    let b_health = serve(
        "127.0.0.1:0".parse().unwrap(),
        Endpoints::new()
            .healthz(HealthChecks::new().leader_election(b.state()))
            .router(),
    )
    .await
    .unwrap();
    let (stop_b, b_shutdown) = tokio::sync::oneshot::channel::<()>();
    let (terms, working) = (b_terms.clone(), b_working.clone());
    let b_task = tokio::spawn(async move {
        b.run_forever(b_shutdown, move |stop| {
            let (terms, working) = (terms.clone(), working.clone());
            async move {
                terms.fetch_add(1, Ordering::SeqCst);
                working.store(true, Ordering::SeqCst);
                stop.cancelled().await;
                working.store(false, Ordering::SeqCst);
            }
        })
        .await
    });

    // While A leads (several renewals long), B waits; both are healthy.
    let first_renewal = a_state.last_renewal().unwrap();
    eventually("A's renewals are seen", WAIT, || async {
        (a_state.last_renewal()? > first_renewal).then_some(())
    })
    .await
    .unwrap();
    assert!(!b_state.is_leader());
    assert!(!b_working.load(Ordering::SeqCst));
    assert_eq!(b_state.last_renewal(), None);
    assert_eq!(holder(&leases).await.as_deref(), Some("replica-a"));
    for addr in [a_health, b_health] {
        assert_eq!(
            healthz(addr).await,
            (200, r#"{"leaderElection":"ok"}"#.into())
        );
    }

    // A stops: its work ends before it gives the Lease up, and B takes over.
    stop_a.send(()).unwrap();
    let a_result = tokio::time::timeout(WAIT, a_task).await.unwrap().unwrap();
    assert_eq!(a_result.unwrap(), Some("a stopped"));
    assert!(!a_state.is_leader());
    assert!(!a_working.load(Ordering::SeqCst));
    until_leader(&b_state, true, "B takes over").await;
    assert!(b_working.load(Ordering::SeqCst));
    assert_eq!(b_terms.load(Ordering::SeqCst), 1);
    assert_eq!(holder(&leases).await.as_deref(), Some("replica-b"));
    assert_eq!(healthz(b_health).await.0, 200);

    // Someone else takes the Lease: B stops working, and campaigns again once it expires.
    take_over(&leases).await;
    until_leader(&b_state, false, "B notices the loss").await;
    assert!(
        !b_working.load(Ordering::SeqCst),
        "the work stopped before leadership ended"
    );
    eventually("B is elected again", WAIT, || async {
        (b_terms.load(Ordering::SeqCst) == 2 && b_state.is_leader()).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(holder(&leases).await.as_deref(), Some("replica-b"));
    stop_b.send(()).unwrap();
    tokio::time::timeout(WAIT, b_task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(!b_state.is_leader());
    // Elected, lost, elected, stopped.
    assert_eq!(b_changes.load(Ordering::SeqCst), 4);

    // A single term that loses its Lease ends with `Error::Lost`, after its work stopped.
    let c = election(&client, "replica-c");
    let c_state = c.state();
    let c_working = Arc::new(AtomicBool::new(false));
    let working = c_working.clone();
    let c_task = tokio::spawn(async move {
        c.run(std::future::pending::<()>(), |stop| async move {
            working.store(true, Ordering::SeqCst);
            stop.cancelled().await;
            working.store(false, Ordering::SeqCst);
        })
        .await
    });
    until_leader(&c_state, true, "C leads").await;
    take_over(&leases).await;
    let lost = tokio::time::timeout(WAIT, c_task).await.unwrap().unwrap();
    assert!(
        matches!(
            lost,
            Err(Error::Lost {
                reason: LossReason::Taken,
                ..
            })
        ),
        "{lost:?}"
    );
    assert!(!c_working.load(Ordering::SeqCst));
    assert!(!c_state.is_leader());
}
