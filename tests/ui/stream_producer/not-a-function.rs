use beluga_core::stream_producer;

#[stream_producer]
struct Tokens;

fn main() {}
