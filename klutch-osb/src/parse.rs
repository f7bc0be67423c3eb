//! Response parsing, separated from the transport so it can be fuzzed and property-tested.
//! Every function here is total: any byte sequence yields a value or a [`ParseError`], never a
//! panic.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::catalog::Catalog;
use crate::model::{
    BindingBody, Credentials, InstanceBody, InstanceMetadata, LastOperation, OperationKey,
    OperationState,
};

/// A `Result` with this module's [`ParseError`].
pub type Result<T, E = ParseError> = std::result::Result<T, E>;

/// Why a broker's body could not be parsed.
///
/// The JSON parser's message is the [`source`](std::error::Error::source) of
/// [`InvalidJson`](ParseError::InvalidJson) and [`InvalidBody`](ParseError::InvalidBody), not
/// part of their `Display`; [`ParseError::detailed`] gives both in one line.
///
/// ```
/// use klutch_osb::parse::{self, JsonKind, ParseError};
/// let e = parse::catalog(b"[]").unwrap_err();
/// assert!(matches!(e, ParseError::NotAnObject { found: JsonKind::Array }));
/// assert_eq!(e.to_string(), "expected a JSON object, got an array");
/// let e = parse::last_operation(br#"{"state": "in_progress"}"#).unwrap_err();
/// assert_eq!(e.detailed(), r#"unknown state "in_progress""#);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The body is empty (or whitespace) where a JSON object is required.
    #[error("empty body, expected a JSON object")]
    Empty,
    /// The body is valid JSON but not an object.
    #[error("expected a JSON object, got {found}")]
    NotAnObject {
        /// What the body is instead.
        found: JsonKind,
    },
    /// The body is not JSON at all.
    #[error("invalid JSON")]
    InvalidJson {
        /// The JSON parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// The body is (or starts like) a JSON object but does not have the expected fields and
    /// types, or breaks off.
    #[error("invalid body")]
    InvalidBody {
        /// The JSON parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A last_operation `state` that is none of `in progress`, `succeeded`, `failed`.
    #[error("unknown state {state:?}")]
    UnknownState {
        /// The state (at most 100 bytes of it).
        state: String,
    },
    /// A last_operation body without a string `state`.
    #[error("missing state")]
    MissingState,
}

impl ParseError {
    /// The message with the JSON parser's message appended (`invalid body: missing field
    /// \`services\` at line 1 column 2`): what [`crate::Error::Decode`] shows.
    pub fn detailed(&self) -> String {
        let mut s = self.to_string();
        let mut cur = std::error::Error::source(self);
        while let Some(e) = cur {
            s.push_str(": ");
            s.push_str(&e.to_string());
            cur = e.source();
        }
        s
    }
}

/// The kind of a JSON value, as named in parse errors (`an array`, `null`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JsonKind {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool,
    /// A number.
    Number,
    /// A string.
    String,
    /// An array.
    Array,
    /// An object.
    Object,
}

impl JsonKind {
    /// The kind of `v`.
    pub fn of(v: &Value) -> Self {
        match v {
            Value::Null => JsonKind::Null,
            Value::Bool(_) => JsonKind::Bool,
            Value::Number(_) => JsonKind::Number,
            Value::String(_) => JsonKind::String,
            Value::Array(_) => JsonKind::Array,
            Value::Object(_) => JsonKind::Object,
        }
    }
}

impl fmt::Display for JsonKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JsonKind::Null => "null",
            JsonKind::Bool => "a boolean",
            JsonKind::Number => "a number",
            JsonKind::String => "a string",
            JsonKind::Array => "an array",
            JsonKind::Object => "an object",
        })
    }
}

/// The start of `body`, at most `max` bytes, lossily decoded as UTF-8.
pub(crate) fn excerpt(body: &[u8], max: usize) -> String {
    let cut = &body[..body.len().min(max)];
    String::from_utf8_lossy(cut).into_owned()
}

