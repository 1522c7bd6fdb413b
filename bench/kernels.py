"""Two qst builds on the same jobs, one worker each: iterations and seconds
per job (from results.jsonl) and the ratio of their summed job seconds.
Used to compare MLE kernels, e.g. the L-BFGS kernel against the accelerated
projected-gradient kernel it replaced (commit 6183203):

    git worktree add /tmp/qst-apg 6183203 && (cd /tmp/qst-apg && cargo build --release)
    .venv/bin/python bench/kernels.py --old /tmp/qst-apg/target/release/qst

The jobs: `nopovm`, n = 8, 16, 32, 64, each with four states (rank n/2,
pure, full rank; ~1000 counts per projector; and rank n/2 with ~3 counts
per projector), and for n = 16, 32, 64 three nearly noiseless ones (rank 1,
2, 4 with 1e9 counts in all), Poisson counts from a fixed seed. Writes
bench/results/kernels.json.

usage: python bench/kernels.py --old OLD_QST [--new target/release/qst]
       [--dims 8,16,32,64]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "py"))
from nopovm import nopovm_kets  # noqa: E402


def make_jobs(dims, seed=1):
    rng = np.random.default_rng(seed)
    jobs = []
    for n in dims:
        psi = nopovm_kets(n)
        for label, rank, per_projector in [("half", n // 2, 1000), ("pure", 1, 1000),
                                           ("full", n, 1000), ("few", n // 2, 3)]:
            A = rng.normal(size=(n, rank)) + 1j * rng.normal(size=(n, rank))
            rho = A @ A.conj().T
            rho /= np.trace(rho).real
            p = np.einsum("ka,ab,kb->k", psi.conj(), rho, psi).real
            counts = rng.poisson(per_projector * n * n * p / p.sum())
            jobs.append({"id": f"n{n}-{label}", "dim": n, "counts": counts.tolist()})
    for n in [d for d in dims if d >= 16]:
        psi = nopovm_kets(n)
        for rank in [1, 2, 4]:
            A = rng.normal(size=(n, rank)) + 1j * rng.normal(size=(n, rank))
            rho = A @ A.conj().T
            rho /= np.trace(rho).real
            p = np.einsum("ka,ab,kb->k", psi.conj(), rho, psi).real
            counts = rng.poisson(1e9 * np.maximum(p, 0) / p.sum())
            jobs.append({"id": f"n{n}-r{rank}-1e9", "dim": n, "counts": counts.tolist()})
    return jobs


def run(qst, batch, cache, out):
    subprocess.run([qst, "run", batch, "--out", out, "--cache", cache, "--workers", "1"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(os.path.join(out, "results.jsonl")) as f:
        return {r["id"]: r for r in map(json.loads, f)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", required=True)
    ap.add_argument("--new", default="target/release/qst")
    ap.add_argument("--dims", default="8,16,32,64")
    ap.add_argument("--out", default="bench/results/kernels.json")
    a = ap.parse_args()
    dims = [int(x) for x in a.dims.split(",")]
    jobs = make_jobs(dims)
    tmp = tempfile.mkdtemp(prefix="qst-kernels-")
    batch = os.path.join(tmp, "batch.jsonl")
    with open(batch, "w") as f:
        for j in jobs:
            f.write(json.dumps(j) + "\n")
    cache = os.path.join(tmp, "cache")
    old = run(a.old, batch, cache, os.path.join(tmp, "old"))
    new = run(a.new, batch, cache, os.path.join(tmp, "new"))
    rows = []
    print(f"{'id':>10} {'old it':>7} {'old ms':>8} {'new it':>7} {'new ms':>8} {'ratio':>6}  d(loglik)")
    for j in jobs:
        o, n = old[j["id"]], new[j["id"]]
        row = {"id": j["id"], "old_iterations": o["iterations"], "old_seconds": o["seconds"],
               "old_converged": o["converged"], "new_iterations": n["iterations"],
               "new_seconds": n["seconds"], "new_converged": n["converged"],
               "d_log_likelihood": n["log_likelihood"] - o["log_likelihood"]}
        rows.append(row)
        print(f"{j['id']:>10} {o['iterations']:>7} {o['seconds'] * 1e3:>8.2f} {n['iterations']:>7} "
              f"{n['seconds'] * 1e3:>8.2f} {o['seconds'] / n['seconds']:>6.2f}  "
              f"{row['d_log_likelihood']:+.2e}")
    so, sn = sum(r["old_seconds"] for r in rows), sum(r["new_seconds"] for r in rows)
    print(f"summed job seconds: old {so:.3f} s, new {sn:.3f} s: new is {so / sn:.2f}x faster")
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump({"old": a.old, "new": a.new, "old_seconds": so, "new_seconds": sn,
                   "ratio": so / sn, "jobs": rows}, f, indent=1)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
