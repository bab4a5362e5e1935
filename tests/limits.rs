//! Request limits (SPEC §3) and hostile clients: header sets above `limits.request_headers` get
//! the JSON 431, bodies above `limits.request_body` the JSON 413 (declared or chunked), stalled
//! clients cannot hold the server, and huge URLs or header floods are refused without a crash.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const COMPOSITION: &str = r#"
client: app
base_path: /app
endpoints:
  read:
    get: /read
    auth: none
    calls:
      b: { service: things, get: /thing }
    response: { value: "$.b.value" }
  write:
    post: /write
    auth: none
    body:
      name: String
    calls:
      b: { service: things, post: /thing, body: { name: "$.args.name" } }
    response: { value: "$.b.value" }
"#;

struct Served {
    addr: std::net::SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn serve(limits: &str, header_read_timeout: Duration) -> (Served, Backend) {
    let backend = Backend::fixed(json!({"value": 1})).await;
    let facade = format!("services:\n  things:\n    url: {}\nlimits:\n{limits}", backend.url());
    let plan = Project::new(&facade, &[("app.yaml", COMPOSITION)]).plan(&[]);
    let (addr, tx, _) = serve_plan(plan, |o| o.header_read_timeout = header_read_timeout).await;
    (Served { addr, _stop: tx }, backend)
}

/// Sends `request` and reads until the server closes or `within` passes; returns what came back.
async fn exchange(addr: std::net::SocketAddr, request: &[u8], within: Duration) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The server may refuse and close before it has read everything: that is fine.
    let _ = stream.write_all(request).await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(within, stream.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf).into_owned()
}

