//! Cost per item of `merge`, `parallel` and `fan_out` as the number of inputs, branches or
//! consumers grows, against futures-util `select_all` and tokio-stream `StreamMap`.
//!
//! The same custom harness as `benches/pipeline.rs`, in `benches/support` (no criterion), on a
//! Tokio `current_thread` runtime. Every sum is checked.
//!
//! - `merge_N`, `select_all_N`, `stream_map_N` (N = 1, 16, 256, 4096): N unbounded Tokio mpsc
//!   channels merged into one consumer that sums the payloads; a spawned producer sends
//!   `data(k)` into channel `k % N`, then yields, so one input has one item at each wake of the
//!   consumer. Figures per delivered item. `merge_N` and `select_all_N` run on N/10 items,
//!   `stream_map_N` on fewer as N grows (it polls every input per item): the setup (N channels)
//!   is part of the time, and cancels out of the callgrind figures.
//! - `parallel_B` (B = 10, 100, 1000): `runnable::parallel` over B branches, each streaming one
//!   channel, fed the same way; figures per item.
//! - `fan_out_K` (K = 4, 64, 256): `fan_out_with_capacity(K, 16)` of a hand-written source of
//!   N/K items, the K consumers driven by one `FuturesUnordered` on the current task; figures
//!   per consumer-item (N/K items times K consumers).
//!
//! ```text
//! cargo bench -p beluga-core --bench many                      # the full table
//! cargo bench -p beluga-core --bench many -- --rounds 21
//! <bench binary> --case merge_4096 --items 1000000             # one case, once (callgrind.sh)
//! ```
//!
//! Without `--bench` (which `cargo bench` passes) and without `--case`, the binary only runs
//! every case once on a few items and checks the sums: that is what `cargo test --all-targets`
//! does with it, so benchmarks never run as part of the tests. Unknown flags are ignored.

use std::fmt::Write as _;
use std::hint::black_box;
use std::pin::pin;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use beluga_core::runnable::{ParallelOutput, parallel};
use beluga_core::{Context, Error, Event, EventResult, EventStreamExt, Runnable, stream};
use futures_core::Stream;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;
use tokio_stream::StreamMap;
use tokio_stream::wrappers::UnboundedReceiverStream;

use support::{Allocated, Counter, CountingAllocator, sum_to};

mod support;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

type Item = Result<Event<u64>, Error>;

/// The consumer of the merges: sums the `data` payloads.
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

/// `items` channels' worth of senders and receivers: `n` unbounded channels.
fn channels<T>(
    n: usize,
) -> (
    Vec<mpsc::UnboundedSender<T>>,
    Vec<mpsc::UnboundedReceiver<T>>,
) {
    (0..n).map(|_| mpsc::unbounded_channel()).unzip()
}

/// Sends `f(k)` into channel `k % n` for every `k` in `0..items`, yielding after each, then
/// closes the channels. Spawned on `rt` (it runs once the consumer's `block_on` drives it).
fn feed<T: Send + 'static>(
    rt: &Runtime,
    txs: Vec<mpsc::UnboundedSender<T>>,
    items: u64,
    f: fn(u64) -> T,
) {
    let _guard = rt.enter();
    drop(tokio::spawn(async move {
        let n = txs.len() as u64;
        for k in 0..items {
            let channel = usize::try_from(k % n).expect("a channel index");
            txs[channel].send(f(k)).expect("the consumer is alive");
            tokio::task::yield_now().await;
        }
    }));
}

/// A branch of the `parallel` cases: streams the values of its channel as `data`, then ends
/// with `done_with(0)`.
struct ChannelBranch(Mutex<Option<mpsc::UnboundedReceiver<u64>>>);

impl Runnable for ChannelBranch {
    type Input = ();
    type Output = u64;
    fn stream(&self, _ctx: Context, (): ()) -> impl Stream<Item = EventResult<u64>> + Send + '_ {
        let rx = self.0.lock().expect("no panic").take().expect("run once");
        UnboundedReceiverStream::new(rx)
            .map(|x| Ok(Event::data(x)))
            .chain(futures_util::stream::iter([Ok(Event::done_with(0))]))
    }
}

