//! The first stages of every request, in this order: it takes the plan in force once (every later
//! stage reads that same `Arc<Plan>`, so a reload between two stages can never mix two plans),
//! gives the request its id (the client's `X-Request-Id` when sane, else a new one), removes every
//! `forward_claims` header the client sent before anything else can read it, refuses header sets
//! above `limits.request_headers` (431), and writes one structured log line when the response is
//! ready. It sits outside everything so that even 404s, 431s and auth failures carry an id and are
//! logged.

use crate::http::error::HttpError;
use crate::plan::Plan;
use crate::state::AppState;
use crate::upstream::X_REQUEST_ID;
use axum::extract::Request;
use axum::response::Response;
use http::HeaderValue;
use std::sync::Arc;
use std::time::Instant;

/// The request's id, for handlers and error bodies.
#[derive(Debug, Clone)]
pub struct RequestId(pub HeaderValue);

/// The plan taken for this request.
#[derive(Debug, Clone)]
pub struct CurrentPlan(pub Arc<Plan>);

/// The route a handler matched, for the log line (set on the response's extensions).
#[derive(Debug, Clone)]
pub struct RouteLabel(pub String);

fn sane(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty() && b.len() <= 128 && b.iter().all(|c| c.is_ascii_graphic())
}

/// The plan, request id, header stripping, the header limit and the log line; then the CORS stage
/// and route resolution.
pub async fn front(state: Arc<AppState>, mut req: Request) -> Response {
    let start = Instant::now();
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .filter(|v| sane(v))
        .cloned()
        .unwrap_or_else(|| {
            // Encoded on the stack: `to_string` went through the formatting machinery and a
            // `String` that the header value then copied.
            let mut text = uuid::Uuid::encode_buffer();
            let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text);
            HeaderValue::from_str(id).unwrap_or(HeaderValue::from_static("-"))
        });
    req.extensions_mut().insert(RequestId(id.clone()));
    let plan = state.plan();
    if let Some(auth) = &plan.auth {
        for (name, _) in &auth.forward_claims {
            req.headers_mut().remove(name);
        }
    }
    let limit = plan.limits.request_headers;
    let too_large = headers_size(req.headers()) > limit;
    let cors_layer = plan.cors.clone();
    req.extensions_mut().insert(CurrentPlan(plan));
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let id_text = id.to_str().unwrap_or("-");
    let mut resp = if too_large {
        HttpError::new(
            http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request_headers_too_large",
            format!("the request headers together are larger than {limit} bytes"),
        )
        .respond(&id)
    } else {
        // Every log line written while handling the request carries its id: through the direct
        // scope when the pipeline writes its lines itself, else through a `request` span. One
        // wrapper type and one await: the request's future holds the pipeline's future once.
        // (Awaited as a temporary: a named local would be kept in the state beside the awaited
        // copy, doubling the room.)
        if crate::logfmt::direct() {
            crate::logfmt::RequestScope::direct(id_text, cors(cors_layer, state, req))
        } else {
            let span = tracing::info_span!("request", request_id = id_text);
            crate::logfmt::RequestScope::span(span, cors(cors_layer, state, req))
        }
        .await
    };
    resp.headers_mut().insert(X_REQUEST_ID, id.clone());
    let route = resp
        .extensions()
        .get::<RouteLabel>()
        .map(|r| r.0.as_str())
        .unwrap_or("-");
    let elapsed = start.elapsed();
    crate::metrics::request(
        if route == "-" { "unmatched" } else { route },
        method.as_str(),
        resp.status().as_u16(),
        elapsed.as_secs_f64(),
    );
    // Rounded to 10 µs: `0.47`, not `0.47186500000000003`.
    let latency_ms = (elapsed.as_secs_f64() * 100_000.0).round() / 100.0;
    if !tracing::enabled!(tracing::Level::INFO) {
        return resp;
    }
    if crate::logfmt::direct() {
        crate::logfmt::RequestLine {
            target: module_path!(),
            request_id: id_text,
            method: method.as_str(),
            route,
            path: &path,
            status: resp.status().as_u16(),
            latency_ms,
        }
        .write();
    } else {
        tracing::info!(
            request_id = id_text,
            method = %method,
            route,
            path = %path,
            status = resp.status().as_u16(),
            latency_ms,
            "request"
        );
    }
    resp
}

/// All request headers together as SPEC §3 counts them: Σ (name + value + 4).
pub fn headers_size(headers: &http::HeaderMap) -> u64 {
    headers
        .iter()
        .map(|(k, v)| (k.as_str().len() + v.len() + 4) as u64)
        .sum()
}

