//! The OSB client: configuration, request construction per API version, and the mapping of
//! every endpoint's status codes to typed outcomes (spec 2, 3).
//!
//! Every operation is a request description plus a status-code table, run through one shell
//! (`exchange`: version header, identities, auth, the 412 fallback, body parsing, strictness):
//! [`Client::catalog`] (`catalog`), provision/update/deprovision/fetch of instances
//! (`instance`), bind/rotate/unbind/fetch of bindings (`binding`), and last_operation
//! (`last_operation`).

use std::fmt;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use http::Method;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use secrecy::SecretString;
use serde_json::{Map, Value};

use crate::catalog::{Catalog, Plan, Service};
use crate::error::{Error, Result};
use crate::identity::{OriginatingIdentity, RequestIdentity};
use crate::model::LastOperation;
use crate::outcome::{DeleteOutcome, Reply};
use crate::parse;
pub use crate::target::LastOperationQuery;
use crate::version::{ApiVersion, Feature};

mod binding;
mod catalog;
mod exchange;
mod instance;
mod last_operation;

use catalog::CatalogCache;
use exchange::{Call, retry_async_required};

/// The header carrying the API version.
pub const VERSION_HEADER: &str = "X-Broker-API-Version";
/// The header carrying the originating identity.
pub const ORIGINATING_IDENTITY_HEADER: &str = "X-Broker-API-Originating-Identity";
/// The header carrying the request identity.
pub const REQUEST_IDENTITY_HEADER: &str = "X-Broker-API-Request-Identity";

/// Everything except RFC 3986 unreserved characters is percent-encoded (spec 2.3).
const STRICT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes a path segment or query value with the strict set of spec 2.3.
pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, STRICT).to_string()
}

/// Broker authentication. Secrets never appear in `Debug`.
#[derive(Clone)]
pub enum Auth {
    /// HTTP basic auth, sent pre-emptively on every request.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: SecretString,
    },
    /// A bearer token.
    Bearer(SecretString),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"[REDACTED]")
                .finish(),
            Auth::Bearer(_) => f.debug_tuple("Bearer").field(&"[REDACTED]").finish(),
        }
    }
}

/// How strictly broker answers are checked (spec 6.3, 9.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strictness {
    /// Spec violations are errors.
    #[default]
    Strict,
    /// Spec violations are tolerated and listed in [`Reply::violations`].
    Lenient,
}

/// Builds a [`Client`].
///
/// ```no_run
/// # async fn run() -> klutch_osb::Result<()> {
/// use std::time::Duration;
/// use klutch_osb::{ApiVersion, Client};
/// let client = Client::builder("https://broker.example.com")
///     .api_version(ApiVersion::V2_14)
///     .basic_auth("admin", "secret")
///     .timeout(Duration::from_secs(30))
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ClientBuilder {
    base_url: String,
    version: ApiVersion,
    version_header: Option<String>,
    fallback_version_header: Option<String>,
    auth: Option<Auth>,
    timeout: Duration,
    connect_timeout: Duration,
    ca_bundle_pem: Option<Vec<u8>>,
    insecure_skip_verify: bool,
    http: Option<reqwest::Client>,
    request_identity: RequestIdentity,
    strictness: Strictness,
    catalog_cache_ttl: Option<Duration>,
    server_name_override: Option<String>,
    reject_unsupported_fields: bool,
    catalog: Option<Catalog>,
}

impl ClientBuilder {
    /// Sets the API version that drives the feature gates (default 2.17).
    pub fn api_version(mut self, v: ApiVersion) -> Self {
        self.version = v;
        self
    }

    /// Sends this `X-Broker-API-Version` value instead of the gating version (for brokers
    /// that demand an exact older value).
    pub fn version_header(mut self, value: impl Into<String>) -> Self {
        self.version_header = Some(value.into());
        self
    }

    /// On a 412 answer, retries the request once with this version header value.
    pub fn fallback_version_header(mut self, value: impl Into<String>) -> Self {
        self.fallback_version_header = Some(value.into());
        self
    }

    /// HTTP basic auth.
    pub fn basic_auth(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.auth = Some(Auth::Basic {
            username: username.into(),
            password: SecretString::from(password.into()),
        });
        self
    }

