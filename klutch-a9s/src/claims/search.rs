//! `SearchInstance`: an a9s Search (OpenSearch) instance (composition `a9s-search`).

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::rules;
use super::xrd::ClaimDefinition;
use super::{ClaimStatus, CompositionRef, string_enum};

string_enum! {
    /// The a9s Search versions (`spec.service`).
    SearchService {
        A9sSearch2 = "a9s-search2",
    }
}

string_enum! {
    /// The a9s Search plans (`spec.plan`), all with TLS.
    SearchPlan {
        ClusterSmallSsl = "search-cluster-small-ssl",
        ClusterMediumSsl = "search-cluster-medium-ssl",
        ClusterBigSsl = "search-cluster-big-ssl",
        SingleNanoSsl = "search-single-nano-ssl",
        SingleSmallSsl = "search-single-small-ssl",
        SingleMediumSsl = "search-single-medium-ssl",
        SingleBigSsl = "search-single-big-ssl",
    }
}

string_enum! {
    /// The JVM garbage collector of OpenSearch (`java_garbage_collector`).
    JavaGarbageCollector {
        UseSerialGc = "UseSerialGC",
        UseParallelGc = "UseParallelGC",
        UseParallelOldGc = "UseParallelOldGC",
        UseG1Gc = "UseG1GC",
    }
}

string_enum! {
    /// A TLS version in Java notation.
    TlsProtocol {
        TlsV1_2 = "TLSv1.2",
        TlsV1_3 = "TLSv1.3",
    }
}

/// The spec of a [`SearchInstance`].
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "anynines.com",
    version = "v1",
    kind = "SearchInstance",
    plural = "searchinstances",
    namespaced,
    status = "ClaimStatus",
    doc = "An a9s Search (OpenSearch) instance.",
    printcolumn = r#"{"name":"ManagedResource","type":"string","jsonPath":".status.managed.state"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct SearchInstanceSpec {
    /// The OpenSearch version. Cannot be changed.
    #[x_kube(validation = rules::service_immutable())]
    pub service: SearchService,
    /// The plan. Only upgrades to bigger sizes and from single to cluster.
    #[x_kube(
        validation = rules::no_downsizing(&["nano", "small", "medium", "big"]),
        validation = rules::no_clustered_to_single("cluster", "Migration from clustered to single Data Service Instance is not supported."),
    )]
    pub plan: SearchPlan,
    /// Whether the broker may provision asynchronously (the composition defaults to `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepts_incomplete: Option<bool>,
    /// a9s Search custom parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<SearchParameters>,
    /// The composition; only `a9s-search` exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub composition_ref: Option<CompositionRef>,
}

impl SearchInstanceSpec {
    /// A spec with the given service and plan and nothing else set.
    pub fn new(service: SearchService, plan: SearchPlan) -> Self {
        SearchInstanceSpec {
            service,
            plan,
            accepts_incomplete: None,
            parameters: None,
            composition_ref: None,
        }
    }
}

/// a9s Search custom parameters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchParameters {
    /// JVM heap in MB, ≥ 256, at most half the VM's memory (`java_heapspace`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = rules::at_least(256))]
    pub java_heapspace: Option<i64>,
    /// JVM metaspace in MB, 256–1024 (`java_maxmetaspace`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = rules::at_least(256), validation = rules::at_most(1024))]
    pub java_maxmetaspace: Option<i64>,
    /// The JVM garbage collector (`java_garbage_collector`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub java_garbage_collector: Option<JavaGarbageCollector>,
    /// Allowed TLS versions (`tls-protocols`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_protocols: Option<Vec<TlsProtocol>>,
    /// Allowed TLS ciphers in Java notation (`tls-ciphers`); not validated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ciphers: Option<Vec<String>>,
}

impl ClaimDefinition for SearchInstance {
    const COMPOSITE_KIND: &'static str = "XSearchInstance";
    const COMPOSITE_PLURAL: &'static str = "xsearchinstances";
    const DEFAULT_COMPOSITION: &'static str = "a9s-search";
    const FOREGROUND_DELETE: bool = true;
}
