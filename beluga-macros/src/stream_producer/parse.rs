//! Reading and checking the annotated function: where its context is, what it yields.

use proc_macro2::{TokenStream, TokenTree};
use syn::parse::{Parse, ParseStream};
use syn::{
    Attribute, FnArg, GenericArgument, Ident, Pat, PathArguments, ReturnType, Signature, Token,
    Type, TypeParamBound, Visibility,
};

use super::args::Args;
use crate::error::Errors;
use crate::written::{elided_reference, owned, render};

/// A function as written, with its body still as tokens: the signature must parse for the
/// macro to do anything, the body is parsed later so that a syntax error in it is reported once.
pub(crate) struct RawFn {
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) sig: Signature,
    pub(crate) body: TokenStream,
}

impl Parse for RawFn {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        let _default: Option<Token![default]> = input.parse()?;
        let sig: Signature = input.parse()?;
        let content;
        syn::braced!(content in input);
        let body: TokenStream = content.parse()?;
        Ok(RawFn {
            attrs,
            vis,
            sig,
            body,
        })
    }
}

/// How the stream leaves the function.
#[derive(Clone, Copy)]
pub(crate) enum Output {
    /// `impl Stream<Item = Result<Event<T>, Error>>`: returned as it is.
    Unboxed,
    /// `BoxEventStream<'a, T>`: boxed.
    Boxed,
}

/// What the expansion needs to know about the function.
pub(crate) struct Producer {
    /// The payload type `T` of the events.
    pub(crate) item: Type,
    pub(crate) output: Output,
    /// The argument holding the context to watch.
    pub(crate) ctx: Ident,
}

const RETURN_HELP: &str = "a producer returns its event stream: write \
    `-> impl Stream<Item = Result<Event<T>, Error>>` or `-> BoxEventStream<'_, T>`";

/// Checks the signature, reporting every problem at once.
pub(crate) fn check(sig: &Signature, args: &Args) -> syn::Result<Producer> {
    let mut errors = Errors::default();
    if let Some(constness) = &sig.constness {
        errors.push_spanned(
            constness,
            "a producer cannot be a `const fn`: remove `const`, its stream runs at run time",
        );
    }
    if let Some(asyncness) = &sig.asyncness {
        errors.push_spanned(
            asyncness,
            "remove `async`: a producer returns its stream at once, and its body can `.await` anyway",
        );
    }
    if let Some(abi) = &sig.abi {
        errors.push_spanned(
            abi,
            "a producer cannot have an `extern` ABI: remove it, the stream type is Rust-only",
        );
    }
    if let Some(variadic) = &sig.variadic {
        errors.push_spanned(variadic, "a producer cannot be variadic");
    }
    let output = match return_item(sig) {
        Ok(found) => Some(found),
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let ctx = match find_ctx(sig, args) {
        Ok(ctx) => Some(ctx),
        Err(e) => {
            errors.push(e);
            None
        }
    };
    errors.finish()?;
    let (item, output) = output.expect("checked above");
    Ok(Producer {
        item,
        output,
        ctx: ctx.expect("checked above"),
    })
}

/// The payload type and the shape of the declared return type.
pub(crate) fn return_item(sig: &Signature) -> syn::Result<(Type, Output)> {
    let ty = match &sig.output {
        ReturnType::Default => {
            return Err(syn::Error::new(
                sig.paren_token.span.join(),
                format!("missing return type: {RETURN_HELP}"),
            ));
        }
        ReturnType::Type(_, ty) => &**ty,
    };
    match ty {
        Type::ImplTrait(imp) => {
            for bound in &imp.bounds {
                let TypeParamBound::Trait(trait_bound) = bound else {
                    continue;
                };
                let Some(last) = trait_bound.path.segments.last() else {
                    continue;
                };
                if last.ident != "Stream" {
                    continue;
                }
                let PathArguments::AngleBracketed(generics) = &last.arguments else {
                    return Err(syn::Error::new_spanned(last, RETURN_HELP));
                };
                for arg in &generics.args {
                    if let GenericArgument::AssocType(assoc) = arg {
                        if assoc.ident == "Item" {
                            return event_payload(&assoc.ty).map(|t| (t, Output::Unboxed));
                        }
                    }
                }
                return Err(syn::Error::new_spanned(last, RETURN_HELP));
            }
            Err(syn::Error::new_spanned(ty, RETURN_HELP))
        }
        Type::Path(path) if path.qself.is_none() => {
            let last = path.path.segments.last().expect("a path has a segment");
            if last.ident == "BoxEventStream" {
                if let PathArguments::AngleBracketed(generics) = &last.arguments {
                    let types: Vec<&Type> = generics
                        .args
                        .iter()
                        .filter_map(|a| match a {
                            GenericArgument::Type(t) => Some(t),
                            _ => None,
                        })
                        .collect();
                    if let [item] = types[..] {
                        return Ok((item.clone(), Output::Boxed));
                    }
                }
                return Err(syn::Error::new_spanned(
                    last,
                    "expected `BoxEventStream<'_, T>`, with the payload type `T`",
                ));
            }
            Err(syn::Error::new_spanned(ty, RETURN_HELP))
        }
        _ => Err(syn::Error::new_spanned(ty, RETURN_HELP)),
    }
}

/// `T` from `Result<Event<T>, Error>` or `EventResult<T>`.
fn event_payload(item: &Type) -> syn::Result<Type> {
    let help = || {
        syn::Error::new_spanned(
            item,
            "a producer's items are `Result<Event<T>, Error>` (or `EventResult<T>`): \
             write `Item = Result<Event<T>, Error>`",
        )
    };
    let Type::Path(path) = item else {
        return Err(help());
    };
    let last = path.path.segments.last().ok_or_else(help)?;
    let first_type = |args: &PathArguments| -> Option<Type> {
        let PathArguments::AngleBracketed(generics) = args else {
            return None;
        };
        generics.args.iter().find_map(|a| match a {
            GenericArgument::Type(t) => Some(t.clone()),
            _ => None,
        })
    };
    if last.ident == "EventResult" {
        return first_type(&last.arguments).ok_or_else(help);
    }
    if last.ident == "Result" {
        let event = first_type(&last.arguments).ok_or_else(help)?;
        if let Type::Path(event) = &event {
            if let Some(seg) = event.path.segments.last() {
                if seg.ident == "Event" {
                    return first_type(&seg.arguments).ok_or_else(help);
                }
            }
        }
    }
    Err(help())
}

/// Whether `ty` is `Context`, `&Context` or `&'a Context` (any path ending in `Context`). A
/// macro sees names, not types: `Context` under another name is named with `ctx = name`.
fn is_context(ty: &Type) -> bool {
    match ty {
        Type::Reference(r) => is_context(&r.elem),
        Type::Path(p) => p
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == "Context" && s.arguments.is_empty()),
        Type::Paren(p) => is_context(&p.elem),
        Type::Group(g) => is_context(&g.elem),
        _ => false,
    }
}

