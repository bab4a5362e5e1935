//! RFC 9535 evaluation of a query that jsonpath-rust parsed, for the paths the fast walk of
//! `eval` does not take (filters, slices, descendants, several selectors in one segment).
//!
//! Why not the crate's own evaluator: it orders the results of a descendant segment with several
//! selectors selector by selector (RFC 9535 §2.5.2.2 asks node by node), and a filter inside a
//! filter's query (`$[?@[?@>1]]`) tests the current node instead of its children. The crate's
//! parser stays; the well-typedness checks it lacks are in `plan::expr`. Every case of the
//! JSONPath Compliance Test Suite is run against this module (`tests/jsonpath_cts.rs`).

use jsonpath_rust::parser::model::{
    Comparable, Comparison, Filter, FilterAtom, FnArg, JpQuery, Literal, Segment, Selector, SingularQuery,
    SingularQuerySegment, Test, TestFunction,
};
use serde_json::Value;
use std::borrow::Cow;

/// The nodelist `query` selects from `root`, in RFC 9535's order.
pub fn select<'a>(query: &JpQuery, root: &'a Value) -> Vec<&'a Value> {
    segments(&query.segments, root, root)
}

fn segments<'a>(segs: &[Segment], start: &'a Value, root: &'a Value) -> Vec<&'a Value> {
    let mut nodes = vec![start];
    for seg in segs {
        let mut next = Vec::new();
        for node in nodes {
            segment(seg, node, root, &mut next);
        }
        nodes = next;
    }
    nodes
}

fn segment<'a>(seg: &Segment, node: &'a Value, root: &'a Value, out: &mut Vec<&'a Value>) {
    match seg {
        Segment::Selector(s) => selector(s, node, root, out),
        Segment::Selectors(list) => list.iter().for_each(|s| selector(s, node, root, out)),
        Segment::Descendant(inner) => descend(inner, node, root, out),
    }
}

/// The node itself, then its descendants, each before its own children; every selector of the
/// segment is applied to one node before the next node is visited.
fn descend<'a>(inner: &Segment, node: &'a Value, root: &'a Value, out: &mut Vec<&'a Value>) {
    segment(inner, node, root, out);
    match node {
        Value::Array(items) => items.iter().for_each(|c| descend(inner, c, root, out)),
        Value::Object(fields) => fields.values().for_each(|c| descend(inner, c, root, out)),
        _ => {}
    }
}

fn children(node: &Value) -> Box<dyn Iterator<Item = &Value> + '_> {
    match node {
        Value::Array(items) => Box::new(items.iter()),
        Value::Object(fields) => Box::new(fields.values()),
        _ => Box::new(std::iter::empty()),
    }
}

fn selector<'a>(s: &Selector, node: &'a Value, root: &'a Value, out: &mut Vec<&'a Value>) {
    match s {
        Selector::Name(name) => {
            if let Some(v) = node.as_object().and_then(|m| m.get(name)) {
                out.push(v);
            }
        }
        Selector::Wildcard => out.extend(children(node)),
        Selector::Index(i) => {
            if let Some(v) = node.as_array().and_then(|a| index(a, *i)) {
                out.push(v);
            }
        }
        Selector::Slice(start, end, step) => {
            if let Some(items) = node.as_array() {
                slice(items, *start, *end, *step, out);
            }
        }
        Selector::Filter(f) => {
            for child in children(node) {
                if logical(f, child, root) {
                    out.push(child);
                }
            }
        }
    }
}

fn index(items: &[Value], i: i64) -> Option<&Value> {
    let len = items.len() as i64;
    let at = if i < 0 { len + i } else { i };
    (0..len).contains(&at).then(|| &items[at as usize])
}

/// RFC 9535 §2.3.4.2.2.
fn slice<'a>(items: &'a [Value], start: Option<i64>, end: Option<i64>, step: Option<i64>, out: &mut Vec<&'a Value>) {
    let len = items.len() as i64;
    let step = step.unwrap_or(1);
    if step == 0 {
        return;
    }
    let normal = |i: i64| if i >= 0 { i } else { len + i };
    if step > 0 {
        let lower = normal(start.unwrap_or(0)).clamp(0, len);
        let upper = normal(end.unwrap_or(len)).clamp(0, len);
        let mut i = lower;
        while i < upper {
            out.push(&items[i as usize]);
            i = i.saturating_add(step);
        }
    } else {
        let upper = normal(start.unwrap_or(len - 1)).clamp(-1, len - 1);
        let lower = end.map(normal).unwrap_or(-len - 1).clamp(-1, len - 1);
        let mut i = upper;
        while lower < i {
            out.push(&items[i as usize]);
            i = i.saturating_add(step);
        }
    }
}

fn logical(f: &Filter, current: &Value, root: &Value) -> bool {
    match f {
        Filter::Or(parts) => parts.iter().any(|p| logical(p, current, root)),
        Filter::And(parts) => parts.iter().all(|p| logical(p, current, root)),
        Filter::Atom(atom) => match atom {
            FilterAtom::Filter { expr, not } => logical(expr, current, root) != *not,
            FilterAtom::Test { expr, not } => test(expr, current, root) != *not,
            FilterAtom::Comparison(c) => compare(c, current, root),
        },
    }
}

/// A test expression: an existence test of a query, or a function of logical type.
fn test(t: &Test, current: &Value, root: &Value) -> bool {
    match t {
        Test::RelQuery(segs) => !segments(segs, current, root).is_empty(),
        Test::AbsQuery(q) => !select(q, root).is_empty(),
        Test::Function(f) => match &**f {
            TestFunction::Match(a, b) => regex(a, b, current, root, true),
            TestFunction::Search(a, b) => regex(a, b, current, root, false),
            // Value-typed functions used as a test are refused at load (plan::expr).
            _ => false,
        },
    }
}

