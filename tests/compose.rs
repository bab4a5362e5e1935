//! Composed endpoints end to end: the real gateway against real backends on loopback ports.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// facade.yaml with the given services (name, url, extra settings) and the test auth section.
fn facade(services: &[(&str, String, &str)]) -> String {
    let mut s = String::from("services:\n");
    for (name, url, extra) in services {
        s.push_str(&format!("  {name}:\n    url: {url}\n"));
        for line in extra.lines().filter(|l| !l.trim().is_empty()) {
            s.push_str(&format!("    {}\n", line.trim()));
        }
    }
    s.push_str(AUTH);
    s
}

async fn gateway(services: &[(&str, String, &str)], composition: &str) -> Gateway {
    let p = Project::new(&facade(services), &[("app.yaml", composition)]);
    Gateway::start(p.plan(&[])).await
}

#[tokio::test]
async fn four_calls_run_in_parallel() {
    let slow = |v: Value| move |_: &Seen| Reply::json(v.clone()).after(Duration::from_millis(200));
    let users = Backend::start(slow(json!({"firstName": "Ada"}))).await;
    let recs = Backend::start(slow(
        json!([{"id": "p1", "name": "Lamp", "price": 3.5, "images": [{"thumbnail": "t1"}]}]),
    ))
    .await;
    let carts = Backend::start(slow(json!({"items": [1, 2, 3]}))).await;
    let notes = Backend::start(slow(json!({"count": 4}))).await;
    let gw = gateway(
        &[
            ("users", users.url(), ""),
            ("recommendations", recs.url(), ""),
            ("carts", carts.url(), ""),
            ("notifications", notes.url(), ""),
        ],
        r#"
client: mobile
base_path: /mobile/api
endpoints:
  home:
    get: /home
    calls:
      user:            { service: users,           get: "/users/{$.auth.sub}" }
      recommendations: { service: recommendations, get: "/for/{$.auth.sub}", query: { limit: 10 } }
      cart:            { service: carts,           get: "/carts/{$.auth.sub}", optional: true }
      notifications:   { service: notifications,   get: "/unread/{$.auth.sub}", optional: true, timeout: 300ms }
    response:
      greeting: "Welcome back, {$.user.firstName}"
      recommendedProducts:
        each: "$.recommendations[*]"
        fields:
          id: "@.id"
          name: "@.name"
          image: "@.images[0].thumbnail"
          price: "@.price"
      cartItemCount: "length($.cart.items)"
      unreadNotifications: "$.notifications.count"
"#,
    )
    .await;
    let t = token("1001", json!({}));
    let start = Instant::now();
    let (status, headers, body) = get(&gw.url("/mobile/api/home"), Some(&t)).await;
    let elapsed = start.elapsed();
    assert_eq!(status, 200, "{body}");
    assert!(elapsed < Duration::from_millis(600), "4 x 200 ms took {elapsed:?}");
    assert!(headers.get("x-facade-partial").is_none());
    assert_eq!(
        body,
        json!({
            "greeting": "Welcome back, Ada",
            "recommendedProducts": [{"id": "p1", "name": "Lamp", "image": "t1", "price": 3.5}],
            "cartItemCount": 3,
            "unreadNotifications": 4
        })
    );
    // Written order is kept.
    let text = serde_json::to_string(&body).unwrap();
    assert!(text.find("greeting").unwrap() < text.find("unreadNotifications").unwrap());
    assert_eq!(recs.seen()[0].uri, "/for/1001?limit=10");
}

#[tokio::test]
async fn a_dependent_call_waits_for_the_call_it_reads() {
    let products = Backend::start(|_| Reply::json(json!({"sellerId": "s/7"})).after(Duration::from_millis(200))).await;
    let users = Backend::start(|_| Reply::json(json!({"displayName": "Shop"})).after(Duration::from_millis(200))).await;
    let gw = gateway(
        &[("products", products.url(), ""), ("users", users.url(), "")],
        r#"
client: web
base_path: /web
endpoints:
  product:
    get: /products/{id}
    auth: none
    calls:
      product: { service: products, get: "/products/{$.args.id}" }
      seller:  { service: users,    get: "/users/{$.product.sellerId}" }
    response:
      sellerName: "$.seller.displayName"
"#,
    )
    .await;
    let start = Instant::now();
    let (status, _, body) = get(&gw.url("/web/products/p1"), None).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        start.elapsed() >= Duration::from_millis(400),
        "chain took {:?}",
        start.elapsed()
    );
    assert_eq!(body, json!({"sellerName": "Shop"}));
    // The value from the other call is one percent-encoded segment.
    assert_eq!(users.seen()[0].uri, "/users/s%2F7");
}

