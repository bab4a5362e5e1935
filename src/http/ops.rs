//! Operations routes: `/healthz` (the process runs) and `/readyz` (a configuration is loaded).

use super::error::json_response;
use crate::plan::routes::Ops;
use crate::plan::Plan;
use crate::state::AppState;
use axum::response::Response;
use http::StatusCode;
use serde_json::json;

/// Answers an operations route.
pub fn answer(which: Ops, _state: &AppState, plan: &Plan) -> Response {
    match which {
        Ops::Health => json_response(StatusCode::OK, &json!({"status": "ok"})),
        // The server never runs without a loaded configuration.
        Ops::Ready => json_response(
            StatusCode::OK,
            &json!({"status": "ready", "checks": {"config": "ok"}, "endpoints": plan.endpoints.len()}),
        ),
    }
}
