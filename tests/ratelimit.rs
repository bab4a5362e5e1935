//! Rate limiting with the memory store (SPEC §7), end to end: the real gateway, real backends on
//! loopback that count what reaches them, and the injected clock moved instead of sleeping.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const APP: &str = r#"
client: app
base_path: /app
endpoints:
  one:
    get: /one
    rate_limit: tight
    calls: { a: { service: data, get: /a } }
    response: { v: "$.a.v" }
  two:
    get: /two
    rate_limit: tight
    calls: { a: { service: data, get: /a } }
    response: { v: "$.a.v" }
  free:
    get: /free
    rate_limit: none
    calls: { a: { service: data, get: /a } }
    response: { v: "$.a.v" }
  fallback:
    get: /fallback
    calls: { a: { service: data, get: /a } }
    response: { v: "$.a.v" }
  open:
    get: /open
    auth: none
    rate_limit: by_ip
    calls: { a: { service: data, get: /a } }
    response: { v: "$.a.v" }
  keyed:
    get: /keyed
    auth: none
    rate_limit: by_key
    calls: { a: { service: data, get: /a } }
    response: { v: "$.a.v" }
"#;

const LIMITS: &str = r#"
rate_limits:
  default: roomy
  trusted_proxies: [127.0.0.1/32]
  policies:
    tight:  { requests: 3, per: 60s, key: user }
    roomy:  { requests: 5, per: 10s }
    by_ip:  { requests: 2, per: 60s, key: ip }
    by_key: { requests: 1, per: 60s, key: "header:X-Api-Key" }
    edge:   { requests: 2, per: 60s, key: user_or_ip }
"#;

async fn gateway(extra: &str) -> (Backend, Gateway) {
    let data = Backend::fixed(json!({"v": 1})).await;
    let yaml = format!("services:\n  data:\n    url: {}\n{AUTH}{LIMITS}{extra}", data.url());
    let p = Project::new(&yaml, &[("app.yaml", APP)]);
    let gw = Gateway::start(p.plan(&[])).await;
    (data, gw)
}

async fn call(
    gw: &Gateway,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, http::HeaderMap, Value) {
    let mut req = client().get(gw.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let h = resp.headers().clone();
    (status, h, resp.json().await.unwrap_or(Value::Null))
}

fn header<'h>(h: &'h http::HeaderMap, name: &str) -> &'h str {
    h.get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
}

