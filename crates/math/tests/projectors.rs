//! The projector sets: `nopovm` order and phase, the documented convention for
//! p_k in every form, the zero-copy M, and docs/reference.md validation.

// `clippy::pedantic` is reviewed (docs/ARCHITECTURE.md, "Lints"); these do not fit:
#![allow(
    // Docs write formulas (p_k, ψ_k, ρ_true): math, not code names.
    clippy::doc_markdown,
    // Dimensions, counts and indices are far below 2^53: exact as f64.
    clippy::cast_precision_loss
)]

mod common;

use common::*;
use qst_math::{
    C64, Mat, MathError, Projectors, gram, measurement_matrix, nopovm_ket, nopovm_slice,
    probabilities, validate_dense,
};

#[test]
fn nopovm_kets_follow_spec_order_and_phase() {
    for n in [2, 3, 4, 7] {
        let spec = spec_kets(n);
        assert_eq!(spec.len(), n * n);
        for (k, psi) in spec.iter().enumerate() {
            assert_eq!(&nopovm_ket(n, k), psi, "n={n} k={k}");
        }
    }
    // Spot checks written out by hand for n = 3: k = 3 is (e0+e1)/√2,
    // k = 4 is (e0 − 𝑖e1)/√2, k = 8 is (e1 − 𝑖e2)/√2.
    let s = 1.0 / 2f64.sqrt();
    assert_eq!(nopovm_ket(3, 3), vec![c(s, 0.0), c(s, 0.0), c(0.0, 0.0)]);
    assert_eq!(nopovm_ket(3, 4), vec![c(s, 0.0), c(0.0, -s), c(0.0, 0.0)]);
    assert_eq!(nopovm_ket(3, 8), vec![c(0.0, 0.0), c(s, 0.0), c(0.0, -s)]);
}

#[test]
fn nopovm_slice_is_the_ket_outer_product() {
    let n = 5;
    let dense = dense_from_kets(n, &spec_kets(n));
    let mut out = vec![c(9.0, 9.0); n * n];
    for k in 0..n * n {
        nopovm_slice(n, k, &mut out);
        assert_eq!(&out[..], &dense[k * n * n..(k + 1) * n * n], "k={k}");
    }
    // Π[i, j] = ψ[i]·conj(ψ[j]) = 𝑖/2 for (e_i − 𝑖e_j)/√2.
    nopovm_slice(2, 3, &mut out[..4]);
    assert!((out[1] - c(0.0, 0.5)).norm() < 1e-15, "{}", out[1]);
    assert!((out[2] - c(0.0, -0.5)).norm() < 1e-15, "{}", out[2]);
}

#[test]
fn nopovm_gram_matches_closed_form() {
    for n in [2, 3, 6] {
        let g = gram(&Projectors::Nopovm { n });
        for i in 0..n {
            for j in 0..n {
                let want = match i.cmp(&j) {
                    std::cmp::Ordering::Equal => c(n as f64, 0.0),
                    std::cmp::Ordering::Less => c(0.5, 0.5),
                    std::cmp::Ordering::Greater => c(0.5, -0.5),
                };
                assert!(
                    (g[(i, j)] - want).norm() < 1e-14,
                    "n={n} G[{i},{j}] = {}",
                    g[(i, j)]
                );
            }
        }
    }
}

#[test]
fn probabilities_equal_the_spec_double_sum_in_every_form() {
    let mut r = rng(1);
    for n in [2, 3, 5, 8] {
        let kets = spec_kets(n);
        let dense = dense_from_kets(n, &kets);
        let flat_kets = flat(&kets);
        for rank in [1, n] {
            let rho = random_state(n, rank, &mut r);
            let want = explicit_probs(n, &dense, rho.as_ref());
            for proj in [
                Projectors::Nopovm { n },
                Projectors::Kets {
                    n,
                    kets: &flat_kets,
                },
                Projectors::Dense { n, data: &dense },
            ] {
                let p = probabilities(&proj, rho.as_ref());
                assert_eq!(p.len(), n * n);
                for k in 0..n * n {
                    assert!((p[k] - want[k].re).abs() < 1e-13, "{proj:?} k={k}");
                }
            }
        }
    }
    // A custom rank-1 set and a custom dense set against the same double sum.
    let n = 3;
    let kets = random_kets(n, &mut r);
    let dense_k = dense_from_kets(n, &kets);
    let dense = random_dense(n, &mut r);
    let rho = random_state(n, 2, &mut r);
    let fk = flat(&kets);
    let pk = probabilities(&Projectors::Kets { n, kets: &fk }, rho.as_ref());
    for (a, b) in pk.iter().zip(explicit_probs(n, &dense_k, rho.as_ref())) {
        assert!((a - b.re).abs() < 1e-13);
    }
    let pd = probabilities(&Projectors::Dense { n, data: &dense }, rho.as_ref());
    for (a, b) in pd.iter().zip(explicit_probs(n, &dense, rho.as_ref())) {
        assert!((a - b.re).abs() < 1e-13);
    }
}

