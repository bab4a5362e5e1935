//! Types from OpenAPI documents (SPEC §4.4): each call is matched to an operation of its service's
//! document, and every path that reads a call's result is checked against the 2xx JSON response
//! schema, with did-you-mean hints for misspelt properties.

use super::expr::{Compared, Expr, Func, Part, PathExpr, Step};
use super::output::{item_steps, own_needs, Kind, Leaf, OutField, OutType};
use super::{Call, PathPart, Service};
use crate::config::diag::{closest, Diagnostics, Loc};
use crate::config::model::{BaseType, CompositionConfig, EndpointConfig, Method, ParamType, ScalarType};
use crate::config::yaml::Node;
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
    /// The answer of a call whose `fallback` may stand in for it: the document's property types
    /// still hold, but not what it says is required (`fallback: { available: 0 }` has no `sku`).
    Relaxed(Box<Ty<'a>>),
}

/// `ty` as the answer of a call with a `fallback` (see [`Ty::Relaxed`]).
fn relaxed(ty: Ty<'_>) -> Ty<'_> {
    match ty {
        Ty::Any | Ty::Relaxed(_) => ty,
        other => Ty::Relaxed(Box::new(other)),
    }
}

/// An output type with nothing below it promised present: every object field and list item
/// nullable.
fn relax(mut out: OutType) -> OutType {
    out.nullable = true;
    out.kind = match out.kind {
        Kind::Object(fields) => Kind::Object(fields.into_iter().map(|f| OutField { ty: relax(f.ty), ..f }).collect()),
        Kind::List(inner) => Kind::List(Box::new(relax(*inner))),
        leaf => leaf,
    };
    out
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

    /// Checks one endpoint's calls and expressions against the documents, and infers the type
    /// of its response (SPEC §5: types and nullability).
    pub fn check_endpoint(
        &self,
        comp: &CompositionConfig,
        ep: &EndpointConfig,
        calls: &[Call],
        response: &Expr,
        diags: &mut Diagnostics,
    ) -> OutType {
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
            if let (Some(fallback), Some(at)) = (&call.fallback, &cfg.fallback) {
                if let Some(misfit) =
                    fallback_misfit(&Checker::schema_out(&ty, 0, &mut Vec::new()), fallback, String::new())
                {
                    diags.error(
                        file,
                        at.loc,
                        format!("the fallback does not fit what {label} answers: {misfit}"),
                        Some("a fallback stands in for the backend's answer: give each field the type the document gives it".into()),
                    );
                }
            }
            let ty = if call.fallback.is_some() { relaxed(ty) } else { ty };
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
            params: &ep.params,
        };
        // `calls` are compiled one for one from `ep.calls`, in order.
        for (call, cfg) in calls.iter().zip(&ep.calls) {
            if let (Some(each), Some(at)) = (&call.each, &cfg.attach) {
                checker.check_attach_items(&each.over, at, &call.name, diags, file);
            }
            let item = match &call.each {
                Some(each) => {
                    let over = checker.type_of(&each.over, &Ty::Any, diags, file);
                    checker.check_each_over(&each.over, &over, diags, file);
                    checker.element(&over)
                }
                None => Ty::Any,
            };
            for part in &call.path {
                if let PathPart::Value { expr, .. } = part {
                    checker.walk(expr, &item, diags, file);
                    checker.check_path_value(part, &call.name, &item, cfg.path.loc, diags, file);
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
        checker.output(response, &Ty::Any, None, Some(&ep.response), ep.response.loc)
    }
}

struct Checker<'c, 'a> {
    calls: &'c [Call],
    call_types: &'c [Ty<'a>],
    labels: &'c [String],
    params: &'c [crate::config::model::ParamConfig],
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
            Expr::Func(f, args) => {
                args.iter().for_each(|a| self.walk(a, item, diags, file));
                self.check_argument(*f, args, item, diags, file);
            }
            Expr::Array(args) => args.iter().for_each(|a| self.walk(a, item, diags, file)),
            Expr::Object(fields) => fields.iter().for_each(|(_, f)| self.walk(f, item, diags, file)),
            Expr::Each { over, item: inner } => {
                let over_ty = self.type_of(over, item, diags, file);
                self.check_each_over(over, &over_ty, diags, file);
                if let (Expr::Path(p), false) = (&**over, reads_item(inner)) {
                    diags.warning(
                        file,
                        p.loc,
                        format!(
                            "no field of `each: {}` reads its item (`@`): every item of the list is the same object",
                            p.text
                        ),
                    );
                }
                let elem = self.element(&over_ty);
                let elem = self.with_attached(over, elem);
                self.walk(inner, &elem, diags, file);
            }
        }
    }

    /// A `{…}` part of a call's path is one segment: a list or an object would go into the URL
    /// as JSON text.
    fn check_path_value(
        &self,
        part: &PathPart,
        call: &str,
        item: &Ty<'a>,
        at: Loc,
        diags: &mut Diagnostics,
        file: &std::sync::Arc<str>,
    ) {
        let PathPart::Value { expr, text, .. } = part else {
            return;
        };
        let kind = self.output(expr, item, None, None, at).kind;
        let hint = match kind {
            Kind::List(_) => "a path segment takes one value: one item (`[0]`), or `each` for one call per item",
            Kind::Object(_) => "a path segment takes one value: name the field that holds it",
            Kind::Leaf(_) => return,
        };
        diags.error(
            file,
            at,
            format!(
                "`{{{text}}}` in the path of call `{call}` is {}: it would go into the URL as JSON text",
                kind_words(&kind, false)
            ),
            Some(hint.into()),
        );
    }

    /// `attach` sets a member on each item of the array `each` walks: items the document (or the
    /// parameter's type) says are strings, numbers or lists cannot hold one, and every
    /// `@.<field>` read of them would be null.
    fn check_attach_items(
        &self,
        over: &Expr,
        at: &crate::config::model::Spanned<String>,
        call: &str,
        diags: &mut Diagnostics,
        file: &std::sync::Arc<str>,
    ) {
        let Expr::Path(p) = over else { return };
        let items = match p.walk_steps().as_deref() {
            Some([Step::Name(root), Step::Name(name), Step::Wildcard]) if !p.relative && root == "args" => {
                match self.params.iter().find(|q| q.name.value == *name).map(|q| &q.ty.base) {
                    Some(BaseType::List(inner)) => param_out(inner).kind,
                    _ => return,
                }
            }
            _ => match self.path_type(p, &Ty::Any, &mut Diagnostics::default(), file) {
                Ty::ArrayOf(inner) => Self::schema_out(&inner, 0, &mut Vec::new()).kind,
                _ => return,
            },
        };
        if matches!(items, Kind::Object(_) | Kind::Leaf(Leaf::Json)) {
            return;
        }
        diags.error(
            file,
            at.loc,
            format!(
                "`attach: {}` sets a field on each item of `{}`, but its items are {}, not objects",
                at.value,
                p.text,
                kind_words(&items, true)
            ),
            Some(format!("read the answers in item order as `$.{call}[*]` instead")),
        );
    }

    /// A function whose argument's documented type means it can only give nothing: `sum` of
    /// strings (a price written `"19.99"` adds up to 0), `length` of a number or a boolean
    /// (always null). Only a path's type is known well enough to say so; untyped values pass.
    fn check_argument(
        &self,
        f: Func,
        args: &[Expr],
        item: &Ty<'a>,
        diags: &mut Diagnostics,
        file: &std::sync::Arc<str>,
    ) {
        let Some(Expr::Path(p)) = args.first() else { return };
        let ty = self.path_out(p, item);
        let numeric = |k: &Kind| matches!(k, Kind::Leaf(Leaf::Int | Leaf::Float | Leaf::Json));
        let problem = match f {
            Func::Sum => match &ty.kind {
                Kind::List(inner) if !numeric(&inner.kind) => {
                    Some(format!("its items are {}", kind_words(&inner.kind, true)))
                }
                Kind::List(_) => None,
                other if !numeric(other) => Some(format!("it is {}, not a list of numbers", kind_words(other, false))),
                _ => None,
            },
            Func::Length => match &ty.kind {
                Kind::Leaf(Leaf::Int | Leaf::Float | Leaf::Boolean) => {
                    Some(format!("it is {}", kind_words(&ty.kind, false)))
                }
                _ => None,
            },
            Func::First | Func::Coalesce | Func::Join => None,
        };
        if let Some(problem) = problem {
            let (what, hint) = match f {
                Func::Sum => (
                    "sum adds only numbers",
                    "strings and booleans count as nothing (a price written \"19.99\" adds 0): point sum at numeric fields",
                ),
                _ => (
                    "length counts the items of a list, the characters of a string or the keys of an object",
                    "on anything else it is always null: point it at the list, string or object itself",
                ),
            };
            diags.error(
                file,
                p.loc,
                format!("{}({}): {problem}; {what}", f.name(), p.text),
                Some(hint.into()),
            );
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
        // A filter or a slice walks the same items as `[*]` (the ones it leaves out have no
        // answer attached, and `@` fields are nullable).
        let Some(steps) = p.walk_steps() else {
            return elem;
        };
        let steps = &steps;
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
            Ty::Relaxed(inner) => relaxed(self.element(inner)),
            Ty::Schema(doc, s) => match items(doc, s) {
                Some(i) => Ty::Schema(doc, i),
                None => Ty::Any,
            },
            _ => Ty::Any,
        }
    }

    fn path_type(&self, p: &PathExpr, item: &Ty<'a>, diags: &mut Diagnostics, file: &std::sync::Arc<str>) -> Ty<'a> {
        let reads = crate::plan::expr::filter_reads(&p.query);
        // The `$` paths its filters read (`[?@.id == $.user.bestFriendId]`) are checked too.
        for read in &reads.document {
            if let Some((Step::Name(root), rest)) = read.split_first() {
                if let Some(i) = self.calls.iter().position(|c| &c.name == root) {
                    self.follow(&self.call_types[i], rest, p, &self.labels[i], diags, file);
                }
            }
        }
        let typing;
        let steps = match &p.steps {
            Some(steps) => steps,
            None => match crate::plan::expr::typing_steps(&p.query.segments) {
                Some(steps) => {
                    typing = steps;
                    &typing
                }
                None => return Ty::Any,
            },
        };
        let (mut ty, rest, label) = if p.relative {
            (item.clone(), &steps[..], String::from("the current item"))
        } else {
            let Some(Step::Name(root)) = steps.first() else {
                return Ty::Any;
            };
            if root == "args" {
                self.check_arg_steps(&steps[1..], p, diags, file);
                return Ty::Any;
            }
            match self.calls.iter().position(|c| &c.name == root) {
                Some(i) => (self.call_types[i].clone(), &steps[1..], self.labels[i].clone()),
                None => return Ty::Any,
            }
        };
        let skipped = steps.len() - rest.len();
        let mut wildcard = false;
        for (i, step) in rest.iter().enumerate() {
            if matches!(ty, Ty::Any) {
                return Ty::Any;
            }
            wildcard |= matches!(step, Step::Wildcard);
            ty = self.step(&ty, step, p, &label, diags, file);
            // The paths a filter of this segment tests, from the items it tests.
            for (_, tested) in reads.tested.iter().filter(|(at, _)| *at == skipped + i) {
                self.follow(&ty, tested, p, &label, diags, file);
            }
            for (_, compared) in reads.compared.iter().filter(|(at, _)| *at == skipped + i) {
                // Any property problem on the way was reported by the loop above.
                let end = self.follow(&ty, &compared.steps, p, &label, &mut Diagnostics::default(), file);
                self.check_comparison(&end, compared, p, diags, file);
            }
        }
        if wildcard {
            Ty::ArrayOf(Box::new(ty))
        } else {
            ty
        }
    }

    /// Follows a filter's path from the value it starts at (the item it tests, or a call's
    /// answer), reporting a property its schema does not have (`[?@.yeer > 2000]` would
    /// silently match nothing).
    fn follow(
        &self,
        from: &Ty<'a>,
        steps: &[Step],
        p: &PathExpr,
        label: &str,
        diags: &mut Diagnostics,
        file: &std::sync::Arc<str>,
    ) -> Ty<'a> {
        let mut ty = from.clone();
        for step in steps {
            if matches!(ty, Ty::Any) {
                return Ty::Any;
            }
            ty = self.step(&ty, step, p, label, diags, file);
        }
        ty
    }

    /// A filter's comparison of an `@` path with a literal of another type than the document
    /// gives that path: RFC 9535 makes `==` and the orderings false for values of different
    /// types (and `!=` true), so `[?@.year == '2000']` on an integer `year` never matches.
    fn check_comparison(
        &self,
        tested: &Ty<'a>,
        c: &Compared,
        p: &PathExpr,
        diags: &mut Diagnostics,
        file: &std::sync::Arc<str>,
    ) {
        let Ty::Schema(doc, schema) = tested else { return };
        let Some(kind) = schema_kind(doc, schema) else { return };
        let meets = match kind {
            "integer" | "number" => c.literal == "number",
            other => other == c.literal,
        };
        if meets {
            return;
        }
        let path: String = c
            .steps
            .iter()
            .map(|s| match s {
                Step::Name(n) => format!(".{n}"),
                Step::Index(i) => format!("[{i}]"),
                Step::Wildcard => "[*]".into(),
            })
            .collect();
        let always = if c.op == "!=" { "always true" } else { "never true" };
        diags.error(
            file,
            p.loc,
            format!(
                "{}: `@{path} {} {}` compares {} with a {}: it is {always}",
                p.text,
                c.op,
                c.text,
                other_words(kind),
                c.literal
            ),
            Some(format!(
                "values of different types are never equal: write the literal as {} (the service's document types `@{path}` so)",
                other_words(kind)
            )),
        );
    }

    /// One step of a path: a property (a property the schema does not have is reported, and
    /// what follows is untyped) or an element.
    fn step(
        &self,
        ty: &Ty<'a>,
        step: &Step,
        p: &PathExpr,
        label: &str,
        diags: &mut Diagnostics,
        file: &std::sync::Arc<str>,
    ) -> Ty<'a> {
        match step {
            Step::Name(n) => self.property(ty, n).unwrap_or_else(|miss| {
                self.report(p, n, label, &miss, diags, file);
                Ty::Any
            }),
            Step::Index(i) => {
                if let Some(kind) = self.not_a_list(ty) {
                    diags.error(
                        file,
                        p.loc,
                        format!(
                            "{}: [{i}] reads an item of a list, but {label} gives {kind} there",
                            p.text
                        ),
                        Some(
                            "an index of anything but a list selects nothing: drop it, or point the path at the list"
                                .into(),
                        ),
                    );
                    return Ty::Any;
                }
                self.element(ty)
            }
            Step::Wildcard => self.element(ty),
        }
    }

    /// The steps of a `$.args.<name>…` path against the parameter's declared type: a member of a
    /// scalar or a list, or an index of a scalar, could only ever give null.
    fn check_arg_steps(&self, steps: &[Step], p: &PathExpr, diags: &mut Diagnostics, file: &std::sync::Arc<str>) {
        let Some((Step::Name(name), rest)) = steps.split_first() else {
            return;
        };
        let Some(param) = self.params.iter().find(|q| q.name.value == *name) else {
            return;
        };
        let label = format!("parameter `{name}`");
        let mut ty = &param.ty;
        for step in rest {
            let words = match &ty.base {
                BaseType::Scalar(ScalarType::Json) => return,
                BaseType::List(inner) => match step {
                    Step::Index(_) | Step::Wildcard => {
                        ty = inner;
                        continue;
                    }
                    Step::Name(_) => "a list",
                },
                BaseType::Scalar(ScalarType::Boolean) => "a boolean",
                BaseType::Scalar(ScalarType::Int | ScalarType::Float) => "a number",
                BaseType::Scalar(ScalarType::Id | ScalarType::String) => "a string",
            };
            match step {
                Step::Name(n) => self.report(p, n, &label, &Miss::NotObject(words), diags, file),
                Step::Index(_) | Step::Wildcard => diags.error(
                    file,
                    p.loc,
                    format!("{}: {label} is {words}, which has no items", p.text),
                    Some("an index of anything but a list selects nothing: drop it".into()),
                ),
            }
            return;
        }
    }

    /// `each` walks the items of a list: over one value the document types as an object or a
    /// scalar, a call `each` fails and a response `each` makes a list of that one value, which
    /// is never what `$.order.item` (for `$.order.items[*]`) meant.
    fn check_each_over(&self, over: &Expr, ty: &Ty<'a>, diags: &mut Diagnostics, file: &std::sync::Arc<str>) {
        let Expr::Path(p) = over else { return };
        if !p.singular {
            return;
        }
        if let Some(kind) = self.not_a_list(ty) {
            diags.error(
                file,
                p.loc,
                format!("`each: {}` walks a list, but this is {kind}", p.text),
                Some("point it at a list (`$.order.items`, `$.order.items[*]`)".into()),
            );
        }
    }

    /// What a value is when its schema says it is not a list (`a string`, `an object`).
    fn not_a_list(&self, ty: &Ty<'a>) -> Option<&'static str> {
        match ty {
            Ty::Schema(doc, s) => match schema_kind(doc, s)? {
                "array" => None,
                other => Some(other_words(other)),
            },
            Ty::Relaxed(inner) => self.not_a_list(inner),
            Ty::With(..) => Some("an object"),
            _ => None,
        }
    }

    fn property(&self, ty: &Ty<'a>, name: &str) -> Result<Ty<'a>, Miss> {
        match ty {
            Ty::Schema(doc, s) => match property(doc, s, name) {
                Ok(Some(p)) => Ok(Ty::Schema(doc, p)),
                Ok(None) => Ok(Ty::Any),
                Err(miss) => Err(miss),
            },
            Ty::ArrayOf(_) => Err(Miss::NotObject("a list (one answer per item of `each`)")),
            Ty::With(base, field, fty) => {
                if name == field {
                    Ok((**fty).clone())
                } else {
                    self.property(base, name)
                }
            }
            Ty::Relaxed(inner) => self.property(inner, name).map(relaxed),
            _ => Ok(Ty::Any),
        }
    }

    fn report(
        &self,
        p: &PathExpr,
        name: &str,
        label: &str,
        miss: &Miss,
        diags: &mut Diagnostics,
        file: &std::sync::Arc<str>,
    ) {
        let (message, hint) = match miss {
            Miss::Unknown(known) => (
                format!("{}: {label} has no property \"{name}\"", p.text),
                closest(name, known.iter().map(String::as_str)).map(|c| format!("did you mean \"{c}\"?")),
            ),
            Miss::NotObject(kind) => (
                format!(
                    "{}: \"{name}\" is read from {kind}, which has no properties ({label})",
                    p.text
                ),
                Some(if kind.starts_with("a list") {
                    format!("read it from the items: `[*].{name}` (or one of them: `[0].{name}`)")
                } else {
                    "a member of anything but an object is always null: point the path at the object".into()
                }),
            ),
        };
        diags.error(file, p.loc, message, hint);
    }
}

/// Whether an expression reads the current item of its `each` (`@`, `@.x`), a nested `each`'s
/// own items aside.
fn reads_item(e: &Expr) -> bool {
    match e {
        Expr::Item => true,
        Expr::Path(p) => p.relative,
        Expr::Literal(_) => false,
        Expr::Template(parts) => parts.iter().any(|p| matches!(p, Part::Expr(e) if reads_item(e))),
        Expr::Func(_, args) | Expr::Array(args) => args.iter().any(reads_item),
        Expr::Object(fields) => fields.iter().any(|(_, f)| reads_item(f)),
        Expr::Each { over, .. } => reads_item(over),
    }
}

/// An output type in words, for messages: `String`, `an object` (`objects` for items).
fn kind_words(k: &Kind, plural: bool) -> &'static str {
    match (k, plural) {
        (Kind::Leaf(leaf), _) => leaf.graphql_name(),
        (Kind::List(_), false) => "a list",
        (Kind::List(_), true) => "lists",
        (Kind::Object(_), false) => "an object",
        (Kind::Object(_), true) => "objects",
    }
}

