//! Which parts of a backend answer an endpoint can ever read (its "shape"), computed once from the
//! expressions, so the answer is parsed into only those parts.
//!
//! Parsing a backend body into a JSON tree is the largest cost of a composed request; most of a
//! typical answer (descriptions, image sets, tags) is never read. A shape keeps, for objects,
//! only the fields some path names, and for arrays every element (so lengths and indexes stay
//! right) reduced to what the paths read below them. Anything read whole — a path that ends at a
//! node, a filter, `..`, a bare `@`, a call that is cached, deduplicated or attached — keeps that
//! node whole, so results are identical to a full parse.

use super::expr::{Expr, Part, PathExpr, RootRef, Step};
use super::Call;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

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
    },
}

impl Shape {
    fn empty() -> Shape {
        Shape::Pick {
            fields: Vec::new(),
            items: None,
        }
    }

    /// Makes sure everything reachable by `steps` is kept, and the node at the end whole.
    fn add(&mut self, steps: &[Step]) {
        let Shape::Pick { fields, items } = self else { return };
        match steps.split_first() {
            None => *self = Shape::All,
            Some((Step::Name(n), rest)) => field(fields, n).add(rest),
            Some((Step::Index(_), rest)) => items.get_or_insert_with(|| Box::new(Shape::empty())).add(rest),
            Some((Step::Wildcard, rest)) => {
                items.get_or_insert_with(|| Box::new(Shape::empty())).add(rest);
                // `.*` on an object reads every member: keep them all, whole.
                *field(fields, EVERY_FIELD) = Shape::All;
            }
        }
    }

    /// Makes sure the nodes along `steps` are kept, without keeping the last one whole: an `each`
    /// walks that array, and what its items need is added by the paths inside it.
    fn touch(&mut self, steps: &[Step]) {
        let Shape::Pick { fields, items } = self else { return };
        match steps.split_first() {
            None => {
                items.get_or_insert_with(|| Box::new(Shape::empty()));
            }
            Some((Step::Name(n), rest)) => field(fields, n).touch(rest),
            Some((Step::Index(_), rest)) => items.get_or_insert_with(|| Box::new(Shape::empty())).touch(rest),
            Some((Step::Wildcard, rest)) => {
                items.get_or_insert_with(|| Box::new(Shape::empty())).touch(rest);
                *field(fields, EVERY_FIELD) = Shape::All;
            }
        }
    }
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
            Expr::Path(p) => self.path(p, &ctx),
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

    fn path(&mut self, p: &PathExpr, ctx: &Ctx) {
        if p.relative {
            let Some((call, prefix, direct)) = ctx else { return };
            match &p.steps {
                Some(steps) => {
                    let mut full = prefix.clone();
                    full.push(Step::Index(0));
                    full.extend(steps.iter().cloned());
                    self.shapes[*call].add(&full);
                    if *direct {
                        let mut full = prefix.clone();
                        full.extend(steps.iter().cloned());
                        self.shapes[*call].add(&full);
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
                        Some([Step::Name(first), rest @ ..]) if *first == n => self.shapes[call].add(rest),
                        // A filter, `..` or a reference inside a filter: keep the call whole.
                        _ => self.shapes[call] = Shape::All,
                    }
                }
            }
        }
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

/// Parses JSON text, keeping only what `shape` says.
pub struct ShapedSeed<'s>(pub &'s Shape);

impl<'de> DeserializeSeed<'de> for ShapedSeed<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        match self.0 {
            Shape::All => serde::Deserialize::deserialize(d),
            pick => d.deserialize_any(ShapedVisitor(pick)),
        }
    }
}

struct ShapedVisitor<'s>(&'s Shape);

impl<'de> Visitor<'de> for ShapedVisitor<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v)
            .map(Value::Number)
            .unwrap_or(Value::Null))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let items = match self.0 {
            Shape::Pick { items, .. } => items.as_deref(),
            Shape::All => None,
        };
        let mut out = Vec::new();
        match items {
            Some(shape) => {
                while let Some(v) = seq.next_element_seed(ShapedSeed(shape))? {
                    out.push(v);
                }
            }
            None => {
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    out.push(Value::Null);
                }
            }
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let Shape::Pick { fields, .. } = self.0 else {
            return Ok(Value::Null);
        };
        let keep_all = fields.iter().any(|(k, _)| k == EVERY_FIELD);
        let mut out = Map::new();
        // Keys are borrowed from the input: a skipped member costs no allocation.
        while let Some(key) = map.next_key_seed(KeySeed)? {
            if keep_all {
                let v = map.next_value::<Value>()?;
                out.insert(key.into_owned(), v);
                continue;
            }
            match fields.iter().find(|(k, _)| k == key.as_ref()) {
                Some((_, shape)) => {
                    let v = map.next_value_seed(ShapedSeed(shape))?;
                    out.insert(key.into_owned(), v);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }
}

/// Reads an object key without copying it when the input allows.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = std::borrow::Cow<'de, str>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = std::borrow::Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Owned(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Owned(v))
    }
}

/// Parses `bytes` as JSON, keeping what `shape` says.
///
/// The body's UTF-8 is checked once, whole: read from a slice, serde_json checks every string it
/// keeps on its own, and those checks of a few hundred short strings cost more than one pass
/// over the body (measured: 4 % of a composed request).
pub fn parse(bytes: &[u8], shape: &Shape) -> Result<Value, serde_json::Error> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        // Not UTF-8 throughout: serde_json checks what it keeps (its error has the position)
        // and skips the rest unchecked, as before.
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let v = ShapedSeed(shape).deserialize(&mut de)?;
        de.end()?;
        return Ok(v);
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let v = ShapedSeed(shape).deserialize(&mut de)?;
    de.end()?;
    Ok(v)
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
    fn keeps_only_what_paths_read() {
        let s = shape_of(&[
            &[Step::Index(0), Step::Name("id".into())],
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
            json!([{"id": 1, "images": [{"t": "x"}, {"t": "z"}]}, {"id": 2}])
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
    fn wildcard_on_objects_keeps_every_field() {
        let s = shape_of(&[&[Step::Name("o".into()), Step::Wildcard]]);
        assert_eq!(
            parse(br#"{"o": {"a": 1, "b": 2}}"#, &s).unwrap(),
            json!({"o": {"a": 1, "b": 2}})
        );
    }
}
