//! Times the MLE on a rank-1 custom set, in-process: `custom-iter [K] [N]
//! [REPS]` draws K random unit kets of dimension N (default 1600 and 40),
//! builds the dense (K, N, N) array of their projectors, and runs the same
//! jobs (a pure, a rank-2 and a full-rank state; Poisson-like counts from a
//! fixed seed) on `Projectors::Dense` and on `Projectors::Kets`. Prints one
//! JSON line per job: iterations and median seconds of each form, and ℓ.

// `clippy::pedantic` is reviewed (docs/ARCHITECTURE.md, "Lints"); these do not fit:
#![allow(
    // A 53-bit draw, dimensions and counts are far below 2^53: exact as f64.
    clippy::cast_precision_loss,
    // Sizes are named as in the doc above and the reference: k, n, a, b.
    clippy::many_single_char_names
)]

use std::time::Instant;

use qst_math::{C64, Mat, MleOptions, MleScratch, Projectors, mle_with_scratch, probabilities};

struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn gauss(&mut self) -> f64 {
        (-2.0 * self.uniform().ln()).sqrt() * (std::f64::consts::TAU * self.uniform()).cos()
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let parse = |i: usize, d: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let (k, n, reps) = (parse(1, 1600), parse(2, 40), parse(3, 3).max(1));
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut kets = Vec::with_capacity(k * n);
    for _ in 0..k {
        let v: Vec<C64> = (0..n).map(|_| C64::new(rng.gauss(), rng.gauss())).collect();
        let norm = v.iter().map(C64::norm_sqr).sum::<f64>().sqrt();
        kets.extend(v.iter().map(|z| z / norm));
    }
    let mut dense = Vec::with_capacity(k * n * n);
    for psi in kets.chunks(n) {
        for a in 0..n {
            for b in 0..n {
                dense.push(psi[a] * psi[b].conj());
            }
        }
    }
    let dense_set = Projectors::Dense { n, data: &dense };
    let ket_set = Projectors::Kets { n, kets: &kets };
    let opts = MleOptions::default();
    let (Ok(mut sd), Ok(mut sk)) = (MleScratch::new(&dense_set), MleScratch::new(&ket_set)) else {
        eprintln!("custom-iter: the random set is not informationally complete");
        std::process::exit(1);
    };
    for (rank, shots) in [(1, 1e5), (2, 1e5), (n, 1e4)] {
        let a = Mat::<C64>::from_fn(n, rank, |_, _| C64::new(rng.gauss(), rng.gauss()));
        let rho = &a * a.adjoint();
        let p = probabilities(&ket_set, rho.as_ref());
        let total: f64 = p.iter().sum();
        let counts: Vec<f64> = p
            .iter()
            .map(|pk| {
                let m = shots * pk.max(0.0) / total;
                (m + m.sqrt() * rng.gauss()).round().max(0.0)
            })
            .collect();
        let time = |proj: &Projectors, s: &mut MleScratch| {
            let mut times = Vec::new();
            let mut last = None;
            for _ in 0..reps {
                let t = Instant::now();
                let r = mle_with_scratch(proj, &counts, &opts, s);
                times.push(t.elapsed().as_secs_f64());
                last = r.ok();
            }
            times.sort_by(f64::total_cmp);
            (times[times.len() / 2], last)
        };
        let (td, rd) = time(&dense_set, &mut sd);
        let (tk, rk) = time(&ket_set, &mut sk);
        let (Some(rd), Some(rk)) = (rd, rk) else {
            eprintln!("custom-iter: a job failed");
            std::process::exit(1);
        };
        let out = serde_json::json!({
            "k": k, "n": n, "rank": rank, "shots": shots,
            "dense_seconds": td, "dense_iterations": rd.iterations,
            "kets_seconds": tk, "kets_iterations": rk.iterations,
            "ratio": td / tk,
            "dense_log_likelihood": rd.log_likelihood, "kets_log_likelihood": rk.log_likelihood,
        });
        println!("{out}");
    }
}
