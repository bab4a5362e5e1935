//! Types from OpenAPI documents (SPEC §4.4): each call is matched to an operation of its service's
//! document, and every path that reads a call's result is checked against the 2xx JSON response
//! schema, with did-you-mean hints for misspelt properties.

use super::expr::{Expr, Part, PathExpr, Step};
use super::{Call, PathPart, Service};
use crate::config::diag::{closest, Diagnostics};
use crate::config::model::{CompositionConfig, EndpointConfig, Method};
use crate::config::Loaded;
use serde_json::Value;

/// What the compiler knows of the services' documents.
pub struct TypeEnv<'a> {
    docs: Vec<Option<&'a Value>>,
}

/// The type of a value in the data document.
#[derive(Clone)]
enum Ty<'a> {
    /// Unknown: anything goes.
    Any,
    /// A schema inside a document.
    Schema(&'a Value, &'a Value),
    /// An array of something (an `each` call's result).
    ArrayOf(Box<Ty<'a>>),
    /// A type with one field added (`attach`).
    With(Box<Ty<'a>>, String, Box<Ty<'a>>),
}

/// What a matched operation is called in messages: `users GET /users/{id}`.
struct Operation<'a> {
    label: String,
    response: Option<&'a Value>,
}

impl<'a> TypeEnv<'a> {
    /// Indexes the loaded documents by service.
    pub fn new(loaded: &'a Loaded, services: &[Service]) -> TypeEnv<'a> {
        TypeEnv {
            docs: services
                .iter()
                .map(|s| loaded.schemas.iter().find(|d| *d.service == *s.name).map(|d| &d.doc))
                .collect(),
        }
    }

    /// Checks one endpoint's calls and expressions against the documents.
    pub fn check_endpoint(
        &self,
        comp: &CompositionConfig,
        ep: &EndpointConfig,
        calls: &[Call],
        response: &Expr,
        diags: &mut Diagnostics,
    ) {
        let file = &comp.file;
        let mut call_types: Vec<Ty<'a>> = Vec::with_capacity(calls.len());
        // What messages call each call's answer: `users GET /users/{id}`, or the service alone.
        let mut labels: Vec<String> = Vec::with_capacity(calls.len());
        for (call, cfg) in calls.iter().zip(&ep.calls) {
            let (ty, label) = match self.docs.get(call.service).copied().flatten() {
                None => (Ty::Any, cfg.service.value.clone()),
                Some(doc) => match find_operation(doc, call) {
                    Some(op) => (
                        op.response.map(|s| Ty::Schema(doc, s)).unwrap_or(Ty::Any),
                        format!("{} {}", cfg.service.value, op.label),
                    ),
                    None => {
                        diags.error(
                            file,
                            cfg.path.loc,
                            format!(
                                "{} {} matches no operation of service `{}`'s OpenAPI document",
                                call.method.as_str(),
                                cfg.path.value,
                                cfg.service.value
                            ),
                            Some("check the path against the document's `paths` (and its first `servers` URL)".into()),
                        );
                        (Ty::Any, cfg.service.value.clone())
                    }
                },
            };
            call_types.push(if call.each.is_some() {
                Ty::ArrayOf(Box::new(ty))
            } else {
                ty
            });
            labels.push(label);
        }
        let checker = Checker {
            calls,
            call_types: &call_types,
            labels: &labels,
        };
        for call in calls {
            let item = match &call.each {
                Some(each) => checker.element(&checker.type_of(&each.over, &Ty::Any, diags, file)),
                None => Ty::Any,
            };
            for part in &call.path {
                if let PathPart::Value { expr, .. } = part {
                    checker.walk(expr, &item, diags, file);
                }
            }
            for (_, e) in &call.query {
                checker.walk(e, &item, diags, file);
            }
            for (_, e) in &call.headers {
                checker.walk(e, &item, diags, file);
            }
            if let Some(b) = &call.body {
                checker.walk(b, &item, diags, file);
            }
            if let Some(w) = &call.when {
                checker.walk(w, &Ty::Any, diags, file);
            }
        }
        checker.walk(response, &Ty::Any, diags, file);
    }
}

struct Checker<'c, 'a> {
    calls: &'c [Call],
    call_types: &'c [Ty<'a>],
    labels: &'c [String],
}

