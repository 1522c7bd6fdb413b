"""Shared setup: a fresh projector cache directory for the whole session (set
before `qst` makes its process-wide cache), the real `qst` binary, and a
helper that makes counts from a state."""

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

_CACHE = tempfile.mkdtemp(prefix="qst-pytest-cache-")
os.environ["QST_CACHE_DIR"] = _CACHE
os.environ.pop("QST_MAX_CACHE_BYTES", None)

REPO = Path(__file__).resolve().parents[2]


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def cache_dir():
    return Path(_CACHE)


@pytest.fixture(scope="session")
def qst_bin():
    path = os.environ.get("QST_BIN") or str(REPO / "target" / "release" / "qst")
    assert os.access(path, os.X_OK), f"the qst binary {path} is missing: cargo build --release"
    return path


def random_state(n, rank, rng):
    g = rng.normal(size=(n, rank)) + 1j * rng.normal(size=(n, rank))
    rho = g @ g.conj().T
    return rho / np.trace(rho).real


def counts_for(P, rho, shots, rng):
    """Poisson counts with means shots·Tr(Π_k ρ) for a (K, n, n) set P."""
    p = np.einsum("kab,ba->k", P, rho).real
    return rng.poisson(shots * np.clip(p, 0, None)).astype(np.int64)