/// How deep an OpenAPI schema is turned into object types before the rest is `JSON` (a recursive
/// schema, a tree of categories, would otherwise never end).
const MAX_OBJECT_DEPTH: usize = 12;

impl<'a> Checker<'_, 'a> {
    /// The output type of an expression; `node` is where it was written (for field locations),
    /// `item`/`steps` what `@` is.
    fn output(&self, e: &Expr, item: &Ty<'a>, steps: Option<&[Step]>, node: Option<&Node>, loc: Loc) -> OutType {
        match e {
            Expr::Literal(v) => literal_type(v),
            Expr::Template(_) => OutType::non_null(Kind::Leaf(Leaf::String)),
            Expr::Item => Self::schema_out(item, 0, &mut Vec::new()).or_null(),
            Expr::Path(p) => self.path_out(p, item),
            Expr::Func(f, args) => {
                let arg = |i: usize| {
                    args.get(i)
                        .map(|a| self.output(a, item, steps, None, loc))
                        .unwrap_or(OutType::leaf(Leaf::Json))
                };
                match f {
                    Func::Length => OutType {
                        nullable: arg(0).nullable,
                        ..OutType::leaf(Leaf::Int)
                    },
                    Func::Join => OutType::non_null(Kind::Leaf(Leaf::String)),
                    Func::First => match arg(0).kind {
                        Kind::List(inner) => inner.or_null(),
                        other => OutType::nullable(other),
                    },
                    Func::Coalesce => {
                        let types: Vec<OutType> = (0..args.len()).map(arg).collect();
                        let mut t = OutType::unify(&types);
                        t.nullable = types.iter().all(|t| t.nullable);
                        t
                    }
                    Func::Sum => {
                        let leaf = match arg(0).innermost().kind {
                            Kind::Leaf(Leaf::Int) => Leaf::Int,
                            _ => Leaf::Float,
                        };
                        OutType::leaf(leaf)
                    }
                }
            }
            Expr::Array(items) => {
                let types: Vec<OutType> = items.iter().map(|i| self.output(i, item, steps, None, loc)).collect();
                let inner = if types.is_empty() {
                    OutType::leaf(Leaf::Json)
                } else {
                    OutType::unify(&types)
                };
                OutType::non_null(Kind::List(Box::new(inner)))
            }
            Expr::Object(fields) => {
                let entries = node.and_then(Node::as_map);
                let out = fields
                    .iter()
                    .map(|(name, fe)| {
                        let entry = entries.and_then(|m| m.iter().find(|(k, _)| k.as_scalar() == Some(name.as_str())));
                        let key_loc = entry.map(|(k, _)| k.loc).unwrap_or(loc);
                        let value_node = entry.map(|(_, v)| v);
                        OutField {
                            name: name.clone(),
                            ty: self.output(fe, item, steps, value_node, key_loc),
                            loc: key_loc,
                            needs: own_needs(fe, steps, self.calls),
                        }
                    })
                    .collect();
                OutType {
                    exact: true,
                    ..OutType::non_null(Kind::Object(out))
                }
            }
            Expr::Each { over, item: inner } => {
                let mut scratch = Diagnostics::default();
                let file: std::sync::Arc<str> = "".into();
                let over_ty = self.type_of(over, item, &mut scratch, &file);
                let elem = self.with_attached(over, self.element(&over_ty));
                let inner_steps = item_steps(over, steps);
                let fields_node = node
                    .and_then(Node::as_map)
                    .and_then(|m| m.iter().find(|(k, _)| k.as_scalar() == Some("fields")))
                    .map(|(_, v)| v);
                let mut t = self.output(inner, &elem, inner_steps.as_deref(), fields_node, loc);
                t.nullable = false;
                OutType::non_null(Kind::List(Box::new(t)))
            }
        }
    }

    /// The type of a path: `[T]!` when it is not singular; otherwise its schema's type, non-null
    /// only for required properties all the way down a call that always runs and must succeed.
    fn path_out(&self, p: &PathExpr, item: &Ty<'a>) -> OutType {
        let mut scratch = Diagnostics::default();
        let file: std::sync::Arc<str> = "".into();
        if !p.singular {
            let inner = match self.path_type(p, item, &mut scratch, &file) {
                Ty::ArrayOf(inner) => Self::schema_out(&inner, 0, &mut Vec::new()),
                _ => OutType::leaf(Leaf::Json),
            };
            return OutType::non_null(Kind::List(Box::new(inner.or_null())));
        }
        if let Some(param) = self.param_read(p) {
            let mut out = param_out(&param.ty);
            out.nullable = !self.never_null(p);
            return out;
        }
        let ty = self.path_type(p, item, &mut scratch, &file);
        let mut out = Self::schema_out(&ty, 0, &mut Vec::new());
        out.nullable = !self.never_null(p);
        out
    }

    /// The parameter a path reads whole (`$.args.id`).
    fn param_read(&self, p: &PathExpr) -> Option<&crate::config::model::ParamConfig> {
        match p.steps.as_deref() {
            Some([Step::Name(root), Step::Name(n)]) if !p.relative && root == "args" => {
                self.params.iter().find(|q| q.name.value == *n)
            }
            _ => None,
        }
    }

    /// Whether a singular path can never give null.
    fn never_null(&self, p: &PathExpr) -> bool {
        if p.relative {
            return false;
        }
        let Some(steps) = &p.steps else { return false };
        let Some(Step::Name(root)) = steps.first() else {
            return false;
        };
        if root == "args" {
            return match steps.get(1..) {
                Some([Step::Name(n)]) => self
                    .params
                    .iter()
                    .any(|q| q.name.value == *n && (q.ty.required || q.default.is_some())),
                _ => false,
            };
        }
        let Some(i) = self.calls.iter().position(|c| &c.name == root) else {
            return false;
        };
        let call = &self.calls[i];
        if call.optional || call.when.is_some() || call.each.is_some() {
            return false;
        }
        let Ty::Schema(doc, mut schema) = self.call_types[i].clone() else {
            return false;
        };
        if is_nullable(doc, schema) {
            return false;
        }
        for step in &steps[1..] {
            let Step::Name(n) = step else { return false };
            if !is_required(doc, schema, n) {
                return false;
            }
            match property(doc, schema, n) {
                Ok(Some(next)) => schema = next,
                _ => return false,
            }
            if is_nullable(doc, schema) {
                return false;
            }
        }
        true
    }

    /// A data-document type as an output type (nullable unless a list item says otherwise).
    fn schema_out(ty: &Ty<'a>, depth: usize, seen: &mut Vec<*const Value>) -> OutType {
        match ty {
            Ty::Any => OutType::leaf(Leaf::Json),
            Ty::ArrayOf(inner) => {
                OutType::nullable(Kind::List(Box::new(Self::schema_out(inner, depth + 1, seen).or_null())))
            }
            Ty::With(base, field, fty) => {
                let mut out = Self::schema_out(base, depth, seen);
                if let Kind::Object(fields) = &mut out.kind {
                    let attached = OutField {
                        name: field.clone(),
                        ty: Self::schema_out(fty, depth + 1, seen).or_null(),
                        loc: Loc::default(),
                        needs: Vec::new(),
                    };
                    match fields.iter_mut().find(|f| f.name == *field) {
                        Some(f) => *f = attached,
                        None => fields.push(attached),
                    }
                }
                out
            }
            Ty::Schema(doc, s) => schema_type(doc, s, depth, seen),
            Ty::Relaxed(inner) => relax(Self::schema_out(inner, depth, seen)),
        }
    }
}

