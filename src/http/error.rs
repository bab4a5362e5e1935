//! The one place errors become HTTP: `{"error", "message", "request_id", …}` JSON bodies (SPEC §9).

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};
use serde_json::{Map, Value};

/// A JSON error answer.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable code.
    pub code: &'static str,
    /// For a person.
    pub message: String,
    /// The request's id.
    pub request_id: HeaderValue,
    /// More fields (`call`, `service`, `details`).
    pub extra: Map<String, Value>,
    /// Extra response headers.
    pub headers: Vec<(http::HeaderName, HeaderValue)>,
}

impl ApiError {
    /// A new error.
    pub fn new(status: u16, code: &'static str, message: impl Into<String>, request_id: &HeaderValue) -> ApiError {
        ApiError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code,
            message: message.into(),
            request_id: request_id.clone(),
            extra: Map::new(),
            headers: Vec::new(),
        }
    }

    /// Adds a body field.
    pub fn with(mut self, key: &str, value: Value) -> ApiError {
        self.extra.insert(key.to_string(), value);
        self
    }

    /// Adds a response header.
    pub fn header(mut self, name: http::HeaderName, value: HeaderValue) -> ApiError {
        self.headers.push((name, value));
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert("error".into(), Value::String(self.code.into()));
        body.insert("message".into(), Value::String(self.message));
        body.insert(
            "request_id".into(),
            Value::String(self.request_id.to_str().unwrap_or_default().to_string()),
        );
        body.extend(self.extra);
        let mut resp = json_response(self.status, &Value::Object(body));
        for (k, v) in self.headers {
            resp.headers_mut().insert(k, v);
        }
        resp
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
