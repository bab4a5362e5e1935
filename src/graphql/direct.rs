//! Facade's own executor for a prepared operation (`plan::operation`): the endpoint fields run
//! as `resolve` runs them (the same access stage, arguments, call pruning and deduplication),
//! and the answer is written straight from each endpoint's projected JSON, type-checked on the
//! way, with no async-graphql value in between.
//!
//! The answer is the one async-graphql gives for the same operation, byte for byte: the same
//! value completion (a value that does not fit is an error at its path and nulls the nearest
//! nullable field above it, which is written by cutting the output back to where that field
//! began), the same messages, paths and locations. A test runs each operation through both.

use super::resolve::{problem, run_calls, FieldError, Operation};
use crate::exec::eval::{each_item, eval_cow, member, Scope};
use crate::exec::Outcome;
use crate::plan::expr::Expr;
use crate::plan::operation::{EndpointSelection, NamespaceField, OutSelection, PreparedOperation, RootField};
use crate::plan::output::{Kind, OutField, OutType};
use async_graphql::{Name, PathSegment, ServerError, Value as GqlValue};
use serde_json::Value;

/// Runs `prep` with the endpoint fields' arguments bound (`PreparedOperation::bind`, in document
/// order) and writes its whole response body (`{"data":…,"errors":[…]}`).
pub async fn run(prep: &PreparedOperation, arguments: Vec<Vec<(Name, GqlValue)>>, op: &Operation) -> Vec<u8> {
    let selections = prep
        .root
        .iter()
        .flat_map(|r| match r {
            RootField::Namespace { fields, .. } => fields.as_slice(),
            RootField::Typename { .. } => &[],
        })
        .filter_map(|f| match f {
            NamespaceField::Endpoint(e) => Some(e),
            NamespaceField::Typename { .. } => None,
        });
    let runs = selections
        .zip(arguments)
        .map(|(e, args)| run_calls(op, &e.endpoint, Ok(args), e.needs.clone(), e.repeated));
    let results = if prep.mutation {
        let mut done = Vec::new();
        for run in runs {
            done.push(run.await);
        }
        done
    } else {
        futures::future::join_all(runs).await
    };
    let mut results = results.into_iter();
    let mut w = Writer {
        out: Vec::with_capacity(1024),
        path: Vec::new(),
        fields: Vec::new(),
        problems: Vec::new(),
    };
    let mut errors: Vec<ServerError> = Vec::new();
    w.out.extend_from_slice(b"{\"data\":{");
    for (i, root) in prep.root.iter().enumerate() {
        if i > 0 {
            w.out.push(b',');
        }
        match root {
            RootField::Typename { key, type_name } => {
                w.key(key);
                w.name(type_name);
            }
            RootField::Namespace { key, type_name, fields } => {
                w.key(key);
                w.out.push(b'{');
                for (j, field) in fields.iter().enumerate() {
                    if j > 0 {
                        w.out.push(b',');
                    }
                    match field {
                        NamespaceField::Typename { key } => {
                            w.key(key);
                            w.name(type_name);
                        }
                        NamespaceField::Endpoint(e) => {
                            w.key(&e.key);
                            let result = results.next();
                            let at = [PathSegment::Field(key.clone()), PathSegment::Field(e.key.clone())];
                            match result {
                                Some(Ok(outcome)) => endpoint(&mut w, e, &outcome, &at, &mut errors),
                                Some(Err(err)) => {
                                    w.out.extend_from_slice(b"null");
                                    errors.push(error_at(err.to_error(), e, &at, Vec::new()));
                                }
                                None => w.out.extend_from_slice(b"null"),
                            }
                        }
                    }
                }
                w.out.push(b'}');
            }
        }
    }
    w.out.push(b'}');
    if !errors.is_empty() {
        w.out.extend_from_slice(b",\"errors\":");
        if serde_json::to_writer(&mut w.out, &errors).is_err() {
            w.out.extend_from_slice(b"[]");
        }
    }
    w.out.push(b'}');
    w.out
}

