//! Cost of `merge`, `fan_out`, `read_ahead` and `FlowController` against a hand-written
//! stream and the usual Rust picks: futures-util `select_all`, tokio-stream's `merge`, Tokio
//! channels with spawned tasks, and Tokio's `Semaphore`.
//!
//! The same custom harness as `benches/pipeline.rs`, in `benches/support` (no criterion): every
//! stream case drives `N` items (default 1,000,000) of `Result<Event<u64>, Error>` through
//! consumers that do `while let Some(item) = stream.next().await` on a Tokio `current_thread`
//! runtime and sum the payloads; every sum is checked (every consumer's, for the fan-outs).
//! Cases run round-robin, `--rounds` times (default 15), after one warm-up round; the table
//! reports the median per item and its ratio to `baseline`, the hand-written `impl Stream` of
//! `benches/pipeline.rs` (`data(0..N)` then `done`), measured in the same run. The summary adds
//! the ratio to `baseline_outlined`, the same stream behind an `#[inline(never)]` `poll_next`,
//! and the allocations made while the consumers drain (a counting global allocator).
//!
//! - `merge4`, `select_all4`, `tokio_merge4`: four hand-written sources of `N / 4` items each;
//! - `fan_out4`, `mpsc_fan_out4`: one source of `N` items to four consumers, figures per source
//!   item; the `_mt` variants spawn each consumer on a 4-worker `multi_thread` runtime;
//! - `buffered16`, `mpsc16`: one source of `N` items read ahead by a spawned task;
//! - `flow_acquire`, `semaphore_acquire*`: `N` acquire-and-release operations, figures per op;
//! - `cancel_context3`, `cancel_token3`: `N` times, a root with three children is built, the
//!   root cancelled and the four dropped (a `Context`, a tokio-util `CancellationToken`), per op;
//!   `tree_context3`, `tree_token3` do the same without the cancel. (A token's cancel detaches
//!   the children, which makes their drop cheaper, so the difference of two cases is not the
//!   cancel's cost; `callgrind_annotate --inclusive=yes` gives that.)
//!
//! ```text
//! cargo bench -p beluga-core --bench combinators               # the full table
//! cargo bench -p beluga-core --bench combinators -- --items 2000000 --rounds 21
//! <bench binary> --case merge4 --items 1000000                 # one case, once (callgrind.sh)
//! ```
//!
//! Without `--bench` (which `cargo bench` passes) and without `--case`, the binary only runs
//! every case once on a few items and checks the sums: that is what `cargo test --all-targets`
//! does with it, so benchmarks never run as part of the tests. Unknown flags are ignored.

use std::fmt::Write as _;
use std::hint::black_box;
use std::pin::pin;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use beluga_core::{Context, Error, Event, EventStreamExt, FlowController, stream};
use futures_core::Stream;
use futures_util::StreamExt;
use tokio::runtime::Runtime;
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use support::{Allocated, Counter, CountingAllocator, Outlined, sum_to};

mod support;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

type Item = Result<Event<u64>, Error>;

/// The `k`-th of four counters that together yield `0..n`.
fn quarter(k: u64, n: u64) -> Counter {
    Counter::range(k * n / 4, (k + 1) * n / 4)
}

/// The consumer every stream case shares: sums the `data` payloads.
async fn consume<S: Stream<Item = Item>>(stream: S) -> u64 {
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

/// Drains four streams at once on the current task (`tokio::join!`); each one's sum.
async fn consume4<S: Stream<Item = Item>>(streams: [S; 4]) -> [u64; 4] {
    let [s0, s1, s2, s3] = streams;
    let (x0, x1, x2, x3) = tokio::join!(consume(s0), consume(s1), consume(s2), consume(s3));
    [x0, x1, x2, x3]
}

/// Drains four streams, each on a task of its own; each one's sum.
async fn consume4_spawned<S>(streams: [S; 4]) -> [u64; 4]
where
    S: Stream<Item = Item> + Send + 'static,
{
    let tasks = streams.map(|s| tokio::spawn(consume(s)));
    let mut sums = [0; 4];
    for (sum, task) in sums.iter_mut().zip(tasks) {
        *sum = task.await.expect("a consumer task");
    }
    sums
}

/// The hand-written read-ahead's producer: a spawned task pulling `source` into `tx`.
async fn forward(source: Counter, tx: mpsc::Sender<Item>) {
    let mut source = pin!(source);
    while let Some(item) = source.next().await {
        if tx.send(item).await.is_err() {
            return;
        }
    }
}

/// The hand-written fan-out: a spawned task sending a clone of every item to each sender.
async fn forward_to_all(source: Counter, txs: Vec<mpsc::Sender<Item>>) {
    let mut source = pin!(source);
    while let Some(item) = source.next().await {
        for tx in &txs {
            if tx.send(item.clone()).await.is_err() {
                return;
            }
        }
    }
}

/// Four mpsc(16) channels, and their receivers as streams.
fn channels() -> (Vec<mpsc::Sender<Item>>, [ReceiverStream<Item>; 4]) {
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..4).map(|_| mpsc::channel(16)).unzip();
    let rxs: Vec<_> = rxs.into_iter().map(ReceiverStream::new).collect();
    (txs, rxs.try_into().expect("four receivers"))
}

