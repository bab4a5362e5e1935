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
