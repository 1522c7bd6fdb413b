"""The module against the real `qst` binary: the same jobs give the same ρ
(to 1e-12) and the same result fields, and run/load go through the binary."""

import json
import subprocess

import numpy as np
import pytest

import qst
from conftest import counts_for, random_state

FIELDS = ["purity", "trace", "rank", "min_eigenvalue", "max_eigenvalue", "eigenvalue_entropy"]


def make_jobs(tmp_path):
    rng = np.random.default_rng(14)
    jobs = []
    for design, n, method in [
        ("nopovm", 2, "mle"),
        ("nopovm", 3, "mle"),
        ("nopovm", 4, "mle"),
        ("nopovm", 8, "mle"),
        ("nopovm", 4, "linear"),
        ("mub", 3, "mle"),
        ("mub", 4, "mle"),
        ("mub", 5, "linear"),
        ("sic", 2, "mle"),
    ]:
        rho = random_state(n, 2, rng)
        c = counts_for(qst.projectors(design, n), rho, 2000, rng)
        truth = tmp_path / f"truth-{design}-{n}-{method}.npy"
        np.save(truth, rho)
        jobs.append(
            {
                "id": f"{design}-{n}-{method}",
                "dim": n,
                "design": design,
                "method": method,
                "counts": c.tolist(),
                "truth": str(truth),
            }
        )
    # A custom set: the mub n = 3 set in a rotated frame, as a file.
    u, _ = np.linalg.qr(rng.normal(size=(3, 3)) + 1j * rng.normal(size=(3, 3)))
    P = np.einsum("ab,kbc,dc->kad", u, qst.projectors("mub", 3), u.conj())
    custom = tmp_path / "custom.npy"
    np.save(custom, np.ascontiguousarray(P))
    rho = random_state(3, 1, rng)
    for method in ["mle", "linear"]:
        jobs.append(
            {
                "id": f"custom-{method}",
                "dim": 3,
                "method": method,
                "projectors": str(custom),
                "counts": counts_for(P, rho, 5000, rng).tolist(),
            }
        )
    return jobs


def in_process(job, projectors=None):
    fn = qst.mle if job["method"] == "mle" else qst.linear
    kw = {"truth": job["truth"]} if "truth" in job else {}
    if "projectors" in job:
        kw["projectors"] = projectors if projectors is not None else job["projectors"]
    else:
        kw["design"] = job["design"]
    return fn(np.array(job["counts"]), **kw)


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, qst_bin):
    tmp = tmp_path_factory.mktemp("cli")
    jobs = make_jobs(tmp)
    batch = tmp / "batch.jsonl"
    batch.write_text("".join(json.dumps(j) + "\n" for j in jobs))
    out = tmp / "out"
    proc = subprocess.run(
        [qst_bin, "run", str(batch), "--out", str(out), "--workers", "2"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    results = {}
    for line in (out / "results.jsonl").read_text().splitlines():
        r = json.loads(line)
        results[r["id"]] = r
    return jobs, out, results


def test_same_rho_and_fields_as_the_cli(cli_run):
    jobs, out, results = cli_run
    assert len(results) == len(jobs)
    for job in jobs:
        r = results[job["id"]]
        assert r["status"] == "ok", r
        want = np.load(out / r["rho"])
        rho, info = in_process(job)
        assert rho.dtype == np.complex128 and rho.shape == want.shape
        assert np.max(np.abs(rho - want)) <= 1e-12, job["id"]
        assert info["method"] == r["method"] and info["dim"] == r["dim"]
        assert info["design"] == r["design"]
        assert info["iterations"] == r["iterations"]
        assert info["converged"] == r["converged"]
        assert info["log_likelihood"] == pytest.approx(r["log_likelihood"], rel=1e-12, abs=1e-12)
        for f in FIELDS + (["fidelity"] if "truth" in job else []):
            if f in r:
                assert info[f] == pytest.approx(r[f], rel=1e-9, abs=1e-12), (job["id"], f)


def test_custom_array_gives_the_cli_result(cli_run):
    jobs, out, results = cli_run
    for job in [j for j in jobs if "projectors" in j]:
        P = np.load(job["projectors"])  # an in-memory array, not the file
        rho, info = in_process(job, projectors=P)
        assert info["design"] == "custom"
        assert np.max(np.abs(rho - np.load(out / results[job["id"]]["rho"]))) <= 1e-12


def test_run_and_load(tmp_path, qst_bin):
    jobs = make_jobs(tmp_path)
    jobs.append({"id": "bad", "dim": 4, "counts": [1, 2, 3]})
    results, rho = qst.run(jobs, out=tmp_path / "out", workers=2, qst_binary=qst_bin)
    assert [r["id"] for r in results] == [j["id"] for j in jobs]
    bad = results[-1]
    assert bad["status"] == "error" and "counts has 3 entries" in bad["error"]
    for n, stack in rho.items():
        ok = [r for r in results if r["status"] == "ok" and r["dim"] == n]
        assert stack.shape == (len(ok), n, n) and stack.dtype == np.complex128
        for i, r in enumerate(ok):
            job = next(j for j in jobs if j["id"] == r["id"])
            assert np.max(np.abs(stack[i] - in_process(job)[0])) <= 1e-12
    again, rho2 = qst.load(tmp_path / "out")
    assert again == results and rho2.keys() == rho.keys()


def test_run_with_options_and_a_batch_file(tmp_path, qst_bin, monkeypatch):
    rng = np.random.default_rng(3)
    c = counts_for(qst.projectors("nopovm", 4), random_state(4, 1, rng), 1000, rng)
    csv = tmp_path / "lab.csv"
    csv.write_text("\n".join(str(x) for x in c) + "\n")
    monkeypatch.setenv("QST_BIN", qst_bin)
    results, rho = qst.run(csv, method="linear", workers=1)
    assert (tmp_path / "lab.qst" / "results.jsonl").exists()
    assert [r["method"] for r in results] == ["linear"]
    want, _ = qst.linear(c)
    assert np.max(np.abs(rho[4][0] - want)) <= 1e-12


def test_run_that_cannot_start_raises(tmp_path, qst_bin):
    with pytest.raises(RuntimeError, match="status 2"):
        qst.run(tmp_path / "missing.jsonl", qst_binary=qst_bin)
    with pytest.raises(FileNotFoundError, match="qst binary"):
        qst.run([], qst_binary=str(tmp_path / "nope"))
