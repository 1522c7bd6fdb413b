//! F, T, q, G − R and ∇F at one point of the factored iteration.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

use super::scratch::{Eval, ONE, Point, SetData};
use crate::likelihood::{objective, r_matrix};
use crate::vector;
use crate::{C64, Projectors};

/// F, T, q, G − R and ∇F at `p.a`, into `p`; false where F = +∞.
pub(super) fn evaluate(
    proj: &Projectors,
    c: &[f64],
    ninv: f64,
    set: &SetData,
    e: &mut Eval,
    p: &mut Point,
) -> bool {
    let n = set.n;
    let a = MatRef::from_column_major_slice(&p.a, n, n);
    let b = if set.whiten {
        matmul(
            e.b.as_mut(),
            Accum::Replace,
            set.w.as_ref(),
            a,
            ONE,
            Par::Seq,
        );
        e.b.as_ref()
    } else {
        a
    };
    matmul(e.rt.as_mut(), Accum::Replace, b, b.adjoint(), ONE, Par::Seq);
    let fit = objective(proj, c, ninv, e.rt.as_ref(), &mut p.q, &mut e.work);
    let Some((f, t)) = fit else {
        return false;
    };
    p.f = f;
    p.t = t;
    r_matrix(proj, c, ninv, &p.q, &mut e.wt, p.gmr.as_mut(), &mut e.work);
    for j in 0..n {
        let gj = set.g.col_as_slice(j);
        for (r, g) in p.gmr.col_as_slice_mut(j).iter_mut().zip(gj) {
            *r = g - *r;
        }
    }
    let scale = C64::new(2.0 / t, 0.0);
    if set.whiten {
        // ∇_A F = W·∇_B F.
        matmul(
            e.rt.as_mut(),
            Accum::Replace,
            p.gmr.as_ref(),
            b,
            scale,
            Par::Seq,
        );
        matmul(
            MatMut::from_column_major_slice_mut(&mut p.grad, n, n),
            Accum::Replace,
            set.w.as_ref(),
            e.rt.as_ref(),
            ONE,
            Par::Seq,
        );
    } else {
        matmul(
            MatMut::from_column_major_slice_mut(&mut p.grad, n, n),
            Accum::Replace,
            p.gmr.as_ref(),
            b,
            scale,
            Par::Seq,
        );
    }
    vector::zero_upper();
    true
}
