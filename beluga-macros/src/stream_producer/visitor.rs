//! Rewriting the body: `emit!`, `emit_all!` and `return` into calls on the hidden yielder.
//!
//! The body cannot use the `yield` keyword itself: rustc rejects `yield` as unstable syntax
//! while parsing the function, before any attribute macro sees it. `emit!(value)` is the stable
//! spelling of `yield value`.

use proc_macro2::{Group, Ident, Span, TokenStream, TokenTree};
use quote::quote_spanned;
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{Expr, ExprMacro, ExprReturn, ExprYield, Item, Macro, Stmt};

use crate::error::{Errors, respan};

/// Where the visitor is: only the body itself may `yield` or `return` from the producer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// The producer's own body.
    Body,
    /// Inside a closure (including `async` closures): its `return` is its own, and it cannot
    /// yield for the producer.
    Closure,
    /// Inside an `async` block: the same.
    Async,
}

/// Rewrites one producer body.
pub(crate) struct Visitor<'a> {
    /// The hidden `Yielder<'_, T>` binding (borrowing a local of the body future).
    yielder: &'a Ident,
    /// The path of `beluga_core`.
    krate: &'a syn::Path,
    /// The payload type, for the final value of `return value`.
    item: &'a syn::Type,
    scope: Scope,
    pub(crate) errors: Errors,
}

impl<'a> Visitor<'a> {
    pub(crate) fn new(yielder: &'a Ident, krate: &'a syn::Path, item: &'a syn::Type) -> Self {
        Visitor {
            yielder,
            krate,
            item,
            scope: Scope::Body,
            errors: Errors::default(),
        }
    }

    fn in_scope(&mut self, scope: Scope, f: impl FnOnce(&mut Self)) {
        let outer = std::mem::replace(&mut self.scope, scope);
        f(self);
        self.scope = outer;
    }

    fn misplaced(&mut self, tokens: impl quote::ToTokens, what: &str) {
        let message = match self.scope {
            Scope::Closure => format!(
                "{what} inside a closure cannot emit from the producer: move it out of the \
                 closure, or have the closure return the value and emit it in the body"
            ),
            Scope::Async => format!(
                "{what} inside an `async` block cannot emit from the producer: `.await` the \
                 block in the body and emit its result there"
            ),
            Scope::Body => unreachable!("allowed in the body"),
        };
        self.errors.push_spanned(tokens, message);
    }

    /// From `emit!(value)` into `Yielder::value(&mut yielder, value).await`, spanned on the
    /// user's `value` so
    /// that a type error points there.
    fn rewrite_emit(&mut self, mac: &Macro) -> Expr {
        let yielder = self.yielder;
        let span = mac.span();
        if let Ok(value) = mac.parse_body::<Expr>() {
            let value_span = value.span();
            let (krate, item) = (respan(self.krate, value_span), self.item);
            let call = quote_spanned! {value_span=>
                #krate::__private::Yielder::value(
                    &mut #yielder,
                    #krate::IntoEvent::<#item>::__into_yielded(#value),
                )
            };
            syn::parse_quote_spanned! {span=> #call.await }
        } else {
            self.errors.push_spanned(
                mac,
                "`emit!` takes one value: `emit!(payload)` or `emit!(event)`",
            );
            syn::parse_quote_spanned! {span=> () }
        }
    }

