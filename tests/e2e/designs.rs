//! The built-in designs end to end: `mub` and `sic` files against numpy's own
//! construction, count matrices read as `mub`, linear inversion on per-basis
//! frequencies, noiseless recovery, the MLE certificate, and every refusal.

use serde_json::Value;

use crate::interop::{python, run_ok};
use crate::util::{Qst, Tmp};

/// What a command that must be refused (exit 2) says.
fn refused(cmd: Qst) -> String {
    cmd.assert_exit(2).stderr
}

fn make(t: &Tmp, design: &str, n: usize, seed: u64) {
    let mut c = python("designs.py");
    c.arg("make")
        .arg(t.path())
        .args([design, &n.to_string(), &seed.to_string()]);
    run_ok(c);
}

fn by_id<'a>(rs: &'a [Value], id: &str) -> &'a Value {
    rs.iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no result for {id}: {rs:?}"))
}

#[test]
fn mub_and_sic_files_equal_numpys_construction() {
    let t = Tmp::new();
    let cache = t.join("cache");
    t.qst_prebuild("2,3,4,5,8,9,16").design("mub").assert_ok();
    t.qst_prebuild("2").design("sic").assert_ok();
    let mut c = python("designs.py");
    c.arg("files")
        .arg(&cache)
        .args(["mub", "2", "3", "4", "5", "8", "9", "16"]);
    println!("{}", run_ok(c));
    let mut c = python("designs.py");
    c.arg("files").arg(&cache).args(["sic", "2"]);
    println!("{}", run_ok(c));
    // `cache verify` checks every byte of them against the formula.
    let v = t.qst(["cache", "verify"]).assert_ok().text();
    assert_eq!(v.lines().filter(|l| l.starts_with("ok")).count(), 8, "{v}");
}

/// A count matrix of n(n+1) rows is read as `mub` (and the run says so);
/// `linear` normalizes each basis by its own total, as numpy's least squares
/// on per-basis frequencies does; noiseless columns come back exactly.
#[test]
fn mub_count_matrix_runs_linear_on_per_basis_frequencies() {
    for n in [3usize, 4] {
        let t = Tmp::new();
        make(&t, "mub", n, 5 + n as u64);
        let ran = t.qst_run("mub.csv").method("linear").workers(1).assert_ok();
        let text = ran.text();
        assert!(
            text.contains("design mub"),
            "the run says it read mub: {text}"
        );
        let o = t.join("mub.qst");
        let rs = ran.results();
        assert_eq!(rs.len(), 2);
        for r in &rs {
            assert_eq!(r["status"], "ok", "{r}");
            assert_eq!(r["design"], "mub", "{r}");
            assert_eq!(r["dim"], n, "{r}");
        }
        // Column 1 holds the noiseless probabilities: ρ comes back.
        let mut c = python("compare_rho.py");
        c.arg(t.join("truth.npy")).arg(o.join("rho/mub-1.npy"));
        println!("{}", run_ok(c));
        // Column 2 holds counts with unequal basis totals.
        let mut c = python("designs.py");
        c.arg("linear")
            .arg(t.path())
            .arg(o.join("rho/mub-2.npy"))
            .arg(t.join("counts.npy"));
        println!("{}", run_ok(c));
    }
}

/// Noiseless data through `mub` and `sic` by maximum likelihood: fidelity
/// ≥ 0.9999 to numpy's state; noisy `mub` data meet the documented certificate as
/// numpy computes it from its own projectors.
#[test]
fn mub_and_sic_mle_recover_noiseless_states_and_meet_the_certificate() {
    for (design, n) in [
        ("mub", 3usize),
        ("mub", 4),
        ("mub", 8),
        ("mub", 9),
        ("sic", 2),
    ] {
        let t = Tmp::new();
        make(&t, design, n, 40 + n as u64);
        let batch = format!(
            "{{\"id\":\"p\",\"dim\":{n},\"design\":\"{design}\",\"counts_npy\":\"probs.npy\",\"truth\":\"truth.npy\"}}\n\
             {{\"id\":\"c\",\"dim\":{n},\"design\":\"{design}\",\"counts_npy\":\"counts.npy\",\"truth\":\"truth.npy\"}}\n"
        );
        std::fs::write(t.join("b.jsonl"), batch).unwrap();
        let ran = t.qst_run("b.jsonl").workers(1).assert_ok();
        let o = t.join("b.qst");
        let rs = ran.results();
        let p = by_id(&rs, "p");
        assert_eq!(p["status"], "ok", "{p}");
        assert_eq!(p["design"], design, "{p}");
        assert_eq!(p["converged"], true, "{p}");
        assert!(
            p["fidelity"].as_f64().unwrap() >= 0.9999,
            "{design} n={n}: {p}"
        );
        let mut c = python("compare_rho.py");
        c.arg(t.join("truth.npy")).arg(o.join("rho/p.npy"));
        run_ok(c);
        let c_ = by_id(&rs, "c");
        assert_eq!(c_["converged"], true, "{c_}");
        if design == "mub" {
            let mut c = python("designs.py");
            c.args(["certificate", &n.to_string()])
                .arg(t.join("counts.npy"))
                .arg(o.join("rho/c.npy"))
                .arg("1e-8");
            println!("{}", run_ok(c));
        }
    }
}

