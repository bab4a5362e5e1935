//! CORS (SPEC §3): preflights answered before auth, Facade's headers exposed to allowed origins,
//! and no CORS header at all without a `cors:` section.

mod common;

use common::*;
use serde_json::json;

const COMPOSITION: &str = "client: app\nbase_path: /app\nendpoints:\n  e:\n    get: /e\n    auth: required\n    calls:\n      b: { service: things, get: /thing }\n    response: { value: \"$.b.value\" }\n";

async fn gateway(cors: &str) -> (Gateway, Backend) {
    let backend = Backend::fixed(json!({"value": 1})).await;
    let facade = format!("services:\n  things:\n    url: {}\n{AUTH}{cors}", backend.url());
    let plan = Project::new(&facade, &[("app.yaml", COMPOSITION)]).plan(&[]);
    (Gateway::start(plan).await, backend)
}

fn preflight(url: &str, origin: &str) -> reqwest::RequestBuilder {
    client()
        .request(reqwest::Method::OPTIONS, url)
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
}

#[tokio::test]
async fn preflights_are_answered_before_auth_and_headers_are_exposed() {
    let (gw, backend) =
        gateway("cors:\n  allow_origins: [https://shop.example.com]\n  allow_methods: [GET, POST]\n  max_age: 10m\n")
            .await;
    let url = gw.url("/app/e");
    let resp = preflight(&url, "https://shop.example.com").send().await.unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let h = resp.headers();
    assert_eq!(h["access-control-allow-origin"], "https://shop.example.com");
    assert!(h["access-control-allow-methods"].to_str().unwrap().contains("GET"));
    assert!(h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("authorization"));
    assert_eq!(h["access-control-max-age"], "600");
    assert!(h.contains_key("x-request-id"));
    assert_eq!(backend.count(), 0);

    let t = token("u1", json!({}));
    let resp = client()
        .get(&url)
        .header("origin", "https://shop.example.com")
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let h = resp.headers();
    assert_eq!(h["access-control-allow-origin"], "https://shop.example.com");
    let exposed = h["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for name in [
        "x-request-id",
        "x-facade-partial",
        "x-ratelimit-remaining",
        "ratelimit",
        "retry-after",
    ] {
        assert!(exposed.contains(name), "{name} in {exposed}");
    }
    // Errors carry CORS headers too, so the browser script can read them.
    let resp = client()
        .get(&url)
        .header("origin", "https://shop.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://shop.example.com"
    );
    // Another origin is not allowed.
    let resp = preflight(&url, "https://evil.example").send().await.unwrap();
    assert!(!resp.headers().contains_key("access-control-allow-origin"));
    let resp = client()
        .get(&url)
        .header("origin", "https://evil.example")
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert!(!resp.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn an_options_request_that_is_no_preflight_is_routed_like_any_other() {
    let (gw, backend) = gateway(
        "cors:\n  allow_origins: [https://shop.example.com]\nroutes:\n  - { prefix: /pass, service: things, auth: none }\n",
    )
    .await;
    let options = |path: &str| client().request(reqwest::Method::OPTIONS, gw.url(path));
    // To a passthrough route: the backend answers it, and an allowed origin gets the headers of
    // an actual request.
    let resp = options("/pass/x")
        .header("origin", "https://shop.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://shop.example.com"
    );
    assert!(
        !resp.headers().contains_key("access-control-allow-methods"),
        "not a preflight answer"
    );
    let seen = backend.seen();
    assert_eq!(
        seen.iter()
            .map(|s| (s.method.as_str(), s.uri.as_str()))
            .collect::<Vec<_>>(),
        [("OPTIONS", "/pass/x")]
    );
    // To a composed GET endpoint: 405, with what it allows.
    let resp = options("/app/e").send().await.unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "GET, HEAD");
    assert!(!resp.headers().contains_key("access-control-allow-origin"));
    // A preflight to the same route is still answered by Facade, before the backend.
    let resp = preflight(&gw.url("/pass/x"), "https://shop.example.com")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    assert!(resp.headers().contains_key("access-control-allow-methods"));
    assert_eq!(backend.count(), 1);
}

#[tokio::test]
async fn without_a_cors_section_no_cors_header_is_sent() {
    let (gw, _backend) = gateway("").await;
    let url = gw.url("/app/e");
    let resp = preflight(&url, "https://shop.example.com").send().await.unwrap();
    assert_eq!(resp.status(), 405, "a preflight is an ordinary OPTIONS request then");
    assert!(resp
        .headers()
        .keys()
        .all(|k| !k.as_str().starts_with("access-control-")));
    let resp = client()
        .get(&url)
        .header("origin", "https://shop.example.com")
        .send()
        .await
        .unwrap();
    assert!(resp
        .headers()
        .keys()
        .all(|k| !k.as_str().starts_with("access-control-")));
}

#[test]
fn cors_load_errors() {
    let p = Project::new(
        "services:\n  s:\n    url: http://127.0.0.1:9\ncors:\n  allow_origins: [\"*\", https://a.example/path, shop.example]\n  allow_credentials: true\n  allow_methods: [get, POST]\n  allow_headers: [\"bad header\"]\n  max_age: \"10m\"\n",
        &[],
    );
    insta::assert_snapshot!(p.diagnostics(&[]));
}

#[tokio::test]
async fn a_request_from_no_allowed_origin_gets_no_cors_header_but_a_backends_own() {
    let backend = Backend::start(|s: &Seen| {
        if s.uri.starts_with("/pass") {
            Reply::json(json!({"value": 2})).with_header("access-control-allow-credentials", "true")
        } else {
            Reply::json(json!({"value": 1}))
        }
    })
    .await;
    let facade = format!(
        "services:\n  things:\n    url: {}\n{AUTH}cors:\n  allow_origins: [https://shop.example.com]\n  allow_credentials: true\nroutes:\n  - {{ prefix: /pass, service: things, auth: none }}\n",
        backend.url()
    );
    let gw = Gateway::start(Project::new(&facade, &[("app.yaml", COMPOSITION)]).plan(&[])).await;
    let t = token("u1", json!({}));
    let cors_headers = |resp: &reqwest::Response| -> Vec<String> {
        resp.headers()
            .keys()
            .filter(|k| k.as_str().starts_with("access-control-"))
            .map(|k| k.to_string())
            .collect()
    };
    for origin in [None, Some("https://evil.example")] {
        let mut req = client().get(gw.url("/app/e")).bearer_auth(&t);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(cors_headers(&resp).is_empty(), "{origin:?}: {:?}", resp.headers());
        assert!(resp
            .headers()
            .get_all("vary")
            .iter()
            .any(|v| v.to_str().unwrap_or("").contains("origin")));
    }
    // A preflight from an origin not allowed learns nothing of the policy.
    let resp = preflight(&gw.url("/app/e"), "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(cors_headers(&resp).is_empty(), "{:?}", resp.headers());
    // A passthrough backend's own CORS headers are its own to send.
    let resp = client().get(gw.url("/pass/x")).send().await.unwrap();
    assert_eq!(cors_headers(&resp), ["access-control-allow-credentials"]);
    // An allowed origin still gets everything.
    let resp = client()
        .get(gw.url("/app/e"))
        .bearer_auth(&t)
        .header("origin", "https://shop.example.com")
        .send()
        .await
        .unwrap();
    let h = resp.headers();
    assert_eq!(h["access-control-allow-origin"], "https://shop.example.com");
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert!(h.contains_key("access-control-expose-headers"));
}
