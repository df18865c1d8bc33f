// `emit!` of a `Result`: the error is at the value, and says to emit its value with `?`.
use beluga_core::{stream_producer, Context, Error, EventResult};
use futures_util::Stream;

fn lookup(key: &str) -> Result<u32, Error> {
    Ok(key.len() as u32)
}

#[stream_producer]
fn sizes(ctx: Context, keys: Vec<String>) -> impl Stream<Item = EventResult<u32>> {
    for key in keys {
        emit!(lookup(&key));
    }
}

fn main() {}
