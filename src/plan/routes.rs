//! The route table: method + path → composed endpoint, passthrough route, operations route, or
//! why nothing answers (404, or 405 with the methods that would).
//!
//! Built once at compile time with `matchit` (axum's router) for endpoints and a longest-prefix
//! list for passthrough routes, so conflicts are load errors rather than start-up panics, and the
//! table swaps with the rest of the plan on reload.

use crate::config::model::Method;
use std::collections::HashMap;

/// Method + path → endpoint index.
#[derive(Debug, Default)]
pub struct RouteTable {
    by_method: HashMap<Method, matchit::Router<usize>>,
    paths: Vec<(Method, String)>,
    /// Passthrough prefixes (no trailing `/`; empty for the catch-all), longest first.
    prefixes: Vec<(String, usize)>,
    /// `graphql.path`, when GraphQL is served.
    graphql: Option<String>,
    /// `GET /openapi.json` is served.
    openapi: bool,
}

/// The operations routes Facade answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ops {
    /// `/healthz`.
    Health,
    /// `/readyz`.
    Ready,
    /// `/openapi.json`, when `openapi: true`.
    OpenApi,
    /// `/metrics`.
    Metrics,
}

/// What answers a request.
#[derive(Debug)]
pub enum Resolved {
    /// A composed endpoint.
    Endpoint(Matched),
    /// A passthrough route (its index in `Plan::passthrough`).
    Passthrough(usize),
    /// An operations route.
    Ops(Ops),
    /// `graphql.path`.
    Graphql,
    /// A known path without this method: the methods it has.
    MethodNotAllowed(Vec<&'static str>),
    /// Nothing.
    NotFound,
}

/// A matched route.
#[derive(Debug)]
pub struct Matched {
    /// Endpoint index.
    pub index: usize,
    /// Path parameters, percent-decoded.
    pub params: Vec<(String, String)>,
    /// A parameter whose percent-decoding is not UTF-8 (the request is refused with 400).
    pub undecodable: Option<String>,
}

impl RouteTable {
    /// Adds a route; two endpoints with the same method and path (or overlapping parameters) are
    /// an error.
    pub fn insert(&mut self, method: Method, path: &str, index: usize) -> Result<(), String> {
        if let Some((m, p)) = self.paths.iter().find(|(m, p)| *m == method && same_shape(p, path)) {
            return Err(format!(
                "route {} {path} is already taken by {} {p}",
                method.as_str(),
                m.as_str()
            ));
        }
        self.by_method
            .entry(method)
            .or_default()
            .insert(path, index)
            .map_err(|e| format!("route {} {path} conflicts with another endpoint: {e}", method.as_str()))?;
        self.paths.push((method, path.to_string()));
        Ok(())
    }

    /// Finds the endpoint for a request path (raw, still percent-encoded).
    pub fn find(&self, method: &http::Method, raw_path: &str) -> Option<Matched> {
        let m = to_method(method)?;
        let router = self.by_method.get(&m)?;
        let found = router.at(raw_path).ok()?;
        let mut params = Vec::new();
        let mut undecodable = None;
        for (k, v) in found.params.iter() {
            match percent_encoding::percent_decode_str(v).decode_utf8() {
                Ok(decoded) => params.push((k.to_string(), decoded.into_owned())),
                Err(_) => undecodable = Some(k.to_string()),
            }
        }
        Some(Matched {
            index: *found.value,
            params,
            undecodable,
        })
    }

    /// Serves GraphQL at `path`.
    pub fn set_graphql(&mut self, path: &str) {
        self.graphql = Some(path.to_string());
    }

    /// Serves `GET /openapi.json`.
    pub fn serve_openapi(&mut self) {
        self.openapi = true;
    }

    /// Whether any endpoint, of any method, has this path.
    pub fn has_path(&self, path: &str) -> bool {
        self.by_method.values().any(|r| r.at(path).is_ok())
    }

    /// Adds a passthrough prefix (no trailing `/`; empty for `/`). Duplicates were refused by
    /// the compiler.
    pub fn insert_prefix(&mut self, prefix: &str, index: usize) {
        self.prefixes.push((prefix.to_string(), index));
        self.prefixes.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
    }

