"""The lab's Python tool, as it works today: the reference qst is measured against.

Per sample: numpy `einsum('kij,ji->k', P, rho)` for the probabilities, the
G-corrected R-rho-R iteration (docs/reference.md: the plain R-rho-R is wrong for
`nopovm`, whose projectors do not sum to the identity), stopped by the same
docs/reference.md certificate qst uses. A spawn-start multiprocessing.Pool whose
initializer memory-maps qst's cache file `nopovm_n{n}.npy` with
np.load(mmap_mode='r').

Usage as a library: `run_pool(jobs, cache, workers, tol, max_iters)`; each job
is a dict {"id", "dim", "counts"} as in a qst JSON Lines batch.
"""
import multiprocessing as mp
import time

import numpy as np

SETS = {}


def _init(cache, dims):
    for n in dims:
        P = np.load(f"{cache}/nopovm_n{n}.npy", mmap_mode="r")
        G = np.asarray(P.sum(axis=0))
        ev, U = np.linalg.eigh(G)
        W = (U * ev**-0.5) @ U.conj().T  # G^{-1/2}
        SETS[n] = (P, G, W)


def iteration(P, W, f, sigma):
    """One G-corrected R-rho-R step in sigma = G^{1/2} rho G^{1/2} coordinates.
    Returns (new sigma, docs/reference.md bound / N at the old point, rho at the old point)."""
    rho = W @ sigma @ W
    p = np.einsum("kij,ji->k", P, rho).real  # Tr(G rho) = Tr(sigma) = 1
    w = np.divide(f, p, out=np.zeros_like(f), where=f > 0)
    R = np.einsum("k,kij->ij", w, P)
    Rp = W @ R @ W
    gap = np.log(np.linalg.eigvalsh(Rp)[-1])
    sigma = Rp @ sigma @ Rp
    sigma /= np.trace(sigma).real
    return sigma, gap, rho


def reconstruct(job, tol=1e-8, max_iters=100_000):
    n = job["dim"]
    P, G, W = SETS[n]
    c = np.asarray(job["counts"], float)
    f = c / c.sum()
    sigma = np.eye(n, dtype=complex) / n
    t0 = time.perf_counter()
    converged = False
    for it in range(1, max_iters + 1):
        new_sigma, gap, rho = iteration(P, W, f, sigma)
        if gap <= tol:
            converged = True
            break
        sigma = new_sigma
    rho = rho / np.trace(rho).real
    p = np.einsum("kij,ji->k", P, rho).real / np.trace(G @ rho).real
    m = c > 0
    ll = float(np.sum(c[m] * np.log(p[m])))
    return {"id": job["id"], "iterations": it, "converged": converged,
            "log_likelihood": ll, "seconds": time.perf_counter() - t0}


def _run(args):
    job, tol, max_iters = args
    return reconstruct(job, tol, max_iters)


def run_pool(jobs, cache, workers, tol=1e-8, max_iters=100_000):
    dims = sorted({j["dim"] for j in jobs})
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, initializer=_init, initargs=(cache, dims)) as pool:
        return pool.map(_run, [(j, tol, max_iters) for j in jobs], chunksize=1)


# --- The accelerated reference: what the lab's tool does with APG --------------
#
# Accelerated projected gradient (Shang, Zhang, Ng, PRA 95, 062336 (2017)) in
# sigma = G^{1/2} rho G^{1/2}, the kernel qst's `apg.rs` implements: a step
# sigma <- P(y + t W R W), P the projection onto density matrices (eigh, then the
# eigenvalues onto the simplex), backtracking on the gradient-curvature test,
# FISTA momentum with gradient-mapping restarts; the same certificate (tol 1e-8)
# as the stopping rule. Probabilities and R are einsums over the mapped file.


def _simplex(v):
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - 1.0
    k = np.arange(1, len(u) + 1)
    r = k[u - css / k > 0][-1]
    return np.maximum(v - css[r - 1] / r, 0.0)


def _proj(z):
    lam, u = np.linalg.eigh((z + z.conj().T) / 2)
    lam = _simplex(lam)
    keep = lam > 0
    b = u[:, keep] * np.sqrt(lam[keep])
    return b @ b.conj().T


def reconstruct_apg(job, tol=1e-8, max_iters=100_000):
    n = job["dim"]
    P, G, W = SETS[n]
    c = np.asarray(job["counts"], float)
    f = c / c.sum()
    m = f > 0

    def grad(sigma):
        rho = W @ sigma @ W
        p = np.einsum("kij,ji->k", P, rho).real
        if np.any(p[m] <= 0):
            return None, None
        w = np.divide(f, p, out=np.zeros_like(f), where=m)
        return W @ np.einsum("k,kij->ij", w, P) @ W, p

    t0 = time.perf_counter()
    x = np.eye(n, dtype=complex) / n
    gx, _ = grad(x)
    y, gy = x, gx
    theta, t = 1.0, 1.0
    converged = False
    it = 0
    while it < max_iters:
        bound = np.log(np.linalg.eigvalsh(gx)[-1])
        if bound <= tol:
            converged = True
            break
        it += 1
        while True:
            xn = _proj(y + t * gy)
            gn, _ = grad(xn)
            if gn is not None:
                d = xn - y
                curv = np.vdot(gy - gn, d).real
                d2 = np.vdot(d, d).real
                if curv <= d2 / t:
                    t_fit = d2 / curv if curv > 0 else np.inf
                    break
            t *= 0.5
        if y is not x and np.vdot(y - xn, xn - x).real > 0:
            theta = 1.0
        theta_next = 0.5 * (1 + np.sqrt(1 + 4 * theta * theta))
        beta = (theta - 1) / theta_next
        theta = theta_next
        yn = xn + beta * (xn - x)
        x, gx = xn, gn
        if beta > 0:
            gy_new, _ = grad(yn)
            if gy_new is None:
                theta, y, gy = 1.0, x, gx
            else:
                y, gy = yn, gy_new
        else:
            y, gy = x, gx
        t = max(t * 1.25, min(t_fit, t * 10))
    rho = W @ x @ W
    rho = rho / np.trace(rho).real
    p = np.einsum("kij,ji->k", P, rho).real / np.trace(G @ rho).real
    ll = float(np.sum(c[c > 0] * np.log(p[c > 0])))
    return {"id": job["id"], "iterations": it, "converged": converged,
            "log_likelihood": ll, "seconds": time.perf_counter() - t0}


def _run_apg(args):
    job, tol, max_iters = args
    return reconstruct_apg(job, tol, max_iters)


def run_pool_apg(jobs, cache, workers, tol=1e-8, max_iters=100_000):
    """run_pool with the accelerated (APG) kernel."""
    dims = sorted({j["dim"] for j in jobs})
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, initializer=_init, initargs=(cache, dims)) as pool:
        return pool.map(_run_apg, [(j, tol, max_iters) for j in jobs], chunksize=1)
