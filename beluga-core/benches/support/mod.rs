//! The custom harness `benches/pipeline.rs`, `benches/producer.rs`, `benches/combinators.rs` and
//! `benches/runnable.rs` share (no criterion).
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

use std::fmt::Write as _;
use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

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
    let of = |case: C| stats[C::ALL.iter().position(|c| *c == case).unwrap()].0;
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
