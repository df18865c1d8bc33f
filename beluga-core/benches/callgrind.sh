#!/usr/bin/env bash
# Instructions per item (or per call) for every case of one bench in benches/, under callgrind.
#
# Each case runs twice, on N and 2N items; (Ir(2N) - Ir(N)) / (units(2N) - units(N)) cancels
# process start-up, runtime construction and any other fixed cost. Instruction counts are the
# stable figure on a noisy machine; they do not show memory stalls, so read them beside times.
#
# Usage: bash beluga-core/benches/callgrind.sh [BENCH] [N]
#   BENCH: pipeline (default), producer, combinators, runnable, many, tracing (built with the
#   `tracing` feature), or beluga-llm's sse_decode; N: items (default 1000000; chunks for
#   sse_decode, where 20000 is plenty).
#   `callgrind.sh 2000000` (a number alone) still means the pipeline bench on N items.
#   combinators: the `_mt` cases (a multi-thread runtime) are skipped; valgrind runs one thread
#   at a time, so their instruction counts would say nothing about them.
#   runnable: the batch cases and invoke_loop run on N/10 inputs (and 2N/10); figures per input.
#   many: the channel cases run on N/10 items (stream_map on fewer), fan_out_K on N/K source
#   items; figures per delivered item (per consumer-item for fan_out).
# KEEP=DIR keeps the callgrind.out files of the N runs in DIR, for callgrind_annotate.
set -euo pipefail

bench=pipeline
package=beluga-core
if [ $# -gt 0 ] && ! [[ "$1" =~ ^[0-9_]+$ ]]; then
    bench="$1"
    shift
fi
items="${1:-1000000}"
items="${items//_/}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

# The cases of each bench, in table order; the first is the baseline of the ratios.
features=()
case "$bench" in
    pipeline)
        cases=(baseline bare_u64 inline_map_filter_map beluga_map_filter_map
            futures_map_filter_map baseline_checked baseline_cancellable
            baseline_cancellable_deadline is_cancelled is_cancelled_token)
        ;;
    producer)
        cases=(baseline_checked baseline_outlined producer produce baseline_question outlined_question
            producer_question async_stream_try baseline_bare async_stream_bare
            baseline_map_filter_map outlined_map_filter_map producer_map_filter_map
            producer_deadline)
        ;;
    combinators)
        # Not fan_out4_mt and mpsc_fan_out4_mt: see the usage above.
        cases=(baseline baseline_outlined merge4 select_all4 tokio_merge4 fan_out4
            mpsc_fan_out4 buffered16 mpsc16 flow_acquire semaphore_acquire
            semaphore_acquire_owned flow_acquire_deadline cancel_context3 cancel_token3
            tree_context3 tree_token3)
        ;;
    many)
        cases=(merge_1 select_all_1 stream_map_1 merge_16 select_all_16 stream_map_16
            merge_256 select_all_256 stream_map_256 merge_4096 select_all_4096 stream_map_4096
            parallel_10 parallel_100 parallel_1000 fan_out_4 fan_out_64 fan_out_256)
        ;;
    runnable)
        cases=(drain_by_hand invoke invoke_stream invoke_boxed invoke_loop batch1 batch8 batch64
            batch64_spawned)
        ;;
    tracing)
        cases=(baseline baseline_outlined traced_unsubscribed entered_by_hand traced_subscribed)
        features=(--features tracing)
        ;;
    sse_decode)
        package=beluga-llm
        cases=(baseline framing beluga async_openai beluga_anthropic)
        ;;
    *)
        echo "callgrind.sh: unknown bench \`$bench\` (expected pipeline, producer, combinators, runnable, many, tracing or sse_decode)" >&2
        exit 1
        ;;
esac

# CASES="a b" runs those cases only (the first is then the baseline of the ratios).
if [ -n "${CASES:-}" ]; then
    read -ra cases <<<"$CASES"
fi

command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is not installed" >&2; exit 1; }

# Build the bench binary (errors shown), then ask cargo where it is rather than guessing a hash.
cargo bench -p "$package" ${features[@]+"${features[@]}"} --bench "$bench" --no-run
bin="$(cargo bench -p "$package" ${features[@]+"${features[@]}"} --bench "$bench" --no-run --message-format=json 2>/dev/null \
    | grep '"reason":"compiler-artifact"' \
    | grep '"kind":\["bench"\]' \
    | grep "\"name\":\"$bench\"" \
    | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' \
    | tail -n 1 || true)"
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    echo "callgrind.sh: could not locate the $bench bench binary" >&2
    exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Total instructions of one run, and the units (items or calls) it measured.
