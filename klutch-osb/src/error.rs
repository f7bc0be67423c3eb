//! The crate's error type: transport failures, broker errors classified by HTTP status and the
//! body's `error` code, malformed bodies, protocol violations and client-side gates.

use std::fmt;

use http::StatusCode;

pub use crate::gate::Gate;
use crate::parse::{self, ParseError, excerpt};
use crate::version::UnknownVersion;

/// The largest broker body excerpt kept in an error (spec 5.2: 64 KiB).
pub const MAX_ERROR_BODY: usize = 64 * 1024;

/// The length of the body excerpt kept in [`Error::Decode`].
pub const MAX_DECODE_EXCERPT: usize = 512;

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when talking to a broker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The client configuration is invalid (for example a CA bundle together with
    /// `insecure_skip_verify`, an unparsable base URL or an unreadable CA bundle).
    #[error("invalid OSB client configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// The request was rejected by the client before sending (empty id, invalid originating
    /// identity, mismatching context platform, ...).
    #[error("invalid OSB request: {reason}")]
    InvalidRequest {
        /// What is wrong.
        reason: String,
    },
    /// A catalog or API-version gate forbids the request (spec 3.1, 4.2); nothing was sent.
    /// The gate's message is part of this error's message, so the gate is not also its
    /// `source()` (a chain printer would show it twice).
    #[error("OSB request not sent: {0}")]
    Gate(Gate),
    /// The broker accepted an operation of a polling-mode call (`Poller::*_and_wait`) and a
    /// later step failed (polling stopped with an error or was cancelled, or the credentials of
    /// a finished asynchronous bind could not be fetched). Requests went out, so this is never
    /// "not sent": [`crate::OmResult::from_error`] reads a failed fetch after a bind as
    /// [`crate::OmResult::PlatformFailureAfterCreate`] (orphan mitigation: unbind).
    #[error("the service broker accepted the request, then {step} failed")]
    AfterAccepted {
        /// The step that failed.
        step: AcceptedStep,
        /// Why it failed.
        #[source]
        source: Box<Error>,
    },
    /// The connection could not be established; the request was certainly not delivered.
    #[error("could not connect to the service broker")]
    Connect {
        /// The underlying transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The request (including reading the body) did not finish within its timeout; whether the
    /// broker received it is unknown.
    #[error("the service broker did not answer within the timeout")]
    Timeout {
        /// The underlying transport error.
        #[source]
        source: reqwest::Error,
    },
    /// Any other transport failure (connection reset, broken body stream, ...).
    #[error("transport error talking to the service broker")]
    Transport {
        /// The underlying transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The broker answered with an error status (or a status the operation does not define).
    #[error("{0}")]
    Broker(Box<BrokerError>),
    /// A success status came with a body that could not be decoded.
    #[error(
        "malformed response body (HTTP {status}): {}; body starts with {excerpt:?}",
        .reason.detailed()
    )]
    Decode {
        /// The HTTP status of the response.
        status: u16,
        /// Why decoding failed. Its whole chain is part of this error's message, so it is not
        /// also this error's `source()` (a chain printer would show it twice).
        reason: ParseError,
        /// The start of the body (at most [`MAX_DECODE_EXCERPT`] bytes, lossily decoded).
        excerpt: String,
    },
    /// The broker's answer violates the spec in a way the configured strictness rejects.
    #[error("service broker violated the OSB spec (HTTP {status}): {violation}")]
    Protocol {
        /// The HTTP status of the response.
        status: u16,
        /// What was violated.
        violation: ProtocolViolation,
    },
    /// The operation was cancelled by the caller.
    #[error("cancelled")]
    Cancelled,
}

/// The step of a polling-mode call that failed after the broker accepted the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AcceptedStep {
    /// Polling last_operation (stopped by an error answer or by cancellation); the operation
    /// may still be running: poll again with the reply's poll target.
    Polling,
    /// Fetching the credentials of a binding created asynchronously: the binding exists.
    FetchBinding,
}

impl fmt::Display for AcceptedStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AcceptedStep::Polling => "polling its last_operation",
            AcceptedStep::FetchBinding => "fetching the created binding",
        })
    }
}

impl From<Gate> for Error {
    fn from(g: Gate) -> Self {
        Error::Gate(g)
    }
}

impl Error {
    /// The broker error, when this is an HTTP error status (also inside
    /// [`Error::AfterAccepted`]).
    pub fn broker(&self) -> Option<&BrokerError> {
        match self {
            Error::Broker(b) => Some(b),
            Error::AfterAccepted { source, .. } => source.broker(),
            _ => None,
        }
    }

