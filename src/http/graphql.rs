//! The HTTP layer of `graphql.path` (SPEC §5, GraphQL over HTTP), owned by Facade: async-graphql
//! only parses (`Request::parsed_query`) and executes beneath it, because its axum integration
//! answers 200 to everything, runs mutations sent over GET, reads `text/plain` bodies and batches;
//! of async-graphql-axum, only the response of an executed operation in
//! `application/graphql-response+json` is used, where it behaves as the specification says.
//!
//! In order: the GraphiQL page (GET, `Accept: text/html`, no token); the method (GET and POST);
//! the response media type from `Accept` (406); the HTTP-level token check of `graphql.auth`
//! (401); the request's parameters (415, 413, 400); the document's size and nesting, checked
//! before it is parsed; a mutation over GET (405, before validation); then execution.

use super::error::HttpError;
use crate::graphql::Operation;
use crate::plan::graphql::GraphqlPlan;
use crate::plan::Plan;
use crate::state::AppState;
use async_graphql::parser::types::{OperationDefinition, OperationType};
use async_graphql::parser::Positioned;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::{Map, Value};
use std::sync::Arc;

/// The longest document accepted, in bytes: parsing is not linear enough to take a megabyte
/// quickly, and no real operation comes near this.
pub const MAX_DOCUMENT: usize = 64 * 1024;

/// The most fields a document may select once its fragments are spread (or `max_complexity`, if
/// that is larger), checked before async-graphql spreads them (`graphql::size`).
const MAX_SPREAD_FIELDS: usize = 100_000;

/// The deepest nesting of `{`, `(` and `[` accepted in a document, checked before parsing (the
/// parser recurses); `max_depth` bounds selections again after parsing.
const MAX_NESTING: usize = 128;

/// How the response is written, from the request's `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `application/graphql-response+json`: request errors are 400.
    GraphqlResponse,
    /// `application/json` (also `*/*` or no `Accept`): request errors are 200.
    Json,
}

impl Mode {
    fn content_type(self) -> HeaderValue {
        match self {
            Mode::GraphqlResponse => HeaderValue::from_static("application/graphql-response+json; charset=utf-8"),
            Mode::Json => HeaderValue::from_static("application/json; charset=utf-8"),
        }
    }
}

/// The parameters of a GraphQL request.
struct Params {
    /// Empty when `persisted_query` is set.
    query: String,
    /// An automatic persisted query (Apollo's APQ) sent by its hash alone, which this version
    /// does not keep: answered `PersistedQueryNotSupported`, which Apollo clients take as the
    /// signal to send the whole document from then on.
    persisted_query: bool,
    variables: Option<Map<String, Value>>,
    operation_name: Option<String>,
}

/// Answers a request to `graphql.path`.
pub async fn handle(
    state: &AppState,
    plan: &Arc<Plan>,
    req: Request,
    request_id: &HeaderValue,
) -> Result<Response, HttpError> {
    let (Some(gp), Some(schema)) = (plan.graphql.as_ref(), plan.graphql_schema.as_ref()) else {
        return Err(HttpError::not_found("GraphQL is not served here"));
    };
    let method = req.method().clone();
    if let Some(rest) = req
        .uri()
        .path()
        .strip_prefix(gp.path.as_str())
        .filter(|r| !r.is_empty())
    {
        // `graphql.path`/assets/…: the GraphiQL page's files.
        let name = rest.strip_prefix("/assets/").unwrap_or_default();
        return match (gp.playground, &method) {
            (true, &Method::GET | &Method::HEAD) => {
                super::playground::asset(name).ok_or_else(|| HttpError::not_found(format!("no GraphiQL asset {name}")))
            }
            _ => Err(HttpError::not_found(format!(
                "no route for {method} {}",
                req.uri().path()
            ))),
        };
    }
    if method != Method::GET && method != Method::POST {
        return Err(HttpError::method_not_allowed(&method, &["GET", "POST"]));
    }
    let headers = req.headers().clone();
    // A browser opening `graphql.path` gets GraphiQL (no token needed for the page itself).
    if method == Method::GET && gp.playground && wants_html(&headers) && !has_query(req.uri()) {
        return Ok(super::playground::page(&gp.path));
    }
    let mode = negotiate(&headers)?;
    // `graphql.auth`, and `graphql.rate_limit` counted once per HTTP request: the answer carries
    // that policy's headers, whatever happens after.
    let peer = super::dispatch::peer_of(&req);
    let admitted = crate::middleware::access::check(plan, &state.limiter, &gp.access, &headers, peer).await?;
    let answer = operation(state, plan, gp, schema, req, method, headers, mode, peer, request_id).await;
    let mut resp = answer.unwrap_or_else(|e| e.respond(request_id));
    if let Some(rate) = admitted.rate {
        rate.apply(resp.headers_mut());
    }
    Ok(resp)
}

