//! Maximum likelihood (SPEC 1.4) by accelerated projected gradient in the
//! whitened space σ ∝ G^{1/2} ρ G^{1/2}, with the SPEC's certificate as the
//! stopping rule, on caller-owned scratch space.
//!
//! With W = G^{-1/2} and E_k = W Π_k W (so Σ E_k = I), every density matrix σ
//! gives ρ = WσW / Tr(WσW) and q_k(ρ) = p_k(ρ)/Tr(Gρ) = Tr(E_k σ). So
//! ℓ/N = Σ (c_k/N) ln Tr(E_k σ) is concave in σ over the density matrices, its
//! gradient is W R W with R = Σ (c_k/(N q_k)) Π_k, and the certificate is
//! N·ln λ_max(W R W).
//!
//! The iteration is FISTA-style accelerated projected gradient (Shang, Zhang,
//! Ng, PRA 95, 062336 (2017)): a step σ ← P(y + t·WRW(y)), P the projection
//! onto density matrices (eigen-decomposition, eigenvalues projected onto
//! the simplex), then momentum y = σ + β(σ − σ_prev). Two choices keep it
//! exact to rounding all the way to the 1e-8 certificate, where ℓ itself is
//! flat to within its own rounding (the certificate is first order in the
//! distance to the optimum, ℓ second order):
//! - the backtracking test compares gradients, not values of ℓ: a step is
//!   accepted when ⟨∇(y) − ∇(σ), σ − y⟩ ≤ ‖σ − y‖²/t (local curvature ≤ 1/t);
//! - momentum restarts on the gradient-mapping test ⟨y − σ, σ − σ_prev⟩ > 0
//!   (O'Donoghue & Candès), or when the extrapolated y leaves the domain of ℓ
//!   (a counted projector with q_k ≤ 0).
//!
//! The iterate with the smallest certificate is returned. `nopovm` starts
//! from its O(n²) closed-form linear-inversion estimate (the optimum itself
//! on noiseless data), other sets from σ = I/n.

use faer::linalg::matmul::matmul;
use faer::reborrow::{Reborrow, ReborrowMut};
use faer::{Accum, Mat, MatMut, MatRef, Par};

use crate::eigh::Eigh;
use crate::linear::project_to_simplex;
use crate::projectors::{ProjWork, probs_into, weighted_sum_into};
use crate::{C64, MathError, Projectors, check_counts, gram};

const ONE: C64 = C64::new(1.0, 0.0);
const ZERO: C64 = C64::new(0.0, 0.0);

/// Options of [`mle`].
#[derive(Clone, Debug)]
pub struct MleOptions {
    pub max_iters: u64,
    pub tol: f64,
    /// Run exactly `max_iters` iterations, ignoring the certificate (benchmarks).
    pub fixed_iterations: bool,
}

impl Default for MleOptions {
    fn default() -> Self {
        MleOptions {
            max_iters: 100_000,
            tol: 1e-8,
            fixed_iterations: false,
        }
    }
}

/// What [`mle`] returns.
#[derive(Clone, Debug)]
pub struct MleResult {
    pub rho: Mat<C64>,
    pub iterations: u64,
    pub converged: bool,
    pub log_likelihood: f64,
    /// The SPEC 1.4 bound N·ln λ_max(G^{-1/2} R G^{-1/2}) at the returned ρ.
    pub bound: f64,
}

/// What [`mle_with_scratch`] returns; ρ itself is in [`MleScratch::rho`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MleStats {
    pub iterations: u64,
    pub converged: bool,
    pub log_likelihood: f64,
    /// The SPEC 1.4 bound N·ln λ_max(G^{-1/2} R G^{-1/2}) at the returned ρ.
    pub bound: f64,
}

/// Every buffer the MLE kernel needs for one projector set, so that
/// [`mle_with_scratch`] allocates nothing. Holds W = G^{-1/2} of the set it
/// was made for: reuse it only with that same set (any number of jobs).
pub struct MleScratch {
    n: usize,
    k: usize,
    /// W = G^{-1/2}.
    w: Mat<C64>,
    /// G^{1/2}.
    winv: Mat<C64>,
    x: Mat<C64>,
    xn: Mat<C64>,
    y: Mat<C64>,
    rx: Mat<C64>,
    rn: Mat<C64>,
    ry: Mat<C64>,
    gx: Mat<C64>,
    gy: Mat<C64>,
    gn: Mat<C64>,
    xb: Mat<C64>,
    rb: Mat<C64>,
    z: Mat<C64>,
    b: Mat<C64>,
    rho: Mat<C64>,
    eig: Eigh,
    lam: Vec<f64>,
    qx: Vec<f64>,
    qn: Vec<f64>,
    qy: Vec<f64>,
    /// Buffers of [`gradient`] and [`objective`].
    buf: GradBufs,
}

