//! A YAML tree that remembers where every key and value came from.
//!
//! Built from `saphyr-parser` events, so that every diagnostic can point at a line and column.
//! Scalars keep their text and style: their type is decided by the reader that knows what the key
//! expects, after environment expansion (SPEC §1), following the YAML 1.2 core schema.

use super::diag::Loc;
use saphyr_parser::{Event, Parser, ScalarStyle};
use std::collections::HashMap;

/// One node of the tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the node starts (for a quoted scalar: the opening quote).
    pub loc: Loc,
    /// What it holds.
    pub kind: NodeKind,
}

/// What a node holds.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// A scalar: its text, whether it was written plain (unquoted, not a block scalar) and whether
    /// environment expansion put text into it.
    Scalar { text: String, plain: bool, env: EnvUse },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in the order written.
    Map(Vec<(Node, Node)>),
}

/// Whether a scalar's text came (partly) from the environment, which decides what may be echoed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum EnvUse {
    /// Written in the file.
    #[default]
    None,
    /// At least one variable was substituted from the environment.
    Set,
    /// Only written defaults were used (`${X:-default}` with `X` unset).
    Defaulted,
    /// The whole value is one substitution: messages name the variable, never its value.
    Single {
        /// The variable.
        name: String,
        /// True when it was unset and its written default was used.
        defaulted: bool,
    },
    /// Expansion failed (an unset variable without a default); already reported.
    Failed,
}

impl EnvUse {
    /// True when the text came from a written default rather than the environment.
    pub fn is_default(&self) -> bool {
        matches!(self, EnvUse::Defaulted | EnvUse::Single { defaulted: true, .. })
    }
}

/// A scalar read under the YAML 1.2 core schema.
#[derive(Debug, Clone, PartialEq)]
pub enum CoreScalar {
    /// `null`, `~` or nothing.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// Anything else.
    Str(String),
}

/// Resolves a plain scalar's text under the YAML 1.2 core schema (only `true`/`false` are booleans).
pub fn resolve_plain(text: &str) -> CoreScalar {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return CoreScalar::Null,
        "true" | "True" | "TRUE" => return CoreScalar::Bool(true),
        "false" | "False" | "FALSE" => return CoreScalar::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return CoreScalar::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return CoreScalar::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return CoreScalar::Float(f64::NAN),
        _ => {}
    }
    if let Some(hex) = text.strip_prefix("0x") {
        if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            if let Ok(i) = i64::from_str_radix(hex, 16) {
                return CoreScalar::Int(i);
            }
        }
    }
    if let Some(oct) = text.strip_prefix("0o") {
        if !oct.is_empty() && oct.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            if let Ok(i) = i64::from_str_radix(oct, 8) {
                return CoreScalar::Int(i);
            }
        }
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = text.parse::<i64>() {
            return CoreScalar::Int(i);
        }
    }
    if is_core_float(digits) {
        if let Ok(f) = text.parse::<f64>() {
            return CoreScalar::Float(f);
        }
    }
    CoreScalar::Str(text.to_string())
}

fn is_core_float(s: &str) -> bool {
    // [0-9]* ( \. [0-9]* )? ( [eE] [-+]? [0-9]+ )?  with at least one digit before the exponent
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (mantissa, None),
    };
    let all_digits = |x: &str| x.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int) || !frac.is_none_or(all_digits) {
        return false;
    }
    if int.is_empty() && frac.is_none_or(|f| f.is_empty()) {
        return false;
    }
    if frac.is_none() && exp.is_none() {
        return false;
    }
    match exp {
        None => true,
        Some(e) => {
            let e = e.strip_prefix(['-', '+']).unwrap_or(e);
            !e.is_empty() && all_digits(e)
        }
    }
}

/// A YAML syntax error with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    /// Where the parser stopped.
    pub loc: Loc,
    /// What it said.
    pub message: String,
}

/// Parses one YAML document into a located tree. An empty document gives `None`.
pub fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    let mut builder = Builder::default();
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| SyntaxError {
            loc: Loc {
                line: e.marker().line() as u32,
                col: e.marker().col() as u32 + 1,
            },
            message: e.info().to_string(),
        })?;
        let loc = Loc {
            line: span.start.line() as u32,
            col: span.start.col() as u32 + 1,
        };
        builder.event(event, loc)?;
    }
    Ok(builder.root)
}

