//! What the configuration files say, checked for shape and types, with locations kept for the
//! compile step's diagnostics. Nothing here is evaluated yet: expressions stay as located nodes.

use super::diag::Loc;
use super::yaml::Node;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A value together with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub loc: Loc,
}

/// `auth:` on an endpoint, route or GraphQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// A valid token is needed.
    Required,
    /// Anonymous requests pass; an invalid token is refused.
    Optional,
    /// No token is looked at.
    None,
}

/// HTTP methods a composition endpoint or call can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
}

impl Method {
    /// The keys that name a method in a composition.
    pub const KEYS: [&'static str; 5] = ["get", "post", "put", "patch", "delete"];

    /// Reads a method key.
    pub fn from_key(key: &str) -> Option<Method> {
        Some(match key {
            "get" => Method::Get,
            "post" => Method::Post,
            "put" => Method::Put,
            "patch" => Method::Patch,
            "delete" => Method::Delete,
            _ => return None,
        })
    }

    /// The method as HTTP writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    /// Whether a retry can never do harm.
    pub fn idempotent(self) -> bool {
        matches!(self, Method::Get | Method::Put | Method::Delete)
    }
}

/// Who may use a route and how often: `auth`, `roles` and `rate_limit`, read the same way on
/// composed endpoints and passthrough routes.
#[derive(Debug, Clone, Default)]
pub struct AccessConfig {
    /// `auth`, when written.
    pub auth: Option<Spanned<AuthMode>>,
    /// `roles`.
    pub roles: Vec<String>,
    /// `rate_limit`, when written.
    pub rate_limit: Option<Spanned<String>>,
}

/// The whole of `facade.yaml`.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The file as the user named it.
    pub file: Arc<str>,
    /// The folder that relative paths start from.
    pub dir: PathBuf,
    /// `listen`.
    pub listen: String,
    /// `compositions` folder, resolved.
    pub compositions_dir: PathBuf,
    /// `schemas` folder, resolved.
    pub schemas_dir: PathBuf,
    /// `services`, in written order.
    pub services: Vec<ServiceConfig>,
    /// `auth`, when present.
    pub auth: Option<AuthConfig>,
    /// `rate_limits`, when present.
    pub rate_limits: Option<RateLimitsConfig>,
    /// `routes`: passthrough routes.
    pub routes: Vec<RouteConfig>,
    /// `graphql`, when present.
    pub graphql: Option<GraphqlConfig>,
    /// `limits`.
    pub limits: LimitsConfig,
    /// `watch`.
    pub watch: bool,
    /// `cors`, when present.
    pub cors: Option<CorsConfig>,
    /// `openapi`: serve `GET /openapi.json`.
    pub openapi: bool,
    /// Files read besides facade.yaml, the compositions and the schemas (PEM keys), for `watch`.
    pub other_files: Vec<PathBuf>,
    /// Keys that were given but whose behaviour is not in force yet, for a start-up warning.
    pub not_in_force: Vec<Spanned<String>>,
}

/// One backend service.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Its name, as calls refer to it.
    pub name: Spanned<String>,
    /// Base URL.
    pub url: Spanned<String>,
    /// OpenAPI document under `schemas/`, when given.
    pub schema: Option<Spanned<String>>,
    /// Per-attempt timeout (default 10 s).
    pub timeout: Duration,
    /// Extra tries for idempotent calls.
    pub retries: u32,
    /// `circuit_breaker`, checked.
    pub circuit_breaker: Option<CircuitBreakerConfig>,
    /// Fixture folder for `--demo`, resolved against `facade.yaml`'s folder.
    pub demo: Option<PathBuf>,
}

/// `circuit_breaker: { failures, within, open_for }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitBreakerConfig {
    /// Failures that open the circuit.
    pub failures: u32,
    /// The window they are counted in.
    pub within: Duration,
    /// How long it stays open.
    pub open_for: Duration,
}

/// `auth:`.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Where the section starts.
    pub loc: Loc,
    /// `auth.jwt`.
    pub jwt: Option<JwtConfig>,
    /// `forward_claims`: header name (lower case) → claim path.
    pub forward_claims: Vec<(String, String)>,
}

/// Where a verification key comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// HS* shared secret bytes.
    Secret(Vec<u8>),
    /// PEM text of a public key.
    PublicKeyPem(Vec<u8>),
    /// A JWKS URL (`jwks::KeySet` fetches it).
    Jwks(String),
}

