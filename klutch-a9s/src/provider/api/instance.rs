//! `ServiceInstance`: one a9s data service instance, provisioned through the service broker.

use std::collections::BTreeMap;

use klutch_sdk::crossplane::api::{Condition, ResourceSpec, conditions_schema};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::common::{OriginatingIdentity, any_map_schema};

/// A ServiceInstanceSpec defines the desired state of a ServiceInstance.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "dataservices.anynines.com",
    version = "v1",
    kind = "ServiceInstance",
    status = "ServiceInstanceStatus",
    category = "crossplane",
    category = "managed",
    category = "anynines",
    printcolumn = r#"{"jsonPath":".status.conditions[?(@.type=='Ready')].status","name":"READY","type":"string"}"#,
    printcolumn = r#"{"jsonPath":".status.conditions[?(@.type=='Synced')].status","name":"SYNCED","type":"string"}"#,
    printcolumn = r#"{"jsonPath":".metadata.annotations.crossplane\\.io/external-name","name":"EXTERNAL-NAME","type":"string"}"#,
    printcolumn = r#"{"jsonPath":".metadata.creationTimestamp","name":"AGE","type":"date"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ServiceInstanceSpec {
    /// The desired state of the broker instance.
    pub for_provider: ServiceInstanceParameters,
    /// The common managed-resource fields.
    #[serde(flatten)]
    pub resource: ResourceSpec,
}

/// `spec.forProvider` of a ServiceInstance.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceInstanceParameters {
    /// Catalog service name (exact, or followed by a `-<deployment>` suffix), e.g.
    /// `a9s-postgresql13`.
    pub service_name: String,
    /// Exact plan name within the service, e.g. `postgresql-single-nano`.
    pub plan_name: String,
    /// Whether the broker may complete operations asynchronously (default true).
    #[serde(default = "yes")]
    #[schemars(default = "yes")]
    pub accepts_incomplete: bool,
    /// The organization GUID sent to the broker (CF style).
    pub organization_guid: String,
    /// The space GUID sent to the broker (CF style).
    pub space_guid: String,
    /// Provision parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_map_schema")]
    pub parameters: Option<BTreeMap<String, Value>>,
    /// Extra keys of the OSB `context` (`organization_guid` and `space_guid` cannot be
    /// overridden).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<BTreeMap<String, String>>,
    /// Sent as `X-Broker-API-Originating-Identity`; `value` must be a JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub originating_identity: Option<OriginatingIdentity>,
}

fn yes() -> bool {
    true
}

/// A ServiceInstanceStatus represents the observed state of a ServiceInstance.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceInstanceStatus {
    /// What the broker reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_provider: Option<ServiceInstanceObservation>,
    /// Conditions of the resource.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The generation the last reconcile acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The OSB operation key of a running asynchronous operation (empty when the broker sent
    /// none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_operation: Option<String>,
    /// `provision`, `update` or `deprovision` while an operation runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_operation_type: Option<String>,
    /// RFC 3339 start of the running operation (the polling deadline's base).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_operation_started_at: Option<String>,
    /// The plan id to poll the running operation with (the old plan during a plan change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_operation_plan_id: Option<String>,
    /// The generation whose update failed with `update_repeatable: false` (not retried until
    /// the spec changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_update_generation: Option<i64>,
}

/// ServiceInstanceObservation are the observable fields of a ServiceInstance.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceInstanceObservation {
    /// The instance id (also the external name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// The observed catalog service id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_id: Option<String>,
    /// The observed catalog plan id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<String>,
    /// The broker's instance state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// When the instance record was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// When the instance was provisioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioned_at: Option<String>,
    /// When the instance record was last updated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// When the instance was deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
    /// The parameters the broker reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_map_schema")]
    pub parameters: Option<BTreeMap<String, Value>>,
}
