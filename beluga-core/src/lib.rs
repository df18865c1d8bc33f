// Over 500 lines because most of it is documentation: the crate docs and the user-facing docs of
// the macros and `emit!`, each with runnable examples; the code is re-exports.
//! Event streams for LLM and agent pipelines.
//!
//! beluga brings the core streaming primitives of the Go framework Beluga AI to Rust:
//!
//! * [`Event<T>`]: the one unit that flows through every stream, with Beluga's six kinds
//!   (`data`, `tool_call`, `tool_result`, `handoff`, `done`, `error`) and metadata.
//! * [`Error`]: structured errors (`op`, `code`, `message`, cause) whose retryability is decided
//!   by the root cause. The [`error`] module explains terminal errors versus error events.
//! * [`Context`]: cancellation, deadline and request-scoped values, passed per call, with a
//!   cancellation check that is one atomic load.
//! * Streams of `Result<Event<T>, Error>` ([`EventResult`]) and their combinators, as methods
//!   of [`EventStreamExt`]; [`stream`] holds the constructors of new streams ([`stream::iter`],
//!   and [`stream::merge`], where several streams meet) and the boxed alias [`BoxEventStream`].
//! * [`#[stream_producer]`](macro@stream_producer): a function whose body `emit!`s its items
//!   becomes an event stream that checks cancellation for you; [`stream::produce`] is its inline
//!   form, an async closure that `emit`s through the [`Emitter`](stream::Emitter) it is handed.
//! * [`Runnable`] and [`#[derive(Runnable)]`](macro@Runnable): a typed step whose `invoke` is
//!   derived from its `stream`, with [`pipe`](RunnableExt::pipe),
//!   [`runnable::parallel`] and [`batch`](RunnableExt::batch).
//! * [`FlowController`]: a cancellable limit on the work in flight.
//!
//! Coming from Go? [`from_go`] maps Beluga's names onto these.
//!
//! # Example
//!
//! A simulated model streams tokens; the consumer keeps the words, upper-cases them, and gives
//! up when the deadline passes.
//!
//! ```
//! use std::time::Duration;
//! use beluga_core::{Context, ErrorCode, Event, EventKind, EventStreamExt};
//! use futures_util::StreamExt;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let ctx = Context::new().with_timeout(Duration::from_millis(250));
//!
//! // One token every 100 ms, forever.
//! let tokens = futures_util::stream::unfold(0_usize, |i| async move {
//!     tokio::time::sleep(Duration::from_millis(100)).await;
//!     let token = ["Hello", ",", " world"][i % 3];
//!     Some((Ok(Event::data(token.to_owned())), i + 1))
//! });
//!
//! let mut stream = std::pin::pin!(
//!     tokens
//!         .filter_events(|ev| ev.payload().is_some_and(|t| t.trim() != ","))
//!         .map_payload(|t| t.to_uppercase())
//!         .cancellable(&ctx)
//! );
//!
//! let mut text = String::new();
//! while let Some(item) = stream.next().await {
//!     match item {
//!         Ok(ev) => match ev.into_kind() {
//!             EventKind::Data(token) => text.push_str(&token),
//!             _ => {}
//!         },
//!         Err(err) => {
//!             assert_eq!(err.code(), ErrorCode::DeadlineExceeded);
//!             break;
//!         }
//!     }
//! }
//! assert_eq!(text, "HELLO");
//! # }
//! ```
//!
//! # Names
//!
//! Each operation has one name. Combinators are methods of [`EventStreamExt`], named so that
//! they do not clash with `futures::StreamExt` or `tokio_stream::StreamExt` (`map_payload`,
//! `filter_events`, `collect_events`, ...), so all three traits can be in scope at once; a free
//! function exists only where several streams meet ([`stream::merge`]). A name keeps the meaning
//! it has in futures and Tokio: [`read_ahead`](EventStreamExt::read_ahead) runs one stream
//! ahead on a task (futures' `buffered` runs several futures at once, which is another thing),
//! and boxed forms start with `Box` ([`BoxEventStream`], [`BoxRunnable`]; futures'
//! `StreamExt::boxed` turns any `Send` event stream into a `BoxEventStream`).
//!
//! [`Context`] is Go's `context.Context`: the request's cancellation, deadline and values. In
//! code that implements `Stream` by hand, import the task context as
//! `std::task::Context as TaskContext`, as this crate does.
//!
//! # Counts and capacities
//!
//! A count or capacity of zero, or one above the limit a type documents, is refused with an
//! [`invalid_input`](ErrorCode::InvalidInput) error and never panics: constructors return it
//! ([`FlowController::new`], [`fan_out`](EventStreamExt::fan_out),
//! [`BatchOptions::with_max_concurrency`](runnable::BatchOptions::with_max_concurrency),
//! [`RetryPolicy::new`](runnable::RetryPolicy::new)), and a stream adapter
//! ([`read_ahead`](EventStreamExt::read_ahead)) yields it as its one item. Nothing allocates a
//! buffer of its full capacity up front, so any capacity up to the limit works.
//!
//! # Layers
//!
//! The modules form layers, and each imports only from the layers below it, by module path:
//!
//! 1. the event model: [`error`], then [`event`];
//! 2. [`context`], then [`flow`];
//! 3. the combinators ([`EventStreamExt`] and their stream types);
//! 4. the producer machinery (hidden: the compile-time checks the macros' expansions call, then
//!    what `#[stream_producer]` expands to), then [`stream`]
//!    (aliases and constructors, [`stream::produce`], the attribute's inline form, among them);
//! 5. [`runnable`] (the trait, `pipe`, `parallel`, `batch`).
//!
//! This file only documents and re-exports. The integration tests check the layering on the
//! source (`tests/layering.rs`), so an import that runs the other way fails the build's tests.

