//! Which parts of a backend answer an endpoint can ever read (its "shape"), computed once from the
//! expressions, so the answer is parsed into only those parts.
//!
//! Parsing a backend body into a JSON tree is the largest cost of a composed request; most of a
//! typical answer (descriptions, image sets, tags) is never read. A shape keeps, for objects,
//! only the fields some path names, and for arrays every element (so lengths and indexes stay
//! right) reduced to what the paths read below them. Anything read whole — a path that ends at a
//! node, a filter, `..`, a bare `@`, a call that is cached, deduplicated or attached — keeps that
//! node whole, so results are identical to a full parse.

use super::expr::{Expr, Func, Part, PathExpr, RootRef, Step};
use super::Call;
pub use read::ReadError;
use serde_json::Value;

mod read;

/// The marker field of a shape whose object members are all kept whole (`.*`).
const EVERY_FIELD: &str = "\u{0}*";

/// What to keep of a JSON value.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Shape {
    /// The whole value.
    #[default]
    All,
    /// Only some of it.
    Pick {
        /// For an object: the fields to keep, each with its own shape (a short list: a linear
        /// search beats hashing here).
        fields: Vec<(String, Shape)>,
        /// For an array: the shape of every element (`None`: elements are never read, and are
        /// kept as `null` so that the array's length is right).
        items: Option<Box<Shape>>,
        /// For an array whose elements are read only by non-negative indexes: how many elements
        /// from the start are read (`images[0]` reads one); the others are kept as `null`.
        /// `None`: every element is read.
        leading: Option<usize>,
    },
    /// Only its size is read (`length(…)`): a string whole, an array's elements and an object's
    /// members as `null`, so the length is right and nothing below is parsed.
    Length,
}

impl Shape {
    fn empty() -> Shape {
        Shape::Pick {
            fields: Vec::new(),
            items: None,
            leading: None,
        }
    }

    /// Makes sure everything reachable by `steps` is kept, and the node at the end whole.
    fn add(&mut self, steps: &[Step]) {
        self.reach(steps, false);
    }

    /// Makes sure everything reachable by `steps` is kept, and the node at the end whole or
    /// (`only_length`) as far as its length needs.
    fn reach(&mut self, steps: &[Step], only_length: bool) {
        let Shape::Pick { fields, items, leading } = self else {
            // A node read for its length and for more besides is kept whole.
            if *self == Shape::Length && !(only_length && steps.is_empty()) {
                *self = Shape::All;
            }
            return;
        };
        match steps.split_first() {
            // Counted alone: nothing else reads this node or below it.
            None if only_length && fields.is_empty() && items.is_none() => *self = Shape::Length,
            None => *self = Shape::All,
            Some((Step::Name(n), rest)) => field(fields, n).reach(rest, only_length),
            Some((Step::Index(i), rest)) => elements(items, leading, upto(*i)).reach(rest, only_length),
            Some((Step::Wildcard, rest)) => {
                elements(items, leading, None).reach(rest, only_length);
                // `.*` on an object reads every member: keep them all, whole.
                *field(fields, EVERY_FIELD) = Shape::All;
            }
        }
    }

    /// Makes sure the nodes along `steps` are kept, without keeping the last one whole: an `each`
    /// walks that array, and what its items need is added by the paths inside it.
    fn touch(&mut self, steps: &[Step]) {
        let Shape::Pick { fields, items, leading } = self else {
            if *self == Shape::Length {
                *self = Shape::All;
            }
            return;
        };
        match steps.split_first() {
            None => {
                elements(items, leading, None);
            }
            Some((Step::Name(n), rest)) => field(fields, n).touch(rest),
            Some((Step::Index(i), rest)) => elements(items, leading, upto(*i)).touch(rest),
            Some((Step::Wildcard, rest)) => {
                elements(items, leading, None).touch(rest);
                *field(fields, EVERY_FIELD) = Shape::All;
            }
        }
    }
}

