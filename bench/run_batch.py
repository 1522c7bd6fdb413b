"""Whole-batch benchmark: the same batch, to the same docs/reference.md certificate,
through (a) the lab's Python pool (reference.py) and (b) `qst run`, with the
same number of workers. Prints the ratio and writes bench/results/batch.json.

usage: python bench/run_batch.py [--dims 16,32] [--per-dim 4] [--workers 2]
       [--tol 1e-8] [--qst target/release/qst] [--skip-python] [--scaling]
       [--hard-max-dim 16]
Odd-numbered samples of dimension <= --hard-max-dim are nearly rank-deficient
(both methods must iterate); all others are well mixed.
--scaling also times qst with 1 worker, for the 1 -> W workers speed-up.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "py"))
import reference  # noqa: E402
from nopovm import nopovm_kets  # noqa: E402


def make_batch(dims, per_dim, seed, hard_max_dim):
    """Full-rank states (interior optima, where R-rho-R converges at all),
    Poisson counts with about 1000 per projector."""
    rng = np.random.default_rng(seed)
    jobs = []
    for n in dims:
        psi = nopovm_kets(n)
        for s in range(per_dim):
            # Even samples: well mixed. Odd samples: rank n/2 plus 10 % white
            # noise, whose small eigenvalues make both methods iterate.
            # (R-rho-R needs over 10 minutes a job on those above n = 16, so
            # above --hard-max-dim every sample is well mixed.)
            hard = s % 2 == 1 and n <= hard_max_dim
            r, mix = (max(1, n // 2), 0.1) if hard else (n, 0.3)
            A = rng.normal(size=(n, r)) + 1j * rng.normal(size=(n, r))
            rho = A @ A.conj().T
            rho = (1 - mix) * rho / np.trace(rho).real + mix * np.eye(n) / n
            p = np.einsum("ka,ab,kb->k", psi.conj(), rho, psi).real
            counts = rng.poisson(1000 * n * n * p / p.sum())
            jobs.append({"id": f"n{n}-{s}", "dim": n, "counts": counts.tolist()})
    return jobs


def run_qst(qst, batch, cache, out, workers):
    t0 = time.perf_counter()
    subprocess.run([qst, "run", batch, "--out", out, "--cache", cache,
                    "--workers", str(workers)], check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    with open(os.path.join(out, "results.jsonl")) as f:
        res = {r["id"]: r for r in map(json.loads, f)}
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    return wall, res, summary


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dims", default="16,32")
    ap.add_argument("--per-dim", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tol", type=float, default=1e-8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--qst", default="target/release/qst")
    ap.add_argument("--hard-max-dim", type=int, default=16)
    ap.add_argument("--skip-python", action="store_true")
    ap.add_argument("--scaling", action="store_true")
    ap.add_argument("--out", default="bench/results/batch.json")
    a = ap.parse_args()
    dims = [int(x) for x in a.dims.split(",")]
    jobs = make_batch(dims, a.per_dim, a.seed, a.hard_max_dim)
    tmp = tempfile.mkdtemp(prefix="qst-bench-")
    batch = os.path.join(tmp, "batch.jsonl")
    with open(batch, "w") as f:
        for j in jobs:
            f.write(json.dumps({**j, "tol": a.tol}) + "\n")
    cache = os.path.join(tmp, "cache")
    subprocess.run([a.qst, "prebuild", "--dims", a.dims, "--cache", cache], check=True,
                   stdout=subprocess.DEVNULL)
    report = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "numpy": np.__version__},
              "dims": dims, "per_dim": a.per_dim, "workers": a.workers, "tol": a.tol}

    wall_q, res_q, summary = run_qst(a.qst, batch, cache, os.path.join(tmp, "out"), a.workers)
    report["qst_seconds"] = wall_q
    report["qst_workers"] = summary.get("workers")
    print(f"qst run, {a.workers} workers: {wall_q:.2f} s for {len(jobs)} jobs")
    if a.scaling:
        wall_1, _, _ = run_qst(a.qst, batch, cache, os.path.join(tmp, "out1"), 1)
        report["qst_seconds_1_worker"] = wall_1
        report["scaling"] = wall_1 / wall_q
        print(f"qst run, 1 worker: {wall_1:.2f} s  ->  {a.workers} workers are "
              f"{wall_1 / wall_q:.2f}x one worker")

    if not a.skip_python:
        t0 = time.perf_counter()
        res_p = reference.run_pool(jobs, cache, a.workers, a.tol)
        wall_p = time.perf_counter() - t0
        report["python_seconds"] = wall_p
        report["ratio"] = wall_p / wall_q
        rows = []
        for r in res_p:
            q = res_q[r["id"]]
            rows.append({"id": r["id"], "python_iterations": r["iterations"],
                         "python_converged": r["converged"], "python_seconds": r["seconds"],
                         "python_log_likelihood": r["log_likelihood"],
                         "qst_iterations": q["iterations"], "qst_converged": q["converged"],
                         "qst_seconds": q["seconds"], "qst_log_likelihood": q["log_likelihood"]})
        report["jobs"] = rows
        print(f"{'id':>8} {'py it':>7} {'py s':>8} {'qst it':>7} {'qst s':>8}  d(loglik)")
        for r in rows:
            print(f"{r['id']:>8} {r['python_iterations']:>7} {r['python_seconds']:>8.3f} "
                  f"{r['qst_iterations']:>7} {r['qst_seconds']:>8.4f}  "
                  f"{r['qst_log_likelihood'] - r['python_log_likelihood']:+.2e}")
        print(f"python pool, {a.workers} workers: {wall_p:.2f} s;  qst is {wall_p / wall_q:.1f}x faster")
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(report, f, indent=1)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
