//! `$ref`s from an OpenAPI document into other local files (`./common.yaml#/components/schemas/
//! Money`, as documents split into several files write them), followed as bundlers such as
//! Redocly's do: each file referred to is read once and put into the document under
//! `x-facade-files`, and every reference to it, or inside it, becomes a local `#/…` pointer, so
//! the types pass resolves every `$ref` the same way. A reference inside a file is relative to
//! that file's folder. References by URL are not fetched (no network at load), and a file that
//! cannot be read leaves its references unfollowed; both are typed `JSON` and reported.

use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where the other files go in the bundled document.
const FILES_KEY: &str = "x-facade-files";

/// More files than any real document splits into: a bound on a chain of references.
const MAX_FILES: usize = 200;

/// What following the references of one document found.
#[derive(Debug, Default)]
pub struct Followed {
    /// Every other file read (for `watch: true`).
    pub files: Vec<PathBuf>,
    /// References left unfollowed, each with why (a URL, a file that cannot be read).
    pub unfollowed: Vec<(String, String)>,
}

/// Follows the references of `doc`, read from `path`, into other local files. `read` reads one
/// file into JSON (or says why it cannot).
pub fn follow_file_refs(
    doc: &mut Value,
    path: &Path,
    read: &mut dyn FnMut(&Path) -> Result<Value, String>,
) -> Followed {
    let mut bundler = Bundler {
        read,
        index: HashMap::new(),
        pending: Vec::new(),
        done: Vec::new(),
        followed: Followed::default(),
    };
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    bundler.rewrite(doc, &dir, "");
    // Files are read as their first reference is met, and their own references rewritten in turn.
    while let Some((i, mut file_doc, file_dir)) = bundler.pending.pop() {
        bundler.rewrite(&mut file_doc, &file_dir, &format!("/{FILES_KEY}/{i}"));
        bundler.done.push((i, file_doc));
    }
    if !bundler.done.is_empty() {
        bundler.done.sort_by_key(|(i, _)| *i);
        let files: Vec<Value> = bundler.done.into_iter().map(|(_, v)| v).collect();
        if let Value::Object(root) = doc {
            root.insert(FILES_KEY.to_string(), Value::Array(files));
        }
    }
    bundler.followed
}

struct Bundler<'r> {
    read: &'r mut dyn FnMut(&Path) -> Result<Value, String>,
    /// Each file read (canonical path) and its place under `x-facade-files`.
    index: HashMap<PathBuf, usize>,
    /// Files read whose references are still to be rewritten: place, document, folder.
    pending: Vec<(usize, Value, PathBuf)>,
    done: Vec<(usize, Value)>,
    followed: Followed,
}

impl Bundler<'_> {
    /// Rewrites every `$ref` below `v`, which belongs to a file in `dir` placed at the pointer
    /// `prefix` of the bundled document (`""` for the document itself).
    fn rewrite(&mut self, v: &mut Value, dir: &Path, prefix: &str) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    if let Some(new) = self.target(r, dir, prefix) {
                        m.insert("$ref".to_string(), Value::String(new));
                    }
                }
                for (k, child) in m.iter_mut() {
                    if k != "$ref" {
                        self.rewrite(child, dir, prefix);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.rewrite(i, dir, prefix)),
            _ => {}
        }
    }

    /// What a reference becomes: `None` leaves it as written.
    fn target(&mut self, r: &str, dir: &Path, prefix: &str) -> Option<String> {
        if let Some(fragment) = r.strip_prefix('#') {
            return (!prefix.is_empty()).then(|| format!("#{prefix}{fragment}"));
        }
        if r.contains("://") {
            self.followed
                .unfollowed
                .push((r.to_string(), "references by URL are not fetched".to_string()));
            return None;
        }
        let (file, fragment) = r.split_once('#').unwrap_or((r, ""));
        let relative: PathBuf = Path::new(file)
            .components()
            .filter(|c| *c != std::path::Component::CurDir)
            .collect();
        let place = match self.place_of(&dir.join(relative)) {
            Ok(place) => place,
            Err(why) => {
                self.followed.unfollowed.push((r.to_string(), why));
                return None;
            }
        };
        Some(format!("#/{FILES_KEY}/{place}{fragment}"))
    }

    /// The place of a file under `x-facade-files`, reading it the first time.
    fn place_of(&mut self, path: &Path) -> Result<usize, String> {
        let canonical = std::fs::canonicalize(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        if let Some(&i) = self.index.get(&canonical) {
            return Ok(i);
        }
        if self.index.len() >= MAX_FILES {
            return Err(format!("more than {MAX_FILES} files are referred to"));
        }
        let doc = (self.read)(&canonical)?;
        let i = self.index.len();
        self.index.insert(canonical.clone(), i);
        let dir = canonical.parent().map(Path::to_path_buf).unwrap_or_default();
        self.pending.push((i, doc, dir));
        self.followed.files.push(canonical);
        Ok(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_into_other_files_become_local_pointers_each_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let files: HashMap<&str, Value> = HashMap::from([
            (
                "common.yaml",
                json!({"Money": {"type": "object", "properties": {"currency": {"$ref": "#/Currency"}, "rate": {"$ref": "sub/rate.json"}}}, "Currency": {"type": "string"}}),
            ),
            (
                "sub/rate.json",
                json!({"type": "number", "x": {"$ref": "../common.yaml#/Currency"}}),
            ),
        ]);
        std::fs::create_dir_all(dir.path().join("sub")).unwrap();
        for name in files.keys() {
            std::fs::write(dir.path().join(name), "{}").unwrap();
        }
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let mut read = |p: &Path| -> Result<Value, String> {
            let rel = p.strip_prefix(&root).unwrap().to_string_lossy().into_owned();
            Ok(files[rel.as_str()].clone())
        };
        let mut doc = json!({
            "paths": {"/a": {"$ref": "#/components/x"}},
            "components": {"x": {"$ref": "./common.yaml#/Money"}, "y": {"$ref": "common.yaml#/Currency"},
                           "z": {"$ref": "missing.yaml#/A"}, "u": {"$ref": "https://example.com/s.yaml"}}
        });
        let followed = follow_file_refs(&mut doc, &dir.path().join("api.yaml"), &mut read);
        assert_eq!(followed.files.len(), 2, "each file read once");
        assert_eq!(doc["paths"]["/a"]["$ref"], "#/components/x", "local references stay");
        assert_eq!(doc["components"]["x"]["$ref"], "#/x-facade-files/0/Money");
        assert_eq!(doc["components"]["y"]["$ref"], "#/x-facade-files/0/Currency");
        let common = &doc["x-facade-files"][0];
        assert_eq!(
            common["Money"]["properties"]["currency"]["$ref"], "#/x-facade-files/0/Currency",
            "a file's own local reference points into its place"
        );
        assert_eq!(common["Money"]["properties"]["rate"]["$ref"], "#/x-facade-files/1");
        assert_eq!(doc["x-facade-files"][1]["x"]["$ref"], "#/x-facade-files/0/Currency");
        // Every rewritten pointer resolves.
        for p in [
            "/x-facade-files/0/Money",
            "/x-facade-files/0/Currency",
            "/x-facade-files/1",
        ] {
            assert!(doc.pointer(p).is_some(), "{p}");
        }
        let mut unfollowed: Vec<&str> = followed.unfollowed.iter().map(|(r, _)| r.as_str()).collect();
        unfollowed.sort();
        assert_eq!(unfollowed, ["https://example.com/s.yaml", "missing.yaml#/A"]);
        assert_eq!(doc["components"]["z"]["$ref"], "missing.yaml#/A");
    }
}
