//! The one place failures become HTTP (SPEC §9): every stage's error converts into `HttpError`,
//! which is written as `{"error", "message", "request_id", …}` with its status and headers. The
//! status codes of §4.2 (failed calls), §6 (auth) and §8 (passthrough) are decided here and
//! nowhere else.

use crate::exec::ExecError;
use crate::middleware::auth::AuthError;
use crate::upstream::{CallError, ForwardError};
use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, StatusCode};
use serde_json::{Map, Value};

/// A failure of any stage of a request, ready to be answered (boxed: it travels in every
/// `Result` of the request path, which should stay small).
#[derive(Debug)]
pub struct HttpError(Box<ErrorParts>);

/// What an error answer holds.
#[derive(Debug)]
pub struct ErrorParts {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable code.
    pub code: &'static str,
    /// For a person; never a backend URL, a backend body or a secret.
    pub message: String,
    /// More body fields (`call`, `service`, `details`).
    pub extra: Map<String, Value>,
    /// Extra response headers (`Allow`, `WWW-Authenticate`, `Retry-After`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl HttpError {
    /// A new error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> HttpError {
        HttpError(Box::new(ErrorParts {
            status,
            code,
            message: message.into(),
            extra: Map::new(),
            headers: Vec::new(),
        }))
    }

    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 405 with `Allow`.
    pub fn method_not_allowed(method: &http::Method, allow: &[&str]) -> HttpError {
        HttpError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not allowed here"),
        )
        .header(
            http::header::ALLOW,
            HeaderValue::from_str(&allow.join(", ")).unwrap_or(HeaderValue::from_static("")),
        )
    }

    /// 413 `payload_too_large`: a request body above `limits.request_body`.
    pub fn payload_too_large(limit: u64) -> HttpError {
        HttpError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than {limit} bytes"),
        )
    }

    /// A request body that could not be read whole, by why: above `limit` (413), paused too long
    /// by its client (408 `request_timeout`), or broken off (400).
    pub fn body_unread(e: &axum::Error, limit: u64) -> HttpError {
        if let Some(idle) = crate::idle::idle_cause(e) {
            return HttpError::request_timeout(idle);
        }
        if crate::idle::cause::<http_body_util::LengthLimitError>(e).is_some() {
            return HttpError::payload_too_large(limit);
        }
        HttpError::bad_request("the request body broke off before its end")
    }

    /// 408 `request_timeout`: the client paused its request body too long.
    pub fn request_timeout(idle: &crate::idle::BodyIdle) -> HttpError {
        HttpError::new(StatusCode::REQUEST_TIMEOUT, "request_timeout", idle.to_string())
    }

    /// Adds a body field.
    pub fn with(mut self, key: &str, value: Value) -> HttpError {
        self.0.extra.insert(key.to_string(), value);
        self
    }

    /// Adds a response header.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> HttpError {
        self.0.headers.push((name, value));
        self
    }

    /// The JSON answer, carrying the request's id.
    pub fn respond(self, request_id: &HeaderValue) -> Response {
        let parts = *self.0;
        let mut body = Map::new();
        body.insert("error".into(), Value::String(parts.code.into()));
        body.insert("message".into(), Value::String(parts.message));
        body.insert(
            "request_id".into(),
            Value::String(request_id.to_str().unwrap_or_default().to_string()),
        );
        body.extend(parts.extra);
        let mut resp = json_response(parts.status, &Value::Object(body));
        for (k, v) in parts.headers {
            resp.headers_mut().insert(k, v);
        }
        resp
    }
}

