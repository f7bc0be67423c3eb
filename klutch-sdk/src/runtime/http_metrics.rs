//! HTTP server metrics: axum middleware counting requests and their latency by route and status.
//!
//! [`HttpMetrics::register`] adds two metrics to a prometheus-client registry (whose prefix names
//! them): `<prefix>_http_requests_total` (counter) and `<prefix>_http_request_duration_seconds`
//! (histogram, 1 ms to ~8 s), both labelled `path` (the matched route, e.g. `/bind`, or
//! `unmatched`) and `status`. [`HttpMetrics::instrument`] puts the middleware on a router.
//!
//! ```
//! use std::sync::Arc;
//! use prometheus_client::registry::Registry;
//! use klutch_sdk::runtime::{health::Endpoints, http_metrics::HttpMetrics};
//!
//! let mut registry = Registry::with_prefix("klutch_backend");
//! let metrics = HttpMetrics::register(&mut registry);
//! let app = axum::Router::new()
//!     .route("/bind", axum::routing::get(|| async { "ok" }))
//!     .merge(Endpoints::new().registry(Arc::new(registry)).router());
//! let app = metrics.instrument(app);
//! # let _: axum::Router = app;
//! ```

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The `path` label of requests that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// Labels of the request metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The route, e.g. `/bind`.
    pub path: String,
    /// The status code.
    pub status: u16,
}

/// The request counter and latency histogram; cheap to clone (the metrics are shared).
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    requests: Family<RouteLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
}

impl HttpMetrics {
    /// Registers `http_requests` and `http_request_duration_seconds` in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let requests = Family::<RouteLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 14))
        });
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency",
            latency.clone(),
        );
        HttpMetrics { requests, latency }
    }

    /// `router` with every request (of every route it has now) counted.
    pub fn instrument<S>(&self, router: axum::Router<S>) -> axum::Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        router.layer(axum::middleware::from_fn_with_state(self.clone(), track))
    }

    /// The number of requests seen on route `path` answered with `status`.
    pub fn requests(&self, path: &str, status: u16) -> u64 {
        self.requests
            .get(&RouteLabels {
                path: path.to_owned(),
                status,
            })
            .map_or(0, |c| c.get())
    }
}

/// The middleware: times the request and counts it under its matched route and status. Use it
/// with `axum::middleware::from_fn_with_state(metrics, track)`, or [`HttpMetrics::instrument`].
pub async fn track(State(metrics): State<HttpMetrics>, req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_owned(), |p| p.as_str().to_owned());
    let start = std::time::Instant::now();
    let resp = next.run(req).await;
    let labels = RouteLabels {
        path,
        status: resp.status().as_u16(),
    };
    metrics.requests.get_or_create(&labels).inc();
    metrics
        .latency
        .get_or_create(&labels)
        .observe(start.elapsed().as_secs_f64());
    resp
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tower::ServiceExt as _;

    use super::*;
    use crate::runtime::health::Endpoints;

    async fn get(app: &axum::Router, path: &str) -> (u16, String) {
        let resp = app
            .clone()
            .oneshot(
                axum::http::Request::get(path)
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn requests_are_counted_by_route_and_status() {
        let mut registry = Registry::with_prefix("klutch_backend");
        let metrics = HttpMetrics::register(&mut registry);
        let app = axum::Router::new()
            .route("/items/{id}", axum::routing::get(|| async { "item" }))
            .merge(Endpoints::new().registry(Arc::new(registry)).router());
        let app = metrics.instrument(app);
        assert_eq!(get(&app, "/items/1").await.0, 200);
        assert_eq!(get(&app, "/items/2").await.0, 200);
        assert_eq!(get(&app, "/nothing").await.0, 404);
        assert_eq!(metrics.requests("/items/{id}", 200), 2);
        assert_eq!(metrics.requests(UNMATCHED, 404), 1);
        let (status, text) = get(&app, "/metrics").await;
        assert_eq!(status, 200);
        assert!(
            text.contains(
                r#"klutch_backend_http_requests_total{path="/items/{id}",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains("klutch_backend_http_request_duration_seconds_bucket"),
            "{text}"
        );
    }
}
