//! Reading the configuration files into located models (SPEC §1, §3, §4).
//!
//! The only place that knows YAML. Reads `facade.yaml`, every `compositions/*.yaml` and the
//! services' OpenAPI documents; expands the environment; reports every problem with its file,
//! line and column. No network, no HTTP.

pub mod args;
pub mod bundle;
pub mod composition;
pub mod diag;
pub mod env;
pub mod gateway;
pub mod model;
pub mod read;
pub mod yaml;

use diag::{Diagnostics, Loc};
use env::Env;
use model::{CompositionConfig, GatewayConfig};
use read::Reader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An OpenAPI document of a service.
#[derive(Debug, Clone)]
pub struct SchemaDoc {
    /// The service it describes.
    pub service: String,
    /// The file.
    pub file: Arc<str>,
    /// The document as JSON.
    pub doc: serde_json::Value,
}

/// Everything the files say, before compilation.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// `facade.yaml`.
    pub gateway: GatewayConfig,
    /// Every composition, sorted by file name.
    pub compositions: Vec<CompositionConfig>,
    /// The services' OpenAPI documents.
    pub schemas: Vec<SchemaDoc>,
}

/// Shows a path as the user would write it: relative to the working directory when below it.
fn display(path: &Path) -> Arc<str> {
    let shown = std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(&cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf());
    let s = shown.to_string_lossy();
    Arc::from(s.strip_prefix("./").unwrap_or(&s))
}

/// Parses a YAML file into a tree, reporting syntax errors.
fn parse_file(path: &Path, file: &Arc<str>, diags: &mut Diagnostics) -> Option<yaml::Node> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            let hint = path.is_dir().then(|| {
                match ["facade.yaml", "facade.yml", "facade.json"]
                    .iter()
                    .map(|name| path.join(name))
                    .find(|candidate| candidate.is_file())
                {
                    Some(inside) => format!("name the file, not its folder: did you mean `{}`?", inside.display()),
                    None => "name the configuration file (`facade.yaml`), not a folder".to_string(),
                }
            });
            diags.error(file, Loc { line: 1, col: 1 }, format!("cannot read file: {e}"), hint);
            return None;
        }
    };
    match yaml::parse(&text) {
        Ok(Some(node)) => Some(node),
        Ok(None) => {
            diags.error(file, Loc { line: 1, col: 1 }, "the file is empty", None);
            None
        }
        Err(e) => {
            diags.error(
                file,
                e.loc,
                format!("YAML syntax error: {}", e.message),
                yaml_hint(&text, e.loc, &e.message),
            );
            None
        }
    }
}

/// Recognises the usual YAML pitfalls of expressions (SPEC §4.1) near a syntax error.
fn yaml_hint(text: &str, loc: Loc, message: &str) -> Option<String> {
    let line = text
        .lines()
        .nth(loc.line.saturating_sub(1) as usize)
        .unwrap_or_default();
    let value = line.split_once(": ").map(|(_, v)| v.trim_start()).unwrap_or("");
    if value.starts_with('@') {
        return Some("quote expressions that start with `@` or `{`: `name: \"@.name\"`".into());
    }
    if line.contains('{') && line.contains('(') && message.contains("trailing content") {
        return Some(
            "inside a flow mapping `{ … }` YAML splits a value at every comma: quote the whole expression, and use single quotes around it when it holds double quotes: `{ t: 'join($.tags, \" / \")' }`"
                .into(),
        );
    }
    if line.contains('{') && (message.contains("flow") || message.contains("trailing content")) {
        return Some(
            "inside a flow mapping `{ … }`, quote expressions that hold `[`, `]`, `,`, `{`, `}` or ` #`: `{ x: \"$.a[0]\" }`"
                .into(),
        );
    }
    if message.contains("unknown anchor") {
        return Some(
            "an alias (`*name`) must come after its anchor (`&name`) in the same file: anchors do not reach from `facade.yaml` into a composition, or from one composition into another"
                .into(),
        );
    }
    if message.contains("did not find expected key") || message.contains("mapping values are not allowed") {
        return Some(
            "check the indentation here: a key must line up with the keys of its mapping (spaces only, no tabs), and its value must be indented further than the key"
                .into(),
        );
    }
    None
}

/// A file an OpenAPI document refers to, read into JSON: JSON by its extension, else YAML.
fn read_referenced(path: &Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    if path.extension().is_some_and(|x| x.eq_ignore_ascii_case("json")) {
        return serde_json::from_str(&text).map_err(|e| format!("`{}` is not valid JSON: {e}", path.display()));
    }
    match yaml::parse(&text) {
        Ok(Some(node)) => Ok(node.to_json()),
        Ok(None) => Err(format!("`{}` is empty", path.display())),
        Err(e) => Err(format!(
            "`{}` has a YAML syntax error at {}:{}: {}",
            path.display(),
            e.loc.line,
            e.loc.col,
            e.message
        )),
    }
}

/// A client's composition: YAML, or JSON (which YAML reads), as a tool may write it. Hidden files
/// (editor swap and backup files) are not compositions.
fn is_composition_file(path: &Path) -> bool {
    let hidden = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'));
    !hidden
        && path.is_file()
        && path
            .extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| ["yaml", "yml", "json"].iter().any(|e| x.eq_ignore_ascii_case(e)))
}

