//! The login cookie `klutch-bind-<sid>` and the short-lived pending-login cookie
//! `klutch-bind-login-<sid>` that binds `state` to the browser that started the login.
//!
//! Values are sealed with [`SessionKeys`] (authenticated encryption); the cookies are `HttpOnly`,
//! `SameSite=Lax`, `Path=/` and `Secure` when the backend is reached over https. No IdP token is
//! stored.

use cookie::{Cookie, SameSite};
use serde::{Deserialize, Serialize};

use super::contract::VerifiedIdentity;
use super::keys::SessionKeys;
use super::state::now_secs;
use crate::api::wellknown::COOKIE_PREFIX;

/// Lifetime of a login session.
pub const SESSION_LIFETIME_SECS: i64 = 3600;

/// What the login cookie holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_on: i64,
    /// Verified issuer.
    pub iss: String,
    /// Verified subject.
    pub sub: String,
    /// Where `/bind` redirects; `None` for a device-flow session (then `/bind` answers JSON).
    #[serde(rename = "redirectURL")]
    pub redirect_url: Option<String>,
    /// The CLI's session id.
    pub sid: String,
    /// The consumer cluster id.
    pub cid: String,
    /// The only API (`<plural>.<group>`) this session may bind: set for a device login, which
    /// the user approved for that API on the consent page; `None` for a browser login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

impl Session {
    /// A session for `who`, valid for [`SESSION_LIFETIME_SECS`].
    pub fn new(who: &VerifiedIdentity, redirect_url: Option<String>, sid: &str, cid: &str) -> Self {
        let now = now_secs();
        Session {
            created_at: now,
            expires_on: now + SESSION_LIFETIME_SECS,
            iss: who.issuer.clone(),
            sub: who.subject.clone(),
            redirect_url,
            sid: sid.into(),
            cid: cid.into(),
            resource: None,
        }
    }

    /// The identity it was created for.
    pub fn identity(&self) -> VerifiedIdentity {
        VerifiedIdentity {
            issuer: self.iss.clone(),
            subject: self.sub.clone(),
        }
    }

    /// The sealed cookie value.
    pub fn seal(&self, keys: &SessionKeys) -> String {
        keys.seal(&session_cookie_name(&self.sid), self)
    }

    /// Opens the cookie of `sid`; `None` when absent, tampered with, for another sid, or expired.
    pub fn from_cookies(
        cookies: &[Cookie<'static>],
        sid: &str,
        keys: &SessionKeys,
    ) -> Option<Self> {
        let name = session_cookie_name(sid);
        let session: Session = cookies
            .iter()
            .filter(|c| c.name() == name)
            .find_map(|c| keys.open(&name, c.value()))?;
        (session.sid == sid && session.expires_on > now_secs()).then_some(session)
    }
}

/// What `/authorize` remembers in the browser until `/callback`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLogin {
    /// Must equal the state's nonce.
    pub nonce: String,
    /// The authenticator's secret ([`super::LoginStart::pending`]).
    pub pending: String,
}

/// `klutch-bind-<sid>`.
pub fn session_cookie_name(sid: &str) -> String {
    format!("{COOKIE_PREFIX}{sid}")
}

/// `klutch-bind-login-<sid>` (cannot collide with a session cookie: a sid has no `-`).
pub fn pending_cookie_name(sid: &str) -> String {
    format!("{COOKIE_PREFIX}login-{sid}")
}

/// A `Set-Cookie` value with the SDK's attributes.
pub fn set_cookie(name: String, value: String, max_age_secs: i64, secure: bool) -> String {
    Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(cookie::time::Duration::seconds(max_age_secs))
        .build()
        .to_string()
}

/// A `Set-Cookie` value that deletes `name`.
pub fn clear_cookie(name: String, secure: bool) -> String {
    set_cookie(name, String::new(), 0, secure)
}

/// The cookies of a request's `Cookie` headers.
pub fn parse_cookies(headers: &http::HeaderMap) -> Vec<Cookie<'static>> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| {
            Cookie::split_parse(v.to_owned())
                .filter_map(Result::ok)
                .map(Cookie::into_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_round_trip_and_refuse_other_sids_and_tampering() {
        let keys = SessionKeys::generate();
        let who = VerifiedIdentity {
            issuer: "https://idp".into(),
            subject: "alice".into(),
        };
        let session = Session::new(&who, Some("http://localhost:1/callback".into()), "s1", "c1");
        let value = session.seal(&keys);
        let cookies = vec![Cookie::new("klutch-bind-s1", value.clone())];
        assert_eq!(
            Session::from_cookies(&cookies, "s1", &keys),
            Some(session.clone())
        );
        assert_eq!(Session::from_cookies(&cookies, "s2", &keys), None);
        // The value of s1 under the name of s2 does not open.
        let moved = vec![Cookie::new("klutch-bind-s2", value)];
        assert_eq!(Session::from_cookies(&moved, "s2", &keys), None);
        let expired = Session {
            expires_on: now_secs() - 1,
            ..session
        };
        let cookies = vec![Cookie::new("klutch-bind-s1", expired.seal(&keys))];
        assert_eq!(Session::from_cookies(&cookies, "s1", &keys), None);
    }

    #[test]
    fn cookies_carry_the_security_attributes() {
        let c = set_cookie("klutch-bind-s".into(), "v".into(), 3600, true);
        assert!(c.contains("HttpOnly"), "{c}");
        assert!(c.contains("SameSite=Lax"), "{c}");
        assert!(c.contains("Secure"), "{c}");
        assert!(c.contains("Path=/"), "{c}");
        assert!(!set_cookie("a".into(), "v".into(), 1, false).contains("Secure"));
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::COOKIE,
            "a=1; klutch-bind-s=xyz".parse().unwrap(),
        );
        let parsed = parse_cookies(&headers);
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[1].value(), "xyz");
    }
}
