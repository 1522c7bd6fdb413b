"""numpy's own parametric bootstrap of a `linear` job on the `nopovm` set,
compared with qst's error bars (from the formulas alone: independent of
qst's Rust code and of its random numbers).

usage: bootstrap_check.py OUT ID COUNTS.npy TRUTH.npy B
Reads qst's estimate rho/<ID>.npy, draws B resamples c*_k ~ Poisson(N q_k)
(q_k = p_k(rho)/sum p, N = sum c_k), reconstructs each by linear inversion
(least squares, Hermitian part, trace 1, eigenvalues projected onto the
simplex) and compares the sample standard deviations of purity and fidelity
with qst's purity_std and fidelity_std: they must agree within 25 %
(B = 200 gives each about 5 % sampling error)."""
import json
import sys

import numpy as np

from nopovm import nopovm, probabilities


def simplex(v):
    """Euclidean projection onto the probability simplex."""
    u = np.sort(v)[::-1]
    css = np.cumsum(u)
    k = np.nonzero(u - (css - 1) / np.arange(1, len(v) + 1) > 0)[0][-1]
    tau = (css[k] - 1) / (k + 1)
    return np.clip(v - tau, 0, None)


def linear(P, counts):
    K, n, _ = P.shape
    M = P.reshape(K, n * n)
    x = np.linalg.lstsq(M, counts / counts.sum(), rcond=None)[0]
    X = x.reshape(n, n).T  # x[a n + b] = rho[b, a]
    X = (X + X.conj().T) / 2
    X /= np.trace(X).real
    w, u = np.linalg.eigh(X)
    return (u * simplex(w)) @ u.conj().T


def psd_sqrt(a):
    w, u = np.linalg.eigh(a)
    return (u * np.sqrt(np.clip(w, 0, None))) @ u.conj().T


def fidelity(rho, sigma):
    s = psd_sqrt(rho)
    return float(np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(s @ sigma @ s), 0, None))) ** 2)


out, ident, counts_path, truth_path, B = sys.argv[1:6]
B = int(B)
with open(f"{out}/results.jsonl") as f:
    r = next(json.loads(l) for l in f if json.loads(l)["id"] == ident)
assert r["status"] == "ok" and r["method"] == "linear" and r["bootstrap"] == B, r
counts = np.load(counts_path).astype(float)
truth = np.load(truth_path)
rho = np.load(f"{out}/{r['rho']}")
n = rho.shape[0]
P = nopovm(n)
# qst's estimate is what numpy's own linear inversion gives.
assert np.abs(linear(P, counts) - rho).max() < 1e-8
q = probabilities(P, rho)
q = np.clip(q, 0, None) / q.sum()
rng = np.random.default_rng(2024)
pur, fid = [], []
for _ in range(B):
    c = rng.poisson(counts.sum() * q).astype(float)
    s = linear(P, c)
    pur.append(np.trace(s @ s).real)
    fid.append(fidelity(s, truth))
want = {"purity_std": np.std(pur, ddof=1), "fidelity_std": np.std(fid, ddof=1)}
ok = True
for k, v in want.items():
    ratio = r[k] / v
    print(f"{k}: qst {r[k]:.5g}, numpy {v:.5g}, ratio {ratio:.3f}")
    ok &= 0.75 < ratio < 1.25
sys.exit(0 if ok else 1)
