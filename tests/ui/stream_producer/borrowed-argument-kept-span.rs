// A method whose stream may borrow only `self` (`+ '_`) keeps a `&str` argument of another
// lifetime: the error is at the argument, with the two ways to write it.
use beluga_core::{stream_producer, Context, EventResult};
use futures_util::Stream;

struct Splitter;

impl Splitter {
    #[stream_producer]
    fn words(&self, ctx: Context, text: &str) -> impl Stream<Item = EventResult<String>> + Send + '_ {
        for word in text.split(' ') {
            emit!(word.to_owned());
        }
    }
}

#[stream_producer]
fn forever(ctx: Context, text: &str) -> impl Stream<Item = EventResult<String>> + 'static {
    emit!(text.to_owned());
}

fn main() {}
