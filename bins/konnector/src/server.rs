//! The HTTP server: `GET /healthz` (JSON as Klutch: `{"leaderElection": "ok"|"degraded"}`, 200
//! when all ok, else 500) and `GET /metrics` (Prometheus text).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::leader::LeaderState;
use klutch_sdk::konnector::Metrics;

#[derive(Clone)]
struct AppState {
    leader: Arc<LeaderState>,
    metrics: Arc<Metrics>,
}

/// The router.
pub fn router(leader: Arc<LeaderState>, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .with_state(AppState { leader, metrics })
}

async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    let ok = state.leader.healthy();
    let body = serde_json::json!({ "leaderElection": if ok { "ok" } else { "degraded" } });
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    (code, axum::Json(body))
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}
