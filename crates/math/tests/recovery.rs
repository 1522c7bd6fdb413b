//! Noiseless recovery: from exact probabilities (c_k ∝ p_k(ρ_true)) `mle` and
//! `linear` return ρ_true (fidelity ≥ 0.9999) for pure, mixed and
//! rank-deficient states, with `nopovm`, a custom dense set and a custom
//! rank-1 (kets) set; and they return ρ, never ρᵀ.

// `clippy::pedantic` is reviewed (docs/ARCHITECTURE.md, "Lints"); these do not fit:
#![allow(
    // Docs write formulas (p_k, ψ_k, ρ_true): math, not code names.
    clippy::doc_markdown,
    // Dimensions, counts and indices are far below 2^53: exact as f64.
    clippy::cast_precision_loss,
    // Linear algebra is named as in the reference: n, k, a, b, i, j, p, q.
    clippy::many_single_char_names
)]

mod common;

use common::*;
use qst_math::{C64, Mat, MleOptions, Projectors, fidelity, linear, mle, probabilities};

fn exact_counts(proj: &Projectors, rho: &Mat<C64>, scale: f64) -> Vec<f64> {
    // p_k from the documented double sum over the dense form, not from the crate.
    let n = proj.dim();
    let dense: Vec<C64> = match *proj {
        Projectors::Nopovm { n } => dense_from_kets(n, &spec_kets(n)),
        Projectors::Kets { kets, .. } => {
            let v: Vec<Vec<C64>> = kets.chunks(n).map(<[C64]>::to_vec).collect();
            dense_from_kets(n, &v)
        }
        Projectors::Dense { data, .. } => data.to_vec(),
    };
    explicit_probs(n, &dense, rho.as_ref())
        .iter()
        .map(|p| p.re.max(0.0) * scale)
        .collect()
}

fn check(proj: &Projectors, truth: &Mat<C64>, label: &str) {
    // Probabilities (N = Σp = Tr(Gρ), not an integer) and counts at 10⁶ scale.
    for scale in [1.0, 1e6] {
        let counts = exact_counts(proj, truth, scale);
        let r = mle(proj, &counts, &MleOptions::default()).unwrap();
        let f = fidelity(r.rho.as_ref(), truth.as_ref());
        assert!(f >= 0.9999, "{label} scale {scale}: mle fidelity {f}");
        assert!(
            r.converged,
            "{label} scale {scale}: not converged after {} (bound {})",
            r.iterations, r.bound
        );
        assert_density(r.rho.as_ref(), 1e-10);
        let lin = linear(proj, &counts, None).unwrap();
        let fl = fidelity(lin.as_ref(), truth.as_ref());
        assert!(fl >= 0.9999, "{label} scale {scale}: linear fidelity {fl}");
        assert_density(lin.as_ref(), 1e-10);
    }
}

#[test]
fn nopovm_noiseless_recovery_all_dims_and_ranks() {
    let mut r = rng(10);
    for n in [2, 3, 4, 5, 8, 16] {
        for rank in [1, 2, n / 2 + 1, n] {
            let truth = random_state(n, rank, &mut r);
            check(
                &Projectors::Nopovm { n },
                &truth,
                &format!("nopovm n={n} rank={rank}"),
            );
            // The same set as a dense array and as kets: `mle` starts from I/n there
            // (not from the linear-inversion estimate), so this runs the
            // whole iteration on noiseless data.
            if n <= 8 {
                let dense = dense_from_kets(n, &spec_kets(n));
                let proj = Projectors::Dense { n, data: &dense };
                check(&proj, &truth, &format!("dense nopovm n={n} rank={rank}"));
            }
            let kets = flat(&spec_kets(n));
            let proj = Projectors::Kets { n, kets: &kets };
            check(&proj, &truth, &format!("kets nopovm n={n} rank={rank}"));
        }
    }
}

/// Beyond the documented guarantee: noiseless data of a low-rank state through a
/// custom set (where `mle` iterates from I/n) come back exactly, with exactly
/// that rank (eigenvalues above 1e-10), not with ~1e-5 of trace spread over
/// the directions the state does not use.
#[test]
fn noiseless_low_rank_states_come_back_exact_through_custom_sets() {
    let mut r = rng(13);
    for n in [24, 32] {
        let spec = flat(&spec_kets(n));
        let custom = flat(&random_kets(n, &mut r));
        for rank in [1, 2] {
            let truth = random_state(n, rank, &mut r);
            for (name, proj) in [
                ("nopovm kets", Projectors::Kets { n, kets: &spec }),
                ("random kets", Projectors::Kets { n, kets: &custom }),
            ] {
                let counts = exact_counts(&proj, &truth, 1e6);
                let m = mle(&proj, &counts, &MleOptions::default()).unwrap();
                assert!(m.converged, "{name} n={n} rank={rank}");
                let f = fidelity(m.rho.as_ref(), truth.as_ref());
                assert!(f >= 1.0 - 1e-9, "{name} n={n} rank={rank}: fidelity {f}");
                let fig = qst_math::figures(m.rho.as_ref());
                assert_eq!(fig.rank, rank, "{name} n={n}: rank");
            }
        }
    }
}

