//! The HTTP servers of the binary: probes (`/healthz`, `/backend-health`, spec 1.3) and
//! Prometheus metrics (`/metrics`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use kube::api::Api;

use crate::api::ProviderConfig;
use crate::metrics::Metrics;

/// The probe server: `/healthz` answers `ok`; `/backend-health` reports each ProviderConfig
/// as `ok` or `degraded` (from `status.health.lastStatus`; never checked counts as `ok`).
pub fn probes(client: kube::Client) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/backend-health", get(backend_health))
        .with_state(client)
}

async fn backend_health(State(client): State<kube::Client>) -> impl IntoResponse {
    match Api::<ProviderConfig>::all(client)
        .list(&Default::default())
        .await
    {
        Ok(list) => {
            let m: BTreeMap<String, &str> = list
                .items
                .iter()
                .map(|pc| {
                    let healthy = pc
                        .status
                        .as_ref()
                        .and_then(|s| s.health.as_ref())
                        .and_then(|h| h.last_status)
                        .unwrap_or(true);
                    (
                        pc.metadata.name.clone().unwrap_or_default(),
                        if healthy { "ok" } else { "degraded" },
                    )
                })
                .collect();
            (StatusCode::OK, axum::Json(m)).into_response()
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot list ProviderConfigs: {e}"),
        )
            .into_response(),
    }
}

/// The metrics server: `/metrics` in the Prometheus text format.
pub fn metrics(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(m): State<Arc<Metrics>>| async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    m.encode(),
                )
            }),
        )
        .with_state(metrics)
}
