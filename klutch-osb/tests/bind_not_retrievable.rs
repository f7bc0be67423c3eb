//! Binding a service that does not declare `bindings_retrievable` (spec 2.17: a platform must
//! not expect to fetch such a binding). Found against brokerapi-based brokers in async mode:
//! the bind went out with `accepts_incomplete=true`, the broker created the binding
//! asynchronously, and the credentials could then never be fetched; the error said "not
//! sent", so orphan mitigation left the binding behind.

use std::time::Duration;

use klutch_osb::testing::{FakeBroker, FakeBrokerConfig, Mode, Route};
use klutch_osb::{
    ApiVersion, BindRequest, CallOptions, Catalog, Client, Completion, Context, Deadline,
    OmOperation, OmPolicy, OmResult, OrphanMitigation, PollConfig, Poller, ProvisionRequest,
    RequestIdentity, Strictness, orphan_mitigation,
};
use serde_json::json;
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SVC: &str = "svc-1";
const PLAN: &str = "plan-1";
const BINDING: &str = "/v2/service_instances/i-1/service_bindings/b-1";

fn catalog(bindings_retrievable: bool) -> Catalog {
    serde_json::from_value(json!({"services": [{
        "id": SVC, "name": "db", "description": "A database", "bindable": true,
        "instances_retrievable": true, "bindings_retrievable": bindings_retrievable,
        "plans": [{"id": PLAN, "name": "small", "description": "Small"}]
    }]}))
    .unwrap()
}

fn fast() -> PollConfig {
    PollConfig {
        min_interval: Duration::ZERO,
        initial_interval: Duration::from_millis(10),
        jitter: 0.0,
        ..PollConfig::default()
    }
}

fn client(server: &MockServer, strictness: Strictness) -> Client {
    Client::builder(server.uri())
        .api_version(ApiVersion::V2_17)
        .request_identity(RequestIdentity::Off)
        .strictness(strictness)
        .build()
        .unwrap()
}

/// A broker that binds asynchronously whenever it may (`accepts_incomplete=true`) and
/// synchronously otherwise; its binding last_operation reports success.
async fn async_capable_broker(answer_sync_with_202: bool) -> MockServer {
    let s = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path(BINDING))
        .and(query_param("accepts_incomplete", "true"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({"operation": "op-1"})))
        .mount(&s)
        .await;
    let sync = if answer_sync_with_202 {
        ResponseTemplate::new(202).set_body_json(json!({"operation": "op-1"}))
    } else {
        ResponseTemplate::new(201).set_body_json(json!({"credentials": {"password": "pw"}}))
    };
    Mock::given(method("PUT"))
        .and(path(BINDING))
        .and(query_param_is_missing("accepts_incomplete"))
        .respond_with(sync)
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{BINDING}/last_operation")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"state": "succeeded"})))
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path(BINDING))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"credentials": {"password": "pw"}})),
        )
        .mount(&s)
        .await;
    s
}

#[tokio::test]
async fn bind_and_wait_binds_synchronously_when_bindings_are_not_retrievable() {
    let s = async_capable_broker(false).await;
    let c = client(&s, Strictness::Strict);
    let cat = catalog(false);
    let (svc, plan) = cat.plan_by_id(Some(SVC), PLAN).unwrap();
    let opts = CallOptions::new().catalog_entry(svc, plan);
    let done = Poller::with_config(c, fast())
        .bind_and_wait(
            "i-1",
            "b-1",
            &BindRequest::new(SVC, PLAN),
            &opts,
            Deadline::from_now(Some(Duration::from_secs(10)), None),
            None,
        )
        .await
        .expect("the bind succeeds");
    let Completion::Done(binding) = done else {
        panic!("{done:?}")
    };
    assert_eq!(
        binding.credentials.expect("credentials").expose()["password"],
        "pw"
    );
    let reqs = s.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 1, "one synchronous PUT, no polling, no fetch");
    assert_eq!(reqs[0].method.as_str(), "PUT");
    assert!(
        !reqs[0]
            .url
            .query()
            .unwrap_or("")
            .contains("accepts_incomplete"),
        "{}",
        reqs[0].url
    );
}

