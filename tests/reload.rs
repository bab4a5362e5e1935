//! What survives a plan swap, in process: the cache is keyed by what a call sends, so a service
//! pointed elsewhere is asked again; rate-limit buckets carry over.

mod common;

use common::*;
use serde_json::json;

const APP: &str = r#"
client: app
base_path: /app
endpoints:
  e:
    get: /e
    auth: none
    rate_limit: p
    calls: { s: { service: data, get: /s, cache: 60s, cache_scope: shared } }
    response: { v: "$.s.v" }
"#;

fn plan(url: &str) -> facade::plan::Plan {
    let yaml = format!(
        "services:\n  data:\n    url: {url}\n{AUTH}rate_limits:\n  policies:\n    p: {{ requests: 3, per: 60s, key: ip }}\n"
    );
    Project::new(&yaml, &[("app.yaml", APP)]).plan(&[])
}

#[tokio::test]
async fn a_swapped_plan_asks_the_new_backend_and_keeps_the_buckets() {
    let one = Backend::fixed(json!({"v": 1})).await;
    let two = Backend::fixed(json!({"v": 2})).await;
    let gw = Gateway::start(plan(&one.url())).await;
    assert_eq!(get(&gw.url("/app/e"), None).await.2, json!({"v": 1}));
    assert_eq!(get(&gw.url("/app/e"), None).await.2, json!({"v": 1}), "cached");
    assert_eq!(one.count(), 1);
    gw.state.swap(plan(&two.url()));
    let (status, headers, body) = get(&gw.url("/app/e"), None).await;
    assert_eq!(body, json!({"v": 2}), "the old backend's cached answer is not served");
    assert_eq!(two.count(), 1);
    assert_eq!(status, 200);
    assert_eq!(
        headers["x-ratelimit-remaining"], "0",
        "the bucket carried over the swap"
    );
    assert_eq!(get(&gw.url("/app/e"), None).await.0, 429);
}

#[tokio::test]
async fn a_swapped_plan_forwards_the_claims_it_names_for_a_token_seen_before() {
    let backend = Backend::fixed(json!({"ok": true})).await;
    let facade = |forward: &str| {
        let yaml = format!(
            "services:\n  data:\n    url: {}\nauth:\n  jwt:\n    algorithms: [HS256]\n    secret: test-secret\n  forward_claims:\n{forward}routes:\n  - prefix: /api\n    service: data\n",
            backend.url()
        );
        Project::new(&yaml, &[]).plan(&[])
    };
    let gw = Gateway::start(facade("    x-user-id: sub\n")).await;
    let t = token("ada", json!({"role": ["admin", "ops"], "team": "core"}));
    for _ in 0..2 {
        assert_eq!(get(&gw.url("/api/x"), Some(&t)).await.0, 200);
    }
    gw.state.swap(facade("    x-user-id: team\n    x-user-role: role\n"));
    assert_eq!(get(&gw.url("/api/x"), Some(&t)).await.0, 200);
    let seen = backend.seen();
    let sent: Vec<(Option<&str>, Option<&str>)> = seen
        .iter()
        .map(|s| (s.header("x-user-id"), s.header("x-user-role")))
        .collect();
    assert_eq!(
        sent,
        [
            (Some("ada"), None),
            (Some("ada"), None),
            (Some("core"), Some("admin,ops"))
        ],
        "the same token's headers follow the plan in force"
    );
}