/// Loads `facade.yaml` at `config`, its compositions and schemas. Returns what could be read and
/// every problem found; callers refuse to go on when `diags.has_errors()`.
pub fn load(config: &Path, env: &dyn Env) -> (Option<Loaded>, Diagnostics) {
    let mut diags = Diagnostics::default();
    let file: Arc<str> = Arc::from(config.to_string_lossy().as_ref());
    let dir = config.parent().map(Path::to_path_buf).unwrap_or_default();
    let Some(raw) = parse_file(config, &file, &mut diags) else {
        return (None, diags);
    };
    let root = read::expand_tree(&raw, env, &file, &mut diags);
    let gateway = {
        let mut r = Reader {
            file: file.clone(),
            diags: &mut diags,
        };
        gateway::read_gateway(&mut r, &root, &dir)
    };
    let Some(mut gateway) = gateway else {
        return (None, diags);
    };

    // OpenAPI documents.
    let mut schemas = Vec::new();
    for svc in &gateway.services {
        let Some(schema) = &svc.schema else {
            diags.warning(
                &file,
                svc.name.loc,
                format!(
                    "service `{}` has no `schema`: its responses are typed JSON and not checked",
                    svc.name.value
                ),
            );
            continue;
        };
        let path = gateway.schemas_dir.join(&schema.value);
        let sfile = display(&path);
        let doc = if path.extension().is_some_and(|x| x == "json") {
            match std::fs::read_to_string(&path) {
                Ok(t) => match serde_json::from_str::<serde_json::Value>(&t) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        diags.error(
                            &sfile,
                            Loc {
                                line: e.line() as u32,
                                col: e.column() as u32,
                            },
                            format!("invalid JSON: {e}"),
                            None,
                        );
                        None
                    }
                },
                Err(e) => {
                    diags.error(
                        &file,
                        schema.loc,
                        format!("cannot read schema `{}`: {e}", path.display()),
                        None,
                    );
                    None
                }
            }
        } else if path.exists() {
            parse_file(&path, &sfile, &mut diags).map(|n| n.to_json())
        } else {
            diags.error(
                &file,
                schema.loc,
                format!("schema file `{}` does not exist", sfile),
                None,
            );
            None
        };
        if let Some(mut doc) = doc {
            let version = doc.get("openapi").and_then(|v| v.as_str()).unwrap_or("");
            if !version.starts_with("3.") {
                // A Swagger 2.0 document is the usual reason: say so, and how to convert it.
                let hint = doc.get("swagger").map(|_| {
                    "this is a Swagger 2.0 document: convert it to OpenAPI 3 first (for example with `npx swagger2openapi`)".to_string()
                });
                diags.error(
                    &sfile,
                    Loc { line: 1, col: 1 },
                    "not an OpenAPI 3.0/3.1 document (no `openapi: 3.x`)",
                    hint,
                );
                continue;
            }
            let followed = bundle::follow_file_refs(&mut doc, &path, &mut read_referenced);
            if let Some((first, why)) = followed.unfollowed.first() {
                diags.warning(
                    &sfile,
                    Loc { line: 1, col: 1 },
                    format!(
                        "{} `$ref`(s) are not followed (`{first}`: {why}): what they describe is typed JSON and not checked",
                        followed.unfollowed.len()
                    ),
                );
            }
            gateway.other_files.extend(followed.files);
            schemas.push(SchemaDoc {
                service: svc.name.value.clone(),
                file: sfile,
                doc,
            });
        }
    }

    // Compositions.
    let mut compositions = Vec::new();
    match std::fs::read_dir(&gateway.compositions_dir) {
        Ok(entries) => {
            // A flat layout (`compositions: .`, `schemas: .`) puts facade.yaml, the services'
            // OpenAPI documents and the files those refer to in the same folder: they are no
            // compositions.
            let not_compositions: Vec<PathBuf> = std::iter::once(config.to_path_buf())
                .chain(
                    gateway
                        .services
                        .iter()
                        .filter_map(|s| s.schema.as_ref().map(|x| gateway.schemas_dir.join(&x.value))),
                )
                .chain(gateway.other_files.iter().cloned())
                .filter_map(|p| std::fs::canonicalize(p).ok())
                .collect();
            let mut paths: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| is_composition_file(p))
                .filter(|p| std::fs::canonicalize(p).is_ok_and(|c| !not_compositions.contains(&c)))
                .collect();
            paths.sort();
            if paths.is_empty() && gateway.routes.is_empty() {
                // Nothing composed and nothing proxied: most often a wrong folder or files named
                // otherwise; say so rather than serve nothing in silence.
                diags.warning(
                    &file,
                    Loc { line: 1, col: 1 },
                    format!(
                        "the compositions folder `{}` holds no `*.yaml`, `*.yml` or `*.json` file: no composed endpoint is served",
                        gateway.compositions_dir.display()
                    ),
                );
            }
            for path in paths {
                let cfile = display(&path);
                let Some(raw) = parse_file(&path, &cfile, &mut diags) else {
                    continue;
                };
                let root = read::expand_tree(&raw, env, &cfile, &mut diags);
                let mut r = Reader {
                    file: cfile,
                    diags: &mut diags,
                };
                if let Some(c) = composition::read_composition(&mut r, &root) {
                    compositions.push(c);
                }
            }
        }
        Err(e) => diags.error(
            &file,
            Loc { line: 1, col: 1 },
            format!(
                "cannot read the compositions folder `{}`: {e}",
                gateway.compositions_dir.display()
            ),
            None,
        ),
    }
    (
        Some(Loaded {
            gateway,
            compositions,
            schemas,
        }),
        diags,
    )
}
