//! Cost of `Runnable::invoke` on a `#[derive(Runnable)]` step against draining the same stream
//! by hand, and throughput of `runnable::batch` over no-op items.
//!
//! The same custom harness as `benches/pipeline.rs`, in `benches/support` (no criterion), on a
//! Tokio `current_thread` runtime; every case's result is checked.
//!
//! - Per item, `N` items (default 1,000,000): a derived runnable whose stream method is a
//!   `#[stream_producer]` emitting `data(0..N)` and ending with `done_with(sum)`.
//!   `drain_by_hand` (the baseline) pins `runnable.stream(ctx, N)` and runs
//!   `while let Some(item) = stream.next().await` with `invoke`'s rule written out (the
//!   `done_with` value wins, else the last `data`, else an error); `invoke` is
//!   `runnable.invoke(ctx, N).await`. The result is the producer's sum, checked.
//! - Per input, `N / 10` inputs (default 100,000): a derived no-op runnable (its producer ends at
//!   once with `done_with(input)`). `batch1`, `batch8` and `batch64` run
//!   `noop.batch(&ctx, 0..N/10, &options)` with that `max_concurrency`; `invoke_loop` awaits
//!   `noop.invoke` on each input in turn, for reference; `batch64_spawned` is `batch64` run in
//!   a spawned task rather than in `block_on`'s own future. The results are summed and checked.
//!
//! Cases run round-robin, `--rounds` times (default 15), after one warm-up round; the table
//! reports the median per unit and, for the per-item cases, its ratio to `drain_by_hand`
//! measured in the same run. The summary adds the budget's verdict, batch throughput in inputs
//! per second, and the allocations made during each case's last run (a counting global
//! allocator).
//!
//! ```text
//! cargo bench -p beluga-core --bench runnable                  # the full table
//! cargo bench -p beluga-core --bench runnable -- --items 2000000 --rounds 21
//! <bench binary> --case invoke --items 1000000                 # one case, once (callgrind.sh)
//! ```
//!
//! Without `--bench` (which `cargo bench` passes) and without `--case`, the binary only runs
//! every case once on a few items and checks the sums: that is what `cargo test --all-targets`
//! does with it, so benchmarks never run as part of the tests. Unknown flags are ignored.

use std::fmt::Write as _;
use std::hint::black_box;
use std::pin::pin;
use std::process::ExitCode;
use std::time::Duration;

use beluga_core::runnable::{BatchOptions, invoke_stream};
use beluga_core::{
    BoxRunnable, Context, Error, ErrorCode, EventKind, EventResult, Runnable, RunnableExt,
    stream_producer,
};
use futures_core::Stream;
use futures_util::StreamExt;
use tokio::runtime::Runtime;

use support::{Allocated, CountingAllocator, sum_to};

mod support;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// The per-item runnable: streams `data(0..n)`, then `done_with` their sum.
#[derive(Runnable)]
#[runnable(input = u64, output = u64, stream = run)]
struct Count;

impl Count {
    #[stream_producer]
    fn run(&self, ctx: Context, n: u64) -> impl Stream<Item = EventResult<u64>> + Send + '_ {
        let mut sum = 0_u64;
        for i in 0..n {
            emit!(i);
            sum = sum.wrapping_add(i);
        }
        sum
    }
}

/// The batch's runnable: does nothing, and ends at once with `done_with(input)`.
#[derive(Runnable)]
#[runnable(input = u64, output = u64, stream = run)]
struct Noop;

impl Noop {
    #[stream_producer]
    fn run(&self, ctx: Context, x: u64) -> impl Stream<Item = EventResult<u64>> + Send + '_ {
        x
    }
}

/// `invoke`'s rule written out by the caller: pins the runnable's stream and drains it with
/// `while let Some(item) = stream.next().await`, returning the `done_with` value if there is
/// one, else the last `data` payload, else an error; a terminal `Err` as is.
async fn drain_by_hand<R: Runnable>(
    runnable: &R,
    ctx: Context,
    input: R::Input,
) -> Result<R::Output, Error> {
    let mut stream = pin!(runnable.stream(ctx, input));
    let mut last = None;
    while let Some(item) = stream.next().await {
        match item?.into_kind() {
            EventKind::Done(Some(value)) => return Ok(value),
            EventKind::Done(None) => break,
            EventKind::Data(value) => last = Some(value),
            _ => {}
        }
    }
    last.ok_or_else(|| Error::new(ErrorCode::Internal, "the stream ended without a value"))
}

