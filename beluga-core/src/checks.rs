//! Compile-time checks that the macros' expansions call, so that a mistake is reported as one
//! error on the user's own token that says what to write instead, and names nothing of the
//! expansion. Not public API (re-exported as `__private::checks` for the expansions).
//!
//! Each check is a trait called by path (`checks::Trait::<T>::method(value)`), with a
//! `#[diagnostic::on_unimplemented]` message, implemented through
//! `#[diagnostic::do_not_recommend]` impls: rustc then reports the check itself with its
//! message (not a bound deep inside it), adds no "required by a bound in ..." note (a trait
//! called by path has none), and lists none of the impls. The method's return type names only
//! the trait's parameters, so a failed check is reported once, not again where its value is
//! used.

use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use futures_core::Stream;

use crate::context::Context;
use crate::error::Error;
use crate::event::EventResult;

// ---------------------------------------------------------------------------------------------
// `?` in a producer's body
// ---------------------------------------------------------------------------------------------

/// What `?` in a producer's body is applied to: the expansion turns `x?` into
/// `QuestionMark::value(x)?`, so that anything but a `Result` whose error converts into
/// [`Error`] is reported with what to write instead.
#[diagnostic::on_unimplemented(
    message = "`?` in a producer needs a `Result` whose error converts into `beluga_core::Error`, not `{Self}`",
    label = "`?` cannot end the stream with this",
    note = "for an `Option`, say what was missing: `.ok_or_else(|| Error::new(ErrorCode::NotFound, \"...\"))?`",
    note = "for an error of another type, convert it: `.map_err(|e| Error::new(ErrorCode::InvalidInput, e.to_string()))?`, or, for an error type of yours, implement `From<YourError> for beluga_core::Error`"
)]
pub trait QuestionMark<V> {
    /// The value, or the error as an [`Error`].
    fn value(self) -> Result<V, Error>;
}

#[diagnostic::do_not_recommend]
impl<V, E: Into<Error>> QuestionMark<V> for Result<V, E> {
    // `inline`, not `inline(always)`: optimized, it is inlined all the same (nothing over a
    // plain `?`); unoptimized, it is one call instead of a copy, with its debug information, at
    // every `?` of every producer.
    #[inline]
    fn value(self) -> Result<V, Error> {
        match self {
            Ok(value) => Ok(value),
            Err(err) => Err(err.into()),
        }
    }
}

/// The error of `return Err(error)` in a producer's body: the expansion turns it into
/// `ReturnedError::into_error(error)`.
#[diagnostic::on_unimplemented(
    message = "`return Err(..)` in a producer needs an error that converts into `beluga_core::Error`, not `{Self}`",
    label = "cannot end the stream with this error",
    note = "build one, like `return Err(Error::new(ErrorCode::InvalidInput, \"...\"))`, or, for an error type of yours, implement `From<YourError> for beluga_core::Error`"
)]
pub trait ReturnedError {
    /// The error as an [`Error`].
    fn into_error(self) -> Error;
}

#[diagnostic::do_not_recommend]
impl<E: Into<Error>> ReturnedError for E {
    #[inline]
    fn into_error(self) -> Error {
        self.into()
    }
}

// ---------------------------------------------------------------------------------------------
// The final value
// ---------------------------------------------------------------------------------------------

/// The kind of final value a body ends with: a payload.
#[derive(Debug)]
pub struct Payload;

/// The kind of final value a body ends with: `()`, no final value.
#[derive(Debug)]
pub struct NoValue;

/// What a producer's body ends with (its tail expression, or `return value`): a payload `T`,
/// sent as `Event::done_with(value)`, or `()`, which sends a plain `Event::done()` (or an
/// expression that never completes). `K` tells them apart ([`Payload`], [`NoValue`],
/// [`Diverges`]); it is inferred.
#[diagnostic::on_unimplemented(
    message = "a producer of `{T}` events cannot end with a value of type `{Self}`",
    label = "expected `{T}` (the final value) or `()`",
    note = "the body's last expression, or `return value`, is the final value, sent as `Event::done_with(value)`; `()` ends the stream with a plain `Event::done()`",
    note = "there is no `Ok(..)` to wrap: end with the value itself or with nothing, and with an error through `?` or `return Err(error)`"
)]
pub trait FinalValue<T, K> {
    /// The final value, if any.
    fn into_final(self) -> Option<T>;
}

#[diagnostic::do_not_recommend]
impl<T> FinalValue<T, Payload> for T {
    #[inline]
    fn into_final(self) -> Option<T> {
        Some(self)
    }
}

#[diagnostic::do_not_recommend]
impl<T> FinalValue<T, NoValue> for () {
    #[inline]
    fn into_final(self) -> Option<T> {
        None
    }
}

