//! The start of the iteration: A = I/√n, or for `nopovm` the factor of
//! its closed-form linear inversion where that is already certified.

use faer::Mat;

use super::certificate::certified;
use super::evaluate::evaluate;
use super::scratch::{MleScratch, ZERO};
use crate::eigh::Eigh;
use crate::vector::dot;
use crate::{C64, MathError, Projectors};

/// A factor B = V·√max(λ, 0) (column-major, into `a`) of the `nopovm`
/// closed-form linear-inversion estimate VλV† (ρ_aa ∝ c_a; per pair i < j,
/// Re ρ_ij ∝ c₊ − (c_i + c_j)/2 and Im ρ_ij ∝ c₋ − (c_i + c_j)/2); false
/// when its trace is not positive.
fn nopovm_linear_factor(
    c: &[f64],
    z: &mut Mat<C64>,
    eig: &mut Eigh,
    a: &mut [C64],
) -> Result<bool, MathError> {
    let n = z.nrows();
    let trace: f64 = c[..n].iter().sum();
    if trace <= 0.0 {
        return Ok(false);
    }
    for i in 0..n {
        z[(i, i)] = C64::new(c[i] / trace, 0.0);
    }
    let mut k = n;
    for i in 0..n {
        for j in i + 1..n {
            let d = 0.5 * (c[i] + c[j]);
            let v = C64::new(c[k] - d, c[k + 1] - d) / trace;
            z[(i, j)] = v;
            z[(j, i)] = v.conj();
            k += 2;
        }
    }
    eig.compute(z.as_ref(), true)?;
    for j in 0..n {
        let s = eig.value(j).max(0.0).sqrt();
        for i in 0..n {
            a[j * n + i] = eig.u[(i, j)] * s;
        }
    }
    Ok(true)
}

impl MleScratch {
    /// Sets the iterate `x` to the start of a run (module doc of
    /// [`start`](self)) and evaluates it, the history cleared; fails when a
    /// counted projector has probability 0 in every state.
    pub(super) fn start(
        &mut self,
        proj: &Projectors,
        c: &[f64],
        ninv: f64,
        tol: f64,
    ) -> Result<(), MathError> {
        let (n, k) = (proj.dim(), proj.count());
        let MleScratch {
            set,
            eval,
            x,
            xn,
            hist,
            chol,
            chol_buf,
            m,
            eig,
            ..
        } = self;

        // A = I/√n: ρ = I/n for `nopovm`, σ = I/n for whitened sets.
        x.a.fill(ZERO);
        for i in 0..n {
            x.a[i * n + i] = C64::new(1.0 / (n as f64).sqrt(), 0.0);
        }
        hist.clear();
        let ok = evaluate(proj, c, ninv, set, eval, x);
        x.gg = dot(&x.grad, &x.grad);
        if !ok {
            // Only a zero projector has q_k = 0 at a full-rank ρ.
            let bad = (0..k)
                .find(|&i| c[i] > 0.0 && (x.q[i].is_nan() || x.q[i] <= 0.0))
                .unwrap_or(0);
            return Err(MathError::InvalidProjectors(format!(
                "projector {bad} has probability 0 in every state, but its count is {}",
                c[bad]
            )));
        }

        // `nopovm`'s closed-form linear inversion, when it is a state (on
        // noiseless data, or a well-mixed sample), is the optimum itself
        // (q_k ∝ c_k): start from B = V·√λ of it when the certificate holds
        // there.
        if matches!(proj, Projectors::Nopovm { .. })
            && nopovm_linear_factor(c, m, eig, &mut xn.a)?
            && evaluate(proj, c, ninv, set, eval, xn)
            && {
                xn.gg = dot(&xn.grad, &xn.grad);
                certified(set, xn, tol, chol, chol_buf)
            }
        {
            std::mem::swap(x, xn);
        }
        Ok(())
    }
}
