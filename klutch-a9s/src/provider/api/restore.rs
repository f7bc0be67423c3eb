//! `Restore`: restores a Backup into its ServiceInstance.

use klutch_sdk::crossplane::api::{Condition, ResourceSpec, conditions_schema};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A RestoreSpec defines the desired state of a Restore.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "dataservices.anynines.com",
    version = "v1",
    kind = "Restore",
    status = "RestoreStatus",
    category = "crossplane",
    category = "managed",
    category = "anynines",
    printcolumn = r#"{"jsonPath":".status.conditions[?(@.type=='Ready')].status","name":"READY","type":"string"}"#,
    printcolumn = r#"{"jsonPath":".status.conditions[?(@.type=='Synced')].status","name":"SYNCED","type":"string"}"#,
    printcolumn = r#"{"jsonPath":".metadata.annotations.crossplane\\.io/external-name","name":"EXTERNAL-NAME","type":"string"}"#,
    printcolumn = r#"{"jsonPath":".metadata.creationTimestamp","name":"AGE","type":"date"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct RestoreSpec {
    /// The desired restore.
    pub for_provider: RestoreParameters,
    /// The common managed-resource fields.
    #[serde(flatten)]
    pub resource: ResourceSpec,
}

/// `spec.forProvider` of a Restore.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreParameters {
    /// Claim name of the Backup (same claim namespace).
    pub backup_name: String,
}

/// The state of a restore job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RestoreState {
    /// Waiting to run.
    Queued,
    /// Running.
    Running,
    /// Finished successfully.
    Done,
    /// Failed.
    Failed,
    /// Deleted.
    Deleted,
}

/// A RestoreStatus represents the observed state of a Restore.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreStatus {
    /// What the Backup Manager reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_provider: Option<RestoreObservation>,
    /// Conditions of the resource.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The generation the last reconcile acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The observable fields of a Restore.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreObservation {
    /// The instance id, copied from the Backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// The backup id, copied from the Backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<i64>,
    /// The restore id (also the external name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_id: Option<i64>,
    /// The restore state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<RestoreState>,
    /// When the restore was triggered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggered_at: Option<String>,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
}
