//! Helpers shared by the wiremock tests.
#![allow(dead_code, unreachable_pub)]

use klutch_osb::testing::server::WireRequest;
use serde::Serialize;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// A request as pinned in snapshots.
pub type Rec = WireRequest;

/// The snapshot record of a request wiremock received.
pub fn rec(r: &Request) -> Rec {
    WireRequest::new(&r.method, &r.url, &r.headers, &r.body).expect("request bodies are JSON")
}

/// A server answering every request with `status` and a raw `body`.
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

/// The requests the server received.
pub async fn requests(server: &MockServer) -> Vec<Rec> {
    server
        .received_requests()
        .await
        .expect("recording on")
        .iter()
        .map(rec)
        .collect()
}

/// One request/response exchange as pinned in snapshots.
#[derive(Debug, Serialize)]
pub struct Exchange {
    pub case: String,
    pub response: String,
    pub requests: Vec<Rec>,
    pub result: String,
}
