//! Compiles one endpoint, as a short driver over named passes: each call (`compile_call`: its
//! service, path template, parameters, `each`), which calls may share a request (`mark_dedup`),
//! the dependency graph (`check_cycles`), the response (`compile_response`), the shapes of the
//! answers it reads (`attach_shapes`), and the checks against OpenAPI types.

use super::compile::RESERVED;
use super::expr::{self, parse_node, Expr, Part, RootRef, Scope, Step};
use super::Access;
use super::{shape, types, CachePolicy, Call, EachCall, Endpoint, PathPart, Service};
use crate::config::diag::{did_you_mean, Diagnostics, Loc};
use crate::config::model::*;
use http::HeaderName;
use std::sync::Arc;
use std::time::Duration;

pub(super) fn compile_endpoint(
    comp: &CompositionConfig,
    ep: &EndpointConfig,
    auth: AuthMode,
    services: &[Service],
    types: &types::TypeEnv<'_>,
    default_policy: Option<&str>,
    diags: &mut Diagnostics,
) -> Option<Endpoint> {
    let errors_before = diags.errors().count();
    let cx = EndpointCx {
        file: &comp.file,
        ep,
        call_names: ep.calls.iter().map(|c| c.name.value.as_str()).collect(),
        param_names: ep.params.iter().map(|p| p.name.value.as_str()).collect(),
        auth,
        warned_auth: std::cell::Cell::new(false),
    };
    let mut calls: Vec<Call> = ep.calls.iter().map(|c| compile_call(&cx, c, services, diags)).collect();
    mark_dedup(&mut calls);
    check_cycles(&cx, &calls, diags);
    let response = compile_response(&cx, diags);
    // Only for an endpoint that compiled: a response with an error may read nothing.
    if diags.errors().count() == errors_before {
        warn_unread_calls(&cx, &calls, &response, diags);
    }
    attach_shapes(&mut calls, &response);
    let output = types.check_endpoint(comp, ep, &calls, &response, diags);
    if diags.errors().count() != errors_before {
        return None;
    }
    Some(Endpoint {
        client: comp.client.value.clone(),
        name: ep.name.value.clone(),
        method: ep.method,
        path: route_path(comp, ep),
        access: Access::new(auth, &ep.access, default_policy),
        params: compile_params(ep),
        root_needs: super::output::own_needs(&response, None, &calls),
        calls,
        response,
        output,
    })
}

/// The route an endpoint answers on: its composition's `base_path`, then its own path.
pub fn route_path(comp: &CompositionConfig, ep: &EndpointConfig) -> String {
    format!("{}{}", comp.base_path.value, ep.path.value)
}

/// What every pass of one endpoint reads.
struct EndpointCx<'a> {
    file: &'a Arc<str>,
    ep: &'a EndpointConfig,
    call_names: Vec<&'a str>,
    param_names: Vec<&'a str>,
    /// The endpoint's auth mode: with `none`, `$.auth` is always null.
    auth: AuthMode,
    /// `$.auth` under `auth: none` is warned of once per endpoint.
    warned_auth: std::cell::Cell<bool>,
}

impl EndpointCx<'_> {
    /// Checks what an expression refers to (calls, `args`, `auth`) and returns the calls it
    /// reads: the dependencies of the call `own` (or, for the response, of nothing).
    fn references(&self, diags: &mut Diagnostics, e: &Expr, loc: Loc, own: Option<&str>) -> Vec<usize> {
        let file = self.file;
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
                RootRef::Name(n) if n == "auth" && self.auth == AuthMode::None => {
                    if !self.warned_auth.replace(true) {
                        diags.warning(
                            file,
                            loc,
                            format!(
                                "endpoint `{}` reads `$.auth`, but its `auth` is `none`: no token is read there, so `$.auth` is always null (give the endpoint `auth: optional` or `required`, with an `auth` section in facade.yaml)",
                                self.ep.name.value
                            ),
                        );
                    }
                }
                RootRef::Name(n) if RESERVED.contains(&n.as_str()) => {}
                RootRef::Name(n) => match self.call_names.iter().position(|c| *c == n) {
                    Some(i) => {
                        if Some(n.as_str()) == own {
                            diags.error(file, loc, format!("call `{n}` reads its own result"), None);
                        } else if !deps.contains(&i) {
                            deps.push(i);
                        }
                    }
                    None => {
                        let candidates = self.call_names.iter().copied().chain(RESERVED);
                        diags.error(
                            file,
                            loc,
                            format!("`$.{n}` refers to no call of endpoint `{}`", self.ep.name.value),
                            did_you_mean(&n, candidates).or_else(|| {
                                Some(if self.call_names.is_empty() {
                                    "the endpoint has no `calls:`; `$.args` and `$.auth` are its parameters and token"
                                        .to_string()
                                } else {
                                    format!("its calls are: {}", self.call_names.join(", "))
                                })
                            }),
                        );
                    }
                },
            }
        }
        // `$.args.x` must name a declared parameter, inside filters too (`[?@.id == $.args.id]`).
        e.visit_paths(&mut |p| {
            let mut read = crate::plan::expr::filter_reads(&p.query).document;
            if let (false, Some(steps)) = (p.relative, &p.steps) {
                read.push(steps.clone());
            }
            for steps in &read {
                let [Step::Name(root), Step::Name(arg), ..] = steps.as_slice() else {
                    continue;
                };
                if root == "args" && !self.param_names.contains(&arg.as_str()) {
                    diags.error(
                        file,
                        if p.loc.line == 0 { loc } else { p.loc },
                        format!(
                            "`{}`: endpoint `{}` has no parameter `{arg}`",
                            p.text, self.ep.name.value
                        ),
                        did_you_mean(arg, self.param_names.iter().copied()),
                    );
                }
            }
        });
        deps
    }
}