/// The kind of final value a body ends with: none, the body never ends there (its last
/// expression is a `loop` without `break`, a `panic!`, ...).
#[derive(Debug)]
pub struct Diverges;

/// Names the type `!` on stable Rust, as the output of a function that never returns.
pub trait FnOutput {
    /// The output.
    type Output;
}

impl<R> FnOutput for fn() -> R {
    type Output = R;
}

/// The type `!`, the type of an expression that never completes.
pub type Never = <fn() -> ! as FnOutput>::Output;

#[diagnostic::do_not_recommend]
impl<T> FinalValue<T, Diverges> for Never {
    #[inline]
    fn into_final(self) -> Option<T> {
        self
    }
}

// ---------------------------------------------------------------------------------------------
// `emit_all!`
// ---------------------------------------------------------------------------------------------

/// What `emit_all!` forwards: an event stream of the producer's payload type. The expansion
/// polls the stream through [`EmitAll::poll_event`] only, so that this is the one bound on it.
#[diagnostic::on_unimplemented(
    message = "`emit_all!` forwards an event stream of `{T}` (`impl Stream<Item = EventResult<{T}>>`), not `{Self}`",
    label = "not a stream of `{T}` events",
    note = "to emit the items of a collection, write `for item in items {{ emit!(item); }}`",
    note = "for a stream of other items, turn them into events of `{T}` first, or `emit!` each one in a loop"
)]
pub trait EmitAll<T> {
    /// Polls the next item.
    fn poll_event(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<EventResult<T>>>;
}

#[diagnostic::do_not_recommend]
impl<T, S: Stream<Item = EventResult<T>>> EmitAll<T> for S {
    #[inline(always)]
    #[allow(
        clippy::inline_always,
        reason = "on every event `emit_all!` forwards: it must cost nothing over `poll_next`"
    )]
    fn poll_event(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<EventResult<T>>> {
        self.poll_next(cx)
    }
}

// ---------------------------------------------------------------------------------------------
// Fallback stream
// ---------------------------------------------------------------------------------------------

/// The stream a producer with errors, or a `#[derive(Runnable)]` whose stream method does not
/// fit, expands to, so that only those errors are reported. It is never polled: the crate does
/// not compile.
#[derive(Debug)]
pub struct Fallback<T>(PhantomData<fn() -> T>);

impl<T> Fallback<T> {
    /// The fallback stream.
    pub fn new() -> Self {
        Fallback(PhantomData)
    }
}

impl<T> Default for Fallback<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Stream for Fallback<T> {
    type Item = EventResult<T>;

    fn poll_next(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        unreachable!("code with compile errors cannot run")
    }
}

// ---------------------------------------------------------------------------------------------
// `#[derive(Runnable)]`: the stream method
// ---------------------------------------------------------------------------------------------

/// The stream method of a `#[derive(Runnable)]`, to be called as `method(this, ctx, input)`.
///
/// The derive calls [`ResolveStreamMethod::resolve`] on `&&&&&&&&&&StreamMethod`: method
/// resolution takes the first impl (the one for the most references) whose bounds the method
/// meets. The first is the method that fits; each of the others recognizes one way it does not
/// (a wrong argument order, `&Context`, ...) and returns a verdict that fails the check saying
/// so; the last takes any method.
pub struct StreamMethod<'s, S: ?Sized, I, O, F> {
    this: &'s S,
    method: F,
    _types: PhantomData<fn(I) -> O>,
}

impl<'s, S: ?Sized, I, O, F> StreamMethod<'s, S, I, O, F> {
    /// The method `method` of `this`.
    #[inline]
    pub fn new(this: &'s S, method: F) -> Self {
        StreamMethod {
            this,
            method,
            _types: PhantomData,
        }
    }
}

impl<S: ?Sized, I, O, F> fmt::Debug for StreamMethod<'_, S, I, O, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamMethod").finish_non_exhaustive()
    }
}

/// A verdict on one property of the stream method that holds.
#[derive(Debug, Clone, Copy)]
pub struct Fits;

/// The verdicts on a stream method and its stream: the receiver, the argument order, the
/// context, the input, the input taken by value, the returned stream, the signature as a
/// whole. Each is [`Fits`], or
/// what fails the check of that property: the runnable (`&S`), or the stream the method
/// returned.
pub type Verdict<A, B, C, D, E, G, H> = (A, B, C, D, E, G, H);

/// See [`StreamMethod`].
pub trait ResolveStreamMethod<I> {
    /// The verdicts ([`Verdict`]).
    type Verdict;
    /// The stream: the method's when it fits, else a [`Fallback`].
    type Stream;

    /// Calls the method when it fits.
    fn resolve(self, ctx: Context, input: I) -> (Self::Verdict, Self::Stream);
}

