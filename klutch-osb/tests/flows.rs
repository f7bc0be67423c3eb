//! Flow tests against the in-process fake broker (feature `testing`), including every fault
//! it can inject.

use std::time::Duration;

use klutch_osb::testing::{FakeBroker, FakeBrokerConfig, FaultAction, Mode, Route};
use klutch_osb::{
    ApiVersion, BindOutcome, BindRequest, CallOptions, Client, Context, Deadline, DeleteOutcome,
    Error, ErrorKind, OmOperation, OmPolicy, OmResult, OperationKind, OrphanMitigation, PollConfig,
    PollOutcome, PollTarget, Poller, ProvisionOutcome, ProvisionRequest, UpdateOutcome,
    UpdateRequest, orphan_mitigation,
};

const SVC: &str = "fake-db-id";
const SMALL: &str = "small-id";
const LARGE: &str = "large-id";

fn fast() -> PollConfig {
    PollConfig {
        min_interval: Duration::ZERO,
        initial_interval: Duration::from_millis(20),
        jitter: 0.0,
        ..PollConfig::default()
    }
}

fn async_mode(ms: u64) -> FakeBrokerConfig {
    FakeBrokerConfig {
        mode: Mode::Async {
            duration: Duration::from_millis(ms),
            retry_after: None,
        },
        ..FakeBrokerConfig::default()
    }
}

fn prov(plan: &str) -> ProvisionRequest {
    ProvisionRequest::new(SVC, plan).context(Context::kubernetes("team-a", "cluster-1"))
}

async fn broker(cfg: FakeBrokerConfig) -> (FakeBroker, Client) {
    let b = FakeBroker::start(cfg).await.expect("fake broker starts");
    let c = b.client_builder().build().expect("client builds");
    (b, c)
}

#[tokio::test]
async fn synchronous_lifecycle() {
    let (b, c) = broker(FakeBrokerConfig::default()).await;
    let catalog = c.catalog().await.unwrap().outcome;
    let (svc, plan) = catalog.plan_by_name("fake-db", "small").unwrap();
    assert!(catalog.validate().is_empty(), "{:?}", catalog.validate());
    let opts = CallOptions::new().catalog_entry(svc, plan);
    let id = "inst/1+2 &=%"; // exercises strict percent-encoding end to end
    let r = c.provision(id, &prov(SMALL), &opts).await.unwrap();
    assert!(matches!(
        r.outcome,
        ProvisionOutcome::Created {
            dashboard_url: Some(_),
            ..
        }
    ));
    assert!(
        b.has_instance(id),
        "the broker decoded the id back to the original"
    );
    // Identical re-provision: 200 AlreadyExists; different: 409.
    assert!(matches!(
        c.provision(id, &prov(SMALL), &opts).await.unwrap().outcome,
        ProvisionOutcome::AlreadyExists { .. }
    ));
    let e = c
        .provision(id, &prov(LARGE), &CallOptions::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::Conflict));
    let inst = c
        .fetch_instance(id, Some(SVC), Some(SMALL), &opts)
        .await
        .unwrap()
        .outcome;
    assert_eq!(inst.plan_id.as_deref(), Some(SMALL));
    let bound = c
        .bind(id, "b1", &BindRequest::new(SVC, SMALL), &opts)
        .await
        .unwrap()
        .outcome;
    let BindOutcome::Created(binding) = bound else {
        panic!("created expected")
    };
    assert_eq!(binding.credentials.unwrap().expose()["username"], "user-b1");
    assert_eq!(binding.endpoints[0].ports, ["5432"]);
    let fetched = c
        .fetch_binding(id, "b1", None, None, &opts)
        .await
        .unwrap()
        .outcome;
    assert!(fetched.credentials.is_some());
    let upd = c
        .update(id, &UpdateRequest::new(SVC).plan(LARGE), &opts)
        .await
        .unwrap()
        .outcome;
    assert!(matches!(upd, UpdateOutcome::Updated { .. }));
    assert_eq!(
        c.unbind(id, "b1", SVC, LARGE, &opts).await.unwrap().outcome,
        DeleteOutcome::Deleted
    );
    assert_eq!(
        c.unbind(id, "b1", SVC, LARGE, &opts).await.unwrap().outcome,
        DeleteOutcome::Gone
    );
    assert_eq!(
        c.deprovision(id, SVC, LARGE, &opts).await.unwrap().outcome,
        DeleteOutcome::Deleted
    );
    assert_eq!(
        c.deprovision(id, SVC, LARGE, &opts).await.unwrap().outcome,
        DeleteOutcome::Gone
    );
    assert!(!b.has_instance(id));
    let e = c.fetch_instance(id, None, None, &opts).await.unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::NotFound));
}

