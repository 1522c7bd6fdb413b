//! Rank-1 custom sets run from their kets: `rank_one_kets` recovers kets
//! that reproduce every dense slice, refuses sets with a slice of higher
//! rank, and the MLE from the kets equals the MLE from the dense array; a
//! scratch space is bound to its set and rebuilt for another.

// `clippy::pedantic` is reviewed (docs/ARCHITECTURE.md, "Lints"); these do not fit:
#![allow(
    // Dimensions, counts and indices are far below 2^53: exact as f64.
    clippy::cast_precision_loss,
    // Linear algebra is named as in the reference: n, k, a, b, i, j, p, q.
    clippy::many_single_char_names,
    // Exact comparisons are meant: ±∞, or the same computation run twice.
    clippy::float_cmp
)]

mod common;

use common::*;
use qst_math::{
    C64, MleOptions, MleScratch, Projectors, log_likelihood, mle, mle_with_scratch, probabilities,
    rank_one_kets,
};

#[test]
fn rank_one_dense_set_and_its_kets_give_the_same_mle() {
    let mut r = rng(31);
    for n in [3, 6, 9] {
        let kets = random_kets(n, &mut r);
        let dense = dense_from_kets(n, &kets);
        let got = rank_one_kets(n, &dense).expect("a set of ψψ† is rank 1");
        assert_eq!(got.len(), kets.len() * n);
        // The kets reproduce the slices (ψ up to a phase).
        let back: Vec<Vec<C64>> = got.chunks(n).map(<[C64]>::to_vec).collect();
        let rebuilt = dense_from_kets(n, &back);
        let err = rebuilt
            .iter()
            .zip(&dense)
            .map(|(a, b)| (a - b).norm())
            .fold(0.0, f64::max);
        assert!(err < 1e-14, "n = {n}: slices differ by {err}");

        let dense_set = Projectors::Dense { n, data: &dense };
        let ket_set = Projectors::Kets { n, kets: &got };
        for (rank, shots) in [(1, 1e5), (2, 1e4), (n, 1e3)] {
            let truth = random_state(n, rank, &mut r);
            let p = probabilities(&dense_set, truth.as_ref());
            let counts = poisson_counts(&p, shots, &mut r);
            let opts = MleOptions::default();
            let a = mle(&dense_set, &counts, &opts).unwrap();
            let b = mle(&ket_set, &counts, &opts).unwrap();
            assert!(a.converged && b.converged, "n = {n}, rank {rank}");
            let (la, lb) = (a.log_likelihood, b.log_likelihood);
            assert!(
                (la - lb).abs() <= 1e-9 * la.abs(),
                "n = {n}, rank {rank}: ℓ dense {la}, kets {lb}"
            );
            // Each result scored on the other form: the same function.
            let cross = log_likelihood(&dense_set, &counts, b.rho.as_ref());
            assert!((cross - lb).abs() <= 1e-9 * lb.abs(), "{cross} vs {lb}");
        }
    }
}

#[test]
fn sets_with_a_slice_of_higher_rank_are_not_read_as_kets() {
    let mut r = rng(32);
    let n = 4;
    // Every slice rank 2.
    assert!(rank_one_kets(n, &random_dense(n, &mut r)).is_none());
    // Rank 1 except the last slice, made rank 2 by a 1e-6 admixture.
    let kets = random_kets(n, &mut r);
    let mut dense = dense_from_kets(n, &kets);
    let k = kets.len() - 1;
    let other = &kets[0];
    for a in 0..n {
        for b in 0..n {
            dense[k * n * n + a * n + b] += other[a] * other[b].conj() * 1e-6;
        }
    }
    assert!(rank_one_kets(n, &dense).is_none());
    // The identity as one slice (full rank) among rank-1 ones.
    let mut dense = dense_from_kets(n, &kets);
    for v in &mut dense[..n * n] {
        *v = C64::new(0.0, 0.0);
    }
    for a in 0..n {
        dense[a * n + a] = C64::new(1.0, 0.0);
    }
    assert!(rank_one_kets(n, &dense).is_none());
}

#[test]
fn a_scratch_is_bound_to_its_set_and_rebuilt_for_another() {
    let mut r = rng(33);
    let n = 4;
    let (ka, kb) = (flat(&random_kets(n, &mut r)), flat(&random_kets(n, &mut r)));
    let (a, b) = (
        Projectors::Kets { n, kets: &ka },
        Projectors::Kets { n, kets: &kb },
    );
    let counts: Vec<f64> = (0..a.count()).map(|k| (k % 7 + 1) as f64 * 10.0).collect();
    let opts = MleOptions::default();
    let mut s = MleScratch::new(&a).unwrap();
    assert!(s.is_for(&a) && !s.is_for(&b));
    // Same n and K, other set: rebuilt, so the result is b's own MLE.
    let got = mle_with_scratch(&b, &counts, &opts, &mut s).unwrap();
    assert!(s.is_for(&b));
    let want = mle(&b, &counts, &opts).unwrap();
    assert_eq!(got.log_likelihood, want.log_likelihood);
    assert_eq!(got.iterations, want.iterations);
    // A copy of b's kets at another address is another borrow: rebuilt too.
    let kc = kb.clone();
    let c = Projectors::Kets { n, kets: &kc };
    assert!(!s.is_for(&c));
    let again = mle_with_scratch(&c, &counts, &opts, &mut s).unwrap();
    assert_eq!(again.log_likelihood, want.log_likelihood);
}
