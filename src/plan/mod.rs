//! The compiled plan: everything request handling needs, checked and parsed once.
//!
//! `compile(loaded) -> (Option<Plan>, Diagnostics)`: routes, call graphs, parsed expressions, types
//! from OpenAPI documents, JWT keys. Pure: no network; request handling reads only the plan.

mod compile;
mod endpoint;
pub mod expr;
pub mod graphql;
pub mod openapi;
pub mod operation;
pub mod output;
pub mod routes;
pub mod shape;
pub mod types;

pub use compile::{base_path, compile, origin};

use crate::config::model::*;
use crate::jwt::Verifier;
use expr::{Expr, Step};
use http::{HeaderName, HeaderValue};
use routes::RouteTable;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The immutable, compiled configuration.
#[derive(Debug)]
pub struct Plan {
    /// Address to listen on.
    pub listen: String,
    /// Backend services, indexed by `Call::service`.
    pub services: Vec<Service>,
    /// Every composed endpoint, indexed by the route table.
    pub endpoints: Vec<Arc<Endpoint>>,
    /// Method + path → endpoint, and passthrough prefixes.
    pub routes: RouteTable,
    /// Passthrough routes, indexed by the route table.
    pub passthrough: Vec<Passthrough>,
    /// JWT verification and claim forwarding, when `auth` is configured.
    pub auth: Option<AuthPlan>,
    /// Body and header size limits.
    pub limits: LimitsConfig,
    /// Rate limiting, when `rate_limits` is configured.
    pub rate_limits: Option<RateLimitPlan>,
    /// The CORS stage, when `cors:` is configured (built once, cloned per request).
    pub cors: Option<tower_http::cors::CorsLayer>,
    /// The GraphQL schema's names and options; `None` when GraphQL is not served (no `graphql:`
    /// section and a passthrough route holds its default path).
    pub graphql: Option<graphql::GraphqlPlan>,
    /// The executable GraphQL schema, built from `graphql` by the GraphQL surface when the
    /// configuration loads (never per request).
    pub graphql_schema: Option<GraphqlSchema>,
    /// The OpenAPI document served at `/openapi.json`, written once, when `openapi: true`.
    pub openapi_json: Option<bytes::Bytes>,
    /// `watch: true`: reload when a file of `watched` changes.
    pub watch: bool,
    /// The folders of every file the configuration was read from (facade.yaml's, the
    /// compositions', the schemas', a PEM key's), for `watch`.
    pub watched: Vec<PathBuf>,
    /// Configuration keys that are accepted but not in force yet (logged at start).
    pub not_in_force: Vec<String>,
    /// True when the JWT secret is the written default (the demo secret).
    pub demo_secret: bool,
    /// Services with a `demo:` fixture folder: (service index, folder).
    pub demo: Vec<(usize, PathBuf)>,
}

/// An operation by its document's text and its `operationName`.
pub type OperationKey = (Arc<str>, Option<String>);

/// The executable GraphQL schema, and the documents already parsed and validated for it.
#[derive(Clone)]
pub struct GraphqlSchema {
    /// The async-graphql schema, validating every operation with every rule.
    pub schema: async_graphql::dynamic::Schema,
    /// The same schema validating only the depth and complexity limits: for an operation that
    /// passed every rule before with the same text, operation name and no variables. Validation
    /// depends on nothing else (the schema is this plan's), and running every rule again was
    /// about a twentieth of a GraphQL request.
    pub fast: async_graphql::dynamic::Schema,
    /// Parsed documents by their text: a client sends the same few operations again and again,
    /// and parsing one costs more than the rest of its handling (bounded by bytes).
    pub documents: moka::sync::Cache<Arc<str>, async_graphql::parser::types::ExecutableDocument>,
    /// (text, operation name) of the operations that passed every rule without variables, each
    /// with its prepared form when Facade's own executor can run it (`operation`).
    pub validated: moka::sync::Cache<OperationKey, Option<Arc<operation::PreparedOperation>>>,
}

impl GraphqlSchema {
    /// Wraps the built schemas with empty caches of about `bytes` of memory each (weighed from
    /// each entry's text).
    pub fn new(
        schema: async_graphql::dynamic::Schema,
        fast: async_graphql::dynamic::Schema,
        bytes: u64,
    ) -> GraphqlSchema {
        // What an entry holds in memory, from its text: measured with 90,000 distinct three-field
        // documents, an entry of each cache took about 2 KiB beside its text, and a parsed
        // document several times its text (the text alone let the caches hold 80 MiB).
        let weight = |len: usize| u32::try_from(len.saturating_mul(8).saturating_add(2048)).unwrap_or(u32::MAX);
        GraphqlSchema {
            schema,
            fast,
            documents: moka::sync::Cache::builder()
                .weigher(move |k: &Arc<str>, _| weight(k.len()))
                .max_capacity(bytes)
                .build(),
            validated: moka::sync::Cache::builder()
                .weigher(move |k: &OperationKey, _| weight(k.0.len()))
                .max_capacity(bytes)
                .build(),
        }
    }
}

