//! Passthrough routes (SPEC §8) against real backends on 127.0.0.1: what the backend receives
//! (raw request target, header set, body), what comes back (status, headers, body unchanged),
//! path rules, failures, per-route access, circuit breakers and pooled backend connections.
//! Streaming has its own test binary (`streaming.rs`), so that its memory is measured alone.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

/// A request sent byte for byte (a client library would normalise paths and add headers); returns
/// the status line's code, the response headers and the body.
async fn raw(addr: std::net::SocketAddr, request: &str) -> (u16, Vec<(String, String)>, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
        .await
        .unwrap()
        .unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let mut text = String::from_utf8_lossy(&buf).into_owned();
    // An interim `100 Continue` comes before the answer.
    if let Some(rest) = text.strip_prefix("HTTP/1.1 100 Continue\r\n\r\n") {
        text = rest.to_string();
    }
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    (status, headers, body.to_string())
}

/// `METHOD /api/orders/<i>` on a new connection to `gw`, answered whole.
async fn order_request(gw: &Gateway, method: &str, i: impl std::fmt::Display) -> (u16, Vec<(String, String)>, String) {
    raw(
        gw.addr,
        &format!("{method} /api/orders/{i} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"),
    )
    .await
}

/// A gateway whose one route, `/api/orders` without auth, goes to the backend at `addr`
/// (`service` is extra YAML for the service, such as `    retries: 1\n`).
async fn orders_gateway(addr: std::net::SocketAddr, service: &str) -> Gateway {
    routes_gateway(
        &[("orders", format!("http://{addr}"), service)],
        "  - { prefix: /api/orders, service: orders, auth: none }\n",
        &[],
    )
    .await
}