#[test]
fn probabilities_distinguish_rho_from_its_transpose() {
    // ρ = |ψ⟩⟨ψ| with ψ = (1, 𝑖)/√2: the (e0 − 𝑖e1)/√2 projector (k = 3) sees
    // p = ½ + Im ρ01 = ½ − ½ = 0, and ρᵀ gives 1.
    let rho = Mat::from_fn(2, 2, |i, j| {
        [[c(0.5, 0.0), c(0.0, -0.5)], [c(0.0, 0.5), c(0.5, 0.0)]][i][j]
    });
    let p = probabilities(&Projectors::Nopovm { n: 2 }, rho.as_ref());
    assert!(
        (p[3] - 0.0).abs() < 1e-15 && (p[2] - 0.5).abs() < 1e-15,
        "{p:?}"
    );
    let pt = probabilities(
        &Projectors::Nopovm { n: 2 },
        transpose(rho.as_ref()).as_ref(),
    );
    assert!((pt[3] - 1.0).abs() < 1e-15, "{pt:?}");
}

#[test]
fn measurement_matrix_is_a_zero_copy_view_with_spec_layout() {
    let n = 3;
    let dense = dense_from_kets(n, &spec_kets(n));
    let m = measurement_matrix(n, &dense);
    assert_eq!((m.nrows(), m.ncols()), (n * n, n * n));
    assert_eq!(m.as_ptr(), dense.as_ptr());
    for k in 0..n * n {
        for a in 0..n {
            for b in 0..n {
                assert_eq!(m[(k, a * n + b)], dense[k * n * n + a * n + b]);
            }
        }
    }
    // p = M·x with x[a·n + b] = ρ[b, a].
    let rho = random_state(n, 2, &mut rng(3));
    let x = Mat::from_fn(n * n, 1, |i, _| rho[(i % n, i / n)]);
    let p = m * &x;
    let want = probabilities(&Projectors::Nopovm { n }, rho.as_ref());
    for k in 0..n * n {
        assert!((p[(k, 0)].re - want[k]).abs() < 1e-14 && p[(k, 0)].im.abs() < 1e-14);
    }
}

fn invalid(r: Result<(), MathError>) -> String {
    match r {
        Err(MathError::InvalidProjectors(s)) => s,
        other => panic!("expected InvalidProjectors, got {other:?}"),
    }
}

#[test]
fn validation_accepts_valid_sets() {
    let mut r = rng(4);
    for n in [2, 3, 4] {
        validate_dense(n, &dense_from_kets(n, &spec_kets(n))).unwrap();
        validate_dense(n, &random_dense(n, &mut r)).unwrap();
        validate_dense(n, &dense_from_kets(n, &random_kets(n, &mut r))).unwrap();
    }
}

#[test]
fn validation_rejects_each_spec_failure_with_its_sentence() {
    let n = 3;
    let good = dense_from_kets(n, &spec_kets(n));

    // Not a whole number of n×n matrices.
    let msg = invalid(validate_dense(n, &good[..good.len() - 1]));
    assert!(msg.contains("not a whole number of 3x3 matrices"), "{msg}");

    // Too few projectors.
    let msg = invalid(validate_dense(n, &good[..8 * 9]));
    assert!(
        msg.contains("K = 8") && msg.contains("fewer than n² = 9"),
        "{msg}"
    );

    // Projector 7 not Hermitian.
    let mut bad = good.clone();
    bad[7 * 9 + 1] += c(3e-3, 0.0);
    let msg = invalid(validate_dense(n, &bad));
    assert!(
        msg.starts_with("projector 7 is not Hermitian: max|Π − Π†| = 3.000e-3"),
        "{msg}"
    );

    // Projector 4 not PSD: −Π.
    let mut bad = good.clone();
    for z in &mut bad[4 * 9..5 * 9] {
        *z = -*z;
    }
    let msg = invalid(validate_dense(n, &bad));
    assert!(
        msg.starts_with("projector 4 is not positive semidefinite: λ_min = -1.000e0"),
        "{msg}"
    );

    // Not informationally complete: projector 8 replaced by a copy of 0.
    let mut bad = good.clone();
    let first: Vec<C64> = bad[..9].to_vec();
    bad[8 * 9..9 * 9].copy_from_slice(&first);
    let msg = invalid(validate_dense(n, &bad));
    assert_eq!(
        msg,
        "the projector set is not informationally complete: M has numerical rank 8, not n² = 9"
    );

    // Non-finite entries.
    let mut bad = good.clone();
    bad[2 * 9 + 4] = c(f64::NAN, 0.0);
    let msg = invalid(validate_dense(n, &bad));
    assert!(
        msg.starts_with("projector 2 has a non-finite entry at [1, 1]"),
        "{msg}"
    );
}