#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

// So that `#[stream_producer]`'s `::beluga_core::...` paths also work inside this crate.
extern crate self as beluga_core;

#[doc(hidden)]
pub mod __private;
#[doc(hidden)]
pub mod checks;
pub mod context;
pub mod error;
pub mod event;
pub mod flow;
pub mod from_go;
pub mod runnable;
pub mod stream;
mod stream_ext;
#[cfg(feature = "tracing")]
pub mod trace;

pub use crate::context::{CancelReason, Context};
pub use crate::error::{Error, ErrorCode, ResultExt};
pub use crate::event::EventResult;
pub use crate::event::{Event, EventKind, EventType, IntoEvent, Meta, MetaValue};
pub use crate::flow::{FlowController, Permit};
pub use crate::runnable::{BoxRunnable, DynRunnable, Runnable, RunnableExt};
pub use crate::stream::BoxEventStream;
pub use crate::stream_ext::EventStreamExt;

/// Turns a function whose body `emit!`s values into one that returns an event stream.
///
/// Write the body as a generator: `emit!(value)` sends a value, `.await` works anywhere, `?`
/// works on any error that converts into [`Error`], and the function returns its stream at once.
/// The attribute takes care of the rest:
///
/// * `emit!(payload)` sends [`Event::data`]`(payload)`; `emit!(event)` sends an `Event<T>` as it
///   is (an [`Event::error`] is reported and the stream goes on; an emitted `done` ends it).
/// * `?` and `return Err(e)` end the stream with `Err(e.into())`.
/// * `return value`, or a tail expression of the payload type, ends it with
///   [`Event::done_with`]`(value)`; `return;` or the end of the body with [`Event::done`].
///   Exactly one terminal item (`done` or `Err`) comes out, then `None` forever.
/// * Cancellation: the function's [`Context`] argument (found by its type's name, or named with
///   `#[stream_producer(ctx = name)]`, as a `Context` imported under another name must be) is
///   checked before the body resumes, every time (one atomic load; the clock every 32 items
///   when the context has a deadline), and while the body is parked in an `.await`. When the context is cancelled or its deadline passes, the next
///   poll yields `Err` with `cancelled` / `deadline_exceeded`, drops the body (running its
///   destructors) and ends, even if the body was parked forever.
/// * Dropping the stream drops the body at once, inside `drop`.
/// * `emit_all!(other_stream)` forwards every event of another event stream (cancellation still
///   checked), ends this one with its error if it fails, and evaluates to its final value.
///
/// The return type says what the stream carries: `impl Stream<Item = Result<Event<T>, Error>>`
/// (or `EventResult<T>`), which allocates nothing per item and nothing per stream beyond the
/// body itself, or [`BoxEventStream<'_, T>`](BoxEventStream), boxed, for trait objects (the body must
/// then be `Send`). Free functions, inherent and trait-impl methods, generics, borrowed and
/// `impl Trait` arguments, elided lifetimes in the item type (`EventResult<&str>` borrowing an
/// argument) and patterns in arguments (`ref name`, `(a, b)`) all work.
///
/// An emitted value is never lost, duplicated or reordered. `emit!` cannot be used inside a
/// closure or a nested `async` block, which would run it concurrently with the body or later:
/// that is a compile error saying what to do instead, also inside another macro's tokens (a
/// `select!` branch future, `join!`, an `async` block pushed into a `FuturesUnordered`, a
/// `macro_rules!` that wraps its argument in `async { }`). Where another macro evaluates its
/// tokens in place, in `select!` handlers (after `=>`) for one, `emit!`, `emit_all!`,
/// `return` and `?` mean what they mean in the body. Attributes on them (`#[cfg(...)]`) are
/// kept. `emit!` accepts a payload or an event, so it cannot infer a type left open:
/// `emit!(text.parse()?)` is an error, write `emit!(text.parse::<u32>()?)`.
///
/// Mistakes in the body are reported at the user's token with what to write instead: `?` on an
/// `Option` or on an error that does not convert into [`Error`], a body ending with `Ok(())` (the
/// final value is written as it is), `return Err("text")`, `emit!(x).await` or `emit!(x)?`,
/// `emit_all!` of something that is not an event stream of `T`, and a borrowed argument the
/// stream keeps beyond the lifetime its return type names.
///
/// A producer with a mistake the attribute reports (an `emit!` in a closure, a missing
/// `Context`) still expands to the function with its whole body, type-checked but never run:
/// the body's own errors are reported beside the attribute's, and rust-analyzer keeps hover and
/// completion in it, inside `emit!( .. )` too.
///
/// Why `emit!` and not the `yield` keyword: stable Rust rejects `yield` as unstable syntax while
/// parsing the function, before any attribute can rewrite it. `emit!` needs no import.
///
/// Options: `ctx = name` picks the context argument when there are several or its type is
/// spelt another way; `crate = "path"` names `beluga_core` when it is renamed or re-exported.
///
/// For a stream that needs no named function, [`stream::produce`] is the inline form: an async
/// closure handed an [`Emitter`](stream::Emitter), with the same semantics.
///
/// # From async-stream
///
/// async-stream's `stream!` and `try_stream!` are function-like macros: rustfmt leaves their
/// bodies alone and rust-analyzer sees little inside. Here the body is ordinary Rust in both
/// forms. Every stream carries `Result<Event<T>, Error>` items, so `stream!` and `try_stream!`
/// become the same thing:
///
/// | async-stream | `#[stream_producer]` | [`stream::produce`] |
/// |---|---|---|
/// | `stream! { .. }`, `try_stream! { .. }` | `#[stream_producer] fn f(ctx: Context, ..) -> impl Stream<Item = EventResult<T>> { .. }` | `stream::produce(&ctx, async move \|mut e\| { ..; Ok(()) })` |
/// | `yield x;` | `emit!(x);` | `e.emit(x).await;` |
/// | `Err(e)?;` / `x?` in `try_stream!` | the same: `?` and `return Err(e)` end the stream with `Err(e.into())` | the same, in the closure |
/// | a last item as the result | `return x;` or the tail expression: [`Event::done_with`]`(x)` | `e.emit(Event::done_with(x)).await;` |
/// | `for await x in s { yield x; }` | `emit_all!(s)` (for another event stream) | `e.emit_all(s).await?` |
/// | `for await x in s { .. }` | `while let Some(x) = s.next().await { .. }` (futures' `StreamExt`) | the same |
/// | the consumer drops the stream | the body is dropped at once | the same |
/// | nothing | the `Context` is checked before every item and while the body waits | the same, for the `ctx` given to `produce` |
///
/// ```
/// use beluga_core::{stream, stream_producer, Context, Event, EventResult, EventStreamExt};
/// use futures_util::{Stream, StreamExt};
///
/// // async-stream: `try_stream! { for w in words { yield w.len(); } }`
/// #[stream_producer]
/// fn lengths(ctx: Context, words: Vec<String>) -> impl Stream<Item = EventResult<usize>> {
///     for w in words {
///         emit!(w.len());
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let ctx = Context::new();
/// let words = vec!["a".to_owned(), "bc".to_owned()];
/// // The same inline, doubling what it reads (`for await n in inner { yield n * 2; }`).
/// let inner = lengths(ctx.clone(), words);
/// let doubled = stream::produce(&ctx, async move |mut e| {
///     let mut inner = std::pin::pin!(inner.payloads());
///     while let Some(n) = inner.next().await {
///         e.emit(n? * 2).await;
///     }
///     Ok(())
/// });
/// let events = doubled.collect_events().await.events;
/// assert_eq!(events, [Event::data(2), Event::data(4), Event::done()]);
/// # }
/// ```
///
/// # A `'static` stream from a method
///
/// A method producer that takes `&self` returns a stream that borrows `self` (`+ '_`). To
/// spawn the stream, hand it to [`read_ahead`](EventStreamExt::read_ahead) or keep it in a
/// `'static` field, let the method own what it reads instead: take `self: Arc<Self>` (or clone
/// the fields it needs into owned arguments), and the stream is `'static`.
///
/// ```
/// use std::sync::Arc;
/// use beluga_core::{stream_producer, Context, EventResult, EventStreamExt};
/// use futures_util::Stream;
///
/// struct Model {
///     words: Vec<String>,
/// }
///
/// impl Model {
///     #[stream_producer]
///     fn answer(self: Arc<Self>, ctx: Context) -> impl Stream<Item = EventResult<String>> + Send + 'static {
///         for word in &self.words {
///             emit!(word.clone());
///         }
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let model = Arc::new(Model { words: vec!["hi".into(), "there".into()] });
/// let task = tokio::spawn(Arc::clone(&model).answer(Context::new()).collect_events());
/// assert_eq!(task.await.unwrap().data().count(), 2);
/// # }
/// ```
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use beluga_core::{stream_producer, Context, Error, ErrorCode, Event, EventStreamExt};
/// use futures_util::Stream;
///
/// #[stream_producer]
/// fn tokens(ctx: Context, prompt: &str) -> impl Stream<Item = Result<Event<String>, Error>> + '_ {
///     if prompt.is_empty() {
///         return Err(Error::new(ErrorCode::InvalidInput, "empty prompt"));
///     }
///     for word in prompt.split(' ') {
///         tokio::time::sleep(Duration::from_millis(10)).await; // the model thinks
///         emit!(word.to_uppercase());
///     }
///     emit!(Event::tool_call("lookup".to_owned()));
///     "final answer".to_owned() // becomes `done_with("final answer")`
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let collected = tokens(Context::new(), "hello world").collect_events().await;
/// assert_eq!(collected.data().cloned().collect::<Vec<_>>(), ["HELLO", "WORLD"]);
/// assert_eq!(collected.events.last(), Some(&Event::done_with("final answer".to_owned())));
///
/// // A deadline ends the stream while the body is parked in `sleep`.
/// let ctx = Context::new().with_timeout(Duration::from_millis(15));
/// let cut = tokens(ctx, "one two three").collect_events().await;
/// assert_eq!(cut.events.len(), 1);
/// assert_eq!(cut.error.unwrap().code(), ErrorCode::DeadlineExceeded);
/// # }
/// ```
///
/// # Without the macro
///
/// The same producer written by hand is a state machine like the one below (the generated code
/// differs: it keeps the body as an `async` block and hands it a slot to emit into, so `.await`,
/// `?` and loops work as written):
///
/// ```
/// use std::pin::Pin;
/// use std::task::{Context as TaskContext, Poll};
/// use std::time::Duration;
/// use beluga_core::{Context, Error, ErrorCode, Event, EventStreamExt};
/// use futures_util::Stream;
///
/// struct Tokens {
///     ctx: Context,
///     words: Vec<String>,
///     next: usize,
///     done: bool,
/// }
///
/// impl Stream for Tokens {
///     type Item = Result<Event<String>, Error>;
///
///     fn poll_next(mut self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
///         if self.done {
///             return Poll::Ready(None);
///         }
///         // `error()` reports a cancel, and a deadline that has passed (it reads the clock when
///         // the context has one; the generated code reads it every 32 items instead).
///         if let Some(err) = self.ctx.error() {
///             self.done = true;
///             return Poll::Ready(Some(Err(err)));
///         }
///         // ... and park on `self.ctx.cancelled()` whenever the work itself is pending.
///         if self.next < self.words.len() {
///             let word = self.words[self.next].to_uppercase();
///             self.next += 1;
///             return Poll::Ready(Some(Ok(Event::data(word))));
///         }
///         self.done = true;
///         Poll::Ready(Some(Ok(Event::done_with("final answer".to_owned()))))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let words: Vec<String> = (0..1_000).map(|i| format!("word{i}")).collect();
/// let ctx = Context::new().with_timeout(Duration::from_millis(15));
/// tokio::time::sleep(Duration::from_millis(20)).await; // the deadline passes
/// let cut = Tokens { ctx, words, next: 0, done: false }.collect_events().await;
/// assert!(cut.events.is_empty());
/// assert_eq!(cut.error.unwrap().code(), ErrorCode::DeadlineExceeded);
/// # }
/// ```
pub use beluga_macros::stream_producer;