#[tokio::test]
async fn prefixes_paths_and_queries_reach_the_backend_as_configured() {
    let orders = Backend::fixed(json!({"svc": "orders"})).await;
    let special = Backend::fixed(json!({"svc": "special"})).await;
    let v2 = Backend::fixed(json!({"svc": "v2"})).await;
    let legacy = Backend::fixed(json!({"svc": "legacy"})).await;
    let gw = routes_gateway(
        &[
            ("orders", format!("{}/base/", orders.url()), ""),
            ("special", special.url(), ""),
            ("v2", v2.url(), ""),
            ("legacy", legacy.url(), ""),
        ],
        "  - { prefix: /api/orders, service: orders, strip_prefix: true, auth: none }\n  - { prefix: /api/orders/special/, service: special, auth: none }\n  - { prefix: /api/v1, service: v2, rewrite: /v2, auth: none }\n  - { prefix: /, service: legacy, auth: none }\n",
        &[(
            "app.yaml",
            "client: app\nbase_path: /app\nendpoints:\n  e:\n    get: /e\n    auth: none\n    calls:\n      o: { service: orders, get: /x }\n    response: { svc: \"$.o.svc\" }\n",
        )],
    )
    .await;
    let cases = [
        // (request path, backend that answers, the raw target it receives)
        ("/api/orders", "orders", "/base/"),
        ("/api/orders/42?x=1&y=a%20b", "orders", "/base/42?x=1&y=a%20b"),
        ("/api/orders/special/7", "special", "/api/orders/special/7"),
        ("/api/orders/special", "special", "/api/orders/special"),
        ("/api/ordersX", "legacy", "/api/ordersX"),
        ("/api/v1/items/3?q", "v2", "/v2/items/3?q"),
        ("/api/v1", "v2", "/v2"),
        ("/api/orders/a/../b", "orders", "/base/b"),
        ("/api/orders/a/%2e%2E/c/./d", "orders", "/base/c/d"),
        ("/anything/else", "legacy", "/anything/else"),
    ];
    for (path, expect, target) in cases {
        let (status, _, body) = raw(
            gw.addr,
            &format!("GET {path} HTTP/1.1\r\nHost: gw.example\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(status, 200, "{path}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["svc"], expect, "{path}");
        let backend = match expect {
            "orders" => &orders,
            "special" => &special,
            "v2" => &v2,
            _ => &legacy,
        };
        assert_eq!(backend.seen().last().unwrap().uri, target, "{path}");
    }
    // The catch-all takes only what no endpoint or operations route takes.
    let (status, _, body) = get(&gw.url("/app/e"), None).await;
    assert_eq!((status, body["svc"].as_str()), (200, Some("orders")));
    assert_eq!(orders.seen().last().unwrap().uri, "/base/x");
    let (status, _, body) = get(&gw.url("/healthz"), None).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    // A `..` that would leave the prefix is refused, and never reaches any backend.
    let before = orders.count() + legacy.count();
    for path in ["/api/orders/../secret", "/api/orders/%2e%2e/secret", "/.."] {
        let (status, _, body) = raw(
            gw.addr,
            &format!("GET {path} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains("bad_request"), "{body}");
    }
    assert_eq!(orders.count() + legacy.count(), before);
    // A target that is not a path never reaches the catch-all: CONNECT (a forward proxy's
    // method) is not implemented, `OPTIONS *` is answered by Facade itself.
    let (status, _, body) = raw(
        gw.addr,
        "CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 501, "{body}");
    assert!(body.contains("\"error\":\"not_implemented\""), "{body}");
    let (status, headers, _) = raw(gw.addr, "OPTIONS * HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n").await;
    assert_eq!(status, 204);
    assert!(
        headers.iter().any(|(k, v)| k == "allow" && v.contains("GET")),
        "{headers:?}"
    );
    assert_eq!(legacy.count() + orders.count(), before);
}

#[tokio::test]
async fn every_method_and_body_and_end_to_end_header_is_forwarded() {
    let backend = Backend::start(|s| Reply::json(json!({"method": s.method, "len": s.body.len()}))).await;
    let gw = routes_gateway(
        &[("orders", backend.url(), "")],
        "  - { prefix: /api/orders, service: orders, auth: optional }\n",
        &[],
    )
    .await;
    let t = token("u-7", json!({"role": ["admin", "ops"]}));
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
        let resp = client()
            .request(method.parse().unwrap(), gw.url("/api/orders/1"))
            .body("hello body")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{method}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!((v["method"].as_str(), v["len"].as_u64()), (Some(method), Some(10)));
    }
    let request = format!(
        "POST /api/orders/9 HTTP/1.1\r\nHost: shop.example\r\nAuthorization: Bearer {t}\r\nCookie: session=abc\r\nX-User-Id: forged\r\nX-Custom: keep\r\nX-Drop-Me: secret\r\nConnection: close, X-Drop-Me\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Authorization: Basic x\r\nX-Forwarded-For: 203.0.113.9\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nabcde"
    );
    let (status, _, body) = raw(gw.addr, &request).await;
    assert_eq!(status, 200, "{body}");
    let seen = backend.seen().pop().unwrap();
    assert_eq!(seen.uri, "/api/orders/9");
    assert_eq!(seen.body, b"abcde");
    assert_eq!(seen.header("authorization"), Some(format!("Bearer {t}").as_str()));
    assert_eq!(seen.header("cookie"), Some("session=abc"));
    assert_eq!(seen.header("x-custom"), Some("keep"));
    assert_eq!(
        seen.header("x-user-id"),
        Some("u-7"),
        "forward_claims set from the token"
    );
    assert_eq!(seen.header("x-user-role"), Some("admin,ops"));
    assert_eq!(seen.header("x-forwarded-for"), Some("203.0.113.9, 127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(seen.header("x-forwarded-host"), Some("shop.example"));
    assert_eq!(seen.header("host"), Some(backend.addr.to_string().as_str()));
    assert!(seen.header("x-request-id").is_some_and(|v| !v.is_empty()));
    for gone in ["x-drop-me", "keep-alive", "te", "proxy-authorization", "expect"] {
        assert!(seen.header(gone).is_none(), "{gone} must not be forwarded");
    }
    // Anonymous: the forged claim header is removed and nothing is set in its place.
    let request = "GET /api/orders/1 HTTP/1.1\r\nHost: shop\r\nX-User-Id: forged\r\nConnection: close\r\n\r\n";
    assert_eq!(raw(gw.addr, request).await.0, 200);
    let seen = backend.seen().pop().unwrap();
    assert!(seen.header("x-user-id").is_none());
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    // A request in absolute form names its host in the target, which wins over `Host` (RFC 9112
    // §3.2.2); userinfo is never part of it.
    let request =
        "GET http://user:pw@shop.example:8443/api/orders/2 HTTP/1.1\r\nHost: other\r\nConnection: close\r\n\r\n";
    assert_eq!(raw(gw.addr, request).await.0, 200);
    let seen = backend.seen().pop().unwrap();
    assert_eq!(seen.uri, "/api/orders/2");
    assert_eq!(seen.header("x-forwarded-host"), Some("shop.example:8443"));
}

/// A backend that answers with chosen headers, including hop-by-hop ones.
async fn header_backend() -> std::net::SocketAddr {
    let app = axum::Router::new().fallback(|| async {
        http::Response::builder()
            .status(418)
            .header("content-type", "text/plain; charset=utf-8")
            .header("x-backend", "yes")
            .header("set-cookie", "a=1")
            .header("set-cookie", "b=2")
            .header("connection", "x-hop")
            .header("x-hop", "drop me")
            .header("keep-alive", "timeout=5")
            .header("proxy-authenticate", "Basic")
            .body(axum::body::Body::from("i am a teapot"))
            .unwrap()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

#[tokio::test]
async fn status_headers_and_body_come_back_unchanged() {
    let addr = header_backend().await;
    let gw = routes_gateway(
        &[("tea", format!("http://{addr}"), "")],
        "  - { prefix: /tea, service: tea, auth: none }\n",
        &[],
    )
    .await;
    let resp = client().get(gw.url("/tea/pot")).send().await.unwrap();
    assert_eq!(resp.status(), 418);
    let h = resp.headers().clone();
    assert_eq!(h["content-type"], "text/plain; charset=utf-8");
    assert_eq!(h["x-backend"], "yes");
    let cookies: Vec<&str> = h.get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
    for gone in ["x-hop", "keep-alive", "proxy-authenticate"] {
        assert!(!h.contains_key(gone), "{gone} must not come back");
    }
    assert!(h.contains_key("x-request-id"));
    assert_eq!(resp.text().await.unwrap(), "i am a teapot");
}

#[tokio::test]
async fn failures_access_and_upgrades() {
    let slow = Backend::start(|_| Reply::json(json!({})).after(Duration::from_millis(1500))).await;
    let ok = Backend::fixed(json!({"ok": true})).await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let gw = routes_gateway(
        &[
            ("slow", slow.url(), "    timeout: 300ms\n"),
            ("dead", format!("http://{dead}"), "    retries: 2\n"),
            ("ok", ok.url(), ""),
        ],
        "  - { prefix: /slow, service: slow, auth: none }\n  - { prefix: /dead, service: dead, auth: none }\n  - { prefix: /admin, service: ok, roles: [admin] }\n  - { prefix: /open, service: ok, auth: none }\n",
        &[],
    )
    .await;
    let (status, _, body) = get(&gw.url("/slow/x"), None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (504, Some("upstream_timeout")),
        "{body}"
    );
    let (status, _, body) = get(&gw.url("/dead/x"), None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (502, Some("upstream_failed")),
        "{body}"
    );
    assert!(
        !body.to_string().contains(&dead.port().to_string()),
        "no backend address: {body}"
    );
    let (status, headers, body) = get(&gw.url("/admin/x"), None).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("unauthorized")));
    assert_eq!(headers["www-authenticate"], "Bearer");
    let (status, _, _) = get(&gw.url("/admin/x"), Some(&token("u", json!({"role": "user"})))).await;
    assert_eq!(status, 403);
    let (status, _, _) = get(&gw.url("/admin/x"), Some(&token("u", json!({"role": "admin"})))).await;
    assert_eq!(status, 200);
    assert_eq!(ok.count(), 1, "refused requests never reach the backend");
    let (status, _, body) = raw(
        gw.addr,
        "GET /open/ws HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await;
    assert_eq!(status, 501, "{body}");
    // An upgrade the server may decline (`curl --http2` offers h2c this way) is declined: the
    // request is served over HTTP/1.1, its Upgrade and HTTP2-Settings headers not forwarded.
    let (status, _, body) = raw(
        gw.addr,
        "GET /open/h2c HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let seen = ok.seen().pop().unwrap();
    assert_eq!(seen.uri, "/open/h2c");
    assert!(seen.header("upgrade").is_none() && seen.header("http2-settings").is_none());
}

#[tokio::test]
async fn a_failing_service_is_cut_off_by_its_breaker_for_routes_and_calls_alike() {
    let healthy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let h = healthy.clone();
    let backend = Backend::start(move |_| {
        if h.load(std::sync::atomic::Ordering::SeqCst) {
            Reply::json(json!({"value": 1}))
        } else {
            Reply::status(503, json!({"down": true}))
        }
    })
    .await;
    let gw = routes_gateway(
        &[(
            "flaky",
            backend.url(),
            "    circuit_breaker: { failures: 3, within: 10s, open_for: 30s }\n",
        )],
        "  - { prefix: /flaky, service: flaky, auth: none }\n",
        &[(
            "app.yaml",
            "client: app\nbase_path: /app\nendpoints:\n  e:\n    get: /e\n    auth: none\n    calls:\n      f: { service: flaky, get: /v }\n    response: { value: \"$.f.value\" }\n  o:\n    get: /o\n    auth: none\n    calls:\n      f: { service: flaky, get: /v, optional: true }\n    response: { value: \"$.f.value\" }\n",
        )],
    )
    .await;
    // Two failures through the route, one through a composed call: the circuit opens.
    assert_eq!(get(&gw.url("/flaky/a"), None).await.0, 503);
    assert_eq!(get(&gw.url("/flaky/a"), None).await.0, 503);
    assert_eq!(get(&gw.url("/app/e"), None).await.0, 502);
    assert_eq!(backend.count(), 3);
    let (status, headers, body) = get(&gw.url("/flaky/a"), None).await;
    assert_eq!((status, body["error"].as_str()), (503, Some("circuit_open")), "{body}");
    assert_eq!(headers["retry-after"], "30", "until the circuit lets a trial through");
    gw.clock.advance(Duration::from_millis(500));
    assert_eq!(
        get(&gw.url("/flaky/a"), None).await.1["retry-after"],
        "30",
        "rounded up"
    );
    gw.clock.advance(Duration::from_millis(500));
    assert_eq!(get(&gw.url("/flaky/a"), None).await.1["retry-after"], "29");
    let (status, _, body) = get(&gw.url("/app/e"), None).await;
    assert_eq!((status, body["error"].as_str()), (502, Some("upstream_failed")));
    assert!(body["message"].as_str().unwrap().contains("circuit"), "{body}");
    let (status, headers, body) = get(&gw.url("/app/o"), None).await;
    assert_eq!((status, body["value"].clone()), (200, Value::Null));
    assert_eq!(headers["x-facade-partial"], "f");
    assert_eq!(backend.count(), 3, "an open circuit never reaches the backend");
    // After open_for, one trial: it fails, so the circuit opens again.
    gw.clock.advance(Duration::from_secs(29));
    assert_eq!(get(&gw.url("/flaky/a"), None).await.0, 503);
    assert_eq!(backend.count(), 4);
    assert_eq!(get(&gw.url("/flaky/a"), None).await.2["error"], "circuit_open");
    assert_eq!(backend.count(), 4);
    // The next trial succeeds and closes it.
    healthy.store(true, std::sync::atomic::Ordering::SeqCst);
    gw.clock.advance(Duration::from_secs(30));
    assert_eq!(get(&gw.url("/app/e"), None).await.2["value"], 1);
    assert_eq!(get(&gw.url("/flaky/a"), None).await.0, 200);
    assert_eq!(backend.count(), 6);
    assert_eq!(
        gw.state.exec.upstream.breakers.state("flaky"),
        Some(facade::upstream::breaker::BreakerState::Closed)
    );
}

#[test]
fn route_load_errors() {
    let p = Project::new(
        (routes_facade(
            &[("orders", "http://127.0.0.1:9".into(), "")],
            "  - { prefix: /api/orders, service: orders }\n  - { prefix: /api/orders/, service: orders }\n  - { prefix: /api/x, service: orderz, strip_prefix: true, rewrite: /v2 }\n  - { prefix: /app, service: orders }\n  - { prefix: /healthz, service: orders }\n  - { prefix: /gql, service: orders }\n  - { prefix: api, service: orders }\n  - { prefix: /, service: orders }\n",
        ) + "graphql:\n  path: /gql/graphql\n")
        .as_str(),
        &[(
            "app.yaml",
            "client: app\nbase_path: /app\nendpoints:\n  e:\n    get: /e\n    auth: none\n    response: { ok: true }\n",
        )],
    );
    let out = p.diagnostics(&[]);
    insta::assert_snapshot!(out);
}

#[tokio::test]
async fn backend_connections_are_pooled_and_kept_alive() {
    let (addr, peers) = peer_recording_backend(Duration::ZERO).await;
    let gw = orders_gateway(addr, "").await;
    for i in 0..20 {
        // A new client connection each time: the backend side is still one pooled connection.
        let (status, _, _) = order_request(&gw, "GET", i).await;
        assert_eq!(status, 200);
    }
    let distinct: std::collections::HashSet<_> = peers.lock().unwrap().iter().copied().collect();
    assert_eq!(distinct.len(), 1, "20 requests, one backend connection");
}

/// A backend written byte by byte: for each connection, the `answer` for its number (0, 1, …)
/// and whether to close it after the answer. Returns its address and the number of connections
/// accepted so far.
async fn scripted_backend(
    answer: impl Fn(usize) -> (Vec<u8>, bool) + Send + Sync + 'static,
) -> (std::net::SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let n = count.fetch_add(1, Ordering::SeqCst);
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                loop {
                    // One request head at a time; these requests have no body.
                    while !head.ends_with(b"\r\n\r\n") {
                        match stream.read(&mut byte).await {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    head.clear();
                    let (bytes, close) = answer(n);
                    if stream.write_all(&bytes).await.is_err() || close {
                        return;
                    }
                }
            });
        }
    });
    (addr, accepted)
}

#[tokio::test]
async fn pooled_connections_are_reused_for_bodiless_answers_and_never_after_a_close() {
    // 204s and HEAD answers have no body to read: their connection still goes back to the pool.
    let (addr, accepted) = scripted_backend(|_| (b"HTTP/1.1 204 No Content\r\n\r\n".to_vec(), false)).await;
    let gw = orders_gateway(addr, "").await;
    for i in 0..10 {
        let method = if i % 2 == 0 { "HEAD" } else { "DELETE" };
        let (status, _, _) = order_request(&gw, method, i).await;
        assert_eq!(status, 204);
    }
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "ten bodiless answers, one connection"
    );

    // A backend that closes each connection after its answer, with and without saying so: every
    // request still gets its answer, each on a new connection.
    for announce in [true, false] {
        let (addr, accepted) = scripted_backend(move |n| {
            let body = format!("{{\"connection\":{n}}}");
            let close = if announce { "Connection: close\r\n" } else { "" };
            let head = format!("HTTP/1.1 200 OK\r\n{close}Content-Length: {}\r\n\r\n", body.len());
            ([head.into_bytes(), body.into_bytes()].concat(), true)
        })
        .await;
        let gw = orders_gateway(addr, "    retries: 1\n").await;
        for i in 0..10 {
            let (status, _, body) = order_request(&gw, "GET", i).await;
            assert_eq!(status, 200, "request {i} (close announced: {announce}): {body}");
            let seen: Value = serde_json::from_str(&body).unwrap();
            assert!(
                seen["connection"].as_u64().unwrap() >= i,
                "a closed connection was used again"
            );
        }
        assert!(accepted.load(std::sync::atomic::Ordering::SeqCst) >= 10);
    }
}

#[tokio::test]
async fn an_answer_abandoned_by_its_client_never_leaves_its_connection_in_the_pool() {
    use tokio::io::AsyncReadExt;
    // The first connection starts a 10 MB answer and sends 1 MB of it; every later one answers
    // at once. The client leaves after the head: the next requests get their own answers, on one
    // new connection (the rest of the abandoned answer is never read as theirs).
    let (addr, accepted) = scripted_backend(|n| {
        if n == 0 {
            let head = b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n".to_vec();
            ([head, vec![b'x'; 1 << 20]].concat(), false)
        } else {
            (b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{\"a\":1}".to_vec(), false)
        }
    })
    .await;
    let gw = orders_gateway(addr, "").await;
    let mut client = get_on_new_connection(&gw, "/api/orders/big").await;
    let mut got = vec![0u8; 64 << 10];
    let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&got[..n]).starts_with("HTTP/1.1 200"));
    drop(client);
    for i in 0..3 {
        let (status, _, body) = order_request(&gw, "GET", i).await;
        assert_eq!((status, body.as_str()), (200, "{\"a\":1}"));
    }
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
}

/// A new connection to `gw` with `GET path` sent on it, its answer left to be read.
async fn get_on_new_connection(gw: &Gateway, path: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut client = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    client
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: gw\r\n\r\n").as_bytes())
        .await
        .unwrap();
    client
}

/// Reads a request's head, byte by byte (so nothing after it is taken); false when the
/// connection closed first.
async fn read_request_head(stream: &mut tokio::net::TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.unwrap_or(0) == 0 {
            return false;
        }
        head.push(byte[0]);
    }
    true
}

/// A backend that writes its answer's head, then its body only when `release` is notified.
async fn two_part_backend(
    head: &'static str,
    body: &'static str,
) -> (std::net::SocketAddr, std::sync::Arc<tokio::sync::Notify>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    let released = release.clone();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        if !read_request_head(&mut stream).await {
            return;
        }
        stream.write_all(head.as_bytes()).await.unwrap();
        released.notified().await;
        stream.write_all(body.as_bytes()).await.unwrap();
        // Held open until the client has its answer.
        let _ = stream.read(&mut [0u8; 1]).await;
    });
    (addr, release)
}

