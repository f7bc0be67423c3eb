//! The OAuth `state` of the browser flow: base64url (padded) JSON
//! `{"redirectURL","sid","cid","exp","nonce","sig"}`. Upstream sends the first three unsigned;
//! ours adds a 10-minute expiry, a random nonce that must match the sealed cookie `/authorize`
//! set in the same browser, and an HMAC over the rest.

use rand::Rng as _;
use serde::{Deserialize, Serialize};

use super::keys::SessionKeys;
use crate::api::wire::{decode_base64, encode_base64_url};

/// How long a login may take between `/authorize` and `/callback`.
pub const STATE_LIFETIME_SECS: i64 = 600;

/// The state's fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthState {
    /// Where `/bind` finally redirects (the CLI's callback).
    #[serde(rename = "redirectURL")]
    pub redirect_url: String,
    /// The CLI's session id.
    pub sid: String,
    /// The consumer cluster id.
    pub cid: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Random; must equal the nonce in the browser's pending-login cookie.
    pub nonce: String,
}

#[derive(Serialize, Deserialize)]
struct Signed {
    #[serde(flatten)]
    state: AuthState,
    sig: String,
}

/// Why a state was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Not base64 JSON of the expected shape.
    #[error("state is malformed")]
    Malformed,
    /// The HMAC does not match.
    #[error("state signature is invalid")]
    BadSignature,
    /// Older than ten minutes.
    #[error("state has expired")]
    Expired,
}

/// A random URL-safe token of `len` base-62 characters from the OS CSPRNG.
pub fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Unix seconds now.
pub fn now_secs() -> i64 {
    k8s_openapi::jiff::Timestamp::now().as_second()
}

impl AuthState {
    /// A fresh state expiring in [`STATE_LIFETIME_SECS`].
    pub fn new(redirect_url: &str, sid: &str, cid: &str) -> Self {
        AuthState {
            redirect_url: redirect_url.into(),
            sid: sid.into(),
            cid: cid.into(),
            exp: now_secs() + STATE_LIFETIME_SECS,
            nonce: random_token(22),
        }
    }

    /// Signs and encodes.
    pub fn encode(&self, keys: &SessionKeys) -> String {
        let payload = serde_json::to_vec(self).expect("state serialises");
        let signed = Signed {
            state: self.clone(),
            sig: keys.sign(&payload),
        };
        encode_base64_url(&serde_json::to_vec(&signed).expect("state serialises"))
    }

    /// Decodes (either base64 alphabet) and verifies signature and expiry.
    pub fn decode(encoded: &str, keys: &SessionKeys) -> Result<Self, Error> {
        let bytes = decode_base64(encoded, "state").map_err(|_| Error::Malformed)?;
        let signed: Signed = serde_json::from_slice(&bytes).map_err(|_| Error::Malformed)?;
        let payload = serde_json::to_vec(&signed.state).expect("state serialises");
        if !keys.verify(&payload, &signed.sig) {
            return Err(Error::BadSignature);
        }
        if signed.state.exp < now_secs() {
            return Err(Error::Expired);
        }
        Ok(signed.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_refuse_tampering_and_age() {
        let keys = SessionKeys::generate();
        let state = AuthState::new("http://localhost:1234/callback", "sid1", "cid1");
        let encoded = state.encode(&keys);
        assert_eq!(AuthState::decode(&encoded, &keys).unwrap(), state);
        // The upstream fields are still there, readable.
        let json: serde_json::Value =
            serde_json::from_slice(&decode_base64(&encoded, "state").unwrap()).unwrap();
        assert_eq!(json["redirectURL"], "http://localhost:1234/callback");
        assert_eq!(json["sid"], "sid1");

        let mut forged = json.clone();
        forged["redirectURL"] = "http://evil.example.com/callback".into();
        let forged = encode_base64_url(forged.to_string().as_bytes());
        assert_eq!(AuthState::decode(&forged, &keys), Err(Error::BadSignature));
        assert_eq!(
            AuthState::decode(&encoded, &SessionKeys::generate()),
            Err(Error::BadSignature)
        );
        assert_eq!(AuthState::decode("%%", &keys), Err(Error::Malformed));

        let old = AuthState {
            exp: now_secs() - 1,
            ..state
        };
        assert_eq!(
            AuthState::decode(&old.encode(&keys), &keys),
            Err(Error::Expired)
        );
    }

    #[test]
    fn random_tokens_are_base62() {
        let t = random_token(40);
        assert_eq!(t.len(), 40);
        assert!(t.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(t, random_token(40));
    }
}
