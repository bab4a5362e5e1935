//! From loaded configuration to a plan, as named passes: `resolve_services`, `compile_auth`,
//! the `AccessRules` every route is checked against, `compile_compositions` (each endpoint in
//! `endpoint.rs`), `compile_passthrough`, and the CORS layer.

use super::endpoint::compile_endpoint;
use super::routes::{self, RouteTable};
use super::{types, AuthPlan, Plan, Service};
use crate::config::diag::{did_you_mean, Diagnostics, Loc};
use crate::config::model::*;
use crate::config::Loaded;
use crate::jwt::Verifier;
use http::HeaderName;
use std::sync::Arc;

pub(super) const RESERVED: [&str; 2] = ["auth", "args"];

/// Compiles loaded configuration into a plan, or every problem found: a short driver over named
/// passes, each of which reports every problem it finds.
pub fn compile(loaded: &Loaded) -> (Option<Plan>, Diagnostics) {
    let mut diags = Diagnostics::default();
    let gw = &loaded.gateway;
    let services = resolve_services(gw);
    let auth = compile_auth(gw, &mut diags);
    let rules = AccessRules::new(gw);
    check_store(gw, &mut diags);
    if let Some(g) = &gw.graphql {
        let mode = rules.auth_mode(&mut diags, &gw.file, &g.auth, &[], g.path.loc);
        rules.check_policy(&mut diags, &gw.file, &g.rate_limit);
        rules.warn_user_policy(&mut diags, &gw.file, mode, &g.rate_limit, g.path.loc);
    }
    let mut routes = RouteTable::default();
    let endpoints = compile_compositions(loaded, &services, &rules, &mut routes, &mut diags);
    let service_names: Vec<&str> = services.iter().map(|s| &*s.name).collect();
    let passthrough = compile_passthrough(gw, &service_names, &endpoints, &mut routes, &rules, &mut diags);
    // The GraphQL pass runs even when an earlier pass found errors, so that `check` reports its
    // naming errors in the same run; it reads only the endpoints that compiled.
    let graphql = graphql_served(gw, &routes).then(|| {
        let (auth, written) = match &gw.graphql {
            Some(g) => (
                rules.auth_mode(&mut Diagnostics::default(), &gw.file, &g.auth, &[], g.path.loc),
                AccessConfig {
                    auth: g.auth.clone(),
                    roles: Vec::new(),
                    rate_limit: g.rate_limit.clone(),
                },
            ),
            None => (
                rules.auth_mode(&mut Diagnostics::default(), &gw.file, &None, &[], Loc::default()),
                AccessConfig::default(),
            ),
        };
        let access = super::Access::new(auth, &written, rules.default_policy);
        let plan = super::graphql::compile_graphql(loaded, &endpoints, access, &mut diags);
        if routes.has_path(&plan.path) || OPS_PATHS.contains(&plan.path.as_str()) {
            let loc = gw.graphql.as_ref().map(|g| g.path.loc).unwrap_or_default();
            diags.error(
                &gw.file,
                loc,
                format!("graphql.path {} is also the path of another route", plan.path),
                Some("set `graphql: { path: … }` to a path no endpoint uses".into()),
            );
        }
        routes.set_graphql(&plan.path);
        plan
    });
    if diags.has_errors() {
        return (None, diags);
    }
    let demo = gw
        .services
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.demo.clone().map(|d| (i, d)))
        .collect();
    let plan = Plan {
        listen: gw.listen.clone(),
        services,
        endpoints,
        routes,
        passthrough,
        auth,
        limits: gw.limits.clone(),
        rate_limits: gw.rate_limits.as_ref().map(compile_rate_limits),
        cors: gw.cors.as_ref().map(cors_layer),
        graphql,
        graphql_schema: None,
        openapi_json: None,
        watch: gw.watch,
        watched: watched_folders(gw),
        not_in_force: not_in_force(loaded),
        demo_secret: gw
            .auth
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .is_some_and(|j| j.secret_is_default),
        demo,
    };
    let mut plan = plan;
    if gw.openapi {
        let doc = super::openapi::document(&plan);
        plan.openapi_json = Some(serde_json::to_vec_pretty(&doc).unwrap_or_default().into());
        plan.routes.serve_openapi();
    }
    (Some(plan), diags)
}

