"""Bell analysis and the dominant component, against numpy built from the
written definitions: |B_ab> = sum_j w^(a j) |j>|(j+b) mod m> / sqrt(m)."""
import numpy as np
import pytest

import qst


def bell_ket(m, a, b):
    w = np.exp(2j * np.pi / m)
    v = np.zeros(m * m, complex)
    for j in range(m):
        v[j * m + (j + b) % m] = w ** (a * j)
    return v / np.sqrt(m)


@pytest.mark.parametrize("m", [2, 3, 4])
def test_bell_overlaps_match_numpy(m):
    rng = np.random.default_rng(m)
    a, b = 1, m - 1
    psi = bell_ket(m, a, b)
    noise = rng.normal(size=(m * m, m * m)) + 1j * rng.normal(size=(m * m, m * m))
    noise = noise @ noise.conj().T
    rho = 0.8 * np.outer(psi, psi.conj()) + 0.2 * noise / np.trace(noise).real
    got = qst.bell(rho)
    want = [
        float(np.real(bell_ket(m, x, y).conj() @ rho @ bell_ket(m, x, y)))
        for x in range(m)
        for y in range(m)
    ]
    assert np.allclose(got["bell_fidelities"], want, atol=1e-12)
    assert got["bell_index"] == a * m + b
    assert got["bell_max_fidelity"] == pytest.approx(max(want), abs=1e-12)
    assert got["bell_min_fidelity"] == pytest.approx(min(want), abs=1e-12)


def test_bell_needs_a_square_dimension():
    with pytest.raises(ValueError, match="not a square"):
        qst.bell(np.eye(6) / 6)


def test_dominant_component_matches_numpy_eigh():
    rng = np.random.default_rng(5)
    n = 5
    v = rng.normal(size=n) + 1j * rng.normal(size=n)
    v /= np.linalg.norm(v)
    rho = 0.9 * np.outer(v, v.conj()) + 0.1 * np.eye(n) / n
    got = qst.spectral(rho)
    ev, U = np.linalg.eigh(rho)
    top = U[:, -1]
    assert got["dominant_eigenvalue"] == pytest.approx(ev[-1], abs=1e-12)
    assert np.allclose(got["dominant_amplitudes"], np.abs(top), atol=1e-10)
    ref = np.angle(top) - np.angle(top[0])
    want = (ref / np.pi + 1) % 2 - 1
    want[want == -1] = 1
    assert np.allclose(np.exp(1j * np.pi * np.array(got["dominant_phases"])), np.exp(1j * np.pi * want), atol=1e-9)
    assert got["dominant_phases"][0] == 0
