//! JWT authentication of one request against a route's auth mode and roles (SPEC §6), and the
//! `forward_claims` headers derived from the token.

use crate::config::model::AuthMode;
use crate::jwt::{claim_at, ForwardedClaims, TokenError};
use crate::plan::AuthPlan;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

/// A request that passed authentication.
#[derive(Debug, Clone, Default)]
pub struct Authenticated {
    /// Verified claims; `None` when anonymous.
    pub claims: Option<std::sync::Arc<Value>>,
    /// Headers for backends, from `forward_claims` (shared by every request with the token).
    pub forwarded: ForwardedClaims,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// No token where one is needed (401, `WWW-Authenticate: Bearer`).
    Missing,
    /// A token that fails verification (401, `error="invalid_token"`).
    Invalid(TokenError),
    /// A valid token without any of the route's roles (403).
    Forbidden,
}

impl AuthError {
    /// A message for a person.
    pub fn message(&self) -> String {
        match self {
            AuthError::Missing => "a bearer token is required".into(),
            AuthError::Invalid(e) => e.to_string(),
            AuthError::Forbidden => "the token does not hold a role this route needs".into(),
        }
    }
}

/// The bearer token of a request, if it sent one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Authenticates a request for a route with `mode` and `roles`.
pub async fn authenticate(
    auth: Option<&AuthPlan>,
    mode: AuthMode,
    roles: &[String],
    headers: &HeaderMap,
) -> Result<Authenticated, AuthError> {
    let Some(auth) = auth else {
        return Ok(Authenticated::default());
    };
    if mode == AuthMode::None {
        return Ok(Authenticated::default());
    }
    let token = match (bearer(headers), headers.contains_key(http::header::AUTHORIZATION)) {
        (Some(t), _) => t,
        // An Authorization header that is not a bearer token is an invalid token, not none.
        (None, true) => return Err(AuthError::Invalid(TokenError::NotBearer)),
        (None, false) => {
            if mode == AuthMode::Required || !roles.is_empty() {
                return Err(AuthError::Missing);
            }
            return Ok(Authenticated::default());
        }
    };
    let verified = auth.verifier.verify_fresh(token).await.map_err(AuthError::Invalid)?;
    let claims = verified.claims;
    if !roles.is_empty() {
        let held = auth.verifier.roles(&claims);
        if !roles.iter().any(|r| held.contains(&r.as_str())) {
            return Err(AuthError::Forbidden);
        }
    }
    let forwarded = verified
        .forwarded
        .get_or_init(|| forwarded_claims(&claims, &auth.forward_claims))
        .clone();
    Ok(Authenticated {
        claims: Some(claims),
        forwarded,
    })
}

/// The `forward_claims` headers of a token's claims: a claim that is an array joined with `,`, a
/// missing or null one omitted (SPEC §6).
fn forwarded_claims(claims: &Value, forward_claims: &[(HeaderName, Vec<String>)]) -> ForwardedClaims {
    let mut forwarded = Vec::with_capacity(forward_claims.len());
    for (name, path) in forward_claims {
        let text = match claim_at(claims, path) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(","),
            Some(other) => other.to_string(),
        };
        if let Ok(v) = HeaderValue::from_str(&text) {
            forwarded.push((name.clone(), v));
        }
    }
    forwarded.into()
}
