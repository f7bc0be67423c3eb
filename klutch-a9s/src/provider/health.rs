//! The `/backend-health` probe (spec 1.3): the health of every ProviderConfig's endpoint, as
//! the ProviderConfig controller last checked it. Merge [`router`] into the probe server.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use kube::api::Api;

use super::api::ProviderConfig;

/// `/backend-health`: each ProviderConfig as `ok` or `degraded` (from
/// `status.health.lastStatus`; never checked counts as `ok`).
pub fn router(client: kube::Client) -> Router {
    Router::new()
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
