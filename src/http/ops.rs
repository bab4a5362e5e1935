//! Operations routes: `/healthz` (the process runs), `/readyz` (a configuration is loaded) and,
//! `/metrics` (Prometheus text) and, with `openapi: true`, `/openapi.json` (the REST contract,
//! built when the plan was).

use super::error::json_response;
use crate::plan::routes::Ops;
use crate::plan::Plan;
use crate::state::AppState;
use axum::response::IntoResponse;
use axum::response::Response;
use http::{header, HeaderValue, StatusCode};
use serde_json::json;

/// `/readyz` (SPEC §9): the server never runs without a loaded configuration; the rate-limit
/// store is asked each time. A store outage is `degraded` but 200 under `on_store_error: allow`
/// (it must not take every instance out of a load balancer), 503 `unready` under `deny`.
async fn ready(state: &AppState, plan: &Plan) -> Response {
    let mut checks = serde_json::Map::new();
    checks.insert("config".into(), json!("ok"));
    let mut status = ("ready", StatusCode::OK);
    if let Some(rl) = &plan.rate_limits {
        match state.limiter.probe(rl.deny_on_store_error).await {
            crate::ratelimit::StoreState::Ok => {
                checks.insert("rate_limit_store".into(), json!("ok"));
            }
            crate::ratelimit::StoreState::Down(why) => {
                checks.insert("rate_limit_store".into(), json!(format!("down: {why}")));
                status = if rl.deny_on_store_error {
                    ("unready", StatusCode::SERVICE_UNAVAILABLE)
                } else {
                    ("degraded", StatusCode::OK)
                };
            }
        }
    }
    if let Some(set) = plan.auth.as_ref().and_then(|a| a.verifier.jwks()) {
        if !set.loaded() {
            let why = set.last_error().unwrap_or_else(|| "no key set has arrived yet".into());
            checks.insert("jwks".into(), json!(format!("down: {why}")));
            status = ("unready", StatusCode::SERVICE_UNAVAILABLE);
        } else if let Some(why) = set.last_error() {
            checks.insert("jwks".into(), json!(format!("down: {why} (the last good keys serve)")));
            if status.1 == StatusCode::OK {
                status = ("degraded", StatusCode::OK);
            }
        } else {
            checks.insert("jwks".into(), json!("ok"));
        }
    }
    json_response(
        status.1,
        &json!({"status": status.0, "checks": checks, "endpoints": plan.endpoints.len()}),
    )
}

/// Answers an operations route.
pub async fn answer(which: Ops, state: &AppState, plan: &Plan) -> Response {
    match which {
        Ops::Health => json_response(StatusCode::OK, &json!({"status": "ok"})),
        Ops::Ready => ready(state, plan).await,
        Ops::Metrics => {
            let mut resp = (StatusCode::OK, crate::metrics::render()).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            resp
        }
        Ops::OpenApi => {
            let mut resp = (StatusCode::OK, plan.openapi_json.clone().unwrap_or_default()).into_response();
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp
        }
    }
}
