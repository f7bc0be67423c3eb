//! Conformance against a broker this project did not write: a small broker built on the
//! `openbrokerapi` PyPI package (`tests/conformance/broker.py`, pinned in
//! `tests/conformance/requirements.txt`). The harness starts it and FAILS with a clear message
//! when python3 or openbrokerapi is missing; CI installs them.

use std::process::Stdio;
use std::time::Duration;

use klutch_osb::{
    ApiVersion, BindOutcome, BindRequest, CallOptions, Client, Context, Deadline, DeleteOutcome,
    ErrorKind, OperationKind, PollConfig, PollOutcome, PollTarget, Poller, ProvisionOutcome,
    ProvisionRequest, UpdateOutcome, UpdateRequest,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

const SVC: &str = "conf-svc-id";
const SYNC: &str = "conf-sync-id";
const ASYNC: &str = "conf-async-id";

struct PyBroker {
    _child: Child,
    url: String,
}

async fn start() -> PyBroker {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance/broker.py");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = Command::new(&python)
        .arg(script)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {python} (needed for the openbrokerapi conformance broker; install python3): {e}")
        });
    let stdout = child.stdout.take().expect("stdout piped");
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await;
    let line = match first {
        Ok(Ok(Some(l))) => l,
        other => {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ =
                    tokio::time::timeout(Duration::from_secs(2), e.read_to_string(&mut err)).await;
            }
            panic!(
                "the openbrokerapi conformance broker did not start ({other:?}); stderr:\n{err}"
            );
        }
    };
    if let Some(msg) = line.strip_prefix("IMPORT-ERROR ") {
        panic!(
            "python3 lacks the conformance broker's packages: {msg}\n\
             install them with: python3 -m pip install -r klutch-osb/tests/conformance/requirements.txt"
        );
    }
    let port = line
        .strip_prefix("PORT ")
        .unwrap_or_else(|| panic!("unexpected broker output {line:?}"));
    // Keep draining stdout so the broker never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    PyBroker {
        _child: child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

fn client(b: &PyBroker, v: ApiVersion) -> Client {
    Client::builder(&b.url)
        .api_version(v)
        .basic_auth("admin", "conformance")
        .build()
        .expect("client builds")
}

fn poller(c: &Client) -> Poller {
    Poller::with_config(
        c.clone(),
        PollConfig {
            min_interval: Duration::ZERO,
            initial_interval: Duration::from_millis(10),
            ..PollConfig::default()
        },
    )
}

fn prov(plan: &str) -> ProvisionRequest {
    ProvisionRequest::new(SVC, plan)
        .context(Context::kubernetes("team-a", "cluster-1"))
        .parameter("size", 1)
}