/// Reads, checks, parses and runs one operation.
#[allow(clippy::too_many_arguments)]
async fn operation(
    state: &AppState,
    plan: &Arc<Plan>,
    gp: &GraphqlPlan,
    schema: &crate::plan::GraphqlSchema,
    req: Request,
    method: Method,
    headers: HeaderMap,
    mode: Mode,
    peer: Option<std::net::SocketAddr>,
    request_id: &HeaderValue,
) -> Result<Response, HttpError> {
    let params = if method == Method::GET {
        params_from_query(req.uri().query().unwrap_or(""))?
    } else {
        params_from_body(req, plan.limits.request_body).await?
    };
    if params.persisted_query {
        let mut error = async_graphql::ServerError::new("PersistedQueryNotSupported", None);
        let mut code = async_graphql::ErrorExtensionValues::default();
        code.set("code", "PERSISTED_QUERY_NOT_SUPPORTED");
        error.extensions = Some(code);
        return Ok(request_errors(mode, vec![error]));
    }
    check_document(&params.query, gp)?;
    let text: Arc<str> = Arc::from(params.query.as_str());
    let operation_name = params.operation_name;
    let no_variables = params.variables.as_ref().is_none_or(|v| v.is_empty());
    let key = (text.clone(), operation_name.clone());
    let remembered = schema.validated.get(&key);
    // An operation that ran before and that Facade can run itself needs no document at all,
    // when the request's variables are plainly valid (`PreparedOperation::bind`).
    if let Some(Some(prepared)) = &remembered {
        if prepared.mutation && method == Method::GET {
            return Err(mutation_over_get(&method));
        }
        let empty = Map::new();
        if let Some(arguments) = prepared.bind(params.variables.as_ref().unwrap_or(&empty)) {
            let op = operation_data(state, plan, headers, peer, request_id);
            let body = crate::graphql::direct::run(prepared, arguments, &op).await;
            return Ok(match mode {
                // As async-graphql-axum answers an executed operation.
                Mode::GraphqlResponse => {
                    let mut resp = (StatusCode::OK, body).into_response();
                    resp.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/graphql-response+json"),
                    );
                    resp
                }
                Mode::Json => respond_bytes(StatusCode::OK, mode, body),
            });
        }
    }
    let cached = schema.documents.get(&text);
    let mut request = async_graphql::Request::new(params.query);
    if let Some(doc) = cached.clone() {
        request.set_parsed_query(doc);
    }
    if let Some(name) = &operation_name {
        request = request.operation_name(name.clone());
    }
    let given = params.variables.unwrap_or_default();
    // A newly parsed document, kept once its operation has run (one that fails validation is
    // not worth its memory: it fails again).
    let mut parsed = None;
    let (is_mutation, missing, prepared) = match request.parsed_query() {
        Ok(doc) => {
            if cached.is_none() {
                // Checked once per document text: a remembered document passed.
                let limit = gp.max_complexity.max(MAX_SPREAD_FIELDS);
                let size = crate::graphql::size::measure(doc);
                if let Some(cycle) = size.cycle {
                    return Ok(request_errors(mode, vec![cycle]));
                }
                if size.fields > limit {
                    let message =
                        format!("the operation selects more than {limit} fields once its fragments are spread");
                    return Ok(request_errors(
                        mode,
                        vec![async_graphql::ServerError::new(message, None)],
                    ));
                }
                if let Some(e) = crate::graphql::int_range::literal_out_of_range(gp, doc) {
                    return Ok(request_errors(mode, vec![e]));
                }
                parsed = Some(doc.clone());
            }
            let op = crate::plan::operation::selected(&doc.operations, operation_name.as_deref());
            // Prepared now, while the document is at hand; kept only if the operation runs.
            let prepared = remembered
                .is_none()
                .then(|| crate::plan::operation::prepare(gp, doc, operation_name.as_deref()).map(Arc::new));
            (
                op.is_some_and(|op| op.node.ty == OperationType::Mutation),
                op.and_then(|op| {
                    missing_variable(op, &given)
                        .or_else(|| crate::graphql::int_range::variable_out_of_range(op, &given))
                }),
                prepared,
            )
        }
        Err(e) => return Ok(request_errors(mode, vec![without_source(e)])),
    };
    if is_mutation && method == Method::GET {
        return Err(mutation_over_get(&method));
    }
    // async-graphql runs an operation whose required variable is missing (and fails the fields
    // that use it); GraphQL makes it a request error.
    if let Some(e) = missing {
        return Ok(request_errors(mode, vec![e]));
    }
    if !given.is_empty() {
        request = request.variables(async_graphql::Variables::from_json(Value::Object(given)));
    }
    let op = operation_data(state, plan, headers, peer, request_id);
    let empty_objects = op.empty_objects.clone();
    // Variables take part in validation, so only a variable-free operation skips the rules that
    // passed before (see `GraphqlSchema::fast`).
    let fast = no_variables
        && match &remembered {
            Some(None) => true,
            Some(Some(p)) => p.variables.is_empty(),
            None => false,
        };
    let runner = if fast { &schema.fast } else { &schema.schema };
    let mut response = runner.execute(request.data(op)).await;
    empty_objects.mend(&mut response.data, !response.errors.is_empty());
    // A request that fails to validate or to coerce its variables is never executed: no data.
    if response.data == async_graphql::Value::Null && !response.errors.is_empty() {
        return Ok(request_errors(mode, response.errors));
    }
    // It ran, so its document passed every rule: from now on it runs through Facade's own
    // executor when it can, or (without variables) skips the rules.
    if let Some(doc) = parsed {
        schema.documents.insert(text.clone(), doc);
    }
    if let Some(prepared) = prepared {
        // Remembered as merely valid only from a run without variables: one with variables
        // says nothing of the same text sent without them.
        if no_variables || prepared.is_some() {
            schema.validated.insert(key, prepared);
        }
    }
    // An executed operation asked for as application/graphql-response+json is what
    // async-graphql-axum's response does right (200, that media type, the operation's
    // Cache-Control and headers); the application/json answer is Facade's own.
    if mode == Mode::GraphqlResponse {
        return Ok(async_graphql_axum::GraphQLResponse::from(response).into_response());
    }
    // Written straight from async-graphql's values, with no JSON tree in between.
    let mut bytes = Vec::with_capacity(1024);
    bytes.extend_from_slice(b"{\"data\":");
    let written = serde_json::to_writer(&mut bytes, &response.data).and_then(|()| {
        if response.errors.is_empty() {
            return Ok(());
        }
        bytes.extend_from_slice(b",\"errors\":");
        serde_json::to_writer(&mut bytes, &response.errors)
    });
    if written.is_err() {
        return Err(HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the GraphQL answer could not be written",
        ));
    }
    bytes.push(b'}');
    Ok(respond_bytes(StatusCode::OK, mode, bytes))
}