/// Sends one item from the body of a [`#[stream_producer]`](macro@stream_producer) function:
/// the stable spelling of `yield value`.
///
/// `emit!(payload)` sends [`Event::data`]`(payload)`; `emit!(event)` sends an [`Event<T>`] as
/// it is (see [`IntoEvent`]). The expression waits until the consumer has taken the item, so
/// the body runs no further ahead than one item. Cancellation is checked before the body
/// resumes.
///
/// The attribute rewrites every `emit!` of its body before the compiler sees it, so the macro
/// needs no import. Written anywhere else (outside a producer, or inside a closure or a nested
/// `async` block of one, where it would not be the producer's), it is a compile error that says
/// so.
///
/// ```
/// use beluga_core::{stream_producer, Context, Event, EventResult, EventStreamExt};
/// use futures_util::Stream;
///
/// #[stream_producer]
/// fn countdown(ctx: Context, from: u32) -> impl Stream<Item = EventResult<u32>> {
///     for n in (1..=from).rev() {
///         emit!(n);
///     }
///     emit!(Event::tool_call(0)); // a whole event, as it is
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let events = countdown(Context::new(), 2).collect_events().await.events;
/// assert_eq!(events, [Event::data(2), Event::data(1), Event::tool_call(0), Event::done()]);
/// # }
/// ```
#[macro_export]
macro_rules! emit {
    ($($value:tt)*) => {
        ::core::compile_error!(
            "`emit!` only works in the body of a `#[stream_producer]` function, outside its \
             closures and nested `async` blocks"
        )
    };
}

