//! Test harness: real HTTP backends on 127.0.0.1 ephemeral ports that record what they receive,
//! configurations written to temporary folders, and the real gateway served on `127.0.0.1:0`.
#![allow(dead_code)]

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use facade::exec::cache::{Clock, ManualClock};
use http::StatusCode;
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request a backend received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// The raw path and query, exactly as it arrived.
    pub uri: String,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What a backend answers.
#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub delay: Duration,
    /// Extra response headers.
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn json(v: Value) -> Reply {
        Reply {
            status: 200,
            body: v.to_string(),
            delay: Duration::ZERO,
            headers: Vec::new(),
        }
    }
    pub fn status(status: u16, v: Value) -> Reply {
        Reply {
            status,
            body: v.to_string(),
            delay: Duration::ZERO,
            headers: Vec::new(),
        }
    }
    pub fn raw(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: body.to_string(),
            delay: Duration::ZERO,
            headers: Vec::new(),
        }
    }
    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
    pub fn after(mut self, d: Duration) -> Reply {
        self.delay = d;
        self
    }
}

type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

struct BackendState {
    handler: Handler,
    seen: Mutex<Vec<Seen>>,
    count: AtomicUsize,
}

/// A real HTTP backend on an ephemeral loopback port.
pub struct Backend {
    pub addr: SocketAddr,
    state: Arc<BackendState>,
}

async fn backend_handler(State(state): State<Arc<BackendState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 64 << 20).await.unwrap_or_default().to_vec();
    let seen = Seen {
        method: parts.method.to_string(),
        uri: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default(),
        headers: parts.headers,
        body,
    };
    let reply = (state.handler)(&seen);
    state.count.fetch_add(1, Ordering::SeqCst);
    state.seen.lock().unwrap().push(seen);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut resp = (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
    resp.headers_mut()
        .insert(http::header::CONTENT_TYPE, "application/json".parse().unwrap());
    for (k, v) in &reply.headers {
        resp.headers_mut()
            .insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
    }
    resp
}

