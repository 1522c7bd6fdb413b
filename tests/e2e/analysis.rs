//! What the lab reads off a state: targets in their three forms, the
//! generalized Bell analysis, the dominant component and bootstrap error bars,
//! from JSON Lines and count matrices, checked against numpy (`tests/py/`).

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::interop::{python, run_ok};
use crate::util::{Tmp, incarnations, job_json, nopovm_probs, test_state, write_lines};

fn by_id<'a>(rs: &'a [Value], id: &str) -> &'a Value {
    rs.iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no result for {id}"))
}

/// summary.csv as rows of named fields (its ok rows have no quoted fields).
fn summary_rows(out: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let text = fs::read_to_string(out.join("summary.csv")).unwrap();
    let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
    let header: Vec<String> = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_owned)
        .collect();
    assert!(
        header.ends_with(
            &[
                "error",
                "dominant_eigenvalue",
                "bell_max_fidelity",
                "bell_index",
                "purity_std",
                "fidelity_std",
                "bell_max_fidelity_std",
                "bootstrap"
            ]
            .map(str::to_owned)
        ),
        "{header:?}"
    );
    lines
        .filter(|l| l.contains(",ok,"))
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split(',').map(str::to_owned))
                .collect()
        })
        .collect()
}

fn check_py(mode: &str, out: &Path, extra: Option<&Path>) {
    let mut c = python("analysis_check.py");
    c.arg(mode).arg(out);
    if let Some(e) = extra {
        c.arg(e);
    }
    println!("{}", run_ok(c));
}

/// The numpy fixture: noisy Bell states for m = 2, 3, 4, targets as text,
/// ket and matrix; `"bell": true` on every line, `--spectral` as a flag.
#[test]
fn bell_spectral_and_targets_from_jsonl_agree_with_numpy() {
    let t = Tmp::new();
    run_ok({
        let mut c = python("analysis_fixture.py");
        c.arg(t.path());
        c
    });
    let ran = t
        .qst_run("batch.jsonl")
        .arg("--spectral")
        .workers(2)
        .out("out")
        .assert_ok();
    let out = t.join("out");
    let rs = ran.results();
    let expected: Value =
        serde_json::from_str(&fs::read_to_string(t.join("expected.json")).unwrap()).unwrap();
    let expected = expected.as_object().unwrap();
    assert_eq!(rs.len(), expected.len());
    for (id, index) in expected {
        let r = by_id(&rs, id);
        assert_eq!(r["status"], "ok", "{r}");
        // The Bell state the counts were made from dominates.
        assert_eq!(&r["bell_index"], index, "{r}");
        assert!(r["bell_max_fidelity"].as_f64().unwrap() > 0.7, "{r}");
        let n = r["dim"].as_u64().unwrap() as usize;
        assert_eq!(r["dominant_amplitudes"].as_array().unwrap().len(), n);
        assert_eq!(r["dominant_phases"].as_array().unwrap().len(), n);
        assert!(r["fidelity"].as_f64().unwrap() > 0.5, "{r}");
        assert!(r.get("bootstrap").is_none(), "{r}");
    }
    check_py("bell", &out, None);
    check_py("spectral", &out, None);
    check_py("target", &out, Some(t.path()));

    let rows = summary_rows(&out);
    assert_eq!(rows.len(), expected.len());
    for row in rows {
        let r = by_id(&rs, &row["id"]);
        assert_eq!(
            row["dominant_eigenvalue"].parse::<f64>().unwrap(),
            r["dominant_eigenvalue"].as_f64().unwrap()
        );
        assert_eq!(
            row["bell_max_fidelity"].parse::<f64>().unwrap(),
            r["bell_max_fidelity"].as_f64().unwrap()
        );
        assert_eq!(row["bell_index"], r["bell_index"].to_string());
        assert_eq!(row["bootstrap"], "");
    }
    let summary = ran.summary();
    for d in summary["by_dimension"].as_array().unwrap() {
        assert!(d["mean_dominant_eigenvalue"].is_f64(), "{d}");
        assert!(d["mean_bell_max_fidelity"].as_f64().unwrap() > 0.7, "{d}");
        assert!(d.get("mean_purity_std").is_none(), "{d}");
    }
}

