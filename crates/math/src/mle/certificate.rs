//! The certificate N·ln λ_max(WRW): the cheap test inside the iteration
//! (gradient screen, then a Cholesky factorization of e^tol·G − R) and the
//! exact value at a density matrix (an eigen-decomposition).

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt::factor::{LltRegularization, cholesky_in_place};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par, Spec};

use super::scratch::{Eval, MleScratch, ONE, Point, SetData};
use crate::eigh::Eigh;
use crate::likelihood::{objective, r_matrix};
use crate::vector;
use crate::{C64, MathError, Projectors};

/// Whether λ_max(WRW) ≤ e^tol at `x`, decided by a Cholesky factorization
/// of e^tol·G − R after the gradient screen (module doc).
pub(super) fn certified(
    set: &SetData,
    x: &Point,
    tol: f64,
    chol: &mut Mat<C64>,
    buf: &mut MemBuffer,
) -> bool {
    vector::zero_upper();
    let e = tol.exp_m1();
    if !e.is_finite() {
        return true;
    }
    let stat = 0.5 * set.screen * (x.t * x.gg).sqrt();
    if stat > ((1.0 + e) * e).sqrt() + e {
        return false;
    }
    // e^tol·G − R = (G − R) + (e^tol − 1)·G; the factorization reads the
    // lower triangle.
    let n = set.n;
    for j in 0..n {
        for i in j..n {
            chol[(i, j)] = x.gmr[(i, j)] + set.g[(i, j)] * e;
        }
    }
    cholesky_in_place(
        chol.as_mut(),
        LltRegularization::default(),
        Par::Seq,
        MemStack::new(buf),
        Spec::default(),
    )
    .is_ok()
}

/// (F, ln λ_max(WRW)) at the density matrix `rho`; (+∞, +∞) when a counted
/// projector has probability 0.
#[allow(clippy::too_many_arguments)]
pub(super) fn exact_bound(
    proj: &Projectors,
    c: &[f64],
    ninv: f64,
    set: &SetData,
    e: &mut Eval,
    q: &mut [f64],
    m: &mut Mat<C64>,
    eig: &mut Eigh,
    rho: MatRef<C64>,
) -> Result<(f64, f64), MathError> {
    let Some((f, _)) = objective(proj, c, ninv, rho, q, &mut e.work) else {
        return Ok((f64::INFINITY, f64::INFINITY));
    };
    r_matrix(proj, c, ninv, q, &mut e.wt, m.as_mut(), &mut e.work);
    let w = set.w.as_ref();
    matmul(e.rt.as_mut(), Accum::Replace, w, m.as_ref(), ONE, Par::Seq);
    matmul(m.as_mut(), Accum::Replace, e.rt.as_ref(), w, ONE, Par::Seq);
    eig.compute(m.as_ref(), false)?;
    Ok((f, eig.max().ln()))
}

impl MleScratch {
    /// (F, ln λ_max(WRW)) at `self.rho`, exactly.
    pub(super) fn bound_at_rho(
        &mut self,
        proj: &Projectors,
        c: &[f64],
        ninv: f64,
    ) -> Result<(f64, f64), MathError> {
        let s = self;
        exact_bound(
            proj,
            c,
            ninv,
            &s.set,
            &mut s.eval,
            &mut s.xn.q,
            &mut s.m,
            &mut s.eig,
            s.rho.as_ref(),
        )
    }
}
