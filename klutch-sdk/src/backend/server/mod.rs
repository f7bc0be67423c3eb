//! The bind protocol's HTTP side (spec §3) on top of a [`BindingBackend`]: an axum router with
//! `/export`, `/authorize`, `/callback`, `/resources`, `/bind`, `/healthz` and the device flow's
//! `/device/authorize` and `/device/token`.
//!
//! Stateless: everything a login needs between requests travels in signed state and sealed
//! cookies, so any replica with the same [`SessionKeys`] can serve any request.

use std::sync::Arc;

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use super::binding_space::BindingSpaces;
use super::contract::{AuthError, Authenticator as _, BindingBackend, Offering};
use super::keys::SessionKeys;
use super::session::{self, PendingLogin, Session};
use super::state::{AuthState, STATE_LIFETIME_SECS};
use crate::api::export_request::{APIServiceExportRequestSpec, ExportRequestResource};
use crate::api::wellknown;
use crate::api::wire::{
    APIServiceExportRequestResponse, BindingProvider, BindingResponse,
    BindingResponseAuthentication, CodeGrantSession, RequestMetadata,
};

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

pub(crate) struct Inner<B> {
    pub(crate) backend: Arc<B>,
    pub(crate) spaces: Arc<BindingSpaces>,
    pub(crate) config: ServerConfig,
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

/// A plain-text error answer.
#[derive(Debug)]
pub(crate) struct Problem(pub(crate) StatusCode, pub(crate) String);

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        (
            self.0,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.1,
        )
            .into_response()
    }
}

pub(crate) fn bad_request(msg: impl Into<String>) -> Problem {
    Problem(StatusCode::BAD_REQUEST, msg.into())
}

fn internal(what: &str, err: &dyn std::error::Error) -> Problem {
    tracing::error!(error = %crate_error_chain(err), "{what}");
    Problem(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
}

/// `err` and its sources, `: `-separated.
pub fn crate_error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

pub(crate) fn auth_problem(err: AuthError) -> Problem {
    match &err {
        AuthError::Provider { .. } => {
            tracing::warn!(error = %crate_error_chain(&err), "identity provider failed");
            Problem(
                StatusCode::BAD_GATEWAY,
                "identity provider unavailable".into(),
            )
        }
        AuthError::Unsupported => Problem(StatusCode::NOT_IMPLEMENTED, err.to_string()),
        _ => {
            tracing::info!(error = %crate_error_chain(&err), "login refused");
            Problem(StatusCode::UNAUTHORIZED, crate_error_chain(&err))
        }
    }
}

/// `[A-Za-z0-9]{1,64}`: the accepted form of `sid` and `cid`.
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
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
            .route("/export", get(export::<B>))
            .route("/authorize", get(authorize::<B>))
            .route("/callback", get(callback_get::<B>).post(callback_post::<B>))
            .route("/resources", get(resources::<B>))
            .route("/bind", get(bind::<B>))
            .route("/healthz", get(|| async { "ok" }))
            .route(
                "/device/authorize",
                axum::routing::post(super::device::authorize::<B>),
            )
            .route(
                "/device/token",
                axum::routing::post(super::device::token::<B>),
            )
            .with_state(self.inner.clone())
    }
}

