//! The expression language of compositions (SPEC §4.1), parsed once at load.
//!
//! Owns the reading order of a string (path, function, template, literal), the mapping forms
//! (`each`, `const`, nested objects) and the questions the compiler asks of an expression (which
//! calls does it read?). Evaluation lives in `exec::eval`; this module does no I/O.

use crate::config::yaml::{resolve_plain, CoreScalar, Node, NodeKind};
use jsonpath_rust::parser::model::{Filter, JpQuery, Segment, Selector};
use serde_json::Value;
use std::fmt;

/// A parsed expression.
#[derive(Debug, Clone)]
pub enum Expr {
    /// A literal value.
    Literal(Value),
    /// A JSONPath from the document root (`$`) or the current item (`@`).
    Path(Box<PathExpr>),
    /// The whole current item: a bare `@` inside `each`.
    Item,
    /// A string with `{expr}` parts filled in.
    Template(Vec<Part>),
    /// A function call.
    Func(Func, Vec<Expr>),
    /// An array built element by element.
    Array(Vec<Expr>),
    /// An object built field by field, in written order.
    Object(Vec<(String, Expr)>),
    /// One value per item of an array, with `@` bound to the item.
    Each {
        /// The array to walk.
        over: Box<Expr>,
        /// What to build for each item.
        item: Box<Expr>,
    },
}

/// One piece of a template.
#[derive(Debug, Clone)]
pub enum Part {
    /// Literal text (`{{` and `}}` already turned into braces).
    Text(String),
    /// A `{…}` part.
    Expr(Expr),
}

/// The built-in functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// `length(e)`: items of an array, characters of a string, keys of an object; null for null.
    Length,
    /// `first(e)`: the first item of an array (null when empty).
    First,
    /// `coalesce(e1, e2, …)`: the first value that is not null.
    Coalesce,
    /// `join(e, sep)`: the items of an array rendered and joined.
    Join,
    /// `sum(e)`: the sum of the numbers of an array.
    Sum,
}

impl Func {
    const ALL: [Func; 5] = [Func::Length, Func::First, Func::Coalesce, Func::Join, Func::Sum];
    const NAMES: [&'static str; 5] = [
        Func::Length.name(),
        Func::First.name(),
        Func::Coalesce.name(),
        Func::Join.name(),
        Func::Sum.name(),
    ];

    fn from_name(name: &str) -> Option<Func> {
        Func::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The name as written in compositions.
    pub const fn name(self) -> &'static str {
        match self {
            Func::Length => "length",
            Func::First => "first",
            Func::Coalesce => "coalesce",
            Func::Join => "join",
            Func::Sum => "sum",
        }
    }

    fn arity(self) -> (usize, usize) {
        match self {
            Func::Length | Func::First | Func::Sum => (1, 1),
            Func::Coalesce => (1, usize::MAX),
            Func::Join => (1, 2),
        }
    }
}

/// A parsed JSONPath.
#[derive(Debug, Clone)]
pub struct PathExpr {
    /// True for `@` paths (from the current item).
    pub relative: bool,
    /// The text as written.
    pub text: String,
    /// The RFC 9535 query (with `@` read as `$`).
    pub query: JpQuery,
    /// The same path as simple steps, when it has only names, indexes and wildcards: walked
    /// without jsonpath-rust's per-step bookkeeping, with identical results.
    pub steps: Option<Vec<Step>>,
    /// True when the path selects at most one node: it then gives a value or null, else an array.
    pub singular: bool,
    /// Where the expression holding this path was written.
    pub loc: crate::config::diag::Loc,
}

/// One step of a simple path.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// `.name` or `['name']`.
    Name(String),
    /// `[3]` or `[-1]`.
    Index(i64),
    /// `[*]` or `.*`.
    Wildcard,
}

/// Why an expression could not be read.
#[derive(Debug, Clone, PartialEq)]
pub struct ExprError {
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
    /// The node the error belongs to (its location).
    pub at: crate::config::diag::Loc,
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)
    }
}

/// Where an expression is read: decides whether `@` is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    /// True inside `each` (fields of a response `each`, or the parts of an `each` call).
    pub in_each: bool,
}