/// The argument holding the context: named in the attribute, or the only one of type `Context`.
fn find_ctx(sig: &Signature, args: &Args) -> syn::Result<Ident> {
    let typed: Vec<(&Pat, &Type)> = sig
        .inputs
        .iter()
        .filter_map(|arg| match arg {
            FnArg::Typed(t) => Some((&*t.pat, &*t.ty)),
            FnArg::Receiver(_) => None,
        })
        .collect();
    if let Some(name) = &args.ctx {
        return typed
            .iter()
            .find_map(|(pat, _)| match pat {
                Pat::Ident(p) if p.ident == *name => Some(p.ident.clone()),
                _ => None,
            })
            .ok_or_else(|| {
                syn::Error::new_spanned(
                    name,
                    format!("no argument is named `{name}`: name the `Context` argument to watch"),
                )
            });
    }
    let candidates: Vec<(&Pat, &Type)> =
        typed.into_iter().filter(|(_, ty)| is_context(ty)).collect();
    match candidates[..] {
        [] => Err(syn::Error::new_spanned(
            &sig.ident,
            "a producer needs a `Context` argument to watch for cancellation: \
             add `ctx: Context` (or `ctx: &Context`), or name it with \
             `#[stream_producer(ctx = name)]` when its type is spelt another way",
        )),
        [(pat, _)] => match pat {
            Pat::Ident(p) => Ok(p.ident.clone()),
            other => Err(syn::Error::new_spanned(
                other,
                "bind the `Context` argument to a name (`ctx: Context`) so the stream can watch it",
            )),
        },
        [_, (second, _), ..] => Err(syn::Error::new_spanned(
            second,
            "more than one `Context` argument: say which one to watch with \
             `#[stream_producer(ctx = name)]`",
        )),
    }
}