enum Open {
    Seq(Loc, usize, Vec<Node>),
    Map(Loc, usize, Vec<(Node, Node)>, Option<Node>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Open>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    documents: usize,
}

impl Builder {
    fn event(&mut self, event: Event<'_>, loc: Loc) -> Result<(), SyntaxError> {
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(SyntaxError {
                        loc,
                        message: "only one YAML document is allowed per file".into(),
                    });
                }
            }
            Event::Scalar(text, style, anchor, _tag) => {
                let node = Node {
                    loc,
                    kind: NodeKind::Scalar {
                        text: text.into_owned(),
                        plain: style == ScalarStyle::Plain,
                        env: EnvUse::None,
                    },
                };
                self.finish(node, anchor);
            }
            Event::Alias(id) => match self.anchors.get(&id) {
                Some(node) => {
                    let mut node = node.clone();
                    node.loc = loc;
                    self.finish(node, 0);
                }
                None => {
                    return Err(SyntaxError {
                        loc,
                        message: "unknown alias".into(),
                    })
                }
            },
            Event::SequenceStart(anchor, _) => self.stack.push(Open::Seq(loc, anchor, Vec::new())),
            Event::MappingStart(anchor, _) => self.stack.push(Open::Map(loc, anchor, Vec::new(), None)),
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Open::Seq(loc, anchor, items)) => (
                        Node {
                            loc,
                            kind: NodeKind::Seq(items),
                        },
                        anchor,
                    ),
                    Some(Open::Map(loc, anchor, items, _)) => (
                        Node {
                            loc,
                            kind: NodeKind::Map(items),
                        },
                        anchor,
                    ),
                    None => return Ok(()),
                };
                self.finish(node, anchor);
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(&mut self, node: Node, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Open::Seq(_, _, items)) => items.push(node),
            Some(Open::Map(_, _, items, pending)) => match pending.take() {
                None => *pending = Some(node),
                Some(key) => items.push((key, node)),
            },
        }
    }
}

impl Node {
    /// The mapping entries, if this is a mapping.
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            NodeKind::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The text of a scalar.
    pub fn as_scalar(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// A short name for the node's kind, for messages.
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            // An empty value (`a:` with nothing after it): what a lost indentation leaves.
            NodeKind::Scalar { text, plain: true, .. } if matches!(resolve_plain(text), CoreScalar::Null) => {
                "nothing (an empty value)"
            }
            NodeKind::Scalar { .. } => "a scalar",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }

    /// Converts to JSON without any expansion, as OpenAPI documents are read (core schema).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            NodeKind::Scalar { text, plain: true, .. } => match resolve_plain(text) {
                CoreScalar::Null => Value::Null,
                CoreScalar::Bool(b) => Value::Bool(b),
                CoreScalar::Int(i) => Value::from(i),
                CoreScalar::Float(f) => serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .unwrap_or(Value::Null),
                CoreScalar::Str(s) => Value::String(s),
            },
            NodeKind::Scalar { text, plain: false, .. } => Value::String(text.clone()),
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeKind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.as_scalar().unwrap_or_default().to_string(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_schema() {
        assert_eq!(resolve_plain("NO"), CoreScalar::Str("NO".into()));
        assert_eq!(resolve_plain("yes"), CoreScalar::Str("yes".into()));
        assert_eq!(resolve_plain("true"), CoreScalar::Bool(true));
        assert_eq!(resolve_plain("12"), CoreScalar::Int(12));
        assert_eq!(resolve_plain("-1.5"), CoreScalar::Float(-1.5));
        assert_eq!(resolve_plain("1e3"), CoreScalar::Float(1000.0));
        assert_eq!(resolve_plain("~"), CoreScalar::Null);
        assert_eq!(resolve_plain("1.2.3"), CoreScalar::Str("1.2.3".into()));
        assert_eq!(resolve_plain("2s"), CoreScalar::Str("2s".into()));
    }

    #[test]
    fn locations_are_one_based() {
        let root = parse("a: 1\nb:\n  c: \"x\"\n").unwrap().unwrap();
        let map = root.as_map().unwrap();
        assert_eq!(map[1].0.loc, Loc { line: 2, col: 1 });
        let inner = map[1].1.as_map().unwrap();
        assert_eq!(inner[0].1.loc, Loc { line: 3, col: 6 });
    }

    #[test]
    fn anchors_and_aliases() {
        let root = parse("a: &x {k: 1}\nb: *x\n").unwrap().unwrap();
        let map = root.as_map().unwrap();
        assert_eq!(map[0].1.kind, map[1].1.kind);
    }
}
