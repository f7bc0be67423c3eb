//! The whole journey across both clusters, through the konnector, Crossplane core and
//! provider-anynines, against the a9s fakes: claims applied in the app cluster become broker
//! instances, bindings, backups and restores, and their status and credentials come back.
//!
//! One test function runs the scenarios in order on one [`Journey`]: a konnector serves every
//! binding of its app cluster and Crossplane every claim of its control plane, and the fault
//! scenarios restart them.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use klutch_a9s::claims::ServiceInstanceType;
use klutch_a9s::claims::package::examples;
use klutch_a9s::testing::fake_credentials;
use klutch_osb::testing::Route;
use klutch_testenv::journey::{Journey, JourneyConfig, claim_resource, data_service};
use kube::api::{Api, DynamicObject, ObjectMeta, PostParams};
use serde_json::{Value, json};

/// How long one hop of the journey may take.
const WAIT: Duration = Duration::from_secs(120);

/// Polls `probe` until it returns `Some`; on timeout panics with Crossplane's log tails.
async fn eventually<T, F, Fut>(journey: &Journey, what: &str, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    match klutch_sdk::testenv::eventually(what, WAIT, probe).await {
        Ok(v) => v,
        Err(e) => panic!("{e}\n{}", journey.log_tails(40)),
    }
}

async fn create_namespace(client: &kube::Client, name: &str) {
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    match Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("create namespace {name}: {e}"),
    }
}

/// The claims API of `claim`'s kind in namespace `ns` of `client`.
fn claims_api(client: &kube::Client, ns: &str, kind: &str) -> Api<DynamicObject> {
    let resource = claim_resource(kind).unwrap_or_else(|| panic!("no claim kind {kind}"));
    Api::namespaced_with(client.clone(), ns, &resource)
}

/// Creates `claim` (a package example document) in namespace `ns` of the app cluster, renamed
/// to `name` (and its `instanceRef`/`backupRef` to `refs`, when given).
async fn create_claim(app: &kube::Client, ns: &str, mut claim: Value) -> DynamicObject {
    claim["metadata"]["namespace"] = json!(ns);
    let kind = claim["kind"].as_str().unwrap().to_owned();
    let obj: DynamicObject = serde_json::from_value(claim).unwrap();
    claims_api(app, ns, &kind)
        .create(&PostParams::default(), &obj)
        .await
        .unwrap_or_else(|e| panic!("create {kind} {ns}/{:?}: {e}", obj.metadata.name))
}

/// The condition `type_` of an object with `status.conditions`, as (status, reason, message).
fn condition(obj: &DynamicObject, type_: &str) -> Option<(String, String, String)> {
    obj.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
            (s("status"), s("reason"), s("message"))
        })
}

/// Waits until app-cluster claim `ns/name` of `kind` is Ready=True; returns it.
async fn ready_claim(journey: &Journey, ns: &str, kind: &str, name: &str) -> DynamicObject {
    let api = claims_api(&journey.app().await.unwrap(), ns, kind);
    eventually(
        journey,
        &format!("{kind} {ns}/{name} Ready=True in the app cluster"),
        || async {
            let obj = api.get(name).await.ok()?;
            (condition(&obj, "Ready")?.0 == "True").then_some(obj)
        },
    )
    .await
}

/// The a9s example claims of the package for data service `kind` (instance first), without the
/// a8s ones.
fn example(file: &str) -> Vec<Value> {
    examples()
        .into_iter()
        .find(|(f, _)| *f == file)
        .unwrap_or_else(|| panic!("no example {file}"))
        .1
}

/// The keys the connection Secret of a `kind` binding carries: the flattened a9s credentials.
fn credential_keys(kind: ServiceInstanceType) -> BTreeSet<String> {
    let creds = fake_credentials(data_service(kind), "instance", "binding");
    klutch_a9s::flatten::flatten(creds.as_object().unwrap())
        .keys()
        .map(str::to_owned)
        .collect()
}

