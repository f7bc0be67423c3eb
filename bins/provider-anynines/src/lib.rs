//! # provider-anynines
//!
//! A Crossplane provider for anynines data services, in Rust: it turns
//! `dataservices.anynines.com/v1` ServiceInstance, ServiceBinding, Backup and Restore objects
//! into Open Service Broker ([`klutch_osb`]) and a9s Backup Manager ([`klutch_a9s`]) calls.
//!
//! * [`api`]: the resource types and their CRDs.
//! * [`manifests`]: the Crossplane package and Deployment/RBAC manifests.
pub mod api;
pub mod manifests;

pub use manifests::{ManifestOptions, manifests, package_files};
