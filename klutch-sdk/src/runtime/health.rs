//! The HTTP endpoints every binary serves besides its own: `GET /healthz` and `GET /metrics`, and
//! a server to run them on.
//!
//! - `/healthz` runs the [`HealthChecks`]. With none it answers `200 ok` (plain text). With some it
//!   answers JSON with each check's name and `"ok"` or `"degraded"`, status 200 when all are ok,
//!   else 500; e.g. the konnector's `{"leaderElection": "ok"}` from
//!   [`HealthChecks::leader_election`].
//! - `/metrics` answers the OpenMetrics text of a prometheus-client registry
//!   ([`Endpoints::registry`]) or of any encoder ([`Endpoints::metrics`]).
//!
//! [`Endpoints`] builds the router; a binary adds its own routes with [`Endpoints::route`] or
//! merges the router into its own. [`serve`] binds (with a typed [`Error::Listen`]) and serves in
//! the background; [`Server`] serves in the foreground, over TLS if wanted, until a shutdown.
//! [`Server::serve_with`] adds [`ServeOptions`] for servers facing untrusted clients: a header
//! read timeout, a request-body read timeout and a limit on open connections, so that half-sent
//! requests are closed instead of held.
//!
//! ```no_run
//! use std::sync::Arc;
//! use prometheus_client::registry::Registry;
//! use klutch_sdk::runtime::health::{Endpoints, HealthChecks, serve};
//! use klutch_sdk::runtime::lease::LeaderState;
//!
//! # async fn demo() -> Result<(), klutch_sdk::runtime::health::Error> {
//! let leader = Arc::new(LeaderState::default());
//! let registry = Arc::new(Registry::with_prefix("my_agent"));
//! let app = Endpoints::new()
//!     .healthz(HealthChecks::new().leader_election(leader))
//!     .registry(registry)
//!     .route("/version", axum::routing::get(|| async { "1.0.0" }))
//!     .router();
//! let addr = serve("0.0.0.0:8080".parse().unwrap(), app).await?;
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use super::lease::LeaderState;

/// The content type of `/metrics`.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The name of the leader-election check (Klutch's konnector's).
pub const LEADER_ELECTION: &str = "leaderElection";

/// Why a server could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Binding the address failed (in use, not allowed, not local).
    #[error("listen on {addr}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("serve HTTP on {addr}")]
    Serve {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

type Check = Arc<dyn Fn() -> bool + Send + Sync>;

/// Named checks behind `/healthz`; each says whether it is ok.
#[derive(Clone, Default)]
pub struct HealthChecks {
    checks: Vec<(String, Check)>,
}

impl std::fmt::Debug for HealthChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.checks.iter().map(|(name, _)| name))
            .finish()
    }
}

impl HealthChecks {
    /// No checks: `/healthz` answers plain `ok`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds check `name`, ok when `check` returns `true`.
    pub fn check(
        mut self,
        name: impl Into<String>,
        check: impl Fn() -> bool + Send + Sync + 'static,
    ) -> Self {
        self.checks.push((name.into(), Arc::new(check)));
        self
    }

    /// Adds [`LEADER_ELECTION`]: degraded while `state` is a leader whose renewals stopped
    /// ([`LeaderState::healthy`]).
    pub fn leader_election(self, state: Arc<LeaderState>) -> Self {
        self.check(LEADER_ELECTION, move || state.healthy())
    }

    /// Runs the checks: whether all are ok, and each one's `ok` or `degraded`.
    ///
    /// ```
    /// use klutch_sdk::runtime::health::HealthChecks;
    /// let (ok, report) = HealthChecks::new().check("db", || false).report();
    /// assert!(!ok);
    /// assert_eq!(report["db"], "degraded");
    /// ```
    pub fn report(&self) -> (bool, BTreeMap<String, &'static str>) {
        let mut all = true;
        let report = self
            .checks
            .iter()
            .map(|(name, check)| {
                let ok = check();
                all &= ok;
                (name.clone(), if ok { "ok" } else { "degraded" })
            })
            .collect();
        (all, report)
    }

    fn respond(&self) -> Response {
        if self.checks.is_empty() {
            return "ok".into_response();
        }
        let (ok, report) = self.report();
        let status = if ok {
            StatusCode::OK
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        (status, axum::Json(report)).into_response()
    }
}

/// The answer of `/metrics` for an encoding: the text, or 500 when encoding failed.
fn metrics_response(text: Result<String, std::fmt::Error>) -> Response {
    match text {
        Ok(body) => ([(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], body).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "encode metrics").into_response(),
    }
}

/// Builds the router of `/healthz`, `/metrics` and a binary's own routes.
#[derive(Debug, Default)]
pub struct Endpoints {
    router: axum::Router,
}

impl Endpoints {
    /// No routes yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// `GET /healthz` running `checks`.
    pub fn healthz(self, checks: HealthChecks) -> Self {
        self.route(
            "/healthz",
            get(move || std::future::ready(checks.respond())),
        )
    }