impl MleScratch {
    /// Allocates the buffers for `proj` and computes its W = G^{-1/2}; fails
    /// when G is not positive definite (the set is not informationally complete).
    pub fn new(proj: &Projectors) -> Result<Self, MathError> {
        let (n, k) = (proj.dim(), proj.count());
        if n == 0 || k == 0 {
            return Err(MathError::InvalidProjectors(format!(
                "the projector set has dimension {n} and {k} projectors, but needs at least one of each"
            )));
        }
        let g = gram(proj);
        let mut eig = Eigh::new(n);
        eig.compute(g.as_ref(), true)?;
        let (gmin, gmax) = (eig.min(), eig.max());
        if gmin.is_nan() || gmin <= gmax * 1e-14 {
            return Err(MathError::InvalidProjectors(format!(
                "the projector set is not informationally complete: Σ Π_k has eigenvalue {gmin:.3e} (largest {gmax:.3e})"
            )));
        }
        let mut b = eig.u.clone();
        for j in 0..n {
            let s = eig.value(j).powf(-0.25);
            for i in 0..n {
                b[(i, j)] *= s;
            }
        }
        let mut w = &b * b.adjoint();
        hermitize_in_place(w.as_mut());
        for j in 0..n {
            let s = eig.value(j).sqrt();
            for i in 0..n {
                b[(i, j)] *= s;
            }
        }
        // G^{1/2} = (U g^{1/4})(U g^{1/4})†.
        let mut winv = &b * b.adjoint();
        hermitize_in_place(winv.as_mut());
        let sq = || Mat::<C64>::zeros(n, n);
        Ok(MleScratch {
            n,
            k,
            w,
            winv,
            x: sq(),
            xn: sq(),
            y: sq(),
            rx: sq(),
            rn: sq(),
            ry: sq(),
            gx: sq(),
            gy: sq(),
            gn: sq(),
            xb: sq(),
            rb: sq(),
            z: sq(),
            b: sq(),
            rho: sq(),
            eig,
            lam: vec![0.0; n],
            qx: vec![0.0; k],
            qn: vec![0.0; k],
            qy: vec![0.0; k],
            buf: GradBufs {
                wt: vec![0.0; k],
                r: sq(),
                tmp: sq(),
                work: ProjWork::new(proj),
            },
        })
    }

    /// The ρ of the last [`mle_with_scratch`] call.
    pub fn rho(&self) -> MatRef<'_, C64> {
        self.rho.as_ref()
    }
}

fn hermitize_in_place(mut x: MatMut<C64>) {
    let n = x.nrows();
    for j in 0..n {
        x[(j, j)].im = 0.0;
        for i in j + 1..n {
            let v = (x[(i, j)] + x[(j, i)].conj()) * 0.5;
            x[(i, j)] = v;
            x[(j, i)] = v.conj();
        }
    }
}

/// out = W·s·W.
fn wxw(w: MatRef<C64>, s: MatRef<C64>, tmp: &mut Mat<C64>, out: &mut Mat<C64>) {
    matmul(tmp.as_mut(), Accum::Replace, w, s, ONE, Par::Seq);
    matmul(out.as_mut(), Accum::Replace, tmp.as_ref(), w, ONE, Par::Seq);
}

/// f = −ℓ/N at the (unnormalized) ρ̃ = `r`; leaves q_k in `q`. +∞ when a
/// counted projector has q_k ≤ 0.
fn objective(
    proj: &Projectors,
    c: &[f64],
    ninv: f64,
    r: MatRef<C64>,
    q: &mut [f64],
    work: &mut ProjWork,
) -> f64 {
    probs_into(proj, r, q, work);
    let sum: f64 = q.iter().sum();
    if !(sum > 0.0 && sum.is_finite()) {
        return f64::INFINITY;
    }
    let inv = 1.0 / sum;
    let mut f = 0.0;
    for (qk, &ck) in q.iter_mut().zip(c) {
        *qk *= inv;
        if ck > 0.0 {
            if qk.is_nan() || *qk <= 0.0 {
                return f64::INFINITY;
            }
            f -= ck * ninv * qk.ln();
        }
    }
    f
}

/// Work buffers of [`gradient`] (and, `work`, of [`objective`]).
struct GradBufs {
    /// The weights c_k/(N q_k).
    wt: Vec<f64>,
    /// R = Σ w_k Π_k.
    r: Mat<C64>,
    /// Scratch of the W·R·W products (also used by other n×n products).
    tmp: Mat<C64>,
    work: ProjWork,
}