/// Where a fallback contradicts the type of the answer it stands in for (`null` and missing
/// fields fit anything; fields the document does not have are not checked).
fn fallback_misfit(out: &OutType, v: &Value, at: String) -> Option<String> {
    let name = |at: &str| {
        if at.is_empty() {
            "it".to_string()
        } else {
            format!("`{at}`")
        }
    };
    let found = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    let misfit = |wanted: &str| Some(format!("{} is {} where the document has {wanted}", name(&at), found(v)));
    match (&out.kind, v) {
        (_, Value::Null) | (Kind::Leaf(Leaf::Json), _) => None,
        (Kind::Leaf(Leaf::Int), Value::Number(n)) if n.is_i64() || n.is_u64() => None,
        (Kind::Leaf(Leaf::Int), _) => misfit("an integer"),
        (Kind::Leaf(Leaf::Float), Value::Number(_)) => None,
        (Kind::Leaf(Leaf::Float), _) => misfit("a number"),
        (Kind::Leaf(Leaf::String), Value::String(_)) => None,
        (Kind::Leaf(Leaf::String), _) => misfit("a string"),
        (Kind::Leaf(Leaf::Boolean), Value::Bool(_)) => None,
        (Kind::Leaf(Leaf::Boolean), _) => misfit("a boolean"),
        (Kind::List(inner), Value::Array(items)) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| fallback_misfit(inner, item, format!("{at}[{i}]"))),
        (Kind::List(_), _) => misfit("an array"),
        (Kind::Object(fields), Value::Object(members)) => fields.iter().find_map(|f| {
            let member = members.get(&f.name)?;
            let path = if at.is_empty() {
                f.name.clone()
            } else {
                format!("{at}.{}", f.name)
            };
            fallback_misfit(&f.ty, member, path)
        }),
        (Kind::Object(_), _) => misfit("an object"),
    }
}

