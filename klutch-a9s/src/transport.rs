//! The HTTP transport shared by the Backup Manager client and the broker extensions: basic
//! auth, TLS on an explicit `ring` provider (no process-global rustls CryptoProvider is
//! needed), timeouts, and the classification of error answers into [`ApiError`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use rustls::ClientConfig;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The largest error body excerpt kept in an [`ApiError`] (64 KiB).
pub const MAX_ERROR_BODY: usize = 64 * 1024;

/// The length of the body excerpt kept in [`CallError::Decode`].
pub const MAX_DECODE_EXCERPT: usize = 512;

/// A `Result` with this module's [`CallError`].
pub type Result<T, E = CallError> = std::result::Result<T, E>;

/// Why one HTTP call to an a9s component failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The configuration is invalid (bad URL, unreadable CA bundle, CA bundle together with
    /// `insecure_skip_verify`, ...).
    #[error("invalid client configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// The request was rejected before sending (for example an empty id).
    #[error("invalid request: {reason}")]
    InvalidRequest {
        /// What is wrong.
        reason: String,
    },
    /// The connection could not be established; the request was certainly not delivered.
    #[error("could not connect")]
    Connect {
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// No answer within the timeout; whether the server received the request is unknown.
    #[error("no answer within the timeout")]
    Timeout {
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// Any other transport failure.
    #[error("transport error")]
    Transport {
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error status.
    #[error(transparent)]
    Api(Box<ApiError>),
    /// A success status came with a body that could not be decoded.
    #[error("malformed response body (HTTP {status}): {reason}; body starts with {excerpt:?}")]
    Decode {
        /// The HTTP status.
        status: u16,
        /// Why decoding failed.
        reason: String,
        /// The start of the body (at most [`MAX_DECODE_EXCERPT`] bytes).
        excerpt: String,
    },
}

impl CallError {
    /// The server's error answer, if there was one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            CallError::Api(a) => Some(a),
            _ => None,
        }
    }

    /// The classified kind of the server's error answer.
    pub fn kind(&self) -> Option<ApiErrorKind> {
        self.api().map(|a| a.kind)
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            CallError::Api(a) => Some(a.status),
            CallError::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True for a 404 answer.
    pub fn is_not_found(&self) -> bool {
        self.kind() == Some(ApiErrorKind::NotFound)
    }

    pub(crate) fn config(reason: impl Into<String>) -> Self {
        CallError::Config {
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        CallError::InvalidRequest {
            reason: reason.into(),
        }
    }

    pub(crate) fn decode(status: u16, reason: impl fmt::Display, body: &[u8]) -> Self {
        CallError::Decode {
            status,
            reason: reason.to_string(),
            excerpt: excerpt(body, MAX_DECODE_EXCERPT),
        }
    }
}

impl From<ApiError> for CallError {
    fn from(e: ApiError) -> Self {
        CallError::Api(Box::new(e))
    }
}

/// The classification of an error status (a9s Backup Manager and broker extensions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ApiErrorKind {
    /// 400: malformed request, or (delete backup) the storage deletion failed.
    BadRequest,
    /// 401: authentication failed.
    Unauthorized,
    /// 403: forbidden.
    Forbidden,
    /// 404: the instance, backup or restore does not exist (`NotFound`, `InstanceNotFound`).
    NotFound,
    /// 409: conflict, e.g. `RestoreInProgress`.
    Conflict,
    /// 422: e.g. `BackupNonRestorableState`.
    Unprocessable,
    /// 423: locked, e.g. a backup used by a running restore.
    Locked,
    /// 5xx: server failure.
    Server,
    /// Any other status the operation does not define.
    Unexpected,
}

impl ApiErrorKind {
    /// Classifies an HTTP status.
    pub fn from_status(status: u16) -> Self {
        match status {
            400 => ApiErrorKind::BadRequest,
            401 => ApiErrorKind::Unauthorized,
            403 => ApiErrorKind::Forbidden,
            404 => ApiErrorKind::NotFound,
            409 => ApiErrorKind::Conflict,
            422 => ApiErrorKind::Unprocessable,
            423 => ApiErrorKind::Locked,
            500..=599 => ApiErrorKind::Server,
            _ => ApiErrorKind::Unexpected,
        }
    }
}

impl fmt::Display for ApiErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ApiErrorKind::BadRequest => "bad request",
            ApiErrorKind::Unauthorized => "unauthorized",
            ApiErrorKind::Forbidden => "forbidden",
            ApiErrorKind::NotFound => "not found",
            ApiErrorKind::Conflict => "conflict",
            ApiErrorKind::Unprocessable => "unprocessable",
            ApiErrorKind::Locked => "locked",
            ApiErrorKind::Server => "server error",
            ApiErrorKind::Unexpected => "unexpected status",
        })
    }
}

