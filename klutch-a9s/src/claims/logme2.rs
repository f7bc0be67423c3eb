//! `Logme2Instance`: an a9s LogMe2 (OpenSearch + Fluentd) instance (composition `a9s-logme2`).

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::rules;
use super::search::{JavaGarbageCollector, TlsProtocol};
use super::xrd::ClaimDefinition;
use super::{ClaimStatus, CompositionRef, string_enum};

string_enum! {
    /// The a9s LogMe2 versions (`spec.service`).
    Logme2Service {
        A9sLogme2 = "a9s-logme2",
    }
}

string_enum! {
    /// The a9s LogMe2 plans (`spec.plan`). Single and cluster cannot be switched.
    Logme2Plan {
        ClusterSmallSsl = "logme-cluster-small-ssl",
        SingleSmallSsl = "logme-single-small-ssl",
    }
}

string_enum! {
    /// A Fluentd TLS version. The values are Klutch v1.5's, including its mix of spellings.
    FluentdTlsVersion {
        TlsV1_1 = "TLSv1_1",
        Tls1_2 = "TLS1_2",
        Tls1_3 = "TLS1_3",
    }
}

/// The spec of a [`Logme2Instance`].
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "anynines.com",
    version = "v1",
    kind = "Logme2Instance",
    plural = "logme2instances",
    namespaced,
    status = "ClaimStatus",
    doc = "An a9s LogMe2 instance.",
    printcolumn = r#"{"name":"ManagedResource","type":"string","jsonPath":".status.managed.state"}"#
)]
#[x_kube(validation = kube::core::Rule::new("!has(self.parameters) || has(self.parameters.fluentdTlsMinVersion) == has(self.parameters.fluentdTlsMaxVersion)").message("parameters.fluentdTlsMinVersion and parameters.fluentdTlsMaxVersion must both be set"))]
#[serde(rename_all = "camelCase")]
pub struct Logme2InstanceSpec {
    /// The LogMe2 version. Cannot be changed.
    #[x_kube(validation = rules::service_immutable())]
    pub service: Logme2Service,
    /// The plan. Single and cluster cannot be switched.
    #[x_kube(
        validation = rules::no_clustered_to_single("cluster", "Migration from clustered to single Data Service Instance is not supported."),
        validation = rules::no_single_to_clustered("cluster"),
    )]
    pub plan: Logme2Plan,
    /// Whether the broker may provision asynchronously (the composition defaults to `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepts_incomplete: Option<bool>,
    /// a9s LogMe2 custom parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Logme2Parameters>,
    /// The composition; only `a9s-logme2` exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub composition_ref: Option<CompositionRef>,
}

impl Logme2InstanceSpec {
    /// A spec with the given service and plan and nothing else set.
    pub fn new(service: Logme2Service, plan: Logme2Plan) -> Self {
        Logme2InstanceSpec {
            service,
            plan,
            accepts_incomplete: None,
            parameters: None,
            composition_ref: None,
        }
    }
}

/// An additional grok pattern for syslog messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Grok {
    /// The pattern.
    pub pattern: String,
}

/// a9s LogMe2 custom parameters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Logme2Parameters {
    /// OpenSearch JVM heap in MB, ≥ 256 (`java_heapspace`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = rules::at_least(256))]
    pub java_heapspace: Option<i64>,
    /// OpenSearch JVM metaspace in MB, 256–1024 (`java_maxmetaspace`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = rules::at_least(256), validation = rules::at_most(1024))]
    pub java_maxmetaspace: Option<i64>,
    /// The JVM garbage collector (`java_garbage_collector`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub java_garbage_collector: Option<JavaGarbageCollector>,
    /// Minutes between Index State Management runs, > 0 (`ism_job_interval`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = rules::greater_than(0))]
    pub ism_job_interval: Option<i64>,
    /// Age after which an index is deleted, e.g. `30d` (`ism_deletion_after`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ism_deletion_after: Option<String>,
    /// Jitter of the ISM job interval, ≥ 0 (`ism_jitter`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = rules::at_least(0))]
    pub ism_jitter: Option<f64>,
    /// Allowed OpenSearch TLS versions (`opensearch-tls-protocols`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opensearch_tls_protocols: Option<Vec<TlsProtocol>>,
    /// Allowed OpenSearch TLS ciphers (`opensearch-tls-ciphers`); not validated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opensearch_tls_ciphers: Option<Vec<String>>,
    /// Fluentd's UDP port, 1–65535 (`fluentd-udp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = rules::greater_than(0), validation = rules::at_most(65535))]
    pub fluentd_udp: Option<i64>,
    /// Fluentd's plain TCP port, 1–65535 (`fluentd-tcp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = rules::greater_than(0), validation = rules::at_most(65535))]
    pub fluentd_tcp: Option<i64>,
    /// Fluentd's TLS port, 1–65535 (`fluentd-tls`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = rules::greater_than(0), validation = rules::at_most(65535))]
    pub fluentd_tls: Option<i64>,
    /// Fluentd's TLS ciphers (`fluentd-tls-ciphers`); only type-checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fluentd_tls_ciphers: Option<String>,
    /// Fluentd's one TLS version (`fluentd-tls-version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fluentd_tls_version: Option<FluentdTlsVersion>,
    /// Fluentd's minimum TLS version; needs `fluentdTlsMaxVersion` (`fluentd-tls-min-version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fluentd_tls_min_version: Option<FluentdTlsVersion>,
    /// Fluentd's maximum TLS version; needs `fluentdTlsMinVersion` (`fluentd-tls-max-version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fluentd_tls_max_version: Option<FluentdTlsVersion>,
    /// Additional grok patterns; an empty list removes all (`groks`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groks: Option<Vec<Grok>>,
}

impl ClaimDefinition for Logme2Instance {
    const COMPOSITE_KIND: &'static str = "XLogme2Instance";
    const COMPOSITE_PLURAL: &'static str = "xlogme2instances";
    const DEFAULT_COMPOSITION: &'static str = "a9s-logme2";
    const FOREGROUND_DELETE: bool = true;
}
