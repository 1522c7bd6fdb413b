"""numpy's own construction of the `nopovm` projector set, written
from their written definitions alone (independent of qst's Rust code)."""
import numpy as np


def nopovm_kets(n):
    kets = []
    for k in range(n):
        e = np.zeros(n, complex)
        e[k] = 1
        kets.append(e)
    for i in range(n):
        for j in range(i + 1, n):
            a = np.zeros(n, complex)
            a[i], a[j] = 1 / np.sqrt(2), 1 / np.sqrt(2)
            b = np.zeros(n, complex)
            b[i], b[j] = 1 / np.sqrt(2), -1j / np.sqrt(2)
            kets += [a, b]
    return np.array(kets)


def nopovm(n):
    """(n^2, n, n) complex128, Pi_k[a, b] = psi_k[a] * conj(psi_k[b])."""
    psi = nopovm_kets(n)
    return np.einsum("ka,kb->kab", psi, psi.conj())


def probabilities(P, rho):
    """docs/reference.md: p_k = sum_{a,b} Pi_k[a,b] rho[b,a]."""
    return np.einsum("kab,ba->k", P, rho).real


def log_likelihood(P, counts, rho):
    """docs/reference.md: sum_k c_k ln(p_k / Tr(G rho)), zero-count terms are 0."""
    G = P.sum(axis=0)
    p = probabilities(P, rho)
    t = np.trace(G @ rho).real
    m = counts > 0
    with np.errstate(divide="ignore"):
        return float(np.sum(counts[m] * np.log(p[m] / t)))


def certificate(P, counts, rho):
    """docs/reference.md bound N ln lambda_max(G^-1/2 R G^-1/2)."""
    G = P.sum(axis=0)
    N = counts.sum()
    q = probabilities(P, rho) / np.trace(G @ rho).real
    w = np.where(counts > 0, counts / (N * np.where(q > 0, q, 1)), 0.0)
    R = np.einsum("k,kab->ab", w, P)
    ev, U = np.linalg.eigh(G)
    W = U @ np.diag(ev ** -0.5) @ U.conj().T
    lam = np.linalg.eigvalsh(W @ R @ W).max()
    return float(N * np.log(lam))
