// Leaking the emitter (`Box::leak`) to get a `'static` reference to it does not work either:
// the leaked box would still hold an emitter of the body's lifetime.
use beluga_core::stream::{self, Emitter};
use beluga_core::Context;

fn keep(_: &'static mut Emitter<'static, u32>) {}

fn main() {
    let ctx = Context::new();
    let s = stream::produce(&ctx, async |e| {
        keep(Box::leak(Box::new(e)));
        Ok(())
    });
    drop(s);
}
