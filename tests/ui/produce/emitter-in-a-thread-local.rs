// A thread-local outlives the body: the emitter cannot be stored in one.
use std::cell::RefCell;

use beluga_core::stream::{self, Emitter};
use beluga_core::Context;

thread_local! {
    static KEPT: RefCell<Option<Emitter<'static, u32>>> = const { RefCell::new(None) };
}

fn main() {
    let ctx = Context::new();
    let s = stream::produce(&ctx, async |e| {
        KEPT.with(|kept| *kept.borrow_mut() = Some(e));
        Ok(())
    });
    drop(s);
}
