//! `Backup` and `Restore`: backups of a data service instance claim and restores of them.
//!
//! The a9s compositions (`a9s-backup`, `a9s-restore`) use the a9s Backup Manager of the
//! instance's data service; the a8s ones (`a8s-backup`, `a8s-restore`, the defaults) serve
//! PostgreSQL only.

use kube::core::Rule;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::binding::a8s_postgresql_only;
use super::rules::composition;
use super::xrd::ClaimDefinition;
use super::{ClaimStatus, CompositionRef, ServiceInstanceType};

/// The a9s backup composition.
pub const A9S_BACKUP_COMPOSITION: &str = "a9s-backup";
/// The a8s backup composition (the default; PostgreSQL only).
pub const A8S_BACKUP_COMPOSITION: &str = "a8s-backup";
/// The a9s restore composition.
pub const A9S_RESTORE_COMPOSITION: &str = "a9s-restore";
/// The a8s restore composition (the default; PostgreSQL only).
pub const A8S_RESTORE_COMPOSITION: &str = "a8s-restore";

/// The spec of a [`Backup`].
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "anynines.com",
    version = "v1",
    kind = "Backup",
    plural = "backups",
    namespaced,
    status = "ClaimStatus",
    doc = "A backup of a data service instance claim in the same namespace."
)]
#[x_kube(validation = a8s_postgresql_only(A8S_BACKUP_COMPOSITION))]
#[serde(rename_all = "camelCase")]
pub struct BackupSpec {
    /// The name of the instance claim in this namespace.
    pub instance_ref: String,
    /// The kind of the instance.
    pub service_instance_type: ServiceInstanceType,
    /// `a8s-backup` (default) or `a9s-backup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub composition_ref: Option<CompositionRef>,
}

impl BackupSpec {
    /// A backup of the instance claim `instance_ref` on the default composition.
    pub fn new(
        instance_ref: impl Into<String>,
        service_instance_type: ServiceInstanceType,
    ) -> Self {
        BackupSpec {
            instance_ref: instance_ref.into(),
            service_instance_type,
            composition_ref: None,
        }
    }

    /// The same spec on the a9s composition.
    pub fn a9s(mut self) -> Self {
        self.composition_ref = Some(CompositionRef::new(A9S_BACKUP_COMPOSITION));
        self
    }
}

fn a8s_needs_instance_ref() -> Rule {
    Rule::new(format!(
        "{} != '{A8S_RESTORE_COMPOSITION}' || (has(self.instanceRef) && self.instanceRef != '')",
        composition(A8S_RESTORE_COMPOSITION)
    ))
    .message("restores without instance ref are not supported for a8s")
}

/// The spec of a [`Restore`].
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "anynines.com",
    version = "v1",
    kind = "Restore",
    plural = "restores",
    namespaced,
    status = "ClaimStatus",
    doc = "Restores a Backup claim in the same namespace into its instance."
)]
#[x_kube(
    validation = a8s_needs_instance_ref(),
    validation = a8s_postgresql_only(A8S_RESTORE_COMPOSITION),
)]
#[serde(rename_all = "camelCase")]
pub struct RestoreSpec {
    /// The name of the Backup claim in this namespace.
    pub backup_ref: String,
    /// The instance claim to restore into; required on the a8s composition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_ref: Option<String>,
    /// The kind of the instance.
    pub service_instance_type: ServiceInstanceType,
    /// `a8s-restore` (default) or `a9s-restore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub composition_ref: Option<CompositionRef>,
}

impl RestoreSpec {
    /// A restore of the Backup claim `backup_ref` on the a9s composition (which needs no
    /// instance reference).
    pub fn a9s(backup_ref: impl Into<String>, service_instance_type: ServiceInstanceType) -> Self {
        RestoreSpec {
            backup_ref: backup_ref.into(),
            instance_ref: None,
            service_instance_type,
            composition_ref: Some(CompositionRef::new(A9S_RESTORE_COMPOSITION)),
        }
    }

    /// A restore of the Backup claim `backup_ref` into the a8s PostgreSQL claim `instance_ref`.
    pub fn a8s(backup_ref: impl Into<String>, instance_ref: impl Into<String>) -> Self {
        RestoreSpec {
            backup_ref: backup_ref.into(),
            instance_ref: Some(instance_ref.into()),
            service_instance_type: ServiceInstanceType::Postgresql,
            composition_ref: Some(CompositionRef::new(A8S_RESTORE_COMPOSITION)),
        }
    }
}

impl ClaimDefinition for Backup {
    const COMPOSITE_KIND: &'static str = "XBackup";
    const COMPOSITE_PLURAL: &'static str = "xbackups";
    const DEFAULT_COMPOSITION: &'static str = A8S_BACKUP_COMPOSITION;
    const FOREGROUND_DELETE: bool = false;
}

impl ClaimDefinition for Restore {
    const COMPOSITE_KIND: &'static str = "XRestore";
    const COMPOSITE_PLURAL: &'static str = "xrestores";
    const DEFAULT_COMPOSITION: &'static str = A8S_RESTORE_COMPOSITION;
    const FOREGROUND_DELETE: bool = false;
}
