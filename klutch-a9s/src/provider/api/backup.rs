//! `Backup`: one backup of a ServiceInstance through the a9s Backup Manager.

use klutch_sdk::crossplane::api::{Condition, ResourceSpec, SecretKeySelector, conditions_schema};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A BackupSpec defines the desired state of a Backup.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "dataservices.anynines.com",
    version = "v1",
    kind = "Backup",
    status = "BackupStatus",
    category = "crossplane",
    category = "managed",
    category = "anynines",
    printcolumn = r#"{"jsonPath":".status.conditions[?(@.type=='Ready')].status","name":"READY","type":"string"}"#,
    printcolumn = r#"{"jsonPath":".status.conditions[?(@.type=='Synced')].status","name":"SYNCED","type":"string"}"#,
    printcolumn = r#"{"jsonPath":".metadata.annotations.crossplane\\.io/external-name","name":"EXTERNAL-NAME","type":"string"}"#,
    printcolumn = r#"{"jsonPath":".metadata.creationTimestamp","name":"AGE","type":"date"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct BackupSpec {
    /// The desired backup.
    pub for_provider: BackupParameters,
    /// The common managed-resource fields.
    #[serde(flatten)]
    pub resource: ResourceSpec,
}

/// `spec.forProvider` of a Backup.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BackupParameters {
    /// Claim name of the ServiceInstance (same claim namespace).
    #[serde(rename = "instanceName")]
    pub instance_name: String,
    /// The instance's backup encryption key (prefer `encryptionKeySecretRef`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_key: Option<String>,
    /// A Secret key holding the encryption key; wins over `encryption_key`.
    #[serde(
        rename = "encryptionKeySecretRef",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub encryption_key_secret_ref: Option<SecretKeySelector>,
    /// Exclude the instance from automatic backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_from_auto_backup: Option<bool>,
    /// Tell the Backup Manager the instance credentials were changed by the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_updated_by_user: Option<bool>,
}

/// A BackupStatus represents the observed state of a Backup.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupStatus {
    /// What the Backup Manager reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_provider: Option<BackupObservation>,
    /// Conditions of the resource.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The generation the last reconcile acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The generation whose backup configuration was applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_config_generation: Option<i64>,
}

/// The observable fields of a Backup.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BackupObservation {
    /// The instance id, copied from the ServiceInstance.
    #[serde(
        rename = "instanceId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub instance_id: Option<String>,
    /// The backup id (also the external name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// Size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    /// `queued`, `running`, `done`, `failed` or `deleted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// When the backup was triggered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggered_at: Option<String>,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Whether the backup can be downloaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downloadable: Option<bool>,
}