#[tokio::test]
async fn a_head_goes_with_the_first_bytes_of_a_declared_body_and_a_chunked_head_goes_at_once() {
    use tokio::io::AsyncReadExt;
    // Declared length: the head is not sent until the body's first bytes are there, so the client
    // is sent head and body together (one write, not two a moment apart).
    let (addr, release) = two_part_backend("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n", "{\"a\":1}").await;
    let gw = orders_gateway(addr, "").await;
    let mut client = get_on_new_connection(&gw, "/api/orders/1").await;
    let mut got = vec![0u8; 4096];
    let early = tokio::time::timeout(Duration::from_millis(300), client.read(&mut got)).await;
    assert!(early.is_err(), "the head went before the body: {early:?}");
    release.notify_one();
    let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut got))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&got[..n]);
    assert!(
        text.starts_with("HTTP/1.1 200") && text.ends_with("\r\n\r\n{\"a\":1}"),
        "{text}"
    );

    // Chunked (an event stream, say): the head comes at once, before any body.
    let (addr, release) = two_part_backend(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
        "7\r\ndata: 1\r\n0\r\n\r\n",
    )
    .await;
    let gw = orders_gateway(addr, "").await;
    let mut client = get_on_new_connection(&gw, "/api/orders/2").await;
    let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut got))
        .await
        .expect("a chunked head waited for its body")
        .unwrap();
    let text = String::from_utf8_lossy(&got[..n]);
    assert!(text.starts_with("HTTP/1.1 200") && text.ends_with("\r\n\r\n"), "{text}");
    release.notify_one();
    let mut rest = Vec::new();
    while !rest.ends_with(b"0\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0);
        rest.extend_from_slice(&got[..n]);
    }
    assert!(String::from_utf8_lossy(&rest).contains("data: 1"));
}

