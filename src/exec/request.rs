//! Turns a planned call plus the data document into a concrete backend request (SPEC §4.2):
//! path values percent-encoded one segment each, query parameters rendered, headers set, body
//! built, and the dedup and cache keys derived.

use super::eval::{eval, render, Scope};
use super::RequestCtx;
use crate::plan::{Call, PathPart, Service};
use crate::upstream::CallRequest;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;
use std::sync::Arc;

/// Everything but RFC 3986's unreserved characters is encoded, so a value can never add a path
/// segment, a query or a fragment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Why a request could not be built.
#[derive(Debug, Clone, PartialEq)]
pub enum BuildError {
    /// A path value from `args` or `auth` is unusable: the client's fault (400).
    Client(String),
    /// A value from another call is unusable: the call is not made and counts as failed.
    NotMade(String),
}

/// A request ready to send, with the keys that identify it.
#[derive(Debug)]
pub struct Built {
    /// The request.
    pub request: CallRequest,
    /// Identical GET calls share this key within one request.
    pub dedup_key: Option<String>,
    /// The cache key and time to live, for `cache:` calls.
    pub cache_key: Option<(String, std::time::Duration)>,
}

/// Builds the request of `call` for one item (or none).
pub fn build(call: &Call, service: &Service, scope: Scope<'_>, ctx: &RequestCtx) -> Result<Built, BuildError> {
    // `url` is the path and query; the key of identical requests puts the service in front.
    let mut url = String::with_capacity(64);
    url.push_str(&service.base_path);
    for part in &call.path {
        match part {
            PathPart::Text(t) => url.push_str(t),
            PathPart::Value {
                expr,
                from_client,
                text,
            } => {
                let v = eval(expr, scope);
                let rendered = render(&v);
                if v.is_null() || rendered.is_empty() || rendered == "." || rendered == ".." {
                    let what = if v.is_null() {
                        "null".to_string()
                    } else {
                        format!("\"{rendered}\"")
                    };
                    let message = format!("the path value `{text}` of call `{}` is {what}", call.name);
                    return Err(if *from_client {
                        BuildError::Client(message)
                    } else {
                        BuildError::NotMade(message)
                    });
                }
                url.extend(utf8_percent_encode(&rendered, SEGMENT));
            }
        }
    }
    let mut first = true;
    for (name, expr) in &call.query {
        let v = eval(expr, scope);
        let mut push = |value: &Value| {
            if value.is_null() {
                return;
            }
            url.push(if first { '?' } else { '&' });
            first = false;
            url.extend(utf8_percent_encode(name, SEGMENT));
            url.push('=');
            url.extend(utf8_percent_encode(&render(value), SEGMENT));
        };
        match &v {
            Value::Array(items) => items.iter().for_each(&mut push),
            other => push(other),
        }
    }

    let mut headers = HeaderMap::new();
    let mut own_headers = String::new();
    for (name, expr) in &call.headers {
        let v = eval(expr, scope);
        if v.is_null() {
            continue;
        }
        let text = render(&v);
        let value = HeaderValue::from_str(&text).map_err(|_| {
            BuildError::NotMade(format!(
                "header `{name}` of call `{}` is not a valid header value",
                call.name
            ))
        })?;
        own_headers.push_str(name.as_str());
        own_headers.push(':');
        own_headers.push_str(&text);
        own_headers.push('\n');
        headers.insert(name.clone(), value);
    }
    let identity = &ctx.identity;
    for (name, value) in ctx.forwarded.iter() {
        if !headers.contains_key(name) {
            headers.insert(name.clone(), value.clone());
        }
    }
    // Without `Accept-Encoding`, RFC 9110 lets a backend pick any coding (some gzip whatever
    // they are sent); the answer is read as JSON, so ask for it as it is, unless the call's own
    // `headers` say otherwise.
    if !headers.contains_key(http::header::ACCEPT_ENCODING) {
        headers.insert(http::header::ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    }
    // The answer is read as JSON: a backend that negotiates (Spring with an XML converter, Rails'
    // `respond_to`) answers in its first format when `Accept` says nothing.
    if !headers.contains_key(http::header::ACCEPT) {
        headers.insert(http::header::ACCEPT, HeaderValue::from_static("application/json"));
    }
    headers.insert(crate::upstream::X_REQUEST_ID, ctx.request_id.clone());
    if let Some(tp) = &ctx.traceparent {
        headers.insert(HeaderName::from_static("traceparent"), tp.clone());
    }

    let body = call
        .body
        .as_ref()
        .map(|b| Bytes::from(serde_json::to_vec(&eval(b, scope)).unwrap_or_default()));
    let method = call.method;
    let is_get = call.method == crate::config::model::Method::Get;
    let (shared, whole) = match ctx.sharing {
        super::Sharing::Endpoint => (call.dedup, false),
        // An answer shared with another endpoint's call is read by both: parsed whole. An
        // endpoint selected twice shares only with itself, with the same shape.
        super::Sharing::Operation { repeated } => (
            call.dedup || (is_get && (call.shared_in_plan || repeated)),
            !call.dedup && is_get && call.shared_in_plan,
        ),
    };
    let dedup_key = shared.then(|| {
        let mut k = String::with_capacity(url.len() + own_headers.len() + identity.len() + 8);
        k.push_str("GET ");
        k.push_str(&service.origin);
        k.push_str(&url);
        k.push('\n');
        k.push_str(&own_headers);
        k.push('\u{1}');
        k.push_str(identity);
        k
    });
    // Keyed by what the call really sends (the service's origin and the whole path, not its
    // name): a reload that points a service elsewhere never serves the old backend's answers.
    let cache_key = call.cache.map(|policy| {
        let mut k = format!("GET {}{url}\n{own_headers}\u{1}", service.origin);
        if !policy.shared {
            k.push_str(identity);
        }
        (k, policy.ttl)
    });
    let mut full = service.base.clone();
    match url.split_once('?') {
        Some((path, query)) => {
            full.set_path(path);
            full.set_query(Some(query));
        }
        None => {
            full.set_path(&url);
            full.set_query(None);
        }
    }
    Ok(Built {
        request: CallRequest {
            method,
            url: full,
            headers,
            body,
            timeout: call.timeout,
            retries: call.retries,
            // A shared answer is read by other calls too: it is parsed whole.
            shape: if whole {
                Arc::new(crate::plan::shape::Shape::All)
            } else {
                call.shape.clone()
            },
            service: service.name.clone(),
            breaker: service.circuit_breaker,
        },
        dedup_key,
        cache_key,
    })
}
