"""Writes a counts fixture from a known rho with docs/reference.md.3's formula.

usage: make_fixture.py OUTDIR N SEED
Writes OUTDIR/truth.npy ((n, n) <c16), OUTDIR/probs.npy (<f8, exact p_k) and
OUTDIR/counts.npy (<i8, Poisson counts with 1e6 shots)."""
import sys

import numpy as np

from nopovm import nopovm, probabilities

out, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(seed)
# A full-rank state with strongly complex off-diagonals: rho != rho^T.
A = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
rho = A @ A.conj().T
rho /= np.trace(rho).real
assert np.abs(rho - rho.T).max() > 0.05
P = nopovm(n)
p = probabilities(P, rho)
np.save(f"{out}/truth.npy", rho)
np.save(f"{out}/probs.npy", p.astype("<f8"))
np.save(f"{out}/counts.npy", rng.poisson(1e6 * p / p.sum()).astype("<i8"))
