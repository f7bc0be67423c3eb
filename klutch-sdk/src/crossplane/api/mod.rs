//! The API types every Crossplane provider shares, with crossplane-runtime's JSON names, enums
//! and defaults: the common spec fields of managed resources ([`ResourceSpec`]), conditions,
//! references, and the ProviderConfigUsage kind.

pub mod common;
pub mod usage;

pub use common::{
    Condition, ConnectionSecretMetadata, DeletionPolicy, ManagementAction, Policy,
    PublishConnectionDetailsTo, Reference, Resolution, Resolve, ResourceSpec, SecretKeySelector,
    SecretReference, conditions_schema,
};
pub use usage::{ProviderConfigUsage, TypedReference};
