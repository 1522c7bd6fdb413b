#!/usr/bin/env bash
# qst on a real Slurm cluster: starts a one-node cluster (munged, slurmctld,
# slurmd; no systemd, every state directory under a temporary directory),
# submits a batch with `qst slurm --shards 3 --submit` and checks the merged
# output against a plain `qst run` of the same batch: the same result lines
# (every field but timing and worker slot), bit-identical ρ files, the same
# summary rows, the shards' logs. Also submits the array with task IDs that
# are not 0..N-1 and checks that every task refuses.
#
# Installs Debian's slurm-wlm and munge when they are missing (needs root and
# the package index). Fails, never skips, when Slurm cannot start. Stops the
# daemons it started. Last line: `N passed, M failed`.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
QST=$ROOT/target/release/qst
passed=0
failed=0
T=
PIDFILES=()

pass() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }
check() { # check NAME COMMAND...
    local name=$1
    shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}
stop_daemons() {
    local f pid
    for f in "${PIDFILES[@]}"; do
        pid=$(cat "$f" 2>/dev/null) || continue
        [ -n "$pid" ] && kill "$pid" 2>/dev/null
    done
    for f in "${PIDFILES[@]}"; do
        pid=$(cat "$f" 2>/dev/null) || continue
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
    done
}
cleanup() {
    stop_daemons
    if [ -n "$T" ]; then
        if [ "$failed" -eq 0 ]; then rm -rf "$T"; else echo "(kept $T for a look)"; fi
    fi
}
trap cleanup EXIT
trap "exit 130" INT
trap "exit 143" TERM
finish() {
    # The daemons are stopped before the closing line, which stays last.
    trap - EXIT
    cleanup
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}
die() { # a failure that ends the suite
    fail "$1"
    [ -n "$T" ] && tail -n 20 "$T"/log/*.log "$T"/munge/*.log 2>/dev/null
    finish
}

[ -x "$QST" ] || die "qst is built at $QST (run ./test.sh, or cargo build --release)"

# Slurm and munge, from Debian, when missing.
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null \
    || ! command -v sbatch >/dev/null; then
    echo "installing slurm-wlm and munge"
    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y slurm-wlm munge; } >/dev/null 2>&1 \
        || die "install slurm-wlm and munge (apt-get needs root and the package index)"
fi
check "Slurm and munge are installed" test -x "$(command -v slurmctld)"

T=$(mktemp -d /tmp/qst-slurm.XXXXXX)
chmod 755 "$T"
mkdir -p "$T/munge" "$T/state" "$T/spool" "$T/log" "$T/data"
chmod 700 "$T/munge"
head -c 1024 /dev/urandom > "$T/munge/munge.key"
chmod 600 "$T/munge/munge.key"
PIDFILES+=("$T/munge/munged.pid")
munged --force --key-file="$T/munge/munge.key" --socket="$T/munge/munge.sock" \
    --pid-file="$T/munge/munged.pid" --log-file="$T/munge/munged.log" --seed-file="$T/munge/seed" \
    || die "munged starts"

# Ports of our own, so that two suites can run side by side.
port=$((20000 + RANDOM % 20000))
cat > "$T/slurm.conf" <<CONF
ClusterName=qst$port
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$T/munge/munge.sock
SlurmctldPort=$port
SlurmdPort=$((port + 1))
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
InactiveLimit=0
MinJobAge=600
KillWait=5
Waittime=0
NodeName=localhost NodeHostname=$(hostname) NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=qst Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$T/slurm.conf
PIDFILES+=("$T/slurmd.pid" "$T/slurmctld.pid")
slurmctld -f "$SLURM_CONF" || die "slurmctld starts"
slurmd -f "$SLURM_CONF" -N localhost || die "slurmd starts"
ready=
for _ in $(seq 150); do
    if [ "$(sinfo -h -o %t 2>/dev/null)" = idle ]; then ready=1; break; fi
    sleep 0.2
done
[ -n "$ready" ] || die "the one-node cluster comes up (sinfo says idle)"
pass "the one-node cluster comes up"

# A batch with comment and blank lines (they are not job lines).
"$QST" gen --out "$T/data/g.jsonl" --dims 2,3,4,5 --per-dim 3 --seed 7 >/dev/null || die "qst gen"
{
    echo "# a comment line"
    head -n 5 "$T/data/g.jsonl"
    echo
    tail -n +6 "$T/data/g.jsonl"
} > "$T/data/b.jsonl"
"$QST" run "$T/data/b.jsonl" --out "$T/plain" --workers 2 --cache "$T/cache" 2>"$T/plain.err"
check "a plain qst run of the batch succeeds" test $? -eq 0

# Submit the array and the merge.
"$QST" slurm "$T/data/b.jsonl" --shards 3 --out "$T/merged" --cache "$T/cache" --time 10:00 --submit \
    > "$T/submit.out" 2>&1
rc=$?
cat "$T/submit.out"
check "qst slurm --submit exits 0" test "$rc" -eq 0
ids=$(sed -n 's/^submitted array job \([0-9]*\) and merge job \([0-9]*\).*/\1 \2/p' "$T/submit.out")
read -r array_id merge_id <<<"$ids"
[ -n "${merge_id:-}" ] || die "qst slurm --submit prints the array's and the merge's job ids"
check "array.sh asks for --array=0-2" grep -q '^#SBATCH --array=0-2$' "$T/merged/slurm/array.sh"
check "the scripts name qst by its absolute path" grep -qF "$QST run" "$T/merged/slurm/array.sh"
check "the merge runs after the array (afterok)" \
    bash -c "scontrol show job $merge_id | grep -q 'Dependency=afterok:${array_id}'"

start=$SECONDS
for _ in $(seq 600); do
    [ -z "$(squeue -h -j "$array_id,$merge_id" 2>/dev/null)" ] && break
    sleep 0.5
done
echo "array and merge took $((SECONDS - start)) s"
check "the array and the merge jobs end" test -z "$(squeue -h -j "$array_id,$merge_id" 2>/dev/null)"
check "the merge job completed" bash -c "scontrol show job $merge_id | grep -q 'JobState=COMPLETED'"
for i in 0 1 2; do
    check "shard $i ran as shard $i/3" grep -q "\"shard\": $i," "$T/merged/slurm/shard-$i/shard.json"
    check "array task $i wrote its log" test -s "$T/merged/slurm/logs/array-${array_id}_$i.out"
    check "the merge holds shard $i's logs" test -s "$T/merged/logs/shard-$i/supervisor.log"
done
check "the merged output has merge.json" test -s "$T/merged/merge.json"

# The same results as the plain run.
compare() {
    python3 - "$T/plain" "$T/merged" <<'PY'
import json, sys
def load(d):
    out = []
    for l in open(f"{d}/results.jsonl"):
        r = json.loads(l)
        for k in ("seconds", "worker", "started"):
            r.pop(k, None)
        out.append(r)
    return out
plain, merged = load(sys.argv[1]), load(sys.argv[2])
lines = [r["line"] for r in merged]
if lines != sorted(lines) or len(set(lines)) != len(lines):
    sys.exit(f"merged lines not in order or repeated: {lines}")
if sorted(plain, key=lambda r: r["line"]) != merged:
    sys.exit("merged results differ from the plain run's")
if len(merged) != 12:
    sys.exit(f"{len(merged)} results, expected 12")
PY
}
check "merged results.jsonl: every line once, in order, as the plain run's" compare
rho_same() {
    local n=0 f
    for f in "$T/plain"/rho/*.npy; do
        cmp -s "$f" "$T/merged/rho/$(basename "$f")" || { echo "differs: $(basename "$f")"; return 1; }
        n=$((n + 1))
    done
    [ "$n" -eq 12 ] && [ "$(ls "$T/merged/rho" | wc -l)" -eq 12 ]
}
check "the 12 rho files are bit-identical to the plain run's" rho_same
summary_same() {
    # Without the seconds and worker columns (16 and 17).
    diff <(cut -d, -f1-15,18 "$T/plain/summary.csv") <(cut -d, -f1-15,18 "$T/merged/summary.csv")
}
check "summary.csv rows match the plain run's" summary_same

# An array whose task IDs are not 0..N-1 is refused by every task.
gap_id=$(sbatch --parsable --array=3,5,9 --output="$T/gap-%a.out" "$T/merged/slurm/array.sh")
for _ in $(seq 240); do
    [ -z "$(squeue -h -j "$gap_id" 2>/dev/null)" ] && break
    sleep 0.5
done
gaps_refused() {
    local i
    for i in 3 5 9; do
        grep -q -- "--array=0-2" "$T/gap-$i.out" || { cat "$T/gap-$i.out"; return 1; }
    done
    [ ! -e "$T/merged/slurm/shard-3" ] && [ ! -e "$T/merged/slurm/shard-9" ]
}
check "tasks of --array=3,5,9 refuse, saying to use --array=0-2" gaps_refused

finish