    /// False only when the request certainly did not reach the broker (a gate, an invalid
    /// request or configuration, a failed connect, a cancellation before sending).
    pub fn may_have_been_sent(&self) -> bool {
        !matches!(
            self,
            Error::Gate(_)
                | Error::Config { .. }
                | Error::InvalidRequest { .. }
                | Error::Connect { .. }
                | Error::Cancelled
        )
    }

    /// The HTTP status, when the broker answered at all.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Broker(b) => Some(b.status.as_u16()),
            Error::Decode { status, .. } | Error::Protocol { status, .. } => Some(*status),
            Error::AfterAccepted { source, .. } => source.status(),
            _ => None,
        }
    }

    /// The broker's `error` code, when there was one.
    pub fn code(&self) -> Option<&ErrorCode> {
        self.broker().and_then(|b| b.code.as_ref())
    }

    /// True for 422 `AsyncRequired`.
    pub fn is_async_required(&self) -> bool {
        self.broker()
            .is_some_and(|b| b.kind == ErrorKind::AsyncRequired)
    }

    /// True for `ConcurrencyError` (on 422 or 409).
    pub fn is_concurrency(&self) -> bool {
        self.broker()
            .is_some_and(|b| b.kind == ErrorKind::Concurrency)
    }

    /// The classified kind, when the broker answered with an error status.
    pub fn kind(&self) -> Option<ErrorKind> {
        self.broker().map(|b| b.kind)
    }

    pub(crate) fn config(reason: impl Into<String>) -> Self {
        Error::Config {
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Error::InvalidRequest {
            reason: reason.into(),
        }
    }

    pub(crate) fn decode(status: u16, reason: ParseError, body: &[u8]) -> Self {
        Error::Decode {
            status,
            reason,
            excerpt: excerpt(body, MAX_DECODE_EXCERPT),
        }
    }
}

/// A broker's error answer (spec 5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The classification of status plus code.
    pub kind: ErrorKind,
    /// The body's `error` field, if it was a non-empty string.
    pub code: Option<ErrorCode>,
    /// The body's `description` field, verbatim.
    pub description: Option<String>,
    /// `instance_usable` (failed update/deprovision); `None` when absent, which means `true`.
    pub instance_usable: Option<bool>,
    /// `update_repeatable` (failed update); `None` when absent, which means `true`.
    pub update_repeatable: Option<bool>,
    /// The raw body, capped at [`MAX_ERROR_BODY`] bytes and lossily decoded.
    pub body: String,
    /// The `X-Broker-API-Request-Identity` echoed by the broker.
    pub request_identity: Option<String>,
}

impl fmt::Display for BrokerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "service broker answered {} ({})",
            self.status.as_u16(),
            self.kind
        )?;
        if let Some(code) = &self.code {
            write!(f, ", error {code}")?;
        }
        if let Some(d) = &self.description {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for BrokerError {}

impl From<UnknownVersion> for Error {
    fn from(e: UnknownVersion) -> Self {
        Error::config(e.to_string())
    }
}

impl From<BrokerError> for Error {
    fn from(b: BrokerError) -> Self {
        Error::Broker(Box::new(b))
    }
}

impl BrokerError {
    /// Builds a broker error from a status and a body; never fails, whatever the body.
    pub fn from_response(
        status: StatusCode,
        body: &[u8],
        request_identity: Option<String>,
    ) -> Self {
        let parsed = parse::error_body(body);
        let code = parsed.error.filter(|e| !e.is_empty()).map(ErrorCode::from);
        let kind = ErrorKind::classify(status, code.as_ref());
        BrokerError {
            status,
            kind,
            code,
            description: parsed.description,
            instance_usable: parsed.instance_usable,
            update_repeatable: parsed.update_repeatable,
            body: excerpt(body, MAX_ERROR_BODY),
            request_identity,
        }
    }
}

/// The classification of a broker error by status and `error` code (spec 3.2, 5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// 400: malformed or invalid request (also a missing version header for some brokers).
    BadRequest,
    /// 401: authentication failed.
    Unauthorized,
    /// 403: forbidden.
    Forbidden,
    /// 404: not found (for fetches: also "create still in progress").
    NotFound,
    /// 409 without `ConcurrencyError`: the resource exists with different attributes.
    Conflict,
    /// 410 where the operation does not define it as a success.
    Gone,
    /// 412: the version header value is not supported.
    UnsupportedApiVersion,
    /// 422 `AsyncRequired`.
    AsyncRequired,
    /// 422 or 409 `ConcurrencyError`.
    Concurrency,
    /// 422 `RequiresApp`.
    RequiresApp,
    /// 422 `MaintenanceInfoConflict`.
    MaintenanceInfoConflict,
    /// 422 with no or an unknown code: a generic rejection.
    Unprocessable,
    /// 5xx.
    ServerError,
    /// Any other status the operation does not define.
    Unexpected,
}

