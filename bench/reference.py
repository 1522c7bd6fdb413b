"""The lab's Python tool, as it works today: the reference qst is measured against.

Per sample: numpy `einsum('kij,ji->k', P, rho)` for the probabilities, the
G-corrected R-rho-R iteration (SPEC 1.4: the plain R-rho-R is wrong for
`nopovm`, whose projectors do not sum to the identity), stopped by the same
SPEC 1.4 certificate qst uses. A spawn-start multiprocessing.Pool whose
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
    Returns (new sigma, SPEC 1.4 bound / N at the old point, rho at the old point)."""
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
