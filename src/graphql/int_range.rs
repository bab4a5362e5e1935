//! GraphQL's `Int` is 32 bits, and a value outside that range is a request error: a literal
//! argument fails validation ("Values of Correct Type"), a variable fails coercion; either way
//! the operation does not run and the answer has no `data`. async-graphql's validation takes any
//! 64-bit integer for `Int` (the `is_valid` of its `i32` scalar), and its dynamic schema cannot
//! replace a built-in scalar, so `limit: 3000000000` passed validation and failed only when the
//! endpoint converted its arguments, as a field error beside partial data. These checks close
//! that gap before async-graphql sees the document.
//!
//! Only endpoint fields take arguments in Facade's schema (the namespace fields, the output types
//! and the root `__typename` take none; introspection's arguments are no `Int`s), so the literal
//! check walks each operation and each fragment definition down to its endpoint fields, with a
//! fragment's type condition naming where it stands. Spreads are not followed: every fragment
//! is checked once, at its definition.

use crate::config::model::{BaseType, ParamType, ScalarType};
use crate::plan::graphql::{EndpointField, GraphqlPlan};
use crate::plan::operation::argument_type;
use async_graphql::parser::types::{
    BaseType as GqlBaseType, ExecutableDocument, OperationDefinition, OperationType, Selection, SelectionSet, Type,
};
use async_graphql::{Positioned, ServerError, Value as GqlValue};
use serde_json::{Map, Value};

const RANGE: &str = "Int is a whole number from -2147483648 to 2147483647";

/// Where a selection set stands in Facade's schema.
#[derive(Clone, Copy)]
enum Parent<'p> {
    /// `Query` or `Mutation`: its fields are namespaces.
    Root { mutation: bool },
    /// A namespace type: its fields are endpoints.
    Namespace(&'p [EndpointField]),
    /// Anything below an endpoint field, or a type Facade's schema does not have.
    Other,
}

/// The first literal argument of an endpoint field, in any operation or fragment of `doc`, that
/// is an `Int` (or an item of an `[Int]`) outside 32 bits.
pub fn literal_out_of_range(gp: &GraphqlPlan, doc: &ExecutableDocument) -> Option<ServerError> {
    let operations = doc.operations.iter().filter_map(|(_, op)| {
        let mutation = match op.node.ty {
            OperationType::Query => false,
            OperationType::Mutation => true,
            OperationType::Subscription => return None,
        };
        Some((&op.node.selection_set.node, Parent::Root { mutation }))
    });
    let fragments = doc.fragments.values().map(|f| {
        (
            &f.node.selection_set.node,
            parent_named(gp, f.node.type_condition.node.on.node.as_str()),
        )
    });
    operations
        .chain(fragments)
        .find_map(|(set, parent)| in_selection(gp, set, parent))
}

/// The first variable of `op` declared `Int` (or a list of them) whose given value, or whose
/// default, is a whole number outside 32 bits.
pub fn variable_out_of_range(op: &Positioned<OperationDefinition>, given: &Map<String, Value>) -> Option<ServerError> {
    op.node.variable_definitions.iter().find_map(|d| {
        let def = &d.node;
        let ty = &def.var_type.node;
        let given_bad = given
            .get(def.name.node.as_str())
            .is_some_and(|v| json_out_of_range(v, ty));
        let default_bad = def
            .default_value
            .as_ref()
            .and_then(|v| v.node.clone().into_json().ok())
            .is_some_and(|v| value_out_of_range(&v, &variable_type(ty)));
        (given_bad || default_bad).then(|| {
            ServerError::new(
                format!(
                    "Invalid value for variable \"${}\", expected type \"{}\": {RANGE}",
                    def.name.node, ty
                ),
                Some(d.pos),
            )
        })
    })
}

fn parent_named<'p>(gp: &'p GraphqlPlan, type_name: &str) -> Parent<'p> {
    match type_name {
        "Query" => return Parent::Root { mutation: false },
        "Mutation" => return Parent::Root { mutation: true },
        _ => {}
    }
    gp.namespaces
        .iter()
        .find_map(|ns| {
            if ns.query_type == type_name {
                Some(Parent::Namespace(&ns.queries))
            } else if ns.mutation_type == type_name {
                Some(Parent::Namespace(&ns.mutations))
            } else {
                None
            }
        })
        .unwrap_or(Parent::Other)
}

