#!/usr/bin/env bash
# The bootstrap's scaling over workers: B = 100 resamples of each of 20 jobs of
# n = 8 (2 100 reconstructions), with 1 and with 2 workers (best of 5 each, interleaved);
# prints both wall times and the ratio, checks that both runs gave the same
# figures (same --seed), and writes bench/results/bootstrap.json. Figures go
# to docs/performance.md.
#
#   bench/bootstrap.sh [B] [JOBS] [DIM]      # defaults 100 20 8
set -euo pipefail
cd "$(dirname "$0")/.."
b=${1:-100}
jobs=${2:-20}
dim=${3:-8}
cargo build --release --quiet -p qst
qst=$PWD/target/release/qst
# On /dev/shm when there is one: the main jobs' fsyncs of rho files are not what is measured.
if [ -d /dev/shm ]; then dir=$(mktemp -d -p /dev/shm); else dir=$(mktemp -d); fi
trap 'rm -rf "$dir"' EXIT
export QST_CACHE_DIR="$dir/cache"
"$qst" gen --out "$dir/b.jsonl" --dims "$dim" --per-dim "$jobs" --seed 1 >/dev/null
"$qst" prebuild --dims "$dim" >/dev/null 2>&1
# Best of 5 runs each, 1 and 2 workers interleaved (so both see the same load).
best1= best2=
for i in 1 2 3 4 5; do
    for w in 1 2; do
        rm -rf "$dir/out$w"
        start=$(date +%s.%N)
        "$qst" run "$dir/b.jsonl" --out "$dir/out$w" --workers "$w" --bootstrap "$b" --seed 1 2>/dev/null
        end=$(date +%s.%N)
        t=$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')
        eval "cur=\$best$w"
        if [ -z "$cur" ] || awk -v t="$t" -v b="$cur" 'BEGIN { exit !(t < b) }'; then eval "best$w=$t"; fi
    done
done
t1=$best1
t2=$best2
figures() { grep -o '"purity_std":[^,]*' "$1/results.jsonl" | sort; }
if [ "$(figures "$dir/out1")" != "$(figures "$dir/out2")" ]; then
    echo "bootstrap.sh: 1 and 2 workers gave different figures" >&2
    exit 1
fi
ratio=$(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.2f", a / b }')
printf 'bootstrap B = %d, %d jobs of n = %d: 1 worker %.3f s, 2 workers %.3f s, scaling %s x (best of 5; same figures)\n' \
    "$b" "$jobs" "$dim" "$t1" "$t2" "$ratio"
mkdir -p bench/results
cat > bench/results/bootstrap.json <<JSON
{"bootstrap": $b, "jobs": $jobs, "dim": $dim, "workers_1_seconds": $t1, "workers_2_seconds": $t2, "scaling": $ratio}
JSON
