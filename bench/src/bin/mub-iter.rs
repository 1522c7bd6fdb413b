//! `mub` against `nopovm` per MLE iteration: `mub-iter N [REPS]` times, in
//! this one process and on the same state, fixed iterations of both sets at
//! dimension N (a prime power) on a reused scratch — the time of 2m
//! iterations minus that of m, so set-up and the final certificate cancel,
//! each the fastest of REPS runs in this thread's CPU time (other processes
//! on a shared machine do not count), the two sets interleaved (and, 3 runs, the
//! `mub` set as plain kets, its computational basis moved last, so that the
//! fast form is not recognized) — and one whole job of each to the default
//! certificate; prints one JSON line with the per-iteration ratio mub/nopovm.

// `clippy::pedantic` is reviewed (docs/ARCHITECTURE.md, "Lints"); these do not fit:
#![allow(
    // Seconds, nanoseconds and iteration counts are far below 2^53: exact as f64.
    clippy::cast_precision_loss
)]

use std::time::Instant;

use nix::time::{ClockId, clock_gettime};

use qst_math::{Design, MleOptions, MleScratch, Projectors, mle, mle_with_scratch};

/// This thread's CPU time in seconds.
fn cpu_seconds() -> f64 {
    match clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID) {
        Ok(t) => t.tv_sec() as f64 + t.tv_nsec() as f64 * 1e-9,
        Err(e) => {
            eprintln!("mub-iter: failed to read the thread's CPU time: {e}");
            std::process::exit(1);
        }
    }
}

/// One set's fixed-iteration runs on a reused scratch.
struct Timer<'a> {
    proj: Projectors<'a>,
    counts: Vec<f64>,
    scratch: MleScratch,
    /// The fastest run of m and of 2m iterations so far.
    best: [f64; 2],
}

impl<'a> Timer<'a> {
    fn new(proj: Projectors<'a>, counts: Vec<f64>) -> Self {
        let Ok(scratch) = MleScratch::new(&proj) else {
            eprintln!("mub-iter: failed to set up the scratch");
            std::process::exit(1);
        };
        Timer {
            proj,
            counts,
            scratch,
            best: [f64::INFINITY; 2],
        }
    }

    /// Runs m and 2m fixed iterations once each, keeping the fastest times.
    fn sample(&mut self, m: u64) {
        for (i, k) in [m, 2 * m].into_iter().enumerate() {
            let o = MleOptions {
                max_iters: k,
                fixed_iterations: true,
                ..Default::default()
            };
            let t = cpu_seconds();
            if let Err(e) = mle_with_scratch(&self.proj, &self.counts, &o, &mut self.scratch) {
                eprintln!("mub-iter: failed to iterate: {e}");
                std::process::exit(1);
            }
            self.best[i] = self.best[i].min(cpu_seconds() - t);
        }
    }

    /// Seconds per iteration: (fastest 2m − fastest m)/m.
    fn per_iteration(&self, m: u64) -> f64 {
        (self.best[1] - self.best[0]).max(0.0) / m as f64
    }
}

/// (seconds, iterations, converged) of one whole job.
fn job(proj: &Projectors, counts: &[f64]) -> (f64, u64, bool) {
    let t = Instant::now();
    match mle(proj, counts, &MleOptions::default()) {
        Ok(r) => (t.elapsed().as_secs_f64(), r.iterations, r.converged),
        Err(e) => {
            eprintln!("mub-iter: failed to reconstruct: {e}");
            std::process::exit(1);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let parse = |i: usize, d: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let n = parse(1, 32);
    let reps = parse(2, 5).max(1);
    if let Err(e) = Design::Mub.check_dim(n) {
        eprintln!("mub-iter: {e}");
        std::process::exit(2);
    }
    let kets = Design::Mub.kets(n);
    let mub = Design::Mub.projectors(n, &kets);
    let nopovm = qst_bench::nopovm(n);
    let (cm, cn) = (
        qst_bench::mub_counts_for(n, &kets),
        qst_bench::counts_for(n),
    );
    let m = (4000 / n).max(10) as u64;
    let mut tn = Timer::new(nopovm, cn.clone());
    let mut tm = Timer::new(mub, cm.clone());
    // The same set with the computational basis moved last: not recognized
    // as `mub`, so it runs as plain kets (the dense products), as before.
    let rotated: Vec<_> = kets[n * n..]
        .iter()
        .chain(&kets[..n * n])
        .copied()
        .collect();
    let kets_form = Projectors::Kets { n, kets: &rotated };
    let mut tk = Timer::new(kets_form, qst_bench::mub_counts_for(n, &rotated));
    // Interleaved, so that the sets see the same machine.
    for i in 0..reps {
        tn.sample(m);
        tm.sample(m);
        if i < 3 {
            tk.sample(m);
        }
    }
    let (it_nopovm, it_mub) = (tn.per_iteration(m), tm.per_iteration(m));
    let (jn, jm) = (job(&nopovm, &cn), job(&mub, &cm));
    let out = serde_json::json!({
        "dim": n,
        "nopovm_seconds_per_iteration": it_nopovm,
        "mub_seconds_per_iteration": it_mub,
        "ratio_mub_over_nopovm": it_mub / it_nopovm,
        "mub_as_kets_seconds_per_iteration": tk.per_iteration(m),
        "nopovm_job": {"seconds": jn.0, "iterations": jn.1, "converged": jn.2},
        "mub_job": {"seconds": jm.0, "iterations": jm.1, "converged": jm.2},
        "fixed_iterations": m,
        "reps": reps,
    });
    println!("{out}");
}
