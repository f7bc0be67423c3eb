//! provider-anynines against the a9s development broker (`klutch_a9s::devbroker`) and a real
//! PostgreSQL server: the managed resources a claim composes end in a connection Secret whose
//! credentials open a real database, and Backup/Restore bring dropped rows back.

mod common;

use std::collections::BTreeMap;

use common::*;
use k8s_openapi::api::core::v1::Secret;
use klutch_a9s::devbroker::{DevBroker, DevBrokerConfig};
use klutch_a9s::provider::api::{
    Backup, BackupParameters, BackupSpec, Reference, ResourceSpec, Restore, RestoreParameters,
    RestoreSpec, SecretReference, ServiceBinding, ServiceBindingParameters, ServiceBindingSpec,
    ServiceInstance, ServiceInstanceParameters, ServiceInstanceSpec, ServiceType,
};
use klutch_a9s::provider::meta;
use klutch_sdk::testenv::postgres::Postgres;
use kube::ResourceExt as _;
use kube::api::Api;

fn spec(pc: &str) -> ResourceSpec {
    ResourceSpec {
        provider_config_ref: Reference::named(pc),
        ..ResourceSpec::default()
    }
}

async fn sql(uri: &str) -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(uri, tokio_postgres::NoTls)
        .await
        .expect("the Secret's uri opens the database");
    tokio::spawn(conn);
    c
}

#[tokio::test]
async fn a_claim_ends_in_a_secret_that_opens_a_real_database() {
    let pg = Postgres::builder().start().await.expect("start PostgreSQL");
    let mut cfg = DevBrokerConfig::new(pg.url(), "admin", "secret");
    cfg.pg_bin_dir = pg.bin_dir().map(ToOwned::to_owned);
    let broker = DevBroker::start(cfg)
        .await
        .expect("start the development broker");

    let w = World::new("devbroker").await;
    let broker_pc = w.name("broker");
    let creds = w.credentials(&broker_pc, "admin", "secret").await;
    w.provider_config(&broker_pc, &broker.url(), ServiceType::Servicebroker, creds)
        .await;
    let bm_pc = w.name("bm");
    let creds = w.credentials(&bm_pc, "admin", "secret").await;
    w.provider_config(&bm_pc, &broker.url(), ServiceType::Backupmanager, creds)
        .await;
    let provider = w.start(w.options());

    // What the `a9s-postgresql` composition makes of a PostgresqlInstance claim.
    let claim = w.name("orders");
    let mut si = ServiceInstance::new(
        &format!("{claim}-x1"),
        ServiceInstanceSpec {
            for_provider: ServiceInstanceParameters {
                service_name: "a9s-postgresql17".into(),
                plan_name: "postgresql-single-small".into(),
                accepts_incomplete: true,
                organization_guid: "a1d46b5c-b639-4f43-85c7-e9a0e5f01f75".into(),
                space_guid: "1bf71cf3-9017-4846-bffc-b9b31872bfaf".into(),
                parameters: Some(BTreeMap::from([(
                    "max_connections".to_owned(),
                    serde_json::json!(30),
                )])),
                ..Default::default()
            },
            resource: spec(&broker_pc),
        },
    );
    si.metadata.labels = Some(w.labels(&claim));
    w.create(&si).await;
    let si = w
        .wait_condition::<ServiceInstance>(&si.name_any(), "Ready", "True", Some("Available"))
        .await;
    let at = si.status.as_ref().unwrap().at_provider.clone().unwrap();
    assert_eq!(at.state.as_deref(), Some("provisioned"));
    assert_eq!(at.service_id.as_deref(), Some("devbroker-a9s-postgresql17"));

    let sb_name = w.name("orders-app");
    let mut sb = ServiceBinding::new(
        &sb_name,
        ServiceBindingSpec {
            for_provider: ServiceBindingParameters {
                instance_name: claim.clone(),
                accepts_incomplete: true,
                ..Default::default()
            },
            resource: ResourceSpec {
                write_connection_secret_to_ref: Some(SecretReference {
                    name: "orders-creds".into(),
                    namespace: w.ns.clone(),
                }),
                ..spec(&broker_pc)
            },
        },
    );
    let mut labels = w.labels("orders-app");
    labels.insert(meta::INSTANCE_TYPE_LABEL.into(), "postgresql".into());
    sb.metadata.labels = Some(labels);
    w.create(&sb).await;
    w.wait_condition::<ServiceBinding>(&sb_name, "Ready", "True", Some("Available"))
        .await;

    let secret = Api::<Secret>::namespaced(w.client.clone(), &w.ns)
        .get("orders-creds")
        .await
        .unwrap();
    let data: BTreeMap<String, String> = secret
        .data
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8(v.0).unwrap()))
        .collect();
    let keys: Vec<&str> = data.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "host", "hosts", "name", "password", "port", "uri", "username"
        ]
    );
    let db = sql(&data["uri"]).await;
    let version: String = db.query_one("SELECT version()", &[]).await.unwrap().get(0);
    assert!(version.starts_with("PostgreSQL"), "{version}");
    db.batch_execute("CREATE TABLE orders (id int); INSERT INTO orders VALUES (1), (2)")
        .await
        .unwrap();

    // Backup through the provider, drop the table, Restore through the provider.
    let backup_name = w.name("backup-x3");
    let mut backup = Backup::new(
        &backup_name,
        BackupSpec {
            for_provider: BackupParameters {
                instance_name: claim.clone(),
                ..Default::default()
            },
            resource: spec(&bm_pc),
        },
    );
    backup.metadata.labels = Some(w.labels("backup"));
    w.create(&backup).await;
    w.wait_condition::<Backup>(&backup_name, "Ready", "True", Some("Available"))
        .await;
    db.batch_execute("DROP TABLE orders").await.unwrap();
    drop(db);
    let restore_name = w.name("restore-x4");
    let mut restore = Restore::new(
        &restore_name,
        RestoreSpec {
            for_provider: RestoreParameters {
                backup_name: "backup".into(),
            },
            resource: spec(&bm_pc),
        },
    );
    restore.metadata.labels = Some(w.labels("restore"));
    w.create(&restore).await;
    w.wait_condition::<Restore>(&restore_name, "Ready", "True", Some("Available"))
        .await;
    let db = sql(&data["uri"]).await;
    let n: i64 = db
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2, "the restore brought the rows back");
    drop(db);

    // Deleting everything drops the role and the database.
    w.delete::<Restore>(&restore_name).await;
    w.wait_gone::<Restore>(&restore_name).await;
    w.delete::<Backup>(&backup_name).await;
    w.wait_gone::<Backup>(&backup_name).await;
    w.delete::<ServiceBinding>(&sb_name).await;
    w.wait_gone::<ServiceBinding>(&sb_name).await;
    assert!(
        tokio_postgres::connect(&data["uri"], tokio_postgres::NoTls)
            .await
            .is_err(),
        "the unbound credentials no longer log in"
    );
    w.delete::<ServiceInstance>(&si.name_any()).await;
    w.wait_gone::<ServiceInstance>(&si.name_any()).await;
    let admin = sql(pg.url()).await;
    let left = admin
        .query(
            "SELECT 1 FROM pg_database WHERE datname = $1",
            &[&data["name"]],
        )
        .await
        .unwrap();
    assert!(left.is_empty(), "database {} dropped", data["name"]);
    provider.stop().await;
    broker.shutdown().await;
}
