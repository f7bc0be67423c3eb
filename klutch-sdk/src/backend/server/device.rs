//! The non-interactive binding flow (OAuth 2.0 device authorization grant against the backend's
//! IdP), as agreed with `kubectl bind --non-interactive`:
//!
//! - `/export` lists, after the code grant, an
//!   [`OAuth2DeviceGrant`](crate::api::wire::OAuth2DeviceGrant) entry
//!   (`<ext>/device/authorize`, `<ext>/device/token`);
//! - `POST /device/authorize` (form `s`, `c`, `resource` = `<plural>.<group>` to bind, optional
//!   `cluster` = the consumer cluster's name as the CLI knows it) → 200
//!   [`DeviceAuthorizationResponse`]; the device code is sealed by the backend and binds the
//!   IdP's code, `sid`, `cid`, `resource` and the expiry; 400 for a bad `s`/`c`/`resource`, 501
//!   without device support;
//! - the `verification_uri` is the backend's **consent page** `GET /device/consent?t=<ticket>`,
//!   not the IdP's: it shows the requesting cluster (id, reported name, the requester's address),
//!   the API and a confirmation code (the `user_code` the CLI printed), and only then links to
//!   the IdP (whose own user code is sealed in the ticket and never given to the requester);
//! - `POST /device/token` (form `device_code`) → 400 [`OAuthError`] (RFC 8628 errors) while
//!   waiting or failing, 200 [`DeviceSession`] (`expires_in: 3600`) once the ID token is
//!   verified — **once**: a redeemed device code answers `invalid_grant` afterwards (recorded in
//!   memory and, with [`Server::device_redemptions_in`](super::Server::device_redemptions_in), as
//!   a Lease in the provider cluster for all replicas). `session` is
//!   the value of cookie `klutch-bind-<sid>`, which then works for `/resources`
//!   (`Accept: application/json`) and `/bind` (answers JSON BindingResponse) for the approved
//!   `resource` on the approved `cid` only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use axum::Json;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::Inner;
use super::problem::{Problem, auth_problem, bad_request, valid_id};
use super::resources_page::escape_html;
use crate::api::wire::{DeviceAuthorizationResponse, DeviceSession, OAuthError};
use crate::backend::contract::{Authenticator as _, BindingBackend, DevicePoll};
use crate::backend::session::{SESSION_LIFETIME_SECS, Session, session_cookie_name};
use crate::backend::state::now_secs;

/// The name device codes are sealed under.
const SEAL_NAME: &str = "klutch-bind-device-code";
/// The name consent tickets are sealed under.
const TICKET_NAME: &str = "klutch-bind-device-consent";

#[derive(Serialize, Deserialize)]
struct SealedDevice {
    idp: String,
    sid: String,
    cid: String,
    /// The API (`<plural>.<group>`) the session may bind.
    resource: String,
    exp: i64,
}

/// What the consent page shows; sealed, so only the backend can read it.
#[derive(Serialize, Deserialize)]
struct ConsentTicket {
    /// The IdP's user code and pages: revealed on the consent page only.
    idp_user_code: String,
    idp_uri: String,
    idp_uri_complete: Option<String>,
    cid: String,
    cluster: Option<String>,
    requester: Option<String>,
    resource: String,
    confirm: String,
    exp: i64,
}

/// The label of the Leases that record redeemed device codes.
pub const REDEMPTION_LABEL: &str = "klutch.anynines.com/device-redemption";
/// Their annotation with the code's expiry (Unix seconds), after which they are deleted.
const REDEMPTION_EXPIRES: &str = "klutch.anynines.com/expires";

/// Device codes already redeemed, by a keyed hash, until they expire: in this process's memory
/// and, when configured ([`Server::device_redemptions_in`](super::Server::device_redemptions_in)),
/// as Leases in the provider cluster, created if absent, so that no replica hands out a second
/// session for one code.
#[derive(Default)]
pub(super) struct Redeemed {
    memory: Mutex<HashMap<String, i64>>,
    pub(super) cluster: Option<kube::Api<Lease>>,
}

