//! The L-BFGS loop: search direction, line search, and the iteration
//! until the certificate's test passes, the budget runs out or no step is
//! accepted.

use super::certificate::certified;
use super::evaluate::evaluate;
use super::scratch::{Eval, MleScratch, Point, SetData};
use crate::C64;
use crate::Projectors;
use crate::lbfgs::{Bracket, History};
use crate::vector::{dot, scale, step};

/// Trial steps of one line search before it gives up.
const MAX_TRIALS: usize = 40;

/// d = −H·∇F by the L-BFGS two-loop recursion; without history, steepest
/// descent scaled to a step of norm ‖A‖/10. Each pass over d both updates it
/// and takes the next inner product.
fn direction(x: &Point, hist: &mut History, d: &mut [C64]) {
    d.copy_from_slice(&x.grad);
    if hist.is_empty() {
        scale(-0.1 * (dot(&x.a, &x.a) / dot(&x.grad, &x.grad)).sqrt(), d);
        return;
    }
    hist.two_loop(d);
}

/// One L-BFGS step from `x` into `xn`, its correction pair stored; false
/// when no step along the direction (nor, after dropping the history, along
/// steepest descent) is accepted.
#[allow(clippy::too_many_arguments)]
pub(super) fn line_search(
    proj: &Projectors,
    c: &[f64],
    ninv: f64,
    set: &SetData,
    e: &mut Eval,
    x: &Point,
    xn: &mut Point,
    d: &mut [C64],
    hist: &mut History,
) -> bool {
    loop {
        direction(x, hist, d);
        let d0 = dot(&x.grad, d);
        if d0 < 0.0 {
            let mut bracket = Bracket::new();
            for _ in 0..MAX_TRIALS {
                step(&x.a, bracket.alpha, d, &mut xn.a);
                if !evaluate(proj, c, ninv, set, e, xn) {
                    // Outside the domain of ℓ: shorter.
                    bracket.outside();
                    continue;
                }
                let dn = dot(&xn.grad, d);
                if bracket.accept(x.f, d0, xn.f, dn) {
                    // s = α·d, y = ∇(xn) − ∇(x); ⟨s, y⟩ = α·(dn − d0)
                    // from the slopes already taken.
                    let alpha = bracket.alpha;
                    xn.gg = hist.push(alpha, d, &xn.grad, &x.grad, alpha * (dn - d0));
                    return true;
                }
            }
        }
        if hist.is_empty() {
            return false;
        }
        hist.clear();
    }
}

/// Keeps ‖A‖ near 1 (F does not change under A → sA, but the steps change
/// ‖A‖ a little); the history is dropped when A is rescaled.
fn renormalize(x: &mut Point, hist: &mut History) {
    let a2 = dot(&x.a, &x.a);
    if (1e-2..=1e2).contains(&a2) {
        return;
    }
    let s = a2.sqrt();
    scale(1.0 / s, &mut x.a);
    scale(s, &mut x.grad);
    x.gg *= a2;
    x.t /= a2;
    hist.clear();
}

/// Why [`MleScratch::iterate`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Exit {
    /// The Cholesky test passed.
    Certified,
    /// The budget of iterations ran out.
    Budget,
    /// No step was accepted.
    Stalled,
}

impl MleScratch {
    /// L-BFGS from `x` until the Cholesky test passes at `tol` (never, when
    /// `fixed`), `budget` iterations, or a stall.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn iterate(
        &mut self,
        proj: &Projectors,
        c: &[f64],
        ninv: f64,
        tol: f64,
        budget: u64,
        fixed: bool,
        iterations: &mut u64,
    ) -> Exit {
        let MleScratch {
            set,
            eval,
            x,
            xn,
            d,
            hist,
            chol,
            chol_buf,
            ..
        } = self;
        for _ in 0..budget {
            // Tested in fixed-iteration runs too, so that they time what a
            // real iteration costs.
            if certified(set, x, tol, chol, chol_buf) && !fixed {
                return Exit::Certified;
            }
            *iterations += 1;
            if !line_search(proj, c, ninv, set, eval, x, xn, d, hist) {
                return Exit::Stalled;
            }
            std::mem::swap(x, xn);
            if iterations.is_multiple_of(16) {
                renormalize(x, hist);
            }
        }
        if certified(set, x, tol, chol, chol_buf) && !fixed {
            Exit::Certified
        } else {
            Exit::Budget
        }
    }
}
