"""No copies: qst.projectors is a read-only view over the cache file's memory
map, and a caller's C-contiguous complex128 set is borrowed as it is."""

import numpy as np
import pytest

import qst


def mapping_of(path):
    """(start, end) address ranges of `path` in this process's memory maps."""
    ranges = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and parts[5] == str(path):
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                ranges.append((lo, hi))
    return ranges


@pytest.mark.parametrize("design,n", [("nopovm", 5), ("mub", 4), ("sic", 2)])
def test_projectors_are_a_read_only_view_of_the_cache_map(design, n, cache_dir):
    P = qst.projectors(design, n)
    path = cache_dir / f"{design}_n{n}.npy"
    assert path.exists()
    K = {"nopovm": n * n, "mub": n * (n + 1), "sic": 4}[design]
    assert P.shape == (K, n, n) and P.dtype == np.complex128
    assert not P.flags.owndata and not P.flags.writeable
    assert isinstance(P.base, qst.MappedProjectors)
    assert P.base.path == path and P.base.dim == n and P.base.design == design
    # The data lie inside this process's map of the cache file.
    addr = P.ctypes.data
    assert any(lo <= addr and addr + P.nbytes <= hi for lo, hi in mapping_of(path))
    assert np.array_equal(P, np.load(path))
    with pytest.raises(ValueError):
        P[0, 0, 0] = 1
    # The kets give the same set.
    k = qst.kets(design, n)
    assert np.allclose(np.einsum("ka,kb->kab", k, k.conj()), P, atol=1e-15)


def test_view_outlives_the_cache(cache_dir):
    P = qst.projectors("nopovm", 6)
    want = np.array(P)
    qst.set_cache_limit(None)  # a fresh cache: the old one goes
    assert np.array_equal(P, want)


def test_custom_array_is_borrowed_not_copied():
    P = np.ascontiguousarray(qst.projectors("mub", 3))  # a writeable copy, C order
    array, _ = qst._projector_arg(P)
    assert array is P
    assert qst._qst._buffer_address(array) == P.ctypes.data
    # A read-only view (the cache's own map) is borrowed as well.
    V = qst.projectors("mub", 3)
    assert qst._qst._buffer_address(qst._projector_arg(V)[0]) == V.ctypes.data
    # Another layout or dtype is converted once, and gives the same answer.
    F = np.asfortranarray(P)
    assert not np.shares_memory(qst._projector_arg(F)[0], F)
    c = np.arange(12) % 5 + 1
    a, _ = qst.mle(c, projectors=P)
    b, _ = qst.mle(c, projectors=F)
    d, _ = qst.mle(c, projectors=V)
    e, _ = qst.mle(c, design="mub")
    assert np.max(np.abs(a - b)) == 0 and np.max(np.abs(a - d)) == 0
    assert np.max(np.abs(a - e)) < 1e-8
