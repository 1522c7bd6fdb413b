"""Checks qst's analysis figures against numpy, from qst's files alone.

usage:
  analysis_check.py bell OUT         every result with bell_max_fidelity: the
                                     Bell overlaps recomputed from rho/<id>.npy
  analysis_check.py spectral OUT     every result with dominant_eigenvalue:
                                     numpy's eigh and the phase convention
  analysis_check.py target OUT DIR   every result with a fidelity whose line
                                     names a truth file in DIR/batch.jsonl (or
                                     --truth FILE as DIR): F recomputed
Each prints what it compared and exits 1 on a mismatch."""
import json
import os
import sys

import numpy as np


def results(out):
    with open(f"{out}/results.jsonl") as f:
        return [json.loads(l) for l in f if l.strip()]


def load_rho(out, r):
    rho = np.load(f"{out}/{r['rho']}")
    assert rho.dtype == np.complex128 and rho.shape == (r["dim"], r["dim"])
    return rho


def bell_fidelities(rho):
    n = rho.shape[0]
    m = int(round(np.sqrt(n)))
    assert m * m == n and m >= 2
    w = np.exp(2j * np.pi / m)
    f = np.zeros(n)
    for a in range(m):
        for b in range(m):
            v = np.zeros(n, complex)
            for j in range(m):
                v[j * m + (j + b) % m] = w ** (a * j) / np.sqrt(m)
            f[a * m + b] = np.vdot(v, rho @ v).real
    return f


def psd_sqrt(a):
    w, u = np.linalg.eigh(a)
    return (u * np.sqrt(np.clip(w, 0, None))) @ u.conj().T


def fidelity(rho, sigma):
    s = psd_sqrt(rho)
    return float(np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(s @ sigma @ s), 0, None))) ** 2)


def read_target(path, n):
    """The three forms: (n, n) rho .npy, (n,) ket .npy, n lines amplitude,phase."""
    with open(path, "rb") as f:
        npy = f.read(6) == b"\x93NUMPY"
    if npy:
        t = np.load(path).astype(complex)
        if t.shape == (n, n):
            return t
    else:
        rows = [l.split(",") for l in open(path).read().splitlines()
                if l.strip() and not l.strip().startswith("#")]
        t = np.array([float(a) * np.exp(1j * np.pi * float(p)) for a, p in rows])
    assert t.shape == (n,), t.shape
    t = t / np.linalg.norm(t)
    return np.outer(t, t.conj())


def main():
    mode, out = sys.argv[1], sys.argv[2]
    checked = 0
    bad = []
    for r in results(out):
        if r["status"] != "ok":
            continue
        if mode == "bell" and "bell_max_fidelity" in r:
            f = bell_fidelities(load_rho(out, r))
            # The basis is orthonormal: the overlaps sum to Tr rho = 1.
            assert abs(f.sum() - 1) < 1e-9, f.sum()
            got = (r["bell_max_fidelity"], r["bell_index"], r["bell_min_fidelity"])
            want = (f.max(), int(f.argmax()), f.min())
            print(f"{r['id']}: qst {got}, numpy {want}")
            if abs(got[0] - want[0]) > 1e-10 or got[1] != want[1] or abs(got[2] - want[2]) > 1e-10:
                bad.append(r["id"])
            checked += 1
        elif mode == "spectral" and "dominant_eigenvalue" in r:
            w, u = np.linalg.eigh(load_rho(out, r))
            v = u[:, -1]
            amp = np.abs(v)
            ref = int(np.argmax(amp > 1e-6 * amp.max()))
            ph = np.angle(v * np.exp(-1j * np.angle(v[ref]))) / np.pi
            ph[np.isclose(ph, -1.0)] = 1.0
            ga, gp = np.array(r["dominant_amplitudes"]), np.array(r["dominant_phases"])
            assert np.all(gp > -1) and np.all(gp <= 1) and gp[ref] == 0, gp
            big = amp > 1e-3 * amp.max()
            dphase = np.abs((gp - ph + 1) % 2 - 1)[big]
            print(f"{r['id']}: eigenvalue qst {r['dominant_eigenvalue']!r} numpy {w[-1]!r}, "
                  f"max |d amplitude| {np.abs(ga - amp).max():.1e}, max |d phase| {dphase.max():.1e} pi")
            if (abs(r["dominant_eigenvalue"] - w[-1]) > 1e-10 or np.abs(ga - amp).max() > 1e-7
                    or dphase.max() > 1e-7):
                bad.append(r["id"])
            checked += 1
        elif mode == "target" and "fidelity" in r:
            where = sys.argv[3]
            if os.path.isdir(where):
                with open(f"{where}/batch.jsonl") as f:
                    line = json.loads(f.read().splitlines()[r["line"] - 1])
                path = f"{where}/{line['truth']}"
            else:
                path = where
            sigma = read_target(path, r["dim"])
            want = fidelity(load_rho(out, r), sigma)
            print(f"{r['id']}: fidelity qst {r['fidelity']!r}, numpy {want!r} ({os.path.basename(path)})")
            # sqrt of the near-zero eigenvalues of sqrt(rho) sigma sqrt(rho) for a
            # pure sigma costs numpy's direct formula ~1e-8.
            if abs(r["fidelity"] - want) > 1e-6:
                bad.append(r["id"])
            checked += 1
    print(f"{mode}: {checked} checked, {len(bad)} mismatched {bad}")
    sys.exit(0 if checked > 0 and not bad else 1)


main()