/// What the resolvers of one operation share.
fn operation_data(
    state: &AppState,
    plan: &Arc<Plan>,
    headers: HeaderMap,
    peer: Option<std::net::SocketAddr>,
    request_id: &HeaderValue,
) -> Operation {
    Operation {
        exec: state.exec.clone(),
        limiter: state.limiter.clone(),
        peer,
        plan: plan.clone(),
        traceparent: headers.get("traceparent").cloned(),
        headers,
        request_id: request_id.clone(),
        dedup: Default::default(),
        empty_objects: Default::default(),
    }
}

/// A mutation sent over GET (decided before validation).
fn mutation_over_get(method: &Method) -> HttpError {
    HttpError::new(
        http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("a mutation cannot be sent with {method}: send it with POST"),
    )
    .header(header::ALLOW, HeaderValue::from_static("GET, POST"))
}

/// A request that was refused before execution: `errors` only, 400 for
/// `application/graphql-response+json` and 200 for `application/json`.
/// The most request errors listed in one answer (graphql-js's `maxErrors`).
const MAX_REQUEST_ERRORS: usize = 100;

fn request_errors(mode: Mode, mut errors: Vec<async_graphql::ServerError>) -> Response {
    // In document order (async-graphql reports some rules' errors in hash order, so the same
    // document listed them differently from run to run), and each error once: two of its rules
    // can report the same thing ("Schema is not configured for subscriptions." came twice).
    errors.sort_by(|a, b| {
        let at = |e: &async_graphql::ServerError| e.locations.first().map(|p| (p.line, p.column));
        at(a).cmp(&at(b)).then_with(|| a.message.cmp(&b.message))
    });
    let mut seen = std::collections::HashSet::new();
    errors.retain(|e| seen.insert(serde_json::to_string(e).unwrap_or_default()));
    // As graphql-js does: a document with thousands of mistakes gets the first hundred.
    if errors.len() > MAX_REQUEST_ERRORS {
        errors.truncate(MAX_REQUEST_ERRORS);
        errors.push(async_graphql::ServerError::new(
            "Too many validation errors, error limit reached. Validation aborted.",
            None,
        ));
    }
    let status = match mode {
        Mode::GraphqlResponse => StatusCode::BAD_REQUEST,
        Mode::Json => StatusCode::OK,
    };
    let body = serde_json::json!({ "errors": errors });
    respond(status, mode, &body)
}