/// The output type of a literal: by its value.
fn literal_type(v: &Value) -> OutType {
    let leaf = match v {
        Value::Null => return OutType::leaf(Leaf::Json),
        Value::Bool(_) => Leaf::Boolean,
        Value::Number(n) if n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()) => Leaf::Int,
        Value::Number(_) => Leaf::Float,
        Value::String(_) => Leaf::String,
        Value::Array(_) | Value::Object(_) => Leaf::Json,
    };
    OutType::non_null(Kind::Leaf(leaf))
}

/// The output type of a parameter read back from `$.args`.
fn param_out(ty: &ParamType) -> OutType {
    let kind = match &ty.base {
        BaseType::Scalar(s) => Kind::Leaf(match s {
            ScalarType::Id | ScalarType::String => Leaf::String,
            ScalarType::Int => Leaf::Int,
            ScalarType::Float => Leaf::Float,
            ScalarType::Boolean => Leaf::Boolean,
            ScalarType::Json => Leaf::Json,
        }),
        BaseType::List(inner) => Kind::List(Box::new(param_out(inner))),
    };
    OutType {
        nullable: !ty.required,
        ..OutType::nullable(kind)
    }
}

/// Whether a name can be a GraphQL field or type name (`[_A-Za-z][_0-9A-Za-z]*`, not `__…`).
pub fn is_graphql_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
        && !name.starts_with("__")
}

