// A body written like an `async fn` returning `Result`, ending with `Ok(())`: the final value
// is the body's value itself, so this is an error at `Ok(())` saying there is nothing to wrap.
use beluga_core::{stream_producer, Context, EventResult};
use futures_util::Stream;

#[stream_producer]
fn words(ctx: Context, text: String) -> impl Stream<Item = EventResult<String>> {
    for word in text.split(' ') {
        emit!(word.to_owned());
    }
    Ok(())
}

fn main() {}
