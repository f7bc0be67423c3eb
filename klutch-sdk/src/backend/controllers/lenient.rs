//! One bad object never stops a controller: [`Lenient<K>`] decodes each listed or watched object
//! on its own, so an object the type cannot read (written before the schema was tightened, or
//! past it) becomes [`Lenient::Invalid`] with its metadata and the decode error instead of failing
//! the whole list. The controllers skip it, report it on the object ([`report_invalid`]: a
//! Warning event, reason [`INVALID_OBJECT`]) and keep serving everyone else.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

/// Reason of the event on an object the backend cannot decode.
pub const INVALID_OBJECT: &str = "InvalidObject";

/// An object of kind `K` as read from the API server: decoded, or kept raw with the reason it
/// could not be decoded.
#[derive(Clone, Debug)]
pub enum Lenient<K> {
    /// Decoded.
    Valid(K),
    /// Not decodable as `K` (boxed: rare, and larger than most objects).
    Invalid(Box<Invalid>),
}

/// An object that did not decode: its metadata, the raw JSON and the error.
#[derive(Clone, Debug)]
pub struct Invalid {
    /// The object's metadata (always decodable: the API server validates it).
    pub metadata: ObjectMeta,
    /// The whole object as stored.
    pub raw: serde_json::Value,
    /// Why it did not decode.
    pub error: String,
}

impl<K> Lenient<K> {
    /// The decoded object, if it decoded.
    pub fn valid(&self) -> Option<&K> {
        match self {
            Lenient::Valid(k) => Some(k),
            Lenient::Invalid(_) => None,
        }
    }
}

impl<'de, K: DeserializeOwned> Deserialize<'de> for Lenient<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = serde_json::Value::deserialize(d)?;
        match K::deserialize(&raw) {
            Ok(k) => Ok(Lenient::Valid(k)),
            Err(error) => {
                // Without readable metadata there is nothing to key or report on: fail as before.
                let metadata =
                    ObjectMeta::deserialize(&raw["metadata"]).map_err(serde::de::Error::custom)?;
                Ok(Lenient::Invalid(Box::new(Invalid {
                    metadata,
                    raw,
                    error: error.to_string(),
                })))
            }
        }
    }
}

impl<K: Resource<DynamicType = ()>> Resource for Lenient<K> {
    type DynamicType = ();
    type Scope = K::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        K::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        K::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        K::version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        K::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        match self {
            Lenient::Valid(k) => k.meta(),
            Lenient::Invalid(i) => &i.metadata,
        }
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Lenient::Valid(k) => k.meta_mut(),
            Lenient::Invalid(i) => &mut i.metadata,
        }
    }
}

/// The event recorder of the backend's controllers.
pub fn recorder(client: kube::Client) -> Recorder {
    Recorder::new(
        client,
        Reporter {
            controller: crate::backend::binding_space::FIELD_MANAGER.into(),
            instance: None,
        },
    )
}

/// Logs `invalid` and records a Warning event [`INVALID_OBJECT`] on it, so its owner sees why the
/// backend ignores it. Best effort: a failed event is only logged.
pub async fn report_invalid<K: Resource<DynamicType = ()>>(recorder: &Recorder, invalid: &Invalid) {
    let reference = k8s_openapi::api::core::v1::ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        name: invalid.metadata.name.clone(),
        namespace: invalid.metadata.namespace.clone(),
        uid: invalid.metadata.uid.clone(),
        resource_version: invalid.metadata.resource_version.clone(),
        ..Default::default()
    };
    tracing::warn!(
        kind = %K::kind(&()),
        namespace = invalid.metadata.namespace.as_deref().unwrap_or_default(),
        name = invalid.metadata.name.as_deref().unwrap_or_default(),
        error = %invalid.error,
        "ignoring an object that does not decode"
    );
    let event = Event {
        type_: EventType::Warning,
        reason: INVALID_OBJECT.into(),
        note: Some(truncate(&format!(
            "ignored by the backend until fixed: {}",
            invalid.error
        ))),
        action: "Decode".into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, &reference).await {
        tracing::warn!(error = %e, "could not record the InvalidObject event");
    }
}

/// The object inside `obj`, or `None` after reporting it as invalid: the first lines of every
/// reconcile.
pub async fn valid_or_report<'a, K: Resource<DynamicType = ()>>(
    obj: &'a Lenient<K>,
    recorder: &Recorder,
) -> Option<&'a K> {
    match obj {
        Lenient::Valid(k) => Some(k),
        Lenient::Invalid(invalid) => {
            report_invalid::<K>(recorder, invalid).await;
            None
        }
    }
}

/// Event notes are limited to 1 kB.
fn truncate(note: &str) -> String {
    if note.len() <= 1000 {
        return note.to_owned();
    }
    let mut end = 1000;
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &note[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{APIServiceNamespace, ClusterBinding};

    #[test]
    fn a_bad_item_does_not_fail_the_list() {
        let list = serde_json::json!({
            "apiVersion": "klutch.anynines.com/v1alpha1", "kind": "ClusterBindingList", "metadata": {},
            "items": [
                { "apiVersion": "klutch.anynines.com/v1alpha1", "kind": "ClusterBinding",
                  "metadata": { "name": "cluster", "namespace": "good" },
                  "spec": { "kubeconfigSecretRef": { "name": "kubeconfig", "key": "kubeconfig" }, "providerPrettyName": "P" } },
                { "apiVersion": "klutch.anynines.com/v1alpha1", "kind": "ClusterBinding",
                  "metadata": { "name": "cluster", "namespace": "bad" },
                  "spec": { "kubeconfigSecretRef": { "name": "kubeconfig", "key": "kubeconfig" }, "providerPrettyName": "P" },
                  "status": { "conditions": [{ "type": "Ready", "status": "Pwned", "severity": "Apocalyptic", "lastTransitionTime": "2026-01-01T00:00:00Z" }] } }
            ]
        });
        let list: kube::core::ObjectList<Lenient<ClusterBinding>> =
            serde_json::from_value(list).unwrap();
        assert!(list.items[0].valid().is_some());
        let Lenient::Invalid(bad) = &list.items[1] else {
            panic!("decoded the bad one")
        };
        assert_eq!(bad.metadata.namespace.as_deref(), Some("bad"));
        assert!(bad.error.contains("Apocalyptic"), "{}", bad.error);
        assert_eq!(
            Lenient::<APIServiceNamespace>::plural(&()),
            "apiservicenamespaces"
        );
    }

    #[test]
    fn notes_are_cut_at_a_char_boundary() {
        let long = "é".repeat(800);
        let cut = truncate(&long);
        assert!(cut.len() <= 1004 && cut.ends_with('…'));
    }
}
