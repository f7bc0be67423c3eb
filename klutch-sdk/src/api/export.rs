//! APIServiceExport: a CRD the provider offers, plus how it is bound. Lives in the provider's
//! cluster namespace; its name is `<plural>.<group>`.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::claims::PermissionClaim;
use super::conditions::Condition;

/// Whether a resource is cluster-scoped or namespaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Scope {
    /// Cluster-scoped.
    Cluster,
    /// Namespaced.
    Namespaced,
}

/// How cluster-scoped consumer objects are kept apart on the provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ClusterScopedIsolation {
    /// Provider copies are named `<clusterNs>-<name>`.
    Prefixed,
    /// Provider copies become namespaced objects in the cluster namespace.
    Namespaced,
    /// Names are used as they are (one consumer per provider).
    None,
}

/// The names of a CRD (as in `apiextensions.k8s.io/v1`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CrdNames {
    /// The kind, e.g. `PostgresqlInstance`.
    pub kind: String,
    /// The plural resource name.
    pub plural: String,
    /// The singular name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub singular: Option<String>,
    /// The list kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_kind: Option<String>,
    /// Short names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub short_names: Vec<String>,
    /// Categories.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub categories: Vec<String>,
}

fn yes() -> bool {
    true
}

/// One version of an exported CRD.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportVersion {
    /// The version name, e.g. `v1alpha1`.
    #[schemars(
        length(min = 1),
        regex(pattern = r"^v[1-9][0-9]*([a-z]+[1-9][0-9]*)?$")
    )]
    pub name: String,
    /// Whether the version is served (default `true`).
    #[serde(default = "yes")]
    #[schemars(default = "yes")]
    pub served: bool,
    /// Whether this is the storage version.
    pub storage: bool,
    /// Whether the version is deprecated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecated: Option<bool>,
    /// The deprecation warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecation_warning: Option<String>,
    /// The validation schema.
    pub schema: ExportSchema,
    /// Status and scale subresources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subresources: Option<Subresources>,
    /// Printer columns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub additional_printer_columns: Vec<PrinterColumn>,
}

/// The schema of an exported version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExportSchema {
    /// The OpenAPI v3 schema, stored as given.
    #[serde(rename = "openAPIV3Schema")]
    #[schemars(schema_with = "free_form_atomic")]
    pub open_api_v3_schema: serde_json::Value,
}

fn free_form_atomic(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
        "x-kubernetes-map-type": "atomic",
    })
}

/// Subresources of an exported version.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Subresources {
    /// The status subresource, when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "empty_object")]
    pub status: Option<serde_json::Map<String, serde_json::Value>>,
    /// The scale subresource, when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<ScaleSubresource>,
}

fn empty_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "object" })
}

/// The scale subresource.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaleSubresource {
    /// JSON path of the desired replicas.
    pub spec_replicas_path: String,
    /// JSON path of the observed replicas.
    pub status_replicas_path: String,
    /// JSON path of the label selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector_path: Option<String>,
}

/// A printer column.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrinterColumn {
    /// The column header.
    pub name: String,
    /// The column type.
    #[serde(rename = "type")]
    pub type_: String,
    /// The JSON path of the value.
    pub json_path: String,
    /// A description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A format hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// 0 = always shown; higher only with `-o wide`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
}

/// The spec of an [`APIServiceExport`]: a CRD spec without webhooks, plus binding settings.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "klutch.anynines.com",
    version = "v1alpha1",
    kind = "APIServiceExport",
    plural = "apiserviceexports",
    singular = "apiserviceexport",
    category = "kube-bindings",
    namespaced,
    status = "APIServiceExportStatus",
    doc = "A CRD the provider exports to consumers, with binding settings.",
    // Upstream's message for this rule is wrong ("informerScope is immutable"); the spec keeps such
    // cosmetic schema bits identical until a later API version, so Go and Rust CRDs stay equal.
    validation = Rule::new(r#"self.metadata.name == self.spec.names.plural+"."+self.spec.group"#).message("informerScope is immutable"),
    printcolumn = r#"{"name":"Established","type":"string","priority":5,"jsonPath":".status.conditions[?(@.type==\"Established\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new(r#"self.scope == "Namespaced" || self.informerScope == "Cluster""#).message("informerScope must be Cluster for cluster-scoped resources"),
    validation = Rule::new(r#"self.scope == "Namespaced" || has(self.clusterScopedIsolation)"#).message("clusterScopedIsolation must be defined for cluster-scoped resources"),
    validation = Rule::new(r#"self.scope == "Cluster" || !has(self.clusterScopedIsolation)"#).message("clusterScopedIsolation is not relevant for namespaced resources")
)]
pub struct APIServiceExportSpec {
    /// The API group of the exported CRD.
    pub group: String,
    /// The names of the exported CRD.
    pub names: CrdNames,
    /// The scope of the exported CRD.
    pub scope: Scope,
    /// The versions of the exported CRD (at least one).
    #[schemars(length(min = 1), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub versions: Vec<ExportVersion>,
    /// Whether the konnector watches the whole cluster or single namespaces.
    #[x_kube(validation = Rule::new("self == oldSelf").message("informerScope is immutable"))]
    pub informer_scope: Scope,
    /// Isolation of cluster-scoped objects; only for cluster-scoped resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_scoped_isolation: Option<ClusterScopedIsolation>,
    /// The permission claims, copied from the template.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permission_claims: Vec<PermissionClaim>,
}

/// The status of an [`APIServiceExport`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct APIServiceExportStatus {
    /// The names the consumer CRD accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_names: Option<CrdNames>,
    /// The versions stored by the consumer CRD.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stored_versions: Vec<String>,
    /// `Connected`, `ProviderInSync`, `ConsumerInSync`, the consumer CRD's conditions, `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
