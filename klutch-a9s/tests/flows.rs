//! Flow tests against the fakes of the `testing` feature: backup and restore state machines,
//! the 409/422/423 rules, fault injection, and a full a9s broker lifecycle with typed
//! credentials.

use std::time::Duration;

use klutch_a9s::backup::{BackupConfigUpdate, BackupManager, BackupManagerError, JobStatus};
use klutch_a9s::broker::{InstanceState, match_plan, match_service};
use klutch_a9s::credentials::{DataServiceKind, ParseMode, ServiceCredentials};
use klutch_a9s::flatten::flatten;
use klutch_a9s::testing::{
    A9sRoute, BackupRoute, FakeA9sBroker, FakeA9sBrokerConfig, FakeBackupManager,
    FakeBackupManagerConfig, FaultAction,
};
use klutch_a9s::transport::{ApiErrorKind, CallError, HttpConfig};
use klutch_osb::testing::{FakeBrokerConfig, Mode};
use klutch_osb::{
    BindOutcome, BindRequest, CallOptions, DeleteOutcome, OperationState, ProvisionOutcome,
    ProvisionRequest,
};

const I: &str = "instance-1";

async fn fake() -> (FakeBackupManager, BackupManager) {
    let fake = FakeBackupManager::start(FakeBackupManagerConfig {
        // Long enough that "queued right after create" holds on a loaded machine.
        queued_for: Duration::from_millis(250),
        running_for: Duration::from_millis(100),
        ..FakeBackupManagerConfig::default()
    })
    .await
    .expect("fake starts");
    let client = fake.client().expect("client builds");
    (fake, client)
}

