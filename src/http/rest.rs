//! Composed REST endpoints: route lookup in the plan, authentication, parameter conversion, the
//! executor, and the JSON answer with `X-Facade-Partial`.

use super::error::{json_bytes, ApiError};
use crate::config::model::{BaseType, ParamSource};
use crate::exec::{Dedup, RequestCtx};
use crate::middleware::auth::authenticate;
use crate::middleware::front::{RequestId, RouteLabel};
use crate::plan::args::{convert, convert_text};
use crate::plan::{Endpoint, Plan};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, StatusCode};
use serde_json::{Map, Value};
use std::sync::Arc;

/// Answers every request that no fixed route took.
pub async fn handle(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or(HeaderValue::from_static("-"));
    let plan = state.plan();
    let path = req.uri().path().to_string();
    // HEAD is answered like GET, without a body (hyper drops it).
    let lookup = if req.method() == http::Method::HEAD {
        http::Method::GET
    } else {
        req.method().clone()
    };
    let Some(found) = plan.routes.find(&lookup, &path) else {
        let allowed = plan.routes.methods_at(&path);
        if !allowed.is_empty() {
            let list: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
            return ApiError::new(
                405,
                "method_not_allowed",
                format!("{} is not allowed here", req.method()),
                &request_id,
            )
            .header(
                http::header::ALLOW,
                HeaderValue::from_str(&list.join(", ")).unwrap_or(HeaderValue::from_static("")),
            )
            .into_response();
        }
        return ApiError::new(
            404,
            "not_found",
            format!("no route for {} {path}", req.method()),
            &request_id,
        )
        .into_response();
    };
    let endpoint = plan.endpoints[found.index].clone();
    if let Some(name) = &found.undecodable {
        let message = format!("path parameter `{name}` is not valid UTF-8 once percent-decoded");
        let mut resp = ApiError::new(400, "bad_request", message, &request_id).into_response();
        resp.extensions_mut().insert(RouteLabel(endpoint.path.clone()));
        return resp;
    }
    let mut resp = run(&state, &plan, &endpoint, found.params, req, &request_id).await;
    resp.extensions_mut().insert(RouteLabel(endpoint.path.clone()));
    resp
}

async fn run(
    state: &AppState,
    plan: &Plan,
    endpoint: &Endpoint,
    path_params: Vec<(String, String)>,
    req: Request,
    request_id: &HeaderValue,
) -> Response {
    let authenticated = match authenticate(plan.auth.as_ref(), endpoint.auth, &endpoint.roles, req.headers()) {
        Ok(a) => a,
        Err(e) => {
            let mut err = ApiError::new(e.status(), e.code(), e.message(), request_id);
            if let Some(w) = e.www_authenticate() {
                err = err.header(http::header::WWW_AUTHENTICATE, HeaderValue::from_static(w));
            }
            return err.into_response();
        }
    };
    let traceparent = req.headers().get("traceparent").cloned();
    let args = match read_args(endpoint, path_params, req, plan.limits.request_body).await {
        Ok(a) => a,
        Err((status, code, message)) => return ApiError::new(status, code, message, request_id).into_response(),
    };
    let ctx = RequestCtx::new(
        args,
        authenticated.claims,
        authenticated.forwarded,
        request_id.clone(),
        traceparent,
    );
    finish(state, plan, endpoint, ctx).await
}

async fn finish(state: &AppState, plan: &Plan, endpoint: &Endpoint, ctx: RequestCtx) -> Response {
    let dedup = Dedup::default();
    match state.exec.run(plan, endpoint, &ctx, &dedup).await {
        Ok(outcome) => {
            let mut resp = json_bytes(StatusCode::OK, outcome.write_json(&endpoint.response));
            if !outcome.partial.is_empty() {
                let names: Vec<&str> = outcome.partial.iter().map(|p| p.call.as_str()).collect();
                if let Ok(v) = HeaderValue::from_str(&names.join(", ")) {
                    resp.headers_mut()
                        .insert(HeaderName::from_static("x-facade-partial"), v);
                }
            }
            resp
        }
        Err(e) => {
            let mut err = ApiError::new(e.status(), e.code(), e.message(), &ctx.request_id);
            if let crate::exec::ExecError::CallFailed { call, service, .. } = &e {
                err = err
                    .with("call", Value::String(call.clone()))
                    .with("service", Value::String(service.clone()));
            }
            if let Some(details) = e.details() {
                err = err.with("details", details.clone());
            }
            err.into_response()
        }
    }
}

