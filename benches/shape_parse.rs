//! Parsing a backend answer: the whole tree, only what the endpoint reads (its shape), and
//! nothing (validation only). Run by hand: `cargo bench --bench shape_parse`.

use facade::plan::shape::parse;
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

/// The server's allocator, so the numbers are the ones a request sees.
#[global_allocator]
static GLOBAL: facade::alloc::Mimalloc = facade::alloc::Mimalloc;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let body = std::fs::read(root.join("fixtures/recommendations/for/_.json")).expect("fixture");
    let env: HashMap<String, String> = [
        "USER_SERVICE_URL",
        "RECOMMENDATION_SERVICE_URL",
        "CART_SERVICE_URL",
        "NOTIFICATION_SERVICE_URL",
        "ORDER_SERVICE_URL",
        "PRODUCT_SERVICE_URL",
    ]
    .iter()
    .map(|k| (k.to_string(), "http://127.0.0.1:1".to_string()))
    .chain([("JWT_SECRET".to_string(), "x".to_string())])
    .collect();
    let (plan, diags) = facade::load::load_plan(&root.join("benches/facade.yaml"), &env);
    let plan = plan.unwrap_or_else(|| panic!("{:?}", diags.items()));
    let home = plan.endpoints.iter().find(|e| e.name == "home").expect("home");
    let shape = home
        .calls
        .iter()
        .find(|c| c.name == "recommendations")
        .expect("call")
        .shape
        .clone();
    let n = 5000u32;
    let time = |name: &str, f: &dyn Fn()| {
        for _ in 0..200 {
            f();
        }
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        println!("{name:>8}: {:?} per parse of {} bytes", t.elapsed() / n, body.len());
    };
    time("whole", &|| {
        std::hint::black_box(serde_json::from_slice::<serde_json::Value>(&body).expect("json"));
    });
    time("shaped", &|| {
        std::hint::black_box(parse(&body, &shape).expect("json"));
    });
    time("skip", &|| {
        std::hint::black_box(serde_json::from_slice::<serde::de::IgnoredAny>(&body).expect("json"));
    });
}