/// Checks the arguments the stream keeps (those the body uses: it moves them in) against the
/// lifetime its return type names (`+ '_`, `+ 'a`, `+ 'static`, `BoxEventStream<'a, T>`): an
/// argument whose type borrows for a lifetime of its own (`text: &str`, elided) cannot be kept
/// by a stream that may only borrow for that one. rustc would report it at the attribute, in
/// terms of the generated code; this says what to write.
pub(crate) fn check_kept_borrows(sig: &Signature, body: &TokenStream, errors: &mut Errors) {
    let Some(bound) = returned_lifetime(&sig.output) else {
        return;
    };
    let elided_receiver = sig.receiver().is_some_and(|r| {
        r.reference
            .as_ref()
            .is_some_and(|(_, lifetime)| lifetime.as_ref().is_none_or(|l| l.ident == "_"))
    });
    let may_borrow = match bound.ident.to_string().as_str() {
        "static" => "nothing (`'static`)".to_owned(),
        // Without a receiver, `'_` is the one elided lifetime of the arguments, or an error
        // rustc reports.
        "_" if !elided_receiver => return,
        "_" => "only what `self` borrows (`+ '_`)".to_owned(),
        name => format!("only for `'{name}`"),
    };
    for arg in &sig.inputs {
        let FnArg::Typed(arg) = arg else { continue };
        let Pat::Ident(pat) = &*arg.pat else { continue };
        if elided_reference(&arg.ty).is_none() || !uses(body, &pat.ident) {
            continue;
        }
        let (name, ty) = (&pat.ident, render(&arg.ty));
        let named = if bound.ident == "static" {
            String::new()
        } else {
            let lifetime = if bound.ident == "_" {
                "'a".to_owned()
            } else {
                bound.to_string()
            };
            let with = if ty.contains("'_") {
                ty.replacen("'_", &lifetime, 1)
            } else {
                ty.replacen('&', &format!("&{lifetime} "), 1)
            };
            let whole = if bound.ident == "_" {
                format!(
                    " (`fn {}<'a>(&'a self, .., {name}: {with}) -> .. + 'a`)",
                    sig.ident
                )
            } else {
                String::new()
            };
            format!(", or give it the stream's lifetime, `{name}: {with}`{whole}")
        };
        errors.push_spanned(
            &arg.ty,
            format!(
                "the stream keeps `{name}`, which borrows for a lifetime of its own, and may \
                 borrow {may_borrow}: take it owned, `{name}: {}`{named}",
                owned(&arg.ty)
            ),
        );
    }
}

/// The lifetime the declared stream may borrow for: `'x` in `impl Stream<..> + 'x` or
/// `BoxEventStream<'x, T>`.
fn returned_lifetime(output: &ReturnType) -> Option<&syn::Lifetime> {
    let ReturnType::Type(_, ty) = output else {
        return None;
    };
    match &**ty {
        Type::ImplTrait(imp) => imp.bounds.iter().find_map(|bound| match bound {
            TypeParamBound::Lifetime(lifetime) => Some(lifetime),
            _ => None,
        }),
        Type::Path(path) => {
            let last = path.path.segments.last()?;
            let PathArguments::AngleBracketed(generics) = &last.arguments else {
                return None;
            };
            (last.ident == "BoxEventStream")
                .then(|| {
                    generics.args.iter().find_map(|a| match a {
                        GenericArgument::Lifetime(lifetime) => Some(lifetime),
                        _ => None,
                    })
                })
                .flatten()
        }
        _ => None,
    }
}

/// Whether `tokens` use the variable `name`: the identifier, other than as a field or method
/// name (after `.`) or a macro's name.
fn uses(tokens: &TokenStream, name: &Ident) -> bool {
    let tts: Vec<TokenTree> = tokens.clone().into_iter().collect();
    tts.iter().enumerate().any(|(i, tt)| match tt {
        TokenTree::Group(group) => uses(&group.stream(), name),
        TokenTree::Ident(ident) if ident == name => {
            let after_dot =
                i > 0 && matches!(&tts[i - 1], TokenTree::Punct(p) if p.as_char() == '.');
            let macro_name =
                matches!(tts.get(i + 1), Some(TokenTree::Punct(p)) if p.as_char() == '!');
            !after_dot && !macro_name
        }
        _ => false,
    })
}

/// Parses statements of a body, for [`RawFn::body`].
pub(crate) fn parse_body(tokens: TokenStream) -> syn::Result<Vec<syn::Stmt>> {
    syn::parse::Parser::parse2(syn::Block::parse_within, tokens)
}