/// A value of a comparison or function argument: `None` is RFC 9535's "Nothing".
type Val<'a> = Option<Cow<'a, Value>>;

fn compare(c: &Comparison, current: &Value, root: &Value) -> bool {
    let (l, r) = c.vals();
    let (l, r) = (comparable(l, current, root), comparable(r, current, root));
    match c {
        Comparison::Eq(..) => equal(&l, &r),
        Comparison::Ne(..) => !equal(&l, &r),
        Comparison::Lt(..) => less(&l, &r),
        Comparison::Gt(..) => less(&r, &l),
        Comparison::Lte(..) => less(&l, &r) || equal(&l, &r),
        Comparison::Gte(..) => less(&r, &l) || equal(&l, &r),
    }
}

fn comparable<'a>(c: &Comparable, current: &'a Value, root: &'a Value) -> Val<'a> {
    match c {
        Comparable::Literal(l) => Some(Cow::Owned(literal(l))),
        Comparable::SingularQuery(q) => singular(q, current, root).map(Cow::Borrowed),
        Comparable::Function(f) => function(f, current, root),
    }
}

fn literal(l: &Literal) -> Value {
    match l {
        Literal::Int(i) => Value::from(*i),
        Literal::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Literal::String(s) => Value::String(s.clone()),
        Literal::Bool(b) => Value::Bool(*b),
        Literal::Null => Value::Null,
    }
}

fn singular<'a>(q: &SingularQuery, current: &'a Value, root: &'a Value) -> Option<&'a Value> {
    let (mut node, segs) = match q {
        SingularQuery::Current(segs) => (current, segs),
        SingularQuery::Root(segs) => (root, segs),
    };
    for seg in segs {
        node = match seg {
            SingularQuerySegment::Name(n) => node.as_object()?.get(n)?,
            SingularQuerySegment::Index(i) => index(node.as_array()?, *i)?,
        };
    }
    Some(node)
}

fn equal(l: &Val<'_>, r: &Val<'_>) -> bool {
    match (l, r) {
        (None, None) => true,
        (Some(a), Some(b)) => json_equal(a, b),
        _ => false,
    }
}

/// Deep equality where numbers compare by value (`1 == 1.0`).
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

fn less(l: &Val<'_>, r: &Val<'_>) -> bool {
    match (l.as_deref(), r.as_deref()) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i < j,
            _ => x.as_f64() < y.as_f64(),
        },
        (Some(Value::String(x)), Some(Value::String(y))) => x < y,
        _ => false,
    }
}

/// A value-typed function: `length`, `count`, `value`.
fn function<'a>(f: &TestFunction, current: &'a Value, root: &'a Value) -> Val<'a> {
    match f {
        TestFunction::Length(arg) => match value_arg(arg, current, root)?.as_ref() {
            Value::String(s) => Some(Cow::Owned(Value::from(s.chars().count()))),
            Value::Array(a) => Some(Cow::Owned(Value::from(a.len()))),
            Value::Object(o) => Some(Cow::Owned(Value::from(o.len()))),
            _ => None,
        },
        TestFunction::Count(arg) => Some(Cow::Owned(Value::from(nodes_arg(arg, current, root).len()))),
        TestFunction::Value(arg) => {
            let nodes = nodes_arg(arg, current, root);
            (nodes.len() == 1).then(|| Cow::Borrowed(nodes[0]))
        }
        _ => None,
    }
}

/// An argument of value type: a literal, a singular query, or a value-typed function.
fn value_arg<'a>(arg: &FnArg, current: &'a Value, root: &'a Value) -> Val<'a> {
    match arg {
        FnArg::Literal(l) => Some(Cow::Owned(literal(l))),
        FnArg::Test(t) => match &**t {
            Test::Function(f) => function(f, current, root),
            _ => {
                let nodes = query_arg(t, current, root);
                (nodes.len() == 1).then(|| Cow::Borrowed(nodes[0]))
            }
        },
        FnArg::Filter(_) => None,
    }
}

/// An argument of nodes type: a query.
fn nodes_arg<'a>(arg: &FnArg, current: &'a Value, root: &'a Value) -> Vec<&'a Value> {
    match arg {
        FnArg::Test(t) => query_arg(t, current, root),
        _ => Vec::new(),
    }
}

fn query_arg<'a>(t: &Test, current: &'a Value, root: &'a Value) -> Vec<&'a Value> {
    match t {
        Test::RelQuery(segs) => segments(segs, current, root),
        Test::AbsQuery(q) => select(q, root),
        Test::Function(_) => Vec::new(),
    }
}

/// `match` (whole string) and `search` (a substring) with an I-Regexp (RFC 9485).
fn regex(a: &FnArg, b: &FnArg, current: &Value, root: &Value, whole: bool) -> bool {
    let (Some(text), Some(pattern)) = (value_arg(a, current, root), value_arg(b, current, root)) else {
        return false;
    };
    let (Value::String(text), Value::String(pattern)) = (text.as_ref(), pattern.as_ref()) else {
        return false;
    };
    let translated = i_regexp(pattern);
    let source = if whole {
        format!("^(?:{translated})$")
    } else {
        translated
    };
    regex::Regex::new(&source).is_ok_and(|re| re.is_match(text))
}

/// An I-Regexp in the `regex` crate's syntax: its `.` matches anything but `\n` and `\r`.
fn i_regexp(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push(c);
                if let Some(escaped) = chars.next() {
                    out.push(escaped);
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push(c);
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            '.' if !in_class => out.push_str(r"[^\n\r]"),
            _ => out.push(c),
        }
    }
    out
}