/// The same counts through qst's `mub` and through the identical set given as
/// a custom file (`--projectors`): the maximum-likelihood states agree.
#[test]
fn a_count_matrix_runs_against_a_custom_projector_file() {
    let t = Tmp::new();
    make(&t, "mub", 3, 77);
    t.qst_prebuild("3").design("mub").assert_ok();
    std::fs::copy(t.join("cache/mub_n3.npy"), t.join("set.npy")).unwrap();
    let a = t
        .qst_run("mub.csv")
        .out("a")
        .workers(1)
        .assert_ok()
        .results();
    let b = t
        .qst_run("mub.csv")
        .out("b")
        .args(["--projectors", "set.npy"])
        .workers(1)
        .assert_ok()
        .results();
    for id in ["mub-1", "mub-2"] {
        let (ra, rb) = (by_id(&a, id), by_id(&b, id));
        assert_eq!(ra["design"], "mub");
        assert_eq!(rb["design"], "custom");
        let (la, lb) = (
            ra["log_likelihood"].as_f64().unwrap(),
            rb["log_likelihood"].as_f64().unwrap(),
        );
        assert!((la - lb).abs() <= 1e-6 * la.abs().max(1.0), "{la} vs {lb}");
        assert!((ra["purity"].as_f64().unwrap() - rb["purity"].as_f64().unwrap()).abs() < 1e-5);
    }
    // A projector file whose K does not match the rows is refused.
    t.qst_prebuild("4").design("mub").assert_ok();
    let e = refused(
        t.qst_run("mub.csv")
            .out("c")
            .args(["--projectors", "cache/mub_n4.npy"]),
    );
    assert!(e.contains("12 rows") && e.contains("K = 20"), "{e}");
}

#[test]
fn designs_refuse_dimensions_they_do_not_have() {
    let t = Tmp::new();
    // 42 = 6·7 rows: mub's count for n = 6, which is not a prime power.
    let col: String = (0..42).map(|k| format!("{}\n", k % 5 + 1)).collect();
    std::fs::write(t.join("six.csv"), &col).unwrap();
    let e = refused(t.qst_run("six.csv"));
    assert!(
        e.contains("mub needs a prime-power dimension; 6 is not"),
        "{e}"
    );
    // 16 rows with --design mub: not n(n+1).
    let col: String = (0..16).map(|k| format!("{}\n", k + 1)).collect();
    std::fs::write(t.join("sq.csv"), &col).unwrap();
    let e = refused(t.qst_run("sq.csv").design("mub"));
    assert!(e.contains("16 rows") && e.contains("mub"), "{e}");
    // Neither n² nor n(n+1).
    let col: String = (0..10).map(|k| format!("{}\n", k + 1)).collect();
    std::fs::write(t.join("ten.csv"), &col).unwrap();
    let e = refused(t.qst_run("ten.csv"));
    assert!(e.contains("10 rows") && e.contains("n(n+1)"), "{e}");
    let e = refused(t.qst_run("sq.csv").design("sic"));
    assert!(e.contains("sic"), "{e}");
    let e = refused(t.qst_prebuild("4,6").design("mub"));
    assert!(
        e.contains("mub needs a prime-power dimension; 6 is not"),
        "{e}"
    );
    let e = refused(t.qst_prebuild("4").design("mubs"));
    assert!(e.contains("unknown design") && e.contains("\"mub\""), "{e}");
    // JSON lines: the error names the line and the field; the others run.
    let lines = [
        r#"{"id":"a","dim":6,"design":"mub","counts":[1]}"#.to_string(),
        r#"{"id":"b","dim":2,"design":"mubs","counts":[1,2,3,4]}"#.to_string(),
        r#"{"id":"c","dim":3,"design":"sic","counts":[1,2,3,4]}"#.to_string(),
        format!(
            r#"{{"id":"d","dim":2,"design":"mub","counts":[{}]}}"#,
            "1,2,3,4,5"
        ),
        r#"{"id":"e","dim":2,"design":"sic","counts":[3,2,2,2]}"#.to_string(),
    ];
    std::fs::write(t.join("b.jsonl"), lines.join("\n")).unwrap();
    let rs = t.qst_run("b.jsonl").workers(1).assert_exit(1).results();
    let err = |id: &str| by_id(&rs, id)["error"].as_str().unwrap_or("").to_string();
    assert!(
        err("a").contains("line 1")
            && err("a").contains("field dim: mub needs a prime-power dimension; 6 is not"),
        "{}",
        err("a")
    );
    assert!(
        err("b").contains("field design") && err("b").contains("\"mub\""),
        "{}",
        err("b")
    );
    assert!(err("c").contains("field dim: sic"), "{}", err("c"));
    assert!(
        err("d").contains("5 entries") && err("d").contains("needs 6"),
        "{}",
        err("d")
    );
    assert_eq!(by_id(&rs, "e")["status"], "ok");
    assert_eq!(by_id(&rs, "e")["design"], "sic");
}