    /// Bearer token auth.
    pub fn bearer_auth(mut self, token: impl Into<String>) -> Self {
        self.auth = Some(Auth::Bearer(SecretString::from(token.into())));
        self
    }

    /// Sets or clears the auth.
    pub fn auth(mut self, auth: Option<Auth>) -> Self {
        self.auth = auth;
        self
    }

    /// Default per-request timeout (whole request including the body; default 60 s).
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Connect timeout for the client's own HTTP client (default 30 s).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// Trusts only the certificates in this PEM bundle (replacing the system roots).
    pub fn ca_bundle_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_bundle_pem = Some(pem.into());
        self
    }

    /// Disables server certificate verification (for tests only; exclusive with a CA bundle).
    pub fn insecure_skip_verify(mut self, yes: bool) -> Self {
        self.insecure_skip_verify = yes;
        self
    }

    /// Uses this HTTP client instead of building one (TLS options are then the client's).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// How the request identity header is filled (default: a fresh UUID per request).
    pub fn request_identity(mut self, mode: RequestIdentity) -> Self {
        self.request_identity = mode;
        self
    }

    /// Strict or lenient checking of broker answers (default strict).
    pub fn strictness(mut self, s: Strictness) -> Self {
        self.strictness = s;
        self
    }

    /// Rejects requests that carry a field the configured API version lacks (`context` below
    /// 2.12/2.13, originating identity below 2.13, `maintenance_info` below 2.15, fetch hints
    /// below 2.16) with [`crate::Gate::UnsupportedByVersion`] instead of omitting the field silently
    /// as spec 4.2 prescribes (the default).
    pub fn reject_unsupported_fields(mut self, yes: bool) -> Self {
        self.reject_unsupported_fields = yes;
        self
    }

    /// Verifies the broker's certificate against this name instead of the URL's host (for
    /// brokers reached by IP or through a tunnel). SNI still carries the URL's host.
    pub fn server_name_override(mut self, name: impl Into<String>) -> Self {
        self.server_name_override = Some(name.into());
        self
    }

    /// Caches the catalog for `ttl`; after that it is revalidated with `If-None-Match` /
    /// `If-Modified-Since` (API version 2.16 and later) and a 304 returns the cached catalog.
    pub fn catalog_cache_ttl(mut self, ttl: Duration) -> Self {
        self.catalog_cache_ttl = Some(ttl);
        self
    }

    /// Gives the client the broker's catalog: from then on every call checks the catalog gates
    /// of spec 3.1 (bindable, plan_updateable, allow_context_updates, *_retrievable,
    /// binding_rotatable) for the service and plan ids it is called with, without
    /// [`CallOptions::catalog_entry`]. See also [`Client::set_catalog`].
    pub fn catalog(mut self, catalog: Catalog) -> Self {
        self.catalog = Some(catalog);
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<Client> {
        let base = self.base_url.trim_end_matches('/').to_owned();
        let parsed =
            url::Url::parse(&base).map_err(|e| Error::config(format!("base URL {base:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::config(format!(
                "base URL {base:?} must be http or https"
            )));
        }
        if self.ca_bundle_pem.is_some() && self.insecure_skip_verify {
            return Err(Error::config(
                "a CA bundle and insecure_skip_verify are mutually exclusive",
            ));
        }
        if self.http.is_some()
            && (self.ca_bundle_pem.is_some()
                || self.insecure_skip_verify
                || self.server_name_override.is_some())
        {
            return Err(Error::config(
                "TLS options cannot be applied to a user-supplied reqwest::Client",
            ));
        }
        let http = match self.http {
            Some(c) => c,
            None => {
                let tls = crate::tls::client_config(
                    self.ca_bundle_pem.as_deref(),
                    self.insecure_skip_verify,
                    self.server_name_override.as_deref(),
                )?;
                reqwest::Client::builder()
                    .tls_backend_preconfigured(tls)
                    .connect_timeout(self.connect_timeout)
                    .build()
                    .map_err(|e| Error::config(format!("HTTP client: {e}")))?
            }
        };
        let version_header = self
            .version_header
            .unwrap_or_else(|| self.version.as_str().to_owned());
        Ok(Client {
            inner: Arc::new(Inner {
                base,
                version: self.version,
                version_header,
                fallback_version_header: self.fallback_version_header,
                auth: self.auth,
                timeout: self.timeout,
                http,
                request_identity: self.request_identity,
                strictness: self.strictness,
                reject_unsupported_fields: self.reject_unsupported_fields,
                catalog: RwLock::new(self.catalog.map(Arc::new)),
                catalog_cache: self.catalog_cache_ttl.map(|ttl| CatalogCache {
                    ttl,
                    entry: Mutex::new(None),
                }),
            }),
        })
    }
}