    /// The passthrough route whose prefix is the longest that `path` falls under.
    pub fn prefix_of(&self, path: &str) -> Option<usize> {
        self.longest_prefix(path).map(|(_, i)| i)
    }

    fn longest_prefix(&self, path: &str) -> Option<(&str, usize)> {
        self.prefixes
            .iter()
            .find(|(p, _)| under_prefix(path, p))
            .map(|(p, i)| (p.as_str(), *i))
    }

    /// Resolves a request: a composed endpoint first (HEAD is answered as GET), then an
    /// operations route, then the longest passthrough prefix (the catch-all `/` last of all);
    /// a path that only an endpoint of another method has is a 405.
    pub fn resolve(&self, method: &http::Method, path: &str) -> Resolved {
        let lookup = if method == http::Method::HEAD {
            &http::Method::GET
        } else {
            method
        };
        // The operations routes are Facade's own, whole: an endpoint template that would match
        // one (`/{page}`) never takes it (an endpoint on one is a load error), nor does the
        // catch-all route.
        if let Some(ops) = ops_route(path, self.openapi) {
            if method == http::Method::GET || method == http::Method::HEAD {
                return Resolved::Ops(ops);
            }
            return Resolved::MethodNotAllowed(vec!["GET", "HEAD"]);
        }
        if let Some(found) = self.find(lookup, path) {
            return Resolved::Endpoint(found);
        }
        if let Some(g) = &self.graphql {
            if path == g
                || path
                    .strip_prefix(g.as_str())
                    .is_some_and(|rest| rest.starts_with("/assets/"))
            {
                return Resolved::Graphql;
            }
        }
        // No endpoint and no operations route lies under a prefix other than the catch-all (the
        // compiler refuses both), so such a route answers without the 405 and ops checks.
        let prefix = self.longest_prefix(path);
        if let Some((p, i)) = prefix {
            if !p.is_empty() {
                return Resolved::Passthrough(i);
            }
        }
        let endpoint_methods = self.methods_at(path);
        if !endpoint_methods.is_empty() {
            let mut allow: Vec<&'static str> = endpoint_methods.iter().map(|m| m.as_str()).collect();
            if allow.contains(&"GET") {
                allow.push("HEAD");
            }
            return Resolved::MethodNotAllowed(allow);
        }
        match prefix {
            Some((_, i)) => Resolved::Passthrough(i),
            None => Resolved::NotFound,
        }
    }

    /// Methods that have a route at this path (for 405 answers).
    pub fn methods_at(&self, raw_path: &str) -> Vec<Method> {
        let mut out: Vec<Method> = self
            .by_method
            .iter()
            .filter(|(_, r)| r.at(raw_path).is_ok())
            .map(|(m, _)| *m)
            .collect();
        out.sort_by_key(|m| m.as_str());
        out
    }
}

/// The operations route at exactly `path` (`/openapi.json` only when `openapi: true` serves it).
pub fn ops_route(path: &str, openapi: bool) -> Option<Ops> {
    match path {
        "/healthz" => Some(Ops::Health),
        "/readyz" => Some(Ops::Ready),
        "/openapi.json" if openapi => Some(Ops::OpenApi),
        "/metrics" => Some(Ops::Metrics),
        _ => None,
    }
}

fn same_shape(a: &str, b: &str) -> bool {
    let norm = |p: &str| -> Vec<String> {
        p.split('/')
            .map(|s| {
                if s.starts_with('{') {
                    "{}".to_string()
                } else {
                    s.to_string()
                }
            })
            .collect()
    };
    norm(a) == norm(b)
}

/// Converts an HTTP method to a composition method.
pub fn to_method(m: &http::Method) -> Option<Method> {
    Some(match *m {
        http::Method::GET => Method::Get,
        http::Method::POST => Method::Post,
        http::Method::PUT => Method::Put,
        http::Method::PATCH => Method::Patch,
        http::Method::DELETE => Method::Delete,
        _ => return None,
    })
}

/// Removes `.` and `..` segments (RFC 3986 §5.2.4), with `%2e` counted as a dot (SPEC §8), and
/// keeps everything else as sent, percent-encoding included. `None` when a `..` climbs above `/`.
pub fn normalize(path: &str) -> Option<std::borrow::Cow<'_, str>> {
    let has_dots = path.split('/').any(|s| dot_segment(s).is_some());
    if !has_dots {
        return Some(std::borrow::Cow::Borrowed(path));
    }
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    let mut trailing = false;
    for (i, seg) in segments.into_iter().enumerate() {
        match dot_segment(seg) {
            Some(1) => trailing = i == last,
            Some(_) => {
                out.pop()?;
                trailing = i == last;
            }
            _ => {
                out.push(seg);
                trailing = false;
            }
        }
    }
    let mut text = String::with_capacity(path.len());
    for seg in &out {
        text.push('/');
        text.push_str(seg);
    }
    if trailing || text.is_empty() {
        text.push('/');
    }
    Some(std::borrow::Cow::Owned(text))
}