fn respond(status: StatusCode, mode: Mode, body: &Value) -> Response {
    respond_bytes(
        status,
        mode,
        serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec()),
    )
}

fn respond_bytes(status: StatusCode, mode: Mode, bytes: Vec<u8>) -> Response {
    let mut resp = (status, bytes).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, mode.content_type());
    resp
}

fn wants_html(headers: &HeaderMap) -> bool {
    accepted(headers).iter().any(|(m, q)| m == "text/html" && *q > 0.0)
}

fn has_query(uri: &http::Uri) -> bool {
    uri.query()
        .is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "query"))
}

/// The media types of `Accept` with their quality, parameters dropped.
fn accepted(headers: &HeaderMap) -> Vec<(String, f32)> {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|item| {
            let mut parts = item.split(';');
            let media = parts.next()?.trim().to_ascii_lowercase();
            if media.is_empty() {
                return None;
            }
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok()))
                .next()
                .unwrap_or(1.0);
            Some((media, q))
        })
        .collect()
}

/// The response media type: `application/graphql-response+json` when asked for (unless
/// `application/json` is preferred), `application/json` for it, `*/*`, `application/*` or no
/// `Accept`; anything else is 406.
fn negotiate(headers: &HeaderMap) -> Result<Mode, HttpError> {
    let list = accepted(headers);
    if list.is_empty() {
        return Ok(Mode::Json);
    }
    let q = |name: &str| {
        list.iter()
            .filter(|(m, _)| m == name)
            .map(|(_, q)| *q)
            .fold(0.0f32, f32::max)
    };
    let gql = q("application/graphql-response+json");
    let json = q("application/json").max(q("application/*")).max(q("*/*"));
    match (gql > 0.0, json > 0.0) {
        (true, _) if gql >= json => Ok(Mode::GraphqlResponse),
        (_, true) => Ok(Mode::Json),
        _ => Err(HttpError::new(
            StatusCode::NOT_ACCEPTABLE,
            "not_acceptable",
            "GraphQL answers application/graphql-response+json or application/json",
        )),
    }
}

fn bad(message: impl Into<String>) -> HttpError {
    HttpError::bad_request(message)
}

/// `query`, `variables`, `operationName` from a GET's query string (`variables` and `extensions`
/// as JSON text).
fn params_from_query(q: &str) -> Result<Params, HttpError> {
    let mut obj = Map::new();
    for (k, v) in form_urlencoded::parse(q.as_bytes()) {
        let value = match &*k {
            "variables" | "extensions" => {
                serde_json::from_str(&v).map_err(|_| bad(format!("`{k}` is not valid JSON")))?
            }
            _ => Value::String(v.into_owned()),
        };
        obj.insert(k.into_owned(), value);
    }
    params_from_object(obj)
}

