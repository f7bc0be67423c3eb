//! The start of a browser login (spec §3.3, §3.9): a fresh session id and the URL the user opens,
//! `<authenticatedURL>?p=<port>&s=<sid>&c=<cid>`.

use rand::Rng as _;

use super::error::{Error, Result};

/// A new session id: 32 characters from a CSPRNG, `[A-Za-z0-9]` (spec §3.9).
pub fn new_session_id() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// `<authenticatedURL>?p=<port>&s=<sid>&c=<cid>`, keeping any query the URL already has; `port`
/// is the [`Listener`](super::callback::Listener)'s.
pub fn login_url(authenticated_url: &str, port: u16, sid: &str, cid: &str) -> Result<String> {
    let mut url = url::Url::parse(authenticated_url).map_err(|e| Error::NoLoginMethod {
        url: authenticated_url.into(),
        reason: format!("authenticatedURL is not a URL: {e}"),
    })?;
    url.query_pairs_mut()
        .append_pair("p", &port.to_string())
        .append_pair("s", sid)
        .append_pair("c", cid);
    Ok(url.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_long_and_alphanumeric() {
        let a = new_session_id();
        let b = new_session_id();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn the_login_url_carries_port_session_and_cluster() {
        assert_eq!(
            login_url("https://bind.example.com/authorize", 53121, "aB3", "Qw7Lm2").unwrap(),
            "https://bind.example.com/authorize?p=53121&s=aB3&c=Qw7Lm2"
        );
        assert_eq!(
            login_url("https://b/authorize?x=1", 1, "s", "c").unwrap(),
            "https://b/authorize?x=1&p=1&s=s&c=c"
        );
        assert!(login_url("not a url", 1, "s", "c").is_err());
    }
}
