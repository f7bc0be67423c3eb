//! # klutch-a9s
//!
//! anynines-specific clients for klutch: the a9s service broker's extensions on top of
//! [`klutch_osb`], the a9s Backup Manager API and typed binding credentials for the a9s data
//! services.
//!
//! The clients are being built (see the project's issue tracker); this crate currently reserves
//! the name and the place in the workspace.

pub use klutch_osb;