/// Parses a located node (a leaf, sequence or mapping) into an expression.
pub fn parse_node(node: &Node, scope: Scope, errors: &mut Vec<ExprError>) -> Expr {
    match &node.kind {
        NodeKind::Scalar { text, plain, .. } => {
            if *plain {
                match resolve_plain(text) {
                    CoreScalar::Null => return Expr::Literal(Value::Null),
                    CoreScalar::Bool(b) => return Expr::Literal(Value::Bool(b)),
                    CoreScalar::Int(i) => return Expr::Literal(Value::from(i)),
                    CoreScalar::Float(f) => {
                        return Expr::Literal(
                            serde_json::Number::from_f64(f)
                                .map(Value::Number)
                                .unwrap_or(Value::Null),
                        )
                    }
                    CoreScalar::Str(_) => {}
                }
            }
            match parse_str(text, scope) {
                Ok(mut e) => {
                    e.set_loc(node.loc);
                    e
                }
                Err((message, hint)) => {
                    errors.push(ExprError {
                        message,
                        hint,
                        at: node.loc,
                    });
                    Expr::Literal(Value::Null)
                }
            }
        }
        NodeKind::Seq(items) => Expr::Array(items.iter().map(|n| parse_node(n, scope, errors)).collect()),
        NodeKind::Map(entries) => {
            let keys: Vec<&str> = entries.iter().filter_map(|(k, _)| k.as_scalar()).collect();
            if keys.len() == 1 && keys[0] == "const" {
                return Expr::Literal(entries[0].1.to_json());
            }
            if keys.len() > 2 && keys.contains(&"each") && keys.contains(&"fields") {
                let fields = entries.iter().find(|(k, _)| k.as_scalar() == Some("fields"));
                if let Some((k, _)) = fields.filter(|(_, v)| crate::config::read::is_empty_scalar(v)) {
                    let stray: Vec<&str> = keys
                        .iter()
                        .copied()
                        .filter(|k| *k != "each" && *k != "fields")
                        .collect();
                    errors.push(ExprError {
                        message: format!(
                            "`fields:` is empty, and `each` has other keys beside it: `{}`",
                            stray.join("`, `")
                        ),
                        hint: Some(
                            "the item's fields lost their indentation: indent them further than `fields:`".into(),
                        ),
                        at: k.loc,
                    });
                    return Expr::Literal(Value::Null);
                }
            }
            if keys.len() == 2 && keys.contains(&"each") && keys.contains(&"fields") {
                let get = |name: &str| {
                    entries
                        .iter()
                        .find(|(k, _)| k.as_scalar() == Some(name))
                        .map(|(_, v)| v)
                };
                let (Some(over), Some(fields)) = (get("each"), get("fields")) else {
                    return Expr::Literal(Value::Null);
                };
                let over = parse_node(over, scope, errors);
                if !matches!(fields.kind, NodeKind::Map(_)) {
                    errors.push(ExprError {
                        message: "`fields` of `each` must be a mapping of output fields".into(),
                        hint: None,
                        at: fields.loc,
                    });
                }
                let item = parse_node(fields, Scope { in_each: true }, errors);
                return Expr::Each {
                    over: Box::new(over),
                    item: Box::new(item),
                };
            }
            let mut fields = Vec::with_capacity(entries.len());
            for (k, v) in entries {
                let Some(key) = k.as_scalar() else {
                    errors.push(ExprError {
                        message: "field names must be strings".into(),
                        hint: None,
                        at: k.loc,
                    });
                    continue;
                };
                if key.starts_with('$') || key.starts_with('@') {
                    errors.push(ExprError {
                        message: format!("field name `{key}` starts with `{}`", &key[..1]),
                        hint: Some("this is usually a YAML quoting mistake: quote the whole expression, e.g. `x: \"coalesce($.a, $.b)\"`".into()),
                        at: k.loc,
                    });
                    continue;
                }
                if looks_like_split_tail(key) {
                    errors.push(ExprError {
                        message: format!(
                            "field name `{key}` looks like the end of an expression that YAML split at a comma"
                        ),
                        hint: Some(split_hint("coalesce")),
                        at: k.loc,
                    });
                    continue;
                }
                if fields.iter().any(|(f, _): &(String, Expr)| f == key) {
                    errors.push(ExprError {
                        message: format!("field `{key}` is written twice"),
                        hint: None,
                        at: k.loc,
                    });
                    continue;
                }
                let before = errors.len();
                fields.push((key.to_string(), parse_node(v, scope, errors)));
                // `{ each, fields, more }` is a nested object (SPEC §4.1), so `@` in its `fields`
                // is outside `each`: say why, which the bare message cannot.
                if key == "fields" && keys.contains(&"each") && !scope.in_each {
                    let others: Vec<&str> = keys
                        .iter()
                        .copied()
                        .filter(|k| *k != "each" && *k != "fields")
                        .collect();
                    for e in errors[before..]
                        .iter_mut()
                        .filter(|e| e.message.contains("not inside `each`"))
                    {
                        e.hint = Some(format!(
                            "this mapping has `{}` beside `each` and `fields`, so it is a nested object, not the `each` form: move it out",
                            others.join("`, `")
                        ));
                    }
                }
            }
            Expr::Object(fields)
        }
    }
}

type ParseResult<T> = Result<T, (String, Option<String>)>;

/// Reads a string in the order of SPEC §4.1: path, function call, template, literal.
pub fn parse_str(s: &str, scope: Scope) -> ParseResult<Expr> {
    if s.starts_with('$') || s.starts_with('@') {
        return parse_path_or_item(s, scope);
    }
    if let Some((name, args)) = split_call(s) {
        return parse_call(name, args, scope);
    }
    if let Some(name) = unclosed_call(s) {
        return Err((
            format!("`{s}` opens a call of `{name}(` that never closes"),
            Some(split_hint(name)),
        ));
    }
    if s.contains("{$") || s.contains("{@") {
        return parse_template(s, scope);
    }
    Ok(Expr::Literal(Value::String(s.to_string())))
}

fn parse_path_or_item(s: &str, scope: Scope) -> ParseResult<Expr> {
    if s.trim_end() == "@" {
        if !scope.in_each {
            return Err(("`@` is only meaningful inside `each`".into(), None));
        }
        return Ok(Expr::Item);
    }
    parse_path(s, scope).map(|p| Expr::Path(Box::new(p)))
}

