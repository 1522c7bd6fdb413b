"""The GIL is released while computing: another Python thread runs during a
reconstruction, and two threads on two cores take well under twice the time
of one."""

import hashlib
import os
import threading
import time

import numpy as np
import pytest

import qst


def noisy_counts(n, seed):
    rng = np.random.default_rng(seed)
    P = qst.projectors("nopovm", n)
    g = rng.normal(size=(n, 3)) + 1j * rng.normal(size=(n, 3))
    rho = g @ g.conj().T / np.trace(g @ g.conj().T).real
    return rng.poisson(500 * np.einsum("kab,ba->k", P, rho).real)


def test_python_runs_while_a_reconstruction_computes():
    c = noisy_counts(24, 5)
    qst.mle(c)
    calls, ticks = [], []
    done = threading.Event()

    def compute():
        for _ in range(5):
            t0 = time.perf_counter()
            qst.mle(c)
            calls.append((t0, time.perf_counter()))
        done.set()

    def tick():
        while not done.is_set():
            ticks.append(time.perf_counter())

    threads = [threading.Thread(target=compute), threading.Thread(target=tick)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    # Python ticks strictly inside the native calls (1 ms in from each end).
    inside = sum(1 for t in ticks for a, b in calls if a + 1e-3 < t < b - 1e-3)
    assert inside > 100, f"{inside} Python ticks during {len(calls)} calls"


def timed(target, threads):
    ts = [threading.Thread(target=target) for _ in range(threads)]
    t = time.perf_counter()
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    return time.perf_counter() - t


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores")
def test_two_threads_take_well_under_twice_one():
    jobs = [noisy_counts(16, s) for s in range(4)]
    t = time.perf_counter()
    for c in jobs:
        qst.mle(c)
    jobs *= max(1, int(0.4 / (time.perf_counter() - t)))

    def work():
        for c in jobs:
            qst.mle(c)

    data = b"x" * (16 << 20)

    def baseline():  # hashlib releases the GIL: what two cores give now
        for _ in range(8):
            hashlib.sha256(data).digest()

    seen = []
    for _ in range(3):
        ratio = timed(work, 2) / timed(work, 1)
        base = timed(baseline, 2) / timed(baseline, 1)
        seen.append((round(ratio, 2), round(base, 2)))
        if ratio < 1.7:
            return
    if all(base >= 1.7 for _, base in seen):
        pytest.skip(f"the cores are busy: even hashlib's ratio was >= 1.7 ({seen})")
    pytest.fail(f"two threads over one (qst, hashlib): {seen}; want qst < 1.7")
