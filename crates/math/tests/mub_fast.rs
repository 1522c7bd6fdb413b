//! The `mub` design through the MLE and linear inversion, where it runs in
//! its fast form (p_k and Σ w_kΠ_k by character transforms): noiseless
//! counts, computed here as ψ_k†ρψ_k from `Design::Mub`'s kets, give back
//! the state; probabilities agree with that direct sum.

// `clippy::pedantic` is reviewed (docs/ARCHITECTURE.md, "Lints"); these do not fit:
#![allow(
    // Docs write formulas (p_k, ψ_k, ρ_true): math, not code names.
    clippy::doc_markdown
)]

use qst_math::{C64, Design, Mat, MleOptions, fidelity, linear, mle, probabilities};
use rand::{Rng, SeedableRng};

/// A random state of rank r.
fn state(n: usize, r: usize, rng: &mut impl Rng) -> Mat<C64> {
    let b = Mat::from_fn(n, r, |_, _| {
        C64::new(rng.random::<f64>() - 0.5, rng.random::<f64>() - 0.5)
    });
    let m = &b * b.adjoint();
    let tr: f64 = (0..n).map(|i| m[(i, i)].re).sum();
    Mat::from_fn(n, n, |i, j| m[(i, j)] / tr)
}

/// ψ_k†ρψ_k for every ket.
fn direct(kets: &[C64], n: usize, rho: &Mat<C64>) -> Vec<f64> {
    kets.chunks_exact(n)
        .map(|psi| {
            let mut s = C64::new(0.0, 0.0);
            for a in 0..n {
                for c in 0..n {
                    s += psi[a].conj() * rho[(a, c)] * psi[c];
                }
            }
            s.re
        })
        .collect()
}

#[test]
fn noiseless_mub_data_come_back() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(21);
    for (n, r) in [
        (2, 1),
        (3, 2),
        (4, 1),
        (5, 5),
        (7, 1),
        (8, 2),
        (9, 1),
        (16, 1),
        (25, 3),
        (32, 1),
    ] {
        let kets = Design::Mub.kets(n);
        let proj = Design::Mub.projectors(n, &kets);
        let rho = state(n, r, &mut rng);
        let p = direct(&kets, n, &rho);
        for (k, (got, want)) in probabilities(&proj, rho.as_ref())
            .iter()
            .zip(&p)
            .enumerate()
        {
            assert!(
                (got - want).abs() <= 1e-12,
                "n = {n}: p_{k} {got} vs {want}"
            );
        }
        let counts: Vec<f64> = p.iter().map(|&x| x.max(0.0) * 1e6).collect();
        let m = mle(&proj, &counts, &MleOptions::default()).unwrap();
        assert!(m.converged, "n = {n}, rank {r}: bound {}", m.bound);
        let f = fidelity(m.rho.as_ref(), rho.as_ref());
        assert!(f >= 1.0 - 1e-7, "n = {n}, rank {r}: MLE fidelity {f}");
        let l = linear(&proj, &counts, Some(Design::Mub)).unwrap();
        let f = fidelity(l.as_ref(), rho.as_ref());
        assert!(f >= 1.0 - 1e-9, "n = {n}, rank {r}: linear fidelity {f}");
    }
}