#[tokio::test]
async fn an_answer_broken_off_before_its_body_is_a_json_502_not_a_cut_connection() {
    // The head declares 100 bytes, then the backend closes: nothing had been sent to the client
    // yet, so it gets the JSON error instead of a head and a cut connection.
    let (addr, _) = scripted_backend(|_| (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n".to_vec(), true)).await;
    let gw = orders_gateway(addr, "").await;
    let (status, headers, body) = order_request(&gw, "GET", 1).await;
    assert_eq!(status, 502, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "upstream_failed");
    assert!(
        !body.to_string().contains(&addr.to_string()),
        "the backend's address leaked: {body}"
    );
    assert!(headers.iter().any(|(k, _)| k == "x-request-id"));
}

#[tokio::test]
async fn an_answer_whose_backend_stops_in_the_middle_is_cut_off_after_the_service_timeout() {
    use tokio::io::AsyncReadExt;
    // 100 bytes declared, 5 sent, then the backend holds its connection open and sends nothing.
    let (addr, _never) = two_part_backend("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"a\":", "never sent").await;
    let gw = orders_gateway(addr, "    timeout: 500ms\n").await;
    let mut client = get_on_new_connection(&gw, "/api/orders/1").await;
    let started = std::time::Instant::now();
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut got)).await;
    let took = started.elapsed();
    assert!(read.is_ok(), "the client still waited after 5 s");
    assert!(took < Duration::from_secs(3), "cut off after {took:?}");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200") && text.ends_with("{\"a\":"), "{text}");

    // A streamed answer (an event stream) may pause longer than the service timeout: events can
    // be minutes apart.
    let (addr, release) = two_part_backend(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n8\r\ndata: 1\n\r\n",
        "8\r\ndata: 2\n\r\n0\r\n\r\n",
    )
    .await;
    let gw = orders_gateway(addr, "    timeout: 500ms\n").await;
    let mut client = get_on_new_connection(&gw, "/api/orders/2").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    release.notify_one();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(b"0\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "the stream was cut: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("data: 1") && text.contains("data: 2"), "{text}");
}

