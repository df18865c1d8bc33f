//! `#[derive(Runnable)]`: read the type and its `#[runnable(...)]` attribute, check them,
//! generate the impl.

mod ast;
mod attr;
mod expand;
mod fallback;
mod valid;

use proc_macro2::TokenStream;
use syn::DeriveInput;

use self::ast::Input;
use crate::error::{Errors, with_errors};

/// The derive: a correct type expands to its impl; a wrong one to its errors plus a fallback
/// impl, so the user sees those errors and nothing else.
pub(crate) fn derive(item: TokenStream) -> TokenStream {
    let node = match syn::parse2::<DeriveInput>(item) {
        Ok(node) => node,
        // rustc has parsed the item already: this cannot happen, but is reported if it does.
        Err(error) => return with_errors(TokenStream::new(), &error),
    };
    let mut errors = Errors::default();
    let input = Input::from_syn(&node, &mut errors);
    match expand::derive(&input, errors) {
        Ok(tokens) => tokens,
        Err(error) => with_errors(fallback::expand(&input), &error),
    }
}
