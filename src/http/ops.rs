//! Operations routes: `/healthz` (the process runs), `/readyz` (a configuration is loaded) and,
//! with `openapi: true`, `/openapi.json` (the REST contract, built when the plan was).

use super::error::json_response;
use crate::plan::routes::Ops;
use crate::plan::Plan;
use crate::state::AppState;
use axum::response::IntoResponse;
use axum::response::Response;
use http::{header, HeaderValue, StatusCode};
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
        Ops::OpenApi => {
            let mut resp = (StatusCode::OK, plan.openapi_json.clone().unwrap_or_default()).into_response();
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp
        }
    }
}