/// `auth.jwt`.
#[derive(Debug, Clone)]
pub struct JwtConfig {
    /// Where the section starts.
    pub loc: Loc,
    /// The only algorithms accepted, as written (`HS256` …).
    pub algorithms: Vec<Spanned<String>>,
    /// The keys.
    pub keys: Vec<KeySource>,
    /// True when the HS secret came from a written default (the demo secret).
    pub secret_is_default: bool,
    /// `issuer`.
    pub issuer: Option<String>,
    /// `audience`.
    pub audience: Option<Vec<String>>,
    /// `leeway` (30 s).
    pub leeway: Duration,
    /// `roles_claim` (`role`), dotted.
    pub roles_claim: String,
    /// The `public_key` file, when one is read (watched with `watch: true`).
    pub key_file: Option<PathBuf>,
}

/// `rate_limits:`.
#[derive(Debug, Clone)]
pub struct RateLimitsConfig {
    /// Where the section is written.
    pub loc: Loc,
    /// `store` as a URL (`memory` when not a URL).
    pub store: String,
    /// `store: { cluster: [...] }`: the seed nodes.
    pub cluster: Option<Vec<String>>,
    /// `on_store_error: deny`.
    pub deny_on_store_error: bool,
    /// `trusted_proxies`, as CIDR text.
    pub trusted_proxies: Vec<String>,
    /// `default`.
    pub default: Option<Spanned<String>>,
    /// `policies`.
    pub policies: Vec<PolicyConfig>,
}

/// One rate-limit policy.
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// Its name.
    pub name: Spanned<String>,
    /// Requests allowed per `per`.
    pub requests: u64,
    /// The window.
    pub per: Duration,
    /// `key`.
    pub key: String,
}

/// One passthrough route.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    /// Where it is written.
    pub loc: Loc,
    /// `prefix`.
    pub prefix: Spanned<String>,
    /// `service`.
    pub service: Spanned<String>,
    /// `strip_prefix`.
    pub strip_prefix: bool,
    /// `rewrite`.
    pub rewrite: Option<String>,
    /// `auth`, `roles`, `rate_limit`.
    pub access: AccessConfig,
}

/// `graphql:`.
#[derive(Debug, Clone)]
pub struct GraphqlConfig {
    /// `path`.
    pub path: Spanned<String>,
    /// `playground`.
    pub playground: bool,
    /// `introspection`.
    pub introspection: bool,
    /// `max_depth`.
    pub max_depth: u64,
    /// `max_complexity`.
    pub max_complexity: u64,
    /// `auth`.
    pub auth: Option<Spanned<AuthMode>>,
    /// `rate_limit`.
    pub rate_limit: Option<Spanned<String>>,
}

/// `cors:` — browsers calling the BFF from another origin.
#[derive(Debug, Clone, PartialEq)]
pub struct CorsConfig {
    /// Origins allowed (`*` alone for any).
    pub allow_origins: Vec<String>,
    /// Methods a preflight may ask for.
    pub allow_methods: Vec<String>,
    /// Request headers a preflight may ask for.
    pub allow_headers: Vec<String>,
    /// Whether cookies and `Authorization` may be sent (never with `*`).
    pub allow_credentials: bool,
    /// How long a browser may keep a preflight's answer.
    pub max_age: Option<std::time::Duration>,
}

/// `limits:`.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitsConfig {
    /// Largest body Facade reads for composed endpoints.
    pub request_body: u64,
    /// All request headers together (Σ name + value + 4).
    pub request_headers: u64,
    /// Largest backend body read for a composition.
    pub upstream_body: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            request_body: 1 << 20,
            request_headers: 32 << 10,
            upstream_body: 8 << 20,
        }
    }
}

/// One `compositions/<client>.yaml`.
#[derive(Debug, Clone)]
pub struct CompositionConfig {
    /// The file as the user named it.
    pub file: Arc<str>,
    /// `client`.
    pub client: Spanned<String>,
    /// `base_path`.
    pub base_path: Spanned<String>,
    /// `endpoints`, in written order.
    pub endpoints: Vec<EndpointConfig>,
}

/// Where a parameter is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamSource {
    /// A `{name}` in the endpoint path.
    Path,
    /// The query string.
    Query,
    /// A field of the JSON body.
    Body,
    /// A request header.
    Header(String),
}

/// A parameter type: `ID`, `String`, `Int`, `Float`, `Boolean`, `JSON`, `[T]`, with `!` for required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamType {
    /// The base type.
    pub base: BaseType,
    /// `!`.
    pub required: bool,
}

/// The base of a parameter type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseType {
    /// A scalar.
    Scalar(ScalarType),
    /// A list of some type.
    List(Box<ParamType>),
}

