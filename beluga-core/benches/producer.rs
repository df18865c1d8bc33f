//! Per-item cost of `#[stream_producer]` and its inline form `stream::produce` against a
//! hand-written stream and async-stream.
//!
//! The same custom harness as `benches/pipeline.rs`, in `benches/support` (no criterion): every
//! case drives `N` items (default 1,000,000) through a consumer that does
//! `while let Some(item) = stream.next().await` on a Tokio `current_thread` runtime and sums the
//! `u64` payloads. Cases run round-robin, `--rounds` times (default 15), after one warm-up round;
//! the table reports the median per item and its ratio to `baseline_checked`, a hand-written
//! `impl Stream` of the same `Result<Event<u64>, Error>` items that checks the `Context` on every
//! poll, as the producer does, measured in the same run.
//!
//! ```text
//! cargo bench -p beluga-core --bench producer                  # the full table
//! cargo bench -p beluga-core --bench producer -- --items 2000000 --rounds 21
//! <bench binary> --case producer --items 1000000               # one case, once (callgrind.sh)
//! ```
//!
//! Without `--bench` (which `cargo bench` passes) and without `--case`, the binary only runs
//! every case once on a few items and checks the sums: that is what `cargo test --all-targets`
//! does with it, so benchmarks never run as part of the tests. Unknown flags are ignored.

use std::fmt::Write as _;
use std::hint::black_box;
use std::pin::{Pin, pin};
use std::process::ExitCode;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use async_stream::{stream, try_stream};
use beluga_core::{Context, Error, Event, EventStreamExt, stream, stream_producer};
use futures_core::Stream;
use futures_util::StreamExt;
use tokio::runtime::Runtime;

use support::{Outlined, sum_to, time};

mod support;

/// The limit: a hand-written state machine yielding `data(0..n)`, then `done`, then `None`,
/// checking its [`Context`] before every item as a producer does.
struct CheckedCounter {
    next: u64,
    end: u64,
    done: bool,
    ctx: Context,
}

impl CheckedCounter {
    fn new(ctx: Context, n: u64) -> Self {
        CheckedCounter {
            next: 0,
            end: black_box(n),
            done: false,
            ctx,
        }
    }

    /// One poll: ends after `done` or an error, checks the context, then passes the next number
    /// through `step` and yields its payload, or its error as the last item.
    #[inline]
    fn poll_with(
        &mut self,
        step: impl FnOnce(u64) -> Result<u64, Error>,
    ) -> Poll<Option<Result<Event<u64>, Error>>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.ctx.is_cancelled() {
            self.done = true;
            return Poll::Ready(Some(Err(Error::cancelled())));
        }
        if self.next < self.end {
            let i = self.next;
            self.next += 1;
            match step(i) {
                Ok(x) => Poll::Ready(Some(Ok(Event::data(x)))),
                Err(err) => {
                    self.done = true;
                    Poll::Ready(Some(Err(err)))
                }
            }
        } else {
            self.done = true;
            Poll::Ready(Some(Ok(Event::done())))
        }
    }
}

impl Stream for CheckedCounter {
    type Item = Result<Event<u64>, Error>;

    fn poll_next(self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_with(Ok)
    }
}

/// The limit with `?` on every item: the checked counter, passing each item through
/// [`checked`] and ending with its error, as `let x = checked(i)?;` does in a producer.
struct QuestionCounter {
    counter: CheckedCounter,
}

impl Stream for QuestionCounter {
    type Item = Result<Event<u64>, Error>;

    fn poll_next(self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().counter.poll_with(checked)
    }
}

/// For reference beside `async_stream_bare`: a hand-written stream of bare `u64`s, no event, no
/// `Result`, no context.
struct BareCounter {
    next: u64,
    end: u64,
}

impl Stream for BareCounter {
    type Item = u64;

    fn poll_next(self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<Option<u64>> {
        let this = self.get_mut();
        if this.next < this.end {
            let i = this.next;
            this.next += 1;
            Poll::Ready(Some(i))
        } else {
            Poll::Ready(None)
        }
    }
}

/// A fallible step the optimizer cannot see through: out of line, and whether it failed opaque.
#[inline(never)]
#[allow(
    clippy::unnecessary_wraps,
    reason = "the `Err` the optimizer cannot rule out is the point"
)]
fn checked(i: u64) -> Result<u64, Error> {
    black_box(Ok(i))
}

#[stream_producer]
fn count(ctx: Context, n: u64) -> impl Stream<Item = Result<Event<u64>, Error>> {
    for i in 0..n {
        emit!(i);
    }
}

#[stream_producer]
fn count_question(ctx: Context, n: u64) -> impl Stream<Item = Result<Event<u64>, Error>> {
    for i in 0..n {
        let x = checked(i)?;
        emit!(x);
    }
}

/// The same producer in the inline form.
fn count_inline(ctx: &Context, n: u64) -> impl Stream<Item = Result<Event<u64>, Error>> + use<> {
    stream::produce(ctx, async move |mut e| {
        for i in 0..n {
            e.emit(i).await;
        }
        Ok(())
    })
}

