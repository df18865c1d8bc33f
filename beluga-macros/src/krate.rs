//! The `crate = "path"` option both macros take, for a renamed or re-exported `beluga_core`.

use syn::{LitStr, Path, PathArguments};

/// The path written in `lit`, if it can name a crate or a module: no generic arguments and no
/// `Self` (the expansions append `::__private::...` to it, and use it in expressions).
pub(crate) fn parse(lit: &LitStr) -> syn::Result<Path> {
    const HELP: &str = "expected a path in quotes: `crate = \"my_beluga\"`";
    let path: Path = lit.parse().map_err(|_| syn::Error::new(lit.span(), HELP))?;
    for segment in &path.segments {
        if segment.ident == "Self" {
            return Err(syn::Error::new(
                lit.span(),
                "`Self` cannot name a crate: write the path of `beluga_core`, like \
                 `crate = \"my_beluga\"`",
            ));
        }
        if !matches!(segment.arguments, PathArguments::None) {
            return Err(syn::Error::new(
                lit.span(),
                "a crate path takes no generic arguments: write the path of `beluga_core`, like \
                 `crate = \"my_beluga\"`",
            ));
        }
    }
    Ok(path)
}