impl std::fmt::Debug for GraphqlSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GraphqlSchema")
    }
}

/// Rate limiting (SPEC §7): the policies, where buckets are kept, what a store failure does.
#[derive(Debug, Clone)]
pub struct RateLimitPlan {
    /// The policies, by name.
    pub policies: Vec<Policy>,
    /// Where buckets live.
    pub store: StoreConfig,
    /// `on_store_error: deny`.
    pub deny_on_store_error: bool,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl RateLimitPlan {
    /// The policy of this name.
    pub fn policy(&self, name: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.name == name)
    }
}

/// One rate-limit policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Its name (part of every bucket key, and of the `RateLimit-Policy` header).
    pub name: String,
    /// Requests allowed per `per`.
    pub requests: u64,
    /// The period.
    pub per: Duration,
    /// Whose bucket a request uses.
    pub key: KeyKind,
    /// The policy as an RFC 8941 string (`"standard"`), for the `RateLimit` headers.
    pub quoted: String,
    /// `RateLimit-Policy: "standard";q=100;w=60`, the same on every response.
    pub policy_header: HeaderValue,
    /// `X-RateLimit-Limit: 100`, the same on every response.
    pub limit_header: HeaderValue,
}

/// What a policy's buckets are keyed by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    /// The verified `sub` (anonymous: the address).
    User,
    /// The client's address.
    Ip,
    /// `user` when authenticated, else the address.
    UserOrIp,
    /// A request header (missing: the address).
    Header(HeaderName),
}

/// `rate_limits.store`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// In this process.
    Memory,
    /// One Redis server (`redis://` or `rediss://`).
    Redis(String),
    /// A Redis Cluster, from these seed nodes.
    Cluster(Vec<String>),
}

/// JWT verification and the claims forwarded to backends.
#[derive(Debug)]
pub struct AuthPlan {
    /// Verifies tokens.
    pub verifier: Verifier,
    /// Header → claim path. Every one of these headers is stripped from client requests.
    pub forward_claims: Vec<(HeaderName, Vec<String>)>,
}

/// A backend service.
#[derive(Debug, Clone)]
pub struct Service {
    /// Its name (also its circuit breaker's key, so breakers survive a reload).
    pub name: Arc<str>,
    /// The base URL, parsed once: each call's URL is this with its path and query set, so the
    /// host is never parsed again on the request path.
    pub base: reqwest::Url,
    /// The base URL's path without a trailing slash, put in front of every call path.
    pub base_path: String,
    /// `scheme://host[:port]` of the base URL, in front of every forwarded passthrough path.
    pub origin: String,
    /// Default per-attempt timeout.
    pub timeout: Duration,
    /// Extra tries for idempotent calls.
    pub retries: u32,
    /// `circuit_breaker`, when configured.
    pub circuit_breaker: Option<CircuitBreakerConfig>,
}

/// Who may use a route, the same for composed endpoints and passthrough routes (and, later,
/// GraphQL fields): the effective auth mode, the roles and the rate-limit policy.
#[derive(Debug, Clone)]
pub struct Access {
    /// Effective auth mode (defaults already applied).
    pub auth: AuthMode,
    /// Roles of which the token must hold one (empty: any).
    pub roles: Vec<String>,
    /// The rate-limit policy in force (the route's, else the default; `none` gives `None`).
    pub rate_limit: Option<String>,
}

impl Access {
    /// The access of a route from what it wrote, its checked auth mode and the default policy.
    pub fn new(auth: AuthMode, written: &AccessConfig, default_policy: Option<&str>) -> Access {
        let rate_limit = match &written.rate_limit {
            Some(p) if p.value == "none" => None,
            Some(p) => Some(p.value.clone()),
            None => default_policy.map(str::to_string),
        };
        Access {
            auth,
            roles: written.roles.clone(),
            rate_limit,
        }
    }
}

/// A passthrough route (SPEC §8): everything under `prefix` goes to one service, streamed.
#[derive(Debug)]
pub struct Passthrough {
    /// The prefix without a trailing `/` (empty for the catch-all `/`).
    pub prefix: String,
    /// The prefix as shown in logs, metrics and `facade routes` (`/` for the catch-all).
    pub label: String,
    /// Index of its service in `Plan::services`.
    pub service: usize,
    /// How the forwarded path is made.
    pub target: Target,
    /// Who may use it.
    pub access: Access,
}

