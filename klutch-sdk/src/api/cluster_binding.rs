//! ClusterBinding: the singleton (`cluster`) in each cluster namespace that represents one
//! consumer cluster: its kubeconfig, heartbeat and konnector version.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::claims::LocalSecretKeyRef;
use super::conditions::Condition;

/// The spec of a [`ClusterBinding`].
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "klutch.anynines.com",
    version = "v1alpha1",
    kind = "ClusterBinding",
    plural = "clusterbindings",
    singular = "clusterbinding",
    category = "kube-bindings",
    namespaced,
    status = "ClusterBindingStatus",
    doc = "Represents one consumer cluster in its cluster namespace on the provider.",
    validation = Rule::new(r#"self.metadata.name == "cluster""#).message("cluster binding name should be cluster"),
    printcolumn = r#"{"name":"Konnector Version","type":"string","jsonPath":".status.konnectorVersion"}"#,
    printcolumn = r#"{"name":"Last Heartbeat","type":"string","jsonPath":".status.lastHeartbeatTime"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterBindingSpec {
    /// The Secret (same namespace) with the kubeconfig the konnector uses.
    #[x_kube(validation = Rule::new("self == oldSelf").message("kubeconfigSecretRef is immutable"))]
    pub kubeconfig_secret_ref: LocalSecretKeyRef,
    /// The provider's display name.
    #[schemars(length(min = 1))]
    pub provider_pretty_name: String,
    /// Free-form provider settings (unused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve")]
    pub service_provider_spec: Option<serde_json::Value>,
}

fn preserve(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true })
}

/// The status of a [`ClusterBinding`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterBindingStatus {
    /// When the konnector last reported in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat_time: Option<Time>,
    /// How often the konnector reports, as a Go duration (`"5m0s"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_interval: Option<String>,
    /// The konnector's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub konnector_version: Option<String>,
    /// `SecretValid`, `ValidVersion`, `Healthy`, `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
