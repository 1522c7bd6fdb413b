"""The module's functions on their own: noiseless recovery, figures,
fidelity, truths, inferred dimensions, and errors as Python exceptions with
qst's sentences."""

import numpy as np
import pytest

import qst
from conftest import random_state


def noiseless(design, n, rho):
    P = qst.projectors(design, n)
    return 1e6 * np.einsum("kab,ba->k", P, rho).real


@pytest.mark.parametrize("design,n", [("nopovm", 3), ("mub", 4), ("sic", 2), ("mub", 9)])
def test_noiseless_counts_give_back_the_state(design, n):
    rho = random_state(n, 1, np.random.default_rng(n))
    c = noiseless(design, n, rho)
    for fn in (qst.mle, qst.linear):
        est, info = fn(c, design=design, truth=rho)  # n inferred
        assert info["dim"] == n and info["design"] == design
        assert info["fidelity"] > 0.9999
        assert qst.fidelity(est, rho) == pytest.approx(info["fidelity"], abs=1e-12)
    est, info = qst.mle(c.astype(np.int64), n=n, design=design)
    assert info["converged"] is True and isinstance(info["iterations"], int)
    assert set(info) == {
        "iterations", "converged", "log_likelihood", "purity", "trace", "rank",
        "min_eigenvalue", "max_eigenvalue", "eigenvalue_entropy", "design", "dim",
        "method", "seconds",
    }


def test_truth_as_ket_and_figures():
    psi = np.array([1, 1j, 0, 0]) / np.sqrt(2)
    rho = np.outer(psi, psi.conj())
    c = noiseless("nopovm", 4, rho)
    est, info = qst.mle(c, truth=psi * 3)  # a ket, normalized by qst
    assert info["fidelity"] > 0.9999
    f = qst.figures(est)
    for k in ["purity", "trace", "rank", "min_eigenvalue", "max_eigenvalue", "eigenvalue_entropy"]:
        assert f[k] == pytest.approx(info[k], abs=1e-12)
    g = qst.figures(np.eye(3) / 3)
    assert g["rank"] == 3 and g["purity"] == pytest.approx(1 / 3)
    assert g["eigenvalue_entropy"] == pytest.approx(np.log(3))
    assert qst.fidelity(np.eye(2) / 2, [1, 0]) == pytest.approx(0.5)
    _, lin = qst.linear(c)
    assert lin["iterations"] is None and lin["converged"] is None and lin["method"] == "linear"


def test_custom_projector_file(tmp_path):
    P = np.ascontiguousarray(qst.projectors("mub", 3))
    path = tmp_path / "set.npy"
    np.save(path, P)
    c = noiseless("mub", 3, random_state(3, 2, np.random.default_rng(0)))
    a, info = qst.mle(c, projectors=path)
    b, _ = qst.mle(c, projectors=P)
    assert info["design"] == "custom" and info["dim"] == 3
    assert np.array_equal(a, b)


ERRORS = [
    (lambda: qst.mle(np.ones(15), n=4), "counts has 15 entries; nopovm of dimension 4 needs 16"),
    (lambda: qst.mle(np.ones(15)), "counts has 15 entries, which fits no dimension of nopovm"),
    (lambda: qst.mle(np.ones(42), design="mub"), "counts has 42 entries, which fits no dimension of mub"),
    (lambda: qst.mle(np.ones(42), n=6, design="mub"), "mub needs a prime-power dimension; 6 is not"),
    (lambda: qst.mle(np.ones(4), design="mubs"), 'unknown design "mubs"'),
    (lambda: qst.linear(np.ones(9), n=3, design="sic"), "sic is built in for dimension 2 only, not 3"),
    (lambda: qst.mle(np.zeros(16)), "counts are all zero"),
    (lambda: qst.mle([1, 2, -3, 4]), "counts[2] is -3, but counts must be finite and >= 0"),
    (lambda: qst.mle([1, 2, np.nan, 4]), "counts[2] is NaN"),
    (lambda: qst.mle(np.ones((4, 4))), "counts has shape (4, 4), but must be a 1-D array"),
    (lambda: qst.mle(["a", "b", "c", "d"]), "counts has dtype <U1"),
    (lambda: qst.mle(np.ones(16), projectors=np.zeros((16, 4, 3))), "projectors has shape (16, 4, 3), but must be (K, n, n)"),
    (lambda: qst.mle(np.ones(16), projectors=np.zeros((16, 4))), "projectors has shape (16, 4), but must be (K, n, n)"),
    (lambda: qst.mle(np.ones(15), projectors=np.zeros((15, 4, 4))), "dimension 4 needs K >= 16 projectors"),
    (lambda: qst.mle(np.ones(12), projectors=np.zeros((16, 4, 4))), "counts has 12 entries; the custom projector set needs 16"),
    (lambda: qst.mle(np.ones(16), projectors=np.zeros((16, 4, 4))), "projectors: "),
    (lambda: qst.mle(np.ones(16), truth=np.eye(3) / 3), "truth is 3x3, but the state is 4x4"),
    (lambda: qst.mle(np.ones(16), truth=np.eye(4)), "so it is not a density matrix"),
    (lambda: qst.mle(np.ones(16), max_iters=0), "max_iters is 0"),
    (lambda: qst.mle(np.ones(16), tol=-1), "tol is -1"),
    (lambda: qst.projectors("nopovm", 1), "nopovm needs a dimension of at least 2, not 1"),
    (lambda: qst.kets("mub", 10), "mub needs a prime-power dimension; 10 is not"),
    (lambda: qst.fidelity(np.eye(2), np.eye(3)), "a is 2x2 but b is 3x3"),
    (lambda: qst.figures(np.ones((2, 3))), "rho has shape (2, 3), but must be a square (n, n) matrix"),
]


@pytest.mark.parametrize("call,message", ERRORS)
def test_bad_input_raises_value_error_with_the_sentence(call, message):
    with pytest.raises(ValueError) as e:
        call()
    assert message in str(e.value)


def test_bad_files_raise(tmp_path):
    with pytest.raises(OSError, match="missing.npy"):
        qst.mle(np.ones(16), projectors=tmp_path / "missing.npy")
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((16, 4, 4), dtype=np.float64))
    with pytest.raises(ValueError, match="bad.npy"):
        qst.mle(np.ones(16), projectors=bad)


def test_over_budget_set_has_no_file_but_still_reconstructs():
    qst.set_cache_limit(10_000)
    try:
        with pytest.raises(ValueError, match="over the cache budget of 10000 bytes"):
            qst.projectors("nopovm", 9)
        rho, info = qst.mle(np.ones(81))  # from its kets
        assert info["dim"] == 9 and np.isclose(np.trace(rho).real, 1)
    finally:
        qst.set_cache_limit(None)
