//! Pins every request (method, path, query, headers, body) per API version with insta
//! snapshots.

mod common;

use klutch_osb::catalog::MaintenanceInfo;
use klutch_osb::{
    ApiVersion, BindRequest, BindResource, CallOptions, Context, LastOperationQuery, OperationKey,
    OriginatingIdentity, PreviousValues, ProvisionRequest, RotateRequest, UpdateRequest,
};
use serde::Serialize;

use common::{Rec, client, rec, server};

#[derive(Serialize)]
struct Step {
    op: &'static str,
    /// `sent` or the error that stopped the request before sending.
    result: String,
    request: Option<Rec>,
}

const INSTANCE: &str = "inst/1+2 &=%~";
const BINDING: &str = "bind#1?x";

#[allow(unused_assignments)]
async fn run_all(version: ApiVersion) -> Vec<Step> {
    let server = server(200, "{}").await;
    let c = client(&server, version);
    let k8s = OriginatingIdentity::kubernetes("alice", "uid-1", ["devs"]);
    let cf = OriginatingIdentity::cloudfoundry("cf-user");
    let user = CallOptions::new()
        .asynchronous()
        .originating_identity(k8s.clone());
    let mut steps = Vec::new();
    let mut seen = 0;

    macro_rules! step {
        ($name:literal, $call:expr) => {{
            let r = $call.await;
            let reqs = server.received_requests().await.unwrap_or_default();
            let request = if reqs.len() > seen {
                Some(rec(&reqs[reqs.len() - 1]))
            } else {
                None
            };
            seen = reqs.len();
            let result = match &r {
                Ok(_) => "sent".to_owned(),
                Err(e) => format!("{e}"),
            };
            steps.push(Step {
                op: $name,
                result,
                request,
            });
        }};
    }

    step!("catalog", c.catalog());
    let prov = ProvisionRequest::new("svc-1", "plan-1")
        .context(Context::kubernetes("team-a", "cluster-1").with("instance_name", "db"))
        .parameter("size", 3)
        .parameter("nested", serde_json::json!({"a": [1, "b"]}))
        .maintenance_info(MaintenanceInfo::version("1.2.3"));
    step!(
        "provision async (kubernetes)",
        c.provision(INSTANCE, &prov, &user)
    );
    let prov_cf = ProvisionRequest::new("svc-1", "plan-1")
        .guids("org-1", "space-1")
        .context(
            Context::cloudfoundry("org-1", "org", "space-1", "space").with("instance_name", "db"),
        );
    step!(
        "provision sync (cloudfoundry)",
        c.provision(
            "i-2",
            &prov_cf,
            &CallOptions::new().originating_identity(cf.clone())
        )
    );
    let upd = UpdateRequest::new("svc-1")
        .plan("plan-2")
        .parameter("size", 5)
        .context(Context::kubernetes("team-a", "cluster-1"))
        .maintenance_info(MaintenanceInfo::version("1.3.0"))
        .previous_values(PreviousValues {
            plan_id: Some("plan-1".into()),
            maintenance_info: Some(MaintenanceInfo::version("1.2.3")),
            ..Default::default()
        });
    step!("update async", c.update(INSTANCE, &upd, &user));
    step!(
        "deprovision async",
        c.deprovision(INSTANCE, "svc-1", "plan-1", &user)
    );
    step!(
        "deprovision sync",
        c.deprovision("i-2", "svc-1", "plan-1", &CallOptions::new())
    );
    step!(
        "fetch instance with hints",
        c.fetch_instance(INSTANCE, Some("svc-1"), Some("plan-1"), &CallOptions::new())
    );
    let q = LastOperationQuery {
        service_id: Some("svc-1".into()),
        plan_id: Some("plan-1".into()),
        operation: Some(OperationKey("a+b=c&d%/e f~".into())),
    };
    step!(
        "instance last_operation",
        c.instance_last_operation(INSTANCE, &q, &CallOptions::new())
    );
    step!(
        "instance last_operation without key",
        c.instance_last_operation(
            INSTANCE,
            &LastOperationQuery::default(),
            &CallOptions::new()
        )
    );
    let bind = BindRequest {
        bind_resource: Some(BindResource {
            app_guid: Some("app-1".into()),
            route: None,
            ..Default::default()
        }),
        send_deprecated_app_guid: true,
        ..BindRequest::new("svc-1", "plan-1")
            .context(Context::kubernetes("team-a", "cluster-1"))
            .parameter("role", "ro")
    };
    step!("bind async", c.bind(INSTANCE, BINDING, &bind, &user));
    step!(
        "bind sync",
        c.bind(
            INSTANCE,
            "b-2",
            &BindRequest::new("svc-1", "plan-1"),
            &CallOptions::new()
        )
    );
    let rot = RotateRequest {
        service_id: "svc-1".into(),
        plan_id: "plan-1".into(),
        predecessor_binding_id: "b-2".into(),
    };
    step!(
        "rotate binding",
        c.rotate_binding(INSTANCE, "b-3", &rot, &CallOptions::new().asynchronous())
    );
    step!(
        "fetch binding with hints",
        c.fetch_binding(
            INSTANCE,
            BINDING,
            Some("svc-1"),
            Some("plan-1"),
            &CallOptions::new()
        )
    );
    step!(
        "binding last_operation",
        c.binding_last_operation(INSTANCE, BINDING, &q, &CallOptions::new())
    );
    step!(
        "unbind async",
        c.unbind(INSTANCE, BINDING, "svc-1", "plan-1", &user)
    );
    step!(
        "unbind sync",
        c.unbind(
            INSTANCE,
            "b-2",
            "svc-1",
            "plan-1",
            &CallOptions::new().originating_identity(k8s)
        )
    );
    steps
}