/// The consumer of `parallel`: sums the branches' payloads.
async fn consume_parallel<S>(stream: S) -> u64
where
    S: Stream<Item = EventResult<ParallelOutput<u64>>>,
{
    let mut stream = pin!(stream);
    let mut sum = 0_u64;
    while let Some(item) = stream.next().await {
        match item.map(Event::into_payload) {
            Ok(Some(ParallelOutput::Item { value, .. })) => sum = sum.wrapping_add(value),
            Ok(_) => {}
            Err(err) => panic!("the benchmark run failed: {err}"),
        }
    }
    sum
}

/// Allocations made during each case's last timed run.
static ALLOCATED: Allocated<CASES> = Allocated::new();

const CASES: usize = <Case as support::Case>::ALL.len();

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    Merge(usize),
    SelectAll(usize),
    StreamMap(usize),
    Parallel(usize),
    FanOut(usize),
}

impl Case {
    /// How many source items a run of `n` uses.
    fn items(self, n: u64) -> u64 {
        let divisor = match self {
            Case::Merge(_) | Case::SelectAll(_) | Case::Parallel(_) => 10,
            // StreamMap polls every input per item: fewer items as inputs grow.
            Case::StreamMap(inputs) => 10 * (inputs as u64 / 16).max(1),
            Case::FanOut(consumers) => consumers as u64,
        };
        (n / divisor).max(1)
    }

    fn drain(self, rt: &Runtime, n: u64, consumer: impl Future<Output = u64>) -> (Duration, u64) {
        ALLOCATED.measure(self, rt, support::Case::units(self, n), consumer)
    }
}

impl support::Case for Case {
    const BENCH: &'static str = "many";
    const ALL: &'static [Case] = &[
        Case::Merge(1),
        Case::SelectAll(1),
        Case::StreamMap(1),
        Case::Merge(16),
        Case::SelectAll(16),
        Case::StreamMap(16),
        Case::Merge(256),
        Case::SelectAll(256),
        Case::StreamMap(256),
        Case::Merge(4096),
        Case::SelectAll(4096),
        Case::StreamMap(4096),
        Case::Parallel(10),
        Case::Parallel(100),
        Case::Parallel(1000),
        Case::FanOut(4),
        Case::FanOut(64),
        Case::FanOut(256),
    ];
    const BASELINE: Case = Case::Merge(1);

    fn name(self) -> &'static str {
        match self {
            Case::Merge(1) => "merge_1",
            Case::Merge(16) => "merge_16",
            Case::Merge(256) => "merge_256",
            Case::Merge(_) => "merge_4096",
            Case::SelectAll(1) => "select_all_1",
            Case::SelectAll(16) => "select_all_16",
            Case::SelectAll(256) => "select_all_256",
            Case::SelectAll(_) => "select_all_4096",
            Case::StreamMap(1) => "stream_map_1",
            Case::StreamMap(16) => "stream_map_16",
            Case::StreamMap(256) => "stream_map_256",
            Case::StreamMap(_) => "stream_map_4096",
            Case::Parallel(10) => "parallel_10",
            Case::Parallel(100) => "parallel_100",
            Case::Parallel(_) => "parallel_1000",
            Case::FanOut(4) => "fan_out_4",
            Case::FanOut(64) => "fan_out_64",
            Case::FanOut(_) => "fan_out_256",
        }
    }

    fn unit(self) -> &'static str {
        if matches!(self, Case::FanOut(_)) {
            "delivery"
        } else {
            "item"
        }
    }

    fn units(self, n: u64) -> u64 {
        match self {
            Case::FanOut(consumers) => self.items(n) * consumers as u64,
            _ => self.items(n),
        }
    }

    fn expected(self, n: u64) -> u64 {
        let sum = sum_to(self.items(n));
        match self {
            Case::FanOut(consumers) => sum.wrapping_mul(consumers as u64),
            _ => sum,
        }
    }

    fn run(self, rt: &Runtime, n: u64) -> (Duration, u64) {
        let items = black_box(self.items(n));
        match self {
            Case::Merge(inputs) | Case::SelectAll(inputs) | Case::StreamMap(inputs) => {
                let (txs, rxs) = channels(inputs);
                feed(rt, txs, items, |k| Ok(Event::data(k)));
                let rxs = rxs.into_iter().map(UnboundedReceiverStream::new);
                match self {
                    Case::Merge(_) => self.drain(rt, n, consume(stream::merge(rxs))),
                    Case::SelectAll(_) => {
                        self.drain(rt, n, consume(futures_util::stream::select_all(rxs)))
                    }
                    _ => {
                        let map: StreamMap<usize, _> = rxs.enumerate().collect();
                        self.drain(rt, n, consume(map.map(|(_, item)| item)))
                    }
                }
            }
            Case::Parallel(branches) => {
                let (txs, rxs) = channels(branches);
                feed(rt, txs, items, |k| k);
                let run = parallel(
                    rxs.into_iter()
                        .map(|rx| ChannelBranch(Mutex::new(Some(rx))))
                        .collect::<Vec<_>>(),
                );
                let ctx = Context::new();
                self.drain(rt, n, consume_parallel(run.stream(ctx, ())))
            }
            Case::FanOut(k) => {
                let consumers = Counter::range(0, items)
                    .fan_out_with_capacity(k, 16)
                    .expect("valid fan-out arguments");
                let each = sum_to(items);
                self.drain(rt, n, async move {
                    let mut all: FuturesUnordered<_> = consumers.into_iter().map(consume).collect();
                    let mut total = 0_u64;
                    while let Some(sum) = all.next().await {
                        assert_eq!(sum, each, "a fan-out consumer lost or repeated items");
                        total = total.wrapping_add(sum);
                    }
                    total
                })
            }
        }
    }

    fn detail(self) -> Option<String> {
        Some(format!("allocations={}", ALLOCATED.of(self).0))
    }

    fn summary(of: &dyn Fn(Case) -> f64, out: &mut String) {
        let _ = writeln!(out, "| case | allocations in the drain | per unit |");
        let _ = writeln!(out, "|---|---:|---:|");
        for &case in <Case as support::Case>::ALL {
            let (count, per) = ALLOCATED.of(case);
            let _ = writeln!(out, "| {} | {count} | {per:.4} |", case.name());
        }
        let _ = writeln!(out);
        support::budgets(&BUDGETS, of, out);
        support::ratios(&RATIOS, of, out);
    }
}