/// A backend streaming an endless answer to its first request; the receiver hears when its
/// connection was closed on it.
async fn endless_backend() -> (std::net::SocketAddr, tokio::sync::oneshot::Receiver<()>) {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        if !read_request_head(&mut stream).await {
            return;
        }
        let chunk = format!("10000\r\n{}\r\n", "x".repeat(0x10000));
        let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        while stream.write_all(&out).await.is_ok() {
            out = chunk.clone().into_bytes();
        }
        let _ = closed_tx.send(());
    });
    (addr, closed_rx)
}

/// A gateway whose one route, `/api/orders` without auth, goes to `addr`; clients may keep a
/// write waiting for 500 ms, and an HTTP/2 connection may be idle for 300 ms.
async fn impatient_gateway(addr: std::net::SocketAddr) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let facade = routes_facade(
        &[("orders", format!("http://{addr}"), "")],
        "  - { prefix: /api/orders, service: orders, auth: none }\n",
    );
    let plan = Project::new(&facade, &[]).plan(&[]);
    let (gw, stop, _) = serve_plan(plan, |o| {
        o.send_timeout = Duration::from_millis(500);
        o.h2_idle_timeout = Duration::from_millis(300);
    })
    .await;
    (gw, stop)
}

#[tokio::test]
async fn a_client_that_stops_reading_a_download_lets_go_of_its_backend() {
    use tokio::io::AsyncWriteExt;
    let (addr, closed_rx) = endless_backend().await;
    let (gw, _stop) = impatient_gateway(addr).await;
    // The client asks, then reads nothing: the buffers on the way fill up, and Facade's writes
    // to it wait.
    let mut client = tokio::net::TcpStream::connect(gw).await.unwrap();
    client
        .write_all(b"GET /api/orders/big HTTP/1.1\r\nHost: gw\r\n\r\n")
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), closed_rx)
        .await
        .expect("the backend was still held 10 s after its client stopped reading")
        .unwrap();
    drop(client);
}

