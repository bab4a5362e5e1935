//! Resolving an operation. async-graphql resolves the fields of every object below the root one
//! after another, so the namespace resolver (`mobile`) starts every endpoint field of its
//! selection at once (mutations: one after another, in document order) and stores the results;
//! each endpoint field then only picks up its own. Each endpoint runs just the calls that its
//! selected fields need, closed over their dependencies, and every GET of the operation goes
//! through one dedup table. Object fields read their value from the parent's JSON and check it
//! against the declared type: a value that does not fit is a field error, never passed through.

use crate::config::args::{convert, convert_text};
use crate::config::model::{BaseType, ParamSource, ParamType};
use crate::exec::eval::{eval, slot_mut, Scope, Slot};
use crate::exec::{Dedup, Exec, ExecError, PartialFailure, RequestCtx, Sharing};
use crate::http::rest::{header_param, with_default};
use crate::plan::output::{close_over_deps, Kind, OutType};
use crate::plan::{Endpoint, Param, Plan};
use crate::upstream::CallError;
use async_graphql::dynamic::{FieldFuture, FieldValue, ResolverContext};
use async_graphql::parser::types::{Field, FragmentDefinition, Selection, SelectionSet};
use async_graphql::{ErrorExtensions, Name, PathSegment, SelectionField};
use http::{HeaderMap, HeaderValue};
use serde_json::{Map, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What one GraphQL operation brings to its resolvers (the request's data).
pub struct Operation {
    /// The executor.
    pub exec: Exec,
    /// The rate limiter, for each endpoint field's policy.
    pub limiter: crate::ratelimit::Limiter,
    /// The client's address (the limiter's `ip` key).
    pub peer: Option<std::net::SocketAddr>,
    /// The plan the request was resolved in.
    pub plan: Arc<Plan>,
    /// The HTTP request's headers: the token of each field's access check, header parameters.
    pub headers: HeaderMap,
    /// Sent to every backend.
    pub request_id: HeaderValue,
    /// The client's `traceparent`.
    pub traceparent: Option<HeaderValue>,
    /// Identical GETs of the whole operation run once.
    pub dedup: Dedup,
    /// Objects whose every field was skipped: see [`EmptyObjects`].
    pub empty_objects: EmptyObjects,
}

/// The objects of an answer whose selection is empty after `@skip`/`@include`, by path, with
/// the value they were resolved from. GraphQL makes such an object `{}`; async-graphql's
/// resolver gives `null` for a container that resolved no field, so the answer is mended after
/// execution (`mend`), and both executors answer alike.
#[derive(Clone, Default)]
pub struct EmptyObjects(Arc<std::sync::Mutex<Vec<EmptyObject>>>);

/// Where an empty object was resolved, and the skeleton of its value (see `skeleton`).
type EmptyObject = (Vec<PathSegment>, Value);

impl EmptyObjects {
    /// Records the field being resolved when it is an object (or list of objects) with nothing
    /// selected in it.
    fn note(&self, ctx: &ResolverContext<'_>, v: &Value, ty: &OutType) {
        if !matches!(ty.innermost().kind, Kind::Object(_)) || ctx.ctx.field().selection_set().next().is_some() {
            return;
        }
        let skeleton = skeleton(v);
        if !skeleton.is_null() {
            self.push(ctx, skeleton);
        }
    }

    /// Records the field being resolved, with the skeleton of its value.
    fn push(&self, ctx: &ResolverContext<'_>, skeleton: Value) {
        let path = ctx.ctx.set_error_path(async_graphql::ServerError::new("", None)).path;
        if let Ok(mut all) = self.0.lock() {
            all.push((path, skeleton));
        }
    }

    /// Puts `{}` where async-graphql answered `null` for an object with nothing selected; the
    /// whole answer (`errors` says whether it ran into a field error) too.
    pub fn mend(&self, data: &mut async_graphql::Value, errors: bool) {
        if !errors && *data == async_graphql::Value::Null {
            *data = async_graphql::Value::Object(Default::default());
        }
        let Ok(all) = self.0.lock() else { return };
        for (path, skeleton) in all.iter() {
            if let Some(at) = value_at(data, path) {
                fill(at, skeleton);
            }
        }
    }
}

fn value_at<'v>(data: &'v mut async_graphql::Value, path: &[PathSegment]) -> Option<&'v mut async_graphql::Value> {
    let Some((step, rest)) = path.split_first() else {
        return Some(data);
    };
    let next = match (step, data) {
        (PathSegment::Field(k), async_graphql::Value::Object(m)) => m.get_mut(k.as_str())?,
        (PathSegment::Index(i), async_graphql::Value::List(l)) => l.get_mut(*i)?,
        _ => return None,
    };
    value_at(next, rest)
}

