// The shape of async-stream issue #107: a producer of `&'static str` must not be able to emit a
// reference to a local that dies before the consumer reads it (the emitter is invariant in `T`).
use beluga_core::stream;
use beluga_core::{Context, EventResult};
use futures_util::Stream;

fn leak(ctx: &Context) -> impl Stream<Item = EventResult<&'static str>> {
    stream::produce(ctx, async |mut e| {
        let local = String::from("gone after this producer ends");
        e.emit(local.as_str()).await;
        Ok(())
    })
}

fn main() {
    drop(leak(&Context::new()));
}
