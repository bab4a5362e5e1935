//! Every shipped file loads cleanly: facade.yaml, every composition, every OpenAPI document and
//! every fixture, with no error and no warning.

use std::collections::HashMap;
use std::path::Path;

#[test]
fn the_shipped_configuration_loads_without_any_diagnostic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let env: HashMap<String, String> = HashMap::new();
    let (loaded, diags) = facade::config::load(&root.join("facade.yaml"), &env);
    assert!(diags.items().is_empty(), "{:?}", diags.items());
    let loaded = loaded.unwrap();
    let files: Vec<String> = loaded.compositions.iter().map(|c| c.file.to_string()).collect();
    assert!(
        files.iter().any(|f| f.ends_with("compositions/mobile.yaml")),
        "{files:?}"
    );
    assert!(files.iter().any(|f| f.ends_with("compositions/web.yaml")), "{files:?}");
    // OpenAPI documents only: `facade.graphql` and `facade.openapi.json` are Facade's own output.
    let schemas = std::fs::read_dir(root.join("schemas"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".yaml") || (n.ends_with(".json") && !n.starts_with("facade.")))
        .count();
    assert_eq!(
        loaded.schemas.len(),
        schemas,
        "every document in schemas/ belongs to a service"
    );
    assert_eq!(loaded.schemas.len(), loaded.gateway.services.len());

    let (plan, diags) = facade::load::load_plan(&root.join("facade.yaml"), &env);
    assert!(diags.items().is_empty(), "{:?}", diags.items());
    let plan = plan.unwrap();
    let routes: Vec<String> = plan
        .endpoints
        .iter()
        .map(|e| format!("{} {}", e.method.as_str(), e.path))
        .collect();
    for expected in [
        "GET /mobile/api/home",
        "GET /web/api/products/{id}",
        "POST /web/api/cart/items",
    ] {
        assert!(routes.contains(&expected.to_string()), "{routes:?}");
    }
    // The web product endpoint shows a dependent call and an `each` call with `attach`.
    let product = plan.endpoints.iter().find(|e| e.name == "product").unwrap();
    let seller = product.calls.iter().find(|c| c.name == "seller").unwrap();
    assert_eq!(seller.deps.len(), 1);
    let stock = product.calls.iter().find(|c| c.name == "stock").unwrap();
    assert!(stock.each.as_ref().is_some_and(|e| e.attach.is_some()));
    // The demo secret is recognised, so `serve` warns about it.
    assert!(plan.demo_secret);
    let with_secret: HashMap<String, String> = [("JWT_SECRET".to_string(), "real".to_string())].into();
    let (plan, _) = facade::load::load_plan(&root.join("facade.yaml"), &with_secret);
    assert!(!plan.unwrap().demo_secret);
    // Every service has demo fixtures that parse.
    for (_, dir) in &facade::load::load_plan(&root.join("facade.yaml"), &env).0.unwrap().demo {
        facade::demo::Fixtures::load(dir).unwrap();
    }
}

#[test]
fn the_benchmark_configuration_loads_without_any_diagnostic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let env: HashMap<String, String> = [
        "USER_SERVICE_URL",
        "RECOMMENDATION_SERVICE_URL",
        "CART_SERVICE_URL",
        "NOTIFICATION_SERVICE_URL",
        "ORDER_SERVICE_URL",
        "PRODUCT_SERVICE_URL",
    ]
    .iter()
    .map(|k| (k.to_string(), "http://127.0.0.1:9".to_string()))
    .chain([("JWT_SECRET".to_string(), "bench".to_string())])
    .collect();
    let (plan, diags) = facade::load::load_plan(&root.join("benches/facade.yaml"), &env);
    assert!(diags.items().is_empty(), "{:?}", diags.items());
    let plan = plan.unwrap();
    assert_eq!(plan.passthrough.len(), 2);
    assert!(plan.routes.prefix_of("/api/orders/ord-77812").is_some());
}

/// `facade schema` of the shipped configuration is committed as `schemas/facade.graphql`: a change
/// to a composition or an OpenAPI document that changes the GraphQL schema shows in review.
#[test]
fn the_committed_sdl_matches_the_shipped_compositions() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_facade"))
        .args(["schema", "--config"])
        .arg(root.join("facade.yaml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let committed = std::fs::read_to_string(root.join("schemas/facade.graphql")).unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout) == committed,
        "schemas/facade.graphql is out of date: run `cargo run -- schema > schemas/facade.graphql`"
    );
}
