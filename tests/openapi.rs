//! The typed REST contract: `facade openapi` is a valid OpenAPI 3.1 document (checked against the
//! OpenAPI Initiative's JSON Schema, vendored in `tests/openapi-3.1/`), with the same types and
//! nullability as the GraphQL schema; the shipped document is committed; `GET /openapi.json`
//! serves it when `openapi: true`.

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::Path;

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Why a document is not a valid OpenAPI 3.1 document: against the OpenAPI Initiative's schema,
/// and every Schema Object against the JSON Schema 2020-12 meta-schema.
fn openapi_31_errors(doc: &Value) -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openapi-3.1");
    let validator = jsonschema::draft202012::new(&read_json(&dir.join("schema.json"))).unwrap();
    let mut errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    let mut schemas = Vec::new();
    collect_schemas(doc, &mut schemas);
    if let Some(Value::Object(components)) = doc.pointer("/components/schemas") {
        schemas.extend(components.values());
    }
    for s in schemas {
        if let Err(e) = jsonschema::draft202012::meta::validate(s) {
            errors.push(format!("schema {s}: {e}"));
        }
    }
    errors
}

/// Every `schema` of a parameter, a header or a media type.
fn collect_schemas<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                if k == "schema" && child.is_object() {
                    out.push(child);
                } else {
                    collect_schemas(child, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_schemas(i, out)),
        _ => {}
    }
}

fn assert_valid_openapi_31(doc: &Value) {
    let errors = openapi_31_errors(doc);
    assert!(
        errors.is_empty(),
        "not a valid OpenAPI 3.1 document:\n{}",
        errors.join("\n")
    );
}

