//! Reads one `compositions/<client>.yaml` (SPEC §4) into a `CompositionConfig`.
//!
//! Checks shapes and types only; expressions, call references and routes are checked when the
//! plan is compiled.

use super::gateway::{read_access, spanned_string};
use super::model::*;
use super::read::{Fields, Reader};
use super::yaml::{Node, NodeKind};

/// The most items an `each` makes requests for, unless `max_items` says otherwise: one request
/// must not fan out without bound (a client's list of a million ids, a backend's huge array).
pub const DEFAULT_MAX_ITEMS: usize = 1000;

const ENDPOINT_KEYS: &[&str] = &[
    "get",
    "post",
    "put",
    "patch",
    "delete",
    "auth",
    "roles",
    "rate_limit",
    "query",
    "body",
    "headers",
    "calls",
    "response",
];
const CALL_KEYS: &[&str] = &[
    "service",
    "get",
    "post",
    "put",
    "patch",
    "delete",
    "query",
    "headers",
    "body",
    "each",
    "concurrency",
    "max_items",
    "attach",
    "when",
    "timeout",
    "retries",
    "cache",
    "cache_scope",
    "optional",
    "fallback",
    "errors",
];

/// Reads a composition's (already expanded) root node.
pub fn read_composition(r: &mut Reader<'_>, root: &Node) -> Option<CompositionConfig> {
    let f = r.fields(root, "a composition", &["client", "base_path", "endpoints"])?;
    // A missing client is reported, and the rest of the file is still checked.
    let client = match f.get("client").and_then(|n| spanned_string(r, n, "client")) {
        Some(c) => c,
        None => {
            if f.get("client").is_none() {
                r.error(
                    f.loc,
                    "a composition needs `client`",
                    Some("for example `client: mobile`".into()),
                );
            }
            Spanned {
                value: String::new(),
                loc: f.loc,
            }
        }
    };
    let base_path = match f.get("base_path") {
        Some(n) => {
            let p = spanned_string(r, n, "base_path")?;
            let problem = if !p.value.starts_with('/') || p.value.contains(['{', '}']) {
                Some("must start with `/` and hold no parameters")
            } else {
                plain_path_problem(&p.value)
            };
            if let Some(problem) = problem {
                r.error(p.loc, format!("`base_path` {problem}"), None);
                // Read as none, so the endpoints' routes report nothing more about it.
                Spanned {
                    value: String::new(),
                    loc: p.loc,
                }
            } else {
                Spanned {
                    value: p.value.trim_end_matches('/').to_string(),
                    loc: p.loc,
                }
            }
        }
        None => Spanned {
            value: String::new(),
            loc: f.loc,
        },
    };
    let mut endpoints = Vec::new();
    match f.get("endpoints") {
        Some(n) => {
            let named = r.named(n, "endpoints");
            if named.as_ref().is_some_and(Vec::is_empty) {
                r.warning(n.loc, "`endpoints` is empty: this client serves nothing");
            }
            for (name, loc, body) in named.unwrap_or_default() {
                if let Some(e) = read_endpoint(r, Spanned { value: name, loc }, body) {
                    endpoints.push(e);
                }
            }
        }
        None => r.error(f.loc, "a composition needs `endpoints`", None),
    }
    Some(CompositionConfig {
        file: r.file.clone(),
        client,
        base_path,
        endpoints,
    })
}

/// Finds the single method key of an endpoint or call.
fn method_of(r: &mut Reader<'_>, f: &Fields<'_>, what: &str) -> Option<(Method, Spanned<String>)> {
    let present: Vec<&str> = Method::KEYS.iter().copied().filter(|k| f.get(k).is_some()).collect();
    match present.as_slice() {
        [one] => {
            let node = f.get(one)?;
            let path = spanned_string(r, node, one)?;
            Some((Method::from_key(one)?, path))
        }
        [] => {
            r.error(
                f.loc,
                format!("{what} needs exactly one of get, post, put, patch, delete with a path"),
                None,
            );
            None
        }
        [_, second, ..] => {
            r.error(
                f.key_loc(second).unwrap_or(f.loc),
                format!("{what} has more than one method; give exactly one of get, post, put, patch, delete"),
                None,
            );
            None
        }
    }
}

