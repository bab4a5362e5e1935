//! Thin adapters from the plan to HTTP: route resolution and access (`dispatch`), composed REST
//! endpoints, passthrough routes, operations routes, the one error type, and `app(state)`, the one
//! router every test and the server use.

pub mod dispatch;
pub mod error;
pub mod ops;
pub mod passthrough;
pub mod rest;

use crate::state::AppState;
use axum::Router;
use std::sync::Arc;

/// The whole HTTP surface. Every route lives in the plan's route table and is resolved by
/// `dispatch`, so a new plan brings new routes without rebuilding the router.
pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .fallback(dispatch::dispatch)
        // Inside `front` (the plan and request id are known), before route resolution and auth.
        .layer(axum::middleware::from_fn(crate::middleware::front::cors))
        // Outermost: plan, request id, forged-header stripping, header limits and the log line
        // (see `front`), so every answer below carries an id and is logged.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::middleware::front::front,
        ))
        .with_state(state)
}
