//! A GraphQL operation that passed every validation rule, compiled against the plan once, so that
//! Facade runs it again without async-graphql's per-field resolvers.
//!
//! async-graphql's dynamic schema resolves every output field through its own boxed future and
//! builds an ordered map per object; for an endpoint whose answer is already one JSON tree, that
//! was about a third of a GraphQL request. A prepared operation is the selection reduced to what
//! the output types need: fragments inlined, `@skip`/`@include` applied, every field resolved to
//! its place in the endpoint's output type, the calls each endpoint field needs computed. The
//! GraphQL layer (`graphql::direct`) writes the answer straight from the projected JSON.
//!
//! Only what can be answered exactly as async-graphql would answer it is prepared: no response
//! key selected twice at any level (async-graphql merges those), no introspection, no directive
//! other than `@skip` and `@include` with literal conditions, variables only as whole arguments
//! of endpoint fields. Anything else is `None` and keeps running through async-graphql.
//!
//! Variables are the one part of validation that depends on the request: `bind` accepts a
//! request's variables only when they are plainly valid for both the variable's declared type and
//! the argument's (a stricter test than async-graphql's); anything it is unsure of goes through
//! async-graphql, which validates it and answers with its own errors.

use super::graphql::{upper_camel, EndpointField, GraphqlPlan};
use super::output::OutType;
use super::Endpoint;
use crate::config::model::{BaseType, ParamSource, ParamType, ScalarType};
use async_graphql::parser::types::{
    BaseType as GqlBaseType, Directive, DocumentOperations, ExecutableDocument, Field, OperationDefinition,
    OperationType, Selection, SelectionSet, Type,
};
use async_graphql::{Name, Pos, Positioned, Value as GqlValue};
use serde_json::{Map, Value};
use std::cell::Cell;
use std::sync::Arc;

/// A validated operation, ready to run.
#[derive(Debug)]
pub struct PreparedOperation {
    /// Mutation fields run one after another; query fields all at once.
    pub mutation: bool,
    /// The root selection, in document order.
    pub root: Vec<RootField>,
    /// The operation's variables.
    pub variables: Vec<Variable>,
}

/// A variable definition.
#[derive(Debug)]
pub struct Variable {
    pub name: String,
    pub ty: ParamType,
    /// Its value when the request gives none: the default, or null for a nullable variable
    /// (`None`: it must be given).
    pub default: Option<GqlValue>,
}

/// An argument of an endpoint field as written.
#[derive(Debug)]
pub enum Argument {
    /// A literal.
    Value(GqlValue),
    /// `$name`, for an argument of type `ty`.
    Variable { name: String, ty: ParamType },
}

/// A field of `Query` or `Mutation`.
#[derive(Debug)]
pub enum RootField {
    /// `__typename`: `Query` or `Mutation`.
    Typename { key: String, type_name: &'static str },
    /// A client's namespace (`mobile`).
    Namespace {
        key: String,
        /// `MobileQuery` or `MobileMutation`, for `__typename`.
        type_name: String,
        fields: Vec<NamespaceField>,
    },
}

/// A field of a namespace type.
#[derive(Debug)]
pub enum NamespaceField {
    /// `__typename` (the namespace type's name).
    Typename { key: String },
    /// An endpoint.
    Endpoint(EndpointSelection),
}

/// One selected endpoint field.
#[derive(Debug)]
pub struct EndpointSelection {
    /// Its response key (alias or name).
    pub key: String,
    pub endpoint: Arc<Endpoint>,
    /// Where the field is in the document (the `locations` of its errors).
    pub pos: Pos,
    /// The arguments as written.
    pub arguments: Vec<(Name, Argument)>,
    /// The calls the selected fields need (not yet closed over dependencies).
    pub needs: Vec<bool>,
    /// The same endpoint is selected under another key of the namespace (its calls are shared).
    pub repeated: bool,
    /// What is selected of its output.
    pub selection: Vec<OutSelection>,
}

/// A field selected of an output object.
#[derive(Debug)]
pub enum OutSelection {
    /// `__typename`: the object type's name.
    Typename { key: String, type_name: String },
    /// A field of the output object: `index` into its fields.
    Field {
        key: String,
        index: usize,
        selection: Vec<OutSelection>,
        /// Where it is written: the location of an error at its value.
        pos: Pos,
    },
}

/// The operation a request selects (`None`: no such operation; validation says so).
pub fn selected<'d>(ops: &'d DocumentOperations, name: Option<&str>) -> Option<&'d Positioned<OperationDefinition>> {
    match (ops, name) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(map), Some(n)) => map.get(n),
        (DocumentOperations::Multiple(map), None) if map.len() == 1 => map.values().next(),
        _ => None,
    }
}

