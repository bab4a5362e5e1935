//! From loaded configuration to a plan: services, JWT keys, access rules, passthrough checks,
//! and every composition's endpoints (compiled one by one in `endpoint.rs`).

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
            base: reqwest::Url::parse(&s.url.value).unwrap_or_else(|_| unusable_url()),
            base_path: base_path(&s.url.value),
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

/// The path of a service URL without its trailing slash (`http://h/v1/` → `/v1`).
pub fn base_path(url: &str) -> String {
    reqwest::Url::parse(url)
        .map(|u| u.path().trim_end_matches('/').to_string())
        .unwrap_or_default()
}
