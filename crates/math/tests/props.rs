//! Property tests: reconstructions are always density matrices; `nopovm`
//! projectors are rank-1 projectors and M has rank n²; the three forms of a
//! set give the same probabilities.

// `clippy::pedantic` is reviewed (docs/ARCHITECTURE.md, "Lints"); these do not fit:
#![allow(
    // Dimensions, counts and indices are far below 2^53: exact as f64.
    clippy::cast_precision_loss
)]

mod common;

use common::*;
use proptest::prelude::*;
use qst_math::{
    C64, Mat, MleOptions, Projectors, linear, measurement_matrix, mle, nopovm_slice, probabilities,
};

fn counts_strategy() -> impl Strategy<Value = (usize, Vec<f64>)> {
    (2usize..6).prop_flat_map(|n| {
        // Integer-like counts with many zeros, plus a guaranteed positive one.
        (
            Just(n),
            prop::collection::vec(prop_oneof![Just(0.0), 0.0f64..1000.0], n * n),
            0..n * n,
        )
            .prop_map(|(n, mut v, i)| {
                v[i] += 1.0;
                (n, v)
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn mle_and_linear_always_return_density_matrices((n, counts) in counts_strategy()) {
        let proj = Projectors::Nopovm { n };
        let m = mle(&proj, &counts, &MleOptions::default()).unwrap();
        assert_density(m.rho.as_ref(), 1e-10);
        prop_assert!(m.log_likelihood <= 0.0);
        match linear(&proj, &counts, None) {
            Ok(l) => assert_density(l.as_ref(), 1e-10),
            // Only when the basis counts are all zero.
            Err(e) => prop_assert!(counts[..n].iter().all(|&c| c == 0.0), "{e}"),
        }
    }

    #[test]
    fn dense_kets_and_nopovm_forms_agree(n in 2usize..7, rank in 1usize..4, seed in any::<u64>()) {
        let mut r = rng(seed);
        let rho = random_state(n, rank.min(n), &mut r);
        let mut dense = vec![c(0.0, 0.0); n * n * n * n];
        for (k, chunk) in dense.chunks_mut(n * n).enumerate() {
            nopovm_slice(n, k, chunk);
        }
        let kets: Vec<C64> = (0..n * n).flat_map(|k| qst_math::nopovm_ket(n, k)).collect();
        let a = probabilities(&Projectors::Nopovm { n }, rho.as_ref());
        let b = probabilities(&Projectors::Dense { n, data: &dense }, rho.as_ref());
        let k = probabilities(&Projectors::Kets { n, kets: &kets }, rho.as_ref());
        for i in 0..n * n {
            prop_assert!((a[i] - b[i]).abs() < 1e-14 && (a[i] - k[i]).abs() < 1e-14);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn nopovm_projectors_are_rank_one_projectors_and_m_has_full_rank(n in 2usize..12) {
        let nn = n * n;
        let mut dense = vec![c(0.0, 0.0); nn * nn];
        for (k, chunk) in dense.chunks_mut(nn).enumerate() {
            nopovm_slice(n, k, chunk);
            let p = Mat::from_fn(n, n, |a, b| chunk[a * n + b]);
            let p2 = &p * &p;
            let tr: C64 = (0..n).map(|i| p[(i, i)]).sum();
            prop_assert!((tr - c(1.0, 0.0)).norm() < 1e-15, "n={} k={} trace {}", n, k, tr);
            for a in 0..n {
                for b in 0..n {
                    prop_assert!((p2[(a, b)] - p[(a, b)]).norm() < 1e-15, "n={} k={}: Π² ≠ Π", n, k);
                    prop_assert!((p[(a, b)] - p[(b, a)].conj()).norm() == 0.0);
                }
            }
        }
        let s = measurement_matrix(n, &dense).singular_values().unwrap();
        let tol = nn as f64 * f64::EPSILON * s[0];
        prop_assert_eq!(s.iter().filter(|&&v| v > tol).count(), nn);
        // Well conditioned, not just barely full rank.
        prop_assert!(s[nn - 1] > 0.1 * s[0] / n as f64, "n={}: σ_min {}", n, s[nn - 1]);
    }
}