#[tokio::test]
async fn a_policy_limits_with_honest_headers_and_refuses_before_any_backend() {
    let (data, gw) = gateway("").await;
    let t = token("u1", json!({}));
    for remaining in ["2", "1", "0"] {
        let (s, h, _) = call(&gw, "/app/one", Some(&t), &[]).await;
        assert_eq!(s, 200);
        assert_eq!(header(&h, "x-ratelimit-limit"), "3");
        assert_eq!(header(&h, "x-ratelimit-remaining"), remaining);
        assert_eq!(header(&h, "ratelimit-policy"), r#""tight";q=3;w=60"#);
    }
    let (s, h, body) = call(&gw, "/app/one", Some(&t), &[]).await;
    assert_eq!(s, 429);
    assert_eq!(body["error"], "rate_limited");
    assert_eq!(header(&h, "retry-after"), "20", "one emission interval of 60 s / 3");
    assert_eq!(header(&h, "x-ratelimit-remaining"), "0");
    assert_eq!(header(&h, "x-ratelimit-reset"), "20");
    assert_eq!(header(&h, "ratelimit"), r#""tight";r=0;t=20"#);
    assert!(!header(&h, "x-request-id").is_empty());
    assert_eq!(data.count(), 3, "refused requests never reach a backend");
    // The quota comes back gradually: 20 s gives one request.
    gw.clock.advance(Duration::from_secs(20));
    let (s, h, _) = call(&gw, "/app/one", Some(&t), &[]).await;
    assert_eq!((s, header(&h, "x-ratelimit-remaining")), (200, "0"));
    assert_eq!(
        header(&h, "x-ratelimit-reset"),
        "60",
        "allowed: until the whole quota is back"
    );
    let (s, _, _) = call(&gw, "/app/one", Some(&t), &[]).await;
    assert_eq!(s, 429);
}

#[tokio::test]
async fn routes_naming_one_policy_share_a_quota_and_users_have_their_own() {
    let (_, gw) = gateway("").await;
    let t = token("u1", json!({}));
    let other = token("u2", json!({}));
    for path in ["/app/one", "/app/two", "/app/one"] {
        assert_eq!(call(&gw, path, Some(&t), &[]).await.0, 200);
    }
    assert_eq!(
        call(&gw, "/app/two", Some(&t), &[]).await.0,
        429,
        "one bucket for both routes"
    );
    assert_eq!(
        call(&gw, "/app/one", Some(&other), &[]).await.0,
        200,
        "another user, another bucket"
    );
    // `rate_limit: none` is never limited and carries no headers.
    for _ in 0..10 {
        let (s, h, _) = call(&gw, "/app/free", Some(&t), &[]).await;
        assert_eq!(s, 200);
        assert!(h.get("x-ratelimit-limit").is_none());
    }
    // A route naming nothing gets the default policy.
    let (_, h, _) = call(&gw, "/app/fallback", Some(&t), &[]).await;
    assert_eq!(header(&h, "x-ratelimit-limit"), "5");
}

#[tokio::test]
async fn a_401_consumes_nothing_and_carries_no_rate_headers() {
    let (data, gw) = gateway("").await;
    for _ in 0..5 {
        let (s, h, _) = call(&gw, "/app/one", None, &[]).await;
        assert_eq!(s, 401);
        assert!(h.get("x-ratelimit-limit").is_none() && h.get("ratelimit").is_none());
    }
    let bad = "Bearer not-a-token";
    let (s, h, _) = call(&gw, "/app/one", None, &[("authorization", bad)]).await;
    assert_eq!(s, 401);
    assert!(h.get("x-ratelimit-limit").is_none());
    let t = token("u1", json!({}));
    for _ in 0..3 {
        assert_eq!(call(&gw, "/app/one", Some(&t), &[]).await.0, 200);
    }
    assert_eq!(data.count(), 3);
}

#[tokio::test]
async fn ip_keys_believe_only_trusted_proxies_and_header_keys_fall_back_to_the_address() {
    let (_, gw) = gateway("").await;
    // The test client is 127.0.0.1, a trusted proxy: the right-most untrusted address counts.
    let from = |ip: &'static str| [("x-forwarded-for", ip)];
    assert_eq!(call(&gw, "/app/open", None, &from("203.0.113.1")).await.0, 200);
    assert_eq!(
        call(&gw, "/app/open", None, &from("198.51.100.7, 203.0.113.1")).await.0,
        200
    );
    assert_eq!(
        call(&gw, "/app/open", None, &from("9.9.9.9, 203.0.113.1")).await.0,
        429,
        "a forged left-most address does not give a new bucket"
    );
    assert_eq!(call(&gw, "/app/open", None, &from("203.0.113.2")).await.0, 200);
    // header:X-Api-Key: one bucket per key; without the header, the address.
    assert_eq!(call(&gw, "/app/keyed", None, &[("x-api-key", "k1")]).await.0, 200);
    assert_eq!(call(&gw, "/app/keyed", None, &[("x-api-key", "k1")]).await.0, 429);
    assert_eq!(call(&gw, "/app/keyed", None, &[("x-api-key", "k2")]).await.0, 200);
    assert_eq!(call(&gw, "/app/keyed", None, &from("203.0.113.50")).await.0, 200);
    assert_eq!(call(&gw, "/app/keyed", None, &from("203.0.113.50")).await.0, 429);
}

#[tokio::test]
async fn passthrough_routes_are_limited_and_the_gateways_headers_replace_the_backends() {
    let backend = Backend::start(|_| {
        Reply::json(json!({"ok": true}))
            .with_header("x-ratelimit-limit", "999")
            .with_header("ratelimit", "\"backend\";r=998;t=1")
    })
    .await;
    let yaml = format!(
        "services:\n  orders:\n    url: {}\n{AUTH}{LIMITS}routes:\n  - prefix: /api/orders\n    service: orders\n    rate_limit: by_ip\n",
        backend.url()
    );
    let p = Project::new(&yaml, &[]);
    let gw = Gateway::start(p.plan(&[])).await;
    let t = token("u1", json!({}));
    for remaining in ["1", "0"] {
        let (s, h, _) = call(&gw, "/api/orders/1", Some(&t), &[]).await;
        assert_eq!(s, 200);
        assert_eq!(header(&h, "x-ratelimit-remaining"), remaining);
        assert_eq!(
            header(&h, "x-ratelimit-limit"),
            "2",
            "the backend's own header is replaced"
        );
        assert_eq!(
            header(&h, "ratelimit"),
            format!("\"by_ip\";r={remaining};t={}", if remaining == "1" { 30 } else { 60 })
        );
        assert_eq!(h.get_all("x-ratelimit-limit").iter().count(), 1);
    }
    let (s, h, _) = call(&gw, "/api/orders/1", Some(&t), &[]).await;
    assert_eq!(s, 429);
    assert_eq!(header(&h, "retry-after"), "30");
    assert_eq!(backend.count(), 2);
}

#[tokio::test]
async fn graphql_counts_every_alias_and_the_http_request_once() {
    let (data, gw) = gateway("graphql:\n  rate_limit: edge\n").await;
    let t = token("u1", json!({}));
    let q = "{ app { a: one { v } b: one { v } c: one { v } d: one { v } } }";
    let resp = client()
        .post(gw.url("/graphql"))
        .bearer_auth(&t)
        .json(&json!({"query": q}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // The HTTP request counted once against `edge` (2 per minute): its headers.
    assert_eq!(header(resp.headers(), "ratelimit-policy"), r#""edge";q=2;w=60"#);
    assert_eq!(header(resp.headers(), "x-ratelimit-remaining"), "1");
    let body: Value = resp.json().await.unwrap();
    let ns = &body["data"]["app"];
    let answered = ["a", "b", "c", "d"].iter().filter(|k| !ns[**k].is_null()).count();
    assert_eq!(answered, 3, "`tight` allows 3: every alias counts: {body}");
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["extensions"]["code"], "RATE_LIMITED");
    // The three answered aliases made one backend request (identical calls, one operation).
    assert_eq!(data.count(), 1);
    // The second HTTP request is the last `edge` allows; the third is an HTTP 429.
    let send = || {
        client()
            .post(gw.url("/graphql"))
            .bearer_auth(&t)
            .json(&json!({"query": "{ __typename }"}))
            .send()
    };
    assert_eq!(send().await.unwrap().status(), 200);
    let refused = send().await.unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(header(refused.headers(), "retry-after"), "30");
}

#[test]
fn check_warns_when_a_user_policy_guards_an_anonymous_route() {
    let comp = r#"
client: app
base_path: /app
endpoints:
  open:
    get: /open
    auth: optional
    rate_limit: per_user
    calls: { a: { service: data, get: /a } }
    response: { v: "$.a.v" }
"#;
    let yaml = format!(
        "services:\n  data:\n    url: http://127.0.0.1:9\n{AUTH}rate_limits:\n  policies:\n    per_user: {{ requests: 1, per: 1s, key: user }}\n"
    );
    let p = Project::new(&yaml, &[("app.yaml", comp)]);
    let out = p.diagnostics(&[]);
    assert!(
        out.contains("compositions/app.yaml:8:17: warning: policy `per_user` is keyed by `user`, but this route allows anonymous requests"),
        "{out}"
    );
}

#[test]
fn an_unusable_store_url_is_a_load_error() {
    let yaml = format!(
        "services:\n  data:\n    url: http://127.0.0.1:9\n{AUTH}rate_limits:\n  store: \"redis://127.0.0.1:notaport\"\n  policies:\n    p: {{ requests: 1, per: 1s }}\n"
    );
    let p = Project::new(&yaml, &[]);
    let out = p.diagnostics(&[]);
    assert!(
        out.contains("facade.yaml:13:10: rate_limits.store: `redis://127.0.0.1:notaport` is not a usable Redis URL"),
        "{out}"
    );
    let yaml = format!(
        "services:\n  data:\n    url: http://127.0.0.1:9\n{AUTH}rate_limits:\n  store: {{ cluster: [\"http://h:1\"] }}\n  policies:\n    p: {{ requests: 1, per: 1s }}\n"
    );
    let out = Project::new(&yaml, &[]).diagnostics(&[]);
    assert!(
        out.contains("`http://h:1` is not a `redis://` or `rediss://` URL"),
        "{out}"
    );
}

#[test]
fn a_refused_policy_value_gives_one_error_not_a_cascade() {
    let yaml = format!(
        "services:\n  data:\n    url: http://127.0.0.1:9\n{AUTH}rate_limits:\n  default: p\n  policies:\n    p: {{ requests: \"many\", per: 60s }}\n"
    );
    let out = Project::new(&yaml, &[]).diagnostics(&[]);
    assert!(out.contains("`requests` must be a whole number"), "{out}");
    assert!(!out.contains("not defined"), "{out}");
}