#[tokio::test]
async fn asynchronous_lifecycle_with_polling() {
    let (b, c) = broker(async_mode(150)).await;
    let p = Poller::with_config(c.clone(), fast());
    let a = CallOptions::new().asynchronous();
    let ProvisionOutcome::InProgress(op) =
        c.provision("i1", &prov(SMALL), &a).await.unwrap().outcome
    else {
        panic!("202 expected")
    };
    assert!(op.operation.is_some() && op.dashboard_url.is_some());
    // Re-sending the same PUT gives 202 with the same operation.
    let again = c.provision("i1", &prov(SMALL), &a).await.unwrap().outcome;
    assert_eq!(again.in_progress().unwrap().operation, op.operation);
    // Fetch during a pending create is 404, not "gone".
    assert_eq!(
        c.fetch_instance("i1", None, None, &CallOptions::new())
            .await
            .unwrap_err()
            .kind(),
        Some(ErrorKind::NotFound)
    );
    let t = PollTarget::instance(OperationKind::Provision, "i1", SVC, SMALL, op.operation);
    let done = p.wait(&t, Deadline::none(), None).await.unwrap();
    assert!(matches!(done.outcome, PollOutcome::Succeeded { .. }));
    assert!(done.polls >= 2);
    c.fetch_instance("i1", None, None, &CallOptions::new())
        .await
        .unwrap();

    // Async bind, then fetch the credentials.
    let BindOutcome::InProgress { operation } = c
        .bind("i1", "b1", &BindRequest::new(SVC, SMALL), &a)
        .await
        .unwrap()
        .outcome
    else {
        panic!("202 expected")
    };
    let t = PollTarget::binding(OperationKind::Bind, "i1", "b1", SVC, SMALL, operation);
    assert!(
        p.wait(&t, Deadline::none(), None)
            .await
            .unwrap()
            .outcome
            .is_success()
    );
    let creds = c
        .fetch_binding("i1", "b1", None, None, &CallOptions::new())
        .await
        .unwrap()
        .outcome
        .credentials
        .unwrap();
    assert_eq!(creds.expose()["password"], "fake-password");

    // Async plan update; poll with the previous plan id.
    let UpdateOutcome::InProgress(op) = c
        .update("i1", &UpdateRequest::new(SVC).plan(LARGE), &a)
        .await
        .unwrap()
        .outcome
    else {
        panic!("202 expected")
    };
    let e = c
        .fetch_instance("i1", None, None, &CallOptions::new())
        .await
        .unwrap_err();
    assert!(e.is_concurrency(), "{e}");
    let t = PollTarget::instance(OperationKind::Update, "i1", SVC, SMALL, op.operation);
    assert!(
        p.wait(&t, Deadline::none(), None)
            .await
            .unwrap()
            .outcome
            .is_success()
    );
    assert_eq!(
        c.fetch_instance("i1", None, None, &CallOptions::new())
            .await
            .unwrap()
            .outcome
            .plan_id
            .as_deref(),
        Some(LARGE)
    );

    // Async unbind and deprovision end with 410 from last_operation = Gone.
    let DeleteOutcome::InProgress { operation } =
        c.unbind("i1", "b1", SVC, LARGE, &a).await.unwrap().outcome
    else {
        panic!("202 expected")
    };
    let t = PollTarget::binding(OperationKind::Unbind, "i1", "b1", SVC, LARGE, operation);
    assert_eq!(
        p.wait(&t, Deadline::none(), None).await.unwrap().outcome,
        PollOutcome::Gone
    );
    let DeleteOutcome::InProgress { operation } =
        c.deprovision("i1", SVC, LARGE, &a).await.unwrap().outcome
    else {
        panic!("202 expected")
    };
    let t = PollTarget::instance(OperationKind::Deprovision, "i1", SVC, LARGE, operation);
    assert_eq!(
        p.wait(&t, Deadline::none(), None).await.unwrap().outcome,
        PollOutcome::Gone
    );
    assert!(!b.has_instance("i1"));
    // Polls never carry the originating identity; user calls do when given.
    assert!(
        b.requests()
            .iter()
            .all(|r| r.header("x-broker-api-originating-identity").is_none())
    );
}