/// The parameters from a POST's JSON body (`Content-Type: application/json`, no batches).
async fn params_from_body(req: Request, limit: u64) -> Result<Params, HttpError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    if content_type.as_deref() != Some("application/json") {
        return Err(HttpError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "a GraphQL POST must have Content-Type: application/json",
        ));
    }
    if crate::upstream::declared_length(req.headers()).is_some_and(|n| n > limit) {
        return Err(HttpError::payload_too_large(limit));
    }
    let bytes = axum::body::to_bytes(req.into_body(), usize::try_from(limit).unwrap_or(usize::MAX))
        .await
        .map_err(|e| HttpError::body_unread(&e, limit))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(obj)) => params_from_object(obj),
        Ok(Value::Array(_)) => Err(bad(
            "batched requests are not supported: send one operation per request",
        )),
        Ok(_) => Err(bad("the request body must be a JSON object")),
        Err(_) if bytes.iter().all(u8::is_ascii_whitespace) => Err(bad("the request body is empty")),
        Err(e) => Err(bad(format!("the request body is not valid JSON: {e}"))),
    }
}

fn params_from_object(mut obj: Map<String, Value>) -> Result<Params, HttpError> {
    let persisted = obj
        .get("extensions")
        .and_then(|e| e.get("persistedQuery"))
        .is_some_and(Value::is_object);
    let (query, persisted_query) = match obj.remove("query") {
        Some(Value::String(q)) => (q, false),
        Some(_) => return Err(bad("`query` must be a string")),
        None if persisted => (String::new(), true),
        None => return Err(bad("the request has no `query`")),
    };
    let variables = match obj.remove("variables") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m),
        Some(_) => return Err(bad("`variables` must be an object")),
    };
    let operation_name = match obj.remove("operationName") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(bad("`operationName` must be a string")),
    };
    match obj.remove("extensions") {
        None | Some(Value::Null) | Some(Value::Object(_)) => {}
        Some(_) => return Err(bad("`extensions` must be an object")),
    }
    Ok(Params {
        query,
        persisted_query,
        variables,
        operation_name,
    })
}

/// A syntax error as graphql-js words it (`Syntax Error: expected selection_set.`), with its
/// location. The parser's own message quotes the document's line with a caret under the spot:
/// an error must never echo the document back (a 1 MiB document on one line would be answered
/// with 2 MiB).
fn without_source(mut e: async_graphql::ServerError) -> async_graphql::ServerError {
    if let Some(rest) = e.message.strip_prefix(" --> ") {
        let what = rest
            .rsplit_once("\n  = ")
            .map(|(_, what)| what.trim())
            .filter(|what| !what.is_empty())
            .unwrap_or("the document does not parse");
        e.message = format!("Syntax Error: {}.", what.trim_end_matches('.'));
    }
    e
}

/// Refuses, before parsing, a document too long or nested too deeply to parse safely.
fn check_document(query: &str, gp: &GraphqlPlan) -> Result<(), HttpError> {
    if query.len() > MAX_DOCUMENT {
        return Err(bad(format!("the GraphQL document is longer than {MAX_DOCUMENT} bytes")));
    }
    let limit = MAX_NESTING.max(gp.max_depth.saturating_mul(2));
    if nesting(query) > limit {
        return Err(bad(format!(
            "the GraphQL document is nested more than {limit} levels deep"
        )));
    }
    Ok(())
}

/// The deepest nesting of brackets in a document, outside strings and comments.
fn nesting(doc: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut chars = doc.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' | '(' | '[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            '}' | ')' | ']' => depth = depth.saturating_sub(1),
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' || c == '\r' {
                        break;
                    }
                }
            }
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    deepest
}

/// The first variable of a non-null type with no default that the request does not give (or
/// gives as null), as GraphQL's variable coercion reports it.
fn missing_variable(
    op: &Positioned<OperationDefinition>,
    given: &Map<String, Value>,
) -> Option<async_graphql::ServerError> {
    op.node.variable_definitions.iter().find_map(|d| {
        let def = &d.node;
        let absent = given.get(def.name.node.as_str()).is_none_or(Value::is_null);
        (!def.var_type.node.nullable && def.default_value.is_none() && absent).then(|| {
            async_graphql::ServerError::new(
                format!(
                    "Variable \"${}\" of required type \"{}\" was not provided.",
                    def.name.node, def.var_type.node
                ),
                Some(d.pos),
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_skips_strings_and_comments() {
        assert_eq!(nesting("{ a { b } }"), 2);
        assert_eq!(nesting(r#"{ a(s: "{{{{\"{{") }"#), 2);
        assert_eq!(nesting("{ a # {{{{\n }"), 1);
        assert_eq!(nesting(&"{".repeat(20_000)), 20_000);
    }
}