/// Four fan-out consumers of `0..n`, capacity 16.
fn fan_out4(n: u64) -> [stream::FanOut<Counter>; 4] {
    let consumers = Counter::range(0, n)
        .fan_out_with_capacity(4, 16)
        .expect("valid fan-out arguments");
    consumers.try_into().expect("four consumers")
}

/// Lossless: every consumer saw every item. Returns the sum of the four sums.
fn all_four(sums: [u64; 4], n: u64) -> u64 {
    let each = sum_to(n);
    for (i, sum) in sums.iter().enumerate() {
        assert_eq!(*sum, each, "fan-out consumer {i} lost or repeated items");
    }
    sums.iter().fold(0, |a, b| a.wrapping_add(*b))
}

/// The four-worker runtime of the `_mt` cases, built when one first runs.
fn multi_thread() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .expect("building the multi-thread Tokio runtime")
    })
}

/// Allocations made during each case's last timed run.
static ALLOCATED: Allocated<CASES> = Allocated::new();

const CASES: usize = <Case as support::Case>::ALL.len();

impl Case {
    /// Times `consumer` on `rt` as [`support::time`] does, and records the allocations made
    /// meanwhile, on every thread (the runtime's, the spawned tasks').
    fn drain(self, rt: &Runtime, n: u64, consumer: impl Future<Output = u64>) -> (Duration, u64) {
        ALLOCATED.measure(self, rt, n, consumer)
    }

    /// The merges: four counters of `n / 4` items each into one consumer.
    fn run_merge(self, rt: &Runtime, n: u64) -> (Duration, u64) {
        let [s0, s1, s2, s3] = [0, 1, 2, 3].map(|k| quarter(k, n));
        match self {
            Case::Merge4 => self.drain(rt, n, consume(stream::merge([s0, s1, s2, s3]))),
            Case::SelectAll4 => {
                let merged = futures_util::stream::select_all([s0, s1, s2, s3]);
                self.drain(rt, n, consume(merged))
            }
            _ => {
                use tokio_stream::StreamExt as _;
                let merged = s0.merge(s1).merge(s2).merge(s3);
                self.drain(rt, n, consume(merged))
            }
        }
    }

    /// The fan-outs: one counter of `n` items to four consumers.
    fn run_fan_out(self, rt: &Runtime, n: u64) -> (Duration, u64) {
        match self {
            Case::FanOut4 => {
                let consumers = fan_out4(n);
                self.drain(rt, n, async move { all_four(consume4(consumers).await, n) })
            }
            Case::MpscFanOut4 => {
                let (txs, receivers) = channels();
                {
                    let _guard = rt.enter();
                    drop(tokio::spawn(forward_to_all(Counter::range(0, n), txs)));
                }
                self.drain(rt, n, async move { all_four(consume4(receivers).await, n) })
            }
            Case::FanOut4Mt => {
                let consumers = fan_out4(n);
                self.drain(multi_thread(), n, async move {
                    all_four(consume4_spawned(consumers).await, n)
                })
            }
            _ => {
                let (txs, receivers) = channels();
                self.drain(multi_thread(), n, async move {
                    let consumers = consume4_spawned(receivers);
                    drop(tokio::spawn(forward_to_all(Counter::range(0, n), txs)));
                    all_four(consumers.await, n)
                })
            }
        }
    }

