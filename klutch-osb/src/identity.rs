//! Request headers that identify the caller: the typed `X-Broker-API-Originating-Identity`
//! (spec 2.2) and the per-request `X-Broker-API-Request-Identity`.

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The user on whose behalf a request is made, sent as
/// `X-Broker-API-Originating-Identity: <platform> <base64(JSON)>`.
///
/// ```
/// use klutch_osb::OriginatingIdentity;
/// let id = OriginatingIdentity::kubernetes("alice", "uid-1", ["admins"]);
/// assert!(id.header_value().unwrap().starts_with("kubernetes "));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum OriginatingIdentity {
    /// Cloud Foundry: `{"user_id": ...}` plus optional extra properties.
    CloudFoundry {
        /// The CF user GUID.
        user_id: String,
        /// Further properties.
        extra: Map<String, Value>,
    },
    /// Kubernetes: `{"username", "uid", "groups", "extra"}` (all required by the profile).
    Kubernetes {
        /// The user name.
        username: String,
        /// The user's uid.
        uid: String,
        /// The user's groups.
        groups: Vec<String>,
        /// Extra user attributes (`map[string][]string`).
        extra: Map<String, Value>,
    },
    /// Any platform with any JSON object.
    Raw {
        /// The platform name (non-empty, no spaces).
        platform: String,
        /// The identity object.
        value: Map<String, Value>,
    },
}

impl OriginatingIdentity {
    /// A Cloud Foundry identity.
    pub fn cloudfoundry(user_id: impl Into<String>) -> Self {
        OriginatingIdentity::CloudFoundry {
            user_id: user_id.into(),
            extra: Map::new(),
        }
    }

    /// A Kubernetes identity with an empty `extra`.
    pub fn kubernetes(
        username: impl Into<String>,
        uid: impl Into<String>,
        groups: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        OriginatingIdentity::Kubernetes {
            username: username.into(),
            uid: uid.into(),
            groups: groups.into_iter().map(Into::into).collect(),
            extra: Map::new(),
        }
    }

    /// Any platform and JSON object.
    pub fn raw(platform: impl Into<String>, value: Map<String, Value>) -> Self {
        OriginatingIdentity::Raw {
            platform: platform.into(),
            value,
        }
    }

    /// The platform name (`cloudfoundry`, `kubernetes` or the raw value).
    pub fn platform(&self) -> &str {
        match self {
            OriginatingIdentity::CloudFoundry { .. } => "cloudfoundry",
            OriginatingIdentity::Kubernetes { .. } => "kubernetes",
            OriginatingIdentity::Raw { platform, .. } => platform,
        }
    }

    /// The JSON object that is base64-encoded into the header.
    pub fn to_json(&self) -> Map<String, Value> {
        match self {
            OriginatingIdentity::CloudFoundry { user_id, extra } => {
                let mut m = extra.clone();
                m.insert("user_id".into(), Value::String(user_id.clone()));
                m
            }
            OriginatingIdentity::Kubernetes {
                username,
                uid,
                groups,
                extra,
            } => {
                let mut m = Map::new();
                m.insert("username".into(), Value::String(username.clone()));
                m.insert("uid".into(), Value::String(uid.clone()));
                m.insert(
                    "groups".into(),
                    Value::Array(groups.iter().cloned().map(Value::String).collect()),
                );
                m.insert("extra".into(), Value::Object(extra.clone()));
                m
            }
            OriginatingIdentity::Raw { value, .. } => value.clone(),
        }
    }

    /// The header value `<platform> <base64(JSON)>` (standard base64 with padding).
    ///
    /// Fails when the platform is empty or contains whitespace, or a required property is
    /// empty.
    pub fn header_value(&self) -> Result<String> {
        let platform = self.platform();
        if platform.is_empty()
            || platform
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(Error::invalid(format!(
                "originating identity platform {platform:?} must be non-empty without whitespace"
            )));
        }
        match self {
            OriginatingIdentity::CloudFoundry { user_id, .. } if user_id.is_empty() => {
                return Err(Error::invalid(
                    "cloudfoundry originating identity needs a user_id",
                ));
            }
            OriginatingIdentity::Kubernetes { username, uid, .. }
                if username.is_empty() || uid.is_empty() =>
            {
                return Err(Error::invalid(
                    "kubernetes originating identity needs username and uid",
                ));
            }
            _ => {}
        }
        let json = serde_json::to_vec(&Value::Object(self.to_json())).map_err(|e| {
            Error::invalid(format!("originating identity is not serialisable: {e}"))
        })?;
        Ok(format!(
            "{platform} {}",
            base64::engine::general_purpose::STANDARD.encode(json)
        ))
    }
}

/// How the `X-Broker-API-Request-Identity` header is filled (version 2.15 and later).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RequestIdentity {
    /// A fresh UUID v4 per request.
    #[default]
    Auto,
    /// This value on every request.
    Fixed(String),
    /// No header.
    Off,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_header_round_trips() {
        let id = OriginatingIdentity::kubernetes("alice", "u-1", ["a", "b"]);
        let v = id.header_value().unwrap();
        let (p, b64) = v.split_once(' ').unwrap();
        assert_eq!(p, "kubernetes");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        let json: Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"username":"alice","uid":"u-1","groups":["a","b"],"extra":{}})
        );
    }

    #[test]
    fn cloudfoundry_and_raw_validation() {
        let v = OriginatingIdentity::cloudfoundry("u")
            .header_value()
            .unwrap();
        assert_eq!(
            v,
            format!(
                "cloudfoundry {}",
                base64::engine::general_purpose::STANDARD.encode(br#"{"user_id":"u"}"#)
            )
        );
        assert!(
            OriginatingIdentity::cloudfoundry("")
                .header_value()
                .is_err()
        );
        assert!(
            OriginatingIdentity::raw("", Map::new())
                .header_value()
                .is_err()
        );
        assert!(
            OriginatingIdentity::raw("my platform", Map::new())
                .header_value()
                .is_err()
        );
        assert!(
            OriginatingIdentity::raw("mine", Map::new())
                .header_value()
                .unwrap()
                .starts_with("mine e30=")
        );
    }
}