fn in_selection(gp: &GraphqlPlan, set: &SelectionSet, parent: Parent<'_>) -> Option<ServerError> {
    set.items.iter().find_map(|item| match &item.node {
        Selection::Field(field) => {
            let f = &field.node;
            match parent {
                Parent::Root { mutation } => {
                    let ns = gp.namespaces.iter().find(|ns| ns.field == f.name.node.as_str())?;
                    let endpoints = if mutation { &ns.mutations } else { &ns.queries };
                    in_selection(gp, &f.selection_set.node, Parent::Namespace(endpoints))
                }
                Parent::Namespace(endpoints) => {
                    let ef = endpoints.iter().find(|e| e.field == f.name.node.as_str())?;
                    f.arguments.iter().find_map(|(name, value)| {
                        let ty = argument_type(&ef.endpoint, name.node.as_str())?;
                        // Variables in the value are checked where they are defined.
                        let literal = value
                            .node
                            .clone()
                            .into_const_with(|_| Ok::<_, std::convert::Infallible>(GqlValue::Null))
                            .ok()?;
                        let literal = literal.into_json().ok()?;
                        value_out_of_range(&literal, &ty).then(|| {
                            ServerError::new(
                                format!(
                                    "Invalid value for argument \"{}\", expected type \"Int\": {RANGE}",
                                    name.node
                                ),
                                Some(value.pos),
                            )
                        })
                    })
                }
                Parent::Other => None,
            }
        }
        Selection::InlineFragment(inline) => {
            let i = &inline.node;
            let parent = match &i.type_condition {
                Some(tc) => parent_named(gp, tc.node.on.node.as_str()),
                None => parent,
            };
            in_selection(gp, &i.selection_set.node, parent)
        }
        Selection::FragmentSpread(_) => None,
    })
}

/// Whether an integer is outside `Int`'s 32 bits (a number that is not whole is another error,
/// which async-graphql reports).
fn whole_out_of_range(n: &serde_json::Number) -> bool {
    match n.as_i64() {
        Some(i) => i32::try_from(i).is_err(),
        None => n.is_u64(),
    }
}

/// `v` is a value written for type `ty`, as JSON (a list takes one item for a list of one, as
/// GraphQL's input coercion does).
fn value_out_of_range(v: &Value, ty: &ParamType) -> bool {
    match &ty.base {
        BaseType::Scalar(ScalarType::Int) => match v {
            Value::Number(n) => whole_out_of_range(n),
            _ => false,
        },
        BaseType::List(item) => match v {
            Value::Array(items) => items.iter().any(|i| value_out_of_range(i, item)),
            _ => value_out_of_range(v, item),
        },
        BaseType::Scalar(_) => false,
    }
}

fn json_out_of_range(v: &Value, ty: &Type) -> bool {
    value_out_of_range(v, &variable_type(ty))
}

/// A variable's declared type, as far as `Int` goes: any other named type counts as `String`,
/// which has no range.
fn variable_type(t: &Type) -> ParamType {
    let base = match &t.base {
        GqlBaseType::Named(n) if n.as_str() == "Int" => BaseType::Scalar(ScalarType::Int),
        GqlBaseType::Named(_) => BaseType::Scalar(ScalarType::String),
        GqlBaseType::List(inner) => BaseType::List(Box::new(variable_type(inner))),
    };
    ParamType {
        base,
        required: !t.nullable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int() -> ParamType {
        ParamType {
            base: BaseType::Scalar(ScalarType::Int),
            required: false,
        }
    }

    #[test]
    fn int_is_32_bits_in_literals_lists_and_json() {
        let list = ParamType {
            base: BaseType::List(Box::new(int())),
            required: false,
        };
        assert!(!value_out_of_range(&serde_json::json!(2147483647), &int()));
        assert!(!value_out_of_range(&serde_json::json!(-2147483648), &int()));
        assert!(value_out_of_range(&serde_json::json!(2147483648_i64), &int()));
        assert!(value_out_of_range(&serde_json::json!(-2147483649_i64), &int()));
        assert!(value_out_of_range(&serde_json::json!(u64::MAX), &int()));
        // Not whole: another rule's error.
        assert!(!value_out_of_range(&serde_json::json!(1.5), &int()));
        assert!(value_out_of_range(&serde_json::json!([1, 3000000000_i64]), &list));
        // One item for a list of one.
        assert!(value_out_of_range(&serde_json::json!(3000000000_i64), &list));
        assert!(!value_out_of_range(&serde_json::json!([1, 2]), &list));
    }
}
