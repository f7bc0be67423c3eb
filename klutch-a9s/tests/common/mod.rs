//! Helpers shared by the wiremock tests.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// A request as pinned in snapshots.
#[derive(Debug, Serialize)]
pub struct Rec {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub body: Option<Value>,
}

impl From<&Request> for Rec {
    fn from(r: &Request) -> Self {
        let headers = r
            .headers
            .iter()
            .filter(|(k, _)| k.as_str() != "host")
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        Rec {
            method: r.method.to_string(),
            path: r.url.path().to_owned(),
            query: r.url.query().map(str::to_owned),
            headers,
            body: if r.body.is_empty() {
                None
            } else {
                Some(serde_json::from_slice(&r.body).expect("request bodies are JSON"))
            },
        }
    }
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
        .map(Rec::from)
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
