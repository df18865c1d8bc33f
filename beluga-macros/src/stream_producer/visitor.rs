// Over 500 lines: one visitor with its scope rules, plus the token walk for other macros'
// tokens, which must apply the same rules; splitting them would separate two halves of one rule set.
//! Rewriting the body: `emit!`, `emit_all!` and `return` into calls on the hidden yielder.
//!
//! The body cannot use the `yield` keyword itself: rustc rejects `yield` as unstable syntax
//! while parsing the function, before any attribute macro sees it. `emit!(value)` is the stable
//! spelling of `yield value`.
//!
//! An emitted value is delivered in order or the body does not compile. Inside a closure or an
//! `async` block an `emit!` would run whenever that closure or future runs, concurrently with
//! the body, so it is an error there: found by the syntax tree, by a token walk of other
//! macros' arguments, and, for blocks no walk can see (a `macro_rules!` of the user's that wraps
//! its argument in `async { }`), by rustc itself: every expansion of `emit!` names the label of
//! the body's block, and a label cannot be reached from inside a closure or an `async` block.

use proc_macro2::{Delimiter, Group, Ident, Span, TokenStream, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{
    Attribute, Expr, ExprAwait, ExprMacro, ExprReturn, ExprTry, ExprYield, Item, Macro, Stmt, Token,
};

use crate::error::{Errors, respan};

/// The label of the block holding the body. It reads as the explanation of the error rustc
/// gives when an `emit!` sits where the label cannot be reached ("use of unreachable label").
pub(crate) const LABEL: &str =
    "'emit_must_be_in_the_producer_body_not_in_a_nested_async_block_or_closure";

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
    /// Whether the payload type is unknown (the signature does not say it): then every `emit!`
    /// and final value is only type-checked on its own, with nothing to send it to.
    neutral: bool,
    scope: Scope,
    /// Whether an expansion names the body's label (see [`LABEL`]).
    pub(crate) labelled: bool,
    pub(crate) errors: Errors,
}

impl<'a> Visitor<'a> {
    pub(crate) fn new(
        yielder: &'a Ident,
        krate: &'a syn::Path,
        item: &'a syn::Type,
        neutral: bool,
    ) -> Self {
        Visitor {
            yielder,
            krate,
            item,
            neutral,
            scope: Scope::Body,
            labelled: false,
            errors: Errors::default(),
        }
    }

    fn in_scope(&mut self, scope: Scope, f: impl FnOnce(&mut Self)) {
        let outer = std::mem::replace(&mut self.scope, scope);
        f(self);
        self.scope = outer;
    }