#[tokio::test]
async fn openbrokerapi_conformance() {
    let b = start().await;
    let c = client(&b, ApiVersion::V2_17);

    // Catalog: typed, valid, lookups by name.
    let catalog = c.catalog().await.expect("catalog").outcome;
    assert!(catalog.validate().is_empty(), "{:?}", catalog.validate());
    let (svc, sync_plan) = catalog
        .plan_by_name("conformance-db", "sync")
        .expect("sync plan");
    assert_eq!((svc.id.as_str(), sync_plan.id.as_str()), (SVC, SYNC));
    assert!(svc.effective_plan_updateable(sync_plan));
    let gated = CallOptions::new().catalog_entry(svc, sync_plan);

    // Synchronous lifecycle with awkward ids (percent-encoding end to end).
    let id = "sync inst+1&=%";
    let r = c
        .provision(id, &prov(SYNC), &gated)
        .await
        .expect("provision")
        .outcome;
    assert!(
        matches!(
            r,
            ProvisionOutcome::Created {
                dashboard_url: Some(_),
                ..
            }
        ),
        "{r:?}"
    );
    let r = c
        .provision(id, &prov(SYNC), &gated)
        .await
        .expect("re-provision")
        .outcome;
    assert!(matches!(r, ProvisionOutcome::AlreadyExists { .. }), "{r:?}");
    let e = c
        .provision(id, &prov(SYNC).parameter("size", 2), &gated)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::Conflict));
    let inst = c
        .fetch_instance(id, Some(SVC), Some(SYNC), &gated)
        .await
        .expect("fetch instance")
        .outcome;
    assert_eq!(inst.parameters.unwrap()["size"], 1);
    let BindOutcome::Created(binding) = c
        .bind(id, "b 1", &BindRequest::new(SVC, SYNC), &gated)
        .await
        .expect("bind")
        .outcome
    else {
        panic!("201 expected")
    };
    assert_eq!(
        binding.credentials.expect("credentials").expose()["username"],
        "u-b 1"
    );
    assert_eq!(
        c.bind(id, "b 1", &BindRequest::new(SVC, SYNC), &gated)
            .await
            .unwrap_err()
            .kind(),
        Some(ErrorKind::Conflict)
    );
    let fetched = c
        .fetch_binding(id, "b 1", None, None, &gated)
        .await
        .expect("fetch binding")
        .outcome;
    assert_eq!(
        fetched.credentials.expect("credentials").expose()["port"],
        5432
    );
    let u = c
        .update(id, &UpdateRequest::new(SVC).parameter("size", 3), &gated)
        .await
        .expect("update")
        .outcome;
    assert!(matches!(u, UpdateOutcome::Updated { .. }));
    assert_eq!(
        c.unbind(id, "b 1", SVC, SYNC, &gated)
            .await
            .expect("unbind")
            .outcome,
        DeleteOutcome::Deleted
    );
    assert_eq!(
        c.unbind(id, "b 1", SVC, SYNC, &gated)
            .await
            .expect("unbind again")
            .outcome,
        DeleteOutcome::Gone
    );
    assert_eq!(
        c.deprovision(id, SVC, SYNC, &gated)
            .await
            .expect("deprovision")
            .outcome,
        DeleteOutcome::Deleted
    );
    assert_eq!(
        c.deprovision(id, SVC, SYNC, &gated)
            .await
            .expect("deprovision again")
            .outcome,
        DeleteOutcome::Gone
    );
    assert_eq!(
        c.fetch_instance(id, None, None, &gated)
            .await
            .unwrap_err()
            .kind(),
        Some(ErrorKind::NotFound)
    );

    // Asynchronous lifecycle: AsyncRequired without accepts_incomplete, then 202 + polling
    // with operation keys full of reserved characters.
    let id = "async-1";
    let a = CallOptions::new().asynchronous();
    assert!(
        c.provision(id, &prov(ASYNC), &CallOptions::new())
            .await
            .unwrap_err()
            .is_async_required()
    );
    let ProvisionOutcome::InProgress(op) = c
        .provision(id, &prov(ASYNC), &a)
        .await
        .expect("provision")
        .outcome
    else {
        panic!("202 expected")
    };
    let key = op
        .operation
        .clone()
        .expect("openbrokerapi returns an operation key");
    assert!(key.as_str().contains('+') && key.as_str().contains('&'));
    let p = poller(&c);
    let t = PollTarget::instance(OperationKind::Provision, id, SVC, ASYNC, op.operation);
    let w = p
        .wait(
            &t,
            Deadline::from_now(Some(Duration::from_secs(30)), None),
            None,
        )
        .await
        .expect("poll");
    assert!(matches!(w.outcome, PollOutcome::Succeeded { .. }), "{w:?}");
    assert_eq!(w.polls, 2);
    let UpdateOutcome::InProgress(op) = c
        .update(id, &UpdateRequest::new(SVC).parameter("size", 9), &a)
        .await
        .expect("update")
        .outcome
    else {
        panic!("202 expected")
    };
    let t = PollTarget::instance(OperationKind::Update, id, SVC, ASYNC, op.operation);
    assert!(
        p.wait(&t, Deadline::none(), None)
            .await
            .expect("poll")
            .outcome
            .is_success()
    );
    let BindOutcome::InProgress { operation } = c
        .bind(id, "b", &BindRequest::new(SVC, ASYNC), &a)
        .await
        .expect("bind")
        .outcome
    else {
        panic!("202 expected")
    };
    let t = PollTarget::binding(OperationKind::Bind, id, "b", SVC, ASYNC, operation);
    assert!(
        p.wait(&t, Deadline::none(), None)
            .await
            .expect("poll")
            .outcome
            .is_success()
    );
    let creds = c
        .fetch_binding(id, "b", None, None, &CallOptions::new())
        .await
        .expect("fetch binding")
        .outcome;
    assert!(creds.credentials.is_some());
    assert_eq!(
        c.unbind(id, "b", SVC, ASYNC, &a)
            .await
            .expect("unbind")
            .outcome,
        DeleteOutcome::Deleted
    );
    let DeleteOutcome::InProgress { operation } = c
        .deprovision(id, SVC, ASYNC, &a)
        .await
        .expect("deprovision")
        .outcome
    else {
        panic!("202 expected")
    };
    let t = PollTarget::instance(OperationKind::Deprovision, id, SVC, ASYNC, operation);
    // openbrokerapi answers 410 {"state":"succeeded"} once the instance is gone.
    assert_eq!(
        p.wait(&t, Deadline::none(), None)
            .await
            .expect("poll")
            .outcome,
        PollOutcome::Gone
    );

    // Version handling: below openbrokerapi's minimum (2.13) the broker answers 412.
    let old = client(&b, ApiVersion::V2_12);
    let e = old.catalog().await.unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::UnsupportedApiVersion), "{e}");
    assert!(
        e.broker()
            .unwrap()
            .description
            .as_deref()
            .unwrap_or("")
            .contains("2.13")
    );
    let pinned = Client::builder(&b.url)
        .api_version(ApiVersion::V2_12)
        .version_header("2.13")
        .basic_auth("admin", "conformance")
        .build()
        .unwrap();
    pinned.catalog().await.expect("2.13 header accepted");
    // Wrong credentials.
    let bad = Client::builder(&b.url)
        .basic_auth("admin", "nope")
        .build()
        .unwrap();
    assert_eq!(
        bad.catalog().await.unwrap_err().kind(),
        Some(ErrorKind::Unauthorized)
    );
}
