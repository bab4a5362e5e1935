//! How many fields a document selects once its fragments are spread, counted without spreading
//! them, and the first fragment that is spread inside itself.
//!
//! Why: a few kilobytes can spell billions of fields. Twenty-six fragments that each spread the
//! next one twice select 2^26 fields, and async-graphql's complexity check spreads every one of
//! them before it refuses the operation: 11 s of CPU for one 1.5 KiB request, minutes at 29
//! levels. Here each fragment is counted once and its count reused wherever it is spread, so the
//! count costs one pass over the document, and a document above the limit is refused before
//! async-graphql sees it. The same pass finds fragment cycles, which async-graphql reports only
//! as nesting deeper than 32 levels; they get graphql-js's words instead.

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, Pos, ServerError};
use std::collections::HashMap;

/// Fragments spread deeper than this are not counted: async-graphql refuses a document nested
/// deeper than 32 levels, fragment spreads included, before it validates anything.
const MAX_DEPTH: usize = 64;

/// What one pass over a document found.
pub struct Size {
    /// The fields every operation selects, fragments spread (saturating). A fragment spread
    /// inside itself counts once.
    pub fields: usize,
    /// The first fragment spread inside itself, as graphql-js's `NoFragmentCyclesRule` words it.
    pub cycle: Option<ServerError>,
}

/// Counts the fields of every operation of `doc` and looks for fragment cycles.
pub fn measure(doc: &ExecutableDocument) -> Size {
    let mut counter = Counter {
        doc,
        fragments: HashMap::new(),
        spreads: Vec::new(),
        cycle: None,
    };
    let fields = doc
        .operations
        .iter()
        .map(|(_, op)| counter.set(&op.node.selection_set.node, 0))
        .fold(0, usize::saturating_add);
    Size {
        fields,
        cycle: counter.cycle,
    }
}

struct Counter<'d> {
    doc: &'d ExecutableDocument,
    /// Each fragment's count once known; `None` while it is being counted (a cycle).
    fragments: HashMap<&'d Name, Option<usize>>,
    /// The spreads of the fragments being counted, outermost first: (fragment, spread's place).
    spreads: Vec<(&'d Name, Pos)>,
    cycle: Option<ServerError>,
}

impl<'d> Counter<'d> {
    fn set(&mut self, set: &'d SelectionSet, depth: usize) -> usize {
        if depth > MAX_DEPTH {
            return 0;
        }
        let mut total = 0usize;
        for item in &set.items {
            let n = match &item.node {
                Selection::Field(f) => 1usize.saturating_add(self.set(&f.node.selection_set.node, depth + 1)),
                Selection::InlineFragment(i) => self.set(&i.node.selection_set.node, depth + 1),
                Selection::FragmentSpread(s) => self.fragment(&s.node.fragment_name.node, s.pos, depth + 1),
            };
            total = total.saturating_add(n);
        }
        total
    }

    fn fragment(&mut self, name: &'d Name, at: Pos, depth: usize) -> usize {
        match self.fragments.get(name) {
            Some(Some(n)) => return *n,
            Some(None) => {
                self.report_cycle(name, at);
                return 0;
            }
            None => {}
        }
        let Some(fragment) = self.doc.fragments.get(name) else {
            // An unknown fragment: validation says so.
            return 0;
        };
        self.fragments.insert(name, None);
        self.spreads.push((name, at));
        let n = self.set(&fragment.node.selection_set.node, depth);
        self.spreads.pop();
        self.fragments.insert(name, Some(n));
        n
    }

    /// `name`, being counted, is spread again at `at`: the spreads from its own (exclusive) to
    /// this one are the cycle.
    fn report_cycle(&mut self, name: &Name, at: Pos) {
        if self.cycle.is_some() {
            return;
        }
        let Some(start) = self.spreads.iter().position(|(n, _)| *n == name) else {
            return;
        };
        let inner = &self.spreads[start + 1..];
        let via: Vec<String> = inner.iter().map(|(n, _)| format!("\"{n}\"")).collect();
        let message = if via.is_empty() {
            format!("Cannot spread fragment \"{name}\" within itself.")
        } else {
            format!(
                "Cannot spread fragment \"{name}\" within itself via {}.",
                via.join(", ")
            )
        };
        let mut error = ServerError::new(message, None);
        error.locations = inner.iter().map(|(_, p)| *p).chain([at]).collect();
        self.cycle = Some(error);
    }
}

#[cfg(test)]
mod tests {
    use super::measure;

    fn count(doc: &str) -> usize {
        measure(&async_graphql::parser::parse_query(doc).expect("parses")).fields
    }

    fn cycle(doc: &str) -> Option<(String, Vec<(usize, usize)>)> {
        measure(&async_graphql::parser::parse_query(doc).expect("parses"))
            .cycle
            .map(|e| (e.message, e.locations.iter().map(|p| (p.line, p.column)).collect()))
    }

    #[test]
    fn fragment_cycles_are_named_as_graphql_js_names_them() {
        assert_eq!(
            cycle("{ ...A } fragment A on Q { x ...B } fragment B on Q { y ...A }"),
            Some((
                "Cannot spread fragment \"A\" within itself via \"B\".".to_string(),
                vec![(1, 30), (1, 57)]
            ))
        );
        assert_eq!(
            cycle("{ ...A }\nfragment A on Q { ...A }"),
            Some(("Cannot spread fragment \"A\" within itself.".to_string(), vec![(2, 19)]))
        );
        assert_eq!(
            cycle("{ ...A ...A } fragment A on Q { ...B ...B } fragment B on Q { x }"),
            None
        );
    }

    #[test]
    fn fields_are_counted_with_their_fragments_spread() {
        assert_eq!(count("{ a { b c } }"), 3);
        assert_eq!(count("{ a { ...F ...F } } fragment F on A { b c }"), 5);
        assert_eq!(count("{ a { ... on A { b } } }"), 2);
        // A cycle counts once, and ends.
        assert_eq!(
            count("{ ...A } fragment A on Q { x ...B } fragment B on Q { y ...A }"),
            2
        );
        // Forty fragments, each spreading the next twice: 2^40 fields, counted in one pass.
        let mut bomb = String::from("{ ...F0 }");
        for i in 0..40 {
            bomb.push_str(&format!(" fragment F{i} on Q {{ ...F{n} ...F{n} }}", n = i + 1));
        }
        bomb.push_str(" fragment F40 on Q { x }");
        assert_eq!(count(&bomb), 1 << 40);
    }
}