/// Per-call options.
///
/// ```
/// use std::time::Duration;
/// use klutch_osb::{CallOptions, OriginatingIdentity};
/// let opts = CallOptions::new()
///     .asynchronous()
///     .timeout(Duration::from_secs(5))
///     .originating_identity(OriginatingIdentity::kubernetes("alice", "u-1", ["dev"]));
/// assert!(opts.accepts_incomplete);
/// ```
#[derive(Debug, Clone, Default)]
pub struct CallOptions<'a> {
    /// Send `accepts_incomplete=true` (mutating calls only).
    pub accepts_incomplete: bool,
    /// Overrides the client's request timeout.
    pub timeout: Option<Duration>,
    /// Uses this request identity instead of the client's mode.
    pub request_identity: Option<String>,
    /// The user on whose behalf the call is made (user-initiated calls only).
    pub originating_identity: Option<OriginatingIdentity>,
    /// The catalog entry; when set, the gates of spec 3.1 are checked before sending. Not
    /// needed when the client was given the catalog ([`ClientBuilder::catalog`]).
    pub catalog_entry: Option<(&'a Service, &'a Plan)>,
    /// Ignores the `bindable` and `*_retrievable` gates (for brokers that serve anyway).
    pub override_gates: bool,
    /// On 422 `AsyncRequired` to a synchronous request, retry once with `accepts_incomplete`.
    pub retry_async_required: bool,
}

impl<'a> CallOptions<'a> {
    /// Default options: synchronous, client timeout, no identity, the client's catalog gates.
    pub fn new() -> Self {
        Self::default()
    }

    /// Allows asynchronous completion (`accepts_incomplete=true`).
    pub fn asynchronous(mut self) -> Self {
        self.accepts_incomplete = true;
        self
    }

    /// Sets the per-call timeout.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }

    /// Sets the request identity.
    pub fn request_identity(mut self, id: impl Into<String>) -> Self {
        self.request_identity = Some(id.into());
        self
    }

    /// Sets the originating identity.
    pub fn originating_identity(mut self, id: OriginatingIdentity) -> Self {
        self.originating_identity = Some(id);
        self
    }

    /// Enables the catalog gates for this service and plan.
    pub fn catalog_entry(mut self, service: &'a Service, plan: &'a Plan) -> Self {
        self.catalog_entry = Some((service, plan));
        self
    }

    /// Ignores the `bindable` / `*_retrievable` gates.
    pub fn override_gates(mut self) -> Self {
        self.override_gates = true;
        self
    }

    /// Retries once asynchronously after `AsyncRequired`.
    pub fn retry_async_required(mut self) -> Self {
        self.retry_async_required = true;
        self
    }
}

/// A last_operation 200 plus its `Retry-After`.
#[derive(Debug, Clone, PartialEq)]
pub struct LastOperationReply {
    /// The body.
    pub last_operation: LastOperation,
    /// The parsed `Retry-After` header, if valid.
    pub retry_after: Option<Duration>,
}

/// An Open Service Broker API client. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    base: String,
    version: ApiVersion,
    version_header: String,
    fallback_version_header: Option<String>,
    auth: Option<Auth>,
    timeout: Duration,
    http: reqwest::Client,
    request_identity: RequestIdentity,
    strictness: Strictness,
    reject_unsupported_fields: bool,
    /// The catalog whose gates apply by default ([`ClientBuilder::catalog`]).
    catalog: RwLock<Option<Arc<Catalog>>>,
    catalog_cache: Option<CatalogCache>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.inner.base)
            .field("version", &self.inner.version)
            .field("version_header", &self.inner.version_header)
            .field("auth", &self.inner.auth)
            .field("timeout", &self.inner.timeout)
            .field("strictness", &self.inner.strictness)
            .field("gating_catalog", &self.gating_catalog().is_some())
            .finish_non_exhaustive()
    }
}