    /// Read-ahead: `read_ahead(16)`, or a spawned task sending into an mpsc(16).
    fn run_buffered(self, rt: &Runtime, n: u64) -> (Duration, u64) {
        if self == Case::Buffered16 {
            let ctx = Context::new();
            let ahead = {
                let _guard = rt.enter();
                Counter::range(0, n).read_ahead(16, &ctx)
            };
            self.drain(rt, n, consume(ahead))
        } else {
            let (tx, rx) = mpsc::channel(16);
            {
                let _guard = rt.enter();
                drop(tokio::spawn(forward(Counter::range(0, n), tx)));
            }
            self.drain(rt, n, consume(ReceiverStream::new(rx)))
        }
    }

    /// `n` acquire-and-release operations in a tight loop, one permit free each time.
    fn run_flow(self, rt: &Runtime, n: u64) -> (Duration, u64) {
        match self {
            Case::FlowAcquire | Case::FlowAcquireDeadline => {
                let ctx = if self == Case::FlowAcquireDeadline {
                    // `with_timeout` reads Tokio's clock, so it is created inside the runtime.
                    let _guard = rt.enter();
                    Context::new().with_timeout(Duration::from_secs(3600))
                } else {
                    Context::new()
                };
                let flow = FlowController::new(1).unwrap();
                self.drain(rt, n, async move {
                    let mut sum = 0_u64;
                    for i in 0..n {
                        let permit = black_box(&flow).acquire(&ctx).await.expect("a permit");
                        sum = sum.wrapping_add(i);
                        drop(black_box(permit));
                    }
                    sum
                })
            }
            Case::SemaphoreAcquire => {
                let semaphore = Arc::new(Semaphore::new(1));
                self.drain(rt, n, async move {
                    let mut sum = 0_u64;
                    for i in 0..n {
                        let permit = black_box(&semaphore).acquire().await.expect("a permit");
                        sum = sum.wrapping_add(i);
                        drop(black_box(permit));
                    }
                    sum
                })
            }
            _ => {
                let semaphore = Arc::new(Semaphore::new(1));
                self.drain(rt, n, async move {
                    let mut sum = 0_u64;
                    for i in 0..n {
                        let permit = Arc::clone(black_box(&semaphore))
                            .acquire_owned()
                            .await
                            .expect("a permit");
                        sum = sum.wrapping_add(i);
                        drop(black_box(permit));
                    }
                    sum
                })
            }
        }
    }

    /// `n` times: a root and three children, the root cancelled (or not, for the `tree_`
    /// cases), all four dropped. Returns how many children were (or were not) cancelled.
    fn run_cancel(self, rt: &Runtime, n: u64) -> (Duration, u64) {
        let cancel = matches!(self, Case::CancelContext3 | Case::CancelToken3);
        if matches!(self, Case::CancelContext3 | Case::TreeContext3) {
            self.drain(rt, n, async move {
                let mut count = 0_u64;
                for _ in 0..n {
                    let root = Context::new();
                    let children = [root.child(), root.child(), root.child()];
                    if cancel {
                        black_box(&root).cancel();
                    }
                    for child in &children {
                        count += u64::from(black_box(child).is_cancelled() == cancel);
                    }
                }
                count
            })
        } else {
            self.drain(rt, n, async move {
                let mut count = 0_u64;
                for _ in 0..n {
                    let root = CancellationToken::new();
                    let children = [root.child_token(), root.child_token(), root.child_token()];
                    if cancel {
                        black_box(&root).cancel();
                    }
                    for child in &children {
                        count += u64::from(black_box(child).is_cancelled() == cancel);
                    }
                }
                count
            })
        }
    }

