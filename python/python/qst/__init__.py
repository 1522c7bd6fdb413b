"""qst: quantum state tomography for qudits, the qst engine in-process.

Counts in, density matrices out, on numpy arrays::

    import qst
    rho, info = qst.mle(counts, design="mub")      # n from len(counts)
    P = qst.projectors("mub", 4)                    # read-only view of the cache file

Projector sets come from one process-wide, byte-bounded cache over the same
cache directory as the ``qst`` command line ($QST_CACHE_DIR, else
$XDG_CACHE_HOME/qst, else ~/.cache/qst); every call and thread shares it.
Computations release the GIL, so a pool of Python threads runs in parallel.
Batches go through the ``qst`` binary with :func:`run`; :func:`load` reads a
run's output directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from . import _qst
from ._qst import MappedProjectors, cache_info, set_cache_limit

__all__ = [
    "MappedProjectors",
    "bell",
    "cache_info",
    "fidelity",
    "figures",
    "kets",
    "linear",
    "load",
    "mle",
    "projectors",
    "run",
    "set_cache_limit",
    "spectral",
    "wls",
]


def projectors(design, n):
    """The built-in ``design``'s set at dimension ``n``: a read-only
    complex128 (K, n, n) array over the memory-mapped cache file
    ``{design}_n{n}.npy`` (built there first if missing). No copy is made;
    the array's ``base`` keeps the map, and the cache entry, alive."""
    return _qst.projectors(str(design), _dim(n, "n"))


def kets(design, n):
    """The built-in ``design``'s kets, a complex128 (K, n) array with
    Π_k = ψ_k ψ_k† (for ``sic``, ψ carries the 1/√2 of E_k = ψψ†/2)."""
    return _qst.kets(str(design), _dim(n, "n"))


def _dim(n, what):
    if n is None:
        return None
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise ValueError(f"{what} is {n!r}, but must be an integer")
    if n < 1:
        raise ValueError(f"{what} is {n}, but must be at least 1")
    return int(n)


def _counts(counts):
    a = np.asarray(counts)
    if a.ndim != 1:
        raise ValueError(f"counts has shape {a.shape}, but must be a 1-D array")
    if a.dtype.kind not in "fiu":
        raise ValueError(f"counts has dtype {a.dtype}, but must hold real numbers")
    return np.ascontiguousarray(a, dtype=np.float64)


def _complex(a, what):
    """``a`` as complex128 in C order: itself when it already is (no copy)."""
    a = np.asarray(a)
    if a.dtype.kind not in "fiuc":
        raise ValueError(f"{what} has dtype {a.dtype}, but must hold numbers")
    return np.ascontiguousarray(a, dtype=np.complex128)


def _state(x, what):
    """An (n, n) density matrix, from itself or from an (n,) ket."""
    if isinstance(x, (str, os.PathLike)):
        x = np.load(x)
    a = _complex(x, what)
    if a.ndim == 1:
        norm = np.linalg.norm(a)
        if not np.isfinite(norm) or norm == 0:
            raise ValueError(f"{what} is a ket of norm {norm}, which cannot be normalized")
        a = a / norm
        return np.ascontiguousarray(np.outer(a, a.conj()))
    if a.ndim != 2:
        raise ValueError(
            f"{what} has shape {a.shape}, but must be an (n, n) matrix or an (n,) ket"
        )
    return a


def _projector_arg(projectors):
    """(array, path): a custom set as the native call takes it; the array is
    the caller's own when it is complex128 and C-contiguous."""
    if projectors is None:
        return None, None
    if isinstance(projectors, (str, os.PathLike)):
        return None, os.fspath(projectors)
    array = _complex(projectors, "projectors")
    if array.ndim != 3:
        raise ValueError(f"projectors has shape {array.shape}, but must be (K, n, n)")
    return array, None


