#!/usr/bin/env bash
# Instructions rustc executes for a clean debug build of each generated crate (200
# `#[stream_producer]`s, and the same 200 with async-stream's `try_stream!`), counted by callgrind
# over all of rustc's threads: the figure that does not move with the machine's load, beside the
# CPU seconds of `run.sh`. About two minutes per crate.
#
# Usage: bash beluga-core/benches/compile_time/instructions.sh [--count N]
#
# The crates are the ones `run.sh` builds (gen.py, into $OUT, default target/compile_time). Each
# crate's dependencies are built first; then the rustc command cargo runs for the crate itself is
# run again under valgrind, with a fresh incremental directory and its output elsewhere.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
out="${OUT:-$root/target/compile_time}"
count=200
while [ $# -gt 0 ]; do
    case "$1" in
        --count) count="$2"; shift ;;
        *) echo "instructions.sh: unknown argument \`$1\`" >&2; exit 1 ;;
    esac
    shift
done
command -v valgrind >/dev/null || { echo "instructions.sh: needs valgrind" >&2; exit 1; }

python3 "$root/beluga-core/benches/compile_time/gen.py" "$out" "$root/beluga-core" \
    --count "$count" --lock "$root/Cargo.lock"
export CARGO_TARGET_DIR="$out/target"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

declare -A total
for c in producer async_stream; do
    (cd "$out/$c" && cargo build --offline -q)
    touch "$out/$c/src/lib.rs"
    # The command cargo runs for the crate itself, as cargo prints it.
    cmd="$(cd "$out/$c" && cargo build --offline -v 2>&1 \
        | sed -n "s/^ *Running \`\(.*--crate-name cmp_$c .*\)\`$/\1/p")"
    [ -n "$cmd" ] || { echo "instructions.sh: no rustc command for $c" >&2; exit 1; }
    mkdir -p "$tmp/$c.out"
    cmd="$(printf '%s' "$cmd" | sed -E \
        -e "s|-C incremental=[^ ]+|-C incremental=$tmp/$c.incremental|" \
        -e "s|--out-dir [^ ]+|--out-dir $tmp/$c.out|")"
    (cd "$out/$c" && eval "valgrind --tool=callgrind --callgrind-out-file=$tmp/$c.%p $cmd") \
        >/dev/null 2>"$tmp/$c.log"
    total[$c]="$(grep -h '^summary:' "$tmp"/$c.[0-9]* | awk '{ s += $2 } END { printf "%.0f", s }')"
    echo "$c done" >&2
done

echo "clean debug build of $count producers; instructions of rustc (callgrind, all threads)"
echo
echo "| crate | instructions | ratio |"
echo "|---|---:|---:|"
awk -v p="${total[producer]}" -v a="${total[async_stream]}" 'BEGIN {
    printf "| #[stream_producer] | %.2fG | %.3fx |\n", p / 1e9, p / a
    printf "| try_stream! | %.2fG | 1.000x |\n", a / 1e9
}'