/// An OpenAPI schema as an output type (nullable; the caller decides).
fn schema_type<'a>(doc: &'a Value, s: &'a Value, depth: usize, seen: &mut Vec<*const Value>) -> OutType {
    let json = OutType::leaf(Leaf::Json);
    let resolved = resolve(doc, s);
    let key = resolved as *const Value;
    if depth > MAX_OBJECT_DEPTH || seen.contains(&key) {
        return json;
    }
    let Some(parts) = all_of(doc, s) else { return json };
    let ty = parts.iter().find_map(|p| type_name(p));
    match ty.as_deref() {
        Some("integer") => OutType::leaf(Leaf::Int),
        Some("number") => OutType::leaf(Leaf::Float),
        Some("string") => OutType::leaf(Leaf::String),
        Some("boolean") => OutType::leaf(Leaf::Boolean),
        Some("array") => {
            let Some(items) = parts.iter().find_map(|p| p.get("items")) else {
                return OutType::nullable(Kind::List(Box::new(json)));
            };
            seen.push(key);
            let mut inner = schema_type(doc, items, depth + 1, seen);
            seen.pop();
            // An item the document types and does not declare nullable is never null.
            inner.nullable = matches!(inner.kind, Kind::Leaf(Leaf::Json)) || is_nullable(doc, items);
            OutType::nullable(Kind::List(Box::new(inner)))
        }
        Some("object") | None => {
            let mut props: Vec<(&String, &Value)> = Vec::new();
            for p in &parts {
                match p.get("additionalProperties") {
                    Some(Value::Bool(false)) | None => {}
                    Some(_) => return json,
                }
                if let Some(m) = p.get("properties").and_then(Value::as_object) {
                    for (k, v) in m {
                        if !props.iter().any(|(n, _)| *n == k) {
                            props.push((k, v));
                        }
                    }
                }
            }
            if props.is_empty() || props.iter().any(|(n, _)| !is_graphql_name(n)) {
                return json;
            }
            seen.push(key);
            let fields = props
                .into_iter()
                .map(|(name, ps)| {
                    let mut ty = schema_type(doc, ps, depth + 1, seen);
                    ty.nullable = !is_required(doc, s, name) || is_nullable(doc, ps);
                    OutField {
                        name: name.clone(),
                        ty,
                        loc: Loc::default(),
                        needs: Vec::new(),
                    }
                })
                .collect();
            seen.pop();
            OutType::nullable(Kind::Object(fields))
        }
        Some(_) => json,
    }
}

