//! Reads `facade.yaml` (SPEC §3) into a `GatewayConfig`, reporting every problem with its location.

use super::model::*;
use super::read::{Fields, Reader};
use super::yaml::{Node, NodeKind};
use base64::Engine;
use std::path::Path;

const TOP_KEYS: &[&str] = &[
    "listen",
    "compositions",
    "schemas",
    "services",
    "auth",
    "rate_limits",
    "routes",
    "graphql",
    "limits",
    "cors",
    "watch",
    "openapi",
];
const SERVICE_KEYS: &[&str] = &["url", "schema", "timeout", "retries", "circuit_breaker", "demo"];
const JWT_KEYS: &[&str] = &[
    "algorithms",
    "secret",
    "secret_base64",
    "public_key",
    "jwks_url",
    "issuer",
    "audience",
    "leeway",
    "roles_claim",
];
/// Every algorithm the product supports (SPEC §3).
pub const ALGORITHMS: &[&str] = &[
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// Reads an auth mode word.
pub fn auth_mode(r: &mut Reader<'_>, node: &Node) -> Option<Spanned<AuthMode>> {
    let word = r.one_of(node, "auth", &["required", "optional", "none"])?;
    let value = match word {
        "required" => AuthMode::Required,
        "optional" => AuthMode::Optional,
        _ => AuthMode::None,
    };
    Some(Spanned { value, loc: node.loc })
}

/// Reads `auth`, `roles` and `rate_limit` of an endpoint or route.
pub fn read_access(r: &mut Reader<'_>, f: &Fields<'_>) -> AccessConfig {
    AccessConfig {
        auth: f.get("auth").and_then(|n| auth_mode(r, n)),
        roles: f.get("roles").and_then(|n| r.strings(n, "roles")).unwrap_or_default(),
        rate_limit: f.get("rate_limit").and_then(|n| spanned_string(r, n, "rate_limit")),
    }
}

/// Reads a spanned string.
pub fn spanned_string(r: &mut Reader<'_>, node: &Node, what: &str) -> Option<Spanned<String>> {
    r.string(node, what).map(|value| Spanned { value, loc: node.loc })
}

/// Reads `facade.yaml`'s (already expanded) root node. `dir` is the file's folder.
pub fn read_gateway(r: &mut Reader<'_>, root: &Node, dir: &Path) -> Option<GatewayConfig> {
    if let Some(loc) = composition_given(root) {
        // One error instead of one per key, each with a did-you-mean that cannot help.
        r.error(
            loc,
            "this is a composition (it has `client:` and `endpoints:`), not the gateway's configuration",
            Some(
                "pass facade.yaml to --config; the compositions are read from the folder its `compositions:` names"
                    .to_string(),
            ),
        );
        return None;
    }
    let f = r.fields(root, "facade.yaml", TOP_KEYS)?;
    let mut cfg = GatewayConfig {
        file: r.file.clone(),
        dir: dir.to_path_buf(),
        listen: "127.0.0.1:8080".into(),
        compositions_dir: dir.join("compositions"),
        schemas_dir: dir.join("schemas"),
        services: Vec::new(),
        auth: None,
        rate_limits: None,
        routes: Vec::new(),
        graphql: None,
        limits: LimitsConfig::default(),
        watch: false,
        cors: None,
        openapi: false,
        other_files: Vec::new(),
        not_in_force: Vec::new(),
    };
    if let Some(n) = f.get("listen") {
        if let Some(s) = r.string(n, "listen") {
            if !listen_address_ok(&s) {
                r.error(
                    n.loc,
                    "`listen` must be an address like `127.0.0.1:8080` or `localhost:8080`",
                    listen_hint(&s),
                );
            }
            cfg.listen = s;
        }
    }
    if let Some(n) = f.get("compositions") {
        if let Some(s) = r.string(n, "compositions") {
            cfg.compositions_dir = dir.join(s);
        }
    }
    if let Some(n) = f.get("schemas") {
        if let Some(s) = r.string(n, "schemas") {
            cfg.schemas_dir = dir.join(s);
        }
    }
    match f.get("services") {
        Some(n) => cfg.services = read_services(r, n, dir),
        None => r.error(
            f.loc,
            "`services` is required",
            Some("add a `services:` mapping naming each backend".into()),
        ),
    }
    if let Some(n) = f.get("auth") {
        cfg.auth = read_auth(r, n, dir);
        if let Some(f) = cfg
            .auth
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .and_then(|j| j.key_file.clone())
        {
            cfg.other_files.push(f);
        }
    }
    if let Some(n) = f.get("rate_limits") {
        cfg.rate_limits = read_rate_limits(r, n);
    }
    if let Some(n) = f.get("routes") {
        cfg.routes = read_routes(r, n);
    }
    if let Some(n) = f.get("graphql") {
        cfg.graphql = read_graphql(r, n);
    }
    if let Some(n) = f.get("limits") {
        if let Some(l) = r.fields(n, "limits", &["request_body", "request_headers", "upstream_body"]) {
            if let Some(v) = l.get("request_body").and_then(|n| r.size(n, "request_body")) {
                cfg.limits.request_body = v;
            }
            if let Some(v) = l.get("request_headers").and_then(|n| r.size(n, "request_headers")) {
                cfg.limits.request_headers = v;
            }
            if let Some(v) = l.get("upstream_body").and_then(|n| r.size(n, "upstream_body")) {
                cfg.limits.upstream_body = v;
            }
        }
    }
    if let Some(n) = f.get("cors") {
        cfg.cors = read_cors(r, n);
    }
    if let Some(n) = f.get("openapi") {
        cfg.openapi = r.bool(n, "openapi").unwrap_or(false);
    }
    if let Some(n) = f.get("watch") {
        cfg.watch = r.bool(n, "watch").unwrap_or(false);
    }
    Some(cfg)
}

fn read_services(r: &mut Reader<'_>, node: &Node, dir: &Path) -> Vec<ServiceConfig> {
    let mut out = Vec::new();
    let Some(entries) = r.named(node, "services") else {
        return out;
    };
    for (name, loc, body) in entries {
        let Some(f) = r.fields(body, &format!("service `{name}`"), SERVICE_KEYS) else {
            continue;
        };
        let url = match f.get("url") {
            // A bad URL is reported, but the service is kept so calls to it are still checked.
            Some(n) => match spanned_string(r, n, "url") {
                Some(u) => {
                    check_url(r, n, &u.value);
                    u
                }
                None => Spanned {
                    value: String::new(),
                    loc: n.loc,
                },
            },
            None => {
                r.error(loc, format!("service `{name}` needs a `url`"), None);
                continue;
            }
        };
        let mut svc = ServiceConfig {
            name: Spanned {
                value: name.clone(),
                loc,
            },
            url,
            schema: f.get("schema").and_then(|n| spanned_string(r, n, "schema")),
            timeout: f
                .get("timeout")
                .and_then(|n| r.positive_duration(n, "timeout"))
                .unwrap_or(std::time::Duration::from_secs(10)),
            retries: f.get("retries").and_then(|n| r.retries(n)).unwrap_or(0),
            circuit_breaker: None,
            demo: f.get("demo").and_then(|n| {
                let folder = dir.join(r.string(n, "demo")?);
                if !folder.is_dir() {
                    r.warning(
                        n.loc,
                        format!(
                            "demo folder `{}` does not exist: `serve --demo` will refuse to start",
                            folder.display()
                        ),
                    );
                }
                Some(folder)
            }),
        };
        if let Some(n) = f.get("circuit_breaker") {
            if let Some(cb) = r.fields(n, "circuit_breaker", &["failures", "within", "open_for"]) {
                let failures = cb
                    .get("failures")
                    .and_then(|n| r.at_least_one(n, "failures"))
                    .map(|f| u32::try_from(f).unwrap_or(u32::MAX));
                let within = cb.get("within").and_then(|n| r.positive_duration(n, "within"));
                let open_for = cb.get("open_for").and_then(|n| r.positive_duration(n, "open_for"));
                for key in ["failures", "within", "open_for"] {
                    if cb.get(key).is_none() {
                        r.error(cb.loc, format!("`circuit_breaker` needs `{key}`"), None);
                    }
                }
                if let (Some(failures), Some(within), Some(open_for)) = (failures, within, open_for) {
                    svc.circuit_breaker = Some(CircuitBreakerConfig {
                        failures,
                        within,
                        open_for,
                    });
                }
            }
        }
        out.push(svc);
    }
    out
}

fn check_url(r: &mut Reader<'_>, node: &Node, url: &str) {
    let parsed = reqwest::Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
    let Some(u) = parsed else {
        r.error(
            node.loc,
            format!("`url` must be an http(s) URL, found {}", super::read::shown(node)),
            (!url.contains("://")).then(|| "start it with its scheme: `http://` or `https://`".to_string()),
        );
        return;
    };
    // Parts that no request would carry: refused rather than dropped in silence. The URL is
    // not shown (it may hold a secret from the environment).
    if !u.username().is_empty() || u.password().is_some() {
        r.error(
            node.loc,
            "a service `url` cannot hold credentials (`user:password@`): they would not be sent",
            Some("send them from the calls that need them: `headers: { authorization: … }`".into()),
        );
    }
    if u.query().is_some() {
        r.error(
            node.loc,
            "a service `url` cannot hold a query string (`?…`): it would not be sent",
            Some("give query parameters to the calls that need them: `query: { api_key: … }`".into()),
        );
    }
    if u.fragment().is_some() {
        r.error(node.loc, "a service `url` cannot hold a fragment (`#…`)", None);
    }
}

fn read_auth(r: &mut Reader<'_>, node: &Node, dir: &Path) -> Option<AuthConfig> {
    let f = r.fields(node, "auth", &["jwt", "forward_claims"])?;
    let mut auth = AuthConfig {
        loc: node.loc,
        jwt: None,
        forward_claims: Vec::new(),
    };
    if let Some(n) = f.get("jwt") {
        auth.jwt = read_jwt(r, n, dir);
    } else {
        r.error(f.loc, "`auth` needs a `jwt` section", None);
    }
    if let Some(n) = f.get("forward_claims") {
        for (header, loc, claim) in r.named(n, "forward_claims").unwrap_or_default() {
            if reqwest::header::HeaderName::from_bytes(header.as_bytes()).is_err() {
                r.error(loc, format!("`{header}` is not a valid header name"), None);
                continue;
            }
            if let Some(claim) = r.string(claim, "forward_claims") {
                auth.forward_claims.push((header.to_ascii_lowercase(), claim));
            }
        }
    }
    Some(auth)
}

fn read_jwt(r: &mut Reader<'_>, node: &Node, dir: &Path) -> Option<JwtConfig> {
    let f = r.fields(node, "auth.jwt", JWT_KEYS)?;
    let mut jwt = JwtConfig {
        loc: node.loc,
        algorithms: Vec::new(),
        keys: Vec::new(),
        secret_is_default: false,
        issuer: f.get("issuer").and_then(|n| r.string(n, "issuer")),
        audience: f.get("audience").and_then(|n| r.strings(n, "audience")),
        leeway: f
            .get("leeway")
            .and_then(|n| r.duration(n, "leeway"))
            .unwrap_or(std::time::Duration::from_secs(30)),
        roles_claim: f
            .get("roles_claim")
            .and_then(|n| r.string(n, "roles_claim"))
            .unwrap_or_else(|| "role".into()),
        key_file: None,
    };
    match f.get("algorithms") {
        Some(n) => {
            let items: Vec<&Node> = match &n.kind {
                NodeKind::Seq(items) => items.iter().collect(),
                _ => vec![n],
            };
            for item in items {
                if let Some(alg) = r.string(item, "algorithms") {
                    if !ALGORITHMS.contains(&alg.as_str()) {
                        let hint = if alg.eq_ignore_ascii_case("none") {
                            Some("unsigned tokens are never accepted".to_string())
                        } else {
                            super::diag::did_you_mean(&alg, ALGORITHMS.iter().copied())
                                .or_else(|| Some(format!("supported: {}", ALGORITHMS.join(", "))))
                        };
                        r.error(item.loc, format!("unsupported JWT algorithm `{alg}`"), hint);
                    } else {
                        jwt.algorithms.push(Spanned {
                            value: alg,
                            loc: item.loc,
                        });
                    }
                }
            }
            if jwt.algorithms.is_empty() && !r.diags.has_errors() {
                r.error(n.loc, "`algorithms` must name at least one algorithm", None);
            }
        }
        None => r.error(
            f.loc,
            "`auth.jwt` needs `algorithms`",
            Some("for example `algorithms: [HS256]`".into()),
        ),
    }
    let has_hs = jwt.algorithms.iter().any(|a| a.value.starts_with("HS"));
    let has_public = jwt.algorithms.iter().any(|a| !a.value.starts_with("HS"));
    if let Some(n) = f.get("secret") {
        if let Some(s) = r.string(n, "secret") {
            if s.is_empty() {
                r.error(n.loc, "`secret` is empty", None);
            }
            if matches!(&n.kind, NodeKind::Scalar { env, .. } if env.is_default()) {
                jwt.secret_is_default = true;
            }
            jwt.keys.push(KeySource::Secret(s.into_bytes()));
        }
    }
    if let Some(n) = f.get("secret_base64") {
        if f.get("secret").is_some() {
            r.error(n.loc, "give either `secret` or `secret_base64`, not both", None);
        } else if let Some(s) = r.string(n, "secret_base64") {
            match base64::engine::general_purpose::STANDARD.decode(s.trim()) {
                Ok(bytes) if !bytes.is_empty() => {
                    if matches!(&n.kind, NodeKind::Scalar { env, .. } if env.is_default()) {
                        jwt.secret_is_default = true;
                    }
                    jwt.keys.push(KeySource::Secret(bytes));
                }
                _ => r.error(n.loc, "`secret_base64` is not valid base64", None),
            }
        }
    }
    if let Some(n) = f.get("public_key") {
        if let Some(p) = r.string(n, "public_key") {
            jwt.key_file = Some(dir.join(&p));
            match std::fs::read(dir.join(&p)) {
                Ok(pem) => jwt.keys.push(KeySource::PublicKeyPem(pem)),
                Err(e) => r.error(n.loc, format!("cannot read public key `{p}`: {e}"), None),
            }
        }
    }
    if let Some(n) = f.get("jwks_url") {
        if let Some(u) = r.string(n, "jwks_url") {
            check_url(r, n, &u);
            jwt.keys.push(KeySource::Jwks(u));
        }
    }
    let has_secret = jwt.keys.iter().any(|k| matches!(k, KeySource::Secret(_)));
    let has_key = jwt.keys.iter().any(|k| !matches!(k, KeySource::Secret(_)));
    if has_hs && !has_secret {
        r.error(f.loc, "HS* algorithms need `secret` or `secret_base64`", None);
    }
    if has_public && !has_key {
        r.error(
            f.loc,
            "RS*/PS*/ES*/EdDSA algorithms need `public_key` or `jwks_url`",
            None,
        );
    }
    Some(jwt)
}

fn read_rate_limits(r: &mut Reader<'_>, node: &Node) -> Option<RateLimitsConfig> {
    let f = r.fields(
        node,
        "rate_limits",
        &["store", "on_store_error", "trusted_proxies", "default", "policies"],
    )?;
    let mut rl = RateLimitsConfig {
        loc: f.get("store").map(|n| n.loc).unwrap_or(f.loc),
        store: "memory".into(),
        cluster: None,
        deny_on_store_error: false,
        trusted_proxies: Vec::new(),
        default: f.get("default").and_then(|n| spanned_string(r, n, "default")),
        policies: Vec::new(),
    };
    if let Some(n) = f.get("store").filter(|n| n.as_map().is_some()) {
        // `store: { cluster: [redis://h1:7000, …] }`: seed nodes of a Redis Cluster.
        if let Some(c) = r.fields(n, "store", &["cluster"]) {
            match c.get("cluster") {
                Some(list) => {
                    let nodes = r.strings(list, "cluster").unwrap_or_default();
                    for (i, url) in nodes.iter().enumerate() {
                        if !url.starts_with("redis://") && !url.starts_with("rediss://") {
                            r.error(
                                item_loc(list, i),
                                format!("`{url}` is not a `redis://` or `rediss://` URL"),
                                None,
                            );
                        }
                    }
                    if nodes.is_empty() {
                        r.error(list.loc, "`cluster` needs at least one seed node", None);
                    }
                    rl.cluster = Some(nodes);
                }
                None => r.error(
                    n.loc,
                    "`store` as a mapping needs `cluster: [redis://host:port, …]`",
                    None,
                ),
            }
        }
    } else if let Some(n) = f.get("store") {
        if let Some(s) = r.string(n, "store") {
            if s != "memory" && !s.starts_with("redis://") && !s.starts_with("rediss://") {
                r.error(
                    n.loc,
                    "`store` must be `memory` or a `redis://` / `rediss://` URL",
                    None,
                );
            }
            rl.store = s;
        }
    }
    if let Some(n) = f.get("on_store_error") {
        rl.deny_on_store_error = r.one_of(n, "on_store_error", &["allow", "deny"]) == Some("deny");
    }
    if let Some(n) = f.get("trusted_proxies") {
        for (i, cidr) in r
            .strings(n, "trusted_proxies")
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let loc = item_loc(n, i);
            if cidr.parse::<ipnet::IpNet>().is_err() && cidr.parse::<std::net::IpAddr>().is_err() {
                r.error(loc, format!("`{cidr}` is not an IP address or CIDR range"), None);
            }
            rl.trusted_proxies.push(cidr);
        }
    }
    if let Some(n) = f.get("policies") {
        for (name, loc, body) in r.named(n, "policies").unwrap_or_default() {
            let Some(p) = r.fields(body, &format!("policy `{name}`"), &["requests", "per", "key"]) else {
                continue;
            };
            let requests = p.get("requests").and_then(|n| r.u64(n, "requests"));
            let per = p.get("per").and_then(|n| r.duration(n, "per"));
            let key = p
                .get("key")
                .and_then(|n| r.string(n, "key"))
                .unwrap_or_else(|| "user_or_ip".into());
            if let Some(n) = p.get("key") {
                let valid = matches!(key.as_str(), "user" | "ip" | "user_or_ip")
                    || key
                        .strip_prefix("header:")
                        .is_some_and(|h| reqwest::header::HeaderName::from_bytes(h.as_bytes()).is_ok());
                if !valid {
                    let hint = super::diag::did_you_mean(&key, ["user", "ip", "user_or_ip"]);
                    r.error(n.loc, "`key` must be user, ip, user_or_ip or header:NAME", hint);
                }
            }
            for k in ["requests", "per"] {
                if p.get(k).is_none() {
                    r.error(loc, format!("policy `{name}` needs `{k}`"), None);
                }
            }
            if requests == Some(0) {
                r.error(loc, format!("policy `{name}`: `requests` must be at least 1"), None);
            }
            if per == Some(std::time::Duration::ZERO) {
                r.error(loc, format!("policy `{name}`: `per` must be longer than zero"), None);
            }
            // A policy whose numbers were refused (reported above) still exists by name, so that
            // routes naming it do not get a second, misleading "not defined" error.
            rl.policies.push(PolicyConfig {
                name: Spanned { value: name, loc },
                requests: requests.unwrap_or(1).max(1),
                per: per
                    .filter(|p| !p.is_zero())
                    .unwrap_or(std::time::Duration::from_secs(1)),
                key,
            });
        }
    }
    if let Some(d) = &rl.default {
        if !rl.policies.iter().any(|p| p.name.value == d.value) {
            let hint = super::diag::did_you_mean(&d.value, rl.policies.iter().map(|p| p.name.value.as_str()));
            r.error(d.loc, format!("default policy `{}` is not defined", d.value), hint);
        }
    }
    Some(rl)
}