/// An endpoint field that answered: its optional calls' failures, then its value as its type
/// allows (null when something non-null inside it does not fit), written from the calls'
/// results as the projection reads them.
fn endpoint<'s>(
    w: &mut Writer<'s>,
    e: &'s EndpointSelection,
    outcome: &Outcome,
    at: &[PathSegment],
    errors: &mut Vec<ServerError>,
) {
    for p in &outcome.partial {
        errors.push(error_at(FieldError::partial(p).to_error(), e, at, Vec::new()));
    }
    let start = w.out.len();
    let ty = &e.endpoint.output;
    let scope = Scope {
        doc: &outcome.doc,
        item: None,
    };
    let response = &e.endpoint.response;
    // The endpoint field itself is nullable, whatever its output type says.
    let fits = match response {
        Expr::Object(_) | Expr::Each { .. } => w.expr(response, scope, ty, &e.selection),
        other => {
            let v = eval_cow(other, scope);
            if v.is_null() {
                w.out.extend_from_slice(b"null");
                true
            } else {
                w.value(&v, ty, &e.selection)
            }
        }
    };
    if !fits {
        w.out.truncate(start);
        w.out.extend_from_slice(b"null");
    }
    for (below, message, pos) in std::mem::take(&mut w.problems) {
        let mut error = error_at(async_graphql::Error::new(message), e, at, below);
        if let Some(pos) = pos {
            error.locations = vec![pos];
        }
        errors.push(error);
    }
}

/// An error at the endpoint field (its location), `below` it in the response.
fn error_at(
    err: async_graphql::Error,
    e: &EndpointSelection,
    at: &[PathSegment],
    below: Vec<PathSegment>,
) -> ServerError {
    let mut error = err.into_server_error(e.pos);
    error.path = at.to_vec();
    error.path.extend(below);
    error
}

/// As async-graphql's dynamic schema: a leaf element of a list may become null, an object
/// element cannot.
fn item_may_be_null(inner: &OutType) -> bool {
    inner.nullable && !matches!(inner.kind, Kind::Object(_))
}

/// A step of the response path below an endpoint field, borrowed until an error needs it.
#[derive(Clone, Copy)]
enum Step<'s> {
    Key(&'s str),
    Index(usize),
}

struct Writer<'s> {
    out: Vec<u8>,
    path: Vec<Step<'s>>,
    /// Where the fields being written are in the document, innermost last.
    fields: Vec<async_graphql::Pos>,
    /// Values that did not fit: (path below the endpoint field, message, the location of the
    /// field holding the value; none: the endpoint field's own).
    problems: Vec<(Vec<PathSegment>, String, Option<async_graphql::Pos>)>,
}

impl<'s> Writer<'s> {
    /// A response key (a GraphQL name: nothing in it needs escaping).
    fn key(&mut self, key: &str) {
        self.name(key);
        self.out.push(b':');
    }

