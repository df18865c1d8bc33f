//! Checking that the type and its attribute say everything the impl needs.

use proc_macro2::Span;
use syn::{Ident, Path, Type};

use super::ast::Input;
use crate::error::Errors;
use crate::written::{elided_reference, owned, render};

/// What a correct derive generates its impl from.
pub(crate) struct Spec<'a> {
    pub(crate) input: &'a Type,
    pub(crate) output: &'a Type,
    pub(crate) stream: &'a Ident,
    pub(crate) krate: Path,
}

const FULL: &str = "#[runnable(input = Type, output = Type, stream = method)]";

impl Input<'_> {
    /// Checks everything at once: the mistakes already in `errors` (from reading the attribute)
    /// and the ones found here are returned together.
    pub(crate) fn validate(&self, mut errors: Errors) -> syn::Result<Spec<'_>> {
        if let Some(union_token) = self.union_token {
            errors.push_spanned(
                union_token,
                "`#[derive(Runnable)]` cannot be used on a union: derive it on a struct or an enum",
            );
        }
        let mut misplaced = false;
        for attr in &self.inner_attrs {
            if attr.path().is_ident("runnable") {
                misplaced = true;
                errors.push_spanned(
                    attr,
                    "`#[runnable(...)]` goes on the type, not on a field or a variant: \
                     move it above the type, below `#[derive(Runnable)]`",
                );
            }
        }
        let attrs = &self.attrs;
        match attrs.runnable {
            // A misplaced attribute is already reported, saying where it goes.
            None if misplaced => {}
            None => errors.push(syn::Error::new(
                Span::call_site(),
                format!(
                    "missing `#[runnable(...)]` attribute: add `{FULL}` below `#[derive(Runnable)]`"
                ),
            )),
            Some(attr) if attrs.complete => {
                let missing: Vec<&str> = [
                    ("input", attrs.input.is_none()),
                    ("output", attrs.output.is_none()),
                    ("stream", attrs.stream.is_none()),
                ]
                .into_iter()
                .filter_map(|(key, missing)| missing.then_some(key))
                .collect();
                // A key given with a wrong value, or misspelt, is already reported.
                let missing: Vec<&str> = missing
                    .into_iter()
                    .filter(|key| !attrs.mentioned.iter().any(|k| k == key))
                    .filter(|key| !attrs.unknown.iter().any(|k| misspelt(k, key)))
                    .collect();
                if !missing.is_empty() {
                    errors.push_spanned(
                        attr.path(),
                        format!(
                            "{}: write `{}`",
                            missing_keys(&missing),
                            self.full_attribute()
                        ),
                    );
                }
            }
            Some(_) => {}
        }
        for (key, ty) in [("input", &attrs.input), ("output", &attrs.output)] {
            if let Some(ty) = ty {
                if let Some(reference) = elided_reference(ty) {
                    errors.push_spanned(
                        reference,
                        format!(
                            "`{key} = {}` borrows for a lifetime the runnable cannot name: write \
                             an owned type, `{key} = {}` (or a `'static` reference)",
                            render(ty),
                            owned(ty),
                        ),
                    );
                }
            }
        }
        errors.finish()?;
        match (&attrs.input, &attrs.output, &attrs.stream) {
            (Some(input), Some(output), Some(stream)) => Ok(Spec {
                input,
                output,
                stream,
                krate: attrs.krate.clone().unwrap_or_else(default_krate),
            }),
            _ => unreachable!("a missing key is an error"),
        }
    }

    /// The attribute as it should be: the user's values, placeholders for the missing ones.
    fn full_attribute(&self) -> String {
        let attrs = &self.attrs;
        let input = attrs
            .input
            .as_ref()
            .map_or_else(|| "Type".to_owned(), render);
        let output = attrs
            .output
            .as_ref()
            .map_or_else(|| "Type".to_owned(), render);
        let stream = attrs
            .stream
            .as_ref()
            .map_or_else(|| "method".to_owned(), ToString::to_string);
        let krate = attrs
            .krate
            .as_ref()
            .map(|path| format!(", crate = \"{}\"", render(path)))
            .unwrap_or_default();
        format!("#[runnable(input = {input}, output = {output}, stream = {stream}{krate})]")
    }
}

/// Whether `written` is probably `key` misspelt: at most two edits apart.
fn misspelt(written: &str, key: &str) -> bool {
    // Levenshtein distance, one row at a time.
    let key: Vec<char> = key.chars().collect();
    let mut row: Vec<usize> = (0..=key.len()).collect();
    for (i, a) in written.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &b) in key.iter().enumerate() {
            let substituted = diagonal + usize::from(a != b);
            diagonal = row[j + 1];
            row[j + 1] = substituted.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[key.len()] <= 2
}

/// "missing key `a`", "missing keys `a` and `b`", "missing keys `a`, `b` and `c`".
fn missing_keys(keys: &[&str]) -> String {
    let quoted: Vec<String> = keys.iter().map(|key| format!("`{key}`")).collect();
    match quoted.as_slice() {
        [one] => format!("missing key {one}"),
        [init @ .., last] => format!("missing keys {} and {last}", init.join(", ")),
        [] => String::new(),
    }
}

/// `::beluga_core`, for a dependency that is not renamed.
pub(crate) fn default_krate() -> Path {
    syn::parse_quote!(::beluga_core)
}

#[cfg(test)]
mod tests {
    use super::{missing_keys, misspelt};
    use crate::written::render;

    #[test]
    fn misspelt_keys_are_close_to_the_real_ones() {
        assert!(misspelt("inpt", "input"));
        assert!(misspelt("ouptut", "output"));
        assert!(misspelt("streams", "stream"));
        assert!(!misspelt("method", "stream"));
        assert!(!misspelt("in", "input"));
    }

    #[test]
    fn missing_keys_read_as_a_list() {
        assert_eq!(missing_keys(&["stream"]), "missing key `stream`");
        assert_eq!(
            missing_keys(&["input", "stream"]),
            "missing keys `input` and `stream`"
        );
        assert_eq!(
            missing_keys(&["input", "output", "stream"]),
            "missing keys `input`, `output` and `stream`"
        );
    }

    #[test]
    fn types_render_as_written() {
        let ty: syn::Type =
            syn::parse_quote!(std::collections::HashMap<String, Vec<(u8, &'a str)>>);
        assert_eq!(
            render(&ty),
            "std::collections::HashMap<String, Vec<(u8, &'a str)>>"
        );
        let ty: syn::Type = syn::parse_quote!([u8; 4]);
        assert_eq!(render(&ty), "[u8; 4]");
    }
}