/// Forwards every event of another event stream from the body of a
/// [`#[stream_producer]`](macro@stream_producer) function, and evaluates to that stream's
/// final value (`Option<T>`, from its `done_with`).
///
/// Cancellation is still checked before every item. A terminal `Err` of the inner stream ends
/// the producer with that error, as `?` would; the inner stream's `done` is not forwarded (the
/// producer ends with its own). Like [`emit!`], it needs no import and is a compile error
/// anywhere but in a producer's body.
///
/// ```
/// use beluga_core::{stream_producer, stream, Context, Event, EventResult, EventStreamExt};
/// use futures_util::Stream;
///
/// #[stream_producer]
/// fn greeting(ctx: Context) -> impl Stream<Item = EventResult<&'static str>> {
///     emit!("hello");
///     let last = emit_all!(stream::iter(["big", "wide"]));
///     assert_eq!(last, None); // `stream::iter` ends with a plain `done`
///     emit!("world");
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let words = greeting(Context::new()).collect_events().await;
/// assert_eq!(words.data().copied().collect::<Vec<_>>(), ["hello", "big", "wide", "world"]);
/// # }
/// ```
#[macro_export]
macro_rules! emit_all {
    ($($stream:tt)*) => {
        ::core::compile_error!(
            "`emit_all!` only works in the body of a `#[stream_producer]` function, outside its \
             closures and nested `async` blocks"
        )
    };
}