impl Backend {
    /// Starts a backend that answers with `handler`.
    pub async fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Backend {
        let state = Arc::new(BackendState {
            handler: Arc::new(handler),
            seen: Mutex::new(Vec::new()),
            count: AtomicUsize::new(0),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(backend_handler).with_state(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Backend { addr, state }
    }

    /// Always answers `v`.
    pub async fn fixed(v: Value) -> Backend {
        Backend::start(move |_| Reply::json(v.clone())).await
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn count(&self) -> usize {
        self.state.count.load(Ordering::SeqCst)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }
}

/// A configuration in a temporary folder.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    /// Writes `facade.yaml` and compositions (`(file name, text)`).
    pub fn new(facade: &str, compositions: &[(&str, &str)]) -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("facade.yaml"), facade).unwrap();
        std::fs::create_dir_all(dir.path().join("compositions")).unwrap();
        std::fs::create_dir_all(dir.path().join("schemas")).unwrap();
        for (name, text) in compositions {
            std::fs::write(dir.path().join("compositions").join(name), text).unwrap();
        }
        Project { dir }
    }

    pub fn schema(self, name: &str, text: &str) -> Project {
        std::fs::write(self.dir.path().join("schemas").join(name), text).unwrap();
        self
    }

    pub fn file(self, name: &str, text: &str) -> Project {
        let p = self.dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
        self
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("facade.yaml")
    }

    /// Loads and compiles; panics with every diagnostic when it fails.
    pub fn plan(&self, env: &[(&str, &str)]) -> facade::plan::Plan {
        let env: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let (plan, diags) = facade::load::load_plan(&self.config(), &env);
        match plan {
            Some(p) => p,
            None => panic!(
                "configuration failed to load:\n{}",
                diags
                    .items()
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        }
    }

    /// Loads and compiles, returning the diagnostics as `file:line:col: message` lines with the
    /// temporary folder removed.
    pub fn diagnostics(&self, env: &[(&str, &str)]) -> String {
        let env: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let (_, diags) = facade::load::load_plan(&self.config(), &env);
        let prefix = format!("{}/", self.dir.path().display());
        diags
            .sorted()
            .iter()
            .map(|d| d.to_string().replace(&prefix, ""))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A running gateway.
pub struct Gateway {
    pub addr: SocketAddr,
    pub clock: Arc<ManualClock>,
    pub state: Arc<facade::state::AppState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Gateway {
    pub async fn start(plan: facade::plan::Plan) -> Gateway {
        Gateway::start_on(plan, "127.0.0.1:0").await
    }

    /// The gateway listening on `bind` (`[::]:0`: dual-stack); `addr` is on 127.0.0.1 still.
    pub async fn start_on(plan: facade::plan::Plan, bind: &str) -> Gateway {
        let clock = Arc::new(ManualClock::default());
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let exec = facade::exec::new_exec(&plan, dyn_clock).unwrap();
        let state = facade::state::AppState::new(plan, exec).unwrap();
        let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let s = state.clone();
        tokio::spawn(async move {
            let _ = facade::server::serve(listener, s, async move {
                let _ = rx.await;
            })
            .await;
        });
        Gateway {
            addr,
            clock,
            state,
            stop: Some(tx),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// The real server for `plan` on `127.0.0.1:0` with the system clock and its `ServeOptions`
/// changed by `edit`. It serves until the returned sender is used or dropped; the handle ends
/// when serving has ended (after the drain).
pub async fn serve_plan(
    plan: facade::plan::Plan,
    edit: impl FnOnce(&mut facade::server::ServeOptions),
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let clock: Arc<dyn Clock> = Arc::new(facade::clock::SystemClock::default());
    let exec = facade::exec::new_exec(&plan, clock).unwrap();
    let state = facade::state::AppState::new(plan, exec).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let mut options = facade::server::ServeOptions::for_state(&state);
    edit(&mut options);
    let done = tokio::spawn(facade::server::serve_with(
        listener,
        state,
        async move {
            let _ = rx.await;
        },
        options,
    ));
    (addr, tx, done)
}

/// A backend that records the client address (so the connection) of every request and answers
/// `{"ok":true}` after `delay`.
pub async fn peer_recording_backend(delay: Duration) -> (SocketAddr, Arc<Mutex<Vec<SocketAddr>>>) {
    use axum::extract::ConnectInfo;
    let peers: Arc<Mutex<Vec<SocketAddr>>> = Arc::default();
    let seen = peers.clone();
    let app = axum::Router::new().fallback(move |ConnectInfo(peer): ConnectInfo<SocketAddr>| {
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push(peer);
            tokio::time::sleep(delay).await;
            ([(http::header::CONTENT_TYPE, "application/json")], "{\"ok\":true}")
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await;
    });
    (addr, peers)
}

/// A client with a timeout on every request.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .unwrap()
}

pub const SECRET: &str = "test-secret";

/// An HS256 token with `sub`, `exp` in an hour and the extra claims.
pub fn token(sub: &str, extra: Value) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut claims = serde_json::json!({"sub": sub, "exp": now + 3600, "iat": now});
    if let (Value::Object(c), Value::Object(e)) = (&mut claims, extra) {
        c.extend(e);
    }
    sign(&claims, jsonwebtoken::Algorithm::HS256, SECRET.as_bytes())
}

pub fn sign(claims: &Value, alg: jsonwebtoken::Algorithm, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret).unwrap(),
    )
    .unwrap()
}

/// The standard auth section for tests.
pub const AUTH: &str = r#"
auth:
  jwt:
    algorithms: [HS256]
    secret: test-secret
  forward_claims:
    x-user-id: sub
    x-user-role: role
"#;

/// GET with a bearer token; returns status, headers and JSON body.
pub async fn get(url: &str, token: Option<&str>) -> (u16, http::HeaderMap, Value) {
    let mut req = client().get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.json::<Value>().await.unwrap_or(Value::Null);
    (status, headers, body)
}

pub fn path_of(p: &Path) -> String {
    p.display().to_string()
}

/// A GET sent byte for byte, for paths a client library would normalise.
pub async fn raw_get(addr: SocketAddr, path: &str) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
        .await
        .unwrap()
        .unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf);
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// `facade.yaml` with services (name, URL, extra lines), the test auth section and `routes:`.
pub fn routes_facade(services: &[(&str, String, &str)], routes: &str) -> String {
    let mut s = String::from("services:\n");
    for (name, url, extra) in services {
        s.push_str(&format!("  {name}:\n    url: {url}\n{extra}"));
    }
    s.push_str(AUTH);
    s.push_str("routes:\n");
    s.push_str(routes);
    s
}

/// A gateway serving `routes:` beside compositions.
pub async fn routes_gateway(services: &[(&str, String, &str)], routes: &str, compositions: &[(&str, &str)]) -> Gateway {
    let p = Project::new(&routes_facade(services, routes), compositions);
    Gateway::start(p.plan(&[])).await
}

/// The real binary serving the shipped `facade.yaml` with `--demo` on a free loopback port,
/// killed when dropped.
pub struct DemoServer {
    child: std::process::Child,
    pub base: String,
}

impl DemoServer {
    /// Starts it (with extra environment) and waits until `/healthz` answers.
    pub async fn start(env: &[(&str, &str)]) -> DemoServer {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let listen = format!("127.0.0.1:{port}");
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_facade"));
        cmd.args(["serve", "--demo", "--listen", &listen, "--config"])
            .arg(root.join("facade.yaml"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let server = DemoServer {
            child: cmd.spawn().unwrap(),
            base: format!("http://{listen}"),
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while client().get(format!("{}/healthz", server.base)).send().await.is_err() {
            assert!(std::time::Instant::now() < deadline, "the demo server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server
    }

    /// A token the shipped configuration accepts, minted by `facade token`.
    pub fn token(&self, sub: &str) -> String {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_facade"))
            .args(["token", "--sub", sub, "--config"])
            .arg(root.join("facade.yaml"))
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `redis-server` on `port` of loopback with nothing kept on disk, plus `extra` arguments (in
/// `dir` when given); stopped by its caller.
pub fn redis_server(port: u16, extra: &[&std::ffi::OsStr], dir: Option<&Path>) -> std::process::Child {
    ensure_debian_package("redis-server", "redis-server");
    let mut cmd = std::process::Command::new("redis-server");
    cmd.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ])
    .args(extra)
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    cmd.spawn()
        .expect("redis-server must be installed (.ci/run installs it)")
}

/// One endpoint `GET /app/one` (service `data`) limited by the policy `shared`: what the Redis
/// and Redis Cluster tests count.
pub const SHARED_LIMIT_APP: &str = r#"
client: app
base_path: /app
endpoints:
  one:
    get: /one
    rate_limit: shared
    calls: { a: { service: data, get: /a } }
    response: { v: "$.a.v" }
"#;

/// The shipped configuration (`facade.yaml`, `compositions/`, `schemas/`) served against its demo
/// backends, and a token the shipped configuration accepts (the demo secret, its issuer and
/// audience; `sub` 1001, role `customer`).
pub async fn shipped_gateway() -> (Gateway, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let env: HashMap<String, String> = HashMap::new();
    let (plan, diags) = facade::load::load_plan(&root.join("facade.yaml"), &env);
    let mut plan = plan.unwrap_or_else(|| panic!("{:?}", diags.items()));
    facade::demo::start_all(&mut plan, &mut Default::default())
        .await
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({"sub": "1001", "role": "customer", "iss": "https://demo.facade.local",
                        "aud": "facade", "iat": now, "exp": now + 600});
    let token = sign(
        &claims,
        jsonwebtoken::Algorithm::HS256,
        b"facade-demo-secret-do-not-use-in-production",
    );
    (Gateway::start(plan).await, token)
}

/// This process's resident memory, in KiB (for the tests that have a binary of their own).
pub fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Makes sure `command` is there for a test that runs it, installing Debian's `package` when it
/// is missing, as `.ci/run` does: the README's `cargo test` must work on a fresh machine, which
/// has neither chromium nor nginx. It installs as root with apt-get, one install at a time across
/// the test processes (`flock`); anywhere else the test fails saying what to install.
pub fn ensure_debian_package(command: &str, package: &str) {
    let found = |c: &str| {
        std::process::Command::new("sh")
            .args(["-c", &format!("command -v {c} >/dev/null 2>&1")])
            .status()
            .is_ok_and(|s| s.success())
    };
    if found(command) {
        return;
    }
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    assert!(
        root && found("apt-get") && found("flock"),
        "this test needs `{command}`: install it first (Debian: apt-get install -y {package})"
    );
    let script = format!(
        "command -v {command} >/dev/null 2>&1 || {{ apt-get update -qq && \
         DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 {package} >/dev/null; }}"
    );
    eprintln!("installing Debian's {package} for this test (apt-get install -y {package})");
    let installed = std::process::Command::new("flock")
        .args(["/tmp/facade-tests-apt.lock", "sh", "-c", &script])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        installed && found(command),
        "this test needs `{command}`, and `apt-get install -y {package}` failed"
    );
}