#[tokio::test]
async fn retry_after_gives_the_minimum_number_of_polls() {
    let cfg = FakeBrokerConfig {
        mode: Mode::Async {
            duration: Duration::from_millis(1500),
            retry_after: Some(1),
        },
        ..FakeBrokerConfig::default()
    };
    let (b, c) = broker(cfg).await;
    let op = c
        .provision("i", &prov(SMALL), &CallOptions::new().asynchronous())
        .await
        .unwrap()
        .outcome;
    let t = PollTarget::instance(
        OperationKind::Provision,
        "i",
        SVC,
        SMALL,
        op.in_progress().unwrap().operation.clone(),
    );
    let r = Poller::with_config(c, fast())
        .wait(&t, Deadline::none(), None)
        .await
        .unwrap();
    assert!(r.outcome.is_success());
    // t=0 in progress, t=1 s in progress, t=2 s done.
    assert_eq!(r.polls, 3);
    assert_eq!(b.count(Route::InstanceLastOperation), 3);
}

#[tokio::test]
async fn async_required_and_automatic_retry() {
    let (b, c) = broker(async_mode(10)).await;
    let e = c
        .provision("i", &prov(SMALL), &CallOptions::new())
        .await
        .unwrap_err();
    assert!(e.is_async_required());
    let r = c
        .provision(
            "i",
            &prov(SMALL),
            &CallOptions::new().retry_async_required(),
        )
        .await
        .unwrap();
    assert!(r.outcome.in_progress().is_some());
    assert_eq!(
        b.count(Route::Provision),
        3,
        "sync attempt, then sync + async retry"
    );
    let om = orphan_mitigation(
        OmOperation::Provision,
        &OmResult::from_error(&e),
        OmPolicy::default(),
    );
    assert_eq!(om, OrphanMitigation::None, "4xx never triggers OM");
}

#[tokio::test]
async fn fault_5xx_triggers_orphan_mitigation() {
    let (b, c) = broker(FakeBrokerConfig::default()).await;
    b.inject(
        Some(Route::Provision),
        FaultAction::Respond {
            status: 503,
            body: "".into(),
        },
        Some(1),
    );
    let e = c
        .provision("i", &prov(SMALL), &CallOptions::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::ServerError));
    let om = orphan_mitigation(
        OmOperation::Provision,
        &OmResult::from_error(&e),
        OmPolicy::default(),
    );
    assert_eq!(om, OrphanMitigation::Deprovision);
    // OM: deprovision (no originating identity) succeeds with 410 because nothing was created.
    assert_eq!(
        c.deprovision("i", SVC, SMALL, &CallOptions::new())
            .await
            .unwrap()
            .outcome,
        DeleteOutcome::Gone
    );
    // Same for bind.
    c.provision("i", &prov(SMALL), &CallOptions::new())
        .await
        .unwrap();
    b.inject(
        Some(Route::Bind),
        FaultAction::Respond {
            status: 500,
            body: "{\"description\":\"boom\"}".into(),
        },
        Some(1),
    );
    let e = c
        .bind("i", "b", &BindRequest::new(SVC, SMALL), &CallOptions::new())
        .await
        .unwrap_err();
    assert_eq!(e.broker().unwrap().description.as_deref(), Some("boom"));
    assert_eq!(
        orphan_mitigation(
            OmOperation::Bind,
            &OmResult::from_error(&e),
            OmPolicy::default()
        ),
        OrphanMitigation::Unbind
    );
}