    /// A GraphQL name as a JSON string.
    fn name(&mut self, name: &str) {
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b'"');
    }

    /// Writes what `e` evaluates to in `scope` as a value of `ty` for `selection`, as `value`
    /// would write the evaluated value: an object mapping and an `each` are walked where they
    /// are, so the selected fields are evaluated (and nothing else) with no tree built first.
    fn expr(&mut self, e: &Expr, scope: Scope<'_>, ty: &OutType, selection: &'s [OutSelection]) -> bool {
        match (e, &ty.kind) {
            // An object mapping is never null; its members are the mapping's fields.
            (Expr::Object(mapped), Kind::Object(fields)) => self.object(fields, selection, |w, f, selection| {
                match mapped.iter().find(|(k, _)| *k == f.name) {
                    Some((_, sub)) => w.expr(sub, scope, &f.ty, selection),
                    None => w.value(&Value::Null, &f.ty, selection),
                }
            }),
            // An `each` is never null: a list of its items, each the item mapping evaluated.
            (Expr::Each { over, item }, Kind::List(inner)) => {
                self.out.push(b'[');
                let may_null = item_may_be_null(inner);
                let mut i = 0;
                let mut fits = true;
                each_item(over, scope, &mut |it| {
                    if !fits {
                        return;
                    }
                    if i > 0 {
                        self.out.push(b',');
                    }
                    let at = Scope {
                        doc: scope.doc,
                        item: Some(it),
                    };
                    fits = self.nested(Step::Index(i), may_null, |w| match &**item {
                        Expr::Object(_) => w.expr(item, at, inner, selection),
                        other => w.item(eval_cow(other, at).as_ref(), inner, selection),
                    });
                    i += 1;
                });
                if fits {
                    self.out.push(b']');
                }
                fits
            }
            _ => {
                let v = eval_cow(e, scope);
                self.value(&v, ty, selection)
            }
        }
    }

    /// Writes `v` as a value of `ty` for `selection`; false (with a problem recorded, the output
    /// to be cut back by the caller) when it does not fit.
    fn value(&mut self, v: &Value, ty: &OutType, selection: &'s [OutSelection]) -> bool {
        if v.is_null() {
            if ty.nullable {
                self.out.extend_from_slice(b"null");
                return true;
            }
            return self.problem(problem::null());
        }
        match &ty.kind {
            Kind::Leaf(leaf) => {
                if !leaf.accepts(v) {
                    return self.problem(problem::leaf(v, *leaf));
                }
                serde_json::to_writer(&mut self.out, v).is_ok() || self.problem(problem::leaf(v, *leaf))
            }
            Kind::Object(fields) => {
                let Value::Object(m) = v else {
                    return self.problem(problem::object(v));
                };
                self.object(fields, selection, |w, f, selection| {
                    w.value(member(m, &f.name).unwrap_or(&Value::Null), &f.ty, selection)
                })
            }
            Kind::List(inner) => {
                let Value::Array(items) = v else {
                    return self.problem(problem::list(v));
                };
                let may_null = item_may_be_null(inner);
                self.out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.out.push(b',');
                    }
                    if !self.nested(Step::Index(i), may_null, |w| w.item(item, inner, selection)) {
                        return false;
                    }
                }
                self.out.push(b']');
                true
            }
        }
    }

    /// A list's element: a null where an object is expected is refused (as async-graphql's
    /// dynamic schema refuses it), whatever the element type's nullability.
    fn item(&mut self, v: &Value, inner: &OutType, selection: &'s [OutSelection]) -> bool {
        if v.is_null() && matches!(inner.kind, Kind::Object(_)) {
            self.problem(problem::null_object_item())
        } else {
            self.value(v, inner, selection)
        }
    }

    /// Writes a field's or element's value (by `write`) at `step` below the current path. When it
    /// does not fit it becomes null if it may (`nullable`), or false says that what holds it
    /// does not fit either (the caller cuts the output back).
    fn nested(&mut self, step: Step<'s>, nullable: bool, write: impl FnOnce(&mut Self) -> bool) -> bool {
        self.path.push(step);
        let start = self.out.len();
        let fits = write(self);
        self.path.pop();
        if fits {
            return true;
        }
        if !nullable {
            return false;
        }
        self.out.truncate(start);
        self.out.extend_from_slice(b"null");
        true
    }

    /// Writes an object of `fields` for `selection`, each selected field's value written by
    /// `field` (false when it does not fit: then the field is null, or, when it is non-null,
    /// the whole object does not fit and false is returned).
    fn object(
        &mut self,
        fields: &[OutField],
        selection: &'s [OutSelection],
        mut field: impl FnMut(&mut Self, &OutField, &'s [OutSelection]) -> bool,
    ) -> bool {
        self.out.push(b'{');
        for (i, s) in selection.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            match s {
                OutSelection::Typename { key, type_name } => {
                    self.key(key);
                    self.name(type_name);
                }
                OutSelection::Field {
                    key,
                    index,
                    selection,
                    pos,
                } => {
                    self.key(key);
                    let Some(f) = fields.get(*index) else {
                        self.out.extend_from_slice(b"null");
                        continue;
                    };
                    self.fields.push(*pos);
                    let fits = self.nested(Step::Key(key), f.ty.nullable, |w| field(w, f, selection));
                    self.fields.pop();
                    if !fits {
                        return false;
                    }
                }
            }
        }
        self.out.push(b'}');
        true
    }

    /// Records a problem at the current path; always false.
    fn problem(&mut self, message: String) -> bool {
        let path = self
            .path
            .iter()
            .map(|s| match s {
                Step::Key(k) => PathSegment::Field((*k).to_string()),
                Step::Index(i) => PathSegment::Index(*i),
            })
            .collect();
        self.problems.push((path, message, self.fields.last().copied()));
        false
    }
}
