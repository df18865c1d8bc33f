//! Per-item cost of `traced` (the `tracing` feature) against the same stream untraced and a
//! hand-written stream that enters a span around every poll.
//!
//! The same custom harness as `benches/pipeline.rs`, in `benches/support` (no criterion): every
//! case drives `N` items (default 1,000,000) of `Result<Event<u64>, Error>` through a consumer
//! that does `while let Some(item) = stream.next().await` on a Tokio `current_thread` runtime
//! and sums the payloads. The table reports the median per item and its ratio to `baseline`,
//! the hand-written counter of `benches/pipeline.rs`, untraced, measured in the same run.
//!
//! - `baseline_outlined`: the counter behind an `#[inline(never)]` `poll_next`, for reference
//!   (see BENCHMARKS.md, "Two baselines");
//! - `traced_unsubscribed`: `.traced(..)` with no subscriber installed: the span is disabled at
//!   the first poll and the stream passes through;
//! - `entered_by_hand`: the counter behind a hand-written wrapper that enters a span around
//!   each poll (what `tracing`'s `Instrument` does for a future), under a `tracing-subscriber`
//!   `Registry` with no layers: the limit of the next case;
//! - `traced_subscribed`: `.traced(..)` under the same `Registry`: the span entered around each
//!   poll, the items counted, the fields recorded at the end.
//!
//! Without the feature none of this code exists; `callgrind.sh` on the other benches with the
//! feature off shows the same instruction counts as without the adapter (see BENCHMARKS.md).
//!
//! ```text
//! cargo bench -p beluga-core --features tracing --bench tracing
//! bash beluga-core/benches/callgrind.sh tracing                # instruction counts
//! ```
//!
//! Without `--bench` (which `cargo bench` passes) and without `--case`, the binary only runs
//! every case once on a few items and checks the sums: that is what `cargo test --all-targets`
//! does with it, so benchmarks never run as part of the tests. Unknown flags are ignored.

use std::pin::{Pin, pin};
use std::process::ExitCode;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use beluga_core::{Context, Error, Event, EventStreamExt};
use futures_core::Stream;
use futures_util::StreamExt;
use tokio::runtime::Runtime;
use tracing::Span;

use support::{Counter, Outlined, sum_to, time};

mod support;

/// The counter behind a span entered around each poll, written by hand.
struct EnteredByHand {
    counter: Counter,
    span: Span,
}

impl Stream for EnteredByHand {
    type Item = Result<Event<u64>, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let _entered = this.span.enter();
        Pin::new(&mut this.counter).poll_next(cx)
    }
}

/// The consumer every case shares: sums the `data` payloads.
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    Baseline,
    BaselineOutlined,
    TracedUnsubscribed,
    EnteredByHand,
    TracedSubscribed,
}

impl support::Case for Case {
    const BENCH: &'static str = "tracing";
    const ALL: &'static [Case] = &[
        Case::Baseline,
        Case::BaselineOutlined,
        Case::TracedUnsubscribed,
        Case::EnteredByHand,
        Case::TracedSubscribed,
    ];
    const BASELINE: Case = Case::Baseline;

    fn name(self) -> &'static str {
        match self {
            Case::Baseline => "baseline",
            Case::BaselineOutlined => "baseline_outlined",
            Case::TracedUnsubscribed => "traced_unsubscribed",
            Case::EnteredByHand => "entered_by_hand",
            Case::TracedSubscribed => "traced_subscribed",
        }
    }

    fn expected(self, n: u64) -> u64 {
        sum_to(n)
    }

    fn run(self, rt: &Runtime, n: u64) -> (Duration, u64) {
        let ctx = Context::new().with_request_id("bench");
        match self {
            Case::Baseline => time(rt, consume(Counter::new(n))),
            Case::BaselineOutlined => {
                let inner = Counter::new(n);
                time(rt, consume(Outlined { inner }))
            }
            Case::TracedUnsubscribed => time(rt, consume(Counter::new(n).traced("bench", &ctx))),
            Case::EnteredByHand => {
                let _subscriber = tracing::subscriber::set_default(tracing_subscriber::registry());
                let span = tracing::info_span!("bench");
                time(
                    rt,
                    consume(EnteredByHand {
                        counter: Counter::new(n),
                        span,
                    }),
                )
            }
            Case::TracedSubscribed => {
                let _subscriber = tracing::subscriber::set_default(tracing_subscriber::registry());
                time(rt, consume(Counter::new(n).traced("bench", &ctx)))
            }
        }
    }

    fn summary(of: &dyn Fn(Case) -> f64, out: &mut String) {
        support::ratios(
            &[
                (
                    "traced_unsubscribed / baseline",
                    Case::TracedUnsubscribed,
                    Case::Baseline,
                ),
                (
                    "traced_unsubscribed / baseline_outlined",
                    Case::TracedUnsubscribed,
                    Case::BaselineOutlined,
                ),
                (
                    "traced_subscribed / entered_by_hand",
                    Case::TracedSubscribed,
                    Case::EnteredByHand,
                ),
                (
                    "traced_subscribed / baseline",
                    Case::TracedSubscribed,
                    Case::Baseline,
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
