//! Shared middleware: request id, per-request log line and forged-header stripping (`front`),
//! and JWT authentication (`auth`).

pub mod auth;
pub mod front;