#[tokio::test]
async fn fault_slow_response_times_out() {
    let (b, c) = broker(FakeBrokerConfig::default()).await;
    b.inject(
        Some(Route::Provision),
        FaultAction::Delay(Duration::from_millis(800)),
        Some(1),
    );
    let e = c
        .provision(
            "i",
            &prov(SMALL),
            &CallOptions::new().timeout(Duration::from_millis(100)),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    assert_eq!(
        orphan_mitigation(
            OmOperation::Provision,
            &OmResult::from_error(&e),
            OmPolicy::default()
        ),
        OrphanMitigation::Deprovision
    );
    // The slow request was still processed by the broker: exactly why OM exists.
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(b.has_instance("i"));
    assert_eq!(
        c.deprovision("i", SVC, SMALL, &CallOptions::new())
            .await
            .unwrap()
            .outcome,
        DeleteOutcome::Deleted
    );
    // A slow but sufficient timeout succeeds.
    b.inject(
        None,
        FaultAction::Delay(Duration::from_millis(100)),
        Some(1),
    );
    c.catalog_with(&CallOptions::new().timeout(Duration::from_secs(5)))
        .await
        .unwrap();
}

#[tokio::test]
async fn fault_409_410_422() {
    let (b, c) = broker(FakeBrokerConfig::default()).await;
    b.inject(
        Some(Route::Provision),
        FaultAction::Respond {
            status: 409,
            body: "{}".into(),
        },
        Some(1),
    );
    assert_eq!(
        c.provision("i", &prov(SMALL), &CallOptions::new())
            .await
            .unwrap_err()
            .kind(),
        Some(ErrorKind::Conflict)
    );
    b.inject(
        Some(Route::Provision),
        FaultAction::Respond {
            status: 422,
            body: r#"{"error":"ConcurrencyError"}"#.into(),
        },
        Some(1),
    );
    let e = c
        .provision("i", &prov(SMALL), &CallOptions::new())
        .await
        .unwrap_err();
    assert!(e.is_concurrency());
    assert_eq!(
        orphan_mitigation(
            OmOperation::Provision,
            &OmResult::from_error(&e),
            OmPolicy::default()
        ),
        OrphanMitigation::None
    );
    b.inject(
        Some(Route::Update),
        FaultAction::Respond {
            status: 422,
            body: r#"{"error":"MaintenanceInfoConflict","description":"new version"}"#.into(),
        },
        Some(1),
    );
    let e = c
        .update(
            "i",
            &UpdateRequest::new(SVC).parameter("a", 1),
            &CallOptions::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::MaintenanceInfoConflict));
    b.inject(
        Some(Route::Bind),
        FaultAction::Respond {
            status: 422,
            body: r#"{"error":"RequiresApp"}"#.into(),
        },
        Some(1),
    );
    assert_eq!(
        c.bind("i", "b", &BindRequest::new(SVC, SMALL), &CallOptions::new())
            .await
            .unwrap_err()
            .kind(),
        Some(ErrorKind::RequiresApp)
    );
    // 410 with an empty body on unbind and deprovision is Gone.
    b.inject(
        Some(Route::Unbind),
        FaultAction::Respond {
            status: 410,
            body: "".into(),
        },
        Some(1),
    );
    assert_eq!(
        c.unbind("i", "b", SVC, SMALL, &CallOptions::new())
            .await
            .unwrap()
            .outcome,
        DeleteOutcome::Gone
    );
    // 410 during a provision poll is not a failure: keep polling.
    c.provision("i", &prov(SMALL), &CallOptions::new())
        .await
        .unwrap();
    b.inject(
        Some(Route::InstanceLastOperation),
        FaultAction::Respond {
            status: 410,
            body: "{}".into(),
        },
        Some(2),
    );
    let t = PollTarget::instance(OperationKind::Provision, "i", SVC, SMALL, None);
    let r = Poller::with_config(c.clone(), fast())
        .wait(&t, Deadline::none(), None)
        .await
        .unwrap();
    assert!(r.outcome.is_success());
    assert_eq!(r.polls, 3);
}

