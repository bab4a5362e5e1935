//! The output type of every endpoint (SPEC §5, §4.4): what each response field holds, whether it
//! can be null, and which calls it needs. Computed once at load from the response projection and
//! the OpenAPI documents (`types.rs` infers it); the GraphQL schema, `facade openapi` and the
//! GraphQL executor's call pruning all read this one model.

use super::expr::{Expr, PathExpr, RootRef, Step};
use super::Call;
use crate::config::diag::Loc;

/// The type of a value the endpoint answers with.
#[derive(Debug, Clone, PartialEq)]
pub struct OutType {
    /// False only when the value can never be null.
    pub nullable: bool,
    /// What it is.
    pub kind: Kind,
    /// For an object written as a mapping of the composition: it has exactly its fields, every
    /// one always present. False for an object typed from an OpenAPI document, whose value is
    /// the backend's own (REST passes it on whole, so it may hold more, or omit optional ones).
    pub exact: bool,
}

/// The shape of an output value.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A leaf.
    Leaf(Leaf),
    /// An object with these fields, in written order.
    Object(Vec<OutField>),
    /// A list of these.
    List(Box<OutType>),
}

/// Leaf types (GraphQL's built-in scalars and `JSON`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaf {
    /// A 32-bit signed integer.
    Int,
    /// A double.
    Float,
    /// A string.
    String,
    /// `true` or `false`.
    Boolean,
    /// Anything (untyped, a map, `oneOf`/`anyOf`).
    Json,
}

impl Leaf {
    /// The GraphQL name of the scalar.
    pub fn graphql_name(self) -> &'static str {
        match self {
            Leaf::Int => "Int",
            Leaf::Float => "Float",
            Leaf::String => "String",
            Leaf::Boolean => "Boolean",
            Leaf::Json => "JSON",
        }
    }

    /// Whether a JSON value fits the scalar (null is checked by the caller).
    pub fn accepts(self, v: &serde_json::Value) -> bool {
        match self {
            Leaf::Int => v.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
            Leaf::Float => v.is_number(),
            Leaf::String => v.is_string(),
            Leaf::Boolean => v.is_boolean(),
            Leaf::Json => true,
        }
    }
}

/// A field of an output object.
#[derive(Debug, Clone, PartialEq)]
pub struct OutField {
    /// The name as written (or the OpenAPI property's name).
    pub name: String,
    /// Its type.
    pub ty: OutType,
    /// Where it was written (for an OpenAPI-typed property: where the path reading it was).
    pub loc: Loc,
    /// Indexes of the calls this field's own expression reads (its children's needs are theirs),
    /// `attach` included; not yet closed over dependencies.
    pub needs: Vec<usize>,
}

impl OutType {
    /// A non-null type.
    pub fn non_null(kind: Kind) -> OutType {
        OutType {
            nullable: false,
            kind,
            exact: false,
        }
    }

    /// A nullable type.
    pub fn nullable(kind: Kind) -> OutType {
        OutType {
            nullable: true,
            kind,
            exact: false,
        }
    }

    /// A nullable leaf.
    pub fn leaf(leaf: Leaf) -> OutType {
        OutType::nullable(Kind::Leaf(leaf))
    }

    /// The same type, nullable.
    pub fn or_null(mut self) -> OutType {
        self.nullable = true;
        self
    }

    /// The fields, when this is an object.
    pub fn fields(&self) -> Option<&[OutField]> {
        match &self.kind {
            Kind::Object(f) => Some(f),
            _ => None,
        }
    }

    /// The object below any lists (`[T!]!` → T).
    pub fn innermost(&self) -> &OutType {
        match &self.kind {
            Kind::List(inner) => inner.innermost(),
            _ => self,
        }
    }

    /// One type for values that may be any of `types`: the same leaf or list stays, anything
    /// else becomes `JSON`; non-null only when every one is.
    pub fn unify(types: &[OutType]) -> OutType {
        let Some(first) = types.first() else {
            return OutType::leaf(Leaf::Json);
        };
        let nullable = types.iter().any(|t| t.nullable);
        let same_leaf = types.iter().all(|t| match (&t.kind, &first.kind) {
            (Kind::Leaf(a), Kind::Leaf(b)) => a == b,
            _ => false,
        });
        let kind = if same_leaf {
            first.kind.clone()
        } else if types.iter().all(|t| {
            matches!(
                (&t.kind, &first.kind),
                (Kind::Leaf(Leaf::Int | Leaf::Float), Kind::Leaf(Leaf::Int | Leaf::Float))
            )
        }) {
            Kind::Leaf(Leaf::Float)
        } else {
            Kind::Leaf(Leaf::Json)
        };
        OutType {
            nullable,
            kind,
            exact: false,
        }
    }
}

/// The calls an expression reads itself (nested mappings and `each` fields excluded: they are
/// fields of their own), `attach` included. `item` is the simple absolute path that `@` stands
/// for, when known.
pub fn own_needs(e: &Expr, item: Option<&[Step]>, calls: &[Call]) -> Vec<usize> {
    let mut out = Vec::new();
    own_needs_into(e, item, calls, &mut out);
    out.sort_unstable();
    out.dedup();
    out
}

