//! The attribute's arguments: `#[stream_producer(ctx = name, crate = "path")]`.

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::{Ident, LitStr, Path};

use crate::error::Errors;

/// What the attribute says.
pub(crate) struct Args {
    /// The argument to watch for cancellation, when it cannot be found by its type.
    pub(crate) ctx: Option<Ident>,
    /// The path of `beluga_core`, for a renamed dependency.
    pub(crate) krate: Path,
}

const EXPECTED: &str = "expected one of: `ctx`, `crate`";

/// Parses the arguments, reporting every mistake at once.
pub(crate) fn parse(tokens: TokenStream) -> syn::Result<Args> {
    let mut ctx: Option<Ident> = None;
    let mut krate: Option<Path> = None;
    let mut errors = Errors::default();

    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("ctx") {
            let value: Ident = meta.value()?.parse().map_err(|e| {
                syn::Error::new(e.span(), "expected the name of an argument: `ctx = my_ctx`")
            })?;
            if ctx.is_some() {
                errors.push_spanned(&meta.path, "duplicate argument `ctx`: name one context");
            } else {
                ctx = Some(value);
            }
        } else if meta.path.is_ident("crate") {
            let value: LitStr = meta.value()?.parse().map_err(|e| {
                syn::Error::new(
                    e.span(),
                    "expected a path in quotes: `crate = \"my_beluga\"`",
                )
            })?;
            let path = crate::krate::parse(&value)?;
            if krate.is_some() {
                errors.push_spanned(&meta.path, "duplicate argument `crate`");
            } else {
                krate = Some(path);
            }
        } else {
            let path = &meta.path;
            let name = quote::quote!(#path).to_string().replace(' ', "");
            errors.push_spanned(&meta.path, format!("unknown argument `{name}`, {EXPECTED}"));
            // Skip its value, if any, so that the arguments after it are still checked.
            if meta.input.peek(syn::Token![=]) {
                let _: syn::Expr = meta.value()?.parse()?;
            }
        }
        Ok(())
    });
    parser.parse2(tokens)?;
    errors.finish()?;
    Ok(Args {
        ctx,
        krate: krate.unwrap_or_else(default_krate),
    })
}

/// `::beluga_core`, for a dependency that is not renamed.
fn default_krate() -> Path {
    let mut path: Path = Ident::new("beluga_core", Span::call_site()).into();
    path.leading_colon = Some(syn::Token![::](Span::call_site()));
    path
}

impl Default for Args {
    /// No context named, `beluga_core` under its own name: what the expansion uses when the
    /// arguments have a mistake (already reported).
    fn default() -> Self {
        Args {
            ctx: None,
            krate: default_krate(),
        }
    }
}
