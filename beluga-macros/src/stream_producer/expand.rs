//! Generating the function: the body becomes a producer stream.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, Ident, Pat, Signature, Stmt};

use super::parse::{Output, Producer, RawFn};
use super::visitor::{LABEL, final_value};

/// The expansion of a correct producer.
///
/// From
/// ```text
/// fn f(ctx: Context, ...) -> impl Stream<Item = Result<Event<T>, Error>> { body; tail }
/// ```
/// into
/// ```text
/// fn f(ctx: Context, ...) -> impl Stream<Item = Result<Event<T>, Error>> {
///     let (core, handle) = Core::start(&ctx);     // one payload type for slot and yielder
///     let body = async move {
///         let mut anchor = Anchor;
///         let mut y = unsafe { handle.bind(&mut anchor) }; // borrows a local: stays in the body
///         let <pattern> = <argument>;              // arguments with patterns, moved in
///         // `emit!(x)` into `y.value({ if false { break 'label Ok(None); } &mut y }, x).await`
///         let value: Result<Option<T>, Error> = 'label: { body; Ok(final value of tail) };
///         value
///     };
///     unsafe { Producer::stream(core, body) }
/// }
/// ```
pub(crate) fn producer(
    raw: &RawFn,
    producer: &Producer,
    stmts: Vec<Stmt>,
    krate: &syn::Path,
    yielder: &Ident,
    labelled: bool,
) -> TokenStream {
    let RawFn { attrs, vis, .. } = raw;
    let Producer { item, output, ctx } = producer;
    let (sig, rebind, ctx) = move_patterns_in(&raw.sig, Some(ctx));
    let ctx = ctx.expect("a producer has a context");
    let hidden = |name: &str| Ident::new(name, Span::mixed_site());
    let (core, handle, body, stream) = (
        hidden("__beluga_core"),
        handle_name(),
        hidden("__beluga_body"),
        hidden("__beluga_stream"),
    );
    let future = body_future(item, stmts, krate, yielder, labelled, &rebind, false);
    let returned = match output {
        Output::Unboxed => quote!(#stream),
        Output::Boxed => {
            // Spanned on the declared type: a body that is not `Send` is reported there.
            let span = match &sig.output {
                syn::ReturnType::Type(_, ty) => ty.span(),
                syn::ReturnType::Default => Span::call_site(),
            };
            let krate = crate::error::respan(krate, span);
            quote_spanned!(span=> #krate::__private::Box::pin(#stream))
        }
    };
    quote! {
        #(#attrs)*
        #vis #sig {
            let (#core, #handle) = #krate::__private::Core::start(&#ctx);
            let #body = #future;
            // SAFETY: the body binds the handle first, and the yielder under a hygienic name that
            // user code cannot spell; it borrows the anchor, a local of the body future: even
            // where a macro moves it (into a nested `async move` block), it cannot outlive the
            // body future.
            #[allow(clippy::undocumented_unsafe_blocks)]
            let #stream = unsafe {
                #krate::__private::Producer::stream(#core, #body)
            };
            #returned
        }
    }
}

/// The hidden name of the body's `YieldHandle` binding, which the body future binds first.
fn handle_name() -> Ident {
    Ident::new("__beluga_handle", Span::mixed_site())
}

/// The body future, from the rewritten statements: `async move { ... }`, binding the handle
/// (see [`handle_name`]) first (see [`producer`]).
fn body_future(
    item: &syn::Type,
    mut stmts: Vec<Stmt>,
    krate: &syn::Path,
    yielder: &Ident,
    labelled: bool,
    rebind: &[TokenStream],
    neutral: bool,
) -> TokenStream {
    // The body's value: its tail expression turned into the final value in place, so that a
    // tail of the wrong type is pointed at; `None` when the body has no tail.
    let tail = match stmts.pop() {
        Some(Stmt::Expr(tail, None)) => final_value(krate, item, &tail, neutral),
        Some(other) => {
            stmts.push(other);
            quote!(#krate::__private::None)
        }
        None => quote!(#krate::__private::None),
    };
    // The body's block, labelled when an `emit!` names the label (see `visitor::LABEL`).
    let label = labelled.then(|| {
        let label = syn::Lifetime::new(LABEL, Span::mixed_site());
        quote!(#label:)
    });
    let hidden = |name: &str| Ident::new(name, Span::mixed_site());
    let (handle, anchor, value) = (
        handle_name(),
        hidden("__beluga_anchor"),
        hidden("__beluga_value"),
    );
    quote! {
        async move {
            let mut #anchor = #krate::__private::Anchor;
            // SAFETY: the first statement of the body `Producer::stream` runs.
            #[allow(clippy::undocumented_unsafe_blocks)]
            let mut #yielder = unsafe { #handle.bind(&mut #anchor) };
            #(#rebind)*
            #[allow(unreachable_code, clippy::diverging_sub_expression)]
            {
                let #value: #krate::__private::Result<
                    #krate::__private::Option<#item>,
                    #krate::__private::Error,
                > = #label { #(#stmts)* #krate::__private::Ok(#tail) };
                #value
            }
        }
    }
}

/// The signature with every argument bound by a pattern other than a plain name (`ref s`,
/// `(a, b)`) taken under a hidden name, the `let`s that bind those patterns inside the body
/// (as an `async fn` does: a `ref` binding borrows the body's own copy, not a local of the
/// function that is gone when the stream runs), and the name under which the context is.
fn move_patterns_in(
    sig: &Signature,
    ctx: Option<&Ident>,
) -> (Signature, Vec<TokenStream>, Option<Ident>) {
    let mut sig = sig.clone();
    let mut rebind = Vec::new();
    let mut ctx = ctx.cloned();
    for (n, arg) in sig.inputs.iter_mut().enumerate() {
        let FnArg::Typed(arg) = arg else { continue };
        let simple = match &*arg.pat {
            Pat::Ident(p) => p.by_ref.is_none() && p.subpat.is_none(),
            Pat::Wild(_) => true,
            _ => false,
        };
        if simple {
            continue;
        }
        let hidden = Ident::new(&format!("__beluga_arg{n}"), Span::mixed_site());
        // `mut` where a `ref mut` binding borrows it mutably.
        let mutability = binds_ref_mut(&arg.pat).then(|| quote!(mut));
        let pat = std::mem::replace(&mut *arg.pat, Pat::Verbatim(quote!(#mutability #hidden)));
        if matches!((&pat, &ctx), (Pat::Ident(p), Some(ctx)) if p.ident == *ctx) {
            ctx = Some(hidden.clone());
        }
        // The argument's attributes (`#[cfg]`, lint levels) go with its binding.
        let attrs = &arg.attrs;
        rebind.push(quote!(#(#attrs)* let #pat = #hidden;));
    }
    (sig, rebind, ctx)
}

/// Whether `pat` has a `ref mut` binding: in a pattern, `ref mut` is nothing else.
fn binds_ref_mut(pat: &Pat) -> bool {
    fn scan(tokens: TokenStream) -> bool {
        let mut after_ref = false;
        tokens.into_iter().any(|tt| match tt {
            TokenTree::Group(group) => scan(group.stream()),
            TokenTree::Ident(ident) => {
                let found = after_ref && ident == "mut";
                after_ref = ident == "ref";
                found
            }
            _ => {
                after_ref = false;
                false
            }
        })
    }
    scan(pat.to_token_stream())
}

/// What is emitted beside the errors of a producer: the function with its whole body, still
/// type-checked and visible to the IDE (hover and completion keep working), but never run: the
/// body future is created and dropped, and the function returns a stream that type-checks and
/// is never polled. `None` as the body: a syntax error in it (already reported by rustc), so the
/// signature only.
///
/// From
/// ```text
/// fn f(ctx: Context, ...) -> impl Stream<Item = Result<Event<T>, Error>> { body }
/// ```
/// into
/// ```text
/// fn f(ctx: Context, ...) -> impl Stream<Item = Result<Event<T>, Error>> {
///     let handle = YieldHandle::<T>::unbound();
///     Fallback::<T>::checked(async move { ... })  // the body as in `producer`
/// }
/// ```
pub(crate) fn fallback(
    raw: &RawFn,
    item: Option<(&syn::Type, &Output)>,
    body: Option<(Vec<Stmt>, &Ident, bool)>,
    krate: &syn::Path,
) -> TokenStream {
    let RawFn { attrs, vis, .. } = raw;
    let (mut sig, rebind, _) = move_patterns_in(&raw.sig, None);
    // Without the qualifiers a producer cannot have, so that they cause no error of their own.
    sig.constness = None;
    sig.asyncness = None;
    sig.abi = None;
    sig.variadic = None;
    let unit: syn::Type = syn::parse_quote!(());
    let neutral = item.is_none();
    let payload = item.map_or(&unit, |(item, _)| item);
    // The stream, from the body future (which it drops) when there is one: the body's
    // payload type is the declared one even when no `emit!` says it.
    let stream = if let Some((stmts, yielder, labelled)) = body {
        let future = body_future(payload, stmts, krate, yielder, labelled, &rebind, neutral);
        let handle = handle_name();
        quote!({
            let #handle = #krate::__private::YieldHandle::<#payload>::unbound();
            #krate::__private::Fallback::<#payload>::checked(#future)
        })
    } else {
        quote!(#krate::__private::Fallback::<#payload>::new())
    };
    let returned = match item {
        Some((_, Output::Unboxed)) => stream,
        Some((_, Output::Boxed)) => quote!(#krate::__private::Box::pin(#stream)),
        None => {
            // An unusable return type (already reported): return nothing instead.
            sig.output = syn::ReturnType::Default;
            quote!(let _ = #stream;)
        }
    };
    quote! {
        #(#attrs)*
        #[allow(unused_variables, unused_mut, unreachable_code)]
        #vis #sig {
            #returned
        }
    }
}