fn own_needs_into(e: &Expr, item: Option<&[Step]>, calls: &[Call], out: &mut Vec<usize>) {
    match e {
        Expr::Object(_) => {}
        // The items are handed to the fields, whose own needs say what of them is read (an
        // attached field included); walking the array itself reads only its roots.
        Expr::Each { over, .. } => {
            let mut paths = Vec::new();
            over.visit_paths(&mut |p| paths.push(p));
            for p in paths {
                roots_into(p, calls, out);
            }
        }
        Expr::Item => {
            // The whole item: every call attached anywhere below it.
            attached_under(item, calls, out);
        }
        Expr::Path(p) => path_needs(p, item, calls, out),
        Expr::Literal(_) => {}
        Expr::Template(_) | Expr::Func(..) | Expr::Array(_) => {
            let mut paths = Vec::new();
            e.visit_paths(&mut |p| paths.push(p));
            for p in paths {
                path_needs(p, item, calls, out);
            }
            if contains_item(e) {
                attached_under(item, calls, out);
            }
        }
    }
}

fn contains_item(e: &Expr) -> bool {
    match e {
        Expr::Item => true,
        Expr::Template(parts) => parts.iter().any(|p| match p {
            super::expr::Part::Expr(e) => contains_item(e),
            super::expr::Part::Text(_) => false,
        }),
        Expr::Func(_, args) | Expr::Array(args) => args.iter().any(contains_item),
        _ => false,
    }
}

/// The absolute simple steps `@` stands for inside an `each` over `over`, when they are known.
pub fn item_steps(over: &Expr, item: Option<&[Step]>) -> Option<Vec<Step>> {
    let Expr::Path(p) = over else { return None };
    let steps = p.walk_steps()?;
    if p.relative {
        let mut base = item?.to_vec();
        base.extend(steps);
        Some(base)
    } else {
        Some(steps)
    }
}

fn roots_into(p: &PathExpr, calls: &[Call], out: &mut Vec<usize>) {
    for r in p.roots() {
        match r {
            RootRef::Name(n) => {
                if let Some(i) = calls.iter().position(|c| c.name == n) {
                    out.push(i);
                }
            }
            RootRef::All => out.extend(0..calls.len()),
        }
    }
}

fn path_needs(p: &PathExpr, item: Option<&[Step]>, calls: &[Call], out: &mut Vec<usize>) {
    roots_into(p, calls, out);
    // A path into an `each` call's attached field needs that call, though it names another.
    let effective: Option<Vec<Step>> = match (&p.steps, p.relative) {
        (Some(s), false) => Some(s.clone()),
        (Some(s), true) => item.map(|i| {
            let mut v = i.to_vec();
            v.extend(s.iter().cloned());
            v
        }),
        (None, _) => None,
    };
    match effective {
        Some(steps) => attached_along(&steps, calls, out),
        // A filter or `..`: anything below its root may be read.
        None => {
            if p.relative {
                attached_under(item, calls, out)
            } else {
                for r in p.roots() {
                    if let RootRef::Name(n) = r {
                        attached_under(Some(&[Step::Name(n)]), calls, out);
                    } else {
                        attached_under(None, calls, out);
                    }
                }
            }
        }
    }
}

/// Every call attached at or below `base` (`None`: anywhere).
fn attached_under(base: Option<&[Step]>, calls: &[Call], out: &mut Vec<usize>) {
    for (i, c) in calls.iter().enumerate() {
        if let Some((_, source)) = c.each.as_ref().and_then(|e| e.attach.as_ref()) {
            let hit = match base {
                None => true,
                Some(b) => compatible(b, source) || compatible(source, b),
            };
            if hit {
                out.push(i);
            }
        }
    }
}

/// Every call whose attached field the simple path `steps` may read.
fn attached_along(steps: &[Step], calls: &[Call], out: &mut Vec<usize>) {
    for (i, c) in calls.iter().enumerate() {
        let Some((field, source)) = c.each.as_ref().and_then(|e| e.attach.as_ref()) else {
            continue;
        };
        if !compatible(steps, source) {
            continue;
        }
        let hit = match steps.get(source.len()) {
            // The path stops at or above the items: it reads them whole, attached field included.
            None => true,
            Some(Step::Name(n)) => n == field,
            Some(Step::Wildcard) => true,
            Some(Step::Index(_)) => false,
        };
        if hit {
            out.push(i);
        }
    }
}

/// Whether two simple paths can meet on their common length.
fn compatible(a: &[Step], b: &[Step]) -> bool {
    a.iter().zip(b).all(|(x, y)| match (x, y) {
        (Step::Name(m), Step::Name(n)) => m == n,
        (Step::Name(_), _) | (_, Step::Name(_)) => false,
        (Step::Index(m), Step::Index(n)) => m == n,
        _ => true,
    })
}

/// Adds every call that the calls in `set` wait for, transitively.
pub fn close_over_deps(set: &mut [bool], calls: &[Call]) {
    let mut stack: Vec<usize> = set.iter().enumerate().filter(|(_, b)| **b).map(|(i, _)| i).collect();
    while let Some(i) = stack.pop() {
        for &d in &calls[i].deps {
            if !set[d] {
                set[d] = true;
                stack.push(d);
            }
        }
    }
}