fn read_routes(r: &mut Reader<'_>, node: &Node) -> Vec<RouteConfig> {
    let mut out = Vec::new();
    let NodeKind::Seq(items) = &node.kind else {
        r.error(node.loc, "`routes` must be a list", None);
        return out;
    };
    for item in items {
        let Some(f) = r.fields(
            item,
            "a route",
            &[
                "prefix",
                "service",
                "strip_prefix",
                "rewrite",
                "auth",
                "roles",
                "rate_limit",
            ],
        ) else {
            continue;
        };
        let prefix = f.get("prefix").and_then(|n| spanned_string(r, n, "prefix"));
        let service = f.get("service").and_then(|n| spanned_string(r, n, "service"));
        if f.get("prefix").is_none() {
            r.error(item.loc, "a route needs a `prefix`", None);
        }
        if f.get("service").is_none() {
            r.error(item.loc, "a route needs a `service`", None);
        }
        if let Some(p) = &prefix {
            if !p.value.starts_with('/') {
                r.error(p.loc, "`prefix` must start with `/`", None);
            }
        }
        let strip_prefix = f
            .get("strip_prefix")
            .and_then(|n| r.bool(n, "strip_prefix"))
            .unwrap_or(false);
        let rewrite = f.get("rewrite").and_then(|n| r.string(n, "rewrite"));
        if strip_prefix && rewrite.is_some() {
            r.error(item.loc, "give either `strip_prefix` or `rewrite`, not both", None);
        }
        let (Some(prefix), Some(service)) = (prefix, service) else {
            continue;
        };
        out.push(RouteConfig {
            loc: item.loc,
            prefix,
            service,
            strip_prefix,
            rewrite,
            access: read_access(r, &f),
        });
    }
    out
}