impl Redeemed {
    /// Records `key` until `exp`; `Ok(false)` when it was recorded already (here or, with the
    /// cluster, by any replica).
    async fn claim(&self, key: &str, exp: i64) -> Result<bool, kube::Error> {
        {
            let mut map = self.memory.lock().expect("redeemed lock");
            let now = now_secs();
            map.retain(|_, e| *e >= now);
            if map.contains_key(key) {
                return Ok(false);
            }
        }
        if let Some(api) = &self.cluster {
            let hex: String = key.bytes().take(24).map(|b| format!("{b:02x}")).collect();
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(format!("klutch-device-{hex}")),
                    labels: Some([(REDEMPTION_LABEL.to_owned(), "true".to_owned())].into()),
                    annotations: Some([(REDEMPTION_EXPIRES.to_owned(), exp.to_string())].into()),
                    ..ObjectMeta::default()
                },
                spec: None,
            };
            match api.create(&kube::api::PostParams::default(), &lease).await {
                Ok(_) => {
                    let api = api.clone();
                    tokio::spawn(async move { forget_expired(&api).await });
                }
                Err(kube::Error::Api(status)) if status.code == 409 => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        let mut map = self.memory.lock().expect("redeemed lock");
        Ok(map.insert(key.to_owned(), exp).is_none())
    }
}

/// Deletes the redemption Leases of expired codes (best effort: the next claim tries again).
async fn forget_expired(api: &kube::Api<Lease>) {
    let params = kube::api::ListParams::default().labels(&format!("{REDEMPTION_LABEL}=true"));
    let Ok(list) = api.list(&params).await else {
        return;
    };
    let now = now_secs();
    for lease in list.items {
        let expired = lease
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REDEMPTION_EXPIRES))
            .and_then(|e| e.parse::<i64>().ok())
            .is_none_or(|e| e < now);
        if let (true, Some(name)) = (expired, lease.metadata.name.as_deref())
            && let Err(e) = api.delete(name, &Default::default()).await
        {
            tracing::debug!(lease = name, error = %e, "delete an expired device redemption");
        }
    }
}

/// A binding name (`<plural>[.<group>]`) as Kubernetes names resources.
fn valid_resource(name: &str) -> bool {
    (1..=253).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !name.starts_with(['.', '-'])
}

/// `XXXX-XXXX` from the ticket: what the terminal and the consent page both show.
fn confirmation_code(keys: &crate::backend::SessionKeys, idp_device_code: &str) -> String {
    const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
    let mac = keys.sign(format!("device-confirm:{idp_device_code}").as_bytes());
    let letters: String = mac
        .bytes()
        .take(8)
        .map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
        .collect();
    format!("{}-{}", &letters[..4], &letters[4..])
}

#[derive(Deserialize)]
pub(super) struct AuthorizeForm {
    s: Option<String>,
    c: Option<String>,
    resource: Option<String>,
    cluster: Option<String>,
}

pub(super) async fn authorize<B: BindingBackend>(
    State(inner): State<Arc<Inner<B>>>,
    super::rate_limit::Peer(peer): super::rate_limit::Peer,
    headers: HeaderMap,
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
    let cluster = form
        .cluster
        .map(|c| {
            c.chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect::<String>()
        })
        .filter(|c| !c.is_empty());
    let auth = inner.backend.authenticator();
    if !auth.supports_device_flow() {
        return Err(Problem(
            StatusCode::NOT_IMPLEMENTED,
            "this backend has no device flow".into(),
        ));
    }
    let resource = form
        .resource
        .filter(|r| valid_resource(r))
        .ok_or_else(|| bad_request("missing or invalid resource (<plural>.<group> to bind)"))?;
    let started = auth.start_device().await.map_err(auth_problem)?;
    let exp = now_secs() + i64::try_from(started.expires_in).unwrap_or(600);
    let confirm = confirmation_code(&inner.config.keys, &started.device_code);
    let ticket = inner.config.keys.seal(
        TICKET_NAME,
        &ConsentTicket {
            idp_user_code: started.user_code,
            idp_uri: started.verification_uri,
            idp_uri_complete: started.verification_uri_complete,
            cid: cid.clone(),
            cluster,
            requester: inner.client_address(peer, &headers),
            resource: resource.clone(),
            confirm: confirm.clone(),
            exp,
        },
    );
    let sealed = inner.config.keys.seal(
        SEAL_NAME,
        &SealedDevice {
            idp: started.device_code,
            sid,
            cid,
            resource,
            exp,
        },
    );
    let consent = format!(
        "{}/device/consent?t={}",
        inner.external_base(&headers),
        url::form_urlencoded::byte_serialize(ticket.as_bytes()).collect::<String>()
    );
    let body = DeviceAuthorizationResponse {
        device_code: sealed,
        user_code: confirm,
        verification_uri: consent.clone(),
        verification_uri_complete: Some(consent),
        expires_in: started.expires_in,
        interval: started.interval,
    };
    Ok(json(&body))
}

