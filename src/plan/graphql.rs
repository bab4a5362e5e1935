//! The GraphQL side of the plan (SPEC §5): every name of the schema, decided and checked once at
//! load — namespace fields and types, endpoint fields, the object types below them — with the
//! options of `graphql:`. The async-graphql schema itself is built from this by the GraphQL
//! surface; an invalid or colliding name is a load error here, with file, line and column.

use super::output::{Kind, OutType};
use super::types::is_graphql_name;
use super::{Access, Endpoint};
use crate::config::diag::{Diagnostics, Loc};
use crate::config::model::{EndpointConfig, GraphqlConfig, Method, ParamSource};
use crate::config::Loaded;
use std::collections::HashMap;
use std::sync::Arc;

/// `graphql.path` when `graphql:` does not say.
pub const DEFAULT_PATH: &str = "/graphql";

/// The GraphQL schema's names and options.
#[derive(Debug)]
pub struct GraphqlPlan {
    /// Where it is served.
    pub path: String,
    /// GraphiQL on `GET` with `Accept: text/html`.
    pub playground: bool,
    /// `__schema` and `__type` allowed.
    pub introspection: bool,
    /// Deepest selection allowed.
    pub max_depth: usize,
    /// Most fields (aliases counted) allowed.
    pub max_complexity: usize,
    /// Who may send operations at all (the HTTP-level check), and `graphql.rate_limit`.
    pub access: Access,
    /// One per client with endpoints, in the order the compositions were loaded.
    pub namespaces: Vec<Namespace>,
}

/// One client's fields.
#[derive(Debug)]
pub struct Namespace {
    /// The client as written.
    pub client: String,
    /// Its field on `Query` and `Mutation` (lowerCamelCase).
    pub field: String,
    /// `<Client>Query`.
    pub query_type: String,
    /// `<Client>Mutation`.
    pub mutation_type: String,
    /// GET endpoints.
    pub queries: Vec<EndpointField>,
    /// Every other method.
    pub mutations: Vec<EndpointField>,
}

/// One endpoint as a field of its namespace.
#[derive(Debug)]
pub struct EndpointField {
    /// lowerCamelCase of the endpoint's name.
    pub field: String,
    /// The endpoint.
    pub endpoint: Arc<Endpoint>,
    /// `<Client><Endpoint>`: the name of its result's object type.
    pub type_name: String,
}

