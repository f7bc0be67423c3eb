//! Every way the client side of the bind protocol can fail. A CLI maps each onto its own message
//! and exit code (see `kubectl-bind`'s `error.rs`).

use std::time::Duration;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The provider URL is not an http(s) URL.
    #[error("{0}")]
    InvalidUrl(String),
    /// The provider URL could not be fetched.
    #[error("cannot reach {url}: {reason}")]
    ProviderUnreachable {
        /// The URL.
        url: String,
        /// The HTTP client's error chain, on one line.
        reason: String,
    },
    /// The URL answered, but not with a BindingProvider document.
    #[error("{url} is not a klutch binding provider ({reason})")]
    NotAProvider {
        /// The URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// The provider speaks another protocol version.
    #[error("{url} speaks an unsupported protocol version: {reason}")]
    ProtocolVersion {
        /// The URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// The provider offers no login method this client can use.
    #[error("{url} offers no usable login method ({reason})")]
    NoLoginMethod {
        /// The URL.
        url: String,
        /// What is missing.
        reason: String,
    },
    /// Nobody completed the login in time.
    #[error("timed out after {}s waiting for the login", .0.as_secs())]
    LoginTimeout(Duration),
    /// The provider or its identity provider reported a login error.
    #[error("login failed: {0}")]
    LoginFailed(String),
    /// A response arrived that belongs to another session.
    #[error(
        "the login response belongs to another session (session {got:?}, expected {expected:?})"
    )]
    WrongSession {
        /// This session's id.
        expected: String,
        /// The id in the response.
        got: String,
    },
    /// The BindingResponse could not be used.
    #[error("the provider sent an invalid binding response")]
    BadResponse(#[source] crate::api::wire::Error),
    /// The provider does not offer the resource asked for.
    #[error("the provider offers no {resource}")]
    NotOffered {
        /// The binding name asked for (`<plural>.<group>`).
        resource: String,
        /// The binding names the provider offers.
        offered: Vec<String>,
    },
    /// The device authorization flow failed.
    #[error("device login: {0}")]
    Device(String),
    /// A local socket could not be opened.
    #[error("{op}: {source}")]
    Io {
        /// What we were doing.
        op: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The error and its causes on one line, for a terminal (a cause whose text is already part of
/// the line is left out).
///
/// ```
/// let err = std::io::Error::other("disk full");
/// assert_eq!(klutch_sdk::backend::client::one_line(&err), "disk full");
/// ```
pub fn one_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