/// The CORS stage (SPEC §3), after the stages above and before route resolution, so a preflight
/// is answered before auth and rate limiting and every answer to an allowed origin exposes
/// Facade's headers. Without a `cors:` section it does nothing and adds no header.
///
/// A preflight is an `OPTIONS` with `Origin` and `Access-Control-Request-Method`. tower-http's layer answers
/// every `OPTIONS` as one, so an ordinary `OPTIONS` (a passthrough route's backend answers
/// `OPTIONS` itself; a composed endpoint answers 405) goes round the layer, and takes from it only
/// the headers an actual request to its origin would get.
async fn cors(layer: Option<tower_http::cors::CorsLayer>, state: Arc<AppState>, req: Request) -> Response {
    match layer {
        None => crate::http::dispatch::dispatch(state, req).await,
        Some(layer) if req.method() == http::Method::OPTIONS && !is_preflight(req.headers()) => {
            let origin = req.headers().get(http::header::ORIGIN).cloned();
            let mut resp = crate::http::dispatch::dispatch(state, req).await;
            if let Some(origin) = origin {
                let added = actual_request_headers(layer, origin).await;
                let allowed = added
                    .iter()
                    .any(|(n, _)| *n == http::header::ACCESS_CONTROL_ALLOW_ORIGIN);
                for (name, value) in added {
                    if allowed || name == http::header::VARY {
                        resp.headers_mut().append(name, value);
                    }
                }
            }
            resp
        }
        Some(layer) => {
            use tower::{Layer, ServiceExt};
            let preflight = is_preflight(req.headers());
            let preflight_label = preflight
                .then(|| {
                    let plan = req.extensions().get::<CurrentPlan>()?.0.clone();
                    crate::http::dispatch::preflight_label(&plan, req.headers(), req.uri().path())
                })
                .flatten();
            let inner = tower::service_fn(move |req: Request| {
                let state = state.clone();
                async move {
                    let mut resp = crate::http::dispatch::dispatch(state, req).await;
                    // What the answer carried before the layer (a passthrough backend's own
                    // CORS headers), to put back when the layer allows no origin.
                    let own = OwnCorsHeaders(
                        resp.headers()
                            .iter()
                            .filter(|(n, _)| n.as_str().starts_with("access-control-"))
                            .map(|(n, v)| (n.clone(), v.clone()))
                            .collect(),
                    );
                    resp.extensions_mut().insert(own);
                    Ok::<_, std::convert::Infallible>(resp)
                }
            });
            // Boxed: with CORS configured only; the layer's future holds a second pipeline future.
            let mut resp = match Box::pin(layer.layer(inner).oneshot(req)).await {
                Ok(resp) => resp,
                Err(never) => match never {},
            };
            if !resp.headers().contains_key(http::header::ACCESS_CONTROL_ALLOW_ORIGIN) {
                // No origin, or one not allowed: the layer's other CORS headers (credentials,
                // exposed headers, a preflight's methods and max age) would only describe the
                // policy to a client it does not apply to. `Vary` stays, for caches.
                let own = resp.extensions_mut().remove::<OwnCorsHeaders>();
                let headers = resp.headers_mut();
                let names: Vec<http::HeaderName> = headers
                    .keys()
                    .filter(|n| n.as_str().starts_with("access-control-"))
                    .cloned()
                    .collect();
                for name in names {
                    headers.remove(&name);
                }
                if !preflight {
                    for (name, value) in own.map(|o| o.0).unwrap_or_default() {
                        headers.append(name, value);
                    }
                }
            }
            if let Some(label) = preflight_label {
                if resp.extensions().get::<RouteLabel>().is_none() {
                    resp.extensions_mut().insert(RouteLabel(label));
                }
            }
            resp
        }
    }
}

/// The `Access-Control-*` headers a handler's answer carried before the CORS layer.
#[derive(Clone)]
struct OwnCorsHeaders(Vec<(http::HeaderName, http::HeaderValue)>);

/// An `OPTIONS` that asks whether a request may be made (the Fetch standard's CORS preflight).
fn is_preflight(headers: &http::HeaderMap) -> bool {
    headers.contains_key(http::header::ORIGIN) && headers.contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// The CORS headers the layer gives an actual (not preflight) request from `origin`.
async fn actual_request_headers(
    layer: tower_http::cors::CorsLayer,
    origin: http::HeaderValue,
) -> Vec<(http::HeaderName, http::HeaderValue)> {
    use tower::{Layer, ServiceExt};
    let mut probe = Request::new(axum::body::Body::empty());
    probe.headers_mut().insert(http::header::ORIGIN, origin);
    let empty = tower::service_fn(|_: Request| async {
        Ok::<_, std::convert::Infallible>(Response::new(axum::body::Body::empty()))
    });
    match layer.layer(empty).oneshot(probe).await {
        Ok(resp) => resp
            .headers()
            .iter()
            .filter(|(name, _)| name.as_str().starts_with("access-control-") || *name == http::header::VARY)
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect(),
        Err(never) => match never {},
    }
}
