//! Times the MLE: `mle-iter N [REPS]` runs the `nopovm` job of dimension N
//! (`qst_bench::counts_for`) REPS times to the default certificate and prints
//! one JSON line: the median job time, its iterations, and the seconds per
//! iteration (median job time / iterations: everything a real iteration
//! costs, line-search trials and convergence tests included).

// `clippy::pedantic` is reviewed (docs/ARCHITECTURE.md, "Lints"); these do not fit:
#![allow(
    // Iteration counts are far below 2^53: exact as f64.
    clippy::cast_precision_loss
)]

use std::time::Instant;

use qst_math::{MleOptions, mle};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let parse = |i: usize, d: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let n = parse(1, 32);
    let reps = parse(2, 5).max(1);
    let counts = qst_bench::counts_for(n);
    let proj = qst_bench::nopovm(n);
    let mut times = Vec::with_capacity(reps);
    let mut last = None;
    for _ in 0..reps {
        let t = Instant::now();
        let r = mle(&proj, &counts, &MleOptions::default());
        times.push(t.elapsed().as_secs_f64());
        match r {
            Ok(r) => last = Some((r.iterations, r.converged)),
            Err(e) => {
                eprintln!("mle-iter: failed to reconstruct n = {n}: {e}");
                std::process::exit(1);
            }
        }
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let (iterations, converged) = last.unwrap_or((0, false));
    let out = serde_json::json!({
        "dim": n,
        "seconds_per_iteration": median / iterations.max(1) as f64,
        "job_seconds": median,
        "job_iterations": iterations,
        "job_converged": converged,
        "reps": reps,
    });
    println!("{out}");
}