async fn wait_backup(bm: &BackupManager, id: u64) -> JobStatus {
    for _ in 0..1000 {
        let b = bm.get_backup(I, id).await.expect("get backup");
        if b.status.is_terminal() {
            return b.status;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("backup {id} never finished")
}

async fn wait_restore(bm: &BackupManager, id: u64) -> JobStatus {
    for _ in 0..1000 {
        let r = bm.get_restore(I, id).await.expect("get restore");
        if r.status.is_terminal() {
            return r.status;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("restore {id} never finished")
}

#[tokio::test]
async fn backup_and_restore_happy_path() {
    let (fake, bm) = fake().await;
    assert!(bm.health().await.unwrap().is_healthy());
    let created = bm.create_backup(I).await.unwrap();
    let b = bm.get_backup(I, created.id).await.unwrap();
    assert_eq!(b.status, JobStatus::Queued);
    assert_eq!(b.finished_at, None);
    assert!(b.triggered_at().is_some());
    assert_eq!(wait_backup(&bm, created.id).await, JobStatus::Done);
    let b = bm.get_backup(I, created.id).await.unwrap();
    assert_eq!(b.size, Some(1184));
    assert!(b.finished_at().is_some());
    assert_eq!(bm.list_backups(I).await.unwrap(), vec![b]);

    let restore = bm.create_restore(I, created.id).await.unwrap();
    let r = bm.get_restore(I, restore.id).await.unwrap();
    assert_eq!(r.backup_id, Some(created.id));
    assert!(matches!(r.status, JobStatus::Queued | JobStatus::Running));
    assert_eq!(wait_restore(&bm, restore.id).await, JobStatus::Done);
    assert_eq!(bm.list_restores(I).await.unwrap().len(), 1);

    bm.delete_backup(I, created.id).await.unwrap();
    assert_eq!(
        bm.get_backup(I, created.id).await.unwrap().status,
        JobStatus::Deleted
    );
    assert_eq!(fake.count(BackupRoute::CreateBackup), 1);
    assert_eq!(fake.count(BackupRoute::CreateRestore), 1);
    // Basic auth on every request, never shown in the log.
    assert!(
        fake.requests()
            .iter()
            .all(|r| r.header("authorization") == Some("[REDACTED]"))
    );
}

fn kind_code(e: &BackupManagerError) -> (Option<ApiErrorKind>, Option<String>) {
    (e.kind(), e.api().and_then(|a| a.code.clone()))
}

#[tokio::test]
async fn restore_rules_409_422_423() {
    let (fake, bm) = fake().await;
    let b1 = bm.create_backup(I).await.unwrap().id;
    // A queued backup is not restorable.
    let e = bm.create_restore(I, b1).await.unwrap_err();
    assert_eq!(
        kind_code(&e),
        (
            Some(ApiErrorKind::Unprocessable),
            Some("BackupNonRestorableState".into())
        )
    );
    assert_eq!(wait_backup(&bm, b1).await, JobStatus::Done);

    let r1 = bm.create_restore(I, b1).await.unwrap().id;
    fake.set_restore_status(I, r1, Some(JobStatus::Running));
    // A second restore while one runs: 409.
    let e = bm.create_restore(I, b1).await.unwrap_err();
    assert_eq!(
        kind_code(&e),
        (
            Some(ApiErrorKind::Conflict),
            Some("RestoreInProgress".into())
        )
    );
    assert!(e.api().unwrap().description.is_some());
    // Deleting the backup a running restore uses: 423, description kept.
    let e = bm.delete_backup(I, b1).await.unwrap_err();
    assert_eq!(
        kind_code(&e),
        (Some(ApiErrorKind::Locked), Some("Locked".into()))
    );
    assert_eq!(
        e.api().unwrap().description.as_deref(),
        Some("Backup is used by a running restore")
    );
    fake.set_restore_status(I, r1, None);
    assert_eq!(wait_restore(&bm, r1).await, JobStatus::Done);
    bm.delete_backup(I, b1).await.unwrap();

    // Unknown ids: 404.
    assert!(bm.get_backup(I, 999).await.unwrap_err().is_not_found());
    assert!(bm.get_restore(I, 999).await.unwrap_err().is_not_found());
    assert!(bm.delete_backup(I, 999).await.unwrap_err().is_not_found());
    assert!(bm.create_restore(I, 999).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn failing_backups_and_restores() {
    let (fake, bm) = fake().await;
    fake.set_fail_backups(true);
    let b = bm.create_backup(I).await.unwrap().id;
    assert_eq!(wait_backup(&bm, b).await, JobStatus::Failed);
    let e = bm.create_restore(I, b).await.unwrap_err();
    assert_eq!(e.kind(), Some(ApiErrorKind::Unprocessable));

    fake.set_fail_backups(false);
    fake.set_fail_restores(true);
    let b = bm.create_backup(I).await.unwrap().id;
    assert_eq!(wait_backup(&bm, b).await, JobStatus::Done);
    let r = bm.create_restore(I, b).await.unwrap().id;
    assert_eq!(wait_restore(&bm, r).await, JobStatus::Failed);
    // After a failed restore a new one may start.
    fake.set_fail_restores(false);
    let r = bm.create_restore(I, b).await.unwrap().id;
    assert_eq!(wait_restore(&bm, r).await, JobStatus::Done);
}

#[tokio::test]
async fn config_and_unknown_instances() {
    let fake = FakeBackupManager::start(FakeBackupManagerConfig {
        accept_any_instance: false,
        ..FakeBackupManagerConfig::default()
    })
    .await
    .unwrap();
    let bm = fake.client().unwrap();
    let e = bm.create_backup(I).await.unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert!(
        matches!(e, BackupManagerError::CreateBackup { ref instance_id, .. } if instance_id == I)
    );
    fake.add_instance(I);
    let cfg = bm.get_config(I).await.unwrap();
    assert_eq!(cfg.exclude_from_auto_backup, Some(false));
    assert_eq!(cfg.min_encryption_key_length, Some(8));
    let msg = bm
        .update_config(
            I,
            &BackupConfigUpdate::new()
                .encryption_key("0123456789abcdef")
                .exclude_from_auto_backup(true),
        )
        .await
        .unwrap();
    assert!(msg.message.is_some());
    assert_eq!(fake.encryption_key(I).as_deref(), Some("0123456789abcdef"));
    assert_eq!(
        bm.get_config(I).await.unwrap().exclude_from_auto_backup,
        Some(true)
    );
    // The fake enforces the key length with a 400 and a message.
    let e = bm
        .update_config(I, &BackupConfigUpdate::new().encryption_key("short"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(ApiErrorKind::BadRequest));
    assert!(
        e.api()
            .unwrap()
            .description
            .as_deref()
            .unwrap()
            .contains("8 characters")
    );
    fake.remove_instance(I);
    assert!(bm.get_config(I).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn fault_injection_and_auth() {
    let (fake, bm) = fake().await;
    fake.inject(
        Some(BackupRoute::CreateBackup),
        FaultAction::Respond {
            status: 503,
            body: r#"{"error": "ServiceUnavailable", "description": "storage offline"}"#.into(),
        },
        Some(1),
    );
    let e = bm.create_backup(I).await.unwrap_err();
    assert_eq!(e.kind(), Some(ApiErrorKind::Server));
    assert_eq!(
        e.api().unwrap().description.as_deref(),
        Some("storage offline")
    );
    // The fault was used up: the retry succeeds.
    let id = bm.create_backup(I).await.unwrap().id;

    fake.inject(
        Some(BackupRoute::GetBackup),
        FaultAction::MalformedJson { status: 200 },
        Some(1),
    );
    let e = bm.get_backup(I, id).await.unwrap_err();
    assert!(
        matches!(e.call_error(), CallError::Decode { status: 200, .. }),
        "{e:?}"
    );

    fake.inject(None, FaultAction::Delay(Duration::from_secs(3)), Some(1));
    let slow = BackupManager::new(fake.http_config().timeout(Duration::from_millis(200))).unwrap();
    let e = slow.list_backups(I).await.unwrap_err();
    assert!(matches!(e.call_error(), CallError::Timeout { .. }), "{e:?}");
    fake.clear_faults();

    let wrong =
        BackupManager::new(HttpConfig::new(fake.url()).basic_auth("admin", "wrong")).unwrap();
    let e = wrong.list_backups(I).await.unwrap_err();
    assert_eq!(e.kind(), Some(ApiErrorKind::Unauthorized));
    // Health: a fault makes the Backup Manager unhealthy, not an error.
    fake.inject(
        Some(BackupRoute::Health),
        FaultAction::Respond {
            status: 500,
            body: String::new(),
        },
        Some(1),
    );
    assert!(!bm.health().await.unwrap().is_healthy());
    assert!(
        bm.with_health_endpoint("/v2/healthy")
            .health()
            .await
            .unwrap()
            .is_healthy()
    );
}

async fn a9s_fake(kind: DataServiceKind, mode: Mode) -> FakeA9sBroker {
    FakeA9sBroker::start(FakeA9sBrokerConfig {
        osb: FakeBrokerConfig {
            mode,
            ..FakeBrokerConfig::default()
        },
        kind,
        page_size: 2,
    })
    .await
    .expect("fake a9s broker starts")
}

#[tokio::test]
async fn a9s_broker_lifecycle_with_typed_credentials() {
    let fake = a9s_fake(
        DataServiceKind::Messaging,
        Mode::Async {
            // Long enough that "deploying right after the 202" holds on a loaded machine.
            duration: Duration::from_millis(600),
            retry_after: None,
        },
    )
    .await;
    let broker = fake
        .client()
        .unwrap()
        .with_health_endpoint("/osb_ext/v1/healthy");
    assert!(broker.health().await.unwrap().is_healthy());

    let catalog = broker.osb().catalog().await.unwrap().outcome;
    let service = match_service(&catalog, "fake-db").unwrap();
    let plan = match_plan(service, "small").unwrap();

    let id = broker.unique_instance_id().await.unwrap();
    let req = ProvisionRequest::new(&service.id, &plan.id)
        .guids("org-1", "space-1")
        .parameter("max_connections", 100);
    let out = broker
        .osb()
        .provision(&id, &req, &CallOptions::new().asynchronous())
        .await
        .unwrap()
        .outcome;
    let ProvisionOutcome::InProgress(op) = out else {
        panic!("expected 202, got {out:?}")
    };
    let record = broker.instance(&id).await.unwrap();
    assert_eq!(record.state, InstanceState::Deploying);
    assert_eq!(record.plan_guid.as_deref(), Some(plan.id.as_str()));
    assert_eq!(
        record
            .context
            .as_ref()
            .and_then(|c| c.organization_guid.as_deref()),
        Some("org-1")
    );

    // Poll with service_id and plan_id until done.
    let key = op.operation.map(|k| k.0);
    let mut state = OperationState::InProgress;
    for _ in 0..500 {
        state = broker
            .last_operation(&id, &service.id, &plan.id, key.as_deref())
            .await
            .unwrap()
            .last_operation
            .state;
        if state != OperationState::InProgress {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(state, OperationState::Succeeded);
    let polls = fake.osb().requests();
    let poll = polls
        .iter()
        .rfind(|r| r.route == klutch_osb::testing::Route::InstanceLastOperation)
        .unwrap();
    assert_eq!(poll.query_param("service_id"), Some(service.id.as_str()));
    assert_eq!(poll.query_param("plan_id"), Some(plan.id.as_str()));
    assert_eq!(poll.header("x-broker-api-version"), Some("2.14"));

    let record = broker.instance(&id).await.unwrap();
    assert_eq!(record.state, InstanceState::Provisioned);
    assert!(record.provisioned_at.is_some());

    let fetched = broker.fetch_instance(&id).await.unwrap();
    assert_eq!(fetched.id.as_deref(), Some(id.as_str()));
    assert_eq!(
        fetched.parameters,
        Some(serde_json::json!({"max_connections": 100}))
    );
    assert!(fetched.context.is_some());

    // Bind (the fake broker is async, so poll the binding, then fetch it).
    fake.osb().set_mode(Mode::Sync);
    let bind = broker
        .osb()
        .bind(
            &id,
            "binding-1",
            &BindRequest::new(&service.id, &plan.id),
            &CallOptions::new(),
        )
        .await
        .unwrap()
        .outcome;
    let BindOutcome::Created(body) = bind else {
        panic!("expected 201, got {bind:?}")
    };
    let creds =
        ServiceCredentials::from_binding(DataServiceKind::Messaging, &body, ParseMode::Strict)
            .unwrap();
    let labels: Vec<String> = creds
        .connection_endpoints()
        .into_iter()
        .map(|e| e.label)
        .collect();
    assert_eq!(labels, ["HTTP API", "AMQP SSL", "Management"]);
    let secret = flatten(body.credentials.as_ref().unwrap().expose());
    assert!(secret.get("protocols.amqp_ssl.uri").is_some());
    assert!(
        secret.get("host").is_none(),
        "root keys shadowed by protocols.* are dropped"
    );
    let record = broker.instance(&id).await.unwrap();
    assert_eq!(record.credentials.len(), 1);
    assert_eq!(
        record.credentials[0].guid_at_tenant.as_deref(),
        Some("binding-1")
    );

    let out = broker
        .osb()
        .unbind(&id, "binding-1", &service.id, &plan.id, &CallOptions::new())
        .await
        .unwrap()
        .outcome;
    assert_eq!(out, DeleteOutcome::Deleted);
    assert!(broker.instance(&id).await.unwrap().credentials.is_empty());

    let out = broker
        .osb()
        .deprovision(&id, &service.id, &plan.id, &CallOptions::new())
        .await
        .unwrap()
        .outcome;
    assert_eq!(out, DeleteOutcome::Deleted);
    let record = broker.instance(&id).await.unwrap();
    assert!(record.is_deleted());
    assert_eq!(record.state, InstanceState::Deleted);
    // Deleted ids are kept: a new id must not reuse it.
    let mut ids = vec![id.clone(), "fresh-id".to_owned()].into_iter();
    let again = broker
        .unique_instance_id_with(|| ids.next().unwrap_or_default())
        .await
        .unwrap();
    assert_eq!(again, "fresh-id");
}

#[tokio::test]
async fn a9s_list_paging_and_faults() {
    let fake = a9s_fake(DataServiceKind::Postgresql, Mode::Sync).await;
    let broker = fake.client().unwrap();
    for i in 0..5 {
        fake.add_record(&format!("i-{i}"), "fake-db-id", "small-id");
    }
    let all = broker.list_instances().await.unwrap();
    let ids: Vec<_> = all
        .iter()
        .filter_map(|r| r.guid_at_tenant.clone())
        .collect();
    assert_eq!(ids, ["i-0", "i-1", "i-2", "i-3", "i-4"]);
    assert_eq!(fake.count(A9sRoute::InstanceList), 3);

    fake.inject(
        Some(A9sRoute::InstanceRecord),
        FaultAction::Respond {
            status: 500,
            body: r#"{"error": "InternalError", "description": "db down"}"#.into(),
        },
        Some(1),
    );
    let e = broker.instance("i-0").await.unwrap_err();
    assert_eq!(
        e.api().and_then(|a| a.description.as_deref()),
        Some("db down")
    );
    assert!(broker.instance("i-0").await.is_ok());
    assert!(broker.instance("nope").await.unwrap_err().is_not_found());

    fake.inject(
        Some(A9sRoute::Health),
        FaultAction::Respond {
            status: 503,
            body: String::new(),
        },
        None,
    );
    assert!(!broker.health().await.unwrap().is_healthy());
    fake.clear_faults();
    assert!(broker.health().await.unwrap().is_healthy());

    // A collision with an existing record makes unique_instance_id generate again.
    let mut ids = vec!["i-1".to_owned(), "i-new".to_owned()].into_iter();
    let id = broker
        .unique_instance_id_with(|| ids.next().unwrap_or_default())
        .await
        .unwrap();
    assert_eq!(id, "i-new");

    // Sync provision through the front: recorded as provisioned straight away, and the
    // bind answer carries the PostgreSQL shape.
    let req = ProvisionRequest::new("fake-db-id", "small-id").guids("o", "s");
    broker
        .osb()
        .provision("p-1", &req, &CallOptions::new())
        .await
        .unwrap();
    assert_eq!(fake.instance_state("p-1").as_deref(), Some("provisioned"));
    let out = broker
        .osb()
        .bind(
            "p-1",
            "b-1",
            &BindRequest::new("fake-db-id", "small-id"),
            &CallOptions::new(),
        )
        .await
        .unwrap()
        .outcome;
    let BindOutcome::Created(body) = out else {
        panic!("{out:?}")
    };
    let creds =
        ServiceCredentials::from_binding(DataServiceKind::Postgresql, &body, ParseMode::Strict)
            .unwrap();
    assert_eq!(creds.connection_endpoints()[0].port, "5432");
    let mut keys: Vec<_> = flatten(body.credentials.as_ref().unwrap().expose())
        .keys()
        .map(str::to_owned)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "host", "hosts", "name", "password", "port", "uri", "username"
        ]
    );
    // Wrong credentials on an extension endpoint: 401.
    let wrong = klutch_a9s::broker::A9sBroker::new(
        HttpConfig::new(fake.url()).basic_auth("admin", "wrong"),
    )
    .unwrap();
    assert_eq!(
        wrong
            .instance("p-1")
            .await
            .unwrap_err()
            .api()
            .map(|a| a.status),
        Some(401)
    );
}

#[tokio::test]
async fn async_update_changes_the_record_plan_when_done_and_merges_parameters() {
    let fake = a9s_fake(
        DataServiceKind::Postgresql,
        Mode::Async {
            duration: Duration::from_millis(50),
            retry_after: None,
        },
    )
    .await;
    let broker = fake.client().unwrap();
    let opts = CallOptions::new().asynchronous();
    let req = ProvisionRequest::new("fake-db-id", "small-id")
        .guids("org-1", "space-1")
        .parameter("a", 1)
        .parameter("b", 2);
    broker.osb().provision("i-u", &req, &opts).await.unwrap();
    let wait_done = || async {
        for _ in 0..500 {
            let lo = broker
                .last_operation("i-u", "fake-db-id", "small-id", None)
                .await
                .unwrap();
            if lo.last_operation.state != OperationState::InProgress {
                return lo.last_operation.state;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        OperationState::InProgress
    };
    assert_eq!(wait_done().await, OperationState::Succeeded);
    let update = klutch_osb::UpdateRequest::new("fake-db-id")
        .plan("large-id")
        .parameter("b", serde_json::Value::Null)
        .parameter("c", 3);
    broker.osb().update("i-u", &update, &opts).await.unwrap();
    // While the update runs the record keeps the old plan; afterwards it has the new one.
    assert_eq!(
        broker.instance("i-u").await.unwrap().plan_guid.as_deref(),
        Some("small-id")
    );
    assert_eq!(wait_done().await, OperationState::Succeeded);
    assert_eq!(
        broker.instance("i-u").await.unwrap().plan_guid.as_deref(),
        Some("large-id")
    );
    assert_eq!(
        broker.fetch_instance("i-u").await.unwrap().parameters,
        Some(serde_json::json!({"a": 1, "c": 3})),
        "update parameters are merged; null removes a key"
    );
}
