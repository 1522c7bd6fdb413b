//! The worker pool end to end: results per line, worker processes and their
//! logs, dimension affinity, streaming memory, the lab's CSV, one physical
//! copy of a shared projector file, and `qst demo`.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::Path;

use nix::sys::signal::Signal;
use qst_math::C64;

use crate::util::*;

/// ρ (or any (n, n) `.npy`) as (re, im) pairs, read by the npy crate.
fn matrix(path: &Path, n: usize) -> Vec<(f64, f64)> {
    qst_npy::read_matrix(path, n)
        .expect("read matrix")
        .iter()
        .map(|c| (c.re, c.im))
        .collect()
}

/// Tr(ρσ) for Hermitian ρ, σ (real).
fn overlap(n: usize, rho: &[(f64, f64)], sigma: &[(f64, f64)]) -> f64 {
    let mut t = 0.0;
    for a in 0..n {
        for b in 0..n {
            let (x, y) = (rho[a * n + b], sigma[b * n + a]);
            t += x.0 * y.0 - x.1 * y.1;
        }
    }
    t
}

fn frobenius_distance(rho: &[(f64, f64)], sigma: &[(f64, f64)]) -> f64 {
    rho.iter()
        .zip(sigma)
        .map(|(x, y)| (x.0 - y.0).powi(2) + (x.1 - y.1).powi(2))
        .sum::<f64>()
        .sqrt()
}

#[test]
fn two_workers_run_a_generated_batch_one_result_per_line() {
    let t = Tmp::new();
    let batch = t.generate("mixed.jsonl", "2,3,4,8,16,24", 6, 11);
    let out = t.join("out");
    let mut run = t.qst_run(&batch).out(&out).workers(2).spawn();
    let sup = run.pid();
    let logs = out.join("logs");
    let (w0, w1) = (logs.join("worker-0.log"), logs.join("worker-1.log"));
    // As soon as both workers have said who they are, freeze the supervisor:
    // its workers then wait on their pipes and cannot exit.
    let pids = poll("both workers to start", LONG, || {
        let (a, b) = (worker_pids(&w0), worker_pids(&w1));
        (!a.is_empty() && !b.is_empty()).then(|| [a[0], b[0]])
    });
    run.signal(Signal::SIGSTOP);
    for pid in pids {
        assert_ne!(pid, sup, "a worker has the supervisor's PID");
        assert!(alive(pid), "worker {pid} is not running");
        let cmd = cmdline(pid);
        assert_eq!(
            cmd.get(1).map(String::as_str),
            Some("worker"),
            "worker {pid} cmdline {cmd:?}"
        );
        assert!(
            cmd.iter().any(|a| a == &sup.to_string()),
            "cmdline {cmd:?} names no supervisor PID"
        );
        let status = read(Path::new(&format!("/proc/{pid}/status")));
        assert!(
            status.contains(&format!("PPid:\t{sup}\n")),
            "worker {pid} is not the supervisor's child"
        );
    }
    assert_ne!(pids[0], pids[1]);
    run.signal(Signal::SIGCONT);
    let ran = run.assert_exit(0);
    // summary.json lists the same two processes, one per slot, both ended
    // normally.
    let incs = incarnations(ran.out());
    assert_eq!(
        incs,
        vec![
            (0, pids[0], "exit status 0".to_string()),
            (1, pids[1], "exit status 0".to_string())
        ]
    );

    // Exactly one result per job line, all ok.
    let by_line = ran.by_line();
    let lines = job_lines(&batch);
    assert_eq!(
        by_line.keys().copied().collect::<BTreeSet<_>>(),
        lines.iter().copied().collect()
    );
    let mut slots_used = BTreeSet::new();
    let mut ids_by_slot: HashMap<u64, Vec<String>> = HashMap::new();
    let mut dims_by_slot: HashMap<u64, BTreeSet<u64>> = HashMap::new();
    for r in by_line.values() {
        assert_eq!(r["status"], "ok", "{r}");
        let n = r["dim"].as_u64().unwrap() as usize;
        let id = r["id"].as_str().unwrap();
        let slot = r["worker"].as_u64().unwrap();
        slots_used.insert(slot);
        ids_by_slot.entry(slot).or_default().push(id.to_string());
        dims_by_slot.entry(slot).or_default().insert(n as u64);
        // Fidelity as expected: a million shots recover every state well.
        let f = r["fidelity"].as_f64().unwrap();
        assert!(f > 0.9 && f <= 1.0 + 1e-9, "{id}: fidelity {f}");
        // Independently: ρ on disk is close to the truth, and for a pure
        // truth F = Tr(ρσ).
        let rho = matrix(&out.join(r["rho"].as_str().unwrap()), n);
        let truth = matrix(
            &batch
                .parent()
                .unwrap()
                .join(format!("mixed_truth/{id}.npy")),
            n,
        );
        assert!(
            frobenius_distance(&rho, &truth) < 0.35,
            "{id}: ρ far from the truth"
        );
        if (overlap(n, &truth, &truth) - 1.0).abs() < 1e-9 {
            let f2 = overlap(n, &rho, &truth);
            assert!(
                (f - f2).abs() < 1e-6,
                "{id}: fidelity {f} but Tr(ρσ) = {f2}"
            );
        }
    }
    assert_eq!(
        slots_used,
        BTreeSet::from([0, 1]),
        "both workers should have run jobs"
    );

    // Each worker's log names its jobs (the jobs results.jsonl says it ran);
    // affinity: a worker loads no more projector sets than the distinct
    // dimensions it served.
    for (slot, log) in [(0u64, &w0), (1, &w1)] {
        let text = read(log);
        let started = started_jobs(log);
        for id in &ids_by_slot[&slot] {
            assert!(started.contains(id), "worker-{slot}.log does not name {id}");
            assert!(
                text.contains(&format!("done job={id} ")),
                "worker-{slot}.log has no done line for {id}"
            );
        }
        let dims = &dims_by_slot[&slot];
        let loads = text
            .lines()
            .filter(|l| l.contains("cache miss: loaded set"))
            .count();
        assert!(
            loads >= 1 && loads <= dims.len(),
            "worker-{slot}: {loads} loads for dims {dims:?}"
        );
    }
    // The supervisor logs one dispatch line per job.
    let sup_log = read(&logs.join("supervisor.log"));
    assert_eq!(
        sup_log
            .lines()
            .filter(|l| l.contains("dispatch line="))
            .count(),
        lines.len()
    );
}