/// The path a passthrough route sends to its service (before the service URL's own path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The request path unchanged.
    Keep,
    /// `strip_prefix: true`: the path after the prefix (`/` when nothing is left).
    Strip,
    /// `rewrite: /v2/orders`: this path in place of the prefix (no trailing `/`).
    Rewrite(String),
}

/// One composed endpoint.
#[derive(Debug)]
pub struct Endpoint {
    /// The client (composition) it belongs to.
    pub client: String,
    /// Its name in the composition.
    pub name: String,
    /// Its method.
    pub method: Method,
    /// The full route path (`/mobile/api/home`), `{name}` for parameters.
    pub path: String,
    /// Who may call it.
    pub access: Access,
    /// Declared parameters.
    pub params: Vec<Param>,
    /// The calls, in written order; `deps` index into this.
    pub calls: Vec<Call>,
    /// The response projection.
    pub response: Expr,
    /// The type of its response, with each field's calls (GraphQL, `facade openapi`).
    pub output: output::OutType,
    /// The calls the top of the response reads whatever fields are selected: the array that an
    /// endpoint-level `each` walks, or the value of a response that is one expression (when the
    /// response is a mapping, its fields carry their own calls).
    pub root_needs: Vec<usize>,
}

impl Endpoint {
    /// The calls a GraphQL selection needs before its fields are counted (`root_needs`), one flag
    /// per call.
    pub fn needs_before_fields(&self) -> Vec<bool> {
        let mut needs = vec![false; self.calls.len()];
        for &i in &self.root_needs {
            if let Some(n) = needs.get_mut(i) {
                *n = true;
            }
        }
        needs
    }
}

/// A declared parameter of an endpoint, its default already converted to its type.
#[derive(Debug, Clone)]
pub struct Param {
    /// Its name under `$.args`.
    pub name: String,
    /// Where it is read from.
    pub source: ParamSource,
    /// Its type.
    pub ty: ParamType,
    /// The default, converted once at load (a default that does not convert is a load error).
    pub default: Option<Value>,
}

/// One backend call of an endpoint.
#[derive(Debug)]
pub struct Call {
    /// Its name (a key of the data document).
    pub name: String,
    /// Index of its service in `Plan::services`.
    pub service: usize,
    /// The method.
    pub method: Method,
    /// The path template.
    pub path: Vec<PathPart>,
    /// Query parameters.
    pub query: Vec<(String, Expr)>,
    /// Headers set on the request.
    pub headers: Vec<(HeaderName, Expr)>,
    /// JSON body.
    pub body: Option<Expr>,
    /// `each`: one request per item.
    pub each: Option<EachCall>,
    /// `when`.
    pub when: Option<Expr>,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// Extra tries for idempotent methods.
    pub retries: u32,
    /// Response cache, for GET calls.
    pub cache: Option<CachePolicy>,
    /// A failure makes the result null (or `fallback`) instead of failing the endpoint.
    pub optional: bool,
    /// Used instead of null when an optional call fails.
    pub fallback: Option<Value>,
    /// A backend 4xx keeps its status and body for the client.
    pub errors_pass: bool,
    /// Calls that must finish before this one starts.
    pub deps: Vec<usize>,
    /// Whether this call can be identical to another one of the same request (a GET `each`
    /// call, or another GET call to the same service): only such calls go through the per-request
    /// dedup table, so the others keep their answer without a copy.
    pub dedup: bool,
    /// Whether another GET call of the plan, in any endpoint, goes to the same service: in one
    /// GraphQL operation, which runs several endpoints, its answer may then be shared.
    pub shared_in_plan: bool,
    /// The parts of the answer that the endpoint reads (see `shape`).
    pub shape: Arc<shape::Shape>,
}

/// A piece of a call's path template.
#[derive(Debug)]
pub enum PathPart {
    /// Literal text, used as written.
    Text(String),
    /// A value put into the path as one percent-encoded segment.
    Value {
        /// The expression.
        expr: Expr,
        /// True when it reads only `args` and `auth`: an unusable value is then the client's
        /// fault (400), not a failed call.
        from_client: bool,
        /// The text as written, for messages.
        text: String,
    },
}

/// `each` on a call.
#[derive(Debug)]
pub struct EachCall {
    /// The array whose items the call is made for.
    pub over: Expr,
    /// Most requests in flight at once.
    pub concurrency: usize,
    /// Most items: an array with more fails the call, and the request (400) when it is the
    /// client's own (`from_client`).
    pub max_items: usize,
    /// The array comes from the request's arguments or token alone.
    pub from_client: bool,
    /// `attach`: field name and the simple path of the source array.
    pub attach: Option<(String, Vec<Step>)>,
}

/// `cache:` on a call.
#[derive(Debug, Clone, Copy)]
pub struct CachePolicy {
    /// How long a response is kept.
    pub ttl: Duration,
    /// `cache_scope: shared`: the caller's identity is not part of the key.
    pub shared: bool,
}
