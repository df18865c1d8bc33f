// `?` on an `Option` in a producer: the error is at the operand and says what to write.
use beluga_core::{stream_producer, Context, EventResult};
use futures_util::Stream;

#[stream_producer]
fn first_word(ctx: Context, text: String) -> impl Stream<Item = EventResult<String>> {
    let word = text.split(' ').next()?;
    emit!(word.to_owned());
}

fn main() {}
