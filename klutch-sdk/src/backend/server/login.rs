//! The browser login (spec §3.2–§3.4): `/export` advertises the methods, `/authorize` starts the
//! login at the [`Authenticator`](crate::backend::Authenticator) with signed state and a sealed
//! pending-login cookie, `/callback` finishes it and sets the session cookie.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Form, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::problem::{Problem, auth_problem, bad_request, valid_id};
use super::{Inner, redirect_with_cookies};
use crate::api::wire::{AuthenticationMethod, BindingProvider};
use crate::backend::contract::{Authenticator as _, BindingBackend};
use crate::backend::session::{self, PendingLogin, Session};
use crate::backend::state::{AuthState, STATE_LIFETIME_SECS};

pub(super) async fn export<B: BindingBackend>(
    State(inner): State<Arc<Inner<B>>>,
    headers: HeaderMap,
) -> Response {
    let base = inner.external_base(&headers);
    let authorize = inner
        .config
        .authorize_url
        .clone()
        .unwrap_or_else(|| format!("{base}/authorize"));
    let mut provider = BindingProvider::oauth2(
        inner.backend.pretty_name(),
        &inner.config.version,
        &authorize,
    );
    if inner.backend.authenticator().supports_device_flow() {
        provider
            .authentication_methods
            .push(AuthenticationMethod::device_grant(&base));
    }
    // Through a `Value`, so the keys come out sorted as they always did.
    Json(serde_json::to_value(&provider).expect("BindingProvider serialises")).into_response()
}

#[derive(Deserialize)]
pub(super) struct AuthorizeQuery {
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

pub(super) async fn authorize<B: BindingBackend>(
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

/// `/callback` parameters (query or form).
#[derive(Deserialize)]
pub(super) struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

pub(super) async fn callback_get<B: BindingBackend>(
    State(inner): State<Arc<Inner<B>>>,
    headers: HeaderMap,
    Query(q): Query<CallbackParams>,
) -> Result<Response, Problem> {
    callback(inner, headers, q).await
}

pub(super) async fn callback_post<B: BindingBackend>(
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
