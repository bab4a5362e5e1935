//! The Redis store against a real `redis-server` started on a free port (never 6379) and stopped
//! by PID: the GCRA's arithmetic is the memory store's, several instances share one quota, one
//! script call per decision, and a dead Redis follows `on_store_error` within 250 ms and heals.

mod common;

use common::*;
use facade::clock::{Clock, ManualClock};
use facade::ratelimit::gcra::{ceil_secs, Rate};
use facade::ratelimit::memory::MemoryStore;
use facade::ratelimit::redis::RedisStore;
use serde_json::json;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A `redis-server` of this test's own.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Redis::on(port)
    }

    fn on(port: u16) -> Redis {
        let child = redis_server(port, &[], None);
        let r = Redis { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !r.pings() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        r
    }

    fn pings(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Tests that time a decision (the 250 ms bound) do not run beside the four-instance load test
/// or the TLS test (an RSA key made with openssl, TLS handshakes) on a two-core machine.
static TIMED: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The endpoint the store tests limit, under the policy `shared`.
const APP: &str = SHARED_LIMIT_APP;

fn yaml(data: &str, redis: &str, requests: u64, per: &str, on_error: &str) -> String {
    format!(
        "services:\n  data:\n    url: {data}\n{AUTH}rate_limits:\n  store: {redis}\n  on_store_error: {on_error}\n  policies:\n    shared: {{ requests: {requests}, per: {per}, key: user }}\n"
    )
}

async fn gateways(n: usize, data: &Backend, redis: &Redis, requests: u64, per: &str, on_error: &str) -> Vec<Gateway> {
    let mut out = Vec::new();
    for _ in 0..n {
        let p = Project::new(
            &yaml(&data.url(), &redis.url(), requests, per, on_error),
            &[("app.yaml", APP)],
        );
        out.push(Gateway::start(p.plan(&[])).await);
    }
    out
}

async fn status(gw: &Gateway, token: &str) -> (u16, http::HeaderMap) {
    let resp = client()
        .get(gw.url("/app/one"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.headers().clone())
}

#[tokio::test]
async fn the_redis_script_does_the_memory_stores_arithmetic() {
    let redis = Redis::start();
    let store = RedisStore::new(&redis.url()).unwrap();
    let clock = Arc::new(ManualClock::default());
    let memory = MemoryStore::new(1_000, clock.clone());
    let rate = Rate {
        limit: 10,
        period: 10_000_000_000,
    };
    // (seconds from the start, requests at that time) — a full burst, a refill, a boundary.
    let steps: [(u64, usize); 5] = [(0, 12), (3, 5), (9, 1), (10, 3), (30, 11)];
    let base_us: u64 = 1_000_000_000_000;
    let mut at = 0;
    for (secs, n) in steps {
        clock.advance(Duration::from_secs(secs - at));
        at = secs;
        for i in 0..n {
            let m = memory.decide("bucket", rate);
            let r = store
                .decide("bucket", rate, Some(base_us + secs * 1_000_000))
                .await
                .unwrap();
            assert_eq!(
                (m.allowed, m.remaining, ceil_secs(m.reset)),
                (r.allowed, r.remaining, ceil_secs(r.reset)),
                "at {secs} s, request {i}"
            );
        }
    }
    assert_eq!(clock.now(), Duration::from_secs(30));
}

#[tokio::test]
async fn two_instances_share_one_quota() {
    let redis = Redis::start();
    let data = Backend::fixed(json!({"v": 1})).await;
    let gws = gateways(2, &data, &redis, 5, "60s", "allow").await;
    let t = token("u1", json!({}));
    let mut allowed = 0;
    for i in 0..12 {
        let (s, h) = status(&gws[i % 2], &t).await;
        assert!(s == 200 || s == 429, "{s}");
        assert!(h.get("x-ratelimit-limit").is_some());
        allowed += (s == 200) as u32;
    }
    assert_eq!(
        allowed, 5,
        "two instances together allow the policy's rate, not twice it"
    );
    assert_eq!(data.count(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_instances_enforce_the_rate_within_one_percent() {
    let _alone = TIMED.lock().await;
    let redis = Redis::start();
    let data = Backend::fixed(json!({"v": 1})).await;
    let gws = gateways(4, &data, &redis, 200, "3600s", "allow").await;
    let t = token("u1", json!({}));
    let mut tasks = Vec::new();
    for (i, gw) in gws.iter().enumerate() {
        let url = gw.url("/app/one");
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            let c = client();
            let mut ok = 0u32;
            for _ in 0..100 + i {
                let s = c.get(&url).bearer_auth(&t).send().await.unwrap().status().as_u16();
                ok += (s == 200) as u32;
            }
            ok
        }));
    }
    let mut allowed = 0;
    for t in tasks {
        allowed += t.await.unwrap();
    }
    // 406 requests in a few seconds against 200 per hour (one more every 18 s).
    assert!((200..=202).contains(&allowed), "{allowed} allowed");
}

#[tokio::test]
async fn each_decision_is_one_script_call() {
    let redis = Redis::start();
    let data = Backend::fixed(json!({"v": 1})).await;
    let gws = gateways(1, &data, &redis, 100, "60s", "allow").await;
    let t = token("u1", json!({}));
    // The first decision loads the script; from then on, one EVALSHA each.
    status(&gws[0], &t).await;
    let mut monitor = TcpStream::connect(("127.0.0.1", redis.port)).unwrap();
    monitor.write_all(b"MONITOR\r\n").unwrap();
    monitor.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut lines = BufReader::new(monitor.try_clone().unwrap());
    let mut ok = String::new();
    lines.read_line(&mut ok).unwrap();
    assert_eq!(ok.trim(), "+OK");
    for _ in 0..3 {
        assert_eq!(status(&gws[0], &t).await.0, 200);
    }
    // A PING after the three, through another connection, ends what is watched.
    let mut other = TcpStream::connect(("127.0.0.1", redis.port)).unwrap();
    other.write_all(b"PING\r\n").unwrap();
    let mut commands = Vec::new();
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line).unwrap_or(0) == 0 || line.contains("\"PING\"") {
            break;
        }
        commands.push(line);
    }
    let scripts = commands
        .iter()
        .filter(|l| l.to_lowercase().contains("\"evalsha\""))
        .count();
    assert_eq!(scripts, 3, "{commands:#?}");
    let top_level: Vec<&String> = commands.iter().filter(|l| !l.contains("[0 lua]")).collect();
    assert_eq!(top_level.len(), 3, "nothing but the script calls: {commands:#?}");
}

#[tokio::test]
async fn a_dead_redis_follows_on_store_error_and_the_limiter_heals() {
    let _alone = TIMED.lock().await;
    let mut redis = Redis::start();
    let port = redis.port;
    let data = Backend::fixed(json!({"v": 1})).await;
    let allow = gateways(1, &data, &redis, 100, "60s", "allow").await;
    let deny = gateways(1, &data, &redis, 100, "60s", "deny").await;
    let t = token("u1", json!({}));
    assert!(status(&allow[0], &t).await.1.get("x-ratelimit-limit").is_some());
    redis.stop();
    for _ in 0..3 {
        let started = Instant::now();
        let (s, h) = status(&allow[0], &t).await;
        assert!(
            started.elapsed() < Duration::from_millis(250),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(s, 200);
        assert!(
            h.get("x-ratelimit-limit").is_none(),
            "a request let through an outage carries no headers"
        );
        let started = Instant::now();
        let resp = client()
            .get(deny[0].url("/app/one"))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_millis(250),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(resp.status(), 503);
        assert_eq!(resp.headers()["retry-after"], "1");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "rate_limit_unavailable");
    }
    let (s, _, body) = get(&allow[0].url("/readyz"), None).await;
    assert_eq!((s, body["status"].as_str()), (200, Some("degraded")), "{body}");
    assert!(body["checks"]["rate_limit_store"]
        .as_str()
        .unwrap()
        .starts_with("down: "));
    let (s, _, body) = get(&deny[0].url("/readyz"), None).await;
    assert_eq!((s, body["status"].as_str()), (503, Some("unready")), "{body}");

    // Back on the same port: limiting and readiness return within 5 s.
    let _redis = Redis::on(port);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (s, h) = status(&allow[0], &t).await;
        let (_, _, ready) = get(&deny[0].url("/readyz"), None).await;
        if s == 200 && h.get("x-ratelimit-limit").is_some() && ready["status"] == "ready" {
            break;
        }
        assert!(Instant::now() < deadline, "the limiter did not heal: {ready}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status(&deny[0], &t).await.0, 200);
}

#[tokio::test]
async fn a_stalled_redis_never_holds_requests() {
    let _alone = TIMED.lock().await;
    let redis = Redis::start();
    let data = Backend::fixed(json!({"v": 1})).await;
    let allow = gateways(1, &data, &redis, 100, "60s", "allow").await;
    let t = token("u1", json!({}));
    assert!(status(&allow[0], &t).await.1.get("x-ratelimit-limit").is_some());
    // SIGSTOP: the connection stays open, nothing answers.
    let pid = redis.child.id().to_string();
    assert!(Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
    for _ in 0..3 {
        let started = Instant::now();
        let (s, h) = status(&allow[0], &t).await;
        assert!(
            started.elapsed() < Duration::from_millis(250),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(s, 200);
        assert!(h.get("x-ratelimit-limit").is_none());
    }
    assert!(Command::new("kill").args(["-CONT", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while status(&allow[0], &t).await.1.get("x-ratelimit-limit").is_none() {
        assert!(Instant::now() < deadline, "limiting did not resume");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_rediss_store_speaks_tls_and_verifies_the_certificate() {
    let _alone = TIMED.lock().await;
    // A TLS-only redis-server with a self-signed certificate made here.
    let dir = tempfile::tempdir().unwrap();
    let (key, cert) = (dir.path().join("key.pem"), dir.path().join("cert.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tls_port = port.to_string();
    let extra: Vec<&std::ffi::OsStr> = vec![
        "--tls-port".as_ref(),
        tls_port.as_ref(),
        "--tls-cert-file".as_ref(),
        cert.as_os_str(),
        "--tls-key-file".as_ref(),
        key.as_os_str(),
        "--tls-ca-cert-file".as_ref(),
        cert.as_os_str(),
        "--tls-auth-clients".as_ref(),
        "no".as_ref(),
    ];
    let plain = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = redis_server(plain, &extra, Some(dir.path()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the TLS redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let data = Backend::fixed(json!({"v": 1})).await;
    let t = token("u1", json!({}));
    // Certificate checks skipped on purpose (`#insecure`): the limiter works over TLS.
    let url = format!("rediss://127.0.0.1:{port}/#insecure");
    let p = Project::new(
        &yaml(&data.url(), &format!("\"{url}\""), 2, "60s", "deny"),
        &[("app.yaml", APP)],
    );
    let gw = Gateway::start(p.plan(&[])).await;
    // The TLS connection is made lazily (within the 250 ms bound per attempt): on a loaded
    // machine the first handshake may miss it, so wait until the store answers the probe.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, _, ready) = get(&gw.url("/readyz"), None).await;
        if ready["status"] == "ready" {
            break;
        }
        assert!(Instant::now() < deadline, "the TLS store never became ready: {ready}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let statuses = [
        status(&gw, &t).await.0,
        status(&gw, &t).await.0,
        status(&gw, &t).await.0,
    ];
    assert_eq!(statuses, [200, 200, 429]);
    // Without it, the self-signed certificate is refused: the store is unusable, `deny` answers.
    let url = format!("rediss://127.0.0.1:{port}");
    let p = Project::new(
        &yaml(&data.url(), &format!("\"{url}\""), 2, "60s", "deny"),
        &[("app.yaml", APP)],
    );
    let gw = Gateway::start(p.plan(&[])).await;
    assert_eq!(status(&gw, &t).await.0, 503);
    let _ = child.kill();
    let _ = child.wait();
}