/// The schema's `type`, without `"null"` (OpenAPI 3.1 writes `type: [string, "null"]`).
fn type_name(schema: &Value) -> Option<String> {
    match schema.get("type")? {
        Value::String(t) => Some(t.clone()),
        Value::Array(ts) => {
            let named: Vec<&str> = ts.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect();
            match named.as_slice() {
                [one] => Some(one.to_string()),
                _ => Some("mixed".into()),
            }
        }
        _ => None,
    }
}

/// Whether a schema lets its value be null (`nullable: true`, or `"null"` among its types).
fn is_nullable(doc: &Value, schema: &Value) -> bool {
    let Some(parts) = all_of(doc, schema) else { return true };
    parts.iter().any(|p| {
        p.get("nullable") == Some(&Value::Bool(true))
            || p.get("type")
                .and_then(Value::as_array)
                .is_some_and(|ts| ts.iter().any(|t| t == "null"))
            || p.get("type") == Some(&Value::String("null".into()))
    })
}

/// Whether `name` is in the `required` list of the schema or one of its `allOf` parts.
fn is_required(doc: &Value, schema: &Value, name: &str) -> bool {
    all_of(doc, schema).is_some_and(|parts| {
        parts.iter().any(|p| {
            p.get("required")
                .and_then(Value::as_array)
                .is_some_and(|r| r.iter().any(|n| n == name))
        })
    })
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

/// Why a property cannot be read.
enum Miss {
    /// The schema lists its properties, and this is not one of them.
    Unknown(Vec<String>),
    /// The value is not an object (`a string`, `a list`).
    NotObject(&'static str),
}

/// What a schema's `type` says the value is, when every part that says anything agrees on one
/// type (`None`: untyped, mixed, or open to `oneOf`/`anyOf`).
fn schema_kind(doc: &Value, schema: &Value) -> Option<&'static str> {
    let parts = all_of(doc, schema)?;
    let mut kind = None;
    for part in parts {
        let this = match type_name(part).as_deref() {
            Some("string") => "string",
            Some("integer") => "integer",
            Some("number") => "number",
            Some("boolean") => "boolean",
            Some("array") => "array",
            Some("object") => "object",
            Some(_) => return None,
            None if part.get("properties").is_some() => "object",
            None if part.get("items").is_some() => "array",
            None => continue,
        };
        if kind.is_some_and(|k| k != this) {
            return None;
        }
        kind = Some(this);
    }
    kind
}

/// A schema kind in words: `a string`, `an object`.
fn other_words(kind: &str) -> &'static str {
    match kind {
        "string" => "a string",
        "integer" => "an integer",
        "number" => "a number",
        "boolean" => "a boolean",
        "array" => "a list",
        _ => "an object",
    }
}

