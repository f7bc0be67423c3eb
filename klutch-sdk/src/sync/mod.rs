//! Sans-IO sync decisions: what a konnector-style agent that keeps objects of an app (consumer)
//! cluster and the control-plane (provider) cluster in step copies, where, and with which owner,
//! as pure functions with no clients, no clock and no runtime, so that they are tested with plain
//! tables and reused by any agent. The agent that executes them (watches, writes, retries) is
//! `klutch_sdk::konnector` (cargo feature `konnector`).
//!
//! - [`copy`]: the clean copy of an object for the other cluster and the minimal apply intent;
//! - [`naming`]: namespace mapping through APIServiceNamespaces, service-namespace names and the
//!   `Prefixed` isolation of cluster-scoped objects;
//! - [`placement`]: where provider copies live per isolation mode, and which provider objects are
//!   ours;
//! - [`spec`]: what to do for one consumer object and its provider copy (spec up, status down,
//!   deletion);
//! - [`claims`]: which objects a permission claim selects, and who owns them;
//! - [`claimed`]: the steps that mirror one claimed object (Secrets, ConfigMaps) in its owner's
//!   direction.
//!
//! Identifiers (`base62`, the cluster id) are part of the API: [`crate::api::ids`].

pub mod claimed;
pub mod claims;
pub mod copy;
pub mod naming;
pub mod placement;
pub mod spec;
