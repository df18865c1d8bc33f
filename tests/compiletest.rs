//! Compile-time behaviour of the macros and of `stream::produce`, checked with trybuild: every
//! mistake in `ui/` (for `produce`: every way out of the body for its emitter) fails with the
//! error in its `.stderr`, every shape in `pass/` compiles and runs.
//!
//! Re-bless after a deliberate change with `TRYBUILD=overwrite cargo test -p beluga-tests
//! --test compiletest`, and review every changed `.stderr` like code.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/stream_producer/*.rs");
    t.compile_fail("ui/derive_runnable/*.rs");
    t.compile_fail("ui/produce/*.rs");
    t.pass("pass/*.rs");
}
