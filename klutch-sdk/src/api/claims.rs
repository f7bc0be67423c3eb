//! Types shared by several kinds: group-resources, secret references and permission claims.

use std::collections::BTreeMap;

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Pattern of an API group (empty for the core group).
pub const GROUP_PATTERN: &str =
    r"^(|[a-z0-9]([-a-z0-9]*[a-z0-9](\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)?)$";
/// Pattern of a resource (plural) name.
pub const RESOURCE_PATTERN: &str = r"^[a-z][-a-z0-9]*[a-z0-9]$";

pub(crate) fn is_empty(s: &str) -> bool {
    s.is_empty()
}

/// An API group and resource, e.g. `anynines.com` / `postgresqlinstances`.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub struct GroupResource {
    /// The API group; empty for the core group (and then omitted from JSON).
    #[serde(default, skip_serializing_if = "is_empty")]
    #[schemars(regex(pattern = GROUP_PATTERN), extend("default" = ""))]
    pub group: String,
    /// The resource, i.e. the plural name.
    #[schemars(regex(pattern = RESOURCE_PATTERN))]
    pub resource: String,
}

/// The only key kubeconfig Secrets are read from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SecretKey {
    /// `kubeconfig`.
    #[default]
    #[serde(rename = "kubeconfig")]
    Kubeconfig,
}

/// A reference to a kubeconfig Secret in the same namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LocalSecretKeyRef {
    /// The Secret's name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// The key; always `kubeconfig`.
    pub key: SecretKey,
}

/// A reference to a kubeconfig Secret in any namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClusterSecretKeyRef {
    /// The Secret's name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// The Secret's namespace.
    #[schemars(length(min = 1))]
    pub namespace: String,
    /// The key; always `kubeconfig`.
    pub key: SecretKey,
}

/// Which side owns a claimed object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ClaimOwner {
    /// Created by the provider; synced down to the consumer.
    Provider,
    /// Created by the consumer; synced up to the provider.
    Consumer,
}

fn star() -> Vec<String> {
    vec!["*".to_string()]
}

fn yes() -> bool {
    true
}

/// Which objects a permission claim covers. All lists must match (names and namespaces accept
/// `*`); an empty `labelSelectors` or `fieldSelectors` list matches everything.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSelector {
    /// Object names, or `*`.
    #[serde(default = "star")]
    #[schemars(default = "star")]
    pub names: Vec<String>,
    /// Consumer namespaces, or `*`.
    #[serde(default = "star")]
    #[schemars(default = "star")]
    pub namespaces: Vec<String>,
    /// Label selectors; an object matches when any of them matches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub label_selectors: Vec<BTreeMap<String, String>>,
    /// Field selectors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub field_selectors: Vec<String>,
    /// Which side owns matching objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<ClaimOwner>,
}

impl Default for ResourceSelector {
    fn default() -> Self {
        ResourceSelector {
            names: star(),
            namespaces: star(),
            label_selectors: Vec::new(),
            field_selectors: Vec::new(),
            owner: None,
        }
    }
}

/// A wildcard pattern for label or annotation keys.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Pattern {
    /// The pattern, e.g. `example.com/*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
}

/// Read access the provider claims on matching objects.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReadClaim {
    /// Label keys synced up on consumer-owned objects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<Pattern>,
    /// Label keys synced up on provider-owned objects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels_on_provider_owned_objects: Vec<Pattern>,
    /// Annotation keys synced up on consumer-owned objects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub annotations: Vec<Pattern>,
    /// Annotation keys synced up that override the provider's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub override_annotations: Vec<Pattern>,
}

/// Whether provider objects are created on the consumer side.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateClaim {
    /// Replace a conflicting consumer-owned object with the provider's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_existing: Option<bool>,
}

/// How conflicts between the two sides are resolved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnConflict {
    /// Recreate a provider-owned object that was deleted on the consumer side (default `true`).
    #[serde(default = "yes")]
    #[schemars(default = "yes")]
    pub recreate_when_consumer_side_deleted: bool,
}

impl Default for OnConflict {
    fn default() -> Self {
        OnConflict {
            recreate_when_consumer_side_deleted: true,
        }
    }
}

/// Update access the provider claims on matching objects.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateClaim {
    /// Field paths the provider may update.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// Field paths preserved on the consumer side.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preserving: Vec<String>,
    /// Recreate instead of update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub always_recreate: Option<bool>,
    /// Label keys the provider may update.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<Pattern>,
    /// Label keys the provider may update on consumer-owned objects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels_on_consumer_owned_objects: Vec<Pattern>,
    /// Annotation keys the provider may update.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub annotations: Vec<Pattern>,
    /// Annotation keys the provider may update on consumer-owned objects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub annotations_on_consumer_owned_objects: Vec<Pattern>,
}

/// A permission claim: access the provider asks for to objects of one resource in the consumer
/// cluster (a Klutch extension of kube-bind).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.autoDonate) && self.autoDonate && has(self.autoAdopt) && self.autoAdopt)").message("donate and adopt are mutually exclusive"))]
pub struct PermissionClaim {
    /// The claimed resource.
    #[serde(flatten)]
    pub group_resource: GroupResource,
    /// The claimed resource's version, e.g. `v1`.
    #[schemars(length(min = 1))]
    pub version: String,
    /// Which objects are claimed.
    #[serde(default)]
    #[schemars(extend("default" = {}))]
    pub selector: ResourceSelector,
    /// Whether binding fails when the claim is rejected. Always serialised.
    #[serde(default)]
    pub required: bool,
    /// Claimed read access.
    #[serde(default)]
    #[schemars(extend("default" = {}))]
    pub read: ReadClaim,
    /// Whether provider objects are created on the consumer side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<CreateClaim>,
    /// Objects created by the consumer are adopted by the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_adopt: Option<bool>,
    /// Objects created by the provider are owned by the consumer at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_donate: Option<bool>,
    /// Conflict resolution.
    #[serde(default)]
    #[schemars(extend("default" = {}))]
    pub on_conflict: OnConflict,
    /// Claimed update access.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<UpdateClaim>,
}

/// The consumer's decision on a permission claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ClaimState {
    /// The provider gets the access.
    Accepted,
    /// The provider does not.
    Rejected,
}

/// A permission claim with the consumer's decision, as stored on an APIServiceBinding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.autoDonate) && self.autoDonate && has(self.autoAdopt) && self.autoAdopt)").message("donate and adopt are mutually exclusive"))]
pub struct AcceptablePermissionClaim {
    /// The claim.
    #[serde(flatten)]
    pub claim: PermissionClaim,
    /// The decision.
    pub state: ClaimState,
}