/// Adds the calls of `more` to `deps`, once each.
fn add_deps(deps: &mut Vec<usize>, more: Vec<usize>) {
    for x in more {
        if !deps.contains(&x) {
            deps.push(x);
        }
    }
}

/// Pass: one call, with every expression parsed and its dependencies found.
fn compile_call(cx: &EndpointCx<'_>, c: &CallConfig, services: &[Service], diags: &mut Diagnostics) -> Call {
    let file = cx.file;
    if RESERVED.contains(&c.name.value.as_str()) {
        diags.error(
            file,
            c.name.loc,
            format!("`{}` is reserved and cannot name a call", c.name.value),
            None,
        );
    }
    let service = resolve_service(cx, c, services, diags);
    let service_defaults = services.get(service);
    let scope = Scope {
        in_each: c.each.is_some(),
    };
    let mut deps: Vec<usize> = Vec::new();
    let path = compile_path(cx, c, scope, &mut deps, diags);

    let mut errors = Vec::new();
    let query: Vec<(String, Expr)> = c
        .query
        .iter()
        .map(|(k, v)| (k.value.clone(), parse_node(v, scope, &mut errors)))
        .collect();
    let headers: Vec<(HeaderName, Expr)> = c
        .headers
        .iter()
        .filter_map(|(k, v)| {
            Some((
                HeaderName::from_bytes(k.value.as_bytes()).ok()?,
                parse_node(v, scope, &mut errors),
            ))
        })
        .collect();
    let body = c.body.as_ref().map(|b| parse_node(b, scope, &mut errors));
    let when = c
        .when
        .as_ref()
        .map(|w| parse_node(w, Scope { in_each: false }, &mut errors));
    let each_expr = c
        .each
        .as_ref()
        .map(|e| parse_node(e, Scope { in_each: false }, &mut errors));
    for e in &errors {
        diags.error(file, e.at, e.message.clone(), e.hint.clone());
    }
    let own = Some(c.name.value.as_str());
    for ((_, e), (_, n)) in query.iter().zip(c.query.iter()) {
        add_deps(&mut deps, cx.references(diags, e, n.loc, own));
    }
    for ((_, e), (_, n)) in headers.iter().zip(c.headers.iter()) {
        add_deps(&mut deps, cx.references(diags, e, n.loc, own));
    }
    if let (Some(b), Some(n)) = (&body, &c.body) {
        add_deps(&mut deps, cx.references(diags, b, n.loc, own));
    }
    if let (Some(w), Some(n)) = (&when, &c.when) {
        add_deps(&mut deps, cx.references(diags, w, n.loc, own));
    }
    let each = match (each_expr, &c.each) {
        (Some(over), Some(n)) => {
            add_deps(&mut deps, cx.references(diags, &over, n.loc, own));
            Some(compile_each(cx, c, over, diags))
        }
        _ => None,
    };
    Call {
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
        shared_in_plan: false,
        shape: Arc::new(shape::Shape::All),
        deps,
    }
}

/// Pass: the call's service by name. An unknown one is reported and the call is still checked
/// (the endpoint is dropped because of the error).
fn resolve_service(cx: &EndpointCx<'_>, c: &CallConfig, services: &[Service], diags: &mut Diagnostics) -> usize {
    match services.iter().position(|s| *s.name == *c.service.value) {
        Some(i) => i,
        None => {
            diags.error(
                cx.file,
                c.service.loc,
                format!("unknown service `{}`", c.service.value),
                did_you_mean(&c.service.value, services.iter().map(|s| &*s.name)),
            );
            usize::MAX
        }
    }
}

/// Pass: the path template: literal text and `{expr}` values, each a path segment of its own.
fn compile_path(
    cx: &EndpointCx<'_>,
    c: &CallConfig,
    scope: Scope,
    deps: &mut Vec<usize>,
    diags: &mut Diagnostics,
) -> Vec<PathPart> {
    let file = cx.file;
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
                        let from_client = from_client(&e);
                        add_deps(deps, cx.references(diags, &e, c.path.loc, Some(&c.name.value)));
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
                        "values go in as `{$.args.id}` or `{$.user.id}`; write literal braces as `{{` and `}}`".into(),
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
    path
}