/// `v` reduced to where its objects are: each object `{}`, arrays item by item, the rest null.
fn skeleton(v: &Value) -> Value {
    match v {
        Value::Object(_) => Value::Object(Map::new()),
        Value::Array(items) => Value::Array(items.iter().map(skeleton).collect()),
        _ => Value::Null,
    }
}

fn fill(at: &mut async_graphql::Value, skeleton: &Value) {
    match (skeleton, &mut *at) {
        (Value::Object(_), async_graphql::Value::Null) => *at = async_graphql::Value::Object(Default::default()),
        (Value::Array(items), async_graphql::Value::List(l)) => {
            for (s, v) in items.iter().zip(l.iter_mut()) {
                fill(v, s);
            }
        }
        _ => {}
    }
}

/// An endpoint field of a namespace type.
pub struct NamespaceEndpoint {
    /// Its field name.
    pub field: String,
    /// The endpoint.
    pub endpoint: Arc<Endpoint>,
}

/// Every endpoint field's result in one namespace selection, by response key (alias or name).
struct Results(Vec<Entry>);

/// One response key's result. A key selected twice (`{ home { a } home { b } }`) is resolved
/// twice by async-graphql; its errors are reported once.
struct Entry {
    key: String,
    result: Result<EndpointValue, FieldError>,
    reported: AtomicBool,
}

/// An endpoint that answered: its projected response and the optional calls that failed.
pub(super) struct EndpointValue {
    pub(super) value: Value,
    pub(super) partial: Vec<PartialFailure>,
}

/// Why an endpoint field is null, as a GraphQL error.
#[derive(Debug, Clone)]
pub(super) struct FieldError {
    message: String,
    /// SPEC §5: the REST error code upper-cased, or `UNAUTHENTICATED`/`FORBIDDEN`.
    code: &'static str,
    call: Option<String>,
    service: Option<String>,
    /// `errors: pass`: the backend's JSON body.
    details: Option<Value>,
}

impl FieldError {
    fn new(code: &'static str, message: impl Into<String>) -> FieldError {
        FieldError {
            message: message.into(),
            code,
            call: None,
            service: None,
            details: None,
        }
    }

    /// An optional call that failed.
    pub(super) fn partial(p: &PartialFailure) -> FieldError {
        FieldError {
            message: p.message.clone(),
            code: upper_code(p.code),
            call: Some(p.call.clone()),
            service: Some(p.service.clone()),
            details: None,
        }
    }

    fn from_exec(e: ExecError) -> FieldError {
        let message = e.message();
        let code = upper_code(e.code());
        match e {
            ExecError::BadArgument(_) => FieldError::new(code, message),
            ExecError::CallFailed {
                call, service, error, ..
            } => {
                let details = match (&error, code) {
                    (CallError::Status { body: Some(b), .. }, "UPSTREAM_REJECTED") => Some((**b).clone()),
                    _ => None,
                };
                FieldError {
                    message,
                    code,
                    call: Some(call),
                    service: Some(service),
                    details,
                }
            }
        }
    }

    pub(super) fn to_error(&self) -> async_graphql::Error {
        async_graphql::Error::new(self.message.clone()).extend_with(|_, ext| {
            ext.set("code", self.code);
            if let Some(c) = &self.call {
                ext.set("call", c.as_str());
            }
            if let Some(s) = &self.service {
                ext.set("service", s.as_str());
            }
            if let Some(d) = &self.details {
                if let Ok(v) = async_graphql::Value::from_json(d.clone()) {
                    ext.set("details", v);
                }
            }
        })
    }
}

/// The GraphQL code of a REST error code.
fn upper_code(code: &str) -> &'static str {
    match code {
        "not_found" => "NOT_FOUND",
        "upstream_timeout" => "UPSTREAM_TIMEOUT",
        "upstream_rejected" => "UPSTREAM_REJECTED",
        "bad_request" => "BAD_REQUEST",
        _ => "UPSTREAM_FAILED",
    }
}

/// One endpoint field of the selection, merged over every selection with its response key.
struct Wanted<'s> {
    key: &'s str,
    endpoint: Arc<Endpoint>,
    first: SelectionField<'s>,
    needs: Vec<bool>,
}

