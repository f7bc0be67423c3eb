//! Flattening binding credentials into the keys of the `<claim>-creds` Secret (spec 14.4).
//!
//! The **key names** are the compatibility contract with Klutch v1.5 (application clusters
//! read them); the **values** are rendered without v1.5's Go formatting defects. The one
//! flattening this crate offers:
//!
//! 1. Nested objects become dotted keys (`protocols.amqp_ssl.uri`); arrays are leaves.
//! 2. Characters outside `[-._a-zA-Z0-9]` in keys become `_` (an empty key segment becomes
//!    `_`), so every key is a valid Secret key.
//! 3. Values: strings verbatim; booleans `true`/`false`; integers in plain decimal (v1.5
//!    printed `1e+06`); other numbers in shortest round-trip form; **arrays as compact JSON**
//!    (`["a","b"]`; v1.5 printed Go's `[a b]`, which is ambiguous and unparsable when an
//!    element contains a space); `null` as the empty string (v1.5 printed `<nil>`).
//! 4. De-duplication: a root key `k` is removed when a dotted key ending in `.k` has the
//!    identical rendered value (for example messaging `host`, `port` and `username` disappear
//!    in favour of `protocols.amqp_ssl.*`).
//! 5. When two source keys produce the same Secret key (e.g. a literal `"valkey.port"` and a
//!    nested `{"valkey": {"port": ..}}`), the first in key order wins.
//!
//! ```
//! use klutch_a9s::flatten::flatten;
//! let raw = serde_json::json!({
//!     "hosts": ["pg-0", "pg-1"], "port": 5432, "password": "pw",
//!     "valkey": {"port": 6379}, "big": 1000000.0, "none": null
//! });
//! let data = flatten(raw.as_object().unwrap());
//! assert_eq!(data.get("hosts"), Some(r#"["pg-0","pg-1"]"#));
//! assert_eq!(data.get("port"), Some("5432"));
//! assert_eq!(data.get("valkey.port"), Some("6379"));
//! assert_eq!(data.get("big"), Some("1000000"));
//! assert_eq!(data.get("none"), Some(""));
//! assert!(!format!("{data:?}").contains("pw"));
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Number, Value};

/// Flattened credentials: Secret key to value. `Debug` shows only the keys.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecretData(BTreeMap<String, String>);

impl fmt::Debug for SecretData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretData")
            .field("keys", &self.0.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl SecretData {
    /// The value of a key. Never log the result.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// The keys, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no keys.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The map. Never log the result.
    pub fn expose(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// Consumes into the map (e.g. for a Secret's `stringData`). Never log the result.
    pub fn into_inner(self) -> BTreeMap<String, String> {
        self.0
    }
}

/// Flattens a credentials object into Secret keys and values (see the module docs).
pub fn flatten(credentials: &Map<String, Value>) -> SecretData {
    let mut out = BTreeMap::new();
    for (k, v) in credentials {
        walk(&sanitize(k), v, &mut out);
    }
    // De-duplicate root keys shadowed by an identical dotted key.
    let shadowed: Vec<String> = out
        .iter()
        .filter(|(k, _)| !k.contains('.'))
        .filter(|(k, v)| {
            out.iter().any(|(dk, dv)| {
                dk.contains('.') && dk.rsplit('.').next() == Some(k.as_str()) && dv == *v
            })
        })
        .map(|(k, _)| k.clone())
        .collect();
    for k in shadowed {
        out.remove(&k);
    }
    SecretData(out)
}

fn walk(key: &str, v: &Value, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                walk(&format!("{key}.{}", sanitize(k)), v, out);
            }
        }
        leaf => {
            out.entry(key.to_owned()).or_insert_with(|| render(leaf));
        }
    }
}

/// Replaces characters outside `[-._a-zA-Z0-9]` with `_`; empty segments become `_`.
pub fn sanitize(key: &str) -> String {
    let s: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        return "_".to_owned();
    }
    s.split('.')
        .map(|seg| if seg.is_empty() { "_" } else { seg })
        .collect::<Vec<_>>()
        .join(".")
}

