//! APIServiceBinding: binds an API exported by a provider into the consumer cluster. Lives in the
//! consumer cluster (namespace `klutch-bind`); its name is the export's `<plural>.<group>`.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::claims::{AcceptablePermissionClaim, ClusterSecretKeyRef};
use super::conditions::Condition;

/// The spec of an [`APIServiceBinding`].
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "klutch.anynines.com",
    version = "v1alpha1",
    kind = "APIServiceBinding",
    plural = "apiservicebindings",
    singular = "apiservicebinding",
    shortname = "sb",
    category = "kube-bindings",
    namespaced,
    status = "APIServiceBindingStatus",
    doc = "Binds an API service exported by a provider into this (consumer) cluster.",
    printcolumn = r#"{"name":"Provider","type":"string","jsonPath":".status.providerPrettyName"}"#,
    // The path is malformed upstream and nothing sets it; kept verbatim for CRD equality.
    printcolumn = r#"{"name":"Resources","type":"string","priority":1,"jsonPath":".metadata.annotations.bind\\.klutch.\\anynines\\.com/resources"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Message","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct APIServiceBindingSpec {
    /// The Secret holding the kubeconfig of the provider's cluster namespace.
    #[x_kube(validation = Rule::new("self == oldSelf").message("kubeconfigSecretRef is immutable"))]
    pub kubeconfig_secret_ref: ClusterSecretKeyRef,
    /// The consumer's decisions on the provider's permission claims.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permission_claims: Vec<AcceptablePermissionClaim>,
}

/// The status of an [`APIServiceBinding`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct APIServiceBindingStatus {
    /// The provider's display name, from its ClusterBinding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_pretty_name: Option<String>,
    /// `SecretValid`, `InformersSynced`, `Heartbeating`, `Connected`, `SchemaInSync`, `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