#[test]
fn streaming_100k_jobs_keep_the_supervisor_under_200_mib() {
    let t = Tmp::new();
    let batch = t.join("big.jsonl");
    let mut text = String::with_capacity(100_000 * 80);
    for i in 0..100_000u64 {
        let c = [100 + i % 97, 200 + i % 89, 150 + i % 83, 120 + i % 79];
        text += &format!(
            "{{\"id\":\"s{i:06}\",\"dim\":2,\"counts\":[{},{},{},{}],\"method\":\"linear\"}}\n",
            c[0], c[1], c[2], c[3]
        );
    }
    fs::write(&batch, text).unwrap();
    let ran = t.qst_run(&batch).workers(2).assert_ok();
    assert_eq!(ran.out(), t.join("big.qst"));
    assert_eq!(result_count(ran.out()), 100_000);
    let summary = ran.summary();
    assert_eq!(summary["jobs"], 100_000);
    let peak = summary["supervisor_peak_rss_bytes"]
        .as_u64()
        .expect("supervisor_peak_rss_bytes");
    assert!(
        peak > 0 && peak < 200 << 20,
        "supervisor peak RSS {peak} bytes"
    );
}

/// Splits RFC 4180 text into records of fields.
fn parse_rfc4180(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                _ => field.push(c),
            }
        } else {
            match c {
                '"' => quoted = true,
                ',' => row.push(std::mem::take(&mut field)),
                '\r' if chars.peek() == Some(&'\n') => {}
                '\n' => {
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                }
                _ => field.push(c),
            }
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

#[test]
fn lab_csv_five_columns_give_five_results_and_an_rfc4180_summary() {
    let t = Tmp::new();
    let n = 4;
    let cols: Vec<Vec<f64>> = (1..=5).map(|c| test_counts(n, c, 1e6)).collect();
    let mut text = String::new();
    for k in 0..n * n {
        let cells: Vec<String> = cols
            .iter()
            .enumerate()
            .map(|(c, col)| {
                if c == 2 && k == 7 {
                    String::new()
                } else {
                    format!("{}", col[k])
                }
            })
            .collect();
        text += &cells.join(",");
        text += "\r\n";
    }
    let csv = t.join("lab data.csv");
    fs::write(&csv, format!("\u{feff}{text}")).unwrap();
    let out = t.join("lab.qst");
    // One column is bad: exit 1.
    let ran = t.qst_run(&csv).out(&out).workers(2).assert_exit(1);
    let by_line = ran.by_line();
    assert_eq!(by_line.len(), 5);
    for c in 1..=5u64 {
        let r = &by_line[&c];
        assert_eq!(r["id"], format!("lab_data-{c}"), "{r}");
        if c == 3 {
            assert_eq!(r["status"], "error", "{r}");
            continue;
        }
        assert_eq!(r["status"], "ok", "{r}");
        let rho = matrix(&out.join(r["rho"].as_str().unwrap()), n);
        let d = frobenius_distance(&rho, &test_state(n, c));
        assert!(
            d < 5e-3,
            "column {c}: ρ is {d} from the state that made the counts"
        );
    }
    let summary = read(&out.join("summary.csv"));
    let rows = parse_rfc4180(&summary);
    assert_eq!(
        rows[0].join(","),
        "id,dim,design,method,status,purity,trace,rank,min_eigenvalue,max_eigenvalue,\
         eigenvalue_entropy,log_likelihood,iterations,converged,fidelity,seconds,worker,error,\
         dominant_eigenvalue,bell_max_fidelity,bell_index,purity_std,fidelity_std,\
         bell_max_fidelity_std,bootstrap"
    );
    assert_eq!(rows.len(), 6);
    assert!(rows.iter().all(|r| r.len() == 25), "{rows:?}");
    let err_row = rows
        .iter()
        .find(|r| r[0] == "lab_data-3")
        .expect("row of column 3");
    assert_eq!(
        err_row[17],
        by_line[&3]["error"].as_str().unwrap(),
        "error field round trip"
    );
    assert!(
        rows[1..]
            .iter()
            .filter(|r| r[4] == "ok")
            .all(|r| r[17].is_empty())
    );
}

/// Writes the `nopovm` set of dimension n as a dense custom file, built here
/// from the kets of docs/designs.md.
fn write_dense_nopovm(path: &Path, n: usize) -> u64 {
    let s = std::f64::consts::FRAC_1_SQRT_2;
    let mut kets: Vec<Vec<C64>> = Vec::new();
    for k in 0..n {
        let mut v = vec![C64::new(0.0, 0.0); n];
        v[k] = C64::new(1.0, 0.0);
        kets.push(v);
    }
    for i in 0..n {
        for j in i + 1..n {
            let mut v = vec![C64::new(0.0, 0.0); n];
            v[i] = C64::new(s, 0.0);
            v[j] = C64::new(s, 0.0);
            kets.push(v.clone());
            v[j] = C64::new(0.0, -s);
            kets.push(v);
        }
    }
    let mut data = Vec::with_capacity(n * n * n * n);
    for psi in &kets {
        for a in 0..n {
            for b in 0..n {
                data.push(psi[a] * psi[b].conj());
            }
        }
    }
    qst_npy::write_c16(path, &[n * n, n, n], &data).expect("write projectors");
    fs::metadata(path).unwrap().len()
}

/// Σ of `Rss:` and `Pss:` (bytes) over the mappings of `file` in a process.
fn mapping_rss_pss(pid: u32, file: &Path) -> (u64, u64) {
    let smaps = read(Path::new(&format!("/proc/{pid}/smaps")));
    let name = file.to_str().unwrap();
    let (mut rss, mut pss, mut inside) = (0, 0, false);
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            inside = line.trim_end().ends_with(name);
        } else if inside {
            let kb = |l: &str| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
                    * 1024
            };
            if line.starts_with("Rss:") {
                rss += kb(line);
            } else if line.starts_with("Pss:") {
                pss += kb(line);
            }
        }
    }
    (rss, pss)
}