macro_rules! version_test {
    ($name:ident, $v:expr) => {
        #[tokio::test]
        async fn $name() {
            let steps = run_all($v).await;
            insta::assert_yaml_snapshot!(steps);
        }
    };
}

version_test!(requests_v2_11, ApiVersion::V2_11);
version_test!(requests_v2_12, ApiVersion::V2_12);
version_test!(requests_v2_13, ApiVersion::V2_13);
version_test!(requests_v2_14, ApiVersion::V2_14);
version_test!(requests_v2_15, ApiVersion::V2_15);
version_test!(requests_v2_16, ApiVersion::V2_16);
version_test!(requests_v2_17, ApiVersion::V2_17);

#[tokio::test]
async fn automatic_request_identity_is_a_fresh_uuid() {
    let server = server(200, r#"{"services":[]}"#).await;
    let c = klutch_osb::Client::builder(server.uri()).build().unwrap();
    c.catalog().await.unwrap();
    c.catalog().await.unwrap();
    let reqs = server.received_requests().await.unwrap();
    let ids: Vec<String> = reqs
        .iter()
        .map(|r| {
            r.headers
                .get("x-broker-api-request-identity")
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_ne!(ids[0], ids[1]);
    for id in ids {
        assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 4);
    }
    assert!(reqs[0].headers.get("authorization").is_none());
    assert!(
        reqs[0].headers.get("content-type").is_none(),
        "no content type on GET"
    );
}

#[tokio::test]
async fn request_identity_off_and_per_call_override() {
    let server = server(200, r#"{"services":[]}"#).await;
    let c = klutch_osb::Client::builder(server.uri())
        .request_identity(klutch_osb::RequestIdentity::Off)
        .bearer_auth("tok")
        .build()
        .unwrap();
    c.catalog().await.unwrap();
    c.catalog_with(&CallOptions::new().request_identity("mine"))
        .await
        .unwrap();
    let reqs = server.received_requests().await.unwrap();
    assert!(
        reqs[0]
            .headers
            .get("x-broker-api-request-identity")
            .is_none()
    );
    assert_eq!(
        reqs[1]
            .headers
            .get("x-broker-api-request-identity")
            .unwrap(),
        "mine"
    );
    assert_eq!(reqs[0].headers.get("authorization").unwrap(), "Bearer tok");
}

#[tokio::test]
async fn version_header_override_and_412_fallback() {
    use wiremock::matchers::header;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let s = MockServer::start().await;
    Mock::given(header("x-broker-api-version", "2.14"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"services":[]}"#))
        .mount(&s)
        .await;
    Mock::given(wiremock::matchers::any())
        .respond_with(
            ResponseTemplate::new(412)
                .set_body_string(r#"{"description":"X-Broker-API-Version Header not set"}"#),
        )
        .mount(&s)
        .await;
    let plain = klutch_osb::Client::builder(s.uri()).build().unwrap();
    let e = plain.catalog().await.unwrap_err();
    assert_eq!(e.kind(), Some(klutch_osb::ErrorKind::UnsupportedApiVersion));
    assert_eq!(
        e.broker().unwrap().description.as_deref(),
        Some("X-Broker-API-Version Header not set")
    );
    let pinned = klutch_osb::Client::builder(s.uri())
        .version_header("2.14")
        .build()
        .unwrap();
    pinned.catalog().await.unwrap();
    let fallback = klutch_osb::Client::builder(s.uri())
        .fallback_version_header("2.14")
        .build()
        .unwrap();
    fallback.catalog().await.unwrap();
    let reqs = s.received_requests().await.unwrap();
    let versions: Vec<_> = reqs
        .iter()
        .map(|r| {
            r.headers
                .get("x-broker-api-version")
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(versions, ["2.17", "2.14", "2.17", "2.14"]);
}

#[tokio::test]
async fn rejected_before_sending() {
    let server = server(200, "{}").await;
    let c = client(&server, ApiVersion::V2_17);
    let o = CallOptions::new();
    assert!(
        c.provision("", &ProvisionRequest::new("s", "p").guids("o", "s"), &o)
            .await
            .is_err()
    );
    assert!(
        c.provision("i", &ProvisionRequest::new("s", "p"), &o)
            .await
            .is_err(),
        "org/space GUIDs required"
    );
    assert!(
        c.bind("i", "", &BindRequest::new("s", "p"), &o)
            .await
            .is_err()
    );
    assert!(c.deprovision("i", "", "p", &o).await.is_err());
    let mismatch = CallOptions::new().originating_identity(OriginatingIdentity::cloudfoundry("u"));
    let e = c
        .provision(
            "i",
            &ProvisionRequest::new("s", "p").context(Context::kubernetes("n", "c")),
            &mismatch,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, klutch_osb::Error::InvalidRequest { .. }), "{e}");
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn user_supplied_reqwest_client_is_used() {
    // A caller that builds its own reqwest::Client is responsible for its TLS provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .user_agent("my-platform/1.0")
        .build()
        .unwrap();
    let server = server(200, r#"{"services":[]}"#).await;
    let c = klutch_osb::Client::builder(server.uri())
        .http_client(http)
        .build()
        .unwrap();
    c.catalog().await.unwrap();
    let r = common::last(&server).await;
    assert_eq!(r.headers.get("user-agent").unwrap(), "my-platform/1.0");
    // TLS options cannot be applied to somebody else's client.
    let e = klutch_osb::Client::builder(server.uri())
        .http_client(reqwest::Client::builder().build().unwrap())
        .insecure_skip_verify(true)
        .build()
        .unwrap_err();
    assert!(matches!(e, klutch_osb::Error::Config { .. }));
}

#[tokio::test]
async fn unsupported_fields_are_omitted_or_rejected() {
    use klutch_osb::{Error, Gate};
    let server = server(201, "{}").await;
    let req = ProvisionRequest::new("s", "p")
        .guids("o", "sp")
        .maintenance_info(MaintenanceInfo::version("1.0.0"));
    // Default (spec 4.2): omitted silently.
    let c = client(&server, ApiVersion::V2_14);
    c.provision("i", &req, &CallOptions::new()).await.unwrap();
    let body: serde_json::Value =
        serde_json::from_slice(&common::last(&server).await.body).unwrap();
    assert!(body.get("maintenance_info").is_none());
    // Opt-in: a clear error and no request.
    let strict = klutch_osb::Client::builder(server.uri())
        .api_version(ApiVersion::V2_14)
        .reject_unsupported_fields(true)
        .build()
        .unwrap();
    let before = server.received_requests().await.unwrap().len();
    let e = strict
        .provision("i", &req, &CallOptions::new())
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Gate(Gate::UnsupportedByVersion {
                needed: ApiVersion::V2_15,
                ..
            })
        ),
        "{e}"
    );
    let ctx = ProvisionRequest::new("s", "p").context(Context::kubernetes("n", "c"));
    let old = klutch_osb::Client::builder(server.uri())
        .api_version(ApiVersion::V2_11)
        .reject_unsupported_fields(true)
        .build()
        .unwrap();
    assert!(matches!(
        old.provision("i", &ctx, &CallOptions::new()).await,
        Err(Error::Gate(_))
    ));
    let id = CallOptions::new().originating_identity(OriginatingIdentity::cloudfoundry("u"));
    let v212 = klutch_osb::Client::builder(server.uri())
        .api_version(ApiVersion::V2_12)
        .reject_unsupported_fields(true)
        .build()
        .unwrap();
    assert!(matches!(
        v212.deprovision("i", "s", "p", &id).await,
        Err(Error::Gate(_))
    ));
    let v215 = klutch_osb::Client::builder(server.uri())
        .api_version(ApiVersion::V2_15)
        .reject_unsupported_fields(true)
        .build()
        .unwrap();
    assert!(matches!(
        v215.fetch_instance("i", Some("s"), None, &CallOptions::new())
            .await,
        Err(Error::Gate(_))
    ));
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        before,
        "nothing was sent"
    );
    // Requests without such fields still work in the strict mode.
    strict
        .provision(
            "i",
            &ProvisionRequest::new("s", "p").guids("o", "sp"),
            &CallOptions::new(),
        )
        .await
        .unwrap();
}
