//! Pins every a9s broker extension request (method, path, query, headers) and the mapping of
//! every response (spec 12) with insta snapshots.

mod common;

use klutch_a9s::broker::{A9sBroker, BrokerExtError, InstanceState, MAX_ID_ATTEMPTS};
use klutch_a9s::transport::HttpConfig;
use klutch_osb::OperationState;
use wiremock::matchers::{any, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use common::{Exchange, requests};

const INSTANCE: &str = "261a5e05-7312-4d61-bab8-30be9ff45a13-1706777923";

const RECORD: &str = r#"{"id": 1, "guid_at_tenant": "261a5e05-7312-4d61-bab8-30be9ff45a13-1706777923",
 "plan_guid": "9b4a988a", "service_guid": "0b87d5f0", "state": "provisioned",
 "context": {"organization_guid": "a1d46b5c", "space_guid": "1bf71cf3", "parameters": {}},
 "deployment_name": "ncd98aba", "tenant_id": "anynines",
 "provisioned_at": "2024-01-30T08:15:35.202Z", "created_at": "2024-01-30T07:31:48.614Z",
 "updated_at": "2024-01-30T08:17:36.190Z", "allowed_update_time": {"type": "general", "allowed": true},
 "is_locked": false, "credentials": []}"#;

fn broker(server: &MockServer) -> A9sBroker {
    A9sBroker::new(HttpConfig::new(server.uri()).basic_auth("broker", "pw")).expect("client builds")
}

fn describe(e: &BrokerExtError) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(x) = src {
        s.push_str(&format!(": {x}"));
        src = x.source();
    }
    s
}

fn show<T: std::fmt::Debug>(r: Result<T, BrokerExtError>) -> String {
    match r {
        Ok(v) => format!("Ok({v:?})"),
        Err(e) => format!("Err({})", describe(&e)),
    }
}

macro_rules! case {
    ($out:ident, $name:expr, $status:expr, $body:expr, |$b:ident| $call:expr) => {{
        let server = common::server($status, $body).await;
        let $b = broker(&server);
        let r = $call.await;
        $out.push(Exchange {
            case: $name.to_owned(),
            response: format!("{} {}", $status, $body),
            requests: requests(&server).await,
            result: show(r),
        });
    }};
}

#[tokio::test]
async fn extension_endpoints() {
    let mut out = Vec::new();
    case!(out, "instance 200", 200, RECORD, |b| b.instance(INSTANCE));
    case!(
        out,
        "instance 404",
        404,
        r#"{"error": "InstanceNotFound", "description": "Instance not found"}"#,
        |b| b.instance(INSTANCE)
    );
    case!(
        out,
        "instance 400",
        400,
        r#"{"error": "InstanceError", "description": "Mismatch between the provided service ID and the instance"}"#,
        |b| b.instance(INSTANCE)
    );
    case!(out, "instance 200 invalid JSON", 200, "{", |b| b
        .instance(INSTANCE));
    case!(out, "instance 500", 500, "", |b| b.instance(INSTANCE));
    case!(out, "instance empty id", 200, "{}", |b| b.instance(""));
    case!(
        out,
        "list one page",
        200,
        &format!(
            r#"{{"total_results": 1, "total_pages": 1, "current_page": 1, "prev_url": null, "next_url": null, "resources": [{RECORD}]}}"#
        ),
        |b| b.list_instances()
    );
    case!(
        out,
        "list 401",
        401,
        r#"{"description": "Unauthorized"}"#,
        |b| b.list_instances()
    );
    case!(out, "health HEAD 200", 200, "", |b| b.health());
    case!(out, "health HEAD 503", 503, "", |b| b.health());
    case!(out, "health current endpoint", 200, "", |b| b
        .clone()
        .with_health_endpoint("/osb_ext/v1/healthy")
        .health());
    case!(
        out,
        "fetch instance 200",
        200,
        r#"{"id": "261a5e05", "plan_id": "p", "service_id": "s", "dashboard_url": "https://d", "parameters": {"max_connections": 100}, "context": {"platform": "kubernetes"}}"#,
        |b| b.fetch_instance(INSTANCE)
    );
    case!(
        out,
        "fetch instance 404",
        404,
        r#"{"error": "InstanceNotFound"}"#,
        |b| b.fetch_instance(INSTANCE)
    );
    case!(
        out,
        "last operation in progress",
        200,
        r#"{"state": "in progress", "description": "deploying"}"#,
        |b| b.last_operation(INSTANCE, "svc-1", "plan-1", Some("op+1=a&b"))
    );
    case!(
        out,
        "last operation succeeded, no key",
        200,
        r#"{"state": "succeeded"}"#,
        |b| b.last_operation(INSTANCE, "svc-1", "plan-1", None)
    );
    case!(out, "last operation 410", 410, "{}", |b| b.last_operation(
        INSTANCE,
        "svc-1",
        "plan-1",
        Some("")
    ));
    insta::assert_yaml_snapshot!("extension_endpoints", out);
}