#[test]
fn two_workers_share_one_physical_copy_of_a_custom_projector_file() {
    let t = Tmp::new();
    let n = 32;
    let proj = t.join("custom_n32.npy");
    let size = write_dense_nopovm(&proj, n);
    let batch = t.join("custom.jsonl");
    let mut text = String::new();
    for i in 0..16 {
        text += &job_json(
            &format!("c{i:02}"),
            n,
            &test_counts(n, i, 1e7),
            r#","projectors":"custom_n32.npy""#,
        );
        text += "\n";
    }
    fs::write(&batch, text).unwrap();
    let out = t.join("out");
    let mut run = t.qst_run(&batch).out(&out).workers(2).spawn();
    let logs = out.join("logs");
    let (w0, w1) = (logs.join("worker-0.log"), logs.join("worker-1.log"));
    // Once each worker has finished a job (touching the whole set), freeze the
    // supervisor so both stay alive with the file mapped.
    poll("a finished job on each worker", LONG, || {
        (read(&w0).contains("done job=") && read(&w1).contains("done job=")).then_some(())
    });
    run.signal(Signal::SIGSTOP);
    let pids = [worker_pids(&w0)[0], worker_pids(&w1)[0]];
    let canon = fs::canonicalize(&proj).unwrap();
    let figures: Vec<(u64, u64)> = pids.iter().map(|&p| mapping_rss_pss(p, &canon)).collect();
    let (_, sup_pss) = mapping_rss_pss(run.pid(), &canon);
    run.signal(Signal::SIGCONT);
    for (pid, (rss, _)) in pids.iter().zip(&figures) {
        assert!(
            *rss as f64 >= 0.9 * size as f64,
            "worker {pid} has {rss} of {size} bytes resident"
        );
    }
    let workers_pss: u64 = figures.iter().map(|f| f.1).sum();
    let total = workers_pss + sup_pss;
    println!(
        "workers' summed PSS of the {size}-byte file: {workers_pss} bytes = {:.3}x; with the supervisor's: {:.3}x",
        workers_pss as f64 / size as f64,
        total as f64 / size as f64
    );
    assert!(
        (workers_pss as f64) < 1.25 * size as f64,
        "two workers' PSS of the file is {workers_pss} for a {size}-byte file (not shared?)"
    );
    assert!(
        (total as f64) > 0.75 * size as f64 && (total as f64) < 1.25 * size as f64,
        "total PSS {total}"
    );
    let res = run.assert_exit(0).results();
    assert_eq!(res.len(), 16);
    assert!(
        res.iter()
            .all(|r| r["status"] == "ok" && r["design"] == "custom"),
        "{res:?}"
    );
}