/// The shape of an array's elements, made to cover the first `wanted` elements (`None`: all).
fn elements<'a>(
    items: &'a mut Option<Box<Shape>>,
    leading: &mut Option<usize>,
    wanted: Option<usize>,
) -> &'a mut Shape {
    *leading = match (items.is_some(), *leading, wanted) {
        (false, _, wanted) => wanted,
        (true, Some(had), Some(wanted)) => Some(had.max(wanted)),
        _ => None,
    };
    items.get_or_insert_with(|| Box::new(Shape::empty()))
}

/// How many leading elements an index reads: `[2]` the first three; `[-1]` depends on the
/// length, so all of them.
fn upto(index: i64) -> Option<usize> {
    usize::try_from(index).ok().and_then(|i| i.checked_add(1))
}

/// The shape of a field, added when missing.
fn field<'a>(fields: &'a mut Vec<(String, Shape)>, name: &str) -> &'a mut Shape {
    let i = match fields.iter().position(|(k, _)| k == name) {
        Some(i) => i,
        None => {
            fields.push((name.to_string(), Shape::empty()));
            fields.len() - 1
        }
    };
    &mut fields[i].1
}

/// Computes the shape of every call's answer for one endpoint.
pub fn shapes(calls: &[Call], response: &Expr) -> Vec<Shape> {
    let mut s = Shapes {
        names: calls.iter().map(|c| c.name.as_str()).collect(),
        shapes: vec![Shape::empty(); calls.len()],
    };
    for (i, c) in calls.iter().enumerate() {
        let item_ctx = c.each.as_ref().and_then(|e| s.context_of(&e.over, None));
        if let Some(each) = &c.each {
            s.over(&each.over, None);
        }
        for part in &c.path {
            if let super::PathPart::Value { expr, .. } = part {
                s.expr(expr, item_ctx.clone());
            }
        }
        for (_, e) in &c.query {
            s.expr(e, item_ctx.clone());
        }
        for (_, e) in &c.headers {
            s.expr(e, item_ctx.clone());
        }
        if let Some(b) = &c.body {
            s.expr(b, item_ctx.clone());
        }
        if let Some(w) = &c.when {
            s.expr(w, None);
        }
        // Shared or re-shaped answers are kept whole.
        let attached = c.each.as_ref().is_some_and(|e| e.attach.is_some());
        if c.dedup || c.cache.is_some() || attached {
            s.shapes[i] = Shape::All;
        }
    }
    s.expr(response, None);
    s.shapes
}

/// Where `@` points: a call, the steps from its root to the array whose elements `@` walks, and
/// whether the `each` path was singular (then a non-array value is itself the one item).
type Ctx = Option<(usize, Vec<Step>, bool)>;

struct Shapes<'a> {
    names: Vec<&'a str>,
    shapes: Vec<Shape>,
}