/// Parses `$…` or `@…` as an RFC 9535 path.
pub fn parse_path(s: &str, scope: Scope) -> ParseResult<PathExpr> {
    let relative = s.starts_with('@');
    if relative && !scope.in_each {
        return Err((
            format!("`{s}` reads the current item, but this is not inside `each`"),
            Some("use a `$` path here".into()),
        ));
    }
    if s == "$" {
        return Err((
            "a bare `$` would expose every backend body and claim".into(),
            Some("name what you need (`$.user.name`), or write a literal as `{ const: \"$…\" }`".into()),
        ));
    }
    let text = if relative {
        format!("${}", &s[1..])
    } else {
        s.to_string()
    };
    // After its `$` a path goes on with `.` or `[`: anything else (`$5 off`, `${HOME}` from a
    // `$${HOME}`) was meant as text.
    let meant_as_text = !matches!(text.as_bytes().get(1), None | Some(b'.' | b'['));
    let hint = || {
        Some(if meant_as_text {
            "a string that starts with `$` or `@` is read as a path: for the text itself write `{ const: \"…\" }`"
                .to_string()
        } else {
            "paths look like `$.user.firstName`, `$.items[0].id`, `$.items[*].id`; quote names with other characters: `$['a-b']`"
                .to_string()
        })
    };
    let query = jsonpath_rust::parser::parse_json_path(&text).map_err(|e| {
        (
            format!(
                "`{s}` is not a valid JSONPath (RFC 9535): {}",
                pest_detail(&e.to_string())
            ),
            hint(),
        )
    })?;
    // jsonpath-rust accepts `$.a b` as the name "a b"; RFC 9535's shorthand names cannot hold
    // blanks or punctuation, so such a path is refused here.
    if let Some(bad) = loose_shorthand(&text) {
        return Err((
            format!("`{s}` is not a valid JSONPath (RFC 9535): `{bad}` is not a member name"),
            Some(format!("quote it: `['{bad}']`")),
        ));
    }
    if let Err(problem) = well_typed(&query.segments) {
        return Err((
            format!("`{s}` is not a valid JSONPath (RFC 9535): {problem}"),
            Some("`length`, `count` and `value` give values to compare (`length(@.tags) > 2`); `length`, `match` and `search` take single values (`@.a`, not `@.*`); `count` and `value` take queries".into()),
        ));
    }
    let steps = simple_steps(&query);
    let singular = singular_segments(&query.segments);
    Ok(PathExpr {
        relative,
        text: s.to_string(),
        query,
        steps,
        singular,
        loc: Default::default(),
    })
}

/// RFC 9535 §2.4.3's well-typedness of function expressions, which jsonpath-rust's parser does
/// not check: a value-typed function (`length`, `count`, `value`) may not stand alone as a test,
/// `length`, `match` and `search` take values (a literal, a singular query or a value-typed
/// function), `count` and `value` take queries.
fn well_typed(segments: &[Segment]) -> Result<(), String> {
    use jsonpath_rust::parser::model::{Comparable, FilterAtom, FnArg, Test, TestFunction};
    fn segment(seg: &Segment) -> Result<(), String> {
        match seg {
            Segment::Descendant(inner) => segment(inner),
            Segment::Selector(s) => selector(s),
            Segment::Selectors(list) => list.iter().try_for_each(selector),
        }
    }
    fn selector(s: &Selector) -> Result<(), String> {
        match s {
            Selector::Filter(f) => filter(f),
            _ => Ok(()),
        }
    }
    fn filter(f: &Filter) -> Result<(), String> {
        match f {
            Filter::Or(parts) | Filter::And(parts) => parts.iter().try_for_each(filter),
            Filter::Atom(FilterAtom::Filter { expr, .. }) => filter(expr),
            Filter::Atom(FilterAtom::Test { expr, .. }) => match &**expr {
                Test::Function(func) => match &**func {
                    TestFunction::Match(..) | TestFunction::Search(..) => function(func),
                    other => Err(format!("the result of `{}` must be compared", name(other))),
                },
                query => test_query(query),
            },
            Filter::Atom(FilterAtom::Comparison(c)) => {
                let (l, r) = c.vals();
                [l, r].into_iter().try_for_each(|side| match side {
                    Comparable::Function(func) => match func {
                        TestFunction::Length(_) | TestFunction::Count(_) | TestFunction::Value(_) => function(func),
                        other => Err(format!(
                            "`{}` gives true or false, which cannot be compared",
                            name(other)
                        )),
                    },
                    _ => Ok(()),
                })
            }
        }
    }
    fn test_query(t: &Test) -> Result<(), String> {
        match t {
            Test::RelQuery(segs) => segs.iter().try_for_each(segment),
            Test::AbsQuery(q) => q.segments.iter().try_for_each(segment),
            Test::Function(func) => function(func),
        }
    }
    fn name(f: &TestFunction) -> String {
        match f {
            TestFunction::Custom(n, _) => n.clone(),
            TestFunction::Length(_) => "length".into(),
            TestFunction::Value(_) => "value".into(),
            TestFunction::Count(_) => "count".into(),
            TestFunction::Search(..) => "search".into(),
            TestFunction::Match(..) => "match".into(),
        }
    }
    fn function(f: &TestFunction) -> Result<(), String> {
        match f {
            TestFunction::Custom(n, _) => Err(format!("unknown function `{n}`")),
            TestFunction::Length(a) => value_arg(a, "length"),
            TestFunction::Count(a) | TestFunction::Value(a) => nodes_arg(a, &name(f)),
            TestFunction::Match(a, b) | TestFunction::Search(a, b) => {
                value_arg(a, &name(f))?;
                value_arg(b, &name(f))
            }
        }
    }
    fn value_arg(a: &FnArg, of: &str) -> Result<(), String> {
        match a {
            FnArg::Literal(_) => Ok(()),
            FnArg::Filter(_) => Err(format!("`{of}` takes a value, not a logical expression")),
            FnArg::Test(t) => match &**t {
                Test::Function(func) => match &**func {
                    TestFunction::Length(_) | TestFunction::Count(_) | TestFunction::Value(_) => function(func),
                    other => Err(format!("`{of}` takes a value, not the result of `{}`", name(other))),
                },
                Test::RelQuery(segs) if singular_segments(segs) => segs.iter().try_for_each(segment),
                Test::AbsQuery(q) if singular_segments(&q.segments) => q.segments.iter().try_for_each(segment),
                _ => Err(format!(
                    "`{of}` takes a single value, and this query can select several nodes"
                )),
            },
        }
    }
    fn nodes_arg(a: &FnArg, of: &str) -> Result<(), String> {
        match a {
            FnArg::Test(t) if !matches!(&**t, Test::Function(_)) => test_query(t),
            _ => Err(format!("`{of}` takes a query")),
        }
    }
    segments.iter().try_for_each(segment)
}