#[test]
fn demo_prints_its_table_and_exits_0() {
    let t = Tmp::new();
    let out = t.join("demo");
    let ran = t.qst_demo().workers(2).out(&out).assert_ok();
    let stdout = &ran.stdout;
    let mut lines = stdout.lines();
    let header = lines.next().unwrap();
    assert!(
        header.contains("dim")
            && header.contains("mean fidelity")
            && header.contains("mean seconds")
    );
    let (mut dims, mut methods, mut jobs) = (Vec::new(), Vec::new(), 0);
    for line in lines.by_ref().take_while(|l| !l.starts_with("results:")) {
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cells.len(), 6, "row {line:?}");
        dims.push(cells[0].parse::<usize>().unwrap());
        methods.push(cells[1].to_string());
        jobs += cells[2].parse::<usize>().unwrap();
        assert_eq!(cells[2], cells[3], "every demo job is ok: {line}");
        let f: f64 = cells[4].parse().unwrap();
        assert!(f > 0.9, "mean fidelity {f} in {line}");
    }
    // One row per (dimension, method).
    assert!(
        methods.iter().all(|m| m == "mle" || m == "linear"),
        "{methods:?}"
    );
    assert!(methods.contains(&"linear".to_string()), "{stdout}");
    assert_eq!(dims.first(), Some(&2));
    assert_eq!(dims.last(), Some(&32));
    dims.dedup();
    assert!(
        stdout.contains(&format!("results: {}", out.display())),
        "{stdout}"
    );
    assert_eq!(
        result_count(&out),
        dims.len() * qst_supervisor::demo_spec().per_dim
    );
    assert_eq!(jobs, result_count(&out));
}
