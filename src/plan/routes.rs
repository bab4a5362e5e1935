//! The route table of composed endpoints: method + path → endpoint index.
//!
//! Built once at compile time with `matchit` (axum's router), so conflicts are load errors rather
//! than start-up panics, and the table swaps with the rest of the plan on reload.

use crate::config::model::Method;
use std::collections::HashMap;

/// Method + path → endpoint index.
#[derive(Debug, Default)]
pub struct RouteTable {
    by_method: HashMap<Method, matchit::Router<usize>>,
    paths: Vec<(Method, String)>,
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
    }
}
