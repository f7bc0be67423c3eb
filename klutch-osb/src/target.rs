//! What a last_operation poll targets: the operation kind, the ids and the query (spec 7.1).
//! Every reply to an operation that started asynchronously carries one
//! ([`crate::Reply::poll_target`]), so callers never rebuild it from ids by hand.

use serde::{Deserialize, Serialize};

use crate::model::OperationKey;

/// Which last_operation a poll targets, and the query it sends (spec 7.1).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LastOperationQuery {
    /// `service_id` (always sent when known).
    pub service_id: Option<String>,
    /// `plan_id` (after a plan change: the previous plan).
    pub plan_id: Option<String>,
    /// The `operation` key from the 202.
    pub operation: Option<OperationKey>,
}

/// The kind of operation being polled; decides what 410 and 404 mean (spec 7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationKind {
    /// Provision (instance).
    Provision,
    /// Update (instance).
    Update,
    /// Deprovision (instance).
    Deprovision,
    /// Bind or rotate (binding).
    Bind,
    /// Unbind (binding).
    Unbind,
}

impl OperationKind {
    /// True for deprovision and unbind.
    pub fn is_delete(self) -> bool {
        matches!(self, OperationKind::Deprovision | OperationKind::Unbind)
    }

    /// True for bind and unbind.
    pub fn is_binding(self) -> bool {
        matches!(self, OperationKind::Bind | OperationKind::Unbind)
    }
}

/// What to poll. Serialisable, so that a caller can store it with the time of the 202 and
/// resume polling after a restart.
///
/// ```
/// use klutch_osb::{OperationKind, PollTarget};
/// let t = PollTarget::instance(OperationKind::Provision, "i-1", "svc", "plan", None);
/// let stored = serde_json::to_string(&t).unwrap();
/// assert_eq!(serde_json::from_str::<PollTarget>(&stored).unwrap(), t);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PollTarget {
    /// The operation kind.
    pub kind: OperationKind,
    /// The instance id.
    pub instance_id: String,
    /// The binding id (bind/unbind).
    pub binding_id: Option<String>,
    /// `service_id`, `plan_id` (after a plan change: the previous plan) and `operation`.
    pub query: LastOperationQuery,
}

impl PollTarget {
    /// An instance operation (provision, update, deprovision).
    pub fn instance(
        kind: OperationKind,
        instance_id: impl Into<String>,
        service_id: impl Into<String>,
        plan_id: impl Into<String>,
        operation: Option<OperationKey>,
    ) -> Self {
        PollTarget {
            kind,
            instance_id: instance_id.into(),
            binding_id: None,
            query: LastOperationQuery {
                service_id: Some(service_id.into()),
                plan_id: Some(plan_id.into()),
                operation,
            },
        }
    }

    /// A binding operation (bind, unbind).
    pub fn binding(
        kind: OperationKind,
        instance_id: impl Into<String>,
        binding_id: impl Into<String>,
        service_id: impl Into<String>,
        plan_id: impl Into<String>,
        operation: Option<OperationKey>,
    ) -> Self {
        PollTarget {
            binding_id: Some(binding_id.into()),
            ..PollTarget::instance(kind, instance_id, service_id, plan_id, operation)
        }
    }
}
