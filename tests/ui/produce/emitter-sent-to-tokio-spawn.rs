// A spawned task outlives the body: the emitter cannot be moved into one.
use beluga_core::stream;
use beluga_core::Context;

fn main() {
    let ctx = Context::new();
    let s = stream::produce(&ctx, async |mut e| {
        tokio::spawn(async move {
            e.emit(1_u32).await;
        });
        Ok(())
    });
    drop(s);
}
