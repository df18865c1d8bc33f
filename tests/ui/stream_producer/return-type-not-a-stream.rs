use beluga_core::{stream_producer, Context};

#[stream_producer]
fn count(ctx: Context) -> Vec<u64> {
    emit!(1);
}

fn main() {}
