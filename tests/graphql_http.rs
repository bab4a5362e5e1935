//! The `graphql-http` server audit (the npm package's `serverAudits`, pinned in
//! `tests/graphql-http/package-lock.json`) run with Node against the real server: every MUST and
//! every SHOULD of GraphQL over HTTP must pass.

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const COMPOSITION: &str = r#"
client: app
base_path: /app
endpoints:
  hello:
    get: /hello
    calls: { h: { service: data, get: /h } }
    response: { text: "$.h.text" }
  save:
    post: /save
    calls: { s: { service: data, post: /s } }
    response: { ok: "$.s.ok" }
"#;

/// Installs the pinned audit package when it is not there yet (`npm ci` from the lockfile).
fn ensure_installed(dir: &Path) {
    if dir.join("node_modules/graphql-http").is_dir() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .status()
        .expect("npm must be installed to run the graphql-http audit");
    assert!(status.success(), "npm ci failed in {}", dir.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_graphql_http_server_audit_passes_every_must_and_should() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/graphql-http");
    ensure_installed(&dir);
    let data = Backend::fixed(json!({"text": "hi", "ok": true})).await;
    let yaml = format!(
        "services:\n  data:\n    url: {}\n{AUTH}graphql:\n  auth: none\n",
        data.url()
    );
    let p = Project::new(&yaml, &[("app.yaml", COMPOSITION)]);
    let gw = Gateway::start(p.plan(&[])).await;
    let url = gw.url("/graphql");
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new("node")
            .arg("audit.mjs")
            .arg(&url)
            .current_dir(&dir)
            .output(),
    )
    .await
    .expect("the audit finishes within two minutes")
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let results: Vec<Value> = stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(
        results.len() > 40,
        "the audit ran: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let failed: Vec<&Value> = results
        .iter()
        .filter(|r| r["status"] != "ok")
        .filter(|r| {
            let name = r["name"].as_str().unwrap_or("");
            name.starts_with("MUST") || name.starts_with("SHOULD")
        })
        .collect();
    assert!(failed.is_empty(), "failed audits: {failed:#?}");
    assert!(output.status.success());
}
