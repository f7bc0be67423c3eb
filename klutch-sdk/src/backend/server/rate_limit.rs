//! A per-client rate limit for the login endpoints: a GCRA bucket per client address
//! (`governor`), answering `429 Too Many Requests` with `Retry-After` when a client exceeds it.
//!
//! The client is the TCP peer (needs [`ConnectInfo`], which
//! [`runtime::health::Server::serve_with`](crate::runtime::health::Server::serve_with) adds), or
//! with `--trust-forwarded-headers` the last `X-Forwarded-For` entry, the one the trusted proxy
//! appended. Requests without either share one bucket.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

/// How many login requests one client may make: `per_minute` on average, up to `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginRateLimit {
    /// Sustained requests per minute.
    pub per_minute: NonZeroU32,
    /// Requests allowed at once.
    pub burst: NonZeroU32,
}

impl LoginRateLimit {
    /// `per_minute` requests a minute with bursts of `burst` (each at least 1).
    pub fn new(per_minute: u32, burst: u32) -> Self {
        LoginRateLimit {
            per_minute: NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN),
            burst: NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN),
        }
    }
}

/// Keys above this many make the limiter forget idle clients.
const SHRINK_AT: usize = 10_000;

/// The shared limiter state of one router.
#[derive(Clone)]
pub(super) struct Limiter {
    buckets: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    trust_forwarded: bool,
}

impl Limiter {
    pub(super) fn new(limit: &LoginRateLimit, trust_forwarded: bool) -> Self {
        let quota = Quota::per_minute(limit.per_minute).allow_burst(limit.burst);
        Limiter {
            buckets: Arc::new(governor::RateLimiter::keyed(quota)),
            trust_forwarded,
        }
    }
}

/// The address of the client, see the module documentation.
pub(super) fn client_ip(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    trust_forwarded: bool,
) -> Option<IpAddr> {
    let forwarded = trust_forwarded
        .then(|| {
            headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .next_back()
                .and_then(|ip| ip.trim().parse().ok())
        })
        .flatten();
    forwarded.or(peer.map(|p| p.ip()))
}

/// The TCP peer, when the server recorded it.
pub(super) struct Peer(pub(super) Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

/// The middleware.
pub(super) async fn limit(
    State(limiter): State<Limiter>,
    Peer(peer): Peer,
    request: Request,
    next: Next,
) -> Response {
    let ip = client_ip(peer, request.headers(), limiter.trust_forwarded)
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    if limiter.buckets.len() > SHRINK_AT {
        limiter.buckets.retain_recent();
    }
    match limiter.buckets.check_key(&ip) {
        Ok(()) => next.run(request).await,
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            tracing::info!(client = %ip, "login rate limit exceeded");
            let mut resp = (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "too many login requests from your address; try again later",
            )
                .into_response();
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(wait.as_secs().max(1)),
            );
            resp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_counts_only_when_trusted_and_takes_the_proxy_entry() {
        let peer: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.2.3.4, 192.0.2.7"),
        );
        assert_eq!(
            client_ip(Some(peer), &headers, false),
            Some(peer.ip()),
            "untrusted: the peer"
        );
        assert_eq!(
            client_ip(Some(peer), &headers, true),
            Some("192.0.2.7".parse().unwrap()),
            "trusted: what the proxy appended, not what the client wrote"
        );
        assert_eq!(client_ip(None, &HeaderMap::new(), true), None);
    }
}
