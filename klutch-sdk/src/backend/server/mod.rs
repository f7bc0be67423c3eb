//! The bind protocol's HTTP side (spec §3) on top of a [`BindingBackend`]: an axum router with
//! `/export`, `/authorize`, `/callback`, `/resources`, `/bind`, `/healthz` and the device flow's
//! `/device/authorize`, `/device/consent` and `/device/token`.
//!
//! Every answer carries `X-Content-Type-Options: nosniff` (error texts echo input). The login
//! endpoints (`/authorize`, `/callback`, `/device/*`) are rate limited per client when
//! [`ServerConfig::login_rate_limit`] is set ([`rate_limit`]). Timeouts and the connection
//! limit belong to the listener: serve the router with
//! [`runtime::health::Server::serve_with`](crate::runtime::health::Server::serve_with).
//!
//! Stateless: everything a login needs between requests travels in signed state and sealed
//! cookies, so any replica with the same [`SessionKeys`] can serve any request.
//!
//! The handlers are private: a backend builds a [`Server`] and serves its [`Server::router`]
//! (adding routes of its own, e.g. a login page, where it needs them). The documents the
//! handlers answer with are the shared wire types of [`crate::api::wire`].

mod catalogue;
mod device;
mod login;
mod problem;
pub mod rate_limit;
mod resources_page;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::binding_space::BindingSpaces;
use super::contract::BindingBackend;
use super::keys::SessionKeys;

pub use catalogue::binding_response;
pub use device::REDEMPTION_LABEL;
pub use problem::valid_id;
pub use rate_limit::LoginRateLimit;
pub use resources_page::escape_html;

/// HTTP settings of the protocol server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Cookie and state keys.
    pub keys: SessionKeys,
    /// The backend's version for `/export` (`vX.Y.Z`).
    pub version: String,
    /// `--oidc-authorize-url`: advertised instead of `<scheme>://<host>/authorize`.
    pub authorize_url: Option<String>,
    /// The `/callback` URL registered at the IdP (`--oidc-callback-url`); derived from the
    /// request when unset.
    pub callback_url: Option<String>,
    /// Whether the server itself terminates TLS (then the scheme is https and cookies `Secure`,
    /// whatever `X-Forwarded-Proto` says).
    pub tls: bool,
    /// Trust `X-Forwarded-Proto`/`X-Forwarded-Host`/`X-Forwarded-For` (`--trust-forwarded-headers`).
    pub trust_forwarded_headers: bool,
    /// Per-client rate limit of the login endpoints (`--login-rate-limit`); `None`: unlimited.
    pub login_rate_limit: Option<LoginRateLimit>,
    /// Hosts besides `localhost`/`127.0.0.1` that `u` may point to (`--allowed-redirect-hosts`).
    pub allowed_redirect_hosts: Vec<String>,
}

impl ServerConfig {
    /// Settings with random keys, the crate's version and no overrides (tests, development).
    pub fn new(keys: SessionKeys) -> Self {
        ServerConfig {
            keys,
            version: format!("v{}", env!("CARGO_PKG_VERSION")),
            authorize_url: None,
            callback_url: None,
            tls: false,
            trust_forwarded_headers: false,
            login_rate_limit: None,
            allowed_redirect_hosts: Vec::new(),
        }
    }
}

/// What every handler shares: the backend, its binding spaces and the settings.
struct Inner<B> {
    backend: Arc<B>,
    spaces: Arc<BindingSpaces>,
    config: ServerConfig,
    redeemed: device::Redeemed,
}

/// The protocol server of one backend.
pub struct Server<B> {
    inner: Arc<Inner<B>>,
}

impl<B> Clone for Server<B> {
    fn clone(&self) -> Self {
        Server {
            inner: self.inner.clone(),
        }
    }
}