/// Prepares the operation `operation_name` of `doc` (validated) for `gp`; `None` when it is
/// something async-graphql must run.
pub fn prepare(gp: &GraphqlPlan, doc: &ExecutableDocument, operation_name: Option<&str>) -> Option<PreparedOperation> {
    let op = &selected(&doc.operations, operation_name)?.node;
    if !op.directives.is_empty() {
        return None;
    }
    let variables = op
        .variable_definitions
        .iter()
        .map(|d| {
            let d = &d.node;
            if !d.directives.is_empty() {
                return None;
            }
            Some(Variable {
                name: d.name.node.to_string(),
                ty: input_type(&d.var_type.node)?,
                default: d.default_value().cloned(),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let mutation = match op.ty {
        OperationType::Query => false,
        OperationType::Mutation => true,
        OperationType::Subscription => return None,
    };
    let doc = &Flatten::new(doc);
    let mut root = Vec::new();
    for field in unique(doc.fields(&op.selection_set.node)?)? {
        let f = &field.node;
        let key = response_key(f);
        if !f.arguments.is_empty() {
            return None;
        }
        if f.name.node == "__typename" {
            let type_name = if mutation { "Mutation" } else { "Query" };
            root.push(RootField::Typename { key, type_name });
            continue;
        }
        let ns = gp.namespaces.iter().find(|ns| ns.field == f.name.node.as_str())?;
        let (endpoints, type_name) = if mutation {
            (&ns.mutations, &ns.mutation_type)
        } else {
            (&ns.queries, &ns.query_type)
        };
        if endpoints.is_empty() {
            return None;
        }
        let mut fields = Vec::new();
        for field in unique(doc.fields(&f.selection_set.node)?)? {
            let f = &field.node;
            if f.name.node == "__typename" {
                fields.push(NamespaceField::Typename { key: response_key(f) });
                continue;
            }
            let ef = endpoints.iter().find(|e| e.field == f.name.node.as_str())?;
            fields.push(NamespaceField::Endpoint(endpoint_selection(doc, ef, field)?));
        }
        let shared: Vec<bool> = fields
            .iter()
            .map(|a| {
                let NamespaceField::Endpoint(a) = a else { return false };
                fields
                    .iter()
                    .filter(|b| matches!(b, NamespaceField::Endpoint(b) if Arc::ptr_eq(&a.endpoint, &b.endpoint)))
                    .count()
                    > 1
            })
            .collect();
        for (f, repeated) in fields.iter_mut().zip(shared) {
            if let NamespaceField::Endpoint(e) = f {
                e.repeated = repeated;
            }
        }
        root.push(RootField::Namespace {
            key,
            type_name: type_name.clone(),
            fields,
        });
    }
    Some(PreparedOperation {
        mutation,
        root,
        variables,
    })
}

impl PreparedOperation {
    /// The arguments of every endpoint field, in document order, with the request's variables
    /// put in; `None` when a variable is missing, unknown or not plainly valid (async-graphql
    /// decides those).
    pub fn bind(&self, given: &Map<String, Value>) -> Option<Vec<Vec<(Name, GqlValue)>>> {
        if given.keys().any(|k| !self.variables.iter().any(|v| v.name == *k)) {
            return None;
        }
        let mut values: Vec<(&str, GqlValue)> = Vec::with_capacity(self.variables.len());
        for v in &self.variables {
            let value = match given.get(&v.name) {
                Some(json) if fits(json, &v.ty) => GqlValue::from_json(json.clone()).ok()?,
                Some(_) => return None,
                None => v.default.clone()?,
            };
            values.push((v.name.as_str(), value));
        }
        let mut out = Vec::new();
        for r in &self.root {
            let RootField::Namespace { fields, .. } = r else {
                continue;
            };
            for f in fields {
                let NamespaceField::Endpoint(e) = f else { continue };
                let args = e
                    .arguments
                    .iter()
                    .map(|(name, a)| {
                        let value = match a {
                            Argument::Value(v) => v.clone(),
                            Argument::Variable { name: var, ty } => {
                                let (_, value) = values.iter().find(|(n, _)| n == var)?;
                                // A given value must fit the argument too (a default was checked
                                // with the document).
                                if given.contains_key(var) && !given.get(var).is_some_and(|j| fits(j, ty)) {
                                    return None;
                                }
                                value.clone()
                            }
                        };
                        Some((name.clone(), value))
                    })
                    .collect::<Option<Vec<_>>>()?;
                out.push(args);
            }
        }
        Some(out)
    }
}

/// Whether a JSON value is plainly a valid input of type `ty`: null only where nullable, IDs as
/// strings, integers in `Int`'s range, lists as arrays. Stricter than GraphQL's input coercion
/// (which also takes a number for an `ID` or one item for a list): what is refused here is left
/// to async-graphql, never refused for it.
fn fits(v: &Value, ty: &ParamType) -> bool {
    if v.is_null() {
        return !ty.required;
    }
    match &ty.base {
        BaseType::List(item) => v.as_array().is_some_and(|a| a.iter().all(|i| fits(i, item))),
        BaseType::Scalar(s) => match s {
            ScalarType::Id | ScalarType::String => v.is_string(),
            ScalarType::Int => v.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
            ScalarType::Float => v.is_number(),
            ScalarType::Boolean => v.is_boolean(),
            ScalarType::Json => true,
        },
    }
}

/// A variable's declared type, when it is one of the schema's input types.
fn input_type(t: &Type) -> Option<ParamType> {
    let base = match &t.base {
        GqlBaseType::Named(n) => BaseType::Scalar(ScalarType::from_name(n.as_str())?),
        GqlBaseType::List(inner) => BaseType::List(Box::new(input_type(inner)?)),
    };
    Some(ParamType {
        base,
        required: !t.nullable,
    })
}

/// The GraphQL type of an endpoint field's argument (path parameters are `ID!`).
pub(crate) fn argument_type(ep: &Endpoint, name: &str) -> Option<ParamType> {
    let p = ep.params.iter().find(|p| p.name == name)?;
    match p.source {
        ParamSource::Header(_) => None,
        ParamSource::Path => Some(ParamType {
            base: BaseType::Scalar(ScalarType::Id),
            required: true,
        }),
        ParamSource::Query | ParamSource::Body => Some(p.ty.clone()),
    }
}

fn endpoint_selection<'d>(
    doc: &Flatten<'d>,
    ef: &EndpointField,
    field: &'d Positioned<Field>,
) -> Option<EndpointSelection> {
    let f = &field.node;
    let arguments = f
        .arguments
        .iter()
        .map(|(name, value)| {
            // Each variable in the value becomes null, its name noted: a value that is then
            // null itself was one whole variable (a list or object holding one is not prepared).
            let mut var = None;
            let constant = value
                .node
                .clone()
                .into_const_with(|n| {
                    var = Some(n);
                    Ok::<_, std::convert::Infallible>(GqlValue::Null)
                })
                .ok()?;
            let arg = match var {
                None => Argument::Value(constant),
                Some(var) if constant == GqlValue::Null => Argument::Variable {
                    name: var.to_string(),
                    ty: argument_type(&ef.endpoint, name.node.as_str())?,
                },
                Some(_) => return None,
            };
            Some((name.node.clone(), arg))
        })
        .collect::<Option<Vec<_>>>()?;
    let selection = out_selection(doc, &ef.endpoint.output, &ef.type_name, &f.selection_set.node)?;
    let mut needs = ef.endpoint.needs_before_fields();
    collect_needs(&ef.endpoint.output, &selection, &mut needs);
    Some(EndpointSelection {
        key: response_key(f),
        endpoint: ef.endpoint.clone(),
        pos: field.pos,
        arguments,
        needs,
        repeated: false,
        selection,
    })
}

/// The selection of an output value of type `ty` whose objects are named from `type_name`.
fn out_selection<'d>(
    doc: &Flatten<'d>,
    ty: &OutType,
    type_name: &str,
    set: &'d SelectionSet,
) -> Option<Vec<OutSelection>> {
    let Some(fields) = ty.innermost().fields() else {
        return set.items.is_empty().then(Vec::new);
    };
    let mut out = Vec::new();
    for field in unique(doc.fields(set)?)? {
        let f = &field.node;
        if !f.arguments.is_empty() {
            return None;
        }
        if f.name.node == "__typename" {
            out.push(OutSelection::Typename {
                key: response_key(f),
                type_name: type_name.to_string(),
            });
            continue;
        }
        let index = fields.iter().position(|of| of.name == f.name.node.as_str())?;
        let child = format!("{type_name}{}", upper_camel(&fields[index].name));
        out.push(OutSelection::Field {
            key: response_key(f),
            index,
            selection: out_selection(doc, &fields[index].ty, &child, &f.selection_set.node)?,
            pos: field.pos,
        });
    }
    Some(out)
}

/// Marks the calls that the selected fields need.
fn collect_needs(ty: &OutType, selection: &[OutSelection], set: &mut [bool]) {
    let Some(fields) = ty.innermost().fields() else {
        return;
    };
    for s in selection {
        let OutSelection::Field { index, selection, .. } = s else {
            continue;
        };
        let Some(f) = fields.get(*index) else { continue };
        for &i in &f.needs {
            if let Some(b) = set.get_mut(i) {
                *b = true;
            }
        }
        collect_needs(&f.ty, selection, set);
    }
}

fn response_key(f: &Field) -> String {
    f.alias.as_ref().unwrap_or(&f.name).node.to_string()
}

/// How many fields and fragment spreads preparing one operation may visit, and how deeply
/// fragments may be spread inside one another.
const FLATTEN_BUDGET: usize = 10_000;
const FLATTEN_DEPTH: usize = 32;

/// A document's selection sets with fragments inlined, within a budget.
///
/// Why a budget: an operation is prepared before async-graphql validates it, and a document
/// that validation refuses may spread a fragment inside itself (unbounded recursion: a stack
/// overflow took the whole process down) or spread fragments so many times over that a few
/// kilobytes spell billions of fields. Past the budget or the depth limit (where a cycle ends),
/// the operation is not prepared, and async-graphql answers it (refusing a cycle as a
/// validation error).
struct Flatten<'d> {
    doc: &'d ExecutableDocument,
    /// Fields and spreads that may still be visited.
    left: Cell<usize>,
}

impl<'d> Flatten<'d> {
    fn new(doc: &'d ExecutableDocument) -> Flatten<'d> {
        Flatten {
            doc,
            left: Cell::new(FLATTEN_BUDGET),
        }
    }

    /// The fields of a selection set with fragments inlined (every type is an object type, so a
    /// valid fragment applies wherever it is spread) and skipped selections left out; `None` for
    /// a directive other than `@skip` and `@include`, a condition that is not a literal, or past
    /// the budget.
    fn fields(&self, set: &'d SelectionSet) -> Option<Vec<&'d Positioned<Field>>> {
        let mut out = Vec::new();
        self.fields_into(set, &mut out, 0)?;
        Some(out)
    }

    fn fields_into(&self, set: &'d SelectionSet, out: &mut Vec<&'d Positioned<Field>>, depth: usize) -> Option<()> {
        if depth > FLATTEN_DEPTH {
            return None;
        }
        for item in &set.items {
            self.left.set(self.left.get().checked_sub(1)?);
            if skipped(item.node.directives())? {
                continue;
            }
            match &item.node {
                Selection::Field(f) => out.push(f),
                Selection::FragmentSpread(s) => {
                    let fragment = self.doc.fragments.get(&s.node.fragment_name.node)?;
                    if !fragment.node.directives.is_empty() {
                        return None;
                    }
                    self.fields_into(&fragment.node.selection_set.node, out, depth + 1)?;
                }
                Selection::InlineFragment(i) => self.fields_into(&i.node.selection_set.node, out, depth + 1)?,
            }
        }
        Some(())
    }
}

/// Whether `@skip`/`@include` leave a selection out.
fn skipped(directives: &[Positioned<Directive>]) -> Option<bool> {
    let mut skip = false;
    for d in directives {
        let include = match d.node.name.node.as_str() {
            "skip" => false,
            "include" => true,
            _ => return None,
        };
        let condition = match d.node.get_argument("if")?.node.clone().into_const()? {
            GqlValue::Boolean(b) => b,
            _ => return None,
        };
        skip |= include != condition;
    }
    Some(skip)
}

/// The fields, when no response key is selected twice (async-graphql merges such fields, which
/// Facade's executor does not).
fn unique(fields: Vec<&Positioned<Field>>) -> Option<Vec<&Positioned<Field>>> {
    for (i, a) in fields.iter().enumerate() {
        let key = a.node.alias.as_ref().unwrap_or(&a.node.name).node.as_str();
        if fields[..i]
            .iter()
            .any(|b| b.node.alias.as_ref().unwrap_or(&b.node.name).node.as_str() == key)
        {
            return None;
        }
    }
    Some(fields)
}
