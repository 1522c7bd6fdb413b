//! The lab's files as they are: count matrices as CSV, TXT, xlsx, ods and xls
//! written by Python tools (bit-identical results), every refusal of what
//! the format cannot explain (exit 2 and a sentence), cells named in errors,
//! negative counts, several methods per run, flags as defaults for JSON
//! lines, unknown fields, and `wls` against the other methods' states.

use std::collections::HashSet;

use serde_json::Value;

use crate::interop::{python, run_ok};
use crate::util::{Qst, Tmp};

/// What a command that must be refused (exit 2) says.
fn refused(cmd: Qst) -> String {
    cmd.assert_exit(2).stderr
}

fn by<'a>(rs: &'a [Value], id: &str, method: &str) -> &'a Value {
    rs.iter()
        .find(|r| r["id"] == id && r["method"] == method)
        .unwrap_or_else(|| panic!("no result for {id}/{method}"))
}

#[test]
fn spreadsheets_and_text_files_give_bit_identical_results() {
    let t = Tmp::new();
    let mut c = python("spreadsheets.py");
    c.arg(t.path()).args(["3", "4", "11"]);
    run_ok(c);
    for f in ["lab.csv", "lab.txt", "lab.xlsx", "lab.ods", "lab.xls"] {
        let out = format!("o-{f}");
        let mut cmd = t.qst_run(f).out(&out).workers(2);
        if !f.ends_with("csv") && !f.ends_with("txt") {
            cmd = cmd.args(["--sheet", "runB"]);
        }
        let rs = cmd.assert_ok().results();
        assert_eq!(rs.len(), 4, "{f}");
        assert!(rs.iter().all(|r| r["status"] == "ok"), "{f}: {rs:?}");
    }
    for f in ["lab.txt", "lab.xlsx", "lab.ods", "lab.xls"] {
        for col in 1..=4 {
            let a = std::fs::read(t.join(&format!("o-lab.csv/rho/lab-{col}.npy"))).unwrap();
            let b = std::fs::read(t.join(&format!("o-{f}/rho/lab-{col}.npy"))).unwrap();
            assert_eq!(a, b, "{f} column {col} differs from the CSV's result");
        }
    }
    // --sheet by 0-based index, and a sheet that does not exist.
    t.qst_run("lab.xlsx")
        .args(["--sheet", "1"])
        .out("by-index")
        .workers(1)
        .assert_ok();
    assert_eq!(
        std::fs::read(t.join("by-index/rho/lab-2.npy")).unwrap(),
        std::fs::read(t.join("o-lab.csv/rho/lab-2.npy")).unwrap()
    );
    let e = refused(t.qst_run("lab.xlsx").args(["--sheet", "runC"]).out("x"));
    assert!(e.contains("runC") && e.contains("runB"), "{e}");
    // The first sheet holds a note, not numbers: refused, not guessed.
    let e = refused(t.qst_run("lab.ods").out("y"));
    assert!(e.contains("rows") || e.contains("text"), "{e}");
    // --columns 2:3 runs those columns only, ids keep their column numbers.
    let ids: HashSet<String> = t
        .qst_run("lab.csv")
        .args(["--columns", "2:3"])
        .out("cols")
        .workers(1)
        .assert_ok()
        .results()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids,
        HashSet::from(["lab-2".to_string(), "lab-3".to_string()])
    );
    let e = refused(t.qst_run("lab.csv").args(["--columns", "3:9"]).out("z"));
    assert!(e.contains("4 columns"), "{e}");
}

#[test]
fn an_empty_spreadsheet_cell_fails_its_column_naming_the_cell() {
    let t = Tmp::new();
    let mut c = python("spreadsheets.py");
    c.arg("hole").arg(t.path());
    run_ok(c);
    let rs = t.qst_run("hole.xlsx").workers(1).assert_exit(1).results();
    assert_eq!(rs.len(), 4);
    let bad = rs.iter().find(|r| r["status"] == "error").unwrap();
    assert_eq!(bad["id"], "hole-3");
    assert!(
        bad["error"]
            .as_str()
            .unwrap()
            .contains("sheet runB, cell C7"),
        "{bad}"
    );
    assert_eq!(rs.iter().filter(|r| r["status"] == "ok").count(), 3);
    // A formula saved without its value: an error for its column only.
    let rs = t
        .qst_run("formula.xlsx")
        .workers(1)
        .assert_exit(1)
        .results();
    let bad: Vec<&Value> = rs.iter().filter(|r| r["status"] == "error").collect();
    assert_eq!(bad.len(), 2, "columns 2 and 3 (C7 is empty too): {rs:?}");
    assert!(
        bad.iter()
            .any(|r| r["error"].as_str().unwrap().contains("sheet runB, cell B3")),
        "{bad:?}"
    );
}