/// async-stream with the producer's semantics: the same items, the same check before each.
fn async_stream_try(ctx: Context, n: u64) -> impl Stream<Item = Result<Event<u64>, Error>> {
    try_stream! {
        for i in 0..n {
            if ctx.is_cancelled() {
                Err(Error::cancelled())?;
            }
            yield Event::data(i);
        }
        yield Event::done();
    }
}

/// async-stream at its cheapest, for reference: bare `u64`s, no check.
fn async_stream_bare(n: u64) -> impl Stream<Item = u64> {
    stream! {
        for i in 0..n {
            yield i;
        }
    }
}

// The pipeline's three steps, as in `benches/pipeline.rs`.
fn triple(x: u64) -> u64 {
    x.wrapping_mul(3)
}

fn keep_even(ev: &Event<u64>) -> bool {
    ev.payload().is_some_and(|x| x % 2 == 0)
}

fn increment(x: u64) -> u64 {
    x.wrapping_add(1)
}

/// The consumer every event case shares: sums the `data` payloads.
async fn consume<S>(stream: S) -> u64
where
    S: Stream<Item = Result<Event<u64>, Error>>,
{
    let mut stream = pin!(stream);
    let mut sum = 0_u64;
    while let Some(item) = stream.next().await {
        match item {
            Ok(ev) => {
                if let Some(x) = ev.into_payload() {
                    sum = sum.wrapping_add(x);
                }
            }
            Err(err) => panic!("the benchmark stream failed: {err}"),
        }
    }
    sum
}

async fn consume_bare<S: Stream<Item = u64>>(stream: S) -> u64 {
    let mut stream = pin!(stream);
    let mut sum = 0_u64;
    while let Some(x) = stream.next().await {
        sum = sum.wrapping_add(x);
    }
    sum
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    BaselineChecked,
    BaselineOutlined,
    Producer,
    Produce,
    BaselineQuestion,
    OutlinedQuestion,
    ProducerQuestion,
    AsyncStreamTry,
    BaselineBare,
    AsyncStreamBare,
    BaselineMapFilterMap,
    OutlinedMapFilterMap,
    ProducerMapFilterMap,
    ProducerDeadline,
}