/// The namespace field (`mobile`): runs every selected endpoint field, then hands the results to
/// them.
pub fn namespace<'a>(
    ctx: ResolverContext<'a>,
    endpoints: Arc<Vec<NamespaceEndpoint>>,
    serial: bool,
) -> FieldFuture<'a> {
    FieldFuture::new(async move {
        let op = ctx.data::<Operation>()?;
        let mut wanted: Vec<Wanted<'a>> = Vec::new();
        for sel in ctx.ctx.field().selection_set() {
            let Some(ne) = endpoints.iter().find(|e| e.field == sel.name()) else {
                continue;
            };
            let key = sel.alias().unwrap_or(sel.name());
            let i = match wanted.iter().position(|w| w.key == key) {
                Some(i) => i,
                None => {
                    wanted.push(Wanted {
                        key,
                        endpoint: ne.endpoint.clone(),
                        first: sel,
                        needs: ne.endpoint.needs_before_fields(),
                    });
                    wanted.len() - 1
                }
            };
            let w = &mut wanted[i];
            collect_needs(&w.endpoint.output, sel, &mut w.needs);
        }
        let entry = |key: &str, result| Entry {
            key: key.to_string(),
            result,
            reported: AtomicBool::new(false),
        };
        // An endpoint under two response keys may make identical calls twice: they are shared.
        let repeated = |w: &Wanted<'_>| wanted.iter().filter(|o| Arc::ptr_eq(&o.endpoint, &w.endpoint)).count() > 1;
        let mut results = Vec::with_capacity(wanted.len());
        if serial {
            for w in &wanted {
                let given = w.first.arguments().map_err(|e| e.message);
                let r = run_endpoint(op, &w.endpoint, given, w.needs.clone(), repeated(w)).await;
                results.push(entry(w.key, r));
            }
        } else {
            let runs = wanted.iter().map(|w| {
                let given = w.first.arguments().map_err(|e| e.message);
                run_endpoint(op, &w.endpoint, given, w.needs.clone(), repeated(w))
            });
            let done = futures::future::join_all(runs).await;
            results.extend(wanted.iter().zip(done).map(|(w, r)| entry(w.key, r)));
        }
        if wanted.is_empty() && ctx.ctx.field().selection_set().next().is_none() {
            op.empty_objects.push(&ctx, Value::Object(Map::new()));
        }
        Ok(Some(FieldValue::owned_any(Results(results))))
    })
}

/// Marks the calls that the selected fields below `sel` need.
fn collect_needs(ty: &OutType, sel: SelectionField<'_>, set: &mut [bool]) {
    let Some(fields) = ty.innermost().fields() else {
        return;
    };
    for s in sel.selection_set() {
        if let Some(f) = fields.iter().find(|f| f.name == s.name()) {
            for &i in &f.needs {
                if let Some(b) = set.get_mut(i) {
                    *b = true;
                }
            }
            collect_needs(&f.ty, s, set);
        }
    }
}

/// One endpoint field: the access stage, its arguments (as written, variables replaced), the
/// calls it needs, the projection.
pub(super) async fn run_endpoint(
    op: &Operation,
    ep: &Endpoint,
    given: Result<Vec<(Name, async_graphql::Value)>, String>,
    needs: Vec<bool>,
    repeated: bool,
) -> Result<EndpointValue, FieldError> {
    let outcome = run_calls(op, ep, given, needs, repeated).await?;
    let value = eval(
        &ep.response,
        Scope {
            doc: &outcome.doc,
            item: None,
        },
    );
    Ok(EndpointValue {
        value,
        partial: outcome.partial,
    })
}

/// An endpoint field up to its projection: the access stage, its arguments (as written,
/// variables replaced) and the calls it needs, whose results are the outcome's document.
pub(super) async fn run_calls(
    op: &Operation,
    ep: &Endpoint,
    given: Result<Vec<(Name, async_graphql::Value)>, String>,
    mut needs: Vec<bool>,
    repeated: bool,
) -> Result<crate::exec::Outcome, FieldError> {
    // The access stage REST uses, once per selected field (every alias counts).
    let authenticated = crate::middleware::access::check(&op.plan, &op.limiter, &ep.access, &op.headers, op.peer)
        .await
        .map_err(|r| FieldError::new(r.graphql_code(), r.to_string()))?
        .authenticated;
    let given = given.map_err(|m| FieldError::new("BAD_REQUEST", m))?;
    let args = arguments(ep, given, &op.headers).map_err(|m| FieldError::new("BAD_REQUEST", m))?;
    let mut ctx = RequestCtx::new(
        args,
        authenticated.claims,
        authenticated.forwarded,
        op.request_id.clone(),
        op.traceparent.clone(),
    );
    ctx.sharing = Sharing::Operation { repeated };
    close_over_deps(&mut needs, &ep.calls);
    op.exec
        .run_only(&op.plan, ep, &ctx, &op.dedup, Some(&needs))
        .await
        .map_err(FieldError::from_exec)
}

