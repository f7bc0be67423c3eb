//! The fake-HTTP core that in-process fakes are built on (this crate's [`FakeBroker`] and the
//! a9s fakes of `klutch-a9s`): an axum server on `127.0.0.1:<random port>` that stops when
//! dropped ([`FakeServer`]), requests read whole ([`Incoming`]), a request log with fault
//! injection ([`Journal`], [`FaultAction`], [`Recorded`]), basic-auth checks and JSON answers.
//! It knows nothing about the API a fake serves: routes are the fake's own `Copy` enum.
//!
//! A fake's handler reads the request, names its route, lets the journal record it and apply
//! an injected fault, then answers:
//!
//! ```
//! use axum::body::Body;
//! use axum::extract::State;
//! use axum::http::{Request, Response};
//! use klutch_osb::testing::server::{FakeServer, FaultAction, Incoming, Journal, json};
//! use serde_json::json;
//!
//! #[derive(Debug, Clone, Copy, PartialEq, Eq)]
//! enum Route { Ping, Other }
//!
//! async fn handle(State(journal): State<Journal<Route>>, req: Request<Body>) -> Response<Body> {
//!     let req = Incoming::read(req, 1024 * 1024).await;
//!     let route = match req.segments().as_slice() {
//!         ["ping"] => Route::Ping,
//!         _ => Route::Other,
//!     };
//!     if let Some(fault) = journal.admit(&req, route).await {
//!         return fault;
//!     }
//!     match route {
//!         Route::Ping => json(200, &json!({"pong": true})),
//!         Route::Other => json(404, &json!({})),
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let journal = Journal::new("{\"pong\": ");
//! let app = axum::Router::new().fallback(handle).with_state(journal.clone());
//! let server = FakeServer::start(app).await?;
//! journal.inject(Some(Route::Ping), FaultAction::Respond { status: 503, body: String::new() }, Some(1));
//! // ... point a client at server.url() ...
//! assert_eq!(journal.count(Route::Ping), 0);
//! # Ok(()) }
//! ```
//!
//! [`FakeBroker`]: super::FakeBroker

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Request, Response, StatusCode};
use base64::Engine as _;
use serde::Serialize;
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;

/// A running server task on `127.0.0.1:<random port>`; stops when dropped.
#[derive(Debug)]
pub struct FakeServer {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl FakeServer {
    /// Binds `127.0.0.1:0` and serves `app` on a spawned task until dropped.
    pub async fn start(app: axum::Router) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(FakeServer {
            addr,
            shutdown: Some(tx),
        })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, e.g. `http://127.0.0.1:43210`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultAction {
    /// Answer with this status and raw body (no processing).
    Respond {
        /// The status.
        status: u16,
        /// The raw body.
        body: String,
    },
    /// Answer with this status and a body that is not valid JSON.
    MalformedJson {
        /// The status.
        status: u16,
    },
    /// Sleep, then process normally (for timeouts and slow servers).
    Delay(Duration),
}

/// A request a fake received, as kept in its log.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded<R> {
    /// The endpoint.
    pub route: R,
    /// The method.
    pub method: String,
    /// The raw (encoded) path.
    pub path: String,
    /// Decoded query parameters in order.
    pub query: Vec<(String, String)>,
    /// Headers (lower-case names); `authorization` is redacted.
    pub headers: Vec<(String, String)>,
    /// The JSON body, if any.
    pub body: Option<Value>,
}

impl<R> Recorded<R> {
    /// The first value of a query parameter.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        first(&self.query, name)
    }

    /// The first value of a header (lower-case name).
    pub fn header(&self, name: &str) -> Option<&str> {
        first(&self.headers, name)
    }
}

fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// A request read whole, with its path segments and query decoded.
#[derive(Debug)]
pub struct Incoming {
    /// Method, URI, headers.
    pub parts: Parts,
    /// The raw body (empty when it could not be read within the limit).
    pub body: Bytes,
    /// The percent-decoded path segments (`/v2/catalog` is `["v2", "catalog"]`).
    pub segments: Vec<String>,
    /// The percent-decoded query parameters in order.
    pub query: Vec<(String, String)>,
    /// The body as JSON, when it is JSON.
    pub json: Option<Value>,
}

impl Incoming {
    /// Reads `req`, its body up to `limit` bytes.
    pub async fn read(req: Request<Body>, limit: usize) -> Self {
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, limit).await.unwrap_or_default();
        let segments = parts
            .uri
            .path()
            .trim_start_matches('/')
            .split('/')
            .map(decode)
            .collect();
        let query = parts
            .uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(v))
            })
            .collect();
        let json = if body.is_empty() {
            None
        } else {
            serde_json::from_slice(&body).ok()
        };
        Incoming {
            parts,
            body,
            segments,
            query,
            json,
        }
    }

    /// The path segments as `&str`, for slice patterns.
    pub fn segments(&self) -> Vec<&str> {
        self.segments.iter().map(String::as_str).collect()
    }

    /// The first value of a query parameter.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        first(&self.query, name)
    }

    /// The log entry of this request under `route` (`authorization` redacted).
    pub fn record<R>(&self, route: R) -> Recorded<R> {
        Recorded {
            route,
            method: self.parts.method.to_string(),
            path: self.parts.uri.path().to_owned(),
            query: self.query.clone(),
            headers: self
                .parts
                .headers
                .iter()
                .map(|(k, v)| {
                    let v = if k.as_str() == "authorization" {
                        "[REDACTED]".to_owned()
                    } else {
                        String::from_utf8_lossy(v.as_bytes()).into_owned()
                    };
                    (k.as_str().to_owned(), v)
                })
                .collect(),
            body: self.json.clone(),
        }
    }
}

