//! Per-item cost of beluga's combinators against a hand-written stream and futures-util.
//!
//! A custom harness (no criterion; `benches/support`, shared with `benches/producer.rs`): every
//! case drives `N` items (default 1,000,000) through a consumer that does
//! `while let Some(item) = stream.next().await` on a Tokio `current_thread` runtime and sums the
//! `u64` payloads. Cases run round-robin, `--rounds` times (default 15), so machine noise spreads
//! over all of them; the table reports the median per item and its ratio to `baseline`, a
//! hand-written `impl Stream` of the same items, measured in the same run.
//!
//! ```text
//! cargo bench -p beluga-core --bench pipeline                  # the full table
//! cargo bench -p beluga-core --bench pipeline -- --items 2000000 --rounds 21
//! <bench binary> --case beluga_map_filter_map --items 1000000  # one case, once (callgrind.sh)
//! ```
//!
//! Without `--bench` (which `cargo bench` passes) and without `--case`, the binary only runs
//! every case once on a few items and checks the sums: that is what `cargo test --all-targets`
//! does with it, so benchmarks never run as part of the tests. Unknown flags are ignored.

use std::fmt::Write as _;
use std::future::ready;
use std::hint::black_box;
use std::pin::{Pin, pin};
use std::process::ExitCode;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use beluga_core::{Context, Error, Event, EventStreamExt};
use futures_core::Stream;
use futures_util::StreamExt;
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

use support::{Counter, sum_to, time};

mod support;

/// The limit for map → filter → map: the same counter doing the three steps inline.
struct InlineMapFilterMap {
    counter: Counter,
}

impl Stream for InlineMapFilterMap {
    type Item = Result<Event<u64>, Error>;

    fn poll_next(self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut self.get_mut().counter;
        while this.next < this.end {
            let x = triple(this.next);
            this.next += 1;
            if x % 2 == 0 {
                return Poll::Ready(Some(Ok(Event::data(increment(x)))));
            }
        }
        if this.done {
            Poll::Ready(None)
        } else {
            this.done = true;
            Poll::Ready(Some(Ok(Event::done())))
        }
    }
}

/// The limit for `cancellable`: the same counter checking a [`Context`] by hand on every poll.
struct CheckedCounter {
    counter: Counter,
    ctx: Context,
}

impl Stream for CheckedCounter {
    type Item = Result<Event<u64>, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.ctx.is_cancelled() && !this.counter.done {
            this.counter.done = true;
            return Poll::Ready(Some(Err(Error::cancelled())));
        }
        Pin::new(&mut this.counter).poll_next(cx)
    }
}

/// For reference: the same counter yielding bare `u64`s, no event, no `Result`.
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

// The pipeline's three steps, shared by the beluga and futures-util versions.
fn triple(x: u64) -> u64 {
    x.wrapping_mul(3)
}

fn keep_even(ev: &Event<u64>) -> bool {
    ev.payload().is_some_and(|x| x % 2 == 0)
}

fn increment(x: u64) -> u64 {
    x.wrapping_add(1)
}

/// The consumer every stream case shares: sums the `data` payloads.
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
    BareU64,
    Baseline,
    InlineMapFilterMap,
    BelugaMapFilterMap,
    FuturesMapFilterMap,
    BaselineChecked,
    BaselineCancellable,
    BaselineCancellableDeadline,
    IsCancelled,
    IsCancelledToken,
}

/// How many `is_cancelled` calls per stream item: enough to time a call, not a loop setup.
const CALLS_PER_ITEM: u64 = 10;

impl Case {
    fn is_call_loop(self) -> bool {
        matches!(self, Case::IsCancelled | Case::IsCancelledToken)
    }
}