/// `--bell`, `--spectral`, `--truth` (the lab's text form) and `--bootstrap`
/// apply to every column of a count matrix; a matrix whose n is not a square
/// is refused.
#[test]
fn flags_apply_to_count_matrices() {
    let t = Tmp::new();
    run_ok({
        let mut c = python("analysis_fixture.py");
        c.arg(t.path());
        c
    });
    let target = t.join("bell-m2-11.target.txt");
    let ran = t
        .qst_run("m2.csv")
        .args(["--bell", "--spectral", "--truth"])
        .arg(&target)
        .args(["--bootstrap", "20"])
        .out("out")
        .assert_ok();
    let out = t.join("out");
    let rs = ran.results();
    assert_eq!(rs.len(), 2);
    // Column 1 holds the counts of B_{1,1}, column 2 those of B_{0,1}.
    for r in &rs {
        let index = if r["line"] == 1 { 3 } else { 1 };
        assert_eq!(r["status"], "ok", "{r}");
        assert_eq!(r["bell_index"], index, "{r}");
        assert!(r["dominant_eigenvalue"].as_f64().unwrap() > 0.7, "{r}");
        assert!(r["fidelity"].is_f64(), "{r}");
        assert_eq!(r["bootstrap"], 20, "{r}");
        for k in ["purity_std", "fidelity_std", "bell_max_fidelity_std"] {
            assert!(r[k].as_f64().is_some_and(|s| s > 0.0), "{k}: {r}");
        }
    }
    check_py("bell", &out, None);
    check_py("spectral", &out, None);
    check_py("target", &out, Some(&target));
    let rows = summary_rows(&out);
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .all(|r| r["bootstrap"] == "20" && !r["fidelity_std"].is_empty())
    );

    // n = 3 (9 rows): not m².
    let rows: String = (0..9).map(|k| format!("{}\n", 10 + k)).collect();
    fs::write(t.join("n3.csv"), rows).unwrap();
    let err = t
        .qst_run("n3.csv")
        .arg("--bell")
        .out("out3")
        .assert_exit(2)
        .stderr;
    assert!(
        err.contains("--bell: dimension 3 is not a square m² (m ≥ 2)"),
        "{err}"
    );
}

