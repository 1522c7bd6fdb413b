#!/usr/bin/env python3
"""Checks qst's `wls` against an independent minimizer (numpy + scipy).

Usage: wls_check.py DIR

Reads DIR/cases.json (written by `cargo run --release -p qst-math --example
wls_cases -- DIR`): a list of cases with `design` ("nopovm" or "mub"), `n`,
`counts`, qst's `rho` ([[[re, im], ...], ...]) and `objective`. For each case:

  * numpy's chi^2 of qst's rho equals qst's objective to 1e-9 relative;
  * scipy's L-BFGS-B (numerical gradient) over rho = A A^dagger / Tr, from
    several starts, finds no chi^2 below qst's by more than 1e-9 relative.

chi^2(rho) = sum_k (f_k - p_k)^2 / max(p_k, 1e-12), p_k = Tr(Pi_k rho), with
f_k = c_k / N_g per basis for mub and f_k = c_k / (c_0 + ... + c_{n-1}) for
nopovm. Written from that definition alone. Prints one line per case and
`N passed, M failed` last; exits 1 on any failure.
"""

import json
import sys

import numpy as np
from scipy.optimize import minimize


def nopovm_kets(n):
    kets = []
    for k in range(n):
        e = np.zeros(n, complex)
        e[k] = 1
        kets.append(e)
    s = 1 / np.sqrt(2)
    for i in range(n):
        for j in range(i + 1, n):
            a = np.zeros(n, complex)
            a[i], a[j] = s, s
            b = np.zeros(n, complex)
            b[i], b[j] = s, -1j * s
            kets += [a, b]
    return np.array(kets)


def mub3_kets():
    """Group 0: computational basis; group 1 + c, member g:
    psi[a] = w^((c a^2 + g a) mod 3) / sqrt(3), w = exp(2 pi i / 3)."""
    w = np.exp(2j * np.pi / 3)
    kets = [np.eye(3, dtype=complex)[k] for k in range(3)]
    for c in range(3):
        for g in range(3):
            kets.append(np.array([w ** ((c * a * a + g * a) % 3) for a in range(3)]) / np.sqrt(3))
    return np.array(kets)


def frequencies(design, n, counts):
    c = np.asarray(counts, float)
    if design == "nopovm":
        return c / c[:n].sum()
    f = c.copy()
    for g in range(n + 1):
        f[g * n:(g + 1) * n] /= c[g * n:(g + 1) * n].sum()
    return f


def chi2(kets, f, rho):
    p = np.einsum("ka,ab,kb->k", kets.conj(), rho, kets).real
    return float(np.sum((f - p) ** 2 / np.maximum(p, 1e-12)))


def rho_of(x, n):
    a = (x[: n * n] + 1j * x[n * n:]).reshape(n, n)
    r = a @ a.conj().T
    return r / np.trace(r).real


def factor(rho):
    lam, u = np.linalg.eigh((rho + rho.conj().T) / 2)
    a = u * np.sqrt(np.maximum(lam, 0))
    return np.concatenate([a.real.ravel(), a.imag.ravel()])


def scipy_best(kets, f, n, rho_qst, rng):
    starts = [factor(np.eye(n) / n), factor(rho_qst)]
    starts += [rng.standard_normal(2 * n * n) for _ in range(3)]
    best = np.inf
    for x0 in starts:
        res = minimize(
            lambda x: chi2(kets, f, rho_of(x, n)),
            x0,
            method="L-BFGS-B",
            options={"maxiter": 20000, "maxfun": 10**6, "ftol": 1e-16, "gtol": 1e-12},
        )
        best = min(best, res.fun, chi2(kets, f, rho_of(res.x, n)))
    return best


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        print("0 passed, 1 failed")
        return 1
    with open(f"{sys.argv[1]}/cases.json") as fh:
        cases = json.load(fh)
    rng = np.random.default_rng(7)
    passed = failed = 0
    for i, case in enumerate(cases):
        n, design = case["n"], case["design"]
        kets = nopovm_kets(n) if design == "nopovm" else mub3_kets()
        if design == "mub" and n != 3:
            print(f"case {i}: FAIL (only mub n = 3 is built here)")
            failed += 1
            continue
        f = frequencies(design, n, case["counts"])
        rho = np.array([[complex(re, im) for re, im in row] for row in case["rho"]])
        ours = chi2(kets, f, rho)
        obj = case["objective"]
        ok_obj = abs(ours - obj) <= 1e-9 * abs(obj) + 1e-25
        best = scipy_best(kets, f, n, rho, rng)
        ok_min = best >= obj * (1 - 1e-9) - 1e-25
        ok = ok_obj and ok_min
        print(
            f"case {i} ({design} n={n}): {'ok' if ok else 'FAIL'}: qst chi2 {obj:.12e} "
            f"(numpy {ours:.12e}), scipy best {best:.12e}, "
            f"qst iterations {case['iterations']}, converged {case['converged']}"
        )
        passed += ok
        failed += not ok
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
