//! Passthrough routes (SPEC §8): the request goes to the route's service as a reverse proxy would
//! send it, and the backend's status, headers and body come back unchanged, both bodies streamed.
//!
//! What changes on the way: the path (`strip_prefix`, `rewrite`, the service URL's own path in
//! front; dot segments already removed by `dispatch`), hop-by-hop headers (dropped both ways,
//! with every header that `Connection` names), the `forward_claims` headers (set from the token;
//! the client's were removed by `front`), `Host` (the backend's), and `X-Forwarded-For`,
//! `X-Forwarded-Proto`, `X-Forwarded-Host` and `X-Request-Id`, which are set.

use super::error::HttpError;
use crate::middleware::auth::Authenticated;
use crate::plan::{Passthrough, Plan, Target};
use crate::state::AppState;
use crate::upstream::{ForwardTarget, X_REQUEST_ID};
use axum::extract::Request;
use axum::response::Response;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use std::net::SocketAddr;

// Evaluated at compile time: `from_static` called at run time validates the name every time.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Forwards a request that passed the access stage. `path` is the normalised request path.
#[allow(clippy::too_many_arguments)]
pub async fn forward(
    state: &AppState,
    plan: &Plan,
    route: &Passthrough,
    path: &str,
    authenticated: Authenticated,
    peer: Option<SocketAddr>,
    req: Request,
    request_id: &HeaderValue,
) -> Result<Response, HttpError> {
    if is_websocket_upgrade(req.headers()) {
        return Err(HttpError::new(
            StatusCode::NOT_IMPLEMENTED,
            "upgrade_not_supported",
            "protocol upgrades (WebSocket) are not proxied in this version",
        ));
    }
    let service = &plan.services[route.service];
    let path_and_query = backend_path(service, route, path, req.uri().query());
    let (mut parts, body) = req.into_parts();
    // The target's authority (a request in absolute form, HTTP/2's `:authority`) wins over
    // `Host` (RFC 9112 §3.2.2, RFC 9113 §8.3.1); its userinfo is never forwarded.
    let client_host = parts
        .uri
        .authority()
        .and_then(|a| a.as_str().rsplit('@').next())
        .and_then(|a| HeaderValue::from_str(a).ok())
        .or_else(|| parts.headers.get(http::header::HOST).cloned());
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.remove(http::header::HOST);
    // Facade's own server answers `Expect: 100-continue` when the body is first read; the backend
    // is sent the body without waiting for a second interim answer.
    parts.headers.remove(http::header::EXPECT);
    for (name, value) in authenticated.forwarded.iter() {
        parts.headers.insert(name.clone(), value.clone());
    }
    if let Some(peer) = peer {
        let mut value = String::with_capacity(48);
        if let Some(prior) = parts.headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
            if !prior.trim().is_empty() {
                value.push_str(prior);
                value.push_str(", ");
            }
        }
        crate::iptext::push_ip(&mut value, peer.ip());
        if let Ok(v) = HeaderValue::from_str(&value) {
            parts.headers.insert(X_FORWARDED_FOR, v);
        }
    }
    // Behind a trusted proxy (`rate_limits.trusted_proxies`, whose X-Forwarded-For is believed
    // too) such as a load balancer ending TLS, the scheme and host the client used are the
    // proxy's to say, as Kong and Traefik keep them from their trusted peers; from anyone else
    // they are set here.
    let trusted = peer.is_some_and(|p| {
        plan.rate_limits
            .as_ref()
            .is_some_and(|rl| crate::ratelimit::key::is_trusted(&p.ip(), &rl.trusted_proxies))
    });
    let proto_given = trusted
        && parts
            .headers
            .get(&X_FORWARDED_PROTO)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https") || v.eq_ignore_ascii_case("http"));
    if !proto_given {
        parts
            .headers
            .insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    }
    let host_given = trusted && parts.headers.contains_key(&X_FORWARDED_HOST);
    if !host_given {
        match client_host {
            Some(h) => {
                parts.headers.insert(X_FORWARDED_HOST, h);
            }
            None => {
                parts.headers.remove(&X_FORWARDED_HOST);
            }
        }
    }
    parts.headers.insert(X_REQUEST_ID, request_id.clone());
    parts.version = http::Version::HTTP_11;
    let target = ForwardTarget {
        service: &service.name,
        origin: &service.origin,
        path_and_query: &path_and_query,
        timeout: service.timeout,
        retries: service.retries,
        breaker: service.circuit_breaker.as_ref(),
    };
    let mut resp = state
        .exec
        .upstream
        .forward(&target, http::Request::from_parts(parts, body))
        .await?;
    strip_hop_by_hop(resp.headers_mut());
    if let Some(location) = resp.headers().get(http::header::LOCATION).and_then(|v| v.to_str().ok()) {
        if let Some(v) = client_location(location, service, route).and_then(|l| HeaderValue::from_str(&l).ok()) {
            resp.headers_mut().insert(http::header::LOCATION, v);
        }
    }
    super::coalesce::with_first_frame(resp, service.timeout)
        .await
        .map_err(|e| {
            tracing::warn!(service = %service.name, error = %e, "the passthrough answer broke off before its body");
            HttpError::from(crate::upstream::ForwardError::BrokenAnswer)
        })
}

