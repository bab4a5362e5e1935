//! Operations routes: `/healthz` (the process runs) and `/readyz` (a configuration is loaded).

use super::error::json_response;
use crate::state::AppState;
use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use serde_json::json;
use std::sync::Arc;

/// 200 while the process runs.
pub async fn healthz() -> Response {
    json_response(StatusCode::OK, &json!({"status": "ok"}))
}

/// 200 when a configuration is loaded (the server never runs without one).
pub async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let plan = state.plan();
    json_response(
        StatusCode::OK,
        &json!({"status": "ready", "endpoints": plan.endpoints.len()}),
    )
}