/// True when every segment selects at most one node (names and indexes only).
fn singular_segments(segments: &[Segment]) -> bool {
    segments.iter().all(|seg| {
        matches!(seg, Segment::Selector(Selector::Name(_)) | Segment::Selector(Selector::Index(_)))
            || matches!(seg, Segment::Selectors(v) if v.len() == 1 && matches!(v[0], Selector::Name(_) | Selector::Index(_)))
    })
}

/// "expected selector at character 7" from jsonpath-rust's (pest's) multi-line message.
fn pest_detail(message: &str) -> String {
    let at = message
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|col| col.trim().parse::<usize>().ok());
    let expected = message
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("= "))
        .unwrap_or("unexpected text")
        .replace('_', " ");
    match at {
        Some(col) => format!("{expected} at character {col}"),
        None => expected,
    }
}

/// The first `.name` shorthand of the path text that RFC 9535 does not allow (its names hold only
/// letters, digits, `_` and non-ASCII characters, and do not start with a digit).
fn loose_shorthand(text: &str) -> Option<String> {
    let ok = |n: &str| {
        let mut chars = n.chars();
        n == "*"
            || chars
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_' || !c.is_ascii())
                && chars.all(|c| c.is_alphanumeric() || c == '_' || !c.is_ascii())
    };
    let mut depth = 0i32;
    let mut name: Option<String> = None;
    let check = |name: &mut Option<String>| -> Option<String> {
        let n = name.take()?;
        let n = n.trim_end();
        (!n.is_empty() && !ok(n)).then(|| n.to_string())
    };
    for (_, c) in outside_quotes(text) {
        match c {
            '[' => {
                if depth == 0 {
                    if let Some(bad) = check(&mut name) {
                        return Some(bad);
                    }
                }
                depth += 1;
            }
            ']' => depth -= 1,
            '.' if depth == 0 => {
                if let Some(bad) = check(&mut name) {
                    return Some(bad);
                }
                name = Some(String::new());
            }
            _ if depth == 0 => {
                if let Some(n) = name.as_mut() {
                    n.push(c);
                }
            }
            _ => {}
        }
    }
    check(&mut name)
}

fn simple_steps(q: &JpQuery) -> Option<Vec<Step>> {
    let mut out = Vec::with_capacity(q.segments.len());
    for seg in &q.segments {
        let sel = match seg {
            Segment::Selector(s) => s,
            Segment::Selectors(v) if v.len() == 1 => &v[0],
            _ => return None,
        };
        out.push(match sel {
            Selector::Name(n) => Step::Name(unquote_name(n)),
            Selector::Index(i) => Step::Index(*i),
            Selector::Wildcard => Step::Wildcard,
            _ => return None,
        });
    }
    Some(out)
}

/// The path as the type checker follows it: names, and one element step for every segment that
/// picks array elements (indexes, wildcards, slices, filters, or several of them), so that
/// `$.book.editions[?@.year > 2000].isbn` is typed and checked like `$.book.editions[*].isbn`.
/// `None` for what has no single element type: a descendant segment, several names at once.
pub fn typing_steps(segments: &[Segment]) -> Option<Vec<Step>> {
    let elements = |sel: &Selector| {
        matches!(
            sel,
            Selector::Index(_) | Selector::Wildcard | Selector::Slice(..) | Selector::Filter(_)
        )
    };
    let mut out = Vec::with_capacity(segments.len());
    for seg in segments {
        let selectors: &[Selector] = match seg {
            Segment::Selector(s) => std::slice::from_ref(s),
            Segment::Selectors(v) => v,
            Segment::Descendant(_) => return None,
        };
        out.push(match selectors {
            [Selector::Name(n)] => Step::Name(unquote_name(n)),
            [_, ..] if selectors.iter().all(elements) => Step::Wildcard,
            _ => return None,
        });
    }
    Some(out)
}

/// The paths a filter reads, as simple steps: `@` paths (from the item it tests) and `$` paths
/// (from the document). Paths inside a nested filter count as that filter's, not this one's.
#[derive(Default)]
struct FilterPaths {
    relative: Vec<Vec<Step>>,
    absolute: Vec<Vec<Step>>,
    /// Comparisons of an `@` path with a literal.
    compared: Vec<Compared>,
}