    fn is_op(self) -> bool {
        matches!(
            self,
            Case::FlowAcquire
                | Case::SemaphoreAcquire
                | Case::SemaphoreAcquireOwned
                | Case::FlowAcquireDeadline
                | Case::CancelContext3
                | Case::CancelToken3
                | Case::TreeContext3
                | Case::TreeToken3
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    Baseline,
    BaselineOutlined,
    Merge4,
    SelectAll4,
    TokioMerge4,
    FanOut4,
    MpscFanOut4,
    FanOut4Mt,
    MpscFanOut4Mt,
    Buffered16,
    Mpsc16,
    FlowAcquire,
    SemaphoreAcquire,
    SemaphoreAcquireOwned,
    FlowAcquireDeadline,
    CancelContext3,
    CancelToken3,
    TreeContext3,
    TreeToken3,
}

impl support::Case for Case {
    const BENCH: &'static str = "combinators";
    const ALL: &'static [Case] = &[
        Case::Baseline,
        Case::BaselineOutlined,
        Case::Merge4,
        Case::SelectAll4,
        Case::TokioMerge4,
        Case::FanOut4,
        Case::MpscFanOut4,
        Case::FanOut4Mt,
        Case::MpscFanOut4Mt,
        Case::Buffered16,
        Case::Mpsc16,
        Case::FlowAcquire,
        Case::SemaphoreAcquire,
        Case::SemaphoreAcquireOwned,
        Case::FlowAcquireDeadline,
        Case::CancelContext3,
        Case::CancelToken3,
        Case::TreeContext3,
        Case::TreeToken3,
    ];
    const BASELINE: Case = Case::Baseline;

    fn name(self) -> &'static str {
        match self {
            Case::Baseline => "baseline",
            Case::BaselineOutlined => "baseline_outlined",
            Case::Merge4 => "merge4",
            Case::SelectAll4 => "select_all4",
            Case::TokioMerge4 => "tokio_merge4",
            Case::FanOut4 => "fan_out4",
            Case::MpscFanOut4 => "mpsc_fan_out4",
            Case::FanOut4Mt => "fan_out4_mt",
            Case::MpscFanOut4Mt => "mpsc_fan_out4_mt",
            Case::Buffered16 => "buffered16",
            Case::Mpsc16 => "mpsc16",
            Case::FlowAcquire => "flow_acquire",
            Case::SemaphoreAcquire => "semaphore_acquire",
            Case::SemaphoreAcquireOwned => "semaphore_acquire_owned",
            Case::FlowAcquireDeadline => "flow_acquire_deadline",
            Case::CancelContext3 => "cancel_context3",
            Case::CancelToken3 => "cancel_token3",
            Case::TreeContext3 => "tree_context3",
            Case::TreeToken3 => "tree_token3",
        }
    }

    /// Stream items (source items, for the fan-outs), acquire-and-release operations, or trees
    /// built, cancelled and dropped.
    fn unit(self) -> &'static str {
        if self.is_op() { "op" } else { "item" }
    }

    /// The sum a correct run of `n` items returns: the four consumers' sums for the fan-outs.
    fn expected(self, n: u64) -> u64 {
        match self {
            Case::FanOut4 | Case::MpscFanOut4 | Case::FanOut4Mt | Case::MpscFanOut4Mt => {
                sum_to(n).wrapping_mul(4)
            }
            Case::CancelContext3 | Case::CancelToken3 | Case::TreeContext3 | Case::TreeToken3 => {
                3 * n
            }
            _ => sum_to(n),
        }
    }

    /// Runs the case once on `n` items; returns the time spent and the checksum. Sources,
    /// combinators and (on `current_thread`) spawned producers are set up before the clock
    /// starts; a spawned task only runs once the consumer's `block_on` drives the runtime. The
    /// `_mt` cases spawn inside the clock, since a spawned task starts at once there.
    fn run(self, rt: &Runtime, n: u64) -> (Duration, u64) {
        let n = black_box(n);
        match self {
            Case::Baseline => self.drain(rt, n, consume(Counter::range(0, n))),
            Case::BaselineOutlined => {
                let inner = Counter::range(0, n);
                self.drain(rt, n, consume(Outlined { inner }))
            }
            Case::Merge4 | Case::SelectAll4 | Case::TokioMerge4 => self.run_merge(rt, n),
            Case::FanOut4 | Case::MpscFanOut4 | Case::FanOut4Mt | Case::MpscFanOut4Mt => {
                self.run_fan_out(rt, n)
            }
            Case::Buffered16 | Case::Mpsc16 => self.run_buffered(rt, n),
            Case::FlowAcquire
            | Case::FlowAcquireDeadline
            | Case::SemaphoreAcquire
            | Case::SemaphoreAcquireOwned => self.run_flow(rt, n),
            Case::CancelContext3 | Case::CancelToken3 | Case::TreeContext3 | Case::TreeToken3 => {
                self.run_cancel(rt, n)
            }
        }
    }

    /// The allocations of the run, for `--case`'s line.
    fn detail(self) -> Option<String> {
        Some(format!("allocations={}", ALLOCATED.of(self).0))
    }

    fn summary(of: &dyn Fn(Case) -> f64, out: &mut String) {
        let baseline = of(Case::Baseline);
        let outlined = of(Case::BaselineOutlined);
        let _ = writeln!(
            out,
            "| case | vs baseline | vs baseline_outlined | allocations in the drain | per unit |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|");
        for &case in <Case as support::Case>::ALL {
            let (ratio, ratio_outlined) = if case.is_op() {
                ("-".to_owned(), "-".to_owned())
            } else {
                (
                    format!("{:.2}x", of(case) / baseline),
                    format!("{:.2}x", of(case) / outlined),
                )
            };
            let (count, per) = ALLOCATED.of(case);
            let _ = writeln!(
                out,
                "| {} | {ratio} | {ratio_outlined} | {count} | {per:.4} |",
                case.name()
            );
        }
        let _ = writeln!(out);
        support::budgets(&BUDGETS, of, out);
        let (count, per) = ALLOCATED.of(Case::Merge4);
        let verdict = if per < 0.001 { "met" } else { "MISSED" };
        let _ = writeln!(
            out,
            "merge4 allocations: {per:.4} per item, {count} in the whole drain (budget: none per item: {verdict})"
        );
        let _ = writeln!(
            out,
            "fan_out4: lossless (every consumer's sum checked in every round)"
        );
        support::ratios(&RATIOS, of, out);
    }
}