// The method that fits.
#[diagnostic::do_not_recommend]
impl<'s, S: ?Sized, I, O, F, R> ResolveStreamMethod<I> for &&&&&&&&&&StreamMethod<'s, S, I, O, F>
where
    F: Fn(&'s S, Context, I) -> R,
    R: Stream<Item = EventResult<O>> + Send + 's,
{
    type Verdict = Verdict<Fits, Fits, Fits, Fits, Fits, Fits, Fits>;
    type Stream = R;

    #[inline(always)]
    #[allow(
        clippy::inline_always,
        reason = "the call the derive's `stream` makes: nothing of its own"
    )]
    fn resolve(self, ctx: Context, input: I) -> (Self::Verdict, R) {
        (
            (Fits, Fits, Fits, Fits, Fits, Fits, Fits),
            (self.method)(self.this, ctx, input),
        )
    }
}

// The arguments fit, the returned value does not.
#[diagnostic::do_not_recommend]
impl<'s, S: ?Sized, I, O, F, R> ResolveStreamMethod<I> for &&&&&&&&&StreamMethod<'s, S, I, O, F>
where
    F: Fn(&'s S, Context, I) -> R,
{
    type Verdict = Verdict<Fits, Fits, Fits, Fits, Fits, R, Fits>;
    type Stream = Fallback<O>;

    fn resolve(self, ctx: Context, input: I) -> (Self::Verdict, Fallback<O>) {
        let stream = (self.method)(self.this, ctx, input);
        (
            (Fits, Fits, Fits, Fits, Fits, stream, Fits),
            Fallback::new(),
        )
    }
}

/// One way a method does not fit, recognized by `$bounds`: the verdict puts the runnable in the
/// slot of the property it fails.
macro_rules! unfit {
    (
        $refs:ty,
        [$($bounds:tt)*],
        $a:ty, $b:ty, $c:ty, $d:ty, $e:ty, $h:ty,
        |$this:ident| ($($v:expr),*)
    ) => {
        #[diagnostic::do_not_recommend]
        impl<'s, S: ?Sized, I, O, F, R> ResolveStreamMethod<I> for $refs
        where
            $($bounds)*
        {
            type Verdict = Verdict<$a, $b, $c, $d, $e, Fits, $h>;
            type Stream = Fallback<O>;

            fn resolve(self, _: Context, _: I) -> (Self::Verdict, Fallback<O>) {
                let $this = self.this;
                (($($v),*), Fallback::new())
            }
        }
    };
}

// `input` before `ctx`.
unfit!(
    &&&&&&&&StreamMethod<'s, S, I, O, F>,
    [F: Fn(&'s S, I, Context) -> R,],
    Fits, &'s S, Fits, Fits, Fits, Fits,
    |this| (Fits, this, Fits, Fits, Fits, Fits, Fits)
);
// `ctx: &Context`.
unfit!(
    &&&&&&&StreamMethod<'s, S, I, O, F>,
    [F: Fn(&'s S, &'s Context, I) -> R,],
    Fits, Fits, &'s S, Fits, Fits, Fits,
    |this| (Fits, Fits, this, Fits, Fits, Fits, Fits)
);
// `input` borrowed, as `&I` or `&I::Target` (`&str` for a `String`).
unfit!(
    &&&&&&StreamMethod<'s, S, I, O, F>,
    [I: 's, F: Fn(&'s S, Context, &'s I) -> R,],
    Fits, Fits, Fits, Fits, &'s S, Fits,
    |this| (Fits, Fits, Fits, Fits, this, Fits, Fits)
);
unfit!(
    &&&&&StreamMethod<'s, S, I, O, F>,
    [I: std::ops::Deref<Target: 's>, F: Fn(&'s S, Context, &'s I::Target) -> R,],
    Fits, Fits, Fits, Fits, &'s S, Fits,
    |this| (Fits, Fits, Fits, Fits, this, Fits, Fits)
);

// `self` by value.
unfit!(
    &&&&StreamMethod<'s, S, I, O, F>,
    [S: Sized, F: Fn(S, Context, I) -> R,],
    &'s S, Fits, Fits, Fits, Fits, Fits,
    |this| (this, Fits, Fits, Fits, Fits, Fits, Fits)
);
// `&mut self`.
unfit!(
    &&&StreamMethod<'s, S, I, O, F>,
    [F: Fn(&'s mut S, Context, I) -> R,],
    &'s S, Fits, Fits, Fits, Fits, Fits,
    |this| (this, Fits, Fits, Fits, Fits, Fits, Fits)
);
// No `self`.
unfit!(
    &&StreamMethod<'s, S, I, O, F>,
    [F: Fn(Context, I) -> R,],
    &'s S, Fits, Fits, Fits, Fits, Fits,
    |this| (this, Fits, Fits, Fits, Fits, Fits, Fits)
);
// No `input`.
unfit!(
    &StreamMethod<'s, S, I, O, F>,
    [F: Fn(&'s S, Context) -> R,],
    Fits, Fits, Fits, &'s S, Fits, Fits,
    |this| (Fits, Fits, Fits, this, Fits, Fits, Fits)
);

// Any other method.
#[diagnostic::do_not_recommend]
impl<'s, S: ?Sized, I, O, F> ResolveStreamMethod<I> for StreamMethod<'s, S, I, O, F> {
    type Verdict = Verdict<Fits, Fits, Fits, Fits, Fits, Fits, &'s S>;
    type Stream = Fallback<O>;

    fn resolve(self, _: Context, _: I) -> (Self::Verdict, Fallback<O>) {
        (
            (Fits, Fits, Fits, Fits, Fits, Fits, self.this),
            Fallback::new(),
        )
    }
}

/// Verdict 0: the stream method takes `&self`.
#[diagnostic::on_unimplemented(
    message = "the stream method must take `&self`",
    label = "expected `fn(&self, ctx: Context, input: {I})`",
    note = "a runnable is run from a shared reference, many times and concurrently (`parallel`, `batch`): take `&self`, and keep what changes in the stream's body or behind a lock"
)]
pub trait TakesSelfByReference<I> {
    /// Checks the verdict.
    fn check(self);
}

/// Verdict 1: `ctx` comes before `input`.
#[diagnostic::on_unimplemented(
    message = "the stream method takes `input` before `ctx`",
    label = "expected `fn(&self, ctx: Context, input: {I})`",
    note = "swap the two arguments: `ctx: Context` first, then `input: {I}`"
)]
pub trait TakesContextThenInput<I> {
    /// Checks the verdict.
    fn check(self);
}

/// Verdict 2: `ctx` is a `Context`, not a reference to one.
#[diagnostic::on_unimplemented(
    message = "the stream method must take `ctx: Context`, not `&Context`",
    label = "expected `fn(&self, ctx: Context, input: {I})`",
    note = "the runnable hands its stream a `Context` of its own (cloning one is a reference count), which the stream keeps to watch for cancellation: write `ctx: Context`"
)]
pub trait TakesContextByValue<I> {
    /// Checks the verdict.
    fn check(self);
}

/// Verdict 3: the method takes the input.
#[diagnostic::on_unimplemented(
    message = "the stream method takes no input: add `input: {I}` after `ctx`",
    label = "expected `fn(&self, ctx: Context, input: {I})`",
    note = "`input = {I}` in `#[runnable(...)]` is the type of the method's third argument"
)]
pub trait TakesInput<I> {
    /// Checks the verdict.
    fn check(self);
}

/// Verdict 4: the method takes its input by value.
#[diagnostic::on_unimplemented(
    message = "the stream method borrows its input: take `input: {I}`",
    label = "expected `fn(&self, ctx: Context, input: {I})`",
    note = "the runnable hands the stream its input by value, and the stream keeps it: take it owned, and borrow from it in the body"
)]
pub trait TakesInputByValue<I> {
    /// Checks the verdict.
    fn check(self);
}