/// A filter's comparison of a singular `@` path with a literal (`@.year == '2000'`), whose types
/// the document may say can never meet.
#[derive(Debug, Clone)]
pub struct Compared {
    /// The `@` path.
    pub steps: Vec<Step>,
    /// The operator as written (`==`).
    pub op: &'static str,
    /// The literal's JSON type (`string`, `number`, `boolean`).
    pub literal: &'static str,
    /// The literal as written in JSON (`"2000"`).
    pub text: String,
}

impl FilterPaths {
    fn of(f: &Filter) -> FilterPaths {
        let mut paths = FilterPaths::default();
        paths.filter(f);
        paths
    }

    fn filter(&mut self, f: &Filter) {
        use jsonpath_rust::parser::model::{Comparable, FilterAtom, SingularQuery, SingularQuerySegment};
        let singular = |segs: &[SingularQuerySegment]| -> Vec<Step> {
            segs.iter()
                .map(|s| match s {
                    SingularQuerySegment::Name(n) => Step::Name(unquote_name(n)),
                    SingularQuerySegment::Index(i) => Step::Index(*i),
                })
                .collect()
        };
        match f {
            Filter::Or(v) | Filter::And(v) => v.iter().for_each(|f| self.filter(f)),
            Filter::Atom(FilterAtom::Filter { expr, .. }) => self.filter(expr),
            Filter::Atom(FilterAtom::Test { expr, .. }) => self.test(expr),
            Filter::Atom(FilterAtom::Comparison(c)) => {
                use jsonpath_rust::parser::model::{Comparison, Literal};
                let (a, b) = c.vals();
                let op = match &**c {
                    Comparison::Eq(..) => "==",
                    Comparison::Ne(..) => "!=",
                    Comparison::Gt(..) => ">",
                    Comparison::Gte(..) => ">=",
                    Comparison::Lt(..) => "<",
                    Comparison::Lte(..) => "<=",
                };
                let pair = match (a, b) {
                    (Comparable::SingularQuery(SingularQuery::Current(segs)), Comparable::Literal(l))
                    | (Comparable::Literal(l), Comparable::SingularQuery(SingularQuery::Current(segs))) => {
                        Some((segs, l))
                    }
                    _ => None,
                };
                if let Some((segs, literal)) = pair {
                    let (kind, text) = match literal {
                        Literal::Int(i) => (Some("number"), i.to_string()),
                        Literal::Float(f) => (Some("number"), f.to_string()),
                        Literal::String(t) => (Some("string"), Value::String(t.clone()).to_string()),
                        Literal::Bool(b) => (Some("boolean"), b.to_string()),
                        Literal::Null => (None, String::new()),
                    };
                    if let Some(kind) = kind {
                        self.compared.push(Compared {
                            steps: singular(segs),
                            op,
                            literal: kind,
                            text,
                        });
                    }
                }
                for side in [a, b] {
                    match side {
                        Comparable::SingularQuery(SingularQuery::Current(segs)) => self.relative.push(singular(segs)),
                        Comparable::SingularQuery(SingularQuery::Root(segs)) => self.absolute.push(singular(segs)),
                        Comparable::Function(f) => self.function(f),
                        Comparable::Literal(_) => {}
                    }
                }
            }
        }
    }

    fn test(&mut self, t: &jsonpath_rust::parser::model::Test) {
        use jsonpath_rust::parser::model::Test;
        match t {
            Test::RelQuery(segs) => self.relative.extend(typing_steps(segs)),
            Test::AbsQuery(q) => self.absolute.extend(typing_steps(&q.segments)),
            Test::Function(f) => self.function(f),
        }
    }

    fn function(&mut self, f: &jsonpath_rust::parser::model::TestFunction) {
        use jsonpath_rust::parser::model::{FnArg, TestFunction};
        let args: Vec<&FnArg> = match f {
            TestFunction::Custom(_, args) => args.iter().collect(),
            TestFunction::Length(a) => vec![&**a],
            TestFunction::Value(a) | TestFunction::Count(a) => vec![a],
            TestFunction::Search(a, b) | TestFunction::Match(a, b) => vec![a, b],
        };
        for a in args {
            match a {
                FnArg::Test(t) => self.test(t),
                FnArg::Filter(f) => self.filter(f),
                FnArg::Literal(_) => {}
            }
        }
    }
}

/// Every filter selector of `segments`, nested ones included, with the index of its segment at
/// the top level (`None` below a descendant segment or inside another filter).
fn filters<'q>(segments: &'q [Segment], top: bool, out: &mut Vec<(Option<usize>, &'q Filter)>) {
    for (i, seg) in segments.iter().enumerate() {
        let (selectors, at): (&[Selector], Option<usize>) = match seg {
            Segment::Selector(s) => (std::slice::from_ref(s), top.then_some(i)),
            Segment::Selectors(v) => (v, top.then_some(i)),
            Segment::Descendant(inner) => {
                filters(std::slice::from_ref(&**inner), false, out);
                continue;
            }
        };
        for sel in selectors {
            if let Selector::Filter(f) = sel {
                out.push((at, f));
                nested_filters(f, out);
            }
        }
    }
}