def _reconstruct(method, counts, n, design, projectors, tol, max_iters, truth, validate):
    array, path = _projector_arg(projectors)
    if truth is not None:
        truth = _state(truth, "truth")
    if isinstance(max_iters, (bool, np.bool_)) or not isinstance(max_iters, (int, np.integer)):
        raise ValueError(f"max_iters is {max_iters!r}, but must be an integer")
    if max_iters < 1:
        raise ValueError(f"max_iters is {max_iters}, but must be at least 1")
    return _qst.reconstruct(
        method,
        _counts(counts),
        _dim(n, "n"),
        str(design),
        array,
        path,
        float(tol),
        int(max_iters),
        truth,
        bool(validate),
    )


def mle(
    counts,
    n=None,
    design="nopovm",
    projectors=None,
    tol=1e-8,
    max_iters=100000,
    truth=None,
    validate=True,
):
    """Maximum-likelihood reconstruction of one sample.

    ``counts``: 1-D array of K counts in the design's order (float or int).
    ``n``: the dimension; inferred from len(counts) and the design when None.
    ``design``: ``"nopovm"``, ``"mub"`` or ``"sic"``; ignored when
    ``projectors`` is given: a complex128 (K, n, n) array (used without a copy
    when C-contiguous; checked unless ``validate=False``) or a path to a
    ``.npy`` set (validated once per file, mapped through the cache).
    ``truth``: an (n, n) density matrix, an (n,) ket or a ``.npy`` path;
    adds ``fidelity`` to the info.

    Returns ``(rho, info)``: rho complex128 (n, n), info a dict of the result
    fields (iterations, converged, log_likelihood, purity, trace, rank,
    min_eigenvalue, max_eigenvalue, eigenvalue_entropy, design, dim, method,
    seconds, and fidelity when a truth is given).
    """
    return _reconstruct("mle", counts, n, design, projectors, tol, max_iters, truth, validate)


def linear(counts, n=None, design="nopovm", projectors=None, truth=None, validate=True):
    """Linear inversion of one sample (frequencies per group of the design,
    least squares, then the closest density matrix); arguments and result as
    :func:`mle` (``iterations`` and ``converged`` are None)."""
    return _reconstruct("linear", counts, n, design, projectors, 1e-8, 1, truth, validate)


def wls(counts, n=None, design="nopovm", projectors=None, max_iters=100000, truth=None, validate=True):
    """Weighted least squares as the lab's tool defines it: the density
    matrix minimizing Pearson's χ² = Σ_k (f_k − q_k)² / max(q_k, 1e-12) over
    the design's frequencies (per basis for ``mub``, relative to the
    computational basis for ``nopovm``, to the total for ``sic`` and custom
    sets). Arguments and result as :func:`mle`; ``info["objective"]`` is χ²."""
    return _reconstruct("wls", counts, n, design, projectors, 1e-8, max_iters, truth, validate)


def bell(rho):
    """Generalized Bell analysis of a two-qudit state ρ (n = m², m ≥ 2):
    |B_ab⟩ = Σ_j ω^(a·j) |j⟩|(j+b) mod m⟩ / √m. Returns a dict with
    ``bell_fidelities`` (⟨B_ab|ρ|B_ab⟩ at index a·m + b), ``bell_max_fidelity``,
    ``bell_index`` and ``bell_min_fidelity``."""
    return _qst.bell(_state(rho, "rho"))


def spectral(rho):
    """The dominant component of ρ: ``dominant_eigenvalue`` and its
    eigenvector's ``dominant_amplitudes`` and ``dominant_phases`` (units of
    π, relative to its first component of amplitude above 1e-6 of the
    largest)."""
    return _qst.spectral(_state(rho, "rho"))


def fidelity(a, b):
    """F(a, b) = (Tr √(√a b √a))² of two density matrices (or kets)."""
    return _qst.fidelity(_state(a, "a"), _state(b, "b"))


def figures(rho):
    """purity, trace, rank (eigenvalues above 1e-10), min_eigenvalue,
    max_eigenvalue and eigenvalue_entropy (nats) of an (n, n) matrix."""
    return _qst.figures(_state(rho, "rho"))


# ---------------------------------------------------------------------------
# Batches through the qst binary.


