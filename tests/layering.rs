//! The layering of `beluga-core`, checked on its source: every module imports others by module
//! path (`crate::event::Event`, not the root re-export `crate::Event`), and only from the layers
//! below it (or its own), so the imports can be read as the architecture and have no cycle.
//!
//! The order is the one the crate docs give ("Layers"), bottom first.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The top-level modules of `beluga-core/src`, bottom layer first. A module may import from
/// modules before it in this list, never from modules after it.
const LAYERS: &[&str] = &[
    "error",
    "event",
    "context",
    "flow",
    "trace",
    "stream_ext",
    "checks",
    "__private",
    "stream",
    "runnable",
    "from_go",
    "lib",
];

fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read beluga-core/src") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            source_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to: `event.rs` and `event/meta.rs` are both `event`.
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).expect("file under src");
    let first = relative
        .components()
        .next()
        .expect("a path component")
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    first.trim_end_matches(".rs").to_owned()
}

/// The source without comments (doc comments included: their links are not imports).
fn code_only(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first path segment after every `crate::` in `code`; for `crate::{a::B, c}`, `a` and `c`.
fn crate_references(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let preceded_by_ident = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$');
        rest = &rest[at + "crate::".len()..];
        if preceded_by_ident {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut start = 0;
            let mut items = Vec::new();
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 1 => {
                        items.push(&group[start..i]);
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 1 => {
                        items.push(&group[start..i]);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            for item in items {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.push(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.push(name);
        }
    }
    found
}

fn violations() -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../beluga-core/src");
    let mut files = Vec::new();
    source_files(&src, &mut files);
    files.sort();
    let rank = |module: &str| LAYERS.iter().position(|m| *m == module);
    let mut problems = BTreeSet::new();
    for file in &files {
        let module = module_of(&src, file);
        let Some(own) = rank(&module) else {
            problems.insert(format!(
                "{}: module `{module}` is not in the layer list of tests/layering.rs",
                file.display()
            ));
            continue;
        };
        let code = code_only(&fs::read_to_string(file).expect("read source file"));
        for name in crate_references(&code) {
            match rank(&name) {
                Some(theirs) if theirs > own => {
                    problems.insert(format!(
                        "{}: `{module}` imports `crate::{name}`, a higher layer",
                        file.display()
                    ));
                }
                Some(_) => {}
                None if name == "self" => {}
                None => {
                    problems.insert(format!(
                        "{}: `crate::{name}` goes through the crate root: import it by module path",
                        file.display()
                    ));
                }
            }
        }
    }
    problems.into_iter().collect()
}

#[test]
fn every_import_goes_down_the_layers_by_module_path() {
    let problems = violations();
    assert!(
        problems.is_empty(),
        "layering violations:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_check_sees_root_imports_and_upward_imports() {
    assert_eq!(
        crate_references("use crate::{event::Event, Error};\nlet x = crate::stream::iter;"),
        ["event", "Error", "stream"]
    );
    assert_eq!(
        crate_references("use beluga_crate::x; $crate::y;"),
        Vec::<String>::new()
    );
    assert_eq!(
        crate_references(&code_only("let a = 1; // crate::z")),
        Vec::<String>::new()
    );
}