/// `ios-app` → `IosApp`, `add_to_cart` → `AddToCart`, `recommendedProducts` →
/// `RecommendedProducts`: split at `_` and `-`, each part's first letter upper-cased.
pub fn upper_camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for part in name.split(['_', '-']).filter(|p| !p.is_empty()) {
        let mut chars = part.chars();
        if let Some(c) = chars.next() {
            out.extend(c.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    out
}

/// `add_to_cart` → `addToCart`, `Mobile` → `mobile`.
pub fn lower_camel(name: &str) -> String {
    let upper = upper_camel(name);
    let mut chars = upper.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => upper,
    }
}

/// Calls `f` with the name and type of every object type in `ty`, `name` being the name of the
/// outermost one: a field `f` of an object `P` gives `P` + UpperCamelCase(`f`), a list's items the
/// list's own name.
pub fn visit_objects<'t>(name: &str, ty: &'t OutType, loc: Loc, f: &mut dyn FnMut(&str, &'t OutType, Loc)) {
    match &ty.kind {
        Kind::Leaf(_) => {}
        Kind::List(inner) => visit_objects(name, inner, loc, f),
        Kind::Object(fields) => {
            f(name, ty, loc);
            for field in fields {
                let at = if field.loc == Loc::default() { loc } else { field.loc };
                visit_objects(&format!("{name}{}", upper_camel(&field.name)), &field.ty, at, f);
            }
        }
    }
}

/// Names GraphQL and async-graphql keep for themselves.
const RESERVED_TYPES: [&str; 9] = [
    "Query",
    "Mutation",
    "Subscription",
    "Int",
    "Float",
    "String",
    "Boolean",
    "ID",
    "JSON",
];

/// Pass: the GraphQL names of every client and endpoint, checked (called only when the
/// endpoints compiled, so `endpoints` follows the compositions' order one to one).
pub(super) fn compile_graphql(
    loaded: &Loaded,
    endpoints: &[Arc<Endpoint>],
    access: Access,
    diags: &mut Diagnostics,
) -> GraphqlPlan {
    let gw = &loaded.gateway;
    let default = GraphqlConfig {
        path: crate::config::model::Spanned {
            value: DEFAULT_PATH.into(),
            loc: Loc::default(),
        },
        playground: false,
        introspection: true,
        max_depth: 12,
        max_complexity: 1000,
        auth: None,
        rate_limit: None,
    };
    let g = gw.graphql.as_ref().unwrap_or(&default);
    // Every type name with where it comes from, for collisions.
    let mut types: HashMap<String, (Arc<str>, Loc, String)> = HashMap::new();
    let mut claim = |diags: &mut Diagnostics, name: &str, file: &Arc<str>, loc: Loc, what: String| {
        if RESERVED_TYPES.contains(&name) {
            diags.error(
                file,
                loc,
                format!("{what} would be the GraphQL type `{name}`, a name GraphQL keeps for itself"),
                Some("rename it".into()),
            );
            return;
        }
        match types.get(name) {
            Some((ofile, oloc, owhat)) => diags.error(
                file,
                loc,
                format!(
                    "{what} would be the GraphQL type `{name}`, which {owhat} ({ofile}:{}:{}) already is",
                    oloc.line, oloc.col
                ),
                Some("rename one of them: GraphQL type names are built from the names as written".into()),
            ),
            None => {
                types.insert(name.to_string(), (file.clone(), loc, what));
            }
        }
    };
    let mut namespaces: Vec<Namespace> = Vec::new();
    let mut namespace_fields: HashMap<String, (Arc<str>, Loc)> = HashMap::new();
    // The endpoints are in the compositions' order, each composition's together; one that did
    // not compile (this pass also runs when others found errors) is missing, so each is paired
    // with its configuration by name, not by position.
    let mut next = endpoints.iter().peekable();
    for comp in &loaded.compositions {
        let file = &comp.file;
        let client = &comp.client.value;
        let field = lower_camel(client);
        let upper = upper_camel(client);
        let mut mine: Vec<(&Arc<Endpoint>, &EndpointConfig)> = Vec::new();
        for cfg in &comp.endpoints {
            if let Some(ep) = next.next_if(|e| e.client == *client && e.name == cfg.name.value) {
                mine.push((ep, cfg));
            }
        }
        if mine.is_empty() {
            continue;
        }
        if !is_graphql_name(&field) {
            diags.error(
                file,
                comp.client.loc,
                format!("client `{client}` gives the GraphQL field `{field}`, which is not a valid GraphQL name"),
                Some("a GraphQL name is letters, digits and `_`, and does not start with a digit".into()),
            );
            continue;
        }
        if let Some((ofile, oloc)) = namespace_fields.get(&field) {
            if loaded
                .compositions
                .iter()
                .any(|c| c.file == *ofile && c.client.value == *client)
            {
                // Two compositions of one client name: reported where the clients are read.
                continue;
            }
            diags.error(
                file,
                comp.client.loc,
                format!(
                    "client `{client}` gives the GraphQL field `{field}`, as the client of {ofile}:{}:{} does",
                    oloc.line, oloc.col
                ),
                Some("rename one of the clients".into()),
            );
            continue;
        }
        namespace_fields.insert(field.clone(), (file.clone(), comp.client.loc));
        let mut ns = Namespace {
            client: client.clone(),
            field,
            query_type: format!("{upper}Query"),
            mutation_type: format!("{upper}Mutation"),
            queries: Vec::new(),
            mutations: Vec::new(),
        };
        let mut fields_seen: HashMap<(bool, String), Loc> = HashMap::new();
        for (ep, cfg) in mine {
            let efield = lower_camel(&ep.name);
            let is_query = ep.method == Method::Get;
            if !is_graphql_name(&efield) {
                diags.error(
                    file,
                    cfg.name.loc,
                    format!(
                        "endpoint `{}` gives the GraphQL field `{efield}`, which is not a valid GraphQL name",
                        ep.name
                    ),
                    Some("a GraphQL name is letters, digits and `_`, and does not start with a digit".into()),
                );
                continue;
            }
            if let Some(other) = fields_seen.get(&(is_query, efield.clone())) {
                diags.error(
                    file,
                    cfg.name.loc,
                    format!(
                        "endpoint `{}` gives the GraphQL field `{efield}`, as the endpoint at line {} does",
                        ep.name, other.line
                    ),
                    Some("rename one of the endpoints".into()),
                );
                continue;
            }
            fields_seen.insert((is_query, efield.clone()), cfg.name.loc);
            for p in &cfg.params {
                if !matches!(p.source, ParamSource::Header(_)) && !is_graphql_name(&p.name.value) {
                    diags.error(
                        file,
                        p.name.loc,
                        format!(
                            "parameter `{}` cannot be a GraphQL argument: it is not a valid GraphQL name",
                            p.name.value
                        ),
                        Some("a GraphQL name is letters, digits and `_`, and does not start with a digit".into()),
                    );
                }
            }
            let type_name = format!("{upper}{}", upper_camel(&ep.name));
            let mut bad_fields = Vec::new();
            visit_objects(&type_name, &ep.output, cfg.name.loc, &mut |name, ty, loc| {
                let what = if name == type_name {
                    format!("endpoint `{}`", ep.name)
                } else {
                    format!("a field of endpoint `{}`", ep.name)
                };
                claim(diags, name, file, loc, what);
                for f in ty.fields().unwrap_or_default() {
                    if !is_graphql_name(&f.name) {
                        bad_fields.push((f.name.clone(), f.loc));
                    }
                }
            });
            for (name, loc) in bad_fields {
                diags.error(
                    file,
                    loc,
                    format!("response field `{name}` is not a valid GraphQL name"),
                    Some("a GraphQL name is letters, digits and `_`, and does not start with a digit".into()),
                );
            }
            let entry = EndpointField {
                field: efield,
                endpoint: ep.clone(),
                type_name,
            };
            if is_query {
                ns.queries.push(entry);
            } else {
                ns.mutations.push(entry);
            }
        }
        if !ns.queries.is_empty() {
            claim(
                diags,
                &ns.query_type,
                file,
                comp.client.loc,
                format!("client `{client}`"),
            );
        }
        if !ns.mutations.is_empty() {
            claim(
                diags,
                &ns.mutation_type,
                file,
                comp.client.loc,
                format!("client `{client}`"),
            );
        }
        namespaces.push(ns);
    }
    GraphqlPlan {
        path: g.path.value.clone(),
        playground: g.playground,
        introspection: g.introspection,
        max_depth: usize::try_from(g.max_depth).unwrap_or(usize::MAX),
        max_complexity: usize::try_from(g.max_complexity).unwrap_or(usize::MAX),
        access,
        namespaces,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_at_underscores_and_dashes() {
        assert_eq!(upper_camel("ios"), "Ios");
        assert_eq!(upper_camel("add_to_cart"), "AddToCart");
        assert_eq!(upper_camel("ios-app"), "IosApp");
        assert_eq!(upper_camel("recommendedProducts"), "RecommendedProducts");
        assert_eq!(lower_camel("add_to_cart"), "addToCart");
        assert_eq!(lower_camel("ios-app"), "iosApp");
        assert_eq!(lower_camel("Mobile"), "mobile");
    }
}
