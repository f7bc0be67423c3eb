//! Where the provider copy of a consumer object lives, and which provider objects belong to this
//! consumer: namespaced resources through the namespace mapping, cluster-scoped ones by one of
//! three isolation modes.
//!
//! | mode | provider copy of cluster-scoped consumer object `foo` | in scope on the provider |
//! |---|---|---|
//! | `Prefixed` (Klutch) | cluster-scoped `<clusterNs>-foo`, annotation `klutch.anynines.com/cluster-namespace: <clusterNs>`, owner reference to the cluster Namespace | annotation names this cluster namespace **and** the name carries the prefix |
//! | `Namespaced` (ours) | namespaced `foo` in the cluster namespace (the provider's CRD is namespaced), same annotation | every object of the resource in the cluster namespace |
//! | `None` (ours) | cluster-scoped `foo`, same annotation and owner reference | annotation names this cluster namespace |
//!
//! `None` is for a provider that serves a single consumer (or names objects uniquely itself):
//! an existing provider object of the same name that is not annotated for this cluster namespace
//! is never touched (the consumer object reports a conflict instead). The owner reference to the
//! cluster Namespace means deleting a consumer's cluster namespace removes its cluster-scoped
//! copies with it.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::ObjectMeta;

use super::naming::{NamespaceMap, prefixed_name, unprefixed_name};
use crate::api::export::{ClusterScopedIsolation, Scope};
use crate::api::wellknown::CLUSTER_NAMESPACE_ANNOTATION;

/// How consumer objects of one resource map onto the provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placement {
    /// A namespaced resource: same name, namespace mapped through APIServiceNamespaces.
    Namespaced {
        /// Watch the provider cluster-wide (`informerScope: Cluster`) instead of per service
        /// namespace.
        cluster_informer: bool,
    },
    /// A cluster-scoped resource with this isolation.
    Cluster(ClusterScopedIsolation),
}

impl Placement {
    /// The placement for an export's scope, informer scope and isolation (`Prefixed` when a
    /// cluster-scoped export names none, as Klutch).
    pub fn for_export(
        scope: Scope,
        informer_scope: Scope,
        isolation: Option<ClusterScopedIsolation>,
    ) -> Self {
        match scope {
            Scope::Namespaced => Placement::Namespaced {
                cluster_informer: informer_scope == Scope::Cluster,
            },
            Scope::Cluster => {
                Placement::Cluster(isolation.unwrap_or(ClusterScopedIsolation::Prefixed))
            }
        }
    }
}

/// The provider-side identity of a consumer object's copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderKey {
    /// Namespace of the copy (`None`: cluster-scoped).
    pub namespace: Option<String>,
    /// Name of the copy.
    pub name: String,
}

/// A consumer-side identity.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConsumerKey {
    /// Namespace (`None`: cluster-scoped).
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

/// [`Placement`] bound to one cluster namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placer {
    /// The placement.
    pub placement: Placement,
    /// The provider's cluster namespace of this consumer.
    pub cluster_ns: String,
    /// UID of the cluster Namespace, for owner references of cluster-scoped copies (none when
    /// unknown: the copy then has no owner reference).
    pub cluster_ns_uid: Option<String>,
}

/// Where the provider side is watched.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum WatchScope {
    /// The whole provider cluster.
    Cluster,
    /// One provider namespace.
    Namespace(String),
}

impl Placer {
    /// Whether the provider copies are namespaced objects.
    pub fn provider_namespaced(&self) -> bool {
        matches!(
            self.placement,
            Placement::Namespaced { .. } | Placement::Cluster(ClusterScopedIsolation::Namespaced)
        )
    }

    /// The provider copy of consumer object `key`; `None` while its namespace is not mapped.
    pub fn provider_key(&self, key: &ConsumerKey, map: &NamespaceMap) -> Option<ProviderKey> {
        match (&self.placement, &key.namespace) {
            (Placement::Namespaced { .. }, Some(ns)) => Some(ProviderKey {
                namespace: Some(map.to_provider(ns)?.to_owned()),
                name: key.name.clone(),
            }),
            (Placement::Namespaced { .. }, None) => None,
            (Placement::Cluster(ClusterScopedIsolation::Prefixed), _) => Some(ProviderKey {
                namespace: None,
                name: prefixed_name(&self.cluster_ns, &key.name),
            }),
            (Placement::Cluster(ClusterScopedIsolation::Namespaced), _) => Some(ProviderKey {
                namespace: Some(self.cluster_ns.clone()),
                name: key.name.clone(),
            }),
            (Placement::Cluster(ClusterScopedIsolation::None), _) => Some(ProviderKey {
                namespace: None,
                name: key.name.clone(),
            }),
        }
    }