/// What is wrong with a route path (beside its start and its parameters): a query or fragment,
/// a `*`, or an empty segment (`//`, which no client's URL would be normalised to). Base paths,
/// endpoint paths, passthrough prefixes and `graphql.path` are all held to it.
pub fn plain_path_problem(path: &str) -> Option<&'static str> {
    if path.contains(['?', '#']) {
        Some("cannot hold `?` or `#`: write query parameters under `query:`")
    } else if path.contains('*') {
        Some("cannot hold `*`")
    } else if path.contains("//") {
        Some("cannot hold an empty segment (`//`)")
    } else {
        None
    }
}

fn read_endpoint(r: &mut Reader<'_>, name: Spanned<String>, node: &Node) -> Option<EndpointConfig> {
    let what = format!("endpoint `{}`", name.value);
    let f = r.fields(node, &what, ENDPOINT_KEYS)?;
    let (method, path) = method_of(r, &f, &what)?;
    if !path.value.starts_with('/') {
        r.error(path.loc, "an endpoint path must start with `/`", None);
    } else if let Some(problem) = plain_path_problem(&path.value) {
        r.error(path.loc, format!("an endpoint path {problem}"), None);
    }
    let mut params = Vec::new();
    for seg in path.value.split('/') {
        if let Some(p) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            if !is_name(p) {
                r.error(path.loc, format!("path parameter `{{{p}}}` is not a valid name"), None);
                continue;
            }
            params.push(ParamConfig {
                name: Spanned {
                    value: p.to_string(),
                    loc: path.loc,
                },
                source: ParamSource::Path,
                ty: ParamType {
                    base: BaseType::Scalar(ScalarType::Id),
                    required: true,
                },
                default: None,
            });
        } else if seg.contains(['{', '}']) {
            r.error(
                path.loc,
                format!("path segment `{seg}` must be either fixed text or a whole `{{name}}`"),
                None,
            );
        }
    }
    for (key, source) in [
        ("query", ParamSource::Query),
        ("body", ParamSource::Body),
        ("headers", ParamSource::Header(String::new())),
    ] {
        if let Some(n) = f.get(key) {
            read_params(r, n, key, &source, &mut params);
        }
    }
    if method == Method::Get && f.get("body").is_some() {
        r.error(
            f.key_loc("body").unwrap_or(f.loc),
            "a GET endpoint cannot declare a `body`",
            None,
        );
    }
    for (i, p) in params.iter().enumerate() {
        if params[..i].iter().any(|q| q.name.value == p.name.value) {
            r.error(
                p.name.loc,
                format!("parameter `{}` is declared twice", p.name.value),
                None,
            );
        }
    }
    let mut calls = Vec::new();
    if let Some(n) = f.get("calls") {
        for (cname, loc, body) in r.named(n, "calls").unwrap_or_default() {
            if let Some(c) = read_call(r, Spanned { value: cname, loc }, body) {
                calls.push(c);
            }
        }
    }
    let response = match f.get("response") {
        Some(n) => n.clone(),
        None => {
            // A misspelt `respons:` was already reported with its did-you-mean hint.
            let misspelt = node.as_map().is_some_and(|m| {
                m.iter().filter_map(|(k, _)| k.as_scalar()).any(|k| {
                    !ENDPOINT_KEYS.contains(&k)
                        && crate::config::diag::closest(k, ENDPOINT_KEYS.iter().copied()) == Some("response")
                })
            });
            if !misspelt {
                r.error(f.loc, format!("{what} needs a `response`"), None);
            }
            return None;
        }
    };
    Some(EndpointConfig {
        name,
        method,
        path,
        access: read_access(r, &f),
        params,
        calls,
        response,
    })
}

