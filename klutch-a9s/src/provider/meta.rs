//! The labels and annotations of provider-anynines (Klutch v1.5's, verbatim), beside
//! Crossplane's (re-exported from [`klutch_sdk::crossplane::meta`]).

pub use klutch_sdk::crossplane::meta::*;

/// Label on ServiceBindings: the data service kind (credential parser choice).
pub const INSTANCE_TYPE_LABEL: &str = "klutch.io/instance-type";
/// `"true"` once a bind succeeded.
pub const BINDING_CREATED: &str = "anynines.crossplane.io/servicebinding-created";
/// The backup id (kept for compatibility; the external name is primary).
pub const BACKUP_ID: &str = "anynines.crossplane.io/backup-id";
/// The restore id (kept for compatibility; the external name is primary).
pub const RESTORE_ID: &str = "anynines.crossplane.io/restore-id";
/// The provider's name: its server-side-apply field manager and Event reporter.
pub const FIELD_MANAGER: &str = "provider-anynines";

/// The provider's own bookkeeping annotations, applied on every metadata write besides
/// Crossplane's [`OWNED_ANNOTATIONS`].
pub const PROVIDER_ANNOTATIONS: [&str; 3] = [BINDING_CREATED, BACKUP_ID, RESTORE_ID];
