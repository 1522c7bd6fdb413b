"""Reads only .npy files qst wrote (rho, counts, projectors) and recomputes
docs/reference.md.4's log-likelihood and convergence bound for each listed job.

usage: check_results.py PROJECTORS.npy TOL (RHO.npy COUNTS.npy LOGLIK)...
Prints one line per job; exits 1 on any mismatch."""
import sys

import numpy as np

from nopovm import certificate, log_likelihood

P = np.load(sys.argv[1], mmap_mode="r")
tol = float(sys.argv[2])
args = sys.argv[3:]
bad = 0
for i in range(0, len(args), 3):
    rho = np.load(args[i], mmap_mode="r")
    counts = np.load(args[i + 1], mmap_mode="r").astype(float)
    reported = float(args[i + 2])
    assert rho.dtype == np.complex128 and rho.shape == P.shape[1:], rho.shape
    ll = log_likelihood(np.asarray(P), counts, np.asarray(rho))
    bound = certificate(np.asarray(P), counts, np.asarray(rho))
    N = counts.sum()
    ok = abs(ll - reported) <= 1e-9 * abs(ll) + 1e-9 and bound <= tol * N * 1.01 + 1e-9
    print(f"{args[i]}: loglik numpy={ll!r} qst={reported!r} bound={bound:.3e} (tol*N={tol * N:.3e}) {'ok' if ok else 'BAD'}")
    bad += not ok
sys.exit(1 if bad else 0)
