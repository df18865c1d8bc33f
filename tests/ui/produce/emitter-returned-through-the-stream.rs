// An inner producer's emitter cannot be sent out through the outer stream: the outer stream's
// item type would have to name the inner emitter's lifetime, which belongs to the inner body.
use beluga_core::stream;
use beluga_core::{Context, EventStreamExt};

fn main() {
    let ctx = Context::new();
    let outer = stream::produce(&ctx, async |mut outer| {
        let inner = stream::produce::<u32, _>(&ctx, async |inner| {
            outer.emit(inner).await;
            Ok(())
        });
        let _ = inner.collect_events().await;
        Ok(())
    });
    drop(outer);
}
