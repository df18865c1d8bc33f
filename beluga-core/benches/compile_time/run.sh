#!/usr/bin/env bash
# Compile time of 200 `#[stream_producer]`s against the same 200 written with async-stream's
# `try_stream!`: CPU time (user + sys of cargo and the rustc it runs) of building each crate alone,
# its dependencies already built.
#
# Usage: bash beluga-core/benches/compile_time/run.sh [--release] [--runs N] [--count N] [--check]
#        bash beluga-core/benches/compile_time/run.sh check     # both crates yield the same items
#
# gen.py writes the crates into $OUT (default: target/compile_time of the repository), outside the
# workspace; they build offline into $OUT/target, whatever CARGO_TARGET_DIR says. Each run measures,
# for one crate then the other (the order alternates between runs):
#   clean        `cargo clean -p <crate>`, then `cargo build`;
#   incremental  a literal of the first producer changed, then `cargo build` again.
# With --check, the same two with `cargo check`. The table gives the median of the runs (default 5)
# and the ratio producer / async-stream per row.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
out="${OUT:-$root/target/compile_time}"
runs=5
count=200
profile=()
profile_name=dev
with_check=0
check_items=0
while [ $# -gt 0 ]; do
    case "$1" in
        --release) profile=(--release); profile_name=release ;;
        --runs) runs="$2"; shift ;;
        --count) count="$2"; shift ;;
        --check) with_check=1 ;;
        check) check_items=1 ;;
        *) echo "run.sh: unknown argument \`$1\`" >&2; exit 1 ;;
    esac
    shift
done

python3 "$root/beluga-core/benches/compile_time/gen.py" "$out" "$root/beluga-core" \
    --count "$count" --lock "$root/Cargo.lock"
export CARGO_TARGET_DIR="$out/target"

if [ "$check_items" = 1 ]; then
    (cd "$out/compare" && cargo run --offline -q "${profile[@]}")
    exit 0
fi

crates=(producer async_stream)
# Dependencies first, and one full build of each crate, so that every measured build starts from
# the same state.
for c in "${crates[@]}"; do
    (cd "$out/$c" && cargo build --offline -q "${profile[@]}" && cargo check --offline -q "${profile[@]}")
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
touch_value=0

# CPU seconds of one cargo command in crate $1.
cpu() {
    local c="$1"
    shift
    (cd "$out/$c" && /usr/bin/time -f "%U %S" -o "$tmp/time" cargo "$@" --offline -q "${profile[@]}")
    awk '{ printf "%.2f\n", $1 + $2 }' "$tmp/time"
}

# Changes the literal marked `/* touch */` in the first producer of crate $1.
touch_one() {
    # Alternates between two literals of the same width, so that no span moves.
    touch_value=$((touch_value == 1 ? 2 : 1))
    sed -i -E "s|[0-9]+ /\* touch \*/|$touch_value /* touch */|" "$out/$1/src/m0.rs"
}

kinds=(build)
[ "$with_check" = 1 ] && kinds+=(check)

for ((r = 0; r < runs; r++)); do
    if ((r % 2 == 0)); then order=(producer async_stream); else order=(async_stream producer); fi
    for c in "${order[@]}"; do
        for k in "${kinds[@]}"; do
            (cd "$out/$c" && cargo clean -p "cmp_$c" --offline -q "${profile[@]}")
            cpu "$c" "$k" >>"$tmp/$c.$k.clean"
            touch_one "$c"
            cpu "$c" "$k" >>"$tmp/$c.$k.incremental"
        done
    done
    echo "run $((r + 1))/$runs done" >&2
done

median() { sort -n "$1" | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "profile: $profile_name; $count producers; CPU seconds (user + sys), median of $runs runs"
echo
echo "| build | #[stream_producer] | try_stream! | ratio | runs (producer) | runs (try_stream!) |"
echo "|---|---:|---:|---:|---|---|"
for k in "${kinds[@]}"; do
    for w in clean incremental; do
        p="$(median "$tmp/producer.$k.$w")"
        a="$(median "$tmp/async_stream.$k.$w")"
        ratio="$(awk -v p="$p" -v a="$a" 'BEGIN { printf "%.2fx", p / a }')"
        echo "| $k, $w | $p | $a | $ratio | $(paste -sd' ' "$tmp/producer.$k.$w") | $(paste -sd' ' "$tmp/async_stream.$k.$w") |"
    done
done