/// The catalog entry whose gates apply to a call: the caller's
/// [`CallOptions::catalog_entry`], else the entry of the client's catalog for these ids.
pub(super) fn gate_entry<'x>(
    opts: &CallOptions<'x>,
    held: Option<&'x Catalog>,
    service_id: Option<&str>,
    plan_id: Option<&str>,
) -> Option<(&'x Service, &'x Plan)> {
    if opts.catalog_entry.is_some() {
        return opts.catalog_entry;
    }
    let entry = held?.plan_by_id(service_id, plan_id?);
    if entry.is_none() {
        tracing::debug!(
            ?service_id,
            ?plan_id,
            "plan not in the client's catalog; catalog gates not checked"
        );
    }
    entry
}

/// The service whose service-level gates (`*_retrievable`, `allow_context_updates`) apply.
pub(super) fn gate_service<'x>(
    opts: &CallOptions<'x>,
    held: Option<&'x Catalog>,
    service_id: Option<&str>,
    plan_id: Option<&str>,
) -> Option<&'x Service> {
    if let Some((s, _)) = gate_entry(opts, held, service_id, plan_id) {
        return Some(s);
    }
    held?.service_by_id(service_id?)
}

fn non_empty(what: &str, v: &str) -> Result<()> {
    if v.is_empty() {
        Err(Error::invalid(format!("{what} must not be empty")))
    } else {
        Ok(())
    }
}

fn put_str(m: &mut Map<String, Value>, k: &str, v: &str) {
    m.insert(k.to_owned(), Value::String(v.to_owned()));
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| Error::invalid(format!("request not serialisable: {e}")))
}

