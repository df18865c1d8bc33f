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

/// The macro: a correct producer expands to its stream; a wrong one to its errors plus the
/// function with its body still type-checked (see [`expand::fallback`]), so the user sees
/// those errors and the body's own, and the IDE keeps working in the body.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let Ok(raw) = syn::parse2::<RawFn>(item.clone()) else {
        let error = syn::Error::new(
            Span::call_site(),
            "`#[stream_producer]` goes on a function with a body (a free function, an inherent \
             method or a trait-impl method) that sends its items with `emit!`",
        );
        return with_errors(item, &error);
    };
    let mut errors = Errors::default();
    let args = args::parse(args).unwrap_or_else(|error| {
        errors.push(error);
        args::Args::default()
    });
    // After a mistake in the arguments, the signature is not checked: its context may well
    // be the argument that was misspelt.
    let producer = if errors.is_empty() {
        parse::check(&raw.sig, &args)
            .map_err(|e| errors.push(e))
            .ok()
    } else {
        None
    };
    parse::check_kept_borrows(&raw.sig, &raw.body, &mut errors);
    let declared = match &producer {
        Some(producer) => Some((producer.item.clone(), producer.output)),
        None => parse::return_item(&raw.sig).ok(),
    };
    let declared_ref = declared.as_ref().map(|(item, output)| (item, output));
    let Ok(mut stmts) = parse::parse_body(raw.body.clone()) else {
        // A syntax error in the body. rustc has already reported it while parsing the item for
        // this attribute: add no second error, just the signature for the IDE.
        let fallback = expand::fallback(&raw, declared_ref, None, &args.krate);
        return match errors.finish() {
            Ok(()) => fallback,
            Err(error) => with_errors(fallback, &error),
        };
    };

    let yielder = Ident::new("__beluga_yield", Span::mixed_site());
    let unit: syn::Type = syn::parse_quote!(());
    let item_type = declared_ref.map_or(&unit, |(item, _)| item);
    let mut visitor = visitor::Visitor::new(&yielder, &args.krate, item_type, declared.is_none());
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
        (Err(error), _) => {
            let body = Some((stmts, &yielder, labelled));
            let fallback = expand::fallback(&raw, declared_ref, body, &args.krate);
            with_errors(fallback, &error)
        }
        (Ok(()), None) => unreachable!("a missing producer is an error"),
    }
}
