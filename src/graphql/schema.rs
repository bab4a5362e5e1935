//! The async-graphql dynamic schema, built once per loaded configuration from the plan's GraphQL
//! names and the endpoints' output types: `Query` and `Mutation` with one namespace field per
//! client, one field per endpoint with its parameters as arguments, and one object type per
//! object in an endpoint's output. Resolvers capture only the plan's endpoints; everything of a
//! request (the executor, the token, the headers) comes from the operation's data.

use super::resolve;
use crate::config::model::{BaseType, ParamSource, ParamType, ScalarType};
use crate::plan::graphql::{upper_camel, visit_objects, EndpointField, GraphqlPlan};
use crate::plan::output::{Kind, OutType};
use crate::plan::Param;
use async_graphql::dynamic::{Field, FieldFuture, InputValue, Object, Scalar, Schema, TypeRef};
use std::sync::Arc;

/// The `JSON` scalar's description in the SDL.
const JSON_DESCRIPTION: &str =
    "Any JSON value: what the backend's OpenAPI document does not type (maps, oneOf/anyOf, untyped values).";

/// Builds the executable schema for a compiled plan's GraphQL names, validating operations with
/// every rule (`Strict`) or with only the limits (`Fast`, for documents already validated).
pub fn build_schema(gp: &GraphqlPlan, validation: async_graphql::ValidationMode) -> Result<Schema, String> {
    let has_query = gp.namespaces.iter().any(|n| !n.queries.is_empty());
    let has_mutation = gp.namespaces.iter().any(|n| !n.mutations.is_empty());
    let mut query = Object::new("Query");
    if !has_query {
        query = query.field(Field::new("_empty", TypeRef::named(TypeRef::BOOLEAN), |_| {
            FieldFuture::Value(None)
        }));
    }
    let mut mutation = Object::new("Mutation");
    let mut objects: Vec<Object> = Vec::new();
    for ns in &gp.namespaces {
        for (fields, type_name, is_mutation) in [
            (&ns.queries, &ns.query_type, false),
            (&ns.mutations, &ns.mutation_type, true),
        ] {
            if fields.is_empty() {
                continue;
            }
            let endpoints: Arc<Vec<resolve::NamespaceEndpoint>> = Arc::new(
                fields
                    .iter()
                    .map(|f| resolve::NamespaceEndpoint {
                        field: f.field.clone(),
                        endpoint: f.endpoint.clone(),
                    })
                    .collect(),
            );
            let root_field = Field::new(ns.field.clone(), TypeRef::named_nn(type_name.clone()), move |ctx| {
                resolve::namespace(ctx, endpoints.clone(), is_mutation)
            })
            .description(format!(
                "The `{}` client's {}.",
                ns.client,
                if is_mutation { "mutations" } else { "queries" }
            ));
            if is_mutation {
                mutation = mutation.field(root_field);
            } else {
                query = query.field(root_field);
            }
            let mut ns_object = Object::new(type_name.clone());
            for f in fields {
                ns_object = ns_object.field(endpoint_field(f));
                visit_objects(
                    &f.type_name,
                    &f.endpoint.output,
                    Default::default(),
                    &mut |name, ty, _| {
                        objects.push(object_type(name, ty));
                    },
                );
            }
            objects.push(ns_object);
        }
    }
    let mut builder = Schema::build("Query", has_mutation.then_some("Mutation"), None)
        .register(query)
        .register(Scalar::new("JSON").description(JSON_DESCRIPTION))
        .limit_depth(gp.max_depth)
        .limit_complexity(gp.max_complexity)
        .validation_mode(validation);
    if has_mutation {
        builder = builder.register(mutation);
    }
    for o in objects {
        builder = builder.register(o);
    }
    if !gp.introspection {
        builder = builder.disable_introspection();
    }
    builder.finish().map_err(|e| e.to_string())
}

/// An endpoint as a field of its namespace: nullable (a failure nulls it), its path, query and
/// body parameters as arguments.
fn endpoint_field(f: &EndpointField) -> Field {
    let ep = &f.endpoint;
    let output = Arc::new(ep.output.clone());
    let name = f.field.clone();
    let mut field = Field::new(
        f.field.clone(),
        type_ref(&f.type_name, &ep.output.clone().or_null()),
        move |ctx| resolve::endpoint(ctx, &name, &output),
    )
    .description(format!("{} {}", ep.method.as_str(), ep.path));
    for p in &ep.params {
        if let Some(arg) = argument(p) {
            field = field.argument(arg);
        }
    }
    field
}

/// A parameter as an argument: path parameters are `ID!`; headers are read from the HTTP request.
fn argument(p: &Param) -> Option<InputValue> {
    let ty = match p.source {
        ParamSource::Header(_) => return None,
        ParamSource::Path => TypeRef::named_nn(TypeRef::ID),
        ParamSource::Query | ParamSource::Body => param_type_ref(&p.ty),
    };
    let mut arg = InputValue::new(p.name.clone(), ty);
    if let Some(d) = &p.default {
        if let Ok(v) = async_graphql::Value::from_json(d.clone()) {
            arg = arg.default_value(v);
        }
    }
    Some(arg)
}

/// The GraphQL type of a declared parameter type.
fn param_type_ref(t: &ParamType) -> TypeRef {
    let base = match &t.base {
        BaseType::Scalar(s) => TypeRef::Named(
            match s {
                ScalarType::Id => TypeRef::ID,
                ScalarType::String => TypeRef::STRING,
                ScalarType::Int => TypeRef::INT,
                ScalarType::Float => TypeRef::FLOAT,
                ScalarType::Boolean => TypeRef::BOOLEAN,
                ScalarType::Json => "JSON",
            }
            .into(),
        ),
        BaseType::List(inner) => TypeRef::List(Box::new(param_type_ref(inner))),
    };
    if t.required {
        TypeRef::NonNull(Box::new(base))
    } else {
        base
    }
}

/// The GraphQL type of an output type whose objects are named from `name`.
pub fn type_ref(name: &str, ty: &OutType) -> TypeRef {
    let base = match &ty.kind {
        Kind::Leaf(l) => TypeRef::Named(l.graphql_name().into()),
        Kind::Object(_) => TypeRef::Named(name.to_string().into()),
        Kind::List(inner) => TypeRef::List(Box::new(type_ref(name, inner))),
    };
    if ty.nullable {
        base
    } else {
        TypeRef::NonNull(Box::new(base))
    }
}

/// An object type of an endpoint's output: each field reads its value from the parent's JSON.
fn object_type(name: &str, ty: &OutType) -> Object {
    let mut object = Object::new(name);
    for f in ty.fields().unwrap_or_default() {
        let child = format!("{name}{}", upper_camel(&f.name));
        let key = f.name.clone();
        let fty = Arc::new(f.ty.clone());
        object = object.field(Field::new(f.name.clone(), type_ref(&child, &f.ty), move |ctx| {
            resolve::object_field(ctx, &key, &fty)
        }));
    }
    object
}