#[test]
fn what_the_format_cannot_explain_is_refused_with_a_sentence() {
    let t = Tmp::new();
    let w = |name: &str, text: &str| std::fs::write(t.join(name), text).unwrap();
    let rows = |f: &dyn Fn(usize) -> String| (0..4).map(f).collect::<Vec<_>>().join("\n");
    w(
        "header.csv",
        &format!("H,V\n{}", rows(&|k| format!("{},{}", k + 1, k + 2))),
    );
    w("semi.csv", &rows(&|k| format!("148,{k};368,5")));
    w("tabs.txt", &rows(&|k| format!("{k}\t2")));
    w("spaces.txt", &rows(&|k| format!("{k} 2 3")));
    w("quoted.csv", &rows(&|k| format!("\"148,{k}\",2")));
    // 3 samples of d = 2 written as rows: 3 rows of 4 columns.
    w("rows.csv", "1,2,3,4\n5,6,7,8\n9,10,11,12\n");
    w("labels.csv", &rows(&|k| format!("P{k},1,2")));
    w("batch.json", "{\"id\":\"a\"}\n");
    w("batch.dat", "1\n2\n3\n4\n");
    w("empty.jsonl", "\n# nothing here\n\n");
    let cases = [
        ("header.csv", "header row"),
        ("semi.csv", "';'"),
        ("tabs.txt", "tabs"),
        ("spaces.txt", "spaces"),
        ("quoted.csv", "decimal comma"),
        ("rows.csv", "transpose"),
        ("labels.csv", "row labels"),
        ("batch.json", ".jsonl"),
        ("batch.dat", ".csv"),
        ("empty.jsonl", "no jobs"),
    ];
    for (file, says) in cases {
        let e = refused(t.qst_run(file).workers(1));
        assert!(e.contains(says), "{file}: expected {says:?} in {e}");
        assert_eq!(e.trim().lines().count(), 1, "{file}: one sentence: {e}");
        let stem = file.split('.').next().unwrap();
        assert!(
            !t.join(&format!("{stem}.qst/results.jsonl")).exists()
                || std::fs::read_to_string(t.join(&format!("{stem}.qst/results.jsonl")))
                    .unwrap()
                    .is_empty(),
            "{file}: nothing ran"
        );
    }
    w("ok.csv", &rows(&|k| format!("{},{}", k + 1, k + 3)));
    let e = refused(t.qst_run("ok.csv").workers(0));
    assert!(e.contains("workers"), "{e}");
    let e = refused(t.qst_run("ok.csv").args(["--sheet", "1"]));
    assert!(e.contains("--sheet"), "{e}");
}

#[test]
fn negative_counts_fail_their_column_unless_clipped() {
    let t = Tmp::new();
    std::fs::write(t.join("bg.csv"), "10,10\n-3,12\n5,7\n6,9\n").unwrap();
    let rs = t.qst_run("bg.csv").workers(1).assert_exit(1).results();
    let bad = rs.iter().find(|r| r["id"] == "bg-1").unwrap();
    assert_eq!(bad["status"], "error");
    let msg = bad["error"].as_str().unwrap();
    assert!(
        msg.contains("row 2, column 1") && msg.contains("--negative clip"),
        "{msg}"
    );
    assert_eq!(
        rs.iter().find(|r| r["id"] == "bg-2").unwrap()["status"],
        "ok"
    );
    let rs = t
        .qst_run("bg.csv")
        .args(["--negative", "clip"])
        .out("clip")
        .workers(1)
        .assert_ok()
        .results();
    let r = rs.iter().find(|r| r["id"] == "bg-1").unwrap();
    assert_eq!(r["status"], "ok");
    let w = r["warnings"].as_array().expect("warnings");
    assert!(w[0].as_str().unwrap().contains("-3"), "{r}");
    assert!(
        rs.iter()
            .find(|r| r["id"] == "bg-2")
            .unwrap()
            .get("warnings")
            .is_none()
    );
}