impl support::Case for Case {
    const BENCH: &'static str = "producer";
    const ALL: &'static [Case] = &[
        Case::BaselineChecked,
        Case::BaselineOutlined,
        Case::Producer,
        Case::Produce,
        Case::BaselineQuestion,
        Case::OutlinedQuestion,
        Case::ProducerQuestion,
        Case::AsyncStreamTry,
        Case::BaselineBare,
        Case::AsyncStreamBare,
        Case::BaselineMapFilterMap,
        Case::OutlinedMapFilterMap,
        Case::ProducerMapFilterMap,
        Case::ProducerDeadline,
    ];
    const BASELINE: Case = Case::BaselineChecked;

    fn name(self) -> &'static str {
        match self {
            Case::BaselineChecked => "baseline_checked",
            Case::BaselineOutlined => "baseline_outlined",
            Case::Producer => "producer",
            Case::Produce => "produce",
            Case::BaselineQuestion => "baseline_question",
            Case::OutlinedQuestion => "outlined_question",
            Case::ProducerQuestion => "producer_question",
            Case::AsyncStreamTry => "async_stream_try",
            Case::BaselineBare => "baseline_bare",
            Case::AsyncStreamBare => "async_stream_bare",
            Case::BaselineMapFilterMap => "baseline_map_filter_map",
            Case::OutlinedMapFilterMap => "outlined_map_filter_map",
            Case::ProducerMapFilterMap => "producer_map_filter_map",
            Case::ProducerDeadline => "producer_deadline",
        }
    }

    /// The sum a correct run of `n` items returns.
    fn expected(self, n: u64) -> u64 {
        match self {
            Case::BaselineMapFilterMap
            | Case::OutlinedMapFilterMap
            | Case::ProducerMapFilterMap => (0..n)
                .map(triple)
                .filter(|x| x % 2 == 0)
                .map(increment)
                .fold(0, u64::wrapping_add),
            _ => sum_to(n),
        }
    }

    /// Runs the case once on `n` items; returns the time spent and the checksum. Contexts and
    /// streams are built before the clock starts.
    fn run(self, rt: &Runtime, n: u64) -> (Duration, u64) {
        let n = black_box(n);
        match self {
            Case::BaselineChecked => time(rt, consume(CheckedCounter::new(Context::new(), n))),
            Case::BaselineOutlined => {
                let inner = CheckedCounter::new(Context::new(), n);
                time(rt, consume(Outlined { inner }))
            }
            Case::Producer => time(rt, consume(count(Context::new(), n))),
            Case::Produce => time(rt, consume(count_inline(&Context::new(), n))),
            Case::BaselineQuestion => {
                let counter = CheckedCounter::new(Context::new(), n);
                time(rt, consume(QuestionCounter { counter }))
            }
            Case::OutlinedQuestion => {
                let counter = CheckedCounter::new(Context::new(), n);
                time(
                    rt,
                    consume(Outlined {
                        inner: QuestionCounter { counter },
                    }),
                )
            }
            Case::ProducerQuestion => time(rt, consume(count_question(Context::new(), n))),
            Case::AsyncStreamTry => time(rt, consume(async_stream_try(Context::new(), n))),
            Case::BaselineBare => time(rt, consume_bare(BareCounter { next: 0, end: n })),
            Case::AsyncStreamBare => time(rt, consume_bare(async_stream_bare(n))),
            Case::BaselineMapFilterMap => {
                let pipeline = CheckedCounter::new(Context::new(), n)
                    .map_payload(triple)
                    .filter_events(keep_even)
                    .map_payload(increment);
                time(rt, consume(pipeline))
            }
            Case::OutlinedMapFilterMap => {
                let inner = CheckedCounter::new(Context::new(), n);
                let pipeline = Outlined { inner }
                    .map_payload(triple)
                    .filter_events(keep_even)
                    .map_payload(increment);
                time(rt, consume(pipeline))
            }
            Case::ProducerMapFilterMap => {
                let pipeline = count(Context::new(), n)
                    .map_payload(triple)
                    .filter_events(keep_even)
                    .map_payload(increment);
                time(rt, consume(pipeline))
            }
            Case::ProducerDeadline => {
                // `with_timeout` reads Tokio's clock, so it is created inside the runtime.
                let ctx = {
                    let _guard = rt.enter();
                    Context::new().with_timeout(Duration::from_secs(3600))
                };
                time(rt, consume(count(ctx, n)))
            }
        }
    }

    fn summary(of: &dyn Fn(Case) -> f64, out: &mut String) {
        support::budgets(&BUDGETS, of, out);
        let _ = writeln!(
            out,
            "the same budgets against the out-of-line baselines (see BENCHMARKS.md):"
        );
        support::budgets(&BUDGETS_OUTLINED, of, out);
        let _ = writeln!(
            out,
            "produce / producer: {:.2}x (the inline form against the attribute)",
            of(Case::Produce) / of(Case::Producer)
        );
        let outlined = of(Case::BaselineOutlined);
        let _ = writeln!(
            out,
            "async_stream_try / baseline_outlined: {:.2}x (DESIGN.md's anchor for async-stream: 6.6x)",
            of(Case::AsyncStreamTry) / outlined
        );
        let _ = writeln!(
            out,
            "baseline_question / baseline_checked: {:.2}x",
            of(Case::BaselineQuestion) / of(Case::BaselineChecked)
        );
        let _ = writeln!(
            out,
            "producer_question / baseline_question: {:.2}x",
            of(Case::ProducerQuestion) / of(Case::BaselineQuestion)
        );
        let _ = writeln!(
            out,
            "async_stream_bare / baseline_bare: {:.2}x",
            of(Case::AsyncStreamBare) / of(Case::BaselineBare)
        );
    }
}

/// The budgets of DESIGN.md: `(what, numerator, denominator, budget)`, a ratio of medians.
const BUDGETS: [(&str, Case, Case, f64); 6] = [
    (
        "producer / baseline_checked",
        Case::Producer,
        Case::BaselineChecked,
        1.5,
    ),
    (
        "produce / baseline_checked",
        Case::Produce,
        Case::BaselineChecked,
        1.5,
    ),
    (
        "producer / async_stream_try",
        Case::Producer,
        Case::AsyncStreamTry,
        0.35,
    ),
    (
        "producer_question / baseline_checked",
        Case::ProducerQuestion,
        Case::BaselineChecked,
        1.6,
    ),
    (
        "producer_map_filter_map / baseline_map_filter_map",
        Case::ProducerMapFilterMap,
        Case::BaselineMapFilterMap,
        1.5,
    ),
    (
        "producer_deadline / baseline_checked",
        Case::ProducerDeadline,
        Case::BaselineChecked,
        1.5,
    ),
];

/// The budgets again, each against the same hand-written stream behind an `#[inline(never)]`
/// `poll_next`: the baseline that reproduces DESIGN.md's anchors (async-stream 6.6x, bare
/// `stream!` 1.5x).
const BUDGETS_OUTLINED: [(&str, Case, Case, f64); 5] = [
    (
        "producer / baseline_outlined",
        Case::Producer,
        Case::BaselineOutlined,
        1.5,
    ),
    (
        "produce / baseline_outlined",
        Case::Produce,
        Case::BaselineOutlined,
        1.5,
    ),
    (
        "producer_question / outlined_question",
        Case::ProducerQuestion,
        Case::OutlinedQuestion,
        1.6,
    ),
    (
        "producer_map_filter_map / outlined_map_filter_map",
        Case::ProducerMapFilterMap,
        Case::OutlinedMapFilterMap,
        1.5,
    ),
    (
        "producer_deadline / baseline_outlined",
        Case::ProducerDeadline,
        Case::BaselineOutlined,
        1.5,
    ),
];

fn main() -> ExitCode {
    support::main::<Case>()
}