/// An error answer: status, classification, the body's `error` code and `description`
/// (always preserved verbatim) and the raw body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// The classification of the status.
    pub kind: ApiErrorKind,
    /// The body's `error` field (e.g. `RestoreInProgress`, `InstanceNotFound`).
    pub code: Option<String>,
    /// The body's `description` (or `message`) field, verbatim.
    pub description: Option<String>,
    /// The raw body, capped at [`MAX_ERROR_BODY`] bytes and lossily decoded.
    pub body: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "server answered {} ({})", self.status, self.kind)?;
        if let Some(c) = &self.code {
            write!(f, ", error {c}")?;
        }
        if let Some(d) = &self.description {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default, deserialize_with = "lenient_string")]
    error: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    description: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    message: Option<String>,
}

fn lenient_string<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<String>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(match v {
        serde_json::Value::String(s) if !s.is_empty() => Some(s),
        _ => None,
    })
}

impl ApiError {
    /// Builds an error from a status and a body; never fails, whatever the body.
    pub fn from_response(status: u16, body: &[u8]) -> Self {
        let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
        ApiError {
            status,
            kind: ApiErrorKind::from_status(status),
            code: parsed.error,
            description: parsed.description.or(parsed.message),
            body: excerpt(body, MAX_ERROR_BODY),
        }
    }
}

pub(crate) fn excerpt(body: &[u8], max: usize) -> String {
    let cut = &body[..body.len().min(max)];
    String::from_utf8_lossy(cut).into_owned()
}

/// Connection settings for an a9s component (broker or Backup Manager).
///
/// ```
/// use std::time::Duration;
/// use klutch_a9s::transport::HttpConfig;
/// let cfg = HttpConfig::new("https://backup-manager.example.com/")
///     .basic_auth("admin", "secret")
///     .timeout(Duration::from_secs(10));
/// assert_eq!(cfg.base_url(), "https://backup-manager.example.com");
/// assert!(!format!("{cfg:?}").contains("secret"));
/// ```
#[derive(Clone)]
pub struct HttpConfig {
    base_url: String,
    username: Option<String>,
    password: Option<SecretString>,
    timeout: Duration,
    connect_timeout: Duration,
    ca_bundle_pem: Option<Vec<u8>>,
    insecure_skip_verify: bool,
    http: Option<reqwest::Client>,
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("base_url", &self.base_url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("ca_bundle_pem", &self.ca_bundle_pem.is_some())
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .finish_non_exhaustive()
    }
}

impl HttpConfig {
    /// Settings for a base URL (a trailing `/` is trimmed); 60 s request timeout, 30 s
    /// connect timeout, system roots.
    pub fn new(base_url: impl Into<String>) -> Self {
        HttpConfig {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            username: None,
            password: None,
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(30),
            ca_bundle_pem: None,
            insecure_skip_verify: false,
            http: None,
        }
    }

    /// The base URL without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Basic auth, sent pre-emptively on every request.
    pub fn basic_auth(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self.password = Some(SecretString::from(password.into()));
        self
    }