#[tokio::test]
async fn fault_malformed_json() {
    let (b, c) = broker(FakeBrokerConfig::default()).await;
    b.inject(
        Some(Route::Provision),
        FaultAction::MalformedJson { status: 201 },
        Some(1),
    );
    let e = c
        .provision("i", &prov(SMALL), &CallOptions::new())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Decode { status: 201, .. }), "{e}");
    assert_eq!(
        orphan_mitigation(
            OmOperation::Provision,
            &OmResult::from_error(&e),
            OmPolicy::default()
        ),
        OrphanMitigation::Deprovision
    );
    b.inject(
        Some(Route::Catalog),
        FaultAction::MalformedJson { status: 200 },
        Some(1),
    );
    assert!(matches!(
        c.catalog().await.unwrap_err(),
        Error::Decode { status: 200, .. }
    ));
    b.inject(
        Some(Route::Bind),
        FaultAction::MalformedJson { status: 202 },
        Some(1),
    );
    let e = c
        .bind(
            "i",
            "b",
            &BindRequest::new(SVC, SMALL),
            &CallOptions::new().asynchronous(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        orphan_mitigation(
            OmOperation::Bind,
            &OmResult::from_error(&e),
            OmPolicy::default()
        ),
        OrphanMitigation::Unbind
    );
    // Malformed and 5xx last_operation answers are transient.
    c.provision("i2", &prov(SMALL), &CallOptions::new())
        .await
        .unwrap();
    b.inject(
        Some(Route::InstanceLastOperation),
        FaultAction::MalformedJson { status: 200 },
        Some(1),
    );
    b.inject(
        Some(Route::InstanceLastOperation),
        FaultAction::Respond {
            status: 502,
            body: "bad gateway".into(),
        },
        Some(1),
    );
    b.inject(
        Some(Route::InstanceLastOperation),
        FaultAction::Respond {
            status: 200,
            body: "null".into(),
        },
        Some(1),
    );
    let t = PollTarget::instance(OperationKind::Provision, "i2", SVC, SMALL, None);
    let r = Poller::with_config(c, fast())
        .wait(&t, Deadline::none(), None)
        .await
        .unwrap();
    assert!(r.outcome.is_success());
    assert_eq!(r.polls, 4);
}

#[tokio::test]
async fn failed_async_operation_and_deadline_trigger_orphan_mitigation() {
    let (b, c) = broker(async_mode(50)).await;
    b.set_fail_async_operations(true);
    let a = CallOptions::new().asynchronous();
    let op = c.provision("i", &prov(SMALL), &a).await.unwrap().outcome;
    let t = PollTarget::instance(
        OperationKind::Provision,
        "i",
        SVC,
        SMALL,
        op.in_progress().unwrap().operation.clone(),
    );
    let p = Poller::with_config(c.clone(), fast());
    let r = p.wait(&t, Deadline::none(), None).await.unwrap();
    assert!(matches!(r.outcome, PollOutcome::Failed { .. }));
    let om = orphan_mitigation(
        OmOperation::Provision,
        &OmResult::from_poll(&r.outcome).unwrap(),
        OmPolicy::default(),
    );
    assert_eq!(om, OrphanMitigation::Deprovision);
    b.set_fail_async_operations(false);
    let d = c.deprovision("i", SVC, SMALL, &a).await.unwrap().outcome;
    assert!(matches!(d, DeleteOutcome::InProgress { .. }));

    // A never-finishing operation hits the plan's deadline.
    b.set_mode(Mode::Async {
        duration: Duration::from_secs(3600),
        retry_after: None,
    });
    let op = c.provision("slow", &prov(LARGE), &a).await.unwrap().outcome;
    let t = PollTarget::instance(
        OperationKind::Provision,
        "slow",
        SVC,
        LARGE,
        op.in_progress().unwrap().operation.clone(),
    );
    let r = p
        .wait(
            &t,
            Deadline::from_now(None, Some(Duration::from_millis(300))),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.outcome, PollOutcome::TimedOut);
    assert_eq!(
        orphan_mitigation(
            OmOperation::Provision,
            &OmResult::from_poll(&r.outcome).unwrap(),
            OmPolicy::default()
        ),
        OrphanMitigation::Deprovision
    );
}

