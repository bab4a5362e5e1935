//! The compiled plan: everything request handling needs, checked and parsed once.
//!
//! `compile(models) -> Result<Plan, Diagnostics>`: routes, call graphs, parsed expressions, types
//! from OpenAPI documents, JWT keys. Pure: no network; request handling reads only the plan.

pub mod args;
pub mod expr;
pub mod routes;
pub mod shape;
pub mod types;

use crate::config::diag::{did_you_mean, Diagnostics, Loc};
use crate::config::model::*;
use crate::config::Loaded;
use crate::jwt::Verifier;
use expr::{parse_node, Expr, Part, RootRef, Scope, Step};
use http::HeaderName;
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
    /// Method + path → endpoint.
    pub routes: RouteTable,
    /// JWT verification and claim forwarding, when `auth` is configured.
    pub auth: Option<AuthPlan>,
    /// Body size limits.
    pub limits: LimitsConfig,
    /// Configuration keys that are accepted but not in force yet (logged at start).
    pub not_in_force: Vec<String>,
    /// True when the JWT secret is the written default (the demo secret).
    pub demo_secret: bool,
    /// Services with a `demo:` fixture folder: (service index, folder).
    pub demo: Vec<(usize, PathBuf)>,
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
    /// Its name.
    pub name: String,
    /// Base URL without a trailing slash.
    pub base_url: String,
    /// The same, parsed once: each call's URL is this with its path and query set, so the host
    /// is never parsed again on the request path.
    pub base: reqwest::Url,
    /// Default per-attempt timeout.
    pub timeout: Duration,
    /// Extra tries for idempotent calls.
    pub retries: u32,
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
    /// Effective auth mode.
    pub auth: AuthMode,
    /// Roles of which the token must hold one (empty: any).
    pub roles: Vec<String>,
    /// The rate-limit policy named for it (or the default), for `facade routes`.
    pub rate_limit: Option<String>,
    /// Declared parameters.
    pub params: Vec<ParamConfig>,
    /// The calls, in written order; `deps` index into this.
    pub calls: Vec<Call>,
    /// The response projection.
    pub response: Expr,
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

const RESERVED: [&str; 2] = ["auth", "args"];