measure() {
    local case="$1" n="$2" out
    out="$tmp/$case.$n"
    valgrind --tool=callgrind --callgrind-out-file="$out.cg" \
        "$bin" --case "$case" --items "$n" >"$out.stdout" 2>"$out.stderr"
    local ir units unit
    ir="$(awk '/^(summary|totals):/ { print $2; exit }' "$out.cg")"
    units="$(sed -n 's/.*units=\([0-9]*\).*/\1/p' "$out.stdout")"
    unit="$(sed -n 's/.* ns_per_\([a-z]*\)=.*/\1/p' "$out.stdout")"
    if [ -z "$ir" ] || [ -z "$units" ] || [ -z "$unit" ]; then
        echo "callgrind.sh: no result for $case on $n items; see below" >&2
        cat "$out.stdout" "$out.stderr" >&2
        exit 1
    fi
    if [ -n "${KEEP:-}" ]; then
        mkdir -p "$KEEP"
        cp "$out.cg" "$KEEP/callgrind.out.$bench.$case"
    fi
    echo "$ir $units $unit"
}

echo "binary: $bin"
echo "N = $items and $((2 * items)) items; instructions per unit = (Ir(2N) - Ir(N)) / units"
echo
echo "| case | unit | instructions/unit | vs ${cases[0]} |"
echo "|---|---|---:|---:|"
base=""
base_unit=""
declare -A per
for case in "${cases[@]}"; do
    small="$(measure "$case" "$items")"
    large="$(measure "$case" "$((2 * items))")"
    read -r ir1 units1 unit <<<"$small"
    read -r ir2 units2 _ <<<"$large"
    value="$(awk -v a="$ir1" -v b="$ir2" -v u1="$units1" -v u2="$units2" \
        'BEGIN { printf "%.2f", (b - a) / (u2 - u1) }')"
    per[$case]="$value"
    # Ratios to the first case, for the cases in its unit (items); other units (calls, ops) get
    # their ratios below.
    if [ -z "$base" ]; then
        base="$value"
        base_unit="$unit"
    fi
    if [ "$unit" = "$base_unit" ]; then
        ratio="$(awk -v v="$value" -v b="$base" 'BEGIN { printf "%.2fx", v / b }')"
    else
        ratio="-"
    fi
    echo "| $case | $unit | $value | $ratio |"
done
echo

