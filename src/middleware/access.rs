//! The access stage, one for every surface: a route's `Access` (auth mode, roles, and — in the
//! next stage of the work — its rate-limit policy) against a request's headers. REST endpoints
//! and passthrough routes answer a refusal with its HTTP status; GraphQL nulls the endpoint field
//! with the refusal's code (`UNAUTHENTICATED`, `FORBIDDEN`), and every alias is checked on its own.

use super::auth::{authenticate, AuthError, Authenticated};
use crate::plan::{Access, Plan};
use http::HeaderMap;

/// Why the access stage refused a request or a GraphQL field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No valid token, or a token without any of the route's roles.
    #[error("{}", .0.message())]
    Auth(AuthError),
}

impl Refusal {
    /// The GraphQL error code of the refusal (SPEC §5).
    pub fn graphql_code(&self) -> &'static str {
        match self {
            Refusal::Auth(AuthError::Forbidden) => "FORBIDDEN",
            Refusal::Auth(AuthError::Missing | AuthError::Invalid(_)) => "UNAUTHENTICATED",
        }
    }
}

/// Checks one use of a route: the token against its auth mode and roles.
pub fn check(plan: &Plan, access: &Access, headers: &HeaderMap) -> Result<Authenticated, Refusal> {
    authenticate(plan.auth.as_ref(), access.auth, &access.roles, headers).map_err(Refusal::Auth)
}
