//! Located diagnostics: every problem found while loading or checking the configuration.
//!
//! Owns the `file:line:col: message` format and the did-you-mean hints. Knows nothing of YAML
//! parsing or of what the keys mean.

use std::fmt;
use std::sync::Arc;

/// Whether a diagnostic stops the configuration from loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The configuration is refused.
    Error,
    /// Reported, but the configuration still loads.
    Warning,
}

/// A position in a source file, 1-based line and column, as editors show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Loc {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
}

/// One problem, with the file and position it belongs to, so users can jump straight to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The file as the user named it, or relative to the working directory.
    pub file: Arc<str>,
    /// Where in the file.
    pub loc: Loc,
    /// What is wrong, for a person.
    pub message: String,
    /// How to fix it, when we can tell.
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.loc.line, self.loc.col)?;
        if self.severity == Severity::Warning {
            write!(f, "warning: ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

/// A list of diagnostics that is collected over a whole run, so that every error is reported at once.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Adds an error.
    pub fn error(&mut self, file: &Arc<str>, loc: Loc, message: impl Into<String>, hint: Option<String>) {
        self.items.push(Diagnostic {
            severity: Severity::Error,
            file: file.clone(),
            loc,
            message: message.into(),
            hint,
        });
    }

    /// Adds a warning.
    pub fn warning(&mut self, file: &Arc<str>, loc: Loc, message: impl Into<String>) {
        self.items.push(Diagnostic {
            severity: Severity::Warning,
            file: file.clone(),
            loc,
            message: message.into(),
            hint: None,
        });
    }

    /// Appends all of another list.
    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    /// True when at least one error (not warning) was reported.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    /// All diagnostics, in the order they were found.
    pub fn items(&self) -> &[Diagnostic] {
        &self.items
    }

    /// All diagnostics sorted by file (in order of first appearance), line and column.
    pub fn sorted(&self) -> Vec<&Diagnostic> {
        let mut files: Vec<&str> = Vec::new();
        for d in &self.items {
            if !files.contains(&d.file.as_ref()) {
                files.push(&d.file);
            }
        }
        let mut out: Vec<&Diagnostic> = self.items.iter().collect();
        out.sort_by_key(|d| (files.iter().position(|f| *f == d.file.as_ref()), d.loc.line, d.loc.col));
        out
    }

    /// The errors only.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.severity == Severity::Error)
    }

    /// The warnings only.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.severity == Severity::Warning)
    }
}

/// "did you mean `x`?" for the closest candidate, when one is close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    closest(word, candidates).map(|c| format!("did you mean `{c}`?"))
}

/// The candidate closest to `word`, when it is close enough to be a likely typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        let score = strsim::jaro_winkler(&word.to_ascii_lowercase(), &c.to_ascii_lowercase());
        if score >= 0.8 && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_close_words_only() {
        assert_eq!(closest("timout", ["timeout", "retries"]), Some("timeout"));
        assert_eq!(closest("fristName", ["firstName", "lastName"]), Some("firstName"));
        assert_eq!(closest("zzz", ["timeout", "retries"]), None);
    }
}
