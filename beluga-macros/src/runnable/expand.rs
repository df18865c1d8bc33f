//! Generating the impl of a correct derive.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::Ident;

use super::ast::Input;
use super::valid::Spec;
use crate::error::{Errors, respan};

/// The impl, or every mistake in the attribute and the type.
///
/// From
/// ```text
/// #[derive(Runnable)]
/// #[runnable(input = I, output = O, stream = run)]
/// struct S<'a, T: Bound> where W { ... }
/// ```
/// into
/// ```text
/// #[automatically_derived]
/// impl<'a, T: Bound> Runnable for S<'a, T> where W {
///     type Input = I;
///     type Output = O;
///     fn stream(&self, ctx: Context, input: I) -> impl Stream<Item = EventResult<O>> + Send + '_ {
///         Self::run(self, ctx, input)
///     }
/// }
/// ```
pub(crate) fn derive(input: &Input<'_>, errors: Errors) -> syn::Result<TokenStream> {
    let Spec {
        input: input_type,
        output,
        stream,
        krate,
    } = input.validate(errors)?;
    // Resolved where the derive is, and never pointing at the user's `crate = "..."` string:
    // a path there would be linted (`unused_qualifications`) as if the user had written it.
    let krate = respan(krate, Span::call_site());
    let ident = input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    // The method's name is what the call and the return type are about: a missing method, a
    // wrong argument list or a stream of the wrong type is reported there. (Not the hygienic
    // arguments: rustc would suggest deleting the name to drop an argument the method lacks.)
    let hidden = |name: &str| Ident::new(name, Span::mixed_site());
    let (ctx, arg) = (hidden("ctx"), hidden("input"));
    let call = quote_spanned!(stream.span()=> Self::#stream(self, #ctx, #arg));
    let returns = quote_spanned! {stream.span()=>
        impl #krate::__private::Stream<Item = #krate::EventResult<#output>>
            + ::core::marker::Send + '_
    };
    // The types are the user's own tokens, written where the user's types go (not as
    // `Self::Input`): a type that does not exist is reported once, where it is written.
    Ok(quote! {
        #[automatically_derived]
        impl #impl_generics #krate::Runnable for #ident #ty_generics #where_clause {
            type Input = #input_type;
            type Output = #output;

            fn stream(&self, #ctx: #krate::Context, #arg: #input_type) -> #returns {
                #call
            }
        }
    })
}
