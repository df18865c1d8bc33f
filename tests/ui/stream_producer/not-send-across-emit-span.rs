use std::rc::Rc;

use beluga_core::{stream_producer, Context, BoxEventStream};

#[stream_producer]
fn shared(ctx: Context) -> BoxEventStream<'static, u64> {
    let counter = Rc::new(1);
    emit!(*counter);
    emit!(*counter + 1);
}

fn main() {}
