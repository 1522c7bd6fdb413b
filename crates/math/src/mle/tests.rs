//! Tests of the kernel's internals.

use faer::{Mat, MatRef};

use super::certificate::{certified, exact_bound};
use super::evaluate::evaluate;
use super::iterate::line_search;
use super::scratch::{ONE, ZERO};
use super::*;
use crate::likelihood::Problem;
use crate::nopovm_ket;
use crate::vector::{dot, step};
use rand::{Rng, SeedableRng};

fn random(n: usize, rng: &mut impl Rng) -> Vec<C64> {
    (0..n)
        .map(|_| C64::new(rng.random::<f64>() - 0.5, rng.random::<f64>() - 0.5))
        .collect()
}

/// `nopovm`'s kets, for the same set as `Projectors::Kets` (whitened
/// variable A) next to `Projectors::Nopovm` (variable B).
fn nopovm_kets(n: usize) -> Vec<C64> {
    (0..n * n).flat_map(|k| nopovm_ket(n, k)).collect()
}

#[test]
fn gradient_matches_central_differences() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let n = 5;
    let kets = nopovm_kets(n);
    for proj in [
        Projectors::Nopovm { n },
        Projectors::Kets { n, kets: &kets },
    ] {
        let k = proj.count();
        let c: Vec<f64> = (0..k).map(|_| rng.random::<f64>() * 10.0).collect();
        let ninv = 1.0 / c.iter().sum::<f64>();
        let mut s = MleScratch::new(&proj).unwrap();
        let MleScratch {
            set, eval, x, xn, ..
        } = &mut s;
        x.a.copy_from_slice(&random(n * n, &mut rng));
        assert!(evaluate(&proj, &c, ninv, set, eval, x));
        for _ in 0..5 {
            let dir = random(n * n, &mut rng);
            let h = 1e-5;
            step(&x.a, h, &dir, &mut xn.a);
            assert!(evaluate(&proj, &c, ninv, set, eval, xn));
            let fp = xn.f;
            step(&x.a, -h, &dir, &mut xn.a);
            assert!(evaluate(&proj, &c, ninv, set, eval, xn));
            let fd = (fp - xn.f) / (2.0 * h);
            let an = dot(&x.grad, &dir);
            assert!(
                (fd - an).abs() <= 1e-6 * (1.0 + an.abs()),
                "{proj:?}: finite difference {fd}, gradient {an}"
            );
        }
    }
}

/// The projected-gradient finish on its own, from σ = I/n, reaches the
/// exact certificate, and its ℓ agrees with the L-BFGS kernel's to within
/// their certificates: two algorithms, one optimum.
#[test]
fn projected_gradient_and_lbfgs_agree() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let n = 6;
    let kets = nopovm_kets(n);
    for proj in [
        Projectors::Nopovm { n },
        Projectors::Kets { n, kets: &kets },
    ] {
        let k = proj.count();
        let c: Vec<f64> = (0..k)
            .map(|_| (rng.random::<f64>() * 200.0).floor())
            .collect();
        let total: f64 = c.iter().sum();
        let opts = MleOptions::default();
        let lbfgs = mle(&proj, &c, &opts).unwrap();
        assert!(lbfgs.converged);
        let mut s = MleScratch::new(&proj).unwrap();
        let mut sigma = s.apg.start();
        for i in 0..n {
            sigma[(i, i)] = C64::new(1.0 / n as f64, 0.0);
        }
        let p = Problem {
            proj: &proj,
            c: &c,
            ninv: 1.0 / total,
            w: s.set.w.as_ref(),
        };
        let mut iterations = 0;
        s.apg
            .run(
                &p,
                &mut s.eval.work,
                opts.tol,
                100_000,
                &mut iterations,
                &mut s.rho,
            )
            .unwrap();
        let tr: f64 = (0..n).map(|i| s.rho[(i, i)].re).sum();
        let rho = Mat::from_fn(n, n, |i, j| s.rho[(i, j)] / tr);
        let bound = certificate(&proj, &c, rho.as_ref()).unwrap();
        assert!(
            bound <= opts.tol * total,
            "{proj:?}: bound {bound} after {iterations}"
        );
        let l = log_likelihood(&proj, &c, rho.as_ref());
        let gap = (l - lbfgs.log_likelihood).abs();
        assert!(
            gap <= bound.max(0.0) + lbfgs.bound.max(0.0) + 1e-9 * l.abs(),
            "{proj:?}: ℓ {l} vs {} (bounds {bound}, {})",
            lbfgs.log_likelihood,
            lbfgs.bound
        );
    }
}

