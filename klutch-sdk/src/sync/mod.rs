//! Sans-IO sync primitives: the decisions of a konnector-style agent that keeps objects of an app
//! (consumer) cluster and the control-plane (provider) cluster in step, as pure functions with
//! no clock and no API calls, so that they are tested with plain tables and reused by any agent.
//!
//! - [`copy`]: the clean copy of an object for the other cluster and the minimal apply intent;
//! - [`naming`]: namespace mapping through APIServiceNamespaces, service-namespace names and the
//!   `Prefixed` isolation of cluster-scoped objects;
//! - [`claimed`]: the claimed-resource plan and syncer (Secrets, ConfigMaps, owner semantics);
//! - [`claims`]: which objects a permission claim selects, and who owns them;
//! - [`spec`]: what to do for one consumer object and its provider copy (spec up, deletion);
//! - [`placement`]: where provider copies live per isolation mode, and which provider objects are ours;
//! - [`observe`]: hooks for metrics and Events.
//!
//! Identifiers (`base62`, the cluster id) are part of the API: [`crate::api::ids`].

pub mod claimed;
pub mod claims;
pub mod copy;
pub mod naming;
pub mod observe;
pub mod placement;
pub mod spec;
pub mod syncer;
