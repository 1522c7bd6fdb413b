"""The lab's mixed batch: qst against the accelerated Python pool (APG,
bench/reference.py `run_pool_apg`), both to the same certificate (tol 1e-8),
2 workers each, in one run. 12 jobs of `nopovm`: n = 8, 16, 32, each with a
pure state at 1e5 and 1e4 shots, a rank-2 state at 1e5 shots and a
full-rank (mixed) state at 1e3 shots (Poisson counts, fixed seed). Prints
per-job iterations and seconds for each side and the ratio of wall times;
--old adds a second qst build on the same batch. Writes
bench/results/mixed_batch.json.

usage: python bench/mixed_batch.py [--qst target/release/qst] [--old OLD_QST]
       [--workers 2] [--repeat 3]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "py"))
import reference  # noqa: E402
from nopovm import nopovm_kets  # noqa: E402

KINDS = [("pure-1e5", 1, 1e5), ("pure-1e4", 1, 1e4), ("rank2-1e5", 2, 1e5), ("mixed-1e3", None, 1e3)]


def make_jobs(dims, seed=7):
    rng = np.random.default_rng(seed)
    jobs = []
    for n in dims:
        psi = nopovm_kets(n)
        for label, rank, shots in KINDS:
            r = n if rank is None else rank
            A = rng.normal(size=(n, r)) + 1j * rng.normal(size=(n, r))
            rho = A @ A.conj().T
            rho /= np.trace(rho).real
            p = np.einsum("ka,ab,kb->k", psi.conj(), rho, psi).real
            p = np.maximum(p, 0)
            counts = rng.poisson(shots * p / p.sum())
            jobs.append({"id": f"n{n}-{label}", "dim": n, "counts": counts.tolist()})
    return jobs


def run_qst(qst, batch, cache, out, workers):
    t0 = time.perf_counter()
    subprocess.run([qst, "run", batch, "--out", out, "--cache", cache, "--workers", str(workers)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    with open(os.path.join(out, "results.jsonl")) as f:
        return wall, {r["id"]: r for r in map(json.loads, f)}


def best_qst(qst, batch, cache, tmp, tag, workers, repeat):
    runs = [run_qst(qst, batch, cache, os.path.join(tmp, f"{tag}{i}"), workers) for i in range(repeat)]
    return min(runs, key=lambda r: r[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--qst", default="target/release/qst")
    ap.add_argument("--old")
    ap.add_argument("--dims", default="8,16,32")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-python", action="store_true")
    ap.add_argument("--out", default="bench/results/mixed_batch.json")
    a = ap.parse_args()
    dims = [int(x) for x in a.dims.split(",")]
    jobs = make_jobs(dims)
    tmp = tempfile.mkdtemp(prefix="qst-mixed-")
    batch = os.path.join(tmp, "batch.jsonl")
    with open(batch, "w") as f:
        for j in jobs:
            f.write(json.dumps({**j, "tol": 1e-8}) + "\n")
    cache = os.path.join(tmp, "cache")
    subprocess.run([a.qst, "prebuild", "--dims", a.dims, "--cache", cache], check=True,
                   stdout=subprocess.DEVNULL)
    report = {"dims": dims, "workers": a.workers, "kinds": [k[0] for k in KINDS]}
    wall_q, res_q = best_qst(a.qst, batch, cache, tmp, "new", a.workers, a.repeat)
    report["qst_seconds"] = wall_q
    print(f"qst run, {a.workers} workers: {wall_q:.3f} s (best of {a.repeat})")
    res_o = None
    if a.old:
        wall_o, res_o = best_qst(a.old, batch, cache, tmp, "old", a.workers, a.repeat)
        report["old_seconds"] = wall_o
        print(f"old qst run: {wall_o:.3f} s  ->  new is {wall_o / wall_q:.2f}x faster")
    res_p = {}
    if not a.skip_python:
        t0 = time.perf_counter()
        res_p = {r["id"]: r for r in reference.run_pool_apg(jobs, cache, a.workers)}
        wall_p = time.perf_counter() - t0
        report["python_apg_seconds"] = wall_p
        report["ratio"] = wall_p / wall_q
    rows = []
    print(f"{'id':>14} {'apg it':>7} {'apg s':>8} {'qst it':>7} {'qst s':>8}"
          + (f" {'old it':>7} {'old s':>8}" if res_o else "") + "  d(loglik)")
    for j in jobs:
        i = j["id"]
        q, p = res_q[i], res_p.get(i, {})
        row = {"id": i, "qst_iterations": q["iterations"], "qst_seconds": q["seconds"],
               "qst_converged": q["converged"], "qst_log_likelihood": q["log_likelihood"]}
        if p:
            row.update({"apg_iterations": p["iterations"], "apg_seconds": p["seconds"],
                        "apg_converged": p["converged"], "apg_log_likelihood": p["log_likelihood"]})
        if res_o:
            o = res_o[i]
            row.update({"old_iterations": o["iterations"], "old_seconds": o["seconds"],
                        "old_log_likelihood": o["log_likelihood"]})
        rows.append(row)
        line = (f"{i:>14} {p.get('iterations', '-'):>7} {p.get('seconds', float('nan')):>8.3f} "
                f"{q['iterations']:>7} {q['seconds']:>8.4f}")
        if res_o:
            line += f" {row['old_iterations']:>7} {row['old_seconds']:>8.4f}"
        if p:
            line += f"  {q['log_likelihood'] - p['log_likelihood']:+.2e}"
        print(line)
    report["jobs"] = rows
    if res_p:
        print(f"python APG pool, {a.workers} workers: {wall_p:.2f} s;  qst is {wall_p / wall_q:.1f}x faster")
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(report, f, indent=1)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
