//! APIServiceExportRequest: a consumer's request to bind resources. The backend turns a
//! `Pending` request into APIServiceExports and sets it `Succeeded` or `Failed`.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::claims::{GROUP_PATTERN, PermissionClaim, RESOURCE_PATTERN, is_empty};
use super::conditions::Condition;

/// One requested resource.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportRequestResource {
    /// The API group; empty for the core group.
    #[serde(default, skip_serializing_if = "is_empty")]
    #[schemars(regex(pattern = GROUP_PATTERN), extend("default" = ""))]
    pub group: String,
    /// The resource (plural).
    #[schemars(regex(pattern = RESOURCE_PATTERN))]
    pub resource: String,
    /// Versions (optional; unused by the backend).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
    /// The permission claims the consumer saw.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permission_claims: Vec<PermissionClaim>,
}

/// The spec of an [`APIServiceExportRequest`]; immutable.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "klutch.anynines.com",
    version = "v1alpha1",
    kind = "APIServiceExportRequest",
    plural = "apiserviceexportrequests",
    singular = "apiserviceexportrequest",
    category = "kube-bindings",
    namespaced,
    status = "APIServiceExportRequestStatus",
    doc = "A consumer's request to bind resources of the provider.",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct APIServiceExportRequestSpec {
    /// Free-form parameters (unused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "parameters_schema")]
    pub parameters: Option<serde_json::Value>,
    /// The requested resources (at least one).
    #[schemars(length(min = 1))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("resources are immutable"))]
    pub resources: Vec<ExportRequestResource>,
}

fn parameters_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
        "x-kubernetes-validations": [{ "rule": "self == oldSelf", "message": "parameters are immutable" }],
    })
}

/// The phase of an [`APIServiceExportRequest`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ExportRequestPhase {
    /// Not processed yet.
    #[default]
    Pending,
    /// Processing failed; see `terminalMessage`.
    Failed,
    /// The exports exist.
    Succeeded,
}

fn pending() -> ExportRequestPhase {
    ExportRequestPhase::Pending
}

/// The status of an [`APIServiceExportRequest`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct APIServiceExportRequestStatus {
    /// `Pending` (default), `Failed` or `Succeeded`.
    #[serde(default = "pending")]
    #[schemars(default = "pending")]
    pub phase: ExportRequestPhase,
    /// Why the request failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal_message: Option<String>,
    /// `ExportsReady`, `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
