//! Reusable Crossplane managed-resource machinery (there is no crossplane-runtime for Rust).
//!
//! A kind becomes a managed resource by implementing [`resource::Managed`] (one macro line
//! for a kube-derived type whose spec flattens [`crate::api::ResourceSpec`] and whose status
//! has `conditions` and `observedGeneration`) and [`reconciler::ExternalKind`] (Connect,
//! Observe, Create, Update, Delete). [`reconciler::run`] then drives it exactly like
//! crossplane-runtime v1.20's managed reconciler:
//!
//! | Module | Concern |
//! |---|---|
//! | [`conditions`] | `Ready` / `Synced` with truthful reasons; `lastTransitionTime` only on status changes |
//! | [`policies`] | `managementPolicies` (incl. observe-only) and `deletionPolicy` |
//! | [`meta`] | external-name, create-pending/succeeded/failed, pause annotation, finalizer, labels |
//! | [`store`] | server-side-apply writes of owned metadata and status (write-ahead) |
//! | [`connection`] | `writeConnectionSecretToRef` Secrets |
//! | [`usage`] | ProviderConfigUsage tracking |
//! | [`error`] | curated user-facing errors with requeue hints |
//! | [`reconciler`] | the algorithm, Events, backoff, the controller loop |

pub mod conditions;
pub mod connection;
pub mod error;
pub mod meta;
pub mod policies;
pub mod reconciler;
pub mod resource;
pub mod store;
pub mod usage;

pub use error::ExternalError;
pub use reconciler::{Creation, Cx, Deletion, ExternalKind, Observation, Options, Shared};
pub use resource::Managed;