fn status_of(response: &str) -> u16 {
    response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn body_of(response: &str) -> Value {
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    serde_json::from_str(body).unwrap_or(Value::Null)
}

#[tokio::test]
async fn a_request_may_have_one_hundred_header_fields() {
    let (gw, _backend) = serve("  request_headers: 32KiB\n", Duration::from_secs(5)).await;
    let url = format!("http://{}/app/read", gw.addr);
    let with = |n: usize| {
        let mut req = client().get(&url);
        for i in 0..n {
            req = req.header(format!("x-h{i}"), "v");
        }
        req
    };
    // reqwest adds `accept` and `host`: 98 + 2 = 100.
    assert_eq!(with(98).send().await.unwrap().status(), 200);
    assert_eq!(with(99).send().await.unwrap().status(), 431);
    // The server lives on.
    assert_eq!(with(1).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn header_sets_above_the_limit_get_the_json_431() {
    let (gw, backend) = serve("  request_headers: 4KiB\n", Duration::from_secs(5)).await;
    let url = format!("http://{}/app/read", gw.addr);
    // Just under the limit passes: Σ (name + value + 4) counts every header reqwest sends too.
    let resp = client()
        .get(&url)
        .header("x-big", "a".repeat(3000))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = client()
        .get(&url)
        .header("x-big", "a".repeat(5000))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 431);
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "request_headers_too_large");
    assert_eq!(body["request_id"], id.as_str());
    // Many small headers count together.
    let mut req = client().get(&url);
    for i in 0..120 {
        req = req.header(format!("x-h{i}"), "0123456789012345678901234");
    }
    assert_eq!(req.send().await.unwrap().status(), 431);
    assert_eq!(backend.count(), 1, "refused requests never reach a backend");
    // Far past the parser's cap (4 × the limit) hyper refuses on its own; the server lives on.
    let huge = format!(
        "GET /app/read HTTP/1.1\r\nHost: x\r\nX-Huge: {}\r\n\r\n",
        "b".repeat(64 << 10)
    );
    let answer = exchange(gw.addr, huge.as_bytes(), Duration::from_secs(5)).await;
    assert!(answer.is_empty() || status_of(&answer) == 431, "{answer}");
    assert_eq!(client().get(&url).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn bodies_above_the_limit_get_413_declared_or_chunked() {
    let (gw, backend) = serve("  request_body: 1KiB\n", Duration::from_secs(5)).await;
    let url = format!("http://{}/app/write", gw.addr);
    let ok = client().post(&url).json(&json!({"name": "x"})).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let big = json!({"name": "n".repeat(2000)}).to_string();
    let resp = client()
        .post(&url)
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "payload_too_large");
    // Chunked: no Content-Length, counted while reading.
    let chunks = futures::stream::iter(big.into_bytes().chunks(100).map(|c| c.to_vec()).collect::<Vec<_>>())
        .map(Ok::<_, std::io::Error>);
    let resp = client()
        .post(&url)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert!(resp.headers().contains_key("x-request-id"));
    assert_eq!(backend.count(), 1);
}

use futures::StreamExt;

#[tokio::test]
async fn stalled_clients_do_not_hold_the_server() {
    let (gw, _backend) = serve("  request_body: 1MiB\n", Duration::from_millis(700)).await;
    let mut stalled = Vec::new();
    for _ in 0..100 {
        let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
        s.write_all(b"GET /app/read HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        stalled.push(s);
    }
    let started = Instant::now();
    let resp = client()
        .get(format!("http://{}/app/read", gw.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a normal client waited {:?}",
        started.elapsed()
    );
    // Past the header read timeout the stalled connections are closed.
    let mut first = stalled.swap_remove(0);
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), first.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "a stalled connection was still open after 5 s");

    // So are connections that send nothing at all, or only the start of an HTTP/2 preface.
    let silent = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let mut partial = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    partial.write_all(b"PRI * HTTP/2").await.unwrap();
    for (what, mut s) in [("sent nothing", silent), ("sent part of a preface", partial)] {
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "a connection that {what} was still open after 5 s");
    }
    // The whole preface goes on to HTTP/2 as before.
    let h2 = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let resp = h2.get(format!("http://{}/app/read", gw.addr)).send().await.unwrap();
    assert_eq!(
        (resp.status().as_u16(), resp.version()),
        (200, reqwest::Version::HTTP_2)
    );
}

#[tokio::test]
async fn hostile_input_is_refused_without_a_crash_or_a_hang() {
    let (gw, _backend) = serve("  request_headers: 32KiB\n", Duration::from_secs(5)).await;
    let long_url = format!("GET /app/{} HTTP/1.1\r\nHost: x\r\n\r\n", "u".repeat(1 << 20));
    let answer = exchange(gw.addr, long_url.as_bytes(), Duration::from_secs(5)).await;
    let status = status_of(&answer);
    assert!(answer.is_empty() || [400, 404, 414, 431].contains(&status), "{status}");
    let mut flood = String::from("GET /app/read HTTP/1.1\r\nHost: x\r\n");
    for i in 0..5000 {
        flood.push_str(&format!("x-{i}: v\r\n"));
    }
    flood.push_str("\r\n");
    let answer = exchange(gw.addr, flood.as_bytes(), Duration::from_secs(5)).await;
    let status = status_of(&answer);
    assert!(answer.is_empty() || status == 431, "{answer}");
    if status == 431 && answer.contains("application/json") {
        assert_eq!(body_of(&answer)["error"], "request_headers_too_large");
    }
    let resp = client()
        .get(format!("http://{}/healthz", gw.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

/// Writes `parts` with `gap` between them, then reads the answer until the server closes or
/// `within` passes.
async fn trickle(addr: std::net::SocketAddr, parts: &[&str], gap: Duration, within: Duration) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(gap).await;
        }
        stream.write_all(part.as_bytes()).await.unwrap();
    }
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(within, stream.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn a_request_body_that_stops_coming_is_a_408_and_a_slow_one_is_served() {
    let backend = Backend::fixed(json!({"value": 1})).await;
    let facade = format!(
        "services:\n  things:\n    url: {}\n    circuit_breaker: {{ failures: 1, within: 60s, open_for: 60s }}\nroutes:\n  - {{ prefix: /api, service: things }}\n",
        backend.url()
    );
    let plan = Project::new(&facade, &[("app.yaml", COMPOSITION)]).plan(&[]);
    let idle = Duration::from_millis(400);
    let (addr, _stop, _) = serve_plan(plan, |o| o.body_idle_timeout = idle).await;
    let head = |path: &str, length: usize| {
        format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n")
    };

    // Bodies that stop: a composed endpoint's, a GraphQL operation's, and a passthrough upload
    // (the last not blamed on the backend: its breaker opens after one failure, yet the next
    // request goes through).
    for (path, declared, sent) in [
        ("/app/write", 16, "{\"name\":"),
        ("/graphql", 40, "{\"query\":"),
        ("/api/up", 1000, "0123456789"),
    ] {
        let started = Instant::now();
        let answer = trickle(addr, &[&head(path, declared), sent], idle, Duration::from_secs(5)).await;
        let took = started.elapsed();
        assert_eq!(status_of(&answer), 408, "{path}: {answer}");
        assert_eq!(body_of(&answer)["error"], "request_timeout", "{path}");
        assert!(
            took >= idle && took < Duration::from_secs(3),
            "{path}: answered after {took:?}"
        );
    }

    // A body that keeps coming, each pause shorter than the limit, however long in all.
    let body = "{\"name\": \"ada\"}";
    let slow = [
        &head("/app/write", body.len())[..],
        &body[..5],
        &body[5..10],
        &body[10..],
    ];
    let answer = trickle(addr, &slow, Duration::from_millis(250), Duration::from_secs(5)).await;
    assert_eq!(status_of(&answer), 200, "{answer}");
    let resp = client().get(format!("http://{addr}/api/ok")).send().await.unwrap();
    assert_eq!(
        resp.status(),
        200,
        "the breaker counted the client's stall against the backend"
    );
}

#[tokio::test]
async fn an_idle_http2_connection_is_finished_and_a_busy_one_is_not() {
    let slow = Backend::start(|_| Reply::json(json!({"value": 1})).after(Duration::from_millis(1200))).await;
    let facade = format!("services:\n  things:\n    url: {}\n", slow.url());
    let plan = Project::new(&facade, &[("app.yaml", COMPOSITION)]).plan(&[]);
    let idle = Duration::from_millis(400);
    let (addr, _stop, _) = serve_plan(plan, |o| o.h2_idle_timeout = idle).await;

    // A request in flight for three times the idle limit is answered on its connection.
    let h2 = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let resp = h2.get(format!("http://{addr}/app/read")).send().await.unwrap();
    assert_eq!(
        (resp.status().as_u16(), resp.version()),
        (200, reqwest::Version::HTTP_2)
    );

    // A connection that says hello and asks nothing gets GOAWAY, then is closed. (The client
    // answers the server's SETTINGS and PINGs, as a live client does.)
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let started = Instant::now();
    let mut frames = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        let mut head = [0u8; 9];
        while s.read_exact(&mut head).await.is_ok() {
            let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
            let mut payload = vec![0u8; len];
            if s.read_exact(&mut payload).await.is_err() {
                break;
            }
            frames.push(head[3]);
            let ack = match (head[3], head[4] & 1) {
                (4, 0) => vec![0, 0, 0, 4, 1, 0, 0, 0, 0],
                (6, 0) => [&[0, 0, 8, 6, 1, 0, 0, 0, 0][..], &payload].concat(),
                _ => continue,
            };
            let _ = s.write_all(&ack).await;
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "an idle HTTP/2 connection was still open after 5 s: {frames:?}"
    );
    assert!(started.elapsed() >= idle, "closed after {:?}", started.elapsed());
    assert!(frames.contains(&7), "no GOAWAY among the frames {frames:?}");
}

/// Reads one response (head and a `Content-Length` body) from `stream`; `None` when the stream
/// ends or nothing complete comes within 5 s.
async fn one_response(stream: &mut tokio::net::TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return Some(String::from_utf8_lossy(&buf[..end + 4 + length]).into_owned());
            }
        }
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return None,
        }
    }
}