impl Shapes<'_> {
    fn expr(&mut self, e: &Expr, ctx: Ctx) {
        match e {
            Expr::Literal(_) => {}
            Expr::Path(p) => self.path(p, &ctx, false),
            Expr::Item => {
                if let Some((call, steps, direct)) = &ctx {
                    let mut full = steps.clone();
                    full.push(Step::Index(0));
                    self.shapes[*call].add(&full);
                    if *direct {
                        self.shapes[*call].add(steps);
                    }
                }
            }
            Expr::Template(parts) => {
                for p in parts {
                    if let Part::Expr(e) = p {
                        self.expr(e, ctx.clone());
                    }
                }
            }
            // `length` of a path reads only the size of what it names.
            Expr::Func(Func::Length, args) if let Some(p) = length_of_path(args) => self.path(p, &ctx, true),
            Expr::Func(_, args) | Expr::Array(args) => args.iter().for_each(|a| self.expr(a, ctx.clone())),
            Expr::Object(fields) => fields.iter().for_each(|(_, f)| self.expr(f, ctx.clone())),
            Expr::Each { over, item } => {
                self.over(over, ctx.clone());
                let inner = self.context_of(over, ctx.clone());
                self.expr(item, inner);
            }
        }
    }

    /// The array an `each` walks: kept, but its items only as far as the paths inside read them.
    fn over(&mut self, over: &Expr, ctx: Ctx) {
        match (over, self.context_of(over, ctx.clone())) {
            (Expr::Path(p), Some((call, steps, direct))) if p.steps.is_some() => {
                if direct {
                    // A singular path: its value may be the one item itself.
                    self.shapes[call].touch(&steps);
                } else {
                    let mut full = steps;
                    full.push(Step::Wildcard);
                    self.shapes[call].touch(&full);
                }
            }
            _ => self.expr(over, ctx),
        }
    }

    /// The context `@` gets inside an `each` over `over`.
    fn context_of(&self, over: &Expr, ctx: Ctx) -> Ctx {
        let Expr::Path(p) = over else { return None };
        let steps = p.steps.as_ref()?;
        let direct = !matches!(steps.last(), Some(Step::Wildcard));
        if p.relative {
            let (call, mut prefix, _) = ctx?;
            prefix.push(Step::Index(0));
            prefix.extend(strip_last_wildcard(steps));
            Some((call, prefix, direct))
        } else {
            let Step::Name(root) = steps.first()? else { return None };
            let call = self.names.iter().position(|n| n == root)?;
            Some((call, strip_last_wildcard(&steps[1..]), direct))
        }
    }

    /// Keeps what `p` reads: the nodes it ends at whole, or (`only_length`) as far as their length
    /// needs.
    fn path(&mut self, p: &PathExpr, ctx: &Ctx, only_length: bool) {
        if p.relative {
            let Some((call, prefix, direct)) = ctx else { return };
            match &p.steps {
                Some(steps) => {
                    let mut full = prefix.clone();
                    full.push(Step::Index(0));
                    full.extend(steps.iter().cloned());
                    self.shapes[*call].reach(&full, only_length);
                    if *direct {
                        let mut full = prefix.clone();
                        full.extend(steps.iter().cloned());
                        self.shapes[*call].reach(&full, only_length);
                    }
                }
                None => self.shapes[*call] = Shape::All,
            }
            return;
        }
        for root in p.roots() {
            match root {
                RootRef::All => self.shapes.iter_mut().for_each(|s| *s = Shape::All),
                RootRef::Name(n) => {
                    let Some(call) = self.names.iter().position(|c| *c == n) else {
                        continue;
                    };
                    match p.steps.as_deref() {
                        Some([Step::Name(first), rest @ ..]) if *first == n => {
                            self.shapes[call].reach(rest, only_length)
                        }
                        // A filter, `..` or a reference inside a filter: keep the call whole.
                        _ => self.shapes[call] = Shape::All,
                    }
                }
            }
        }
    }
}

/// The singular path whose length `length(…)` takes, when its argument is one.
fn length_of_path(args: &[Expr]) -> Option<&PathExpr> {
    match args.first() {
        Some(Expr::Path(p)) if p.singular => Some(p),
        _ => None,
    }
}

/// The steps to an array whose elements an `each` walks: `$.a.b[*]` → `a.b` (the element step is
/// added where `@` is used); other paths are kept as they are, and their end is kept whole.
fn strip_last_wildcard(steps: &[Step]) -> Vec<Step> {
    match steps.split_last() {
        Some((Step::Wildcard, rest)) => rest.to_vec(),
        _ => steps.to_vec(),
    }
}