fn read_graphql(r: &mut Reader<'_>, node: &Node) -> Option<GraphqlConfig> {
    let f = r.fields(
        node,
        "graphql",
        &[
            "path",
            "playground",
            "introspection",
            "max_depth",
            "max_complexity",
            "auth",
            "rate_limit",
        ],
    )?;
    let path = f
        .get("path")
        .and_then(|n| spanned_string(r, n, "path"))
        .unwrap_or(Spanned {
            value: "/graphql".into(),
            loc: f.loc,
        });
    let mut path = path;
    if !path.value.starts_with('/') {
        r.error(path.loc, "`path` must start with `/`", None);
    } else if path.value.contains(['{', '}'])
        || super::composition::plain_path_problem(&path.value).is_some()
        || path.value == "/"
    {
        r.error(
            path.loc,
            "`path` must be a plain path below `/` (no `?`, `#`, `{`, `}`, `*` or empty segment `//`)",
            None,
        );
    }
    // `/graphql/` is `/graphql`, as for passthrough prefixes.
    if path.value.len() > 1 {
        path.value = path.value.trim_end_matches('/').to_string();
    }
    let playground = f
        .get("playground")
        .and_then(|n| r.bool(n, "playground"))
        .unwrap_or(false);
    let introspection = f
        .get("introspection")
        .and_then(|n| r.bool(n, "introspection"))
        .unwrap_or(true);
    if let (true, false, Some(n)) = (playground, introspection, f.get("introspection")) {
        r.warning(
            n.loc,
            "`playground: true` with `introspection: false`: GraphiQL loads the schema by introspection, so its docs, completion and checks will be empty",
        );
    }
    Some(GraphqlConfig {
        path,
        playground,
        introspection,
        max_depth: f
            .get("max_depth")
            .and_then(|n| r.at_least_one(n, "max_depth"))
            .unwrap_or(12),
        max_complexity: f
            .get("max_complexity")
            .and_then(|n| r.at_least_one(n, "max_complexity"))
            .unwrap_or(1000),
        auth: f.get("auth").and_then(|n| auth_mode(r, n)),
        rate_limit: f.get("rate_limit").and_then(|n| spanned_string(r, n, "rate_limit")),
    })
}