/// g = W R W with R = Σ (c_k/(N q_k)) Π_k (terms with c_k = 0 are 0).
fn gradient(
    proj: &Projectors,
    c: &[f64],
    ninv: f64,
    q: &[f64],
    w: MatRef<C64>,
    g: &mut Mat<C64>,
    b: &mut GradBufs,
) {
    for ((wk, &ck), &qk) in b.wt.iter_mut().zip(c).zip(q) {
        *wk = if ck > 0.0 { ck * ninv / qk } else { 0.0 };
    }
    weighted_sum_into(proj, &b.wt, b.r.as_mut(), &mut b.work);
    wxw(w, b.r.as_ref(), &mut b.tmp, g);
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

/// Maximum-likelihood reconstruction (SPEC 1.4).
pub fn mle(proj: &Projectors, counts: &[f64], opts: &MleOptions) -> Result<MleResult, MathError> {
    check_counts(proj.count(), counts)?;
    let mut scratch = MleScratch::new(proj)?;
    let s = mle_with_scratch(proj, counts, opts, &mut scratch)?;
    Ok(MleResult {
        rho: scratch.rho.clone(),
        iterations: s.iterations,
        converged: s.converged,
        log_likelihood: s.log_likelihood,
        bound: s.bound,
    })
}

/// [`mle`] on caller-provided scratch space (made by [`MleScratch::new`]
/// for this same `proj`); allocates nothing. The result ρ is left in
/// [`MleScratch::rho`].
///
/// Panics if `scratch` was made for a set of another dimension or size.
pub fn mle_with_scratch(
    proj: &Projectors,
    counts: &[f64],
    opts: &MleOptions,
    s: &mut MleScratch,
) -> Result<MleStats, MathError> {
    let (n, k) = (proj.dim(), proj.count());
    assert!(
        s.n == n && s.k == k,
        "MleScratch made for another projector set"
    );
    let total = check_counts(k, counts)?;
    let ninv = 1.0 / total;
    let c = counts;

    // σ = I/n.
    s.x.fill(ZERO);
    for i in 0..n {
        s.x[(i, i)] = C64::new(1.0 / n as f64, 0.0);
    }
    wxw(s.w.as_ref(), s.x.as_ref(), &mut s.buf.tmp, &mut s.rx);
    let f0 = objective(proj, c, ninv, s.rx.as_ref(), &mut s.qx, &mut s.buf.work);
    if !f0.is_finite() {
        // Only a zero projector has q_k = 0 at σ = I/n.
        let bad = (0..k)
            .find(|&i| c[i] > 0.0 && (s.qx[i].is_nan() || s.qx[i] <= 0.0))
            .unwrap_or(0);
        return Err(MathError::InvalidProjectors(format!(
            "projector {bad} has probability 0 in every state, but its count is {}",
            c[bad]
        )));
    }
    // For `nopovm`, start from the O(n²) linear-inversion estimate instead
    // (exactly the optimum on noiseless data); mixed with a little I/n when
    // it gives a counted projector probability 0.
    if matches!(proj, Projectors::Nopovm { .. }) {
        for eps in [0.0, 1e-3] {
            if !linear_start(s, c, eps)? {
                break;
            }
            wxw(s.w.as_ref(), s.x.as_ref(), &mut s.buf.tmp, &mut s.rx);
            if objective(proj, c, ninv, s.rx.as_ref(), &mut s.qx, &mut s.buf.work).is_finite() {
                break;
            }
            // Back to σ = I/n, which is always feasible here.
            s.x.fill(ZERO);
            for i in 0..n {
                s.x[(i, i)] = C64::new(1.0 / n as f64, 0.0);
            }
            wxw(s.w.as_ref(), s.x.as_ref(), &mut s.buf.tmp, &mut s.rx);
            objective(proj, c, ninv, s.rx.as_ref(), &mut s.qx, &mut s.buf.work);
        }
    }
    gradient(proj, c, ninv, &s.qx, s.w.as_ref(), &mut s.gx, &mut s.buf);
    s.eig.compute(s.gx.as_ref(), false)?;
    let mut bound_x = s.eig.max().ln();

    let mut iterations = 0u64;
    let mut y_is_x = true;
    let mut theta = 1.0f64;
    let mut t = 1.0f64;
    let mut t_fit = 1.0f64;
    let mut stalled = false;
    // The iterate with the smallest certificate so far (the iteration is not
    // monotone in ℓ; the certificate bounds its distance to the optimum).
    let mut best_bound = bound_x;
    s.xb.copy_from(&s.x);
    s.rb.copy_from(&s.rx);

    loop {
        while iterations < opts.max_iters && !stalled {
            if !opts.fixed_iterations && bound_x <= opts.tol {
                break;
            }
            iterations += 1;
            if !y_is_x {
                gradient(proj, c, ninv, &s.qy, s.w.as_ref(), &mut s.gy, &mut s.buf);
            }
            let (y, g) = if y_is_x { (&s.x, &s.gx) } else { (&s.y, &s.gy) };
            // Backtracking projected-gradient step from y. The step is
            // accepted when the curvature of ℓ along it is at most 1/t; this
            // test uses gradients, not differences of ℓ, so it stays exact
            // to rounding close to the optimum, where ℓ itself is flat to
            // within its rounding.
            loop {
                for j in 0..n {
                    for i in j..n {
                        s.z[(i, j)] = y[(i, j)] + g[(i, j)] * t;
                    }
                }
                s.eig.compute(s.z.as_ref(), true)?;
                for (i, l) in s.lam.iter_mut().enumerate() {
                    *l = s.eig.value(i);
                }
                project_to_simplex(&mut s.lam);
                let first = s.lam.iter().position(|&l| l > 0.0).unwrap_or(n - 1);
                for j in first..n {
                    let sc = s.lam[j].sqrt();
                    for i in 0..n {
                        s.b[(i, j)] = s.eig.u[(i, j)] * sc;
                    }
                }
                let bs = s.b.as_ref().subcols(first, n - first);
                matmul(
                    s.xn.as_mut(),
                    Accum::Replace,
                    bs,
                    bs.adjoint(),
                    ONE,
                    Par::Seq,
                );
                // W·xn·W = (W·B)(W·B)†: cheaper than two n³ products when
                // xn has low rank.
                let mut wb = s.buf.tmp.as_mut().subcols_mut(0, n - first);
                matmul(wb.rb_mut(), Accum::Replace, s.w.as_ref(), bs, ONE, Par::Seq);
                matmul(
                    s.rn.as_mut(),
                    Accum::Replace,
                    wb.rb(),
                    wb.rb().adjoint(),
                    ONE,
                    Par::Seq,
                );
                let fnew = objective(proj, c, ninv, s.rn.as_ref(), &mut s.qn, &mut s.buf.work);
                if fnew.is_finite() {
                    gradient(proj, c, ninv, &s.qn, s.w.as_ref(), &mut s.gn, &mut s.buf);
                    let (curv, d2) =
                        curvature(g.as_ref(), s.gn.as_ref(), s.xn.as_ref(), y.as_ref());
                    if curv <= d2 / t {
                        // The step the measured curvature would allow (∞ on
                        // a flat stretch); the next step may grow towards it.
                        t_fit = if curv > 0.0 { d2 / curv } else { f64::INFINITY };
                        break;
                    }
                }
                t *= 0.5;
                if t < 1e-30 {
                    stalled = true;
                    break;
                }
            }
            if stalled {
                break;
            }
            // Gradient-mapping restart (O'Donoghue & Candès): momentum that
            // points against the step is dropped.
            if !y_is_x && restart_dot(y.as_ref(), s.xn.as_ref(), s.x.as_ref()) > 0.0 {
                theta = 1.0;
            }
            let theta_next = 0.5 * (1.0 + (1.0 + 4.0 * theta * theta).sqrt());
            let beta = (theta - 1.0) / theta_next;
            theta = theta_next;
            // y ← xn + β(xn − x), likewise for ρ̃ = WyW (linear in y).
            extrapolate(s.xn.as_ref(), s.x.as_ref(), beta, s.y.as_mut());
            extrapolate(s.rn.as_ref(), s.rx.as_ref(), beta, s.ry.as_mut());
            std::mem::swap(&mut s.x, &mut s.xn);
            std::mem::swap(&mut s.rx, &mut s.rn);
            std::mem::swap(&mut s.qx, &mut s.qn);
            std::mem::swap(&mut s.gx, &mut s.gn);
            s.eig.compute(s.gx.as_ref(), false)?;
            bound_x = s.eig.max().ln();
            if bound_x < best_bound {
                best_bound = bound_x;
                s.xb.copy_from(&s.x);
                s.rb.copy_from(&s.rx);
            }
            y_is_x = beta <= 0.0;
            if !y_is_x {
                let fy = objective(proj, c, ninv, s.ry.as_ref(), &mut s.qy, &mut s.buf.work);
                if !fy.is_finite() {
                    theta = 1.0;
                    y_is_x = true;
                }
            }
            // Grow the step: by 1.25, or up to 10× while the curvature
            // measured on the last step allows it (a start near the boundary
            // of the domain needs tiny steps that the iteration soon outgrows).
            t = (t * 1.25).max(t_fit.min(t * 10.0));
        }
        // ρ = W σ W / Tr(W σ W), Hermitian; the figures at exactly that ρ.
        let tr: f64 = (0..n).map(|i| s.rb[(i, i)].re).sum();
        for j in 0..n {
            for i in 0..n {
                s.rho[(i, j)] = s.rb[(i, j)] / tr;
            }
        }
        hermitize_in_place(s.rho.as_mut());
        let f = objective(proj, c, ninv, s.rho.as_ref(), &mut s.qn, &mut s.buf.work);
        gradient(proj, c, ninv, &s.qn, s.w.as_ref(), &mut s.gy, &mut s.buf);
        s.eig.compute(s.gy.as_ref(), false)?;
        let bound = s.eig.max().ln();
        let converged = bound <= opts.tol;
        let done = converged || stalled || iterations >= opts.max_iters || opts.fixed_iterations;
        if done {
            return Ok(MleStats {
                iterations,
                converged,
                log_likelihood: -f * total,
                bound: bound * total,
            });
        }
        // Rounding put the final ρ just past the tolerance: iterate on, and
        // let any iterate with a smaller in-loop bound replace it.
        best_bound = bound;
        bound_x = bound.max(opts.tol * 2.0);
    }
}

/// σ₀ ∝ G^{1/2} ρ₀ G^{1/2} with ρ₀ = (1 − ε)·(the `nopovm` linear-inversion
/// estimate) + ε·I/n, into `s.x`; false when the estimate has trace ≤ 0.
fn linear_start(s: &mut MleScratch, c: &[f64], eps: f64) -> Result<bool, MathError> {
    let n = s.n;
    let trace: f64 = c[..n].iter().sum();
    if trace <= 0.0 {
        return Ok(false);
    }
    let z = &mut s.z;
    for a in 0..n {
        z[(a, a)] = C64::new(c[a] / trace, 0.0);
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
    s.eig.compute(s.z.as_ref(), true)?;
    for (i, l) in s.lam.iter_mut().enumerate() {
        *l = s.eig.value(i);
    }
    project_to_simplex(&mut s.lam);
    for j in 0..n {
        let sc = ((1.0 - eps) * s.lam[j]).sqrt();
        for i in 0..n {
            s.b[(i, j)] = s.eig.u[(i, j)] * sc;
        }
    }
    matmul(
        s.xn.as_mut(),
        Accum::Replace,
        s.b.as_ref(),
        s.b.as_ref().adjoint(),
        ONE,
        Par::Seq,
    );
    for i in 0..n {
        s.xn[(i, i)].re += eps / n as f64;
    }
    wxw(s.winv.as_ref(), s.xn.as_ref(), &mut s.buf.tmp, &mut s.x);
    let tr: f64 = (0..n).map(|i| s.x[(i, i)].re).sum();
    for j in 0..n {
        for i in 0..n {
            s.x[(i, j)] /= tr;
        }
    }
    hermitize_in_place(s.x.as_mut());
    Ok(true)
}

/// ℓ(ρ) of SPEC 1.4 (−∞ when a counted projector has zero probability).
pub fn log_likelihood(proj: &Projectors, counts: &[f64], rho: MatRef<C64>) -> f64 {
    let mut q = vec![0.0; proj.count()];
    let f = objective(proj, counts, 1.0, rho, &mut q, &mut ProjWork::new(proj));
    if f.is_finite() { -f } else { f64::NEG_INFINITY }
}

/// The SPEC 1.4 bound N·ln λ_max(G^{-1/2} R G^{-1/2}) at ρ (+∞ when a
/// counted projector has zero probability).
pub fn certificate(proj: &Projectors, counts: &[f64], rho: MatRef<C64>) -> Result<f64, MathError> {
    let total = check_counts(proj.count(), counts)?;
    let mut s = MleScratch::new(proj)?;
    let f = objective(proj, counts, 1.0 / total, rho, &mut s.qn, &mut s.buf.work);
    if !f.is_finite() {
        return Ok(f64::INFINITY);
    }
    gradient(
        proj,
        counts,
        1.0 / total,
        &s.qn,
        s.w.as_ref(),
        &mut s.gy,
        &mut s.buf,
    );
    s.eig.compute(s.gy.as_ref(), false)?;
    Ok(total * s.eig.max().ln())
}
