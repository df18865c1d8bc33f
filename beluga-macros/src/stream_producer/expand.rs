//! Generating the function: the body becomes a producer stream.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, Stmt};

use super::parse::{Output, Producer, RawFn};
use super::visitor::final_value;

/// The expansion of a correct producer.
///
/// From
/// ```text
/// fn f(ctx: Context, ...) -> impl Stream<Item = Result<Event<T>, Error>> { body; tail }
/// ```
/// into
/// ```text
/// fn f(ctx: Context, ...) -> impl Stream<Item = Result<Event<T>, Error>> {
///     let watched = Context::clone(&ctx);
///     let body = move |handle: YieldHandle<T>| async move {
///         let mut anchor = Anchor;
///         let mut y = handle.bind(&mut anchor);   // borrows a local: cannot leave the body
///         let value: Option<T> = { body; final value of tail };   // `emit!(x)` rewritten to
///         Ok(value)                                               // `y.value(x).await`
///     };
///     unsafe { Producer::new(watched, body) }
/// }
/// ```
pub(crate) fn producer(
    raw: &RawFn,
    producer: &Producer,
    mut stmts: Vec<Stmt>,
    krate: &syn::Path,
    yielder: &Ident,
) -> TokenStream {
    let RawFn {
        attrs, vis, sig, ..
    } = raw;
    let Producer { item, output, ctx } = producer;
    // The body's value: its tail expression turned into the final value in place, so that a
    // tail of the wrong type is pointed at; `None` when the body has no tail.
    let tail = match stmts.pop() {
        Some(Stmt::Expr(tail, None)) => final_value(krate, item, &tail),
        Some(other) => {
            stmts.push(other);
            quote!(::core::option::Option::None)
        }
        None => quote!(::core::option::Option::None),
    };
    let hidden = |name: &str| Ident::new(name, Span::mixed_site());
    let (watched, body, handle, anchor, value, stream) = (
        hidden("__beluga_ctx"),
        hidden("__beluga_body"),
        hidden("__beluga_handle"),
        hidden("__beluga_anchor"),
        hidden("__beluga_value"),
        hidden("__beluga_stream"),
    );
    let returned = match output {
        Output::Unboxed => quote!(#stream),
        Output::Boxed => {
            // Spanned on the declared type: a body that is not `Send` is reported there.
            let span = match &sig.output {
                syn::ReturnType::Type(_, ty) => ty.span(),
                syn::ReturnType::Default => Span::call_site(),
            };
            let krate = crate::error::respan(krate, span);
            quote_spanned!(span=> #krate::__private::boxed(#stream))
        }
    };
    quote! {
        #(#attrs)*
        #vis #sig {
            let #watched = #krate::__private::Context::clone(&#ctx);
            let #body = move |#handle: #krate::__private::YieldHandle<#item>| async move {
                let mut #anchor = #krate::__private::Anchor;
                let mut #yielder = #handle.bind(&mut #anchor);
                #[allow(unreachable_code, clippy::diverging_sub_expression)]
                {
                    let #value: ::core::option::Option<#item> = { #(#stmts)* #tail };
                    ::core::result::Result::Ok::<_, #krate::__private::Error>(#value)
                }
            };
            // SAFETY: the yielder is bound under a hygienic name that user code cannot spell,
            // and it borrows the anchor, a local of the body future: even where a macro moves it
            // (into a nested `async move` block), it cannot outlive the body future.
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
    // Without the qualifiers a producer cannot have, so that they cause no error of their own.
    let mut sig = sig.clone();
    sig.constness = None;
    sig.asyncness = None;
    sig.abi = None;
    let body = match item {
        Some((item, Output::Unboxed)) => quote!(#krate::__private::Fallback::<#item>::new()),
        Some((item, Output::Boxed)) => {
            quote!(#krate::__private::boxed(#krate::__private::Fallback::<#item>::new()))
        }
        None => {
            // An unusable return type (already reported): return nothing instead.
            sig.output = syn::ReturnType::Default;
            quote!()
        }
    };
    quote! {
        #(#attrs)*
        #[allow(unused_variables, unreachable_code)]
        #vis #sig {
            #body
        }
    }
}
