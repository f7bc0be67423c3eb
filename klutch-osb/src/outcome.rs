//! Typed results per operation and status code (spec 3.2), so that "done" and "started" can't
//! be confused.

use http::StatusCode;

use crate::error::ProtocolViolation;
use crate::model::{BindingBody, InstanceMetadata, OperationKey};

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
}

impl<T> Reply<T> {
    /// Drops the metadata.
    pub fn into_outcome(self) -> T {
        self.outcome
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
    /// The operation to poll, when in progress.
    pub fn in_progress(&self) -> Option<&AsyncOperation> {
        match self {
            ProvisionOutcome::InProgress(op) => Some(op),
            _ => None,
        }
    }
}

impl BindOutcome {
    /// The binding, when it was completed synchronously.
    pub fn binding(&self) -> Option<&BindingBody> {
        match self {
            BindOutcome::Created(b) | BindOutcome::AlreadyExists(b) => Some(b),
            BindOutcome::InProgress { .. } => None,
        }
    }
}
