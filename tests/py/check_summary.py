"""summary.csv must carry exactly the numbers of results.jsonl (Python's json
and csv modules read both; floats compare exactly, -inf stands for null ℓ).

usage: check_summary.py OUT_DIR"""
import csv
import json
import math
import sys

out = sys.argv[1]
results = [json.loads(line) for line in open(f"{out}/results.jsonl", encoding="utf-8")]
with open(f"{out}/summary.csv", newline="", encoding="utf-8") as f:
    rows = {r["id"]: r for r in csv.DictReader(f)}
bad = 0
for r in results:
    if r["status"] != "ok":
        continue
    row = rows[r["id"]]
    for k in ["purity", "trace", "min_eigenvalue", "max_eigenvalue", "eigenvalue_entropy",
              "log_likelihood", "fidelity", "seconds"]:
        want = r.get(k)
        want = -math.inf if (k == "log_likelihood" and want is None) else want
        if want is None:
            continue
        if float(row[k]) != want:
            print(f"{r['id']} {k}: csv {row[k]} vs jsonl {want!r}")
            bad += 1
    for k in ["dim", "rank", "worker"]:
        if int(row[k]) != r[k]:
            print(f"{r['id']} {k}: csv {row[k]} vs jsonl {r[k]}")
            bad += 1
print(f"{len(results)} results, {bad} mismatches")
sys.exit(1 if bad else 0)
