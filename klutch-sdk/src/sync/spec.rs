//! What to do for one consumer object and its provider copy: spec up, status down, deletion.
//!
//! The IO layer fetches both objects, calls [`plan`], and executes the returned actions in order;
//! it never decides anything itself. Compared with Klutch, the consumer finalizer is kept until
//! the provider copy is really gone, so deleting a consumer object can never orphan a provider
//! object (and status keeps flowing down meanwhile).

use std::collections::BTreeMap;

use kube::api::DynamicObject;
use serde_json::Value;

use super::copy::{is_bound, provider_intent};
use crate::api::wellknown::SYNCER_FINALIZER;

/// Where the provider copy of a consumer object lives.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// `apiVersion` of the resource (the same on both sides).
    pub api_version: String,
    /// `kind` of the resource.
    pub kind: String,
    /// The provider copy's name (prefixed for cluster-scoped objects).
    pub name: String,
    /// The provider namespace: `None` for cluster-scoped objects; `Some(None)` would be
    /// meaningless, so an unmapped consumer namespace is reported through [`Plan::NamespacePending`].
    pub namespace: Option<String>,
    /// Annotations the provider copy carries besides `bound` (e.g. the cluster namespace).
    pub annotations: BTreeMap<String, String>,
    /// Owner references of the provider copy (the cluster Namespace for cluster-scoped copies).
    pub owner_references: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>,
}

/// One step for the IO layer.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Add `klutch.anynines.com/syncer` and the annotation `klutch.anynines.com/bound: "true"` to
    /// the consumer object (one write; Klutch marks both copies of a synced object).
    AddFinalizer,
    /// Server-side apply this intent to the provider (field manager `klutch.anynines.com`,
    /// force): creates the copy or reverts drift.
    ApplyProvider(Value),
    /// Delete the provider copy.
    DeleteProvider,
    /// Remove `klutch.anynines.com/syncer` from the consumer object.
    RemoveFinalizer,
    /// Replace the consumer object's whole status with this value (`None`: remove it).
    SetConsumerStatus(Option<Value>),
}

/// The outcome of [`plan`].
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// Do these actions, in order (none: in sync).
    Act(Vec<Action>),
    /// The consumer namespace has no provider namespace yet: ensure its APIServiceNamespace and
    /// retry shortly.
    NamespacePending,
    /// The provider copy is being deleted; wait for the next event.
    WaitForProviderDeletion,
}

fn has_finalizer(obj: &DynamicObject) -> bool {
    obj.metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == SYNCER_FINALIZER))
}

