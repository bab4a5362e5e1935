//! The typed REST contract (SPEC §2, §5): an OpenAPI 3.1 document of every composed endpoint,
//! built from the same output types and nullability as the GraphQL schema (and the same type
//! names, under `components/schemas`), with the parameters, request bodies, the error answers of
//! §4.2 and §6, and bearer security where auth applies. `facade openapi` prints it; `GET
//! /openapi.json` serves it when `openapi: true`.

use super::graphql::{upper_camel, visit_objects};
use super::output::{Kind, Leaf, OutType};
use super::{Endpoint, Plan};
use crate::config::model::{AuthMode, BaseType, ParamSource, ParamType, ScalarType};
use serde_json::{json, Map, Value};

/// The document for a compiled plan.
pub fn document(plan: &Plan) -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for ep in &plan.endpoints {
        let type_name = format!("{}{}", upper_camel(&ep.client), upper_camel(&ep.name));
        visit_objects(&type_name, &ep.output, Default::default(), &mut |name, ty, _| {
            schemas.insert(name.to_string(), object_schema(name, ty));
        });
        let item = paths.entry(ep.path.clone()).or_insert_with(|| json!({}));
        if let Value::Object(item) = item {
            item.insert(
                ep.method.as_str().to_ascii_lowercase(),
                operation(ep, &type_name, &Surroundings::of(plan)),
            );
        }
    }
    schemas.insert("FacadeError".into(), error_schema());
    let mut components = Map::new();
    components.insert("schemas".into(), Value::Object(schemas));
    components.insert("responses".into(), error_responses());
    if plan.auth.is_some() {
        components.insert(
            "securitySchemes".into(),
            json!({"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}),
        );
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Facade",
            "description": "The composed REST endpoints of this gateway, typed from its compositions and the backends' OpenAPI documents.",
            "version": "1"
        },
        "paths": Value::Object(paths),
        "components": Value::Object(components),
    })
}

/// What the gateway around the endpoints adds to their answers.
struct Surroundings {
    /// `auth` is configured (endpoints get bearer security).
    auth: bool,
    /// Keys come from `jwks_url`: until the first key set arrives, protected endpoints answer 503.
    jwks: bool,
    /// `on_store_error: deny`: a rate-limited endpoint answers 503 while the store is down.
    deny_on_store_error: bool,
}

impl Surroundings {
    fn of(plan: &Plan) -> Surroundings {
        Surroundings {
            auth: plan.auth.is_some(),
            jwks: plan.auth.as_ref().is_some_and(|a| a.verifier.jwks().is_some()),
            deny_on_store_error: plan.rate_limits.as_ref().is_some_and(|r| r.deny_on_store_error),
        }
    }
}

/// The headers of an answer that passed the rate limiter (SPEC §7).
fn rate_limit_headers(headers: &mut Map<String, Value>) {
    let h = |description: &str, ty: &str| json!({"description": description, "schema": {"type": ty}});
    headers.insert(
        "X-RateLimit-Limit".into(),
        h("The policy's requests per window.", "integer"),
    );
    headers.insert("X-RateLimit-Remaining".into(), h("Requests left now.", "integer"));
    headers.insert(
        "X-RateLimit-Reset".into(),
        h(
            "Seconds until the full quota is back (refused: until the next request is allowed).",
            "integer",
        ),
    );
    headers.insert(
        "RateLimit-Policy".into(),
        h("The IETF draft's policy field: `\"standard\";q=100;w=60`.", "string"),
    );
    headers.insert(
        "RateLimit".into(),
        h("The IETF draft's field: `\"standard\";r=42;t=18`.", "string"),
    );
}

