// A scoped thread may borrow the emitter mutably while the body waits for it, but no two
// threads may share it: `&Emitter` is not `Send`.
use beluga_core::stream;
use beluga_core::Context;

/// Runs `f` on a scoped thread of its own.
fn on_another_thread<F: FnOnce() + Send>(f: F) {
    std::thread::scope(|scope| {
        scope.spawn(f);
    });
}

fn main() {
    let ctx = Context::new();
    let s = stream::produce(&ctx, async |mut e| {
        e.emit(1_u32).await;
        let shared = &e;
        on_another_thread(move || drop(shared));
        Ok(())
    });
    drop(s);
}
