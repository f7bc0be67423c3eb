//! Response parsing, separated from the transport so it can be fuzzed and property-tested.
//! Every function here is total: any byte sequence yields a value or an error, never a panic.

use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::catalog::Catalog;
use crate::model::{
    BindingBody, Credentials, InstanceBody, InstanceMetadata, LastOperation, OperationKey,
    OperationState,
};

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
pub fn lenient<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, String> {
    if is_empty_body(body) {
        Ok(T::default())
    } else {
        object(body)
    }
}

/// Parses a body that must be a JSON object (serde would also accept an array for a struct).
pub fn object<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let t = body.trim_ascii_start();
    if !t.starts_with(b"{") {
        return Err(match t.first() {
            None => "empty body, expected a JSON object".to_owned(),
            Some(_) => match serde_json::from_slice::<Value>(t) {
                Ok(v) => format!("expected a JSON object, got {}", kind_of(&v)),
                Err(e) => format!("invalid JSON: {e}"),
            },
        });
    }
    serde_json::from_slice(t).map_err(|e| format!("invalid body: {e}"))
}

/// Parses a catalog body (a JSON object with `services`).
pub fn catalog(body: &[u8]) -> Result<Catalog, String> {
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
pub fn operation_body(body: &[u8]) -> Result<OperationBody, String> {
    lenient(body)
}

/// Parses a binding body (bind 200/201, fetch binding).
pub fn binding(body: &[u8]) -> Result<BindingBody, String> {
    lenient(body)
}

/// Parses a fetched instance.
pub fn instance(body: &[u8]) -> Result<InstanceBody, String> {
    lenient(body)
}

/// Parses a last_operation 200 body; `Err` carries why it is not a valid state.
pub fn last_operation(body: &[u8]) -> Result<LastOperation, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let Value::Object(m) = v else {
        return Err(format!("expected a JSON object, got {}", kind_of(&v)));
    };
    let state = match m.get("state").and_then(Value::as_str) {
        Some("in progress") => OperationState::InProgress,
        Some("succeeded") => OperationState::Succeeded,
        Some("failed") => OperationState::Failed,
        Some(other) => {
            return Err(format!(
                "unknown state {:?}",
                crate::error::excerpt(other.as_bytes(), 100)
            ));
        }
        None => return Err("missing state".to_owned()),
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

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
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
                kind_of(&other)
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
