//! Typed reading of located YAML nodes, collecting every problem instead of stopping at the first.
//!
//! Owns the messages for wrong types, unknown keys (with did-you-mean hints) and environment
//! expansion errors. The gateway and composition readers are written on top of it.

use super::diag::{did_you_mean, Diagnostics, Loc};
use super::env::{expand, Env};
use super::yaml::{resolve_plain, CoreScalar, EnvUse, Node, NodeKind};
use std::sync::Arc;
use std::time::Duration;

/// Reads one file's nodes into typed values, reporting problems against that file.
pub struct Reader<'d> {
    /// The file as the user named it.
    pub file: Arc<str>,
    /// Where problems go.
    pub diags: &'d mut Diagnostics,
}

/// The entries of a mapping whose keys have been checked.
pub struct Fields<'n> {
    /// Where the mapping starts.
    pub loc: Loc,
    entries: Vec<(&'n str, &'n Node, &'n Node)>,
}

impl<'n> Fields<'n> {
    /// The value of a key, if present.
    pub fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries.iter().find(|(k, _, _)| *k == key).map(|(_, _, v)| *v)
    }

    /// The location of a key, if present.
    pub fn key_loc(&self, key: &str) -> Option<Loc> {
        self.entries.iter().find(|(k, _, _)| *k == key).map(|(_, k, _)| k.loc)
    }

    /// All entries in written order: (key, key node, value node).
    pub fn iter(&self) -> impl Iterator<Item = (&'n str, &'n Node, &'n Node)> + '_ {
        self.entries.iter().copied()
    }
}

/// Expands `${…}` in every scalar of a tree (SPEC §1). A value that is exactly one substitution
/// becomes a plain scalar, so it takes the type its key expects.
pub fn expand_tree(node: &Node, env: &dyn Env, file: &Arc<str>, diags: &mut Diagnostics) -> Node {
    let kind = match &node.kind {
        NodeKind::Scalar { text, plain, .. } => match expand(text, env) {
            Ok(e) => NodeKind::Scalar {
                plain: *plain || e.single_var.is_some(),
                env: match (&e.single_var, e.from_env, e.defaulted.is_empty()) {
                    (Some(name), _, defaulted) => EnvUse::Single {
                        name: name.clone(),
                        defaulted: !defaulted,
                    },
                    (None, false, _) => EnvUse::None,
                    (None, true, true) => EnvUse::Set,
                    (None, true, false) => EnvUse::Defaulted,
                },
                text: e.text,
            },
            Err(unset) => {
                diags.error(
                    file,
                    node.loc,
                    format!("environment variable `{}` is not set", unset.0),
                    Some(format!("set it, or give a default: `${{{}:-value}}`", unset.0)),
                );
                NodeKind::Scalar {
                    text: String::new(),
                    plain: false,
                    env: EnvUse::Failed,
                }
            }
        },
        NodeKind::Seq(items) => NodeKind::Seq(items.iter().map(|n| expand_tree(n, env, file, diags)).collect()),
        NodeKind::Map(entries) => NodeKind::Map(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), expand_tree(v, env, file, diags)))
                .collect(),
        ),
    };
    Node { loc: node.loc, kind }
}

/// Describes a scalar for a message without echoing text that came from the environment.
pub fn shown(node: &Node) -> String {
    match &node.kind {
        NodeKind::Scalar {
            env: EnvUse::None,
            text,
            ..
        } => format!("`{text}`"),
        NodeKind::Scalar {
            env: EnvUse::Single { name, .. },
            ..
        } => format!("the value of variable `{name}`"),
        NodeKind::Scalar { .. } => "the value from the environment".to_string(),
        _ => node.kind_name().to_string(),
    }
}

/// The most extra attempts a service or call may make.
const MAX_RETRIES: u64 = 10;

