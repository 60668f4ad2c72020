//! Operational routes: `/healthz` (process up), `/readyz` (storage answers), `/metrics` (Prometheus).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::AppState;

/// The process is up.
pub async fn healthz() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

/// Storage answers.
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.souk.store().ping().await {
        Ok(()) => axum::Json(json!({ "status": "ready", "database": state.souk.store().backend() })).into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({ "status": "unavailable", "reason": "storage does not answer" })),
            )
                .into_response()
        }
    }
}

/// Prometheus text.
pub async fn metrics(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}