#[tokio::test]
async fn every_expression_form() {
    let data = Backend::fixed(json!({
        "name": "Ada", "n": 3, "tags": ["a", "b"], "nothing": null,
        "items": [{"id": 1, "price": 2.5, "kind": "x"}, {"id": 2, "price": 4, "kind": "y"}],
        "nested": {"deep": {"value": true}}
    }))
    .await;
    let gw = gateway(
        &[("data", data.url(), "")],
        r#"
client: c
base_path: /c
endpoints:
  all:
    get: /all
    auth: none
    calls:
      d: { service: data, get: /d }
    response:
      path: "$.d.name"
      missing: "$.d.nope.deeper"
      nonSingular: "$.d.items[*].id"
      emptyMatch: "$.d.nope[*]"
      filter: "$.d.items[?@.price > 3].id"
      descendant: "$.d.nested..value"
      template: "Hi {$.d.name}, {{literal}} n={$.d.n} null=[{$.d.nothing}] tags={$.d.tags}"
      length: "length($.d.tags)"
      lengthOfNull: "length($.d.nothing)"
      first: "first($.d.items[*].id)"
      coalesce: "coalesce($.d.nothing, $.d.missing, \"fallback\")"
      join: "join($.d.tags, \" + \")"
      joinOfNull: "join($.d.nothing)"
      joinOfOne: "join($.d.name)"
      sum: "sum($.d.items[*].price)"
      nestedFunctions: "coalesce(first($.d.nope[*]), \"none\")"
      number: 42
      bool: false
      nullLiteral: null
      plain: just text
      notYaml12Bool: NO
      const: { const: "$5 off {$.d.name}" }
      constObject: { const: { each: "$.x", fields: 1 } }
      sequence: ["$.d.name", 1, "lit"]
      object: { inner: { value: "$.d.nested.deep.value" } }
      list:
        each: "$.d.items[*]"
        fields:
          id: "@.id"
          whole: "@"
          label: "{@.kind}-{$.d.name}"
"#,
    )
    .await;
    let (status, _, body) = get(&gw.url("/c/all"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "path": "Ada",
            "missing": null,
            "nonSingular": [1, 2],
            "emptyMatch": [],
            "filter": [2],
            "descendant": [true],
            "template": "Hi Ada, {literal} n=3 null=[] tags=[\"a\",\"b\"]",
            "length": 2,
            "lengthOfNull": null,
            "first": 1,
            "coalesce": "fallback",
            "join": "a + b",
            // `join` is never null (GraphQL types it `String!`).
            "joinOfNull": "",
            "joinOfOne": "Ada",
            "sum": 6.5,
            "nestedFunctions": "none",
            "number": 42,
            "bool": false,
            "nullLiteral": null,
            "plain": "just text",
            "notYaml12Bool": "NO",
            "const": "$5 off {$.d.name}",
            "constObject": {"each": "$.x", "fields": 1},
            "sequence": ["Ada", 1, "lit"],
            "object": {"inner": {"value": true}},
            "list": [
                {"id": 1, "whole": {"id": 1, "price": 2.5, "kind": "x"}, "label": "x-Ada"},
                {"id": 2, "whole": {"id": 2, "price": 4, "kind": "y"}, "label": "y-Ada"}
            ]
        })
    );
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys.first().map(|s| s.as_str()), Some("path"));
    assert_eq!(keys.last().map(|s| s.as_str()), Some("list"));
}

const EACH_COMPOSITION: &str = r#"
client: web
base_path: /web
endpoints:
  product:
    get: /products/{id}
    auth: none
    calls:
      product: { service: products, get: "/products/{$.args.id}" }
      stock:
        each: "$.product.variants[*]"
        attach: stock
        concurrency: 2
        service: inventory
        get: "/stock/{@.sku}"
        OPTIONAL
    response:
      variants:
        each: "$.product.variants[*]"
        fields: { sku: "@.sku", available: "@.stock.available" }
      raw: "$.stock"
"#;

fn variants_backend() -> impl Fn(&Seen) -> Reply {
    |_| {
        Reply::json(json!({"variants": [
            {"sku": "a", "stock": "own field, replaced"}, {"sku": "b"}, {"sku": "c"}, {"sku": "bad"}
        ]}))
    }
}

fn inventory_backend() -> impl Fn(&Seen) -> Reply {
    |s: &Seen| {
        let sku = s.uri.trim_start_matches("/stock/").to_string();
        if sku == "bad" {
            return Reply::status(500, json!({"error": "boom"}));
        }
        // Earlier items answer later: order must still follow the items.
        let delay = match sku.as_str() {
            "a" => 150,
            "b" => 75,
            _ => 0,
        };
        Reply::json(json!({"available": sku.len() * 10, "sku": sku})).after(Duration::from_millis(delay))
    }
}