/// Plans one reconcile of `consumer` (with its provider copy, if any). `target` is `None` when the
/// consumer object's namespace is not mapped to a provider namespace yet.
pub fn plan(
    consumer: &DynamicObject,
    provider: Option<&DynamicObject>,
    target: Option<&Target>,
) -> Plan {
    let deleting = consumer.metadata.deletion_timestamp.is_some();
    if deleting {
        return match provider {
            Some(p) if p.metadata.deletion_timestamp.is_some() => Plan::WaitForProviderDeletion,
            Some(_) => Plan::Act(vec![Action::DeleteProvider]),
            None if has_finalizer(consumer) => Plan::Act(vec![Action::RemoveFinalizer]),
            None => Plan::Act(vec![]),
        };
    }
    let Some(target) = target else {
        return Plan::NamespacePending;
    };
    let mut actions = Vec::new();
    if !has_finalizer(consumer) || !is_bound(consumer) {
        actions.push(Action::AddFinalizer);
    }
    let mut intent = provider_intent(
        consumer,
        &target.api_version,
        &target.kind,
        &target.name,
        target.namespace.as_deref(),
        &target.annotations,
    );
    if !target.owner_references.is_empty() {
        intent["metadata"]["ownerReferences"] =
            serde_json::to_value(&target.owner_references).unwrap_or_default();
    }
    match provider {
        None => actions.push(Action::ApplyProvider(intent)),
        Some(p) => {
            let annotations_missing = target
                .annotations
                .iter()
                .any(|(k, v)| p.metadata.annotations.as_ref().and_then(|a| a.get(k)) != Some(v));
            let owners_missing = target.owner_references.iter().any(|want| {
                !p.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|have| have.uid == want.uid)
            });
            if p.data.get("spec") != consumer.data.get("spec")
                || !is_bound(p)
                || annotations_missing
                || owners_missing
            {
                actions.push(Action::ApplyProvider(intent));
            }
            if p.data.get("status") != consumer.data.get("status") {
                actions.push(Action::SetConsumerStatus(p.data.get("status").cloned()));
            }
        }
    }
    Plan::Act(actions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use kube::api::{ApiResource, GroupVersionKind};
    use serde_json::json;

    fn ar() -> ApiResource {
        ApiResource::from_gvk(&GroupVersionKind::gvk(
            "anynines.com",
            "v1",
            "PostgresqlInstance",
        ))
    }

    fn consumer(spec: Value) -> DynamicObject {
        let mut o = DynamicObject::new("db", &ar()).within("team-a");
        o.data = json!({ "spec": spec });
        o
    }

    fn finalized(mut o: DynamicObject) -> DynamicObject {
        o.metadata.finalizers = Some(vec![SYNCER_FINALIZER.into()]);
        o.metadata.annotations =
            Some([("klutch.anynines.com/bound".to_string(), "true".to_string())].into());
        o
    }

    fn deleting(mut o: DynamicObject) -> DynamicObject {
        o.metadata.deletion_timestamp = Some(Time("2026-01-01T00:00:00Z".parse().unwrap()));
        o
    }

    fn provider(spec: Value, status: Option<Value>, bound: bool) -> DynamicObject {
        let mut o = DynamicObject::new("db", &ar()).within("cluster-x-team-a");
        o.data = json!({ "spec": spec });
        if let Some(s) = status {
            o.data["status"] = s;
        }
        if bound {
            o.metadata.annotations =
                Some([("klutch.anynines.com/bound".to_string(), "true".to_string())].into());
        }
        o
    }

    fn target() -> Target {
        Target {
            api_version: "anynines.com/v1".into(),
            kind: "PostgresqlInstance".into(),
            name: "db".into(),
            namespace: Some("cluster-x-team-a".into()),
            annotations: BTreeMap::new(),
            owner_references: Vec::new(),
        }
    }

    fn intent(spec: Value) -> Value {
        json!({
            "apiVersion": "anynines.com/v1", "kind": "PostgresqlInstance",
            "metadata": { "name": "db", "namespace": "cluster-x-team-a", "annotations": { "klutch.anynines.com/bound": "true" } },
            "spec": spec
        })
    }

    #[test]
    fn a_new_object_gets_the_finalizer_then_a_provider_copy() {
        let c = consumer(json!({"plan": "small"}));
        assert_eq!(
            plan(&c, None, Some(&target())),
            Plan::Act(vec![
                Action::AddFinalizer,
                Action::ApplyProvider(intent(json!({"plan": "small"})))
            ])
        );
    }

    #[test]
    fn a_synced_object_without_the_bound_annotation_gets_it() {
        let mut c = finalized(consumer(json!({"plan": "small"})));
        c.metadata.annotations = None;
        let p = provider(json!({"plan": "small"}), None, true);
        assert_eq!(
            plan(&c, Some(&p), Some(&target())),
            Plan::Act(vec![Action::AddFinalizer])
        );
    }

    #[test]
    fn in_sync_means_no_writes_at_all() {
        let c = finalized(consumer(json!({"plan": "small"})));
        let p = provider(json!({"plan": "small"}), None, true);
        assert_eq!(plan(&c, Some(&p), Some(&target())), Plan::Act(vec![]));
    }

    #[test]
    fn provider_drift_and_lost_bound_annotation_are_reverted() {
        let c = finalized(consumer(json!({"plan": "small"})));
        let drifted = provider(json!({"plan": "huge"}), None, true);
        assert_eq!(
            plan(&c, Some(&drifted), Some(&target())),
            Plan::Act(vec![Action::ApplyProvider(intent(
                json!({"plan": "small"})
            ))])
        );
        let unbound = provider(json!({"plan": "small"}), None, false);
        assert!(matches!(plan(&c, Some(&unbound), Some(&target())), Plan::Act(a) if a.len() == 1));
    }

    #[test]
    fn status_flows_down_only_when_it_differs() {
        let c = finalized(consumer(json!({"plan": "small"})));
        let p = provider(json!({"plan": "small"}), Some(json!({"ready": true})), true);
        assert_eq!(
            plan(&c, Some(&p), Some(&target())),
            Plan::Act(vec![Action::SetConsumerStatus(Some(
                json!({"ready": true})
            ))])
        );
        let mut synced = c.clone();
        synced.data["status"] = json!({"ready": true});
        assert_eq!(plan(&synced, Some(&p), Some(&target())), Plan::Act(vec![]));
        let without = provider(json!({"plan": "small"}), None, true);
        assert_eq!(
            plan(&synced, Some(&without), Some(&target())),
            Plan::Act(vec![Action::SetConsumerStatus(None)])
        );
    }

    #[test]
    fn deletion_keeps_the_finalizer_until_the_provider_copy_is_gone() {
        let c = deleting(finalized(consumer(json!({}))));
        let p = provider(json!({}), None, true);
        assert_eq!(
            plan(&c, Some(&p), Some(&target())),
            Plan::Act(vec![Action::DeleteProvider])
        );
        let going = deleting(p);
        assert_eq!(
            plan(&c, Some(&going), Some(&target())),
            Plan::WaitForProviderDeletion
        );
        assert_eq!(
            plan(&c, None, Some(&target())),
            Plan::Act(vec![Action::RemoveFinalizer])
        );
        let released = deleting(consumer(json!({})));
        assert_eq!(plan(&released, None, None), Plan::Act(vec![]));
    }

    #[test]
    fn unmapped_namespaces_wait_and_cluster_scoped_targets_carry_annotations() {
        let c = consumer(json!({}));
        assert_eq!(plan(&c, None, None), Plan::NamespacePending);
        let mut t = target();
        t.namespace = None;
        t.name = "cluster-x-db".into();
        t.annotations.insert(
            "klutch.anynines.com/cluster-namespace".into(),
            "cluster-x".into(),
        );
        let Plan::Act(actions) = plan(&finalized(c), None, Some(&t)) else {
            panic!()
        };
        let Action::ApplyProvider(intent) = &actions[0] else {
            panic!("{actions:?}")
        };
        assert_eq!(intent["metadata"]["name"], "cluster-x-db");
        assert!(intent["metadata"].get("namespace").is_none());
        assert_eq!(
            intent["metadata"]["annotations"]["klutch.anynines.com/cluster-namespace"],
            "cluster-x"
        );
    }
}
