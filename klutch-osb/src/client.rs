//! The OSB client: configuration, request construction per API version, and the mapping of
//! every endpoint's status codes to typed outcomes (spec 2, 3).

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http::{HeaderMap, Method, StatusCode};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use crate::catalog::{Catalog, Plan, Service};
use crate::error::{BrokerError, Error, Gate, ProtocolViolation, Result};
use crate::identity::{OriginatingIdentity, RequestIdentity};
use crate::model::{
    BindRequest, BindingBody, InstanceBody, LastOperation, OperationKey, ProvisionRequest,
    RotateRequest, UpdateRequest,
};
use crate::outcome::{
    AsyncOperation, BindOutcome, DeleteOutcome, ProvisionOutcome, Reply, UpdateOutcome,
};
use crate::parse;
use crate::version::{ApiVersion, Feature};

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
    /// below 2.16) with [`Gate::UnsupportedByVersion`] instead of omitting the field silently
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
    /// The catalog entry; when set, the gates of spec 3.1 are checked before sending.
    pub catalog_entry: Option<(&'a Service, &'a Plan)>,
    /// Ignores the `bindable` and `*_retrievable` gates (for brokers that serve anyway).
    pub override_gates: bool,
    /// On 422 `AsyncRequired` to a synchronous request, retry once with `accepts_incomplete`.
    pub retry_async_required: bool,
}

impl<'a> CallOptions<'a> {
    /// Default options: synchronous, client timeout, no identity, no gates.
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

/// Which last_operation a poll targets, and the query it sends (spec 7.1).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LastOperationQuery {
    /// `service_id` (always sent when known).
    pub service_id: Option<String>,
    /// `plan_id` (after a plan change: the previous plan).
    pub plan_id: Option<String>,
    /// The `operation` key from the 202.
    pub operation: Option<OperationKey>,
}

/// A last_operation 200 plus its `Retry-After`.
#[derive(Debug, Clone, PartialEq)]
pub struct LastOperationReply {
    /// The body.
    pub last_operation: LastOperation,
    /// The parsed `Retry-After` header, if valid.
    pub retry_after: Option<Duration>,
}

/// A raw broker response (internal and for the poller).
#[derive(Debug)]
pub(crate) struct RawResponse {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: bytes::Bytes,
    pub(crate) request_identity: Option<String>,
}

impl RawResponse {
    pub(crate) fn error(&self) -> Error {
        BrokerError::from_response(self.status, &self.body, self.request_identity.clone()).into()
    }

    pub(crate) fn retry_after(&self) -> Option<Duration> {
        let v = self.headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
        parse::retry_after(v, SystemTime::now())
    }

    fn reply<T>(&self, outcome: T, violations: Vec<ProtocolViolation>) -> Reply<T> {
        Reply {
            outcome,
            status: self.status,
            request_identity: self.request_identity.clone(),
            violations,
        }
    }

    fn decode_error(&self, e: impl fmt::Display) -> Error {
        Error::decode(self.status.as_u16(), e, &self.body)
    }
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
    catalog_cache: Option<CatalogCache>,
}

struct CatalogCache {
    ttl: Duration,
    entry: Mutex<Option<CachedCatalog>>,
}

#[derive(Clone)]
struct CachedCatalog {
    catalog: Catalog,
    etag: Option<String>,
    last_modified: Option<String>,
    fetched: std::time::Instant,
}

impl CatalogCache {
    fn get(&self) -> Option<CachedCatalog> {
        self.entry.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn put(&self, c: CachedCatalog) {
        *self.entry.lock().unwrap_or_else(|p| p.into_inner()) = Some(c);
    }
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
            .finish_non_exhaustive()
    }
}

/// Internal description of one request.
struct Call<'a> {
    method: Method,
    path: String,
    query: Vec<(&'static str, &'a str)>,
    body: Option<Value>,
    origin: Option<&'a OriginatingIdentity>,
}

fn non_empty(what: &str, v: &str) -> Result<()> {
    if v.is_empty() {
        Err(Error::invalid(format!("{what} must not be empty")))
    } else {
        Ok(())
    }
}