/// The fields of an error body (spec 5.1); all optional.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ErrorBody {
    /// `error`, if a string.
    pub error: Option<String>,
    /// `description`, if a string.
    pub description: Option<String>,
    /// `instance_usable`, if a bool.
    pub instance_usable: Option<bool>,
    /// `update_repeatable`, if a bool.
    pub update_repeatable: Option<bool>,
}

/// Extracts what it can from an error body; empty, `null`, non-JSON or wrongly typed input
/// yields empty fields.
pub fn error_body(body: &[u8]) -> ErrorBody {
    let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(body) else {
        return ErrorBody::default();
    };
    let s = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_owned);
    let b = |k: &str| m.get(k).and_then(Value::as_bool);
    ErrorBody {
        error: s("error"),
        description: s("description"),
        instance_usable: b("instance_usable"),
        update_repeatable: b("update_repeatable"),
    }
}

/// True when the body means "nothing": empty, whitespace, `null` or `""`.
pub fn is_empty_body(body: &[u8]) -> bool {
    let t = body.trim_ascii();
    t.is_empty() || t == b"null" || t == b"\"\""
}

/// Parses a body where the spec expects an object whose fields are all optional: empty,
/// `null` and `""` give the default value.
pub fn lenient<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T> {
    if is_empty_body(body) {
        Ok(T::default())
    } else {
        object(body)
    }
}

/// Parses a body that must be a JSON object (serde would also accept an array for a struct).
pub fn object<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    let t = body.trim_ascii_start();
    if !t.starts_with(b"{") {
        return Err(match t.first() {
            None => ParseError::Empty,
            Some(_) => match serde_json::from_slice::<Value>(t) {
                Ok(v) => ParseError::NotAnObject {
                    found: JsonKind::of(&v),
                },
                Err(source) => ParseError::InvalidJson { source },
            },
        });
    }
    serde_json::from_slice(t).map_err(|source| ParseError::InvalidBody { source })
}

/// Parses a catalog body (a JSON object with `services`).
pub fn catalog(body: &[u8]) -> Result<Catalog> {
    object(body)
}

/// A provision/update/deprovision/bind/unbind body: the union of the synchronous and
/// asynchronous fields that the outcome mapping needs.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct OperationBody {
    /// `operation`; `null`, absent, `""` and non-strings all mean "no key".
    #[serde(default, deserialize_with = "operation_key")]
    pub operation: Option<OperationKey>,
    /// `dashboard_url`.
    #[serde(default)]
    pub dashboard_url: Option<String>,
    /// `metadata`.
    #[serde(default)]
    pub metadata: Option<InstanceMetadata>,
    /// True when the body carried a `credentials` field (forbidden on 202 binds).
    #[serde(default, deserialize_with = "present")]
    pub credentials: bool,
}

fn operation_key<'de, D: Deserializer<'de>>(d: D) -> Result<Option<OperationKey>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) if !s.is_empty() => Some(OperationKey(s)),
        _ => None,
    })
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(!matches!(Value::deserialize(d)?, Value::Null))
}

/// Parses a provision/update/delete/bind 202 (or sync instance) body leniently.
pub fn operation_body(body: &[u8]) -> Result<OperationBody> {
    lenient(body)
}

/// Parses a binding body (bind 200/201, fetch binding).
pub fn binding(body: &[u8]) -> Result<BindingBody> {
    lenient(body)
}

/// Parses a fetched instance.
pub fn instance(body: &[u8]) -> Result<InstanceBody> {
    lenient(body)
}

/// Parses a last_operation 200 body; `Err` carries why it is not a valid state.
pub fn last_operation(body: &[u8]) -> Result<LastOperation> {
    let v: Value =
        serde_json::from_slice(body).map_err(|source| ParseError::InvalidJson { source })?;
    let Value::Object(m) = v else {
        return Err(ParseError::NotAnObject {
            found: JsonKind::of(&v),
        });
    };
    let state = match m.get("state").and_then(Value::as_str) {
        Some("in progress") => OperationState::InProgress,
        Some("succeeded") => OperationState::Succeeded,
        Some("failed") => OperationState::Failed,
        Some(other) => {
            return Err(ParseError::UnknownState {
                state: excerpt(other.as_bytes(), 100),
            });
        }
        None => return Err(ParseError::MissingState),
    };
    Ok(LastOperation {
        state,
        description: m
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned),
        instance_usable: m.get("instance_usable").and_then(Value::as_bool),
        update_repeatable: m.get("update_repeatable").and_then(Value::as_bool),
    })
}

