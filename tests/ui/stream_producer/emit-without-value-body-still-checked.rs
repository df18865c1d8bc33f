// After the macro's own error, the body is still type-checked: its independent mistake is
// reported too (and the IDE keeps hover and completion in it).
use beluga_core::{stream_producer, Context, EventResult};
use futures_util::Stream;

#[stream_producer]
fn count(ctx: Context) -> impl Stream<Item = EventResult<u64>> {
    emit!();
    let total: u64 = "not a number";
    emit!(total);
}

fn main() {}
