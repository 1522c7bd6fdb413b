"""Writes the analysis fixture: noisy generalized Bell states of two qudits,
their Poisson counts on the `nopovm` set, their targets in the three forms
qst reads, and a JSON Lines batch over them. Built from the formulas alone
(independent of qst's Rust code).

usage: analysis_fixture.py OUTDIR
Writes OUTDIR/batch.jsonl and OUTDIR/expected.json ({id: a*m + b}); the counts
of each state also as column `<id>` of OUTDIR/m2.csv (the m = 2 states)."""
import json
import sys

import numpy as np

from nopovm import nopovm, probabilities


def bell_ket(m, a, b):
    """|B_ab> = sum_j w^(a j) |j>|(j+b) mod m> / sqrt(m), |i>|j> = e_(i m + j)."""
    w = np.exp(2j * np.pi / m)
    v = np.zeros(m * m, complex)
    for j in range(m):
        v[j * m + (j + b) % m] = w ** (a * j) / np.sqrt(m)
    return v


out = sys.argv[1]
rng = np.random.default_rng(12)
lines, expected, columns = [], {}, []
for m, a, b, fmt in [(2, 1, 1, "text"), (2, 0, 1, "ket"), (3, 2, 1, "rho"), (4, 1, 3, "text")]:
    n = m * m
    psi = bell_ket(m, a, b)
    # A target slightly off the Bell state: a random global phase and a
    # small admixture, so that F(rho, target) is informative.
    t = psi * np.exp(1j * rng.uniform(-np.pi, np.pi)) + 0.05 * (rng.normal(size=n) + 1j * rng.normal(size=n))
    t /= np.linalg.norm(t)
    ident = f"bell-m{m}-{a}{b}"
    if fmt == "text":
        # amplitude,phase (units of pi), scaled: qst normalizes.
        with open(f"{out}/{ident}.target.txt", "w") as f:
            f.write("# amplitude,phase\n")
            for z in 3 * t:
                f.write(f"{float(abs(z))!r},{float(np.angle(z) / np.pi)!r}\n")
        target = f"{ident}.target.txt"
    elif fmt == "ket":
        np.save(f"{out}/{ident}.ket.npy", 2 * t)
        target = f"{ident}.ket.npy"
    else:
        np.save(f"{out}/{ident}.rho.npy", np.outer(t, t.conj()))
        target = f"{ident}.rho.npy"
    # rho: 0.75 |B><B| + 0.25 of a random full-rank state (non-degenerate top eigenvalue).
    A = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
    noise = A @ A.conj().T
    noise /= np.trace(noise).real
    rho = 0.75 * np.outer(psi, psi.conj()) + 0.25 * noise
    p = probabilities(nopovm(n), rho)
    counts = rng.poisson(2e5 * p / p.sum())
    if m == 2:
        columns.append(counts)
    lines.append(json.dumps({"id": ident, "dim": n, "counts": [int(c) for c in counts],
                             "truth": target, "bell": True}))
    expected[ident] = a * m + b
with open(f"{out}/batch.jsonl", "w") as f:
    f.write("\n".join(lines) + "\n")
with open(f"{out}/expected.json", "w") as f:
    json.dump(expected, f)
np.savetxt(f"{out}/m2.csv", np.array(columns).T, fmt="%d", delimiter=",")
print(f"wrote {len(lines)} jobs to {out}/batch.jsonl")
