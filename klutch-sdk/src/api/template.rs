//! APIServiceExportTemplate (`example-backend.klutch.anynines.com`): declares which provider CRDs
//! are bindable, and with which permission claims.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::claims::{GROUP_PATTERN, PermissionClaim, RESOURCE_PATTERN};
use super::conditions::Condition;

/// Selects the CRD a template exports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct APIServiceSelector {
    /// The CRD's group.
    #[serde(default)]
    #[schemars(regex(pattern = GROUP_PATTERN), extend("default" = ""))]
    pub group: String,
    /// The CRD's plural resource name.
    #[schemars(regex(pattern = RESOURCE_PATTERN))]
    pub resource: String,
    /// A version the CRD must serve; any when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub version: Option<String>,
}

/// The spec of an [`APIServiceExportTemplate`].
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "example-backend.klutch.anynines.com",
    version = "v1alpha1",
    kind = "APIServiceExportTemplate",
    plural = "apiserviceexporttemplates",
    singular = "apiserviceexporttemplate",
    category = "kube-bindings",
    namespaced,
    status = "APIServiceExportTemplateStatus",
    doc = "Declares a bindable provider CRD and the permission claims that come with it.",
    printcolumn = r#"{"name":"Established","type":"string","priority":5,"jsonPath":".status.conditions[?(@.type==\"Established\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
pub struct APIServiceExportTemplateSpec {
    /// The exported CRD (the JSON key is capitalised, as in Klutch).
    #[serde(rename = "APIServiceSelector")]
    pub api_service_selector: APIServiceSelector,
    /// The permission claims bound together with the CRD.
    #[serde(
        default,
        rename = "permissionClaims",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub permission_claims: Vec<PermissionClaim>,
}

/// The status of an [`APIServiceExportTemplate`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct APIServiceExportTemplateStatus {
    /// Conditions (none are set by the reference backend yet).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
