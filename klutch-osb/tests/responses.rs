//! Every response mapping of spec 3.2 and 7.4, against wiremock.

mod common;

use std::time::{Duration, Instant};

use klutch_osb::{
    ApiVersion, BindOutcome, BindRequest, CallOptions, Client, Deadline, DeleteOutcome, Error,
    ErrorCode, ErrorKind, Gate, LastOperationQuery, OperationKey, OperationKind, PollConfig,
    PollOutcome, PollTarget, Poller, ProtocolViolation, ProvisionOutcome, ProvisionRequest,
    Strictness, UpdateOutcome, UpdateRequest,
};
use wiremock::matchers::{any, method, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use common::{client, last, server};

fn test_catalog() -> klutch_osb::Catalog {
    serde_json::from_str(
        r#"{"services":[{"id":"fake-db-id","name":"fake-db","description":"d","bindable":true,
            "instances_retrievable":true,"bindings_retrievable":true,"plan_updateable":true,
            "plans":[{"id":"small-id","name":"small","description":"s"},
                     {"id":"large-id","name":"large","description":"l","binding_rotatable":true}]}]}"#,
    )
    .unwrap()
}

fn prov() -> ProvisionRequest {
    ProvisionRequest::new("s", "p").guids("o", "sp")
}

async fn provision(status: u16, body: &str, accepts: bool) -> klutch_osb::Result<ProvisionOutcome> {
    let s = server(status, body).await;
    let opts = if accepts {
        CallOptions::new().asynchronous()
    } else {
        CallOptions::new()
    };
    client(&s, ApiVersion::V2_17)
        .provision("i", &prov(), &opts)
        .await
        .map(|r| r.outcome)
}

fn kind(r: &klutch_osb::Result<impl std::fmt::Debug>) -> Option<ErrorKind> {
    r.as_ref().err().and_then(Error::kind)
}