fn read_cors(r: &mut Reader<'_>, node: &Node) -> Option<CorsConfig> {
    let f = r.fields(
        node,
        "cors",
        &[
            "allow_origins",
            "allow_methods",
            "allow_headers",
            "allow_credentials",
            "max_age",
        ],
    )?;
    let mut cors = CorsConfig {
        allow_origins: Vec::new(),
        allow_methods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
            .map(String::from)
            .to_vec(),
        allow_headers: ["authorization", "content-type"].map(String::from).to_vec(),
        allow_credentials: false,
        max_age: Some(std::time::Duration::from_secs(600)),
    };
    match f.get("allow_origins") {
        Some(n) => {
            for (i, origin) in r
                .strings(n, "allow_origins")
                .unwrap_or_default()
                .into_iter()
                .enumerate()
            {
                let loc = item_loc(n, i);
                let valid = origin == "*"
                    || (reqwest::Url::parse(&origin).is_ok_and(|u| {
                        matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.path() == "/"
                    }) && !origin.ends_with('/'));
                if !valid {
                    r.error(
                        loc,
                        format!("`{origin}` is not an origin"),
                        Some("an origin is a scheme and host with an optional port and no path: `https://shop.example.com`, or `*`".into()),
                    );
                }
                cors.allow_origins.push(origin);
            }
            if cors.allow_origins.is_empty() {
                r.error(n.loc, "`allow_origins` must name at least one origin", None);
            }
        }
        None => r.error(
            f.loc,
            "`cors` needs `allow_origins`",
            Some("for example `allow_origins: [https://shop.example.com]`".into()),
        ),
    }
    if let Some(n) = f.get("allow_methods") {
        let methods = r.strings(n, "allow_methods").unwrap_or_default();
        for (i, m) in methods.iter().enumerate() {
            if http::Method::from_bytes(m.as_bytes()).is_err() || m.contains(char::is_lowercase) {
                r.error(
                    item_loc(n, i),
                    format!("`{m}` is not an HTTP method (write it upper-case: GET)"),
                    None,
                );
            }
        }
        cors.allow_methods = methods;
    }
    if let Some(n) = f.get("allow_headers") {
        let headers = r.strings(n, "allow_headers").unwrap_or_default();
        for (i, h) in headers.iter().enumerate() {
            if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                r.error(item_loc(n, i), format!("`{h}` is not a valid header name"), None);
            }
        }
        cors.allow_headers = headers;
    }
    if let Some(n) = f.get("allow_credentials") {
        cors.allow_credentials = r.bool(n, "allow_credentials").unwrap_or(false);
        if cors.allow_credentials && cors.allow_origins.iter().any(|o| o == "*") {
            r.error(
                n.loc,
                "`allow_credentials: true` cannot go with `allow_origins: [\"*\"]`",
                Some("browsers refuse credentials for any origin: list the origins".into()),
            );
        }
    }
    if let Some(n) = f.get("max_age") {
        cors.max_age = r.duration(n, "max_age");
    }
    Some(cors)
}