#[tokio::test]
async fn an_answer_that_leaves_the_body_unread_keeps_the_connection_or_says_it_closes() {
    let (gw, _backend) = serve("  request_body: 1MiB\n", Duration::from_secs(10)).await;
    let head = |length: usize, extra: &str| {
        format!("POST /app/read HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n{extra}\r\n")
    };
    let body = br#"{"name":"x"}"#;

    // The head alone, and the body a moment later in a segment of its own (as Python's
    // http.client sends a POST): the 405 comes before the body is read, the rest of the body is
    // read and dropped, and the connection serves the next request.
    let mut stream = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    stream.write_all(head(body.len(), "").as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    stream.write_all(body).await.unwrap();
    let first = one_response(&mut stream).await.expect("an answer");
    assert_eq!(status_of(&first), 405, "{first}");
    assert!(!first.to_ascii_lowercase().contains("connection: close"), "{first}");
    stream
        .write_all(b"GET /app/read HTTP/1.1\r\nHost: gw\r\n\r\n")
        .await
        .unwrap();
    let second = one_response(&mut stream).await.expect("the connection stayed open");
    assert_eq!(status_of(&second), 200, "{second}");

    // A body far larger than is worth reading: the answer says the connection closes, and it does.
    let mut stream = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    stream.write_all(head(900_000, "").as_bytes()).await.unwrap();
    stream.write_all(&[b' '; 1000]).await.unwrap();
    let answer = one_response(&mut stream).await.expect("an answer");
    assert_eq!(status_of(&answer), 405, "{answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
    assert!(matches!(closed, Ok(Ok(_))), "the server closed the connection");

    // A client waiting for `100 Continue`: not asked for its body, answered at once, and told
    // the connection closes.
    let mut stream = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let started = Instant::now();
    stream
        .write_all(head(body.len(), "Expect: 100-continue\r\n").as_bytes())
        .await
        .unwrap();
    let answer = one_response(&mut stream).await.expect("an answer");
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status_of(&answer), 405, "no 100 Continue first: {answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
}
