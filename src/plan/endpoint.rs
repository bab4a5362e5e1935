//! Compiles one endpoint: its calls (paths, parameters, expressions, dependencies, cycles), its
//! response, the shapes of the answers it reads, and the checks against OpenAPI types.

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
        let service = match services.iter().position(|s| *s.name == *c.service.value) {
            Some(i) => i,
            None => {
                diags.error(
                    file,
                    c.service.loc,
                    format!("unknown service `{}`", c.service.value),
                    did_you_mean(&c.service.value, services.iter().map(|s| &*s.name)),
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
    let ok = diags.errors().count() == errors_before;
    ok.then(|| Endpoint {
        client: comp.client.value.clone(),
        name: ep.name.value.clone(),
        method: ep.method,
        path: full,
        access: Access::new(auth, &ep.access, default_policy),
        params: ep
            .params
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
            .collect(),
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
