//! [`Managed`]: what the generic reconciler needs to know about a managed-resource kind, with
//! default methods for ids, conditions and readiness; [`ManagedStatus`]: the status fields
//! every kind shares. [`impl_managed!`](crate::impl_managed) implements both for the usual
//! shape in one line.

use std::collections::BTreeMap;
use std::fmt::Debug;

use kube::core::ClusterResourceScope;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::api::{Condition, ResourceSpec};
use super::conditions::{self, READY, SYNCED};
use super::meta::{self, EXTERNAL_NAME};

/// The status of a managed resource: it has `conditions` and `observedGeneration`.
pub trait ManagedStatus: Default + Clone + Debug + PartialEq + Serialize + Send + Sync {
    /// The conditions.
    fn conditions(&self) -> &[Condition];
    /// The conditions, mutable.
    fn conditions_mut(&mut self) -> &mut Vec<Condition>;
    /// Sets `observedGeneration`.
    fn set_observed_generation(&mut self, generation: Option<i64>);
}

/// A Crossplane managed resource: a cluster-scoped kind with the common spec fields
/// ([`ResourceSpec`]) and a status with conditions ([`ManagedStatus`]).
///
/// Only [`resource_spec`](Managed::resource_spec), [`status`](Managed::status) and
/// [`status_mut`](Managed::status_mut) have no default; for a kube-derived kind whose spec
/// has `#[serde(flatten)] resource: ResourceSpec` and whose status has `conditions` and
/// `observed_generation`, [`impl_managed!`](crate::impl_managed) writes them.
pub trait Managed:
    kube::Resource<DynamicType = (), Scope = ClusterResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// The status type.
    type Status: ManagedStatus;

    /// The common spec fields.
    fn resource_spec(&self) -> &ResourceSpec;
    /// The status, if any.
    fn status(&self) -> Option<&Self::Status>;
    /// The status, created when missing.
    fn status_mut(&mut self) -> &mut Self::Status;

    /// The conditions.
    fn conditions(&self) -> &[Condition] {
        self.status().map_or(&[], ManagedStatus::conditions)
    }
    /// The conditions, mutable.
    fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        self.status_mut().conditions_mut()
    }
    /// Sets `status.observedGeneration`.
    fn set_observed_generation(&mut self, generation: Option<i64>) {
        self.status_mut().set_observed_generation(generation);
    }
    /// The condition of `type_`, if set.
    fn condition(&self, type_: &str) -> Option<&Condition> {
        conditions::get(self.conditions(), type_)
    }
    /// Sets a condition for the current `metadata.generation` (see [`conditions::set`]).
    fn set_condition(&mut self, condition: Condition) {
        let generation = self.meta().generation;
        conditions::set(self.conditions_mut(), condition, generation);
    }
    /// `Ready=True`.
    fn is_ready(&self) -> bool {
        conditions::is_true(self.conditions(), READY)
    }
    /// `Synced=True`.
    fn is_synced(&self) -> bool {
        conditions::is_true(self.conditions(), SYNCED)
    }
    /// The name of the ProviderConfig to use.
    fn provider_config_name(&self) -> &str {
        &self.resource_spec().provider_config_ref.name
    }
    /// The external name (the external resource's id), if set and not empty.
    fn external_name(&self) -> Option<&str> {
        meta::annotation(&self.meta().annotations, EXTERNAL_NAME)
    }
    /// Sets the external name in memory (persist it with
    /// [`Cx::save_meta`](super::Cx::save_meta)).
    fn set_external_name(&mut self, id: impl Into<String>) {
        self.set_annotation(EXTERNAL_NAME, id);
    }
    /// Sets an annotation in memory.
    fn set_annotation(&mut self, key: &str, value: impl Into<String>) {
        self.meta_mut()
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(key.to_owned(), value.into());
    }
}

/// Implements [`Managed`] for a kube-derived kind and [`ManagedStatus`] for its status:
/// `impl_managed!(Kind, KindStatus)`. The spec must have a field `resource:`
/// [`ResourceSpec`] (flattened), the status the fields `conditions: Vec<Condition>` and
/// `observed_generation: Option<i64>`.
///
/// ```
/// use klutch_sdk::crossplane::api::{Condition, ResourceSpec, conditions_schema};
/// use klutch_sdk::crossplane::{Managed as _, conditions};
/// use kube::CustomResource;
/// use schemars::JsonSchema;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
/// #[kube(group = "buckets.example.org", version = "v1alpha1", kind = "Bucket", status = "BucketStatus")]
/// pub struct BucketSpec {
///     pub region: String,
///     #[serde(flatten)]
///     pub resource: ResourceSpec,
/// }
///
/// #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
/// #[serde(rename_all = "camelCase")]
/// pub struct BucketStatus {
///     #[serde(default)]
///     #[schemars(schema_with = "conditions_schema")]
///     pub conditions: Vec<Condition>,
///     pub observed_generation: Option<i64>,
/// }
///
/// klutch_sdk::impl_managed!(Bucket, BucketStatus);
///
/// let mut b = Bucket::new("b", BucketSpec { region: "eu".into(), resource: Default::default() });
/// assert!(!b.is_ready());
/// b.set_condition(conditions::available());
/// assert!(b.is_ready());
/// assert_eq!(b.provider_config_name(), "default");
/// ```
#[macro_export]
macro_rules! impl_managed {
    ($kind:ty, $status:ty) => {
        impl $crate::crossplane::ManagedStatus for $status {
            fn conditions(&self) -> &[$crate::crossplane::api::Condition] {
                &self.conditions
            }
            fn conditions_mut(
                &mut self,
            ) -> &mut ::std::vec::Vec<$crate::crossplane::api::Condition> {
                &mut self.conditions
            }
            fn set_observed_generation(&mut self, generation: ::std::option::Option<i64>) {
                self.observed_generation = generation;
            }
        }
        impl $crate::crossplane::Managed for $kind {
            type Status = $status;
            fn resource_spec(&self) -> &$crate::crossplane::api::ResourceSpec {
                &self.spec.resource
            }
            fn status(&self) -> ::std::option::Option<&$status> {
                self.status.as_ref()
            }
            fn status_mut(&mut self) -> &mut $status {
                self.status
                    .get_or_insert_with(::std::default::Default::default)
            }
        }
    };
}
