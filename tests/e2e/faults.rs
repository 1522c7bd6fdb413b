//! Nothing lost: workers killed at random, SIGINT/SIGTERM and `--resume`,
//! a second signal, a worker's last log line, `--job-timeout`, a changed
//! batch, an unwritable output directory, and a supervisor killed with
//! SIGKILL. Real processes, real signals; every wait polls files or `/proc`.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::util::*;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn assert_one_ok_result_per_line(out: &Path, batch: &Path) {
    let by_line = results_by_line(out);
    let lines: BTreeSet<u64> = job_lines(batch).into_iter().collect();
    assert_eq!(
        by_line.keys().copied().collect::<BTreeSet<_>>(),
        lines,
        "result lines differ from job lines"
    );
    for r in by_line.values() {
        assert_eq!(r["status"], "ok", "{r}");
    }
}

/// Waits until the two workers' logs show that both `ids` have started.
fn poll_slow_jobs_started(logs: &Path, ids: &[&str]) {
    poll("the slow jobs to start", LONG, || {
        let started: Vec<String> = (0..2)
            .flat_map(|i| started_jobs(&logs.join(format!("worker-{i}.log"))))
            .collect();
        ids.iter()
            .all(|id| started.iter().any(|s| s == id))
            .then_some(())
    });
}

#[test]
fn kill9_of_random_workers_loses_no_job() {
    let t = Tmp::new();
    let batch = t.generate("b.jsonl", "24,32", 100, 5);
    let out = t.join("out");
    let mut run = t
        .qst_run(&batch)
        .out(&out)
        .workers(2)
        .max_retries(1000)
        .spawn();
    let sup = run.pid();
    let mut kills = 0;
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    while kills < 12 {
        // Wait for a live worker that has started a job (or the end of the run).
        let workers = poll("a running worker", LONG, || {
            if run.has_exited() {
                return Some(Vec::new());
            }
            let w = children(sup);
            (w.len() == 2).then_some(w)
        });
        if workers.is_empty() {
            break;
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let victim = workers[(rng % 2) as usize];
        if kill(Pid::from_raw(victim as i32), Signal::SIGKILL).is_ok() {
            kills += 1;
        }
        poll("the killed worker to be gone", LONG, || {
            (!alive(victim)).then_some(())
        });
        // Let some work happen between kills.
        let before = result_count(&out);
        poll("progress after a kill", LONG, || {
            (run.has_exited() || result_count(&out) > before).then_some(())
        });
    }
    let ran = run.assert_exit(0);
    assert!(
        kills >= 10,
        "only {kills} workers were killed before the batch ended"
    );
    assert_one_ok_result_per_line(ran.out(), &batch);
    // summary.json: every worker process the slots had.
    let starts = incarnations(ran.out()).len();
    // Killed slots are restarted (after a back-off that grows with a burst of
    // deaths, so near the end the surviving worker may finish the batch first).
    assert!(
        starts >= 2 + kills / 2,
        "{starts} worker starts for {kills} kills"
    );
}

#[test]
fn sigint_and_sigterm_then_resume_equal_an_uninterrupted_run() {
    let t = Tmp::new();
    let batch = t.generate("b.jsonl", "24,32", 15, 9);
    let whole = t.join("whole");
    t.qst_run(&batch).out(&whole).workers(2).assert_ok();

    let out = t.join("parts");
    let parts = t.qst_run(&batch).out(&out).workers(2);
    // SIGINT after a few results: exit 130 and the command that resumes.
    let mut run = parts.spawn();
    poll("4 results", LONG, || {
        (result_count(&out) >= 4).then_some(())
    });
    run.signal(Signal::SIGINT);
    let said = run.assert_exit(130).stderr;
    assert!(
        said.contains("--resume") && said.contains(s(&out)),
        "no resume command in {said:?}"
    );
    let after_first = result_count(&out);
    assert!(
        after_first < job_lines(&batch).len(),
        "the interrupted run finished everything"
    );

    // Resume, then SIGTERM further on: exit 143.
    let mut run = parts.clone().resume().spawn();
    poll("more results", LONG, || {
        (result_count(&out) >= after_first + 4).then_some(())
    });
    run.signal(Signal::SIGTERM);
    run.assert_exit(143);

    // Resume to the end.
    parts.resume().assert_ok();

    assert_one_ok_result_per_line(&out, &batch);
    let a = results_by_line(&whole);
    let b = results_by_line(&out);
    assert_eq!(a.len(), b.len());
    for (line, ra) in &a {
        let rb = &b[line];
        for key in [
            "id",
            "status",
            "dim",
            "method",
            "iterations",
            "converged",
            "rho",
        ] {
            assert_eq!(ra[key], rb[key], "line {line}: {key}");
        }
        let n = ra["dim"].as_u64().unwrap() as usize;
        let ma = qst_npy::read_matrix(&whole.join(ra["rho"].as_str().unwrap()), n).unwrap();
        let mb = qst_npy::read_matrix(&out.join(rb["rho"].as_str().unwrap()), n).unwrap();
        let d = ma
            .iter()
            .zip(&mb)
            .map(|(x, y)| (x - y).norm())
            .fold(0.0, f64::max);
        assert!(d < 1e-12, "line {line}: ρ differs by {d}");
    }
    // summary.csv is rebuilt from all results: a header and one row per line.
    let rows = read(&out.join("summary.csv")).lines().count();
    assert_eq!(rows, 1 + a.len());
}

#[test]
fn a_second_sigint_ends_running_jobs_at_once() {
    let t = Tmp::new();
    let batch = t.join("b.jsonl");
    let mut lines = vec![slow_job("slow-a"), slow_job("slow-b")];
    lines.extend((0..4).map(|i| quick_job(&format!("quick-{i}"), i)));
    write_lines(&batch, &lines);
    let out = t.join("out");
    let mut run = t.qst_run(&batch).out(&out).workers(2).small_cache().spawn();
    let logs = out.join("logs");
    poll_slow_jobs_started(&logs, &["slow-a", "slow-b"]);
    let pids: Vec<u32> = (0..2)
        .map(|i| worker_pids(&logs.join(format!("worker-{i}.log")))[0])
        .collect();
    run.signal(Signal::SIGINT);
    poll("the supervisor to take the first signal", LONG, || {
        read(&logs.join("supervisor.log"))
            .contains("stop dispatching")
            .then_some(())
    });
    run.signal(Signal::SIGINT);
    let ran = run.assert_exit(130);
    // The quick jobs ran before; the stopped slow ones have no result (they run on --resume).
    let ids: Vec<String> = ran
        .results()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        !ids.iter().any(|id| id.starts_with("slow")),
        "stopped jobs got results: {ids:?}"
    );
    for pid in pids {
        poll("the stopped worker to be gone", LONG, || {
            (!alive(pid)).then_some(())
        });
    }
}

