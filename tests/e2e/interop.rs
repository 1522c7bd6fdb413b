//! Independent checks with real numpy: scripts in `tests/py/` build the documented
//! objects from its text alone and read only the `.npy` files qst wrote.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::Tmp;

/// The interpreter with numpy (`QST_PYTHON`, set by test.sh); fails, never skips.
pub fn python(script: &str) -> Command {
    let py = std::env::var("QST_PYTHON").unwrap_or_else(|_| "python3".into());
    // A relative QST_PYTHON is relative to where the tests were started.
    let py = match std::env::current_dir() {
        Ok(cwd) if py.contains('/') => cwd.join(&py).display().to_string(),
        _ => py,
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py");
    let ok = Command::new(&py)
        .args(["-c", "import numpy"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "{py} has no numpy: run the tests through ./test.sh");
    let mut c = Command::new(py);
    c.arg(dir.join(script)).current_dir(dir);
    c
}

pub fn run_ok(mut c: Command) -> String {
    let out = c.output().expect("spawn");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{c:?} failed: {text}");
    text
}

fn results(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("results.jsonl"))
        .expect("results.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("result line is JSON"))
        .collect()
}

fn by_id<'a>(rs: &'a [Value], id: &str) -> &'a Value {
    rs.iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no result for {id}"))
}

/// Runs `qst run` on `batch` in `t` with the cache given by `--cache`;
/// returns (out dir, cache dir).
fn run_batch(t: &Tmp, batch: &str) -> (PathBuf, PathBuf) {
    let (out, cache) = (t.join("out"), t.join("private-cache"));
    std::fs::write(t.join("batch.jsonl"), batch).unwrap();
    t.qst_run("batch.jsonl")
        .out(&out)
        .arg("--cache")
        .arg(&cache)
        .workers(1)
        .assert_ok();
    (out, cache)
}

/// numpy writes a state with complex off-diagonals and its docs/reference.md
/// probabilities and Poisson counts; qst must return that ρ, not ρᵀ.
#[test]
fn numpy_fixture_is_reconstructed_to_its_rho_not_its_transpose() {
    for n in [3usize, 5] {
        let t = Tmp::new();
        let d = t.path().to_str().unwrap();
        run_ok({
            let mut c = python("make_fixture.py");
            c.args([d, &n.to_string(), "7"]);
            c
        });
        let batch = format!(
            "{{\"id\":\"p-mle\",\"dim\":{n},\"counts_npy\":\"probs.npy\",\"truth\":\"truth.npy\"}}\n\
             {{\"id\":\"p-linear\",\"dim\":{n},\"counts_npy\":\"probs.npy\",\"truth\":\"truth.npy\",\"method\":\"linear\"}}\n\
             {{\"id\":\"c-mle\",\"dim\":{n},\"counts_npy\":\"counts.npy\",\"truth\":\"truth.npy\"}}\n"
        );
        let (out, _) = run_batch(&t, &batch);
        let rs = results(&out);
        assert_eq!(rs.len(), 3);
        for id in ["p-mle", "p-linear"] {
            let r = by_id(&rs, id);
            assert_eq!(r["status"], "ok", "{r}");
            assert!(r["fidelity"].as_f64().unwrap() >= 0.9999, "{r}");
        }
        assert!(by_id(&rs, "c-mle")["fidelity"].as_f64().unwrap() >= 0.99);
        // numpy compares the written ρ with its truth and with the truth's transpose.
        for id in ["p-mle", "p-linear"] {
            let mut c = python("compare_rho.py");
            c.arg(t.join("truth.npy"))
                .arg(out.join(format!("rho/{id}.npy")));
            println!("{}", run_ok(c));
        }
    }
}

/// qst writes ρ and counts; numpy recomputes ℓ from ρ, the counts and qst's
/// projector file, and checks the documented bound of every converged job.
#[test]
fn numpy_recomputes_loglik_and_certificate_from_qst_files() {
    use rand::SeedableRng;
    use rand_distr::{Distribution, Poisson};
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    for n in [2usize, 3, 4, 6] {
        let t = Tmp::new();
        let d = t.path();
        run_ok({
            let mut c = python("make_fixture.py");
            c.args([d.to_str().unwrap(), &n.to_string(), &n.to_string()]);
            c
        });
        let probs = qst_npy::read_counts(&d.join("probs.npy")).unwrap();
        let mut batch = String::new();
        for (s, shots) in [1e2, 1e3, 1e5].iter().enumerate() {
            let total: f64 = probs.iter().sum();
            let counts: Vec<i64> = probs
                .iter()
                .map(|p| {
                    let mean = shots * p / total;
                    if mean > 0.0 {
                        Poisson::new(mean).unwrap().sample(&mut rng) as i64
                    } else {
                        0
                    }
                })
                .collect();
            qst_npy::write_i8(&d.join(format!("counts{s}.npy")), &counts).unwrap();
            for m in ["mle", "linear"] {
                batch += &format!(
                    "{{\"id\":\"{m}{s}\",\"dim\":{n},\"counts_npy\":\"counts{s}.npy\",\"method\":\"{m}\"}}\n"
                );
            }
        }
        let (out, cache) = run_batch(&t, &batch);
        let rs = results(&out);
        let proj = cache.join(format!("nopovm_n{n}.npy"));
        let mut c = python("check_results.py");
        c.arg(&proj).arg("1e-8");
        for s in 0..3 {
            let r = by_id(&rs, &format!("mle{s}"));
            assert_eq!(r["status"], "ok", "{r}");
            assert_eq!(r["converged"], true, "{r}");
            c.arg(out.join(format!("rho/mle{s}.npy")))
                .arg(d.join(format!("counts{s}.npy")))
                .arg(r["log_likelihood"].as_f64().unwrap().to_string());
            // The MLE is at least as likely as the linear-inversion result.
            let lin = &by_id(&rs, &format!("linear{s}"))["log_likelihood"];
            if let Some(l) = lin.as_f64() {
                assert!(
                    r["log_likelihood"].as_f64().unwrap() >= l - 1e-9 * l.abs(),
                    "{r} vs {lin}"
                );
            }
        }
        println!("{}", run_ok(c));
        if n == 2 {
            let mut b = python("check_bloch.py");
            b.arg(&proj)
                .arg(out.join("rho/mle0.npy"))
                .arg(d.join("counts0.npy"));
            println!("{}", run_ok(b));
        }
    }
}

/// Python's own json and csv modules find in summary.csv exactly the numbers
/// of results.jsonl (both are rebuilt from the same results; no float drifts
/// by an ulp on the way).
#[test]
fn summary_csv_carries_exactly_the_numbers_of_results_jsonl() {
    let t = Tmp::new();
    let batch = t.join("g.jsonl");
    t.qst_gen(&batch)
        .args(["--dims", "2,3,8", "--per-dim", "8", "--seed", "5"])
        .assert_ok();
    let out = t.join("out");
    t.qst_run(&batch)
        .out(&out)
        .arg("--cache")
        .arg(t.join("private-cache"))
        .workers(2)
        .assert_ok();
    let mut c = python("check_summary.py");
    c.arg(&out);
    println!("{}", run_ok(c));
}
