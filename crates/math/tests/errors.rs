//! Input errors of `mle`, `linear` and the helpers: each is a typed
//! `MathError` with its one-sentence message.

mod common;

use common::*;
use qst_math::{MathError, MleOptions, Projectors, certificate, linear, mle};

#[test]
fn counts_errors_for_both_methods() {
    let proj = Projectors::Nopovm { n: 3 };
    let ok = vec![1.0; 9];
    let cases: Vec<(Vec<f64>, MathError, &str)> = vec![
        (
            vec![1.0; 8],
            MathError::CountsLength {
                expected: 9,
                got: 8,
            },
            "counts has 8 entries but the projector set has 9",
        ),
        (
            vec![1.0; 10],
            MathError::CountsLength {
                expected: 9,
                got: 10,
            },
            "counts has 10 entries but the projector set has 9",
        ),
        (
            {
                let mut v = ok.clone();
                v[4] = -1.0;
                v
            },
            MathError::BadCount {
                index: 4,
                value: -1.0,
            },
            "counts[4] is -1, but counts must be finite and >= 0",
        ),
        (
            {
                let mut v = ok.clone();
                v[2] = f64::INFINITY;
                v
            },
            MathError::BadCount {
                index: 2,
                value: f64::INFINITY,
            },
            "counts[2] is inf, but counts must be finite and >= 0",
        ),
        (vec![0.0; 9], MathError::AllZero, "counts are all zero"),
    ];
    for (counts, err, msg) in cases {
        let a = mle(&proj, &counts, &MleOptions::default()).unwrap_err();
        let b = linear(&proj, &counts, None).unwrap_err();
        assert_eq!(a, err);
        assert_eq!(b, err);
        assert_eq!(a.to_string(), msg);
        assert!(certificate(&proj, &counts, random_state(3, 1, &mut rng(1)).as_ref()).is_err());
    }
    // NaN is not equal to itself: match the variant.
    let mut nan = ok.clone();
    nan[7] = f64::NAN;
    for e in [
        mle(&proj, &nan, &MleOptions::default()).unwrap_err(),
        linear(&proj, &nan, None).unwrap_err(),
    ] {
        assert!(
            matches!(e, MathError::BadCount { index: 7, value } if value.is_nan()),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "counts[7] is NaN, but counts must be finite and >= 0"
        );
    }
}

#[test]
fn linear_rejects_non_positive_trace() {
    // nopovm: Tr X = Σ of the n basis counts; only pair counts → Tr X = 0.
    let n = 3;
    let mut counts = vec![0.0; n * n];
    counts[3] = 5.0;
    counts[6] = 2.0;
    let e = linear(&Projectors::Nopovm { n }, &counts, None).unwrap_err();
    assert_eq!(e, MathError::NonPositiveTrace { trace: 0.0 });
    assert_eq!(
        e.to_string(),
        "linear inversion gave a matrix of trace 0 <= 0"
    );
    // The same counts against the dense form of the set (least squares).
    let dense = dense_from_kets(n, &spec_kets(n));
    match linear(&Projectors::Dense { n, data: &dense }, &counts, None).unwrap_err() {
        MathError::NonPositiveTrace { trace } => assert!(trace.abs() < 1e-12, "{trace}"),
        other => panic!("{other:?}"),
    }
    // MLE has no such restriction.
    let m = mle(&Projectors::Nopovm { n }, &counts, &MleOptions::default()).unwrap();
    assert!(m.converged);
    assert_density(m.rho.as_ref(), 1e-10);
}

#[test]
fn a_zero_projector_with_counts_is_an_error() {
    let n = 2;
    let mut dense = dense_from_kets(n, &spec_kets(n));
    dense.extend(std::iter::repeat_n(c(0.0, 0.0), n * n));
    let mut counts = vec![1.0; n * n + 1];
    counts[4] = 3.0;
    let e = mle(
        &Projectors::Dense { n, data: &dense },
        &counts,
        &MleOptions::default(),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "projector 4 has probability 0 in every state, but its count is 3"
    );
    counts[4] = 0.0;
    assert!(
        mle(
            &Projectors::Dense { n, data: &dense },
            &counts,
            &MleOptions::default()
        )
        .unwrap()
        .converged
    );
}
