//! Coming from Go Beluga: where each of its streaming names went.
//!
//! | Go Beluga | beluga |
//! |---|---|
//! | `core.Stream[T]`, an `iter.Seq2[core.Event[T], error]` | `impl Stream<Item = EventResult<T>>` (items `Result<Event<T>, Error>`); boxed: [`BoxEventStream<'a, T>`](crate::BoxEventStream) |
//! | a producer: `return func(yield func(Event[T], error) bool) { ... }` | a [`#[stream_producer]`](macro@crate::stream_producer) function whose body calls `emit!(value)` |
//! | `if !yield(ev, nil) { return }` (the consumer stopped) | nothing to write: dropping the stream drops the body at its current `.await` |
//! | `select { case <-ctx.Done(): return ... default: }` before each yield | checked for you in a producer, before every item and while it waits |
//! | `ctx.Err()` | [`ctx.error()`](crate::Context::error): `Some` with `cancelled` or `deadline_exceeded` once the context has ended |
//! | `<-ctx.Done()` | [`ctx.cancelled().await`](crate::Context::cancelled) |
//! | `for ev, err := range stream { ... }` | `while let Some(item) = stream.next().await { ... }` |
//! | `next, stop := iter.Pull2(stream)` | nothing to convert: a Rust stream is already pulled, one `next().await` at a time; dropping it is `stop()` |
//! | `core.CollectStream(ctx, s)` | [`s.collect_events().await`](crate::EventStreamExt::collect_events), or [`s.payloads().try_collect()`](crate::EventStreamExt::payloads) for the data alone |
//! | `core.MapStream(s, func(Event[T]) (Event[U], error))` | [`s.try_map_events(f)`](crate::EventStreamExt::try_map_events); payloads alone: [`s.map_payload(f)`](crate::EventStreamExt::map_payload) |
//! | `core.FilterStream(s, pred)` | [`s.filter_events(pred)`](crate::EventStreamExt::filter_events) |
//! | `core.MergeStreams(ctx, s1, s2)` | [`stream::merge([s1, s2])`](crate::stream::merge) |
//! | `core.FanOut(ctx, s, n)` | [`s.fan_out(n)?`](crate::EventStreamExt::fan_out) |
//! | `core.NewBufferedStream(ctx, s, 32)` | [`s.read_ahead(32, &ctx)`](crate::EventStreamExt::read_ahead) |
//! | `core.NewFlowController(n)`, `Acquire(ctx)`, `Release()` | [`FlowController::new(n)?`](crate::FlowController::new), [`acquire(&ctx).await?`](crate::FlowController::acquire); dropping the permit releases it |
//! | `Runnable.Invoke(ctx, input)` | [`runnable.invoke(ctx, input).await`](crate::RunnableExt::invoke), always derived from `stream` |
//! | `Runnable.Stream(ctx, input)` | [`runnable.stream(ctx, input)`](crate::Runnable::stream) |
//! | `core.Pipe(a, b)` | [`a.pipe(b)`](crate::RunnableExt::pipe) |
//! | `core.Parallel(a, b)` | [`runnable::parallel((a, b))`](crate::runnable::parallel) |
//! | `core.BatchInvoke(ctx, r, inputs, opts)` | [`r.batch(&ctx, inputs, &options).await`](crate::RunnableExt::batch) |
//!
//! What differs, beyond the names:
//!
//! * A terminal failure is an `Err` item and ends the stream; an `error` event reports a problem
//!   and the stream goes on (see [`crate::error`]). Exactly one terminal item ends every stream.
//! * Nothing needs a goroutine: `merge`, `fan_out` and `parallel` run on the consumer's task,
//!   and stopping early (dropping the stream) leaks nothing, with or without a cancelled context.
//! * `read_ahead` is the one combinator with a task, and dropping the stream aborts it.
//!
//! The producer from Beluga's docs, in both languages:
//!
//! ```text
//! func counterStream(ctx context.Context, n int) core.Stream[int] {
//!     return func(yield func(core.Event[int], error) bool) {
//!         for i := 0; i < n; i++ {
//!             select {
//!             case <-ctx.Done():
//!                 yield(core.Event[int]{}, fmt.Errorf("cancelled: %w", ctx.Err()))
//!                 return
//!             default:
//!             }
//!             if !yield(core.Event[int]{Type: core.EventData, Payload: i}, nil) {
//!                 return
//!             }
//!         }
//!         yield(core.Event[int]{Type: core.EventDone}, nil)
//!     }
//! }
//! ```
//!
//! ```
//! use beluga_core::{stream_producer, Context, Error, ErrorCode, Event, EventStreamExt};
//! use futures_util::{Stream, TryStreamExt};
//!
//! #[stream_producer]
//! fn counter_stream(ctx: Context, n: u32) -> impl Stream<Item = Result<Event<u32>, Error>> {
//!     for i in 0..n {
//!         emit!(i);
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let all: Vec<u32> = counter_stream(Context::new(), 3).payloads().try_collect().await.unwrap();
//! assert_eq!(all, [0, 1, 2]);
//!
//! let ctx = Context::new();
//! ctx.cancel();
//! let err = counter_stream(ctx, 3).payloads().try_collect::<Vec<_>>().await.unwrap_err();
//! assert_eq!(err.code(), ErrorCode::Cancelled);
//! # }
//! ```