/// Waits until Secret `ns/name` is in the app cluster; returns its keys.
async fn app_secret_keys(journey: &Journey, ns: &str, name: &str) -> BTreeSet<String> {
    let secrets: Api<Secret> = Api::namespaced(journey.app().await.unwrap(), ns);
    eventually(
        journey,
        &format!("Secret {ns}/{name} in the app cluster"),
        || async {
            let s = secrets.get_opt(name).await.ok()??;
            let keys: BTreeSet<String> = s.data?.into_keys().collect();
            (!keys.is_empty()).then_some(keys)
        },
    )
    .await
}

#[tokio::test]
async fn the_whole_journey() {
    klutch_sdk::tls::install_crypto_provider();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TEST_LOG")
                .unwrap_or_else(|_| "info,kube=warn,klutch_sdk::konnector=warn".into()),
        )
        .with_test_writer()
        .try_init();
    let started = std::time::Instant::now();
    let journey = Journey::start(JourneyConfig::default())
        .await
        .expect("start the journey");
    eprintln!("journey started in {:?}", started.elapsed());
    let scenarios = async {
        let t = std::time::Instant::now();
        postgresql_instance_binding_backup_restore(&journey).await;
        eprintln!("main path: {:?}", t.elapsed());
    };
    let outcome = tokio::time::timeout(
        Duration::from_secs(1200),
        futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(scenarios)),
    )
    .await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(panic)) => {
            eprintln!("{}", journey.log_tails(60));
            std::panic::resume_unwind(panic);
        }
        Err(_) => panic!(
            "the scenarios took longer than 20 minutes\n{}",
            journey.log_tails(60)
        ),
    }
}

/// PostgresqlInstance → Ready with the composed status; ServiceBinding → credentials Secret in
/// the app cluster; Backup and Restore → Backup Manager and back.
async fn postgresql_instance_binding_backup_restore(journey: &Journey) {
    let app = journey.app().await.unwrap();
    let ns = "shop";
    create_namespace(&app, ns).await;
    let docs = example("postgresql-a9s.yaml");
    let broker = journey.broker(ServiceInstanceType::Postgresql);

    create_claim(&app, ns, docs[0].clone()).await;
    let instance = ready_claim(journey, ns, "PostgresqlInstance", "orders").await;
    let managed = &instance.data["status"]["managed"];
    assert!(
        managed["state"].as_str().is_some_and(|s| !s.is_empty()),
        "the composed status reaches the app cluster: {managed}"
    );
    assert_eq!(
        broker.osb().count(Route::Provision),
        1,
        "one provision at the broker"
    );
    assert!(
        broker.osb().count(Route::InstanceLastOperation) >= 1,
        "the asynchronous provision was polled"
    );

    // Credentials.
    create_claim(&app, ns, docs[1].clone()).await;
    ready_claim(journey, ns, "ServiceBinding", "orders-app").await;
    let keys = app_secret_keys(journey, ns, "orders-app-creds").await;
    assert_eq!(
        keys,
        credential_keys(ServiceInstanceType::Postgresql),
        "typed a9s PostgreSQL credential keys"
    );
    assert_eq!(broker.osb().count(Route::Bind), 1);

    // Backup and restore.
    let bm = journey.backup_manager(ServiceInstanceType::Postgresql);
    create_claim(&app, ns, docs[2].clone()).await;
    let api = claims_api(&app, ns, "Backup");
    let backup = eventually(journey, "the Backup's state in the app cluster", || async {
        let b = api.get("orders-nightly").await.ok()?;
        (b.data["status"]["managed"]["status"] == "done").then_some(b)
    })
    .await;
    assert!(
        bm.count(klutch_a9s::testing::BackupRoute::CreateBackup) >= 1,
        "{backup:?}"
    );
    create_claim(&app, ns, docs[3].clone()).await;
    let api = claims_api(&app, ns, "Restore");
    eventually(
        journey,
        "the Restore's state in the app cluster",
        || async {
            let r = api.get("orders-undo").await.ok()?;
            (r.data["status"]["managed"]["state"] == "done").then_some(r)
        },
    )
    .await;
}