/// One endpoint's operation object.
fn operation(ep: &Endpoint, type_name: &str, around: &Surroundings) -> Value {
    let mut op = Map::new();
    op.insert("operationId".into(), json!(format!("{}_{}", ep.client, ep.name)));
    op.insert("tags".into(), json!([ep.client]));
    let mut parameters = Vec::new();
    let mut body_props = Map::new();
    let mut body_required = Vec::new();
    for p in &ep.params {
        let (place, name) = match &p.source {
            ParamSource::Path => ("path", p.name.clone()),
            ParamSource::Query => ("query", p.name.clone()),
            ParamSource::Header(h) => ("header", h.clone()),
            ParamSource::Body => {
                let mut s = param_schema(&p.ty);
                if !p.ty.required {
                    s = or_null(s);
                }
                if let (Some(d), Value::Object(m)) = (&p.default, &mut s) {
                    m.insert("default".into(), d.clone());
                }
                body_props.insert(p.name.clone(), s);
                if p.ty.required && p.default.is_none() {
                    body_required.push(json!(p.name));
                }
                continue;
            }
        };
        let mut schema = param_schema(&p.ty);
        if let (Some(d), Value::Object(m)) = (&p.default, &mut schema) {
            m.insert("default".into(), d.clone());
        }
        let required = place == "path" || (p.ty.required && p.default.is_none());
        let mut param = json!({"name": name, "in": place, "required": required, "schema": schema});
        if matches!(p.ty.base, BaseType::List(_)) && place == "query" {
            param["style"] = json!("form");
            param["explode"] = json!(true);
        }
        parameters.push(param);
    }
    if !parameters.is_empty() {
        op.insert("parameters".into(), Value::Array(parameters));
    }
    let has_body = !body_props.is_empty();
    if has_body {
        let mut schema = json!({"type": "object", "properties": Value::Object(body_props)});
        if !body_required.is_empty() {
            schema["required"] = Value::Array(body_required);
        }
        op.insert(
            "requestBody".into(),
            json!({"required": true, "content": {"application/json": {"schema": schema}}}),
        );
    }
    let mut headers = Map::new();
    headers.insert(
        "X-Request-Id".into(),
        json!({"description": "The request's id, also sent to every backend.", "schema": {"type": "string"}}),
    );
    if ep.calls.iter().any(|c| c.optional) {
        headers.insert(
            "X-Facade-Partial".into(),
            json!({"description": "The optional calls that failed, comma-separated: their fields are null.", "schema": {"type": "string"}}),
        );
    }
    let limited = ep.access.rate_limit.is_some();
    if limited {
        rate_limit_headers(&mut headers);
    }
    let mut responses = Map::new();
    responses.insert(
        "200".into(),
        json!({
            "description": "The composed answer.",
            "headers": Value::Object(headers),
            "content": {"application/json": {"schema": schema_of(type_name, &ep.output)}}
        }),
    );
    let refer = |name: &str| json!({"$ref": format!("#/components/responses/{name}")});
    responses.insert("400".into(), refer("BadRequest"));
    if ep.access.auth != AuthMode::None {
        responses.insert("401".into(), refer("Unauthorized"));
        if !ep.access.roles.is_empty() {
            responses.insert("403".into(), refer("Forbidden"));
        }
    }
    responses.insert("404".into(), refer("NotFound"));
    if has_body {
        responses.insert("413".into(), refer("PayloadTooLarge"));
    }
    if ep.calls.iter().any(|c| c.errors_pass) {
        responses.insert("4XX".into(), refer("Rejected"));
    }
    if limited {
        responses.insert("429".into(), refer("TooManyRequests"));
    }
    responses.insert("502".into(), refer("BadGateway"));
    if (limited && around.deny_on_store_error) || (ep.access.auth != AuthMode::None && around.jwks) {
        responses.insert("503".into(), refer("Unavailable"));
    }
    responses.insert("504".into(), refer("GatewayTimeout"));
    op.insert("responses".into(), Value::Object(responses));
    if around.auth {
        let security = match ep.access.auth {
            AuthMode::Required => json!([{"bearerAuth": []}]),
            AuthMode::Optional => json!([{"bearerAuth": []}, {}]),
            AuthMode::None => json!([]),
        };
        op.insert("security".into(), security);
    }
    Value::Object(op)
}

/// The schema of a value of `ty`, objects by reference to their component (named from `name`).
fn schema_of(name: &str, ty: &OutType) -> Value {
    let base = match &ty.kind {
        Kind::Leaf(Leaf::Json) => return json!({}),
        Kind::Leaf(Leaf::Int) => json!({"type": "integer", "format": "int32"}),
        Kind::Leaf(Leaf::Float) => json!({"type": "number"}),
        Kind::Leaf(Leaf::String) => json!({"type": "string"}),
        Kind::Leaf(Leaf::Boolean) => json!({"type": "boolean"}),
        Kind::Object(_) => json!({"$ref": format!("#/components/schemas/{name}")}),
        Kind::List(inner) => json!({"type": "array", "items": schema_of(name, inner)}),
    };
    if ty.nullable {
        or_null(base)
    } else {
        base
    }
}

