// The emitter cannot be kept in a variable outside the body: the body must work for an emitter
// of any lifetime, so it cannot store one where a longer lifetime is needed.
use beluga_core::stream::{self, Emitter};
use beluga_core::Context;

fn main() {
    let ctx = Context::new();
    let mut kept: Option<Emitter<'_, u32>> = None;
    let s = stream::produce(&ctx, async |e| {
        kept = Some(e);
        Ok(())
    });
    drop(s);
    drop(kept);
}
