"""numpy's own construction of the built-in `mub` and `sic` designs, written
from the written definitions alone (independent of qst's Rust code), and the
checks of qst's files against it.

Usage:
  designs.py files CACHE_DIR DESIGN N [N ...]
      every (K, n, n) file qst built equals this construction to 1e-13
  designs.py make DIR DESIGN N SEED
      a random mixed state, its probabilities (noiseless) and Poisson counts
      (for mub a different number of shots per basis); writes truth.npy,
      probs.npy, counts.npy and a count matrix DESIGN.csv (two columns:
      probabilities, counts)
  designs.py linear DIR RHO_NPY COUNTS_NPY
      linear inversion on per-basis frequencies by numpy's least squares,
      compared with qst's rho
  designs.py certificate N COUNTS_NPY RHO_NPY TOL
      the likelihood certificate of qst's mub MLE, from this construction
"""
import sys

import numpy as np

# Field polynomials x^k + f_{k-1} x^{k-1} + ... + f_0, written as the list of
# all coefficients from x^0 up to x^k.
POLY = {
    4: [1, 1, 1], 8: [1, 1, 0, 1], 9: [1, 0, 1], 16: [1, 1, 0, 0, 1],
    25: [2, 4, 1], 27: [1, 2, 0, 1], 32: [1, 0, 1, 0, 0, 1], 49: [3, 6, 1],
    64: [1, 1, 0, 1, 1, 0, 1], 81: [2, 0, 0, 2, 1], 121: [2, 7, 1],
    125: [3, 3, 0, 1], 128: [1, 1, 0, 0, 0, 0, 0, 1], 169: [2, 12, 1],
    243: [1, 2, 0, 0, 0, 1], 256: [1, 0, 1, 1, 1, 0, 0, 0, 1],
}


def factor(n):
    for p in range(2, n + 1):
        if n % p == 0:
            k, m = 0, n
            while m % p == 0:
                m //= p
                k += 1
            assert m == 1, f"{n} is not a prime power"
            return p, k


