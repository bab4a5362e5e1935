//! Thin adapters from the plan to HTTP: composed REST endpoints, operations routes, and
//! `app(state)`, the one router every test and the server use.

pub mod error;
pub mod ops;
pub mod rest;

use crate::state::AppState;
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

/// The whole HTTP surface. Composed endpoints are looked up in the plan's route table by the
/// fallback handler, so a new plan brings new routes without rebuilding the router.
pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .fallback(rest::handle)
        // Outermost: request id, forged-header stripping and the log line (see `front`).
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::middleware::front::front,
        ))
        .with_state(state)
}
