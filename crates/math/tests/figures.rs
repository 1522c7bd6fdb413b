//! The docs/reference.md figures, fidelity and the density-matrix check, against
//! closed forms.

// `clippy::pedantic` is reviewed (docs/ARCHITECTURE.md, "Lints"); these do not fit:
#![allow(
    // Linear algebra is named as in the reference: n, k, a, b, i, j, p, q.
    clippy::many_single_char_names
)]

mod common;

use common::*;
use qst_math::{C64, Mat, check_density_matrix, fidelity, figures};

fn diag(v: &[f64]) -> Mat<C64> {
    Mat::from_fn(v.len(), v.len(), |i, j| {
        if i == j { c(v[i], 0.0) } else { c(0.0, 0.0) }
    })
}

/// U·D·U† for a random unitary U (Q of a QR of a Gaussian matrix).
fn rotate(d: &Mat<C64>, seed: u64) -> Mat<C64> {
    let n = d.nrows();
    let a = random_state(n, n, &mut rng(seed));
    let e = a.self_adjoint_eigen(faer::Side::Lower).unwrap();
    let u = e.U();
    u * d * u.adjoint()
}

#[test]
fn figures_of_known_spectra() {
    let lam = [0.5, 0.3, 0.2, 0.0];
    let rho = rotate(&diag(&lam), 1);
    let f = figures(rho.as_ref());
    assert!((f.purity - (0.25 + 0.09 + 0.04)).abs() < 1e-12);
    assert!((f.trace - 1.0).abs() < 1e-12);
    assert_eq!(f.rank, 3);
    assert!(f.min_eigenvalue.abs() < 1e-12);
    assert!((f.max_eigenvalue - 0.5).abs() < 1e-12);
    let h = -(0.5f64 * 0.5f64.ln() + 0.3 * 0.3f64.ln() + 0.2 * 0.2f64.ln());
    assert!((f.eigenvalue_entropy - h).abs() < 1e-12);
    let pure = figures(rotate(&diag(&[1.0, 0.0, 0.0]), 2).as_ref());
    assert_eq!(pure.rank, 1);
    assert!((pure.purity - 1.0).abs() < 1e-12 && pure.eigenvalue_entropy.abs() < 1e-12);
}

#[test]
fn fidelity_closed_forms() {
    let mut r = rng(3);
    // Pure states: F = |⟨ψ|φ⟩|².
    for n in [2, 5] {
        let a = random_state(n, n, &mut r);
        let e = a.self_adjoint_eigen(faer::Side::Lower).unwrap();
        let (u, v) = (e.U().col(0), e.U().col(1));
        let mix: Vec<C64> = (0..n).map(|i| u[i] * 0.6 + v[i] * c(0.0, 0.8)).collect();
        let p1 = Mat::from_fn(n, n, |i, j| u[i] * u[j].conj());
        let p2 = Mat::from_fn(n, n, |i, j| mix[i] * mix[j].conj());
        assert!((fidelity(p1.as_ref(), p2.as_ref()) - 0.36).abs() < 1e-10);
        assert!((fidelity(p1.as_ref(), p1.as_ref()) - 1.0).abs() < 1e-10);
        assert!(
            fidelity(
                p1.as_ref(),
                Mat::from_fn(n, n, |i, j| v[i] * v[j].conj()).as_ref()
            )
            .abs()
                < 1e-10
        );
    }
    // Commuting states: F = (Σ √(p_i q_i))², symmetric.
    let (p, q) = ([0.5, 0.25, 0.25], [0.1, 0.6, 0.3]);
    let want: f64 = p
        .iter()
        .zip(&q)
        .map(|(a, b)| (a * b as &f64).sqrt())
        .sum::<f64>()
        .powi(2);
    let (rp, rq) = (rotate(&diag(&p), 4), rotate(&diag(&q), 4));
    assert!((fidelity(rp.as_ref(), rq.as_ref()) - want).abs() < 1e-10);
    assert!((fidelity(rq.as_ref(), rp.as_ref()) - want).abs() < 1e-10);
    // Tiny negative eigenvalues are guarded.
    let neg = rotate(&diag(&[1.0 + 1e-14, -1e-14]), 5);
    assert!((fidelity(neg.as_ref(), neg.as_ref()) - 1.0).abs() < 1e-10);
}

#[test]
fn density_matrix_check_names_the_failed_property() {
    let good = rotate(&diag(&[0.7, 0.3, 0.0]), 6);
    assert_eq!(check_density_matrix(good.as_ref(), 1e-6), Ok(()));
    let mut h = good.clone();
    h[(0, 1)] += c(0.0, 1e-3);
    assert!(
        check_density_matrix(h.as_ref(), 1e-6)
            .unwrap_err()
            .starts_with("is not Hermitian: max|ρ − ρ†| = 1.000e-3")
    );
    let t = Mat::from_fn(3, 3, |i, j| good[(i, j)] * 1.01);
    assert!(
        check_density_matrix(t.as_ref(), 1e-6)
            .unwrap_err()
            .starts_with("has trace 1.01")
    );
    let psd = rotate(&diag(&[1.1, -0.1, 0.0]), 7);
    assert!(
        check_density_matrix(psd.as_ref(), 1e-6)
            .unwrap_err()
            .starts_with("is not positive semidefinite: its smallest eigenvalue is -1.000e-1")
    );
    let rect = Mat::<C64>::zeros(2, 3);
    assert_eq!(
        check_density_matrix(rect.as_ref(), 1e-6).unwrap_err(),
        "is 2x3, not a square matrix"
    );
    let mut nan = good.clone();
    nan[(2, 1)] = c(f64::NAN, 0.0);
    assert_eq!(
        check_density_matrix(nan.as_ref(), 1e-6).unwrap_err(),
        "has a non-finite entry at [2, 1]"
    );
}
