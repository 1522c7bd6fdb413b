//! Times MLE iterations: `mle-iter N [ITERS]` prints one JSON line with the
//! seconds per iteration of the `nopovm` kernel at dimension N (the slope
//! between ITERS and 2·ITERS fixed iterations, so set-up cost cancels).

use std::time::Instant;

use qst_math::{MleOptions, mle};

fn time(n: usize, iters: u64, counts: &[f64]) -> f64 {
    let opts = MleOptions {
        max_iters: iters,
        fixed_iterations: true,
        ..Default::default()
    };
    let t = Instant::now();
    let r = mle(&qst_bench::nopovm(n), counts, &opts);
    let s = t.elapsed().as_secs_f64();
    assert!(r.is_ok(), "mle failed at n = {n}");
    s
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let parse = |i: usize, d: u64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let n = parse(1, 32) as usize;
    let iters = parse(2, 50);
    let counts = qst_bench::counts_for(n);
    time(n, 2, &counts); // warm up
    let (t1, t2) = (time(n, iters, &counts), time(n, 2 * iters, &counts));
    let per = ((t2 - t1) / iters as f64).max(t2 / (2 * iters) as f64 * 0.5);
    let job = {
        let t = Instant::now();
        let r = mle(&qst_bench::nopovm(n), &counts, &MleOptions::default());
        let s = t.elapsed().as_secs_f64();
        r.map(|r| (s, r.iterations, r.converged)).ok()
    };
    let out = serde_json::json!({
        "dim": n,
        "seconds_per_iteration": per,
        "job_seconds": job.map(|j| j.0),
        "job_iterations": job.map(|j| j.1),
        "job_converged": job.map(|j| j.2),
    });
    println!("{out}");
}
