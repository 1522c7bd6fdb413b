"""The process-wide projector cache: one load per set, hits after, byte
budget with LRU eviction, sets in use never evicted, shared by threads."""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import qst


def counts(n, seed=0):
    return np.random.default_rng(seed).integers(1, 100, size=n * n)


def test_gui_clicks_load_each_set_once(cache_dir):
    qst.set_cache_limit(None)
    seen = []
    for n in [4, 8, 4, 16, 4]:
        rho, info = qst.mle(counts(n), design="nopovm")
        assert rho.shape == (n, n) and info["dim"] == n
        i = qst.cache_info()
        seen.append((i["misses"], i["hits"]))
    assert seen == [(1, 0), (2, 0), (2, 1), (3, 1), (3, 2)]
    i = qst.cache_info()
    assert i["evictions"] == 0 and i["dir"] == cache_dir
    files = sum(16 * n**4 + 128 for n in [4, 8, 16])
    assert i["mapped_bytes"] == files
    for n in [4, 8, 16]:
        assert (cache_dir / f"nopovm_n{n}.npy").exists()


def test_budget_evicts_least_recently_used_but_not_sets_in_use():
    n8 = 16 * 8**4 + 128
    qst.set_cache_limit(n8 + 1000)
    try:
        qst.mle(counts(4), design="nopovm")
        qst.mle(counts(8), design="nopovm")  # evicts n = 4
        i = qst.cache_info()
        assert (i["misses"], i["evictions"]) == (2, 1)
        assert i["mapped_bytes"] <= n8 + 1000
        P8 = qst.projectors("nopovm", 8)  # held: n = 8 stays
        qst.mle(counts(4), design="nopovm")
        i = qst.cache_info()
        assert (i["hits"], i["misses"], i["evictions"]) == (1, 3, 1)
        assert i["mapped_bytes"] > n8  # over budget while in use
        assert np.array_equal(P8, qst.projectors("nopovm", 8))
        del P8
        qst.mle(counts(5), design="nopovm")  # now n = 8 and n = 4 may go
        assert qst.cache_info()["evictions"] >= 2
    finally:
        qst.set_cache_limit(None)


def test_limit_from_the_environment():
    code = "import qst; print(qst.cache_info()['max_bytes'])"
    env = dict(os.environ, QST_MAX_CACHE_BYTES="123456")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "123456"
    env["QST_MAX_CACHE_BYTES"] = "lots"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "QST_MAX_CACHE_BYTES" in out.stderr


def test_threads_share_one_load():
    qst.set_cache_limit(None)
    with ThreadPoolExecutor(8) as pool:
        rhos = list(pool.map(lambda s: qst.mle(counts(7, s), design="nopovm")[0], range(32)))
    i = qst.cache_info()
    assert i["misses"] == 1 and i["hits"] == 31
    for s, rho in enumerate(rhos):
        assert np.array_equal(rho, qst.mle(counts(7, s), design="nopovm")[0])