#[derive(Deserialize)]
pub(super) struct ConsentQuery {
    t: Option<String>,
}

/// The consent page: what the user is about to approve, then the way to the IdP.
pub(super) async fn consent<B: BindingBackend>(
    State(inner): State<Arc<Inner<B>>>,
    Query(q): Query<ConsentQuery>,
) -> Result<Response, Problem> {
    let ticket: ConsentTicket =
        q.t.and_then(|t| inner.config.keys.open(TICKET_NAME, &t))
            .ok_or_else(|| bad_request("unknown or tampered device login; start again"))?;
    if ticket.exp < now_secs() {
        return Err(bad_request("this device login has expired; start again"));
    }
    let idp = ticket
        .idp_uri_complete
        .clone()
        .unwrap_or_else(|| ticket.idp_uri.clone());
    let row = |k: &str, v: &str| format!("<tr><th>{k}</th><td>{}</td></tr>", escape_html(v));
    let unknown = "(not reported)";
    let page = format!(
        r#"<!DOCTYPE html>
<html lang="en">
  <head><meta charset="utf-8"><title>{title}: approve a device login</title></head>
  <body>
    <h1>Approve a device login to {title}?</h1>
    <p>A <code>kubectl bind --non-interactive</code> asks to bind an API <strong>as you</strong>.
    Continue only if you started it yourself and your terminal shows the code
    <strong class="confirm">{confirm}</strong>. If someone sent you this link, close this page.</p>
    <table>
      {cid}
      {cluster}
      {requester}
      {api}
      {expires}
    </table>
    <p>When you continue, your identity provider asks for the code <strong class="idp-code">{idp_code}</strong>.</p>
    <p><a class="continue" href="{idp}" rel="noreferrer">Continue to sign in</a></p>
  </body>
</html>
"#,
        title = escape_html(inner.backend.pretty_name()),
        confirm = escape_html(&ticket.confirm),
        cid = row("Consumer cluster id", &ticket.cid),
        cluster = row(
            "Cluster (as the requester reports it)",
            ticket.cluster.as_deref().unwrap_or(unknown)
        ),
        requester = row(
            "Requested from address",
            ticket.requester.as_deref().unwrap_or(unknown)
        ),
        api = row("API to bind", &ticket.resource),
        expires = row(
            "Expires in",
            &format!("{} s", (ticket.exp - now_secs()).max(0))
        ),
        idp_code = escape_html(&ticket.idp_user_code),
        idp = escape_html(&idp),
    );
    let mut resp = Html(page).into_response();
    let h = resp.headers_mut();
    h.insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    h.insert(
        "x-frame-options",
        axum::http::HeaderValue::from_static("DENY"),
    );
    h.insert(
        "referrer-policy",
        axum::http::HeaderValue::from_static("no-referrer"),
    );
    Ok(resp)
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
            // The IdP hands the stored token out on every poll until the code expires: redeem
            // it here once.
            let key = inner
                .config
                .keys
                .sign(format!("device-redeemed:{}", sealed.idp).as_bytes());
            match inner.redeemed.claim(&key, sealed.exp).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(sid = %sealed.sid, "a redeemed device code was presented again");
                    return oauth_error(
                        "invalid_grant",
                        "this device code was redeemed already; start again",
                    );
                }
                Err(e) => {
                    // Fail closed: without the record, a second session could follow.
                    return super::problem::internal("record the device redemption", &e)
                        .into_response();
                }
            }
            let mut session = Session::new(&who, None, &sealed.sid, &sealed.cid);
            session.resource = Some(sealed.resource.clone());
            let value = inner
                .config
                .keys
                .seal(&session_cookie_name(&sealed.sid), &session);
            tracing::info!(sid = %sealed.sid, issuer = %who.issuer, resource = %sealed.resource, "device login succeeded");
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
