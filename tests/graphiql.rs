//! GraphiQL in a real browser: the shipped configuration served by the real binary with `--demo`,
//! Debian's chromium driven headless by playwright-core (pinned in `tests/graphiql/`): the page
//! loads with no token, every asset comes from Facade under its Content-Security-Policy, and an
//! operation run with a token set in the Headers editor shows its result.

mod common;

use std::path::Path;
use std::process::Command;

fn ensure_installed(dir: &Path) {
    if dir.join("node_modules/playwright-core").is_dir() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .status()
        .expect("npm must be installed for the browser test");
    assert!(status.success(), "npm ci failed in {}", dir.display());
}

#[tokio::test]
async fn graphiql_runs_an_operation_in_a_headless_browser() {
    let chromium = match std::env::var("CHROMIUM") {
        Ok(path) => path,
        Err(_) => {
            common::ensure_debian_package("chromium", "chromium");
            "/usr/bin/chromium".into()
        }
    };
    assert!(
        Path::new(&chromium).exists(),
        "the browser test needs Debian's chromium at {chromium} (`.ci/run` installs it: apt-get install -y chromium)"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("tests/graphiql");
    ensure_installed(&dir);
    let server = common::DemoServer::start(&[]).await;
    let base = server.base.clone();
    let client = common::client();
    // The page: no token needed, the policy of SPEC §5, no inline script.
    let page = client
        .get(format!("{base}/graphql"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(
        page.headers()["content-security-policy"],
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:"
    );
    let html = page.text().await.unwrap();
    assert_eq!(
        html.matches("<script").count(),
        html.matches("<script src=\"/graphql/assets/").count()
    );
    let css = client
        .get(format!("{base}/graphql/assets/graphiql.min.css"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!css.contains("data:font"), "fonts are served as assets, not data: URLs");

    let token = server.token("u1");
    let out = tokio::process::Command::new("timeout")
        .args(["120", "node", "graphiql.mjs"])
        .arg(format!("{base}/graphql"))
        .arg(&token)
        .arg("{ mobile { home { greeting } } }")
        .arg("Welcome back, Ada")
        .env("CHROMIUM", &chromium)
        .current_dir(&dir)
        .output()
        .await
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(
        report["foreign"],
        serde_json::json!([]),
        "nothing from another origin: {report}"
    );
    assert_eq!(
        report["violations"],
        serde_json::json!([]),
        "no policy violation: {report}"
    );
    assert_eq!(report["ok"], true, "{report}");
    assert!(report["result"].as_str().unwrap().contains("Welcome back, Ada"));
}
