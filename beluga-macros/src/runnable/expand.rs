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
///     #[deny(unconditional_recursion)] // `stream = stream` without an inherent `stream`
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
    // The method's name is what the method is about: a missing method, a wrong argument list
    // or a stream of the wrong type is reported there. (Not the hygienic arguments: rustc would
    // suggest deleting the name to drop an argument the method lacks.)
    //
    // `Self::method` finds an inherent method before a trait's, so `stream = stream` calls the
    // type's own `stream` when it has one. When it has none, the call is `Runnable::stream`
    // itself: denied as unconditional recursion. rustc reports that lint only where the
    // method's span is the user's (in another crate's expansion it is silenced).
    let span = stream.span();
    let hidden = |name: &str| Ident::new(name, Span::mixed_site());
    let (ctx, arg) = (hidden("ctx"), hidden("input"));
    // Located at the user's `stream`, resolved (and linted) as the derive's own tokens.
    let at_stream = respan(&krate, Span::call_site().located_at(span));
    let method = quote_spanned! {span=>
        #[deny(unconditional_recursion)]
        fn stream(&self, #ctx: #at_stream::Context, #arg: #input_type)
            -> impl #at_stream::__private::Stream<Item = #at_stream::EventResult<#output>>
                + #at_stream::__private::Send + '_
        {
            Self::#stream(self, #ctx, #arg)
        }
    };
    Ok(quote! {
        #[automatically_derived]
        impl #impl_generics #krate::Runnable for #ident #ty_generics #where_clause {
            type Input = #input_type;
            type Output = #output;

            #method
        }
    })
}