impl Client {
    /// Starts building a client for a broker base URL.
    pub fn builder(base_url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.into(),
            version: ApiVersion::LATEST,
            version_header: None,
            fallback_version_header: None,
            auth: None,
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(30),
            ca_bundle_pem: None,
            insecure_skip_verify: false,
            http: None,
            request_identity: RequestIdentity::Auto,
            strictness: Strictness::Strict,
            catalog_cache_ttl: None,
            server_name_override: None,
            reject_unsupported_fields: false,
            catalog: None,
        }
    }

    /// Gives this client (and its clones) the broker's catalog, whose gates then apply to every
    /// call by default (see [`ClientBuilder::catalog`]). A [`CallOptions::catalog_entry`] still
    /// takes precedence for its call; [`CallOptions::override_gates`] still overrides.
    pub fn set_catalog(&self, catalog: Catalog) {
        *self
            .inner
            .catalog
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(catalog));
    }

    /// The catalog given with [`ClientBuilder::catalog`] or [`Self::set_catalog`].
    pub fn gating_catalog(&self) -> Option<Arc<Catalog>> {
        self.inner
            .catalog
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The configured API version.
    pub fn api_version(&self) -> ApiVersion {
        self.inner.version
    }

    /// The configured strictness.
    pub fn strictness(&self) -> Strictness {
        self.inner.strictness
    }

    /// The base URL (without a trailing slash).
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// Whether a version-gated field may be sent: `Ok(false)` means "omit" (spec 4.2); with
    /// `reject_unsupported_fields` it is an error instead.
    fn field(&self, f: Feature) -> Result<bool> {
        match self.inner.version.require(f) {
            Ok(()) => Ok(true),
            Err(gate) if self.inner.reject_unsupported_fields => Err(gate.into()),
            Err(_) => {
                tracing::debug!(
                    feature = f.name(),
                    "omitting a field the configured OSB API version lacks"
                );
                Ok(false)
            }
        }
    }

    fn instance_path(&self, instance_id: &str) -> Result<String> {
        non_empty("instance_id", instance_id)?;
        Ok(format!("/v2/service_instances/{}", encode(instance_id)))
    }

    fn binding_path(&self, instance_id: &str, binding_id: &str) -> Result<String> {
        non_empty("binding_id", binding_id)?;
        Ok(format!(
            "{}/service_bindings/{}",
            self.instance_path(instance_id)?,
            encode(binding_id)
        ))
    }

    fn origin<'o>(
        &self,
        opts: &'o CallOptions<'_>,
        context: Option<&crate::Context>,
    ) -> Result<Option<&'o OriginatingIdentity>> {
        let Some(id) = opts.originating_identity.as_ref() else {
            return Ok(None);
        };
        if !self.field(Feature::ContextOnBindAndOriginatingIdentity)? {
            return Ok(None);
        }
        if let Some(p) = context.and_then(|c| c.platform())
            && p != id.platform()
        {
            return Err(Error::invalid(format!(
                "context platform {p:?} differs from the originating identity platform {:?}",
                id.platform()
            )));
        }
        Ok(Some(id))
    }

    fn hints<'s>(
        &self,
        service_id: Option<&'s str>,
        plan_id: Option<&'s str>,
    ) -> Result<Vec<(&'static str, &'s str)>> {
        let mut q = vec![];
        if let Some(s) = service_id.filter(|s| !s.is_empty()) {
            q.push(("service_id", s));
        }
        if let Some(p) = plan_id.filter(|p| !p.is_empty()) {
            q.push(("plan_id", p));
        }
        if !q.is_empty() && !self.field(Feature::FetchHints)? {
            q.clear();
        }
        Ok(q)
    }

    /// The shared shell of deprovision and unbind (`binding`): ids, the async-binding gate, the
    /// `AsyncRequired` retry.
    async fn delete(
        &self,
        path: String,
        service_id: &str,
        plan_id: &str,
        opts: &CallOptions<'_>,
        binding: bool,
    ) -> Result<Reply<DeleteOutcome>> {
        non_empty("service_id", service_id)?;
        non_empty("plan_id", plan_id)?;
        if binding && opts.accepts_incomplete {
            self.inner.version.require(Feature::AsyncBinding)?;
        }
        let version = &self.inner.version;
        retry_async_required(
            opts,
            || {
                if binding {
                    version.require(Feature::AsyncBinding)?;
                }
                Ok(())
            },
            |accepts| self.delete_once(&path, service_id, plan_id, opts, accepts),
        )
        .await
    }

    async fn delete_once(
        &self,
        path: &str,
        service_id: &str,
        plan_id: &str,
        opts: &CallOptions<'_>,
        accepts: bool,
    ) -> Result<Reply<DeleteOutcome>> {
        let call = Call::new(Method::DELETE, path.to_owned())
            .query("service_id", service_id)
            .query("plan_id", plan_id)
            .accepts_incomplete(accepts)
            .origin(self.origin(opts, None)?);
        self.exchange(&call, opts, |a| {
            Ok(Some(match a.status() {
                200 => DeleteOutcome::Deleted,
                410 => DeleteOutcome::Gone,
                202 => {
                    let b = a.parse(parse::operation_body)?;
                    a.solicited(accepts)?;
                    DeleteOutcome::InProgress {
                        operation: b.operation,
                    }
                }
                _ => return Ok(None),
            }))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_encoding() {
        assert_eq!(
            encode("a+b&c=d#e%f g/h~i-j.k_l"),
            "a%2Bb%26c%3Dd%23e%25f%20g%2Fh~i-j.k_l"
        );
        assert_eq!(encode("ü"), "%C3%BC");
    }

    #[test]
    fn builder_rejects_bad_config() {
        assert!(matches!(
            Client::builder("ftp://x").build(),
            Err(Error::Config { .. })
        ));
        assert!(matches!(
            Client::builder("not a url").build(),
            Err(Error::Config { .. })
        ));
        assert!(matches!(
            Client::builder("https://x")
                .ca_bundle_pem(b"x".to_vec())
                .insecure_skip_verify(true)
                .build(),
            Err(Error::Config { .. })
        ));
        assert!(matches!(
            Client::builder("https://x")
                .ca_bundle_pem(b"garbage".to_vec())
                .build(),
            Err(Error::Config { .. })
        ));
    }

    #[test]
    fn debug_hides_secrets() {
        let c = Client::builder("http://x/")
            .basic_auth("admin", "hunter2")
            .build()
            .unwrap();
        let d = format!("{c:?}");
        assert!(d.contains("admin") && !d.contains("hunter2"), "{d}");
        let c = Client::builder("http://x/")
            .bearer_auth("tok3n")
            .build()
            .unwrap();
        assert!(!format!("{c:?}").contains("tok3n"));
        assert_eq!(c.base_url(), "http://x");
    }
}