/// The screen and the Cholesky test say "certified" exactly where an
/// eigen-decomposition of G^{-1/2}RG^{-1/2} does, at every iterate of a
/// run and for several tolerances.
#[test]
fn cholesky_test_agrees_with_the_eigenvalues() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let n = 6;
    let kets = nopovm_kets(n);
    for proj in [
        Projectors::Nopovm { n },
        Projectors::Kets { n, kets: &kets },
    ] {
        let k = proj.count();
        let c: Vec<f64> = (0..k)
            .map(|_| (rng.random::<f64>() * 40.0).floor())
            .collect();
        let ninv = 1.0 / c.iter().sum::<f64>();
        let mut s = MleScratch::new(&proj).unwrap();
        let MleScratch {
            set,
            eval,
            x,
            xn,
            d,
            hist,
            chol,
            chol_buf,
            m,
            eig,
            rho,
            ..
        } = &mut s;
        x.a.fill(ZERO);
        for i in 0..n {
            x.a[i * n + i] = ONE;
        }
        assert!(evaluate(&proj, &c, ninv, set, eval, x));
        x.gg = dot(&x.grad, &x.grad);
        let (mut yes, mut no) = (0, 0);
        for _ in 0..150 {
            let b = if set.whiten {
                &set.w * MatRef::from_column_major_slice(&x.a, n, n)
            } else {
                MatRef::from_column_major_slice(&x.a, n, n).to_owned()
            };
            let r = &b * b.adjoint();
            let tr: f64 = (0..n).map(|i| r[(i, i)].re).sum();
            rho.copy_from(Mat::from_fn(n, n, |i, j| r[(i, j)] / tr));
            let (_, lnmax) =
                exact_bound(&proj, &c, ninv, set, eval, &mut xn.q, m, eig, rho.as_ref()).unwrap();
            for tol in [1e-1, 1e-3, 1e-6, 1e-9] {
                if (lnmax - tol).abs() <= 1e-9 * tol {
                    continue;
                }
                let got = certified(set, x, tol, chol, chol_buf);
                assert_eq!(got, lnmax <= tol, "{proj:?}: ln λ_max {lnmax}, tol {tol}");
                if got { yes += 1 } else { no += 1 }
            }
            if !line_search(&proj, &c, ninv, set, eval, x, xn, d, hist) {
                break;
            }
            std::mem::swap(x, xn);
        }
        assert!(yes > 10 && no > 10, "{proj:?}: {yes} certified, {no} not");
    }
}

#[test]
fn the_stop_reason_tells_a_spent_budget_from_a_certificate() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let n = 6;
    let proj = Projectors::Nopovm { n };
    // Counts no state fits: the linear estimate is not a state, so the
    // iteration has work to do.
    let c: Vec<f64> = (0..n * n).map(|_| rng.random::<f64>() * 10.0).collect();
    let short = MleOptions {
        max_iters: 2,
        ..MleOptions::default()
    };
    let r = mle(&proj, &c, &short).unwrap();
    assert_eq!((r.iterations, r.converged), (2, false));
    assert_eq!(r.stop, Stop::MaxIterations);
    let r = mle(&proj, &c, &MleOptions::default()).unwrap();
    assert!(r.converged && r.iterations > 2, "{}", r.iterations);
    assert_eq!(r.stop, Stop::Certified);
    // wls says the same of its own budget.
    let short = crate::WlsOptions {
        max_iters: 2,
        ..crate::WlsOptions::default()
    };
    let w = crate::wls(&proj, &c, Some(crate::Design::Nopovm), &short).unwrap();
    assert!(!w.converged);
    assert_eq!(w.stop, Stop::MaxIterations, "{} iterations", w.iterations);
}
