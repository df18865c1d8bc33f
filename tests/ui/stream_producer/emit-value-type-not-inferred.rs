// `emit!` takes a payload or an event, so it cannot tell inference which one a value is.
use beluga_core::{stream_producer, Context, Error, ErrorCode, EventResult};
use futures_util::Stream;

trait FromText: Sized {
    fn from_text(text: &str) -> Option<Self>;
}

impl FromText for u32 {
    fn from_text(text: &str) -> Option<Self> {
        text.parse().ok()
    }
}

fn parse<T: FromText>(text: &str) -> Result<T, Error> {
    T::from_text(text).ok_or_else(|| Error::new(ErrorCode::InvalidInput, "not a number"))
}

#[stream_producer]
fn numbers(ctx: Context, text: String) -> impl Stream<Item = EventResult<u32>> {
    emit!(parse(&text)?);
}

#[stream_producer]
fn named(ctx: Context, text: String) -> impl Stream<Item = EventResult<u32>> {
    emit!(parse::<u32>(&text)?);
}

fn main() {
    let _ = named(Context::new(), "1".to_owned());
}