impl<B: BindingBackend> Server<B> {
    /// A server for `backend`, creating binding spaces with `spaces`.
    pub fn new(backend: Arc<B>, spaces: Arc<BindingSpaces>, config: ServerConfig) -> Self {
        Server {
            inner: Arc::new(Inner {
                backend,
                spaces,
                config,
                redeemed: device::Redeemed::default(),
            }),
        }
    }

    /// Records redeemed device codes as Leases (label
    /// `klutch.anynines.com/device-redemption`) in `namespace` of the provider cluster, so that
    /// no replica with the same keys hands out a second session for one device code (without it,
    /// only this process remembers). Needs `create`, `list` and `delete` on Leases there.
    ///
    /// # Panics
    /// When called after the server was cloned.
    pub fn device_redemptions_in(mut self, client: kube::Client, namespace: &str) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("device_redemptions_in is called before the server is cloned")
            .redeemed
            .cluster = Some(kube::Api::namespaced(client, namespace));
        self
    }

    /// The router. Serve it with `axum::serve` (plain) or behind a TLS acceptor.
    pub fn router(&self) -> Router {
        let mut login = Router::new()
            .route("/authorize", get(login::authorize::<B>))
            .route(
                "/callback",
                get(login::callback_get::<B>).post(login::callback_post::<B>),
            )
            .route("/device/authorize", post(device::authorize::<B>))
            .route("/device/consent", get(device::consent::<B>))
            .route("/device/token", post(device::token::<B>))
            .with_state(self.inner.clone());
        if let Some(limit) = &self.inner.config.login_rate_limit {
            login = login.layer(axum::middleware::from_fn_with_state(
                rate_limit::Limiter::new(limit, self.inner.config.trust_forwarded_headers),
                rate_limit::limit,
            ));
        }
        Router::new()
            .route("/export", get(login::export::<B>))
            .route("/resources", get(catalogue::resources::<B>))
            .route("/bind", get(catalogue::bind::<B>))
            .route("/healthz", get(|| async { "ok" }))
            .with_state(self.inner.clone())
            .merge(login)
            .layer(tower_http::set_header::SetResponseHeaderLayer::overriding(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ))
    }
}

impl<B> Inner<B> {
    /// `scheme://host` as the client reached us.
    fn external_base(&self, headers: &HeaderMap) -> String {
        let get = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(',').next().unwrap_or_default().trim().to_owned())
        };
        let forwarded = |name| {
            self.config
                .trust_forwarded_headers
                .then(|| get(name))
                .flatten()
        };
        // A TLS connection is https whatever a client claims; behind a TLS-terminating proxy the
        // (trusted) proxy's X-Forwarded-Proto decides.
        let scheme = if self.config.tls {
            "https".to_owned()
        } else {
            forwarded("x-forwarded-proto")
                .filter(|p| matches!(p.as_str(), "http" | "https"))
                .unwrap_or_else(|| "http".into())
        };
        let host = forwarded("x-forwarded-host")
            .or_else(|| get("host"))
            .unwrap_or_else(|| "localhost".into());
        format!("{scheme}://{host}")
    }

    fn secure(&self, headers: &HeaderMap) -> bool {
        self.config.tls || self.external_base(headers).starts_with("https://")
    }

    /// The client's address: the peer, or with trusted forwarded headers the last
    /// `X-Forwarded-For` entry (the one the proxy added).
    fn client_address(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<String> {
        rate_limit::client_ip(peer, headers, self.config.trust_forwarded_headers)
            .map(|ip: IpAddr| ip.to_string())
    }

    fn callback_url(&self, headers: &HeaderMap) -> String {
        self.config
            .callback_url
            .clone()
            .unwrap_or_else(|| format!("{}/callback", self.external_base(headers)))
    }
}

fn redirect_with_cookies(location: &str, cookies: &[String]) -> Response {
    let mut resp = StatusCode::FOUND.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::LOCATION,
        HeaderValue::from_str(location).expect("a URL is a header value"),
    );
    for c in cookies {
        h.append(
            header::SET_COOKIE,
            HeaderValue::from_str(c).expect("a cookie is a header value"),
        );
    }
    resp
}