impl<'a> Checker<'_, 'a> {
    /// Checks every path in an expression; `item` is the type of `@`.
    fn walk(&self, e: &Expr, item: &Ty<'a>, diags: &mut Diagnostics, file: &std::sync::Arc<str>) {
        match e {
            Expr::Path(p) => {
                self.path_type(p, item, diags, file);
            }
            Expr::Literal(_) | Expr::Item => {}
            Expr::Template(parts) => {
                for p in parts {
                    if let Part::Expr(e) = p {
                        self.walk(e, item, diags, file);
                    }
                }
            }
            Expr::Func(_, args) | Expr::Array(args) => args.iter().for_each(|a| self.walk(a, item, diags, file)),
            Expr::Object(fields) => fields.iter().for_each(|(_, f)| self.walk(f, item, diags, file)),
            Expr::Each { over, item: inner } => {
                let over_ty = self.type_of(over, item, diags, file);
                let elem = self.element(&over_ty);
                let elem = self.with_attached(over, elem);
                self.walk(inner, &elem, diags, file);
            }
        }
    }

    fn type_of(&self, e: &Expr, item: &Ty<'a>, diags: &mut Diagnostics, file: &std::sync::Arc<str>) -> Ty<'a> {
        match e {
            Expr::Path(p) => self.path_type(p, item, diags, file),
            Expr::Item => item.clone(),
            other => {
                self.walk(other, item, diags, file);
                Ty::Any
            }
        }
    }

    /// `attach` adds a field to the items of the array it walked.
    fn with_attached(&self, over: &Expr, elem: Ty<'a>) -> Ty<'a> {
        let Expr::Path(p) = over else { return elem };
        let Some(steps) = &p.steps else { return elem };
        let mut ty = elem;
        for (i, call) in self.calls.iter().enumerate() {
            if let Some((field, source)) = call.each.as_ref().and_then(|e| e.attach.as_ref()) {
                if !p.relative && source == steps {
                    let resp = match &self.call_types[i] {
                        Ty::ArrayOf(inner) => (**inner).clone(),
                        other => other.clone(),
                    };
                    ty = Ty::With(Box::new(ty), field.clone(), Box::new(resp));
                }
            }
        }
        ty
    }

    fn element(&self, ty: &Ty<'a>) -> Ty<'a> {
        match ty {
            Ty::ArrayOf(inner) => (**inner).clone(),
            Ty::Schema(doc, s) => match items(doc, s) {
                Some(i) => Ty::Schema(doc, i),
                None => Ty::Any,
            },
            _ => Ty::Any,
        }
    }

    fn path_type(&self, p: &PathExpr, item: &Ty<'a>, diags: &mut Diagnostics, file: &std::sync::Arc<str>) -> Ty<'a> {
        let Some(steps) = &p.steps else { return Ty::Any };
        let (mut ty, rest, label) = if p.relative {
            (item.clone(), &steps[..], String::from("the current item"))
        } else {
            let Some(Step::Name(root)) = steps.first() else {
                return Ty::Any;
            };
            match self.calls.iter().position(|c| &c.name == root) {
                Some(i) => (self.call_types[i].clone(), &steps[1..], self.labels[i].clone()),
                None => return Ty::Any,
            }
        };
        let mut wildcard = false;
        for step in rest {
            ty = match (step, &ty) {
                (_, Ty::Any) => return Ty::Any,
                (Step::Name(n), _) => match self.property(&ty, n) {
                    Ok(t) => t,
                    Err(known) => {
                        self.report(p, n, &label, &known, diags, file);
                        return Ty::Any;
                    }
                },
                (Step::Index(_) | Step::Wildcard, _) => {
                    wildcard |= matches!(step, Step::Wildcard);
                    self.element(&ty)
                }
            };
        }
        if wildcard {
            Ty::ArrayOf(Box::new(ty))
        } else {
            ty
        }
    }

    fn property(&self, ty: &Ty<'a>, name: &str) -> Result<Ty<'a>, Vec<String>> {
        match ty {
            Ty::Schema(doc, s) => match property(doc, s, name) {
                Ok(Some(p)) => Ok(Ty::Schema(doc, p)),
                Ok(None) => Ok(Ty::Any),
                Err(known) => Err(known),
            },
            Ty::With(base, field, fty) => {
                if name == field {
                    Ok((**fty).clone())
                } else {
                    self.property(base, name)
                }
            }
            _ => Ok(Ty::Any),
        }
    }

    fn report(
        &self,
        p: &PathExpr,
        name: &str,
        label: &str,
        known: &[String],
        diags: &mut Diagnostics,
        file: &std::sync::Arc<str>,
    ) {
        let hint = closest(name, known.iter().map(String::as_str)).map(|c| format!("did you mean \"{c}\"?"));
        diags.error(
            file,
            p.loc,
            format!("{}: {label} has no property \"{name}\"", p.text),
            hint,
        );
    }
}

/// Follows local `$ref`s (`#/components/schemas/User`).
fn resolve<'a>(doc: &'a Value, mut schema: &'a Value) -> &'a Value {
    for _ in 0..32 {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => match r.strip_prefix('#').and_then(|ptr| doc.pointer(ptr)) {
                Some(target) => schema = target,
                None => return &Value::Null,
            },
            None => return schema,
        }
    }
    schema
}

/// The schema of a property: `Ok(None)` when the schema doesn't say (untyped from here down),
/// `Err(known names)` when the schema lists its properties and this isn't one.
fn property<'a>(doc: &'a Value, schema: &'a Value, name: &str) -> Result<Option<&'a Value>, Vec<String>> {
    let Some(parts) = all_of(doc, schema) else {
        return Ok(None);
    };
    let mut known = Vec::new();
    let mut open = false;
    for part in parts {
        if let Some(props) = part.get("properties").and_then(Value::as_object) {
            if let Some(p) = props.get(name) {
                return Ok(Some(p));
            }
            known.extend(props.keys().cloned());
        }
        match part.get("additionalProperties") {
            Some(Value::Bool(false)) | None => {}
            Some(_) => open = true,
        }
    }
    if known.is_empty() || open {
        Ok(None)
    } else {
        Err(known)
    }
}

/// A schema and, recursively, every `allOf` part of it, `$ref`s resolved; `None` when a `oneOf` or
/// `anyOf` makes the type unknowable (typed `JSON` from there down).
fn all_of<'a>(doc: &'a Value, schema: &'a Value) -> Option<Vec<&'a Value>> {
    let mut out = Vec::new();
    let mut stack = vec![schema];
    while let Some(next) = stack.pop() {
        let s = resolve(doc, next);
        if s.get("oneOf").is_some() || s.get("anyOf").is_some() {
            return None;
        }
        if out.len() > 64 {
            return None;
        }
        if let Some(parts) = s.get("allOf").and_then(Value::as_array) {
            stack.extend(parts.iter());
        }
        out.push(s);
    }
    Some(out)
}

fn items<'a>(doc: &'a Value, schema: &'a Value) -> Option<&'a Value> {
    all_of(doc, schema)?.into_iter().find_map(|part| part.get("items"))
}

/// Matches a call to an operation: the call path equals an operation path `P`, or the first
/// `servers` URL's path followed by `P`; `{param}` segments match any value.
fn find_operation<'a>(doc: &'a Value, call: &Call) -> Option<Operation<'a>> {
    let segments = call_segments(call);
    let base: Vec<String> = doc
        .pointer("/servers/0/url")
        .and_then(Value::as_str)
        .map(|u| {
            let path = match u.find("://") {
                Some(i) => u[i + 3..].find('/').map(|j| &u[i + 3 + j..]).unwrap_or(""),
                None => u,
            };
            path.split('/').filter(|s| !s.is_empty()).map(str::to_string).collect()
        })
        .unwrap_or_default();
    let paths = doc.get("paths")?.as_object()?;
    let method = match call.method {
        Method::Get => "get",
        Method::Post => "post",
        Method::Put => "put",
        Method::Patch => "patch",
        Method::Delete => "delete",
    };
    let mut best: Option<(Vec<bool>, Operation<'a>)> = None;
    for (p, item) in paths {
        let op_segs: Vec<&str> = p.split('/').filter(|s| !s.is_empty()).collect();
        let matches = |prefix: &[String]| -> bool {
            if segments.len() != prefix.len() + op_segs.len() {
                return false;
            }
            let (head, tail) = segments.split_at(prefix.len());
            head.iter().zip(prefix).all(|(s, b)| matches!(s, Seg::Lit(l) if l == b))
                && tail.iter().zip(&op_segs).all(|(s, o)| {
                    if o.starts_with('{') && o.ends_with('}') {
                        true
                    } else {
                        matches!(s, Seg::Lit(l) if l == o)
                    }
                })
        };
        if !(matches(&[]) || (!base.is_empty() && matches(&base))) {
            continue;
        }
        let item = resolve(doc, item);
        let Some(op) = item.get(method) else { continue };
        // OpenAPI's rule: a concrete segment wins over a template at the first place they differ
        // (`/templates/enterprise` before `/templates/{id}`), whatever the document's order.
        let rank: Vec<bool> = op_segs
            .iter()
            .map(|o| !(o.starts_with('{') && o.ends_with('}')))
            .collect();
        if best.as_ref().is_some_and(|(r, _)| *r >= rank) {
            continue;
        }
        best = Some((
            rank,
            Operation {
                label: format!("{} {p}", call.method.as_str()),
                response: response_schema(doc, op),
            },
        ));
    }
    best.map(|(_, op)| op)
}

enum Seg {
    Lit(String),
    Value,
}

fn call_segments(call: &Call) -> Vec<Seg> {
    let mut text = String::new();
    for part in &call.path {
        match part {
            PathPart::Text(t) => text.push_str(t),
            PathPart::Value { .. } => text.push('\u{0}'),
        }
    }
    text.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            if s.contains('\u{0}') {
                Seg::Value
            } else {
                Seg::Lit(s.to_string())
            }
        })
        .collect()
}

