// Emitting a value of the wrong type points at the value and says what a producer of `u32`
// events accepts.
use beluga_core::stream;
use beluga_core::{Context, EventResult};
use futures_util::Stream;

fn numbers(ctx: &Context) -> impl Stream<Item = EventResult<u32>> {
    stream::produce(ctx, async |mut e| {
        e.emit(1_u32).await;
        e.emit("two").await;
        Ok(())
    })
}

fn main() {
    drop(numbers(&Context::new()));
}