/// Bad targets and Bell dimensions are errors of their line, one sentence
/// naming it and the field; the other lines run.
#[test]
fn bad_targets_and_bell_dimensions_are_errors_of_their_line() {
    let t = Tmp::new();
    let c4: Vec<f64> = nopovm_probs(4, &test_state(4, 1))
        .iter()
        .map(|p| (p * 1e4).round())
        .collect();
    let c6: Vec<f64> = nopovm_probs(6, &test_state(6, 1))
        .iter()
        .map(|p| (p * 1e4).round())
        .collect();
    fs::write(t.join("three.txt"), "1,0\n1,0.5\n1,1\n").unwrap();
    fs::write(t.join("zero.txt"), "0,0\n0,0\n0,0.5\n0,1\n").unwrap();
    fs::write(t.join("good.txt"), "1,0\n0,0\n0,0\n1,0.25\n").unwrap();
    // 0.6·I: Hermitian and PSD, but of trace 2.4.
    let m: Vec<qst_math::C64> = (0..16)
        .map(|i| qst_math::C64::new(if i % 5 == 0 { 0.6 } else { 0.0 }, 0.0))
        .collect();
    qst_npy::write_c16(&t.join("trace.npy"), &[4, 4], &m).unwrap();
    write_lines(
        &t.join("b.jsonl"),
        &[
            job_json("six", 6, &c6, r#","bell":true"#),
            job_json("three", 4, &c4, r#","truth":"three.txt""#),
            job_json("zero", 4, &c4, r#","truth":"zero.txt""#),
            job_json("trace", 4, &c4, r#","truth":"trace.npy""#),
            job_json("good", 4, &c4, r#","truth":"good.txt","bell":true"#),
        ],
    );
    let rs = t
        .qst_run("b.jsonl")
        .arg("--spectral")
        .out("out")
        .assert_exit(1)
        .results();
    let err = |id: &str| by_id(&rs, id)["error"].as_str().unwrap().to_owned();
    assert_eq!(
        err("six"),
        "line 1 (id \"six\"): field bell: dimension 6 is not a square m² (m ≥ 2)"
    );
    let e = err("three");
    assert!(
        e.starts_with("line 2 (id \"three\"): field truth: ")
            && e.contains("has 3 amplitude,phase lines, but dim 4 needs 4"),
        "{e}"
    );
    let e = err("zero");
    assert!(
        e.starts_with("line 3 (id \"zero\"): field truth: ") && e.contains("zero"),
        "{e}"
    );
    let e = err("trace");
    assert!(
        e.starts_with("line 4 (id \"trace\"): field truth: ") && e.contains("trace"),
        "{e}"
    );
    let good = by_id(&rs, "good");
    assert_eq!(good["status"], "ok", "{good}");
    assert!(good["bell_max_fidelity"].is_f64() && good["dominant_eigenvalue"].is_f64());
    check_py("target", &t.join("out"), Some(&t.join("good.txt")));
}

/// Writes `truth.npy` (`test_state(4`, 3)) and `counts.npy` (Poisson, N ≈ shots).
fn bootstrap_fixture(dir: &Path, shots: f64) {
    use rand::SeedableRng;
    use rand_distr::{Distribution, Poisson};
    let truth = test_state(4, 3);
    let z: Vec<qst_math::C64> = truth
        .iter()
        .map(|&(re, im)| qst_math::C64::new(re, im))
        .collect();
    qst_npy::write_c16(&dir.join("truth.npy"), &[4, 4], &z).unwrap();
    let p = nopovm_probs(4, &truth);
    let s: f64 = p.iter().sum();
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let counts: Vec<i64> = p
        .iter()
        .map(|x| Poisson::new(shots * x / s).unwrap().sample(&mut rng) as i64)
        .collect();
    qst_npy::write_i8(&dir.join("counts.npy"), &counts).unwrap();
}

/// qst's bootstrap error bars agree with numpy's own bootstrap (its own
/// random numbers and linear inversion) within sampling error.
#[test]
fn bootstrap_std_agrees_with_a_numpy_bootstrap() {
    let t = Tmp::new();
    bootstrap_fixture(t.path(), 3000.0);
    fs::write(
        t.join("b.jsonl"),
        "{\"id\":\"x\",\"dim\":4,\"counts_npy\":\"counts.npy\",\"truth\":\"truth.npy\",\"method\":\"linear\"}\n",
    )
    .unwrap();
    let ran = t
        .qst_run("b.jsonl")
        .args(["--bootstrap", "200", "--bell"])
        .workers(2)
        .out("out")
        .assert_ok();
    let out = t.join("out");
    let rs = ran.results();
    let r = by_id(&rs, "x");
    assert_eq!(r["bootstrap"], 200, "{r}");
    assert_eq!(r["bootstrap_failed"], 0, "{r}");
    for k in ["purity_std", "fidelity_std", "bell_max_fidelity_std"] {
        assert!(r[k].as_f64().is_some_and(|s| s > 0.0), "{k}: {r}");
    }
    let rows = summary_rows(&out);
    assert_eq!(rows[0]["bootstrap"], "200");
    assert_eq!(
        rows[0]["purity_std"].parse::<f64>().unwrap(),
        r["purity_std"].as_f64().unwrap()
    );
    assert!(!rows[0]["fidelity_std"].is_empty() && !rows[0]["bell_max_fidelity_std"].is_empty());
    // summary.json: per dimension, the means over its jobs (here one).
    let summary = ran.summary();
    let d = &summary["by_dimension"][0];
    for k in [
        "purity_std",
        "fidelity_std",
        "bell_max_fidelity_std",
        "bell_max_fidelity",
    ] {
        assert_eq!(d[format!("mean_{k}")], r[k], "{k}: {d}");
    }
    assert_eq!(d["bootstrap_failed"], 0, "{d}");
    let mut c = python("bootstrap_check.py");
    c.arg(&out)
        .arg("x")
        .arg(t.join("counts.npy"))
        .arg(t.join("truth.npy"))
        .arg("200");
    println!("{}", run_ok(c));
}

fn bootstrap_figures(t: &Tmp, out: &str, workers: usize, seed: &str) -> Vec<(String, String)> {
    let mut rs = t
        .qst_run("b.jsonl")
        .args(["--bootstrap", "30", "--seed", seed, "--bell"])
        .workers(workers)
        .out(out)
        .assert_ok()
        .results();
    rs.sort_by_key(|r| r["line"].as_u64());
    rs.iter()
        .map(|r| {
            assert_eq!(r["status"], "ok", "{r}");
            let figs = ["purity_std", "fidelity_std", "bell_max_fidelity_std"]
                .map(|k| r[k].to_string())
                .join(" ");
            (r["id"].as_str().unwrap().to_owned(), figs)
        })
        .collect()
}

/// The same seed gives the same figures with 1 or 2 workers; another seed
/// other figures.
#[test]
fn same_seed_same_bootstrap_figures_whatever_the_workers() {
    let t = Tmp::new();
    bootstrap_fixture(t.path(), 5000.0);
    let lines: Vec<String> = (0..3)
        .map(|i| {
            let m = ["mle", "linear", "wls"][i];
            format!(
                "{{\"id\":\"s{i}\",\"dim\":4,\"counts_npy\":\"counts.npy\",\"truth\":\"truth.npy\",\"method\":\"{m}\"}}"
            )
        })
        .collect();
    write_lines(&t.join("b.jsonl"), &lines);
    let one = bootstrap_figures(&t, "one", 1, "7");
    let two = bootstrap_figures(&t, "two", 2, "7");
    assert_eq!(one, two);
    let other = bootstrap_figures(&t, "other", 2, "8");
    for (a, b) in one.iter().zip(&other) {
        assert_ne!(a.1, b.1, "seeds 7 and 8 gave the same figures");
    }
    // The supervisor logs each job's bootstrap.
    let t2 = fs::read_to_string(t.join("two/logs/supervisor.log")).unwrap();
    assert!(t2.contains("bootstrap line=1 id=s0"), "{t2}");
}

/// The 40 resamples of a single job are shared by both workers.
#[test]
fn one_jobs_resamples_spread_over_every_worker() {
    let t = Tmp::new();
    let p = nopovm_probs(16, &test_state(16, 2));
    let s: f64 = p.iter().sum();
    let counts: Vec<f64> = p.iter().map(|x| (x / s * 1e5).round()).collect();
    write_lines(&t.join("b.jsonl"), &[job_json("one", 16, &counts, "")]);
    let ran = t
        .qst_run("b.jsonl")
        .args(["--bootstrap", "40"])
        .workers(2)
        .out("out")
        .assert_ok();
    let rs = ran.results();
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0]["bootstrap"], 40, "{}", rs[0]);
    // summary.json: the tasks each worker ran.
    let summary = ran.summary();
    let jobs: Vec<u64> = summary["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["jobs"].as_u64().unwrap())
        .collect();
    assert_eq!(jobs.len(), 2, "{summary}");
    assert!(jobs.iter().all(|&j| j > 0), "one worker idle: {jobs:?}");
    // The job, then its 40 resamples as 2 tasks of 20: with both workers
    // busy, each ran a part of the one job.
    assert_eq!(jobs.iter().sum::<u64>(), 3);
}

/// Nothing of a job is written before all its resamples are in: interrupted
/// during its bootstrap, the job has no result line; the resume runs it whole.
#[test]
fn interrupted_bootstrap_writes_nothing_and_resume_reruns_the_job() {
    use crate::util::{LONG, poll};
    let t = Tmp::new();
    // A state whose resamples iterate: about a second of resamples.
    t.generate("b.jsonl", "8", 1, 3);
    let cmd = t
        .qst_run("b.jsonl")
        .args(["--bootstrap", "4000"])
        .workers(2)
        .out("out");
    let mut run = cmd.spawn();
    let log = t.join("out/logs/supervisor.log");
    poll("the bootstrap to start", LONG, || {
        fs::read_to_string(&log)
            .ok()
            .filter(|l| l.contains("bootstrap line=2 id=n8-0000"))
    });
    run.signal(nix::sys::signal::Signal::SIGINT);
    let ran = run.assert_exit(130);
    let err = &ran.stderr;
    assert!(err.contains("--bootstrap 4000"), "resume command: {err}");
    assert!(ran.results().is_empty());

    let rs = cmd.resume().assert_ok().results();
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0]["bootstrap"], 4000, "{}", rs[0]);
}

/// A resample that cannot be reconstructed (here: all its counts drawn 0,
/// from counts that are probabilities, N = 1) is counted, not fatal.
#[test]
fn failed_resamples_are_counted() {
    let t = Tmp::new();
    let p = nopovm_probs(2, &test_state(2, 1));
    let s: f64 = p.iter().sum();
    let probs: Vec<f64> = p.iter().map(|x| x / s).collect();
    write_lines(&t.join("b.jsonl"), &[job_json("p", 2, &probs, "")]);
    let rs = t
        .qst_run("b.jsonl")
        .args(["--bootstrap", "40"])
        .out("out")
        .assert_ok()
        .results();
    let r = &rs[0];
    assert_eq!(r["status"], "ok", "{r}");
    let failed = r["bootstrap_failed"].as_u64().unwrap();
    // P(all four counts 0) = e^{-1}: about 15 of 40.
    assert!(failed > 0 && failed < 40, "{r}");
    assert!(r["purity_std"].as_f64().is_some_and(|s| s > 0.0), "{r}");
    let log = fs::read_to_string(t.join("out/logs/supervisor.log")).unwrap();
    assert!(log.contains("counts are all zero"), "{log}");
}

/// A worker killed during a job's bootstrap: its task is run again, and the
/// figures are those of an undisturbed run with the same seed.
#[test]
fn a_worker_killed_during_the_bootstrap_changes_no_figure() {
    use crate::util::{LONG, poll, worker_pids};
    let t = Tmp::new();
    // A state whose resamples iterate: about a second of resamples.
    t.generate("b.jsonl", "8", 1, 4);
    let cmd = t
        .qst_run("b.jsonl")
        .args(["--bootstrap", "4000"])
        .workers(2);
    let calm = cmd.clone().out("calm").assert_ok().results();
    let mut run = cmd.out("killed").spawn();
    poll("the bootstrap to start", LONG, || {
        fs::read_to_string(t.join("killed/logs/supervisor.log"))
            .ok()
            .filter(|l| l.contains("bootstrap line=2 id=n8-0000"))
    });
    let pid = worker_pids(&t.join("killed/logs/worker-0.log"))[0];
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let ran = run.assert_exit(0);
    let killed = ran.results();
    assert_eq!(killed.len(), 1);
    assert_eq!(killed[0]["bootstrap_failed"], 0, "{}", killed[0]);
    assert_eq!(calm[0]["purity_std"], killed[0]["purity_std"]);
    assert_eq!(calm[0]["purity"], killed[0]["purity"]);
    // summary.json: slot 0's first worker died of the signal.
    let incs = incarnations(ran.out());
    assert!(incs.contains(&(0, pid, "signal 9".to_string())), "{incs:?}");
    // Its task ran again: on the slot's replacement, or (the restart backs
    // off after a death) on the other worker; either way the figures above
    // are the undisturbed run's.
}

/// A job that asked for a bootstrap and timed out: its error is written and
/// the worker that waited for its resamples stops (the run ends).
#[test]
fn a_timed_out_job_with_a_bootstrap_ends_the_run() {
    use crate::util::slow_job;
    let t = Tmp::new();
    write_lines(&t.join("b.jsonl"), &[slow_job("slow")]);
    let mut run = t
        .qst_run("b.jsonl")
        .args(["--bootstrap", "10"])
        .workers(2)
        .job_timeout(1)
        .out("out")
        .small_cache()
        .spawn();
    let rs = run.assert_exit(1).results();
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0]["status"], "error", "{}", rs[0]);
}