/// True for names usable as parameters and fields: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn read_params(r: &mut Reader<'_>, node: &Node, section: &str, source: &ParamSource, out: &mut Vec<ParamConfig>) {
    for (name, loc, body) in r.named(node, section).unwrap_or_default() {
        if !is_name(&name) {
            r.error(
                loc,
                format!("parameter name `{name}` must match [A-Za-z_][A-Za-z0-9_]*"),
                None,
            );
            continue;
        }
        let is_header = matches!(source, ParamSource::Header(_));
        let (ty_node, default_node, header) = match &body.kind {
            NodeKind::Scalar { .. } if !is_header => (Some(body), None, None),
            NodeKind::Map(_) => {
                let allowed: &[&str] = if is_header {
                    &["header", "type", "default"]
                } else {
                    &["type", "default"]
                };
                let Some(f) = r.fields(body, &format!("parameter `{name}`"), allowed) else {
                    continue;
                };
                (f.get("type"), f.get("default"), f.get("header"))
            }
            _ => {
                let form = if is_header {
                    "{ header: Name, type: String, default: … }"
                } else {
                    "a type like `Int!`, or { type: …, default: … }"
                };
                r.error(body.loc, format!("parameter `{name}` must be {form}"), None);
                continue;
            }
        };
        let ty = match ty_node {
            Some(n) => {
                let Some(text) = r.string(n, "type") else { continue };
                match ParamType::parse(&text) {
                    Some(t) => t,
                    None => {
                        let base = text.trim_matches(|c: char| matches!(c, '[' | ']' | '!') || c.is_whitespace());
                        let near = crate::config::diag::closest(base, ScalarType::NAMES).filter(|near| *near != base);
                        let hint = match near {
                            Some(near) => format!("did you mean `{}`?", text.replacen(base, near, 1)),
                            None => "types are ID, String, Int, Float, Boolean, JSON, [T], with ! for required".into(),
                        };
                        r.error(n.loc, format!("unknown parameter type `{text}`"), Some(hint));
                        // Still declared (as JSON), so what reads `$.args.<name>` is not also
                        // reported as reading an unknown parameter.
                        ParamType {
                            base: BaseType::Scalar(ScalarType::Json),
                            required: false,
                        }
                    }
                }
            }
            None => ParamType {
                base: BaseType::Scalar(ScalarType::String),
                required: false,
            },
        };
        let source = match source {
            ParamSource::Header(_) => match header.and_then(|h| r.string(h, "header")) {
                Some(h) if reqwest::header::HeaderName::from_bytes(h.as_bytes()).is_ok() => {
                    ParamSource::Header(h.to_ascii_lowercase())
                }
                Some(h) => {
                    r.error(body.loc, format!("`{h}` is not a valid header name"), None);
                    continue;
                }
                None => {
                    r.error(
                        body.loc,
                        format!("header parameter `{name}` needs `header: <Header-Name>`"),
                        None,
                    );
                    continue;
                }
            },
            other => other.clone(),
        };
        let default = default_node.map(|n| quoted_default(n, &ty).unwrap_or_else(|| n.to_json()));
        if let (Some(d), Some(n)) = (&default, default_node) {
            if let Err(e) = super::args::convert(d, &ty) {
                r.error(n.loc, format!("the default of `{name}` {e}"), None);
            }
        }
        out.push(ParamConfig {
            name: Spanned { value: name, loc },
            source,
            ty,
            default,
        });
    }
}

