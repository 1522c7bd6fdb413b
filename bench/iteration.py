"""Per-iteration benchmark: one G-corrected R-rho-R iteration of the lab's
numpy reference (reference.py, dense einsum over the memory-mapped projector
file) against one iteration of qst's MLE (the `mle-iter` binary: the median
time of a whole job to the default certificate divided by its iterations, so
line-search trials and convergence tests are counted), at the same
dimensions, in one script. Then, per prime-power n, `mub` against `nopovm`
per qst iteration (the `mub-iter` binary: both sets in one process,
interleaved; prints the ratio mub/nopovm, target <= 2). Prints ratios; writes
bench/results/iteration.json.

usage: python bench/iteration.py [--dims 16,32,64] [--bin target/release/mle-iter]
       [--qst target/release/qst] [--mub-bin target/release/mub-iter] [--mub-reps 41]
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
import reference  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dims", default="16,32,64")
    ap.add_argument("--bin", default="target/release/mle-iter")
    ap.add_argument("--qst", default="target/release/qst")
    ap.add_argument("--mub-bin", default="target/release/mub-iter")
    ap.add_argument("--mub-reps", type=int, default=41)
    ap.add_argument("--out", default="bench/results/iteration.json")
    a = ap.parse_args()
    dims = [int(x) for x in a.dims.split(",")]
    cache = tempfile.mkdtemp(prefix="qst-bench-cache-")
    subprocess.run([a.qst, "prebuild", "--dims", a.dims, "--cache", cache], check=True,
                   stdout=subprocess.DEVNULL)
    reference._init(cache, dims)
    rows = []
    for n in dims:
        P, G, W = reference.SETS[n]
        rng = np.random.default_rng(n)
        f = rng.random(n * n)
        f /= f.sum()
        sigma = np.eye(n, dtype=complex) / n
        reference.iteration(P, W, f, sigma)  # warm the page cache
        reps = max(3, int(200 / n))
        t0 = time.perf_counter()
        for _ in range(reps):
            sigma, _, _ = reference.iteration(P, W, f, sigma)
        py = (time.perf_counter() - t0) / reps
        out = subprocess.run([a.bin, str(n), str(max(5, int(2000 / n)))], check=True,
                             capture_output=True, text=True).stdout
        q = json.loads(out)
        rows.append({"dim": n, "numpy_seconds_per_iteration": py,
                     "qst_seconds_per_iteration": q["seconds_per_iteration"],
                     "ratio": py / q["seconds_per_iteration"],
                     "qst_job_seconds": q["job_seconds"], "qst_job_iterations": q["job_iterations"],
                     "qst_job_converged": q["job_converged"]})
        r = rows[-1]
        print(f"n={n:>3}: numpy {py * 1e3:9.3f} ms/it   qst {r['qst_seconds_per_iteration'] * 1e3:8.4f} ms/it"
              f"   ratio {r['ratio']:7.1f}x   (qst whole job: {r['qst_job_iterations']} it, "
              f"{r['qst_job_seconds']:.3f} s, converged={r['qst_job_converged']})")
    mub = mub_rows(a.mub_bin, dims, a.mub_reps)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as fh:
        json.dump({"cpus": os.cpu_count(), "numpy": np.__version__, "rows": rows, "mub": mub},
                  fh, indent=1)
    print(f"wrote {a.out}")


def prime_power(n):
    p = next((d for d in range(2, n + 1) if n % d == 0), None)
    while p and n % p == 0:
        n //= p
    return p is not None and n == 1


def mub_rows(binary, dims, reps):
    """`mub` vs `nopovm` per iteration at each prime-power n (`mub-iter`)."""
    out = []
    for n in dims:
        if not prime_power(n):
            continue
        q = json.loads(subprocess.run([binary, str(n), str(reps)], check=True,
                                      capture_output=True, text=True).stdout)
        out.append(q)
        print(f"n={n:>3}: nopovm {q['nopovm_seconds_per_iteration'] * 1e3:8.4f} ms/it   "
              f"mub {q['mub_seconds_per_iteration'] * 1e3:8.4f} ms/it   "
              f"ratio mub/nopovm {q['ratio_mub_over_nopovm']:5.2f} (target <= 2)   "
              f"mub as plain kets {q['mub_as_kets_seconds_per_iteration'] * 1e3:8.3f} ms/it")
    return out


if __name__ == "__main__":
    main()