/// `GET path` as a new stream of an HTTP/2 connection to `gw`; its answer's head.
async fn h2_get(
    client: &mut h2::client::SendRequest<bytes::Bytes>,
    gw: std::net::SocketAddr,
    path: &str,
) -> http::Response<h2::RecvStream> {
    let request = http::Request::get(format!("http://{gw}{path}")).body(()).unwrap();
    let (answer, _) = client
        .send_request(request, true)
        .expect("the connection refused a new stream");
    tokio::time::timeout(Duration::from_secs(5), answer)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn an_http2_client_that_stops_taking_a_stream_lets_go_of_its_backend() {
    // The HTTP/2 form of the same: the client reads its connection (so writes to it never wait)
    // but gives the stream no more flow-control window, as a browser does with a response body
    // nobody reads. The stream waits for window for ever; its backend must not.
    let (addr, closed_rx) = endless_backend().await;
    let (gw, _stop) = impatient_gateway(addr).await;
    let tcp = tokio::net::TcpStream::connect(gw).await.unwrap();
    let (mut client, connection) = h2::client::Builder::new()
        .initial_window_size(4096)
        .handshake::<_, bytes::Bytes>(tcp)
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    let answer = h2_get(&mut client, gw, "/api/orders/big").await;
    assert_eq!(answer.status(), 200);
    tokio::time::timeout(Duration::from_secs(10), closed_rx)
        .await
        .expect("the backend was still held 10 s after its HTTP/2 client stopped taking the stream")
        .unwrap();
    // The connection itself still serves other streams.
    assert_eq!(h2_get(&mut client, gw, "/healthz").await.status(), 200);
    // Idle since (the stalled stream no longer counts): GOAWAY, and as the stalled stream never
    // finishes, the connection is closed a send timeout later instead of lingering.
    let _ = tokio::time::timeout(Duration::from_secs(5), connection)
        .await
        .expect("an idle HTTP/2 connection with a stalled stream was still open after 5 s");
    drop(answer);
}

#[tokio::test]
async fn an_http2_event_stream_keeps_its_connection_from_being_idle() {
    use tokio::io::AsyncWriteExt;
    // Events 100 ms apart for 1.2 s, on a connection allowed 300 ms of idleness: a stream whose
    // answer is still coming is activity, so the connection takes new streams all along.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                if !read_request_head(&mut stream).await {
                    return;
                }
                let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                for i in 0..12 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let event = format!("data: {i}\n\n");
                    let chunk = format!("{:x}\r\n{event}\r\n", event.len());
                    if stream.write_all(chunk.as_bytes()).await.is_err() {
                        return;
                    }
                }
                let _ = stream.write_all(b"0\r\n\r\n").await;
            });
        }
    });
    let (gw, _stop) = impatient_gateway(addr).await;
    let tcp = tokio::net::TcpStream::connect(gw).await.unwrap();
    let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let answer = h2_get(&mut client, gw, "/api/orders/events").await;
    let mut body = answer.into_body();
    let mut events = String::new();
    while let Some(data) = tokio::time::timeout(Duration::from_secs(5), body.data()).await.unwrap() {
        let data = data.unwrap();
        let _ = body.flow_control().release_capacity(data.len());
        events.push_str(&String::from_utf8_lossy(&data));
        if events.matches("data:").count() == 8 {
            // 800 ms into the stream, far past the idle limit: a new stream is still taken.
            assert_eq!(h2_get(&mut client, gw, "/healthz").await.status(), 200);
        }
    }
    assert_eq!(events.matches("data:").count(), 12, "{events}");
}

/// What a `piecewise_backend` does after writing an answer.
#[derive(Clone, Copy)]
enum After {
    KeepOpen,
    Close,
    /// Closes the connection this long after the answer, without having said so.
    CloseLater(Duration),
    /// Closes the connection at once, without answering at all.
    CloseUnanswered,
}

