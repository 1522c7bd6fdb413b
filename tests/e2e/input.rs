//! Input and output of `qst run` through the real binary: every kind of bad
//! job line beside good ones, the lab's CSV, summary.csv read back by Python's
//! csv module, and `--resume` (torn last line repaired, changed batch refused).

use std::fs;
use std::path::Path;
use std::process::Command;

use qst_npy::C64;
use serde_json::Value;

use crate::util::*;

/// The kets of the `nopovm` set (docs/designs.md), built here.
fn nopovm_kets(n: usize) -> Vec<Vec<C64>> {
    let s = 1.0 / 2f64.sqrt();
    let z = C64::new(0.0, 0.0);
    let mut out = Vec::new();
    for k in 0..n {
        let mut v = vec![z; n];
        v[k] = C64::new(1.0, 0.0);
        out.push(v);
    }
    for i in 0..n {
        for j in i + 1..n {
            let mut v = vec![z; n];
            v[i] = C64::new(s, 0.0);
            v[j] = C64::new(s, 0.0);
            out.push(v);
            let mut v = vec![z; n];
            v[i] = C64::new(s, 0.0);
            v[j] = C64::new(0.0, -s);
            out.push(v);
        }
    }
    out
}

/// A dense (K, n, n) set from kets, Π[a,b] = ψ[a]·conj(ψ[b]).
fn dense(kets: &[Vec<C64>]) -> Vec<C64> {
    let n = kets[0].len();
    let mut d = Vec::with_capacity(kets.len() * n * n);
    for psi in kets {
        for a in 0..n {
            for b in 0..n {
                d.push(psi[a] * psi[b].conj());
            }
        }
    }
    d
}

fn write_proj(path: &Path, n: usize, data: &[C64]) {
    let k = data.len() / (n * n);
    qst_npy::write_c16(path, &[k, n, n], data).expect("write projectors");
}

fn c64s(rho: &[(f64, f64)]) -> Vec<C64> {
    rho.iter().map(|&(re, im)| C64::new(re, im)).collect()
}

fn python() -> String {
    std::env::var("QST_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Frobenius distance between two n×n matrices.
fn distance(a: &[C64], b: &[(f64, f64)]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - C64::new(y.0, y.1)).norm_sqr())
        .sum::<f64>()
        .sqrt()
}

/// Marks a blank or comment line in the table below.
const SKIPPED: &str = "(skipped)";

