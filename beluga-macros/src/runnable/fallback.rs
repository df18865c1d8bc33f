//! What a derive with mistakes expands to, beside its errors.

use proc_macro2::{Span, TokenStream};
use quote::quote;

use super::ast::Input;
use super::valid::default_krate;
use crate::error::respan;
use crate::written::elided_reference;

/// An impl with the types that were given (`()` for the others) and a stream that never runs,
/// so that code using the runnable type-checks and the user sees the derive's errors only.
/// (A call passing a value of the real input type where `input` is missing still mismatches
/// `()`: no type could stand in for every one the user might mean.)
pub(crate) fn expand(input: &Input<'_>) -> TokenStream {
    let attrs = &input.attrs;
    let krate = respan(
        attrs.krate.clone().unwrap_or_else(default_krate),
        Span::call_site(),
    );
    let unit = quote!(());
    // A type that cannot be an associated type (already reported) is `()` too.
    let usable = |t: &&syn::Type| elided_reference(t).is_none();
    let input_type = attrs
        .input
        .as_ref()
        .filter(usable)
        .map_or_else(|| unit.clone(), |t| quote!(#t));
    let output = attrs
        .output
        .as_ref()
        .filter(usable)
        .map_or(unit, |t| quote!(#t));
    let ident = input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    quote! {
        #[automatically_derived]
        impl #impl_generics #krate::Runnable for #ident #ty_generics #where_clause {
            type Input = #input_type;
            type Output = #output;

            fn stream(
                &self,
                _: #krate::Context,
                _: #input_type,
            ) -> impl #krate::__private::Stream<Item = #krate::EventResult<#output>>
                + #krate::__private::Send + '_ {
                #krate::__private::Fallback::<#output>::new()
            }
        }
    }
}