#[tokio::test]
async fn each_call_keeps_item_order_attaches_and_degrades_per_item() {
    let products = Backend::start(variants_backend()).await;
    let inventory = Backend::start(inventory_backend()).await;
    let comp = EACH_COMPOSITION.replace("OPTIONAL", "optional: true\n        fallback: { available: 0 }");
    let gw = gateway(
        &[("products", products.url(), ""), ("inventory", inventory.url(), "")],
        &comp,
    )
    .await;
    let (status, headers, body) = get(&gw.url("/web/products/p1"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers.get("x-facade-partial").unwrap(), "stock");
    assert_eq!(
        body["variants"],
        json!([
            {"sku": "a", "available": 10},
            {"sku": "b", "available": 10},
            {"sku": "c", "available": 10},
            {"sku": "bad", "available": 0}
        ])
    );
    assert_eq!(body["raw"][3], json!({"available": 0}));
    assert_eq!(inventory.count(), 4);
}

#[tokio::test]
async fn attach_over_a_filter_or_a_slice_puts_each_answer_on_the_item_it_selected() {
    let products = Backend::start(variants_backend()).await;
    let inventory = Backend::start(inventory_backend()).await;
    let comp = r#"
client: web
base_path: /web
endpoints:
  product:
    get: /products/{id}
    auth: none
    calls:
      product: { service: products, get: "/products/{$.args.id}" }
      stock:
        each: "$.product.variants[?@.sku != 'bad' && @.sku != 'a']"
        attach: stock
        service: inventory
        get: "/stock/{@.sku}"
      first: { each: "$.product.variants[:1]", attach: first, service: inventory, get: "/stock/{@.sku}" }
      last: { each: "$.product.variants[-1:]", attach: last, service: inventory, get: "/stock/x{@.sku}" }
    response:
      selected:
        each: "$.product.variants[?@.sku != 'bad' && @.sku != 'a']"
        fields: { sku: "@.sku", available: "@.stock.available" }
      all:
        each: "$.product.variants[*]"
        fields: { sku: "@.sku", stock: "@.stock", first: "@.first.sku", last: "@.last.sku" }
"#;
    let gw = gateway(
        &[("products", products.url(), ""), ("inventory", inventory.url(), "")],
        comp,
    )
    .await;
    let (status, _, body) = get(&gw.url("/web/products/p1"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["selected"],
        json!([{"sku": "b", "available": 10}, {"sku": "c", "available": 10}]),
        "{body}"
    );
    // Only the selected items take the answers; `a` keeps its own `stock`.
    assert_eq!(
        body["all"],
        json!([
            {"sku": "a", "stock": "own field, replaced", "first": "a", "last": null},
            {"sku": "b", "stock": {"available": 10, "sku": "b"}, "first": null, "last": null},
            {"sku": "c", "stock": {"available": 10, "sku": "c"}, "first": null, "last": null},
            {"sku": "bad", "stock": null, "first": null, "last": "xbad"}
        ]),
        "{body}"
    );
    // GraphQL makes an attach call only for a field that reads what it attached.
    let before = inventory.count();
    let token = common::token("u1", json!({}));
    let graphql = |query: &'static str| {
        let url = gw.url("/graphql");
        let token = token.clone();
        async move {
            let resp = common::client()
                .post(url)
                .bearer_auth(token)
                .json(&json!({ "query": query }))
                .send()
                .await
                .unwrap();
            resp.json::<Value>().await.unwrap()
        }
    };
    let body = graphql(r#"{ web { product(id: "p1") { selected { sku } } } }"#).await;
    assert_eq!(
        body["data"]["web"]["product"]["selected"],
        json!([{"sku": "b"}, {"sku": "c"}]),
        "{body}"
    );
    assert_eq!(
        inventory.count(),
        before,
        "no attach call for fields that read no attached answer"
    );
    let body = graphql(r#"{ web { product(id: "p1") { selected { available } } } }"#).await;
    assert_eq!(
        body["data"]["web"]["product"]["selected"],
        json!([{"available": 10}, {"available": 10}]),
        "{body}"
    );
    assert_eq!(inventory.count(), before + 2, "the two stock calls, nothing else");
}

#[tokio::test]
async fn a_required_each_call_fails_when_one_item_fails() {
    let products = Backend::start(variants_backend()).await;
    let inventory = Backend::start(inventory_backend()).await;
    let comp = EACH_COMPOSITION.replace("OPTIONAL", "");
    let gw = gateway(
        &[("products", products.url(), ""), ("inventory", inventory.url(), "")],
        &comp,
    )
    .await;
    let (status, _, body) = get(&gw.url("/web/products/p1"), None).await;
    assert_eq!(status, 502);
    assert_eq!(body["error"], "upstream_failed");
    assert_eq!(body["call"], "stock");
    assert_eq!(body["service"], "inventory");
}

#[tokio::test]
async fn a_required_each_call_fails_as_soon_as_one_item_fails() {
    let items = Backend::fixed(json!({"ids": ["slow1", "slow2", "bad", "slow3", "later1", "later2"]})).await;
    let stock = Backend::start(|s| {
        if s.uri.ends_with("/bad") {
            return Reply::status(500, json!({"error": "boom"}));
        }
        Reply::json(json!({"ok": true})).after(Duration::from_millis(1500))
    })
    .await;
    let comp = r#"
client: c
base_path: /c
endpoints:
  e:
    get: /e
    auth: none
    calls:
      list: { service: items, get: /list }
      stock: { service: stock, get: "/x/{@}", each: "$.list.ids[*]", concurrency: 4 }
    response:
      n: "length($.stock)"
"#;
    let gw = gateway(&[("items", items.url(), ""), ("stock", stock.url(), "")], comp).await;
    let start = Instant::now();
    let (status, _, body) = get(&gw.url("/c/e"), None).await;
    assert_eq!((status, body["call"].as_str()), (502, Some("stock")), "{body}");
    // Before, the endpoint waited for every item (1.5 s and more) to report one failure.
    assert!(
        start.elapsed() < Duration::from_millis(1000),
        "failed while the slow items still ran: {:?}",
        start.elapsed()
    );
    // The items not yet started when the call failed are never sent.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        stock.count(),
        4,
        "{:?}",
        stock.seen().iter().map(|s| s.uri.clone()).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn each_over_null_or_empty_makes_no_request() {
    let products = Backend::fixed(json!({"variants": []})).await;
    let inventory = Backend::start(inventory_backend()).await;
    let comp = EACH_COMPOSITION.replace("OPTIONAL", "");
    let gw = gateway(
        &[("products", products.url(), ""), ("inventory", inventory.url(), "")],
        &comp,
    )
    .await;
    let (status, _, body) = get(&gw.url("/web/products/p1"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"variants": [], "raw": []}));
    assert_eq!(inventory.count(), 0);
}

fn one_call(extra: &str) -> String {
    format!(
        r#"
client: c
base_path: /c
endpoints:
  one:
    get: /one
    auth: none
    calls:
      thing: {{ service: things, get: /thing {extra} }}
    response:
      value: "$.thing.value"
"#
    )
}

async fn failure(reply: Reply, service_extra: &str, call_extra: &str) -> (u16, Value) {
    let backend = Backend::start(move |_| reply.clone()).await;
    let gw = gateway(&[("things", backend.url(), service_extra)], &one_call(call_extra)).await;
    let (status, _, body) = get(&gw.url("/c/one"), None).await;
    (status, body)
}

#[tokio::test]
async fn required_failures_map_to_statuses_without_leaking_backends() {
    let cases: Vec<(Reply, &str, &str, u16, &str)> = vec![
        (
            Reply::status(404, json!({"secret": "backend body"})),
            "",
            "",
            404,
            "not_found",
        ),
        (
            Reply::status(400, json!({"secret": "backend body"})),
            "",
            "",
            502,
            "upstream_failed",
        ),
        (
            Reply::status(500, json!({"secret": "backend body"})),
            "",
            "",
            502,
            "upstream_failed",
        ),
        (Reply::raw(200, "not json"), "", "", 502, "upstream_failed"),
        (
            Reply::json(json!({"value": 1})).after(Duration::from_millis(400)),
            "",
            ", timeout: 100ms",
            504,
            "upstream_timeout",
        ),
        (
            Reply::json(json!({"value": "x".repeat(4096)})),
            "",
            "",
            502,
            "upstream_failed",
        ),
    ];
    for (i, (reply, service_extra, call_extra, status, code)) in cases.into_iter().enumerate() {
        // Case 5 runs with a tiny upstream body limit.
        let (got, body) = if i == 5 {
            let backend = Backend::start(move |_| reply.clone()).await;
            let p = Project::new(
                &format!(
                    "{}limits:\n  upstream_body: 1KiB\n",
                    facade(&[("things", backend.url(), "")])
                ),
                &[("app.yaml", &one_call(""))],
            );
            let gw = Gateway::start(p.plan(&[])).await;
            let (s, _, b) = get(&gw.url("/c/one"), None).await;
            (s, b)
        } else {
            failure(reply, service_extra, call_extra).await
        };
        assert_eq!(got, status, "case {i}: {body}");
        assert_eq!(body["error"], code, "case {i}");
        assert_eq!(body["call"], "thing");
        assert_eq!(body["service"], "things");
        assert!(body["request_id"].as_str().is_some_and(|s| !s.is_empty()));
        let text = body.to_string();
        assert!(
            !text.contains("127.0.0.1") && !text.contains("backend body"),
            "leak: {text}"
        );
    }
    // Connect error.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let gw = gateway(&[("things", dead, "")], &one_call("")).await;
    let (status, _, body) = get(&gw.url("/c/one"), None).await;
    assert_eq!((status, body["error"].as_str()), (502, Some("upstream_failed")));
    assert!(!body.to_string().contains("127.0.0.1"));
}

#[tokio::test]
async fn errors_pass_keeps_a_backend_4xx_for_the_client() {
    let (status, body) = failure(
        Reply::status(409, json!({"reason": "out of stock"})),
        "",
        ", errors: pass",
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(body["error"], "upstream_rejected");
    assert_eq!(body["details"], json!({"reason": "out of stock"}));
    let (status, body) = failure(Reply::status(503, json!({"reason": "down"})), "", ", errors: pass").await;
    assert_eq!((status, body["error"].as_str()), (502, Some("upstream_failed")));
    assert!(body.get("details").is_none());
}

#[tokio::test]
async fn optional_calls_degrade_with_fallback_and_partial_header() {
    let ok = Backend::fixed(json!({"value": 1})).await;
    let down = Backend::start(|_| Reply::status(500, json!({}))).await;
    let gw = gateway(
        &[("ok", ok.url(), ""), ("down", down.url(), "")],
        r#"
client: c
base_path: /c
endpoints:
  e:
    get: /e
    auth: none
    calls:
      good: { service: ok, get: /x }
      cart: { service: down, get: /cart, optional: true }
      notifications: { service: down, get: /n, optional: true, fallback: { count: 0 } }
      skipped: { service: ok, get: /skipped, when: "$.args.flag" }
    query:
      flag: Boolean
    response:
      good: "$.good.value"
      cart: "$.cart"
      count: "$.notifications.count"
      skipped: "$.skipped"
"#,
    )
    .await;
    let (status, headers, body) = get(&gw.url("/c/e"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers.get("x-facade-partial").unwrap(), "cart, notifications");
    assert_eq!(body, json!({"good": 1, "cart": null, "count": 0, "skipped": null}));
    assert_eq!(ok.count(), 1, "the `when: false` call is not made");
    let (_, _, body) = get(&gw.url("/c/e?flag=true"), None).await;
    assert_eq!(body["skipped"], json!({"value": 1}));
}

#[tokio::test]
async fn path_values_are_percent_encoded_one_segment_each() {
    let backend = Backend::fixed(json!({"id": null, "dot": ".."})).await;
    let gw = gateway(
        &[("things", backend.url(), "")],
        r#"
client: c
base_path: /c
endpoints:
  item:
    get: /items/{id}
    auth: none
    calls:
      item: { service: things, get: "/items/{$.args.id}/x-{$.args.id}" }
    response:
      ok: true
  chained:
    get: /chained
    auth: none
    calls:
      first: { service: things, get: /first }
      second: { service: things, get: "/second/{$.first.id}" }
      third: { service: things, get: "/third/{$.first.dot}", optional: true }
    response:
      second: "$.second"
"#,
    )
    .await;
    let (status, _, _) = get(&gw.url("/c/items/a%2Fb%3Fx=1%23y%20z"), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        backend.seen()[0].uri,
        "/items/a%2Fb%3Fx%3D1%23y%20z/x-a%2Fb%3Fx%3D1%23y%20z"
    );
    for bad in ["%2E%2E", "%2e", ".."] {
        // Sent raw: an HTTP client library would normalise the dot segments away.
        let (status, body) = raw_get(gw.addr, &format!("/c/items/{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"], "bad_request");
    }
    let (status, body) = raw_get(gw.addr, "/c/items/%FF%FE").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")), "{body}");
    assert_eq!(backend.count(), 1, "no backend call for refused values");
    // A null from another call: the call is not made and fails the endpoint with 502.
    let (status, _, body) = get(&gw.url("/c/chained"), None).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["call"], "second");
    assert!(body["message"].as_str().unwrap().contains("$.first.id"), "{body}");
    let uris: Vec<String> = backend.seen().iter().map(|s| s.uri.clone()).collect();
    assert!(
        !uris.iter().any(|u| u.starts_with("/second") || u.starts_with("/third")),
        "{uris:?}"
    );
}

#[tokio::test]
async fn query_values_render_omit_nulls_and_repeat_arrays() {
    let backend = Backend::fixed(json!({"tags": ["a b", "c&d"], "n": 2})).await;
    let gw = gateway(
        &[("things", backend.url(), "")],
        r#"
client: c
base_path: /c
endpoints:
  q:
    get: /q
    auth: none
    calls:
      src: { service: things, get: /src }
      dst: { service: things, get: /dst, query: { tag: "$.src.tags", n: "$.src.n", gone: "$.src.missing", lit: "x=y" } }
    response:
      ok: true
"#,
    )
    .await;
    let (status, _, _) = get(&gw.url("/c/q"), None).await;
    assert_eq!(status, 200);
    let dst = backend.seen().into_iter().find(|s| s.uri.starts_with("/dst")).unwrap();
    assert_eq!(dst.uri, "/dst?tag=a%20b&tag=c%26d&n=2&lit=x%3Dy");
}

#[tokio::test]
async fn identical_gets_run_once_per_request_and_posts_always_run() {
    let backend = Backend::fixed(json!({"v": 1})).await;
    let gw = gateway(
        &[("things", backend.url(), "")],
        r#"
client: c
base_path: /c
endpoints:
  d:
    get: /d
    calls:
      a: { service: things, get: /same }
      b: { service: things, get: /same }
      c: { service: things, get: /same, headers: { x-variant: "1" } }
      p1: { service: things, post: /post, body: { x: 1 } }
      p2: { service: things, post: /post, body: { x: 1 } }
    response:
      a: "$.a.v"
      b: "$.b.v"
"#,
    )
    .await;
    let t = token("u1", json!({}));
    let (status, _, body) = get(&gw.url("/c/d"), Some(&t)).await;
    assert_eq!(status, 200, "{body}");
    let seen = backend.seen();
    let same = seen.iter().filter(|s| s.uri == "/same").count();
    let posts = seen.iter().filter(|s| s.uri == "/post").count();
    assert_eq!((same, posts), (2, 2), "a and b share one request; c differs by header");
    // A second request makes its own calls.
    get(&gw.url("/c/d"), Some(&t)).await;
    assert_eq!(backend.seen().iter().filter(|s| s.uri == "/same").count(), 4);
}

const CACHED: &str = r#"
client: c
base_path: /c
endpoints:
  cached:
    get: /cached
    calls:
      n: { service: things, get: /n, cache: 5s SCOPE }
    response:
      v: "$.n.v"
"#;

#[tokio::test]
async fn cache_is_per_user_expires_with_the_clock_and_never_keeps_failures() {
    let fail = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let f = fail.clone();
    let backend = Backend::start(move |_| {
        if f.load(std::sync::atomic::Ordering::SeqCst) {
            Reply::status(500, json!({}))
        } else {
            Reply::json(json!({"v": 1}))
        }
    })
    .await;
    let gw = gateway(&[("things", backend.url(), "")], &CACHED.replace("SCOPE", "")).await;
    let ada = token("ada", json!({}));
    let bob = token("bob", json!({}));
    assert_eq!(get(&gw.url("/c/cached"), Some(&ada)).await.0, 200);
    assert_eq!(get(&gw.url("/c/cached"), Some(&ada)).await.0, 200);
    assert_eq!(backend.count(), 1, "second request is a hit");
    assert_eq!(get(&gw.url("/c/cached"), Some(&bob)).await.0, 200);
    assert_eq!(backend.count(), 2, "another user never gets ada's entry");
    gw.clock.advance(Duration::from_secs(6));
    assert_eq!(get(&gw.url("/c/cached"), Some(&ada)).await.0, 200);
    assert_eq!(backend.count(), 3, "expired after the ttl");
    // Failures are not cached.
    fail.store(true, std::sync::atomic::Ordering::SeqCst);
    gw.clock.advance(Duration::from_secs(6));
    assert_eq!(get(&gw.url("/c/cached"), Some(&ada)).await.0, 502);
    assert_eq!(get(&gw.url("/c/cached"), Some(&ada)).await.0, 502);
    assert_eq!(backend.count(), 5);
    fail.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(get(&gw.url("/c/cached"), Some(&ada)).await.0, 200);
    assert_eq!(backend.count(), 6);
}

#[tokio::test]
async fn shared_cache_scope_drops_identity_and_concurrent_misses_make_one_request() {
    let backend = Backend::start(|_| Reply::json(json!({"v": 1})).after(Duration::from_millis(200))).await;
    let gw = gateway(
        &[("things", backend.url(), "")],
        &CACHED.replace("SCOPE", ", cache_scope: shared"),
    )
    .await;
    let url = gw.url("/c/cached");
    let mut tasks = Vec::new();
    for i in 0..20 {
        let url = url.clone();
        let t = token(&format!("user{i}"), json!({}));
        tasks.push(tokio::spawn(async move { get(&url, Some(&t)).await.0 }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(backend.count(), 1, "20 concurrent misses, one backend request");
}

#[tokio::test]
async fn retries_idempotent_calls_on_5xx_and_connect_errors_only() {
    let n = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = n.clone();
    let backend = Backend::start(move |_| {
        if counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2 {
            Reply::status(503, json!({}))
        } else {
            Reply::json(json!({"value": "ok"}))
        }
    })
    .await;
    let gw = gateway(&[("things", backend.url(), "retries: 2")], &one_call("")).await;
    let (status, _, body) = get(&gw.url("/c/one"), None).await;
    assert_eq!((status, body["value"].as_str()), (200, Some("ok")));
    assert_eq!(backend.count(), 3);

    // POST is never retried.
    let post = Backend::start(|_| Reply::status(503, json!({}))).await;
    let gw = gateway(
        &[("things", post.url(), "retries: 2")],
        &one_call("").replace("get: /thing", "post: /thing"),
    )
    .await;
    let (status, _, _) = get(&gw.url("/c/one"), None).await;
    assert_eq!(status, 502);
    assert_eq!(post.count(), 1);

    // A timeout is never retried.
    let slow = Backend::start(|_| Reply::json(json!({})).after(Duration::from_millis(300))).await;
    let gw = gateway(&[("things", slow.url(), "retries: 2")], &one_call(", timeout: 100ms")).await;
    assert_eq!(get(&gw.url("/c/one"), None).await.0, 504);
    assert_eq!(slow.count(), 1);
}

const PARAMS: &str = r#"
client: c
base_path: /c
endpoints:
  search:
    get: /search/{id}
    auth: none
    query:
      limit: { type: Int, default: 3 }
      tags: "[String]"
      exact: Boolean!
    headers:
      lang: { header: Accept-Language, type: String, default: en }
    calls:
      s: { service: things, get: "/s/{$.args.id}", query: { limit: "$.args.limit", tag: "$.args.tags", exact: "$.args.exact" }, headers: { accept-language: "$.args.lang" } }
    response:
      args: "$.args.limit"
  create:
    post: /create
    auth: none
    body:
      name: String!
      count: Int
      ids: "[ID!]"
    calls:
      c: { service: things, post: /create, body: { name: "$.args.name", count: "$.args.count", ids: "$.args.ids" } }
    response:
      created: "$.c.ok"
"#;

#[tokio::test]
async fn parameters_are_typed_defaulted_and_refused_with_json_400s() {
    let backend = Backend::fixed(json!({"ok": true})).await;
    let p = Project::new(
        &format!(
            "{}limits:\n  request_body: 200B\n",
            facade(&[("things", backend.url(), "")])
        ),
        &[("app.yaml", PARAMS)],
    );
    let gw = Gateway::start(p.plan(&[])).await;
    let c = client();
    let (status, _, body) = get(&gw.url("/c/search/7?exact=true&tags=a&tags=b"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"args": 3}));
    let s = &backend.seen()[0];
    assert_eq!(s.uri, "/s/7?limit=3&tag=a&tag=b&exact=true");
    assert_eq!(s.header("accept-language"), Some("en"));

    for (url, needle) in [
        ("/c/search/7?exact=true&limit=ten", "limit"),
        ("/c/search/7", "exact"),
        ("/c/search/7?exact=maybe", "exact"),
        // `Int` is GraphQL's (and the OpenAPI document's `int32`) on every surface.
        ("/c/search/7?exact=true&limit=2147483648", "limit"),
    ] {
        let (status, headers, body) = get(&gw.url(url), None).await;
        assert_eq!(status, 400, "{url}");
        assert_eq!(body["error"], "bad_request");
        assert!(body["message"].as_str().unwrap().contains(needle), "{body}");
        assert_eq!(headers.get("content-type").unwrap(), "application/json");
    }
    let post = |body: &'static str| {
        let c = c.clone();
        let url = gw.url("/c/create");
        async move {
            let r = c
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    assert_eq!(
        post(r#"{"name": "x", "ids": [1, "b"]}"#).await,
        (200, json!({"created": true}))
    );
    let created = backend.seen().into_iter().find(|s| s.uri == "/create").unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&created.body).unwrap(),
        json!({"name": "x", "count": null, "ids": ["1", "b"]})
    );
    let (status, body) = post(r#"{"name": "x""#).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")));
    let (status, body) = post(r#"{"count": 1}"#).await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("name"));
    let (status, body) = post(r#"{"name": "x", "count": -2147483649}"#).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("count"), "{body}");
    let (status, body) = post(r#"{"name": 5}"#).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = post(r#"["not an object"]"#).await;
    assert_eq!(status, 400, "{body}");
    let big: &'static str = Box::leak(format!(r#"{{"name": "{}"}}"#, "x".repeat(500)).into_boxed_str());
    let (status, body) = post(big).await;
    assert_eq!((status, body["error"].as_str()), (413, Some("payload_too_large")));
}

#[tokio::test]
async fn headers_to_backends_are_forwarded_stripped_and_never_leak_authorization() {
    let backend = Backend::fixed(json!({"ok": true})).await;
    let gw = gateway(
        &[("things", backend.url(), "")],
        r#"
client: c
base_path: /c
endpoints:
  h:
    get: /h
    calls:
      plain: { service: things, get: /plain }
      explicit: { service: things, get: /explicit, headers: { authorization: "Bearer {$.auth.sub}" } }
      rendered: { service: things, get: /rendered, headers: { x-list: "$.auth.role", x-joined: "join($.auth.role)", x-none: "$.auth.nothing" } }
    response:
      sub: "$.auth.sub"
"#,
    )
    .await;
    let t = token("ada", json!({"role": ["admin", "ops"]}));
    let resp = client()
        .get(gw.url("/c/h"))
        .bearer_auth(&t)
        .header("x-request-id", "req-123")
        .header("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        .header("x-user-id", "forged")
        .header("X-User-Role", "forged")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-request-id"], "req-123");
    let seen = backend.seen();
    let plain = seen.iter().find(|s| s.uri == "/plain").unwrap();
    assert_eq!(plain.header("x-user-id"), Some("ada"));
    assert_eq!(plain.header("x-user-role"), Some("admin,ops"));
    assert_eq!(plain.headers.get_all("x-user-id").iter().count(), 1);
    assert_eq!(plain.header("x-request-id"), Some("req-123"));
    assert_eq!(
        plain.header("traceparent"),
        Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    );
    assert_eq!(plain.header("authorization"), None);
    let explicit = seen.iter().find(|s| s.uri == "/explicit").unwrap();
    assert_eq!(explicit.header("authorization"), Some("Bearer ada"));
    // Call headers render as templates do; `null` omits the header.
    let rendered = seen.iter().find(|s| s.uri == "/rendered").unwrap();
    assert_eq!(rendered.header("x-list"), Some(r#"["admin","ops"]"#));
    assert_eq!(rendered.header("x-joined"), Some("admin,ops"));
    assert_eq!(rendered.header("x-none"), None);
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors_with_request_ids() {
    let backend = Backend::fixed(json!({"value": 1})).await;
    let gw = gateway(&[("things", backend.url(), "")], &one_call("")).await;
    let (status, headers, body) = get(&gw.url("/nope"), None).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    assert_eq!(
        headers["x-request-id"].to_str().unwrap(),
        body["request_id"].as_str().unwrap()
    );
    assert_eq!(body["message"], "no route for GET /nope");
    // A trailing `/` too many: still a 404 (endpoints match exactly), naming the path that exists.
    let (status, _, body) = get(&gw.url("/c/one/"), None).await;
    assert_eq!(status, 404);
    assert_eq!(body["message"], "no route for GET /c/one/; did you mean /c/one?");
    let resp = client().head(gw.url("/c/one")).send().await.unwrap();
    assert_eq!(resp.status(), 200, "HEAD is answered like GET");
    let resp = client().delete(gw.url("/c/one")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "GET, HEAD");
    let (status, headers, body) = get(&gw.url("/healthz"), None).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    assert!(headers.contains_key("x-request-id"));
    let (status, _, body) = get(&gw.url("/readyz"), None).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")));
    // A request id that is not 1-128 visible characters is replaced by a fresh one.
    let resp = client()
        .get(gw.url("/healthz"))
        .header("x-request-id", "has space")
        .send()
        .await
        .unwrap();
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(id != "has space" && id.len() == 36, "{id}");
    let parsed = uuid::Uuid::parse_str(&id).unwrap();
    assert_eq!(
        (parsed.get_version_num(), parsed.hyphenated().to_string()),
        (4, id.clone())
    );
    let (_, again, _) = get(&gw.url("/healthz"), None).await;
    assert_ne!(
        again["x-request-id"].to_str().unwrap(),
        id,
        "every request gets its own id"
    );
}

/// Only the parts of an answer that expressions read are parsed; these forms must still see
/// everything they need.
#[tokio::test]
async fn partial_parsing_keeps_everything_the_expressions_read() {
    let data = Backend::fixed(json!({
        "orders": [
            {"id": "o1", "lines": [{"sku": "a", "qty": 1, "junk": "x"}, {"sku": "b", "qty": 2}], "meta": {"k": 1}},
            {"id": "o2", "lines": [{"sku": "c", "qty": 3}], "meta": {"k": 2}}
        ],
        "single": {"name": "only", "other": 1},
        "tags": ["t1", "t2"],
        "obj": {"x": {"v": 1}, "y": {"v": 2}},
        "unused": {"big": [1, 2, 3]},
        "sized": {"list": [{"a": [1]}, {"b": 2}], "map": {"k": {"deep": [1, 2]}, "l": null}, "word": "héllo"}
    }))
    .await;
    let gw = gateway(
        &[("data", data.url(), "")],
        r#"
client: c
base_path: /c
endpoints:
  shapes:
    get: /shapes
    auth: none
    calls:
      d: { service: data, get: /d }
    response:
      # An index read first, then an `each` over the same arrays: every element is still there.
      firstLine: "$.d.orders[0].lines[0].sku"
      nested:
        each: "$.d.orders[*]"
        fields:
          id: "@.id"
          skus:
            each: "@.lines[*]"
            fields: { sku: "@.sku", whole: "@" }
          lineCount: "length(@.lines)"
      singular:
        each: "$.d.single"
        fields: { name: "@.name" }
      tags:
        each: "$.d.tags"
        fields: { tag: "@" }
      lastQty: "$.d.orders[-1].lines[0].qty"
      objValues: "$.d.obj.*.v"
      metaOfFirst: "$.d.orders[0].meta"
      # Read only for their length, then one of them read below too.
      listLength: "length($.d.sized.list)"
      mapLength: "length($.d.sized.map)"
      wordLength: "length($.d.sized.word)"
      tagCount: "length($.d.tags)"
      bigCount: "length($.d.unused.big)"
      firstOfBig: "$.d.unused.big[0]"
"#,
    )
    .await;
    let (status, _, body) = get(&gw.url("/c/shapes"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "firstLine": "a",
            "nested": [
                {"id": "o1", "skus": [
                    {"sku": "a", "whole": {"sku": "a", "qty": 1, "junk": "x"}},
                    {"sku": "b", "whole": {"sku": "b", "qty": 2}}
                ], "lineCount": 2},
                {"id": "o2", "skus": [{"sku": "c", "whole": {"sku": "c", "qty": 3}}], "lineCount": 1}
            ],
            "singular": [{"name": "only"}],
            "tags": [{"tag": "t1"}, {"tag": "t2"}],
            "lastQty": 3,
            "objValues": [1, 2],
            "metaOfFirst": {"k": 1},
            "listLength": 2,
            "mapLength": 2,
            "wordLength": 5,
            "tagCount": 2,
            "bigCount": 3,
            "firstOfBig": 1
        })
    );
}

#[tokio::test]
async fn each_concurrency_bounds_requests_in_flight() {
    let items = Backend::fixed(json!({"ids": [1, 2, 3, 4, 5, 6]})).await;
    let slow = Backend::start(|_| Reply::json(json!({"ok": true})).after(Duration::from_millis(150))).await;
    let comp = |concurrency: &str| {
        format!(
            r#"
client: c
base_path: /c
endpoints:
  e:
    get: /e
    auth: none
    calls:
      list: {{ service: items, get: /list }}
      each: {{ service: slow, get: "/x/{{@}}", each: "$.list.ids[*]" {concurrency} }}
    response:
      n: "length($.each)"
"#
        )
    };
    let bounded = gateway(
        &[("items", items.url(), ""), ("slow", slow.url(), "")],
        &comp(", concurrency: 2"),
    )
    .await;
    let start = Instant::now();
    let (status, _, body) = get(&bounded.url("/c/e"), None).await;
    assert_eq!((status, body["n"].as_i64()), (200, Some(6)), "{body}");
    assert!(
        start.elapsed() >= Duration::from_millis(440),
        "6 items, 2 at a time, 150 ms each: {:?}",
        start.elapsed()
    );
    let open = gateway(&[("items", items.url(), ""), ("slow", slow.url(), "")], &comp("")).await;
    let start = Instant::now();
    let (status, _, _) = get(&open.url("/c/e"), None).await;
    assert_eq!(status, 200);
    assert!(
        start.elapsed() < Duration::from_millis(400),
        "default concurrency 16: {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn a_service_url_with_a_base_path_prefixes_every_call() {
    let backend = Backend::fixed(json!({"value": 7})).await;
    let gw = gateway(&[("things", format!("{}/v1/", backend.url()), "")], &one_call("")).await;
    let (status, _, body) = get(&gw.url("/c/one"), None).await;
    assert_eq!((status, body["value"].as_i64()), (200, Some(7)));
    assert_eq!(backend.seen()[0].uri, "/v1/thing");
}

#[tokio::test]
async fn a_backend_body_declared_above_the_limit_is_refused_before_it_is_read() {
    // The backend declares 10 GB, sends a few bytes and then nothing: the call fails on the
    // declaration at once, not when the body (or the service timeout) runs out.
    let url =
        raw_backend(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n{\"a\":")
            .await;
    let gw = gateway(&[("things", url, "    timeout: 20s\n")], &one_call("")).await;
    let started = std::time::Instant::now();
    let (status, _, body) = get(&gw.url("/c/one"), None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (502, Some("upstream_failed")),
        "{body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "waited for the body instead of refusing its declared size: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_answer_that_is_not_http_says_so_instead_of_blaming_the_connection() {
    // 150 header fields (more than any proxy takes), then a chunked body whose size line is no
    // number: each call fails with a 502 whose message says what was wrong with the answer.
    let mut reply = Reply::json(json!({"a": 1}));
    for i in 0..150 {
        reply = reply.with_header(&format!("x-f{i}"), "v");
    }
    let crowded = Backend::start(move |_| reply.clone()).await;
    let chunked = raw_backend(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    )
    .await;
    for (url, why) in [
        (crowded.url(), "too many header fields"),
        (chunked, "invalid chunk size"),
    ] {
        let gw = gateway(&[("things", url, "")], &one_call("")).await;
        let (status, _, body) = get(&gw.url("/c/one"), None).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (502, Some("upstream_failed")),
            "{body}"
        );
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(&format!("not valid HTTP/1.1 ({why})")), "{body}");
    }
}

/// A backend on a raw socket: to each connection's first read it writes `answer` as it is, then
/// holds the connection until the gateway lets go of it.
async fn raw_backend(answer: &'static [u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(answer).await;
                let _ = stream.read(&mut buf).await;
            });
        }
    });
    url
}

#[tokio::test]
async fn each_is_bounded_by_max_items_a_clients_list_with_400_a_backends_by_failing_the_call() {
    let items = Backend::fixed(json!({"ids": [1, 2, 3, 4, 5]})).await;
    let fast = Backend::start(|_| Reply::json(json!({"ok": true}))).await;
    let comp = r#"
client: c
base_path: /c
endpoints:
  mine:
    get: /mine
    auth: none
    query: { ids: "[Int!]" }
    calls:
      each: { service: fast, get: "/x/{@}", each: "$.args.ids", max_items: 3 }
    response: { n: "length($.each)" }
  theirs:
    get: /theirs
    auth: none
    calls:
      list: { service: items, get: /list }
      each: { service: fast, get: "/x/{@}", each: "$.list.ids[*]", max_items: 3 }
    response: { n: "length($.each)" }
  theirs_optional:
    get: /theirs-optional
    auth: none
    calls:
      list: { service: items, get: /list }
      each: { service: fast, get: "/x/{@}", each: "$.list.ids[*]", max_items: 3, optional: true, fallback: { ok: false } }
      other: { service: items, get: /list }
    response: { n: "length($.each)", m: "length($.other.ids)" }
"#;
    let gw = gateway(&[("items", items.url(), ""), ("fast", fast.url(), "")], comp).await;
    let (status, _, body) = get(&gw.url("/c/mine?ids=1&ids=2&ids=3"), None).await;
    assert_eq!((status, body["n"].as_i64()), (200, Some(3)), "{body}");
    assert_eq!(fast.count(), 3);
    // A client's list above the bound is the client's mistake, refused before any call.
    let (status, _, body) = get(&gw.url("/c/mine?ids=1&ids=2&ids=3&ids=4"), None).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")), "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("more than its `max_items` (3)"),
        "{body}"
    );
    assert_eq!(fast.count(), 3);
    // A backend's array above the bound fails the call, as any call fails.
    let (status, _, body) = get(&gw.url("/c/theirs"), None).await;
    assert_eq!((status, body["call"].as_str()), (502, Some("each")), "{body}");
    let (status, headers, body) = get(&gw.url("/c/theirs-optional"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        headers.get("x-facade-partial").map(|v| v.to_str().unwrap_or("")),
        Some("each")
    );
    assert_eq!(body, json!({"n": null, "m": 5}));
    assert_eq!(fast.count(), 3, "no request for an array above the bound");

    // Without `max_items`, the bound is 1000.
    let many = Backend::fixed(json!({"ids": (0..1001).collect::<Vec<u32>>()})).await;
    let comp = "client: d\nbase_path: /d\nendpoints:\n  e:\n    get: /e\n    auth: none\n    calls:\n      list: { service: items, get: /list }\n      each: { service: fast, get: \"/x/{@}\", each: \"$.list.ids[*]\" }\n    response: { n: \"length($.each)\" }\n";
    let gw = gateway(&[("items", many.url(), ""), ("fast", fast.url(), "")], comp).await;
    let (status, _, body) = get(&gw.url("/d/e"), None).await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("1001 items, more than its `max_items` (1000)"),
        "{body}"
    );
    assert_eq!(fast.count(), 3);
}

#[tokio::test]
async fn calls_ask_for_uncompressed_answers_and_name_a_gzip_answer() {
    // Without `Accept-Encoding` a backend may compress (RFC 9110): calls ask for `identity`,
    // unless the call's own headers say otherwise.
    let plain = Backend::fixed(json!({"a": 1})).await;
    let gzip = raw_backend(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: 28\r\n\r\n\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03\xab\x56\x4a\x54\xb2\x52\x30\xac\x05\x00\x97\x8e\xa1\xfb\x08\x00\x00\x00",
    )
    .await;
    let comp = r#"
client: c
base_path: /c
endpoints:
  e:
    get: /e
    auth: none
    calls:
      p: { service: plain, get: /p }
      q: { service: plain, get: /q, headers: { accept-encoding: br, accept: "application/hal+json" } }
    response: { a: "$.p.a" }
  z:
    get: /z
    auth: none
    calls: { g: { service: gzip, get: /g } }
    response: { a: "$.g.a" }
"#;
    let gw = gateway(&[("plain", plain.url(), ""), ("gzip", gzip, "")], comp).await;
    let (status, _, body) = get(&gw.url("/c/e"), None).await;
    assert_eq!((status, body["a"].as_i64()), (200, Some(1)), "{body}");
    let mut seen = plain.seen();
    seen.sort_by(|a, b| a.uri.cmp(&b.uri));
    assert_eq!(seen[0].header("accept-encoding"), Some("identity"));
    assert_eq!(
        seen[1].header("accept-encoding"),
        Some("br"),
        "the call's own header wins"
    );
    // And they ask for JSON, which is how the answer is read (a backend that negotiates answers
    // in its first format when `Accept` says nothing), unless the call says otherwise.
    assert_eq!(seen[0].header("accept"), Some("application/json"));
    assert_eq!(seen[1].header("accept"), Some("application/hal+json"));
    let (status, _, body) = get(&gw.url("/c/z"), None).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(
        body["message"],
        "call `g` to service `gzip` failed: the backend's answer is gzip-compressed, though Facade asked for none",
        "{body}"
    );
}