#[test]
fn a_worker_killed_mid_job_leaves_a_log_naming_the_job() {
    let t = Tmp::new();
    let batch = t.join("b.jsonl");
    write_lines(&batch, &[slow_job("the-slow-one")]);
    let out = t.join("out");
    let mut run = t
        .qst_run(&batch)
        .out(&out)
        .workers(1)
        .max_retries(0)
        .small_cache()
        .spawn();
    let log = out.join("logs/worker-0.log");
    poll("the job to start", LONG, || {
        (!started_jobs(&log).is_empty()).then_some(())
    });
    let pid = worker_pids(&log)[0];
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    let ran = run.assert_exit(1);
    let text = read(&log);
    let last = text.lines().last().unwrap();
    assert!(
        last.contains("job=the-slow-one") && last.contains(&format!("pid={pid}")),
        "last line: {last}"
    );
    assert!(text.contains(&format!(
        "start job=the-slow-one line=1 dim={SLOW_DIM} method=mle"
    )));
    let r = &ran.results()[0];
    assert_eq!(r["status"], "error");
    assert_eq!(r["error"], "worker died 1 time on this job: signal 9");
    assert_eq!(
        incarnations(ran.out()),
        vec![(0, pid, "signal 9".to_string())]
    );
}

#[test]
fn a_job_over_the_timeout_gets_its_error_and_the_batch_finishes() {
    let t = Tmp::new();
    let batch = t.join("b.jsonl");
    let mut lines = vec![slow_job("too-slow")];
    lines.extend((0..6).map(|i| quick_job(&format!("q{i}"), i)));
    write_lines(&batch, &lines);
    let out = t.join("out");
    let by_line = t
        .qst_run(&batch)
        .out(&out)
        .workers(2)
        .job_timeout(1)
        .small_cache()
        .assert_exit(1)
        .by_line();
    assert_eq!(by_line.len(), 7);
    let slow = &by_line[&1];
    assert_eq!(slow["status"], "error");
    assert!(
        slow["error"].as_str().unwrap().contains("--job-timeout"),
        "{slow}"
    );
    assert!((2..=7).all(|l| by_line[&l]["status"] == "ok"));
}

