//! The built-in demo backends of `facade serve --demo` (SPEC §2).
//!
//! One small HTTP server per service with a `demo:` folder, on an ephemeral loopback port.
//! Layout of a fixture folder (documented in the README):
//! - `GET /a/b` answers the file `a/b.json`; a path segment may be matched by a file or folder
//!   named `_` (`users/_.json` answers `/users/<anything>`); exact names win over `_`.
//! - `POST /a/b/<field>` appends the JSON body to the array `<field>` of the document that
//!   `GET /a/b` answers, keeps the changed document in memory and answers it: the demo's state
//!   really changes (the cart grows).
//! - `?limit=N` keeps the first N items of the answer when it is an array, else of each of its
//!   top-level array fields (so `?reviews=2` on the web product page gives two reviews); other
//!   query parameters are ignored.
//! - Anything else is 404 (`{"error": "not_found"}`).

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// A service's fixtures and the changes made to them.
#[derive(Debug, Default)]
pub struct Fixtures {
    files: HashMap<Vec<String>, Value>,
    changed: Mutex<HashMap<Vec<String>, Value>>,
}

impl Fixtures {
    /// Loads every `*.json` under `dir`.
    pub fn load(dir: &Path) -> Result<Fixtures, String> {
        let mut files = HashMap::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let entries = std::fs::read_dir(&d).map_err(|e| format!("cannot read demo folder {}: {e}", d.display()))?;
            for entry in entries.flatten() {
                let p = entry.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "json") {
                    let text = std::fs::read_to_string(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
                    let value: Value =
                        serde_json::from_str(&text).map_err(|e| format!("{}: invalid JSON: {e}", p.display()))?;
                    let rel = p.strip_prefix(dir).unwrap_or(&p).with_extension("");
                    let key: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
                    files.insert(key, value);
                }
            }
        }
        Ok(Fixtures {
            files,
            changed: Mutex::new(HashMap::new()),
        })
    }

    fn get(&self, segs: &[String]) -> Option<Value> {
        if let Some(v) = self.changed.lock().unwrap_or_else(|p| p.into_inner()).get(segs) {
            return Some(v.clone());
        }
        if let Some(v) = self.files.get(segs) {
            return Some(v.clone());
        }
        self.files
            .iter()
            .filter(|(k, _)| k.len() == segs.len() && k.iter().zip(segs).all(|(a, b)| a == b || a == "_"))
            .min_by_key(|(k, _)| k.iter().filter(|s| *s == "_").count())
            .map(|(_, v)| v.clone())
    }

    fn append(&self, segs: &[String], body: Value) -> Option<Value> {
        let (field, parent) = segs.split_last()?;
        let mut doc = self.get(parent)?;
        let obj = doc.as_object_mut()?;
        let arr = obj.entry(field.clone()).or_insert_with(|| Value::Array(Vec::new()));
        arr.as_array_mut()?.push(body);
        self.changed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(parent.to_vec(), doc.clone());
        Some(doc)
    }
}

/// A demo server's state: its service's name (for the log line) and fixtures.
type DemoState = (Arc<str>, Arc<Fixtures>);

async fn answer(State((service, fx)): State<DemoState>, req: Request) -> Response {
    // One line per backend request at debug level (`FACADE_LOG=facade::demo=debug`): it shows
    // which backends a REST or GraphQL request really called.
    tracing::debug!(service = %service, method = %req.method(), path = %req.uri(), "demo backend request");
    let segs: Vec<String> = req
        .uri()
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let not_found = || (StatusCode::NOT_FOUND, axum::Json(json!({"error": "not_found"}))).into_response();
    match *req.method() {
        http::Method::GET | http::Method::HEAD => match fx.get(&segs) {
            Some(v) => axum::Json(limited(v, req.uri().query())).into_response(),
            None => not_found(),
        },
        http::Method::POST => {
            let Ok(bytes) = axum::body::to_bytes(req.into_body(), 1 << 20).await else {
                return StatusCode::PAYLOAD_TOO_LARGE.into_response();
            };
            let Ok(body) = serde_json::from_slice::<Value>(&bytes) else {
                return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "bad_json"}))).into_response();
            };
            match fx.append(&segs, body) {
                Some(v) => axum::Json(v).into_response(),
                None => not_found(),
            }
        }
        _ => (
            StatusCode::METHOD_NOT_ALLOWED,
            axum::Json(json!({"error": "method_not_allowed"})),
        )
            .into_response(),
    }
}

/// Applies `?limit=N` (see the module's doc).
fn limited(mut v: Value, query: Option<&str>) -> Value {
    let limit = query
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("limit="))
        .and_then(|n| n.parse::<usize>().ok());
    let Some(limit) = limit else { return v };
    match &mut v {
        Value::Array(items) => items.truncate(limit),
        Value::Object(fields) => {
            for field in fields.values_mut() {
                if let Value::Array(items) = field {
                    items.truncate(limit);
                }
            }
        }
        _ => {}
    }
    v
}

/// Starts one demo server for `service` from `dir` on `127.0.0.1:0` and returns its base URL.
pub async fn start(service: &str, dir: &Path) -> Result<String, String> {
    let fixtures = Arc::new(Fixtures::load(dir)?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let state: DemoState = (Arc::from(service), fixtures);
    let app = axum::Router::new().fallback(answer).with_state(state);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}"))
}

/// The demo servers started so far, by service name and fixture folder, so that a reload points
/// the same services at the same servers (their changed state included) and starts only new ones.
pub type Started = std::collections::HashMap<(String, std::path::PathBuf), String>;

/// Starts the demo servers of a plan (those not started yet) and points its services at them.
pub async fn start_all(plan: &mut crate::plan::Plan, started: &mut Started) -> Result<(), String> {
    let demo = plan.demo.clone();
    for (index, dir) in demo {
        let name = plan.services[index].name.to_string();
        let key = (name.clone(), dir.clone());
        let url = match started.get(&key) {
            Some(url) => url.clone(),
            None => {
                let url = start(&name, &dir).await?;
                tracing::info!(service = %name, url = %url, "demo backend started");
                started.insert(key, url.clone());
                url
            }
        };
        plan.services[index].base = reqwest::Url::parse(&url).map_err(|e| e.to_string())?;
        plan.services[index].base_path = crate::plan::base_path(&url);
        plan.services[index].origin = crate::plan::origin(&url);
    }
    Ok(())
}
