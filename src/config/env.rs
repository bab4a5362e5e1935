//! `${NAME}` and `${NAME:-default}` expansion in configuration values (SPEC §1).
//!
//! The environment is injected (`Env`), never read from deep in the code, so tests can give their own.

use std::collections::HashMap;

/// Where variables come from.
pub trait Env: Send + Sync {
    /// The value of a variable, or `None` when it is unset.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// A fixed set of variables, for tests.
impl Env for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// The result of expanding one value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expanded {
    /// The text after expansion.
    pub text: String,
    /// When the whole value was exactly one substitution: the variable's name. Such a value takes
    /// the type its key expects, even when it was quoted.
    pub single_var: Option<String>,
    /// True when any part of the text came from the environment or a default: such text is never
    /// echoed in an error message.
    pub from_env: bool,
    /// Variables that were unset and replaced by their written default.
    pub defaulted: Vec<String>,
}

/// An unset variable without a default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsetVar(pub String);

/// Expands `text`. `$${` is a literal `${`; a `$` not followed by `{NAME}` or `{NAME:-…}` stays as written.
pub fn expand(text: &str, env: &dyn Env) -> Result<Expanded, UnsetVar> {
    if !text.contains('$') {
        return Ok(Expanded {
            text: text.to_string(),
            ..Default::default()
        });
    }
    let mut out = Expanded::default();
    let mut rest = text;
    let mut substitutions = 0;
    let mut literal_chars = false;
    while let Some(i) = rest.find('$') {
        if i > 0 {
            literal_chars = true;
        }
        out.text.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.text.push_str("${");
            literal_chars = true;
            rest = tail;
            continue;
        }
        if let Some((name, default, len)) = substitution(after) {
            substitutions += 1;
            out.from_env = true;
            match env.var(name) {
                Some(v) => out.text.push_str(&v),
                None => match default {
                    Some(d) => {
                        out.text.push_str(d);
                        out.defaulted.push(name.to_string());
                    }
                    None => return Err(UnsetVar(name.to_string())),
                },
            }
            if substitutions == 1 && !literal_chars && len == after.len() && i == 0 {
                out.single_var = Some(name.to_string());
            }
            rest = &after[len..];
        } else {
            out.text.push('$');
            literal_chars = true;
            rest = &after[1..];
        }
    }
    if !rest.is_empty() {
        literal_chars = true;
    }
    out.text.push_str(rest);
    if substitutions != 1 || literal_chars {
        out.single_var = None;
    }
    Ok(out)
}

/// Recognises `${NAME}` or `${NAME:-default}` at the start of `s`: (name, default, length).
fn substitution(s: &str) -> Option<(&str, Option<&str>, usize)> {
    let body = s.strip_prefix("${")?;
    let bytes = body.as_bytes();
    let first = *bytes.first()?;
    if !(first.is_ascii_alphabetic() || first == b'_') {
        return None;
    }
    let name_len = bytes
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
        .unwrap_or(bytes.len());
    let name = &body[..name_len];
    let tail = &body[name_len..];
    if tail.starts_with('}') {
        return Some((name, None, 2 + name_len + 1));
    }
    let default_part = tail.strip_prefix(":-")?;
    let end = default_part.find('}')?;
    Some((name, Some(&default_part[..end]), 2 + name_len + 2 + end + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> HashMap<String, String> {
        HashMap::from([("A".to_string(), "x".to_string()), ("N".to_string(), "3".to_string())])
    }

    #[test]
    fn expands_and_keeps_other_dollars() {
        let e = expand("http://${A}:${P:-80}/$x/$${A}/${1}", &env()).unwrap();
        assert_eq!(e.text, "http://x:80/$x/${A}/${1}");
        assert!(e.single_var.is_none());
        assert_eq!(e.defaulted, vec!["P".to_string()]);
    }

    #[test]
    fn single_substitution_is_marked() {
        let e = expand("${N}", &env()).unwrap();
        assert_eq!(e.single_var.as_deref(), Some("N"));
        let e = expand("${R:-1}", &env()).unwrap();
        assert_eq!((e.text.as_str(), e.single_var.as_deref()), ("1", Some("R")));
        assert!(expand("a${N}", &env()).unwrap().single_var.is_none());
    }

    #[test]
    fn unset_without_default_is_an_error() {
        assert_eq!(expand("${MISSING}", &env()), Err(UnsetVar("MISSING".into())));
    }

    #[test]
    fn no_dollar_is_untouched() {
        assert_eq!(expand("plain", &env()).unwrap().text, "plain");
    }
}
