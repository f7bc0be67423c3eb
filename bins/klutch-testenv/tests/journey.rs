//! The whole journey across both clusters, through the konnector, Crossplane core and
//! provider-anynines, against the a9s fakes: claims applied in the app cluster become broker
//! instances, bindings, backups and restores, and their status and credentials come back.
//!
//! One test function runs the scenarios in order on one [`Journey`]: a konnector serves every
//! binding of its app cluster and Crossplane every claim of its control plane, and the fault
//! scenarios restart them.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use klutch_a9s::claims::ServiceInstanceType;
use klutch_a9s::claims::binding::{ServiceBinding, ServiceBindingSpec};
use klutch_a9s::claims::package::examples;
use klutch_a9s::provider::api::ServiceInstance;
use klutch_a9s::testing::fake_credentials;
use klutch_osb::testing::{FaultAction, Route};
use klutch_testenv::journey::{Journey, JourneyConfig, claim_resources, data_service};
use kube::ResourceExt as _;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use serde_json::{Value, json};

mod common;
use common::*;

/// A plan the claims' schema allows but the fake PostgreSQL broker does not offer.
const UNOFFERED_PLAN: &str = "postgresql-single-nano";

/// The keys the connection Secret of a `kind` binding carries: the flattened a9s credentials.
fn credential_keys(kind: ServiceInstanceType) -> BTreeSet<String> {
    let creds = fake_credentials(data_service(kind), "instance", "binding");
    klutch_a9s::flatten::flatten(creds.as_object().unwrap())
        .keys()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_whole_journey() {
    init();
    let started = std::time::Instant::now();
    let journey = Journey::start(JourneyConfig {
        unoffered_plans: vec![UNOFFERED_PLAN.into()],
        ..JourneyConfig::default()
    })
    .await
    .expect("start the journey");
    eprintln!("journey started in {:?}", started.elapsed());
    let scenarios = async {
        let t = std::time::Instant::now();
        postgresql_instance_binding_backup_restore(&journey).await;
        eprintln!("main path: {:?}", t.elapsed());
        let t = std::time::Instant::now();
        every_kind_provisions_and_binds_once(&journey).await;
        eprintln!("every kind: {:?}", t.elapsed());
        let t = std::time::Instant::now();
        deleting_the_claims_leaves_nothing(&journey, "table").await;
        deleting_the_claims_leaves_nothing(&journey, "shop").await;
        eprintln!("deletion: {:?}", t.elapsed());
        let t = std::time::Instant::now();
        restarts_and_broker_errors_converge_to_one_instance(&journey).await;
        eprintln!("faults: {:?}", t.elapsed());
        let t = std::time::Instant::now();
        bad_input_ends_as_a_clear_condition(&journey).await;
        eprintln!("bad input: {:?}", t.elapsed());
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

/// The service instance type of an instance claim kind, e.g. `KeyvalueInstance` → keyvalue.
fn instance_type(kind: &str) -> ServiceInstanceType {
    serde_json::from_value(json!(kind.trim_end_matches("Instance").to_lowercase()))
        .unwrap_or_else(|e| panic!("{kind}: {e}"))
}

/// The instance ids the broker of `kind` was asked to provision (retries of one id count once).
fn provisioned_ids(journey: &Journey, kind: ServiceInstanceType) -> BTreeSet<String> {
    journey
        .broker(kind)
        .osb()
        .requests()
        .into_iter()
        .filter(|r| r.route == Route::Provision)
        .filter_map(|r| r.path.split('/').nth(3).map(str::to_owned))
        .collect()
}

/// Every a9s data service of the package, from its example claim: the instance becomes Ready,
/// a ServiceBinding for it brings the typed credentials Secret into the app cluster, and the
/// broker saw exactly one instance and one binding. All kinds run at once.
async fn every_kind_provisions_and_binds_once(journey: &Journey) {
    let app = journey.app().await.unwrap();
    let ns = "table";
    create_namespace(&app, ns).await;
    let cases: Vec<Value> = examples()
        .into_iter()
        .filter(|(file, _)| !file.contains("a8s"))
        .map(|(_, docs)| docs[0].clone())
        .collect();
    assert_eq!(
        cases.len(),
        ServiceInstanceType::ALL.len(),
        "one a9s example per data service"
    );
    let runs = cases.into_iter().map(|instance| {
        let app = app.clone();
        async move {
            let kind = instance["kind"].as_str().unwrap().to_owned();
            let name = instance["metadata"]["name"].as_str().unwrap().to_owned();
            let type_ = instance_type(&kind);
            let before = provisioned_ids(journey, type_).len();
            let binds = journey.broker(type_).osb().count(Route::Bind);
            create_claim(&app, ns, instance).await;
            ready_claim(journey, ns, &kind, &name).await;
            let binding_name = format!("{name}-app");
            let mut binding =
                ServiceBinding::new(&binding_name, ServiceBindingSpec::new(&name, type_).a9s());
            binding.metadata.namespace = Some(ns.into());
            create_claim(&app, ns, serde_json::to_value(&binding).unwrap()).await;
            ready_claim(journey, ns, "ServiceBinding", &binding_name).await;
            let keys = app_secret_keys(journey, ns, &format!("{binding_name}-creds")).await;
            assert_eq!(
                keys,
                credential_keys(type_),
                "{kind}: typed credential keys"
            );
            assert_eq!(
                provisioned_ids(journey, type_).len(),
                before + 1,
                "{kind}: one instance at the broker"
            );
            assert_eq!(
                journey.broker(type_).osb().count(Route::Bind),
                binds + 1,
                "{kind}: one bind at the broker"
            );
        }
    });
    futures::future::join_all(runs).await;
}

/// Deleting every claim of app namespace `ns` deprovisions at the brokers and leaves nothing
/// behind: no claim, copy, XR, managed resource or Secret on either cluster, no instance or
/// binding at a broker.
async fn deleting_the_claims_leaves_nothing(journey: &Journey, ns: &str) {
    let app = journey.app().await.unwrap();
    let cp = journey.control_plane().await.unwrap();
    let suffix = format!("-{ns}");
    let instances: Api<ServiceInstance> = Api::all(cp.clone());
    let mine = |mr: &ServiceInstance| {
        mr.labels()
            .get("crossplane.io/claim-namespace")
            .is_some_and(|n| n.ends_with(&suffix))
    };
    // What the brokers hold for this namespace: (type, instance id).
    let held: Vec<(ServiceInstanceType, String)> = instances
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|mr| mine(mr))
        .map(|mr| {
            let pc = &mr.spec.resource.provider_config_ref.name;
            let type_ = instance_type(&format!(
                "{}Instance",
                pc.trim_end_matches("-service-broker")
            ));
            let id = mr.annotations().get("crossplane.io/external-name").cloned();
            (
                type_,
                id.expect("a provisioned instance has an external name"),
            )
        })
        .collect();
    assert!(!held.is_empty(), "namespace {ns} has instances");
    for (type_, id) in &held {
        assert!(
            journey.broker(*type_).osb().has_instance(id),
            "{id} is at the broker"
        );
    }
    // Bindings, backups and restores first, then the instances: as a person would.
    let order = |r: &kube::api::ApiResource| r.kind.ends_with("Instance");
    let mut kinds = claim_resources();
    kinds.sort_by_key(order);
    for resource in &kinds {
        let api: Api<DynamicObject> = Api::namespaced_with(app.clone(), ns, resource);
        api.delete_collection(&DeleteParams::default(), &ListParams::default())
            .await
            .unwrap_or_else(|e| panic!("delete {} in {ns}: {e}", resource.plural));
    }
    for resource in &kinds {
        let here: Api<DynamicObject> = Api::namespaced_with(app.clone(), ns, resource);
        let there: Api<DynamicObject> = Api::all_with(cp.clone(), resource);
        eventually(
            journey,
            &format!("no {} of {ns} on either cluster", resource.plural),
            || async {
                let left_here = here.list(&ListParams::default()).await.ok()?.items.len();
                let left_there = there
                    .list(&ListParams::default())
                    .await
                    .ok()?
                    .items
                    .into_iter()
                    .filter(|o| o.namespace().is_some_and(|n| n.ends_with(&suffix)))
                    .count();
                (left_here == 0 && left_there == 0).then_some(())
            },
        )
        .await;
    }
    eventually(
        journey,
        &format!("no managed ServiceInstance of {ns}"),
        || async {
            let list = instances.list(&ListParams::default()).await.ok()?;
            (!list.items.iter().any(&mine)).then_some(())
        },
    )
    .await;
    let bindings: Api<klutch_a9s::provider::api::ServiceBinding> = Api::all(cp.clone());
    eventually(
        journey,
        &format!("no managed ServiceBinding of {ns}"),
        || async {
            let list = bindings.list(&ListParams::default()).await.ok()?;
            (!list.items.iter().any(|mr| {
                mr.labels()
                    .get("crossplane.io/claim-namespace")
                    .is_some_and(|n| n.ends_with(&suffix))
            }))
            .then_some(())
        },
    )
    .await;
    for (cluster, client) in [("app", &app), ("control plane", &cp)] {
        let secrets: Api<Secret> = Api::all(client.clone());
        eventually(
            journey,
            &format!("no credentials Secret of {ns} on the {cluster}"),
            || async {
                let list = secrets.list(&ListParams::default()).await.ok()?;
                (!list.items.iter().any(|s| {
                    s.name_any().ends_with("-creds")
                        && s.namespace()
                            .is_some_and(|n| n == ns || n.ends_with(&suffix))
                }))
                .then_some(())
            },
        )
        .await;
    }
    for (type_, id) in &held {
        let broker = journey.broker(*type_);
        eventually(
            journey,
            &format!("instance {id} gone at the broker"),
            || async { (!broker.osb().has_instance(id)).then_some(()) },
        )
        .await;
    }
}

/// Crossplane core and the provider each restarted while a provision runs, and a broker that
/// answers 503 for a while: every claim still ends Ready with exactly one broker instance.
async fn restarts_and_broker_errors_converge_to_one_instance(journey: &Journey) {
    let app = journey.app().await.unwrap();
    let ns = "faults";
    create_namespace(&app, ns).await;
    let pg = ServiceInstanceType::Postgresql;
    let instance = |name: &str| {
        let mut doc = example("postgresql-a9s.yaml")[0].clone();
        doc["metadata"]["name"] = json!(name);
        doc
    };
    for fault in ["core restart", "provider restart", "broker 503"] {
        let name = fault.replace(' ', "-");
        let before = provisioned_ids(journey, pg);
        if fault == "broker 503" {
            journey.broker(pg).osb().inject(
                Some(Route::Provision),
                FaultAction::Respond {
                    status: 503,
                    body: r#"{"description":"maintenance"}"#.into(),
                },
                Some(3),
            );
        }
        let provisions = journey.broker(pg).osb().count(Route::Provision);
        create_claim(&app, ns, instance(&name)).await;
        // Mid-provision: the broker has accepted (or, with the fault, refused) the PUT.
        eventually(
            journey,
            &format!("{fault}: the provision reaches the broker"),
            || async {
                (journey.broker(pg).osb().count(Route::Provision) > provisions).then_some(())
            },
        )
        .await;
        match fault {
            "core restart" => journey
                .crossplane()
                .restart_core()
                .await
                .expect("core restarts"),
            "provider restart" => journey.restart_provider().await.expect("provider restarts"),
            _ => {}
        }
        ready_claim(journey, ns, "PostgresqlInstance", &name).await;
        let new: Vec<String> = provisioned_ids(journey, pg)
            .difference(&before)
            .cloned()
            .collect();
        assert_eq!(
            new.len(),
            1,
            "{fault}: exactly one broker instance for the claim: {new:?}"
        );
        if fault == "broker 503" {
            assert!(
                journey.broker(pg).osb().count(Route::Provision) >= provisions + 4,
                "the provider retried through the 503s"
            );
        }
    }
    deleting_the_claims_leaves_nothing(journey, ns).await;
}

/// Bad input never stalls silently: a plan outside the schema is refused by the app cluster's
/// apiserver; a plan the broker does not offer and a broker that refuses the provision end as a
/// condition on the app-cluster claim that says why.
async fn bad_input_ends_as_a_clear_condition(journey: &Journey) {
    let app = journey.app().await.unwrap();
    let ns = "bad";
    create_namespace(&app, ns).await;
    let api = claims_api(&app, ns, "PostgresqlInstance");
    let claim = |name: &str, plan: &str| {
        let mut doc = example("postgresql-a9s.yaml")[0].clone();
        doc["metadata"]["name"] = json!(name);
        doc["metadata"]["namespace"] = json!(ns);
        doc["spec"]["plan"] = json!(plan);
        serde_json::from_value::<DynamicObject>(doc).unwrap()
    };

    let err = api
        .create(&PostParams::default(), &claim("huge", "postgresql-huge"))
        .await
        .expect_err("a plan outside the schema is refused");
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 422, "{s:?}");
            assert!(
                s.message.contains("spec.plan"),
                "names the field: {}",
                s.message
            );
        }
        other => panic!("expected 422, got {other}"),
    }

    // A managed condition on the app claim whose message contains `needle`.
    let says = |name: &'static str, needle: &'static str| {
        let api = api.clone();
        async move {
            eventually(
                journey,
                &format!("claim {ns}/{name} to say {needle:?}"),
                || async {
                    let obj = api.get(name).await.ok()?;
                    let conditions = obj.data["status"]["managed"]["conditions"]
                        .as_array()?
                        .clone();
                    conditions.into_iter().find(|c| {
                        c["status"] == "False"
                            && c["message"].as_str().is_some_and(|m| m.contains(needle))
                    })
                },
            )
            .await
        }
    };
    api.create(&PostParams::default(), &claim("nano", UNOFFERED_PLAN))
        .await
        .unwrap();
    let condition = says("nano", UNOFFERED_PLAN).await;
    eprintln!("unoffered plan: {condition}");

    let pg = journey.broker(ServiceInstanceType::Postgresql);
    pg.osb().inject(
        Some(Route::Provision),
        FaultAction::Respond {
            status: 400,
            body: r#"{"error":"QuotaExceeded","description":"the organisation's instance quota is used up"}"#.into(),
        },
        None,
    );
    api.create(
        &PostParams::default(),
        &claim("refused", "postgresql-single-small"),
    )
    .await
    .unwrap();
    let condition = says("refused", "instance quota is used up").await;
    eprintln!("refused: {condition}");
    pg.osb().clear_faults();
}
