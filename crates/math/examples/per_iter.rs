//! Seconds per MLE iteration (fixed-iteration mode, scratch reused) and one
//! full default run for `nopovm` at the given dimensions:
//! `cargo run --release -p qst-math --example per_iter -- 16 32 64 256`.

// `clippy::pedantic` is reviewed (docs/ARCHITECTURE.md, "Lints"); these do not fit:
#![allow(
    // Dimensions, counts and indices are far below 2^53: exact as f64.
    clippy::cast_precision_loss,
    // Linear algebra is named as in the reference: n, k, a, b, i, j, p, q.
    clippy::many_single_char_names
)]

use std::time::Instant;

use qst_math::{
    C64, Mat, MleOptions, MleScratch, Projectors, fidelity, mle_with_scratch, probabilities,
};
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Poisson, StandardNormal};

fn main() {
    let dims: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|s| s.parse().ok())
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    for n in dims {
        let proj = Projectors::Nopovm { n };
        let a = Mat::from_fn(n, 2, |_, _| {
            C64::new(
                rng.sample::<f64, _>(StandardNormal),
                rng.sample::<f64, _>(StandardNormal),
            )
        });
        let m = &a * a.adjoint();
        let tr: f64 = (0..n).map(|i| m[(i, i)].re).sum();
        let truth = Mat::from_fn(n, n, |i, j| m[(i, j)] / tr);
        let p = probabilities(&proj, truth.as_ref());
        let counts: Vec<f64> = p
            .iter()
            .map(|&x| {
                Poisson::new((x * 1e3 * (n * n) as f64).max(1e-300))
                    .map_or(0.0, |d| d.sample(&mut rng))
            })
            .collect();
        let t = Instant::now();
        let mut s = MleScratch::new(&proj).unwrap();
        let setup = t.elapsed().as_secs_f64();
        let iters = (2000 / n).max(3) as u64;
        let fixed = MleOptions {
            max_iters: iters,
            fixed_iterations: true,
            ..Default::default()
        };
        mle_with_scratch(
            &proj,
            &counts,
            &MleOptions {
                max_iters: 2,
                ..fixed.clone()
            },
            &mut s,
        )
        .unwrap();
        let t = Instant::now();
        mle_with_scratch(&proj, &counts, &fixed, &mut s).unwrap();
        let per = t.elapsed().as_secs_f64() / iters as f64;
        let t = Instant::now();
        let r = mle_with_scratch(&proj, &counts, &MleOptions::default(), &mut s).unwrap();
        let full = t.elapsed().as_secs_f64();
        println!(
            "n={n}: setup {setup:.3}s, {:.3} ms/iteration ({iters} fixed); noisy rank-2 job: {} iterations, converged={}, {full:.2}s, F={:.6}",
            per * 1e3,
            r.iterations,
            r.converged,
            fidelity(s.rho(), truth.as_ref())
        );
    }
}