    /// `GET /metrics` answering what `encode` returns (OpenMetrics text).
    pub fn metrics(self, encode: impl Fn() -> String + Clone + Send + Sync + 'static) -> Self {
        self.route(
            "/metrics",
            get(move || std::future::ready(metrics_response(Ok(encode())))),
        )
    }

    /// `GET /metrics` encoding `registry`.
    pub fn registry(self, registry: Arc<Registry>) -> Self {
        self.route(
            "/metrics",
            get(move || {
                let mut body = String::new();
                let encoded = prometheus_client::encoding::text::encode(&mut body, &registry);
                std::future::ready(metrics_response(encoded.map(|()| body)))
            }),
        )
    }

    /// Any other route, e.g. provider-anynines' `/backend-health`.
    pub fn route(mut self, path: &str, method_router: MethodRouter) -> Self {
        self.router = self.router.route(path, method_router);
        self
    }

    /// The router.
    pub fn router(self) -> axum::Router {
        self.router
    }
}

/// Limits of a server facing untrusted clients ([`Server::serve_with`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServeOptions {
    /// How long a client may take to send a request's headers (HTTP/1; also the idle time
    /// before the next request on a kept-alive connection). The connection is closed after it.
    pub header_read_timeout: Duration,
    /// How long a client may take to send a request's body; then `408 Request Timeout`.
    pub body_read_timeout: Duration,
    /// Open connections at most; further clients wait in the listen backlog until one closes.
    pub max_connections: usize,
}

impl Default for ServeOptions {
    /// 10 s for headers, 30 s for a body, 1024 connections.
    fn default() -> Self {
        ServeOptions {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_connections: 1024,
        }
    }
}

/// Serves `router` on `listener` with `options` until `shutdown`, then lets open requests finish.
/// Each request carries the peer as [`axum::extract::ConnectInfo<SocketAddr>`].
async fn serve_limited<L>(
    mut listener: L,
    router: axum::Router,
    options: ServeOptions,
    shutdown: impl Future + Send + 'static,
) where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use tower::ServiceExt as _;

    let router = router.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
        options.body_read_timeout,
    ));
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(options.header_read_timeout))
        .keep_alive_timeout(options.header_read_timeout);
    let builder = Arc::new(builder);
    let slots = Arc::new(tokio::sync::Semaphore::new(options.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            _ = shutdown.as_mut() => break,
        };
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.as_mut() => break,
        };
        let service = router.clone().map_request(
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                req
            },
        );
        let service = hyper_util::service::TowerToHyperService::new(service);
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(io), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection closed with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// A bound HTTP server.
#[derive(Debug)]
pub struct Server {
    tcp: TcpListener,
    addr: SocketAddr,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port, see [`local_addr`](Self::local_addr)).
    pub async fn bind(addr: SocketAddr) -> Result<Self> {
        let listen = |source| Error::Listen { addr, source };
        let tcp = TcpListener::bind(addr).await.map_err(listen)?;
        let addr = tcp.local_addr().map_err(listen)?;
        Ok(Server { tcp, addr })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `router` over plain HTTP until `shutdown` resolves, then finishes the open requests.
    pub async fn serve(
        self,
        router: axum::Router,
        shutdown: impl Future + Send + 'static,
    ) -> Result<()> {
        let addr = self.addr;
        axum::serve(self.tcp, router)
            .with_graceful_shutdown(async move {
                shutdown.await;
            })
            .await
            .map_err(|source| Error::Serve { addr, source })
    }

    /// Serves `router` over TLS with `config` (see [`super::tls`]) until `shutdown` resolves.
    pub async fn serve_tls(
        self,
        router: axum::Router,
        config: Arc<rustls::ServerConfig>,
        shutdown: impl Future + Send + 'static,
    ) -> Result<()> {
        let addr = self.addr;
        let listener = super::tls::TlsListener::new(self.tcp, config)
            .map_err(|source| Error::Listen { addr, source })?;
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                shutdown.await;
            })
            .await
            .map_err(|source| Error::Serve { addr, source })
    }

    /// Serves `router` with `options` (timeouts, connection limit), over TLS when `tls` is given,
    /// until `shutdown` resolves; then finishes the open requests.
    pub async fn serve_with(
        self,
        router: axum::Router,
        options: ServeOptions,
        tls: Option<Arc<rustls::ServerConfig>>,
        shutdown: impl Future + Send + 'static,
    ) -> Result<()> {
        let addr = self.addr;
        match tls {
            Some(config) => {
                let listener = super::tls::TlsListener::with_handshake_timeout(
                    self.tcp,
                    config,
                    options.header_read_timeout,
                )
                .map_err(|source| Error::Listen { addr, source })?;
                serve_limited(listener, router, options, shutdown).await;
            }
            None => serve_limited(self.tcp, router, options, shutdown).await,
        }
        Ok(())
    }

    /// Serves `router` over plain HTTP in a background task, logging when it fails.
    pub fn spawn(self, router: axum::Router) -> tokio::task::JoinHandle<Result<()>> {
        tracing::info!(addr = %self.addr, "HTTP server listening");
        tokio::spawn(async move {
            let served = self.serve(router, std::future::pending::<()>()).await;
            if let Err(e) = &served {
                tracing::error!(error = %e, "the HTTP server stopped");
            }
            served
        })
    }
}