/// A backend scripted per request: `answer(connection, request number on that connection,
/// request head)` gives the pieces of the answer, each written on its own a moment apart (so they
/// reach the gateway in separate reads), and what to do after them. Every request's head is
/// recorded. Returns its address, the heads seen (with their connection) and the number of
/// connections it closed.
#[allow(clippy::type_complexity)]
async fn piecewise_backend(
    answer: impl Fn(usize, usize, &str) -> (Vec<Vec<u8>>, After) + Send + Sync + 'static,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<(usize, String)>>>,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let closed = Arc::new(AtomicUsize::new(0));
    let (seen2, closed2) = (seen.clone(), closed.clone());
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        let mut connections = 0;
        while let Ok((mut stream, _)) = listener.accept().await {
            let conn = connections;
            connections += 1;
            let (answer, seen, closed) = (answer.clone(), seen2.clone(), closed2.clone());
            stream.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                let mut byte = [0u8; 1];
                for number in 0.. {
                    let mut head = Vec::new();
                    while !head.ends_with(b"\r\n\r\n") {
                        match stream.read(&mut byte).await {
                            Ok(1) => head.push(byte[0]),
                            _ => {
                                closed.fetch_add(1, Ordering::SeqCst);
                                return;
                            }
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    seen.lock().unwrap().push((conn, head.clone()));
                    let (pieces, after) = answer(conn, number, &head);
                    for piece in pieces {
                        if stream.write_all(&piece).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    match after {
                        After::KeepOpen => {}
                        After::Close | After::CloseUnanswered => break,
                        After::CloseLater(delay) => {
                            tokio::time::sleep(delay).await;
                            break;
                        }
                    }
                }
                drop(stream);
                closed.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    (addr, seen, closed)
}

/// The body of an answer read by `raw`, with the gateway's own chunked framing taken off.
fn unchunked(headers: &[(String, String)], body: &str) -> String {
    if !headers.iter().any(|(k, v)| k == "transfer-encoding" && v == "chunked") {
        return body.to_string();
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
    out
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn answers_framed_every_way_http_1_1_allows_come_back_whole_in_pieces() {
    // Each answer arrives in pieces cut at awkward places; each names its backend connection.
    let (addr, _, _) = piecewise_backend(|conn, _, head| {
        let path = head.split(' ').nth(1).unwrap_or("").to_string();
        let status = |line: &str| format!("{line}\r\nX-Conn: {conn}\r\n").into_bytes();
        let bytes = |s: &str| s.as_bytes().to_vec();
        match path.as_str() {
            "/api/orders/chunked" => (
                vec![
                    status("HTTP/1.1 200 OK"),
                    bytes("Transfer-Encoding: chunked\r\n\r\n5\r\nhel"),
                    bytes("lo\r\n6;ext=\"a\"\r\n wor"),
                    bytes("ld\r"),
                    bytes("\n0\r"),
                    bytes("\nx-trailer: 1\r\n\r\n"),
                ],
                After::KeepOpen,
            ),
            "/api/orders/early-hints" => (
                vec![
                    bytes("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"),
                    status("HTTP/1.1 200 OK"),
                    bytes("Content-Length: 2\r\n\r\nok"),
                ],
                After::KeepOpen,
            ),
            "/api/orders/repeated-length" => (
                vec![
                    status("HTTP/1.1 200 OK"),
                    bytes("Content-Length: 3\r\ncontent-length: 3\r\n\r\nabc"),
                ],
                After::KeepOpen,
            ),
            "/api/orders/head" => (
                vec![status("HTTP/1.1 200 OK"), bytes("Content-Length: 1000\r\n\r\n")],
                After::KeepOpen,
            ),
            "/api/orders/until-close" => (
                vec![status("HTTP/1.1 200 OK"), bytes("\r\nread "), bytes("to the end")],
                After::Close,
            ),
            "/api/orders/http-1.0" => (
                vec![status("HTTP/1.0 200 OK"), bytes("Content-Length: 4\r\n\r\nold!")],
                After::KeepOpen,
            ),
            "/api/orders/differing-lengths" => (
                vec![
                    status("HTTP/1.1 200 OK"),
                    bytes("Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"),
                ],
                After::KeepOpen,
            ),
            "/api/orders/many-fields" => (
                vec![
                    status("HTTP/1.1 200 OK"),
                    (0..150)
                        .map(|i| format!("X-F{i}: v\r\n"))
                        .collect::<String>()
                        .into_bytes(),
                    bytes("Content-Length: 2\r\n\r\nok"),
                ],
                After::KeepOpen,
            ),
            "/api/orders/huge-head" => (
                vec![
                    status("HTTP/1.1 200 OK"),
                    format!("X-Big: {}\r\n", "v".repeat(500 * 1024)).into_bytes(),
                    bytes("Content-Length: 2\r\n\r\nok"),
                ],
                After::KeepOpen,
            ),
            _ => (
                vec![bytes("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")],
                After::KeepOpen,
            ),
        }
    })
    .await;
    let gw = orders_gateway(addr, "").await;
    let get = |method: &'static str, case: &'static str| {
        let gw = &gw;
        async move {
            let (status, headers, body) = raw(
                gw.addr,
                &format!("{method} /api/orders/{case} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"),
            )
            .await;
            let conn = header(&headers, "x-conn").map(str::to_string);
            (status, unchunked(&headers, &body), conn, headers)
        }
    };

    let (status, body, first, _) = get("GET", "chunked").await;
    assert_eq!((status, body.as_str()), (200, "hello world"));
    // Read to its last chunk and trailers: the connection is used again.
    let (status, body, conn, _) = get("GET", "early-hints").await;
    assert_eq!(
        (status, body.as_str(), &conn),
        (200, "ok", &first),
        "103 skipped, connection kept"
    );
    let (status, body, conn, _) = get("GET", "repeated-length").await;
    assert_eq!((status, body.as_str(), &conn), (200, "abc", &first));
    let (status, body, conn, headers) = get("HEAD", "head").await;
    assert_eq!(
        (status, body.as_str(), &conn),
        (200, "", &first),
        "a HEAD answer has no body"
    );
    assert_eq!(header(&headers, "content-length"), Some("1000"));
    let (status, body, conn, _) = get("GET", "chunked").await;
    assert_eq!((status, body.as_str(), &conn), (200, "hello world", &first));

    // No framing: the body is everything until the backend closes, and that connection is done.
    let (status, body, conn, _) = get("GET", "until-close").await;
    assert_eq!((status, body.as_str(), &conn), (200, "read to the end", &first));
    let (status, body, second, _) = get("GET", "http-1.0").await;
    assert_eq!((status, body.as_str()), (200, "old!"));
    assert_ne!(second, first);
    // HTTP/1.0 without keep-alive: not used again.
    let (status, _, third, _) = get("GET", "chunked").await;
    assert_eq!(status, 200);
    assert_ne!(third, second);

    // Two different lengths: which one is the body? Neither: a 502.
    let (status, body, _, _) = get("GET", "differing-lengths").await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("upstream_failed"), "{body}");
    // More header fields than a proxy takes, or a head above 400 KiB: a 502 that says what was
    // wrong with the answer (not that the backend could not be reached).
    for (case, why) in [
        ("many-fields", "too many header fields"),
        ("huge-head", "response head too large"),
    ] {
        let (status, body, _, _) = get("GET", case).await;
        assert_eq!(status, 502, "{case}: {body}");
        assert!(body.contains("upstream_failed"), "{case}: {body}");
        assert!(body.contains(&format!("not valid HTTP/1.1 ({why})")), "{case}: {body}");
    }
}

#[tokio::test]
async fn a_backend_that_drops_idle_connections_costs_no_request() {
    // Each connection is closed 20 ms after its answer, unannounced (a backend's short keep-alive
    // timeout). No retries are configured: a connection the backend closed is never used.
    let (addr, seen, closed) = piecewise_backend(|_, _, _| {
        (
            vec![b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()],
            After::CloseLater(Duration::from_millis(20)),
        )
    })
    .await;
    let gw = orders_gateway(addr, "").await;
    for i in 0..5 {
        let (status, _, body) = order_request(&gw, "GET", i).await;
        assert_eq!((status, body.as_str()), (200, "ok"), "request {i}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while closed.load(std::sync::atomic::Ordering::SeqCst) <= i {
            assert!(tokio::time::Instant::now() < deadline, "the backend never closed");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    assert_eq!(seen.lock().unwrap().len(), 5, "one request each, none sent twice");

    // A backend that takes a second request on a connection and closes it unanswered (its
    // keep-alive timeout ran out as the request came): a GET goes again on a new connection; a
    // POST may have been acted on, so it is not repeated and fails.
    let (addr, seen, _) = piecewise_backend(|_, number, _| match number {
        0 => (
            vec![b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()],
            After::KeepOpen,
        ),
        _ => (vec![], After::CloseUnanswered),
    })
    .await;
    let gw = orders_gateway(addr, "").await;
    let mut statuses = Vec::new();
    for (method, i) in [("GET", 1), ("GET", 2), ("POST", 3)] {
        statuses.push(order_request(&gw, method, i).await.0);
    }
    assert_eq!(statuses, [200, 200, 502]);
    let seen = seen.lock().unwrap().clone();
    let on = |what: &str| {
        seen.iter()
            .filter(|(_, head)| head.starts_with(what))
            .map(|(c, _)| *c)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        on("GET /api/orders/2 "),
        [0, 1],
        "the GET went again, on a new connection"
    );
    assert_eq!(on("POST /api/orders/3 "), [1], "the POST was sent once");
}

#[tokio::test]
async fn a_backend_redirect_into_itself_becomes_the_clients_path() {
    // The backend builds absolute redirects from the Host it is sent (its own address), as
    // frameworks do; nginx's `proxy_redirect default` turns those back into the client's paths.
    let backend = Backend::start(|s| {
        let location = if s.uri.contains("foreign") {
            "https://elsewhere.example/x".to_string()
        } else if s.uri.contains("relative") {
            "/somewhere".to_string()
        } else {
            format!("http://{}{}/next", s.header("host").unwrap_or_default(), s.uri)
        };
        Reply::status(302, json!({})).with_header("location", &location)
    })
    .await;
    let gw = routes_gateway(
        &[
            ("orders", format!("{}/base/", backend.url()), ""),
            ("v2", backend.url(), ""),
            ("legacy", backend.url(), ""),
        ],
        "  - { prefix: /api/orders, service: orders, strip_prefix: true, auth: none }\n  - { prefix: /api/v1, service: v2, rewrite: /v2, auth: none }\n  - { prefix: /old, service: legacy, auth: none }\n",
        &[],
    )
    .await;
    for (path, expected) in [
        ("/api/orders/7", "/api/orders/7/next"),
        ("/api/v1/items/3", "/api/v1/items/3/next"),
        ("/old/x", "/old/x/next"),
        ("/old/foreign", "https://elsewhere.example/x"),
        ("/old/relative", "/somewhere"),
    ] {
        let (status, headers, _) = raw(
            gw.addr,
            &format!("GET {path} HTTP/1.1\r\nHost: gw.example\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(status, 302, "{path}");
        let location = headers.iter().find(|(k, _)| k == "location").map(|(_, v)| v.as_str());
        // The query came back on the backend's redirect too (it was in `uri`).
        let expected = if path.contains('?') {
            "/api/orders/7?x=1/next"
        } else {
            expected
        };
        assert_eq!(location, Some(expected), "{path}");
    }
}

#[tokio::test]
async fn a_trusted_proxy_says_which_scheme_and_host_the_client_used() {
    let backend = Backend::fixed(json!({})).await;
    let services = [("legacy", backend.url(), "")];
    let routes = "  - { prefix: /old, service: legacy, auth: none }\n";
    let request = "GET /old/x HTTP/1.1\r\nHost: internal:8080\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: shop.example\r\nConnection: close\r\n\r\n";
    // This test's requests come from 127.0.0.1: a trusted proxy here.
    let trusted = Project::new(
        &format!(
            "{}rate_limits:\n  trusted_proxies: [127.0.0.1/32]\n",
            routes_facade(&services, routes)
        ),
        &[],
    );
    let gw = Gateway::start(trusted.plan(&[])).await;
    assert_eq!(raw(gw.addr, request).await.0, 200);
    let seen = backend.seen().pop().unwrap();
    assert_eq!(seen.header("x-forwarded-proto"), Some("https"));
    assert_eq!(seen.header("x-forwarded-host"), Some("shop.example"));
    // From a peer that is not trusted, both are Facade's to set.
    let gw = routes_gateway(&services, routes, &[]).await;
    assert_eq!(raw(gw.addr, request).await.0, 200);
    let seen = backend.seen().pop().unwrap();
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(seen.header("x-forwarded-host"), Some("internal:8080"));
}

#[tokio::test]
async fn an_ipv4_client_of_a_dual_stack_listener_is_an_ipv4_address() {
    // On `[::]`, a client of 127.0.0.1 is `::ffff:127.0.0.1` to the socket: it must still match
    // `trusted_proxies: [127.0.0.1/32]` and be written as nginx writes it.
    let backend = Backend::fixed(json!({})).await;
    let services = [("legacy", backend.url(), "")];
    let routes = "  - { prefix: /old, service: legacy, auth: none }\n";
    let p = Project::new(
        &format!(
            "{}rate_limits:\n  trusted_proxies: [127.0.0.1/32]\n",
            routes_facade(&services, routes)
        ),
        &[],
    );
    let gw = Gateway::start_on(p.plan(&[]), "[::]:0").await;
    let request = "GET /old/x HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\nConnection: close\r\n\r\n";
    assert_eq!(raw(gw.addr, request).await.0, 200);
    let seen = backend.seen().pop().unwrap();
    assert_eq!(seen.header("x-forwarded-for"), Some("203.0.113.9, 127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("https"), "the peer is trusted");
}
