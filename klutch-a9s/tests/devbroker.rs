//! The development broker against a real PostgreSQL server (Debian's `postgresql`, started by
//! `klutch_sdk::testenv::postgres`), driven through the clients provider-anynines uses
//! (`klutch_osb::Client` via `A9sBroker`, `BackupManager`) and, for exact status codes, raw HTTP.

use std::time::Duration;

use klutch_a9s::backup::{BackupManager, JobStatus};
use klutch_a9s::broker::{A9sBroker, InstanceState, match_plan, match_service};
use klutch_a9s::credentials::{DataServiceKind, ParseMode, ServiceCredentials};
use klutch_a9s::devbroker::{DevBroker, DevBrokerConfig};
use klutch_osb::{
    BindOutcome, BindRequest, CallOptions, Deadline, DeleteOutcome, OperationKind, PollOutcome,
    PollTarget, Poller, ProvisionOutcome, ProvisionRequest,
};
use klutch_sdk::testenv::postgres::Postgres;
use serde_json::{Value, json};
use tokio_postgres::NoTls;

const SERVICE: &str = "a9s-postgresql17";
const PLAN: &str = "postgresql-single-small";

async fn server() -> Postgres {
    Postgres::builder().start().await.expect("start PostgreSQL")
}

fn config(pg: &Postgres) -> DevBrokerConfig {
    let mut c = DevBrokerConfig::new(pg.url(), "admin", "secret");
    c.pg_bin_dir = pg.bin_dir().map(ToOwned::to_owned);
    c
}