fn response_schema<'a>(doc: &'a Value, op: &'a Value) -> Option<&'a Value> {
    let responses = op.get("responses")?.as_object()?;
    let mut codes: Vec<&String> = responses.keys().filter(|k| k.starts_with('2')).collect();
    codes.sort();
    for code in codes {
        let resp = resolve(doc, &responses[code.as_str()]);
        let Some(content) = resp.get("content").and_then(Value::as_object) else {
            continue;
        };
        for (media, body) in content {
            let base = media.split(';').next().unwrap_or("").trim();
            if base == "application/json" || (base.starts_with("application/") && base.ends_with("+json")) {
                return body.get("schema");
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn properties_come_from_nested_all_of_parts_and_refs() {
        let doc = json!({"components": {"schemas": {
            "Base": {"allOf": [{"$ref": "#/components/schemas/Named"}, {"properties": {"id": {}}}]},
            "Named": {"properties": {"firstName": {"type": "string"}}},
            "Loose": {"allOf": [{"$ref": "#/components/schemas/Named"}, {"additionalProperties": true}]},
            "Either": {"allOf": [{"oneOf": [{"type": "string"}]}]},
            "List": {"allOf": [{"type": "array", "items": {"$ref": "#/components/schemas/Named"}}]}
        }}});
        let s = |name: &str| json!({"$ref": format!("#/components/schemas/{name}")});
        let base = s("Base");
        assert!(matches!(property(&doc, &base, "firstName"), Ok(Some(_))));
        assert!(matches!(property(&doc, &base, "id"), Ok(Some(_))));
        let err = property(&doc, &base, "fristName").unwrap_err();
        assert!(err.contains(&"firstName".to_string()) && err.contains(&"id".to_string()));
        assert!(matches!(property(&doc, &s("Loose"), "anything"), Ok(None)));
        assert!(matches!(property(&doc, &s("Either"), "anything"), Ok(None)));
        let list = s("List");
        let item = items(&doc, &list).unwrap();
        assert!(matches!(property(&doc, item, "firstName"), Ok(Some(_))));
    }
}