/// The location of item `i` of a sequence node (the node itself for a single scalar).
fn item_loc(node: &Node, i: usize) -> super::diag::Loc {
    match &node.kind {
        NodeKind::Seq(items) => items.get(i).map(|x| x.loc).unwrap_or(node.loc),
        _ => node.loc,
    }
}

/// Where a composition's `client:` (or `endpoints:`) key stands, when `root` is a composition
/// given where `facade.yaml` was expected (it has one of them and no `services:`).
fn composition_given(root: &Node) -> Option<super::diag::Loc> {
    let NodeKind::Map(entries) = &root.kind else {
        return None;
    };
    fn key(k: &Node) -> Option<&str> {
        match &k.kind {
            NodeKind::Scalar { text, .. } => Some(text.as_str()),
            _ => None,
        }
    }
    if entries.iter().any(|(k, _)| key(k) == Some("services")) {
        return None;
    }
    entries
        .iter()
        .find(|(k, _)| matches!(key(k), Some("client" | "endpoints")))
        .map(|(k, _)| k.loc)
}

/// An IP address and port, or a host name and port (`localhost:8080`, resolved when `serve`
/// binds, as `--listen` is).
fn listen_address_ok(addr: &str) -> bool {
    if addr.parse::<std::net::SocketAddr>().is_ok() {
        return true;
    }
    let Some((host, port)) = addr.rsplit_once(':') else {
        return false;
    };
    port.parse::<u16>().is_ok()
        && !host.is_empty()
        && host.len() <= 253
        && host
            .split('.')
            .all(|label| !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

/// What to write instead of a listen address given as a bare port (`8080`), with no host
/// (`:8080`, as Go servers take it) or as a URL (`http://127.0.0.1:8080`).
pub fn listen_hint(addr: &str) -> Option<String> {
    if let Some((scheme, rest)) = addr.split_once("://") {
        let rest = rest.trim_end_matches('/');
        return Some(format!(
            "a listen address is `host:port`, without `{scheme}://`: `{rest}`"
        ));
    }
    let port = addr.strip_prefix(':').unwrap_or(addr);
    (!port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())).then(|| {
        format!(
            "give the host too: `0.0.0.0:{port}` listens on every interface, `127.0.0.1:{port}` on this machine only"
        )
    })
}
