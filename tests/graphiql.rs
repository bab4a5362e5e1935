//! GraphiQL in a real browser: the shipped configuration served by the real binary with `--demo`,
//! Debian's chromium driven headless by playwright-core (pinned in `tests/graphiql/`): the page
//! loads with no token, every asset comes from Facade under its Content-Security-Policy, and an
//! operation run with a token set in the Headers editor shows its result.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

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
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "the browser test needs Debian's chromium at {chromium} (`.ci/run` installs it: apt-get install -y chromium)"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("tests/graphiql");
    ensure_installed(&dir);
    let bin = env!("CARGO_BIN_EXE_facade");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let _server = Server(
        Command::new(bin)
            .args(["serve", "--demo", "--listen", &listen, "--config"])
            .arg(root.join("facade.yaml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://{listen}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .unwrap();
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "the demo server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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

    let token = Command::new(bin)
        .args(["token", "--sub", "u1", "--config"])
        .arg(root.join("facade.yaml"))
        .output()
        .unwrap();
    let token = String::from_utf8(token.stdout).unwrap().trim().to_string();
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
