//! The non-interactive binding flow (OAuth 2.0 device authorization grant against the backend's
//! IdP), as agreed with `kubectl bind --non-interactive`:
//!
//! - `/export` lists, after the code grant, an
//!   [`OAuth2DeviceGrant`](crate::api::wire::OAuth2DeviceGrant) entry
//!   (`<ext>/device/authorize`, `<ext>/device/token`);
//! - `POST /device/authorize` (form `s`, `c`) → 200 [`DeviceAuthorizationResponse`]; the device
//!   code is sealed by the backend and binds the IdP's code, `sid`, `cid` and the expiry; 400 for
//!   a bad `s`/`c`, 501 without device support;
//! - `POST /device/token` (form `device_code`) → 400 [`OAuthError`] (RFC 8628 errors) while
//!   waiting or failing, 200 [`DeviceSession`] (`expires_in: 3600`) once the ID token is
//!   verified; `session` is the value of cookie `klutch-bind-<sid>`, which then works for
//!   `/resources` (`Accept: application/json`) and `/bind` (answers JSON BindingResponse).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::Inner;
use super::problem::{Problem, auth_problem, bad_request, valid_id};
use crate::api::wire::{DeviceAuthorizationResponse, DeviceSession, OAuthError};
use crate::backend::contract::{Authenticator as _, BindingBackend, DevicePoll};
use crate::backend::session::{SESSION_LIFETIME_SECS, Session, session_cookie_name};
use crate::backend::state::now_secs;

/// The name device codes are sealed under.
const SEAL_NAME: &str = "klutch-bind-device-code";

#[derive(Serialize, Deserialize)]
struct SealedDevice {
    idp: String,
    sid: String,
    cid: String,
    exp: i64,
}

#[derive(Deserialize)]
pub(super) struct AuthorizeForm {
    s: Option<String>,
    c: Option<String>,
}

pub(super) async fn authorize<B: BindingBackend>(
    State(inner): State<Arc<Inner<B>>>,
    Form(form): Form<AuthorizeForm>,
) -> Result<Response, Problem> {
    let sid = form
        .s
        .filter(|s| valid_id(s))
        .ok_or_else(|| bad_request("missing or invalid session id (s)"))?;
    let cid = form
        .c
        .filter(|c| valid_id(c))
        .ok_or_else(|| bad_request("missing or invalid cluster id (c)"))?;
    let auth = inner.backend.authenticator();
    if !auth.supports_device_flow() {
        return Err(Problem(
            StatusCode::NOT_IMPLEMENTED,
            "this backend has no device flow".into(),
        ));
    }
    let started = auth.start_device().await.map_err(auth_problem)?;
    let sealed = inner.config.keys.seal(
        SEAL_NAME,
        &SealedDevice {
            idp: started.device_code,
            sid,
            cid,
            exp: now_secs() + i64::try_from(started.expires_in).unwrap_or(600),
        },
    );
    let body = DeviceAuthorizationResponse {
        device_code: sealed,
        user_code: started.user_code,
        verification_uri: started.verification_uri,
        verification_uri_complete: started.verification_uri_complete,
        expires_in: started.expires_in,
        interval: started.interval,
    };
    Ok(json(&body))
}

#[derive(Deserialize)]
pub(super) struct TokenForm {
    device_code: Option<String>,
}

/// A JSON answer; through a `Value`, so the keys come out sorted as they always did.
fn json(doc: &impl Serialize) -> Response {
    Json(serde_json::to_value(doc).expect("a wire document serialises")).into_response()
}

fn oauth_error(error: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        json(&OAuthError::new(error, description)),
    )
        .into_response()
}

pub(super) async fn token<B: BindingBackend>(
    State(inner): State<Arc<Inner<B>>>,
    Form(form): Form<TokenForm>,
) -> Response {
    let Some(sealed) = form
        .device_code
        .and_then(|c| inner.config.keys.open::<SealedDevice>(SEAL_NAME, &c))
    else {
        return oauth_error("invalid_grant", "unknown or tampered device code");
    };
    if sealed.exp < now_secs() {
        return oauth_error("expired_token", "the device code has expired; start again");
    }
    match inner.backend.authenticator().poll_device(&sealed.idp).await {
        Ok(DevicePoll::Pending) => oauth_error("authorization_pending", "waiting for the user"),
        Ok(DevicePoll::SlowDown) => oauth_error("slow_down", "poll more slowly"),
        Ok(DevicePoll::Denied) => oauth_error("access_denied", "the user denied the request"),
        Ok(DevicePoll::Expired) => {
            oauth_error("expired_token", "the device code has expired; start again")
        }
        Ok(DevicePoll::Done(who)) => {
            let session = Session::new(&who, None, &sealed.sid, &sealed.cid);
            let value = inner
                .config
                .keys
                .seal(&session_cookie_name(&sealed.sid), &session);
            tracing::info!(sid = %sealed.sid, issuer = %who.issuer, "device login succeeded");
            json(&DeviceSession {
                session: value,
                sid: sealed.sid,
                expires_in: SESSION_LIFETIME_SECS.unsigned_abs(),
            })
        }
        Err(e) => {
            let problem = auth_problem(e);
            if problem.0 == StatusCode::UNAUTHORIZED {
                oauth_error("invalid_grant", &problem.1)
            } else {
                problem.into_response()
            }
        }
    }
}
