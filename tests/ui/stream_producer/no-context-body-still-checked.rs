// A signature the macro rejects keeps its body type-checked, with the declared payload type.
use beluga_core::{stream_producer, EventResult};
use futures_util::Stream;

fn scaled(value: u64, factor: u64) -> u64 {
    value * factor
}

#[stream_producer]
fn count(n: u64) -> impl Stream<Item = EventResult<u64>> {
    for i in 0..n {
        emit!(scaled(i, "2"));
    }
}

fn main() {}