    /// The whole-request timeout (default 60 s).
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// The connect timeout (default 30 s).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// Trusts only the certificates of this PEM bundle (replacing the system roots).
    pub fn ca_bundle_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_bundle_pem = Some(pem.into());
        self
    }

    /// Disables certificate verification (tests only; exclusive with a CA bundle).
    pub fn insecure_skip_verify(mut self, yes: bool) -> Self {
        self.insecure_skip_verify = yes;
        self
    }

    /// Uses this HTTP client instead of building one (TLS options must then be unset).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Validates the settings and builds the transport.
    pub(crate) fn build(self) -> Result<Transport> {
        let parsed = url::Url::parse(&self.base_url)
            .map_err(|e| CallError::config(format!("base URL {:?}: {e}", self.base_url)))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(CallError::config(format!(
                "base URL {:?} must be http or https",
                self.base_url
            )));
        }
        if self.ca_bundle_pem.is_some() && self.insecure_skip_verify {
            return Err(CallError::config(
                "a CA bundle and insecure_skip_verify are mutually exclusive",
            ));
        }
        let http = match self.http {
            Some(c) => {
                if self.ca_bundle_pem.is_some() || self.insecure_skip_verify {
                    return Err(CallError::config(
                        "TLS options cannot be applied to a user-supplied reqwest::Client",
                    ));
                }
                c
            }
            None => build_http_client(
                self.ca_bundle_pem.as_deref(),
                self.insecure_skip_verify,
                self.connect_timeout,
            )?,
        };
        Ok(Transport {
            inner: Arc::new(TransportInner {
                base: self.base_url,
                username: self.username,
                password: self.password,
                timeout: self.timeout,
                http,
            }),
        })
    }
}

/// Builds a `reqwest::Client` whose TLS runs on an explicit `ring` provider.
pub(crate) fn build_http_client(
    ca_bundle_pem: Option<&[u8]>,
    insecure: bool,
    connect_timeout: Duration,
) -> Result<reqwest::Client> {
    let tls = client_config(ca_bundle_pem, insecure)?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(connect_timeout)
        .build()
        .map_err(|e| CallError::config(format!("HTTP client: {e}")))
}

/// The rustls configuration shared with klutch-osb (explicit `ring` provider, CA bundle instead
/// of the system roots when given, or no verification when `insecure`).
fn client_config(ca_bundle_pem: Option<&[u8]>, insecure: bool) -> Result<ClientConfig> {
    klutch_osb::tls::client_config(ca_bundle_pem, insecure, None).map_err(|e| match e {
        klutch_osb::Error::Config { reason, .. } => CallError::config(reason),
        other => CallError::config(other.to_string()),
    })
}

/// A configured HTTP transport. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Transport {
    inner: Arc<TransportInner>,
}

struct TransportInner {
    base: String,
    username: Option<String>,
    password: Option<SecretString>,
    timeout: Duration,
    http: reqwest::Client,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("base", &self.inner.base)
            .field("username", &self.inner.username)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

/// A response: status and body.
#[derive(Debug)]
pub(crate) struct RawResponse {
    pub(crate) status: StatusCode,
    pub(crate) body: Vec<u8>,
}

impl RawResponse {
    pub(crate) fn error(&self) -> CallError {
        ApiError::from_response(self.status.as_u16(), &self.body).into()
    }

    pub(crate) fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body)
            .map_err(|e| CallError::decode(self.status.as_u16(), e, &self.body))
    }

    /// The body as `T` when the status is 200, else the server's error.
    pub(crate) fn ok_json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        match self.status.as_u16() {
            200 => self.json(),
            _ => Err(self.error()),
        }
    }
}

