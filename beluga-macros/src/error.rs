//! Spanned-error helpers shared by the macros.

use proc_macro2::TokenStream;
use quote::ToTokens;

/// Collects independent errors so that they are all reported at once.
#[derive(Default)]
pub(crate) struct Errors {
    errors: Option<syn::Error>,
}

impl Errors {
    /// Adds an error pointing at `tokens`.
    pub(crate) fn push_spanned(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// Adds an error.
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.errors {
            Some(errors) => errors.combine(error),
            None => self.errors = Some(error),
        }
    }

    /// Whether no error was collected.
    pub(crate) fn is_empty(&self) -> bool {
        self.errors.is_none()
    }

    /// `Err` with every error collected, or `Ok` if there was none.
    pub(crate) fn finish(self) -> syn::Result<()> {
        match self.errors {
            Some(errors) => Err(errors),
            None => Ok(()),
        }
    }
}

/// `tokens` followed by the `compile_error!`s of `error`: the one place errors become tokens.
pub(crate) fn with_errors(mut tokens: TokenStream, error: &syn::Error) -> TokenStream {
    tokens.extend(error.to_compile_error());
    tokens
}

/// `tokens` with every token given `span`, so that an expression built from them (say, a call
/// through the `beluga_core` path) is reported at `span` rather than at the attribute.
pub(crate) fn respan(tokens: impl quote::ToTokens, span: proc_macro2::Span) -> TokenStream {
    use proc_macro2::{Group, TokenTree};
    tokens
        .into_token_stream()
        .into_iter()
        .map(|mut tt| {
            if let TokenTree::Group(group) = &tt {
                let mut respanned = Group::new(group.delimiter(), respan(group.stream(), span));
                respanned.set_span(span);
                tt = TokenTree::Group(respanned);
            } else {
                tt.set_span(span);
            }
            tt
        })
        .collect()
}