/// Implements [`Runnable`](trait@Runnable) by calling a method of the type that streams the
/// events, typically a [`#[stream_producer]`](macro@stream_producer) method.
///
/// `#[runnable(input = Type, output = Type, stream = method)]` names the runnable's
/// [`Input`](Runnable::Input) and [`Output`](Runnable::Output) types and the method that
/// produces its events. The method is called as `Self::method(self, ctx, input)`, so it takes
/// `(&self, ctx: Context, input: Input)` and returns
/// `impl Stream<Item = EventResult<Output>> + Send + '_` (or an [`BoxEventStream<'_, Output>`]).
/// [`invoke`](RunnableExt::invoke), [`pipe`](RunnableExt::pipe) and
/// [`boxed`](RunnableExt::boxed) then come with [`RunnableExt`].
///
/// Structs and enums work, generic ones too: the impl has the type's own generics and `where`
/// clauses, and adds no bounds (`Runnable` needs the type to be `Send + Sync`). Options:
/// `crate = "path"` names `beluga_core` when it is renamed or re-exported.
///
/// Mistakes are compile errors at the token that is wrong, all reported at once: a missing
/// attribute or key, an unknown or duplicate key, a value of the wrong kind (`stream = "run"`),
/// a borrowed type with no lifetime (`input = &str`: write `String`), a union. A method that
/// does not exist is reported by rustc at its name in the attribute, and one that does not fit
/// is reported there too, once, saying what to write: arguments in the wrong order,
/// `ctx: &Context`, a borrowed input, a receiver other than `&self`, no input, or a returned
/// value that is not a `Send` event stream of the output (an `async fn`, a `Result`). `stream = stream` calls the type's own inherent `stream`
/// method (`Self::stream` finds an inherent method before a trait's); on a type without one it
/// would make `Runnable::stream` call itself forever, and is rejected there ("function cannot
/// return without recursing").
///
/// [`RunnableExt`]'s methods come after the type's own: an inherent method called `invoke`
/// (or `pipe`, `boxed`) shadows the trait's in `value.invoke(ctx, input)`. Call
/// `RunnableExt::invoke(&value, ctx, input)` to reach the trait's, or name the method otherwise.
///
/// # Example
///
/// ```
/// use beluga_core::{stream_producer, Context, EventResult, Runnable, RunnableExt};
/// use futures_util::Stream;
///
/// #[derive(Runnable)]
/// #[runnable(input = String, output = usize, stream = run)]
/// struct WordCounter {
///     separator: char,
/// }
///
/// impl WordCounter {
///     #[stream_producer]
///     fn run(&self, ctx: Context, text: String) -> impl Stream<Item = EventResult<usize>> + Send + '_ {
///         let mut count = 0;
///         for _word in text.split(self.separator) {
///             count += 1;
///             emit!(count); // a running count, as data events
///         }
///         count // the final value: what `invoke` returns
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let counter = WordCounter { separator: ' ' };
/// let words = counter.invoke(Context::new(), "to be or not".to_owned()).await.unwrap();
/// assert_eq!(words, 4);
/// # }
/// ```
///
/// # Without the macro
///
/// The derive above generates the equivalent of this impl (with absolute paths, and with the
/// call made through compile-time checks that report a method that does not fit):
///
/// ```
/// # use beluga_core::{stream_producer, Context, EventResult, Runnable};
/// # use futures_util::Stream;
/// # struct WordCounter { separator: char }
/// # impl WordCounter {
/// #     #[stream_producer]
/// #     fn run(&self, ctx: Context, text: String) -> impl Stream<Item = EventResult<usize>> + Send + '_ {
/// #         text.split(self.separator).count()
/// #     }
/// # }
/// #[automatically_derived]
/// impl Runnable for WordCounter {
///     type Input = String;
///     type Output = usize;
///
///     fn stream(&self, ctx: Context, input: String) -> impl Stream<Item = EventResult<usize>> + Send + '_ {
///         Self::run(self, ctx, input)
///     }
/// }
/// ```
pub use beluga_macros::Runnable;

/// The README's example, compiled and run as a doctest so it cannot rot.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
