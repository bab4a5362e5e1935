//! Scenario tests as data: every folder under `tests/scenarios/` holds a `composition.yaml` and a
//! `case.json` (what each backend answers per path, the request, and the expected response). One
//! test runs them all against real backends and the real server, so a new case needs no code.
//!
//! `case.json`:
//! ```json
//! { "backends": { "users": { "/users/1001": { "status": 200, "body": {}, "delay_ms": 0 } } },
//!   "request": { "method": "GET", "path": "/x", "token": { "sub": "1001" }, "headers": {}, "body": {} },
//!   "expect": { "status": 200, "headers": { "x-facade-partial": "cart" }, "body": {} } }
//! ```
//! A backend path that is not listed answers 404.

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

async fn run_case(dir: &Path) -> Result<(), String> {
    let case: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("case.json")).map_err(|e| e.to_string())?)
        .map_err(|e| format!("case.json: {e}"))?;
    let composition = std::fs::read_to_string(dir.join("composition.yaml")).map_err(|e| e.to_string())?;
    let mut backends = Vec::new();
    let mut facade = String::from("services:\n");
    for (name, routes) in case["backends"].as_object().cloned().unwrap_or_default() {
        let routes = routes.as_object().cloned().unwrap_or_default();
        let backend = Backend::start(move |seen| {
            let path = seen.uri.split('?').next().unwrap_or_default();
            match routes.get(&seen.uri).or_else(|| routes.get(path)) {
                Some(r) => Reply {
                    status: r["status"].as_u64().unwrap_or(200) as u16,
                    body: r["body"].to_string(),
                    delay: Duration::from_millis(r["delay_ms"].as_u64().unwrap_or(0)),
                    headers: Vec::new(),
                },
                None => Reply::status(404, json!({"error": "no such fixture"})),
            }
        })
        .await;
        facade.push_str(&format!("  {name}:\n    url: {}\n    timeout: 1s\n", backend.url()));
        backends.push(backend);
    }
    facade.push_str(AUTH);
    let project = Project::new(&facade, &[("case.yaml", &composition)]);
    let gw = Gateway::start(project.plan(&[])).await;

    let req = &case["request"];
    let method =
        reqwest::Method::from_bytes(req["method"].as_str().unwrap_or("GET").as_bytes()).map_err(|e| e.to_string())?;
    let mut builder = client().request(method, gw.url(req["path"].as_str().unwrap_or("/")));
    if let Some(claims) = req.get("token").filter(|t| t.is_object()) {
        let sub = claims["sub"].as_str().unwrap_or("user");
        builder = builder.bearer_auth(token(sub, claims.clone()));
    }
    for (k, v) in req["headers"].as_object().cloned().unwrap_or_default() {
        builder = builder.header(k, v.as_str().unwrap_or_default());
    }
    if let Some(body) = req.get("body") {
        builder = builder.json(body);
    }
    let resp = builder.send().await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body: Value = resp.json().await.unwrap_or(Value::Null);

    let expect = &case["expect"];
    let mut problems = Vec::new();
    if let Some(s) = expect["status"].as_u64() {
        if s != status as u64 {
            problems.push(format!("status {status}, expected {s}"));
        }
    }
    for (k, v) in expect["headers"].as_object().cloned().unwrap_or_default() {
        let got = headers.get(&k).and_then(|h| h.to_str().ok());
        let want = v.as_str();
        if got != want {
            problems.push(format!("header {k}: {got:?}, expected {want:?}"));
        }
    }
    if let Some(want) = expect.get("body") {
        // `request_id` differs on every run; every other field must match exactly.
        let mut got = body.clone();
        if let Some(m) = got.as_object_mut() {
            if want.get("request_id").is_none() {
                m.remove("request_id");
            }
        }
        if &got != want {
            problems.push(format!("body {got}, expected {want}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

#[tokio::test]
async fn every_scenario_folder() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no scenarios under {}", root.display());
    let mut failures = Vec::new();
    for dir in &dirs {
        if let Err(e) = run_case(dir).await {
            failures.push(format!(
                "{}: {e}",
                dir.file_name().unwrap_or_default().to_string_lossy()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed:\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n")
    );
}
