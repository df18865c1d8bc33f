//! The custom harness `benches/pipeline.rs`, `benches/producer.rs`, `benches/combinators.rs`,
//! `benches/runnable.rs` and beluga-llm's `benches/sse_decode.rs` share (no criterion).
//!
//! A bench lists its cases as an enum implementing [`Case`] and hands it to [`main`], which reads
//! the command line and does one of three things:
//!
//! - `--case NAME`: runs that case once on `--items` items and prints one line,
//!   `case=NAME units=U ns_per_UNIT=T checksum=S` (then [`Case::detail`], if any), which
//!   `callgrind.sh` parses;
//! - `--bench` (which `cargo bench` passes): runs every case round-robin, one warm-up round and
//!   then `--rounds` rounds, and prints the table of medians followed by [`Case::summary`];
//! - neither: runs every case once on a few items and checks the sums, nothing timed. That is
//!   what `cargo test --all-targets` does, so benchmarks never run as part of the tests.
//!
//! Unknown flags are ignored. Every run's checksum is compared with [`Case::expected`].

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::hint::black_box;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use beluga_core::{Error, Event};
use futures_core::Stream;

use tokio::runtime::Runtime;

/// One benchmark case of a bench: what the harness needs to run, check and report it.
pub(crate) trait Case: Copy + PartialEq + 'static {
    /// The bench's name, which starts its messages.
    const BENCH: &'static str;
    /// Every case, in table order (and round-robin order).
    const ALL: &'static [Self];
    /// The case the table's last column divides by.
    const BASELINE: Self;

    /// The case's name, as `--case` takes it and the table shows it.
    fn name(self) -> &'static str;

    /// The case's place in [`Case::ALL`].
    fn index(self) -> usize {
        Self::ALL
            .iter()
            .position(|c| *c == self)
            .expect("a listed case")
    }

    /// The unit a figure is given per.
    fn unit(self) -> &'static str {
        "item"
    }

    /// How many units one run of `n` items measures.
    fn units(self, n: u64) -> u64 {
        n
    }

    /// Anything more to say about the last run, appended to `--case`'s line (none by default).
    fn detail(self) -> Option<String> {
        None
    }

    /// The sum a correct run of `n` items returns.
    fn expected(self, n: u64) -> u64;

    /// Runs the case once on `n` items; returns the time spent and the checksum.
    fn run(self, rt: &Runtime, n: u64) -> (Duration, u64);

    /// Writes the lines that follow the table (ratios, budgets and their verdicts); `of` gives a
    /// case's median in nanoseconds per unit.
    fn summary(of: &dyn Fn(Self) -> f64, out: &mut String);
}

/// Runs `consumer` to completion on `rt`; returns the time it took and its sum.
pub(crate) fn time(rt: &Runtime, consumer: impl Future<Output = u64>) -> (Duration, u64) {
    let start = Instant::now();
    let sum = rt.block_on(consumer);
    (start.elapsed(), black_box(sum))
}

/// The sum of `0..n`, wrapping: what a stream of `data(0..n)` sums to.
#[allow(dead_code, reason = "not every bench sums a counter")]
pub(crate) fn sum_to(n: u64) -> u64 {
    (0..n).fold(0, u64::wrapping_add)
}

/// Writes one line per budget, `(what, numerator, denominator, budget)`: the ratio of the two
/// cases' medians and whether it is within the budget.
#[allow(dead_code, reason = "not every bench has budgets")]
pub(crate) fn budgets<C: Case>(
    budgets: &[(&str, C, C, f64)],
    of: &dyn Fn(C) -> f64,
    out: &mut String,
) {
    for &(what, ours, theirs, budget) in budgets {
        let ratio = of(ours) / of(theirs);
        let verdict = if ratio <= budget { "met" } else { "MISSED" };
        let _ = writeln!(
            out,
            "{what}: {ratio:.2}x (budget <= {budget:.2}x: {verdict})"
        );
    }
}

