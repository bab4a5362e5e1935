//! Shared middleware: request id, per-request log line and forged-header stripping (`front`),
//! JWT authentication (`auth`), and the access stage every surface shares (`access`).

pub mod access;
pub mod auth;
pub mod front;
