#!/usr/bin/env bash
# The size and speed of `qst report` on 1 000 jobs of n = 8 (default
# --max-samples 100): runs such a batch once, then times the report alone
# (best of 3) and prints the page's size. Figures go to docs/performance.md.
#
#   bench/report.sh [JOBS] [DIM]      # defaults 1000 8
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${1:-1000}
dim=${2:-8}
cargo build --release --quiet -p qst
qst=$PWD/target/release/qst
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export QST_CACHE_DIR="$dir/cache"
"$qst" gen --out "$dir/b.jsonl" --dims "$dim" --per-dim "$jobs" --seed 1 >/dev/null
"$qst" run "$dir/b.jsonl" --out "$dir/out" --workers 2 2>/dev/null || true
best=
for _ in 1 2 3; do
    start=$(date +%s.%N)
    "$qst" report "$dir/out" 2>/dev/null
    end=$(date +%s.%N)
    t=$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')
    if [ -z "$best" ] || awk -v t="$t" -v b="$best" 'BEGIN { exit !(t < b) }'; then best=$t; fi
done
bytes=$(stat -c %s "$dir/out/report.html")
samples=$(grep -o '<figure class="sample' "$dir/out/report.html" | wc -l)
printf 'report of %d jobs, n = %d: %d bytes (%.2f MB), %d samples with figures, %.3f s (best of 3)\n' \
    "$jobs" "$dim" "$bytes" "$(awk -v b="$bytes" 'BEGIN { print b / 1e6 }')" "$samples" "$best"