    fn misplaced(&mut self, tokens: impl ToTokens, what: &str) {
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

    /// `&mut yielder`, after a dead `break` to the body's label: from inside a closure or an
    /// `async` block that label cannot be reached, so rustc rejects the `emit!` there.
    /// From `&mut yielder` into `{ if false { loop { break 'label Ok(None); } } &mut yielder }`.
    fn yielder_ref(&mut self, span: Span) -> TokenStream {
        self.labelled = true;
        let label = syn::Lifetime::new(LABEL, Span::mixed_site().located_at(span));
        let (yielder, krate) = (self.yielder, respan(self.krate, span));
        // In a `loop` of its own, so that where the label cannot be reached, rustc reports the
        // label only, not also a `break` inside an `async` block or a closure; hygienic, so
        // that no lint (clippy's `never_loop`) takes the loop for the user's.
        let dead = Span::mixed_site().located_at(span);
        let dead_break = quote_spanned! {dead=>
            if false {
                loop {
                    break #label #krate::__private::Ok(#krate::__private::None);
                }
            }
        };
        quote_spanned! {span=>
            { #dead_break &mut #yielder }
        }
    }

    /// From `emit!(value)` into
    /// `Yielder::value({ dead break; &mut yielder }, IntoEvent::<T>::__into_yielded(value)).await`,
    /// spanned on the user's `value` so that a type error points there.
    fn emit(&mut self, value: &TokenStream, value_span: Span, span: Span) -> TokenStream {
        if self.neutral {
            return neutral(value, span);
        }
        let yielder = self.yielder_ref(span);
        let (krate, item) = (respan(self.krate, value_span), self.item);
        let call = quote_spanned! {value_span=>
            #krate::__private::Yielder::value(
                #yielder,
                #krate::IntoEvent::<#item>::__into_yielded(#value),
            )
        };
        quote_spanned! {span=> #call.await }
    }

    /// From `emit_all!(stream)` into a loop that forwards every event of `stream` and evaluates
    /// to the final value of its `done` (a terminal `Err` ends the producer with it):
    /// ```text
    /// {
    ///     let mut s = pin!(stream);
    ///     loop {
    ///         match poll_fn(|cx| checks::EmitAll::<T>::poll_event(s.as_mut(), cx)).await {
    ///             Some(Ok(event)) if event.is_done() => break event.into_payload(),
    ///             Some(Ok(event)) => Yielder::value({ dead break; &mut yielder }, event).await,
    ///             Some(Err(e)) => break 'label Err(e),   // the body's label
    ///             None => break None,
    ///         }
    ///     }
    /// }
    /// ```
    /// The check is the only bound on `stream`, spanned on the user's parentheses: a value that
    /// is not an event stream of `T` is reported there, once.
    fn emit_all(&mut self, stream: &TokenStream, parens: Span, span: Span) -> TokenStream {
        if self.neutral {
            return neutral(stream, span);
        }
        let yielder = self.yielder_ref(span);
        // The loop's own tokens (hygienic, so no lint takes them for the user's) at the
        // user's parentheses.
        let at = Span::mixed_site().located_at(parens);
        let (krate, item) = (respan(self.krate, at), self.item);
        let hidden = |name: &str| Ident::new(name, at);
        let (events, event, cx, err) = (
            hidden("__beluga_events"),
            hidden("__beluga_event"),
            hidden("__beluga_cx"),
            hidden("__beluga_err"),
        );
        let private = quote_spanned!(at=> #krate::__private);
        let label = syn::Lifetime::new(LABEL, Span::mixed_site().located_at(span));
        quote_spanned! {at=>
            {
                let mut #events = #private::pin!(#stream);
                loop {
                    match #private::poll_fn(|#cx| {
                        #private::checks::EmitAll::<#item>::poll_event(#events.as_mut(), #cx)
                    })
                    .await
                    {
                        #private::Some(#private::Ok(#event)) => {
                            if #event.is_done() {
                                break #event.into_payload();
                            }
                            #private::Yielder::value(#yielder, #private::Yielded::Event(#event))
                                .await;
                        }
                        // A `break` to the body's label, not a `return`: inside an `async`
                        // block of another macro's, the label is the one error.
                        #private::Some(#private::Err(#err)) => break #label #private::Err(#err),
                        #private::None => break #private::None,
                    }
                }
            }
        }
    }

    /// `emit!(value)` as a syntax tree, its value rewritten first.
    fn rewrite_emit(&mut self, mac: &Macro) -> TokenStream {
        let span = mac.span();
        if let Ok(mut value) = mac.parse_body::<Expr>() {
            self.visit_expr_mut(&mut value);
            self.emit(&value.to_token_stream(), value.span(), span)
        } else {
            self.errors.push_spanned(
                mac,
                "`emit!` takes one value: `emit!(payload)` or `emit!(event)`",
            );
            self.neutral_tokens(&mac.tokens, mac.delimiter.span().join(), span)
        }
    }

    /// `emit_all!(stream)` as a syntax tree, its stream rewritten first.
    fn rewrite_emit_all(&mut self, mac: &Macro) -> TokenStream {
        let span = mac.span();
        if let Ok(mut stream) = mac.parse_body::<Expr>() {
            self.visit_expr_mut(&mut stream);
            self.emit_all(&stream.to_token_stream(), mac.delimiter.span().join(), span)
        } else {
            self.errors.push_spanned(
                mac,
                "`emit_all!` takes one event stream: `emit_all!(other_stream)`",
            );
            self.neutral_tokens(&mac.tokens, mac.delimiter.span().join(), span)
        }
    }

    /// The arguments of an `emit!` or `emit_all!` that is an error (misplaced, or not one
    /// value), still type-checked where they are: from `emit!(a, b)` into `{ let _ = (a, b); }`,
    /// with the visitor's rules applied inside. The body stays visible to the IDE (completion
    /// inside `emit!(` works), and a type error of its own in the value is still reported.
    fn neutral_tokens(&mut self, tokens: &TokenStream, parens: Span, span: Span) -> TokenStream {
        let parser = Punctuated::<Expr, Token![,]>::parse_terminated;
        let value = match parser.parse2(tokens.clone()) {
            Ok(mut exprs) => {
                for expr in &mut exprs {
                    self.visit_expr_mut(expr);
                }
                exprs.into_token_stream()
            }
            // Not even expressions (`emit!(x.)` while typing): nothing can be checked.
            Err(_) => TokenStream::new(),
        };
        // At the user's own parentheses, so that the IDE finds a cursor between them, but
        // hygienic, so that `unused_parens` does not take them for the user's.
        let mut group = Group::new(Delimiter::Parenthesis, value);
        group.set_span(Span::mixed_site().located_at(parens));
        neutral(&group.into_token_stream(), span)
    }

    /// From `return`, `return value` and `return Err(e)` into the body's `Result`:
    /// `Ok(None)`, `Ok(final value)` and `Err(ReturnedError::into_error(e))` (the conversion
    /// of `?`, through a check that says what to write for an error that does not convert).
    fn rewrite_return(&self, ret: &ExprReturn) -> TokenStream {
        let span = ret.span();
        let attrs = &ret.attrs;
        let krate = respan(self.krate, span);
        let value = match &ret.expr {
            None => quote_spanned! {span=>
                #krate::__private::Ok(#krate::__private::None)
            },
            Some(value) => {
                if let Some(err) = err_call(value) {
                    // At the user's `e`, so that a missing conversion is reported there, but
                    // the macro's own tokens: a lint about the conversion (clippy's
                    // `useless_conversion` when `e` is already an `Error`) is not the user's.
                    let err_span = Span::mixed_site().located_at(err.span());
                    let krate = respan(self.krate, err_span);
                    let from = quote_spanned! {err_span=>
                        #krate::__private::checks::ReturnedError::into_error(#err)
                    };
                    quote_spanned! {span=> #krate::__private::Err(#from) }
                } else {
                    let value = final_value(self.krate, self.item, value, self.neutral);
                    quote_spanned! {span=> #krate::__private::Ok(#value) }
                }
            }
        };
        let return_token = ret.return_token;
        quote! { #(#attrs)* #return_token #value }
    }

    /// From `operand?` into `checks::QuestionMark::value(operand)?`: the same `?` for a
    /// `Result` whose error converts into `Error`, and an error that says what to write for
    /// anything else (an `Option`, another error type), spanned on the `?`.
    fn rewrite_try(&self, operand: &Expr, question: Token![?]) -> TokenStream {
        // The check's own tokens where the operand starts: the whole `operand?` keeps its
        // span, for an error about its value.
        let at = operand.span();
        let krate = respan(self.krate, at);
        let mut operand = Group::new(Delimiter::None, operand.to_token_stream());
        operand.set_span(at);
        let call = quote_spanned! {at=>
            #krate::__private::checks::QuestionMark::value(#operand)
        };
        quote! { #call #question }
    }

    /// Rewrites another macro's tokens (`tokio::select!`, `vec!`, `assert!`, ...), where the
    /// syntax tree is not visible. Arguments that parse as a list of expressions are rewritten
    /// as expressions; other tokens are walked by hand (see [`Visitor::walk`]).
    fn rewrite_macro_tokens(&mut self, mac: &mut Macro) {
        if !needs_rewrite(&mac.tokens) {
            return;
        }
        let parser = Punctuated::<Expr, Token![,]>::parse_terminated;
        if let Ok(mut exprs) = parser.parse2(mac.tokens.clone()) {
            for expr in &mut exprs {
                self.visit_expr_mut(expr);
            }
            mac.tokens = exprs.into_token_stream();
        } else {
            mac.tokens = self.walk(std::mem::take(&mut mac.tokens));
        }
    }

    /// Rewrites tokens the way the visitor rewrites a syntax tree, tracking the closures,
    /// `async` blocks and nested items in them: at body level `emit!`, `emit_all!` and `return`
    /// (up to the end of its expression) are rewritten; inside a closure or an `async` block an
    /// `emit!` is an error; a nested item is left alone.
    fn walk(&mut self, tokens: TokenStream) -> TokenStream {
        let tts: Vec<TokenTree> = tokens.into_iter().collect();
        let mut out = TokenStream::new();
        // Whether the previous token ends an operand: then a `|` is an operator, not a closure.
        let mut operand = false;
        let mut i = 0;
        while i < tts.len() {
            if let TokenTree::Ident(ident) = &tts[i] {
                if let Some(next) = self.walk_special(&tts, i, &mut out) {
                    // A nested item ends with `}` or `;`: an expression starts after it.
                    operand =
                        !matches!(ident.to_string().as_str(), "fn" | "impl" | "mod" | "trait");
                    i = next;
                    continue;
                }
            }
            let tt = &tts[i];
            match tt {
                TokenTree::Punct(punct) if punct.as_char() == '|' && !operand => {
                    i = self.walk_closure(&tts, i, &mut out);
                    operand = true;
                    continue;
                }
                TokenTree::Group(group) => {
                    let group = self.walk_group(group, self.scope);
                    out.extend([TokenTree::Group(group)]);
                }
                _ => out.extend([tt.clone()]),
            }
            operand = match tt {
                TokenTree::Ident(ident) => !is_keyword(&ident.to_string()),
                // `x? | y`: a `?` ends an operand, other punctuation starts one.
                TokenTree::Punct(punct) => punct.as_char() == '?',
                TokenTree::Group(_) | TokenTree::Literal(_) => true,
            };
            i += 1;
        }
        out
    }

    /// The identifier at `tts[i]` when it starts something the walk handles itself: `emit!`,
    /// `emit_all!`, an `async` block or closure, a `move` closure, a nested item, a `return` in
    /// the body. Writes it to `out` and returns the index after it.
    fn walk_special(
        &mut self,
        tts: &[TokenTree],
        i: usize,
        out: &mut TokenStream,
    ) -> Option<usize> {
        let TokenTree::Ident(ident) = &tts[i] else {
            return None;
        };
        let name = ident.to_string();
        match name.as_str() {
            "emit" | "emit_all" if is_punct(tts.get(i + 1), '!') => {
                let Some(TokenTree::Group(args)) = tts.get(i + 2) else {
                    return None;
                };
                out.extend(self.walk_emit(&name, &tts[i..i + 3], args));
                Some(i + 3)
            }
            "async" => {
                let mut j = i + 1;
                if matches!(tts.get(j), Some(TokenTree::Ident(m)) if m == "move") {
                    j += 1;
                }
                match tts.get(j) {
                    Some(TokenTree::Group(block)) if block.delimiter() == Delimiter::Brace => {
                        out.extend(tts[i..j].iter().cloned());
                        let block = self.walk_group(block, Scope::Async);
                        out.extend([TokenTree::Group(block)]);
                        Some(j + 1)
                    }
                    pipe if is_punct(pipe, '|') => {
                        out.extend(tts[i..j].iter().cloned());
                        Some(self.walk_closure(tts, j, out))
                    }
                    _ => None,
                }
            }
            "move" if is_punct(tts.get(i + 1), '|') => {
                out.extend([tts[i].clone()]);
                Some(self.walk_closure(tts, i + 1, out))
            }
            "fn" | "impl" | "mod" | "trait"
                if name != "fn" || matches!(tts.get(i + 1), Some(TokenTree::Ident(_))) =>
            {
                // A nested item is not part of the producer: copied as it is, up to its block.
                let mut j = i;
                while j < tts.len() {
                    out.extend([tts[j].clone()]);
                    j += 1;
                    let block = matches!(&tts[j - 1], TokenTree::Group(g) if g.delimiter() == Delimiter::Brace);
                    if block || is_punct(tts.get(j - 1), ';') {
                        break;
                    }
                }
                Some(j)
            }
            "return" if self.scope == Scope::Body => {
                let (tokens, consumed) = self.walk_return(ident, &tts[i + 1..])?;
                out.extend(tokens);
                Some(i + 1 + consumed)
            }
            _ => None,
        }
    }

    fn walk_group(&mut self, group: &Group, scope: Scope) -> Group {
        let mut stream = TokenStream::new();
        self.in_scope(scope, |v| stream = v.walk(group.stream()));
        let mut walked = Group::new(group.delimiter(), stream);
        walked.set_span(group.span());
        walked
    }

    /// `emit!(..)` or `emit_all!(..)` found by the token walk: rewritten in the body, an error
    /// elsewhere.
    fn walk_emit(&mut self, name: &str, tokens: &[TokenTree], args: &Group) -> TokenStream {
        let original: TokenStream = tokens.iter().cloned().collect();
        // The name's span, as for an `emit!` the syntax tree holds (see `Spanned for Macro`).
        let span = tokens[0].span();
        if self.scope != Scope::Body {
            self.misplaced(&original, &format!("`{name}!`"));
            return self.neutral_tokens(&args.stream(), args.span(), span);
        }
        let value = self.walk(args.stream());
        if syn::parse2::<Expr>(value.clone()).is_err() {
            let message = if name == "emit" {
                "`emit!` takes one value: `emit!(payload)` or `emit!(event)`"
            } else {
                "`emit_all!` takes one event stream: `emit_all!(other_stream)`"
            };
            self.errors.push_spanned(&original, message);
            return self.neutral_tokens(&args.stream(), args.span(), span);
        }
        if name == "emit" {
            self.emit(&value, args.span(), span)
        } else {
            self.emit_all(&value, args.span(), span)
        }
    }

    /// A closure whose first `|` is at `tts[start]`: its parameters as they are, its body walked
    /// as a closure's. The body is a block after `-> Type`, else everything up to the next `,`
    /// or `;`. Returns the index after the closure.
    fn walk_closure(&mut self, tts: &[TokenTree], start: usize, out: &mut TokenStream) -> usize {
        out.extend([tts[start].clone()]);
        let mut i = start + 1;
        while i < tts.len() && !is_punct(tts.get(i), '|') {
            out.extend([tts[i].clone()]);
            i += 1;
        }
        if i < tts.len() {
            out.extend([tts[i].clone()]);
            i += 1;
        }
        let mut body = TokenStream::new();
        let returns_type = is_punct(tts.get(i), '-') && is_punct(tts.get(i + 1), '>');
        while i < tts.len() {
            let tt = &tts[i];
            if !returns_type && (is_punct(Some(tt), ',') || is_punct(Some(tt), ';')) {
                break;
            }
            body.extend([tt.clone()]);
            i += 1;
            if returns_type
                && matches!(tt, TokenTree::Group(g) if g.delimiter() == Delimiter::Brace)
            {
                break;
            }
        }
        let mut walked = TokenStream::new();
        self.in_scope(Scope::Closure, |v| walked = v.walk(body));
        out.extend(walked);
        i
    }

    /// `return` found by the token walk in the body, followed by `rest`: parsed with the
    /// expression after it, rewritten as the visitor rewrites a `return`. Returns the tokens and
    /// how many tokens of `rest` were used; `None` if no expression can be read there.
    fn walk_return(&mut self, token: &Ident, rest: &[TokenTree]) -> Option<(TokenStream, usize)> {
        let rest: TokenStream = rest.iter().cloned().collect();
        let total = rest.clone().into_iter().count();
        let parser = |input: ParseStream<'_>| {
            let expr = if input.is_empty() || input.peek(Token![;]) || input.peek(Token![,]) {
                None
            } else {
                Some(input.parse::<Expr>()?)
            };
            let left: TokenStream = input.parse()?;
            Ok((expr, left))
        };
        let (expr, left) = parser.parse2(rest).ok()?;
        let consumed = total - left.into_iter().count();
        let mut rewritten = Expr::Return(ExprReturn {
            attrs: Vec::new(),
            return_token: Token![return](token.span()),
            expr: expr.map(Box::new),
        });
        self.visit_expr_mut(&mut rewritten);
        Some((rewritten.into_token_stream(), consumed))
    }
}

/// The final value of a body that ends with `value`: `None` for `()`, `Some(value)` for a `T`,
/// through `checks::FinalValue`, spanned on `value`, so that a value of another type is reported
/// there with what to write instead. `neutral` (the payload type is unknown): `value` is
/// evaluated and the body has no final value.
pub(crate) fn final_value(
    krate: &syn::Path,
    item: &syn::Type,
    value: &Expr,
    neutral: bool,
) -> TokenStream {
    let span = value.span();
    let krate = respan(krate, span);
    if neutral {
        return quote_spanned! {span=>
            { let _ = #value; #krate::__private::None }
        };
    }
    if is_unit(item) {
        // A producer of `()` items: `()` is both a payload and no final value. The inherent
        // `into_final` of `Final<()>` takes precedence: a plain `done()`.
        let final_value = Ident::new("__beluga_final", Span::mixed_site().located_at(span));
        return quote_spanned! {span=>
            {
                #[allow(unused_imports)]
                use #krate::__private::IntoFinal as _;
                let #final_value: #krate::__private::Option<#item> =
                    #krate::__private::Final(#value).into_final();
                #final_value
            }
        };
    }
    quote_spanned! {span=>
        #krate::__private::checks::FinalValue::<#item, _>::into_final(#value)
    }
}

/// Whether `ty` is written `()`.
fn is_unit(ty: &syn::Type) -> bool {
    match ty {
        syn::Type::Tuple(tuple) => tuple.elems.is_empty(),
        syn::Type::Paren(paren) => is_unit(&paren.elem),
        syn::Type::Group(group) => is_unit(&group.elem),
        _ => false,
    }
}

/// From the arguments of an `emit!` that sends nothing into `{ let _ = value; }`.
fn neutral(value: &TokenStream, span: Span) -> TokenStream {
    quote_spanned! {span=> { let _ = #value; } }
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

fn is_punct(tt: Option<&TokenTree>, c: char) -> bool {
    matches!(tt, Some(TokenTree::Punct(p)) if p.as_char() == c)
}

/// Keywords after which an expression starts (so a `|` after them opens a closure).
fn is_keyword(name: &str) -> bool {
    matches!(
        name,
        "as" | "box"
            | "break"
            | "const"
            | "continue"
            | "do"
            | "dyn"
            | "else"
            | "enum"
            | "extern"
            | "for"
            | "if"
            | "in"
            | "let"
            | "loop"
            | "match"
            | "move"
            | "mut"
            | "pub"
            | "ref"
            | "return"
            | "static"
            | "struct"
            | "type"
            | "unsafe"
            | "use"
            | "where"
            | "while"
            | "yield"
    )
}

/// Whether another macro's tokens hold something to rewrite or reject: `emit!`, `emit_all!`
/// or `return`.
fn needs_rewrite(tokens: &TokenStream) -> bool {
    let mut iter = tokens.clone().into_iter().peekable();
    while let Some(tt) = iter.next() {
        match tt {
            TokenTree::Ident(ident) if ident == "return" => return true,
            TokenTree::Ident(ident)
                if (ident == "emit" || ident == "emit_all")
                    && matches!(iter.peek(), Some(TokenTree::Punct(p)) if p.as_char() == '!') =>
            {
                return true;
            }
            TokenTree::Group(group) if needs_rewrite(&group.stream()) => return true,
            _ => {}
        }
    }
    false
}

/// `"emit"` or `"emit_all"` when `expr` is that macro.
fn emit_name(expr: &Expr) -> Option<&'static str> {
    match expr {
        Expr::Macro(ExprMacro { mac, .. }) if is_named(mac, "emit") => Some("emit"),
        Expr::Macro(ExprMacro { mac, .. }) if is_named(mac, "emit_all") => Some("emit_all"),
        _ => None,
    }
}

/// `emit!` or a path ending in it (`beluga_core::emit!`).
fn is_named(mac: &Macro, name: &str) -> bool {
    mac.path.segments.last().is_some_and(|s| s.ident == name)
}

/// `tokens` as an expression, after `attrs`.
fn verbatim(attrs: &[Attribute], tokens: &TokenStream) -> Expr {
    Expr::Verbatim(quote!(#(#attrs)* #tokens))
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
            Expr::Await(ExprAwait {
                base, await_token, ..
            }) if emit_name(base).is_some() => {
                let name = emit_name(base).expect("checked above");
                self.errors.push_spanned(
                    await_token,
                    format!("`{name}!` waits for the consumer by itself: remove `.await`"),
                );
                // From `emit!(x).await` into `emit!(x)`, rewritten as usual.
                let mut base = std::mem::replace(&mut **base, Expr::Verbatim(TokenStream::new()));
                self.visit_expr_mut(&mut base);
                *expr = base;
            }
            Expr::Try(ExprTry {
                expr: operand,
                question_token,
                ..
            }) if emit_name(operand) == Some("emit") => {
                self.errors.push_spanned(
                    question_token,
                    "`emit!` sends its value and cannot fail: remove the `?`",
                );
                // From `emit!(x)?` into `emit!(x)`, rewritten as usual.
                let mut operand =
                    std::mem::replace(&mut **operand, Expr::Verbatim(TokenStream::new()));
                self.visit_expr_mut(&mut operand);
                *expr = operand;
            }
            Expr::Try(_) if self.scope == Scope::Body => {
                visit_mut::visit_expr_mut(self, expr);
                let Expr::Try(ExprTry {
                    attrs,
                    expr: operand,
                    question_token,
                }) = &*expr
                else {
                    unreachable!()
                };
                let tokens = self.rewrite_try(operand, *question_token);
                *expr = verbatim(attrs, &tokens);
            }
            Expr::Yield(ExprYield {
                yield_token,
                expr: value,
                ..
            }) => {
                // rustc has already rejected the syntax; say what to write instead.
                self.errors.push_spanned(
                    *yield_token,
                    "`yield` is not stable Rust: write `emit!(value)` to send a value from a producer",
                );
                // From `yield value` into `{ let _ = value; }`, still type-checked.
                let span = yield_token.span;
                let mut value = value.as_deref().cloned();
                if let Some(value) = &mut value {
                    self.visit_expr_mut(value);
                }
                *expr = Expr::Verbatim(neutral(&quote!((#value)), span));
            }
            Expr::Return(_) => {
                visit_mut::visit_expr_mut(self, expr);
                if self.scope == Scope::Body {
                    let Expr::Return(ret) = &*expr else {
                        unreachable!()
                    };
                    *expr = Expr::Verbatim(self.rewrite_return(ret));
                }
            }
            Expr::Macro(ExprMacro { mac, attrs }) if is_named(mac, "emit") => {
                let tokens = if self.scope == Scope::Body {
                    self.rewrite_emit(mac)
                } else {
                    self.misplaced(&*mac, "`emit!`");
                    self.neutral_tokens(&mac.tokens, mac.delimiter.span().join(), mac.span())
                };
                *expr = verbatim(&std::mem::take(attrs), &tokens);
            }
            Expr::Macro(ExprMacro { mac, attrs }) if is_named(mac, "emit_all") => {
                let tokens = if self.scope == Scope::Body {
                    self.rewrite_emit_all(mac)
                } else {
                    self.misplaced(&*mac, "`emit_all!`");
                    self.neutral_tokens(&mac.tokens, mac.delimiter.span().join(), mac.span())
                };
                *expr = verbatim(&std::mem::take(attrs), &tokens);
            }
            Expr::Macro(ExprMacro { mac, .. }) => self.rewrite_macro_tokens(mac),
            _ => visit_mut::visit_expr_mut(self, expr),
        }
    }

    fn visit_stmt_mut(&mut self, stmt: &mut Stmt) {
        if let Stmt::Macro(stmt_macro) = stmt {
            if is_named(&stmt_macro.mac, "emit") || is_named(&stmt_macro.mac, "emit_all") {
                // From the statement `emit!(x);` into the expression statement, visited below,
                // with its attributes.
                let expr = Expr::Macro(ExprMacro {
                    attrs: std::mem::take(&mut stmt_macro.attrs),
                    mac: stmt_macro.mac.clone(),
                });
                let semi = stmt_macro
                    .semi_token
                    .unwrap_or_else(|| Token![;](Span::call_site()));
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
