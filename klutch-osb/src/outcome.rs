//! Typed results per operation and status code (spec 3.2), so that "done" and "started" can't
//! be confused.

use http::StatusCode;

use crate::error::ProtocolViolation;
use crate::model::{BindingBody, InstanceMetadata, OperationKey};
use crate::target::PollTarget;

/// An operation's outcome plus response metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply<T> {
    /// The typed outcome.
    pub outcome: T,
    /// The HTTP status.
    pub status: StatusCode,
    /// The `X-Broker-API-Request-Identity` the broker echoed.
    pub request_identity: Option<String>,
    /// Spec violations tolerated in `Lenient` mode.
    pub violations: Vec<ProtocolViolation>,
    /// When the operation started asynchronously (202): everything needed to poll it (kind,
    /// ids, `service_id`, the plan to send, `operation`), ready for [`crate::Poller::wait`].
    /// Persist it together with the time of the 202 to resume polling after a restart.
    pub poll_target: Option<PollTarget>,
}

impl<T> Reply<T> {
    /// Drops the metadata.
    pub fn into_outcome(self) -> T {
        self.outcome
    }

    /// Sets [`Self::poll_target`] from the outcome (`None` when it finished synchronously).
    pub(crate) fn with_poll_target(
        mut self,
        target: impl FnOnce(&T) -> Option<PollTarget>,
    ) -> Self {
        self.poll_target = target(&self.outcome);
        self
    }
}

/// A started asynchronous operation (202).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AsyncOperation {
    /// The `operation` key to poll with; `None` when the broker sent none (poll without it).
    pub operation: Option<OperationKey>,
    /// The dashboard URL (provision/update; persist it now, it is not repeated).
    pub dashboard_url: Option<String>,
    /// Instance metadata (provision/update).
    pub metadata: Option<InstanceMetadata>,
}

/// Provision outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum ProvisionOutcome {
    /// 201: created synchronously.
    Created {
        /// Dashboard URL.
        dashboard_url: Option<String>,
        /// Metadata.
        metadata: Option<InstanceMetadata>,
    },
    /// 200: an identical instance already exists.
    AlreadyExists {
        /// Dashboard URL.
        dashboard_url: Option<String>,
        /// Metadata.
        metadata: Option<InstanceMetadata>,
    },
    /// 202: provisioning started.
    InProgress(AsyncOperation),
}

/// Update outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateOutcome {
    /// 200: applied (or no effect). A missing dashboard URL means "keep the old one".
    Updated {
        /// New dashboard URL.
        dashboard_url: Option<String>,
        /// Metadata.
        metadata: Option<InstanceMetadata>,
    },
    /// 202: update started.
    InProgress(AsyncOperation),
}

/// Deprovision / unbind outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum DeleteOutcome {
    /// 200: deleted.
    Deleted,
    /// 410: did not exist (a success).
    Gone,
    /// 202: deletion started.
    InProgress {
        /// Operation key to poll with.
        operation: Option<OperationKey>,
    },
}

/// Bind / rotate outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum BindOutcome {
    /// 201: created.
    Created(BindingBody),
    /// 200: an identical binding exists.
    AlreadyExists(BindingBody),
    /// 202: binding started; fetch the binding after success for the credentials.
    InProgress {
        /// Operation key to poll with.
        operation: Option<OperationKey>,
    },
}

impl ProvisionOutcome {
    /// The dashboard URL, whichever the outcome.
    pub fn dashboard_url(&self) -> Option<&str> {
        match self {
            ProvisionOutcome::Created { dashboard_url, .. }
            | ProvisionOutcome::AlreadyExists { dashboard_url, .. } => dashboard_url.as_deref(),
            ProvisionOutcome::InProgress(op) => op.dashboard_url.as_deref(),
        }
    }

    /// The operation to poll, when in progress.
    pub fn in_progress(&self) -> Option<&AsyncOperation> {
        match self {
            ProvisionOutcome::InProgress(op) => Some(op),
            _ => None,
        }
    }
}

impl UpdateOutcome {
    /// The operation to poll, when in progress.
    pub fn in_progress(&self) -> Option<&AsyncOperation> {
        match self {
            UpdateOutcome::InProgress(op) => Some(op),
            UpdateOutcome::Updated { .. } => None,
        }
    }
}

impl DeleteOutcome {
    /// The operation key to poll with (`Some(None)` when the broker sent no key), when in
    /// progress.
    pub fn in_progress(&self) -> Option<Option<&OperationKey>> {
        match self {
            DeleteOutcome::InProgress { operation } => Some(operation.as_ref()),
            _ => None,
        }
    }
}

impl BindOutcome {
    /// The operation key to poll with (`Some(None)` when the broker sent no key), when in
    /// progress.
    pub fn in_progress(&self) -> Option<Option<&OperationKey>> {
        match self {
            BindOutcome::InProgress { operation } => Some(operation.as_ref()),
            _ => None,
        }
    }

    /// The binding, when it was completed synchronously.
    pub fn binding(&self) -> Option<&BindingBody> {
        match self {
            BindOutcome::Created(b) | BindOutcome::AlreadyExists(b) => Some(b),
            BindOutcome::InProgress { .. } => None,
        }
    }
}
