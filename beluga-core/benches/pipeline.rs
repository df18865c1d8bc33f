//! Per-item cost of beluga's combinators against a hand-written stream and futures-util.
//!
//! A custom harness (no criterion): every case drives `N` items (default 1,000,000) through a
//! consumer that does `while let Some(item) = stream.next().await` on a Tokio `current_thread`
//! runtime and sums the `u64` payloads. Cases run round-robin, `--rounds` times (default 15), so
//! machine noise spreads over all of them; the table reports the median per item and its ratio to
//! `baseline`, a hand-written `impl Stream` of the same items, measured in the same run.
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

/// The limit: a hand-written state machine yielding `data(0..n)`, then `done`, then `None`.
struct Counter {
    next: u64,
    end: u64,
    done: bool,
}

impl Counter {
    fn new(n: u64) -> Self {
        Counter {
            next: 0,
            end: black_box(n),
            done: false,
        }
    }
}

impl Stream for Counter {
    type Item = Result<Event<u64>, Error>;

    fn poll_next(self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.next < this.end {
            let i = this.next;
            this.next += 1;
            Poll::Ready(Some(Ok(Event::data(i))))
        } else if !this.done {
            this.done = true;
            Poll::Ready(Some(Ok(Event::done())))
        } else {
            Poll::Ready(None)
        }
    }
}

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
    const ALL: [Case; 10] = [
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

    fn from_name(name: &str) -> Option<Case> {
        Case::ALL.into_iter().find(|case| case.name() == name)
    }

    fn is_call_loop(self) -> bool {
        matches!(self, Case::IsCancelled | Case::IsCancelledToken)
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
            | Case::BaselineCancellableDeadline => (0..n).fold(0, u64::wrapping_add),
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
}

fn time(rt: &Runtime, consumer: impl Future<Output = u64>) -> (Duration, u64) {
    let start = Instant::now();
    let sum = rt.block_on(consumer);
    (start.elapsed(), black_box(sum))
}

fn check(case: Case, n: u64, sum: u64) -> Result<(), String> {
    let expected = case.expected(n);
    if sum == expected {
        Ok(())
    } else {
        Err(format!("{}: sum {sum}, expected {expected}", case.name()))
    }
}

#[allow(
    clippy::cast_precision_loss,
    reason = "nanosecond counts stay far below 2^52"
)]
fn ns_per_unit(elapsed: Duration, units: u64) -> f64 {
    elapsed.as_nanos() as f64 / units as f64
}

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    let mid = samples.len() / 2;
    if samples.len() % 2 == 1 {
        samples[mid]
    } else {
        f64::midpoint(samples[mid - 1], samples[mid])
    }
}

struct Args {
    case: Option<Case>,
    items: u64,
    rounds: usize,
    bench: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        case: None,
        items: 1_000_000,
        rounds: 15,
        bench: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| it.next().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "--case" => {
                let name = value("--case")?;
                let names = Case::ALL.map(Case::name).join(", ");
                args.case =
                    Some(Case::from_name(&name).ok_or_else(|| {
                        format!("unknown case `{name}`, expected one of: {names}")
                    })?);
            }
            "--items" => {
                let raw = value("--items")?.replace('_', "");
                args.items = raw.parse().map_err(|e| format!("--items: {e}"))?;
            }
            "--rounds" => {
                args.rounds = value("--rounds")?
                    .parse()
                    .map_err(|e| format!("--rounds: {e}"))?;
            }
            "--bench" => args.bench = true,
            // Flags cargo or a test runner may pass: ignored.
            _ => {}
        }
    }
    if args.items == 0 || args.rounds == 0 {
        return Err("--items and --rounds must be at least 1".to_owned());
    }
    Ok(args)
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("building the Tokio runtime")
}

/// `--case NAME`: one run, one line, for callgrind.sh.
fn run_one(rt: &Runtime, case: Case, n: u64) -> Result<(), String> {
    let (elapsed, sum) = case.run(rt, n);
    check(case, n, sum)?;
    let units = case.units(n);
    println!(
        "case={} units={units} ns_per_{}={:.3} checksum={sum}",
        case.name(),
        case.unit(),
        ns_per_unit(elapsed, units),
    );
    Ok(())
}

/// No `--bench`: every case once on a few items, sums checked, nothing timed.
fn smoke(rt: &Runtime) -> Result<(), String> {
    for case in Case::ALL {
        for n in [1, 1_000] {
            let (_, sum) = case.run(rt, n);
            check(case, n, sum)?;
        }
    }
    println!("pipeline: every case checked on small inputs; `cargo bench` runs the benchmark");
    Ok(())
}

fn run_all(rt: &Runtime, n: u64, rounds: usize) -> Result<String, String> {
    let mut samples = vec![Vec::with_capacity(rounds); Case::ALL.len()];
    // One warm-up round, not recorded, then the rounds, interleaved.
    for round in 0..=rounds {
        for (i, case) in Case::ALL.into_iter().enumerate() {
            let (elapsed, sum) = case.run(rt, n);
            check(case, n, sum)?;
            if round > 0 {
                samples[i].push(ns_per_unit(elapsed, case.units(n)));
            }
        }
    }
    let stats: Vec<(f64, f64, f64)> = samples
        .iter_mut()
        .map(|s| {
            let med = median(s);
            (med, s[0], s[s.len() - 1])
        })
        .collect();
    let of = |case: Case| stats[Case::ALL.iter().position(|c| *c == case).unwrap()].0;
    let baseline = of(Case::Baseline);

    let mut out = String::new();
    let _ = writeln!(
        out,
        "{n} items, {rounds} rounds (median, min and max per unit; ratios of medians)\n"
    );
    let _ = writeln!(
        out,
        "| case | unit | median ns | min ns | max ns | vs baseline |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|");
    for (case, (med, min, max)) in Case::ALL.into_iter().zip(&stats) {
        let ratio = if case.is_call_loop() {
            "-".to_owned()
        } else {
            format!("{:.2}x", med / baseline)
        };
        let _ = writeln!(
            out,
            "| {} | {} | {med:.2} | {min:.2} | {max:.2} | {ratio} |",
            case.name(),
            case.unit()
        );
    }
    let ours = of(Case::BelugaMapFilterMap);
    let theirs = of(Case::FuturesMapFilterMap);
    let _ = writeln!(
        out,
        "\nbeluga map->filter->map / futures-util: {:.2}x (target <= 1.10x)",
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
    Ok(out)
}

fn main() -> ExitCode {
    let result = parse_args().and_then(|args| {
        let rt = runtime();
        match args.case {
            Some(case) => run_one(&rt, case, args.items),
            None if args.bench => run_all(&rt, args.items, args.rounds).map(|t| print!("{t}")),
            None => smoke(&rt),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("pipeline: {msg}");
            ExitCode::FAILURE
        }
    }
}