/// The filters inside the queries a filter tests (`[?@.a[?@.b]]`).
fn nested_filters<'q>(f: &'q Filter, out: &mut Vec<(Option<usize>, &'q Filter)>) {
    use jsonpath_rust::parser::model::{FilterAtom, Test};
    match f {
        Filter::Or(v) | Filter::And(v) => v.iter().for_each(|f| nested_filters(f, out)),
        Filter::Atom(FilterAtom::Filter { expr, .. }) => nested_filters(expr, out),
        Filter::Atom(FilterAtom::Test { expr, .. }) => match &**expr {
            Test::RelQuery(segs) => filters(segs, false, out),
            Test::AbsQuery(q) => filters(&q.segments, false, out),
            Test::Function(_) => {}
        },
        Filter::Atom(FilterAtom::Comparison(_)) => {}
    }
}

/// What the filters of a path read, for the checks at load.
#[derive(Debug, Default)]
pub struct FilterReads {
    /// The `@` paths (`@.year`) of the filters in top-level element segments, each with the index
    /// of its segment in `typing_steps(&q.segments)`: followed from the items the filter tests.
    /// Nested filters' `@` paths are not listed.
    pub tested: Vec<(usize, Vec<Step>)>,
    /// The `$` paths (`[?@.id == $.args.id]`), nested filters included: checked like any other
    /// path of the document (`$.args.x` must be a declared parameter).
    pub document: Vec<Vec<Step>>,
    /// The comparisons of an `@` path with a literal in those same top-level filters, with the
    /// index of their segment as in `tested`.
    pub compared: Vec<(usize, Compared)>,
}

/// The paths the filters of `q` read (nothing for a path without filters).
pub fn filter_reads(q: &JpQuery) -> FilterReads {
    let mut found = Vec::new();
    filters(&q.segments, true, &mut found);
    let mut reads = FilterReads::default();
    for (at, f) in found {
        let paths = FilterPaths::of(f);
        if let Some(at) = at {
            reads.tested.extend(paths.relative.into_iter().map(|p| (at, p)));
            reads.compared.extend(paths.compared.into_iter().map(|c| (at, c)));
        }
        reads.document.extend(paths.absolute);
    }
    reads
}

/// jsonpath-rust keeps bracketed names with their quotes (`'a-b'`); the walk needs the bare name.
fn unquote_name(n: &str) -> String {
    let b = n.as_bytes();
    if b.len() >= 2 && ((b[0] == b'\'' && b[b.len() - 1] == b'\'') || (b[0] == b'"' && b[b.len() - 1] == b'"')) {
        let inner = &n[1..n.len() - 1];
        if b[0] == b'"' {
            if let Ok(Value::String(s)) = serde_json::from_str::<Value>(n) {
                return s;
            }
        }
        return inner.replace("\\'", "'").replace("\\\\", "\\");
    }
    n.to_string()
}

/// The symptom of YAML splitting `{ x: coalesce($.a, 0) }` at its comma: a value that starts like a
/// function call (`coalesce($.a`) whose parentheses do not close. Returns the function's name.
fn unclosed_call(s: &str) -> Option<&str> {
    let open = s.find('(')?;
    let name = &s[..open];
    if !crate::config::composition::is_name(name) {
        return None;
    }
    (paren_balance(&s[open..]) > 0).then_some(name)
}

/// Opening minus closing parentheses outside quotes.
fn paren_balance(s: &str) -> i32 {
    outside_quotes(s)
        .map(|(_, c)| match c {
            '(' => 1,
            ')' => -1,
            _ => 0,
        })
        .sum()
}

/// A key such as `0)` or ` " / ")`: the part after the comma of a split function call.
fn looks_like_split_tail(key: &str) -> bool {
    paren_balance(key) < 0
}

/// The quoting advice for an expression that YAML split at a comma inside a flow mapping.
pub fn split_hint(name: &str) -> String {
    format!(
        "inside a flow mapping `{{ … }}` YAML splits a value at every comma: quote the whole expression, e.g. `x: \"{name}($.a, $.b)\"`"
    )
}

/// Recognises `name(…)` with a balanced closing parenthesis at the very end.
fn split_call(s: &str) -> Option<(&str, &str)> {
    let open = s.find('(')?;
    let name = &s[..open];
    if name.is_empty() || !crate::config::composition::is_name(name) || !s.ends_with(')') {
        return None;
    }
    let inner = &s[open + 1..s.len() - 1];
    // The parenthesis that closes at the end must match the first one.
    let mut depth = 0i32;
    for (_, c) in outside_quotes(inner) {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => {
                depth -= 1;
                if depth < 0 {
                    return None;
                }
            }
            _ => {}
        }
    }
    Some((name, inner))
}

fn parse_call(name: &str, args: &str, scope: Scope) -> ParseResult<Expr> {
    let Some(func) = Func::from_name(name) else {
        let hint = crate::config::diag::did_you_mean(name, Func::NAMES)
            .unwrap_or_else(|| format!("the functions are {}", Func::NAMES.join(", ")));
        return Err((format!("unknown function `{name}`"), Some(hint)));
    };
    let parts = split_top_level(args);
    let mut parsed = Vec::with_capacity(parts.len());
    for part in parts {
        let part = part.trim();
        if part.is_empty() {
            return Err((format!("`{name}(…)` has an empty argument"), None));
        }
        parsed.push(parse_argument(part, scope)?);
    }
    let (min, max) = func.arity();
    if parsed.len() < min || parsed.len() > max {
        let expected = if min == max {
            format!("{min}")
        } else if max == usize::MAX {
            format!("at least {min}")
        } else {
            format!("{min} to {max}")
        };
        let hint = (parsed.len() > max)
            .then(|| "is a comma inside an argument splitting it? Quote strings: `join($.tags, \", \")`".to_string());
        return Err((
            format!("`{name}` takes {expected} argument(s), found {}", parsed.len()),
            hint,
        ));
    }
    Ok(Expr::Func(func, parsed))
}