#[test]
fn a_changed_batch_on_resume_and_an_unwritable_out_exit_2() {
    let t = Tmp::new();
    let batch = t.join("b.jsonl");
    write_lines(&batch, &[quick_job("a", 1), quick_job("b", 2)]);
    let out = t.join("out");
    t.qst_run(&batch).out(&out).workers(1).assert_ok();
    write_lines(
        &batch,
        &[quick_job("a", 1), quick_job("b", 2), quick_job("c", 3)],
    );
    let o = t.qst_run(&batch).out(&out).resume().assert_exit(2);
    assert!(o.stderr.contains("changed"), "{}", o.stderr);
    assert_eq!(
        result_count(&out),
        2,
        "a refused resume must not touch the results"
    );

    // An output directory that cannot be created (its parent is a file).
    fs::write(t.join("a-file"), "x").unwrap();
    let logs = t.join("logs");
    let bad = t.join("a-file/out");
    t.qst_run(&batch).out(&bad).logs(&logs).assert_exit(2);
    let workers_logged = fs::read_dir(&logs).map_or(0, std::iter::Iterator::count);
    assert_eq!(workers_logged, 0, "no worker may start");

    // An unreadable batch.
    t.qst_run(t.join("missing.jsonl"))
        .out(t.join("o2"))
        .assert_exit(2);
    assert!(!t.join("o2").exists());
}

#[test]
fn kill9_of_the_supervisor_leaves_no_worker() {
    let t = Tmp::new();
    let batch = t.join("b.jsonl");
    write_lines(&batch, &[slow_job("s1"), slow_job("s2"), quick_job("q", 1)]);
    let out = t.join("out");
    let mut run = t.qst_run(&batch).out(&out).workers(2).small_cache().spawn();
    let logs = out.join("logs");
    poll_slow_jobs_started(&logs, &["s1", "s2"]);
    let pids: Vec<u32> = (0..2)
        .map(|i| worker_pids(&logs.join(format!("worker-{i}.log")))[0])
        .collect();
    run.signal(Signal::SIGKILL);
    run.wait(LONG);
    for pid in pids {
        poll("the orphaned worker to exit", LONG, || {
            (!alive(pid)).then_some(())
        });
    }
}

/// Starts `qst run --workers 1` on three dimension-48 jobs (4000 iterations
/// each, their tolerance out of reach: about half a second a job; largest
/// dimension first, so they run first) followed by `rest`, and returns once
/// the first job has started: the window in which a test damages a file
/// the later jobs need. (run, batch, out dir, worker log)
fn start_behind_long_jobs(t: &Tmp, rest: Vec<String>) -> (Running, PathBuf, PathBuf, PathBuf) {
    let batch = t.join("b.jsonl");
    let slow = r#","max_iters":4000,"tol":1e-300"#;
    let mut lines: Vec<String> = (0..3)
        .map(|i| job_json(&format!("big{i}"), 48, &test_counts(48, i, 1e7), slow))
        .collect();
    lines.extend(rest);
    write_lines(&batch, &lines);
    let out = t.join("out");
    let run = t.qst_run(&batch).out(&out).workers(1).spawn();
    let log = out.join("logs/worker-0.log");
    poll("the first job to start", LONG, || {
        (!started_jobs(&log).is_empty()).then_some(())
    });
    (run, batch, out, log)
}

#[test]
fn a_projector_file_that_goes_bad_mid_run_is_reported_rebuilt_and_its_jobs_run() {
    let t = Tmp::new();
    let small = (0..3)
        .map(|i| job_json(&format!("small{i}"), 3, &test_counts(3, i, 1e6), ""))
        .collect();
    let (mut run, batch, out, log) = start_behind_long_jobs(&t, small);
    let file = t.join("cache/nopovm_n3.npy");
    let len = fs::metadata(&file).expect("prebuilt file").len();
    fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(len - 16)
        .unwrap();
    let ran = run.assert_exit(0);
    assert_one_ok_result_per_line(&out, &batch);
    // One worker: the first result is the first job run.
    assert!(
        ran.results()[0]["id"].as_str().unwrap().starts_with("big"),
        "dimension 48 must run first"
    );
    assert!(
        read(&log).contains("failed its checks"),
        "the bad file was not reported"
    );
    assert_eq!(
        fs::metadata(&file).unwrap().len(),
        len,
        "the file was not rebuilt"
    );
    t.qst(["cache", "verify"]).assert_ok();
}