fn read_call(r: &mut Reader<'_>, name: Spanned<String>, node: &Node) -> Option<CallConfig> {
    let what = format!("call `{}`", name.value);
    let f = r.fields(node, &what, CALL_KEYS)?;
    let service = match f.get("service") {
        Some(n) => spanned_string(r, n, "service")?,
        None => {
            r.error(f.loc, format!("{what} needs a `service`"), None);
            return None;
        }
    };
    let (method, path) = method_of(r, &f, &what)?;
    if !path.value.starts_with('/') {
        r.error(path.loc, "a call path must start with `/`", None);
    }
    let pairs = |r: &mut Reader<'_>, key: &str| -> Vec<(Spanned<String>, Node)> {
        f.get(key)
            .and_then(|n| r.named(n, key))
            .unwrap_or_default()
            .into_iter()
            .map(|(k, loc, v)| (Spanned { value: k, loc }, v.clone()))
            .collect()
    };
    let query = pairs(r, "query");
    let headers = pairs(r, "headers");
    for (h, _) in &headers {
        if reqwest::header::HeaderName::from_bytes(h.value.as_bytes()).is_err() {
            r.error(h.loc, format!("`{}` is not a valid header name", h.value), None);
        }
    }
    let optional = f.get("optional").and_then(|n| r.bool(n, "optional")).unwrap_or(false);
    let cache = f
        .get("cache")
        .and_then(|n| r.duration(n, "cache").map(|d| Spanned { value: d, loc: n.loc }));
    if let Some(c) = &cache {
        if !matches!(method, Method::Get) {
            r.error(
                c.loc,
                format!("`cache` works on GET calls only; {what} is {}", method.as_str()),
                None,
            );
        }
    }
    let cache_shared = match f.get("cache_scope") {
        Some(n) => r.one_of(n, "cache_scope", &["user", "shared"]) == Some("shared"),
        None => false,
    };
    let errors_pass = match f.get("errors") {
        Some(n) => {
            if r.one_of(n, "errors", &["pass", "fail"]) == Some("pass") {
                if optional {
                    r.error(n.loc, "`errors: pass` cannot be used on an optional call", None);
                }
                Some(n.loc)
            } else {
                None
            }
        }
        None => None,
    };
    let fallback = f.get("fallback").map(|n| Spanned {
        value: n.to_json(),
        loc: n.loc,
    });
    if let (Some(fb), false) = (&fallback, optional) {
        r.error(fb.loc, "`fallback` needs `optional: true`", None);
    }
    let each = f.get("each").cloned();
    let attach = f.get("attach").and_then(|n| spanned_string(r, n, "attach"));
    if let (Some(a), None) = (&attach, &each) {
        r.error(a.loc, "`attach` needs `each`", None);
    }
    let concurrency = match f.get("concurrency") {
        Some(n) => match r.u64(n, "concurrency") {
            Some(0) => {
                r.error(n.loc, "`concurrency` must be at least 1", None);
                16
            }
            Some(c) => c.min(1024) as usize,
            None => 16,
        },
        None => 16,
    };
    let max_items = match f.get("max_items") {
        Some(n) => match r.u64(n, "max_items") {
            Some(0) => {
                r.error(n.loc, "`max_items` must be at least 1", None);
                DEFAULT_MAX_ITEMS
            }
            Some(m) => usize::try_from(m).unwrap_or(usize::MAX),
            None => DEFAULT_MAX_ITEMS,
        },
        None => DEFAULT_MAX_ITEMS,
    };
    if let (Some(n), None) = (f.get("max_items"), &each) {
        r.error(n.loc, "`max_items` needs `each`", None);
    }
    Some(CallConfig {
        name,
        service,
        method,
        path,
        query,
        headers,
        body: f.get("body").cloned(),
        each,
        concurrency,
        max_items,
        attach,
        when: f.get("when").cloned(),
        timeout: f.get("timeout").and_then(|n| r.positive_duration(n, "timeout")),
        retries: f.get("retries").and_then(|n| r.retries(n)),
        cache,
        cache_shared,
        optional,
        fallback,
        errors_pass,
    })
}

/// A default written quoted for a number or boolean parameter (`default: "3"` for an `Int`, or
/// `["1", "2"]` for an `[Int]`), as a tool that quotes every scalar writes it: read as the
/// parameter's type, as a query string's text would be. Anything else is taken as written.
fn quoted_default(node: &Node, ty: &ParamType) -> Option<serde_json::Value> {
    match (&node.kind, &ty.base) {
        (
            NodeKind::Scalar { text, plain: false, .. },
            BaseType::Scalar(ScalarType::Int | ScalarType::Float | ScalarType::Boolean),
        ) => super::args::convert_text(&[text], ty).ok(),
        (NodeKind::Seq(items), BaseType::List(inner)) => Some(serde_json::Value::Array(
            items
                .iter()
                .map(|item| quoted_default(item, inner).unwrap_or_else(|| item.to_json()))
                .collect(),
        )),
        _ => None,
    }
}