/// Pass: the services, their URLs parsed once (a URL that does not parse was reported by the
/// reader, and such a configuration never compiles).
fn resolve_services(gw: &GatewayConfig) -> Vec<Service> {
    gw.services
        .iter()
        .map(|s| Service {
            name: Arc::from(s.name.value.as_str()),
            base: reqwest::Url::parse(&s.url.value).unwrap_or_else(|_| unusable_url()),
            base_path: base_path(&s.url.value),
            origin: origin(&s.url.value),
            timeout: s.timeout,
            retries: s.retries,
            circuit_breaker: s.circuit_breaker,
        })
        .collect()
}

/// Pass: a Redis store's URLs must be usable (`redis://host:port/db`, `rediss://…`); nothing
/// connects here.
fn check_store(gw: &GatewayConfig, diags: &mut Diagnostics) {
    let Some(rl) = &gw.rate_limits else { return };
    let urls: Vec<&String> = match &rl.cluster {
        Some(nodes) => nodes.iter().collect(),
        None if rl.store != "memory" => vec![&rl.store],
        None => Vec::new(),
    };
    for url in urls {
        if let Err(e) = redis::Client::open(url.as_str()) {
            diags.error(
                &gw.file,
                rl.loc,
                format!("rate_limits.store: `{url}` is not a usable Redis URL: {e}"),
                Some("write redis://host:6379/0, rediss://host:6380, or { cluster: [redis://h1:7000, …] }".into()),
            );
        }
    }
}

/// Pass: the rate-limit policies and store (values that do not parse were reported).
fn compile_rate_limits(rl: &RateLimitsConfig) -> super::RateLimitPlan {
    let store = if let Some(nodes) = &rl.cluster {
        super::StoreConfig::Cluster(nodes.clone())
    } else if rl.store.starts_with("redis://") || rl.store.starts_with("rediss://") {
        super::StoreConfig::Redis(rl.store.clone())
    } else {
        super::StoreConfig::Memory
    };
    let policies = rl
        .policies
        .iter()
        .map(|p| super::Policy {
            name: p.name.value.clone(),
            quoted: sf_string(&p.name.value),
            policy_header: http::HeaderValue::from_str(&format!(
                "{};q={};w={}",
                sf_string(&p.name.value),
                p.requests,
                p.per.as_nanos().div_ceil(1_000_000_000)
            ))
            .unwrap_or(http::HeaderValue::from_static("")),
            limit_header: http::HeaderValue::from(p.requests),
            requests: p.requests,
            per: p.per,
            key: match p.key.as_str() {
                "user" => super::KeyKind::User,
                "ip" => super::KeyKind::Ip,
                other => match other
                    .strip_prefix("header:")
                    .map(|h| HeaderName::from_bytes(h.as_bytes()))
                {
                    Some(Ok(h)) => super::KeyKind::Header(h),
                    _ => super::KeyKind::UserOrIp,
                },
            },
        })
        .collect();
    super::RateLimitPlan {
        policies,
        store,
        deny_on_store_error: rl.deny_on_store_error,
        trusted_proxies: rl
            .trusted_proxies
            .iter()
            .filter_map(|t| {
                t.parse::<ipnet::IpNet>()
                    .ok()
                    .or_else(|| t.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
            })
            .collect(),
    }
}

/// A structured-field string (RFC 8941): quoted, `\` and `"` escaped, printable ASCII only.
fn sf_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars().filter(|c| (' '..='~').contains(c)) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Pass: JWT keys and the `forward_claims` headers.
fn compile_auth(gw: &GatewayConfig, diags: &mut Diagnostics) -> Option<AuthPlan> {
    let a = gw.auth.as_ref()?;
    let file = &gw.file;
    let mut forward = Vec::new();
    for (h, claim) in &a.forward_claims {
        match HeaderName::from_bytes(h.as_bytes()) {
            Ok(name) => forward.push((name, crate::jwt::claim_path(claim))),
            Err(_) => diags.error(file, a.loc, format!("`{h}` is not a valid header name"), None),
        }
    }
    // Keys that are missing were already reported by the reader.
    let jwt = a.jwt.as_ref().filter(|j| keys_complete(j))?;
    match Verifier::build(jwt) {
        Ok(verifier) => Some(AuthPlan {
            verifier,
            forward_claims: forward,
        }),
        Err(e) => {
            diags.error(file, jwt.loc, e, None);
            None
        }
    }
}

/// The rules every route's access is checked against: whether `auth` is configured, and the
/// rate-limit policies that exist.
pub(super) struct AccessRules<'a> {
    auth_configured: bool,
    policies: Vec<&'a str>,
    /// Policies keyed by `user` (anonymous requests fall back to the address).
    user_policies: Vec<&'a str>,
    /// `rate_limits.default`.
    pub default_policy: Option<&'a str>,
}