/// The schema of a property: `Ok(None)` when the schema doesn't say (untyped from here down),
/// `Err` when the schema lists its properties and this isn't one, or says the value is not an
/// object at all.
fn property<'a>(doc: &'a Value, schema: &'a Value, name: &str) -> Result<Option<&'a Value>, Miss> {
    if let Some(kind) = schema_kind(doc, schema).filter(|k| *k != "object") {
        return Err(Miss::NotObject(other_words(kind)));
    }
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
        Err(Miss::Unknown(known))
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
        .pointer("/servers/0")
        .and_then(server_url)
        .map(|u| {
            let path = match u.find("://") {
                Some(i) => u[i + 3..].find('/').map(|j| &u[i + 3 + j..]).unwrap_or(""),
                None => &u,
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
    let mut best: Option<(Vec<u8>, Operation<'a>)> = None;
    for (p, item) in paths {
        let op_segs: Vec<&str> = p.split('/').filter(|s| !s.is_empty()).collect();
        let matches = |prefix: &[String]| -> bool {
            if segments.len() != prefix.len() + op_segs.len() {
                return false;
            }
            let (head, tail) = segments.split_at(prefix.len());
            head.iter().zip(prefix).all(|(s, b)| s == b)
                && tail.iter().zip(&op_segs).all(|(s, o)| segment_matches(s, o))
        };
        if !(matches(&[]) || (!base.is_empty() && matches(&base))) {
            continue;
        }
        let item = resolve(doc, item);
        let Some(op) = item.get(method) else { continue };
        // OpenAPI's rule: a concrete segment wins over a template at the first place they differ
        // (`/templates/enterprise` before `/templates/{id}`), whatever the document's order; a
        // segment with a template and text (`{id}.json`) sits between the two.
        let rank: Vec<u8> = op_segs
            .iter()
            .map(|o| match template_pieces(o).as_slice() {
                [Piece::Text(_)] => 2,
                [Piece::Hole] => 0,
                _ => 1,
            })
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

/// A server object's URL with its variables' defaults filled in
/// (`{scheme}://api.example.com/{base}` with `base: { default: v2 }` → `…/v2`).
fn server_url(server: &Value) -> Option<String> {
    let url = server.get("url")?.as_str()?;
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            out.push_str(&rest[open..]);
            return Some(out);
        };
        let name = &rest[open + 1..open + close];
        match server
            .pointer(&format!("/variables/{name}/default"))
            .and_then(Value::as_str)
        {
            Some(v) => out.push_str(v),
            None => out.push_str(&rest[open..=open + close]),
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// A piece of an OpenAPI path segment: text, or a `{name}` template.
#[derive(Debug, PartialEq)]
enum Piece<'s> {
    Text(&'s str),
    Hole,
}

fn template_pieces(segment: &str) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let mut rest = segment;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else { break };
        if open > 0 {
            pieces.push(Piece::Text(&rest[..open]));
        }
        pieces.push(Piece::Hole);
        rest = &rest[open + close + 1..];
    }
    if !rest.is_empty() || pieces.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    pieces
}

/// Whether a call's path segment (its values as `\0`) fits an OpenAPI path segment: a template
/// stands for any non-empty text, values included; the document's text must be there as written
/// (`{$.args.id}.json` fits `{id}.json`; `{id}:archive` is Google's custom-method style).
fn segment_matches(call: &str, op: &str) -> bool {
    fn fits(pieces: &[Piece<'_>], text: &str) -> bool {
        match pieces.split_first() {
            None => text.is_empty(),
            Some((Piece::Text(t), rest)) => text.strip_prefix(t).is_some_and(|after| fits(rest, after)),
            // At least one character: every split point after the first.
            Some((Piece::Hole, rest)) => text
                .char_indices()
                .skip(1)
                .map(|(i, _)| i)
                .chain((!text.is_empty()).then_some(text.len()))
                .any(|i| fits(rest, &text[i..])),
        }
    }
    fits(&template_pieces(op), call)
}

/// A call's path, segment by segment, with each value it puts in written `\0`.
fn call_segments(call: &Call) -> Vec<String> {
    let mut text = String::new();
    for part in &call.path {
        match part {
            PathPart::Text(t) => text.push_str(t),
            PathPart::Value { .. } => text.push('\u{0}'),
        }
    }
    text.split('/').filter(|s| !s.is_empty()).map(str::to_string).collect()
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
        // JSON first; then a wildcard, which generators write for a JSON body too (springdoc's
        // `*/*`).
        let rank = |media: &str| {
            let base = media.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            if base == "application/json" || (base.starts_with("application/") && base.ends_with("+json")) {
                Some(0)
            } else if base == "*/*" || base == "application/*" {
                Some(1)
            } else {
                None
            }
        };
        if let Some((_, body)) = content
            .iter()
            .filter_map(|(media, body)| rank(media).map(|r| (r, body)))
            .min_by_key(|(r, _)| *r)
        {
            return body.get("schema");
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn templates_inside_a_segment_match_values_and_text() {
        assert!(segment_matches("\0.json", "{id}.json"));
        assert!(segment_matches("\0:archive", "{name}:archive"));
        assert!(segment_matches("a7.json", "{id}.json"));
        assert!(segment_matches("v\0-\0", "v{major}-{minor}"));
        assert!(segment_matches("\0", "{id}"));
        assert!(segment_matches("enterprise", "{id}"));
        assert!(segment_matches("enterprise", "enterprise"));
        assert!(
            !segment_matches("\0", "enterprise"),
            "a value is never known to be a text"
        );
        assert!(!segment_matches("\0", "{id}.json"));
        assert!(!segment_matches("\0.xml", "{id}.json"));
        assert!(
            !segment_matches(".json", "{id}.json"),
            "a template stands for some text"
        );
        assert!(!segment_matches("", "{id}"));
    }

    #[test]
    fn a_server_url_takes_its_variables_defaults() {
        let server = json!({"url": "{scheme}://api.example.com/{base}/x",
            "variables": {"scheme": {"default": "https"}, "base": {"default": "v2"}}});
        assert_eq!(server_url(&server).as_deref(), Some("https://api.example.com/v2/x"));
        assert_eq!(server_url(&json!({"url": "/api/{v}"})).as_deref(), Some("/api/{v}"));
    }

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
        let Err(Miss::Unknown(known)) = property(&doc, &base, "fristName") else {
            panic!("fristName is unknown");
        };
        assert!(known.contains(&"firstName".to_string()) && known.contains(&"id".to_string()));
        // A member of a value the schema says is not an object.
        assert!(matches!(
            property(&doc, &s("List"), "firstName"),
            Err(Miss::NotObject("a list"))
        ));
        let name = json!({"type": ["string", "null"]});
        assert!(matches!(
            property(&doc, &name, "first"),
            Err(Miss::NotObject("a string"))
        ));
        assert!(matches!(property(&doc, &s("Loose"), "anything"), Ok(None)));
        assert!(matches!(property(&doc, &s("Either"), "anything"), Ok(None)));
        let list = s("List");
        let item = items(&doc, &list).unwrap();
        assert!(matches!(property(&doc, item, "firstName"), Ok(Some(_))));
    }
}
