//! Hooks through which an agent learns what its syncers do: how long each hop took and what
//! failed, e.g. to export metrics or post Kubernetes Events. The syncers never block on them.

use std::time::Duration;

/// One direction or kind of sync work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Hop {
    /// Consumer spec written to the provider copy.
    SpecUp,
    /// Provider status written to the consumer object.
    StatusDown,
    /// A provider copy deleted (consumer object deleted, or orphaned).
    Delete,
    /// A provider-created object adopted into the consumer cluster.
    Adopt,
    /// A consumer-owned claimed object mirrored up.
    ClaimUp,
    /// A provider-owned claimed object mirrored down.
    ClaimDown,
}

/// The object a failure is about: on the consumer side when there is one, else the provider
/// object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectKey {
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// Namespace (`None` for cluster-scoped objects).
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// UID, when known.
    pub uid: Option<String>,
    /// Whether the object lives in the consumer cluster.
    pub consumer: bool,
}

impl ObjectKey {
    /// The key of `obj` of resource `ar`.
    pub fn of(obj: &kube::api::DynamicObject, ar: &kube::api::ApiResource, consumer: bool) -> Self {
        ObjectKey {
            api_version: ar.api_version.clone(),
            kind: ar.kind.clone(),
            namespace: obj.metadata.namespace.clone(),
            name: obj.metadata.name.clone().unwrap_or_default(),
            uid: obj.metadata.uid.clone(),
            consumer,
        }
    }
}

/// Receives sync outcomes. Both methods default to doing nothing.
pub trait SyncObserver: Send + Sync {
    /// A hop finished: `took` runs from the start of the reconcile that saw the change to the end
    /// of the write.
    fn synced(&self, hop: Hop, took: Duration) {
        let _ = (hop, took);
    }

    /// A step failed; `reason` is a stable PascalCase reason, `message` the API's message.
    fn failed(&self, hop: Hop, object: &ObjectKey, reason: &'static str, message: &str) {
        let _ = (hop, object, reason, message);
    }
}

/// An observer that ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoObserver;

impl SyncObserver for NoObserver {}