/// What follows the service's origin in the backend URL: the service URL's path, the forwarded
/// path, the query as sent.
fn backend_path(service: &crate::plan::Service, route: &Passthrough, path: &str, query: Option<&str>) -> String {
    let rest = &path[route.prefix.len().min(path.len())..];
    // The forwarded path in two pieces (a rewrite's target and the rest), joined once below.
    let (head, tail): (&str, &str) = match &route.target {
        Target::Keep => (path, ""),
        Target::Strip if rest.is_empty() => ("/", ""),
        Target::Strip => (rest, ""),
        Target::Rewrite(to) if to.is_empty() && rest.is_empty() => ("/", ""),
        Target::Rewrite(to) => (to, rest),
    };
    let query_len = query.map_or(0, |q| q.len() + 1);
    let mut url = String::with_capacity(service.base_path.len() + head.len() + tail.len() + query_len);
    url.push_str(&service.base_path);
    url.push_str(head);
    url.push_str(tail);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

/// A backend's redirect into itself, as the client must follow it (nginx's `proxy_redirect
/// default`): a `Location` that starts with the service's origin and the path this route forwards
/// to becomes the path the client would request for it, so a redirect never sends a client to a
/// backend address. Any other `Location` (relative, another host) is left as it is.
fn client_location(location: &str, service: &crate::plan::Service, route: &Passthrough) -> Option<String> {
    let (route_part, client_prefix) = match &route.target {
        Target::Keep => ("", ""),
        Target::Strip => ("", route.prefix.as_str()),
        Target::Rewrite(to) => (to.as_str(), route.prefix.as_str()),
    };
    let origin = location.get(..service.origin.len())?;
    if !origin.eq_ignore_ascii_case(&service.origin) {
        return None;
    }
    let rest = location[service.origin.len()..]
        .strip_prefix(service.base_path.as_str())?
        .strip_prefix(route_part)?;
    if !(rest.is_empty() || rest.starts_with(['/', '?', '#'])) {
        return None;
    }
    let mut out = String::with_capacity(client_prefix.len() + rest.len() + 1);
    out.push_str(client_prefix);
    if out.is_empty() && !rest.starts_with('/') {
        out.push('/');
    }
    out.push_str(rest);
    Some(out)
}

/// A request asking to switch to WebSocket, which is not proxied. Any other upgrade (`h2c`,
/// which `curl --http2` offers) is one a server may decline (RFC 9110 §7.8): the request is
/// served over HTTP/1.1, its `Upgrade` dropped with the other hop-by-hop headers.
fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    let websocket = headers
        .get_all(http::header::UPGRADE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',').any(|t| {
                t.trim()
                    .split('/')
                    .next()
                    .is_some_and(|p| p.eq_ignore_ascii_case("websocket"))
            })
        });
    websocket
        && headers
            .get_all(http::header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")))
}

/// Whether a header name is hop-by-hop by itself (`Connection` may name more). Every header of
/// every message is asked, so the length picks the few names to compare.
fn is_hop_by_hop(name: &str) -> bool {
    let listed = match name.len() {
        2 => name == "te",
        7 => name == "trailer" || name == "upgrade",
        10 => name == "connection" || name == "keep-alive",
        17 => name == "transfer-encoding",
        _ => false,
    };
    listed || name.starts_with("proxy-")
}

/// The hop-by-hop names other than `Proxy-*`, each with its bit in `strip_hop_by_hop`'s mask.
const HOP_BY_HOP_NAMES: [HeaderName; 6] = [
    http::header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    http::header::TE,
    http::header::TRAILER,
    http::header::TRANSFER_ENCODING,
    http::header::UPGRADE,
];

