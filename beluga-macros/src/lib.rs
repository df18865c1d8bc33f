//! Procedural macros for beluga. Use them through `beluga-core`, which re-exports them and
//! documents them: the expansions call into `beluga_core::__private`.

#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod error;
mod krate;
mod runnable;
mod stream_producer;
mod written;

use proc_macro::TokenStream;

/// (The attribute's implementation; `beluga_core::stream_producer` documents it.)
#[proc_macro_attribute]
pub fn stream_producer(args: TokenStream, item: TokenStream) -> TokenStream {
    stream_producer::expand(args.into(), item.into()).into()
}

/// (The derive's implementation; `beluga_core::Runnable` documents it.)
#[proc_macro_derive(Runnable, attributes(runnable))]
pub fn derive_runnable(item: TokenStream) -> TokenStream {
    runnable::derive(item.into()).into()
}