impl support::Case for Case {
    const BENCH: &'static str = "pipeline";
    const ALL: &'static [Case] = &[
        Case::Baseline,
        Case::BareU64,
        Case::InlineMapFilterMap,
        Case::BelugaMapFilterMap,
        Case::FuturesMapFilterMap,
        Case::BaselineChecked,
        Case::BaselineCancellable,
        Case::BaselineCancellableDeadline,
        Case::IsCancelled,
        Case::IsCancelledToken,
    ];
    const BASELINE: Case = Case::Baseline;

    fn name(self) -> &'static str {
        match self {
            Case::BareU64 => "bare_u64",
            Case::Baseline => "baseline",
            Case::InlineMapFilterMap => "inline_map_filter_map",
            Case::BelugaMapFilterMap => "beluga_map_filter_map",
            Case::FuturesMapFilterMap => "futures_map_filter_map",
            Case::BaselineChecked => "baseline_checked",
            Case::BaselineCancellable => "baseline_cancellable",
            Case::BaselineCancellableDeadline => "baseline_cancellable_deadline",
            Case::IsCancelled => "is_cancelled",
            Case::IsCancelledToken => "is_cancelled_token",
        }
    }

    /// The unit a figure is given per: stream items, or `is_cancelled` calls.
    fn unit(self) -> &'static str {
        if self.is_call_loop() { "call" } else { "item" }
    }

    /// How many units one run of `n` items measures.
    fn units(self, n: u64) -> u64 {
        if self.is_call_loop() {
            n * CALLS_PER_ITEM
        } else {
            n
        }
    }

    /// The sum a correct run of `n` items returns.
    fn expected(self, n: u64) -> u64 {
        match self {
            Case::BareU64
            | Case::Baseline
            | Case::BaselineChecked
            | Case::BaselineCancellable
            | Case::BaselineCancellableDeadline => sum_to(n),
            Case::InlineMapFilterMap | Case::BelugaMapFilterMap | Case::FuturesMapFilterMap => (0
                ..n)
                .map(triple)
                .filter(|x| x % 2 == 0)
                .map(increment)
                .fold(0, u64::wrapping_add),
            Case::IsCancelled | Case::IsCancelledToken => 0,
        }
    }

    /// Runs the case once on `n` items; returns the time spent and the checksum.
    fn run(self, rt: &Runtime, n: u64) -> (Duration, u64) {
        match self {
            Case::BareU64 => time(
                rt,
                consume_bare(BareCounter {
                    next: 0,
                    end: black_box(n),
                }),
            ),
            Case::Baseline => time(rt, consume(Counter::new(n))),
            Case::InlineMapFilterMap => {
                let counter = Counter::new(n);
                time(rt, consume(InlineMapFilterMap { counter }))
            }
            Case::BelugaMapFilterMap => {
                let pipeline = Counter::new(n)
                    .map_payload(triple)
                    .filter_events(keep_even)
                    .map_payload(increment);
                time(rt, consume(pipeline))
            }
            Case::FuturesMapFilterMap => {
                // The same work with futures-util: map inside the event, let `done` and `Err`
                // through the filter, exactly as `filter_events` does.
                let pipeline = Counter::new(n)
                    .map(|r| r.map(|ev| ev.map(triple)))
                    .filter(|r| {
                        ready(match r {
                            Ok(ev) => ev.is_done() || keep_even(ev),
                            Err(_) => true,
                        })
                    })
                    .map(|r| r.map(|ev| ev.map(increment)));
                time(rt, consume(pipeline))
            }
            Case::BaselineChecked => {
                let ctx = Context::new();
                let counter = Counter::new(n);
                time(rt, consume(CheckedCounter { counter, ctx }))
            }
            Case::BaselineCancellable => {
                let ctx = Context::new();
                time(rt, consume(Counter::new(n).cancellable(&ctx)))
            }
            Case::BaselineCancellableDeadline => {
                let ctx = {
                    let _guard = rt.enter();
                    Context::new().with_timeout(Duration::from_secs(3600))
                };
                time(rt, consume(Counter::new(n).cancellable(&ctx)))
            }
            Case::IsCancelled => {
                let ctx = Context::new();
                let calls = self.units(n);
                let start = Instant::now();
                let mut hits = 0_u64;
                for _ in 0..calls {
                    hits += u64::from(black_box(&ctx).is_cancelled());
                }
                (start.elapsed(), black_box(hits))
            }
            Case::IsCancelledToken => {
                let token = CancellationToken::new();
                let calls = self.units(n);
                let start = Instant::now();
                let mut hits = 0_u64;
                for _ in 0..calls {
                    hits += u64::from(black_box(&token).is_cancelled());
                }
                (start.elapsed(), black_box(hits))
            }
        }
    }

    fn summary(of: &dyn Fn(Case) -> f64, out: &mut String) {
        let ours = of(Case::BelugaMapFilterMap);
        let theirs = of(Case::FuturesMapFilterMap);
        let _ = writeln!(
            out,
            "beluga map->filter->map / futures-util: {:.2}x (target <= 1.10x)",
            ours / theirs
        );
        let _ = writeln!(
            out,
            "beluga map->filter->map / the same steps written inline: {:.2}x",
            ours / of(Case::InlineMapFilterMap)
        );
        let _ = writeln!(
            out,
            "Context::is_cancelled / CancellationToken::is_cancelled: {:.2}x",
            of(Case::IsCancelled) / of(Case::IsCancelledToken)
        );
        support::budgets(
            &[
                (
                    "baseline_cancellable / baseline_checked",
                    Case::BaselineCancellable,
                    Case::BaselineChecked,
                    1.5,
                ),
                (
                    "baseline_cancellable_deadline / baseline_checked",
                    Case::BaselineCancellableDeadline,
                    Case::BaselineChecked,
                    1.5,
                ),
            ],
            of,
            out,
        );
    }
}

fn main() -> ExitCode {
    support::main::<Case>()
}
