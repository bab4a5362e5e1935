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
//! Only what can be answered exactly as async-graphql would answer it is prepared: an operation
//! with no variable definitions (its validation did not depend on variable values), no response
//! key selected twice at any level (async-graphql merges those), no introspection, no directive
//! other than `@skip` and `@include` with literal conditions. Anything else is `None` and keeps
//! running through async-graphql.

use super::graphql::{upper_camel, EndpointField, GraphqlPlan};
use super::output::OutType;
use super::Endpoint;
use async_graphql::parser::types::{
    Directive, DocumentOperations, ExecutableDocument, Field, OperationType, Selection, SelectionSet,
};
use async_graphql::{Name, Pos, Positioned, Value as GqlValue};
use std::sync::Arc;

/// A validated operation, ready to run.
#[derive(Debug)]
pub struct PreparedOperation {
    /// Mutation fields run one after another; query fields all at once.
    pub mutation: bool,
    /// The root selection, in document order.
    pub root: Vec<RootField>,
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
    /// The arguments as written (literals).
    pub arguments: Vec<(Name, GqlValue)>,
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
    },
}

/// Prepares the operation `operation_name` of `doc` (validated) for `gp`; `None` when it is
/// something async-graphql must run.
pub fn prepare(gp: &GraphqlPlan, doc: &ExecutableDocument, operation_name: Option<&str>) -> Option<PreparedOperation> {
    let op = match (&doc.operations, operation_name) {
        (DocumentOperations::Single(op), _) => op,
        (DocumentOperations::Multiple(map), Some(n)) => map.get(n)?,
        (DocumentOperations::Multiple(map), None) if map.len() == 1 => map.values().next()?,
        _ => return None,
    };
    let op = &op.node;
    if !op.variable_definitions.is_empty() || !op.directives.is_empty() {
        return None;
    }
    let mutation = match op.ty {
        OperationType::Query => false,
        OperationType::Mutation => true,
        OperationType::Subscription => return None,
    };
    let mut root = Vec::new();
    for field in unique(flatten(doc, &op.selection_set.node)?)? {
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
        for field in unique(flatten(doc, &f.selection_set.node)?)? {
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
    Some(PreparedOperation { mutation, root })
}

fn endpoint_selection(
    doc: &ExecutableDocument,
    ef: &EndpointField,
    field: &Positioned<Field>,
) -> Option<EndpointSelection> {
    let f = &field.node;
    let arguments = f
        .arguments
        .iter()
        .map(|(name, value)| Some((name.node.clone(), value.node.clone().into_const()?)))
        .collect::<Option<Vec<_>>>()?;
    let selection = out_selection(doc, &ef.endpoint.output, &ef.type_name, &f.selection_set.node)?;
    let mut needs = vec![false; ef.endpoint.calls.len()];
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
fn out_selection(
    doc: &ExecutableDocument,
    ty: &OutType,
    type_name: &str,
    set: &SelectionSet,
) -> Option<Vec<OutSelection>> {
    let Some(fields) = ty.innermost().fields() else {
        return set.items.is_empty().then(Vec::new);
    };
    let mut out = Vec::new();
    for field in unique(flatten(doc, set)?)? {
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

/// The fields of a selection set with fragments inlined (every type is an object type, so a
/// valid fragment applies wherever it is spread) and skipped selections left out; `None` for a
/// directive other than `@skip` and `@include` or a condition that is not a literal.
fn flatten<'d>(doc: &'d ExecutableDocument, set: &'d SelectionSet) -> Option<Vec<&'d Positioned<Field>>> {
    let mut out = Vec::new();
    flatten_into(doc, set, &mut out)?;
    Some(out)
}

fn flatten_into<'d>(
    doc: &'d ExecutableDocument,
    set: &'d SelectionSet,
    out: &mut Vec<&'d Positioned<Field>>,
) -> Option<()> {
    for item in &set.items {
        if skipped(item.node.directives())? {
            continue;
        }
        match &item.node {
            Selection::Field(f) => out.push(f),
            Selection::FragmentSpread(s) => {
                let fragment = doc.fragments.get(&s.node.fragment_name.node)?;
                if !fragment.node.directives.is_empty() {
                    return None;
                }
                flatten_into(doc, &fragment.node.selection_set.node, out)?;
            }
            Selection::InlineFragment(i) => flatten_into(doc, &i.node.selection_set.node, out)?,
        }
    }
    Some(())
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
