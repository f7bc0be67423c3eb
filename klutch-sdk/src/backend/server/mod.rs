//! The bind protocol's HTTP side (spec §3) on top of a [`BindingBackend`]: an axum router with
//! `/export`, `/authorize`, `/callback`, `/resources`, `/bind`, `/healthz` and the device flow's
//! `/device/authorize` and `/device/token`.
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
mod resources_page;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::binding_space::BindingSpaces;
use super::contract::BindingBackend;
use super::keys::SessionKeys;

pub use catalogue::binding_response;
pub use problem::valid_id;
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
    /// Whether the server itself terminates TLS (then the scheme is https and cookies `Secure`).
    pub tls: bool,
    /// Trust `X-Forwarded-Proto`/`X-Forwarded-Host` (`--trust-forwarded-headers`).
    pub trust_forwarded_headers: bool,
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
            allowed_redirect_hosts: Vec::new(),
        }
    }
}

/// What every handler shares: the backend, its binding spaces and the settings.
struct Inner<B> {
    backend: Arc<B>,
    spaces: Arc<BindingSpaces>,
    config: ServerConfig,
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
            }),
        }
    }

    /// The router. Serve it with `axum::serve` (plain) or behind a TLS acceptor.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/export", get(login::export::<B>))
            .route("/authorize", get(login::authorize::<B>))
            .route(
                "/callback",
                get(login::callback_get::<B>).post(login::callback_post::<B>),
            )
            .route("/resources", get(catalogue::resources::<B>))
            .route("/bind", get(catalogue::bind::<B>))
            .route("/healthz", get(|| async { "ok" }))
            .route(
                "/device/authorize",
                axum::routing::post(device::authorize::<B>),
            )
            .route("/device/token", axum::routing::post(device::token::<B>))
            .with_state(self.inner.clone())
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
        let scheme = forwarded("x-forwarded-proto")
            .unwrap_or_else(|| if self.config.tls { "https" } else { "http" }.into());
        let host = forwarded("x-forwarded-host")
            .or_else(|| get("host"))
            .unwrap_or_else(|| "localhost".into());
        format!("{scheme}://{host}")
    }

    fn secure(&self, headers: &HeaderMap) -> bool {
        self.external_base(headers).starts_with("https://")
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
