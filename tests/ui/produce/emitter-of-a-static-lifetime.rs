// A body that asks for an emitter of one particular lifetime is refused: the body must accept
// an emitter of any lifetime.
use beluga_core::stream::{self, Emitter};
use beluga_core::Context;

fn main() {
    let ctx = Context::new();
    let s = stream::produce(&ctx, async |e: Emitter<'static, u32>| {
        drop(e);
        Ok(())
    });
    drop(s);
}
