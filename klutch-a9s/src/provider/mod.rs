//! # provider-anynines
//!
//! A Crossplane provider for anynines data services, in Rust: it turns
//! `dataservices.anynines.com/v1` ServiceInstance, ServiceBinding, Backup and Restore objects
//! into Open Service Broker ([`klutch_osb`]) and a9s Backup Manager ([`klutch_a9s`]) calls.
//!
//! * [`api`]: the resource types and their CRDs.
//! * [`managed`]: reusable Crossplane managed-resource machinery (conditions, policies,
//!   external-name, finalizers, connection Secrets, ProviderConfigUsage, the reconciler).
//! * [`config`]: ProviderConfigs: credentials and cached clients.
//! * [`controllers`]: the kind-specific logic.
//! * [`run`]: starts every controller.
//! * [`metrics`], [`serve`], [`manifests`]: `/metrics`, probes, the Crossplane package and
//!   install manifests; [`cli`]: the flags.
pub mod api;
pub mod cli;
pub mod config;
pub mod controllers;
pub mod managed;
pub mod manifests;
pub mod metrics;
pub mod run;
pub mod serve;

pub use manifests::{ManifestOptions, manifests, package_files};
