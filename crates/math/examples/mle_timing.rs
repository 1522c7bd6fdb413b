//! Prints iterations, wall time and fidelity of `mle` on `nopovm` for
//! noiseless and Poisson-noisy counts of random states:
//! `cargo run --release -p qst-math --example mle_timing -- 4 16 32 64`.
//! With `dense` among the arguments the set is passed as a dense array, so
//! `mle` starts from I/n instead of the linear-inversion estimate.

// `clippy::pedantic` is reviewed (docs/ARCHITECTURE.md, "Lints"); these do not fit:
#![allow(
    // Dimensions, counts and indices are far below 2^53: exact as f64.
    clippy::cast_precision_loss
)]

use std::time::Instant;

use qst_math::{C64, Mat, MleOptions, Projectors, fidelity, linear, mle, probabilities};
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Poisson, StandardNormal};

fn random_state(n: usize, rank: usize, rng: &mut impl Rng) -> Mat<C64> {
    let a = Mat::from_fn(n, rank, |_, _| {
        C64::new(
            rng.sample::<f64, _>(StandardNormal),
            rng.sample::<f64, _>(StandardNormal),
        )
    });
    let m = &a * a.adjoint();
    let tr: f64 = (0..n).map(|i| m[(i, i)].re).sum();
    Mat::from_fn(n, n, |i, j| m[(i, j)] / tr)
}

fn main() {
    let dims: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|s| s.parse().ok())
        .collect();
    let dims = if dims.is_empty() {
        vec![4, 16, 32, 64]
    } else {
        dims
    };
    let dense_form = std::env::args().any(|a| a == "dense");
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for &n in &dims {
        let mut dense = Vec::new();
        if dense_form {
            dense = vec![C64::new(0.0, 0.0); n * n * n * n];
            for (k, chunk) in dense.chunks_mut(n * n).enumerate() {
                qst_math::nopovm_slice(n, k, chunk);
            }
        }
        let proj = if dense_form {
            Projectors::Dense { n, data: &dense }
        } else {
            Projectors::Nopovm { n }
        };
        for (label, rank) in [("pure", 1), ("rank2", 2), ("full", n)] {
            let truth = random_state(n, rank, &mut rng);
            let p = probabilities(&proj, truth.as_ref());
            let noiseless: Vec<f64> = p.iter().map(|&x| x.max(0.0)).collect();
            let shots = 1000.0 * (n * n) as f64;
            let noisy: Vec<f64> = p
                .iter()
                .map(|&x| {
                    let m = (x.max(0.0) * shots).max(1e-300);
                    Poisson::new(m).map_or(0.0, |d| d.sample(&mut rng))
                })
                .collect();
            for (kind, counts) in [("noiseless", &noiseless), ("noisy", &noisy)] {
                let t = Instant::now();
                let r = mle(&proj, counts, &MleOptions::default()).unwrap();
                let secs = t.elapsed().as_secs_f64();
                let lin = linear(&proj, counts, None).unwrap();
                println!(
                    "n={n:3} {label:5} {kind:9} iters={:6} conv={} bound={:.2e} F={:.8} F_lin={:.6} {secs:.4}s ({:.3} ms/iter)",
                    r.iterations,
                    r.converged,
                    r.bound,
                    fidelity(r.rho.as_ref(), truth.as_ref()),
                    fidelity(lin.as_ref(), truth.as_ref()),
                    1e3 * secs / r.iterations.max(1) as f64
                );
            }
        }
    }
}