/// Scalar parameter types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarType {
    /// `ID`: a string (numbers are accepted and turned into strings).
    Id,
    /// `String`.
    String,
    /// `Int`.
    Int,
    /// `Float`.
    Float,
    /// `Boolean`.
    Boolean,
    /// `JSON`: anything.
    Json,
}

impl ScalarType {
    /// The type names as written, in `from_name`'s order.
    pub const NAMES: [&'static str; 6] = ["ID", "String", "Int", "Float", "Boolean", "JSON"];

    /// The scalar of a GraphQL type name (`ID`, `String`, `Int`, `Float`, `Boolean`, `JSON`).
    pub fn from_name(name: &str) -> Option<ScalarType> {
        Some(match name {
            "ID" => ScalarType::Id,
            "String" => ScalarType::String,
            "Int" => ScalarType::Int,
            "Float" => ScalarType::Float,
            "Boolean" => ScalarType::Boolean,
            "JSON" => ScalarType::Json,
            _ => return None,
        })
    }
}

impl ParamType {
    /// Parses `[String!]!`-style type text.
    pub fn parse(text: &str) -> Option<ParamType> {
        let text = text.trim();
        let (inner, required) = match text.strip_suffix('!') {
            Some(t) => (t.trim_end(), true),
            None => (text, false),
        };
        let base = if let Some(list) = inner.strip_prefix('[') {
            BaseType::List(Box::new(ParamType::parse(list.strip_suffix(']')?)?))
        } else {
            BaseType::Scalar(ScalarType::from_name(inner)?)
        };
        Some(ParamType { base, required })
    }
}

impl std::fmt::Display for ParamType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.base {
            BaseType::List(inner) => write!(f, "[{inner}]")?,
            BaseType::Scalar(s) => write!(
                f,
                "{}",
                match s {
                    ScalarType::Id => "ID",
                    ScalarType::String => "String",
                    ScalarType::Int => "Int",
                    ScalarType::Float => "Float",
                    ScalarType::Boolean => "Boolean",
                    ScalarType::Json => "JSON",
                }
            )?,
        }
        if self.required {
            write!(f, "!")?;
        }
        Ok(())
    }
}

/// One declared parameter.
#[derive(Debug, Clone)]
pub struct ParamConfig {
    /// Its name under `$.args`.
    pub name: Spanned<String>,
    /// Where it is read from.
    pub source: ParamSource,
    /// Its type.
    pub ty: ParamType,
    /// Its default, when given.
    pub default: Option<serde_json::Value>,
}

/// One endpoint of a composition.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// Its name (`home`).
    pub name: Spanned<String>,
    /// Its method.
    pub method: Method,
    /// Its path below `base_path`.
    pub path: Spanned<String>,
    /// `auth`, `roles`, `rate_limit`.
    pub access: AccessConfig,
    /// Path, query, body and header parameters.
    pub params: Vec<ParamConfig>,
    /// `calls`, in written order.
    pub calls: Vec<CallConfig>,
    /// `response`: the projection, still a located tree.
    pub response: Node,
}

/// One backend call of an endpoint.
#[derive(Debug, Clone)]
pub struct CallConfig {
    /// Its name, as expressions refer to it.
    pub name: Spanned<String>,
    /// `service`.
    pub service: Spanned<String>,
    /// The method.
    pub method: Method,
    /// The path template.
    pub path: Spanned<String>,
    /// `query`: name → expression.
    pub query: Vec<(Spanned<String>, Node)>,
    /// `headers`: name → expression.
    pub headers: Vec<(Spanned<String>, Node)>,
    /// `body`: an expression tree.
    pub body: Option<Node>,
    /// `each`: the array expression.
    pub each: Option<Node>,
    /// `concurrency` (16).
    pub concurrency: usize,
    /// `max_items` (1000): the most items an `each` makes requests for.
    pub max_items: usize,
    /// `attach`.
    pub attach: Option<Spanned<String>>,
    /// `when`.
    pub when: Option<Node>,
    /// `timeout`.
    pub timeout: Option<Duration>,
    /// `retries`: overrides the service's.
    pub retries: Option<u32>,
    /// `cache`.
    pub cache: Option<Spanned<Duration>>,
    /// `cache_scope: shared`.
    pub cache_shared: bool,
    /// `optional`.
    pub optional: bool,
    /// `fallback`.
    pub fallback: Option<Spanned<serde_json::Value>>,
    /// `errors: pass`.
    pub errors_pass: Option<Loc>,
}
