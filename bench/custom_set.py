"""A custom dense projector set that is rank 1 (K = 1600 random unit kets,
n = 40: a (1600, 40, 40) complex file of 41 MB), through two qst builds in
one run: per-job seconds and iterations (results.jsonl), and the time the
supervisor spends validating the file before any worker starts
(supervisor.log), for a first run on a fresh cache and a second run.

usage: python bench/custom_set.py --old OLD_QST [--qst target/release/qst]
       [--jobs 6] [--workers 2] [--k 1600] [--n 40]
Writes bench/results/custom_set.json.
"""
import argparse
import json
import os
import re
import subprocess
import tempfile
import time

import numpy as np


def make(tmp, k, n, jobs, seed=3):
    rng = np.random.default_rng(seed)
    psi = rng.normal(size=(k, n)) + 1j * rng.normal(size=(k, n))
    psi /= np.linalg.norm(psi, axis=1, keepdims=True)
    P = np.einsum("ka,kb->kab", psi, psi.conj())
    path = os.path.join(tmp, "rank1.npy")
    np.save(path, P)
    lines = []
    for j in range(jobs):
        rank, shots = [(1, 1e5), (2, 1e5), (n, 1e4)][j % 3]
        A = rng.normal(size=(n, rank)) + 1j * rng.normal(size=(n, rank))
        rho = A @ A.conj().T
        rho /= np.trace(rho).real
        p = np.maximum(np.einsum("ka,ab,kb->k", psi.conj(), rho, psi).real, 0)
        counts = rng.poisson(shots * p / p.sum())
        lines.append({"id": f"j{j}-rank{rank}", "dim": n, "counts": counts.tolist(),
                      "projectors": path})
    batch = os.path.join(tmp, "batch.jsonl")
    with open(batch, "w") as f:
        for line in lines:
            f.write(json.dumps(line) + "\n")
    return batch


def validation_seconds(out):
    with open(os.path.join(out, "logs", "supervisor.log")) as f:
        text = f.read()
    m = re.findall(r"seconds=([0-9.e-]+)[^\n]*(?:validated custom projector file|validated before)", text)
    m += re.findall(r"(?:validated custom projector file|validated before)[^\n]*seconds=([0-9.e-]+)", text)
    return max(map(float, m)) if m else None


def run(qst, batch, cache, out, workers):
    t0 = time.perf_counter()
    subprocess.run([qst, "run", batch, "--out", out, "--cache", cache, "--workers", str(workers)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    with open(os.path.join(out, "results.jsonl")) as f:
        res = {r["id"]: r for r in map(json.loads, f)}
    return {"wall": wall, "validation": validation_seconds(out), "jobs": res}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--qst", default="target/release/qst")
    ap.add_argument("--old", required=True)
    ap.add_argument("--jobs", type=int, default=6)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--k", type=int, default=1600)
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--out", default="bench/results/custom_set.json")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="qst-custom-")
    batch = make(tmp, a.k, a.n, a.jobs)
    old = run(a.old, batch, os.path.join(tmp, "cache-old"), os.path.join(tmp, "old"), a.workers)
    new1 = run(a.qst, batch, os.path.join(tmp, "cache-new"), os.path.join(tmp, "new1"), a.workers)
    new2 = run(a.qst, batch, os.path.join(tmp, "cache-new"), os.path.join(tmp, "new2"), a.workers)
    print(f"{'id':>10} {'old it':>7} {'old s':>8} {'new it':>7} {'new s':>8} {'ratio':>7}  d(loglik)")
    so = sn = 0.0
    rows = []
    for i, o in old["jobs"].items():
        q = new2["jobs"][i]
        so += o["seconds"]
        sn += q["seconds"]
        rows.append({"id": i, "old_iterations": o["iterations"], "old_seconds": o["seconds"],
                     "new_iterations": q["iterations"], "new_seconds": q["seconds"],
                     "old_log_likelihood": o["log_likelihood"], "new_log_likelihood": q["log_likelihood"]})
        print(f"{i:>10} {o['iterations']:>7} {o['seconds']:>8.3f} {q['iterations']:>7} {q['seconds']:>8.4f} "
              f"{o['seconds'] / q['seconds']:>7.1f}  {q['log_likelihood'] - o['log_likelihood']:+.2e}")
    print(f"job seconds summed: old {so:.3f} s, new {sn:.3f} s: {so / sn:.1f}x")
    print(f"validation: old {old['validation']} s; new first run {new1['validation']} s, "
          f"second run {new2['validation']} s")
    print(f"wall: old {old['wall']:.2f} s; new first run {new1['wall']:.2f} s, second {new2['wall']:.2f} s")
    report = {"k": a.k, "n": a.n, "workers": a.workers, "jobs": rows,
              "old_job_seconds": so, "new_job_seconds": sn, "job_ratio": so / sn,
              "validation_seconds": {"old": old["validation"], "new_first": new1["validation"],
                                     "new_second": new2["validation"]},
              "wall_seconds": {"old": old["wall"], "new_first": new1["wall"], "new_second": new2["wall"]}}
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(report, f, indent=1)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