def _binary(qst_binary):
    found = qst_binary or os.environ.get("QST_BIN") or shutil.which("qst")
    if not found:
        raise FileNotFoundError(
            "the qst binary was not found: put it on PATH, set $QST_BIN or pass qst_binary="
        )
    found = os.fspath(found)
    if not (os.path.isfile(found) and os.access(found, os.X_OK)):
        raise FileNotFoundError(f"the qst binary {found} does not exist or is not executable")
    return found


def _json_value(v):
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, os.PathLike):
        return os.fspath(Path(v).resolve())
    return v


def _write_batch(jobs, directory):
    path = Path(directory) / "batch.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for job in jobs:
            if not isinstance(job, dict):
                raise ValueError(f"a batch job must be a dict, not {type(job).__name__}")
            line = {k: _json_value(v) for k, v in job.items()}
            f.write(json.dumps(line, allow_nan=False) + "\n")
    return path


def _flag(name, value):
    flag = "--" + name.replace("_", "-")
    if value is True:
        return [flag]
    if value is False or value is None:
        return []
    if isinstance(value, (list, tuple)):
        value = ",".join(str(x) for x in value)
    return [flag, os.fspath(value) if isinstance(value, os.PathLike) else str(value)]


def run(batch, out=None, workers=None, qst_binary=None, **options):
    """Runs a batch through the ``qst`` binary's supervisor and returns
    :func:`load` of its output directory.

    ``batch``: a batch file (JSON Lines or the lab's CSV), or a list of job
    dicts (``{"id": "a", "dim": 4, "counts": array, ...}``; paths in them
    should be absolute), written to a temporary JSON Lines file.
    ``out``: the output directory (default: ``<batch stem>.qst/`` beside a
    batch file, a new temporary directory for a list of jobs).
    ``options``: other ``qst run`` flags, ``method="linear"`` for
    ``--method linear``, ``resume=True`` for ``--resume``.
    The binary: ``qst_binary``, else ``$QST_BIN``, else ``qst`` on PATH.
    A run with failed jobs returns normally (their results have
    ``status == "error"``); a run that could not start raises RuntimeError.
    """
    exe = _binary(qst_binary)
    if isinstance(batch, (str, os.PathLike)):
        batch_path = Path(batch)
        if out is None:
            stem = batch_path.stem
            out = batch_path.with_name(f"{stem}.qst")
        tmp = None
    else:
        tmp = tempfile.mkdtemp(prefix="qst-batch-")
        batch_path = _write_batch(batch, tmp)
        if out is None:
            out = tempfile.mkdtemp(prefix="qst-run-")
    cmd = [exe, "run", os.fspath(batch_path), "--out", os.fspath(out)]
    if workers is not None:
        cmd += _flag("workers", workers)
    for name, value in options.items():
        cmd += _flag(name, value)
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    if proc.returncode not in (0, 1):
        lines = [l for l in proc.stderr.splitlines() if l.strip()]
        why = lines[-1] if lines else "(no message)"
        raise RuntimeError(f"qst run exited with status {proc.returncode}: {why}")
    return load(out)


def load(out):
    """Reads a run's output directory: ``(results, rho)``.

    ``results``: the dicts of ``results.jsonl`` in batch-line order.
    ``rho``: per dimension n, a complex128 (J, n, n) array stacked from
    ``rho/*.npy``; its rows follow the ``status == "ok"`` results of that
    dimension in ``results`` order.
    """
    out = Path(out)
    path = out / "results.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: {out} is not a qst output directory")
    results = []
    with open(path, encoding="utf-8") as f:
        for text in f:
            text = text.strip()
            if not text:
                continue
            try:
                results.append(json.loads(text))
            except json.JSONDecodeError:
                continue  # a torn last line of an interrupted run
    results.sort(key=lambda r: (r.get("line") or 0, r.get("method") or ""))
    mats = {}
    for r in results:
        if r.get("status") == "ok" and r.get("rho"):
            mats.setdefault(int(r["dim"]), []).append(np.load(out / r["rho"]))
    rho = {n: np.stack(ms) for n, ms in sorted(mats.items())}
    return results, rho