type ArgError = (u16, &'static str, String);

/// Reads path, query, header and body parameters and converts them to their declared types.
async fn read_args(
    endpoint: &Endpoint,
    path_params: Vec<(String, String)>,
    req: Request,
    body_limit: u64,
) -> Result<Value, ArgError> {
    let bad = |m: String| (400u16, "bad_request", m);
    let (parts, body) = req.into_parts();
    let mut args = Map::with_capacity(endpoint.params.len());
    let query: Vec<(String, String)> = parts.uri.query().map(form_urlencoded_pairs).unwrap_or_default();
    let needs_body = endpoint.params.iter().any(|p| p.source == ParamSource::Body);
    let body_json: Option<Map<String, Value>> = if needs_body {
        let bytes = axum::body::to_bytes(body, body_limit as usize).await.map_err(|_| {
            (
                413u16,
                "payload_too_large",
                format!("the request body is larger than {body_limit} bytes"),
            )
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            Some(Map::new())
        } else {
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(m)) => Some(m),
                Ok(_) => return Err(bad("the request body must be a JSON object".into())),
                Err(e) => return Err(bad(format!("the request body is not valid JSON: {e}"))),
            }
        }
    } else {
        None
    };
    for p in &endpoint.params {
        let name = &p.name.value;
        let value = match &p.source {
            ParamSource::Path => {
                let text = path_params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
                match text {
                    Some(t) => {
                        Some(convert_text(&[t], &p.ty).map_err(|e| bad(format!("path parameter `{name}` {e}")))?)
                    }
                    None => None,
                }
            }
            ParamSource::Query => {
                let texts: Vec<&str> = query
                    .iter()
                    .filter(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str())
                    .collect();
                if texts.is_empty() {
                    None
                } else {
                    Some(convert_text(&texts, &p.ty).map_err(|e| bad(format!("query parameter `{name}` {e}")))?)
                }
            }
            ParamSource::Header(h) => {
                let texts: Vec<&str> = parts
                    .headers
                    .get_all(h.as_str())
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect();
                if texts.is_empty() {
                    None
                } else if matches!(p.ty.base, BaseType::List(_)) {
                    let split: Vec<&str> = texts.iter().flat_map(|t| t.split(',')).map(str::trim).collect();
                    Some(convert_text(&split, &p.ty).map_err(|e| bad(format!("header `{h}` {e}")))?)
                } else {
                    Some(convert_text(&texts, &p.ty).map_err(|e| bad(format!("header `{h}` {e}")))?)
                }
            }
            ParamSource::Body => match body_json.as_ref().and_then(|b| b.get(name)) {
                Some(v) if v.is_null() && !p.ty.required => None,
                Some(v) => Some(convert(v, &p.ty).map_err(|e| bad(format!("body field `{name}` {e}")))?),
                None => None,
            },
        };
        let value = match value {
            Some(v) => v,
            None => match &p.default {
                Some(d) => convert(d, &p.ty).unwrap_or(Value::Null),
                None if p.ty.required => {
                    let place = match &p.source {
                        ParamSource::Path => "path parameter",
                        ParamSource::Query => "query parameter",
                        ParamSource::Header(_) => "header",
                        ParamSource::Body => "body field",
                    };
                    return Err(bad(format!("the required {place} `{name}` is missing")));
                }
                None => Value::Null,
            },
        };
        args.insert(name.clone(), value);
    }
    Ok(Value::Object(args))
}

fn form_urlencoded_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let dec = |s: &str| {
                let s = s.replace('+', " ");
                percent_encoding::percent_decode_str(&s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (dec(k), dec(v))
        })
        .collect()
}