#[tokio::test]
async fn provision_statuses() {
    assert_eq!(
        provision(201, r#"{"dashboard_url":"http://d"}"#, false)
            .await
            .unwrap(),
        ProvisionOutcome::Created {
            dashboard_url: Some("http://d".into()),
            metadata: None
        }
    );
    assert!(matches!(
        provision(200, "{}", false).await.unwrap(),
        ProvisionOutcome::AlreadyExists { .. }
    ));
    assert!(matches!(
        provision(200, "{}", true).await.unwrap(),
        ProvisionOutcome::AlreadyExists { .. }
    ));
    assert!(matches!(
        provision(201, "", false).await.unwrap(),
        ProvisionOutcome::Created {
            dashboard_url: None,
            ..
        }
    ));
    assert!(matches!(
        provision(201, "null", false).await.unwrap(),
        ProvisionOutcome::Created { .. }
    ));
    // 202 with and without operation; `null` and "" mean no key; metadata is kept.
    let ip = provision(
        202,
        r#"{"operation":"op 1","dashboard_url":"http://d","metadata":{"labels":{"a":"b"}}}"#,
        true,
    )
    .await
    .unwrap();
    let op = ip.in_progress().unwrap();
    assert_eq!(op.operation, Some(OperationKey("op 1".into())));
    assert_eq!(
        op.metadata.as_ref().unwrap().labels.as_ref().unwrap()["a"],
        "b"
    );
    for body in [
        r#"{"dashboard_url":"http://d"}"#,
        r#"{"async":true}"#,
        r#"{"operation":null}"#,
        r#"{"operation":""}"#,
        "",
    ] {
        let o = provision(202, body, true).await.unwrap();
        assert_eq!(o.in_progress().unwrap().operation, None, "{body}");
    }
    // Errors by status and code.
    assert_eq!(
        kind(&provision(400, r#"{"description":"bad"}"#, false).await),
        Some(ErrorKind::BadRequest)
    );
    assert_eq!(
        kind(&provision(401, "", false).await),
        Some(ErrorKind::Unauthorized)
    );
    assert_eq!(
        kind(&provision(409, "{}", false).await),
        Some(ErrorKind::Conflict)
    );
    assert_eq!(
        kind(&provision(409, r#"{"error":"ConcurrencyError"}"#, false).await),
        Some(ErrorKind::Concurrency)
    );
    assert_eq!(
        kind(&provision(412, "", false).await),
        Some(ErrorKind::UnsupportedApiVersion)
    );
    let e = provision(422, r#"{"error":"AsyncRequired"}"#, false)
        .await
        .unwrap_err();
    assert!(e.is_async_required());
    assert_eq!(e.code(), Some(&ErrorCode::AsyncRequired));
    assert_eq!(
        kind(&provision(422, r#"{"error":"ConcurrencyError"}"#, false).await),
        Some(ErrorKind::Concurrency)
    );
    assert_eq!(
        kind(
            &provision(
                422,
                r#"{"error":"MaintenanceInfoConflict","description":"d"}"#,
                false
            )
            .await
        ),
        Some(ErrorKind::MaintenanceInfoConflict)
    );
    // osb-checker's 422 with a non-CamelCase error is a generic rejection, not AsyncRequired.
    let e = provision(422, r#"{"error":"Unprocessable Entity"}"#, false)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::Unprocessable));
    assert_eq!(
        e.code(),
        Some(&ErrorCode::Other("Unprocessable Entity".into()))
    );
    let e = provision(500, "<html>oops</html>", false)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::ServerError));
    assert_eq!(e.broker().unwrap().body, "<html>oops</html>");
    assert_eq!(
        kind(&provision(204, "", false).await),
        Some(ErrorKind::Unexpected)
    );
    // Malformed 2xx.
    for (st, body) in [(201, "{"), (202, "[1]"), (200, r#"{"dashboard_url": 5}"#)] {
        let e = provision(st, body, true).await.unwrap_err();
        assert!(
            matches!(e, Error::Decode { status, .. } if status == st),
            "{e}"
        );
    }
}

#[tokio::test]
async fn unsolicited_202_is_strict_or_lenient() {
    let e = provision(202, r#"{"operation":"x"}"#, false)
        .await
        .unwrap_err();
    assert!(matches!(
        e,
        Error::Protocol {
            status: 202,
            violation: ProtocolViolation::UnsolicitedAsync
        }
    ));
    let s = server(202, r#"{"operation":"x"}"#).await;
    let lenient = Client::builder(s.uri())
        .strictness(Strictness::Lenient)
        .build()
        .unwrap();
    let r = lenient
        .provision("i", &prov(), &CallOptions::new())
        .await
        .unwrap();
    assert!(r.outcome.in_progress().is_some());
    assert_eq!(r.violations, vec![ProtocolViolation::UnsolicitedAsync]);
}

#[tokio::test]
async fn broker_error_fields_are_surfaced() {
    let s = MockServer::start().await;
    Mock::given(any())
        .respond_with(
            ResponseTemplate::new(422)
                .insert_header("X-Broker-API-Request-Identity", "echo-1")
                .set_body_string(r#"{"error":"Quota","description":"too many","instance_usable":false,"update_repeatable":false,"x":1}"#),
        )
        .mount(&s)
        .await;
    let e = client(&s, ApiVersion::V2_17)
        .update(
            "i",
            &UpdateRequest::new("s").parameter("a", 1),
            &CallOptions::new(),
        )
        .await
        .unwrap_err();
    let b = e.broker().unwrap();
    assert_eq!(b.code, Some(ErrorCode::Other("Quota".into())));
    assert_eq!(b.description.as_deref(), Some("too many"));
    assert_eq!(
        (b.instance_usable, b.update_repeatable),
        (Some(false), Some(false))
    );
    assert_eq!(b.request_identity.as_deref(), Some("echo-1"));
    assert!(format!("{e}").contains("too many"));
}

#[tokio::test]
async fn huge_error_bodies_are_capped() {
    let big = "x".repeat(200_000);
    let e = provision(500, &big, false).await.unwrap_err();
    assert_eq!(
        e.broker().unwrap().body.len(),
        klutch_osb::error::MAX_ERROR_BODY
    );
    let e = provision(201, &format!("{{\"dashboard_url\": {big}"), false)
        .await
        .unwrap_err();
    let Error::Decode { excerpt, .. } = e else {
        panic!("decode error expected")
    };
    assert!(excerpt.len() <= klutch_osb::error::MAX_DECODE_EXCERPT);
}

#[tokio::test]
async fn async_required_retry_once() {
    let s = MockServer::start().await;
    Mock::given(query_param("accepts_incomplete", "true"))
        .respond_with(ResponseTemplate::new(202).set_body_string(r#"{"operation":"k"}"#))
        .mount(&s)
        .await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(422).set_body_string(r#"{"error":"AsyncRequired"}"#))
        .mount(&s)
        .await;
    let c = client(&s, ApiVersion::V2_17);
    assert!(
        c.provision("i", &prov(), &CallOptions::new())
            .await
            .unwrap_err()
            .is_async_required()
    );
    let r = c
        .provision("i", &prov(), &CallOptions::new().retry_async_required())
        .await
        .unwrap();
    assert_eq!(
        r.outcome.in_progress().unwrap().operation,
        Some(OperationKey("k".into()))
    );
    assert_eq!(s.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn update_statuses() {
    let run = |st: u16, body: &'static str, accepts: bool| async move {
        let s = server(st, body).await;
        let o = if accepts {
            CallOptions::new().asynchronous()
        } else {
            CallOptions::new()
        };
        client(&s, ApiVersion::V2_17)
            .update("i", &UpdateRequest::new("s").plan("p2"), &o)
            .await
            .map(|r| r.outcome)
    };
    assert_eq!(
        run(200, "{}", false).await.unwrap(),
        UpdateOutcome::Updated {
            dashboard_url: None,
            metadata: None
        }
    );
    assert_eq!(
        run(200, "", false).await.unwrap(),
        UpdateOutcome::Updated {
            dashboard_url: None,
            metadata: None
        }
    );
    assert!(matches!(
        run(200, r#"{"dashboard_url":"u"}"#, true).await.unwrap(),
        UpdateOutcome::Updated {
            dashboard_url: Some(_),
            ..
        }
    ));
    assert!(matches!(
        run(202, r#"{"operation":"o"}"#, true).await.unwrap(),
        UpdateOutcome::InProgress(_)
    ));
    assert_eq!(
        kind(&run(400, "", false).await),
        Some(ErrorKind::BadRequest)
    );
    assert_eq!(
        kind(&run(422, r#"{"error":"MaintenanceInfoConflict"}"#, false).await),
        Some(ErrorKind::MaintenanceInfoConflict)
    );
    assert_eq!(
        kind(&run(422, r#"{"error":"ConcurrencyError"}"#, false).await),
        Some(ErrorKind::Concurrency)
    );
    assert_eq!(
        kind(&run(201, "{}", false).await),
        Some(ErrorKind::Unexpected)
    );
}

#[tokio::test]
async fn delete_statuses() {
    for binding in [false, true] {
        let run = |st: u16, body: &'static str| async move {
            let s = server(st, body).await;
            let c = client(&s, ApiVersion::V2_17);
            let o = CallOptions::new().asynchronous();
            if binding {
                c.unbind("i", "b", "s", "p", &o).await
            } else {
                c.deprovision("i", "s", "p", &o).await
            }
            .map(|r| r.outcome)
        };
        for body in ["{}", "", "null", r#"{"async":false}"#, "not json"] {
            assert_eq!(
                run(200, body).await.unwrap(),
                DeleteOutcome::Deleted,
                "{body}"
            );
            assert_eq!(run(410, body).await.unwrap(), DeleteOutcome::Gone, "{body}");
        }
        assert_eq!(
            run(202, r#"{"operation":"d"}"#).await.unwrap(),
            DeleteOutcome::InProgress {
                operation: Some("d".into())
            }
        );
        assert_eq!(
            run(202, "{}").await.unwrap(),
            DeleteOutcome::InProgress { operation: None }
        );
        assert_eq!(kind(&run(400, "").await), Some(ErrorKind::BadRequest));
        assert_eq!(
            kind(&run(422, r#"{"error":"AsyncRequired"}"#).await),
            Some(ErrorKind::AsyncRequired)
        );
        assert_eq!(
            kind(&run(422, r#"{"error":"ConcurrencyError"}"#).await),
            Some(ErrorKind::Concurrency)
        );
        assert_eq!(kind(&run(500, "").await), Some(ErrorKind::ServerError));
        assert_eq!(kind(&run(204, "").await), Some(ErrorKind::Unexpected));
    }
}

#[tokio::test]
async fn bind_statuses() {
    let run = |st: u16, body: &'static str, strict: bool| async move {
        let s = server(st, body).await;
        let c = Client::builder(s.uri())
            .strictness(if strict {
                Strictness::Strict
            } else {
                Strictness::Lenient
            })
            .build()
            .unwrap();
        c.bind(
            "i",
            "b",
            &BindRequest::new("s", "p"),
            &CallOptions::new().asynchronous(),
        )
        .await
    };
    let r = run(201, r#"{"credentials":{"password":"hunter2","port":5432},"endpoints":[{"host":"h","ports":[5432,"1-2"]}],"metadata":{"expires_at":"2030-01-01T00:00:00Z","renew_before":"2029-12-01T00:00:00Z"},"volume_mounts":[{"driver":"d","container_dir":"/c","mode":"rw","device_type":"shared","device":{"volume_id":"v"}}]}"#, true)
        .await
        .unwrap();
    let BindOutcome::Created(b) = &r.outcome else {
        panic!("created expected")
    };
    assert_eq!(
        b.credentials.as_ref().unwrap().expose()["password"],
        "hunter2"
    );
    assert!(
        !format!("{:?}", r).contains("hunter2"),
        "credentials never in Debug"
    );
    assert_eq!(b.endpoints[0].ports, ["5432", "1-2"]);
    assert_eq!(
        b.metadata.as_ref().unwrap().renew_before.as_deref(),
        Some("2029-12-01T00:00:00Z")
    );
    assert_eq!(b.volume_mounts[0].device.volume_id, "v");
    assert!(matches!(
        run(200, r#"{"credentials":{}}"#, true)
            .await
            .unwrap()
            .outcome,
        BindOutcome::AlreadyExists(_)
    ));
    assert_eq!(
        run(202, r#"{"operation":"b"}"#, true)
            .await
            .unwrap()
            .outcome,
        BindOutcome::InProgress {
            operation: Some("b".into())
        }
    );
    // A 202 with credentials: strict error, lenient flag.
    let e = run(202, r#"{"credentials":{"p":"x"}}"#, true)
        .await
        .unwrap_err();
    assert!(matches!(
        e,
        Error::Protocol {
            violation: ProtocolViolation::CredentialsInAsyncBind,
            ..
        }
    ));
    let r = run(202, r#"{"credentials":{"p":"x"}}"#, false)
        .await
        .unwrap();
    assert_eq!(r.violations, [ProtocolViolation::CredentialsInAsyncBind]);
    assert_eq!(
        kind(&run(422, r#"{"error":"RequiresApp"}"#, true).await),
        Some(ErrorKind::RequiresApp)
    );
    assert_eq!(kind(&run(409, "{}", true).await), Some(ErrorKind::Conflict));
    assert!(matches!(
        run(201, r#"{"credentials":"secret"}"#, true)
            .await
            .unwrap_err(),
        Error::Decode { status: 201, .. }
    ));
}

#[tokio::test]
async fn bind_consistency_checks_need_the_catalog_entry() {
    let catalog = test_catalog();
    let (svc, plan) = catalog.plan_by_name("fake-db", "small").unwrap();
    let s = server(201, r#"{"credentials":{},"syslog_drain_url":"syslog://x"}"#).await;
    let c = client(&s, ApiVersion::V2_17);
    let req = BindRequest::new(&svc.id, &plan.id);
    assert!(c.bind("i", "b", &req, &CallOptions::new()).await.is_ok());
    let e = c
        .bind("i", "b", &req, &CallOptions::new().catalog_entry(svc, plan))
        .await
        .unwrap_err();
    assert!(matches!(
        e,
        Error::Protocol {
            violation: ProtocolViolation::UnexpectedSyslogDrain,
            ..
        }
    ));
}

#[tokio::test]
async fn catalog_gates() {
    let mut catalog = test_catalog();
    {
        let svc = &mut catalog.services[0];
        svc.bindable = false;
        svc.instances_retrievable = None;
        svc.bindings_retrievable = Some(false);
        svc.plan_updateable = None;
        svc.allow_context_updates = None;
    }
    let svc = &catalog.services[0];
    let small = &svc.plans[0];
    let large = &svc.plans[1];
    let s = server(200, "{}").await;
    let c = client(&s, ApiVersion::V2_17);
    let gated = |r: klutch_osb::Result<_>| match r {
        Err(Error::Gate(g)) => g,
        Err(e) => panic!("gate expected, got {e}"),
        Ok::<(), _>(()) => panic!("gate expected"),
    };
    let o = CallOptions::new().catalog_entry(svc, small);
    assert_eq!(
        gated(
            c.bind("i", "b", &BindRequest::new("s", "p"), &o)
                .await
                .map(|_| ())
        ),
        Gate::NotBindable
    );
    assert_eq!(
        gated(c.fetch_instance("i", None, None, &o).await.map(|_| ())),
        Gate::NotRetrievable
    );
    assert_eq!(
        gated(c.fetch_binding("i", "b", None, None, &o).await.map(|_| ())),
        Gate::NotRetrievable
    );
    assert_eq!(
        gated(
            c.update("i", &UpdateRequest::new("s").plan("large-id"), &o)
                .await
                .map(|_| ())
        ),
        Gate::PlanNotUpdateable
    );
    let ctx_only = UpdateRequest::new("s").context(klutch_osb::Context::kubernetes("n", "c"));
    assert_eq!(
        gated(c.update("i", &ctx_only, &o).await.map(|_| ())),
        Gate::ContextUpdatesNotAllowed
    );
    let rot = klutch_osb::RotateRequest {
        service_id: "s".into(),
        plan_id: "p".into(),
        predecessor_binding_id: "b".into(),
    };
    assert_eq!(
        gated(c.rotate_binding("i", "b2", &rot, &o).await.map(|_| ())),
        Gate::NotRotatable
    );
    assert!(
        s.received_requests().await.unwrap().is_empty(),
        "gates send nothing"
    );
    // A client given the catalog applies the same gates without a catalog entry.
    let given = Client::builder(s.uri())
        .catalog(catalog.clone())
        .build()
        .unwrap();
    let none = CallOptions::new();
    let (sid, pid) = (svc.id.as_str(), small.id.as_str());
    assert_eq!(
        gated(
            given
                .bind("i", "b", &BindRequest::new(sid, pid), &none)
                .await
                .map(|_| ())
        ),
        Gate::NotBindable
    );
    assert_eq!(
        gated(
            given
                .fetch_instance("i", Some(sid), None, &none)
                .await
                .map(|_| ())
        ),
        Gate::NotRetrievable
    );
    assert_eq!(
        gated(
            given
                .fetch_binding("i", "b", Some(sid), Some(pid), &none)
                .await
                .map(|_| ())
        ),
        Gate::NotRetrievable
    );
    let change = UpdateRequest::new(sid)
        .plan(large.id.as_str())
        .previous_values(klutch_osb::PreviousValues {
            plan_id: Some(pid.to_owned()),
            ..Default::default()
        });
    assert_eq!(
        gated(given.update("i", &change, &none).await.map(|_| ())),
        Gate::PlanNotUpdateable
    );
    let ctx_only = UpdateRequest::new(sid).context(klutch_osb::Context::kubernetes("n", "c"));
    assert_eq!(
        gated(given.update("i", &ctx_only, &none).await.map(|_| ())),
        Gate::ContextUpdatesNotAllowed
    );
    assert!(
        s.received_requests().await.unwrap().is_empty(),
        "gates send nothing"
    );
    // The gate's message appears once in the error chain.
    let e = given
        .bind("i", "b", &BindRequest::new(sid, pid), &none)
        .await
        .unwrap_err();
    let mut chain = vec![e.to_string()];
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        chain.push(s.to_string());
        src = s.source();
    }
    let text = chain.join(": ");
    assert_eq!(
        text.matches(&Gate::NotBindable.to_string()).count(),
        1,
        "{text}"
    );
    // Parameter-only updates are always allowed; overrides and rotatable plans pass.
    c.update("i", &UpdateRequest::new("s").parameter("a", 1), &o)
        .await
        .unwrap();
    c.fetch_instance("i", None, None, &o.clone().override_gates())
        .await
        .unwrap();
    c.rotate_binding(
        "i",
        "b2",
        &rot,
        &CallOptions::new().catalog_entry(svc, large),
    )
    .await
    .unwrap();
    // Plan-level values override the service (bindable) and plan_updateable inherits.
    let mut cat2 = catalog.clone();
    cat2.services[0].plans[0].bindable = Some(true);
    cat2.services[0].plan_updateable = Some(true);
    let (svc2, small2) = (&cat2.services[0], &cat2.services[0].plans[0]);
    let o2 = CallOptions::new().catalog_entry(svc2, small2);
    c.bind("i", "b", &BindRequest::new("s", "p"), &o2)
        .await
        .unwrap();
    c.update("i", &UpdateRequest::new("s").plan("large-id"), &o2)
        .await
        .unwrap();
}

#[tokio::test]
async fn fetch_and_catalog_mapping() {
    let s = server(200, r#"{"service_id":"s","plan_id":"p","parameters":{"a":1},"maintenance_info":{"version":"1.0.0"},"metadata":{"labels":{"l":"v"},"attributes":{"x":"y"}},"id":"a9s","context":{}}"#).await;
    let c = client(&s, ApiVersion::V2_17);
    let i = c
        .fetch_instance("i", None, None, &CallOptions::new())
        .await
        .unwrap()
        .outcome;
    assert_eq!(i.plan_id.as_deref(), Some("p"));
    assert_eq!(i.metadata.unwrap().attributes.unwrap()["x"], "y");
    assert!(
        i.extra.contains_key("id") && i.extra.contains_key("context"),
        "unknown fields kept"
    );
    let s = server(404, r#"{"error":"InstanceNotFound"}"#).await;
    let e = client(&s, ApiVersion::V2_17)
        .fetch_instance("i", None, None, &CallOptions::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::NotFound));
    let s = server(422, r#"{"error":"ConcurrencyError"}"#).await;
    assert!(
        client(&s, ApiVersion::V2_17)
            .fetch_instance("i", None, None, &CallOptions::new())
            .await
            .unwrap_err()
            .is_concurrency()
    );
    for (st, body) in [(200, "null"), (200, ""), (200, "[]"), (200, "{")] {
        let s = server(st, body).await;
        assert!(
            matches!(
                client(&s, ApiVersion::V2_17).catalog().await,
                Err(Error::Decode { .. })
            ),
            "{body}"
        );
    }
    let s = server(200, r#"{"services":null,"x-extension":true}"#).await;
    let cat = client(&s, ApiVersion::V2_17)
        .catalog()
        .await
        .unwrap()
        .outcome;
    assert!(cat.services.is_empty() && cat.extra.contains_key("x-extension"));
}

fn fast() -> PollConfig {
    PollConfig {
        min_interval: Duration::ZERO,
        initial_interval: Duration::from_millis(5),
        jitter: 0.0,
        ..PollConfig::default()
    }
}

#[tokio::test]
async fn poll_once_interpretation_table() {
    let cases: Vec<(OperationKind, u16, &str, PollOutcome)> = vec![
        (
            OperationKind::Provision,
            200,
            r#"{"state":"in progress","description":"d"}"#,
            PollOutcome::InProgress {
                description: Some("d".into()),
                retry_after: None,
            },
        ),
        (
            OperationKind::Provision,
            200,
            r#"{"state":"succeeded"}"#,
            PollOutcome::Succeeded { description: None },
        ),
        (
            OperationKind::Update,
            200,
            r#"{"state":"failed","instance_usable":false}"#,
            PollOutcome::Failed {
                description: None,
                instance_usable: false,
                update_repeatable: true,
            },
        ),
        (
            OperationKind::Deprovision,
            410,
            r#"{"state":"succeeded"}"#,
            PollOutcome::Gone,
        ),
        (OperationKind::Unbind, 410, "", PollOutcome::Gone),
        (OperationKind::Deprovision, 404, "", PollOutcome::NotFound),
        (OperationKind::Bind, 404, "", PollOutcome::NotFound),
    ];
    for (k, st, body, want) in cases {
        let s = server(st, body).await;
        let p = Poller::with_config(client(&s, ApiVersion::V2_17), fast());
        let t = if k.is_binding() {
            PollTarget::binding(k, "i", "b", "s", "p", None)
        } else {
            PollTarget::instance(k, "i", "s", "p", None)
        };
        assert_eq!(
            p.poll_once(&t, 0).await.unwrap().outcome,
            want,
            "{k:?} {st} {body}"
        );
    }
    // Invalid answers keep polling.
    for (k, st, body) in [
        (OperationKind::Provision, 200, "null"),
        (OperationKind::Provision, 200, ""),
        (OperationKind::Provision, 200, r#"{"state":"weird"}"#),
        (OperationKind::Provision, 410, ""),
        (OperationKind::Bind, 410, "{}"),
        (OperationKind::Update, 500, ""),
        (OperationKind::Update, 418, ""),
    ] {
        let s = server(st, body).await;
        let p = Poller::with_config(client(&s, ApiVersion::V2_17), fast());
        let t = PollTarget::instance(k, "i", "s", "p", None);
        assert!(
            matches!(
                p.poll_once(&t, 0).await.unwrap().outcome,
                PollOutcome::Invalid { .. }
            ),
            "{k:?} {st} {body}"
        );
    }
    for st in [400, 401, 412] {
        let s = server(st, "").await;
        let p = Poller::with_config(client(&s, ApiVersion::V2_17), fast());
        assert!(
            p.poll_once(
                &PollTarget::instance(OperationKind::Provision, "i", "s", "p", None),
                0
            )
            .await
            .is_err()
        );
    }
    // Binding polls are gated below 2.14.
    let s = server(200, "{}").await;
    let p = Poller::new(client(&s, ApiVersion::V2_13));
    let e = p
        .poll_once(
            &PollTarget::binding(OperationKind::Bind, "i", "b", "s", "p", None),
            0,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Gate(Gate::UnsupportedByVersion { .. })));
}

#[tokio::test]
async fn poll_transport_errors_continue_until_the_deadline() {
    // Nothing listens on this port: every poll is a connect error.
    let c = Client::builder("http://127.0.0.1:9").build().unwrap();
    let p = Poller::with_config(c, fast());
    let t = PollTarget::instance(OperationKind::Provision, "i", "s", "p", None);
    assert!(matches!(
        p.poll_once(&t, 0).await.unwrap().outcome,
        PollOutcome::Invalid { .. }
    ));
    let r = p
        .wait(
            &t,
            klutch_osb::Deadline::from_now(Some(Duration::from_millis(200)), None),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.outcome, PollOutcome::TimedOut);
    assert!(r.polls >= 2);
}

#[tokio::test]
async fn wait_honours_retry_after_and_stops_at_success() {
    let s = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Retry-After", "1")
                .set_body_string(r#"{"state":"in progress"}"#),
        )
        .up_to_n_times(2)
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"state":"succeeded"}"#))
        .mount(&s)
        .await;
    let p = Poller::with_config(client(&s, ApiVersion::V2_17), fast());
    let t = PollTarget::instance(OperationKind::Provision, "i", "s", "p", Some("op".into()));
    let start = Instant::now();
    let r = p
        .wait(&t, klutch_osb::Deadline::none(), None)
        .await
        .unwrap();
    assert_eq!(r.outcome, PollOutcome::Succeeded { description: None });
    assert_eq!(r.polls, 3);
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "two Retry-After: 1 waits"
    );
    let q = s.received_requests().await.unwrap()[0]
        .url
        .query()
        .unwrap()
        .to_owned();
    assert_eq!(q, "service_id=s&plan_id=p&operation=op");
    assert!(
        s.received_requests().await.unwrap()[0]
            .headers
            .get("x-broker-api-originating-identity")
            .is_none()
    );
}

#[tokio::test]
async fn wait_is_cancellable_and_deadline_aware() {
    let s = server(200, r#"{"state":"in progress"}"#).await;
    let p = Poller::with_config(
        client(&s, ApiVersion::V2_17),
        PollConfig {
            min_interval: Duration::from_secs(10),
            ..fast()
        },
    );
    let t = PollTarget::instance(OperationKind::Provision, "i", "s", "p", None);
    let token = klutch_osb::CancellationToken::new();
    let t2 = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        t2.cancel();
    });
    let start = Instant::now();
    assert!(matches!(
        p.wait(&t, klutch_osb::Deadline::none(), Some(&token)).await,
        Err(Error::Cancelled)
    ));
    assert!(start.elapsed() < Duration::from_secs(5));
    // Plan maximum_polling_duration bounds the wait even with a long Retry-After.
    let d = klutch_osb::Deadline::from_now(
        Some(Duration::from_secs(3600)),
        Some(Duration::from_millis(300)),
    );
    let r = p.wait(&t, d, None).await.unwrap();
    assert_eq!(r.outcome, PollOutcome::TimedOut);
    // A restarted process with an old start time times out without polling.
    let old = klutch_osb::Deadline {
        started_at: std::time::SystemTime::now() - Duration::from_secs(60),
        limit: Some(Duration::from_secs(1)),
        plan_max: None,
    };
    assert_eq!(
        p.wait(&t, old, None).await.unwrap(),
        klutch_osb::WaitResult {
            outcome: PollOutcome::TimedOut,
            polls: 0
        }
    );
}

#[tokio::test]
async fn delete_poll_404_maps_to_gone_unless_configured() {
    let s = server(404, "").await;
    let t = PollTarget::instance(OperationKind::Deprovision, "i", "s", "p", None);
    let p = Poller::with_config(client(&s, ApiVersion::V2_17), fast());
    assert_eq!(
        p.wait(&t, klutch_osb::Deadline::none(), None)
            .await
            .unwrap()
            .outcome,
        PollOutcome::Gone
    );
    let p = Poller::with_config(
        client(&s, ApiVersion::V2_17),
        PollConfig {
            not_found_after_delete_is_gone: false,
            ..fast()
        },
    );
    assert_eq!(
        p.wait(&t, klutch_osb::Deadline::none(), None)
            .await
            .unwrap()
            .outcome,
        PollOutcome::NotFound
    );
}

#[tokio::test]
async fn raw_last_operation_mapping() {
    let s = MockServer::start().await;
    Mock::given(any())
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Retry-After", "7")
                .set_body_string(r#"{"state":"in progress"}"#),
        )
        .mount(&s)
        .await;
    let r = client(&s, ApiVersion::V2_17)
        .binding_last_operation(
            "i",
            "b",
            &LastOperationQuery::default(),
            &CallOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(r.outcome.retry_after, Some(Duration::from_secs(7)));
}

#[tokio::test]
async fn timeouts_and_connect_errors_are_classified() {
    let s = MockServer::start().await;
    Mock::given(any())
        .respond_with(
            ResponseTemplate::new(200)
                .set_delay(Duration::from_secs(2))
                .set_body_string("{}"),
        )
        .mount(&s)
        .await;
    let c = client(&s, ApiVersion::V2_17);
    let e = c
        .catalog_with(&CallOptions::new().timeout(Duration::from_millis(100)))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    let e = Client::builder("http://127.0.0.1:9")
        .build()
        .unwrap()
        .catalog()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Connect { .. }), "{e:?}");
}

#[tokio::test]
async fn catalog_cache_revalidates_with_etag_and_last_modified() {
    use wiremock::matchers::header;
    let s = MockServer::start().await;
    Mock::given(header("if-none-match", "\"v1\""))
        .respond_with(ResponseTemplate::new(304))
        .mount(&s)
        .await;
    Mock::given(any())
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("ETag", "\"v1\"")
                .insert_header("Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT")
                .set_body_string(r#"{"services":[{"id":"s","name":"n","description":"d","bindable":true,"plans":[]}]}"#),
        )
        .mount(&s)
        .await;
    // TTL zero: every call revalidates; the 304 returns the cached catalog.
    let c = Client::builder(s.uri())
        .catalog_cache_ttl(Duration::ZERO)
        .build()
        .unwrap();
    assert_eq!(c.catalog().await.unwrap().outcome.services.len(), 1);
    let r = c.catalog().await.unwrap();
    assert_eq!(
        r.status.as_u16(),
        200,
        "the revalidation is the cache's business"
    );
    assert_eq!(r.outcome.services[0].id, "s");
    let reqs = s.received_requests().await.unwrap();
    assert!(reqs[0].headers.get("if-none-match").is_none());
    assert_eq!(reqs[1].headers.get("if-none-match").unwrap(), "\"v1\"");
    assert_eq!(
        reqs[1].headers.get("if-modified-since").unwrap(),
        "Sun, 06 Nov 1994 08:49:37 GMT"
    );
    // A long TTL serves from the cache without a request.
    let cached = Client::builder(s.uri())
        .catalog_cache_ttl(Duration::from_secs(3600))
        .build()
        .unwrap();
    cached.catalog().await.unwrap();
    cached.catalog().await.unwrap();
    assert_eq!(s.received_requests().await.unwrap().len(), 3);
    // Below 2.16 no conditional request is made.
    let old = Client::builder(s.uri())
        .api_version(ApiVersion::V2_15)
        .catalog_cache_ttl(Duration::ZERO)
        .build()
        .unwrap();
    old.catalog().await.unwrap();
    assert_eq!(old.catalog().await.unwrap().status.as_u16(), 200);
    let reqs = s.received_requests().await.unwrap();
    assert!(reqs[4].headers.get("if-none-match").is_none());
}

/// Spec section 11: behaviours of real brokers, one assertion per row that a single response
/// can show (the others are in the flow and conformance tests).
#[tokio::test]
async fn real_broker_quirks() {
    // Row 1, overview-broker: 412 with a JSON-encoded validator message as `error`.
    let s = server(412, r#"{"error":"[{\"keyword\":\"required\",\"params\":{\"missingProperty\":\"x-broker-api-version\"}}]"}"#).await;
    let e = client(&s, ApiVersion::V2_17).catalog().await.unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::UnsupportedApiVersion));
    assert!(matches!(e.code(), Some(ErrorCode::Other(c)) if c.starts_with("[{")));
    // Row 3, openbrokerapi / Spring: 400 for a missing header.
    assert_eq!(
        kind(
            &provision(
                400,
                r#"{"description":"No X-Broker-Api-Version found."}"#,
                true
            )
            .await
        ),
        Some(ErrorKind::BadRequest)
    );
    // Row 6: AsyncRequired without description.
    let e = provision(422, r#"{"error":"AsyncRequired"}"#, false)
        .await
        .unwrap_err();
    assert!(e.is_async_required() && e.broker().unwrap().description.is_none());
    // Row 8, osb-starter-pack: 202 {"async":true}; last_operation 200 `null` is Invalid.
    assert_eq!(
        provision(202, r#"{"async":true}"#, true)
            .await
            .unwrap()
            .in_progress()
            .unwrap()
            .operation,
        None
    );
    let s = server(200, "null").await;
    let p = Poller::with_config(client(&s, ApiVersion::V2_17), fast());
    let t = PollTarget::instance(OperationKind::Provision, "i", "s", "p", None);
    assert!(matches!(
        p.poll_once(&t, 0).await.unwrap().outcome,
        PollOutcome::Invalid { .. }
    ));
    // Row 11, overview-broker after a restart: failed with a description.
    let s = server(
        200,
        r#"{"state":"failed","description":"The operation could not be found."}"#,
    )
    .await;
    let p = Poller::with_config(client(&s, ApiVersion::V2_17), fast());
    assert_eq!(
        p.poll_once(&t, 0).await.unwrap().outcome,
        PollOutcome::Failed {
            description: Some("The operation could not be found.".into()),
            instance_usable: true,
            update_repeatable: true
        }
    );
    // Row 13, worlds-simplest: re-provision answers 201 again.
    assert!(matches!(
        provision(201, "{}", false).await.unwrap(),
        ProvisionOutcome::Created { .. }
    ));
    // Rows 14 and 17: 200 {"async":false} and 410 with an empty body on delete.
    let s = server(200, r#"{"async":false}"#).await;
    assert_eq!(
        client(&s, ApiVersion::V2_17)
            .deprovision("i", "s", "p", &CallOptions::new())
            .await
            .unwrap()
            .outcome,
        DeleteOutcome::Deleted
    );
    let s = server(410, "").await;
    assert_eq!(
        client(&s, ApiVersion::V2_17)
            .unbind("i", "b", "s", "p", &CallOptions::new())
            .await
            .unwrap()
            .outcome,
        DeleteOutcome::Gone
    );
    // Row 21, a9s: curated descriptions are surfaced verbatim.
    let e = provision(422, r#"{"error":"InstanceLimitError","description":"Service instance limit hit for the service plan"}"#, false)
        .await
        .unwrap_err();
    assert_eq!(
        e.broker().unwrap().description.as_deref(),
        Some("Service instance limit hit for the service plan")
    );
    assert_eq!(
        e.code(),
        Some(&ErrorCode::Other("InstanceLimitError".into()))
    );
}

#[tokio::test]
async fn replies_carry_their_poll_target() {
    let s = server(202, r#"{"operation": "op+1"}"#).await;
    let c = client(&s, ApiVersion::V2_17);
    let a = CallOptions::new().asynchronous();
    let req = ProvisionRequest::new("svc", "small").guids("org", "space");
    let t = c
        .provision("i", &req, &a)
        .await
        .unwrap()
        .poll_target
        .unwrap();
    assert_eq!(
        t,
        PollTarget::instance(
            OperationKind::Provision,
            "i",
            "svc",
            "small",
            Some(klutch_osb::OperationKey("op+1".into()))
        )
    );
    // After a plan change the previous plan is polled with (spec 7.1).
    let change =
        UpdateRequest::new("svc")
            .plan("large")
            .previous_values(klutch_osb::PreviousValues {
                plan_id: Some("small".into()),
                ..Default::default()
            });
    let t = c
        .update("i", &change, &a)
        .await
        .unwrap()
        .poll_target
        .unwrap();
    assert_eq!(t.kind, OperationKind::Update);
    assert_eq!(t.query.plan_id.as_deref(), Some("small"));
    // Without the previous plan, no plan id rather than the new one.
    let t = c
        .update("i", &UpdateRequest::new("svc").plan("large"), &a)
        .await
        .unwrap()
        .poll_target
        .unwrap();
    assert_eq!(t.query.plan_id, None);
    let t = c
        .deprovision("i", "svc", "small", &a)
        .await
        .unwrap()
        .poll_target
        .unwrap();
    assert_eq!(t.kind, OperationKind::Deprovision);
    let t = c
        .unbind("i", "b", "svc", "small", &a)
        .await
        .unwrap()
        .poll_target
        .unwrap();
    assert_eq!(
        (t.kind, t.binding_id.as_deref()),
        (OperationKind::Unbind, Some("b"))
    );
    // The target polls the right resource.
    let s = server(200, r#"{"state": "succeeded"}"#).await;
    let c = client(&s, ApiVersion::V2_17);
    let w = Poller::new(c)
        .wait(&t, Deadline::none(), None)
        .await
        .unwrap();
    assert_eq!(w.outcome, PollOutcome::Succeeded { description: None });
    assert_eq!(
        last(&s).await.url.path(),
        "/v2/service_instances/i/service_bindings/b/last_operation"
    );
}
