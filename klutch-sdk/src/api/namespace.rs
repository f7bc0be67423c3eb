//! APIServiceNamespace: maps a consumer namespace to the provider namespace the backend assigns.
//! Its name is the consumer namespace's name.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The spec of an [`APIServiceNamespace`] (empty).
#[derive(
    CustomResource, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema,
)]
#[kube(
    group = "klutch.anynines.com",
    version = "v1alpha1",
    kind = "APIServiceNamespace",
    plural = "apiservicenamespaces",
    singular = "apiservicenamespace",
    category = "kube-bindings",
    namespaced,
    status = "APIServiceNamespaceStatus",
    doc = "Maps a consumer namespace (the object's name) to a provider namespace.",
    printcolumn = r#"{"name":"Namespace","type":"string","jsonPath":".status.namespace"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
pub struct APIServiceNamespaceSpec {}

/// The status of an [`APIServiceNamespace`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct APIServiceNamespaceStatus {
    /// The provider namespace assigned by the backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}