/// Renders one leaf value (see the module docs).
pub fn render(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => render_number(n),
        Value::String(s) => s.clone(),
        Value::Array(_) | Value::Object(_) => canonical_json(v),
    }
}

fn render_number(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    match n.as_f64() {
        // Integral floats (1e6 in JSON) print as plain integers, as long as that is exact.
        Some(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 => {
            format!("{f:.0}")
        }
        Some(f) if f.is_finite() => f.to_string(),
        _ => n.to_string(),
    }
}

/// Compact JSON with numbers rendered like leaves (so `1e6` inside an array is `1000000`).
fn canonical_json(v: &Value) -> String {
    match v {
        Value::Number(n) => render_number(n),
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(canonical_json).collect();
            format!("[{}]", items.join(","))
        }
        Value::Object(m) => {
            let mut items: Vec<(&String, &Value)> = m.iter().collect();
            items.sort_by(|a, b| a.0.cmp(b.0));
            let items: Vec<String> = items
                .into_iter()
                .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), canonical_json(v)))
                .collect();
            format!("{{{}}}", items.join(","))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rendering() {
        assert_eq!(render(&json!("a b")), "a b");
        assert_eq!(render(&json!(true)), "true");
        assert_eq!(render(&json!(1000000)), "1000000");
        assert_eq!(render(&json!(1e6)), "1000000");
        assert_eq!(render(&json!(-3)), "-3");
        assert_eq!(render(&json!(u64::MAX)), "18446744073709551615");
        assert_eq!(render(&json!(0.1)), "0.1");
        assert_eq!(render(&json!(1.5e300)), 1.5e300_f64.to_string());
        assert_eq!(render(&json!(null)), "");
        assert_eq!(render(&json!(["a b", "c"])), r#"["a b","c"]"#);
        assert_eq!(render(&json!([1e6, true, null])), "[1000000,true,null]");
        assert_eq!(
            render(&json!([{"z": 1, "a": "x\"y"}])),
            r#"[{"a":"x\"y","z":1}]"#
        );
        assert_eq!(render(&json!([])), "[]");
    }

    #[test]
    fn keys_are_sanitized() {
        assert_eq!(sanitize("a b/c:d"), "a_b_c_d");
        assert_eq!(sanitize("ü"), "_");
        assert_eq!(sanitize(""), "_");
        assert_eq!(sanitize("a..b"), "a._.b");
        assert_eq!(sanitize("Valid-Key_1.x"), "Valid-Key_1.x");
    }

    #[test]
    fn nesting_and_dedup() {
        let raw = json!({
            "host": "h", "port": 1, "other": "x",
            "protocols": {"amqp": {"host": "h", "port": 1}, "mgmt": {"port": 2}},
            "weird key": {"in ner": {}},
        });
        let d = flatten(raw.as_object().unwrap());
        let keys: Vec<&str> = d.keys().collect();
        assert_eq!(
            keys,
            [
                "other",
                "protocols.amqp.host",
                "protocols.amqp.port",
                "protocols.mgmt.port"
            ]
        );
        // A root key whose value differs from the dotted one stays.
        let raw = json!({"port": 1, "p": {"port": 2}});
        let d = flatten(raw.as_object().unwrap());
        assert_eq!(d.keys().collect::<Vec<_>>(), ["p.port", "port"]);
        assert_eq!(d.len(), 2);
        assert!(!d.is_empty());
        assert!(flatten(&Map::new()).is_empty());
    }

    #[test]
    fn dotted_and_nested_forms_give_the_same_keys() {
        let a = flatten(json!({"valkey.port": 6379}).as_object().unwrap());
        let b = flatten(json!({"valkey": {"port": 6379}}).as_object().unwrap());
        assert_eq!(a, b);
        let both = flatten(
            json!({"valkey.port": 1, "valkey": {"port": 2}})
                .as_object()
                .unwrap(),
        );
        assert_eq!(both.len(), 1);
    }
}
