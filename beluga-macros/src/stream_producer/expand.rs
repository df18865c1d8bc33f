//! Generating the function: the body becomes a producer stream.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{Ident, Stmt};

use super::parse::{Output, Producer, RawFn};

/// The expansion of a correct producer.
///
/// From
/// ```text
/// fn f(ctx: Context, ...) -> impl Stream<Item = Result<Event<T>, Error>> { body }
/// ```
/// into
/// ```text
/// fn f(ctx: Context, ...) -> impl Stream<Item = Result<Event<T>, Error>> {
///     let ctx2 = ctx.clone();
///     let body = move |mut yielder: Yielder<T>| async move {
///         let y = &mut yielder;
///         let value = { body, with `emit!(x)` as `Yielder::value(&mut *y, x).await` };
///         Ok(final value of `value`)
///     };
///     unsafe { Producer::new(ctx2, body) }
/// }
/// ```
pub(crate) fn producer(
    raw: &RawFn,
    producer: &Producer,
    stmts: &[Stmt],
    krate: &syn::Path,
    yielder: &Ident,
) -> TokenStream {
    let RawFn {
        attrs, vis, sig, ..
    } = raw;
    let Producer { item, output, ctx } = producer;
    let hidden = |name: &str| Ident::new(name, Span::mixed_site());
    let (watched, body, owner, value, stream) = (
        hidden("__beluga_ctx"),
        hidden("__beluga_body"),
        hidden("__beluga_yielder"),
        hidden("__beluga_value"),
        hidden("__beluga_stream"),
    );
    let returned = match output {
        Output::Unboxed => quote!(#stream),
        Output::Boxed => quote!(#krate::__private::boxed(#stream)),
    };
    quote! {
        #(#attrs)*
        #vis #sig {
            let #watched = #krate::__private::Context::clone(&#ctx);
            let #body = move |mut #owner: #krate::__private::Yielder<#item>| async move {
                let #yielder = &mut #owner;
                #[allow(unreachable_code, clippy::diverging_sub_expression)]
                {
                    let #value = { #(#stmts)* };
                    #[allow(unused_imports)]
                    use #krate::__private::IntoFinal as _;
                    let #value: ::core::option::Option<#item> =
                        #krate::__private::Final(#value).into_final();
                    ::core::result::Result::Ok::<_, #krate::__private::Error>(#value)
                }
            };
            // SAFETY: the yielder is bound under a hygienic name that user code cannot spell,
            // and the body only ever borrows it mutably, so it never leaves the body future.
            #[allow(clippy::undocumented_unsafe_blocks)]
            let #stream = unsafe { #krate::__private::Producer::new(#watched, #body) };
            #returned
        }
    }
}

/// What is emitted when the producer has errors: the signature with a body that type-checks
/// (so the errors are the only ones reported) and never runs.
pub(crate) fn fallback(
    raw: &RawFn,
    item: Option<(&syn::Type, &Output)>,
    krate: &syn::Path,
) -> TokenStream {
    let RawFn {
        attrs, vis, sig, ..
    } = raw;
    let body = match item {
        Some((item, Output::Unboxed)) => quote!(#krate::__private::Fallback::<#item>::new()),
        Some((item, Output::Boxed)) => {
            quote!(#krate::__private::boxed(#krate::__private::Fallback::<#item>::new()))
        }
        None => match &sig.output {
            syn::ReturnType::Default => quote!(),
            syn::ReturnType::Type(..) => quote!(::core::unreachable!()),
        },
    };
    quote! {
        #(#attrs)*
        #[allow(unused_variables, unreachable_code)]
        #vis #sig {
            #body
        }
    }
}
