//! Compile-time behaviour of the macros, checked with trybuild: every mistake in `ui/` fails
//! with the error in its `.stderr`, every shape in `pass/` compiles and runs.
//!
//! Re-bless after a deliberate change with `TRYBUILD=overwrite cargo test -p beluga-tests
//! --test compiletest`, and review every changed `.stderr` like code.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/stream_producer/*.rs");
    t.compile_fail("ui/derive_runnable/*.rs");
    t.pass("pass/*.rs");
}
