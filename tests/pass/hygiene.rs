// Dummy modules and items with the names the expansion uses must not break it.
#![allow(dead_code, non_camel_case_types)]

mod core {}
mod beluga_core {}
mod std {}
struct Ok;
struct Err;
struct Some;
struct None;
struct Result;
struct Option;
fn forward() {}

use ::beluga_core::{stream_producer, Context, EventResult};
use ::futures_util::Stream;

#[stream_producer]
fn hygienic(ctx: Context) -> impl Stream<Item = EventResult<u8>> {
    let __beluga_body = 1_u8;
    emit!(__beluga_body);
    if __beluga_body == 2 {
        return;
    }
    3
}

fn main() {
    let _ = hygienic(Context::new());
}
