//! Operational routes: `/healthz` (process up), `/readyz` (storage answers), `/metrics` (Prometheus).

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::AppState;

/// The process is up.
pub async fn healthz() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

/// The bound on `/readyz`: a load balancer's probe gets an answer within it, whatever the database
/// does.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// The durable store answers a round trip within [`READY_TIMEOUT`]: 200, else 503 naming what is
/// not ready. Redis is not asked: while it is down, rate limits follow the operator's
/// `redis.rate_limits_when_down` and calls still work.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let store = state.souk.store();
    let backend = store.backend();
    let failure = match tokio::time::timeout(READY_TIMEOUT, store.ping()).await {
        Ok(Ok(())) => return axum::Json(json!({ "status": "ready", "database": backend })).into_response(),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "readiness check failed");
            "the database does not answer"
        }
        Err(_) => {
            tracing::warn!(timeout_ms = READY_TIMEOUT.as_millis(), "readiness check timed out");
            "the database did not answer in time"
        }
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(json!({
            "status": "unavailable",
            "not_ready": ["database"],
            "database": backend,
            "reason": failure,
        })),
    )
        .into_response()
}

/// Prometheus text.
pub async fn metrics(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}