/// `$.args` from the field's arguments (path, query and body parameters) and the HTTP request's
/// headers, converted as REST converts them, defaults applied.
fn arguments(ep: &Endpoint, given: Vec<(Name, async_graphql::Value)>, headers: &HeaderMap) -> Result<Value, String> {
    let mut args = Map::with_capacity(ep.params.len());
    for p in &ep.params {
        let value = match &p.source {
            ParamSource::Header(h) => header_param(p, h, headers)?,
            _ => match given.iter().find(|(n, _)| n.as_str() == p.name) {
                None => None,
                Some((_, v)) => argument_value(p, v.clone())?,
            },
        };
        args.insert(p.name.clone(), with_default(p, value)?);
    }
    Ok(Value::Object(args))
}

fn argument_value(p: &Param, v: async_graphql::Value) -> Result<Option<Value>, String> {
    let json = v
        .into_json()
        .map_err(|e| format!("argument `{}` is not JSON: {e}", p.name))?;
    if json.is_null() {
        return Ok(None);
    }
    let converted = match (&p.source, &json) {
        // A path parameter is an `ID!`: its text, converted to the declared type.
        (ParamSource::Path, Value::String(s)) => convert_text(&[s.as_str()], &p.ty),
        (ParamSource::Path, other) => convert_text(&[other.to_string().as_str()], &p.ty),
        _ => convert(&coerce_lists(json, &p.ty), &p.ty),
    };
    converted.map(Some).map_err(|e| format!("argument `{}` {e}", p.name))
}

/// GraphQL's input coercion of lists: a value that is not a list, given where a list is
/// expected, is a list of that one value (`options: "gift"` for `[String!]` is `["gift"]`), at
/// every level. async-graphql validates such values but hands them on as written.
fn coerce_lists(v: Value, ty: &ParamType) -> Value {
    match (&ty.base, v) {
        (_, Value::Null) => Value::Null,
        (BaseType::List(item), Value::Array(items)) => {
            Value::Array(items.into_iter().map(|i| coerce_lists(i, item)).collect())
        }
        (BaseType::List(item), other) => Value::Array(vec![coerce_lists(other, item)]),
        (BaseType::Scalar(_), other) => other,
    }
}

/// An endpoint field: its result from the namespace's run, checked against its type for this
/// selection before async-graphql walks it (async-graphql's dynamic schema drops a field whose
/// resolver fails, with no path and no null propagation, so no resolver below may fail). Every
/// error (an optional call's failure, a value that does not fit) is reported here, with its path.
pub fn endpoint<'a>(ctx: ResolverContext<'a>, name: &str, output: &OutType) -> FieldFuture<'a> {
    let results = match ctx.parent_value.try_downcast_ref::<Results>() {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    let field = ctx.ctx.field();
    let key = field.alias().unwrap_or(name);
    let Some(entry) = results.0.iter().find(|e| e.key == key) else {
        return FieldFuture::Value(None);
    };
    let first = !entry.reported.swap(true, Ordering::Relaxed);
    let report = |err: async_graphql::Error, below: &[PathSegment]| {
        let pos = field_pos(ctx.ctx.item, below, &ctx.ctx.query_env.fragments);
        let mut e = ctx.ctx.set_error_path(err.into_server_error(pos));
        e.path.extend(below.iter().cloned());
        ctx.ctx.add_error(e);
    };
    let v = match &entry.result {
        Ok(v) => v,
        Err(e) => {
            if first {
                report(e.to_error(), &[]);
            }
            return FieldFuture::Value(None);
        }
    };
    if first {
        for p in &v.partial {
            report(FieldError::partial(p).to_error(), &[]);
        }
    }
    let ty = output.clone().or_null();
    let mut check = Check::default();
    let fits = check.value(&v.value, &ty, Some(field));
    for (path, message) in check.problems {
        report(async_graphql::Error::new(message), &path);
    }
    if !fits {
        return FieldFuture::Value(None);
    }
    if let Ok(op) = ctx.data::<Operation>() {
        op.empty_objects.note(&ctx, &v.value, &ty);
    }
    if check.nulls.is_empty() {
        return FieldFuture::Value(field_value(&v.value, &ty));
    }
    // Some nullable fields could not hold their values: a copy with those set to null.
    let mut owned = v.value.clone();
    for path in &check.nulls {
        if let Some(slot) = slot_mut(&mut owned, path) {
            *slot = Value::Null;
        }
    }
    FieldFuture::Value(owned_field_value(owned, &ty))
}

