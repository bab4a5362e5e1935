//! Thin adapters from the plan to HTTP: route resolution and access (`dispatch`), composed REST
//! endpoints, passthrough routes, operations routes, the one error type, and `handle`, the one
//! entry point the server (and `app`, its axum `Router` form) calls for every request.

mod coalesce;
pub mod dispatch;
pub mod error;
pub mod graphql;
pub mod ops;
pub mod passthrough;
pub mod playground;
pub mod rest;

use crate::state::AppState;
use axum::extract::Request;
use axum::response::Response;
use axum::Router;
use std::sync::Arc;

/// Answers one request: every stage of the pipeline, as plain function calls (no router or
/// middleware layers between them: each boxed layer cost a little on every request). Every route
/// lives in the plan's route table and is resolved by `dispatch`, so a new plan brings new routes
/// without rebuilding anything.
pub async fn handle(state: Arc<AppState>, req: Request) -> Response {
    crate::middleware::front::front(state, req).await
}

/// The whole HTTP surface as an axum `Router`, for embedding Facade or driving it with `oneshot`.
pub fn app(state: Arc<AppState>) -> Router {
    Router::new().fallback(move |req: Request| handle(state.clone(), req))
}
