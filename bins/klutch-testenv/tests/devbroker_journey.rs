//! The whole journey ending in a real database: the journey fixture with
//! [`PostgresqlBroker::DevBroker`] (the a9s development broker on a PostgreSQL server the test
//! environment starts) behind PostgreSQL. Claims in the app cluster become a database and a login
//! role; the credentials Secret that arrives in the app cluster opens the database; deleting the
//! claims leaves no database or role at the server.

mod common;

use std::collections::BTreeMap;

use common::*;
use k8s_openapi::api::core::v1::Secret;
use klutch_a9s::claims::ServiceInstanceType;
use klutch_a9s::claims::binding::{ServiceBinding, ServiceBindingSpec, creds_secret_name};
use klutch_a9s::claims::postgresql::{
    PostgresqlInstance, PostgresqlInstanceSpec, PostgresqlPlan, PostgresqlService,
};
use klutch_testenv::journey::{Journey, JourneyConfig, PostgresqlBroker};
use kube::api::{Api, DeleteParams};

/// A session of the test's own (the connection runs on a task).
async fn connect(config: &tokio_postgres::Config) -> Result<tokio_postgres::Client, String> {
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    Ok(client)
}

/// Whether the server still has database `db` and role `role` (and the database's owner role).
async fn at_server(admin: &tokio_postgres::Client, db: &str, role: &str) -> (bool, bool, bool) {
    let exists = |sql: &'static str, name: String| async move {
        admin
            .query_opt(sql, &[&name])
            .await
            .expect("query the catalogue")
            .is_some()
    };
    (
        exists("SELECT 1 FROM pg_database WHERE datname = $1", db.into()).await,
        exists("SELECT 1 FROM pg_roles WHERE rolname = $1", role.into()).await,
        exists(
            "SELECT 1 FROM pg_roles WHERE rolname = $1",
            format!("{db}_owner"),
        )
        .await,
    )
}

#[tokio::test]
async fn the_app_cluster_secret_opens_a_real_database() {
    init();
    let journey = Journey::start(JourneyConfig {
        bind: vec!["postgresqlinstances".into(), "servicebindings".into()],
        postgresql: PostgresqlBroker::DevBroker,
        ..JourneyConfig::default()
    })
    .await
    .expect("start the journey with the development broker");
    let server = journey.postgres().expect("the journey started PostgreSQL");
    assert!(journey.dev_broker().is_some());
    // The other data services keep their fakes.
    assert!(
        journey
            .broker(ServiceInstanceType::Keyvalue)
            .osb()
            .requests()
            .is_empty()
    );

    let app = journey.app().await.unwrap();
    let ns = "shop";
    create_namespace(&app, ns).await;
    let mut instance = PostgresqlInstance::new(
        "orders",
        PostgresqlInstanceSpec::new(
            PostgresqlService::A9sPostgresql17,
            PostgresqlPlan::SingleSmall,
        )
        .a9s(),
    );
    instance.metadata.namespace = Some(ns.into());
    create_claim(&app, ns, serde_json::to_value(&instance).unwrap()).await;
    let ready = ready_claim(&journey, ns, "PostgresqlInstance", "orders").await;
    assert_eq!(
        ready.data["status"]["managed"]["state"], "provisioned",
        "the development broker's state reaches the app cluster"
    );

    let mut binding = ServiceBinding::new(
        "orders-app",
        ServiceBindingSpec::new("orders", ServiceInstanceType::Postgresql).a9s(),
    );
    binding.metadata.namespace = Some(ns.into());
    create_claim(&app, ns, serde_json::to_value(&binding).unwrap()).await;
    ready_claim(&journey, ns, "ServiceBinding", "orders-app").await;
    let secret_name = creds_secret_name("orders-app");
    app_secret_keys(&journey, ns, &secret_name).await;
    let secrets: Api<Secret> = Api::namespaced(app.clone(), ns);
    let data: BTreeMap<String, String> = secrets
        .get(&secret_name)
        .await
        .unwrap()
        .data
        .unwrap_or_default()
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

    // The Secret's fields open the database: the app's table lives there.
    let mut creds = tokio_postgres::Config::new();
    creds
        .host(&data["host"])
        .port(data["port"].parse().expect("a numeric port"))
        .user(&data["username"])
        .password(&data["password"])
        .dbname(&data["name"]);
    let db = connect(&creds).await.expect("the Secret's fields connect");
    let version: String = db.query_one("SELECT version()", &[]).await.unwrap().get(0);
    assert!(version.starts_with("PostgreSQL"), "{version}");
    db.batch_execute(
        "CREATE TABLE orders (id int PRIMARY KEY, item text);
         INSERT INTO orders VALUES (1, 'tea'), (2, 'cake');",
    )
    .await
    .expect("the binding's role owns the database's objects");
    // The same database through the Secret's `uri`.
    let by_uri: tokio_postgres::Config = data["uri"].parse().expect("the uri is a PostgreSQL URL");
    let again = connect(&by_uri).await.expect("the Secret's uri connects");
    let rows: Vec<(i32, String)> = again
        .query("SELECT id, item FROM orders ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(rows, [(1, "tea".to_owned()), (2, "cake".to_owned())]);
    drop((db, again));

    let admin = connect(&server.url().parse().unwrap())
        .await
        .expect("the superuser connects");
    let (db_name, role) = (data["name"].clone(), data["username"].clone());
    assert_eq!(
        at_server(&admin, &db_name, &role).await,
        (true, true, true),
        "the binding's database, login role and owner role are at the server"
    );

    // Delete the claims in the app cluster: the binding's role goes, then the database.
    claims_api(&app, ns, "ServiceBinding")
        .delete("orders-app", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        &journey,
        "the binding's role dropped at the server",
        || async {
            let (db, role, _) = at_server(&admin, &db_name, &role).await;
            (db && !role).then_some(())
        },
    )
    .await;
    assert!(
        connect(&creds).await.is_err(),
        "the old credentials no longer connect"
    );
    eventually(&journey, "the Secret gone from the app cluster", || async {
        secrets
            .get_opt(&secret_name)
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    claims_api(&app, ns, "PostgresqlInstance")
        .delete("orders", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        &journey,
        "the database and its roles dropped at the server",
        || async {
            (at_server(&admin, &db_name, &role).await == (false, false, false)).then_some(())
        },
    )
    .await;
    eventually(&journey, "the claim gone from the app cluster", || async {
        let left = claims_api(&app, ns, "PostgresqlInstance")
            .get_opt("orders")
            .await
            .ok()?;
        left.is_none().then_some(())
    })
    .await;
}