    /// The consumer object a provider object belongs to, or `None` when it is not this
    /// consumer's (another tenant's, or in an unmapped namespace).
    pub fn consumer_key(&self, provider: &ObjectMeta, map: &NamespaceMap) -> Option<ConsumerKey> {
        let name = provider.name.as_deref()?;
        let annotated = provider
            .annotations
            .as_ref()
            .and_then(|a| a.get(CLUSTER_NAMESPACE_ANNOTATION))
            .is_some_and(|v| *v == self.cluster_ns);
        match &self.placement {
            Placement::Namespaced { .. } => Some(ConsumerKey {
                namespace: Some(map.to_consumer(provider.namespace.as_deref()?)?.to_owned()),
                name: name.to_owned(),
            }),
            Placement::Cluster(ClusterScopedIsolation::Prefixed) => annotated
                .then(|| unprefixed_name(&self.cluster_ns, name))
                .flatten()
                .map(|n| ConsumerKey {
                    namespace: None,
                    name: n.to_owned(),
                }),
            Placement::Cluster(ClusterScopedIsolation::Namespaced) => {
                (provider.namespace.as_deref() == Some(self.cluster_ns.as_str())).then(|| {
                    ConsumerKey {
                        namespace: None,
                        name: name.to_owned(),
                    }
                })
            }
            Placement::Cluster(ClusterScopedIsolation::None) => annotated.then(|| ConsumerKey {
                namespace: None,
                name: name.to_owned(),
            }),
        }
    }