#[test]
fn the_validator_refuses_broken_documents() {
    // The checks would pass anything if the schemas were not really applied.
    let minimal = json!({"openapi": "3.1.0", "info": {"title": "x", "version": "1"}, "paths": {}});
    assert_eq!(openapi_31_errors(&minimal), Vec::<String>::new());
    assert!(
        !openapi_31_errors(&json!({"openapi": "3.1.0", "paths": {}})).is_empty(),
        "no info"
    );
    let bad_schema = json!({
        "openapi": "3.1.0", "info": {"title": "x", "version": "1"},
        "paths": {"/a": {"get": {"responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"type": 5}}}}}}}}
    });
    assert!(
        !openapi_31_errors(&bad_schema).is_empty(),
        "a Schema Object that is no schema"
    );
}

#[test]
fn the_shipped_document_is_committed_and_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_facade"))
        .args(["openapi", "--config"])
        .arg(root.join("facade.yaml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let committed = std::fs::read_to_string(root.join("schemas/facade.openapi.json")).unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout) == committed,
        "schemas/facade.openapi.json is out of date: run `cargo run -- openapi > schemas/facade.openapi.json`"
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_valid_openapi_31(&doc);
    let home = &doc["paths"]["/mobile/api/home"]["get"];
    assert_eq!(home["security"], json!([{"bearerAuth": []}]));
    let product = &doc["paths"]["/web/api/products/{id}"]["get"];
    assert_eq!(product["security"], json!([{"bearerAuth": []}, {}]), "auth: optional");
    let names: Vec<&str> = product["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["id", "reviews", "accept-language"]);
    let cart = &doc["paths"]["/web/api/cart/items"]["post"];
    assert_eq!(
        cart["requestBody"]["content"]["application/json"]["schema"]["required"],
        json!(["productId", "quantity"])
    );
    assert!(
        cart["responses"]["4XX"].is_object(),
        "errors: pass gives the backend's 4xx"
    );
}

#[tokio::test]
async fn types_and_nullability_match_graphql_and_the_document_is_served() {
    let comp = r#"
client: shop
base_path: /shop
endpoints:
  basket:
    get: /basket
    auth: none
    query:
      limit: { type: Int, default: 5 }
      tags: "[String!]"
    calls:
      b: { service: data, get: /b }
      o: { service: data, get: /o, optional: true }
    response:
      title: "Basket of {$.b.owner}"
      size: "length($.b.items)"
      maybe: "$.o.x"
      lines:
        each: "$.b.items[*]"
        fields: { sku: "@.sku" }
"#;
    let data = Backend::fixed(json!({"owner": "ann", "items": [{"sku": "s1"}]})).await;
    let yaml = format!("services:\n  data:\n    url: {}\n{AUTH}openapi: true\n", data.url());
    let p = Project::new(&yaml, &[("shop.yaml", comp)]);
    let gw = Gateway::start(p.plan(&[])).await;
    let (status, _, doc) = get(&gw.url("/openapi.json"), None).await;
    assert_eq!(status, 200);
    assert_valid_openapi_31(&doc);
    let basket = &doc["components"]["schemas"]["ShopBasket"];
    assert_eq!(basket["properties"]["title"], json!({"type": "string"}));
    assert_eq!(
        basket["properties"]["size"],
        json!({"type": ["integer", "null"], "format": "int32"})
    );
    assert_eq!(basket["properties"]["maybe"], json!({}));
    assert_eq!(
        basket["properties"]["lines"],
        json!({"type": "array", "items": {"$ref": "#/components/schemas/ShopBasketLines"}})
    );
    assert_eq!(basket["required"], json!(["title", "size", "maybe", "lines"]));
    assert_eq!(basket["additionalProperties"], false);
    let op = &doc["paths"]["/shop/basket"]["get"];
    assert_eq!(op["security"], json!([]));
    assert_eq!(
        op["parameters"][0]["schema"],
        json!({"type": "integer", "format": "int32", "default": 5})
    );
    assert_eq!(
        op["parameters"][1]["schema"],
        json!({"type": "array", "items": {"type": "string"}})
    );
    // The REST answer fits the document's types.
    let (_, _, body) = get(&gw.url("/shop/basket"), None).await;
    assert_eq!(
        body,
        json!({"title": "Basket of ann", "size": 1, "maybe": null, "lines": [{"sku": "s1"}]})
    );

    // Without `openapi: true`, there is no such route.
    let p = Project::new(&yaml.replace("openapi: true\n", ""), &[("shop.yaml", comp)]);
    let gw = Gateway::start(p.plan(&[])).await;
    let (status, _, _) = get(&gw.url("/openapi.json"), None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_shipped_endpoints_answers_fit_their_published_response_schemas() {
    // What `facade openapi` promises a generated client is what the endpoints answer: each REST
    // answer of the shipped endpoints, from the demo backends, validates against its 200 schema.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = read_json(&root.join("schemas/facade.openapi.json"));
    let (gw, t) = shipped_gateway().await;
    let cases = [
        ("/mobile/api/home", "/mobile/api/home"),
        ("/mobile/api/orders/{id}", "/mobile/api/orders/ord-77812"),
        ("/web/api/products/{id}", "/web/api/products/p-01001?reviews=2"),
    ];
    for (template, path) in cases {
        let (status, _, body) = get(&gw.url(path), Some(&t)).await;
        assert_eq!(status, 200, "{path}: {body}");
        let mut schema =
            doc["paths"][template]["get"]["responses"]["200"]["content"]["application/json"]["schema"].clone();
        assert!(schema.is_object(), "{template} has a 200 schema");
        // The document's components, at the root, so its `#/components/...` references resolve.
        schema["components"] = doc["components"].clone();
        let validator = jsonschema::draft202012::new(&schema).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&body)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect();
        assert!(errors.is_empty(), "{path}: {errors:?}\n{body}");
        if template == "/mobile/api/home" {
            // The schema is no blank cheque: a wrong type, or a missing required field, fails it.
            let mut wrong = body.clone();
            wrong["greeting"] = json!(5);
            assert!(!validator.is_valid(&wrong), "{wrong}");
            let mut missing = body.clone();
            missing.as_object_mut().unwrap().remove("recommendedProducts");
            assert!(!validator.is_valid(&missing), "{missing}");
        }
    }
}

#[tokio::test]
async fn rate_limited_endpoints_publish_their_429_and_rate_limit_headers() {
    let comp = r#"
client: shop
base_path: /shop
endpoints:
  basket:
    get: /basket
    auth: none
    calls: { b: { service: data, get: /b } }
    response: { owner: "$.b.owner" }
  status:
    get: /status
    auth: none
    rate_limit: none
    calls: { b: { service: data, get: /b } }
    response: { owner: "$.b.owner" }
"#;
    let data = Backend::fixed(json!({"owner": "ann"})).await;
    let limits = "rate_limits:\n  default: std\n  policies:\n    std: { requests: 10, per: 1m, key: ip }\n";
    let yaml = format!("services:\n  data:\n    url: {}\n{limits}openapi: true\n", data.url());
    let gw = Gateway::start(Project::new(&yaml, &[("shop.yaml", comp)]).plan(&[])).await;
    let (_, _, doc) = get(&gw.url("/openapi.json"), None).await;
    assert_valid_openapi_31(&doc);
    let basket = &doc["paths"]["/shop/basket"]["get"]["responses"];
    assert_eq!(basket["429"], json!({"$ref": "#/components/responses/TooManyRequests"}));
    for h in [
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
        "RateLimit-Policy",
        "RateLimit",
    ] {
        assert!(basket["200"]["headers"][h].is_object(), "200 lacks {h}: {basket}");
        assert!(
            doc["components"]["responses"]["TooManyRequests"]["headers"][h].is_object(),
            "429 lacks {h}"
        );
    }
    assert!(doc["components"]["responses"]["TooManyRequests"]["headers"]["Retry-After"].is_object());
    assert!(
        basket["503"].is_null(),
        "under on_store_error: allow a store outage is no 503"
    );
    let status = &doc["paths"]["/shop/status"]["get"]["responses"];
    assert!(
        status["429"].is_null() && status["200"]["headers"]["X-RateLimit-Limit"].is_null(),
        "{status}"
    );
    // The endpoint really answers with those headers, and 429 once over the policy.
    let mut last = 0;
    for _ in 0..11 {
        let (s, headers, _) = get(&gw.url("/shop/basket"), None).await;
        assert!(headers.get("x-ratelimit-limit").is_some());
        last = s;
    }
    assert_eq!(last, 429);

    // Under `deny`, a store outage is a 503 the document names.
    let denying = yaml.replace("rate_limits:\n", "rate_limits:\n  on_store_error: deny\n");
    let gw = Gateway::start(Project::new(&denying, &[("shop.yaml", comp)]).plan(&[])).await;
    let (_, _, doc) = get(&gw.url("/openapi.json"), None).await;
    assert_valid_openapi_31(&doc);
    assert_eq!(
        doc["paths"]["/shop/basket"]["get"]["responses"]["503"],
        json!({"$ref": "#/components/responses/Unavailable"})
    );
    assert!(doc["paths"]["/shop/status"]["get"]["responses"]["503"].is_null());
}
