//! The access stage, one for every surface: a route's `Access` — auth mode, roles, then its
//! rate-limit policy — against one request. REST endpoints and passthrough routes answer a
//! refusal with its HTTP status; GraphQL nulls the endpoint field with the refusal's code
//! (`UNAUTHENTICATED`, `FORBIDDEN`, `RATE_LIMITED`), and every alias is checked on its own.
//! The limiter runs after auth and roles, so a 401 or 403 consumes nothing.

use super::auth::{authenticate, AuthError, Authenticated};
use crate::plan::{Access, Plan};
use crate::ratelimit::key::{client_ip, push_bucket_key};
use crate::ratelimit::{Limiter, RateHeaders, Verdict};
use http::HeaderMap;
use std::net::SocketAddr;

/// A request the access stage let through.
#[derive(Debug, Clone, Default)]
pub struct Admitted {
    /// Who it is.
    pub authenticated: Authenticated,
    /// The rate-limit headers its response carries (none without a policy, or when the store
    /// failed and `on_store_error: allow` let it through).
    pub rate: Option<RateHeaders>,
}

/// Why the access stage refused a request or a GraphQL field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No valid token, or a token without any of the route's roles.
    #[error("{}", .0.message())]
    Auth(AuthError),
    /// Over the route's policy.
    #[error("rate limit `{policy}` exceeded: try again in {retry_after} s")]
    Limited {
        /// The policy.
        policy: String,
        /// The headers of the refusal.
        headers: RateHeaders,
        /// Seconds until the next request is allowed.
        retry_after: u64,
    },
    /// The rate-limit store failed and `on_store_error: deny` refuses.
    #[error("the rate-limit store is unavailable")]
    StoreUnavailable,
}

impl Refusal {
    /// The GraphQL error code of the refusal (SPEC §5).
    pub fn graphql_code(&self) -> &'static str {
        match self {
            Refusal::Auth(AuthError::Forbidden) => "FORBIDDEN",
            Refusal::Auth(AuthError::Invalid(crate::jwt::TokenError::KeysUnavailable)) => "AUTH_UNAVAILABLE",
            Refusal::Auth(AuthError::Missing | AuthError::Invalid(_)) => "UNAUTHENTICATED",
            Refusal::Limited { .. } => "RATE_LIMITED",
            Refusal::StoreUnavailable => "RATE_LIMIT_UNAVAILABLE",
        }
    }
}

/// Checks one use of a route: the token against its auth mode and roles, then its policy.
pub async fn check(
    plan: &Plan,
    limiter: &Limiter,
    access: &Access,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> Result<Admitted, Refusal> {
    let authenticated = authenticate(plan.auth.as_ref(), access.auth, &access.roles, headers)
        .await
        .map_err(Refusal::Auth)?;
    let (Some(name), Some(rl)) = (&access.rate_limit, &plan.rate_limits) else {
        return Ok(Admitted {
            authenticated,
            rate: None,
        });
    };
    let Some(policy) = rl.policy(name) else {
        return Ok(Admitted {
            authenticated,
            rate: None,
        });
    };
    let ip = client_ip(peer, headers, &rl.trusted_proxies);
    let mut bucket = String::with_capacity(policy.name.len() + 48);
    bucket.push_str(&policy.name);
    bucket.push(':');
    push_bucket_key(&mut bucket, &policy.key, authenticated.claims.as_deref(), headers, ip);
    match limiter.check(rl, policy, &bucket).await {
        Verdict::Allowed(h) => Ok(Admitted {
            authenticated,
            rate: Some(h),
        }),
        Verdict::Unchecked => Ok(Admitted {
            authenticated,
            rate: None,
        }),
        Verdict::Limited { headers, retry_after } => Err(Refusal::Limited {
            policy: policy.name.clone(),
            headers,
            retry_after,
        }),
        Verdict::Unavailable => Err(Refusal::StoreUnavailable),
    }
}
