//! [`Managed`]: what the generic reconciler needs to know about a managed-resource kind.

use std::fmt::Debug;

use kube::core::ClusterResourceScope;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::{
    Backup, BackupStatus, Condition, ResourceSpec, Restore, RestoreStatus, ServiceBinding,
    ServiceBindingStatus, ServiceInstance, ServiceInstanceStatus,
};

/// A Crossplane managed resource: a cluster-scoped kind with the common spec fields and a
/// status with conditions.
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
    type Status: Default + Clone + Debug + PartialEq + Serialize + Send + Sync;

    /// The common spec fields.
    fn resource_spec(&self) -> &ResourceSpec;
    /// The status, if any.
    fn status(&self) -> Option<&Self::Status>;
    /// The status, created when missing.
    fn status_mut(&mut self) -> &mut Self::Status;
    /// The conditions.
    fn conditions(&self) -> &[Condition];
    /// The conditions, mutable.
    fn conditions_mut(&mut self) -> &mut Vec<Condition>;
    /// Sets `status.observedGeneration`.
    fn set_observed_generation(&mut self, generation: Option<i64>);
}

macro_rules! managed {
    ($kind:ty, $status:ty) => {
        impl Managed for $kind {
            type Status = $status;
            fn resource_spec(&self) -> &ResourceSpec {
                &self.spec.resource
            }
            fn status(&self) -> Option<&$status> {
                self.status.as_ref()
            }
            fn status_mut(&mut self) -> &mut $status {
                self.status.get_or_insert_with(Default::default)
            }
            fn conditions(&self) -> &[Condition] {
                self.status
                    .as_ref()
                    .map(|s| s.conditions.as_slice())
                    .unwrap_or(&[])
            }
            fn conditions_mut(&mut self) -> &mut Vec<Condition> {
                &mut self.status_mut().conditions
            }
            fn set_observed_generation(&mut self, generation: Option<i64>) {
                self.status_mut().observed_generation = generation;
            }
        }
    };
}

managed!(ServiceInstance, ServiceInstanceStatus);
managed!(ServiceBinding, ServiceBindingStatus);
managed!(Backup, BackupStatus);
managed!(Restore, RestoreStatus);
