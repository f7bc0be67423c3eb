//! Helpers the kind controllers share: external ids with v1.5 migration, semantic JSON
//! equality and diffs of parameters, OSB context and originating identity, and lookups of
//! related managed resources by claim labels.

use std::collections::BTreeMap;
use std::time::Duration;

use klutch_osb::{Context, OriginatingIdentity};
use klutch_sdk::crossplane::ExternalError;
use klutch_sdk::crossplane::Managed;
use kube::ResourceExt as _;
use kube::api::{Api, ListParams};
use serde_json::{Map, Value};

use crate::provider::api::common::OriginatingIdentity as SpecIdentity;
use crate::provider::meta::{self, CLAIM_NAME_LABEL, CLAIM_NAMESPACE_LABEL, EXTERNAL_NAME};

/// The external name, unless empty or equal to `metadata.name` (Klutch v1.5 objects carry
/// their own name there before the id is known).
pub fn external_name<K: Managed>(mr: &K) -> Option<String> {
    meta::annotation(&mr.meta().annotations, EXTERNAL_NAME)
        .filter(|v| Some(*v) != mr.meta().name.as_deref())
        .map(str::to_owned)
}

/// Semantic JSON equality (spec 4.2 step 9): object key order ignored, numbers by value,
/// arrays as multisets, absent == null == empty.
///
/// ```
/// use serde_json::json;
/// use klutch_a9s::provider::controllers::common::semantic_eq;
/// assert!(semantic_eq(&json!({"a": 5, "b": [1, 2]}), &json!({"b": [2, 1], "a": 5.0})));
/// assert!(!semantic_eq(&json!({"a": 5}), &json!({"a": "5"})));
/// ```
pub fn semantic_eq(a: &Value, b: &Value) -> bool {
    fn empty(v: &Value) -> bool {
        match v {
            Value::Null => true,
            Value::Object(m) => m.is_empty(),
            Value::Array(a) => a.is_empty(),
            _ => false,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => x == y,
        },
        (Value::Object(x), Value::Object(y)) => {
            x.iter()
                .all(|(k, v)| y.get(k).map_or(empty(v), |w| semantic_eq(v, w)))
                && y.iter().all(|(k, w)| x.contains_key(k) || empty(w))
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return false;
            }
            let mut used = vec![false; y.len()];
            x.iter().all(|v| {
                match y
                    .iter()
                    .enumerate()
                    .find(|(i, w)| !used[*i] && semantic_eq(v, w))
                {
                    Some((i, _)) => {
                        used[i] = true;
                        true
                    }
                    None => false,
                }
            })
        }
        (x, y) if empty(x) && empty(y) => true,
        (x, y) => x == y,
    }
}

/// The minimal parameter update (spec 4.4): changed or new keys with their new values, removed
/// keys as `null`; `None` when nothing changed.
///
/// ```
/// use serde_json::json;
/// use klutch_a9s::provider::controllers::common::parameter_diff;
/// let old = json!({"a": 1, "b": 2, "c": 3}).as_object().unwrap().clone();
/// let new = json!({"a": 1.0, "b": 5, "d": 4}).as_object().unwrap().clone();
/// assert_eq!(serde_json::Value::Object(parameter_diff(&old, &new).unwrap()), json!({"b": 5, "c": null, "d": 4}));
/// assert!(parameter_diff(&old, &old).is_none());
/// ```
pub fn parameter_diff(
    old: &Map<String, Value>,
    new: &Map<String, Value>,
) -> Option<Map<String, Value>> {
    let mut diff = Map::new();
    for (k, v) in new {
        if !old.get(k).is_some_and(|o| semantic_eq(o, v)) {
            diff.insert(k.clone(), v.clone());
        }
    }
    for (k, v) in old {
        if !new.contains_key(k) && !v.is_null() {
            diff.insert(k.clone(), Value::Null);
        }
    }
    (!diff.is_empty()).then_some(diff)
}

/// A `BTreeMap` of parameters as a JSON map.
pub fn to_map(p: &Option<BTreeMap<String, Value>>) -> Map<String, Value> {
    p.iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The OSB `context`: the user's keys plus `organization_guid` and `space_guid` (which users
/// cannot override).
pub fn osb_context(user: &Option<BTreeMap<String, String>>, org: &str, space: &str) -> Context {
    let mut m: Map<String, Value> = user
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    m.insert("organization_guid".into(), org.into());
    m.insert("space_guid".into(), space.into());
    Context(m)
}

/// The originating identity of a spec; `value` must be a JSON object.
pub fn originating_identity(
    id: &Option<SpecIdentity>,
) -> Result<Option<OriginatingIdentity>, ExternalError> {
    let Some(id) = id else { return Ok(None) };
    let platform = id.platform.clone().unwrap_or_default();
    if platform.is_empty() {
        return Err(ExternalError::user(
            "forProvider.originatingIdentity.platform must be set",
        ));
    }
    let value = id.value.as_deref().unwrap_or("{}");
    match serde_json::from_str::<Value>(value) {
        Ok(Value::Object(m)) => Ok(Some(OriginatingIdentity::raw(platform, m))),
        _ => Err(ExternalError::user(
            "forProvider.originatingIdentity.value must be a JSON object",
        )),
    }
}

/// Lists managed resources of kind `T` with the claim labels `claim_name` / `claim_namespace`.
pub async fn by_claim<T: Managed>(
    client: &kube::Client,
    claim_name: &str,
    claim_namespace: Option<&str>,
) -> Result<Vec<T>, ExternalError> {
    let mut sel = format!("{CLAIM_NAME_LABEL}={claim_name}");
    if let Some(ns) = claim_namespace {
        sel.push_str(&format!(",{CLAIM_NAMESPACE_LABEL}={ns}"));
    }
    let api: Api<T> = Api::all(client.clone());
    api.list(&ListParams::default().labels(&sel))
        .await
        .map(|l| l.items)
        .map_err(|e| ExternalError::with_source(format!("cannot list {}", T::kind(&())), e))
}

/// The claim namespace label of an object.
pub fn claim_namespace<K: Managed>(mr: &K) -> Option<String> {
    meta::label(&mr.meta().labels, CLAIM_NAMESPACE_LABEL).map(str::to_owned)
}

/// Exactly one related object, with the v1.5 error messages.
pub fn exactly_one<T: Managed>(
    mut items: Vec<T>,
    what: &str,
    not_found: &str,
) -> Result<T, ExternalError> {
    match items.len() {
        0 => Err(ExternalError::user(not_found.to_owned()).requeue_after(Duration::from_secs(10))),
        1 => Ok(items.remove(0)),
        n => Err(ExternalError::user(format!(
            "expected 1 {what} managed resource but got {n}: {}",
            items
                .iter()
                .map(|i| i.name_any())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The elapsed time since an RFC 3339 timestamp.
pub fn since(ts: &str) -> Option<Duration> {
    let t: jiff::Timestamp = ts.parse().ok()?;
    jiff::Timestamp::now().duration_since(t).try_into().ok()
}