/// `Some(1)` for `.`, `Some(2)` for `..` (either with dots written as `%2e`), else `None`.
fn dot_segment(seg: &str) -> Option<u8> {
    let is = |forms: &[&str]| forms.iter().any(|f| seg.eq_ignore_ascii_case(f));
    if is(&[".", "%2e"]) {
        Some(1)
    } else if is(&["..", ".%2e", "%2e.", "%2e%2e"]) {
        Some(2)
    } else {
        None
    }
}

/// True when `path` is `prefix` or below it at a segment boundary.
pub fn under_prefix(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        return true;
    }
    path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_and_lookup() {
        let mut t = RouteTable::default();
        t.insert(Method::Get, "/a/{id}", 0).unwrap();
        assert!(t.insert(Method::Get, "/a/{other}", 1).is_err());
        t.insert(Method::Post, "/a/{id}", 2).unwrap();
        let m = t.find(&http::Method::GET, "/a/x%2Fy").unwrap();
        assert_eq!((m.index, m.params[0].1.as_str()), (0, "x/y"));
        assert!(t.find(&http::Method::GET, "/b").is_none());
        assert!(under_prefix("/api/orders/7", "/api/orders"));
        assert!(!under_prefix("/api/ordersX", "/api/orders"));
        assert!(under_prefix("/anything", ""));
    }

    #[test]
    fn operations_routes_are_never_taken_by_an_endpoint_template_or_the_catch_all() {
        let mut t = RouteTable::default();
        t.insert(Method::Get, "/{page}", 0).unwrap();
        t.insert(Method::Post, "/{page}", 1).unwrap();
        t.insert_prefix("", 0);
        for (path, ops) in [
            ("/healthz", Ops::Health),
            ("/readyz", Ops::Ready),
            ("/metrics", Ops::Metrics),
        ] {
            assert!(
                matches!(t.resolve(&http::Method::GET, path), Resolved::Ops(o) if o == ops),
                "{path}"
            );
            assert!(
                matches!(t.resolve(&http::Method::HEAD, path), Resolved::Ops(_)),
                "{path}"
            );
            assert!(
                matches!(t.resolve(&http::Method::POST, path), Resolved::MethodNotAllowed(m) if m == ["GET", "HEAD"]),
                "{path}"
            );
        }
        assert!(matches!(t.resolve(&http::Method::GET, "/home"), Resolved::Endpoint(m) if m.index == 0));
        // Without `openapi: true`, /openapi.json is anybody's.
        assert!(matches!(
            t.resolve(&http::Method::GET, "/openapi.json"),
            Resolved::Endpoint(_)
        ));
        t.serve_openapi();
        assert!(matches!(
            t.resolve(&http::Method::GET, "/openapi.json"),
            Resolved::Ops(Ops::OpenApi)
        ));
    }

    #[test]
    fn dot_segments_are_removed_and_may_not_climb_above_the_root() {
        assert_eq!(normalize("/a/b").as_deref(), Some("/a/b"));
        assert_eq!(normalize("/a/./b/../c").as_deref(), Some("/a/c"));
        assert_eq!(normalize("/a/%2E%2e/c").as_deref(), Some("/c"));
        assert_eq!(normalize("/a/b/..").as_deref(), Some("/a/"));
        assert_eq!(normalize("/a/.").as_deref(), Some("/a/"));
        assert_eq!(normalize("/..").as_deref(), None);
        assert_eq!(normalize("/a/../../b").as_deref(), None);
        assert_eq!(normalize("/a/%2F../b").as_deref(), Some("/a/%2F../b"));
    }
}