fn expect_ok(result: Result<u64, Error>) -> u64 {
    result.unwrap_or_else(|err| panic!("the benchmark runnable failed: {err}"))
}

/// Sums a batch's results, failing on any error.
fn sum_results(results: Vec<Result<u64, Error>>, inputs: u64) -> u64 {
    assert_eq!(
        results.len() as u64,
        inputs,
        "one result per input, in order"
    );
    results
        .into_iter()
        .map(expect_ok)
        .fold(0, u64::wrapping_add)
}

/// How many batch inputs a run of `n` items takes: a tenth (100,000 for the default 1,000,000),
/// at least one.
fn inputs_for(n: u64) -> u64 {
    (n / 10).max(1)
}

/// Allocations made during each case's last run.
static ALLOCATED: Allocated<CASES> = Allocated::new();

const CASES: usize = <Case as support::Case>::ALL.len();

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    DrainByHand,
    Invoke,
    InvokeStream,
    InvokeBoxed,
    InvokeLoop,
    Batch1,
    Batch8,
    Batch64,
    Batch64Spawned,
}

impl Case {
    /// The batch's concurrency limit, for the batch cases.
    fn concurrency(self) -> Option<usize> {
        match self {
            Case::Batch1 => Some(1),
            Case::Batch8 => Some(8),
            Case::Batch64 | Case::Batch64Spawned => Some(64),
            _ => None,
        }
    }

    /// Whether the case is counted per batch input rather than per stream item.
    fn per_input(self) -> bool {
        self == Case::InvokeLoop || self.concurrency().is_some()
    }

    /// Times `consumer` on `rt` as [`support::time`] does, and records the allocations made
    /// meanwhile.
    fn measure(
        self,
        rt: &Runtime,
        units: u64,
        consumer: impl Future<Output = u64>,
    ) -> (Duration, u64) {
        ALLOCATED.measure(self, rt, units, consumer)
    }
}