impl<B> Inner<B> {
    /// `scheme://host` as the client reached us.
    pub(crate) fn external_base(&self, headers: &HeaderMap) -> String {
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

    pub(crate) fn secure(&self, headers: &HeaderMap) -> bool {
        self.external_base(headers).starts_with("https://")
    }

    fn callback_url(&self, headers: &HeaderMap) -> String {
        self.config
            .callback_url
            .clone()
            .unwrap_or_else(|| format!("{}/callback", self.external_base(headers)))
    }
}

async fn export<B: BindingBackend>(
    State(inner): State<Arc<Inner<B>>>,
    headers: HeaderMap,
) -> Response {
    let base = inner.external_base(&headers);
    let authorize = inner
        .config
        .authorize_url
        .clone()
        .unwrap_or_else(|| format!("{base}/authorize"));
    let provider = BindingProvider::oauth2(
        inner.backend.pretty_name(),
        &inner.config.version,
        &authorize,
    );
    let mut doc = serde_json::to_value(&provider).expect("BindingProvider serialises");
    if inner.backend.authenticator().supports_device_flow()
        && let Some(methods) = doc["authenticationMethods"].as_array_mut()
    {
        methods.push(super::device::method_entry(&base));
    }
    Json(doc).into_response()
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    u: Option<String>,
    p: Option<String>,
    s: Option<String>,
    c: Option<String>,
}

impl<B> Inner<B> {
    fn allowed_redirect(&self, u: &str) -> bool {
        let Ok(url) = url::Url::parse(u) else {
            return false;
        };
        let host = url.host_str().unwrap_or_default();
        let loopback = url.scheme() == "http" && matches!(host, "localhost" | "127.0.0.1");
        loopback
            || (matches!(url.scheme(), "http" | "https")
                && self.config.allowed_redirect_hosts.iter().any(|h| h == host))
    }
}

async fn authorize<B: BindingBackend>(
    State(inner): State<Arc<Inner<B>>>,
    headers: HeaderMap,
    Query(q): Query<AuthorizeQuery>,
) -> Result<Response, Problem> {
    let redirect = match (q.u.as_deref(), q.p.as_deref()) {
        (Some(u), _) if !u.is_empty() => {
            if !inner.allowed_redirect(u) {
                return Err(bad_request(
                    "redirect URL not allowed: use http://localhost:<port> or a host of --allowed-redirect-hosts",
                ));
            }
            u.to_owned()
        }
        (_, Some(p)) if p.parse::<u16>().is_ok_and(|p| p > 0) => {
            format!("http://localhost:{p}/callback")
        }
        _ => return Err(bad_request("missing redirect url or port")),
    };
    let sid =
        q.s.filter(|s| valid_id(s))
            .ok_or_else(|| bad_request("missing or invalid session id (s)"))?;
    let cid =
        q.c.filter(|c| valid_id(c))
            .ok_or_else(|| bad_request("missing or invalid cluster id (c)"))?;
    let state = AuthState::new(&redirect, &sid, &cid);
    let encoded = state.encode(&inner.config.keys);
    let start = inner
        .backend
        .authenticator()
        .start_login(&encoded, &inner.callback_url(&headers))
        .await
        .map_err(auth_problem)?;
    let pending = PendingLogin {
        nonce: state.nonce.clone(),
        pending: start.pending,
    };
    let name = session::pending_cookie_name(&sid);
    let cookie = session::set_cookie(
        name.clone(),
        inner.config.keys.seal(&name, &pending),
        STATE_LIFETIME_SECS,
        inner.secure(&headers),
    );
    Ok(redirect_with_cookies(&start.location, &[cookie]))
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

/// `/callback` parameters (query or form).
#[derive(Deserialize)]
pub(crate) struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn callback_get<B: BindingBackend>(
    State(inner): State<Arc<Inner<B>>>,
    headers: HeaderMap,
    Query(q): Query<CallbackParams>,
) -> Result<Response, Problem> {
    callback(inner, headers, q).await
}

async fn callback_post<B: BindingBackend>(
    State(inner): State<Arc<Inner<B>>>,
    headers: HeaderMap,
    Form(q): Form<CallbackParams>,
) -> Result<Response, Problem> {
    callback(inner, headers, q).await
}

async fn callback<B: BindingBackend>(
    inner: Arc<Inner<B>>,
    headers: HeaderMap,
    q: CallbackParams,
) -> Result<Response, Problem> {
    if let Some(error) = q.error {
        return Err(bad_request(format!(
            "{error}: {}",
            q.error_description.unwrap_or_default()
        )));
    }
    let (Some(code), Some(state)) = (q.code, q.state) else {
        return Err(bad_request("no code or state in request"));
    };
    let state =
        AuthState::decode(&state, &inner.config.keys).map_err(|e| bad_request(e.to_string()))?;
    let cookies = session::parse_cookies(&headers);
    let pending_name = session::pending_cookie_name(&state.sid);
    let pending: PendingLogin = cookies
        .iter()
        .filter(|c| c.name() == pending_name)
        .find_map(|c| inner.config.keys.open(&pending_name, c.value()))
        .filter(|p: &PendingLogin| p.nonce == state.nonce)
        .ok_or_else(|| bad_request("no login in progress in this browser for this state (replayed or foreign callback)"))?;
    let who = inner
        .backend
        .authenticator()
        .finish_login(&code, &pending.pending, &inner.callback_url(&headers))
        .await
        .map_err(auth_problem)?;
    let session = Session::new(&who, Some(state.redirect_url), &state.sid, &state.cid);
    let secure = inner.secure(&headers);
    let cookies = [
        session::set_cookie(
            session::session_cookie_name(&state.sid),
            session.seal(&inner.config.keys),
            session::SESSION_LIFETIME_SECS,
            secure,
        ),
        session::clear_cookie(pending_name, secure),
    ];
    tracing::info!(sid = %state.sid, issuer = %who.issuer, "login succeeded");
    Ok(redirect_with_cookies(
        &format!("/resources?s={}", state.sid),
        &cookies,
    ))
}

fn no_cache(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::EXPIRES,
        HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 UTC"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate, max-age=0"),
    );
    h.insert("x-accel-expires", HeaderValue::from_static("0"));
    resp
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

#[derive(Deserialize)]
struct SidQuery {
    s: Option<String>,
}

fn require_session<B>(
    inner: &Inner<B>,
    headers: &HeaderMap,
    sid: Option<&str>,
) -> Result<Session, Problem> {
    let sid = sid
        .filter(|s| valid_id(s))
        .ok_or_else(|| bad_request("missing or invalid session id (s)"))?;
    Session::from_cookies(&session::parse_cookies(headers), sid, &inner.config.keys).ok_or_else(
        || {
            Problem(
                StatusCode::UNAUTHORIZED,
                "not logged in: start again with kubectl bind".into(),
            )
        },
    )
}

async fn resources<B: BindingBackend>(
    State(inner): State<Arc<Inner<B>>>,
    headers: HeaderMap,
    Query(q): Query<SidQuery>,
) -> Result<Response, Problem> {
    let session = require_session(&inner, &headers, q.s.as_deref())?;
    let offerings = inner
        .backend
        .catalogue(&session.identity())
        .await
        .map_err(|e| internal("build the catalogue", &e))?;
    let resp = if wants_json(&headers) {
        Json(serde_json::json!({ "resources": offerings })).into_response()
    } else {
        axum::response::Html(super::resources_page::render(
            inner.backend.pretty_name(),
            &session.sid,
            &offerings,
        ))
        .into_response()
    };
    Ok(no_cache(resp))
}

#[derive(Deserialize)]
struct BindQuery {
    s: Option<String>,
    group: Option<String>,
    resource: Option<String>,
}

async fn bind<B: BindingBackend>(
    State(inner): State<Arc<Inner<B>>>,
    headers: HeaderMap,
    Query(q): Query<BindQuery>,
) -> Result<Response, Problem> {
    let session = require_session(&inner, &headers, q.s.as_deref())?;
    let resource = q
        .resource
        .filter(|r| !r.is_empty())
        .ok_or_else(|| bad_request("missing resource"))?;
    let group = q.group.unwrap_or_default();
    let who = session.identity();
    // Decide before touching the cluster (spec §7 item 9).
    let offerings = inner
        .backend
        .catalogue(&who)
        .await
        .map_err(|e| internal("build the catalogue", &e))?;
    let offering: Offering = offerings
        .into_iter()
        .find(|o| o.group == group && o.resource == resource)
        .ok_or_else(|| bad_request(format!("{resource}.{group} is not offered to you")))?;
    if !inner.backend.authorise(&who, &offering).await {
        return Err(Problem(
            StatusCode::FORBIDDEN,
            format!("you may not bind {}", offering.export_name()),
        ));
    }
    let space = inner
        .spaces
        .ensure(&who.binding_identity(&session.cid))
        .await
        .map_err(|e| internal("ensure the binding space", &e))?;
    inner
        .backend
        .binding_space_ready(&who, &space)
        .await
        .map_err(|e| internal("binding space hook", &e))?;
    let response = binding_response(&session, &who.display_id(), &offering, space.kubeconfig);
    tracing::info!(sid = %session.sid, namespace = %space.namespace, export = %offering.export_name(), "bound");
    let resp = match &session.redirect_url {
        Some(redirect) => {
            let mut url =
                url::Url::parse(redirect).map_err(|e| internal("parse the redirect URL", &e))?;
            url.query_pairs_mut()
                .append_pair("response", &response.encode());
            redirect_with_cookies(url.as_str(), &[])
        }
        None => Json(response).into_response(),
    };
    Ok(no_cache(resp))
}

/// The BindingResponse of one bind (spec §3.6).
pub fn binding_response(
    session: &Session,
    id: &str,
    offering: &Offering,
    kubeconfig: Vec<u8>,
) -> BindingResponse {
    BindingResponse {
        api_version: wellknown::API_VERSION.into(),
        kind: wellknown::BINDING_RESPONSE_KIND.into(),
        authentication: BindingResponseAuthentication {
            oauth2_code_grant: Some(CodeGrantSession {
                sid: session.sid.clone(),
                id: id.into(),
            }),
        },
        kubeconfig,
        requests: vec![APIServiceExportRequestResponse {
            api_version: wellknown::API_VERSION.into(),
            kind: "APIServiceExportRequest".into(),
            metadata: RequestMetadata {
                name: Some(offering.export_name()),
            },
            spec: APIServiceExportRequestSpec {
                parameters: None,
                resources: vec![ExportRequestResource {
                    group: offering.group.clone(),
                    resource: offering.resource.clone(),
                    versions: Vec::new(),
                    permission_claims: offering.claims.clone(),
                }],
            },
            status: serde_json::Map::new(),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_alphanumeric_and_bounded() {
        assert!(valid_id("aB3xYz"));
        assert!(valid_id(&"a".repeat(64)));
        assert!(!valid_id(&"a".repeat(65)));
        assert!(!valid_id(""));
        assert!(!valid_id("a-b"));
        assert!(!valid_id("a b"));
    }
}
