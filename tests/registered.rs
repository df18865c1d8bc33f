//! Every test file of this package is registered in `Cargo.toml`.
//!
//! The package keeps its tests beside `Cargo.toml` (with `ui/` and `pass/` for trybuild), so
//! cargo cannot discover them and each needs a `[[test]]` entry: a file without one would
//! silently never run. This test fails instead.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

/// The files in this directory that are not test targets.
const NOT_TESTS: &[&str] = &["lib.rs"];

#[test]
fn every_test_file_has_a_test_target() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = fs::read_to_string(dir.join("Cargo.toml")).expect("read tests/Cargo.toml");
    let registered: BTreeSet<String> = manifest
        .lines()
        .filter_map(|line| line.trim().strip_prefix("path = \""))
        .filter_map(|rest| rest.strip_suffix('"'))
        .map(str::to_owned)
        .collect();
    let mut missing = Vec::new();
    for entry in fs::read_dir(dir).expect("read tests/") {
        let name = entry.expect("directory entry").file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".rs") && !NOT_TESTS.contains(&&*name) && !registered.contains(&*name) {
            missing.push(name.into_owned());
        }
    }
    missing.sort();
    assert!(
        missing.is_empty(),
        "test files without a [[test]] entry in tests/Cargo.toml (they would never run): {missing:?}"
    );
}