/// Compiles loaded configuration into a plan, or every problem found.
pub fn compile(loaded: &Loaded) -> (Option<Plan>, Diagnostics) {
    let mut diags = Diagnostics::default();
    let gw = &loaded.gateway;
    let file = gw.file.clone();

    let services: Vec<Service> = gw
        .services
        .iter()
        .map(|s| Service {
            name: s.name.value.clone(),
            base_url: s.url.value.trim_end_matches('/').to_string(),
            base: reqwest::Url::parse(&s.url.value).unwrap_or_else(|_| unusable_url()),
            timeout: s.timeout,
            retries: s.retries,
        })
        .collect();
    let service_names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();

    let mut auth = None;
    if let Some(a) = &gw.auth {
        let mut forward = Vec::new();
        for (h, claim) in &a.forward_claims {
            match HeaderName::from_bytes(h.as_bytes()) {
                Ok(name) => forward.push((name, claim.split('.').map(str::to_string).collect())),
                Err(_) => diags.error(&file, a.loc, format!("`{h}` is not a valid header name"), None),
            }
        }
        // Keys that are missing were already reported by the reader.
        if let Some(jwt) = a.jwt.as_ref().filter(|j| keys_complete(j)) {
            match Verifier::build(jwt) {
                Ok(verifier) => {
                    auth = Some(AuthPlan {
                        verifier,
                        forward_claims: forward,
                    })
                }
                Err(e) => diags.error(&file, jwt.loc, e, None),
            }
        }
    }
    let auth_configured = gw.auth.is_some();
    let policies: Vec<&str> = gw
        .rate_limits
        .as_ref()
        .map(|r| r.policies.iter().map(|p| p.name.value.as_str()).collect())
        .unwrap_or_default();

    let default_policy = gw
        .rate_limits
        .as_ref()
        .and_then(|r| r.default.as_ref())
        .map(|d| d.value.as_str());
    let check_policy = |diags: &mut Diagnostics, file: &Arc<str>, rl: &Option<Spanned<String>>| {
        if let Some(p) = rl {
            if p.value != "none" && !policies.contains(&p.value.as_str()) {
                diags.error(
                    file,
                    p.loc,
                    format!("rate limit policy `{}` is not defined in facade.yaml", p.value),
                    did_you_mean(&p.value, policies.iter().copied()),
                );
            }
        }
    };
    let check_auth = |diags: &mut Diagnostics,
                      file: &Arc<str>,
                      mode: &Option<Spanned<AuthMode>>,
                      roles: &[String],
                      loc: Loc|
     -> AuthMode {
        match mode {
            Some(m) if m.value != AuthMode::None && !auth_configured => {
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
            None if !roles.is_empty() && !auth_configured => {
                diags.error(file, loc, "`roles` needs an `auth` section in facade.yaml", None);
                AuthMode::None
            }
            None if auth_configured => AuthMode::Required,
            None => AuthMode::None,
        }
    };

    for r in &gw.routes {
        if !service_names.contains(&r.service.value.as_str()) {
            diags.error(
                &file,
                r.service.loc,
                format!("unknown service `{}`", r.service.value),
                did_you_mean(&r.service.value, service_names.iter().copied()),
            );
        }
        check_auth(&mut diags, &file, &r.access.auth, &r.access.roles, r.loc);
        check_policy(&mut diags, &file, &r.access.rate_limit);
    }
    if let Some(g) = &gw.graphql {
        check_auth(&mut diags, &file, &g.auth, &[], g.path.loc);
        check_policy(&mut diags, &file, &g.rate_limit);
    }

    let mut routes = RouteTable::default();
    let mut endpoints = Vec::new();
    let mut clients: Vec<(&str, &Arc<str>, Loc)> = Vec::new();
    for comp in &loaded.compositions {
        let cfile = &comp.file;
        if let Some((_, other, _)) = clients
            .iter()
            .find(|(c, _, _)| !c.is_empty() && *c == comp.client.value)
        {
            diags.error(
                cfile,
                comp.client.loc,
                format!("client `{}` is also defined in {other}", comp.client.value),
                None,
            );
        }
        clients.push((&comp.client.value, cfile, comp.client.loc));
        for ep in &comp.endpoints {
            check_policy(&mut diags, cfile, &ep.access.rate_limit);
            let auth_mode = check_auth(&mut diags, cfile, &ep.access.auth, &ep.access.roles, ep.name.loc);
            let types = types::TypeEnv::new(loaded, &services);
            if let Some(endpoint) = compile_endpoint(comp, ep, auth_mode, &services, &types, default_policy, &mut diags)
            {
                let index = endpoints.len();
                if let Err(e) = routes.insert(endpoint.method, &endpoint.path, index) {
                    diags.error(cfile, ep.path.loc, e, None);
                }
                endpoints.push(Arc::new(endpoint));
            }
        }
    }
    for r in &gw.routes {
        for ep in &endpoints {
            if routes::under_prefix(&ep.path, &r.prefix.value) {
                diags.error(
                    &file,
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
        if ["/healthz", "/readyz", "/metrics"]
            .iter()
            .any(|p| routes::under_prefix(p, &r.prefix.value))
        {
            diags.error(
                &file,
                r.prefix.loc,
                format!("passthrough prefix `{}` covers an operations route", r.prefix.value),
                None,
            );
        }
    }

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
        auth,
        limits: gw.limits.clone(),
        not_in_force: not_in_force(loaded),
        demo_secret: gw
            .auth
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .is_some_and(|j| j.secret_is_default),
        demo,
    };
    (Some(plan), diags)
}

fn compile_endpoint(
    comp: &CompositionConfig,
    ep: &EndpointConfig,
    auth: AuthMode,
    services: &[Service],
    types: &types::TypeEnv<'_>,
    default_policy: Option<&str>,
    diags: &mut Diagnostics,
) -> Option<Endpoint> {
    let file = &comp.file;
    let errors_before = diags.errors().count();
    let call_names: Vec<&str> = ep.calls.iter().map(|c| c.name.value.as_str()).collect();
    let param_names: Vec<&str> = ep.params.iter().map(|p| p.name.value.as_str()).collect();
    let roots_ok = |diags: &mut Diagnostics, e: &Expr, loc: Loc, own: Option<&str>| -> Vec<usize> {
        let mut deps = Vec::new();
        let mut refs: Vec<(RootRef, Loc)> = Vec::new();
        e.visit_paths(&mut |p| {
            let at = if p.loc.line == 0 { loc } else { p.loc };
            for r in p.roots() {
                if !refs.iter().any(|(x, _)| *x == r) {
                    refs.push((r, at));
                }
            }
        });
        for (r, loc) in refs {
            match r {
                RootRef::All => {
                    if own.is_some() {
                        diags.error(
                            file,
                            loc,
                            "a call cannot read the whole document (`$..` or `$[*]`)",
                            Some("name the call you read: `$.user.id`".into()),
                        );
                    }
                }
                RootRef::Name(n) if RESERVED.contains(&n.as_str()) => {}
                RootRef::Name(n) => match call_names.iter().position(|c| *c == n) {
                    Some(i) => {
                        if Some(n.as_str()) == own {
                            diags.error(file, loc, format!("call `{n}` reads its own result"), None);
                        } else if !deps.contains(&i) {
                            deps.push(i);
                        }
                    }
                    None => {
                        let candidates = call_names.iter().copied().chain(RESERVED);
                        diags.error(
                            file,
                            loc,
                            format!("`$.{n}` refers to no call of endpoint `{}`", ep.name.value),
                            did_you_mean(&n, candidates)
                                .or_else(|| Some(format!("its calls are: {}", call_names.join(", ")))),
                        );
                    }
                },
            }
        }
        // `$.args.x` must name a declared parameter.
        e.visit_paths(&mut |p| {
            if p.relative {
                return;
            }
            if let Some(steps) = &p.steps {
                if let [Step::Name(root), Step::Name(arg), ..] = steps.as_slice() {
                    if root == "args" && !param_names.contains(&arg.as_str()) {
                        diags.error(
                            file,
                            loc,
                            format!("`{}`: endpoint `{}` has no parameter `{arg}`", p.text, ep.name.value),
                            did_you_mean(arg, param_names.iter().copied()),
                        );
                    }
                }
            }
        });
        deps
    };

    let mut calls = Vec::new();
    for c in &ep.calls {
        if RESERVED.contains(&c.name.value.as_str()) {
            diags.error(
                file,
                c.name.loc,
                format!("`{}` is reserved and cannot name a call", c.name.value),
                None,
            );
        }
        let service = match services.iter().position(|s| s.name == c.service.value) {
            Some(i) => i,
            None => {
                diags.error(
                    file,
                    c.service.loc,
                    format!("unknown service `{}`", c.service.value),
                    did_you_mean(&c.service.value, services.iter().map(|s| s.name.as_str())),
                );
                // Keep checking the rest of the call; the endpoint is dropped because of the error.
                usize::MAX
            }
        };
        let service_defaults = services.get(service);
        let in_each = c.each.is_some();
        let scope = Scope { in_each };
        let mut errors = Vec::new();
        let mut deps: Vec<usize> = Vec::new();
        let add = |d: Vec<usize>, deps: &mut Vec<usize>| {
            for x in d {
                if !deps.contains(&x) {
                    deps.push(x);
                }
            }
        };

        // Path template.
        let mut path = Vec::new();
        match expr::parse_str(&c.path.value, scope).map(|mut e| {
            e.set_loc(c.path.loc);
            e
        }) {
            Ok(Expr::Template(parts)) => {
                for part in parts {
                    match part {
                        Part::Text(t) => path.push(PathPart::Text(t)),
                        Part::Expr(e) => {
                            let from_client = e
                                .roots()
                                .iter()
                                .all(|r| matches!(r, RootRef::Name(n) if RESERVED.contains(&n.as_str())))
                                && !reads_item(&e);
                            add(roots_ok(diags, &e, c.path.loc, Some(&c.name.value)), &mut deps);
                            path.push(PathPart::Value {
                                text: describe(&e),
                                expr: e,
                                from_client,
                            });
                        }
                    }
                }
            }
            Ok(_) => path.push(PathPart::Text(c.path.value.clone())),
            Err((m, h)) => {
                diags.error(file, c.path.loc, m, h);
            }
        }
        for p in &path {
            if let PathPart::Text(t) = p {
                if t.contains(['{', '}']) {
                    diags.error(
                        file,
                        c.path.loc,
                        format!(
                            "call path `{}` has a `{{…}}` part that is not an expression",
                            c.path.value
                        ),
                        Some(
                            "values go in as `{$.args.id}` or `{$.user.id}`; write literal braces as `{{` and `}}`"
                                .into(),
                        ),
                    );
                }
                if t.contains(['?', '#']) {
                    diags.error(
                        file,
                        c.path.loc,
                        "a call path cannot hold `?` or `#`",
                        Some("put query parameters under `query:`".into()),
                    );
                }
            }
        }

        let parse = |n: &crate::config::yaml::Node, scope: Scope, errors: &mut Vec<expr::ExprError>| {
            parse_node(n, scope, errors)
        };
        let query: Vec<(String, Expr)> = c
            .query
            .iter()
            .map(|(k, v)| (k.value.clone(), parse(v, scope, &mut errors)))
            .collect();
        let headers: Vec<(HeaderName, Expr)> = c
            .headers
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    HeaderName::from_bytes(k.value.as_bytes()).ok()?,
                    parse(v, scope, &mut errors),
                ))
            })
            .collect();
        let body = c.body.as_ref().map(|b| parse(b, scope, &mut errors));
        let when = c.when.as_ref().map(|w| parse(w, Scope { in_each: false }, &mut errors));
        let each_expr = c.each.as_ref().map(|e| parse(e, Scope { in_each: false }, &mut errors));
        for e in &errors {
            diags.error(file, e.at, e.message.clone(), e.hint.clone());
        }
        for (k, e) in &query {
            let loc = c
                .query
                .iter()
                .find(|(q, _)| &q.value == k)
                .map(|(_, n)| n.loc)
                .unwrap_or(c.name.loc);
            add(roots_ok(diags, e, loc, Some(&c.name.value)), &mut deps);
        }
        for ((_, e), (_, n)) in headers.iter().zip(c.headers.iter()) {
            add(roots_ok(diags, e, n.loc, Some(&c.name.value)), &mut deps);
        }
        if let (Some(b), Some(n)) = (&body, &c.body) {
            add(roots_ok(diags, b, n.loc, Some(&c.name.value)), &mut deps);
        }
        if let (Some(w), Some(n)) = (&when, &c.when) {
            add(roots_ok(diags, w, n.loc, Some(&c.name.value)), &mut deps);
        }
        let mut each = None;
        if let (Some(over), Some(n)) = (each_expr, &c.each) {
            add(roots_ok(diags, &over, n.loc, Some(&c.name.value)), &mut deps);
            let attach = match &c.attach {
                Some(a) => match &over {
                    Expr::Path(p) if !p.relative && p.steps.is_some() => {
                        Some((a.value.clone(), p.steps.clone().unwrap_or_default()))
                    }
                    _ => {
                        diags.error(
                            file,
                            a.loc,
                            "`attach` needs `each` to be a simple path (names, indexes and `[*]`), such as `$.product.variants[*]`",
                            None,
                        );
                        None
                    }
                },
                None => None,
            };
            each = Some(EachCall {
                over,
                concurrency: c.concurrency,
                attach,
            });
        }
        calls.push(Call {
            name: c.name.value.clone(),
            service,
            method: c.method,
            path,
            query,
            headers,
            body,
            each,
            when,
            timeout: c
                .timeout
                .or(service_defaults.map(|s| s.timeout))
                .unwrap_or(Duration::from_secs(10)),
            retries: c.retries.or(service_defaults.map(|s| s.retries)).unwrap_or(0),
            cache: c.cache.as_ref().map(|d| CachePolicy {
                ttl: d.value,
                shared: c.cache_shared,
            }),
            optional: c.optional,
            fallback: c.fallback.as_ref().map(|f| f.value.clone()),
            errors_pass: c.errors_pass.is_some(),
            dedup: false,
            shape: Arc::new(shape::Shape::All),
            deps,
        });
    }

    let same_service_gets: Vec<bool> = calls
        .iter()
        .map(|c| {
            c.method == Method::Get
                && (c.each.is_some()
                    || calls
                        .iter()
                        .filter(|o| o.method == Method::Get && o.service == c.service)
                        .count()
                        > 1)
        })
        .collect();
    for (c, d) in calls.iter_mut().zip(same_service_gets) {
        c.dedup = d;
    }

    // Cycles.
    if let Some(cycle) = find_cycle(&calls) {
        let names: Vec<&str> = cycle.iter().map(|i| calls[*i].name.as_str()).collect();
        diags.error(
            file,
            ep.calls[cycle[0]].name.loc,
            format!(
                "calls depend on each other in a cycle: {} -> {}",
                names.join(" -> "),
                names[0]
            ),
            Some("a call can only read calls that do not read it back".into()),
        );
    }

    // Response.
    let mut errors = Vec::new();
    let response = parse_node(&ep.response, Scope { in_each: false }, &mut errors);
    for e in &errors {
        diags.error(file, e.at, e.message.clone(), e.hint.clone());
    }
    roots_ok(diags, &response, ep.response.loc, None);

    let shapes = shape::shapes(&calls, &response);
    for (c, s) in calls.iter_mut().zip(shapes) {
        c.shape = Arc::new(s);
    }

    // Types from OpenAPI documents.
    types.check_endpoint(comp, ep, &calls, &response, diags);

    let full = format!("{}{}", comp.base_path.value, ep.path.value);
    let rate_limit = match &ep.access.rate_limit {
        Some(p) if p.value == "none" => None,
        Some(p) => Some(p.value.clone()),
        None => default_policy.map(str::to_string),
    };
    let ok = diags.errors().count() == errors_before;
    ok.then(|| Endpoint {
        client: comp.client.value.clone(),
        name: ep.name.value.clone(),
        method: ep.method,
        path: full,
        auth,
        roles: ep.access.roles.clone(),
        rate_limit,
        params: ep.params.clone(),
        calls,
        response,
    })
}

