//! Where an object lives on the other side: namespace mapping through APIServiceNamespaces,
//! service-namespace names, and the `Prefixed` isolation of cluster-scoped objects.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::api::APIServiceNamespace;

/// The provider namespace the backend assigns to consumer namespace `consumer_ns` in cluster
/// namespace `cluster_ns`: `<clusterNs>-<consumerNs>`, or, when that exceeds the 63 characters a
/// namespace name may have, `<clusterNs>-<first 40 chars of consumerNs>-<8 hex of
/// SHA-256(consumerNs)>` (Klutch never creates such namespaces; a defect not copied).
///
/// ```
/// use klutch_sdk::sync::naming::service_namespace;
/// assert_eq!(service_namespace("cluster-x7k2p", "team-a"), "cluster-x7k2p-team-a");
/// assert!(service_namespace("cluster-x7k2p", &"n".repeat(60)).len() <= 63);
/// ```
pub fn service_namespace(cluster_ns: &str, consumer_ns: &str) -> String {
    let plain = format!("{cluster_ns}-{consumer_ns}");
    if plain.len() <= 63 {
        return plain;
    }
    let digest = Sha256::digest(consumer_ns.as_bytes());
    let hash: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let head: String = consumer_ns.chars().take(40).collect();
    format!("{cluster_ns}-{}-{hash}", head.trim_end_matches('-'))
}

/// The consumer ↔ provider namespace mapping of one cluster namespace, built from its
/// APIServiceNamespaces (name = consumer namespace, `status.namespace` = provider namespace).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NamespaceMap {
    up: BTreeMap<String, String>,
    down: BTreeMap<String, String>,
}

impl NamespaceMap {
    /// Builds the map; namespaces whose status is not set yet are not mapped.
    pub fn from_api_service_namespaces<'a>(
        namespaces: impl IntoIterator<Item = &'a APIServiceNamespace>,
    ) -> Self {
        let mut map = NamespaceMap::default();
        for ns in namespaces {
            let (Some(consumer), Some(provider)) = (
                ns.metadata.name.as_ref(),
                ns.status.as_ref().and_then(|s| s.namespace.as_ref()),
            ) else {
                continue;
            };
            map.insert(consumer, provider);
        }
        map
    }

    /// Adds one mapping.
    pub fn insert(&mut self, consumer_ns: &str, provider_ns: &str) {
        self.up
            .insert(consumer_ns.to_owned(), provider_ns.to_owned());
        self.down
            .insert(provider_ns.to_owned(), consumer_ns.to_owned());
    }

    /// The provider namespace of a consumer namespace; `None` until the backend assigned one (the
    /// caller then ensures the APIServiceNamespace exists and retries).
    pub fn to_provider(&self, consumer_ns: &str) -> Option<&str> {
        self.up.get(consumer_ns).map(String::as_str)
    }

    /// Every mapped provider namespace.
    pub fn provider_namespaces(&self) -> impl Iterator<Item = &str> {
        self.down.keys().map(String::as_str)
    }

    /// The consumer namespace of a provider namespace; `None` for namespaces that are not ours
    /// (objects there are ignored).
    pub fn to_consumer(&self, provider_ns: &str) -> Option<&str> {
        self.down.get(provider_ns).map(String::as_str)
    }
}

/// `Prefixed` isolation of cluster-scoped objects: the provider copy of `name` is
/// `<clusterNs>-<name>`.
pub fn prefixed_name(cluster_ns: &str, name: &str) -> String {
    format!("{cluster_ns}-{name}")
}

/// The consumer name of a `Prefixed` provider object, or `None` if it does not carry this
/// cluster namespace's prefix (then it belongs to another consumer and must not be touched).
pub fn unprefixed_name<'a>(cluster_ns: &str, provider_name: &'a str) -> Option<&'a str> {
    provider_name
        .strip_prefix(cluster_ns)
        .and_then(|rest| rest.strip_prefix('-'))
        .filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{APIServiceNamespaceSpec, APIServiceNamespaceStatus};

    #[test]
    fn service_namespaces_fit_in_63_characters_and_stay_distinct() {
        let long_a = format!("{}a", "n".repeat(60));
        let long_b = format!("{}b", "n".repeat(60));
        let a = service_namespace("cluster-x7k2p", &long_a);
        let b = service_namespace("cluster-x7k2p", &long_b);
        assert!(a.len() <= 63 && b.len() <= 63, "{a} {b}");
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("cluster-x7k2p-{}", "n".repeat(40))));
        assert_eq!(service_namespace("c", "d"), "c-d");
        // Exactly 63 stays plain.
        let exact = "x".repeat(63 - "cluster-x7k2p-".len());
        assert_eq!(service_namespace("cluster-x7k2p", &exact).len(), 63);
        assert_eq!(
            service_namespace("cluster-x7k2p", &exact),
            format!("cluster-x7k2p-{exact}")
        );
    }

    #[test]
    fn namespace_map_uses_only_assigned_namespaces() {
        let mut assigned = APIServiceNamespace::new("team-a", APIServiceNamespaceSpec {});
        assigned.status = Some(APIServiceNamespaceStatus {
            namespace: Some("cluster-x-team-a".into()),
        });
        let pending = APIServiceNamespace::new("team-b", APIServiceNamespaceSpec {});
        let map = NamespaceMap::from_api_service_namespaces([&assigned, &pending]);
        assert_eq!(map.to_provider("team-a"), Some("cluster-x-team-a"));
        assert_eq!(map.to_provider("team-b"), None);
        assert_eq!(map.to_consumer("cluster-x-team-a"), Some("team-a"));
        assert_eq!(map.to_consumer("cluster-y-team-a"), None);
    }

    #[test]
    fn prefix_translation_round_trips_and_refuses_foreign_objects() {
        let p = prefixed_name("cluster-x", "foo");
        assert_eq!(p, "cluster-x-foo");
        assert_eq!(unprefixed_name("cluster-x", &p), Some("foo"));
        assert_eq!(unprefixed_name("cluster-y", &p), None);
        assert_eq!(unprefixed_name("cluster-x", "cluster-x"), None);
        assert_eq!(unprefixed_name("cluster-x", "cluster-x-"), None);
        assert_eq!(unprefixed_name("cluster-x", "cluster-xy-foo"), None);
    }
}
