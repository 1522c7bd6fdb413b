//! The MLE's projected-gradient finish: FISTA-style accelerated projected
//! gradient (Shang, Zhang, Ng, PRA 95, 062336 (2017)) in the whitened
//! σ ∝ G^{1/2}ρG^{1/2}, where ℓ/N = Σ (c_k/N) ln Tr(E_k σ) (E_k = WΠ_kW) is
//! concave and its gradient is WRW. A step is σ ← P(y + t·WRW(y)), P the
//! projection onto density matrices (eigen-decomposition, eigenvalues
//! projected onto the simplex), then momentum y = σ + β(σ − σ_prev).
//!
//! The L-BFGS kernel (`mle.rs`) hands over to it when its iterate lingers
//! near a saddle of the factored problem: the projection sets the
//! eigenvalues the optimum does not use to zero at once, which the factored
//! iteration can only approach slowly. Two choices keep it exact to rounding
//! down to the 1e-8 certificate: the backtracking test compares gradients,
//! not values of ℓ (a step is accepted when ⟨∇(y) − ∇(σ), σ − y⟩ ≤
//! ‖σ − y‖²/t), and momentum restarts on the gradient-mapping test
//! (O'Donoghue & Candès) or when the extrapolated y leaves the domain of ℓ.
//! Every iterate's exact certificate is computed; the best one is returned.

use faer::linalg::matmul::matmul;
use faer::reborrow::{Reborrow, ReborrowMut};
use faer::{Accum, Mat, MatMut, MatRef, Par};

use crate::eigh::Eigh;
use crate::likelihood::{Problem, objective, r_matrix};
use crate::linear::project_to_simplex;
use crate::projectors::ProjWork;
use crate::{C64, MathError};

const ONE: C64 = C64::new(1.0, 0.0);

/// The buffers of [`Apg::run`] for one projector set.
pub(crate) struct Apg {
    /// σ, the trial σ, the extrapolated y.
    x: Mat<C64>,
    xn: Mat<C64>,
    y: Mat<C64>,
    /// ρ̃ = WσW of each.
    rx: Mat<C64>,
    rn: Mat<C64>,
    ry: Mat<C64>,
    /// WRW at each.
    gx: Mat<C64>,
    gy: Mat<C64>,
    gn: Mat<C64>,
    /// ρ̃ of the iterate with the smallest certificate.
    rb: Mat<C64>,
    z: Mat<C64>,
    b: Mat<C64>,
    r: Mat<C64>,
    tmp: Mat<C64>,
    lam: Vec<f64>,
    qx: Vec<f64>,
    qn: Vec<f64>,
    qy: Vec<f64>,
    wt: Vec<f64>,
    eig: Eigh,
}

impl Apg {
    pub fn new(n: usize, k: usize) -> Self {
        let sq = || Mat::<C64>::zeros(n, n);
        Apg {
            x: sq(),
            xn: sq(),
            y: sq(),
            rx: sq(),
            rn: sq(),
            ry: sq(),
            gx: sq(),
            gy: sq(),
            gn: sq(),
            rb: sq(),
            z: sq(),
            b: sq(),
            r: sq(),
            tmp: sq(),
            lam: vec![0.0; n],
            qx: vec![0.0; k],
            qn: vec![0.0; k],
            qy: vec![0.0; k],
            wt: vec![0.0; k],
            eig: Eigh::new(n),
        }
    }