# Inclusive instructions per call of one function in a case, (Ir(2N) - Ir(N)) / N, from
# callgrind_annotate: the function's own line (`function [binary]`) has its inclusive total.
per_call() {
    local case="$1" function="$2" a b
    a="$(callgrind_annotate --inclusive=yes "$tmp/$case.$items.cg" 2>/dev/null \
        | grep -F "$function [" | head -n 1 | awk '{ gsub(",", "", $1); print $1 }')"
    b="$(callgrind_annotate --inclusive=yes "$tmp/$case.$((2 * items)).cg" 2>/dev/null \
        | grep -F "$function [" | head -n 1 | awk '{ gsub(",", "", $1); print $1 }')"
    awk -v a="${a:-0}" -v b="${b:-0}" -v n="$items" 'BEGIN { printf "%.1f", (b - a) / n }'
}

# A ratio of two cases' instructions per unit, with an optional budget; nothing when either
# case was not run (see CASES).
ratio() {
    local what="$1" ours="$2" theirs="$3" budget="${4:-}"
    [ -n "${per[$ours]:-}" ] && [ -n "${per[$theirs]:-}" ] || return 0
    awk -v o="${per[$ours]}" -v t="${per[$theirs]}" -v what="$what" -v b="$budget" 'BEGIN {
        r = o / t
        if (b == "") { printf "%s: %.2fx\n", what, r }
        else { printf "%s: %.2fx (budget <= %.2fx: %s)\n", what, r, b, (r <= b ? "met" : "MISSED") }
    }'
}

case "$bench" in
    pipeline)
        ratio "baseline_cancellable / baseline_checked" baseline_cancellable baseline_checked 1.5
        ratio "baseline_cancellable_deadline / baseline_checked" \
            baseline_cancellable_deadline baseline_checked 1.5
        ratio "beluga map->filter->map / futures-util" beluga_map_filter_map futures_map_filter_map
        ratio "beluga map->filter->map / the same steps written inline" \
            beluga_map_filter_map inline_map_filter_map
        ratio "Context::is_cancelled / CancellationToken::is_cancelled" \
            is_cancelled is_cancelled_token
        ;;
    producer)
        ratio "producer / baseline_checked" producer baseline_checked 1.5
        ratio "produce / baseline_checked" produce baseline_checked 1.5
        ratio "producer / async_stream_try" producer async_stream_try 0.35
        ratio "produce / producer (the inline form against the attribute)" produce producer
        ratio "producer_question / baseline_checked" producer_question baseline_checked 1.6
        ratio "producer_map_filter_map / baseline_map_filter_map" \
            producer_map_filter_map baseline_map_filter_map 1.5
        ratio "producer_deadline / baseline_checked" producer_deadline baseline_checked 1.5
        echo "the same budgets against the out-of-line baselines (see BENCHMARKS.md):"
        ratio "producer / baseline_outlined" producer baseline_outlined 1.5
        ratio "produce / baseline_outlined" produce baseline_outlined 1.5
        ratio "producer_question / outlined_question" producer_question outlined_question 1.6
        ratio "producer_map_filter_map / outlined_map_filter_map" \
            producer_map_filter_map outlined_map_filter_map 1.5
        ratio "producer_deadline / baseline_outlined" producer_deadline baseline_outlined 1.5
        ratio "async_stream_try / baseline_outlined" async_stream_try baseline_outlined
        ratio "baseline_question / baseline_checked" baseline_question baseline_checked
        ratio "producer_question / baseline_question" producer_question baseline_question
        ratio "async_stream_bare / baseline_bare" async_stream_bare baseline_bare
        ;;
    combinators)
        ratio "merge4 / baseline" merge4 baseline 1.3
        ratio "fan_out4 / baseline (per source item)" fan_out4 baseline 15
        ratio "buffered16 / mpsc16" buffered16 mpsc16 1.0
        ratio "flow_acquire / semaphore_acquire" flow_acquire semaphore_acquire 1.1
        ratio "merge4 / baseline_outlined" merge4 baseline_outlined
        ratio "merge4 / tokio_merge4" merge4 tokio_merge4
        ratio "merge4 / select_all4" merge4 select_all4
        ratio "fan_out4 / baseline_outlined" fan_out4 baseline_outlined
        ratio "fan_out4 / mpsc_fan_out4" fan_out4 mpsc_fan_out4
        ratio "buffered16 / baseline_outlined" buffered16 baseline_outlined
        ratio "mpsc16 / baseline_outlined" mpsc16 baseline_outlined
        ratio "flow_acquire / semaphore_acquire_owned" flow_acquire semaphore_acquire_owned
        ratio "flow_acquire_deadline / semaphore_acquire" flow_acquire_deadline semaphore_acquire
        ratio "flow_acquire_deadline / flow_acquire" flow_acquire_deadline flow_acquire
        ratio "cancel_context3 / cancel_token3 (build, cancel, drop)" cancel_context3 cancel_token3
        ratio "tree_context3 / tree_token3 (build, drop)" tree_context3 tree_token3
        context="$(per_call cancel_context3 'beluga_core::context::Context::cancel')"
        token="$(per_call cancel_token3 'tokio_util::sync::cancellation_token::CancellationToken::cancel')"
        awk -v c="$context" -v t="$token" 'BEGIN {
            printf "the cancel call alone, three children (inclusive): Context::cancel %.1f, CancellationToken::cancel %.1f instructions, %.2fx\n", c, t, c / t
        }'
        ;;
    many)
        ratio "merge_4096 / select_all_4096" merge_4096 select_all_4096 1.0
        ratio "merge_4096 / merge_1" merge_4096 merge_1 1.5
        ratio "parallel_1000 / parallel_10" parallel_1000 parallel_10 1.5
        ratio "fan_out_256 / fan_out_4 (per delivery)" fan_out_256 fan_out_4 1.3
        ratio "merge_1 / select_all_1" merge_1 select_all_1
        ratio "merge_256 / merge_1" merge_256 merge_1
        ratio "fan_out_64 / fan_out_4 (per delivery)" fan_out_64 fan_out_4
        ;;
    runnable)
        ratio "invoke / drain_by_hand" invoke drain_by_hand 1.1
        ratio "invoke_stream / drain_by_hand" invoke_stream drain_by_hand
        ratio "invoke_boxed / drain_by_hand" invoke_boxed drain_by_hand
        ratio "batch64 / invoke_loop (per input)" batch64 invoke_loop
        ratio "batch8 / invoke_loop (per input)" batch8 invoke_loop
        ratio "batch1 / invoke_loop (per input)" batch1 invoke_loop
        ratio "batch64 / batch1 (per input)" batch64 batch1
        ratio "batch64_spawned / batch64 (per input)" batch64_spawned batch64
        ;;
    tracing)
        ratio "traced_unsubscribed / baseline" traced_unsubscribed baseline
        ratio "traced_unsubscribed / baseline_outlined" traced_unsubscribed baseline_outlined
        ratio "traced_subscribed / entered_by_hand" traced_subscribed entered_by_hand
        ratio "traced_subscribed / baseline" traced_subscribed baseline
        ;;
    sse_decode)
        ratio "beluga / async_openai" beluga async_openai 1.0
        ratio "beluga / baseline" beluga baseline
        ratio "async_openai / baseline" async_openai baseline
        ratio "framing / baseline" framing baseline
        ratio "beluga_anthropic / beluga" beluga_anthropic beluga
        ;;
esac
