//! `StoreConfig`: an external secret store for `publishConnectionDetailsTo` (served for
//! compatibility; see docs/provider-anynines.md for what is supported).

use klutch_sdk::crossplane::api::{Condition, SecretKeySelector, conditions_schema};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::provider_config::{EnvSelector, FsSelector};

/// A StoreConfigSpec configures a secret store.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "dataservices.anynines.com",
    version = "v1",
    kind = "StoreConfig",
    status = "StoreConfigStatus",
    category = "crossplane",
    category = "store",
    category = "anynines",
    printcolumn = r#"{"jsonPath":".metadata.creationTimestamp","name":"AGE","type":"date"}"#,
    printcolumn = r#"{"jsonPath":".spec.type","name":"TYPE","type":"string"}"#,
    printcolumn = r#"{"jsonPath":".spec.defaultScope","name":"DEFAULT-SCOPE","type":"string"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct StoreConfigSpec {
    /// `Kubernetes` (default), `Vault` (rejected) or `Plugin`.
    #[serde(default, rename = "type")]
    #[schemars(default = "default_store_type")]
    pub type_: StoreType,
    /// The default scope (namespace for Kubernetes stores).
    pub default_scope: String,
    /// Kubernetes store settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesStore>,
    /// Plugin store settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<PluginStore>,
}

/// The kind of secret store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum StoreType {
    /// Kubernetes Secrets.
    #[default]
    Kubernetes,
    /// HashiCorp Vault (not supported).
    Vault,
    /// An External Secret Store plugin.
    Plugin,
}

fn default_store_type() -> StoreType {
    StoreType::Kubernetes
}

/// Where the credentials of a Kubernetes store come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum KubernetesAuthSource {
    /// The provider's own identity.
    None,
    /// A kubeconfig in a Secret.
    Secret,
    /// A kubeconfig in an environment variable.
    Environment,
    /// A kubeconfig file.
    Filesystem,
}

/// Credentials of a Kubernetes store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesAuth {
    /// The source.
    pub source: KubernetesAuthSource,
    /// A Secret key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeySelector>,
    /// An environment variable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<EnvSelector>,
    /// A file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs: Option<FsSelector>,
}

/// A Kubernetes secret store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct KubernetesStore {
    /// How to authenticate.
    pub auth: KubernetesAuth,
}

/// A reference to the plugin's configuration object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginConfigRef {
    /// API version.
    pub api_version: String,
    /// Kind.
    pub kind: String,
    /// Name.
    pub name: String,
}

/// A plugin secret store.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginStore {
    /// The plugin's gRPC endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The plugin's configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_ref: Option<PluginConfigRef>,
}

/// The observed state of a StoreConfig.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StoreConfigStatus {
    /// Conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}