/// Drops hop-by-hop headers, every `Proxy-*` header and every header that `Connection` names.
/// Most requests have none: one pass over the names finds that, without hashing a name per
/// removal (which was a twentieth of a passthrough request's work). Most backend answers have
/// `Connection: keep-alive` alone: nothing is allocated for it, and only the names present are
/// removed. A header that `Connection` names can only be present with `Connection` itself, which
/// the pass finds.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let mut present = 0u8;
    let mut proxy = false;
    for name in headers.keys() {
        let name = name.as_str();
        if !is_hop_by_hop(name) {
            continue;
        }
        match HOP_BY_HOP_NAMES.iter().position(|h| h.as_str() == name) {
            Some(i) => present |= 1 << i,
            None => proxy = true,
        }
    }
    if present == 0 && !proxy {
        return;
    }
    // Names `Connection` lists that are not hop-by-hop by themselves (rare: backends list
    // `keep-alive` or `close`), present in the message.
    let mut listed: Vec<HeaderName> = Vec::new();
    for value in headers.get_all(http::header::CONNECTION) {
        let Ok(value) = value.to_str() else { continue };
        for token in value.split(',').map(str::trim) {
            if token.is_empty()
                || token.eq_ignore_ascii_case("close")
                || HOP_BY_HOP_NAMES.iter().any(|h| token.eq_ignore_ascii_case(h.as_str()))
            {
                continue;
            }
            if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
                if headers.contains_key(&name) {
                    listed.push(name);
                }
            }
        }
    }
    if proxy {
        listed.extend(headers.keys().filter(|k| k.as_str().starts_with("proxy-")).cloned());
    }
    for (i, name) in HOP_BY_HOP_NAMES.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(name);
        }
    }
    for name in listed {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Headers that belong to one connection, never forwarded (RFC 9110 §7.6.1).
    const HOP_BY_HOP: [&str; 8] = [
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-connection",
        "proxy-authenticate",
    ];

    #[test]
    fn every_header_that_connection_names_is_dropped_however_many() {
        let mut headers = HeaderMap::new();
        let names: Vec<String> = (0..11).map(|i| format!("x-n{i}")).collect();
        headers.insert("connection", names[..6].join(", ").parse().unwrap());
        headers.append(
            "connection",
            format!("{} ,, KEEP-ALIVE", names[6..].join(",")).parse().unwrap(),
        );
        for n in &names {
            headers.insert(HeaderName::from_bytes(n.as_bytes()).unwrap(), "v".parse().unwrap());
        }
        headers.insert("keep-alive", "timeout=5".parse().unwrap());
        headers.insert("x-stays", "v".parse().unwrap());
        strip_hop_by_hop(&mut headers);
        let left: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["x-stays"]);
    }

    #[test]
    fn every_hop_by_hop_header_goes_at_once_and_end_to_end_ones_stay() {
        let mut headers = HeaderMap::new();
        for name in HOP_BY_HOP {
            headers.insert(HeaderName::from_static(name), "v".parse().unwrap());
        }
        headers.insert("connection", "Close, Keep-Alive, X-Gone, TE".parse().unwrap());
        headers.insert("proxy-authorization", "v".parse().unwrap());
        headers.insert("x-gone", "v".parse().unwrap());
        headers.insert("content-type", "application/json".parse().unwrap());
        headers.insert("x-connection", "v".parse().unwrap());
        strip_hop_by_hop(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, ["content-type", "x-connection"]);

        // What backends send most: `Connection: keep-alive`, with or without `Keep-Alive`.
        let mut headers = HeaderMap::new();
        headers.insert("content-length", "2".parse().unwrap());
        headers.insert("connection", "keep-alive".parse().unwrap());
        headers.insert("keep-alive", "timeout=5".parse().unwrap());
        strip_hop_by_hop(&mut headers);
        let left: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["content-length"]);
    }

    #[test]
    fn hop_by_hop_names_are_those_of_rfc_9110_and_every_proxy_header() {
        for name in HOP_BY_HOP {
            assert!(is_hop_by_hop(name), "{name}");
        }
        for name in ["proxy-authorization", "proxy-foo"] {
            assert!(is_hop_by_hop(name), "{name}");
        }
        for name in [
            "host",
            "tk",
            "trailers",
            "upgrades",
            "content-type",
            "x-connection",
            "authorization",
            "accept",
        ] {
            assert!(!is_hop_by_hop(name), "{name}");
        }
    }
}
