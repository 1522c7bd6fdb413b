//! Times the MLE on the jobs of a JSON Lines batch of `nopovm` jobs
//! (`{"id", "dim", "counts"}` per line, as `bench/mixed_batch.py` writes
//! them), in-process: `mle-batch BATCH [REPS]` prints one JSON line per job
//! with its iterations, how many were projected-gradient steps, ℓ, and the
//! median seconds over REPS runs on a scratch reused across jobs of one n.

use std::collections::HashMap;
use std::time::Instant;

use qst_math::{MleOptions, MleScratch, Projectors, mle_with_scratch};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: mle-batch BATCH.jsonl [REPS]");
        std::process::exit(2);
    };
    let reps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5).max(1);
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("mle-batch: failed to read {path}: {e}");
            std::process::exit(2);
        }
    };
    let mut scratches: HashMap<usize, MleScratch> = HashMap::new();
    let mut total = 0.0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let job: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("mle-batch: bad line: {e}");
                std::process::exit(2);
            }
        };
        let id = job["id"].as_str().unwrap_or("?").to_string();
        let n = job["dim"]
            .as_u64()
            .and_then(|d| usize::try_from(d).ok())
            .unwrap_or(0);
        let counts: Vec<f64> = job["counts"]
            .as_array()
            .map(|a| a.iter().filter_map(serde_json::Value::as_f64).collect())
            .unwrap_or_default();
        let proj = Projectors::Nopovm { n };
        let opts = MleOptions::default();
        let scratch = match scratches.entry(n) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => match MleScratch::new(&proj) {
                Ok(s) => e.insert(s),
                Err(err) => {
                    eprintln!("mle-batch: {id}: {err}");
                    std::process::exit(1);
                }
            },
        };
        let mut times = Vec::with_capacity(reps);
        let mut last = None;
        for _ in 0..reps {
            let t = Instant::now();
            let r = mle_with_scratch(&proj, &counts, &opts, scratch);
            times.push(t.elapsed().as_secs_f64());
            match r {
                Ok(r) => last = Some(r),
                Err(e) => {
                    eprintln!("mle-batch: {id}: {e}");
                    std::process::exit(1);
                }
            }
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        total += median;
        let Some(r) = last else { continue };
        let out = serde_json::json!({
            "id": id,
            "iterations": r.iterations,
            "projected_iterations": r.projected_iterations,
            "converged": r.converged,
            "log_likelihood": r.log_likelihood,
            "seconds": median,
        });
        println!("{out}");
    }
    println!("{}", serde_json::json!({ "total_seconds": total }));
}
