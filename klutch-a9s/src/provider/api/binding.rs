//! `ServiceBinding`: credentials for one ServiceInstance, written to a connection Secret.

use std::collections::BTreeMap;

use klutch_sdk::crossplane::api::{Condition, ResourceSpec, conditions_schema};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::OriginatingIdentity;

/// A ServiceBindingSpec defines the desired state of a ServiceBinding.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "dataservices.anynines.com",
    version = "v1",
    kind = "ServiceBinding",
    status = "ServiceBindingStatus",
    category = "crossplane",
    category = "managed",
    category = "anynines",
    printcolumn = r#"{"jsonPath":".status.conditions[?(@.type=='Ready')].status","name":"READY","type":"string"}"#,
    printcolumn = r#"{"jsonPath":".status.conditions[?(@.type=='Synced')].status","name":"SYNCED","type":"string"}"#,
    printcolumn = r#"{"jsonPath":".metadata.annotations.crossplane\\.io/external-name","name":"EXTERNAL-NAME","type":"string"}"#,
    printcolumn = r#"{"jsonPath":".metadata.creationTimestamp","name":"AGE","type":"date"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ServiceBindingSpec {
    /// The desired binding.
    pub for_provider: ServiceBindingParameters,
    /// The common managed-resource fields.
    #[serde(flatten)]
    pub resource: ResourceSpec,
}

/// `bind_resource` of a bind request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BindResource {
    /// The application GUID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_guid: Option<String>,
    /// The route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
}

/// `spec.forProvider` of a ServiceBinding.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceBindingParameters {
    /// Claim name of the ServiceInstance (same claim namespace).
    pub instance_name: String,
    /// Whether bind and unbind may complete asynchronously.
    pub accepts_incomplete: bool,
    /// Bind parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<BTreeMap<String, String>>,
    /// Sent as `bind_resource`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_resource: Option<BindResource>,
    /// Deprecated; sent as top-level `app_guid` when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_guid: Option<String>,
    /// Extra keys of the bind `context`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<BTreeMap<String, String>>,
    /// Sent as `X-Broker-API-Originating-Identity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub originating_identity: Option<OriginatingIdentity>,
    /// Output-only in meaning; ignored (with a Warning Event) when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<BTreeMap<String, String>>,
}

/// A network endpoint of the bound instance.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ConnectionDetails {
    /// `scheme://host` or the host.
    #[serde(rename = "hostURL", default, skip_serializing_if = "Option::is_none")]
    pub host_url: Option<String>,
    /// The port (empty when the source has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    /// What the endpoint is for (`SQL`, `AMQP SSL`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// A ServiceBindingStatus represents the observed state of a ServiceBinding.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceBindingStatus {
    /// What the broker reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_provider: Option<ServiceBindingObservation>,
    /// Conditions of the resource.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The generation the last reconcile acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The OSB operation key of a running bind or unbind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_operation: Option<String>,
    /// `bind` or `unbind` while an operation runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_operation_type: Option<String>,
    /// RFC 3339 start of the running operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_operation_started_at: Option<String>,
}

/// The observable fields of a ServiceBinding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceBindingObservation {
    /// `Pending`, `Created` or `Deleting`.
    #[serde(default = "pending")]
    #[schemars(default = "pending")]
    pub state: String,
    /// The instance id, copied from the ServiceInstance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// The service id, copied from the ServiceInstance.
    #[serde(rename = "serviceID", default, skip_serializing_if = "Option::is_none")]
    pub service_id: Option<String>,
    /// The plan id, copied from the ServiceInstance.
    #[serde(rename = "planID", default, skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<String>,
    /// Deprecated since Klutch 1.4.0; never written.
    #[serde(
        rename = "serviceBindingID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub service_binding_id: Option<i64>,
    /// Network endpoints of the instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_details: Option<Vec<ConnectionDetails>>,
}

impl Default for ServiceBindingObservation {
    fn default() -> Self {
        ServiceBindingObservation {
            state: pending(),
            instance_id: None,
            service_id: None,
            plan_id: None,
            service_binding_id: None,
            connection_details: None,
        }
    }
}

fn pending() -> String {
    "Pending".into()
}
