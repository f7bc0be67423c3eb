//! The non-interactive login for CI/CD: the client side of the device-authorization contract
//! (RFC 8628 at the backend, see `docs/kubectl-bind.md` "CI/CD").
//!
//! [`start`]: `POST /device/authorize` (`s`, `c`, `resource`, `cluster`) → confirmation code
//! and the backend's consent page, which the caller shows the user → [`wait_for_session`]: poll `POST /device/token` (`device_code`) every
//! `interval` seconds (+5 s on `slow_down`) → login cookie value → [`bind`]: `GET /resources?s=`
//! (JSON catalogue) → `GET /bind?s=&group=&resource=` (JSON BindingResponse).
//!
//! ```no_run
//! # async fn demo(grant: &klutch_sdk::api::wire::OAuth2DeviceGrant) -> klutch_sdk::backend::client::Result<()> {
//! use std::time::Duration;
//! use klutch_sdk::backend::client::{device, new_session_id};
//!
//! let http = reqwest::Client::new();
//! let sid = new_session_id();
//! let started = device::start(&http, grant, &sid, "Qw7Lm2", "mangodbs.mangodb.com", Some("https://10.0.0.1:6443")).await?;
//! println!("visit {} and enter {}", started.verification_uri, started.user_code);
//! let session = device::wait_for_session(&http, grant, &started, &sid, Duration::from_secs(300)).await?;
//! let response = device::bind(&http, grant, &session, "mangodbs.mangodb.com").await?;
//! # let _ = response; Ok(()) }
//! ```

use std::time::Duration;

use super::error::{Error, Result, one_line};
use crate::api::naming::split_binding_name;
use crate::api::wire::{
    BindingResponse, Catalogue, DeviceAuthorizationResponse, DeviceSession, OAuth2DeviceGrant,
    OAuthError, encode_base64_url,
};

/// What one poll tells the loop to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Poll {
    /// Logged in.
    Done(DeviceSession),
    /// Ask again after this interval (seconds).
    Wait(u64),
    /// Give up with this message.
    Fail(String),
}

/// Decides from one answer of `/device/token` (sans-IO).
pub fn classify(status: u16, body: &[u8], interval: u64) -> Poll {
    if status == 200 {
        return match serde_json::from_slice::<DeviceSession>(body) {
            Ok(session) => Poll::Done(session),
            Err(e) => Poll::Fail(format!("invalid token answer: {e}")),
        };
    }
    match serde_json::from_slice::<OAuthError>(body) {
        Ok(err) => match err.error.as_str() {
            "authorization_pending" => Poll::Wait(interval),
            "slow_down" => Poll::Wait(interval + 5),
            _ => Poll::Fail(match err.error_description {
                Some(d) if !d.is_empty() => format!("{}: {d}", err.error),
                _ => err.error,
            }),
        },
        Err(_) => Poll::Fail(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(body).trim()
        )),
    }
}

/// The backend's base URL: the device authorization URL without `/device/authorize` (else its
/// origin).
pub fn base_url(grant: &OAuth2DeviceGrant) -> String {
    let url = grant.device_authorization_url.trim_end_matches('/');
    match url.strip_suffix("/device/authorize") {
        Some(base) => base.to_string(),
        None => url::Url::parse(url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_else(|_| url.to_string()),
    }
}

fn http_error(what: &str) -> impl FnOnce(reqwest::Error) -> Error + '_ {
    move |e| Error::Device(format!("{what}: {}", one_line(&e)))
}

/// Starts a device login for session `sid` on consumer cluster `cid` to bind `resource`
/// (`<plural>.<group>`); `cluster` names the consumer cluster for the consent page (e.g. its API
/// server URL). The answer carries the code and the page to show the user; the session it leads
/// to can bind only `resource` on `cid`.
pub async fn start(
    http: &reqwest::Client,
    grant: &OAuth2DeviceGrant,
    sid: &str,
    cid: &str,
    resource: &str,
    cluster: Option<&str>,
) -> Result<DeviceAuthorizationResponse> {
    let mut form = vec![("s", sid), ("c", cid), ("resource", resource)];
    if let Some(cluster) = cluster {
        form.push(("cluster", cluster));
    }
    let answer = http
        .post(&grant.device_authorization_url)
        .form(&form)
        .send()
        .await
        .map_err(http_error("start the device login"))?;
    let status = answer.status().as_u16();
    let body = answer
        .bytes()
        .await
        .map_err(http_error("start the device login"))?;
    if status == 501 {
        return Err(Error::NoLoginMethod {
            url: grant.device_authorization_url.clone(),
            reason: "the provider's identity provider has no device flow; log in with a browser"
                .into(),
        });
    }
    if status != 200 {
        return Err(Error::Device(format!(
            "the provider refused to start the login (HTTP {status}): {}",
            String::from_utf8_lossy(&body).trim()
        )));
    }
    serde_json::from_slice(&body)
        .map_err(|e| Error::Device(format!("invalid device authorization answer: {e}")))
}

