//! Load, then compile: the one step above both `config` (reads the files) and `plan` (compiles
//! what they say), so neither of them imports the other's caller. Every command and test that
//! needs a plan starts here.

use crate::config::diag::Diagnostics;
use crate::config::env::Env;
use crate::plan::Plan;
use std::path::Path;

/// Loads `facade.yaml` at `config`, its compositions and schemas, and compiles them: the plan, or
/// every problem found (warnings come with a plan too).
pub fn load_plan(config: &Path, env: &dyn Env) -> (Option<Plan>, Diagnostics) {
    let (loaded, mut diags) = crate::config::load(config, env);
    let Some(loaded) = loaded else {
        return (None, diags);
    };
    let (plan, more) = crate::plan::compile(&loaded);
    diags.extend(more);
    if diags.has_errors() {
        return (None, diags);
    }
    let Some(mut plan) = plan else {
        return (None, diags);
    };
    // The executable GraphQL schema is built here, once per loaded configuration.
    if let Some(gp) = &plan.graphql {
        let strict = crate::graphql::build_schema(gp, async_graphql::ValidationMode::Strict);
        let fast = crate::graphql::build_schema(gp, async_graphql::ValidationMode::Fast);
        match strict.and_then(|s| Ok((s, fast?))) {
            Ok((strict, fast)) => plan.graphql_schema = Some(crate::plan::GraphqlSchema::new(strict, fast, 16 << 20)),
            Err(e) => {
                diags.error(
                    &loaded.gateway.file,
                    Default::default(),
                    format!("the GraphQL schema could not be built: {e}"),
                    None,
                );
                return (None, diags);
            }
        }
    }
    (Some(plan), diags)
}