    /// The start σ (trace 1, positive semidefinite), to be filled in.
    pub fn start(&mut self) -> MatMut<'_, C64> {
        self.x.as_mut()
    }

    /// From the σ given in [`Apg::start`] until the exact certificate is at
    /// most `tol`, `budget` iterations (counted in `iterations`), or a stall;
    /// ρ̃ ∝ ρ of the iterate with the smallest certificate is left in `rho`
    /// (not normalized).
    pub fn run(
        &mut self,
        p: &Problem,
        work: &mut ProjWork,
        tol: f64,
        budget: u64,
        iterations: &mut u64,
        rho: &mut Mat<C64>,
    ) -> Result<(), MathError> {
        let s = self;
        wxw(p.w, s.x.as_ref(), &mut s.tmp, &mut s.rx);
        if objective(p.proj, p.c, p.ninv, s.rx.as_ref(), &mut s.qx, work).is_none() {
            rho.copy_from(&s.rx);
            return Ok(());
        }
        gradient(p, &s.qx, &mut s.wt, &mut s.r, &mut s.tmp, &mut s.gx, work);
        s.eig.compute(s.gx.as_ref(), false)?;
        let mut bound_x = s.eig.max().ln();
        let mut best = bound_x;
        s.rb.copy_from(&s.rx);
        let (mut y_is_x, mut theta, mut t) = (true, 1.0f64, 1.0f64);
        for _ in 0..budget {
            if bound_x <= tol {
                break;
            }
            *iterations += 1;
            if !y_is_x {
                gradient(p, &s.qy, &mut s.wt, &mut s.r, &mut s.tmp, &mut s.gy, work);
            }
            let Some(t_fit) = s.backtrack(p, work, y_is_x, &mut t)? else {
                break;
            };
            let y = if y_is_x { &s.x } else { &s.y };
            if !y_is_x && restart_dot(y.as_ref(), s.xn.as_ref(), s.x.as_ref()) > 0.0 {
                theta = 1.0;
            }
            let theta_next = 0.5 * (1.0 + (1.0 + 4.0 * theta * theta).sqrt());
            let beta = (theta - 1.0) / theta_next;
            theta = theta_next;
            extrapolate(s.xn.as_ref(), s.x.as_ref(), beta, s.y.as_mut());
            extrapolate(s.rn.as_ref(), s.rx.as_ref(), beta, s.ry.as_mut());
            std::mem::swap(&mut s.x, &mut s.xn);
            std::mem::swap(&mut s.rx, &mut s.rn);
            std::mem::swap(&mut s.qx, &mut s.qn);
            std::mem::swap(&mut s.gx, &mut s.gn);
            s.eig.compute(s.gx.as_ref(), false)?;
            bound_x = s.eig.max().ln();
            if bound_x < best {
                best = bound_x;
                s.rb.copy_from(&s.rx);
            }
            y_is_x = beta <= 0.0;
            if !y_is_x && objective(p.proj, p.c, p.ninv, s.ry.as_ref(), &mut s.qy, work).is_none() {
                theta = 1.0;
                y_is_x = true;
            }
            t = (t * 1.25).max(t_fit.min(t * 10.0));
        }
        rho.copy_from(&s.rb);
        Ok(())
    }

    /// The projected-gradient step from y (σ itself when `y_is_x`) into
    /// σ_trial, halving `t` until the curvature of ℓ along it is at most
    /// 1/t; returns the step length that curvature fits (None: a stall, t
    /// under 1e-30).
    fn backtrack(
        &mut self,
        p: &Problem,
        work: &mut ProjWork,
        y_is_x: bool,
        t: &mut f64,
    ) -> Result<Option<f64>, MathError> {
        let Apg {
            x,
            xn,
            y,
            rn,
            gx,
            gy,
            gn,
            z,
            b,
            r,
            tmp,
            lam,
            qn,
            wt,
            eig,
            ..
        } = self;
        let n = x.nrows();
        let (y, g) = if y_is_x { (&*x, &*gx) } else { (&*y, &*gy) };
        loop {
            for j in 0..n {
                for i in j..n {
                    z[(i, j)] = y[(i, j)] + g[(i, j)] * *t;
                }
            }
            eig.compute(z.as_ref(), true)?;
            for (i, l) in lam.iter_mut().enumerate() {
                *l = eig.value(i);
            }
            project_to_simplex(lam);
            let first = lam.iter().position(|&l| l > 0.0).unwrap_or(n - 1);
            for j in first..n {
                let sc = lam[j].sqrt();
                for i in 0..n {
                    b[(i, j)] = eig.u[(i, j)] * sc;
                }
            }
            let bs = b.as_ref().subcols(first, n - first);
            matmul(xn.as_mut(), Accum::Replace, bs, bs.adjoint(), ONE, Par::Seq);
            // W·xn·W = (W·B)(W·B)†.
            let mut wb = tmp.as_mut().subcols_mut(0, n - first);
            matmul(wb.rb_mut(), Accum::Replace, p.w, bs, ONE, Par::Seq);
            matmul(
                rn.as_mut(),
                Accum::Replace,
                wb.rb(),
                wb.rb().adjoint(),
                ONE,
                Par::Seq,
            );
            if objective(p.proj, p.c, p.ninv, rn.as_ref(), qn, work).is_some() {
                gradient(p, qn, wt, r, tmp, gn, work);
                let (curv, d2) = curvature(g.as_ref(), gn.as_ref(), xn.as_ref(), y.as_ref());
                if curv <= d2 / *t {
                    return Ok(Some(if curv > 0.0 { d2 / curv } else { f64::INFINITY }));
                }
            }
            *t *= 0.5;
            if *t < 1e-30 {
                return Ok(None);
            }
        }
    }
}

/// out = W·s·W.
fn wxw(w: MatRef<C64>, s: MatRef<C64>, tmp: &mut Mat<C64>, out: &mut Mat<C64>) {
    matmul(tmp.as_mut(), Accum::Replace, w, s, ONE, Par::Seq);
    matmul(out.as_mut(), Accum::Replace, tmp.as_ref(), w, ONE, Par::Seq);
}

/// g = W R W at the probabilities q.
fn gradient(
    p: &Problem,
    q: &[f64],
    wt: &mut [f64],
    r: &mut Mat<C64>,
    tmp: &mut Mat<C64>,
    g: &mut Mat<C64>,
    work: &mut ProjWork,
) {
    r_matrix(p.proj, p.c, p.ninv, q, wt, r.as_mut(), work);
    wxw(p.w, r.as_ref(), tmp, g);
}

/// (⟨g − gn, xn − y⟩, ‖xn − y‖²_F) for Hermitian matrices.
fn curvature(g: MatRef<C64>, gn: MatRef<C64>, xn: MatRef<C64>, y: MatRef<C64>) -> (f64, f64) {
    let (mut ip, mut nn) = (0.0, 0.0);
    for j in 0..g.ncols() {
        for i in 0..g.nrows() {
            let dg = g[(i, j)] - gn[(i, j)];
            let d = xn[(i, j)] - y[(i, j)];
            ip += dg.re * d.re + dg.im * d.im;
            nn += d.re * d.re + d.im * d.im;
        }
    }
    (ip, nn)
}

/// ⟨y − xn, xn − x⟩.
fn restart_dot(y: MatRef<C64>, xn: MatRef<C64>, x: MatRef<C64>) -> f64 {
    let mut ip = 0.0;
    for j in 0..y.ncols() {
        for i in 0..y.nrows() {
            let a = y[(i, j)] - xn[(i, j)];
            let b = xn[(i, j)] - x[(i, j)];
            ip += a.re * b.re + a.im * b.im;
        }
    }
    ip
}

/// out = a + s·(a − b).
fn extrapolate(a: MatRef<C64>, b: MatRef<C64>, s: f64, mut out: MatMut<C64>) {
    for j in 0..a.ncols() {
        for i in 0..a.nrows() {
            out[(i, j)] = a[(i, j)] + (a[(i, j)] - b[(i, j)]) * s;
        }
    }
}
