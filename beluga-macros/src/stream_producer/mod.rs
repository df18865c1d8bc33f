//! `#[stream_producer]`: parse the arguments, check the function, rewrite the body, generate.

mod args;
mod expand;
mod parse;
mod visitor;

use proc_macro2::{Span, TokenStream};
use syn::Ident;
use syn::visit_mut::VisitMut;

use self::parse::RawFn;
use crate::error::{Errors, with_errors};

/// The macro: a correct producer expands to its stream; a wrong one to its errors plus a
/// fallback function, so the user sees those errors and nothing else.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let Ok(raw) = syn::parse2::<RawFn>(item.clone()) else {
        let error = syn::Error::new(
            Span::call_site(),
            "`#[stream_producer]` goes on a function with a body (a free function, an inherent \
             method or a trait-impl method) that sends its items with `emit!`",
        );
        return with_errors(item, &error);
    };
    let args = match args::parse(args) {
        Ok(args) => Some(args),
        Err(error) => {
            let krate = default_krate();
            let item = parse::return_item(&raw.sig).ok();
            let fallback = expand::fallback(&raw, item.as_ref().map(|(t, o)| (t, o)), &krate);
            return with_errors(fallback, &error);
        }
    };
    let args = args.expect("returned above");
    let mut errors = Errors::default();

    let producer = match parse::check(&raw.sig, &args) {
        Ok(producer) => Some(producer),
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let Ok(mut stmts) = parse::parse_body(raw.body.clone()) else {
        // A syntax error in the body. rustc has already reported it while parsing the item for
        // this attribute: add no second error, just the signature for the IDE.
        let item = parse::return_item(&raw.sig).ok();
        return expand::fallback(&raw, item.as_ref().map(|(t, o)| (t, o)), &args.krate);
    };

    let yielder = Ident::new("__beluga_yield", Span::mixed_site());
    let placeholder: syn::Type = syn::parse_quote!(_);
    let item_type = producer.as_ref().map_or(&placeholder, |p| &p.item);
    let mut visitor = visitor::Visitor::new(&yielder, &args.krate, item_type);
    for stmt in &mut stmts {
        visitor.visit_stmt_mut(stmt);
    }
    let labelled = visitor.labelled;
    if let Err(e) = visitor.errors.finish() {
        errors.push(e);
    }

    match (errors.finish(), producer) {
        (Ok(()), Some(producer)) => {
            expand::producer(&raw, &producer, stmts, &args.krate, &yielder, labelled)
        }
        (Err(error), producer) => {
            let item = producer
                .map(|p| (p.item, p.output))
                .or_else(|| parse::return_item(&raw.sig).ok());
            let fallback = expand::fallback(&raw, item.as_ref().map(|(t, o)| (t, o)), &args.krate);
            with_errors(fallback, &error)
        }
        (Ok(()), None) => unreachable!("a missing producer is an error"),
    }
}

fn default_krate() -> syn::Path {
    syn::parse_quote!(::beluga_core)
}