/// Verdict 5: the method returns a `Send` event stream of the output type.
#[diagnostic::on_unimplemented(
    message = "the stream method returns `{Self}`, not a `Send` event stream of `{O}`",
    label = "expected `impl Stream<Item = EventResult<{O}>> + Send + '_`",
    note = "`output = {O}` in `#[runnable(...)]` is the payload type of the stream's events, and the stream must be `Send`",
    note = "an `async fn`, or a function that returns a `Result`, produces one value: make it a `#[stream_producer] fn` (not `async`) that `emit!`s its events and ends with its final value"
)]
pub trait ReturnsEventStream<O> {
    /// Checks the verdict.
    fn check(self);
}

/// Verdict 6: the method as a whole.
#[diagnostic::on_unimplemented(
    message = "this method cannot be the runnable's stream method",
    label = "expected `fn(&self, ctx: Context, input: {I}) -> impl Stream<Item = EventResult<{O}>> + Send + '_`",
    note = "`input = {I}` in `#[runnable(...)]` is the type of the method's input, taken by value (an owned type: take `String`, not `&str`), and `output = {O}` the payload type of its events"
)]
pub trait StreamMethodSignature<I, O> {
    /// Checks the verdict.
    fn check(self);
}

macro_rules! fits {
    ($($check:ident<$($param:ident),*>),*) => {$(
        #[diagnostic::do_not_recommend]
        impl<$($param),*> $check<$($param),*> for Fits {
            #[inline(always)]
            #[allow(clippy::inline_always, reason = "nothing to do")]
            fn check(self) {}
        }
    )*};
}

fits!(
    TakesSelfByReference<I>,
    TakesContextThenInput<I>,
    TakesContextByValue<I>,
    TakesInput<I>,
    TakesInputByValue<I>,
    ReturnsEventStream<O>,
    StreamMethodSignature<I, O>
);