/// A projector file that cannot be rebuilt (its path has become a non-empty
/// directory, so the atomic rename fails, even for root): the worker sees it
/// is not a file, its rebuild fails, and the set runs from its kets: every
/// job runs, and the worker's log says why there is no file.
#[test]
fn a_projector_file_that_cannot_be_rebuilt_runs_its_jobs_from_kets() {
    let t = Tmp::new();
    let mut rest: Vec<String> = (0..2)
        .map(|i| job_json(&format!("small{i}"), 3, &test_counts(3, i, 1e6), ""))
        .collect();
    rest.extend((0..2).map(|i| job_json(&format!("other{i}"), 5, &test_counts(5, i, 1e6), "")));
    let (mut run, batch, out, log) = start_behind_long_jobs(&t, rest);
    let file = t.join("cache/nopovm_n3.npy");
    assert!(file.is_file(), "prebuilt file");
    fs::remove_file(&file).unwrap();
    fs::create_dir(&file).unwrap();
    fs::write(file.join("keep"), b"x").unwrap();
    run.assert_exit(0);
    assert_one_ok_result_per_line(&out, &batch);
    assert!(
        read(&log).contains("runs from its kets"),
        "the worker did not say why the set runs without its file"
    );
    // The failed rebuilds left no temporary files behind.
    let litter: Vec<_> = fs::read_dir(t.join("cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(litter.is_empty(), "{litter:?}");
}

#[test]
fn a_job_whose_worker_dies_more_than_max_retries_times_gets_its_error() {
    let t = Tmp::new();
    let batch = t.join("b.jsonl");
    write_lines(&batch, &[slow_job("doomed"), quick_job("fine", 1)]);
    let out = t.join("out");
    let mut run = t.qst_run(&batch).out(&out).workers(1).small_cache().spawn();
    let log = out.join("logs/worker-0.log");
    // Kill each worker as soon as it has started the doomed job: the default
    // --max-retries 3 allows 3 retries, so the 4th death ends it.
    for death in 1..=4 {
        let pid = poll("the doomed job to start again", LONG, || {
            let text = read(&log);
            let starts = text
                .lines()
                .filter(|l| l.contains("start job=doomed "))
                .count();
            (starts == death)
                .then(|| worker_pids(&log).last().copied())
                .flatten()
        });
        kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
        poll("the killed worker to be gone", LONG, || {
            (!alive(pid)).then_some(())
        });
    }
    let ran = run.assert_exit(1);
    let by_line = ran.by_line();
    assert_eq!(
        by_line[&1]["error"],
        "worker died 4 times on this job: signal 9"
    );
    assert_eq!(by_line[&2]["status"], "ok");
    // Four workers died of SIGKILL, a fifth ran the rest.
    let incs = incarnations(ran.out());
    let killed = incs.iter().filter(|i| i.2 == "signal 9").count();
    assert!(killed == 4 && incs.len() >= 5, "{incs:?}");
    // The slot's log is appended by each respawned worker.
    assert!(worker_pids(&log).len() >= 5, "{:?}", worker_pids(&log));
}

/// A SIGINT that arrives while the supervisor is still reading the batch
/// (before any job is dispatched) is caught, not fatal: exit 130, the resume
/// command, no worker left, and no result line written for any job.
#[test]
fn a_sigint_while_the_batch_is_still_being_read_stops_cleanly() {
    let t = Tmp::new();
    // 150 000 lines: the first pass over them takes long enough to be hit.
    let batch = t.join("big.jsonl");
    let line = |i: usize| {
        format!(
            "{{\"id\":\"j{i}\",\"dim\":2,\"counts\":[10,20,30,{}],\"method\":\"linear\"}}\n",
            40 + i % 7
        )
    };
    fs::write(&batch, (0..150_000).map(line).collect::<String>()).unwrap();
    let out = t.join("out");
    let mut run = t.qst_run(&batch).out(&out).workers(2).spawn();
    let log = out.join("logs/supervisor.log");
    // The "run batch=" line is logged after the handler is installed and
    // before the first pass starts.
    poll("the run to start", LONG, || {
        read(&log).contains("run batch=").then_some(())
    });
    run.signal(Signal::SIGINT);
    let said = run.assert_exit(130).stderr;
    assert!(said.contains("--resume"), "{said}");
    assert!(
        result_count(&out) < 150_000,
        "the interrupted run finished everything"
    );
    // Any worker that was started has exited: those the logs name, and
    // those summary.json lists when the run got as far as writing it.
    let logs = out.join("logs");
    let mut pids: Vec<u32> = (0..2)
        .flat_map(|slot| worker_pids(&logs.join(format!("worker-{slot}.log"))))
        .collect();
    if out.join("summary.json").is_file() {
        pids.extend(incarnations(&out).iter().map(|i| i.1));
    }
    for pid in pids {
        poll("the worker to exit", LONG, || (!alive(pid)).then_some(()));
    }
}

/// A worker killed (kill -9) while it holds two or more jobs: the one it
/// runs and quick jobs sent behind it (a worker whose last job was quick
/// gets its next ones before the current one ends). The death counts
/// against the job it ran (here its error, with `--max-retries 0`); the jobs
/// behind it go back to the queue uncounted and run on the next worker.
/// Every line ends exactly once, and every ρ matches the state its counts
/// came from.
#[test]
fn a_worker_killed_with_two_jobs_in_flight_loses_neither() {
    let t = Tmp::new();
    let batch = t.join("b.jsonl");
    // Dimension 64 first (largest first), in line order: three quick linear
    // inversions, then the slow job; then the n = 4 jobs (lines 5 to 8).
    let mut lines: Vec<String> = (0..3)
        .map(|i| {
            job_json(
                &format!("lin{i}"),
                SLOW_DIM,
                &test_counts(SLOW_DIM, 1, 1e7),
                r#","method":"linear""#,
            )
        })
        .collect();
    lines.push(slow_job("slow"));
    lines.extend((1..5).map(|i| quick_job(&format!("q{i}"), i)));
    write_lines(&batch, &lines);
    let out = t.join("out");
    let mut args = vec![
        "run",
        s(&batch),
        "--out",
        s(&out),
        "--workers",
        "1",
        "--max-retries",
        "0",
    ];
    args.extend(SMALL_CACHE);
    let mut run = t.spawn(&args);
    let log = out.join("logs/worker-0.log");
    let sup_log = out.join("logs/supervisor.log");
    // The slow job runs and q1 (line 5) has been sent behind it.
    poll("the slow job to run with a job behind it", LONG, || {
        let started = started_jobs(&log).iter().any(|id| id == "slow");
        let behind = read(&sup_log).contains("dispatch line=5 ");
        (started && behind).then_some(())
    });
    let pid = worker_pids(&log)[0];
    let text = read(&log);
    assert!(
        !text.contains("done job=slow ") && !text.contains("start job=q1 "),
        "the slow job ended before the kill"
    );
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    assert_eq!(run.wait(LONG).code(), Some(1), "{}", run.stderr_text());

    let all = results(&out);
    let by_line = results_by_line(&out);
    assert_eq!(all.len(), 8, "one result per line: {all:?}");
    assert_eq!(
        by_line.keys().copied().collect::<BTreeSet<_>>(),
        (1..=8).collect::<BTreeSet<u64>>()
    );
    assert_eq!(by_line[&4]["status"], "error");
    assert_eq!(
        by_line[&4]["error"],
        "worker died 1 time on this job: signal 9"
    );
    // q1 was sent twice (to the killed worker, then again), and its
    // result is ok: the death was not counted against it.
    let dispatches = read(&sup_log)
        .lines()
        .filter(|l| l.contains("dispatch line=5 "))
        .count();
    assert_eq!(dispatches, 2);
    for line in (1..=3).chain(5..=8) {
        let r = &by_line[&line];
        assert_eq!(r["status"], "ok", "{r}");
        let (n, seed) = if line <= 3 {
            (SLOW_DIM, 1)
        } else {
            (4, line - 4)
        };
        let rho = qst_npy::read_matrix(&out.join(r["rho"].as_str().unwrap()), n).unwrap();
        let truth = test_state(n, seed);
        let d = rho
            .iter()
            .zip(&truth)
            .map(|(x, &(re, im))| (x.re - re).hypot(x.im - im))
            .fold(0.0, f64::max);
        assert!(d < 1e-2, "line {line}: ρ differs from its state by {d}");
    }
}
