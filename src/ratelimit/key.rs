//! Whose bucket a request uses (SPEC §7): the verified `sub`, the client's address, or a header.
//! The address is the peer's, or — when the peer is a trusted proxy — the right-most
//! `X-Forwarded-For` address that is not itself a trusted proxy.

use crate::plan::KeyKind;
use http::HeaderMap;
use ipnet::IpNet;
use serde_json::Value;
use std::net::{IpAddr, SocketAddr};

/// Whether `ip` is one of `rate_limits.trusted_proxies`, whose forwarded headers are believed.
pub fn is_trusted(ip: &IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|n| n.contains(ip))
}

/// The client's address as the limiter sees it.
pub fn client_ip(peer: Option<SocketAddr>, headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = peer?.ip();
    let is_trusted = |ip: &IpAddr| is_trusted(ip, trusted);
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            // Garbage where an address should be: the last trusted hop is all that is known.
            return Some(client);
        };
        client = ip;
        if !is_trusted(&ip) {
            return Some(ip);
        }
    }
    Some(client)
}

/// An `X-Forwarded-For` entry: `1.2.3.4`, `2001:db8::1`, `[2001:db8::1]:443` or `1.2.3.4:80`;
/// an IPv4-mapped IPv6 address (`::ffff:1.2.3.4`, what a dual-stack proxy writes) in its IPv4 form.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let ip = if let Ok(ip) = hop.parse::<IpAddr>() {
        ip
    } else if let Ok(sa) = hop.parse::<SocketAddr>() {
        sa.ip()
    } else {
        hop.strip_prefix('[')?.split(']').next()?.parse().ok()?
    };
    Some(ip.to_canonical())
}

/// Appends the bucket key of a request under a policy of `kind` to `out`: `u:<sub>`,
/// `i:<address>` or `h:<value>` (the limiter's bucket is `<policy>:<key>`, built in one string).
/// Anonymous requests and missing headers fall back to the address.
pub fn push_bucket_key(
    out: &mut String,
    kind: &KeyKind,
    claims: Option<&Value>,
    headers: &HeaderMap,
    ip: Option<IpAddr>,
) {
    let by_ip = |out: &mut String| match ip {
        Some(ip) => {
            out.push_str("i:");
            crate::iptext::push_ip(out, ip);
        }
        None => out.push_str("i:unknown"),
    };
    match kind {
        KeyKind::User | KeyKind::UserOrIp => match claims.and_then(|c| c.get("sub")) {
            Some(Value::String(s)) => {
                out.push_str("u:");
                out.push_str(s);
            }
            Some(other) if !other.is_null() => {
                out.push_str("u:");
                out.push_str(&other.to_string());
            }
            _ => by_ip(out),
        },
        KeyKind::Ip => by_ip(out),
        KeyKind::Header(name) => match headers.get(name).and_then(|v| v.to_str().ok()) {
            Some(v) if !v.is_empty() => {
                out.push_str("h:");
                out.push_str(v);
            }
            _ => by_ip(out),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    #[test]
    fn the_right_most_untrusted_forwarded_address_is_the_client() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let peer: Option<SocketAddr> = Some("10.0.0.5:4000".parse().unwrap());
        let ip = |xff: &str| client_ip(peer, &headers(xff), &trusted).unwrap().to_string();
        assert_eq!(ip("203.0.113.9"), "203.0.113.9");
        assert_eq!(
            ip("1.1.1.1, 203.0.113.9, 10.0.0.7"),
            "203.0.113.9",
            "a forged left part is ignored"
        );
        assert_eq!(ip("10.1.1.1, 10.0.0.7"), "10.1.1.1");
        assert_eq!(ip("[2001:db8::1]:443"), "2001:db8::1");
        assert_eq!(ip("nonsense, 10.0.0.7"), "10.0.0.7");
        // What a dual-stack proxy writes: IPv4-mapped addresses, trusted and keyed as IPv4.
        assert_eq!(ip("203.0.113.9, ::ffff:10.0.0.7"), "203.0.113.9");
        assert_eq!(ip("::ffff:203.0.113.9"), "203.0.113.9");
        // An untrusted peer's header is not believed.
        let direct: Option<SocketAddr> = Some("198.51.100.1:4000".parse().unwrap());
        assert_eq!(
            client_ip(direct, &headers("203.0.113.9"), &trusted)
                .unwrap()
                .to_string(),
            "198.51.100.1"
        );
        assert_eq!(
            client_ip(peer, &HeaderMap::new(), &trusted).unwrap().to_string(),
            "10.0.0.5"
        );
    }
}
