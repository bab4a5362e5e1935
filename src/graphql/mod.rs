//! The GraphQL surface (SPEC §5): the async-graphql dynamic schema built once from the plan's
//! GraphQL names and output types (`schema`), and the resolvers that run endpoints for a
//! selection, making only the calls its fields need (`resolve`). The HTTP layer of
//! `graphql.path` is `http::graphql`.

pub mod direct;
pub mod int_range;
pub mod resolve;
pub mod schema;
pub mod size;

pub use resolve::Operation;
pub use schema::build_schema;