#[tokio::test]
async fn auth_and_version_header_are_enforced() {
    let (b, _) = broker(FakeBrokerConfig::default()).await;
    let wrong = Client::builder(b.url())
        .basic_auth("admin", "wrong")
        .build()
        .unwrap();
    assert_eq!(
        wrong.catalog().await.unwrap_err().kind(),
        Some(ErrorKind::Unauthorized)
    );
    let old = b
        .client_builder()
        .api_version(ApiVersion::V2_11)
        .build()
        .unwrap();
    let e = old.catalog().await.unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::UnsupportedApiVersion));
    let pinned = b
        .client_builder()
        .api_version(ApiVersion::V2_11)
        .version_header("2.13")
        .build()
        .unwrap();
    pinned.catalog().await.unwrap();
    // The broker never saw the password in its log.
    assert!(
        b.requests()
            .iter()
            .all(|r| r.header("authorization") == Some("[REDACTED]"))
    );
}

#[tokio::test]
async fn polling_mode_helpers() {
    use klutch_osb::Completion;
    let (b, c) = broker(async_mode(50)).await;
    let p = Poller::with_config(c.clone(), fast());
    let d = || Deadline::from_now(Some(Duration::from_secs(30)), None);
    let o = CallOptions::new();
    let r = p
        .provision_and_wait("i", &prov(SMALL), &o, d(), None)
        .await
        .unwrap();
    // A finished asynchronous provision says finished, with the 202's dashboard URL.
    assert!(
        matches!(
            r,
            Completion::Done(ProvisionOutcome::Created {
                dashboard_url: Some(_),
                ..
            })
        ),
        "{r:?}"
    );
    // A plan change, polled with the previous plan, says finished.
    let change = UpdateRequest::new(SVC)
        .plan(LARGE)
        .previous_values(klutch_osb::PreviousValues {
            plan_id: Some(SMALL.into()),
            ..Default::default()
        });
    let r = p
        .update_and_wait("i", &change, &o, d(), None)
        .await
        .unwrap();
    assert!(
        matches!(r, Completion::Done(UpdateOutcome::Updated { .. })),
        "{r:?}"
    );
    let polls: Vec<_> = b
        .requests()
        .into_iter()
        .filter(|r| r.route == Route::InstanceLastOperation)
        .collect();
    assert_eq!(
        polls.last().and_then(|r| r.query_param("plan_id")),
        Some(SMALL)
    );
    let Completion::Done(binding) = p
        .bind_and_wait("i", "b", &BindRequest::new(SVC, SMALL), &o, d(), None)
        .await
        .unwrap()
    else {
        panic!("bind should finish")
    };
    assert_eq!(binding.credentials.unwrap().expose()["username"], "user-b");
    assert_eq!(
        p.unbind_and_wait("i", "b", SVC, SMALL, &o, d(), None)
            .await
            .unwrap(),
        Completion::Done(DeleteOutcome::Gone)
    );
    assert_eq!(
        p.deprovision_and_wait("i", SVC, SMALL, &o, d(), None)
            .await
            .unwrap(),
        Completion::Done(DeleteOutcome::Gone)
    );
    assert_eq!(
        p.deprovision_and_wait("i", SVC, SMALL, &o, d(), None)
            .await
            .unwrap(),
        Completion::Done(DeleteOutcome::Gone)
    );
    b.set_fail_async_operations(true);
    let r = p
        .provision_and_wait("j", &prov(SMALL), &o, d(), None)
        .await
        .unwrap();
    assert!(
        matches!(r, Completion::Unsuccessful(PollOutcome::Failed { .. })),
        "{r:?}"
    );
    // Synchronous brokers finish at once.
    let (_b2, c2) = broker(FakeBrokerConfig::default()).await;
    let p2 = Poller::with_config(c2, fast());
    let r = p2
        .provision_and_wait("k", &prov(SMALL), &o, d(), None)
        .await
        .unwrap();
    assert!(matches!(
        r,
        Completion::Done(ProvisionOutcome::Created { .. })
    ));
    let r = p2
        .bind_and_wait("k", "b", &BindRequest::new(SVC, SMALL), &o, d(), None)
        .await
        .unwrap();
    assert!(matches!(r, Completion::Done(ref b) if b.credentials.is_some()));
}
