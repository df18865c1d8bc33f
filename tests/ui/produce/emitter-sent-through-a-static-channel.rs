// A channel of `'static` emitters would let the emitter outlive the body.
use beluga_core::stream::{self, Emitter};
use beluga_core::Context;

fn main() {
    let ctx = Context::new();
    let (tx, rx) = std::sync::mpsc::channel::<Emitter<'static, u32>>();
    let s = stream::produce(&ctx, async move |e| {
        tx.send(e).unwrap();
        Ok(())
    });
    drop(s);
    drop(rx.recv());
}
