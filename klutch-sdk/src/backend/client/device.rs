//! The non-interactive login for CI/CD: the client side of the device-authorization contract
//! (RFC 8628 at the backend, see docs/kubectl-bind.md "CI/CD").
//!
//! `POST /device/authorize` (`s`, `c`) → user code and verification URI on stderr → poll
//! `POST /device/token` (`device_code`) every `interval` seconds (+5 s on `slow_down`) → login
//! cookie value → `GET /resources?s=` (JSON catalogue) → `GET /bind?s=&group=&resource=` (JSON
//! BindingResponse).

use std::time::Duration;

use klutch_sdk::api::wellknown::COOKIE_PREFIX;
use klutch_sdk::api::wire::{BindingResponse, encode_base64_url};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::io::Io;
use crate::provider::DeviceGrant;

/// `POST /device/authorize`'s answer.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct DeviceAuthorization {
    /// Opaque; sent back when polling.
    pub device_code: String,
    /// The code the user types.
    pub user_code: String,
    /// Where the user goes.
    pub verification_uri: String,
    /// The same with the code filled in.
    #[serde(default)]
    pub verification_uri_complete: Option<String>,
    /// Seconds until the codes expire.
    pub expires_in: u64,
    /// Seconds between polls.
    #[serde(default = "five")]
    pub interval: u64,
}

fn five() -> u64 {
    5
}

/// `POST /device/token`'s success answer.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct DeviceSession {
    /// Value of the login cookie `klutch-bind-<sid>`.
    pub session: String,
    /// The session id.
    pub sid: String,
    /// Seconds the session lives.
    #[serde(default)]
    pub expires_in: u64,
}

/// An RFC 8628 error answer.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct TokenError {
    /// `authorization_pending`, `slow_down`, `expired_token`, `access_denied`, `invalid_grant`.
    pub error: String,
    /// Human text.
    #[serde(default)]
    pub error_description: Option<String>,
}

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
    match serde_json::from_slice::<TokenError>(body) {
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

/// The backend's base URL: the device authorization URL without `/device/authorize`.
pub fn base_url(grant: &DeviceGrant) -> String {
    let url = grant.device_authorization_url.trim_end_matches('/');
    match url.strip_suffix("/device/authorize") {
        Some(base) => base.to_string(),
        None => url::Url::parse(url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_else(|_| url.to_string()),
    }
}

/// `<plural>.<group>` → (group, plural); no dot means the core group.
pub fn split_resource(text: &str) -> (String, String) {
    match text.split_once('.') {
        Some((resource, group)) => (group.to_string(), resource.to_string()),
        None => (String::new(), text.to_string()),
    }
}

fn http_error(what: &str) -> impl FnOnce(reqwest::Error) -> Error + '_ {
    move |e| Error::Device(format!("{what}: {}", crate::error::one_line(&e)))
}

/// Logs in with a device code and binds `resource` (`<plural>.<group>`).
pub async fn login(
    io: &mut Io,
    http: &reqwest::Client,
    grant: &DeviceGrant,
    sid: &str,
    cid: &str,
    resource: &str,
    timeout: Duration,
) -> Result<BindingResponse> {
    let answer = http
        .post(&grant.device_authorization_url)
        .form(&[("s", sid), ("c", cid)])
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
    let authorization: DeviceAuthorization = serde_json::from_slice(&body)
        .map_err(|e| Error::Device(format!("invalid device authorization answer: {e}")))?;
    io.progress(format!(
        "\nTo authenticate, visit {} and enter the code\n\n\t{}\n",
        authorization.verification_uri, authorization.user_code
    ));
    let complete = authorization
        .verification_uri_complete
        .clone()
        .unwrap_or_else(|| authorization.verification_uri.clone());
    if authorization.verification_uri_complete.is_some() {
        io.progress(format!("or open\n\n\t{complete}\n"));
    }
    if let Some(tx) = &io.login_urls {
        let _ = tx.send(complete);
    }

    let deadline = tokio::time::Instant::now()
        + timeout.min(Duration::from_secs(authorization.expires_in.max(1)));
    let mut interval = authorization.interval.max(1);
    let session = loop {
        let wait = tokio::time::sleep_until(
            (tokio::time::Instant::now() + Duration::from_secs(interval)).min(deadline),
        );
        tokio::select! {
            () = io.cancel.cancelled() => return Err(Error::Interrupted),
            () = wait => {}
        }
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
    let base = base_url(grant);
    let cookie = format!("{COOKIE_PREFIX}{sid}={}", session.session);
    let (group, plural) = split_resource(resource);

    let catalogue = http
        .get(format!("{base}/resources"))
        .query(&[("s", sid)])
        .header(http::header::COOKIE, &cookie)
        .header(http::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(http_error("read the catalogue"))?;
    if catalogue.status().is_success() {
        let catalogue: serde_json::Value = catalogue
            .json()
            .await
            .map_err(http_error("read the catalogue"))?;
        let offered: Vec<String> = catalogue["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                crate::apiservice::binding_name(
                    r["group"].as_str().unwrap_or_default(),
                    r["resource"].as_str().unwrap_or_default(),
                )
            })
            .collect();
        if !offered.contains(&crate::apiservice::binding_name(&group, &plural)) {
            return Err(Error::Usage(format!(
                "the provider offers no {resource}; --resource must be one of: {}",
                if offered.is_empty() {
                    "(none)".to_string()
                } else {
                    offered.join(", ")
                }
            )));
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
            ("group", group.as_str()),
            ("resource", plural.as_str()),
        ])
        .header(http::header::COOKIE, &cookie)
        .header(http::header::ACCEPT, "application/json")
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
        let grant = DeviceGrant {
            device_authorization_url: "https://bind.example.com/prefix/device/authorize".into(),
            token_url: "https://bind.example.com/prefix/device/token".into(),
        };
        assert_eq!(base_url(&grant), "https://bind.example.com/prefix");
        let odd = DeviceGrant {
            device_authorization_url: "https://bind.example.com/da".into(),
            token_url: String::new(),
        };
        assert_eq!(base_url(&odd), "https://bind.example.com");
        assert_eq!(
            split_resource("postgresqlinstances.anynines.com"),
            ("anynines.com".into(), "postgresqlinstances".into())
        );
        assert_eq!(split_resource("secrets"), (String::new(), "secrets".into()));
        let parsed: DeviceAuthorization = serde_json::from_str(
            r#"{"device_code":"d","user_code":"ABCD-EFGH","verification_uri":"https://idp/device","expires_in":600}"#,
        )
        .unwrap();
        assert_eq!(parsed.interval, 5);
    }
}
