use beluga_core::{stream_producer, Context};

#[stream_producer]
fn count(ctx: Context) {
    emit!(1);
}

fn main() {}