/// Polls until the user logged in (the session of `sid`), refused, or the shorter of `timeout`
/// and the codes' lifetime passed. Drop the future to cancel.
pub async fn wait_for_session(
    http: &reqwest::Client,
    grant: &OAuth2DeviceGrant,
    authorization: &DeviceAuthorizationResponse,
    sid: &str,
    timeout: Duration,
) -> Result<DeviceSession> {
    let deadline = tokio::time::Instant::now()
        + timeout.min(Duration::from_secs(authorization.expires_in.max(1)));
    let mut interval = authorization.interval.max(1);
    let session = loop {
        tokio::time::sleep_until(
            (tokio::time::Instant::now() + Duration::from_secs(interval)).min(deadline),
        )
        .await;
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::LoginTimeout(
                timeout.min(Duration::from_secs(authorization.expires_in)),
            ));
        }
        let answer = http
            .post(&grant.token_url)
            .form(&[("device_code", authorization.device_code.as_str())])
            .send()
            .await
            .map_err(http_error("poll the device login"))?;
        let status = answer.status().as_u16();
        let body = answer
            .bytes()
            .await
            .map_err(http_error("poll the device login"))?;
        match classify(status, &body, interval) {
            Poll::Done(session) => break session,
            Poll::Wait(next) => interval = next,
            Poll::Fail(message) => return Err(Error::LoginFailed(message)),
        }
    };
    if session.sid != sid {
        return Err(Error::WrongSession {
            expected: sid.into(),
            got: session.sid,
        });
    }
    Ok(session)
}

/// With a logged-in `session`, checks that the catalogue offers `resource` (`<plural>.<group>`)
/// and binds it.
pub async fn bind(
    http: &reqwest::Client,
    grant: &OAuth2DeviceGrant,
    session: &DeviceSession,
    resource: &str,
) -> Result<BindingResponse> {
    use reqwest::header::{ACCEPT, COOKIE};

    let base = base_url(grant);
    let cookie = session.cookie();
    let sid = session.sid.as_str();
    let wanted = split_binding_name(resource);

    let catalogue = http
        .get(format!("{base}/resources"))
        .query(&[("s", sid)])
        .header(COOKIE, &cookie)
        .header(ACCEPT, "application/json")
        .send()
        .await
        .map_err(http_error("read the catalogue"))?;
    if catalogue.status().is_success() {
        let catalogue: Catalogue = catalogue
            .json()
            .await
            .map_err(http_error("read the catalogue"))?;
        let offered = catalogue.binding_names();
        if !offered.contains(&crate::api::naming::group_resource_name(&wanted)) {
            return Err(Error::NotOffered {
                resource: resource.into(),
                offered,
            });
        }
    } else {
        return Err(Error::Device(format!(
            "reading the catalogue failed with HTTP {}",
            catalogue.status().as_u16()
        )));
    }

    let answer = http
        .get(format!("{base}/bind"))
        .query(&[
            ("s", sid),
            ("group", wanted.group.as_str()),
            ("resource", wanted.resource.as_str()),
        ])
        .header(COOKIE, &cookie)
        .header(ACCEPT, "application/json")
        .send()
        .await
        .map_err(http_error("bind"))?;
    let status = answer.status().as_u16();
    let body = answer.bytes().await.map_err(http_error("bind"))?;
    if status != 200 {
        return Err(Error::Device(format!(
            "the provider refused to bind {resource} (HTTP {status}): {}",
            String::from_utf8_lossy(&body).trim()
        )));
    }
    // The same checks as for the browser's `response` parameter.
    BindingResponse::decode(&encode_base64_url(&body)).map_err(Error::BadResponse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_answers_are_classified_like_rfc_8628() {
        assert_eq!(
            classify(400, br#"{"error":"authorization_pending"}"#, 5),
            Poll::Wait(5)
        );
        assert_eq!(
            classify(400, br#"{"error":"slow_down"}"#, 5),
            Poll::Wait(10)
        );
        assert_eq!(
            classify(
                400,
                br#"{"error":"access_denied","error_description":"no"}"#,
                5
            ),
            Poll::Fail("access_denied: no".into())
        );
        assert_eq!(
            classify(400, br#"{"error":"expired_token"}"#, 5),
            Poll::Fail("expired_token".into())
        );
        assert_eq!(
            classify(200, br#"{"session":"v","sid":"s","expires_in":3600}"#, 5),
            Poll::Done(DeviceSession {
                session: "v".into(),
                sid: "s".into(),
                expires_in: 3600
            })
        );
        assert!(
            matches!(classify(500, b"internal error", 5), Poll::Fail(m) if m.contains("HTTP 500"))
        );
        assert!(matches!(classify(200, b"{}", 5), Poll::Fail(_)));
    }

    #[test]
    fn urls_and_resources_are_derived() {
        let grant = OAuth2DeviceGrant {
            device_authorization_url: "https://bind.example.com/prefix/device/authorize".into(),
            token_url: "https://bind.example.com/prefix/device/token".into(),
        };
        assert_eq!(base_url(&grant), "https://bind.example.com/prefix");
        let odd = OAuth2DeviceGrant {
            device_authorization_url: "https://bind.example.com/da".into(),
            token_url: String::new(),
        };
        assert_eq!(base_url(&odd), "https://bind.example.com");
        let split = split_binding_name("postgresqlinstances.anynines.com");
        assert_eq!(
            (split.group, split.resource),
            ("anynines.com".into(), "postgresqlinstances".into())
        );
        let split = split_binding_name("secrets");
        assert_eq!(
            (split.group, split.resource),
            (String::new(), "secrets".into())
        );
        let parsed: DeviceAuthorizationResponse = serde_json::from_str(
            r#"{"device_code":"d","user_code":"ABCD-EFGH","verification_uri":"https://idp/device","expires_in":600}"#,
        )
        .unwrap();
        assert_eq!(parsed.interval, 5);
    }
}
