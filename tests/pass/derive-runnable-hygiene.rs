// Dummy modules and items with the names the expansion uses must not break it.
#![allow(dead_code, non_camel_case_types)]

mod core {}
mod beluga_core {}
mod std {}
struct Send;
struct Runnable;
struct Context;
struct EventResult;
struct Stream;
struct Fallback;
fn ctx() {}
fn input() {}

#[derive(::beluga_core::Runnable)]
#[runnable(input = u8, output = u8, stream = run)]
struct Hygienic;

impl Hygienic {
    #[::beluga_core::stream_producer]
    fn run(
        &self,
        ctx: ::beluga_core::Context,
        input: u8,
    ) -> impl ::futures_util::Stream<Item = ::beluga_core::EventResult<u8>> + ::core::marker::Send + '_ {
        input
    }
}

fn main() {
    use ::beluga_core::RunnableExt;
    let rt = ::tokio::runtime::Builder::new_current_thread().build().unwrap();
    let out = rt.block_on(Hygienic.invoke(::beluga_core::Context::new(), 7)).unwrap();
    assert_eq!(out, 7);
}