fn parse_argument(part: &str, scope: Scope) -> ParseResult<Expr> {
    if part.starts_with('$') || part.starts_with('@') {
        return parse_path_or_item(part, scope);
    }
    if let Some((name, inner)) = split_call(part) {
        return parse_call(name, inner, scope);
    }
    if let Ok(v) = serde_json::from_str::<Value>(part) {
        return Ok(Expr::Literal(v));
    }
    if part.len() >= 2 && part.starts_with('\'') && part.ends_with('\'') {
        return Ok(Expr::Literal(Value::String(part[1..part.len() - 1].to_string())));
    }
    Err((
        format!("function argument `{part}` is neither an expression nor a JSON literal"),
        Some(format!("write text as a JSON string: \"{part}\"")),
    ))
}

/// Splits at commas that are outside brackets, parentheses and quotes.
fn split_top_level(s: &str) -> Vec<&str> {
    if s.trim().is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in outside_quotes(s) {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn parse_template(s: &str, scope: Scope) -> ParseResult<Expr> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < s.len() {
        let c = bytes[i];
        if c == b'{' && bytes.get(i + 1) == Some(&b'{') {
            text.push('{');
            i += 2;
        } else if c == b'}' && bytes.get(i + 1) == Some(&b'}') {
            text.push('}');
            i += 2;
        } else if c == b'{' && matches!(bytes.get(i + 1), Some(b'$' | b'@')) {
            let end = part_end(&s[i + 1..]).ok_or_else(|| {
                (
                    format!("template part starting at `{}` is not closed with `}}`", &s[i..]),
                    Some("write a literal brace as `{{` or `}}`".into()),
                )
            })?;
            let inner = &s[i + 1..i + 1 + end];
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            parts.push(Part::Expr(parse_path_or_item(inner.trim(), scope)?));
            i += 1 + end + 1;
        } else {
            let ch = s[i..].chars().next().unwrap_or_default();
            text.push(ch);
            i += ch.len_utf8().max(1);
        }
    }
    if !text.is_empty() {
        parts.push(Part::Text(text));
    }
    Ok(Expr::Template(parts))
}

/// The index of the first `}` outside brackets and quotes.
fn part_end(s: &str) -> Option<usize> {
    let mut depth = 0i32;
    for (i, c) in outside_quotes(s) {
        match c {
            '[' | '(' => depth += 1,
            ']' | ')' => depth -= 1,
            '}' if depth <= 0 => return Some(i),
            _ => {}
        }
    }
    None
}

/// The characters of `s` that are outside single- or double-quoted strings (quotes included as
/// openers, backslash escapes honoured), with their byte offsets: the one scanner behind function
/// arguments, call parentheses and template parts.
fn outside_quotes(s: &str) -> impl Iterator<Item = (usize, char)> + '_ {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    s.char_indices().filter(move |&(_, c)| {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            return false;
        }
        if c == '"' || c == '\'' {
            quote = Some(c);
            return false;
        }
        true
    })
}

/// A name at the root of the document that an expression reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootRef {
    /// `$.name…`.
    Name(String),
    /// `$..x`, `$[*]` or similar: reads every call.
    All,
}

impl Expr {
    /// Visits every `$` path of the expression.
    pub fn visit_paths<'a>(&'a self, f: &mut dyn FnMut(&'a PathExpr)) {
        match self {
            Expr::Path(p) => f(p),
            Expr::Literal(_) | Expr::Item => {}
            Expr::Template(parts) => parts.iter().for_each(|p| {
                if let Part::Expr(e) = p {
                    e.visit_paths(f)
                }
            }),
            Expr::Func(_, args) | Expr::Array(args) => args.iter().for_each(|a| a.visit_paths(f)),
            Expr::Object(fields) => fields.iter().for_each(|(_, e)| e.visit_paths(f)),
            Expr::Each { over, item } => {
                over.visit_paths(f);
                item.visit_paths(f);
            }
        }
    }

    /// Records where the expression was written on every path inside it, for later diagnostics.
    pub fn set_loc(&mut self, loc: crate::config::diag::Loc) {
        self.visit_paths_mut(&mut |p| p.loc = loc);
    }

    /// Visits every path of the expression, mutably.
    fn visit_paths_mut(&mut self, f: &mut dyn FnMut(&mut PathExpr)) {
        match self {
            Expr::Path(p) => f(p),
            Expr::Literal(_) | Expr::Item => {}
            Expr::Template(parts) => parts.iter_mut().for_each(|p| {
                if let Part::Expr(e) = p {
                    e.visit_paths_mut(f)
                }
            }),
            Expr::Func(_, args) | Expr::Array(args) => args.iter_mut().for_each(|a| a.visit_paths_mut(f)),
            Expr::Object(fields) => fields.iter_mut().for_each(|(_, e)| e.visit_paths_mut(f)),
            Expr::Each { over, item } => {
                over.visit_paths_mut(f);
                item.visit_paths_mut(f);
            }
        }
    }