/// Several methods: one result per (column, method), ρ files by method, the
/// summary grouped by sample, `--resume` exact per pair; wls reaches a χ² no
/// higher than the other methods' states (numpy computes every χ²).
#[test]
fn several_methods_per_run_and_resume_per_pair() {
    let t = Tmp::new();
    let mut c = python("spreadsheets.py");
    c.arg(t.path()).args(["3", "3", "5"]);
    run_ok(c);
    let cmd = t.qst_run("lab.csv").method("mle,linear,wls").workers(2);
    let ran = cmd.assert_ok();
    let out = t.join("lab.qst");
    let rs = ran.results();
    assert_eq!(rs.len(), 9);
    let keys: HashSet<(u64, String)> = rs
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["method"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(keys.len(), 9);
    for col in 1..=3 {
        let id = format!("lab-{col}");
        for m in ["mle", "linear", "wls"] {
            let r = by(&rs, &id, m);
            assert_eq!(r["status"], "ok", "{r}");
            assert_eq!(r["rho"], format!("rho/{id}.{m}.npy"));
        }
        let w = by(&rs, &id, "wls");
        assert!(w["objective"].as_f64().is_some(), "{w}");
        assert_eq!(w["converged"], true, "{w}");
        // numpy: χ² of each method's ρ; wls is the lowest.
        let counts: Vec<String> = std::fs::read_to_string(t.join("lab.csv"))
            .unwrap()
            .lines()
            .map(|l| l.split(',').nth(col - 1).unwrap().to_string())
            .collect();
        let cpath = t.join(&format!("c{col}.npy"));
        let script = format!(
            "import numpy as np; np.save({:?}, np.array([{}], dtype=float))",
            cpath.display().to_string(),
            counts.join(",")
        );
        let mut save = std::process::Command::new(
            std::env::var("QST_PYTHON").unwrap_or_else(|_| "python3".into()),
        );
        save.args(["-c", &script]);
        run_ok(save);
        let mut py = python("spreadsheets.py");
        py.args(["chi2", "3"]).arg(&cpath);
        for m in ["wls", "mle", "linear"] {
            py.arg(out.join(format!("rho/{id}.{m}.npy")));
        }
        let text = run_ok(py);
        let chi: Vec<f64> = text.lines().map(|l| l.trim().parse().unwrap()).collect();
        let reported = w["objective"].as_f64().unwrap();
        assert!(
            (chi[0] - reported).abs() <= 1e-9 * reported.max(1e-12),
            "{chi:?} vs {reported}"
        );
        assert!(
            chi[0] <= chi[1] * (1.0 + 1e-9),
            "wls {} > mle {}",
            chi[0],
            chi[1]
        );
        assert!(
            chi[0] <= chi[2] * (1.0 + 1e-9),
            "wls {} > linear {}",
            chi[0],
            chi[2]
        );
    }
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let rows: Vec<&str> = summary.lines().skip(1).collect();
    let order: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            let f: Vec<&str> = r.split(',').collect();
            (f[0].to_string(), f[3].to_string())
        })
        .collect();
    assert_eq!(order[0], ("lab-1".to_string(), "mle".to_string()));
    assert_eq!(order[1], ("lab-1".to_string(), "linear".to_string()));
    assert_eq!(order[2], ("lab-1".to_string(), "wls".to_string()));
    assert_eq!(order[3].0, "lab-2");

    // Keep 4 of the 9 result lines; --resume runs exactly the 5 others.
    let text = std::fs::read_to_string(out.join("results.jsonl")).unwrap();
    let kept: Vec<&str> = text.lines().take(4).collect();
    std::fs::write(out.join("results.jsonl"), kept.join("\n") + "\n").unwrap();
    let rs = cmd.resume().assert_ok().results();
    assert_eq!(rs.len(), 9);
    let keys: HashSet<(u64, String)> = rs
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["method"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(keys.len(), 9, "every (line, method) exactly once");
}

#[test]
fn flags_are_defaults_for_json_lines_and_unknown_fields_are_errors() {
    let t = Tmp::new();
    let lines = [
        r#"{"id":"a","dim":2,"counts":[10,12,9,13]}"#,
        r#"{"id":"b","dim":2,"counts":[10,12,9,13],"method":"mle"}"#,
        r#"{"id":"c","dim":2,"counts":[10,12,9,13],"metod":"linear"}"#,
        r#"{"id":"d","dim":2,"counts":[10,12,9,13,4,6],"design":"mub","method":["mle","wls"]}"#,
        r#"{"id":"e","dim":3,"counts":[5,6,7,5,6,7,5,6,7,5,6,7]}"#,
    ];
    std::fs::write(t.join("b.jsonl"), lines.join("\n")).unwrap();
    let rs = t
        .qst_run("b.jsonl")
        .method("linear")
        .design("mub")
        .workers(1)
        .assert_exit(1)
        .results();
    // a: --design mub needs 6 counts for n = 2: its error names the field.
    let a = rs.iter().find(|r| r["id"] == "a").unwrap();
    assert_eq!(a["method"], "linear");
    assert!(a["error"].as_str().unwrap().contains("design mub"), "{a}");
    let b = rs.iter().find(|r| r["id"] == "b").unwrap();
    assert_eq!(b["method"], "mle", "a line's own method wins");
    let c = rs.iter().find(|r| r["id"] == "c").unwrap();
    let msg = c["error"].as_str().unwrap();
    assert!(msg.contains("metod") && msg.contains("\"method\""), "{msg}");
    assert_eq!(by(&rs, "d", "mle")["status"], "ok");
    assert_eq!(by(&rs, "d", "wls")["status"], "ok");
    assert_eq!(by(&rs, "d", "wls")["rho"], "rho/d.wls.npy");
    let e = by(&rs, "e", "linear");
    assert_eq!(e["status"], "ok", "{e}");
    assert_eq!(e["design"], "mub");
}
