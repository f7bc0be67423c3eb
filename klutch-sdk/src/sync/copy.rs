//! Clean copies of objects for the other cluster.

use std::collections::BTreeMap;

use kube::api::DynamicObject;
use serde_json::{Value, json};

use crate::api::wellknown::BOUND_ANNOTATION;

/// A copy of `obj` with everything that belongs to its own cluster removed: `uid`,
/// `resourceVersion`, `generation`, `creationTimestamp`, `managedFields`, `deletionTimestamp`,
/// `deletionGracePeriodSeconds`, `ownerReferences`, `finalizers` and `status`. Name, namespace,
/// labels, annotations and every other top-level field (`spec`, `data`, ...) stay.
///
/// ```
/// use kube::api::{ApiResource, DynamicObject};
/// use klutch_sdk::sync::copy::clean_copy;
///
/// let ar = ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&());
/// let mut cm = DynamicObject::new("cm", &ar).within("team-a");
/// cm.metadata.uid = Some("1234".into());
/// cm.metadata.finalizers = Some(vec!["klutch.anynines.com/syncer".into()]);
/// cm.data = serde_json::json!({ "data": { "k": "v" }, "status": { "x": 1 } });
/// let copy = clean_copy(&cm);
/// assert_eq!(copy.metadata.uid, None);
/// assert_eq!(copy.metadata.finalizers, None);
/// assert_eq!(copy.data, serde_json::json!({ "data": { "k": "v" } }));
/// ```
pub fn clean_copy(obj: &DynamicObject) -> DynamicObject {
    let mut copy = obj.clone();
    let meta = &mut copy.metadata;
    meta.uid = None;
    meta.resource_version = None;
    meta.generation = None;
    meta.creation_timestamp = None;
    meta.managed_fields = None;
    meta.deletion_timestamp = None;
    meta.deletion_grace_period_seconds = None;
    meta.owner_references = None;
    meta.finalizers = None;
    meta.self_link = None;
    meta.generate_name = None;
    if let Some(fields) = copy.data.as_object_mut() {
        fields.remove("status");
        fields.remove("metadata");
    }
    copy
}

/// The minimal server-side-apply intent for the provider copy of a consumer object: `apiVersion`,
/// `kind`, `metadata.{name, namespace, annotations}` and `spec`, nothing else, so the field
/// manager owns exactly the spec (and the `bound` annotation plus `extra_annotations`).
pub fn provider_intent(
    consumer: &DynamicObject,
    api_version: &str,
    kind: &str,
    name: &str,
    namespace: Option<&str>,
    extra_annotations: &BTreeMap<String, String>,
) -> Value {
    let mut annotations = extra_annotations.clone();
    annotations.insert(BOUND_ANNOTATION.to_string(), "true".to_string());
    let mut metadata = json!({ "name": name, "annotations": annotations });
    if let Some(ns) = namespace {
        metadata["namespace"] = json!(ns);
    }
    let mut intent = json!({ "apiVersion": api_version, "kind": kind, "metadata": metadata });
    if let Some(spec) = consumer.data.get("spec") {
        intent["spec"] = spec.clone();
    }
    intent
}

/// Whether the object carries `klutch.anynines.com/bound: "true"`.
pub fn is_bound(obj: &DynamicObject) -> bool {
    obj.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(BOUND_ANNOTATION))
        .is_some_and(|v| v == "true")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
        ManagedFieldsEntry, OwnerReference, Time,
    };
    use kube::api::ApiResource;

    fn obj() -> DynamicObject {
        let ar = ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
            "anynines.com",
            "v1",
            "PostgresqlInstance",
        ));
        let mut o = DynamicObject::new("db", &ar).within("team-a");
        let m = &mut o.metadata;
        m.uid = Some("u".into());
        m.resource_version = Some("9".into());
        m.generation = Some(3);
        m.creation_timestamp = Some(Time("2026-01-01T00:00:00Z".parse().unwrap()));
        m.managed_fields = Some(vec![ManagedFieldsEntry::default()]);
        m.deletion_timestamp = Some(Time("2026-01-01T00:00:00Z".parse().unwrap()));
        m.deletion_grace_period_seconds = Some(0);
        m.owner_references = Some(vec![OwnerReference::default()]);
        m.finalizers = Some(vec!["f".into()]);
        m.labels = Some([("app".to_string(), "x".to_string())].into());
        m.annotations = Some([("note".to_string(), "y".to_string())].into());
        o.data = json!({ "spec": { "plan": "small" }, "status": { "ready": true } });
        o
    }

    #[test]
    fn clean_copy_strips_exactly_the_cluster_local_fields() {
        let copy = clean_copy(&obj());
        let m = &copy.metadata;
        assert_eq!(
            (m.uid.as_ref(), m.resource_version.as_ref(), m.generation),
            (None, None, None)
        );
        assert!(
            m.creation_timestamp.is_none()
                && m.managed_fields.is_none()
                && m.deletion_timestamp.is_none()
        );
        assert!(
            m.deletion_grace_period_seconds.is_none()
                && m.owner_references.is_none()
                && m.finalizers.is_none()
        );
        assert_eq!(m.name.as_deref(), Some("db"));
        assert_eq!(m.namespace.as_deref(), Some("team-a"));
        assert_eq!(m.labels.as_ref().unwrap()["app"], "x");
        assert_eq!(m.annotations.as_ref().unwrap()["note"], "y");
        assert_eq!(copy.data, json!({ "spec": { "plan": "small" } }));
    }

    #[test]
    fn intent_holds_only_identity_annotations_and_spec() {
        let extra = BTreeMap::from([(
            "klutch.anynines.com/cluster-namespace".to_string(),
            "cluster-a".to_string(),
        )]);
        let intent = provider_intent(
            &obj(),
            "anynines.com/v1",
            "PostgresqlInstance",
            "db",
            Some("cluster-a-team-a"),
            &extra,
        );
        assert_eq!(
            intent,
            json!({
                "apiVersion": "anynines.com/v1", "kind": "PostgresqlInstance",
                "metadata": { "name": "db", "namespace": "cluster-a-team-a", "annotations": {
                    "klutch.anynines.com/bound": "true", "klutch.anynines.com/cluster-namespace": "cluster-a" } },
                "spec": { "plan": "small" }
            })
        );
        let mut bound = obj();
        assert!(!is_bound(&bound));
        bound
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(BOUND_ANNOTATION.into(), "true".into());
        assert!(is_bound(&bound));
    }
}