#[test]
fn every_kind_of_bad_line_gets_its_own_error_and_good_jobs_run() {
    let t = Tmp::new();
    let d = t.path();
    // Files the good and bad lines point at.
    let truth4 = test_state(4, 2);
    qst_npy::write_c16(&d.join("truth4.npy"), &[4, 4], &c64s(&truth4)).unwrap();
    qst_npy::write_i8(
        &d.join("counts2.npy"),
        &test_counts(2, 1, 1e5)
            .iter()
            .map(|&c| c as i64)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    qst_npy::write_f8(&d.join("nan2.npy"), &[1.0, f64::NAN, 1.0, 1.0]).unwrap();
    fs::write(d.join("garbage.npy"), b"this is not an npy file").unwrap();
    let mut not_density = vec![C64::new(0.0, 0.0); 4];
    not_density[0] = C64::new(1.0, 0.0);
    not_density[3] = C64::new(1.0, 0.0); // trace 2
    qst_npy::write_c16(&d.join("trace2.npy"), &[2, 2], &not_density).unwrap();
    let good_set = dense(&nopovm_kets(2));
    write_proj(&d.join("good_proj.npy"), 2, &good_set);
    // Wrong shape for dim 2: a (4, 3, 3) set.
    write_proj(
        &d.join("shape_proj.npy"),
        3,
        &dense(&nopovm_kets(3))[..4 * 9],
    );
    let mut herm = good_set.clone();
    herm[4 * 2 + 1] = C64::new(0.7, 0.0); // Π_2[0,1] without Π_2[1,0]
    herm[4 * 2 + 2] = C64::new(0.0, 0.0);
    write_proj(&d.join("herm_proj.npy"), 2, &herm);
    let mut psd = good_set.clone();
    psd[3] = C64::new(-1.0, 0.0); // Π_0 = diag(1, -1)
    write_proj(&d.join("psd_proj.npy"), 2, &psd);
    // Π_0, Π_1, Π_0, Π_1: rank 2, not 4.
    let basis = dense(&nopovm_kets(2)[..2]);
    write_proj(&d.join("ic_proj.npy"), 2, &[basis.clone(), basis].concat());
    // 400 projectors of dim 2: 25 600 bytes, over the 20 000-byte budget.
    let big: Vec<C64> = (0..100).flat_map(|_| good_set.clone()).collect();
    write_proj(&d.join("big_proj.npy"), 2, &big);

    let c2 = test_counts(2, 1, 1e5);
    let c4 = test_counts(4, 2, 1e5);
    // (line text, Some(field named in the error) or None for a good job)
    let lines: Vec<(String, Option<&str>)> = vec![
        (
            job_json("good-mle", 4, &c4, r#","truth":"truth4.npy""#),
            None,
        ),
        (
            job_json("good-linear", 2, &c2, r#","method":"linear""#),
            None,
        ),
        (
            r#"{"id":"good-npy","dim":2,"counts_npy":"counts2.npy"}"#.into(),
            None,
        ),
        (
            job_json("good-custom", 2, &c2, r#","projectors":"good_proj.npy""#),
            None,
        ),
        ("# a comment line".into(), Some(SKIPPED)),
        (String::new(), Some(SKIPPED)),
        (
            r#"{"id":"bad-json","dim":2,"counts":[1,2,"#.into(),
            Some("JSON"),
        ),
        (
            r#"{"id":"nan","dim":2,"counts":[1,NaN,1,1]}"#.into(),
            Some("JSON"),
        ),
        (r#"{"dim":2,"counts":[1,1,1,1]}"#.into(), Some("id")),
        (r#"{"id":"no-dim","counts":[1,1,1,1]}"#.into(), Some("dim")),
        (
            job_json("good-mle", 4, &c4, ""),
            Some("duplicate id, first used on line 1"),
        ),
        (job_json("bad/id", 2, &c2, ""), Some("id")),
        (job_json("dim-one", 1, &[1.0], ""), Some("dim")),
        (job_json("short", 2, &c2[..3], ""), Some("counts")),
        (
            job_json("negative", 2, &[1.0, -1.0, 1.0, 1.0], ""),
            Some("counts[1]"),
        ),
        (
            r#"{"id":"text","dim":2,"counts":[1,"two",1,1]}"#.into(),
            Some("counts[1]"),
        ),
        (
            r#"{"id":"non-finite","dim":2,"counts_npy":"nan2.npy"}"#.into(),
            Some("counts_npy[1]"),
        ),
        (job_json("zeros", 2, &[0.0; 4], ""), Some("counts")),
        (
            job_json("both", 2, &c2, r#","counts_npy":"counts2.npy""#),
            Some("counts_npy"),
        ),
        (r#"{"id":"neither","dim":2}"#.into(), Some("counts")),
        (
            job_json("method", 2, &c2, r#","method":"bayes""#),
            Some("method"),
        ),
        (
            job_json("design", 2, &c2, r#","design":"tetra""#),
            Some("design"),
        ),
        (
            r#"{"id":"npy-missing","dim":2,"counts_npy":"nope.npy"}"#.into(),
            Some("counts_npy"),
        ),
        (
            r#"{"id":"npy-garbage","dim":2,"counts_npy":"garbage.npy"}"#.into(),
            Some("counts_npy"),
        ),
        (
            job_json("truth-missing", 2, &c2, r#","truth":"nope.npy""#),
            Some("truth"),
        ),
        (
            job_json("truth-trace", 2, &c2, r#","truth":"trace2.npy""#),
            Some("truth"),
        ),
        (
            job_json("proj-missing", 2, &c2, r#","projectors":"nope.npy""#),
            Some("projectors"),
        ),
        (
            job_json("proj-shape", 2, &c2, r#","projectors":"shape_proj.npy""#),
            Some("projectors"),
        ),
        (
            job_json("proj-herm", 2, &c2, r#","projectors":"herm_proj.npy""#),
            Some("Hermitian"),
        ),
        (
            job_json("proj-psd", 2, &c2, r#","projectors":"psd_proj.npy""#),
            Some("semidefinite"),
        ),
        (
            job_json("proj-ic", 2, &c2, r#","projectors":"ic_proj.npy""#),
            Some("informationally complete"),
        ),
        (
            job_json("proj-big", 2, &c2, r#","projectors":"big_proj.npy""#),
            Some("budget"),
        ),
        (
            job_json("iters", 2, &c2, r#","max_iters":0"#),
            Some("max_iters"),
        ),
        (job_json("tol", 2, &c2, r#","tol":-1"#), Some("tol")),
    ];
    let batch = d.join("mixed.jsonl");
    write_lines(
        &batch,
        &lines.iter().map(|(l, _)| l.clone()).collect::<Vec<_>>(),
    );
    let out = d.join("out");
    let res = t
        .qst_run(&batch)
        .out(&out)
        .workers(2)
        .args(["--max-cache-bytes", "20000"])
        .assert_exit(1)
        .by_line();
    let job_lines: Vec<u64> = job_lines(&batch);
    assert_eq!(
        res.len(),
        job_lines.len(),
        "one result per job line: {res:#?}"
    );
    for (i, (text, want)) in lines.iter().enumerate() {
        let line = i as u64 + 1;
        if *want == Some(SKIPPED) {
            assert!(
                !res.contains_key(&line),
                "blank and comment lines have no result"
            );
            continue;
        }
        let r = res
            .get(&line)
            .unwrap_or_else(|| panic!("line {line} has no result"));
        let given_id = serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| v["id"].as_str().map(String::from));
        assert_eq!(
            r["id"].as_str().map(String::from),
            given_id,
            "line {line}: id as given"
        );
        match want {
            None => {
                assert_eq!(r["status"], "ok", "line {line}: {r}");
                assert_eq!(
                    r["rho"],
                    format!("rho/{}.npy", given_id.as_deref().unwrap())
                );
                assert!(out.join(r["rho"].as_str().unwrap()).is_file());
            }
            Some(field) => {
                assert_eq!(r["status"], "error", "line {line} should fail: {r}");
                let msg = r["error"].as_str().unwrap();
                assert!(
                    msg.starts_with(&format!("line {line}")),
                    "line {line}: {msg}"
                );
                assert!(
                    msg.contains(field),
                    "line {line}: {msg:?} should name {field:?}"
                );
                assert!(!msg.contains('\n'), "one line: {msg:?}");
            }
        }
    }
    // The error names the field itself where a generic word was asked for.
    for (line, field) in [
        (13, "field dim"),
        (14, "field counts"),
        (26, "field truth"),
        (28, "field projectors"),
    ] {
        let msg = res[&line]["error"].as_str().unwrap();
        assert!(msg.contains(field), "line {line}: {msg}");
    }
    // Malformed JSON and a missing id: id null.
    assert!(res[&7]["id"].is_null() && res[&9]["id"].is_null());
    // The truth job recovers its state; linear has null iterations/converged.
    let f = res[&1]["fidelity"].as_f64().expect("fidelity");
    assert!(f >= 0.999, "fidelity {f}");
    assert_eq!(res[&1]["method"], "mle");
    assert!(res[&2]["iterations"].is_null() && res[&2]["converged"].is_null());
    assert_eq!(res[&4]["design"], "custom");
    assert_eq!(res[&1]["design"], "nopovm");
    // Errors know what they can: the bad count's dim and method.
    assert_eq!(res[&15]["dim"], 2);
    assert_eq!(res[&15]["method"], "mle");
}

/// The `nopovm` counts of `test_state(4`, seed) as one CSV column.
fn csv_text(columns: &[Vec<String>], bom: bool) -> String {
    let rows = columns[0].len();
    let mut s = String::new();
    if bom {
        s.push('\u{feff}');
    }
    for r in 0..rows {
        let row: Vec<&str> = columns.iter().map(|c| c[r].as_str()).collect();
        s.push_str(&row.join(","));
        s.push_str("\r\n");
    }
    s
}

#[test]
fn lab_csv_gives_one_job_per_column_and_summary_csv_round_trips_through_python() {
    let t = Tmp::new();
    let mut cols: Vec<Vec<String>> = (1..=5u64)
        .map(|seed| {
            test_counts(4, seed, 1e6)
                .iter()
                .map(|c| format!("{c}"))
                .collect()
        })
        .collect();
    cols[2][6] = "x".into(); // column 3, row 7
    let batch = t.join("lab run.csv");
    fs::write(&batch, csv_text(&cols, true)).unwrap();
    let out = t.join("out");
    let ran = t.qst_run(&batch).out(&out).workers(2).assert_exit(1);
    let res = ran.by_line();
    assert_eq!(res.len(), 5);
    for col in 1..=5u64 {
        let r = &res[&col];
        assert_eq!(r["id"], format!("lab_run-{col}"));
        if col == 3 {
            assert_eq!(r["status"], "error");
            let msg = r["error"].as_str().unwrap();
            assert!(
                msg.contains("column 3") && msg.contains("counts[6]") && msg.contains("row 7"),
                "{msg}"
            );
        } else {
            assert_eq!(r["status"], "ok", "{r}");
            assert_eq!(r["dim"], 4);
            // Columns are samples: each reconstructs its own state.
            let rho = qst_npy::read_matrix(&out.join(r["rho"].as_str().unwrap()), 4).unwrap();
            let dist = distance(&rho, &test_state(4, col));
            assert!(dist < 1e-2, "column {col}: ‖ρ − ρ_true‖ = {dist}");
        }
    }

    // summary.csv: the documented header, CRLF, and RFC 4180 quoting that Python's
    // csv module reads back (the error has a comma and quotes).
    let csv = fs::read_to_string(out.join("summary.csv")).unwrap();
    assert!(csv.starts_with(
        "id,dim,design,method,status,purity,trace,rank,min_eigenvalue,max_eigenvalue,eigenvalue_entropy,log_likelihood,iterations,converged,fidelity,seconds,worker,error,dominant_eigenvalue,bell_max_fidelity,bell_index,purity_std,fidelity_std,bell_max_fidelity_std,bootstrap\r\n"
    ));
    let script = "import csv, json, sys\nwith open(sys.argv[1], newline='') as f:\n    print(json.dumps(list(csv.DictReader(f))))\n";
    let py = Command::new(python())
        .args(["-c", script, out.join("summary.csv").to_str().unwrap()])
        .output()
        .expect("run python");
    assert!(py.status.success(), "python: {}", stderr(&py));
    let rows: Vec<Value> = serde_json::from_slice(&py.stdout).unwrap();
    assert_eq!(rows.len(), 5);
    for (i, row) in rows.iter().enumerate() {
        let r = &res[&(i as u64 + 1)];
        assert_eq!(row["id"], r["id"]);
        assert_eq!(row["status"], r["status"]);
        if r["status"] == "error" {
            let msg = r["error"].as_str().unwrap();
            assert!(msg.contains(',') && msg.contains('"'), "{msg}");
            assert_eq!(row["error"], msg);
        } else {
            assert_eq!(row["error"], "");
            assert_eq!(row["method"], "mle");
            let it: u64 = row["iterations"].as_str().unwrap().parse().unwrap();
            assert_eq!(it, r["iterations"].as_u64().unwrap());
            let ll: f64 = row["log_likelihood"].as_str().unwrap().parse().unwrap();
            let want = r["log_likelihood"].as_f64().unwrap();
            assert!((ll - want).abs() <= 1e-12 * want.abs(), "{ll} vs {want}");
        }
    }
    let summary = ran.summary();
    assert_eq!(
        (
            summary["jobs"].as_u64(),
            summary["ok"].as_u64(),
            summary["failed"].as_u64()
        ),
        (Some(5), Some(4), Some(1))
    );
    assert_eq!(summary["by_dimension"][0]["dim"], 4);
    assert_eq!(summary["by_dimension"][0]["ok"], 4);

    // A CSV whose rows are not n² and no --dim: the command cannot run.
    let bad = t.join("odd.csv");
    fs::write(&bad, "1,2\n3,4\n5,6\n").unwrap();
    let o = t.qst_run(&bad).out(t.join("odd-out")).assert_exit(2);
    assert!(o.stderr.contains("3 rows"), "{}", o.stderr);
}

#[test]
fn resume_repairs_a_torn_last_line_and_refuses_a_changed_batch() {
    let t = Tmp::new();
    let batch = t.join("b.jsonl");
    let lines: Vec<String> = (0..5).map(|i| quick_job(&format!("q{i}"), i)).collect();
    write_lines(&batch, &lines);
    let out = t.join("out");
    let run = t.qst_run(&batch).out(&out).workers(2);
    assert_eq!(run.assert_ok().by_line().len(), 5);

    // A crash mid-write: the last complete line loses its tail.
    let path = out.join("results.jsonl");
    let text = fs::read_to_string(&path).unwrap();
    let body = text.strip_suffix('\n').unwrap();
    let cut = body.rfind('\n').unwrap() + 1;
    let torn_line: Value = serde_json::from_str(&body[cut..]).unwrap();
    let torn = format!(
        "{}{}",
        &text[..cut],
        &body[cut..cut + (body.len() - cut) / 2]
    );
    fs::write(&path, &torn).unwrap();
    assert_eq!(results_by_line(&out).len(), 4);

    // Without --resume: refused, file untouched.
    let o = run.assert_exit(2);
    assert!(o.stderr.contains("--resume"), "{}", o.stderr);
    assert_eq!(fs::read_to_string(&path).unwrap(), torn);

    run.clone().resume().assert_ok();
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.ends_with('\n'));
    let all: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is whole"))
        .collect();
    assert_eq!(all.len(), 5, "{text}");
    let res = results_by_line(&out);
    assert_eq!(res.len(), 5);
    assert_eq!(res[&torn_line["line"].as_u64().unwrap()]["status"], "ok");
    // The first four lines were kept as they were.
    assert_eq!(&text[..cut], &torn[..cut]);
    // Summaries cover the whole batch.
    let csv = fs::read_to_string(out.join("summary.csv")).unwrap();
    assert_eq!(csv.matches("\r\n").count(), 6);

    // The batch changes: --resume is refused, nothing is written.
    let mut changed = lines.clone();
    changed.push(quick_job("q9", 9));
    write_lines(&batch, &changed);
    let o = run.resume().assert_exit(2);
    assert!(o.stderr.contains("changed"), "{}", o.stderr);
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
}