/// Binds `addr` and serves `router` in the background ([`Server::spawn`]); returns the bound
/// address.
pub async fn serve(addr: SocketAddr, router: axum::Router) -> Result<SocketAddr> {
    let server = Server::bind(addr).await?;
    let bound = server.local_addr();
    drop(server.spawn(router));
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::counter::Counter;

    use super::*;

    async fn get(addr: SocketAddr, path: &str) -> (u16, Option<String>, String) {
        let resp = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, content_type, resp.text().await.unwrap())
    }

    #[tokio::test]
    async fn healthz_is_plain_ok_without_checks_and_json_with_them() {
        let leader = Arc::new(LeaderState::default());
        let degraded = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = degraded.clone();
        let with_checks = Endpoints::new()
            .healthz(HealthChecks::new().leader_election(leader))
            .router();
        let failing = Endpoints::new()
            .healthz(HealthChecks::new().check("leaderElection", move || {
                !flag.load(std::sync::atomic::Ordering::Relaxed)
            }))
            .router();
        let plain = Endpoints::new()
            .healthz(HealthChecks::new())
            .route("/backend-health", axum::routing::get(|| async { "{}" }))
            .router();
        let with_checks = serve("127.0.0.1:0".parse().unwrap(), with_checks)
            .await
            .unwrap();
        let failing = serve("127.0.0.1:0".parse().unwrap(), failing)
            .await
            .unwrap();
        let plain = serve("127.0.0.1:0".parse().unwrap(), plain).await.unwrap();

        let (status, ct, body) = get(with_checks, "/healthz").await;
        assert_eq!((status, body.as_str()), (200, r#"{"leaderElection":"ok"}"#));
        assert_eq!(ct.as_deref(), Some("application/json"));
        degraded.store(true, std::sync::atomic::Ordering::Relaxed);
        let (status, _, body) = get(failing, "/healthz").await;
        assert_eq!(
            (status, body.as_str()),
            (500, r#"{"leaderElection":"degraded"}"#)
        );

        let (status, ct, body) = get(plain, "/healthz").await;
        assert_eq!((status, body.as_str()), (200, "ok"));
        assert!(ct.unwrap().starts_with("text/plain"));
        assert_eq!(get(plain, "/backend-health").await.2, "{}");
        assert_eq!(get(plain, "/metrics").await.0, 404);
    }

    #[tokio::test]
    async fn metrics_are_openmetrics_text() {
        let mut registry = Registry::with_prefix("demo");
        let counter = Counter::<u64>::default();
        registry.register("things", "Things", counter.clone());
        counter.inc();
        let from_registry = serve(
            "127.0.0.1:0".parse().unwrap(),
            Endpoints::new().registry(Arc::new(registry)).router(),
        )
        .await
        .unwrap();
        let (status, ct, body) = get(from_registry, "/metrics").await;
        assert_eq!(status, 200);
        assert_eq!(ct.as_deref(), Some(OPENMETRICS_CONTENT_TYPE));
        assert!(body.contains("demo_things_total 1"), "{body}");
        assert!(body.ends_with("# EOF\n"), "{body}");

        let from_encoder = serve(
            "127.0.0.1:0".parse().unwrap(),
            Endpoints::new()
                .metrics(|| "x 1\n# EOF\n".to_owned())
                .router(),
        )
        .await
        .unwrap();
        assert_eq!(get(from_encoder, "/metrics").await.2, "x 1\n# EOF\n");
    }

    #[tokio::test]
    async fn a_taken_port_is_a_listen_error_naming_the_address() {
        let first = Server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = first.local_addr();
        let err = Server::bind(addr).await.unwrap_err();
        assert!(matches!(&err, Error::Listen { addr: a, .. } if *a == addr));
        assert_eq!(err.to_string(), format!("listen on {addr}"));
    }

    #[tokio::test]
    async fn serve_stops_on_shutdown() {
        let server = Server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = server.local_addr();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = Endpoints::new().healthz(HealthChecks::new()).router();
        let running = tokio::spawn(server.serve(app, rx));
        assert_eq!(get(addr, "/healthz").await.2, "ok");
        tx.send(()).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(10), running)
            .await
            .expect("stops")
            .unwrap()
            .unwrap();
    }
}
