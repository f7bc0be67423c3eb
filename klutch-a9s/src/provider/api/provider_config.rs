//! `ProviderConfig`: one endpoint (a service broker or a Backup Manager) and its credentials.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use klutch_sdk::crossplane::api::{Condition, SecretKeySelector, conditions_schema};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A ProviderConfigSpec configures one endpoint.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "dataservices.anynines.com",
    version = "v1",
    kind = "ProviderConfig",
    status = "ProviderConfigStatus",
    category = "crossplane",
    category = "provider",
    category = "anynines",
    printcolumn = r#"{"jsonPath":".metadata.creationTimestamp","name":"AGE","type":"date"}"#,
    printcolumn = r#"{"jsonPath":".spec.url","name":"URL","type":"string"}"#,
    printcolumn = r#"{"jsonPath":".spec.serviceType","name":"TYPE","type":"string"}"#,
    printcolumn = r#"{"jsonPath":".status.health.lastStatus","name":"HEALTHY","type":"boolean"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ProviderConfigSpec {
    /// Base URL of the endpoint (http or https).
    pub url: String,
    /// Which client to use: `servicebroker` or `backupmanager`.
    pub service_type: ServiceType,
    /// Path of the health check (default `/instances`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_endpoint: Option<String>,
    /// Credentials for basic auth.
    pub provider_credentials: ProviderCredentials,
    /// TLS settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
}

/// The kind of endpoint a ProviderConfig describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ServiceType {
    /// An a9s service broker (ServiceInstance, ServiceBinding).
    Servicebroker,
    /// An a9s Backup Manager (Backup, Restore).
    Backupmanager,
}

impl ServiceType {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::Servicebroker => "servicebroker",
            ServiceType::Backupmanager => "backupmanager",
        }
    }
}

/// Where credentials come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum CredentialsSource {
    /// No credentials.
    None,
    /// From Secrets.
    Secret,
    /// Not meaningful for basic auth; rejected.
    InjectedIdentity,
    /// From environment variables of the provider process.
    Environment,
    /// From files of the provider's filesystem.
    Filesystem,
}

/// An environment variable selector.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EnvSelector {
    /// The variable name.
    pub name: String,
}

/// A filesystem selector.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FsSelector {
    /// The file path.
    pub path: String,
}

/// Where one credential value comes from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialSelectors {
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

/// The endpoint's basic-auth credentials.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProviderCredentials {
    /// Source of both values.
    pub source: CredentialsSource,
    /// The username.
    pub username: CredentialSelectors,
    /// The password.
    pub password: CredentialSelectors,
}

/// TLS settings of an endpoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsConfig {
    /// Skip certificate verification (development only; exclusive with a CA bundle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_skip_verify: Option<bool>,
    /// A PEM CA bundle replacing the system roots (empty key = `ca.crt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle_secret_ref: Option<SecretKeySelector>,
    /// The name to verify the server certificate against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_server_name: Option<String>,
}

/// The last health check.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// When it ran (null forces a check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check_time: Option<Time>,
    /// Whether it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status: Option<bool>,
    /// `Available` or the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_message: Option<String>,
}

/// The observed state of a ProviderConfig.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProviderConfigStatus {
    /// Conditions of the config.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// How many managed resources use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<i64>,
    /// The last health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}
