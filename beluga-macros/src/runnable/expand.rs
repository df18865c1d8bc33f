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
///         // `Self::run(self, ctx, input)`, through `checks::StreamMethod`: one error saying what
///         // to write when `run` does not fit. (`stream = stream`: `Self::stream(...)` directly,
///         // under `#[deny(unconditional_recursion)]` for a type without an inherent `stream`.)
///         let (verdict, stream) = (&&&&&&&&&&StreamMethod::<Self, I, O, _>::new(self, Self::run))
///             .resolve(ctx, input);
///         TakesSelfByReference::<I>::check(verdict.0); // ... one check per verdict
///         stream
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
    // The method's name is what the method is about: a missing method, or one that does not
    // fit, is reported there. (Not the hygienic arguments: rustc would suggest deleting the
    // name to drop an argument the method lacks.)
    let span = stream.span();
    let hidden = |name: &str| Ident::new(name, Span::mixed_site());
    let (ctx, arg) = (hidden("ctx"), hidden("input"));
    // Located at the user's `stream`, resolved (and linted) as the derive's own tokens.
    let at_stream = respan(&krate, Span::call_site().located_at(span));
    let call = if stream == "stream" {
        // `Self::stream` finds an inherent method before a trait's, so `stream = stream` calls
        // the type's own `stream` when it has one. When it has none, the call is
        // `Runnable::stream` itself: denied as unconditional recursion, which rustc reports
        // only on a direct call whose span is the user's.
        quote_spanned! {span=> Self::#stream(self, #ctx, #arg) }
    } else {
        // The method resolved through `checks::ResolveStreamMethod` (see `StreamMethod`): one
        // error for a method that does not fit, saying what to write instead.
        // The verdicts at the user's `stream = method`, where a failed check is reported.
        let verdict = Ident::new("verdict", Span::mixed_site().located_at(span));
        let checked = hidden("stream");
        let checks = quote_spanned!(span=> #at_stream::__private::checks);
        quote_spanned! {span=>
            #[allow(unused_imports)]
            use #checks::ResolveStreamMethod as _;
            let (#verdict, #checked) =
                (&&&&&&&&&&#checks::StreamMethod::<Self, #input_type, #output, _>::new(
                    self,
                    Self::#stream,
                ))
                .resolve(#ctx, #arg);
            #checks::TakesSelfByReference::<#input_type>::check(#verdict.0);
            #checks::TakesContextThenInput::<#input_type>::check(#verdict.1);
            #checks::TakesContextByValue::<#input_type>::check(#verdict.2);
            #checks::TakesInput::<#input_type>::check(#verdict.3);
            #checks::TakesInputByValue::<#input_type>::check(#verdict.4);
            #checks::ReturnsEventStream::<#output>::check(#verdict.5);
            #checks::StreamMethodSignature::<#input_type, #output>::check(#verdict.6);
            #checked
        }
    };
    let deny =
        (stream == "stream").then(|| quote_spanned!(span=> #[deny(unconditional_recursion)]));
    let method = quote_spanned! {span=>
        #deny
        fn stream(&self, #ctx: #at_stream::Context, #arg: #input_type)
            -> impl #at_stream::__private::Stream<Item = #at_stream::EventResult<#output>>
                + #at_stream::__private::Send + '_
        {
            #call
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