/// The same schema, allowing null too.
fn or_null(schema: Value) -> Value {
    match schema {
        Value::Object(mut m) => match m.get("type").cloned() {
            Some(Value::String(t)) => {
                m.insert("type".into(), json!([t, "null"]));
                Value::Object(m)
            }
            Some(_) => Value::Object(m),
            None if m.is_empty() => Value::Object(m),
            None => json!({"anyOf": [Value::Object(m), {"type": "null"}]}),
        },
        other => other,
    }
}

/// An object type's component: a mapping of the composition has exactly its fields, always
/// present; an object typed from a backend's document is the backend's own, so it may hold more
/// and has only its never-null properties required.
fn object_schema(name: &str, ty: &OutType) -> Value {
    let fields = ty.fields().unwrap_or_default();
    let mut props = Map::new();
    let mut required = Vec::new();
    for f in fields {
        props.insert(
            f.name.clone(),
            schema_of(&format!("{name}{}", upper_camel(&f.name)), &f.ty),
        );
        if ty.exact || !f.ty.nullable {
            required.push(json!(f.name));
        }
    }
    let mut schema = json!({"type": "object", "properties": Value::Object(props)});
    if !required.is_empty() {
        schema["required"] = Value::Array(required);
    }
    if ty.exact {
        schema["additionalProperties"] = json!(false);
    }
    schema
}

/// The schema of a declared parameter type.
fn param_schema(t: &ParamType) -> Value {
    match &t.base {
        BaseType::Scalar(s) => match s {
            ScalarType::Id | ScalarType::String => json!({"type": "string"}),
            ScalarType::Int => json!({"type": "integer", "format": "int32"}),
            ScalarType::Float => json!({"type": "number"}),
            ScalarType::Boolean => json!({"type": "boolean"}),
            ScalarType::Json => json!({}),
        },
        BaseType::List(inner) => {
            let mut items = param_schema(inner);
            if !inner.required {
                items = or_null(items);
            }
            json!({"type": "array", "items": items})
        }
    }
}

/// The JSON error body of every refusal (SPEC §4.2, §6, §9).
fn error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["error", "message", "request_id"],
        "properties": {
            "error": {"type": "string", "description": "A machine-readable code: bad_request, unauthorized, invalid_token, forbidden, not_found, payload_too_large, rate_limited, upstream_failed, upstream_timeout, upstream_rejected, …"},
            "message": {"type": "string", "description": "For a person; never a backend URL or body."},
            "request_id": {"type": "string"},
            "call": {"type": "string", "description": "The composition call that failed."},
            "service": {"type": "string", "description": "Its service."},
            "details": {"description": "`errors: pass`: the backend's JSON answer."}
        }
    })
}

fn error_responses() -> Value {
    let r = |description: &str| {
        json!({
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/FacadeError"}}}
        })
    };
    let mut unauthorized = r("No valid token (`unauthorized`, `invalid_token`).");
    unauthorized["headers"] = json!({"WWW-Authenticate": {"schema": {"type": "string"}}});
    let retry_after = json!({"description": "Seconds to wait before trying again.", "schema": {"type": "integer"}});
    let mut too_many = r("Over the endpoint's rate-limit policy (`rate_limited`).");
    let mut limit_headers = Map::new();
    limit_headers.insert("Retry-After".into(), retry_after.clone());
    rate_limit_headers(&mut limit_headers);
    too_many["headers"] = Value::Object(limit_headers);
    let mut unavailable = r(
        "The rate-limit store cannot answer under `on_store_error: deny` (`rate_limit_unavailable`), or no key set has arrived from `jwks_url` yet (`auth_unavailable`).",
    );
    unavailable["headers"] = json!({"Retry-After": retry_after});
    json!({
        "BadRequest": r("A parameter is missing or does not convert to its type (`bad_request`)."),
        "Unauthorized": unauthorized,
        "Forbidden": r("The token holds none of the endpoint's roles (`forbidden`)."),
        "NotFound": r("A required call's backend answered 404 (`not_found`)."),
        "PayloadTooLarge": r("The body is larger than `limits.request_body` (`payload_too_large`)."),
        "Rejected": r("`errors: pass`: the backend's 4xx, its body under `details` (`upstream_rejected`)."),
        "TooManyRequests": too_many,
        "Unavailable": unavailable,
        "BadGateway": r("A required call failed (`upstream_failed`)."),
        "GatewayTimeout": r("A required call timed out (`upstream_timeout`).")
    })
}