    /// Annotations the provider copy carries besides `bound`.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        match self.placement {
            Placement::Namespaced { .. } => BTreeMap::new(),
            Placement::Cluster(_) => BTreeMap::from([(
                CLUSTER_NAMESPACE_ANNOTATION.to_owned(),
                self.cluster_ns.clone(),
            )]),
        }
    }

    /// Owner references of the provider copy: cluster-scoped copies are owned by the cluster
    /// Namespace (when its UID is known).
    pub fn owner_references(&self) -> Vec<OwnerReference> {
        match (&self.placement, &self.cluster_ns_uid) {
            (
                Placement::Cluster(ClusterScopedIsolation::Prefixed | ClusterScopedIsolation::None),
                Some(uid),
            ) => {
                vec![OwnerReference {
                    api_version: "v1".into(),
                    kind: "Namespace".into(),
                    name: self.cluster_ns.clone(),
                    uid: uid.clone(),
                    ..OwnerReference::default()
                }]
            }
            _ => Vec::new(),
        }
    }

    /// Where to watch the provider side, given the current namespace mapping.
    pub fn watch_scopes(&self, map: &NamespaceMap) -> BTreeSet<WatchScope> {
        match &self.placement {
            Placement::Namespaced {
                cluster_informer: true,
            } => BTreeSet::from([WatchScope::Cluster]),
            Placement::Namespaced {
                cluster_informer: false,
            } => map
                .provider_namespaces()
                .map(|ns| WatchScope::Namespace(ns.to_owned()))
                .collect(),
            Placement::Cluster(ClusterScopedIsolation::Namespaced) => {
                BTreeSet::from([WatchScope::Namespace(self.cluster_ns.clone())])
            }
            Placement::Cluster(_) => BTreeSet::from([WatchScope::Cluster]),
        }
    }

    /// The consumer object for an adopted provider object: a clean copy (spec kept, status
    /// dropped) under the consumer key, without the isolation annotation.
    pub fn adopted(
        &self,
        provider: &kube::api::DynamicObject,
        key: &ConsumerKey,
    ) -> kube::api::DynamicObject {
        let mut copy = super::copy::clean_copy(provider);
        copy.metadata.name = Some(key.name.clone());
        copy.metadata.namespace = key.namespace.clone();
        let mut annotations = copy.metadata.annotations.take().unwrap_or_default();
        annotations.remove(CLUSTER_NAMESPACE_ANNOTATION);
        annotations.insert(
            crate::api::wellknown::BOUND_ANNOTATION.to_owned(),
            "true".to_owned(),
        );
        copy.metadata.annotations = Some(annotations);
        copy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(ns: Option<&str>, name: &str, annotation: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            namespace: ns.map(str::to_owned),
            name: Some(name.into()),
            annotations: annotation.map(|a| {
                BTreeMap::from([(CLUSTER_NAMESPACE_ANNOTATION.to_string(), a.to_string())])
            }),
            ..ObjectMeta::default()
        }
    }

    fn placer(p: Placement) -> Placer {
        Placer {
            placement: p,
            cluster_ns: "cluster-x".into(),
            cluster_ns_uid: Some("uid-x".into()),
        }
    }

    fn map() -> NamespaceMap {
        let mut m = NamespaceMap::default();
        m.insert("team-a", "cluster-x-team-a");
        m
    }

    fn ck(ns: Option<&str>, name: &str) -> ConsumerKey {
        ConsumerKey {
            namespace: ns.map(str::to_owned),
            name: name.into(),
        }
    }

    #[test]
    fn namespaced_resources_follow_the_namespace_map() {
        let p = placer(Placement::Namespaced {
            cluster_informer: false,
        });
        let key = p.provider_key(&ck(Some("team-a"), "db"), &map()).unwrap();
        assert_eq!(
            key,
            ProviderKey {
                namespace: Some("cluster-x-team-a".into()),
                name: "db".into()
            }
        );
        assert_eq!(
            p.provider_key(&ck(Some("team-b"), "db"), &map()),
            None,
            "unmapped: pending"
        );
        assert_eq!(
            p.consumer_key(&meta(Some("cluster-x-team-a"), "db", None), &map()),
            Some(ck(Some("team-a"), "db"))
        );
        assert_eq!(
            p.consumer_key(&meta(Some("cluster-y-team-a"), "db", None), &map()),
            None
        );
        assert_eq!(
            p.watch_scopes(&map()),
            BTreeSet::from([WatchScope::Namespace("cluster-x-team-a".into())])
        );
        let wide = placer(Placement::Namespaced {
            cluster_informer: true,
        });
        assert_eq!(
            wide.watch_scopes(&map()),
            BTreeSet::from([WatchScope::Cluster])
        );
        assert!(p.annotations().is_empty() && p.owner_references().is_empty());
    }

    #[test]
    fn prefixed_isolation_is_klutchs() {
        let p = placer(Placement::Cluster(ClusterScopedIsolation::Prefixed));
        let key = p.provider_key(&ck(None, "foo"), &map()).unwrap();
        assert_eq!(
            key,
            ProviderKey {
                namespace: None,
                name: "cluster-x-foo".into()
            }
        );
        assert_eq!(
            p.consumer_key(&meta(None, "cluster-x-foo", Some("cluster-x")), &map()),
            Some(ck(None, "foo"))
        );
        assert_eq!(
            p.consumer_key(&meta(None, "cluster-x-foo", Some("cluster-y")), &map()),
            None,
            "another tenant's"
        );
        assert_eq!(
            p.consumer_key(&meta(None, "cluster-x-foo", None), &map()),
            None,
            "unannotated"
        );
        assert_eq!(
            p.consumer_key(&meta(None, "foo", Some("cluster-x")), &map()),
            None,
            "no prefix"
        );
        assert_eq!(p.owner_references()[0].name, "cluster-x");
        assert_eq!(p.annotations()[CLUSTER_NAMESPACE_ANNOTATION], "cluster-x");
        assert_eq!(
            p.watch_scopes(&map()),
            BTreeSet::from([WatchScope::Cluster])
        );
    }

    #[test]
    fn namespaced_isolation_puts_copies_into_the_cluster_namespace() {
        let p = placer(Placement::Cluster(ClusterScopedIsolation::Namespaced));
        assert!(p.provider_namespaced());
        let key = p.provider_key(&ck(None, "foo"), &map()).unwrap();
        assert_eq!(
            key,
            ProviderKey {
                namespace: Some("cluster-x".into()),
                name: "foo".into()
            }
        );
        assert_eq!(
            p.consumer_key(&meta(Some("cluster-x"), "foo", None), &map()),
            Some(ck(None, "foo"))
        );
        assert_eq!(
            p.consumer_key(&meta(Some("cluster-y"), "foo", None), &map()),
            None
        );
        assert!(
            p.owner_references().is_empty(),
            "the namespace owns it already"
        );
        assert_eq!(
            p.watch_scopes(&map()),
            BTreeSet::from([WatchScope::Namespace("cluster-x".into())])
        );
    }

    #[test]
    fn no_isolation_keeps_names_but_only_touches_annotated_objects() {
        let p = placer(Placement::Cluster(ClusterScopedIsolation::None));
        assert_eq!(
            p.provider_key(&ck(None, "foo"), &map()).unwrap(),
            ProviderKey {
                namespace: None,
                name: "foo".into()
            }
        );
        assert_eq!(
            p.consumer_key(&meta(None, "foo", Some("cluster-x")), &map()),
            Some(ck(None, "foo"))
        );
        assert_eq!(p.consumer_key(&meta(None, "foo", None), &map()), None);
        assert_eq!(
            p.consumer_key(&meta(None, "foo", Some("cluster-y")), &map()),
            None
        );
    }

    #[test]
    fn adopted_objects_lose_provider_metadata_and_gain_bound() {
        let p = placer(Placement::Cluster(ClusterScopedIsolation::Prefixed));
        let ar =
            kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk("g", "v1", "K"));
        let mut o = kube::api::DynamicObject::new("cluster-x-foo", &ar);
        o.metadata.annotations = Some(BTreeMap::from([(
            CLUSTER_NAMESPACE_ANNOTATION.into(),
            "cluster-x".into(),
        )]));
        o.metadata.uid = Some("u".into());
        o.metadata.finalizers = Some(vec!["f".into()]);
        o.data = serde_json::json!({ "spec": { "a": 1 }, "status": { "b": 2 } });
        let a = p.adopted(&o, &ck(None, "foo"));
        assert_eq!(a.metadata.name.as_deref(), Some("foo"));
        assert!(a.metadata.uid.is_none() && a.metadata.finalizers.is_none());
        let ann = a.metadata.annotations.unwrap();
        assert_eq!(
            ann.get("klutch.anynines.com/bound").map(String::as_str),
            Some("true")
        );
        assert!(!ann.contains_key(CLUSTER_NAMESPACE_ANNOTATION));
        assert_eq!(a.data, serde_json::json!({ "spec": { "a": 1 } }));
    }
}