/// Parses `bytes` as JSON, keeping what `shape` says (see `read`).
///
/// The body's UTF-8 is checked once, whole: then kept strings are copied without a check of
/// their own (checking a few hundred short strings one by one cost more than one pass over the
/// body: measured, 4 % of a composed request). A body that is not UTF-8 throughout is still read;
/// what is kept of it is checked, as serde_json checks what it keeps.
pub fn parse(bytes: &[u8], shape: &Shape) -> Result<Value, ReadError> {
    // RFC 8259 lets a parser ignore a byte order mark, and some stacks (.NET's) write one.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).ok();
    read::Reader::new(bytes, text).document(shape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shape_of(paths: &[&[Step]]) -> Shape {
        let mut s = Shape::empty();
        for p in paths {
            s.add(p);
        }
        s
    }

    #[test]
    fn a_byte_order_mark_before_the_body_is_ignored() {
        let body = b"\xEF\xBB\xBF{\"a\": [1, 2]}";
        assert_eq!(parse(body, &Shape::All).ok(), Some(json!({"a": [1, 2]})));
        assert!(parse(b"\xEF\xBB{}", &Shape::All).is_err());
    }

    #[test]
    fn keeps_only_what_paths_read() {
        let s = shape_of(&[
            &[Step::Wildcard, Step::Name("id".into())],
            &[
                Step::Index(0),
                Step::Name("images".into()),
                Step::Index(0),
                Step::Name("t".into()),
            ],
        ]);
        let body = br#"[{"id": 1, "junk": {"a": [1,2,3]}, "images": [{"t": "x", "u": "y"}, {"t": "z"}]}, {"id": 2}]"#;
        assert_eq!(
            parse(body, &s).unwrap(),
            json!([{"id": 1, "images": [{"t": "x"}, null]}, {"id": 2}]),
            "`images[0]` reads the first image; the others keep the length as null"
        );
    }

    #[test]
    fn an_array_read_by_indexes_keeps_only_the_leading_elements_they_reach() {
        let name = |n: &str| Step::Name(n.into());
        let body = br#"{"a": [{"t": 1, "u": 1}, {"t": 2}, {"t": 3}]}"#;
        let read = |paths: &[&[Step]]| parse(body, &shape_of(paths)).unwrap();
        let second = [name("a"), Step::Index(1), name("t")];
        assert_eq!(read(&[&second]), json!({"a": [{"t": 1}, {"t": 2}, null]}));
        let first_u = [name("a"), Step::Index(0), name("u")];
        assert_eq!(
            read(&[&second, &first_u]),
            json!({"a": [{"t": 1, "u": 1}, {"t": 2}, null]})
        );
        // From the end, or every element: all of them.
        let last = [name("a"), Step::Index(-1), name("t")];
        assert_eq!(read(&[&second, &last]), json!({"a": [{"t": 1}, {"t": 2}, {"t": 3}]}));
        let every = [name("a"), Step::Wildcard, name("t")];
        assert_eq!(read(&[&second, &every]), json!({"a": [{"t": 1}, {"t": 2}, {"t": 3}]}));
        assert_eq!(read(&[&every, &second]), json!({"a": [{"t": 1}, {"t": 2}, {"t": 3}]}));
        // An `each` walks every element, whatever indexes read inside it.
        let mut walked = shape_of(&[&second]);
        walked.touch(&[name("a")]);
        assert_eq!(
            parse(body, &walked).unwrap(),
            json!({"a": [{"t": 1}, {"t": 2}, {"t": 3}]})
        );
    }

    #[test]
    fn a_path_ending_at_a_node_keeps_it_whole_and_arrays_keep_their_length() {
        let s = shape_of(&[&[Step::Name("items".into())], &[Step::Name("count".into())]]);
        let body = br#"{"items": [{"a": 1}, {"b": 2}], "count": 2, "other": "x"}"#;
        assert_eq!(
            parse(body, &s).unwrap(),
            json!({"items": [{"a": 1}, {"b": 2}], "count": 2})
        );
        let s = shape_of(&[&[Step::Name("n".into())]]);
        assert_eq!(parse(br#"[1, 2, 3]"#, &s).unwrap(), json!([null, null, null]));
        assert!(parse(br#"{"n": 1"#, &s).is_err(), "still validates the whole body");
        // Invalid UTF-8 where it is read is refused; in a member never read it is skipped, as
        // serde_json skips it (the whole-body check only chooses the faster reader).
        assert!(parse(b"{\"n\": \"\xff\"}", &s).is_err());
        assert_eq!(parse(b"{\"n\": 1, \"d\": \"\xff\"}", &s).unwrap(), json!({"n": 1}));
    }

    #[test]
    fn a_node_read_only_for_its_length_keeps_only_its_size() {
        let items = [Step::Name("items".into())];
        let mut s = Shape::empty();
        s.reach(&items, true);
        let body = br#"{"items": [{"a": [1, 2]}, {"b": "x"}], "o": 1}"#;
        assert_eq!(parse(body, &s).unwrap(), json!({"items": [null, null]}));
        let body = br#"{"items": {"a": {"deep": [1]}, "\u0061": 2, "b": 3}}"#;
        assert_eq!(
            parse(body, &s).unwrap(),
            json!({"items": {"a": null, "b": null}}),
            "escaped keys count once"
        );
        assert_eq!(
            parse(r#"{"items": "héllo"}"#.as_bytes(), &s).unwrap(),
            json!({"items": "héllo"})
        );
        // Counted twice it stays counted; read any other way it is kept whole.
        s.reach(&items, true);
        assert_eq!(s, shape_of(&[]).with_length(&items));
        let mut below = s.clone();
        below.add(&[Step::Name("items".into()), Step::Index(0)]);
        assert_eq!(below, shape_of(&[&items]));
        let mut walked = s.clone();
        walked.touch(&items);
        assert_eq!(walked, shape_of(&[&items]));
        let mut read_first = shape_of(&[&[Step::Name("items".into()), Step::Index(0), Step::Name("a".into())]]);
        read_first.reach(&items, true);
        assert_eq!(
            read_first,
            shape_of(&[&items]),
            "a node read below is not reduced to its size"
        );
    }

    impl Shape {
        fn with_length(mut self, steps: &[Step]) -> Shape {
            self.reach(steps, true);
            self
        }
    }

    #[test]
    fn short_numbers_are_read_as_serde_json_reads_them() {
        for text in [
            "0",
            "-0",
            "7",
            "-7",
            "0.5",
            "-0.0",
            "59.99",
            "0.1",
            "0.30000000000000004",
            "123.456789012345678",
            "999999999999999999",
            "-999999999999999999",
            "9999999999999999999",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "1e3",
            "1.5E-7",
            "-2e+2",
            "0.000000000000000001",
            "3.141592653589793238",
            "1.7976931348623157e308",
            "4.9e-324",
            "123456789012345.67",
        ] {
            let ours = parse(text.as_bytes(), &Shape::All).unwrap();
            let theirs: Value = serde_json::from_str(text).unwrap();
            assert_eq!(ours.to_string(), theirs.to_string(), "{text}");
            assert_eq!(
                (ours.is_u64(), ours.is_i64(), ours.as_f64().map(f64::to_bits)),
                (theirs.is_u64(), theirs.is_i64(), theirs.as_f64().map(f64::to_bits)),
                "{text}"
            );
            let inside = format!("{{\"n\": [{text}]}}");
            let s = shape_of(&[&[Step::Name("n".into()), Step::Index(0)]]);
            assert_eq!(parse(inside.as_bytes(), &s).unwrap(), json!({"n": [theirs]}), "{text}");
        }
        for bad in ["01", "-", "1.", ".5", "1e", "-01.5", "1.5.2"] {
            assert!(parse(bad.as_bytes(), &Shape::All).is_err(), "{bad}");
        }
    }

    #[test]
    fn wildcard_on_objects_keeps_every_field() {
        let s = shape_of(&[&[Step::Name("o".into()), Step::Wildcard]]);
        assert_eq!(
            parse(br#"{"o": {"a": 1, "b": 2}}"#, &s).unwrap(),
            json!({"o": {"a": 1, "b": 2}})
        );
    }

    /// What a full parse pruned by `shape` gives: what `parse` must give.
    fn prune(v: &Value, shape: &Shape) -> Value {
        let Shape::Pick { fields, items, leading } = shape else {
            return if *shape == Shape::Length { sized(v) } else { v.clone() };
        };
        match v {
            Value::Object(m) if fields.iter().any(|(k, _)| k == EVERY_FIELD) => Value::Object(m.clone()),
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter_map(|(k, v)| {
                        let (_, s) = fields.iter().find(|(f, _)| f == k)?;
                        Some((k.clone(), prune(v, s)))
                    })
                    .collect(),
            ),
            Value::Array(a) => Value::Array(
                a.iter()
                    .enumerate()
                    .map(|(i, v)| match items.as_deref() {
                        Some(s) if leading.is_none_or(|n| i < n) => prune(v, s),
                        _ => Value::Null,
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// What `Shape::Length` keeps of a value.
    fn sized(v: &Value) -> Value {
        match v {
            Value::Array(a) => Value::Array(vec![Value::Null; a.len()]),
            Value::Object(m) => Value::Object(m.keys().map(|k| (k.clone(), Value::Null)).collect()),
            other => other.clone(),
        }
    }

    /// A small deterministic generator (xorshift), so failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    const KEYS: [&str; 7] = ["a", "b", "id", "x y", "é", "q\"t", "\u{1F600}"];

    fn random_value(r: &mut Rng, depth: u32) -> Value {
        let kinds = if depth == 0 { 5 } else { 7 };
        match r.below(kinds) {
            0 => Value::Null,
            1 => Value::Bool(r.below(2) == 0),
            2 => json!([
                0,
                -7,
                12345678901234i64,
                0.5,
                -1.25e-7,
                1e300,
                u64::MAX,
                -0.0,
                59.99,
                0.1,
                123456789012345678i64,
                -123456789012345678i64,
                1234567890123456789i64,
                1.7976931348623157e308
            ])[r.below(14)]
            .clone(),
            3 => json!([
                "",
                "plain",
                "tab\tnew\nline",
                "quote \" back \\ slash",
                "é ü \u{1F600}",
                "\u{1}ctl"
            ])[r.below(6)]
            .clone(),
            4 => Value::from(r.below(100)),
            5 => Value::Array((0..r.below(4)).map(|_| random_value(r, depth - 1)).collect()),
            _ => Value::Object(
                (0..r.below(4))
                    .map(|_| (KEYS[r.below(KEYS.len())].to_string(), random_value(r, depth - 1)))
                    .collect(),
            ),
        }
    }

    fn random_shape(r: &mut Rng) -> Shape {
        let mut s = Shape::empty();
        for _ in 0..r.below(4) {
            let steps: Vec<Step> = (0..1 + r.below(3))
                .map(|_| match r.below(4) {
                    0 => Step::Index(0),
                    1 => Step::Wildcard,
                    _ => Step::Name(KEYS[r.below(KEYS.len())].to_string()),
                })
                .collect();
            match r.below(4) {
                0 => s.touch(&steps),
                1 => s.reach(&steps, true),
                _ => s.add(&steps),
            }
        }
        s
    }

    /// Writes a value as JSON with random (valid) whitespace and escapes where serde_json writes
    /// none, so the reader sees more than one spelling.
    fn spell(v: &Value, r: &mut Rng, out: &mut String) {
        let ws = |r: &mut Rng, out: &mut String| out.push_str([" ", "", "\n\t", "\r\n  ", ""][r.below(5)]);
        match v {
            Value::Array(a) => {
                out.push('[');
                for (i, item) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    ws(r, out);
                    spell(item, r, out);
                    ws(r, out);
                }
                out.push(']');
            }
            Value::Object(m) => {
                out.push('{');
                for (i, (k, item)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    ws(r, out);
                    if k == "a" && r.below(2) == 0 {
                        out.push_str(r#""\u0061""#); // the same key, escaped
                    } else {
                        out.push_str(&serde_json::to_string(k).unwrap());
                    }
                    ws(r, out);
                    out.push(':');
                    ws(r, out);
                    spell(item, r, out);
                }
                ws(r, out);
                out.push('}');
            }
            Value::String(s) if s == "plain" && r.below(2) == 0 => out.push_str(r#""pl\u0061in""#),
            other => out.push_str(&serde_json::to_string(other).unwrap()),
        }
    }

    #[test]
    fn gives_what_a_full_parse_pruned_by_the_shape_gives() {
        let mut r = Rng(0x9E37_79B9_7F4A_7C15);
        for case in 0..4000 {
            let v = random_value(&mut r, 4);
            let shape = random_shape(&mut r);
            let mut text = String::new();
            spell(&v, &mut r, &mut text);
            let full: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(
                parse(text.as_bytes(), &shape).as_ref().ok(),
                Some(&prune(&full, &shape)),
                "case {case}: {text} with {shape:?}"
            );
        }
    }

    #[test]
    fn refuses_what_serde_json_refuses_when_bytes_are_changed() {
        let mut r = Rng(0x2545_F491_4F6C_DD1D);
        let noise = b"{}[]:,\"\\ 0123456789.eE+-tfnu\x01\xff";
        for case in 0..20000 {
            let v = random_value(&mut r, 3);
            let shape = random_shape(&mut r);
            let mut bytes = serde_json::to_vec(&v).unwrap();
            for _ in 0..1 + r.below(2) {
                let at = r.below(bytes.len() + 1);
                match r.below(3) {
                    0 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    1 if at < bytes.len() => bytes[at] = noise[r.below(noise.len())],
                    _ => bytes.insert(at, noise[r.below(noise.len())]),
                }
            }
            let got = parse(&bytes, &shape);
            let shown = String::from_utf8_lossy(&bytes);
            if serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_err() {
                assert!(got.is_err(), "case {case}: accepted {shown} with {shape:?}");
            } else if let Ok(full) = serde_json::from_slice::<Value>(&bytes) {
                assert_eq!(
                    got.ok(),
                    Some(prune(&full, &shape)),
                    "case {case}: {shown} with {shape:?}"
                );
            }
            // Otherwise only a kept part is unusable (bad UTF-8, a number out of range): either
            // answer is right for a skipped part, and a kept one is refused by serde_json itself.
        }
    }

    #[test]
    fn skipped_nesting_is_checked_without_recursion() {
        let s = shape_of(&[&[Step::Name("n".into())]]);
        let deep = format!("{{\"d\": {}{}, \"n\": 1}}", "[".repeat(120), "]".repeat(120));
        assert_eq!(parse(deep.as_bytes(), &s).unwrap(), json!({"n": 1}));
        let unclosed = format!("{{\"d\": {}{}, \"n\": 1}}", "[".repeat(120), "]".repeat(119));
        assert!(parse(unclosed.as_bytes(), &s).is_err());
        let too_deep = format!("{{\"d\": {}{}, \"n\": 1}}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(too_deep.as_bytes(), &s).is_err(), "refused, not a stack overflow");
        let mixed = br#"{"d": {"a": [1, {"b": [true, false, null, "x\"y", -0.5e+3]}], "c": {}}, "n": [] }"#;
        assert_eq!(parse(mixed, &s).unwrap(), json!({"n": []}));
        for bad in [
            &br#"{"d": [1,], "n": 1}"#[..],
            br#"{"d": {"a" 1}, "n": 1}"#,
            br#"{"d": 01, "n": 1}"#,
            br#"{"d": "\x", "n": 1}"#,
            br#"{"d": [}, "n": 1}"#,
            br#"{"d": [1}, "n": 1}"#,
            br#"{"d": {"a": 1], "n": 1}"#,
            br#"{"d": [[1], {"a": 2]}, "n": 1}"#,
        ] {
            assert!(parse(bad, &s).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
