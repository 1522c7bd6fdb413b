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
#   RUNS=3 BASELINE=old/qst bench/small_jobs.sh 5000 4   # 3 rounds, best of each
#
# With RUNS=k each binary runs k times (the two alternating, each into its
# own fresh directory, nothing deleted until the end: deleting thousands of
# files makes ext4's next file creations slower for a while) and the ratio
# is of the best times.
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
runs=${RUNS:-1}
run() { # binary, label, round
    local out="$work/out-$2-$3"
    local t0 t1
    t0=$(date +%s.%N)
    "$1" run "$work/b.jsonl" --out "$out" --workers 2 --cache "$work/cache" >/dev/null 2>&1 || true
    t1=$(date +%s.%N)
    local n rss
    n=$(wc -l < "$out/results.jsonl")
    rss=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['supervisor_peak_rss_bytes'])" "$out/summary.json")
    python3 -c "import sys; t=float(sys.argv[2])-float(sys.argv[1]); print(f'{sys.argv[5]}: {int(sys.argv[3])} jobs in {t:.3f} s = {int(sys.argv[3])/t:.0f} jobs/s; supervisor peak RSS {int(sys.argv[4])/2**20:.1f} MiB')" "$t0" "$t1" "$n" "$rss" "$2"
    echo "$t0 $t1" >> "$work/time-$2"
}
for round in $(seq 1 "$runs"); do
    if [ -n "${BASELINE:-}" ]; then
        run "$BASELINE" baseline "$round"
    fi
    run "$qst" qst "$round"
done
if [ -n "${BASELINE:-}" ]; then
    python3 - "$work" "$runs" <<'PY'
import sys
w = sys.argv[1]
def best(label):
    return min(float(b) - float(a) for a, b in (l.split() for l in open(f"{w}/time-{label}")))
b, q = best("baseline"), best("qst")
what = "best times" if int(sys.argv[2]) > 1 else "times"
print(f"ratio ({what}: {b:.3f} s / {q:.3f} s): {b/q:.2f}x faster than the baseline")
PY
fi
