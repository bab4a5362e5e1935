//! The JSONPath Compliance Test Suite (RFC 9535; `tests/jsonpath-cts/`, 703 cases), run through
//! Facade's own expression parser and evaluator, fast walk included: invalid selectors must be
//! refused at load, valid ones must give the suite's nodelist (one of `results` where the order
//! may vary).
//!
//! Two kinds of case cannot be Facade expressions and are skipped, each counted and named below:
//! the bare `$` (valid in the suite, a load error on purpose: SPEC §4.1), and selectors that begin
//! with a blank (a Facade path is a string that starts with `$`).

use facade::exec::eval::nodes;
use facade::plan::expr::{parse_str, Expr, Scope};
use serde_json::Value;

#[test]
fn every_case_of_the_compliance_suite() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/jsonpath-cts/cts.json")).unwrap();
    let suite: Value = serde_json::from_str(&text).unwrap();
    let cases = suite["tests"].as_array().unwrap();
    assert_eq!(cases.len(), 703);
    let mut failures = Vec::new();
    let mut skipped = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let selector = case["selector"].as_str().unwrap();
        if selector == "$" || !selector.starts_with('$') {
            skipped.push(name);
            continue;
        }
        // The entry point compositions use: a string that starts with `$` is a path.
        let parsed = parse_str(selector, Scope { in_each: false });
        if case["invalid_selector"] == true {
            if parsed.is_ok() {
                failures.push(format!("{name}: `{selector}` must be refused"));
            }
            continue;
        }
        let path = match parsed {
            Ok(Expr::Path(p)) => p,
            Ok(other) => {
                failures.push(format!("{name}: `{selector}` read as {other:?}, not a path"));
                continue;
            }
            Err((message, _)) => {
                failures.push(format!("{name}: `{selector}` refused: {message}"));
                continue;
            }
        };
        let got: Vec<Value> = nodes(&path, &case["document"]).into_iter().cloned().collect();
        let got = Value::Array(got);
        let expected: Vec<&Value> = match (&case.get("result"), &case.get("results")) {
            (Some(r), _) => vec![r],
            (None, Some(Value::Array(rs))) => rs.iter().collect(),
            _ => Vec::new(),
        };
        if !expected.iter().any(|e| **e == got) {
            failures.push(format!(
                "{name}: `{selector}` gave {got}, expected {}",
                expected.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(" or ")
            ));
        }
    }
    eprintln!("{} cases skipped: {skipped:?}", skipped.len());
    // The skips are exactly the two kinds named above.
    assert_eq!(skipped, ["basic, root", "basic, no leading whitespace"]);
    assert!(
        failures.is_empty(),
        "{} of {} cases fail:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