/// The budgets of DESIGN.md and issue 4: `(what, numerator, denominator, budget)`, a ratio of
/// medians.
const BUDGETS: [(&str, Case, Case, f64); 4] = [
    ("merge4 / baseline", Case::Merge4, Case::Baseline, 1.3),
    (
        "fan_out4 / baseline (per source item)",
        Case::FanOut4,
        Case::Baseline,
        15.0,
    ),
    ("buffered16 / mpsc16", Case::Buffered16, Case::Mpsc16, 1.0),
    (
        "flow_acquire / semaphore_acquire",
        Case::FlowAcquire,
        Case::SemaphoreAcquire,
        1.1,
    ),
];

/// Ratios reported for information: `(what, numerator, denominator)`.
const RATIOS: [(&str, Case, Case); 14] = [
    (
        "merge4 / baseline_outlined",
        Case::Merge4,
        Case::BaselineOutlined,
    ),
    ("merge4 / tokio_merge4", Case::Merge4, Case::TokioMerge4),
    ("merge4 / select_all4", Case::Merge4, Case::SelectAll4),
    (
        "fan_out4 / baseline_outlined",
        Case::FanOut4,
        Case::BaselineOutlined,
    ),
    ("fan_out4 / mpsc_fan_out4", Case::FanOut4, Case::MpscFanOut4),
    (
        "fan_out4_mt / mpsc_fan_out4_mt (4 workers, 2 cores)",
        Case::FanOut4Mt,
        Case::MpscFanOut4Mt,
    ),
    ("buffered16 / baseline", Case::Buffered16, Case::Baseline),
    (
        "buffered16 / baseline_outlined",
        Case::Buffered16,
        Case::BaselineOutlined,
    ),
    (
        "mpsc16 / baseline_outlined",
        Case::Mpsc16,
        Case::BaselineOutlined,
    ),
    (
        "flow_acquire / semaphore_acquire_owned",
        Case::FlowAcquire,
        Case::SemaphoreAcquireOwned,
    ),
    (
        "flow_acquire_deadline / semaphore_acquire",
        Case::FlowAcquireDeadline,
        Case::SemaphoreAcquire,
    ),
    (
        "flow_acquire_deadline / flow_acquire",
        Case::FlowAcquireDeadline,
        Case::FlowAcquire,
    ),
    (
        "cancel_context3 / cancel_token3 (build, cancel, drop)",
        Case::CancelContext3,
        Case::CancelToken3,
    ),
    (
        "tree_context3 / tree_token3 (build, drop)",
        Case::TreeContext3,
        Case::TreeToken3,
    ),
];

fn main() -> ExitCode {
    support::main::<Case>()
}