async fn sql(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

struct Ids {
    service: String,
    plan: String,
}

async fn ids(a9s: &A9sBroker) -> Ids {
    let catalog = a9s.osb().catalog().await.unwrap().outcome;
    let s = match_service(&catalog, SERVICE).unwrap();
    let p = match_plan(s, PLAN).unwrap();
    Ids {
        service: s.id.clone(),
        plan: p.id.clone(),
    }
}

/// Provisions through the OSB client and waits with the poller, as the provider does.
async fn provision(a9s: &A9sBroker, ids: &Ids, params: Value) -> String {
    let id = a9s.unique_instance_id().await.unwrap();
    let req = ProvisionRequest::new(&ids.service, &ids.plan)
        .guids("org-1", "space-1")
        .parameters(params.as_object().unwrap().clone());
    let out = a9s
        .osb()
        .provision(&id, &req, &CallOptions::new().asynchronous())
        .await
        .unwrap()
        .outcome;
    let ProvisionOutcome::InProgress(op) = out else {
        panic!("provision is asynchronous: {out:?}")
    };
    let target = PollTarget::instance(
        OperationKind::Provision,
        &id,
        &ids.service,
        &ids.plan,
        op.operation,
    );
    let done = Poller::new(a9s.osb().clone())
        .wait(
            &target,
            Deadline::from_now(Some(Duration::from_secs(120)), None),
            None,
        )
        .await
        .unwrap();
    assert!(
        matches!(done.outcome, PollOutcome::Succeeded { .. }),
        "{:?}",
        done.outcome
    );
    id
}

async fn bind(a9s: &A9sBroker, ids: &Ids, iid: &str, bid: &str) -> ServiceCredentials {
    let out = a9s
        .osb()
        .bind(
            iid,
            bid,
            &BindRequest::new(&ids.service, &ids.plan),
            &CallOptions::new(),
        )
        .await
        .unwrap()
        .outcome;
    let BindOutcome::Created(body) = out else {
        panic!("bind is synchronous: {out:?}")
    };
    let creds = body.credentials.expect("credentials");
    ServiceCredentials::parse(
        DataServiceKind::Postgresql,
        creds.expose(),
        ParseMode::Strict,
    )
    .expect("a9s-shaped PostgreSQL credentials")
}

fn uri(c: &ServiceCredentials) -> String {
    match c {
        ServiceCredentials::Postgresql(s) => {
            use secrecy::ExposeSecret as _;
            s.uri.as_ref().expect("uri").expose_secret().to_owned()
        }
        other => panic!("not PostgreSQL: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bindings_connect_are_separate_roles_unbind_revokes_and_deprovision_cleans_up() {
    let pg = server().await;
    let broker = DevBroker::start(config(&pg)).await.unwrap();
    let a9s = A9sBroker::new(broker.http_config()).unwrap();
    let ids = ids(&a9s).await;
    let iid = provision(
        &a9s,
        &ids,
        json!({"max_connections": 20, "statement_timeout": "30s"}),
    )
    .await;

    // The a9s extensions see the instance as the provider expects.
    let rec = a9s.instance(&iid).await.unwrap();
    assert_eq!(rec.state, InstanceState::Provisioned);
    assert_eq!(rec.plan_guid.as_deref(), Some(ids.plan.as_str()));
    let fetched = a9s.fetch_instance(&iid).await.unwrap();
    assert_eq!(fetched.parameters.unwrap()["max_connections"], 20);

    let c1 = bind(&a9s, &ids, &iid, "b-1").await;
    let c2 = bind(&a9s, &ids, &iid, "b-2").await;
    let (u1, u2) = (uri(&c1), uri(&c2));
    assert_ne!(u1, u2);
    let s1 = sql(&u1).await.expect("binding 1 connects");
    s1.batch_execute(
        "CREATE TABLE orders (id int primary key, item text); INSERT INTO orders VALUES (1, 'tea')",
    )
    .await
    .unwrap();
    let s2 = sql(&u2).await.expect("binding 2 connects");
    let row = s2
        .query_one("SELECT item FROM orders WHERE id = 1", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "tea");
    let r1: String = s1
        .query_one("SELECT session_user::text", &[])
        .await
        .unwrap()
        .get(0);
    let r2: String = s2
        .query_one("SELECT session_user::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_ne!(r1, r2, "each binding is its own login role");
    let limit: i32 = s1
        .query_one(
            "SELECT datconnlimit FROM pg_database WHERE datname = current_database()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(limit, 20, "max_connections became the connection limit");

    // A second instance's binding cannot open this instance's database.
    let other = provision(&a9s, &ids, json!({})).await;
    let c3 = bind(&a9s, &ids, &other, "b-3").await;
    let db1: String = s1
        .query_one("SELECT current_database()::text", &[])
        .await
        .unwrap()
        .get(0);
    let u3 = uri(&c3);
    let cross = format!("{}/{db1}", &u3[..u3.rfind('/').unwrap()]);
    let e = sql(&cross).await.expect_err("other tenant is refused");
    assert!(
        e.to_string().contains("permission denied")
            || format!("{e:?}").contains("permission denied"),
        "{e:?}"
    );

    // Unbind: the old password fails, the session is gone, the other binding still works.
    let out = a9s
        .osb()
        .unbind(&iid, "b-1", &ids.service, &ids.plan, &CallOptions::new())
        .await
        .unwrap()
        .outcome;
    assert_eq!(out, DeleteOutcome::Deleted);
    assert!(sql(&u1).await.is_err(), "the unbound role cannot log in");
    assert!(
        s1.simple_query("SELECT 1").await.is_err(),
        "its session was ended"
    );
    s2.simple_query("SELECT 1")
        .await
        .expect("binding 2 unaffected");
    // Retried unbind: gone.
    let again = a9s
        .osb()
        .unbind(&iid, "b-1", &ids.service, &ids.plan, &CallOptions::new())
        .await
        .unwrap()
        .outcome;
    assert_eq!(again, DeleteOutcome::Gone);

    // Deprovision: no database, no role left.
    let out = a9s
        .osb()
        .deprovision(
            &iid,
            &ids.service,
            &ids.plan,
            &CallOptions::new().asynchronous(),
        )
        .await
        .unwrap()
        .outcome;
    let DeleteOutcome::InProgress { operation } = out else {
        panic!("deprovision is asynchronous: {out:?}")
    };
    let target = PollTarget::instance(
        OperationKind::Deprovision,
        &iid,
        &ids.service,
        &ids.plan,
        operation,
    );
    let done = Poller::new(a9s.osb().clone())
        .wait(
            &target,
            Deadline::from_now(Some(Duration::from_secs(120)), None),
            None,
        )
        .await
        .unwrap();
    assert!(
        matches!(
            done.outcome,
            PollOutcome::Succeeded { .. } | PollOutcome::Gone
        ),
        "{:?}",
        done.outcome
    );
    assert!(
        s2.simple_query("SELECT 1").await.is_err(),
        "sessions were ended"
    );
    let admin = sql(pg.url()).await.unwrap();
    let dbs = admin
        .query(
            "SELECT datname FROM pg_database WHERE datname = $1",
            &[&db1],
        )
        .await
        .unwrap();
    assert!(dbs.is_empty(), "database {db1} dropped");
    let roles: Vec<String> = admin
        .query(
            "SELECT rolname::text FROM pg_roles WHERE rolname LIKE $1",
            &[&format!("{db1}\\_%")],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(roles.is_empty(), "roles left: {roles:?}");
    assert_eq!(
        a9s.instance(&iid).await.unwrap().state,
        InstanceState::Deleted
    );
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_then_drop_then_restore_brings_the_rows_back() {
    let pg = server().await;
    let broker = DevBroker::start(config(&pg)).await.unwrap();
    let a9s = A9sBroker::new(broker.http_config()).unwrap();
    let bm = BackupManager::new(broker.http_config()).unwrap();
    let ids = ids(&a9s).await;
    let iid = provision(&a9s, &ids, json!({})).await;
    let u = uri(&bind(&a9s, &ids, &iid, "app").await);
    let s = sql(&u).await.unwrap();
    s.batch_execute(
        "CREATE TABLE notes (id int, body text); INSERT INTO notes VALUES (1, 'a'), (2, 'b')",
    )
    .await
    .unwrap();

    let created = bm.create_backup(&iid).await.unwrap();
    let backup = loop {
        let b = bm.get_backup(&iid, created.id).await.unwrap();
        match b.status {
            JobStatus::Done => break b,
            JobStatus::Queued | JobStatus::Running => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            _ => panic!("backup ended: {b:?}"),
        }
    };
    assert!(backup.size.unwrap_or(0) > 0);
    assert_eq!(bm.list_backups(&iid).await.unwrap().len(), 1);

    s.batch_execute("DROP TABLE notes").await.unwrap();
    drop(s);
    let restore = bm.create_restore(&iid, created.id).await.unwrap();
    loop {
        let r = bm.get_restore(&iid, restore.id).await.unwrap();
        match r.status {
            JobStatus::Done => break,
            JobStatus::Queued | JobStatus::Running => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            _ => panic!("restore ended: {r:?}"),
        }
    }
    let s = sql(&u).await.unwrap();
    let n: i64 = s
        .query_one("SELECT count(*) FROM notes", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2, "the rows are back");
    // The restored table is still the binding's to change.
    s.batch_execute("INSERT INTO notes VALUES (3, 'c')")
        .await
        .unwrap();
    bm.delete_backup(&iid, created.id).await.unwrap();
    assert_eq!(
        bm.get_backup(&iid, created.id).await.unwrap().status,
        JobStatus::Deleted
    );
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restarted_mid_provision_finishes_the_provision() {
    let pg = server().await;
    let mut slow = config(&pg);
    slow.provision_delay = Duration::from_secs(3600);
    let broker = DevBroker::start(slow).await.unwrap();
    let a9s = A9sBroker::new(broker.http_config()).unwrap();
    let ids = ids(&a9s).await;
    let iid = a9s.unique_instance_id().await.unwrap();
    let req = ProvisionRequest::new(&ids.service, &ids.plan).guids("o", "s");
    let out = a9s
        .osb()
        .provision(&iid, &req, &CallOptions::new().asynchronous())
        .await
        .unwrap()
        .outcome;
    let ProvisionOutcome::InProgress(op) = out else {
        panic!("{out:?}")
    };
    // A retried PUT gets the same operation.
    let again = a9s
        .osb()
        .provision(&iid, &req, &CallOptions::new().asynchronous())
        .await
        .unwrap()
        .outcome;
    assert_eq!(again, ProvisionOutcome::InProgress(op.clone()));
    assert_eq!(
        a9s.instance(&iid).await.unwrap().state,
        InstanceState::Deploying
    );
    drop(broker); // a crash: the provision job dies with it

    let broker = DevBroker::start(config(&pg)).await.unwrap();
    let a9s = A9sBroker::new(broker.http_config()).unwrap();
    let target = PollTarget::instance(
        OperationKind::Provision,
        &iid,
        &ids.service,
        &ids.plan,
        op.operation,
    );
    let done = Poller::new(a9s.osb().clone())
        .wait(
            &target,
            Deadline::from_now(Some(Duration::from_secs(120)), None),
            None,
        )
        .await
        .unwrap();
    assert!(
        matches!(done.outcome, PollOutcome::Succeeded { .. }),
        "{:?}",
        done.outcome
    );
    let u = uri(&bind(&a9s, &ids, &iid, "after-restart").await);
    sql(&u).await.expect("the converged instance works");
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_the_osb_error_the_spec_prescribes() {
    let pg = server().await;
    let broker = DevBroker::start(config(&pg)).await.unwrap();
    let a9s = A9sBroker::new(broker.http_config()).unwrap();
    let ids = ids(&a9s).await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", broker.url());
    let put = |path: &str, body: Value, auth: (&str, &str)| {
        http.put(url(path))
            .basic_auth(auth.0, Some(auth.1))
            .header("X-Broker-API-Version", "2.14")
            .json(&body)
            .send()
    };
    let good = ("admin", "secret");
    let base = json!({"service_id": ids.service, "plan_id": ids.plan,
        "organization_guid": "o", "space_guid": "s"});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let path = "/v2/service_instances/i-bad?accepts_incomplete=true";
    // (request body, basic-auth credentials, expected status, expected `error` code)
    type Case<'a> = (Value, (&'a str, &'a str), u16, Option<&'a str>);
    let cases: Vec<Case<'_>> = vec![
        (
            with("plan_id", json!("no-such-plan")),
            good,
            400,
            Some("BadRequest"),
        ),
        (
            with("parameters", json!("not an object")),
            good,
            400,
            Some("BadRequest"),
        ),
        (
            with("parameters", json!({"no_such_parameter": 1})),
            good,
            400,
            Some("BadRequest"),
        ),
        (
            with("parameters", json!({"work_mem": "lots"})),
            good,
            400,
            Some("BadRequest"),
        ),
        (
            with("parameters", json!({"max_wal_senders": 4})),
            good,
            422,
            None,
        ),
        (json!({"plan_id": ids.plan}), good, 400, Some("BadRequest")),
        (base.clone(), ("admin", "wrong"), 401, Some("Unauthorized")),
    ];
    for (body, auth, status, code) in cases {
        let r = put(path, body.clone(), auth).await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{body}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v.get("error").and_then(Value::as_str), code, "{body}: {v}");
        assert!(
            v["description"].as_str().is_some_and(|d| !d.is_empty()),
            "{v}"
        );
    }
    // Synchronous provision: AsyncRequired, through the client's typed error too.
    let r = put("/v2/service_instances/i-bad", base.clone(), good)
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let e = a9s
        .osb()
        .provision(
            "i-bad",
            &ProvisionRequest::new(&ids.service, &ids.plan).guids("o", "s"),
            &CallOptions::new(),
        )
        .await
        .expect_err("sync provision refused");
    assert!(
        e.to_string().contains("AsyncRequired") || format!("{e:?}").contains("AsyncRequired"),
        "{e:?}"
    );
    // No version header: 412.
    let r = http
        .get(url("/v2/catalog"))
        .basic_auth("admin", Some("secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 412);
    // Nothing was created by any of these.
    let r = http
        .get(url("/instances/i-bad"))
        .basic_auth("admin", Some("secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);

    // Update: a TLS switch is refused with 422 and changes nothing.
    let iid = provision(&a9s, &ids, json!({})).await;
    let ssl_plan = format!("{}-ssl", ids.plan);
    let r = http
        .patch(url(&format!(
            "/v2/service_instances/{iid}?accepts_incomplete=true"
        )))
        .basic_auth("admin", Some("secret"))
        .header("X-Broker-API-Version", "2.14")
        .json(&json!({"service_id": ids.service, "plan_id": ssl_plan}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    assert_eq!(
        a9s.instance(&iid).await.unwrap().plan_guid.as_deref(),
        Some(ids.plan.as_str())
    );
    // A parameter update is applied.
    let r = http
        .patch(url(&format!(
            "/v2/service_instances/{iid}?accepts_incomplete=true"
        )))
        .basic_auth("admin", Some("secret"))
        .header("X-Broker-API-Version", "2.14")
        .json(&json!({"service_id": ids.service, "parameters": {"max_connections": 7}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        a9s.fetch_instance(&iid).await.unwrap().parameters.unwrap()["max_connections"],
        7
    );
    // Restore of an unknown backup: 404; backups of an unknown instance: 404.
    let bm = BackupManager::new(broker.http_config()).unwrap();
    assert!(
        bm.create_restore(&iid, 999)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        bm.list_backups("no-such-instance")
            .await
            .unwrap_err()
            .is_not_found()
    );
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_restarts_with_its_data_and_the_broker_carries_on() {
    let mut pg = server().await;
    let broker = DevBroker::start(config(&pg)).await.unwrap();
    let a9s = A9sBroker::new(broker.http_config()).unwrap();
    let ids = ids(&a9s).await;
    let iid = provision(&a9s, &ids, json!({})).await;
    let creds = bind(&a9s, &ids, &iid, "app").await;
    let ServiceCredentials::Postgresql(c) = &creds else {
        panic!("not PostgreSQL")
    };
    let u = uri(&creds);
    let s = sql(&u).await.unwrap();
    s.batch_execute("CREATE TABLE t (v int); INSERT INTO t VALUES (42)")
        .await
        .unwrap();
    // Password authentication is real: a wrong password is refused.
    let wrong = format!(
        "postgres://{}:not-the-password@{}:{}/{}",
        c.username, c.host, c.port, c.name
    );
    assert!(sql(&wrong).await.is_err());

    pg.restart().await.expect("restart PostgreSQL");
    assert!(
        s.simple_query("SELECT 1").await.is_err(),
        "old sessions ended"
    );
    let s = sql(&u)
        .await
        .expect("the binding connects after the restart");
    let v: i32 = s.query_one("SELECT v FROM t", &[]).await.unwrap().get(0);
    assert_eq!(v, 42);
    // The broker reconnects by itself.
    let u2 = uri(&bind(&a9s, &ids, &iid, "app-2").await);
    sql(&u2).await.expect("a new binding after the restart");
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deprovision_sent_during_the_provision_wins() {
    let pg = server().await;
    let mut slow = config(&pg);
    slow.provision_delay = Duration::from_secs(3600);
    let broker = DevBroker::start(slow).await.unwrap();
    let a9s = A9sBroker::new(broker.http_config()).unwrap();
    let ids = ids(&a9s).await;
    let iid = a9s.unique_instance_id().await.unwrap();
    let req = ProvisionRequest::new(&ids.service, &ids.plan).guids("o", "s");
    let out = a9s
        .osb()
        .provision(&iid, &req, &CallOptions::new().asynchronous())
        .await
        .unwrap()
        .outcome;
    assert!(matches!(out, ProvisionOutcome::InProgress(_)), "{out:?}");
    let out = a9s
        .osb()
        .deprovision(
            &iid,
            &ids.service,
            &ids.plan,
            &CallOptions::new().asynchronous(),
        )
        .await
        .unwrap()
        .outcome;
    let DeleteOutcome::InProgress { operation } = out else {
        panic!("{out:?}")
    };
    let target = PollTarget::instance(
        OperationKind::Deprovision,
        &iid,
        &ids.service,
        &ids.plan,
        operation,
    );
    let done = Poller::new(a9s.osb().clone())
        .wait(
            &target,
            Deadline::from_now(Some(Duration::from_secs(120)), None),
            None,
        )
        .await
        .unwrap();
    assert!(
        matches!(
            done.outcome,
            PollOutcome::Succeeded { .. } | PollOutcome::Gone
        ),
        "{:?}",
        done.outcome
    );
    let rec = a9s.instance(&iid).await.unwrap();
    assert_eq!(rec.state, InstanceState::Deleted);
    let admin = sql(pg.url()).await.unwrap();
    let db = format!("a9s_i{}", rec.id.unwrap());
    let n = admin
        .query("SELECT 1 FROM pg_database WHERE datname = $1", &[&db])
        .await
        .unwrap();
    assert!(n.is_empty());
    // A provision retried with the same id after the delete is refused: ids are never reused.
    let e = a9s
        .osb()
        .provision(&iid, &req, &CallOptions::new().asynchronous())
        .await
        .expect_err("id reuse refused");
    assert!(
        format!("{e:?}").contains("409")
            || format!("{e}").contains("409")
            || format!("{e:?}").contains("Conflict"),
        "{e:?}"
    );
    broker.shutdown().await;
}