/// Pass: `each` with its concurrency and `attach`, which needs a simple path to put answers back.
fn compile_each(cx: &EndpointCx<'_>, c: &CallConfig, over: Expr, diags: &mut Diagnostics) -> EachCall {
    // The answers go back onto the items the path selects: its steps with filters and slices as
    // `[*]` say where the candidates are (`exec` keeps the ones selected).
    let attach = match &c.attach {
        Some(a) => match &over {
            Expr::Path(p) if !p.relative => match p.walk_steps() {
                Some(steps) => Some((a.value.clone(), steps)),
                None => {
                    diags.error(
                        cx.file,
                        a.loc,
                        "`attach` needs `each` to name where its items are: names, indexes, `[*]`, slices and filters, not `..` or several names in one segment",
                        Some("such as `$.product.variants[*]` or `$.product.variants[?@.active]`".into()),
                    );
                    None
                }
            },
            _ => {
                diags.error(
                    cx.file,
                    a.loc,
                    "`attach` needs `each` to be a `$` path to the items, such as `$.product.variants[*]`",
                    None,
                );
                None
            }
        },
        None => None,
    };
    let from_client = from_client(&over);
    EachCall {
        over,
        concurrency: c.concurrency,
        max_items: c.max_items,
        from_client,
        attach,
    }
}

/// Pass: which calls go through the per-request dedup table: a GET `each` call, or a GET call
/// that shares its service with another GET (only those can be identical to another request).
fn mark_dedup(calls: &mut [Call]) {
    let marks: Vec<bool> = calls
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
    for (c, d) in calls.iter_mut().zip(marks) {
        c.dedup = d;
    }
}

/// Pass: the dependency graph has no cycle.
fn check_cycles(cx: &EndpointCx<'_>, calls: &[Call], diags: &mut Diagnostics) {
    if let Some(cycle) = find_cycle(calls) {
        let names: Vec<&str> = cycle.iter().map(|i| calls[*i].name.as_str()).collect();
        diags.error(
            cx.file,
            cx.ep.calls[cycle[0]].name.loc,
            format!(
                "calls depend on each other in a cycle: {} -> {}",
                names.join(" -> "),
                names[0]
            ),
            Some("a call can only read calls that do not read it back".into()),
        );
    }
}

/// Pass: the response projection, with its references checked.
fn compile_response(cx: &EndpointCx<'_>, diags: &mut Diagnostics) -> Expr {
    let mut errors = Vec::new();
    let response = parse_node(&cx.ep.response, Scope { in_each: false }, &mut errors);
    for e in &errors {
        diags.error(cx.file, e.at, e.message.clone(), e.hint.clone());
    }
    cx.references(diags, &response, cx.ep.response.loc, None);
    response
}

/// Pass: a GET call whose answer nothing reads (the response, another call's expressions or
/// `when`, an `attach`) is made on every REST request for nothing: a leftover, or a typo in the
/// name that reads it. Other methods are made for what they do, and are not warned of.
fn warn_unread_calls(cx: &EndpointCx<'_>, calls: &[Call], response: &Expr, diags: &mut Diagnostics) {
    let roots = response.roots();
    if roots.contains(&crate::plan::expr::RootRef::All) {
        return;
    }
    for (i, (call, cfg)) in calls.iter().zip(&cx.ep.calls).enumerate() {
        let read = roots.contains(&crate::plan::expr::RootRef::Name(call.name.clone()))
            || calls.iter().any(|c| c.deps.contains(&i))
            || call.each.as_ref().is_some_and(|e| e.attach.is_some());
        if !read && call.method == Method::Get {
            diags.warning(
                cx.file,
                cfg.name.loc,
                format!(
                    "nothing reads the answer of call `{}`: it is made on every REST request for nothing (read it as `$.{}…`, or remove it)",
                    call.name, call.name
                ),
            );
        }
    }
}

/// Pass: the parts of each call's answer that the endpoint reads (see `shape`).
fn attach_shapes(calls: &mut [Call], response: &Expr) {
    let shapes = shape::shapes(calls, response);
    for (c, s) in calls.iter_mut().zip(shapes) {
        c.shape = Arc::new(s);
    }
}

/// Pass: parameters with their defaults converted once (a default that does not convert was
/// reported by the reader).
fn compile_params(ep: &EndpointConfig) -> Vec<super::Param> {
    ep.params
        .iter()
        .map(|p| super::Param {
            name: p.name.value.clone(),
            source: p.source.clone(),
            ty: p.ty.clone(),
            default: p
                .default
                .as_ref()
                .and_then(|d| crate::config::args::convert(d, &p.ty).ok()),
        })
        .collect()
}

/// Whether `e` reads only the request's own values (`$.args`, `$.auth`): a bad value there is
/// the client's mistake (400), not a backend's.
fn from_client(e: &Expr) -> bool {
    e.roots()
        .iter()
        .all(|r| matches!(r, RootRef::Name(n) if RESERVED.contains(&n.as_str())))
        && !reads_item(e)
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