#[tokio::test]
async fn a_plain_asynchronous_bind_is_sent_synchronously_when_bindings_are_not_retrievable() {
    let s = async_capable_broker(false).await;
    let cat = catalog(false);
    // Given the catalog once, the client gates every call without a catalog entry.
    let c = Client::builder(s.uri())
        .request_identity(RequestIdentity::Off)
        .catalog(cat.clone())
        .build()
        .unwrap();
    let r = c
        .bind(
            "i-1",
            "b-1",
            &BindRequest::new(SVC, PLAN),
            &CallOptions::new().asynchronous(),
        )
        .await
        .unwrap();
    assert!(r.outcome.binding().is_some(), "{:?}", r.outcome);
    assert!(r.poll_target.is_none());
    // A retrievable service may bind asynchronously; the reply says how to poll it.
    let c = Client::builder(s.uri())
        .request_identity(RequestIdentity::Off)
        .catalog(catalog(true))
        .build()
        .unwrap();
    let r = c
        .bind(
            "i-1",
            "b-1",
            &BindRequest::new(SVC, PLAN),
            &CallOptions::new().asynchronous(),
        )
        .await
        .unwrap();
    let t = r.poll_target.expect("a 202 carries its poll target");
    assert_eq!(t.binding_id.as_deref(), Some("b-1"));
    assert_eq!(t.query.plan_id.as_deref(), Some(PLAN));
    assert_eq!(t.query.operation.as_ref().map(|o| o.as_str()), Some("op-1"));
}

#[tokio::test]
async fn an_error_after_the_bind_went_out_leads_to_orphan_mitigation() {
    // A broker that answers 202 even to a synchronous bind (tolerated in lenient mode): the
    // binding exists, but its credentials cannot be fetched.
    let s = async_capable_broker(true).await;
    let c = client(&s, Strictness::Lenient);
    let cat = catalog(false);
    let (svc, plan) = cat.plan_by_id(Some(SVC), PLAN).unwrap();
    let opts = CallOptions::new().catalog_entry(svc, plan);
    let e = Poller::with_config(c, fast())
        .bind_and_wait(
            "i-1",
            "b-1",
            &BindRequest::new(SVC, PLAN),
            &opts,
            Deadline::from_now(Some(Duration::from_secs(10)), None),
            None,
        )
        .await
        .expect_err("the credentials cannot be fetched");
    let om = OmResult::from_error(&e);
    assert_ne!(om, OmResult::NotSent, "{e:?}");
    assert_eq!(
        orphan_mitigation(OmOperation::Bind, &om, OmPolicy::default()),
        OrphanMitigation::Unbind,
        "{e:?}"
    );
}

#[tokio::test]
async fn fake_broker_async_mode_with_a_non_retrievable_service() {
    let mut cat = klutch_osb::testing::default_catalog();
    cat.services[0].bindings_retrievable = Some(false);
    let b = FakeBroker::start(FakeBrokerConfig {
        catalog: cat.clone(),
        mode: Mode::Async {
            duration: Duration::from_millis(30),
            retry_after: None,
        },
        ..FakeBrokerConfig::default()
    })
    .await
    .unwrap();
    let c = b.client_builder().build().unwrap();
    let (svc, plan) = cat.plan_by_name("fake-db", "small").unwrap();
    let opts = CallOptions::new().catalog_entry(svc, plan);
    let p = Poller::with_config(c, fast());
    let d = || Deadline::from_now(Some(Duration::from_secs(10)), None);
    let prov = ProvisionRequest::new(&svc.id, &plan.id).context(Context::kubernetes("ns", "c-1"));
    let done = p
        .provision_and_wait("i-1", &prov, &opts, d(), None)
        .await
        .unwrap();
    assert!(matches!(done, Completion::Done(_)), "{done:?}");
    let done = p
        .bind_and_wait(
            "i-1",
            "b-1",
            &BindRequest::new(&svc.id, &plan.id),
            &opts,
            d(),
            None,
        )
        .await
        .expect("bound synchronously");
    let Completion::Done(binding) = done else {
        panic!("{done:?}")
    };
    assert!(binding.credentials.is_some());
    assert!(b.has_binding("i-1", "b-1"));
    assert_eq!(b.count(Route::BindingLastOperation), 0);
    assert_eq!(b.count(Route::FetchBinding), 0);
    let put = b
        .requests()
        .into_iter()
        .find(|r| r.route == Route::Bind)
        .unwrap();
    assert_eq!(put.query_param("accepts_incomplete"), None);
}
