//! The one shell every operation goes through: a [`Call`] describes the request, [`Client::exchange`]
//! sends it (version header and its 412 fallback, request identity, auth, originating identity)
//! and hands the answer to the operation's status table as an [`Answer`]; a status the table does
//! not define becomes a [`BrokerError`].

use std::time::{Duration, SystemTime};

use http::{HeaderMap, Method, StatusCode};
use secrecy::ExposeSecret;
use serde_json::{Map, Value};

use super::{
    Auth, CallOptions, Client, ORIGINATING_IDENTITY_HEADER, REQUEST_IDENTITY_HEADER, Strictness,
    VERSION_HEADER, encode,
};
use crate::error::{BrokerError, Error, ProtocolViolation, Result};
use crate::identity::{OriginatingIdentity, RequestIdentity};
use crate::outcome::Reply;
use crate::parse;
use crate::version::Feature;

/// One request: method, path, query (in order), extra headers, JSON body, originating identity.
pub(super) struct Call<'a> {
    method: Method,
    path: String,
    query: Vec<(&'static str, &'a str)>,
    headers: Vec<(&'static str, &'a str)>,
    body: Option<Value>,
    origin: Option<&'a OriginatingIdentity>,
}

impl<'a> Call<'a> {
    /// A request without query, body or identity.
    pub(super) fn new(method: Method, path: String) -> Self {
        Call {
            method,
            path,
            query: vec![],
            headers: vec![],
            body: None,
            origin: None,
        }
    }

    /// Appends one query parameter (values are percent-encoded when sent).
    pub(super) fn query(mut self, name: &'static str, value: &'a str) -> Self {
        self.query.push((name, value));
        self
    }

    /// Appends query parameters.
    pub(super) fn queries(mut self, q: impl IntoIterator<Item = (&'static str, &'a str)>) -> Self {
        self.query.extend(q);
        self
    }

    /// Appends `accepts_incomplete=true` when `yes`.
    pub(super) fn accepts_incomplete(self, yes: bool) -> Self {
        if yes {
            self.query("accepts_incomplete", "true")
        } else {
            self
        }
    }

    /// Adds a header beyond the ones every request carries.
    pub(super) fn header(mut self, name: &'static str, value: &'a str) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Sets the JSON object body.
    pub(super) fn json(mut self, body: Map<String, Value>) -> Self {
        self.body = Some(Value::Object(body));
        self
    }

    /// Sets the originating identity header's source.
    pub(super) fn origin(mut self, origin: Option<&'a OriginatingIdentity>) -> Self {
        self.origin = origin;
        self
    }
}

/// A raw broker response.
#[derive(Debug)]
struct RawResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: bytes::Bytes,
    request_identity: Option<String>,
}

/// A broker's answer while an operation's status table maps it: the status, the body parsers,
/// and the spec violations that the configured [`Strictness`] tolerates.
pub(crate) struct Answer {
    raw: RawResponse,
    strictness: Strictness,
    violations: Vec<ProtocolViolation>,
}

impl Answer {
    /// The HTTP status.
    pub(crate) fn status(&self) -> u16 {
        self.raw.status.as_u16()
    }

    /// Parses the body; a failure is [`Error::Decode`] with this status and a body excerpt.
    pub(crate) fn parse<T>(&self, parser: fn(&[u8]) -> parse::Result<T>) -> Result<T> {
        parser(&self.raw.body).map_err(|e| Error::decode(self.status(), e, &self.raw.body))
    }

    /// Parses the body, keeping a failure as the [`parse::ParseError`] (for callers that do not
    /// fail on it, like the poller).
    pub(crate) fn try_parse<T>(&self, parser: fn(&[u8]) -> parse::Result<T>) -> parse::Result<T> {
        parser(&self.raw.body)
    }

    /// A header's value, when it is valid text.
    pub(super) fn header(&self, name: http::HeaderName) -> Option<String> {
        self.raw
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// The parsed `Retry-After` header, if valid.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        let v = self
            .raw
            .headers
            .get(http::header::RETRY_AFTER)?
            .to_str()
            .ok()?;
        parse::retry_after(v, SystemTime::now())
    }

    /// Records a spec violation: an error when strict, a warning and an entry in
    /// [`Reply::violations`] when lenient.
    pub(super) fn violation(&mut self, v: ProtocolViolation) -> Result<()> {
        match self.strictness {
            Strictness::Strict => Err(Error::Protocol {
                status: self.status(),
                violation: v,
            }),
            Strictness::Lenient => {
                tracing::warn!(violation = %v, "tolerating an OSB spec violation");
                self.violations.push(v);
                Ok(())
            }
        }
    }

    /// A 202 is a violation unless the request carried `accepts_incomplete=true`.
    pub(super) fn solicited(&mut self, accepts: bool) -> Result<()> {
        if !accepts {
            self.violation(ProtocolViolation::UnsolicitedAsync)?;
        }
        Ok(())
    }

    /// The broker error for a status the operation does not define.
    pub(crate) fn error(&self) -> Error {
        BrokerError::from_response(
            self.raw.status,
            &self.raw.body,
            self.raw.request_identity.clone(),
        )
        .into()
    }

    fn reply<T>(self, outcome: T) -> Reply<T> {
        Reply {
            outcome,
            status: self.raw.status,
            request_identity: self.raw.request_identity,
            violations: self.violations,
            poll_target: None,
        }
    }
}

impl Client {
    /// Sends `call` and maps the answer with `table`, the operation's status-code table:
    /// `Ok(Some(outcome))` for a status it defines, `Ok(None)` for one it does not (the answer
    /// then becomes a [`BrokerError`]), `Err` when a defined status comes with a malformed body
    /// or a violation the strictness rejects.
    pub(super) async fn exchange<T>(
        &self,
        call: &Call<'_>,
        opts: &CallOptions<'_>,
        table: impl FnOnce(&mut Answer) -> Result<Option<T>>,
    ) -> Result<Reply<T>> {
        let raw = self.send(call, opts).await?;
        let mut answer = Answer {
            raw,
            strictness: self.inner.strictness,
            violations: vec![],
        };
        match table(&mut answer)? {
            Some(outcome) => Ok(answer.reply(outcome)),
            None => Err(answer.error()),
        }
    }

    /// Sends with the configured version header; on 412 retries once with the fallback value.
    async fn send(&self, call: &Call<'_>, opts: &CallOptions<'_>) -> Result<RawResponse> {
        let first = self
            .send_with_version(call, opts, &self.inner.version_header)
            .await?;
        if first.status == StatusCode::PRECONDITION_FAILED
            && let Some(fallback) = &self.inner.fallback_version_header
            && fallback != &self.inner.version_header
        {
            tracing::info!(fallback = %fallback, "broker rejected the version header with 412; retrying once");
            return self.send_with_version(call, opts, fallback).await;
        }
        Ok(first)
    }

    async fn send_with_version(
        &self,
        call: &Call<'_>,
        opts: &CallOptions<'_>,
        version: &str,
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
        for (k, v) in &call.headers {
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
pub(super) async fn retry_async_required<T, F, Fut>(
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