#[derive(Debug)]
struct Fault<R> {
    route: Option<R>,
    action: FaultAction,
    remaining: Option<u32>,
}

#[derive(Debug)]
struct JournalState<R> {
    log: Vec<Recorded<R>>,
    faults: Vec<Fault<R>>,
}

/// A fake's request log and injected faults, keyed by the fake's route type. Cheap to clone
/// (clones share the log).
#[derive(Debug)]
pub struct Journal<R> {
    state: Arc<Mutex<JournalState<R>>>,
    malformed_body: &'static str,
}

impl<R> Clone for Journal<R> {
    fn clone(&self) -> Self {
        Journal {
            state: self.state.clone(),
            malformed_body: self.malformed_body,
        }
    }
}

impl<R: Copy + PartialEq> Journal<R> {
    /// An empty journal; `malformed_body` is what [`FaultAction::MalformedJson`] answers (a
    /// truncated JSON object in the fake's own shape).
    pub fn new(malformed_body: &'static str) -> Self {
        Journal {
            state: Arc::new(Mutex::new(JournalState {
                log: Vec::new(),
                faults: Vec::new(),
            })),
            malformed_body,
        }
    }

    fn lock(&self) -> MutexGuard<'_, JournalState<R>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Injects a fault for `route` (`None` = every route) for the next `times` matching
    /// requests (`None` = until cleared).
    pub fn inject(&self, route: Option<R>, action: FaultAction, times: Option<u32>) {
        self.lock().faults.push(Fault {
            route,
            action,
            remaining: times,
        });
    }

    /// Removes all faults.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// All requests received so far.
    pub fn requests(&self) -> Vec<Recorded<R>> {
        self.lock().log.clone()
    }

    /// How many requests hit `route`.
    pub fn count(&self, route: R) -> usize {
        self.lock().log.iter().filter(|r| r.route == route).count()
    }

    /// Clears the request log.
    pub fn clear_requests(&self) {
        self.lock().log.clear();
    }

    /// Records `req` under `route` and applies the first fault injected for it: returns the
    /// answer to send instead ([`FaultAction::Respond`], [`FaultAction::MalformedJson`]), or
    /// `None` to process the request normally (after sleeping for [`FaultAction::Delay`]).
    pub async fn admit(&self, req: &Incoming, route: R) -> Option<Response<Body>> {
        let fault = {
            let mut st = self.lock();
            st.log.push(req.record(route));
            let i = st
                .faults
                .iter()
                .position(|f| f.route.is_none_or(|r| r == route))?;
            let action = st.faults[i].action.clone();
            if let Some(n) = st.faults[i].remaining.as_mut() {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    st.faults.remove(i);
                }
            }
            action
        };
        match fault {
            FaultAction::Respond { status, body } => Some(respond(status, body)),
            FaultAction::MalformedJson { status } => Some(respond(status, self.malformed_body)),
            FaultAction::Delay(d) => {
                tokio::time::sleep(d).await;
                None
            }
        }
    }
}

/// An answer with this status and raw body, labelled `application/json`.
pub fn respond(status: u16, body: impl Into<Body>) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// A JSON answer.
pub fn json(status: u16, body: &Value) -> Response<Body> {
    respond(status, body.to_string())
}

/// An OSB-style error answer: `{"error": code, "description": description}` (`error` omitted
/// when `code` is `None`).
pub fn error(status: u16, code: Option<&str>, description: &str) -> Response<Body> {
    let mut m = Map::new();
    if let Some(c) = code {
        m.insert("error".into(), json!(c));
    }
    m.insert("description".into(), json!(description));
    json(status, &Value::Object(m))
}

/// True when no credentials are required, or the request carries exactly these as basic auth.
pub fn basic_auth_ok(headers: &HeaderMap, credentials: Option<&(String, String)>) -> bool {
    match credentials {
        None => true,
        Some((u, p)) => {
            let want = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            );
            headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(want.as_str())
        }
    }
}

/// A request reduced to what went over the wire, in a stable shape for snapshot tests: method,
/// raw path and query, the headers sorted (without `host`, which carries the random port) and
/// the JSON body. Build it from whatever recorded the request (wiremock, a proxy, ...).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WireRequest {
    /// The method.
    pub method: String,
    /// The raw (encoded) path.
    pub path: String,
    /// The raw query, if any.
    pub query: Option<String>,
    /// Every header but `host`, verbatim (credentials included: use test credentials).
    pub headers: BTreeMap<String, String>,
    /// The JSON body, if any.
    pub body: Option<Value>,
}

impl WireRequest {
    /// Builds the record; `Err` when a non-empty body is not JSON.
    pub fn new(
        method: &http::Method,
        url: &url::Url,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Self, serde_json::Error> {
        let headers = headers
            .iter()
            .filter(|(k, _)| k.as_str() != "host")
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        Ok(WireRequest {
            method: method.to_string(),
            path: url.path().to_owned(),
            query: url.query().map(str::to_owned),
            headers,
            body: if body.is_empty() {
                None
            } else {
                Some(serde_json::from_slice(body)?)
            },
        })
    }
}