/// Parses a `Retry-After` value (delta-seconds or an HTTP-date in any of the three RFC 7231
/// forms) relative to `now`. A past date means zero; invalid values give `None`.
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        // Saturate absurdly large values instead of failing.
        return Some(Duration::from_secs(v.parse::<u64>().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Deserialises `null` as the default value.
pub(crate) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Endpoint ports: strings or numbers, a single value or an array.
pub(crate) fn ports<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    use serde::de::Error;
    fn one<E: Error>(v: Value) -> Result<String, E> {
        match v {
            Value::String(s) => Ok(s),
            Value::Number(n) => Ok(n.to_string()),
            other => Err(E::custom(format!(
                "a port must be a string or a number, got {}",
                JsonKind::of(&other)
            ))),
        }
    }
    match Value::deserialize(d)? {
        Value::Null => Ok(Vec::new()),
        Value::Array(a) => a.into_iter().map(one).collect(),
        v => Ok(vec![one(v)?]),
    }
}

/// Credentials: an object or `null`.
pub(crate) fn credentials<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Credentials>, D::Error> {
    Ok(Option::<Map<String, Value>>::deserialize(d)?.map(Credentials::new))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_formats() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(retry_after("5", now), Some(Duration::from_secs(5)));
        assert_eq!(retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            retry_after("Sunday, 06-Nov-94 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            retry_after("Sun Nov  6 08:49:47 1994", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("-1", now), None);
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("", now), None);
        assert_eq!(
            retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn error_bodies_never_fail() {
        assert_eq!(error_body(b""), ErrorBody::default());
        assert_eq!(error_body(b"null"), ErrorBody::default());
        assert_eq!(error_body(b"<html>"), ErrorBody::default());
        assert_eq!(
            error_body(br#"{"error": 5, "description": ["x"]}"#),
            ErrorBody::default()
        );
        let e =
            error_body(br#"{"error":"AsyncRequired","description":"d","instance_usable":false}"#);
        assert_eq!(e.error.as_deref(), Some("AsyncRequired"));
        assert_eq!(e.instance_usable, Some(false));
        assert_eq!(e.update_repeatable, None);
    }

    #[test]
    fn operation_keys() {
        for body in [
            &b""[..],
            b"null",
            b"\"\"",
            b"{}",
            br#"{"operation":null}"#,
            br#"{"operation":""}"#,
            br#"{"operation":5}"#,
            br#"{"async":true}"#,
        ] {
            assert_eq!(
                operation_body(body).unwrap().operation,
                None,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(
            operation_body(br#"{"operation":"a+b"}"#).unwrap().operation,
            Some(OperationKey("a+b".into()))
        );
        assert!(operation_body(b"[1]").is_err());
    }

    #[test]
    fn last_operation_states() {
        assert_eq!(
            last_operation(br#"{"state":"in progress"}"#).unwrap().state,
            OperationState::InProgress
        );
        assert_eq!(
            last_operation(br#"{"state":"failed","instance_usable":false}"#)
                .unwrap()
                .instance_usable,
            Some(false)
        );
        assert!(last_operation(b"null").is_err());
        assert!(last_operation(br#"{"state":"in_progress"}"#).is_err());
        assert!(last_operation(b"{").is_err());
    }

    #[test]
    fn endpoint_ports_accept_numbers_and_strings() {
        let b = binding(
            br#"{"endpoints":[{"host":"h","ports":[443,"9000-9010"]},{"host":"g","ports":5432}]}"#,
        )
        .unwrap();
        assert_eq!(b.endpoints[0].ports, vec!["443", "9000-9010"]);
        assert_eq!(b.endpoints[1].ports, vec!["5432"]);
        assert!(binding(br#"{"endpoints":[{"host":"h","ports":[true]}]}"#).is_err());
    }
}
