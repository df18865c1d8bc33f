//! Types and tokens as the user wrote them, for messages that quote them and say what to write
//! instead.

use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::Type;

/// Tokens as a person would write them: `Vec<u8>`, not `Vec < u8 >`.
pub(crate) fn render(tokens: &impl ToTokens) -> String {
    let mut text = tokens.to_token_stream().to_string();
    for (from, to) in [
        (" < ", "<"),
        ("< ", "<"),
        (" <", "<"),
        (" >", ">"),
        (" ,", ","),
        (" :: ", "::"),
        (":: ", "::"),
        ("& ", "&"),
        (" (", "("),
        ("( ", "("),
        (" )", ")"),
        (" [", "["),
        ("[ ", "["),
        (" ]", "]"),
        (" ;", ";"),
    ] {
        text = text.replace(from, to);
    }
    text
}

/// The first `&` in `ty` without a lifetime (or with `'_`): `Runnable`'s associated types have
/// no lifetime to give it.
pub(crate) fn elided_reference(ty: &Type) -> Option<TokenStream> {
    fn scan(tokens: TokenStream) -> Option<TokenStream> {
        let tts: Vec<TokenTree> = tokens.into_iter().collect();
        for (i, tt) in tts.iter().enumerate() {
            match tt {
                TokenTree::Group(group) => {
                    if let Some(found) = scan(group.stream()) {
                        return Some(found);
                    }
                }
                TokenTree::Punct(p) if p.as_char() == '&' => {
                    let named = match (tts.get(i + 1), tts.get(i + 2)) {
                        (Some(TokenTree::Punct(q)), Some(TokenTree::Ident(name)))
                            if q.as_char() == '\'' =>
                        {
                            name != "_"
                        }
                        _ => false,
                    };
                    if !named {
                        return Some(tts[i..tts.len().min(i + 2)].iter().cloned().collect());
                    }
                }
                TokenTree::Punct(p) if p.as_char() == '\'' => {
                    if matches!(tts.get(i + 1), Some(TokenTree::Ident(name)) if name == "_") {
                        return Some(tts[i..i + 2].iter().cloned().collect());
                    }
                }
                _ => {}
            }
        }
        None
    }
    scan(ty.to_token_stream())
}

/// What to write instead of a borrowed type: `String` for `&str`, `Vec<T>` for `&[T]`, else
/// the type without its `&`.
pub(crate) fn owned(ty: &Type) -> String {
    match ty {
        Type::Reference(reference) => match &*reference.elem {
            Type::Path(path) if path.path.is_ident("str") => "String".to_owned(),
            Type::Slice(slice) => format!("Vec<{}>", render(&slice.elem)),
            other => render(other),
        },
        other => render(other).replace('&', ""),
    }
}
