//! Every way `kubectl bind` can fail, each with one message that says what to do next, and the
//! exit code it ends with.

use std::time::Duration;

use klutch_sdk::backend::client::Error as ClientError;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The command line is not usable (beyond what clap checks).
    #[error("{0}")]
    Usage(String),
    /// The provider URL could not be fetched.
    #[error(
        "cannot reach {url}: {reason}. Check the URL and your network, then run kubectl bind again"
    )]
    ProviderUnreachable {
        /// The URL.
        url: String,
        /// The HTTP client's error chain, on one line.
        reason: String,
    },
    /// The URL answered, but not with a klutch BindingProvider.
    #[error(
        "{url} is not a klutch binding provider ({reason}). Pass the backend's export URL, e.g. https://bind.example.com/export"
    )]
    NotAProvider {
        /// The URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// The provider speaks another protocol version.
    #[error(
        "{url} speaks an unsupported protocol version: {reason}. Use a kubectl-bind release that matches the provider"
    )]
    ProtocolVersion {
        /// The URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// The provider offers no login method this CLI can use.
    #[error("{url} offers no usable login method ({reason})")]
    NoLoginMethod {
        /// The URL.
        url: String,
        /// What is missing.
        reason: String,
    },
    /// Nobody completed the login in time.
    #[error("timed out after {}s waiting for the login. Run kubectl bind again and finish the login in the browser, or raise --timeout", .0.as_secs())]
    LoginTimeout(Duration),
    /// The provider or its identity provider reported a login error.
    #[error(
        "login failed: {0}. Run kubectl bind again; ask the provider's operators if it keeps failing"
    )]
    LoginFailed(String),
    /// A response arrived that belongs to another `kubectl bind` session.
    #[error(
        "the login response belongs to another kubectl bind session (session {got:?}, expected {expected:?}). Close old login tabs and run kubectl bind again"
    )]
    WrongSession {
        /// This session's id.
        expected: String,
        /// The id in the response.
        got: String,
    },
    /// The response could not be used.
    #[error("the provider sent an invalid binding response: {0}")]
    BadResponse(#[source] klutch_sdk::api::wire::Error),
    /// The provider marked the export request Failed.
    #[error(
        "binding request failed: {message}. Nothing was bound; fix the cause with the provider and run kubectl bind again"
    )]
    ExportRequestFailed {
        /// The request's name.
        name: String,
        /// The request's terminal message.
        message: String,
    },
    /// The provider deleted the export request while we waited.
    #[error("APIServiceExportRequest {0} was deleted by the service provider")]
    ExportRequestDeleted(String),
    /// The export request stayed Pending.
    #[error("timed out after {}s waiting for APIServiceExportRequest {name} to succeed; the provider may be overloaded, try again later", .timeout.as_secs())]
    ExportRequestTimeout {
        /// The request's name.
        name: String,
        /// How long we waited.
        timeout: Duration,
    },
    /// A binding of that name exists for another provider.
    #[error(
        "found existing APIServiceBinding {0} not from this service provider. Delete it first (kubectl delete apiservicebinding -n klutch-bind {0}) or bind from the same provider"
    )]
    ForeignBinding(String),
    /// A CRD of that name exists and is not owned by the binding.
    #[error(
        "CustomResourceDefinition {0} exists, but is not owned by klutch-bind. Remove it or bind into another cluster"
    )]
    ForeignCrd(String),
    /// No way to ask for consent.
    #[error(
        "the provider claims permissions ({0}) and standard input is not a terminal: pass --accept-claims=all, --accept-claims=none or --accept-claims=<resource>[,…]"
    )]
    ConsentNeeded(String),
    /// A required claim was rejected.
    #[error(
        "the permission on {0} is required by the provider and was not accepted; nothing was bound"
    )]
    RequiredClaimRejected(String),
    /// The konnector cannot be installed as asked.
    #[error("{0}")]
    Konnector(String),
    /// A call to the app cluster (or the provider cluster) failed.
    #[error("{op}: {source}")]
    Kube {
        /// What we were doing.
        op: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// A kubeconfig could not be loaded.
    #[error("{what}: {reason}")]
    Kubeconfig {
        /// Which kubeconfig.
        what: String,
        /// Why.
        reason: String,
    },
    /// A manifest could not be read or is not an export request.
    #[error("{0}")]
    Manifest(String),
    /// Reading or writing the terminal or a file failed.
    #[error("{op}: {source}")]
    Io {
        /// What we were doing.
        op: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The device authorization flow failed.
    #[error("device login: {0}")]
    Device(String),
    /// Ctrl-C.
    #[error("interrupted; the cluster was left as it was before this run")]
    Interrupted,
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The documented exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            Error::ProviderUnreachable { .. }
            | Error::NotAProvider { .. }
            | Error::ProtocolVersion { .. }
            | Error::NoLoginMethod { .. } => 3,
            Error::LoginTimeout(_)
            | Error::LoginFailed(_)
            | Error::WrongSession { .. }
            | Error::BadResponse(_)
            | Error::Device(_) => 4,
            Error::ExportRequestFailed { .. }
            | Error::ExportRequestDeleted(_)
            | Error::ExportRequestTimeout { .. } => 5,
            Error::ForeignBinding(_) | Error::ForeignCrd(_) => 6,
            Error::ConsentNeeded(_) | Error::RequiredClaimRejected(_) => 7,
            Error::Konnector(_) => 8,
            Error::Kube { .. }
            | Error::Kubeconfig { .. }
            | Error::Manifest(_)
            | Error::Io { .. } => 1,
            Error::Interrupted => 130,
        }
    }

    /// Wraps a kube error with the operation.
    pub fn kube(op: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let op = op.into();
        move |source| Error::Kube { op, source }
    }
}