impl Reader<'_> {
    /// Reports an error at `loc`.
    pub fn error(&mut self, loc: Loc, message: impl Into<String>, hint: Option<String>) {
        self.diags.error(&self.file, loc, message, hint);
    }

    /// Reports a warning at `loc`.
    pub fn warning(&mut self, loc: Loc, message: impl Into<String>) {
        self.diags.warning(&self.file, loc, message);
    }

    /// Reads a mapping and checks its keys against `allowed` (unknown keys get a did-you-mean hint,
    /// duplicates are errors; `x-` keys are skipped).
    pub fn fields<'n>(&mut self, node: &'n Node, what: &str, allowed: &[&str]) -> Option<Fields<'n>> {
        let entries = self.map_entries(node, what)?;
        let mut out: Vec<(&'n str, &'n Node, &'n Node)> = Vec::new();
        // An allowed key left empty (`response:` with nothing under it): the unknown keys that
        // follow it are almost always its contents that lost their indentation.
        let mut emptied: Option<&str> = None;
        for (k, v) in entries {
            let Some(key) = self.key(k) else { continue };
            // `x-` keys are extensions, ignored as OpenAPI and Docker Compose ignore them: the
            // place for YAML anchors that later values alias (`x-defaults: &d 2s`), and for
            // notes a tool adds. No key of Facade's own starts with `x-`.
            if key.starts_with("x-") && !allowed.contains(&key) {
                continue;
            }
            if !allowed.contains(&key) {
                let hint = match emptied {
                    _ if key == "<<" => Some(
                        "YAML merge keys (`<<: *anchor`) are not part of YAML 1.2, which Facade reads: write the keys out (an alias such as `*anchor` can still stand for a whole value)"
                            .to_string(),
                    ),
                    Some(parent) => Some(format!(
                        "`{parent}:` above is empty: if `{key}` belongs under it, indent it further than `{parent}:`"
                    )),
                    None => did_you_mean(key, allowed.iter().copied())
                        .or_else(|| Some(format!("allowed here: {}", allowed.join(", ")))),
                };
                self.error(k.loc, format!("unknown key `{key}` in {what}"), hint);
                continue;
            }
            if out.iter().any(|(e, _, _)| *e == key) {
                self.error(k.loc, format!("duplicate key `{key}` in {what}"), None);
                continue;
            }
            if is_empty_scalar(v) {
                emptied = Some(key);
            }
            out.push((key, k, v));
        }
        Some(Fields {
            loc: node.loc,
            entries: out,
        })
    }

    /// Reads a mapping with free-form keys (names chosen by the user), rejecting duplicates.
    pub fn named<'n>(&mut self, node: &'n Node, what: &str) -> Option<Vec<(String, Loc, &'n Node)>> {
        let entries = self.map_entries(node, what)?;
        let mut out: Vec<(String, Loc, &'n Node)> = Vec::new();
        for (k, v) in entries {
            let Some(key) = self.key(k) else { continue };
            if out.iter().any(|(e, _, _)| e == key) {
                self.error(k.loc, format!("duplicate key `{key}` in {what}"), None);
                continue;
            }
            out.push((key.to_string(), k.loc, v));
        }
        Some(out)
    }

    fn map_entries<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [(Node, Node)]> {
        match &node.kind {
            NodeKind::Map(entries) => Some(entries),
            _ => {
                self.error(
                    node.loc,
                    format!("{what} must be a mapping, found {}", node.kind_name()),
                    None,
                );
                None
            }
        }
    }

    fn key<'n>(&mut self, k: &'n Node) -> Option<&'n str> {
        match &k.kind {
            NodeKind::Scalar { text, .. } => Some(text),
            _ => {
                self.error(k.loc, "mapping keys must be plain strings", None);
                None
            }
        }
    }

    /// Reads a string. Numbers and booleans written plain are accepted as their text.
    pub fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.kind {
            NodeKind::Scalar {
                env: EnvUse::Failed, ..
            } => None,
            NodeKind::Scalar { text, plain, .. } => {
                if *plain && resolve_plain(text) == CoreScalar::Null {
                    self.error(node.loc, format!("`{what}` must be a string, found null"), None);
                    return None;
                }
                Some(text.clone())
            }
            _ => {
                self.error(
                    node.loc,
                    format!("`{what}` must be a string, found {}", node.kind_name()),
                    None,
                );
                None
            }
        }
    }

    /// Reads a typed scalar. Durations and sizes are strings in YAML however they are written
    /// (SPEC §3); a number or a boolean may be quoted too (`retries: "1"`, `watch: "false"`), as
    /// a tool that quotes every scalar (a Helm template's `| quote`, a YAML emitter set to
    /// double quotes) writes them: the key says what type it takes, and the text must be exactly
    /// that type's plain form (`"yes"` is no boolean, quoted or not).
    fn typed<T>(
        &mut self,
        node: &Node,
        what: &str,
        expected: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Option<T> {
        match &node.kind {
            NodeKind::Scalar {
                env: EnvUse::Failed, ..
            } => None,
            NodeKind::Scalar { text, plain, env } => {
                let parsed = parse(text);
                if parsed.is_none() {
                    let found = match env {
                        EnvUse::None if *plain => format!("`{text}`"),
                        EnvUse::None => format!("the quoted string \"{text}\""),
                        EnvUse::Single { name, .. } => format!("the value of variable `{name}`"),
                        _ => "the value from the environment".to_string(),
                    };
                    self.error(node.loc, format!("`{what}` must be {expected}, found {found}"), None);
                }
                parsed
            }
            _ => {
                self.error(
                    node.loc,
                    format!("`{what}` must be {expected}, found {}", node.kind_name()),
                    None,
                );
                None
            }
        }
    }

    /// Reads `true` or `false`.
    pub fn bool(&mut self, node: &Node, what: &str) -> Option<bool> {
        self.typed(node, what, "`true` or `false`", |t| match resolve_plain(t) {
            CoreScalar::Bool(b) => Some(b),
            _ => None,
        })
    }

    /// Reads a non-negative integer.
    pub fn u64(&mut self, node: &Node, what: &str) -> Option<u64> {
        self.typed(node, what, "a whole number", |t| match resolve_plain(t) {
            CoreScalar::Int(i) => u64::try_from(i).ok(),
            _ => None,
        })
    }

    /// Reads a whole number of at least 1 (a count where 0 would refuse or break everything).
    pub fn at_least_one(&mut self, node: &Node, what: &str) -> Option<u64> {
        let n = self.u64(node, what)?;
        if n == 0 {
            self.error(node.loc, format!("`{what}` must be at least 1"), None);
            return None;
        }
        Some(n)
    }

    /// Reads a duration longer than zero (a zero `timeout` would fail every call, a zero breaker
    /// window would never count a failure).
    pub fn positive_duration(&mut self, node: &Node, what: &str) -> Option<Duration> {
        let d = self.duration(node, what)?;
        if d.is_zero() {
            self.error(node.loc, format!("`{what}` must be longer than zero"), None);
            return None;
        }
        Some(d)
    }

    /// Reads `retries`: a whole number up to 10 (more would multiply a failing backend's load
    /// past any use).
    pub fn retries(&mut self, node: &Node) -> Option<u32> {
        let n = self.u64(node, "retries")?;
        if n > MAX_RETRIES {
            // The number is not shown: it may come from the environment.
            self.error(node.loc, format!("`retries` is at most {MAX_RETRIES}"), None);
            return None;
        }
        u32::try_from(n).ok()
    }

    /// Reads a duration: `250ms`, `2s`, `5m`, `1h`.
    pub fn duration(&mut self, node: &Node, what: &str) -> Option<Duration> {
        // A bare number has no unit to read it in (seconds? milliseconds?): say so, with the
        // number as written (never a value from the environment).
        if let NodeKind::Scalar {
            text,
            env: EnvUse::None,
            ..
        } = &node.kind
        {
            let t = text.trim();
            if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
                self.error(
                    node.loc,
                    format!(
                        "`{what}` must be a duration like `250ms`, `2s`, `5m` or `1h`, found the bare number `{t}`"
                    ),
                    Some(format!(
                        "a duration needs its unit: `{t}s` for seconds, `{t}ms` for milliseconds"
                    )),
                );
                return None;
            }
        }
        self.typed(
            node,
            what,
            "a duration like `250ms`, `2s`, `5m` or `1h`",
            parse_duration,
        )
    }

    /// Reads a size: `512KiB`, `1MiB`, or a number of bytes.
    pub fn size(&mut self, node: &Node, what: &str) -> Option<u64> {
        self.typed(node, what, "a size like `512KiB` or `1MiB`", parse_size)
    }

    /// Reads a list of strings (a single string is accepted as a list of one).
    pub fn strings(&mut self, node: &Node, what: &str) -> Option<Vec<String>> {
        match &node.kind {
            NodeKind::Seq(items) => {
                let mut out = Vec::new();
                for item in items {
                    out.push(self.string(item, what)?);
                }
                Some(out)
            }
            NodeKind::Scalar { .. } => self.string(node, what).map(|s| vec![s]),
            NodeKind::Map(_) => {
                self.error(node.loc, format!("`{what}` must be a list of strings"), None);
                None
            }
        }
    }

    /// Reads one of a fixed set of words.
    pub fn one_of<'w>(&mut self, node: &Node, what: &str, words: &[&'w str]) -> Option<&'w str> {
        let text = self.string(node, what)?;
        match words.iter().find(|w| **w == text) {
            Some(w) => Some(w),
            None => {
                let hint = did_you_mean(&text, words.iter().copied());
                self.error(
                    node.loc,
                    format!("`{what}` must be one of {}, found {}", words.join(" | "), shown(node)),
                    hint,
                );
                None
            }
        }
    }
}

/// True for a key written with nothing after it (`response:`).
pub fn is_empty_scalar(node: &Node) -> bool {
    matches!(&node.kind, NodeKind::Scalar { text, plain: true, .. } if text.is_empty())
}

/// Parses `250ms`, `2s`, `5m`, `1h` (also `0`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = text.split_at(split);
    let n: u64 = num.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        _ => None,
    }
}

/// Parses `512KiB`, `1MiB`, `1GiB`, `100B`, `10KB`, `1MB`, or a plain number of bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("2x"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_size("1MiB"), Some(1 << 20));
        assert_eq!(parse_size("32KiB"), Some(32 << 10));
        assert_eq!(parse_size("lots"), None);
    }
}