fn reads_item(e: &Expr) -> bool {
    let mut found = matches!(e, Expr::Item);
    e.visit_paths(&mut |p| found |= p.relative);
    found
}

fn describe(e: &Expr) -> String {
    match e {
        Expr::Path(p) => p.text.clone(),
        Expr::Item => "@".into(),
        _ => "a value".into(),
    }
}

fn find_cycle(calls: &[Call]) -> Option<Vec<usize>> {
    // 0 = unvisited, 1 = on stack, 2 = done
    fn dfs(i: usize, calls: &[Call], state: &mut [u8], stack: &mut Vec<usize>) -> Option<Vec<usize>> {
        state[i] = 1;
        stack.push(i);
        for &d in &calls[i].deps {
            if state[d] == 1 {
                let start = stack.iter().position(|x| *x == d).unwrap_or(0);
                return Some(stack[start..].to_vec());
            }
            if state[d] == 0 {
                if let Some(c) = dfs(d, calls, state, stack) {
                    return Some(c);
                }
            }
        }
        stack.pop();
        state[i] = 2;
        None
    }
    let mut state = vec![0u8; calls.len()];
    for i in 0..calls.len() {
        if state[i] == 0 {
            if let Some(c) = dfs(i, calls, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
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
    let gw = &loaded.gateway;
    let mut out: Vec<String> = gw.not_in_force.iter().map(|s| s.value.clone()).collect();
    for s in gw.services.iter().filter(|s| s.circuit_breaker.is_some()) {
        out.push(format!("services.{}.circuit_breaker", s.name.value));
    }
    for r in gw.routes.iter().filter(|r| r.access.rate_limit.is_some()) {
        out.push(format!("routes[{}].rate_limit", r.prefix.value));
    }
    for c in &loaded.compositions {
        for e in c.endpoints.iter().filter(|e| e.access.rate_limit.is_some()) {
            out.push(format!("{}: endpoint `{}` rate_limit", c.file, e.name.value));
        }
    }
    out
}

/// Stands in for a service URL that failed to parse; such a configuration never compiles (the
/// reader reported the URL), so this value is never used for a request.
fn unusable_url() -> reqwest::Url {
    reqwest::Url::parse("http://invalid.invalid/").unwrap_or_else(|_| unreachable!("a constant URL parses"))
}
