//! Facade: a declarative Backend-for-Frontend gateway.
//!
//! Module map, in the order a request meets them:
//! - `config`: reads facade.yaml, compositions and OpenAPI documents into located models.
//! - `load`: load, then compile (above both `config` and `plan`).
//! - `plan`: compiles the models into an immutable plan (routes, call graphs, expressions, types).
//! - `jwks`: keys from an identity provider's JWKS, refreshed in the background.
//! - `jwt`: token verification and minting.
//! - `exec`: runs one endpoint of the plan: parallel fan-out, dedup, cache, projection.
//! - `graphql`: the async-graphql dynamic schema built once from the plan, and its resolvers.
//! - `ratelimit`: the GCRA, bucket keys, the stores, the headers of a decision.
//! - `upstream`: the HTTP client to backends (timeouts, retries, body limits, header forwarding).
//! - `http`: thin adapters from the plan to HTTP (REST endpoints, health) and `app(state)`.
//! - `metrics`: the Prometheus metrics of `/metrics`.
//! - `middleware`: request id, logging, header stripping, authentication.
//! - `state`: the shared state behind an atomically swappable handle.
//! - `clock`: the injected monotonic clock (cache, breakers).
//! - `demo`: the built-in fixture backends of `serve --demo`.
//! - `logbuf`: the buffered stderr writer behind the log lines.
//! - `reload`: hot reload (SIGHUP, `watch: true`): load again, swap in only a plan without errors.
//! - `server`: binding, serving and graceful shutdown.

pub mod alloc;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod exec;
pub mod graphql;
pub mod http;
pub mod idle;
pub mod iptext;
pub mod jwks;
pub mod jwt;
pub mod load;
pub mod logbuf;
pub mod logfmt;
pub mod metrics;
pub mod middleware;
pub mod plan;
pub mod ratelimit;
pub mod reload;
pub mod server;
pub mod stall;
pub mod state;
pub mod unread;
pub mod upstream;
