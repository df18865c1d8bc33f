// Without a return type there is no payload type: the values are still type-checked on their
// own.
use beluga_core::{stream_producer, Context};

fn scaled(value: u64, factor: u64) -> u64 {
    value * factor
}

#[stream_producer]
fn count(ctx: Context, n: u64) {
    for i in 0..n {
        emit!(scaled(i, "2"));
    }
    n
}

fn main() {}
