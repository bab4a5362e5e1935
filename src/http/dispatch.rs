//! Route resolution and the access stage, the same for every surface: the path is normalised,
//! resolved in the plan taken by `front` (composed endpoint | passthrough route | operations
//! route | 404 | 405 with `Allow`), the route's access is checked (auth and roles; the rate limit
//! joins here), and the surface's handler answers. Every failure of every stage is an `HttpError`,
//! answered in one place below.

use super::error::HttpError;
use super::{ops, passthrough, rest};
use crate::middleware::auth::Authenticated;
use crate::middleware::front::{CurrentPlan, RequestId, RouteLabel};
use crate::plan::routes::{normalize, Resolved};
use crate::plan::{Access, Plan};
use crate::state::AppState;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use http::HeaderValue;
use std::net::SocketAddr;
use std::sync::Arc;

/// Answers every request.
pub async fn dispatch(state: Arc<AppState>, req: Request) -> Response {
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or(HeaderValue::from_static("-"));
    let plan = match req.extensions().get::<CurrentPlan>() {
        Some(p) => p.0.clone(),
        None => state.plan(),
    };
    let (label, result) = route(&state, &plan, req, &request_id).await;
    let mut resp = result.unwrap_or_else(|e| e.respond(&request_id));
    if let Some(label) = label {
        resp.extensions_mut().insert(RouteLabel(label));
    }
    resp
}

/// Resolves the request and runs its route; returns the route's label for logs and metrics.
async fn route(
    state: &AppState,
    plan: &Arc<Plan>,
    req: Request,
    request_id: &HeaderValue,
) -> (Option<String>, Result<Response, HttpError>) {
    let raw = req.uri().path();
    // Composed endpoints match the path as sent, so a `..` path parameter reaches its 400 (SPEC
    // §4.2); everything else is resolved on the path with dot segments removed.
    let mut resolved = plan.routes.resolve(req.method(), raw);
    let mut path = std::borrow::Cow::Borrowed(raw);
    if !matches!(resolved, Resolved::Endpoint(_)) {
        let Some(normal) = normalize(raw) else {
            return (None, Err(HttpError::bad_request("the path climbs above `/` with `..`")));
        };
        if normal != raw {
            // A `..` may not carry a request out of the passthrough route its raw path is
            // under: that would reach another route past this one's access rules.
            if let Some(i) = plan.routes.prefix_of(raw) {
                let route = &plan.passthrough[i];
                if !crate::plan::routes::under_prefix(&normal, &route.prefix) {
                    return (
                        Some(route.label.clone()),
                        Err(HttpError::bad_request(format!(
                            "`..` in the path would leave the route prefix {}",
                            route.label
                        ))),
                    );
                }
            }
            resolved = plan.routes.resolve(req.method(), &normal);
            path = std::borrow::Cow::Owned(normal.into_owned());
        }
    }
    match resolved {
        Resolved::Endpoint(found) => {
            let endpoint = plan.endpoints[found.index].clone();
            let label = Some(endpoint.path.clone());
            let result = async {
                let authenticated = access(plan, &endpoint.access, &req)?;
                rest::handle(state, plan, &endpoint, found, authenticated, req, request_id).await
            }
            .await;
            (label, result)
        }
        Resolved::Passthrough(i) => {
            let route = &plan.passthrough[i];
            let label = Some(route.label.clone());
            // The request moves into the handler; the path it was resolved on goes with it.
            let path = path.into_owned();
            let result = async {
                let authenticated = access(plan, &route.access, &req)?;
                let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
                passthrough::forward(state, plan, route, &path, authenticated, peer, req, request_id).await
            }
            .await;
            (label, result)
        }
        Resolved::Graphql => {
            let label = plan.graphql.as_ref().map(|g| g.path.clone());
            (label, super::graphql::handle(state, plan, req, request_id).await)
        }
        Resolved::Ops(which) => (Some(path.into_owned()), Ok(ops::answer(which, state, plan))),
        Resolved::MethodNotAllowed(allow) => (None, Err(HttpError::method_not_allowed(req.method(), &allow))),
        Resolved::NotFound => (
            None,
            Err(HttpError::not_found(format!("no route for {} {}", req.method(), raw))),
        ),
    }
}

/// The access stage: the token against the route's auth mode and roles.
fn access(plan: &Plan, access: &Access, req: &Request) -> Result<Authenticated, HttpError> {
    Ok(crate::middleware::access::check(plan, access, req.headers())?)
}