    /// The root names this expression reads (call names, `auth`, `args`).
    pub fn roots(&self) -> Vec<RootRef> {
        let mut out = Vec::new();
        self.visit_paths(&mut |p| {
            for r in p.roots() {
                if !out.contains(&r) {
                    out.push(r);
                }
            }
        });
        out
    }
}

impl PathExpr {
    /// The steps to the nodes it selects, filters and slices read as `[*]` (they select some of
    /// those nodes): where `attach` puts answers and what `@` stands for. `None` for `..` and
    /// several names in one segment.
    pub fn walk_steps(&self) -> Option<Vec<Step>> {
        self.steps.clone().or_else(|| typing_steps(&self.query.segments))
    }

    /// The root names the path reads: its first step for a `$` path, and any `$` paths inside filters.
    pub fn roots(&self) -> Vec<RootRef> {
        let mut out = Vec::new();
        if !self.relative {
            match self.query.segments.first() {
                Some(Segment::Selector(Selector::Name(n))) => out.push(RootRef::Name(unquote_name(n))),
                Some(Segment::Selectors(v)) if v.iter().all(|s| matches!(s, Selector::Name(_))) => {
                    for s in v {
                        if let Selector::Name(n) = s {
                            out.push(RootRef::Name(unquote_name(n)));
                        }
                    }
                }
                _ => out.push(RootRef::All),
            }
        }
        // `$` paths inside filters (`[?@.id == $.user.id]`).
        let text = &self.text;
        for (i, _) in text.match_indices('$').filter(|(i, _)| *i > 0) {
            let rest = &text[i + 1..];
            let name: String = if let Some(r) = rest.strip_prefix('.') {
                r.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
            } else if let Some(r) = rest.strip_prefix("['").or_else(|| rest.strip_prefix("[\"")) {
                r.chars().take_while(|c| *c != '\'' && *c != '"').collect()
            } else {
                continue;
            };
            if !name.is_empty() && !out.contains(&RootRef::Name(name.clone())) {
                out.push(RootRef::Name(name));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Expr {
        parse_str(s, Scope { in_each: true }).unwrap()
    }

    fn err(s: &str, in_each: bool) -> String {
        parse_str(s, Scope { in_each }).unwrap_err().0
    }

    #[test]
    fn reading_order() {
        assert!(matches!(p("$.a.b"), Expr::Path(_)));
        assert!(matches!(p("@.x"), Expr::Path(ref x) if x.relative));
        assert!(matches!(p("@"), Expr::Item));
        assert!(matches!(p("length($.a)"), Expr::Func(Func::Length, _)));
        assert!(matches!(p("Hi {$.a}"), Expr::Template(_)));
        assert!(matches!(p("plain text"), Expr::Literal(Value::String(_))));
        assert!(matches!(p("a {b} c"), Expr::Literal(_)));
    }

    #[test]
    fn refuses_bad_paths() {
        assert!(err("$", false).contains("bare `$`"));
        assert!(err("@.x", false).contains("not inside `each`"));
        assert!(err("$.a[", false).contains("not a valid JSONPath"));
        assert!(err("$.a b", false).contains("`a b` is not a member name"));
        assert!(parse_str("$.a  .b", Scope { in_each: false }).is_ok());
        assert!(parse_str("$['a b']", Scope { in_each: false }).is_ok());
        assert!(parse_str("$.ünïcode_1", Scope { in_each: false }).is_ok());
        assert!(err("lenght($.a)", false).contains("unknown function"));
    }

    #[test]
    fn singular_and_steps() {
        let Expr::Path(x) = p("$.a[0].b") else { panic!() };
        assert!(x.singular);
        assert_eq!(x.steps.as_ref().unwrap().len(), 3);
        let Expr::Path(x) = p("$.a[*].b") else { panic!() };
        assert!(!x.singular);
        let Expr::Path(x) = p("$['a-b'].c") else { panic!() };
        assert_eq!(x.steps.as_ref().unwrap()[0], Step::Name("a-b".into()));
        let Expr::Path(x) = p("$..b") else { panic!() };
        assert!(x.steps.is_none() && !x.singular);
    }

    #[test]
    fn templates_with_escapes() {
        let Expr::Template(parts) = p("{{x}} {$.a} {$.b[?@.c == '}']}") else {
            panic!()
        };
        assert!(matches!(&parts[0], Part::Text(t) if t == "{x} "));
        assert_eq!(parts.len(), 4);
    }

    #[test]
    fn nested_functions_and_literals() {
        let Expr::Func(Func::Coalesce, args) = p("coalesce(first($.a[*]), \"none\")") else {
            panic!()
        };
        assert!(matches!(args[0], Expr::Func(Func::First, _)));
        assert!(matches!(&args[1], Expr::Literal(Value::String(s)) if s == "none"));
        assert!(err("coalesce($.a, none)", false).contains("neither"));
        assert!(err("length($.a, $.b)", false).contains("takes 1"));
    }

    #[test]
    fn roots_include_filter_references() {
        let Expr::Path(x) = p("$.items[?@.id == $.user.id]") else {
            panic!()
        };
        assert_eq!(
            x.roots(),
            vec![RootRef::Name("items".into()), RootRef::Name("user".into())]
        );
    }
}