impl support::Case for Case {
    const BENCH: &'static str = "runnable";
    const ALL: &'static [Case] = &[
        Case::DrainByHand,
        Case::Invoke,
        Case::InvokeStream,
        Case::InvokeBoxed,
        Case::InvokeLoop,
        Case::Batch1,
        Case::Batch8,
        Case::Batch64,
        Case::Batch64Spawned,
    ];
    const BASELINE: Case = Case::DrainByHand;

    fn name(self) -> &'static str {
        match self {
            Case::DrainByHand => "drain_by_hand",
            Case::Invoke => "invoke",
            Case::InvokeStream => "invoke_stream",
            Case::InvokeBoxed => "invoke_boxed",
            Case::InvokeLoop => "invoke_loop",
            Case::Batch1 => "batch1",
            Case::Batch8 => "batch8",
            Case::Batch64 => "batch64",
            Case::Batch64Spawned => "batch64_spawned",
        }
    }

    /// Stream items, or batch inputs.
    fn unit(self) -> &'static str {
        if self.per_input() { "input" } else { "item" }
    }

    /// The per-input cases run on a tenth of the items.
    fn units(self, n: u64) -> u64 {
        if self.per_input() { inputs_for(n) } else { n }
    }

    /// The allocations of the run, for `--case`'s line.
    fn detail(self) -> Option<String> {
        Some(format!("allocations={}", ALLOCATED.of(self).0))
    }

    /// The producer's sum of `0..n`, or the sum of the results of `0..n/10`.
    fn expected(self, n: u64) -> u64 {
        sum_to(self.units(n))
    }

    /// Runs the case once; returns the time spent and the checksum. Contexts, options and boxes
    /// are made before the clock starts; the streams and batches inside it.
    fn run(self, rt: &Runtime, n: u64) -> (Duration, u64) {
        let n = black_box(n);
        let units = self.units(n);
        let ctx = Context::new();
        match self {
            Case::DrainByHand => self.measure(rt, units, async move {
                expect_ok(drain_by_hand(&Count, ctx, n).await)
            }),
            Case::Invoke => {
                self.measure(
                    rt,
                    units,
                    async move { expect_ok(Count.invoke(ctx, n).await) },
                )
            }
            Case::InvokeStream => self.measure(rt, units, async move {
                expect_ok(invoke_stream(Count.stream(ctx, n)).await)
            }),
            Case::InvokeBoxed => {
                let boxed: BoxRunnable<'static, u64, u64> = Count.boxed();
                self.measure(
                    rt,
                    units,
                    async move { expect_ok(boxed.invoke(ctx, n).await) },
                )
            }
            Case::InvokeLoop => self.measure(rt, units, async move {
                let mut sum = 0_u64;
                for i in 0..units {
                    sum = sum.wrapping_add(expect_ok(Noop.invoke(ctx.clone(), i).await));
                }
                sum
            }),
            Case::Batch1 | Case::Batch8 | Case::Batch64 => {
                let limit = self.concurrency().expect("a batch case");
                let options = BatchOptions::default()
                    .with_max_concurrency(limit)
                    .expect("a valid concurrency");
                self.measure(rt, units, async move {
                    let results = Noop.batch(&ctx, 0..units, &options).await;
                    sum_results(results, units)
                })
            }
            Case::Batch64Spawned => {
                let options = BatchOptions::default()
                    .with_max_concurrency(64)
                    .expect("a valid concurrency");
                self.measure(rt, units, async move {
                    let task = tokio::spawn(async move {
                        let results = Noop.batch(&ctx, 0..units, &options).await;
                        sum_results(results, units)
                    });
                    task.await.expect("the batch task")
                })
            }
        }
    }

    fn summary(of: &dyn Fn(Case) -> f64, out: &mut String) {
        let baseline = of(Case::DrainByHand);
        let _ = writeln!(
            out,
            "| case | unit | vs drain_by_hand | allocations in the run | per unit |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|");
        for &case in <Case as support::Case>::ALL {
            let ratio = if case.per_input() {
                "-".to_owned()
            } else {
                format!("{:.2}x", of(case) / baseline)
            };
            let (count, per) = ALLOCATED.of(case);
            let _ = writeln!(
                out,
                "| {} | {} | {ratio} | {count} | {per:.4} |",
                case.name(),
                case.unit()
            );
        }
        let _ = writeln!(out);
        support::budgets(&BUDGETS, of, out);
        support::ratios(&RATIOS, of, out);
        for case in [
            Case::Batch64,
            Case::Batch8,
            Case::Batch1,
            Case::Batch64Spawned,
            Case::InvokeLoop,
        ] {
            let ns = of(case);
            let _ = writeln!(
                out,
                "{}: {:.0} inputs per second ({ns:.1} ns per input)",
                case.name(),
                1e9 / ns
            );
        }
    }
}

/// The budget of issue 5: `invoke` at most this many times draining the same stream by hand;
/// `(what, numerator, denominator, budget)`, a ratio of medians.
const BUDGETS: [(&str, Case, Case, f64); 1] = [(
    "invoke / drain_by_hand",
    Case::Invoke,
    Case::DrainByHand,
    1.1,
)];

/// Ratios reported for information: `(what, numerator, denominator)`.
const RATIOS: [(&str, Case, Case); 6] = [
    (
        "invoke_stream / drain_by_hand",
        Case::InvokeStream,
        Case::DrainByHand,
    ),
    (
        "invoke_boxed / drain_by_hand",
        Case::InvokeBoxed,
        Case::DrainByHand,
    ),
    ("batch64 / invoke_loop", Case::Batch64, Case::InvokeLoop),
    ("batch8 / invoke_loop", Case::Batch8, Case::InvokeLoop),
    ("batch1 / invoke_loop", Case::Batch1, Case::InvokeLoop),
    (
        "batch64_spawned / batch64",
        Case::Batch64Spawned,
        Case::Batch64,
    ),
];

fn main() -> ExitCode {
    support::main::<Case>()
}