/// Where the field at `below` (response keys, aliases as written) under the endpoint field
/// `field` is written, as GraphQL locates an error at a value: the first field of that key,
/// through inline fragments and fragment spreads; the endpoint field's own where none is found.
fn field_pos(
    field: &async_graphql::Positioned<Field>,
    below: &[PathSegment],
    fragments: &std::collections::HashMap<Name, async_graphql::Positioned<FragmentDefinition>>,
) -> async_graphql::Pos {
    let mut current = field;
    for step in below {
        let PathSegment::Field(key) = step else { continue };
        match with_key(&current.node.selection_set.node, key, fragments, 0) {
            Some(f) => current = f,
            None => break,
        }
    }
    current.pos
}

fn with_key<'d>(
    set: &'d SelectionSet,
    key: &str,
    fragments: &'d std::collections::HashMap<Name, async_graphql::Positioned<FragmentDefinition>>,
    depth: usize,
) -> Option<&'d async_graphql::Positioned<Field>> {
    // Fragments that spread each other were refused before execution; the bound is a guard.
    if depth > 64 {
        return None;
    }
    set.items.iter().find_map(|s| match &s.node {
        Selection::Field(f) => (f.node.response_key().node.as_str() == key).then_some(f),
        Selection::InlineFragment(i) => with_key(&i.node.selection_set.node, key, fragments, depth + 1),
        Selection::FragmentSpread(spread) => fragments
            .get(&spread.node.fragment_name.node)
            .and_then(|d| with_key(&d.node.selection_set.node, key, fragments, depth + 1)),
    })
}

/// GraphQL's value completion for one endpoint field's selection: what does not fit its type is
/// an error at its path, and the nearest nullable field above it becomes null.
#[derive(Default)]
struct Check {
    /// Response path below the endpoint field (aliases as written), and the JSON path beside it.
    path: Vec<PathSegment>,
    json: Vec<Slot>,
    problems: Vec<(Vec<PathSegment>, String)>,
    /// JSON paths of nullable fields to set to null.
    nulls: Vec<Vec<Slot>>,
}

impl Check {
    /// Whether `v` can be the value of `ty` for the selection below `sel`.
    fn value(&mut self, v: &Value, ty: &OutType, sel: Option<SelectionField<'_>>) -> bool {
        if v.is_null() {
            if ty.nullable {
                return true;
            }
            return self.problem(problem::null());
        }
        match &ty.kind {
            Kind::Leaf(leaf) => leaf.accepts(v) || self.problem(problem::leaf(v, *leaf)),
            Kind::Object(fields) => {
                let Value::Object(m) = v else {
                    return self.problem(problem::object(v));
                };
                let Some(sel) = sel else { return true };
                for s in sel.selection_set() {
                    let Some(f) = fields.iter().find(|f| f.name == s.name()) else {
                        continue;
                    };
                    self.path
                        .push(PathSegment::Field(s.alias().unwrap_or(s.name()).to_string()));
                    self.json.push(Slot::Key(f.name.clone()));
                    let fits = self.value(m.get(&f.name).unwrap_or(&Value::Null), &f.ty, Some(s));
                    if !fits && f.ty.nullable {
                        self.nulls.push(self.json.clone());
                    }
                    self.path.pop();
                    self.json.pop();
                    if !fits && !f.ty.nullable {
                        return false;
                    }
                }
                true
            }
            Kind::List(inner) => {
                let Value::Array(items) = v else {
                    return self.problem(problem::list(v));
                };
                for (i, item) in items.iter().enumerate() {
                    self.path.push(PathSegment::Index(i));
                    self.json.push(Slot::Idx(i));
                    let object = matches!(inner.kind, Kind::Object(_));
                    // async-graphql's dynamic schema cannot give a null object inside a list.
                    // A leaf item may become null; anything else fails the list.
                    let may_null = inner.nullable && !object;
                    let fits = if item.is_null() && object {
                        self.problem(problem::null_object_item())
                    } else {
                        self.value(item, inner, sel)
                    };
                    if !fits && may_null {
                        self.nulls.push(self.json.clone());
                    }
                    self.path.pop();
                    self.json.pop();
                    if !fits && !may_null {
                        return false;
                    }
                }
                true
            }
        }
    }

