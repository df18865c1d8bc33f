//! The `#[runnable(input = Type, output = Type, stream = method, crate = "path")]` attribute.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::parse::ParseStream;
use syn::{Attribute, Expr, Ident, Lit, LitStr, Path, Type};

use crate::error::Errors;

/// What the `#[runnable(...)]` attributes of a type say. A key is `None` when it is missing
/// or its value was wrong (that mistake is already among the errors).
pub(crate) struct Attrs<'a> {
    /// The first `#[runnable(...)]`, `None` when there is none.
    pub(crate) runnable: Option<&'a Attribute>,
    pub(crate) input: Option<Type>,
    pub(crate) output: Option<Type>,
    pub(crate) stream: Option<Ident>,
    pub(crate) krate: Option<Path>,
    /// The known keys written, even with a wrong value: those are not missing.
    pub(crate) mentioned: Vec<String>,
    /// The unknown keys written: a misspelt key is reported as unknown, not also as missing.
    pub(crate) unknown: Vec<String>,
    /// Whether every `#[runnable(...)]` parsed to its end; after a syntax error the missing
    /// keys are not reported, as they may well be behind it.
    pub(crate) complete: bool,
}

pub(crate) const EXPECTED: &str = "expected one of: `input`, `output`, `stream`, `crate`";

/// Reads every `#[runnable(...)]` in `attrs`, collecting every mistake.
pub(crate) fn get<'a>(attrs: &'a [Attribute], errors: &mut Errors) -> Attrs<'a> {
    let mut found = Attrs {
        runnable: None,
        input: None,
        output: None,
        stream: None,
        krate: None,
        mentioned: Vec::new(),
        unknown: Vec::new(),
        complete: true,
    };
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("runnable")) {
        let first = found.runnable.is_none();
        if first {
            found.runnable = Some(attr);
        } else {
            errors.push_spanned(
                attr.path(),
                "duplicate `#[runnable(...)]` attribute: write all the keys in one \
                 `#[runnable(input = ..., output = ..., stream = ...)]`",
            );
        }
        let syn::Meta::List(list) = &attr.meta else {
            errors.push_spanned(
                attr,
                "expected a list of keys: write \
                 `#[runnable(input = Type, output = Type, stream = method)]`",
            );
            found.complete = false;
            continue;
        };
        // Duplicate keys in a second attribute are not reported again: the duplicate
        // attribute already is.
        let result = list.parse_nested_meta(|meta| found.key(&meta, first, errors));
        if let Err(error) = result {
            errors.push(error);
            found.complete = false;
        }
    }
    found
}

impl Attrs<'_> {
    /// Reads one `key = value`.
    fn key(
        &mut self,
        meta: &ParseNestedMeta<'_>,
        report_duplicate: bool,
        errors: &mut Errors,
    ) -> syn::Result<()> {
        let path = &meta.path;
        let name = if let Some(ident) = path.get_ident() {
            ident.to_string()
        } else {
            path.to_token_stream().to_string().replace(' ', "")
        };
        let known = matches!(name.as_str(), "input" | "output" | "stream" | "crate");
        if !known {
            errors.push_spanned(path, format!("unknown key `{name}`, {EXPECTED}"));
            self.unknown.push(name);
            // Skip its value, if any, so that the keys after it are still read.
            return skip_value(meta);
        }
        let duplicate = self.mentioned.contains(&name);
        self.mentioned.push(name.clone());
        let example = match name.as_str() {
            "input" | "output" => format!("{name} = Type"),
            "stream" => "stream = method".to_owned(),
            _ => "crate = \"my_beluga\"".to_owned(),
        };
        if !meta.input.peek(syn::Token![=]) {
            errors.push_spanned(path, format!("`{name}` needs a value: write `{example}`"));
            return skip_value(meta);
        }
        let value = meta.value()?;
        // The value is read (and checked) even for a duplicate key; the first usable one is
        // kept, for the fallback impl.
        match name.as_str() {
            "input" => set(&mut self.input, input_type(value, "input", errors)?),
            "output" => set(&mut self.output, input_type(value, "output", errors)?),
            "stream" => set(&mut self.stream, method_name(value, errors)?),
            _ => set(&mut self.krate, crate_path(value, errors)?),
        }
        if duplicate && report_duplicate {
            errors.push_spanned(
                path,
                format!("duplicate key `{name}`: keep one `{example}`"),
            );
        }
        Ok(())
    }
}