impl Transport {
    pub(crate) fn base_url(&self) -> &str {
        &self.inner.base
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    pub(crate) fn username(&self) -> Option<&str> {
        self.inner.username.as_deref()
    }

    pub(crate) fn password(&self) -> Option<&SecretString> {
        self.inner.password.as_ref()
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// Sends a request to `base + path` (or to `path` itself when it is an absolute URL).
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&'static str, &str)],
        body: Option<&serde_json::Value>,
        timeout: Option<Duration>,
    ) -> Result<RawResponse> {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{}", self.inner.base, path)
        };
        let mut rb = self
            .inner
            .http
            .request(method.clone(), &url)
            .timeout(timeout.unwrap_or(self.inner.timeout))
            .header(http::header::ACCEPT, "application/json");
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(u) = &self.inner.username {
            rb = rb.basic_auth(u, self.inner.password.as_ref().map(|p| p.expose_secret()));
        }
        if let Some(b) = body {
            let bytes = serde_json::to_vec(b)
                .map_err(|e| CallError::invalid(format!("request body: {e}")))?;
            rb = rb
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(bytes);
        }
        tracing::debug!(%method, path, "a9s request");
        let resp = rb.send().await.map_err(transport)?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(transport)?.to_vec();
        tracing::debug!(%method, path, status = status.as_u16(), "a9s response");
        Ok(RawResponse { status, body })
    }
}

fn transport(e: reqwest::Error) -> CallError {
    if e.is_timeout() {
        CallError::Timeout { source: e }
    } else if e.is_connect() {
        CallError::Connect { source: e }
    } else {
        CallError::Transport { source: e }
    }
}

/// Percent-encodes a path segment: only RFC 3986 unreserved characters stay literal.
pub(crate) fn encode(s: &str) -> String {
    klutch_osb::client::encode(s)
}

/// Rejects empty ids before sending.
pub(crate) fn non_empty(what: &str, v: &str) -> Result<()> {
    if v.is_empty() {
        Err(CallError::invalid(format!("{what} must not be empty")))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_never_fail() {
        for body in [
            &b""[..],
            b"null",
            b"[]",
            b"{",
            b"{\"error\": 5}",
            b"\xff\xfe",
        ] {
            let e = ApiError::from_response(500, body);
            assert_eq!(e.kind, ApiErrorKind::Server);
            assert_eq!(e.code, None);
            assert_eq!(e.description, None);
        }
        let e = ApiError::from_response(423, br#"{"error":"Locked","description":"in use"}"#);
        assert_eq!(e.kind, ApiErrorKind::Locked);
        assert_eq!(e.code.as_deref(), Some("Locked"));
        assert_eq!(e.description.as_deref(), Some("in use"));
        assert_eq!(
            e.to_string(),
            "server answered 423 (locked), error Locked: in use"
        );
        let e = ApiError::from_response(400, br#"{"message":"storage failed"}"#);
        assert_eq!(e.description.as_deref(), Some("storage failed"));
    }

    #[test]
    fn classification() {
        let cases = [
            (400, ApiErrorKind::BadRequest),
            (401, ApiErrorKind::Unauthorized),
            (403, ApiErrorKind::Forbidden),
            (404, ApiErrorKind::NotFound),
            (409, ApiErrorKind::Conflict),
            (422, ApiErrorKind::Unprocessable),
            (423, ApiErrorKind::Locked),
            (500, ApiErrorKind::Server),
            (503, ApiErrorKind::Server),
            (302, ApiErrorKind::Unexpected),
            (418, ApiErrorKind::Unexpected),
        ];
        for (s, k) in cases {
            assert_eq!(ApiErrorKind::from_status(s), k, "{s}");
        }
    }

    #[test]
    fn config_is_validated() {
        assert!(matches!(
            HttpConfig::new("ftp://x").build(),
            Err(CallError::Config { .. })
        ));
        assert!(matches!(
            HttpConfig::new("not a url").build(),
            Err(CallError::Config { .. })
        ));
        assert!(matches!(
            HttpConfig::new("https://x")
                .ca_bundle_pem(b"x".to_vec())
                .insecure_skip_verify(true)
                .build(),
            Err(CallError::Config { .. })
        ));
        assert!(matches!(
            HttpConfig::new("https://x")
                .ca_bundle_pem(b"garbage".to_vec())
                .build(),
            Err(CallError::Config { .. })
        ));
        assert!(
            HttpConfig::new("https://x")
                .insecure_skip_verify(true)
                .build()
                .is_ok()
        );
    }
}