/// The error and its causes on one line, for a terminal.
pub use klutch_sdk::backend::client::one_line;

impl From<ClientError> for Error {
    /// The protocol client's errors, with this CLI's advice and exit codes.
    fn from(err: ClientError) -> Self {
        match err {
            ClientError::InvalidUrl(message) => Error::Usage(message),
            ClientError::ProviderUnreachable { url, reason } => {
                Error::ProviderUnreachable { url, reason }
            }
            ClientError::NotAProvider { url, reason } => Error::NotAProvider { url, reason },
            ClientError::ProtocolVersion { url, reason } => Error::ProtocolVersion { url, reason },
            ClientError::NoLoginMethod { url, reason } => Error::NoLoginMethod { url, reason },
            ClientError::LoginTimeout(waited) => Error::LoginTimeout(waited),
            ClientError::LoginFailed(message) => Error::LoginFailed(message),
            ClientError::WrongSession { expected, got } => Error::WrongSession { expected, got },
            ClientError::BadResponse(source) => Error::BadResponse(source),
            ClientError::NotOffered { resource, offered } => Error::Usage(format!(
                "the provider offers no {resource}; --resource must be one of: {}",
                if offered.is_empty() {
                    "(none)".to_string()
                } else {
                    offered.join(", ")
                }
            )),
            ClientError::Io { op, source } => Error::Io { op, source },
            ClientError::Device(message) => Error::Device(message),
            other => Error::Device(one_line(&other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use klutch_sdk::backend::client::provider;

    #[test]
    fn protocol_errors_keep_their_exit_codes() {
        let err: Error = provider::parse("https://b/export", 404, "text/plain", b"not found")
            .unwrap_err()
            .into();
        assert!(matches!(err, Error::NotAProvider { .. }), "{err}");
        assert_eq!(err.exit_code(), 3);
        let err: Error = ClientError::WrongSession {
            expected: "abc".into(),
            got: "other".into(),
        }
        .into();
        assert!(matches!(err, Error::WrongSession { .. }), "{err}");
        assert_eq!(err.exit_code(), 4);
        let err: Error = provider::validate_url("ftp://b/export").unwrap_err().into();
        assert_eq!(err.exit_code(), 2);
        let err: Error = ClientError::NotOffered {
            resource: "widgets.example.com".into(),
            offered: vec!["mangodbs.mangodb.com".into()],
        }
        .into();
        assert_eq!(
            err.to_string(),
            "the provider offers no widgets.example.com; --resource must be one of: mangodbs.mangodb.com"
        );
        assert_eq!(err.exit_code(), 2);
    }
}