impl<'a> AccessRules<'a> {
    fn new(gw: &'a GatewayConfig) -> AccessRules<'a> {
        AccessRules {
            auth_configured: gw.auth.is_some(),
            policies: gw
                .rate_limits
                .as_ref()
                .map(|r| r.policies.iter().map(|p| p.name.value.as_str()).collect())
                .unwrap_or_default(),
            user_policies: gw
                .rate_limits
                .as_ref()
                .map(|r| {
                    r.policies
                        .iter()
                        .filter(|p| p.key == "user")
                        .map(|p| p.name.value.as_str())
                        .collect()
                })
                .unwrap_or_default(),
            default_policy: gw
                .rate_limits
                .as_ref()
                .and_then(|r| r.default.as_ref())
                .map(|d| d.value.as_str()),
        }
    }

    /// A route's `rate_limit` must name a policy (or `none`).
    pub(super) fn check_policy(&self, diags: &mut Diagnostics, file: &Arc<str>, rl: &Option<Spanned<String>>) {
        if let Some(p) = rl {
            if p.value != "none" && !self.policies.contains(&p.value.as_str()) {
                diags.error(
                    file,
                    p.loc,
                    format!("rate limit policy `{}` is not defined in facade.yaml", p.value),
                    did_you_mean(&p.value, self.policies.iter().copied()),
                );
            }
        }
    }

    /// SPEC §7: a `user`-keyed policy on a route that lets anonymous requests in counts them by
    /// address instead, which is rarely what was meant.
    pub(super) fn warn_user_policy(
        &self,
        diags: &mut Diagnostics,
        file: &Arc<str>,
        mode: AuthMode,
        rate_limit: &Option<Spanned<String>>,
        loc: Loc,
    ) {
        let policy = match rate_limit {
            Some(p) if p.value == "none" => return,
            Some(p) => p.value.as_str(),
            None => match self.default_policy {
                Some(d) => d,
                None => return,
            },
        };
        if mode != AuthMode::Required && self.user_policies.contains(&policy) {
            let at = rate_limit.as_ref().map(|p| p.loc).unwrap_or(loc);
            diags.warning(
                file,
                at,
                format!(
                    "policy `{policy}` is keyed by `user`, but this route allows anonymous requests: they are counted by client address"
                ),
            );
        }
    }

    /// A route's effective auth mode (SPEC §6: `required` by default when `auth` is configured),
    /// reporting modes and roles that need an `auth` section or a token.
    pub(super) fn auth_mode(
        &self,
        diags: &mut Diagnostics,
        file: &Arc<str>,
        mode: &Option<Spanned<AuthMode>>,
        roles: &[String],
        loc: Loc,
    ) -> AuthMode {
        match mode {
            Some(m) if m.value != AuthMode::None && !self.auth_configured => {
                let word = if m.value == AuthMode::Required {
                    "required"
                } else {
                    "optional"
                };
                diags.error(
                    file,
                    m.loc,
                    format!("`auth: {word}` needs tokens verified, but facade.yaml has no `auth` section"),
                    Some("add `auth: { jwt: … }` to facade.yaml, or write `auth: none`".into()),
                );
                AuthMode::None
            }
            Some(m) => {
                if m.value == AuthMode::None && !roles.is_empty() {
                    diags.error(file, m.loc, "`roles` needs a token, but `auth` is `none`", None);
                }
                m.value
            }
            None if !roles.is_empty() && !self.auth_configured => {
                diags.error(file, loc, "`roles` needs an `auth` section in facade.yaml", None);
                AuthMode::None
            }
            None if self.auth_configured => AuthMode::Required,
            None => AuthMode::None,
        }
    }
}

/// Pass: every composition's endpoints, into the route table (a duplicate client or route is an
/// error).
fn compile_compositions(
    loaded: &Loaded,
    services: &[Service],
    rules: &AccessRules<'_>,
    routes: &mut RouteTable,
    diags: &mut Diagnostics,
) -> Vec<Arc<super::Endpoint>> {
    let types = types::TypeEnv::new(loaded, services);
    let mut endpoints: Vec<super::Endpoint> = Vec::new();
    let mut clients: Vec<(&str, &Arc<str>)> = Vec::new();
    for comp in &loaded.compositions {
        let cfile = &comp.file;
        if let Some((_, other)) = clients.iter().find(|(c, _)| !c.is_empty() && *c == comp.client.value) {
            diags.error(
                cfile,
                comp.client.loc,
                format!("client `{}` is also defined in {other}", comp.client.value),
                None,
            );
        }
        clients.push((&comp.client.value, cfile));
        for ep in &comp.endpoints {
            rules.check_policy(diags, cfile, &ep.access.rate_limit);
            let auth_mode = rules.auth_mode(diags, cfile, &ep.access.auth, &ep.access.roles, ep.name.loc);
            rules.warn_user_policy(diags, cfile, auth_mode, &ep.access.rate_limit, ep.name.loc);
            let endpoint = compile_endpoint(comp, ep, auth_mode, services, &types, rules.default_policy, diags);
            // An endpoint that did not compile still claims its route, so a second endpoint on
            // the same route is reported in the same run (no plan is made either way).
            let path = super::endpoint::route_path(comp, ep);
            if routes::ops_route(&path, loaded.gateway.openapi).is_some() {
                diags.error(
                    cfile,
                    ep.path.loc,
                    format!("endpoint path {path} is an operations route that Facade answers itself"),
                    Some("give the endpoint another path, or the composition a `base_path`".into()),
                );
            } else if let Err(e) = routes.insert(ep.method, &path, endpoints.len()) {
                diags.error(cfile, ep.path.loc, e, None);
            }
            if let Some(endpoint) = endpoint {
                endpoints.push(endpoint);
            }
        }
    }
    mark_shared_in_plan(&mut endpoints);
    endpoints.into_iter().map(Arc::new).collect()
}

/// Pass: which GET calls may meet an identical call of another endpoint in one GraphQL
/// operation (another GET call of the plan to the same service).
fn mark_shared_in_plan(endpoints: &mut [super::Endpoint]) {
    let mut gets: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    for c in endpoints
        .iter()
        .flat_map(|e| &e.calls)
        .filter(|c| c.method == Method::Get)
    {
        *gets.entry(c.service).or_default() += 1;
    }
    for c in endpoints.iter_mut().flat_map(|e| &mut e.calls) {
        c.shared_in_plan = c.method == Method::Get && gets.get(&c.service).is_some_and(|n| *n > 1);
    }
}

/// True when every configured algorithm has a key source of its family.
fn keys_complete(jwt: &JwtConfig) -> bool {
    let has_secret = jwt.keys.iter().any(|k| matches!(k, KeySource::Secret(_)));
    let has_public = jwt.keys.iter().any(|k| !matches!(k, KeySource::Secret(_)));
    !jwt.algorithms.is_empty()
        && jwt.algorithms.iter().all(|a| {
            if a.value.starts_with("HS") {
                has_secret
            } else {
                has_public
            }
        })
}

/// Every key present whose behaviour is not in force yet, for the start-up warning.
fn not_in_force(loaded: &Loaded) -> Vec<String> {
    loaded.gateway.not_in_force.iter().map(|s| s.value.clone()).collect()
}

/// Stands in for a service URL that failed to parse; such a configuration never compiles (the
/// reader reported the URL), so this value is never used for a request.
fn unusable_url() -> reqwest::Url {
    reqwest::Url::parse("http://invalid.invalid/").unwrap_or_else(|_| unreachable!("a constant URL parses"))
}

/// `scheme://host[:port]` of a service URL (`http://h:8080/v1` → `http://h:8080`).
pub fn origin(url: &str) -> String {
    reqwest::Url::parse(url)
        .map(|u| match u.port() {
            Some(port) => format!("{}://{}:{port}", u.scheme(), u.host_str().unwrap_or_default()),
            None => format!("{}://{}", u.scheme(), u.host_str().unwrap_or_default()),
        })
        .unwrap_or_default()
}

/// The path of a service URL without its trailing slash (`http://h/v1/` → `/v1`).
pub fn base_path(url: &str) -> String {
    reqwest::Url::parse(url)
        .map(|u| u.path().trim_end_matches('/').to_string())
        .unwrap_or_default()
}

/// The folders `watch: true` watches: facade.yaml's own, the compositions', the schemas' and
/// those of other files read (PEM keys), each once.
fn watched_folders(gw: &GatewayConfig) -> Vec<std::path::PathBuf> {
    let mut out: Vec<std::path::PathBuf> = Vec::new();
    let others = gw
        .other_files
        .iter()
        .filter_map(|f| f.parent().map(std::path::Path::to_path_buf));
    for d in [gw.dir.clone(), gw.compositions_dir.clone(), gw.schemas_dir.clone()]
        .into_iter()
        .chain(others)
    {
        if !out.contains(&d) {
            out.push(d);
        }
    }
    out
}

/// GraphQL is served at `graphql.path` whenever `graphql:` is written; without the section, at
/// the default path unless a passthrough route other than the catch-all holds that path.
fn graphql_served(gw: &GatewayConfig, routes: &RouteTable) -> bool {
    let held_by_route = routes
        .prefix_of(super::graphql::DEFAULT_PATH)
        .is_some_and(|i| !gw.routes[i].prefix.value.trim_end_matches('/').is_empty());
    gw.graphql.is_some() || !held_by_route
}

/// The paths Facade answers itself; no route may cover them (except the catch-all `/`).
pub const OPS_PATHS: [&str; 4] = ["/healthz", "/readyz", "/metrics", "/openapi.json"];

/// Compiles `routes:` (SPEC §8) and checks them against each other, the composed endpoints,
/// `graphql.path` and the operations routes.
fn compile_passthrough(
    gw: &GatewayConfig,
    service_names: &[&str],
    endpoints: &[Arc<super::Endpoint>],
    routes: &mut RouteTable,
    rules: &AccessRules<'_>,
    diags: &mut Diagnostics,
) -> Vec<super::Passthrough> {
    let file = &gw.file;
    let mut out: Vec<super::Passthrough> = Vec::new();
    let mut seen: Vec<(String, Loc)> = Vec::new();
    for r in &gw.routes {
        let service = service_names.iter().position(|s| *s == r.service.value);
        if service.is_none() {
            diags.error(
                file,
                r.service.loc,
                format!("unknown service `{}`", r.service.value),
                did_you_mean(&r.service.value, service_names.iter().copied()),
            );
        }
        let auth = rules.auth_mode(diags, file, &r.access.auth, &r.access.roles, r.loc);
        rules.check_policy(diags, file, &r.access.rate_limit);
        rules.warn_user_policy(diags, file, auth, &r.access.rate_limit, r.loc);
        // A trailing `/` is ignored: `/api/orders/` is the route `/api/orders`.
        let prefix = r.prefix.value.trim_end_matches('/').to_string();
        let label = if prefix.is_empty() {
            "/".to_string()
        } else {
            prefix.clone()
        };
        if prefix.contains(['{', '}']) || crate::config::composition::plain_path_problem(&prefix).is_some() {
            diags.error(
                file,
                r.prefix.loc,
                format!(
                    "`prefix` `{}` must be a plain path (no `?`, `#`, `{{`, `}}`, `*` or empty segment `//`)",
                    r.prefix.value
                ),
                None,
            );
        }
        if prefix.split('/').any(|s| matches!(s, "." | "..")) {
            diags.error(file, r.prefix.loc, "`prefix` must not hold `.` or `..` segments", None);
        }
        if let Some((_, other)) = seen.iter().find(|(p, _)| *p == prefix) {
            diags.error(
                file,
                r.prefix.loc,
                format!(
                    "two routes have the prefix `{label}` (the other is at line {})",
                    other.line
                ),
                None,
            );
        }
        seen.push((prefix.clone(), r.prefix.loc));
        // The catch-all `/` takes only what nothing else takes; any other prefix must not cover
        // an endpoint, GraphQL or an operations route.
        if !prefix.is_empty() {
            for ep in endpoints {
                if routes::under_prefix(&ep.path, &prefix) {
                    diags.error(
                        file,
                        r.prefix.loc,
                        format!(
                            "passthrough prefix `{}` covers the composed endpoint {} {}",
                            r.prefix.value,
                            ep.method.as_str(),
                            ep.path
                        ),
                        None,
                    );
                }
            }
            if let Some(ops) = OPS_PATHS.iter().find(|p| routes::under_prefix(p, &prefix)) {
                diags.error(
                    file,
                    r.prefix.loc,
                    format!(
                        "passthrough prefix `{}` covers the operations route {ops}",
                        r.prefix.value
                    ),
                    None,
                );
            }
            if let Some(g) = &gw.graphql {
                if routes::under_prefix(&g.path.value, &prefix) {
                    diags.error(
                        file,
                        r.prefix.loc,
                        format!(
                            "passthrough prefix `{}` covers graphql.path {}",
                            r.prefix.value, g.path.value
                        ),
                        None,
                    );
                }
            }
        }
        let target = match &r.rewrite {
            Some(rw) => {
                if !rw.starts_with('/') {
                    diags.error(file, r.loc, "`rewrite` must be a path starting with `/`", None);
                }
                super::Target::Rewrite(rw.trim_end_matches('/').to_string())
            }
            None if r.strip_prefix => super::Target::Strip,
            None => super::Target::Keep,
        };
        let Some(service) = service else { continue };
        routes.insert_prefix(&prefix, out.len());
        out.push(super::Passthrough {
            prefix,
            label,
            service,
            target,
            access: super::Access::new(auth, &r.access, rules.default_policy),
        });
    }
    out
}

/// Headers of Facade's own that a browser script may read (SPEC §3).
const EXPOSED: [&str; 8] = [
    "x-request-id",
    "x-facade-partial",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "ratelimit",
    "ratelimit-policy",
    "retry-after",
];

/// The CORS stage from a checked `cors:` section (values that do not parse were reported).
fn cors_layer(c: &CorsConfig) -> tower_http::cors::CorsLayer {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let origins = if c.allow_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            c.allow_origins
                .iter()
                .filter_map(|o| http::HeaderValue::from_str(o).ok()),
        )
    };
    let methods: Vec<http::Method> = c
        .allow_methods
        .iter()
        .filter_map(|m| http::Method::from_bytes(m.as_bytes()).ok())
        .collect();
    let headers: Vec<HeaderName> = c
        .allow_headers
        .iter()
        .filter_map(|h| HeaderName::from_bytes(h.as_bytes()).ok())
        .collect();
    let mut layer = CorsLayer::new()
        .allow_origin(origins)
        .allow_methods(methods)
        .allow_headers(headers)
        .allow_credentials(c.allow_credentials)
        .expose_headers(EXPOSED.map(HeaderName::from_static));
    if let Some(age) = c.max_age {
        layer = layer.max_age(age);
    }
    layer
}