/// Stores `value` unless `slot` already holds one.
fn set<T>(slot: &mut Option<T>, value: Option<T>) {
    if slot.is_none() {
        *slot = value;
    }
}

/// Skips the value of a key that cannot be used, if it has one: `= value` or `(...)`.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        let value = meta.value()?;
        if value.fork().parse::<Type>().is_ok() {
            value.parse::<Type>()?;
        } else {
            value.parse::<Expr>()?;
        }
    } else if meta.input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in meta.input);
        content.parse::<TokenStream>()?;
    }
    Ok(())
}

/// `input = Type` or `output = Type`. A value that is not a type is reported and `None`.
fn input_type(value: ParseStream<'_>, key: &str, errors: &mut Errors) -> syn::Result<Option<Type>> {
    if value.fork().parse::<Type>().is_ok() {
        return value.parse().map(Some);
    }
    let expr: Expr = value.parse()?;
    let message = match &expr {
        Expr::Lit(lit) => match &lit.lit {
            Lit::Str(s) if s.parse::<Type>().is_ok() => {
                format!(
                    "expected a type, found a string: write `{key} = {}`, without quotes",
                    s.value()
                )
            }
            _ => format!("expected a type, found a literal: write the type, like `{key} = String`"),
        },
        _ => format!("expected a type: write the type, like `{key} = String`"),
    };
    errors.push_spanned(&expr, message);
    Ok(None)
}

/// `stream = method`. A value that is not one identifier is reported and `None`.
fn method_name(value: ParseStream<'_>, errors: &mut Errors) -> syn::Result<Option<Ident>> {
    let expr: Expr = value.parse()?;
    if let Expr::Path(path) = &expr {
        if let (None, Some(ident)) = (&path.qself, path.path.get_ident()) {
            return Ok(Some(ident.clone()));
        }
    }
    // The method the user probably meant, for the message.
    let meant = match &expr {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(s), ..
        }) => s.parse::<Ident>().ok(),
        Expr::Path(path) => path.path.segments.last().map(|s| s.ident.clone()),
        Expr::Call(call) => match &*call.func {
            Expr::Path(path) => path.path.segments.last().map(|s| s.ident.clone()),
            _ => None,
        },
        Expr::MethodCall(call) => Some(call.method.clone()),
        _ => None,
    }
    .filter(|ident| ident != "Self" && ident != "self");
    let found = match &expr {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(_), ..
        }) => "found a string",
        Expr::Lit(_) => "found a literal",
        Expr::Path(_) => "found a path",
        Expr::Call(_) | Expr::MethodCall(_) => "found a call",
        _ => "found an expression",
    };
    let message = match meant {
        Some(ident) => format!(
            "expected the name of a method, {found}: write `stream = {ident}`{}",
            if found == "found a string" {
                ", without quotes"
            } else {
                ""
            }
        ),
        None => format!("expected the name of a method, {found}: write `stream = my_method`"),
    };
    errors.push_spanned(&expr, message);
    Ok(None)
}

/// `crate = "path"`. A value that is not a path in quotes is reported and `None`.
fn crate_path(value: ParseStream<'_>, errors: &mut Errors) -> syn::Result<Option<Path>> {
    const HELP: &str = "expected a path in quotes: write `crate = \"my_beluga\"`";
    if !value.peek(LitStr) {
        let expr: Expr = value.parse()?;
        let message = match &expr {
            Expr::Path(path) if path.qself.is_none() => format!(
                "expected a path in quotes: write `crate = \"{}\"`",
                path.path.to_token_stream().to_string().replace(' ', "")
            ),
            _ => HELP.to_owned(),
        };
        errors.push_spanned(&expr, message);
        return Ok(None);
    }
    let lit: LitStr = value.parse()?;
    match crate::krate::parse(&lit) {
        Ok(path) => Ok(Some(path)),
        Err(error) => {
            errors.push(error);
            Ok(None)
        }
    }
}
