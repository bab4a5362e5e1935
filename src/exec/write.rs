//! Writes a projection straight to JSON text (the REST answer), reading values where they are in
//! the document instead of building a copy of the response first. The result is byte for byte
//! what serialising `eval`'s value would give.

use super::eval::{each_item, eval, eval_cow, Scope};
use crate::plan::expr::Expr;
use serde_json::Value;

/// Appends the JSON text of `expr` evaluated in `scope` to `out`.
pub fn write(expr: &Expr, scope: Scope<'_>, out: &mut Vec<u8>) {
    match expr {
        Expr::Literal(v) => value(v, out),
        Expr::Path(_) | Expr::Item => value(eval_cow(expr, scope).as_ref(), out),
        Expr::Template(_) | Expr::Func(..) => value(&eval(expr, scope), out),
        Expr::Array(items) => {
            out.push(b'[');
            for (i, e) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(e, scope, out);
            }
            out.push(b']');
        }
        Expr::Object(fields) => {
            out.push(b'{');
            for (i, (k, e)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                string(k, out);
                out.push(b':');
                write(e, scope, out);
            }
            out.push(b'}');
        }
        Expr::Each { over, item } => {
            out.push(b'[');
            let mut first = true;
            each_item(over, scope, &mut |it| {
                if !first {
                    out.push(b',');
                }
                first = false;
                write(
                    item,
                    Scope {
                        doc: scope.doc,
                        item: Some(it),
                    },
                    out,
                );
            });
            out.push(b']');
        }
    }
}

fn value(v: &Value, out: &mut Vec<u8>) {
    // Writing a `Value` into a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *out, v);
}

fn string(s: &str, out: &mut Vec<u8>) {
    let _ = serde_json::to_writer(&mut *out, s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::yaml::parse;
    use crate::plan::expr::{parse_node, Scope as PScope};
    use serde_json::json;

    #[test]
    fn writes_what_eval_would_serialise() {
        let doc =
            json!({"u": {"name": "A \"q\"", "tags": ["x", null]}, "xs": [{"p": 1}, {"p": 2.5}], "o": {"n": null}});
        let yaml = r#"
a: "$.u.name"
b: "$.xs[*].p"
c: { nested: ["$.u.tags", 1, "lit"], const: { const: "$x" } }
d: { each: "$.xs[*]", fields: { p: "@.p", whole: "@", t: "p={@.p}" } }
e: "length($.u.tags)"
f: "$.missing"
g: { each: "$.o", fields: { n: "@.n" } }
h: { each: "$.nothing", fields: { n: "@" } }
"#;
        let node = parse(yaml).unwrap().unwrap();
        let mut errors = Vec::new();
        let expr = parse_node(&node, PScope { in_each: false }, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        let scope = Scope { doc: &doc, item: None };
        let mut out = Vec::new();
        write(&expr, scope, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            serde_json::to_string(&eval(&expr, scope)).unwrap()
        );
    }
}