#[test]
fn nopovm_noiseless_recovery_of_basis_states_with_zero_counts() {
    // |0⟩ and |n−1⟩ make many p_k exactly 0 (zero counts).
    for n in [2, 4, 8] {
        for i in [0, n - 1] {
            let truth = Mat::from_fn(n, n, |a, b| {
                if a == i && b == i {
                    c(1.0, 0.0)
                } else {
                    c(0.0, 0.0)
                }
            });
            check(
                &Projectors::Nopovm { n },
                &truth,
                &format!("nopovm n={n} |{i}⟩"),
            );
        }
        let mixed = Mat::from_fn(n, n, |a, b| {
            if a == b {
                c(1.0 / n as f64, 0.0)
            } else {
                c(0.0, 0.0)
            }
        });
        check(
            &Projectors::Nopovm { n },
            &mixed,
            &format!("nopovm n={n} I/n"),
        );
    }
}

#[test]
fn custom_sets_noiseless_recovery() {
    let mut r = rng(11);
    for n in [2, 3, 4] {
        let kets = flat(&random_kets(n, &mut r));
        let dense = random_dense(n, &mut r);
        for rank in [1, 2, n] {
            let truth = random_state(n, rank, &mut r);
            check(
                &Projectors::Kets { n, kets: &kets },
                &truth,
                &format!("kets n={n} rank={rank}"),
            );
            check(
                &Projectors::Dense { n, data: &dense },
                &truth,
                &format!("dense n={n} rank={rank}"),
            );
        }
    }
}

#[test]
fn reconstruction_gives_rho_not_its_transpose() {
    let mut r = rng(12);
    for n in [2, 3, 5] {
        // A pure state with large complex off-diagonals: F(ρ, ρᵀ) is far from 1.
        let truth = random_state(n, 1, &mut r);
        let tt = transpose(truth.as_ref());
        assert!(
            fidelity(truth.as_ref(), tt.as_ref()) < 0.99,
            "pick another state"
        );
        let dense = dense_from_kets(n, &spec_kets(n));
        for proj in [
            Projectors::Nopovm { n },
            Projectors::Dense { n, data: &dense },
        ] {
            let counts = exact_counts(&proj, &truth, 1.0);
            let m = mle(&proj, &counts, &MleOptions::default()).unwrap();
            let l = linear(&proj, &counts, None).unwrap();
            for (name, rho) in [("mle", &m.rho), ("linear", &l)] {
                assert!(
                    fidelity(rho.as_ref(), truth.as_ref()) > 0.9999,
                    "{name} n={n}"
                );
                assert!(
                    fidelity(rho.as_ref(), tt.as_ref()) < 0.99,
                    "{name} n={n} gave ρᵀ"
                );
            }
        }
    }
}

#[test]
fn nopovm_closed_form_linear_equals_general_least_squares() {
    // The O(n²) closed form against QR least squares over the dense M of the
    // same set, for random (noisy, not necessarily physical) counts.
    let mut r = rng(13);
    for n in [2, 3, 4, 6] {
        let dense = dense_from_kets(n, &spec_kets(n));
        for _ in 0..3 {
            let truth = random_state(n, 1 + n / 2, &mut r);
            let p = probabilities(&Projectors::Nopovm { n }, truth.as_ref());
            let counts = poisson_counts(&p, 50.0, &mut r);
            let a = linear(&Projectors::Nopovm { n }, &counts, None).unwrap();
            let b = linear(&Projectors::Dense { n, data: &dense }, &counts, None).unwrap();
            for i in 0..n {
                for j in 0..n {
                    assert!((a[(i, j)] - b[(i, j)]).norm() < 1e-10, "n={n} [{i},{j}]");
                }
            }
        }
    }
}

#[test]
fn nopovm_fast_path_matches_dense_and_kets_mle() {
    let mut r = rng(14);
    for n in [2, 3, 5] {
        let kets = spec_kets(n);
        let dense = dense_from_kets(n, &kets);
        let fk = flat(&kets);
        let truth = random_state(n, 2, &mut r);
        let p = probabilities(&Projectors::Nopovm { n }, truth.as_ref());
        let counts = poisson_counts(&p, 1000.0, &mut r);
        let a = mle(&Projectors::Nopovm { n }, &counts, &MleOptions::default()).unwrap();
        let b = mle(
            &Projectors::Dense { n, data: &dense },
            &counts,
            &MleOptions::default(),
        )
        .unwrap();
        let k = mle(
            &Projectors::Kets { n, kets: &fk },
            &counts,
            &MleOptions::default(),
        )
        .unwrap();
        for other in [&b, &k] {
            assert!(other.converged);
            assert!(fidelity(a.rho.as_ref(), other.rho.as_ref()) > 1.0 - 1e-6);
            assert!(
                (a.log_likelihood - other.log_likelihood).abs() <= 1e-6 * a.log_likelihood.abs()
            );
        }
    }
}
