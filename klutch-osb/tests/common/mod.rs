//! Helpers shared by the wiremock tests.
#![allow(dead_code, unreachable_pub)]

pub mod tls;

use klutch_osb::testing::server::WireRequest;
use klutch_osb::{ApiVersion, Client, RequestIdentity};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// A request as pinned in snapshots.
pub type Rec = WireRequest;

/// The snapshot record of a request wiremock received.
pub fn rec(r: &Request) -> Rec {
    WireRequest::new(&r.method, &r.url, &r.headers, &r.body).expect("request bodies are JSON")
}

/// A server answering every request with `status` and `body`.
pub async fn server(status: u16, body: &str) -> MockServer {
    let s = MockServer::start().await;
    Mock::given(any())
        .respond_with(
            ResponseTemplate::new(status).set_body_raw(body.to_owned(), "application/json"),
        )
        .mount(&s)
        .await;
    s
}

/// A client with basic auth and a fixed request identity.
pub fn client(server: &MockServer, version: ApiVersion) -> Client {
    Client::builder(format!("{}/", server.uri()))
        .api_version(version)
        .basic_auth("user", "pass")
        .request_identity(RequestIdentity::Fixed("req-1".into()))
        .build()
        .expect("client builds")
}

/// The last request the server received.
pub async fn last(server: &MockServer) -> Request {
    server
        .received_requests()
        .await
        .expect("recording on")
        .pop()
        .expect("a request was made")
}