/// Writes one line per ratio reported for information, `(what, numerator, denominator)`.
#[allow(dead_code, reason = "not every bench reports such ratios")]
pub(crate) fn ratios<C: Case>(ratios: &[(&str, C, C)], of: &dyn Fn(C) -> f64, out: &mut String) {
    for &(what, ours, theirs) in ratios {
        let _ = writeln!(out, "{what}: {:.2}x", of(ours) / of(theirs));
    }
}

/// The limit of `benches/pipeline.rs` and `benches/combinators.rs`: a hand-written state
/// machine yielding `data(next..end)`, then `done`, then `None`.
#[allow(dead_code, reason = "not every bench uses the hand-written counter")]
pub(crate) struct Counter {
    pub(crate) next: u64,
    pub(crate) end: u64,
    pub(crate) done: bool,
}

#[allow(dead_code, reason = "not every bench uses the hand-written counter")]
impl Counter {
    /// `data(0..n)`: the start is known to the optimizer, the end is not.
    pub(crate) fn new(n: u64) -> Self {
        Counter {
            next: 0,
            end: black_box(n),
            done: false,
        }
    }

    /// `data(start..end)`: neither bound is known to the optimizer.
    pub(crate) fn range(start: u64, end: u64) -> Self {
        Counter {
            next: black_box(start),
            end: black_box(end),
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

/// For reference: any stream behind a call the optimizer may not inline. The hand-written
/// baselines compile into the consumer's loop; a stream that does not pays for the call, and
/// for returning its item through memory.
#[allow(dead_code, reason = "not every bench has an outlined baseline")]
pub(crate) struct Outlined<S> {
    pub(crate) inner: S,
}

impl<S: Stream + Unpin> Stream for Outlined<S> {
    type Item = S::Item;

    #[inline(never)]
    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<S::Item>> {
        Pin::new(&mut self.get_mut().inner).poll_next(cx)
    }
}

/// Counts every call into the allocator (`alloc`, `alloc_zeroed`, `realloc`), on any thread. A
/// bench that reports allocations installs it as its own `#[global_allocator]` and records them
/// in an [`Allocated`].
#[allow(dead_code, reason = "only the benches that report allocations use it")]
pub(crate) struct CountingAllocator;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards its arguments unchanged to `System`, which upholds the contract.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's guarantees for `alloc` are `System::alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with this layout, as the caller guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `dealloc`, and `new_size` is the caller's, unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// The allocations made during each case's last run, counted by [`CountingAllocator`]:
/// `(allocations, units)` by [`Case::index`]. `N` is the number of cases.
#[allow(dead_code, reason = "only the benches that report allocations use it")]
pub(crate) struct Allocated<const N: usize>(Mutex<[(u64, u64); N]>);

#[allow(dead_code, reason = "only the benches that report allocations use it")]
impl<const N: usize> Allocated<N> {
    pub(crate) const fn new() -> Self {
        Allocated(Mutex::new([(0, 0); N]))
    }

    /// Times `consumer` on `rt` as [`time`] does, and records as `case`'s last run of `units`
    /// units the allocations made meanwhile, on every thread (the runtime's, spawned tasks').
    pub(crate) fn measure<C: Case>(
        &self,
        case: C,
        rt: &Runtime,
        units: u64,
        consumer: impl Future<Output = u64>,
    ) -> (Duration, u64) {
        let before = ALLOCATIONS.load(Ordering::SeqCst);
        let result = time(rt, consumer);
        let count = ALLOCATIONS.load(Ordering::SeqCst) - before;
        self.0.lock().expect("no panic while recording")[case.index()] = (count, units);
        result
    }

    /// The allocations of `case`'s last run, and per unit.
    #[allow(
        clippy::cast_precision_loss,
        reason = "allocation and item counts stay far below 2^52"
    )]
    pub(crate) fn of<C: Case>(&self, case: C) -> (u64, f64) {
        let (count, units) = self.0.lock().expect("no panic while recording")[case.index()];
        (count, count as f64 / units.max(1) as f64)
    }
}

/// The bench's `main`: parses the command line, then runs one case, the benchmark, or the check.
pub(crate) fn main<C: Case>() -> ExitCode {
    let result = parse_args::<C>().and_then(|args| {
        let rt = runtime();
        match args.case {
            Some(case) => run_one(&rt, case, args.items),
            None if args.bench => run_all::<C>(&rt, args.items, args.rounds).map(|t| print!("{t}")),
            None => smoke::<C>(&rt),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("{}: {msg}", C::BENCH);
            ExitCode::FAILURE
        }
    }
}

fn check<C: Case>(case: C, n: u64, sum: u64) -> Result<(), String> {
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

struct Args<C> {
    case: Option<C>,
    items: u64,
    rounds: usize,
    bench: bool,
}

fn parse_args<C: Case>() -> Result<Args<C>, String> {
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
                let found = C::ALL.iter().copied().find(|case| case.name() == name);
                args.case = Some(found.ok_or_else(|| {
                    let names: Vec<_> = C::ALL.iter().map(|case| case.name()).collect();
                    format!(
                        "unknown case `{name}`, expected one of: {}",
                        names.join(", ")
                    )
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
fn run_one<C: Case>(rt: &Runtime, case: C, n: u64) -> Result<(), String> {
    let (elapsed, sum) = case.run(rt, n);
    check(case, n, sum)?;
    let units = case.units(n);
    let detail = case.detail().map(|d| format!(" {d}")).unwrap_or_default();
    println!(
        "case={} units={units} ns_per_{}={:.3} checksum={sum}{detail}",
        case.name(),
        case.unit(),
        ns_per_unit(elapsed, units),
    );
    Ok(())
}

/// No `--bench`: every case once on a few items, sums checked, nothing timed.
fn smoke<C: Case>(rt: &Runtime) -> Result<(), String> {
    for &case in C::ALL {
        for n in [1, 1_000] {
            let (_, sum) = case.run(rt, n);
            check(case, n, sum)?;
        }
    }
    println!(
        "{}: every case checked on small inputs; `cargo bench` runs the benchmark",
        C::BENCH
    );
    Ok(())
}

/// `--bench`: every case round-robin, then the table and the bench's summary.
///
/// The table has a `unit` column, and gives its figures "per unit", only when some case's unit
/// differs from the baseline's; a case in another unit than the baseline gets `-` for a ratio.
fn run_all<C: Case>(rt: &Runtime, n: u64, rounds: usize) -> Result<String, String> {
    let mut samples = vec![Vec::with_capacity(rounds); C::ALL.len()];
    // One warm-up round, not recorded, then the rounds, interleaved.
    for round in 0..=rounds {
        for (i, &case) in C::ALL.iter().enumerate() {
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
    let of = |case: C| stats[case.index()].0;
    let baseline = of(C::BASELINE);
    let base_unit = C::BASELINE.unit();
    let unit_column = C::ALL.iter().any(|case| case.unit() != base_unit);
    let per = if unit_column { "unit" } else { base_unit };

    let mut out = String::new();
    let _ = writeln!(
        out,
        "{n} items, {rounds} rounds (median, min and max per {per}; ratios of medians)\n"
    );
    let _ = writeln!(
        out,
        "| case |{} median ns | min ns | max ns | vs {} |",
        if unit_column { " unit |" } else { "" },
        C::BASELINE.name()
    );
    let _ = writeln!(
        out,
        "|---|{}---:|---:|---:|---:|",
        if unit_column { "---|" } else { "" }
    );
    for (&case, (med, min, max)) in C::ALL.iter().zip(&stats) {
        let unit = if unit_column {
            format!(" {} |", case.unit())
        } else {
            String::new()
        };
        let ratio = if case.unit() == base_unit {
            format!("{:.2}x", med / baseline)
        } else {
            "-".to_owned()
        };
        let _ = writeln!(
            out,
            "| {} |{unit} {med:.2} | {min:.2} | {max:.2} | {ratio} |",
            case.name()
        );
    }
    let _ = writeln!(out);
    C::summary(&of, &mut out);
    Ok(out)
}
