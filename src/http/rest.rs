//! Composed REST endpoints, after route resolution and access: parameter conversion (the body
//! held to `limits.request_body`), the executor, and the JSON answer with `X-Facade-Partial`.

use super::error::{json_bytes, HttpError};
use crate::config::args::{convert, convert_text};
use crate::config::model::{BaseType, ParamSource};
use crate::exec::{Dedup, RequestCtx};
use crate::middleware::auth::Authenticated;
use crate::plan::routes::Matched;
use crate::plan::{Endpoint, Param, Plan};
use crate::state::AppState;
use axum::extract::Request;
use axum::response::Response;
use http::{HeaderName, HeaderValue, StatusCode};
use serde_json::{Map, Value};

/// Runs a composed endpoint for a request that passed the access stage.
pub async fn handle(
    state: &AppState,
    plan: &Plan,
    endpoint: &Endpoint,
    found: Matched,
    authenticated: Authenticated,
    req: Request,
    request_id: &HeaderValue,
) -> Result<Response, HttpError> {
    if let Some(name) = &found.undecodable {
        return Err(HttpError::bad_request(format!(
            "path parameter `{name}` is not valid UTF-8 once percent-decoded"
        )));
    }
    let limit = plan.limits.request_body;
    // A declared length above the limit is refused before a byte of the body is read.
    if crate::upstream::declared_length(req.headers()).is_some_and(|n| n > limit) {
        return Err(HttpError::payload_too_large(limit));
    }
    let traceparent = req.headers().get("traceparent").cloned();
    let args = read_args(endpoint, found.params, req, limit).await?;
    let ctx = RequestCtx::new(
        args,
        authenticated.claims,
        authenticated.forwarded,
        request_id.clone(),
        traceparent,
    );
    let dedup = Dedup::default();
    let outcome = state.exec.run(plan, endpoint, &ctx, &dedup).await?;
    let mut resp = json_bytes(StatusCode::OK, outcome.write_json(&endpoint.response));
    if !outcome.partial.is_empty() {
        let names: Vec<&str> = outcome.partial.iter().map(|p| p.call.as_str()).collect();
        if let Ok(v) = HeaderValue::from_str(&names.join(", ")) {
            resp.headers_mut()
                .insert(HeaderName::from_static("x-facade-partial"), v);
        }
    }
    Ok(resp)
}

/// Reads path, query, header and body parameters and converts them to their declared types.
async fn read_args(
    endpoint: &Endpoint,
    path_params: Vec<(String, String)>,
    req: Request,
    body_limit: u64,
) -> Result<Value, HttpError> {
    let bad = HttpError::bad_request;
    let (parts, body) = req.into_parts();
    let mut args = Map::with_capacity(endpoint.params.len());
    let query: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let needs_body = endpoint.params.iter().any(|p| p.source == ParamSource::Body);
    let body_json: Option<Map<String, Value>> = if needs_body {
        // Counted while reading, so a chunked body is held to the limit too.
        let bytes = axum::body::to_bytes(body, body_limit as usize)
            .await
            .map_err(|e| HttpError::body_unread(&e, body_limit))?;
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
        let name = &p.name;
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
            ParamSource::Header(h) => header_param(p, h, &parts.headers).map_err(bad)?,
            ParamSource::Body => match body_json.as_ref().and_then(|b| b.get(name)) {
                Some(v) if v.is_null() && !p.ty.required => None,
                Some(v) => Some(convert(v, &p.ty).map_err(|e| bad(format!("body field `{name}` {e}")))?),
                None => None,
            },
        };
        let value = with_default(p, value).map_err(bad)?;
        args.insert(name.clone(), value);
    }
    Ok(Value::Object(args))
}

/// A header parameter from the request's headers (a list type splits at commas), converted.
pub fn header_param(p: &Param, h: &str, headers: &http::HeaderMap) -> Result<Option<Value>, String> {
    let texts: Vec<&str> = headers.get_all(h).iter().filter_map(|v| v.to_str().ok()).collect();
    if texts.is_empty() {
        return Ok(None);
    }
    let converted = if matches!(p.ty.base, BaseType::List(_)) {
        let split: Vec<&str> = texts.iter().flat_map(|t| t.split(',')).map(str::trim).collect();
        convert_text(&split, &p.ty)
    } else {
        convert_text(&texts, &p.ty)
    };
    converted.map(Some).map_err(|e| format!("header `{h}` {e}"))
}

/// A parameter's value, its default when the request gave none, or why a required one is missing.
pub fn with_default(p: &Param, value: Option<Value>) -> Result<Value, String> {
    match value {
        Some(v) => Ok(v),
        None => match &p.default {
            Some(d) => Ok(d.clone()),
            None if p.ty.required => {
                let place = match &p.source {
                    ParamSource::Path => "path parameter",
                    ParamSource::Query => "query parameter",
                    ParamSource::Header(_) => "header",
                    ParamSource::Body => "body field",
                };
                Err(format!("the required {place} `{}` is missing", p.name))
            }
            None => Ok(Value::Null),
        },
    }
}