#[tokio::test]
async fn version_header_and_auth_on_every_call_head_included() {
    let server = common::server(200, RECORD).await;
    let b = broker(&server);
    let _ = b.instance("i").await;
    let _ = b.health().await;
    let _ = b.fetch_instance("i").await;
    let _ = b.last_operation("i", "s", "p", Some("k")).await;
    let _ = b.osb().catalog().await;
    let reqs = requests(&server).await;
    assert_eq!(reqs.len(), 5);
    for r in reqs {
        assert_eq!(
            r.headers.get("x-broker-api-version").map(String::as_str),
            Some("2.14"),
            "{r:?}"
        );
        assert_eq!(
            r.headers.get("authorization").map(String::as_str),
            Some("Basic YnJva2VyOnB3"),
            "{r:?}"
        );
        assert!(
            !r.headers.contains_key("x-broker-api-originating-identity"),
            "{r:?}"
        );
        assert!(
            !r.headers.contains_key("x-broker-api-request-identity"),
            "{r:?}"
        );
    }
}

#[tokio::test]
async fn list_follows_next_url_absolute_and_relative() {
    let server = MockServer::start().await;
    let record = |id: &str| RECORD.replace(INSTANCE, id);
    Mock::given(method("GET"))
        .and(path("/instances"))
        .respond_with(ResponseTemplate::new(200).set_body_string(format!(
            r#"{{"total_pages": 3, "current_page": 1, "next_url": "{}/instances/page/2", "resources": [{}]}}"#,
            server.uri(),
            record("a")
        )))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/instances/page/2"))
        .respond_with(ResponseTemplate::new(200).set_body_string(format!(
            r#"{{"current_page": 2, "next_url": "/instances/page/3", "resources": [{}, {}]}}"#,
            record("b"),
            record("c")
        )))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/instances/page/3"))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            r#"{"current_page": 3, "next_url": "/instances/page/3", "resources": []}"#,
        ))
        .mount(&server)
        .await;
    let all = broker(&server).list_instances().await.unwrap();
    let ids: Vec<_> = all
        .iter()
        .filter_map(|r| r.guid_at_tenant.as_deref())
        .collect();
    assert_eq!(ids, ["a", "b", "c"]);
    assert!(all.iter().all(|r| r.state == InstanceState::Provisioned));
    // Page 3 points at itself: a next_url already followed ends the walk.
    let paths: Vec<String> = requests(&server)
        .await
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert_eq!(
        paths,
        ["/instances", "/instances/page/2", "/instances/page/3"]
    );
}

#[tokio::test]
async fn unique_instance_id_regenerates_on_collision() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_string(RECORD))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(any())
        .respond_with(
            ResponseTemplate::new(404).set_body_string(r#"{"error": "InstanceNotFound"}"#),
        )
        .with_priority(2)
        .mount(&server)
        .await;
    let mut n = 0;
    let id = broker(&server)
        .unique_instance_id_with(|| {
            n += 1;
            format!("id-{n}")
        })
        .await
        .unwrap();
    assert_eq!(id, "id-3");
    let paths: Vec<String> = requests(&server)
        .await
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert_eq!(
        paths,
        ["/instances/id-1", "/instances/id-2", "/instances/id-3"]
    );

    // A real generated id has the a9s shape.
    let id = broker(&server).unique_instance_id().await.unwrap();
    let (uuid, secs) = id.rsplit_once('-').unwrap();
    assert_eq!(uuid.len(), 36);
    assert!(secs.parse::<u64>().unwrap() > 1_700_000_000);
}

#[tokio::test]
async fn unique_instance_id_gives_up_or_aborts() {
    let server = common::server(200, RECORD).await;
    let e = broker(&server).unique_instance_id().await.unwrap_err();
    assert!(
        matches!(e, BrokerExtError::GenerateInstanceId { attempts } if attempts == MAX_ID_ATTEMPTS),
        "{e:?}"
    );
    assert_eq!(requests(&server).await.len(), MAX_ID_ATTEMPTS as usize);

    // Any 404 body counts as "unused".
    let server = common::server(404, "").await;
    assert!(broker(&server).unique_instance_id().await.is_ok());

    let server = common::server(500, r#"{"description": "db down"}"#).await;
    let e = broker(&server).unique_instance_id().await.unwrap_err();
    assert!(matches!(e, BrokerExtError::CheckInstanceId { .. }), "{e:?}");
    assert_eq!(
        e.api().and_then(|a| a.description.as_deref()),
        Some("db down")
    );
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn typed_results() {
    let server = common::server(
        200,
        r#"{"state": "failed", "description": "deployment failed"}"#,
    )
    .await;
    let lo = broker(&server)
        .last_operation("i", "s", "p", None)
        .await
        .unwrap();
    assert_eq!(lo.last_operation.state, OperationState::Failed);
    assert_eq!(
        lo.last_operation.description.as_deref(),
        Some("deployment failed")
    );

    let server = common::server(404, r#"{"error": "InstanceNotFound"}"#).await;
    let b = broker(&server);
    assert!(b.instance("x").await.unwrap_err().is_not_found());
    assert!(b.fetch_instance("x").await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn next_url_on_another_origin_is_refused() {
    let server = common::server(
        200,
        r#"{"next_url": "http://evil.example/instances?page=2", "resources": []}"#,
    )
    .await;
    let e = broker(&server).list_instances().await.unwrap_err();
    assert!(
        matches!(
            &e,
            BrokerExtError::ListInstances {
                source: klutch_a9s::transport::CallError::InvalidRequest { .. }
            }
        ),
        "{e:?}"
    );
    assert_eq!(requests(&server).await.len(), 1);
}
