#!/usr/bin/env bash
# Instructions per item (or per call) for every case of benches/pipeline.rs, under callgrind.
#
# Each case runs twice, on N and 2N items; (Ir(2N) - Ir(N)) / (units(2N) - units(N)) cancels
# process start-up, runtime construction and any other fixed cost. Instruction counts are the
# stable figure on a noisy machine; they do not show memory stalls, so read them beside times.
#
# Usage: bash beluga-core/benches/callgrind.sh [N]   (default N = 1000000)
set -euo pipefail

items="${1:-1000000}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is not installed" >&2; exit 1; }

# Build the bench binary (errors shown), then ask cargo where it is rather than guessing a hash.
cargo bench -p beluga-core --bench pipeline --no-run
bin="$(cargo bench -p beluga-core --bench pipeline --no-run --message-format=json 2>/dev/null \
    | grep '"reason":"compiler-artifact"' \
    | grep '"kind":\["bench"\]' \
    | grep '"name":"pipeline"' \
    | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' \
    | tail -n 1 || true)"
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    echo "callgrind.sh: could not locate the pipeline bench binary" >&2
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
    local ir units
    ir="$(awk '/^(summary|totals):/ { print $2; exit }' "$out.cg")"
    units="$(sed -n 's/.*units=\([0-9]*\).*/\1/p' "$out.stdout")"
    if [ -z "$ir" ] || [ -z "$units" ]; then
        echo "callgrind.sh: no result for $case on $n items; see below" >&2
        cat "$out.stdout" "$out.stderr" >&2
        exit 1
    fi
    echo "$ir $units"
}

cases=(baseline bare_u64 inline_map_filter_map beluga_map_filter_map futures_map_filter_map
    baseline_checked baseline_cancellable baseline_cancellable_deadline is_cancelled is_cancelled_token)

echo "binary: $bin"
echo "N = $items and $((2 * items)) items; instructions per unit = (Ir(2N) - Ir(N)) / units"
echo
echo "| case | unit | instructions/unit | vs baseline |"
echo "|---|---|---:|---:|"
base=""
declare -A per
for case in "${cases[@]}"; do
    small="$(measure "$case" "$items")"
    large="$(measure "$case" "$((2 * items))")"
    read -r ir1 units1 <<<"$small"
    read -r ir2 units2 <<<"$large"
    value="$(awk -v a="$ir1" -v b="$ir2" -v u1="$units1" -v u2="$units2" \
        'BEGIN { printf "%.2f", (b - a) / (u2 - u1) }')"
    per[$case]="$value"
    case "$case" in
        is_cancelled*) unit=call; ratio="-" ;;
        *)
            unit=item
            [ -n "$base" ] || base="$value"
            ratio="$(awk -v v="$value" -v b="$base" 'BEGIN { printf "%.2fx", v / b }')"
            ;;
    esac
    echo "| $case | $unit | $value | $ratio |"
done
echo
awk -v o="${per[beluga_map_filter_map]}" -v f="${per[futures_map_filter_map]}" \
    'BEGIN { printf "beluga map->filter->map / futures-util: %.2fx (target <= 1.10x)\n", o / f }'
awk -v o="${per[beluga_map_filter_map]}" -v i="${per[inline_map_filter_map]}" \
    'BEGIN { printf "beluga map->filter->map / the same steps written inline: %.2fx\n", o / i }'
awk -v o="${per[is_cancelled]}" -v t="${per[is_cancelled_token]}" \
    'BEGIN { printf "Context::is_cancelled / CancellationToken::is_cancelled: %.2fx\n", o / t }'
