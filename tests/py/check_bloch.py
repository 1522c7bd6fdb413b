"""For n = 2: a brute-force search over the Bloch ball finds no state with a
higher docs/reference.md log-likelihood than qst's MLE.

usage: check_bloch.py PROJECTORS.npy RHO.npy COUNTS.npy"""
import sys

import numpy as np

from nopovm import log_likelihood

P = np.asarray(np.load(sys.argv[1], mmap_mode="r"))
rho = np.asarray(np.load(sys.argv[2], mmap_mode="r"))
counts = np.asarray(np.load(sys.argv[3], mmap_mode="r")).astype(float)
assert P.shape == (4, 2, 2)
X = np.array([[0, 1], [1, 0]], complex)
Y = np.array([[0, -1j], [1j, 0]])
Z = np.array([[1, 0], [0, -1]], complex)
ll_qst = log_likelihood(P, counts, rho)


def ll_at(r):
    s = 0.5 * (np.eye(2) + r[0] * X + r[1] * Y + r[2] * Z)
    return log_likelihood(P, counts, s)


rng = np.random.default_rng(1)
# Random points filling the ball, then a shrinking local search around the best.
pts = rng.normal(size=(20000, 3))
pts *= (rng.random(20000) ** (1 / 3) / np.linalg.norm(pts, axis=1))[:, None]
best_r, best = None, -np.inf
for r in pts:
    v = ll_at(r)
    if v > best:
        best_r, best = r, v
step = 0.05
while step > 1e-7:
    improved = False
    for d in rng.normal(size=(64, 3)):
        r = best_r + step * d / np.linalg.norm(d)
        if np.linalg.norm(r) > 1:
            r = r / np.linalg.norm(r)
        v = ll_at(r)
        if v > best:
            best_r, best, improved = r, v, True
    if not improved:
        step /= 2
print(f"qst loglik {ll_qst!r}, best brute-force {best!r} at r={best_r}")
# qst must be at least as good as anything the search found (to rounding).
sys.exit(0 if ll_qst >= best - 1e-9 * abs(best) - 1e-9 else 1)
