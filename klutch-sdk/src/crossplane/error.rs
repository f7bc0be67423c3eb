//! [`ExternalError`]: a failed external call or lookup, carrying the curated message users see
//! in the `Synced` condition and how to retry.

use std::time::Duration;

use super::api::Condition;

/// The boxed cause of an [`ExternalError`].
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failed step of a reconcile. `message` is written for users; `source` (never shown in
/// conditions) goes to logs and, for internal errors, to a Warning Event.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ExternalError {
    /// The curated, user-facing text.
    pub message: String,
    /// When to retry; `None` = exponential backoff.
    pub requeue_after: Option<Duration>,
    /// A `Ready` condition to set along (e.g. `Unavailable` with the external API's description).
    pub ready: Option<Box<Condition>>,
    /// True for unexpected errors: users see "Internal error in provider".
    pub internal: bool,
    /// The cause.
    #[source]
    pub source: Option<Cause>,
}

/// The `Synced` message of internal errors.
pub const INTERNAL_MESSAGE: &str = "Internal error in provider";

impl ExternalError {
    /// An error users can act on; the message is shown verbatim.
    pub fn user(message: impl Into<String>) -> Self {
        ExternalError {
            message: message.into(),
            requeue_after: None,
            ready: None,
            internal: false,
            source: None,
        }
    }

    /// A user-facing message with a cause for the logs.
    pub fn with_source(message: impl Into<String>, source: impl Into<Cause>) -> Self {
        ExternalError {
            source: Some(source.into()),
            ..Self::user(message)
        }
    }

    /// An unexpected error: users see [`INTERNAL_MESSAGE`], the details go to an Event.
    pub fn internal(source: impl Into<Cause>) -> Self {
        ExternalError {
            internal: true,
            ..Self::with_source(INTERNAL_MESSAGE, source)
        }
    }

    /// Retry after `d` instead of backing off.
    pub fn requeue_after(mut self, d: Duration) -> Self {
        self.requeue_after = Some(d);
        self
    }

    /// Sets a `Ready` condition along with `Synced=False`.
    pub fn with_ready(mut self, ready: Condition) -> Self {
        self.ready = Some(Box::new(ready));
        self
    }

    /// The message and the chain of causes, for logs and Events (clients must keep secrets
    /// out of their errors: this text is published).
    pub fn detail(&self) -> String {
        let mut s = self.message.clone();
        let mut cur: Option<&(dyn std::error::Error + 'static)> =
            self.source.as_deref().map(|e| e as _);
        while let Some(e) = cur {
            s.push_str(": ");
            s.push_str(&e.to_string());
            cur = e.source();
        }
        s
    }
}
