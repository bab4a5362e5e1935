//! How many fields a document selects once its fragments are spread, counted without spreading
//! them.
//!
//! Why: a few kilobytes can spell billions of fields. Twenty-six fragments that each spread the
//! next one twice select 2^26 fields, and async-graphql's complexity check spreads every one of
//! them before it refuses the operation: 11 s of CPU for one 1.5 KiB request, minutes at 29
//! levels. Here each fragment is counted once and its count reused wherever it is spread, so the
//! count costs one pass over the document, and a document above the limit is refused before
//! async-graphql sees it.

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::Name;
use std::collections::HashMap;

/// Fragments spread deeper than this are not counted: async-graphql refuses a document nested
/// deeper than 32 levels, fragment spreads included, before it validates anything.
const MAX_DEPTH: usize = 64;

/// The fields every operation of `doc` selects, fragments spread (saturating). A fragment that
/// is spread inside itself counts once (validation refuses the cycle).
pub fn selected_fields(doc: &ExecutableDocument) -> usize {
    let mut counter = Counter {
        doc,
        fragments: HashMap::new(),
    };
    doc.operations
        .iter()
        .map(|(_, op)| counter.set(&op.node.selection_set.node, 0))
        .fold(0, usize::saturating_add)
}

struct Counter<'d> {
    doc: &'d ExecutableDocument,
    /// Each fragment's count once known; `None` while it is being counted (a cycle).
    fragments: HashMap<&'d Name, Option<usize>>,
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
                Selection::FragmentSpread(s) => self.fragment(&s.node.fragment_name.node, depth + 1),
            };
            total = total.saturating_add(n);
        }
        total
    }

    fn fragment(&mut self, name: &'d Name, depth: usize) -> usize {
        match self.fragments.get(name) {
            Some(Some(n)) => return *n,
            // Spread inside itself.
            Some(None) => return 0,
            None => {}
        }
        let Some(fragment) = self.doc.fragments.get(name) else {
            // An unknown fragment: validation says so.
            return 0;
        };
        self.fragments.insert(name, None);
        let n = self.set(&fragment.node.selection_set.node, depth);
        self.fragments.insert(name, Some(n));
        n
    }
}

#[cfg(test)]
mod tests {
    use super::selected_fields;

    fn count(doc: &str) -> usize {
        selected_fields(&async_graphql::parser::parse_query(doc).expect("parses"))
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
