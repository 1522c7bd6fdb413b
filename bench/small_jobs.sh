#!/usr/bin/env bash
# Throughput on many small jobs (the lab's common case): JOBS nopovm jobs of
# dimension DIM (no truth files), 2 workers, written to a fresh output
# directory on the repository's file system (a real disk, not tmpfs).
# Prints jobs/s and the supervisor's peak RSS; with BASELINE=/path/to/qst it
# runs that binary on the same batch first and prints the ratio.
#
#   bench/small_jobs.sh [JOBS] [DIM]        # default 5000 4
#   BASELINE=old/qst bench/small_jobs.sh 5000 4
#   bench/small_jobs.sh 100000 2            # the supervisor's memory at 1e5 jobs
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${1:-5000}
dim=${2:-4}
qst=${QST:-target/release/qst}
work=$(mktemp -d "$PWD/target/bench-small.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$qst" gen --out "$work/g.jsonl" --dims "$dim" --per-dim "$jobs" --seed 7 >/dev/null
python3 - "$work/g.jsonl" "$work/b.jsonl" <<'PY'
import json, sys
with open(sys.argv[1]) as f, open(sys.argv[2], "w") as g:
    for line in f:
        if line.strip() and not line.startswith("#"):
            d = json.loads(line)
            d.pop("truth", None)
            g.write(json.dumps(d) + "\n")
PY
run() { # binary, label
    local out="$work/out-$2"
    local t0 t1
    t0=$(date +%s.%N)
    "$1" run "$work/b.jsonl" --out "$out" --workers 2 --cache "$work/cache" >/dev/null 2>&1 || true
    t1=$(date +%s.%N)
    local n rss
    n=$(wc -l < "$out/results.jsonl")
    rss=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['supervisor_peak_rss_bytes'])" "$out/summary.json")
    python3 -c "import sys; t=float(sys.argv[2])-float(sys.argv[1]); print(f'{sys.argv[5]}: {int(sys.argv[3])} jobs in {t:.3f} s = {int(sys.argv[3])/t:.0f} jobs/s; supervisor peak RSS {int(sys.argv[4])/2**20:.1f} MiB')" "$t0" "$t1" "$n" "$rss" "$2"
    echo "$t0 $t1" > "$work/time-$2"
}
if [ -n "${BASELINE:-}" ]; then
    run "$BASELINE" baseline
fi
run "$qst" qst
if [ -n "${BASELINE:-}" ]; then
    python3 - "$work" <<'PY'
import sys
w = sys.argv[1]
b = [float(x) for x in open(f"{w}/time-baseline").read().split()]
q = [float(x) for x in open(f"{w}/time-qst").read().split()]
print(f"ratio: {(b[1]-b[0])/(q[1]-q[0]):.2f}x faster than the baseline")
PY
fi