    /// From `return`, `return value` and `return Err(e)` into the body's `Result`:
    /// `Ok(None)`, `Ok(final value)` and `Err(e.into())`.
    fn rewrite_return(&mut self, ret: &ExprReturn) -> Expr {
        let krate = self.krate;
        let item = self.item;
        let span = ret.span();
        match &ret.expr {
            None => syn::parse_quote_spanned! {span=>
                return ::core::result::Result::Ok(::core::option::Option::None)
            },
            Some(value) => {
                if let Some(err) = err_call(value) {
                    syn::parse_quote_spanned! {span=>
                        return ::core::result::Result::Err(#krate::__private::into_error(#err))
                    }
                } else {
                    let value = final_value(krate, item, value);
                    syn::parse_quote_spanned! {span=>
                        return ::core::result::Result::Ok(#value)
                    }
                }
            }
        }
    }

    /// `emit_all!(stream)`: forwards every event of `stream`, evaluates to its final value.
    fn rewrite_emit_all(&mut self, mac: &Macro) -> Expr {
        let yielder = self.yielder;
        let krate = self.krate;
        let span = mac.span();
        let Ok(stream) = mac.parse_body::<Expr>() else {
            self.errors.push_spanned(
                mac,
                "`emit_all!` takes one event stream: `emit_all!(other_stream)`",
            );
            return syn::parse_quote_spanned! {span=> () };
        };
        syn::parse_quote_spanned! {span=>
            #krate::__private::forward(&mut #yielder, #stream).await?
        }
    }

    /// Rewrites `emit!` inside another macro's tokens (`tokio::select!`, `tokio::join!`, ...),
    /// where the syntax tree is not visible: from `emit!(value)` into
    /// `Yielder::value(&mut yielder, value).await`. Sound whatever the macro does with the
    /// result: the expansion uses the yielder in place, and even a macro that moves it (into a
    /// nested `async move` block, say) cannot make it outlive the local of the body it borrows.
    fn rewrite_macro_tokens(&mut self, mac: &mut Macro) {
        if !contains_emit(&mac.tokens) {
            return;
        }
        if self.scope != Scope::Body {
            self.misplaced(&mac.path, "`emit!` in this macro");
            return;
        }
        mac.tokens = self.rewrite_tokens(std::mem::take(&mut mac.tokens));
    }

    fn rewrite_tokens(&self, tokens: TokenStream) -> TokenStream {
        let mut out = TokenStream::new();
        let mut iter = tokens.into_iter().peekable();
        while let Some(tt) = iter.next() {
            match tt {
                TokenTree::Ident(ident) if ident == "emit" && next_is_bang(&mut iter) => {
                    let bang = iter.next();
                    match iter.next() {
                        Some(TokenTree::Group(args)) => {
                            let value = self.rewrite_tokens(args.stream());
                            let span = args.span();
                            let (yielder, krate, item) =
                                (self.yielder, respan(self.krate, span), self.item);
                            out.extend(quote_spanned! {span=>
                                #krate::__private::Yielder::value(
                                    &mut #yielder,
                                    #krate::IntoEvent::<#item>::__into_yielded(#value),
                                )
                                .await
                            });
                        }
                        other => {
                            out.extend([TokenTree::Ident(ident)]);
                            out.extend(bang);
                            out.extend(other);
                        }
                    }
                }
                TokenTree::Group(group) => {
                    let mut rewritten =
                        Group::new(group.delimiter(), self.rewrite_tokens(group.stream()));
                    rewritten.set_span(group.span());
                    out.extend([TokenTree::Group(rewritten)]);
                }
                other => out.extend([other]),
            }
        }
        out
    }
}

/// The final value of a body that ends with `value`: `None` for `()`, `Some(value)` for a `T`.
/// Spanned on `value`, so that a value of the wrong type is pointed at.
pub(crate) fn final_value(krate: &syn::Path, item: &syn::Type, value: &Expr) -> TokenStream {
    let span = value.span();
    let krate = respan(krate, span);
    quote_spanned! {span=>
        {
            #[allow(unused_imports)]
            use #krate::__private::IntoFinal as _;
            ::core::convert::identity::<::core::option::Option<#item>>(
                #krate::__private::Final(#value).into_final(),
            )
        }
    }
}

/// `e` if `expr` is the call `Err(e)`.
fn err_call(expr: &Expr) -> Option<&Expr> {
    let Expr::Call(call) = expr else {
        return None;
    };
    let Expr::Path(path) = &*call.func else {
        return None;
    };
    let is_err = path
        .path
        .segments
        .last()
        .is_some_and(|s| s.ident == "Err" && s.arguments.is_empty());
    if is_err && call.args.len() == 1 {
        call.args.first()
    } else {
        None
    }
}