/// The budgets: `(what, numerator, denominator, budget)`, a ratio of medians.
const BUDGETS: [(&str, Case, Case, f64); 4] = [
    (
        "merge_4096 / select_all_4096",
        Case::Merge(4096),
        Case::SelectAll(4096),
        1.0,
    ),
    (
        "merge_4096 / merge_1",
        Case::Merge(4096),
        Case::Merge(1),
        1.5,
    ),
    (
        "parallel_1000 / parallel_10",
        Case::Parallel(1000),
        Case::Parallel(10),
        1.5,
    ),
    (
        "fan_out_256 / fan_out_4 (per delivery)",
        Case::FanOut(256),
        Case::FanOut(4),
        1.3,
    ),
];

/// Ratios reported for information: `(what, numerator, denominator)`.
const RATIOS: [(&str, Case, Case); 8] = [
    ("merge_1 / select_all_1", Case::Merge(1), Case::SelectAll(1)),
    ("merge_1 / stream_map_1", Case::Merge(1), Case::StreamMap(1)),
    (
        "merge_16 / select_all_16",
        Case::Merge(16),
        Case::SelectAll(16),
    ),
    (
        "merge_256 / select_all_256",
        Case::Merge(256),
        Case::SelectAll(256),
    ),
    (
        "merge_4096 / stream_map_4096",
        Case::Merge(4096),
        Case::StreamMap(4096),
    ),
    ("merge_256 / merge_1", Case::Merge(256), Case::Merge(1)),
    (
        "parallel_100 / parallel_10",
        Case::Parallel(100),
        Case::Parallel(10),
    ),
    (
        "fan_out_64 / fan_out_4 (per delivery)",
        Case::FanOut(64),
        Case::FanOut(4),
    ),
];

fn main() -> ExitCode {
    support::main::<Case>()
}
