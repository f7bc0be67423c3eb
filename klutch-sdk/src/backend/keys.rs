//! The backend's secrets: one key that seals cookies and device codes (AES-256-GCM, authenticated
//! encryption through the `cookie` crate's private jar) and signs `state` (HMAC-SHA256).
//!
//! Both are derived with HKDF from `--cookie-signing-key` (32 or 64 bytes) followed by the
//! optional `--cookie-encryption-key` (16, 24 or 32 bytes). Every replica started with the same
//! keys accepts every other replica's cookies and states, so the HTTP side is stateless.

use base64::Engine as _;
use cookie::{Cookie, CookieJar, Key};
use hmac::{Hmac, Mac as _};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;

/// A key of the wrong size or encoding.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Not base64.
    #[error("decode {flag}: not base64")]
    Base64 {
        /// The flag, e.g. `--cookie-signing-key`.
        flag: &'static str,
        /// The decoder's error.
        #[source]
        source: crate::api::wire::Error,
    },
    /// Wrong length.
    #[error("{flag} must be {allowed} bytes, got {got}")]
    Length {
        /// The flag.
        flag: &'static str,
        /// The allowed sizes.
        allowed: &'static str,
        /// The decoded size.
        got: usize,
    },
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Seals and opens cookies and device codes, signs and verifies state.
#[derive(Clone)]
pub struct SessionKeys {
    key: Key,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys(<redacted>)")
    }
}

impl SessionKeys {
    /// Keys from raw bytes: a signing key of 32 or 64 bytes and an optional encryption key of 16,
    /// 24 or 32 bytes.
    pub fn new(signing: &[u8], encryption: Option<&[u8]>) -> Result<Self> {
        if !matches!(signing.len(), 32 | 64) {
            return Err(Error::Length {
                flag: "--cookie-signing-key",
                allowed: "32 or 64",
                got: signing.len(),
            });
        }
        let mut master = signing.to_vec();
        if let Some(enc) = encryption {
            if !matches!(enc.len(), 16 | 24 | 32) {
                return Err(Error::Length {
                    flag: "--cookie-encryption-key",
                    allowed: "16, 24 or 32",
                    got: enc.len(),
                });
            }
            master.extend_from_slice(enc);
        }
        Ok(SessionKeys {
            key: Key::derive_from(&master),
        })
    }

    /// Keys from the base64 flag values (either alphabet).
    pub fn from_base64(signing: &str, encryption: Option<&str>) -> Result<Self> {
        let decode = |flag: &'static str, v: &str| {
            crate::api::wire::decode_base64(v, "key")
                .map_err(|source| Error::Base64 { flag, source })
        };
        let signing = decode("--cookie-signing-key", signing)?;
        let encryption = encryption
            .map(|e| decode("--cookie-encryption-key", e))
            .transpose()?;
        Self::new(&signing, encryption.as_deref())
    }

    /// Random keys (for tests and single-replica development).
    pub fn generate() -> Self {
        SessionKeys {
            key: Key::generate(),
        }
    }

    /// Encrypts and authenticates `value` as JSON for use under `name` (a cookie name, or a
    /// purpose such as `device-code`): the result opens only under the same name.
    pub fn seal<T: Serialize>(&self, name: &str, value: &T) -> String {
        let json = serde_json::to_string(value).expect("sealed values serialise");
        let mut jar = CookieJar::new();
        jar.private_mut(&self.key)
            .add(Cookie::new(name.to_owned(), json));
        jar.get(name)
            .map(|c| c.value().to_owned())
            .expect("the jar holds what was just added")
    }

    /// Opens a value sealed under `name`; `None` when it was tampered with, sealed under another
    /// name or key, or is not the expected JSON.
    pub fn open<T: DeserializeOwned>(&self, name: &str, sealed: &str) -> Option<T> {
        let jar = CookieJar::new();
        let cookie = jar
            .private(&self.key)
            .decrypt(Cookie::new(name.to_owned(), sealed.to_owned()))?;
        serde_json::from_str(cookie.value()).ok()
    }

    /// HMAC-SHA256 of `data`, base64url without padding.
    pub fn sign(&self, data: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.signing()).expect("any key size");
        mac.update(data);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// Checks a signature from [`sign`](Self::sign) in constant time.
    pub fn verify(&self, data: &[u8], signature: &str) -> bool {
        let Ok(sig) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.signing()).expect("any key size");
        mac.update(data);
        mac.verify_slice(&sig).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_under_their_name_and_key() {
        let keys = SessionKeys::new(&[7; 32], Some(&[1; 16])).unwrap();
        let sealed = keys.seal("klutch-bind-abc", &serde_json::json!({"sub": "alice"}));
        assert!(!sealed.contains("alice"), "encrypted");
        let opened: serde_json::Value = keys.open("klutch-bind-abc", &sealed).unwrap();
        assert_eq!(opened["sub"], "alice");
        assert!(
            keys.open::<serde_json::Value>("klutch-bind-xyz", &sealed)
                .is_none()
        );
        let other = SessionKeys::new(&[7; 32], None).unwrap();
        assert!(
            other
                .open::<serde_json::Value>("klutch-bind-abc", &sealed)
                .is_none()
        );
        let mut tampered = sealed.into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(
            keys.open::<serde_json::Value>("klutch-bind-abc", &tampered)
                .is_none()
        );
    }

    #[test]
    fn signatures_verify_and_key_sizes_are_checked() {
        let keys = SessionKeys::generate();
        let sig = keys.sign(b"state");
        assert!(keys.verify(b"state", &sig));
        assert!(!keys.verify(b"other", &sig));
        assert!(!keys.verify(b"state", "!!"));
        let err = SessionKeys::new(&[0; 20], None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--cookie-signing-key must be 32 or 64 bytes, got 20"
        );
        let err = SessionKeys::new(&[0; 32], Some(&[0; 20])).unwrap_err();
        assert!(err.to_string().contains("--cookie-encryption-key"), "{err}");
        assert!(SessionKeys::from_base64("not base64!", None).is_err());
        let b64 = base64::engine::general_purpose::STANDARD.encode([3u8; 64]);
        assert!(SessionKeys::from_base64(&b64, None).is_ok());
    }
}