class GF:
    """GF(p^k): elements are integers whose base-p digits are coefficients."""

    def __init__(self, n):
        self.n = n
        self.p, self.k = factor(n)
        self.f = np.array(POLY.get(n, [0, 1]), dtype=np.int64)

    def digits(self, a):
        return np.array([(a // self.p ** i) % self.p for i in range(self.k)], dtype=np.int64)

    def number(self, d):
        return int(sum(int(x) * self.p ** i for i, x in enumerate(d)))

    def add(self, a, b):
        return self.number((self.digits(a) + self.digits(b)) % self.p)

    def mul(self, a, b):
        prod = np.convolve(self.digits(a), self.digits(b)) % self.p
        prod = list(prod)
        # polynomial long division by the monic f
        while len(prod) > self.k:
            top = prod.pop()
            for i in range(self.k):
                prod[len(prod) - self.k + i] = (prod[len(prod) - self.k + i] - top * self.f[i]) % self.p
        prod += [0] * (self.k - len(prod))
        return self.number(np.array(prod) % self.p)

    def trace(self, a):
        t, x = 0, a
        for _ in range(self.k):
            t = self.add(t, x)
            y = 1
            for _ in range(self.p):
                y = self.mul(y, x)
            x = y
        assert t < self.p
        return t


I2 = np.eye(2, dtype=complex)
X = np.array([[0, 1], [1, 0]], dtype=complex)
Z = np.array([[1, 0], [0, -1]], dtype=complex)


def sigma(u, v):
    return {(0, 0): I2, (1, 0): X, (0, 1): Z, (1, 1): 1j * Z @ X}[(u, v)]


def pauli(u, v):
    out = np.array([[1.0 + 0j]])
    for uq, vq in zip(u, v):  # qubit 0 leftmost
        out = np.kron(out, sigma(uq, vq))
    return out


def mub(n):
    """(n(n+1), n, n) projectors, in the design's order."""
    F = GF(n)
    p, k = F.p, F.k
    out = [np.outer(e, e.conj()) for e in np.eye(n, dtype=complex)]
    if p % 2 == 1:
        w = np.exp(2j * np.pi / p)
        for c in range(n):
            for g in range(n):
                psi = np.array([w ** F.trace(F.add(F.mul(c, F.mul(a, a)), F.mul(g, a)))
                                for a in range(n)]) / np.sqrt(n)
                out.append(np.outer(psi, psi.conj()))
        return np.array(out)
    xs = [2 ** i for i in range(k)]
    Gamma = np.array([[F.trace(F.mul(xs[i], xs[j])) for j in range(k)] for i in range(k)])
    for a in range(n):
        M = np.array([[(F.mul(a, xs[j]) >> i) & 1 for j in range(k)] for i in range(k)])
        S = Gamma @ M % 2
        P = [pauli(np.eye(k, dtype=int)[j], S[:, j]) for j in range(k)]
        for s in range(n):
            Pi = np.eye(n, dtype=complex)
            for j in range(k):
                Pi = Pi @ (np.eye(n) + (-1) ** ((s >> j) & 1) * P[j]) / 2
            out.append(Pi)
    return np.array(out)


def sic():
    w = np.exp(2j * np.pi / 3)
    kets = [np.array([1, 0], complex)]
    kets += [np.array([1, np.sqrt(2) * w ** (m - 1)]) / np.sqrt(3) for m in (1, 2, 3)]
    return np.array([np.outer(v, v.conj()) / 2 for v in kets])


def build(design, n):
    return mub(n) if design == "mub" else sic()


def files(cache, design, dims):
    for n in dims:
        want = build(design, n)
        got = np.load(f"{cache}/{design}_n{n}.npy", mmap_mode="r")
        assert got.dtype == np.complex128 and got.shape == want.shape, (got.dtype, got.shape)
        d = np.abs(got - want).max()
        assert d <= 1e-13, f"{design} n={n}: max difference {d}"
        print(f"{design} n={n}: K={len(want)}, max |qst - numpy| = {d:.2e}")
        if design == "mub":
            # The construction itself: orthonormal bases, mutually unbiased.
            kets = []
            for Pi in want:
                ev, U = np.linalg.eigh(Pi)
                assert abs(ev[-1] - 1) < 1e-12 and abs(ev[:-1]).max(initial=0) < 1e-12
                kets.append(U[:, -1])
            V = np.array(kets)
            O = np.abs(V.conj() @ V.T) ** 2
            grp = np.arange(len(V)) // n
            same = grp[:, None] == grp[None, :]
            assert np.allclose(O[same], np.eye(len(V))[same], atol=1e-12)
            assert np.allclose(O[~same], 1 / n, atol=1e-12)


def random_state(n, rng, rank):
    A = rng.normal(size=(n, rank)) + 1j * rng.normal(size=(n, rank))
    rho = A @ A.conj().T
    return rho / np.trace(rho).real


def probabilities(P, rho):
    return np.einsum("kab,ba->k", P, rho).real


def make(d, design, n, seed):
    rng = np.random.default_rng(seed)
    P = build(design, n)
    rho = random_state(n, rng, max(1, n // 2))
    p = probabilities(P, rho)
    if design == "mub":
        shots = rng.integers(200, 5000, size=n + 1).repeat(n)  # unequal basis totals
    else:
        shots = 3000
    counts = rng.poisson(shots * p).astype(np.int64)
    np.save(f"{d}/truth.npy", rho)
    np.save(f"{d}/probs.npy", p)
    np.save(f"{d}/counts.npy", counts)
    with open(f"{d}/{design}.csv", "w") as fh:
        for pk, ck in zip(p, counts):
            fh.write(f"{float(pk)!r},{int(ck)}\n")


def project_density(X):
    ev, U = np.linalg.eigh(X)
    # Euclidean projection of the eigenvalues onto the simplex (sort-based).
    u = np.sort(ev)[::-1]
    css = np.cumsum(u)
    r = np.nonzero(u * np.arange(1, len(u) + 1) > (css - 1))[0][-1]
    theta = (css[r] - 1) / (r + 1)
    lam = np.maximum(ev - theta, 0)
    return (U * lam) @ U.conj().T


def linear(d, rho_path, counts_path):
    c = np.load(counts_path).astype(float)
    n = int(round(np.sqrt(len(c))))
    while n * (n + 1) != len(c):
        n -= 1
    P = mub(n)
    f = (c.reshape(n + 1, n) / c.reshape(n + 1, n).sum(axis=1, keepdims=True)).ravel()
    # x[a*n + b] = rho[b, a], M[k, a*n + b] = Pi_k[a, b]
    M = P.reshape(len(P), n * n)
    x, *_ = np.linalg.lstsq(M, f.astype(complex), rcond=None)
    Xm = x.reshape(n, n).T
    Xm = (Xm + Xm.conj().T) / 2
    Xm /= np.trace(Xm).real
    want = project_density(Xm)
    got = np.load(rho_path)
    diff = np.abs(got - want).max()
    assert diff < 1e-9, f"linear: max |qst - numpy| = {diff}"
    # Frequencies per basis matter: the pooled-count answer differs.
    x2, *_ = np.linalg.lstsq(M, c.astype(complex), rcond=None)
    X2 = x2.reshape(n, n).T
    X2 = (X2 + X2.conj().T) / 2
    pooled = project_density(X2 / np.trace(X2).real)
    print(f"linear n={n}: max |qst - numpy| = {diff:.2e} (pooled counts would differ by {np.abs(pooled - want).max():.2e})")


def certificate(n, counts_path, rho_path, tol):
    P = mub(n)
    c = np.load(counts_path).astype(float)
    rho = np.load(rho_path)
    N = c.sum()
    G = P.sum(axis=0)
    q = probabilities(P, rho) / np.trace(G @ rho).real
    R = np.einsum("k,kab->ab", np.where(c > 0, c / (N * np.where(q > 0, q, 1)), 0), P)
    ev, U = np.linalg.eigh(G)
    W = U @ np.diag(ev ** -0.5) @ U.conj().T
    bound = N * np.log(np.linalg.eigvalsh(W @ R @ W).max())
    assert bound <= tol * N, f"certificate {bound} > {tol * N}"
    print(f"certificate n={n}: {bound:.3e} <= {tol * N:.3e}")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "files":
        files(args[0], args[1], [int(a) for a in args[2:]])
    elif cmd == "make":
        make(args[0], args[1], int(args[2]), int(args[3]))
    elif cmd == "linear":
        linear(args[0], args[1], args[2])
    elif cmd == "certificate":
        certificate(int(args[0]), args[1], args[2], float(args[3]))
    else:
        sys.exit(f"unknown command {cmd}")