fn obj() -> Map<String, Value> {
    Map::new()
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
        }
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

    async fn send(&self, call: &Call<'_>, opts: &CallOptions<'_>) -> Result<RawResponse> {
        self.send_extra(call, opts, &[]).await
    }

    async fn send_extra(
        &self,
        call: &Call<'_>,
        opts: &CallOptions<'_>,
        extra: &[(&str, &str)],
    ) -> Result<RawResponse> {
        let first = self
            .send_with_version(call, opts, &self.inner.version_header, extra)
            .await?;
        if first.status == StatusCode::PRECONDITION_FAILED
            && let Some(fallback) = &self.inner.fallback_version_header
            && fallback != &self.inner.version_header
        {
            tracing::info!(fallback = %fallback, "broker rejected the version header with 412; retrying once");
            return self.send_with_version(call, opts, fallback, extra).await;
        }
        Ok(first)
    }

    async fn send_with_version(
        &self,
        call: &Call<'_>,
        opts: &CallOptions<'_>,
        version: &str,
        extra: &[(&str, &str)],
    ) -> Result<RawResponse> {
        let mut url = format!("{}{}", self.inner.base, call.path);
        for (i, (k, v)) in call.query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(k);
            url.push('=');
            url.push_str(&encode(v));
        }
        let mut rb = self
            .inner
            .http
            .request(call.method.clone(), &url)
            .timeout(opts.timeout.unwrap_or(self.inner.timeout))
            .header(VERSION_HEADER, version)
            .header(http::header::ACCEPT, "application/json");
        match &self.inner.auth {
            Some(Auth::Basic { username, password }) => {
                rb = rb.basic_auth(username, Some(password.expose_secret()))
            }
            Some(Auth::Bearer(t)) => rb = rb.bearer_auth(t.expose_secret()),
            None => {}
        }
        if self.inner.version.supports(Feature::RequestIdentity) {
            let id = match (&opts.request_identity, &self.inner.request_identity) {
                (Some(id), _) => Some(id.clone()),
                (None, RequestIdentity::Auto) => Some(uuid::Uuid::new_v4().to_string()),
                (None, RequestIdentity::Fixed(id)) => Some(id.clone()),
                (None, RequestIdentity::Off) => None,
            };
            if let Some(id) = id.filter(|i| !i.is_empty()) {
                rb = rb.header(REQUEST_IDENTITY_HEADER, id);
            }
        }
        for (k, v) in extra {
            rb = rb.header(*k, *v);
        }
        if let Some(origin) = call.origin {
            rb = rb.header(ORIGINATING_IDENTITY_HEADER, origin.header_value()?);
        }
        if let Some(body) = &call.body {
            let bytes = serde_json::to_vec(body)
                .map_err(|e| Error::invalid(format!("request body: {e}")))?;
            rb = rb
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(bytes);
        }
        tracing::debug!(method = %call.method, path = %call.path, "OSB request");
        let resp = rb.send().await.map_err(transport)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(transport)?;
        let request_identity = headers
            .get(REQUEST_IDENTITY_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        tracing::debug!(method = %call.method, path = %call.path, status = status.as_u16(), "OSB response");
        Ok(RawResponse {
            status,
            headers,
            body,
            request_identity,
        })
    }

    /// `GET /v2/catalog`.
    ///
    /// ```no_run
    /// # async fn run(client: klutch_osb::Client) -> klutch_osb::Result<()> {
    /// let catalog = client.catalog().await?.outcome;
    /// for service in &catalog.services {
    ///     println!("{}: {} plans", service.name, service.plans.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn catalog(&self) -> Result<Reply<Catalog>> {
        self.catalog_with(&CallOptions::new()).await
    }

    /// `GET /v2/catalog` with per-call options (no originating identity is ever sent).
    pub async fn catalog_with(&self, opts: &CallOptions<'_>) -> Result<Reply<Catalog>> {
        let call = Call {
            method: Method::GET,
            path: "/v2/catalog".into(),
            query: vec![],
            body: None,
            origin: None,
        };
        let cache = self.inner.catalog_cache.as_ref();
        let cached = cache.and_then(CatalogCache::get);
        if let (Some(cache), Some(c)) = (cache, &cached)
            && c.fetched.elapsed() < cache.ttl
        {
            return Ok(Reply {
                outcome: c.catalog.clone(),
                status: StatusCode::OK,
                request_identity: None,
                violations: vec![],
            });
        }
        let mut extra = vec![];
        if let Some(c) = &cached
            && self.inner.version.supports(Feature::ConditionalCatalog)
        {
            if let Some(e) = &c.etag {
                extra.push(("If-None-Match", e.as_str()));
            }
            if let Some(m) = &c.last_modified {
                extra.push(("If-Modified-Since", m.as_str()));
            }
        }
        let raw = self.send_extra(&call, opts, &extra).await?;
        match raw.status.as_u16() {
            200 => {
                let catalog = parse::catalog(&raw.body).map_err(|e| raw.decode_error(e))?;
                if let Some(cache) = cache {
                    let header = |h: http::HeaderName| {
                        raw.headers
                            .get(h)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned)
                    };
                    cache.put(CachedCatalog {
                        catalog: catalog.clone(),
                        etag: header(http::header::ETAG),
                        last_modified: header(http::header::LAST_MODIFIED),
                        fetched: std::time::Instant::now(),
                    });
                }
                Ok(raw.reply(catalog, vec![]))
            }
            304 if !extra.is_empty() => {
                let Some(mut c) = cached else {
                    return Err(raw.error());
                };
                c.fetched = std::time::Instant::now();
                let catalog = c.catalog.clone();
                if let Some(cache) = cache {
                    cache.put(c);
                }
                Ok(raw.reply(catalog, vec![]))
            }
            _ => Err(raw.error()),
        }
    }

    /// `PUT /v2/service_instances/{instance_id}`: provision.
    ///
    /// ```no_run
    /// # async fn run(client: klutch_osb::Client) -> klutch_osb::Result<()> {
    /// use klutch_osb::{CallOptions, Context, ProvisionOutcome, ProvisionRequest};
    /// let req = ProvisionRequest::new("svc-id", "plan-id").context(Context::kubernetes("ns", "cluster"));
    /// match client.provision("instance-1", &req, &CallOptions::new().asynchronous()).await?.outcome {
    ///     ProvisionOutcome::Created { .. } | ProvisionOutcome::AlreadyExists { .. } => println!("ready"),
    ///     ProvisionOutcome::InProgress(op) => println!("started, poll with {:?}", op.operation),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn provision(
        &self,
        instance_id: &str,
        req: &ProvisionRequest,
        opts: &CallOptions<'_>,
    ) -> Result<Reply<ProvisionOutcome>> {
        retry_async_required(
            opts,
            || Ok(()),
            |accepts| self.provision_once(instance_id, req, opts, accepts),
        )
        .await
    }

    async fn provision_once(
        &self,
        instance_id: &str,
        req: &ProvisionRequest,
        opts: &CallOptions<'_>,
        accepts: bool,
    ) -> Result<Reply<ProvisionOutcome>> {
        let path = self.instance_path(instance_id)?;
        non_empty("service_id", &req.service_id)?;
        non_empty("plan_id", &req.plan_id)?;
        let synthesised = req.context.as_ref().and_then(|c| c.guids());
        let org = req
            .organization_guid
            .clone()
            .or_else(|| synthesised.as_ref().map(|g| g.0.clone()));
        let space = req
            .space_guid
            .clone()
            .or_else(|| synthesised.as_ref().map(|g| g.1.clone()));
        let (Some(org), Some(space)) = (
            org.filter(|s| !s.is_empty()),
            space.filter(|s| !s.is_empty()),
        ) else {
            return Err(Error::invalid(
                "organization_guid and space_guid are required (set them or pass a cloudfoundry/kubernetes context)",
            ));
        };
        let mut body = obj();
        put_str(&mut body, "service_id", &req.service_id);
        put_str(&mut body, "plan_id", &req.plan_id);
        put_str(&mut body, "organization_guid", &org);
        put_str(&mut body, "space_guid", &space);
        if let Some(c) = &req.context
            && self.field(Feature::ContextOnInstance)?
        {
            body.insert("context".into(), to_value(c)?);
        }
        if let Some(p) = &req.parameters {
            body.insert("parameters".into(), Value::Object(p.clone()));
        }
        if let Some(mi) = &req.maintenance_info
            && self.field(Feature::MaintenanceInfo)?
        {
            body.insert("maintenance_info".into(), to_value(mi)?);
        }
        let origin = self.origin(opts, req.context.as_ref())?;
        let call = Call {
            method: Method::PUT,
            path,
            query: if accepts {
                vec![("accepts_incomplete", "true")]
            } else {
                vec![]
            },
            body: Some(Value::Object(body)),
            origin,
        };
        let raw = self.send(&call, opts).await?;
        let status = raw.status.as_u16();
        match status {
            200..=202 => {
                let b = parse::operation_body(&raw.body).map_err(|e| raw.decode_error(e))?;
                let mut violations = vec![];
                let outcome = match status {
                    200 => ProvisionOutcome::AlreadyExists {
                        dashboard_url: b.dashboard_url,
                        metadata: b.metadata,
                    },
                    201 => ProvisionOutcome::Created {
                        dashboard_url: b.dashboard_url,
                        metadata: b.metadata,
                    },
                    _ => {
                        self.check_solicited(accepts, status, &mut violations)?;
                        ProvisionOutcome::InProgress(AsyncOperation {
                            operation: b.operation,
                            dashboard_url: b.dashboard_url,
                            metadata: b.metadata,
                        })
                    }
                };
                Ok(raw.reply(outcome, violations))
            }
            _ => Err(raw.error()),
        }
    }

    fn check_solicited(
        &self,
        accepts: bool,
        status: u16,
        violations: &mut Vec<ProtocolViolation>,
    ) -> Result<()> {
        if !accepts {
            self.violation(status, ProtocolViolation::UnsolicitedAsync, violations)?;
        }
        Ok(())
    }

    fn violation(
        &self,
        status: u16,
        v: ProtocolViolation,
        violations: &mut Vec<ProtocolViolation>,
    ) -> Result<()> {
        match self.inner.strictness {
            Strictness::Strict => Err(Error::Protocol {
                status,
                violation: v,
            }),
            Strictness::Lenient => {
                tracing::warn!(violation = %v, "tolerating an OSB spec violation");
                violations.push(v);
                Ok(())
            }
        }
    }

    /// `PATCH /v2/service_instances/{instance_id}`: update.
    ///
    /// ```no_run
    /// # async fn run(client: klutch_osb::Client) -> klutch_osb::Result<()> {
    /// use klutch_osb::{CallOptions, UpdateRequest};
    /// let req = UpdateRequest::new("svc-id").plan("bigger-plan-id");
    /// let reply = client.update("instance-1", &req, &CallOptions::new().asynchronous()).await?;
    /// println!("{:?}", reply.outcome);
    /// # Ok(()) }
    /// ```
    pub async fn update(
        &self,
        instance_id: &str,
        req: &UpdateRequest,
        opts: &CallOptions<'_>,
    ) -> Result<Reply<UpdateOutcome>> {
        retry_async_required(
            opts,
            || Ok(()),
            |accepts| self.update_once(instance_id, req, opts, accepts),
        )
        .await
    }

    async fn update_once(
        &self,
        instance_id: &str,
        req: &UpdateRequest,
        opts: &CallOptions<'_>,
        accepts: bool,
    ) -> Result<Reply<UpdateOutcome>> {
        let path = self.instance_path(instance_id)?;
        non_empty("service_id", &req.service_id)?;
        if let Some(p) = &req.plan_id {
            non_empty("plan_id", p)?;
        }
        if let Some((service, plan)) = opts.catalog_entry {
            if let Some(new_plan) = &req.plan_id
                && new_plan != &plan.id
                && !service.effective_plan_updateable(plan)
            {
                return Err(Gate::PlanNotUpdateable.into());
            }
            if req.is_context_only() && !service.allow_context_updates.unwrap_or(false) {
                return Err(Gate::ContextUpdatesNotAllowed.into());
            }
        }
        let mut body = obj();
        put_str(&mut body, "service_id", &req.service_id);
        if let Some(p) = &req.plan_id {
            put_str(&mut body, "plan_id", p);
        }
        if let Some(p) = &req.parameters {
            body.insert("parameters".into(), Value::Object(p.clone()));
        }
        if let Some(c) = &req.context
            && self.field(Feature::ContextOnInstance)?
        {
            body.insert("context".into(), to_value(c)?);
        }
        if let Some(mi) = &req.maintenance_info
            && self.field(Feature::MaintenanceInfo)?
        {
            body.insert("maintenance_info".into(), to_value(mi)?);
        }
        if let Some(pv) = &req.previous_values {
            let mut pv = pv.clone();
            if pv.maintenance_info.is_some() && !self.field(Feature::MaintenanceInfo)? {
                pv.maintenance_info = None;
            }
            body.insert("previous_values".into(), to_value(&pv)?);
        }
        let origin = self.origin(opts, req.context.as_ref())?;
        let call = Call {
            method: Method::PATCH,
            path,
            query: if accepts {
                vec![("accepts_incomplete", "true")]
            } else {
                vec![]
            },
            body: Some(Value::Object(body)),
            origin,
        };
        let raw = self.send(&call, opts).await?;
        let status = raw.status.as_u16();
        match status {
            200 | 202 => {
                let b = parse::operation_body(&raw.body).map_err(|e| raw.decode_error(e))?;
                let mut violations = vec![];
                let outcome = if status == 200 {
                    UpdateOutcome::Updated {
                        dashboard_url: b.dashboard_url,
                        metadata: b.metadata,
                    }
                } else {
                    self.check_solicited(accepts, status, &mut violations)?;
                    UpdateOutcome::InProgress(AsyncOperation {
                        operation: b.operation,
                        dashboard_url: b.dashboard_url,
                        metadata: b.metadata,
                    })
                };
                Ok(raw.reply(outcome, violations))
            }
            _ => Err(raw.error()),
        }
    }

    /// `DELETE /v2/service_instances/{instance_id}`: deprovision.
    ///
    /// ```no_run
    /// # async fn run(client: klutch_osb::Client) -> klutch_osb::Result<()> {
    /// use klutch_osb::{CallOptions, DeleteOutcome};
    /// let reply = client.deprovision("instance-1", "svc-id", "plan-id", &CallOptions::new().asynchronous()).await?;
    /// if let DeleteOutcome::Deleted | DeleteOutcome::Gone = reply.outcome { println!("gone") }
    /// # Ok(()) }
    /// ```
    pub async fn deprovision(
        &self,
        instance_id: &str,
        service_id: &str,
        plan_id: &str,
        opts: &CallOptions<'_>,
    ) -> Result<Reply<DeleteOutcome>> {
        let path = self.instance_path(instance_id)?;
        self.delete(path, service_id, plan_id, opts, false).await
    }

    /// `DELETE .../service_bindings/{binding_id}`: unbind.
    ///
    /// ```no_run
    /// # async fn run(client: klutch_osb::Client) -> klutch_osb::Result<()> {
    /// use klutch_osb::CallOptions;
    /// let reply = client.unbind("instance-1", "binding-1", "svc-id", "plan-id", &CallOptions::new()).await?;
    /// println!("{:?}", reply.outcome);
    /// # Ok(()) }
    /// ```
    pub async fn unbind(
        &self,
        instance_id: &str,
        binding_id: &str,
        service_id: &str,
        plan_id: &str,
        opts: &CallOptions<'_>,
    ) -> Result<Reply<DeleteOutcome>> {
        let path = self.binding_path(instance_id, binding_id)?;
        self.delete(path, service_id, plan_id, opts, true).await
    }

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
        let mut query = vec![("service_id", service_id), ("plan_id", plan_id)];
        if accepts {
            query.push(("accepts_incomplete", "true"));
        }
        let origin = self.origin(opts, None)?;
        let call = Call {
            method: Method::DELETE,
            path: path.to_owned(),
            query,
            body: None,
            origin,
        };
        let raw = self.send(&call, opts).await?;
        let status = raw.status.as_u16();
        match status {
            200 => Ok(raw.reply(DeleteOutcome::Deleted, vec![])),
            410 => Ok(raw.reply(DeleteOutcome::Gone, vec![])),
            202 => {
                let b = parse::operation_body(&raw.body).map_err(|e| raw.decode_error(e))?;
                let mut violations = vec![];
                self.check_solicited(accepts, status, &mut violations)?;
                Ok(raw.reply(
                    DeleteOutcome::InProgress {
                        operation: b.operation,
                    },
                    violations,
                ))
            }
            _ => Err(raw.error()),
        }
    }

    /// `GET /v2/service_instances/{instance_id}` (2.14): fetch an instance. `service_id` and
    /// `plan_id` are optional hints (2.16).
    ///
    /// ```no_run
    /// # async fn run(client: klutch_osb::Client) -> klutch_osb::Result<()> {
    /// use klutch_osb::CallOptions;
    /// let instance = client.fetch_instance("instance-1", None, None, &CallOptions::new()).await?.outcome;
    /// println!("{:?}", instance.parameters);
    /// # Ok(()) }
    /// ```
    pub async fn fetch_instance(
        &self,
        instance_id: &str,
        service_id: Option<&str>,
        plan_id: Option<&str>,
        opts: &CallOptions<'_>,
    ) -> Result<Reply<InstanceBody>> {
        self.inner.version.require(Feature::FetchInstance)?;
        if let Some((service, _)) = opts.catalog_entry
            && !opts.override_gates
            && !service.instances_retrievable.unwrap_or(false)
        {
            return Err(Gate::NotRetrievable.into());
        }
        let path = self.instance_path(instance_id)?;
        let query = self.hints(service_id, plan_id)?;
        let origin = self.origin(opts, None)?;
        let call = Call {
            method: Method::GET,
            path,
            query,
            body: None,
            origin,
        };
        let raw = self.send(&call, opts).await?;
        match raw.status.as_u16() {
            200 => {
                let b = parse::instance(&raw.body).map_err(|e| raw.decode_error(e))?;
                Ok(raw.reply(b, vec![]))
            }
            _ => Err(raw.error()),
        }
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

    /// `PUT .../service_bindings/{binding_id}`: bind.
    ///
    /// ```no_run
    /// # async fn run(client: klutch_osb::Client) -> klutch_osb::Result<()> {
    /// use klutch_osb::{BindOutcome, BindRequest, CallOptions};
    /// let req = BindRequest::new("svc-id", "plan-id");
    /// if let BindOutcome::Created(binding) = client.bind("instance-1", "binding-1", &req, &CallOptions::new()).await?.outcome {
    ///     let keys: Vec<_> = binding.credentials.map(|c| c.expose().keys().cloned().collect()).unwrap_or_default();
    ///     println!("credential keys: {keys:?}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn bind(
        &self,
        instance_id: &str,
        binding_id: &str,
        req: &BindRequest,
        opts: &CallOptions<'_>,
    ) -> Result<Reply<BindOutcome>> {
        if let Some((service, plan)) = opts.catalog_entry
            && !opts.override_gates
            && !service.effective_bindable(plan)
        {
            return Err(Gate::NotBindable.into());
        }
        retry_async_required(
            opts,
            || Ok(()),
            |accepts| self.bind_once(instance_id, binding_id, req, opts, accepts),
        )
        .await
    }

    async fn bind_once(
        &self,
        instance_id: &str,
        binding_id: &str,
        req: &BindRequest,
        opts: &CallOptions<'_>,
        accepts: bool,
    ) -> Result<Reply<BindOutcome>> {
        let path = self.binding_path(instance_id, binding_id)?;
        non_empty("service_id", &req.service_id)?;
        non_empty("plan_id", &req.plan_id)?;
        if accepts {
            self.inner.version.require(Feature::AsyncBinding)?;
        }
        let mut body = obj();
        put_str(&mut body, "service_id", &req.service_id);
        put_str(&mut body, "plan_id", &req.plan_id);
        if let Some(r) = &req.bind_resource {
            body.insert("bind_resource".into(), to_value(r)?);
            if req.send_deprecated_app_guid
                && let Some(app) = &r.app_guid
            {
                put_str(&mut body, "app_guid", app);
            }
        }
        if let Some(c) = &req.context
            && self.field(Feature::ContextOnBindAndOriginatingIdentity)?
        {
            body.insert("context".into(), to_value(c)?);
        }
        if let Some(p) = &req.parameters {
            body.insert("parameters".into(), Value::Object(p.clone()));
        }
        let origin = self.origin(opts, req.context.as_ref())?;
        let call = Call {
            method: Method::PUT,
            path,
            query: if accepts {
                vec![("accepts_incomplete", "true")]
            } else {
                vec![]
            },
            body: Some(Value::Object(body)),
            origin,
        };
        let raw = self.send(&call, opts).await?;
        self.map_bind(raw, accepts, opts)
    }

    fn map_bind(
        &self,
        raw: RawResponse,
        accepts: bool,
        opts: &CallOptions<'_>,
    ) -> Result<Reply<BindOutcome>> {
        let status = raw.status.as_u16();
        let mut violations = vec![];
        match status {
            200 | 201 => {
                let b: BindingBody = parse::binding(&raw.body).map_err(|e| raw.decode_error(e))?;
                if let Some((service, _)) = opts.catalog_entry {
                    if b.syslog_drain_url.is_some() && !service.requires("syslog_drain") {
                        self.violation(
                            status,
                            ProtocolViolation::UnexpectedSyslogDrain,
                            &mut violations,
                        )?;
                    }
                    if b.route_service_url.is_some() && !service.requires("route_forwarding") {
                        self.violation(
                            status,
                            ProtocolViolation::UnexpectedRouteService,
                            &mut violations,
                        )?;
                    }
                    if !b.volume_mounts.is_empty() && !service.requires("volume_mount") {
                        self.violation(
                            status,
                            ProtocolViolation::UnexpectedVolumeMounts,
                            &mut violations,
                        )?;
                    }
                }
                let outcome = if status == 200 {
                    BindOutcome::AlreadyExists(b)
                } else {
                    BindOutcome::Created(b)
                };
                Ok(raw.reply(outcome, violations))
            }
            202 => {
                let b = parse::operation_body(&raw.body).map_err(|e| raw.decode_error(e))?;
                self.check_solicited(accepts, status, &mut violations)?;
                if b.credentials {
                    self.violation(
                        status,
                        ProtocolViolation::CredentialsInAsyncBind,
                        &mut violations,
                    )?;
                }
                Ok(raw.reply(
                    BindOutcome::InProgress {
                        operation: b.operation,
                    },
                    violations,
                ))
            }
            _ => Err(raw.error()),
        }
    }

    /// Binding rotation (2.17): `PUT .../service_bindings/{binding_id}` with
    /// `predecessor_binding_id`; `binding_id` is the new binding.
    ///
    /// ```no_run
    /// # async fn run(client: klutch_osb::Client) -> klutch_osb::Result<()> {
    /// use klutch_osb::{CallOptions, RotateRequest};
    /// let req = RotateRequest { service_id: "svc-id".into(), plan_id: "plan-id".into(), predecessor_binding_id: "binding-1".into() };
    /// let reply = client.rotate_binding("instance-1", "binding-2", &req, &CallOptions::new()).await?;
    /// println!("{:?}", reply.outcome);
    /// # Ok(()) }
    /// ```
    pub async fn rotate_binding(
        &self,
        instance_id: &str,
        binding_id: &str,
        req: &RotateRequest,
        opts: &CallOptions<'_>,
    ) -> Result<Reply<BindOutcome>> {
        self.inner.version.require(Feature::BindingRotation)?;
        if let Some((_, plan)) = opts.catalog_entry
            && !opts.override_gates
            && !plan.is_binding_rotatable()
        {
            return Err(Gate::NotRotatable.into());
        }
        let path = self.binding_path(instance_id, binding_id)?;
        non_empty("predecessor_binding_id", &req.predecessor_binding_id)?;
        non_empty("service_id", &req.service_id)?;
        non_empty("plan_id", &req.plan_id)?;
        let mut body = obj();
        put_str(&mut body, "service_id", &req.service_id);
        put_str(&mut body, "plan_id", &req.plan_id);
        put_str(
            &mut body,
            "predecessor_binding_id",
            &req.predecessor_binding_id,
        );
        let accepts = opts.accepts_incomplete;
        let origin = self.origin(opts, None)?;
        let call = Call {
            method: Method::PUT,
            path,
            query: if accepts {
                vec![("accepts_incomplete", "true")]
            } else {
                vec![]
            },
            body: Some(Value::Object(body)),
            origin,
        };
        let raw = self.send(&call, opts).await?;
        self.map_bind(raw, accepts, opts)
    }

    /// `GET .../service_bindings/{binding_id}` (2.14): fetch a binding (with credentials).
    ///
    /// ```no_run
    /// # async fn run(client: klutch_osb::Client) -> klutch_osb::Result<()> {
    /// use klutch_osb::CallOptions;
    /// let binding = client.fetch_binding("instance-1", "binding-1", None, None, &CallOptions::new()).await?.outcome;
    /// println!("{} endpoints", binding.endpoints.len());
    /// # Ok(()) }
    /// ```
    pub async fn fetch_binding(
        &self,
        instance_id: &str,
        binding_id: &str,
        service_id: Option<&str>,
        plan_id: Option<&str>,
        opts: &CallOptions<'_>,
    ) -> Result<Reply<BindingBody>> {
        self.inner.version.require(Feature::FetchBinding)?;
        if let Some((service, _)) = opts.catalog_entry
            && !opts.override_gates
            && !service.bindings_retrievable.unwrap_or(false)
        {
            return Err(Gate::NotRetrievable.into());
        }
        let path = self.binding_path(instance_id, binding_id)?;
        let query = self.hints(service_id, plan_id)?;
        let origin = self.origin(opts, None)?;
        let call = Call {
            method: Method::GET,
            path,
            query,
            body: None,
            origin,
        };
        let raw = self.send(&call, opts).await?;
        match raw.status.as_u16() {
            200 => {
                let b = parse::binding(&raw.body).map_err(|e| raw.decode_error(e))?;
                Ok(raw.reply(b, vec![]))
            }
            _ => Err(raw.error()),
        }
    }

    /// `GET /v2/service_instances/{instance_id}/last_operation`: one raw poll. Use
    /// [`crate::Poller`] for the interpretation of spec 7.4 and the loop.
    ///
    /// ```no_run
    /// # async fn run(client: klutch_osb::Client) -> klutch_osb::Result<()> {
    /// use klutch_osb::{CallOptions, LastOperationQuery};
    /// let q = LastOperationQuery { service_id: Some("svc-id".into()), plan_id: Some("plan-id".into()), operation: None };
    /// let reply = client.instance_last_operation("instance-1", &q, &CallOptions::new()).await?;
    /// println!("{:?}", reply.outcome.last_operation.state);
    /// # Ok(()) }
    /// ```
    pub async fn instance_last_operation(
        &self,
        instance_id: &str,
        q: &LastOperationQuery,
        opts: &CallOptions<'_>,
    ) -> Result<Reply<LastOperationReply>> {
        let raw = self.raw_last_operation(instance_id, None, q, opts).await?;
        Self::map_last_operation(raw)
    }

    /// `GET .../service_bindings/{binding_id}/last_operation` (2.14): one raw poll.
    ///
    /// ```no_run
    /// # async fn run(client: klutch_osb::Client) -> klutch_osb::Result<()> {
    /// use klutch_osb::{CallOptions, LastOperationQuery};
    /// let reply = client.binding_last_operation("instance-1", "binding-1", &LastOperationQuery::default(), &CallOptions::new()).await?;
    /// println!("{:?}", reply.outcome.last_operation.state);
    /// # Ok(()) }
    /// ```
    pub async fn binding_last_operation(
        &self,
        instance_id: &str,
        binding_id: &str,
        q: &LastOperationQuery,
        opts: &CallOptions<'_>,
    ) -> Result<Reply<LastOperationReply>> {
        let raw = self
            .raw_last_operation(instance_id, Some(binding_id), q, opts)
            .await?;
        Self::map_last_operation(raw)
    }

    fn map_last_operation(raw: RawResponse) -> Result<Reply<LastOperationReply>> {
        match raw.status.as_u16() {
            200 => {
                let lo = parse::last_operation(&raw.body).map_err(|e| raw.decode_error(e))?;
                let retry_after = raw.retry_after();
                Ok(raw.reply(
                    LastOperationReply {
                        last_operation: lo,
                        retry_after,
                    },
                    vec![],
                ))
            }
            _ => Err(raw.error()),
        }
    }

    pub(crate) async fn raw_last_operation(
        &self,
        instance_id: &str,
        binding_id: Option<&str>,
        q: &LastOperationQuery,
        opts: &CallOptions<'_>,
    ) -> Result<RawResponse> {
        let path = match binding_id {
            Some(b) => {
                self.inner.version.require(Feature::BindingLastOperation)?;
                format!("{}/last_operation", self.binding_path(instance_id, b)?)
            }
            None => format!("{}/last_operation", self.instance_path(instance_id)?),
        };
        let mut query = vec![];
        if let Some(s) = q.service_id.as_deref().filter(|s| !s.is_empty()) {
            query.push(("service_id", s));
        }
        if let Some(p) = q.plan_id.as_deref().filter(|s| !s.is_empty()) {
            query.push(("plan_id", p));
        }
        if let Some(o) = q.operation.as_ref().filter(|o| !o.0.is_empty()) {
            query.push(("operation", o.as_str()));
        }
        // Never an originating identity on polling.
        let call = Call {
            method: Method::GET,
            path,
            query,
            body: None,
            origin: None,
        };
        self.send(&call, opts).await
    }
}

fn transport(e: reqwest::Error) -> Error {
    if e.is_timeout() {
        Error::Timeout { source: e }
    } else if e.is_connect() {
        Error::Connect { source: e }
    } else {
        Error::Transport { source: e }
    }
}

/// Calls `call(opts.accepts_incomplete)`; when a synchronous request is refused with
/// `AsyncRequired` and the caller allowed a retry, checks `before_retry` (e.g. a version gate for
/// asynchronous bindings) and calls once more with `accepts_incomplete=true`.
async fn retry_async_required<T, F, Fut>(
    opts: &CallOptions<'_>,
    before_retry: impl FnOnce() -> Result<()>,
    call: F,
) -> Result<T>
where
    F: Fn(bool) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    match call(opts.accepts_incomplete).await {
        Err(e)
            if e.is_async_required() && !opts.accepts_incomplete && opts.retry_async_required =>
        {
            before_retry()?;
            call(true).await
        }
        other => other,
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