fn next_is_bang(iter: &mut std::iter::Peekable<proc_macro2::token_stream::IntoIter>) -> bool {
    matches!(iter.peek(), Some(TokenTree::Punct(p)) if p.as_char() == '!')
}

fn contains_emit(tokens: &TokenStream) -> bool {
    let mut iter = tokens.clone().into_iter().peekable();
    while let Some(tt) = iter.next() {
        match tt {
            TokenTree::Ident(ident) if ident == "emit" && next_is_bang(&mut iter) => return true,
            TokenTree::Group(group) if contains_emit(&group.stream()) => return true,
            _ => {}
        }
    }
    false
}

/// `emit!` or a path ending in it (`beluga_core::emit!`).
fn is_named(mac: &Macro, name: &str) -> bool {
    mac.path.segments.last().is_some_and(|s| s.ident == name)
}

impl VisitMut for Visitor<'_> {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        match expr {
            Expr::Closure(_) => {
                self.in_scope(Scope::Closure, |v| visit_mut::visit_expr_mut(v, expr));
            }
            Expr::Async(_) => {
                self.in_scope(Scope::Async, |v| visit_mut::visit_expr_mut(v, expr));
            }
            Expr::Yield(ExprYield { yield_token, .. }) => {
                // rustc has already rejected the syntax; say what to write instead.
                self.errors.push_spanned(
                    *yield_token,
                    "`yield` is not stable Rust: write `emit!(value)` to send a value from a producer",
                );
            }
            Expr::Return(_) => {
                visit_mut::visit_expr_mut(self, expr);
                if self.scope == Scope::Body {
                    let Expr::Return(ret) = &*expr else {
                        unreachable!()
                    };
                    *expr = self.rewrite_return(ret);
                }
            }
            Expr::Macro(ExprMacro { mac, .. }) if is_named(mac, "emit") => {
                let mac = mac.clone();
                if self.scope == Scope::Body {
                    *expr = self.rewrite_emit(&mac);
                } else {
                    self.misplaced(&mac, "`emit!`");
                }
            }
            Expr::Macro(ExprMacro { mac, .. }) if is_named(mac, "emit_all") => {
                let mac = mac.clone();
                if self.scope == Scope::Body {
                    *expr = self.rewrite_emit_all(&mac);
                } else {
                    self.misplaced(&mac, "`emit_all!`");
                }
            }
            Expr::Macro(ExprMacro { mac, .. }) => self.rewrite_macro_tokens(mac),
            _ => visit_mut::visit_expr_mut(self, expr),
        }
    }

    fn visit_stmt_mut(&mut self, stmt: &mut Stmt) {
        if let Stmt::Macro(stmt_macro) = stmt {
            if is_named(&stmt_macro.mac, "emit") || is_named(&stmt_macro.mac, "emit_all") {
                // From the statement `emit!(x);` into the expression statement, visited below.
                let expr = Expr::Macro(ExprMacro {
                    attrs: stmt_macro.attrs.clone(),
                    mac: stmt_macro.mac.clone(),
                });
                let semi = stmt_macro
                    .semi_token
                    .unwrap_or_else(|| syn::Token![;](Span::call_site()));
                *stmt = Stmt::Expr(expr, Some(semi));
            } else {
                self.rewrite_macro_tokens(&mut stmt_macro.mac);
                return;
            }
        }
        visit_mut::visit_stmt_mut(self, stmt);
    }

    fn visit_item_mut(&mut self, _item: &mut Item) {
        // A nested `fn`, `impl` or `mod` is not part of the producer: leave it alone.
    }

    fn visit_macro_mut(&mut self, mac: &mut Macro) {
        self.rewrite_macro_tokens(mac);
    }
}