impl ErrorKind {
    /// Classifies a status and an optional code.
    pub fn classify(status: StatusCode, code: Option<&ErrorCode>) -> Self {
        let s = status.as_u16();
        if matches!(code, Some(ErrorCode::ConcurrencyError)) && (s == 422 || s == 409) {
            return ErrorKind::Concurrency;
        }
        match s {
            400 => ErrorKind::BadRequest,
            401 => ErrorKind::Unauthorized,
            403 => ErrorKind::Forbidden,
            404 => ErrorKind::NotFound,
            409 => ErrorKind::Conflict,
            410 => ErrorKind::Gone,
            412 => ErrorKind::UnsupportedApiVersion,
            422 => match code {
                Some(ErrorCode::AsyncRequired) => ErrorKind::AsyncRequired,
                Some(ErrorCode::RequiresApp) => ErrorKind::RequiresApp,
                Some(ErrorCode::MaintenanceInfoConflict) => ErrorKind::MaintenanceInfoConflict,
                _ => ErrorKind::Unprocessable,
            },
            500..=599 => ErrorKind::ServerError,
            _ => ErrorKind::Unexpected,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ErrorKind::BadRequest => "bad request",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Gone => "gone",
            ErrorKind::UnsupportedApiVersion => "unsupported API version",
            ErrorKind::AsyncRequired => "asynchronous operation required",
            ErrorKind::Concurrency => "concurrent operation in progress",
            ErrorKind::RequiresApp => "an application is required",
            ErrorKind::MaintenanceInfoConflict => "maintenance_info conflict",
            ErrorKind::Unprocessable => "unprocessable",
            ErrorKind::ServerError => "broker error",
            ErrorKind::Unexpected => "unexpected status",
        };
        f.write_str(s)
    }
}

/// The body's `error` code (spec 5.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// `AsyncRequired`.
    AsyncRequired,
    /// `ConcurrencyError`.
    ConcurrencyError,
    /// `RequiresApp`.
    RequiresApp,
    /// `MaintenanceInfoConflict`.
    MaintenanceInfoConflict,
    /// Any other code, kept verbatim.
    Other(String),
}

impl ErrorCode {
    /// The code as sent on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::AsyncRequired => "AsyncRequired",
            ErrorCode::ConcurrencyError => "ConcurrencyError",
            ErrorCode::RequiresApp => "RequiresApp",
            ErrorCode::MaintenanceInfoConflict => "MaintenanceInfoConflict",
            ErrorCode::Other(s) => s,
        }
    }
}

impl From<String> for ErrorCode {
    fn from(s: String) -> Self {
        match s.as_str() {
            "AsyncRequired" => ErrorCode::AsyncRequired,
            "ConcurrencyError" => ErrorCode::ConcurrencyError,
            "RequiresApp" => ErrorCode::RequiresApp,
            "MaintenanceInfoConflict" => ErrorCode::MaintenanceInfoConflict,
            _ => ErrorCode::Other(s),
        }
    }
}

impl From<&str> for ErrorCode {
    fn from(s: &str) -> Self {
        ErrorCode::from(s.to_owned())
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A broker answer that breaks the spec (spec 6.3, 9.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolViolation {
    /// 202 to a request that did not carry `accepts_incomplete=true`.
    #[error("202 Accepted without accepts_incomplete=true")]
    UnsolicitedAsync,
    /// A 202 bind body carried credentials.
    #[error("asynchronous bind response carried credentials")]
    CredentialsInAsyncBind,
    /// `syslog_drain_url` without the service requiring `syslog_drain`.
    #[error("syslog_drain_url returned but the service does not require syslog_drain")]
    UnexpectedSyslogDrain,
    /// `route_service_url` without the service requiring `route_forwarding`.
    #[error("route_service_url returned but the service does not require route_forwarding")]
    UnexpectedRouteService,
    /// `volume_mounts` without the service requiring `volume_mount`.
    #[error("volume_mounts returned but the service does not require volume_mount")]
    UnexpectedVolumeMounts,
    /// A 200 to a provision that asked for asynchronous completion is legal, but a 200 to an
    /// unexpected operation (for example a 2xx that is not defined) is not.
    #[error("undefined success status")]
    UndefinedSuccessStatus,
}