impl From<AuthError> for HttpError {
    fn from(e: AuthError) -> HttpError {
        // No JWKS key yet: the gateway's trouble, not the token's (SPEC §6: 503 until keys arrive).
        if e == AuthError::Invalid(crate::jwt::TokenError::KeysUnavailable) {
            return HttpError::new(StatusCode::SERVICE_UNAVAILABLE, "auth_unavailable", e.message())
                .header(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        let (status, code) = match &e {
            AuthError::Missing => (StatusCode::UNAUTHORIZED, "unauthorized"),
            AuthError::Invalid(_) => (StatusCode::UNAUTHORIZED, "invalid_token"),
            AuthError::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
        };
        let mut err = HttpError::new(status, code, e.message());
        let challenge = match &e {
            AuthError::Missing => Some("Bearer"),
            AuthError::Invalid(_) => Some("Bearer error=\"invalid_token\""),
            AuthError::Forbidden => None,
        };
        if let Some(w) = challenge {
            err = err.header(http::header::WWW_AUTHENTICATE, HeaderValue::from_static(w));
        }
        err
    }
}

impl From<crate::middleware::access::Refusal> for HttpError {
    /// SPEC §7: 429 `rate_limited` with `Retry-After` and the rate-limit headers; 503
    /// `rate_limit_unavailable` with `Retry-After: 1` under `on_store_error: deny`.
    fn from(r: crate::middleware::access::Refusal) -> HttpError {
        use crate::middleware::access::Refusal;
        let message = r.to_string();
        match r {
            Refusal::Auth(e) => e.into(),
            Refusal::Limited {
                headers, retry_after, ..
            } => {
                let mut err = HttpError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
                    .header(http::header::RETRY_AFTER, HeaderValue::from(retry_after));
                for (k, v) in headers.0 {
                    err = err.header(k, v);
                }
                err
            }
            Refusal::StoreUnavailable => {
                HttpError::new(StatusCode::SERVICE_UNAVAILABLE, "rate_limit_unavailable", message)
                    .header(http::header::RETRY_AFTER, HeaderValue::from_static("1"))
            }
        }
    }
}

impl From<ExecError> for HttpError {
    /// SPEC §4.2: a backend 404 gives 404, `errors: pass` keeps a backend 4xx, timeouts give 504,
    /// everything else 502 (the codes are the executor's).
    fn from(e: ExecError) -> HttpError {
        let message = e.message();
        let code = e.code();
        let ExecError::CallFailed {
            call,
            service,
            error,
            pass,
        } = e
        else {
            return HttpError::bad_request(message);
        };
        let status = match (&error, code) {
            (CallError::Status { status, .. }, "upstream_rejected") => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY)
            }
            (_, "not_found") => StatusCode::NOT_FOUND,
            (_, "upstream_timeout") => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::BAD_GATEWAY,
        };
        let mut err = HttpError::new(status, code, message)
            .with("call", Value::String(call))
            .with("service", Value::String(service));
        if let (CallError::Status { body: Some(b), .. }, true) = (&error, pass && code == "upstream_rejected") {
            err = err.with("details", (**b).clone());
        }
        err
    }
}

impl From<ForwardError> for HttpError {
    /// SPEC §8: connect error 502, no response headers in time 504, open circuit 503; an answer
    /// that broke off after its head but before any body byte was sent on: 502; a client whose
    /// upload paused too long: 408.
    fn from(e: ForwardError) -> HttpError {
        match e {
            ForwardError::Connect(_) => HttpError::new(
                StatusCode::BAD_GATEWAY,
                "upstream_failed",
                "the backend could not be reached",
            ),
            ForwardError::Timeout(d) => HttpError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "upstream_timeout",
                format!("the backend sent no response within {} ms", d.as_millis()),
            ),
            ForwardError::InvalidAnswer(why) => HttpError::new(
                StatusCode::BAD_GATEWAY,
                "upstream_failed",
                crate::upstream::invalid_answer_message(why),
            ),
            ForwardError::BrokenAnswer => HttpError::new(
                StatusCode::BAD_GATEWAY,
                "upstream_failed",
                "the backend's answer broke off before its body",
            ),
            // `Retry-After`: whole seconds until the circuit lets a trial through, at least 1.
            ForwardError::CircuitOpen(wait) => HttpError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "circuit_open",
                "the service's circuit is open after repeated failures; try again later",
            )
            .header(
                http::header::RETRY_AFTER,
                HeaderValue::from((wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)),
            ),
            ForwardError::ClientBody(idle) => HttpError::request_timeout(&idle),
        }
    }
}

/// A JSON response with a status.
pub fn json_response(status: StatusCode, value: &Value) -> Response {
    json_bytes(status, serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec()))
}

/// A response with JSON text already written.
pub fn json_bytes(status: StatusCode, bytes: Vec<u8>) -> Response {
    let mut resp = (status, bytes).into_response();
    resp.headers_mut()
        .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}
