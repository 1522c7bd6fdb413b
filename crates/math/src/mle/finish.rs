//! The two finishes of the factored iteration: the hand-over to the
//! projected gradient ([`crate::apg`]) on a saddle plateau, and the
//! low-rank refinement after the certificate passes (module doc of
//! [`super`]).

use faer::linalg::matmul::matmul;
use faer::reborrow::ReborrowMut;
use faer::{Accum, MatMut, MatRef, Par};

use super::MleOptions;
use super::evaluate::evaluate;
use super::scratch::{MleScratch, ONE, ZERO, normalize};
use crate::likelihood::Problem;
use crate::vector::dot;
use crate::{MathError, Projectors};

/// How many of the (ascending) eigenvalues `lam` lie under a clear gap: all
/// below 1e-3 of the largest, when the next one up is at least 100× the
/// largest of them; None without such a gap.
fn cut_under_gap(lam: &[f64]) -> Option<usize> {
    let lmax = lam[lam.len() - 1];
    let cut = lam.iter().take_while(|&&l| l < 1e-3 * lmax).count();
    (cut > 0 && lam[cut] >= 100.0 * lam[cut - 1].max(0.0)).then_some(cut)
}

impl MleScratch {
    /// The trace of `self.rho` under a clear gap of its spectrum
    /// ([`cut_under_gap`]), or None.
    pub(super) fn trace_under_gap(&mut self) -> Result<Option<f64>, MathError> {
        self.eig.compute(self.rho.as_ref(), false)?;
        for (i, l) in self.lam.iter_mut().enumerate() {
            *l = self.eig.value(i);
        }
        Ok(cut_under_gap(&self.lam).map(|cut| self.lam[..cut].iter().map(|l| l.max(0.0)).sum()))
    }

    /// Hands the current iterate over to the projected gradient
    /// ([`crate::apg`]) as σ = G^{1/2}ρG^{1/2}/Tr, for the iterations left;
    /// leaves its ρ in `self.rho`.
    pub(super) fn finish_with_apg(
        &mut self,
        proj: &Projectors,
        c: &[f64],
        ninv: f64,
        opts: &MleOptions,
        iterations: &mut u64,
    ) -> Result<(), MathError> {
        let n = self.set.n;
        let s = self;
        // The whitened factor A (σ ∝ AA†): x itself, or G^{1/2}B.
        let a = MatRef::from_column_major_slice(&s.x.a, n, n);
        if s.set.whiten {
            s.chol.copy_from(a);
        } else {
            matmul(
                s.chol.as_mut(),
                Accum::Replace,
                s.set.winv.as_ref(),
                a,
                ONE,
                Par::Seq,
            );
        }
        let mut sigma = s.apg.start();
        matmul(
            sigma.rb_mut(),
            Accum::Replace,
            s.chol.as_ref(),
            s.chol.adjoint(),
            ONE,
            Par::Seq,
        );
        normalize(sigma.rb_mut());
        let p = Problem {
            proj,
            c,
            ninv,
            w: s.set.w.as_ref(),
        };
        let budget = opts.max_iters - *iterations;
        s.apg.run(
            &p,
            &mut s.eval.work,
            opts.tol,
            budget,
            iterations,
            &mut s.rho,
        )?;
        normalize(s.rho.as_mut());
        Ok(())
    }

    /// Where the certified ρ's spectrum has a clear gap below 1e-3 of its
    /// largest eigenvalue, drops the eigenvalues under the gap and iterates
    /// on at that rank (a factor with zero columns keeps them zero); the
    /// result replaces ρ when it is certified and its ℓ is not lower (to
    /// rounding). The factored iteration never reaches an exact zero
    /// eigenvalue, and on noiseless data (q_k = c_k/N at the optimum, so
    /// R = G: no pull at all towards zero in the directions the optimum does
    /// not use) it leaves ~1e-5 of trace spread over them when the
    /// certificate passes: fidelity 0.9999 instead of 1 − 1e-8 for a pure
    /// state. On noisy data those eigenvalues are ~1e-12 and this only makes
    /// them exact zeros.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn refine_low_rank(
        &mut self,
        proj: &Projectors,
        c: &[f64],
        ninv: f64,
        opts: &MleOptions,
        iterations: &mut u64,
        f: &mut f64,
        bound: &mut f64,
    ) -> Result<(), MathError> {
        let n = self.set.n;
        self.eig.compute(self.rho.as_ref(), true)?;
        for (i, l) in self.lam.iter_mut().enumerate() {
            *l = self.eig.value(i);
        }
        let lam = &self.lam;
        let Some(cut) = cut_under_gap(lam) else {
            return Ok(());
        };
        // B = V_kept·√λ_kept, zero elsewhere; A = G^{1/2}B when whitened.
        let tr: f64 = lam[cut..].iter().sum();
        self.chol.fill(ZERO);
        for (j, &l) in lam.iter().enumerate().skip(cut) {
            let s = (l / tr).sqrt();
            for i in 0..n {
                self.chol[(i, j)] = self.eig.u[(i, j)] * s;
            }
        }
        let mut a = MatMut::from_column_major_slice_mut(&mut self.x.a, n, n);
        if self.set.whiten {
            matmul(
                a,
                Accum::Replace,
                self.set.winv.as_ref(),
                self.chol.as_ref(),
                ONE,
                Par::Seq,
            );
        } else {
            a.copy_from(&self.chol);
        }
        self.saved.copy_from(&self.rho);
        let s = &mut *self;
        s.hist.clear();
        if !evaluate(proj, c, ninv, &s.set, &mut s.eval, &mut s.x) {
            // A counted projector the kept part gives probability 0.
            s.rho.copy_from(&s.saved);
            return Ok(());
        }
        s.x.gg = dot(&s.x.grad, &s.x.grad);
        let budget = (opts.max_iters - *iterations).min((*iterations).max(100));
        s.iterate(proj, c, ninv, opts.tol, budget, false, iterations);
        s.rho_from_x();
        let (f1, bound1) = s.bound_at_rho(proj, c, ninv)?;
        if bound1 <= opts.tol && f1 <= *f + 1e-12 * f.abs() {
            (*f, *bound) = (f1, bound1);
        } else {
            s.rho.copy_from(&s.saved);
        }
        Ok(())
    }
}
