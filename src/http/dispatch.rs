//! Route resolution and the access stage, the same for every surface: the path is normalised,
//! resolved in the plan taken by `front` (composed endpoint | passthrough route | operations
//! route | 404 | 405 with `Allow`), the route's access is checked (auth and roles; the rate limit
//! joins here), and the surface's handler answers. Every failure of every stage is an `HttpError`,
//! answered in one place below.

use super::error::HttpError;
use super::{ops, passthrough, rest};
use crate::middleware::access::Admitted;
use crate::middleware::front::{CurrentPlan, RequestId, RouteLabel};
use crate::plan::routes::{normalize, Resolved};
use crate::plan::{Access, Plan};
use crate::ratelimit::RateHeaders;
use crate::state::AppState;
use axum::extract::{ConnectInfo, Request};
use axum::response::{IntoResponse, Response};
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

/// The label (for logs and metrics) of the route a CORS preflight asks about: the one its
/// `Access-Control-Request-Method` would reach on its path. The preflight itself is answered by
/// the CORS stage before any route runs.
pub fn preflight_label(plan: &Plan, headers: &http::HeaderMap, raw: &str) -> Option<String> {
    let method = headers
        .get(http::header::ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|m| http::Method::from_bytes(m.as_bytes()).ok())?;
    let mut resolved = plan.routes.resolve(&method, raw);
    if !matches!(resolved, Resolved::Endpoint(_)) {
        resolved = plan.routes.resolve(&method, &normalize(raw)?);
    }
    match resolved {
        Resolved::Endpoint(found) => Some(plan.endpoints[found.index].path.clone()),
        Resolved::Passthrough(i) => Some(plan.passthrough[i].label.clone()),
        Resolved::Graphql => plan.graphql.as_ref().map(|g| g.path.clone()),
        Resolved::Ops(_) | Resolved::MethodNotAllowed(_) | Resolved::NotFound => None,
    }
}

/// Resolves the request and runs its route; returns the route's label for logs and metrics.
async fn route(
    state: &AppState,
    plan: &Arc<Plan>,
    req: Request,
    request_id: &HeaderValue,
) -> (Option<String>, Result<Response, HttpError>) {
    let raw = req.uri().path();
    // Only a path (origin form, or absolute form reduced to its path) names a route. A CONNECT
    // (authority form) would otherwise reach a catch-all passthrough route and come back as a
    // 502 that blames the backend.
    if req.method() == http::Method::CONNECT {
        return (
            None,
            Err(HttpError::new(
                http::StatusCode::NOT_IMPLEMENTED,
                "not_implemented",
                "CONNECT is not supported: Facade is a reverse proxy, not a forward proxy",
            )),
        );
    }
    if !raw.starts_with('/') {
        // `OPTIONS *` asks about the server as a whole.
        if raw == "*" && req.method() == http::Method::OPTIONS {
            let mut resp = http::StatusCode::NO_CONTENT.into_response();
            resp.headers_mut().insert(
                http::header::ALLOW,
                HeaderValue::from_static("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
            );
            return (None, Ok(resp));
        }
        return (None, Err(HttpError::bad_request("the request target must be a path")));
    }
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
                let admitted = access(state, plan, &endpoint.access, req.headers(), peer_of(&req)).await?;
                let rate = admitted.rate;
                // Boxed, as the GraphQL handler below: their futures are large, and inline they
                // would make every request's future (passthrough ones too) as large, copied whole
                // when the server boxes it.
                let answer = Box::pin(rest::handle(
                    state,
                    plan,
                    &endpoint,
                    found,
                    admitted.authenticated,
                    req,
                    request_id,
                ))
                .await;
                Ok(with_rate_headers(answer, rate, request_id))
            }
            .await;
            (label, result)
        }
        Resolved::Passthrough(i) => {
            let route = &plan.passthrough[i];
            let label = Some(route.label.clone());
            // The request moves into the handler; the path it was resolved on goes with it.
            let path = path.into_owned();
            // Boxed too, in a box of its own size: inline, the whole pipeline's future was 14 KiB,
            // allocated and copied whole when the server boxes it.
            let result = Box::pin(async {
                let admitted = access(state, plan, &route.access, req.headers(), peer_of(&req)).await?;
                let rate = admitted.rate;
                let peer = peer_of(&req);
                let answer =
                    passthrough::forward(state, plan, route, &path, admitted.authenticated, peer, req, request_id)
                        .await;
                Ok(with_rate_headers(answer, rate, request_id))
            })
            .await;
            (label, result)
        }
        Resolved::Graphql => {
            let label = plan.graphql.as_ref().map(|g| g.path.clone());
            (
                label,
                Box::pin(super::graphql::handle(state, plan, req, request_id)).await,
            )
        }
        // Boxed: `/readyz` probes the stores (a large future), and operations routes are rare.
        Resolved::Ops(which) => (
            Some(path.into_owned()),
            Ok(Box::pin(ops::answer(which, state, plan)).await),
        ),
        Resolved::MethodNotAllowed(allow) => (None, Err(HttpError::method_not_allowed(req.method(), &allow))),
        Resolved::NotFound => {
            // Endpoints match their path exactly: a trailing `/` more or less is the usual slip
            // (Express would match it), so say which path exists.
            let toggled = match raw.strip_suffix('/') {
                Some("") => None,
                Some(shorter) => Some(shorter.to_string()),
                None => Some(format!("{raw}/")),
            };
            let hint = toggled
                .filter(|t| matches!(plan.routes.resolve(req.method(), t), Resolved::Endpoint(_)))
                .map(|t| format!("; did you mean {t}?"))
                .unwrap_or_default();
            (
                None,
                Err(HttpError::not_found(format!(
                    "no route for {} {}{hint}",
                    req.method(),
                    raw
                ))),
            )
        }
    }
}

/// The access stage: the token against the route's auth mode and roles, then its rate limit.
/// Only the headers and the peer cross the await: the request's body is not `Sync`.
async fn access(
    state: &AppState,
    plan: &Plan,
    access: &Access,
    headers: &http::HeaderMap,
    peer: Option<SocketAddr>,
) -> Result<Admitted, HttpError> {
    Ok(crate::middleware::access::check(plan, &state.limiter, access, headers, peer).await?)
}

/// The peer address the server recorded.
pub fn peer_of(req: &Request) -> Option<SocketAddr> {
    req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}

/// A handler's answer — success or failure — with the rate-limit headers of the request that
/// passed the limiter, replacing any a backend sent (SPEC §7).
fn with_rate_headers(
    answer: Result<Response, HttpError>,
    rate: Option<RateHeaders>,
    request_id: &HeaderValue,
) -> Response {
    let mut resp = answer.unwrap_or_else(|e| e.respond(request_id));
    if let Some(rate) = rate {
        rate.apply(resp.headers_mut());
    }
    resp
}
