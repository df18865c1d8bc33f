//! The type being derived, as the derive sees it.

use syn::{Attribute, Data, DeriveInput, Generics, Ident, Token};

use super::attr::{self, Attrs};
use crate::error::Errors;

/// The annotated struct, enum or union.
pub(crate) struct Input<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) generics: &'a Generics,
    pub(crate) attrs: Attrs<'a>,
    /// The `union` keyword, when it is one (a runnable cannot be).
    pub(crate) union_token: Option<&'a Token![union]>,
    /// The attributes of the fields and variants, where `#[runnable(...)]` does not belong.
    pub(crate) inner_attrs: Vec<&'a Attribute>,
}

impl<'a> Input<'a> {
    /// Reads the type and its attributes, collecting every mistake in the attributes.
    pub(crate) fn from_syn(node: &'a DeriveInput, errors: &mut Errors) -> Self {
        let (union_token, fields): (_, Vec<&syn::Field>) = match &node.data {
            Data::Struct(data) => (None, data.fields.iter().collect()),
            Data::Enum(data) => (None, data.variants.iter().flat_map(|v| &v.fields).collect()),
            Data::Union(data) => (Some(&data.union_token), data.fields.named.iter().collect()),
        };
        let variant_attrs = match &node.data {
            Data::Enum(data) => data.variants.iter().flat_map(|v| &v.attrs).collect(),
            _ => Vec::new(),
        };
        let inner_attrs = variant_attrs
            .into_iter()
            .chain(fields.into_iter().flat_map(|f| &f.attrs))
            .collect();
        Input {
            ident: &node.ident,
            generics: &node.generics,
            attrs: attr::get(&node.attrs, errors),
            union_token,
            inner_attrs,
        }
    }
}
