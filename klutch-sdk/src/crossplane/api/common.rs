//! The Crossplane managed-resource fields every kind shares (crossplane-runtime's
//! `ResourceSpec` / `ResourceStatus`), with the same JSON names, enums and defaults.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What happens to the external resource when the managed resource is deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    /// Keep the external resource.
    Orphan,
    /// Delete the external resource (the default).
    #[default]
    Delete,
}

/// An action the provider may take on an external resource.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum ManagementAction {
    /// Read the external resource.
    Observe,
    /// Create it.
    Create,
    /// Update it.
    Update,
    /// Delete it.
    Delete,
    /// Fill unset spec fields from it (no effect in this provider).
    LateInitialize,
    /// Everything.
    #[serde(rename = "*")]
    All,
}

/// Whether a reference must resolve.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Resolution {
    /// The reference must resolve (default).
    #[default]
    Required,
    /// The reference may stay unresolved.
    Optional,
}

/// When a reference is resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Resolve {
    /// On every reconcile.
    Always,
    /// Only while the field is unset.
    IfNotPresent,
}

/// Reference policies (accepted for compatibility, not used by this provider).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Policy {
    /// Whether resolution is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(default = "default_resolution")]
    pub resolution: Option<Resolution>,
    /// When to resolve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve: Option<Resolve>,
}

fn default_resolution() -> Option<Resolution> {
    Some(Resolution::Required)
}

/// A reference to a cluster-scoped object by name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Reference {
    /// Name of the referenced object.
    pub name: String,
    /// Policies for referencing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
}

impl Reference {
    /// A reference to `name` without policies.
    pub fn named(name: impl Into<String>) -> Self {
        Reference {
            name: name.into(),
            policy: None,
        }
    }
}

/// The name and namespace of a Secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretReference {
    /// Name of the secret.
    pub name: String,
    /// Namespace of the secret.
    pub namespace: String,
}

/// A key in a Secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretKeySelector {
    /// Name of the secret.
    pub name: String,
    /// Namespace of the secret.
    pub namespace: String,
    /// The key to select.
    pub key: String,
}

/// Metadata of a published connection secret.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ConnectionSecretMetadata {
    /// Labels of the connection secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations of the connection secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// The Secret type (Kubernetes secret stores only).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
}

/// Where to publish connection details in an external secret store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublishConnectionDetailsTo {
    /// Name of the connection secret.
    pub name: String,
    /// The StoreConfig to use.
    #[serde(default = "default_reference")]
    #[schemars(default = "default_reference")]
    pub config_ref: Reference,
    /// Metadata of the connection secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ConnectionSecretMetadata>,
}

/// The fields every managed resource's spec has besides `forProvider`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSpec {
    /// The ProviderConfig to use (default `default`).
    #[serde(default = "default_reference")]
    #[schemars(default = "default_reference")]
    pub provider_config_ref: Reference,
    /// The Secret to which connection details are written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_connection_secret_to_ref: Option<SecretReference>,
    /// An external secret store for connection details (needs
    /// `--enable-external-secret-stores`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_connection_details_to: Option<PublishConnectionDetailsTo>,
    /// `Delete` (default) or `Orphan` the external resource on deletion.
    #[serde(default)]
    #[schemars(default = "default_deletion_policy")]
    pub deletion_policy: DeletionPolicy,
    /// The actions the provider may take (default `["*"]`).
    #[serde(default = "default_management_policies")]
    #[schemars(default = "default_management_policies")]
    pub management_policies: Vec<ManagementAction>,
}

impl Default for ResourceSpec {
    fn default() -> Self {
        ResourceSpec {
            provider_config_ref: default_reference(),
            write_connection_secret_to_ref: None,
            publish_connection_details_to: None,
            deletion_policy: DeletionPolicy::Delete,
            management_policies: default_management_policies(),
        }
    }
}

fn default_reference() -> Reference {
    Reference::named("default")
}

fn default_deletion_policy() -> DeletionPolicy {
    DeletionPolicy::Delete
}

fn default_management_policies() -> Vec<ManagementAction> {
    vec![ManagementAction::All]
}

/// A Crossplane condition (`Ready`, `Synced`, ...).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// The condition type.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// When the status last changed.
    pub last_transition_time: Time,
    /// A machine-readable reason.
    pub reason: String,
    /// A human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The `metadata.generation` the condition was set for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The schema of a status' `conditions`: a list-map keyed by `type` (the
/// `x-kubernetes-list-*` markers crossplane-runtime's CRDs carry). Use it on the field with
/// `#[schemars(schema_with = "klutch_sdk::crossplane::api::conditions_schema")]`.
pub fn conditions_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut s = g.subschema_for::<Vec<Condition>>();
    s.insert("x-kubernetes-list-type".into(), "map".into());
    s.insert(
        "x-kubernetes-list-map-keys".into(),
        serde_json::json!(["type"]),
    );
    s
}