    /// Records a problem at the current path; always false.
    fn problem(&mut self, message: String) -> bool {
        self.problems.push((self.path.clone(), message));
        false
    }
}

/// An owned value as the field value of `ty` (already checked).
fn owned_field_value(v: Value, ty: &OutType) -> Option<FieldValue<'static>> {
    if v.is_null() {
        return None;
    }
    match (&ty.kind, v) {
        (Kind::Leaf(_), v) => Some(FieldValue::value(leaf_value(&v))),
        (Kind::Object(_), v) => Some(FieldValue::owned_any(v)),
        (Kind::List(inner), Value::Array(items)) => Some(FieldValue::list(
            items
                .into_iter()
                .map(|i| owned_field_value(i, inner).unwrap_or(FieldValue::NULL)),
        )),
        (Kind::List(_), _) => None,
    }
}

/// A field of an output object: the parent's JSON member of that name (checked by the endpoint
/// field's `Check`).
pub fn object_field<'a>(ctx: ResolverContext<'a>, key: &str, ty: &OutType) -> FieldFuture<'a> {
    static NULL: Value = Value::Null;
    let Some(parent) = ctx.parent_value.downcast_ref::<Value>() else {
        return FieldFuture::Value(None);
    };
    let v = parent.get(key).unwrap_or(&NULL);
    if let Ok(op) = ctx.data::<Operation>() {
        op.empty_objects.note(&ctx, v, ty);
    }
    FieldFuture::Value(field_value(v, ty))
}

fn failed<'a>(e: async_graphql::Error) -> FieldFuture<'a> {
    FieldFuture::new(async move { Err::<Option<FieldValue<'a>>, _>(e) })
}

/// A JSON value, already checked by `Check`, as the field value of `ty`, borrowed.
fn field_value<'v>(v: &'v Value, ty: &OutType) -> Option<FieldValue<'v>> {
    if v.is_null() {
        return None;
    }
    match (&ty.kind, v) {
        (Kind::Leaf(_), v) => Some(FieldValue::value(leaf_value(v))),
        (Kind::Object(_), v) => Some(FieldValue::borrowed_any(v)),
        (Kind::List(inner), Value::Array(items)) => Some(FieldValue::list(
            items.iter().map(|i| field_value(i, inner).unwrap_or(FieldValue::NULL)),
        )),
        (Kind::List(_), _) => None,
    }
}

fn leaf_value(v: &Value) -> async_graphql::Value {
    match v {
        Value::String(s) => async_graphql::Value::String(s.clone()),
        Value::Number(n) => async_graphql::Value::Number(n.clone()),
        Value::Bool(b) => async_graphql::Value::Boolean(*b),
        other => async_graphql::Value::from_json(other.clone()).unwrap_or(async_graphql::Value::Null),
    }
}

/// The messages of values that do not fit their field's type (both executors give the same).
pub(super) mod problem {
    use crate::plan::output::Leaf;
    use serde_json::Value;

    pub fn null() -> String {
        "the value is null, but the field is declared non-null".into()
    }

    pub fn leaf(v: &Value, leaf: Leaf) -> String {
        // GraphQL's Int is a signed 32-bit integer; a backend's int64 id or count often is not.
        let kind = match (v, leaf) {
            (Value::Number(n), Leaf::Int) if n.is_i64() || n.is_u64() => "an integer outside Int's 32-bit range",
            _ => json_kind(v),
        };
        format!(
            "the value is {kind}, which does not fit the field's type {}",
            leaf.graphql_name()
        )
    }

    pub fn object(v: &Value) -> String {
        format!("the value is {}, but the field is an object", json_kind(v))
    }

    pub fn list(v: &Value) -> String {
        format!("the value is {}, but the field is a list", json_kind(v))
    }

    /// async-graphql's dynamic schema cannot give a null object inside a list.
    pub fn null_object_item() -> String {
        "the item is null, and this list of objects cannot hold null".into()
    }

    fn json_kind(v: &Value) -> &'static str {
        match v {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "a list",
            Value::Object(_) => "an object",
        }
    }
}
