//! Maximum likelihood (docs/reference.md) by L-BFGS on a square factor of ρ, with the
//! the documented certificate as the stopping rule, on caller-owned scratch space.
//!
//! ℓ(ρ) = Σ c_k ln(p_k(ρ)/Tr(Gρ)) does not change under ρ → sρ, so with
//! ρ̃ = BB† for any n×n matrix B it is a smooth function of B with no
//! constraint at all: every B ≠ 0 stands for the density matrix
//! ρ = BB†/Tr(BB†), and no projection (no eigen-decomposition) is needed
//! inside the iteration. We minimize F = −ℓ/N. With T = Tr(Gρ̃) = Σ p_k(ρ̃),
//! q_k = p_k(ρ̃)/T and R = Σ (c_k/(N q_k)) Π_k (the R of the certificate),
//!
//!   ∇_B F = (2/T)·(G − R)·B,
//!
//! and the certificate is N·ln λ_max(WRW), W = G^{-1/2}. Every local
//! minimum of F is global: if B is invertible, ∇ = 0 gives R = G
//! (λ_max = 1); if not, the step B + ε·v·u† with Bu = 0 changes ρ̃ by ε²vv†
//! only, and F not decreasing along it for every v gives G − R ⪰ 0, i.e.
//! λ_max(WRW) ≤ 1. (The textbook RρR iteration is gradient descent on this
//! same factor with a fixed step.)
//!
//! The variable is A with B = P·A: P = I for `nopovm` (its G is
//! well-conditioned: λ_max/λ_min ≈ 2.1 for every n), P = W for other sets
//! (whitened, so the iteration does not feel an ill-conditioned G; the two
//! extra n³ products are small next to their n⁴ probabilities). Each
//! iteration costs ρ̃ = BB†, the probabilities, R, one product (G − R)·B, and
//! the L-BFGS two-loop recursion: O(n³) for `nopovm`, dominated by two n×n
//! products. The step length is found by a line search whose tests use
//! directional derivatives as well as values: close to the optimum, F is flat
//! to within its own rounding long before the certificate (first order in
//! the distance to the optimum, F second order) reaches 1e-8.
//!
//! Convergence is tested without an eigen-decomposition: λ_max(WRW) ≤ e^tol
//! exactly when e^tol·G − R ⪰ 0 (a congruence by W), which a Cholesky
//! factorization decides. A cheaper necessary condition screens it first:
//! with M = WRW ⪰ 0 and Tr(Mσ) = 1 (σ = G^{1/2}ρG^{1/2}), λ_max(M) ≤ 1 + ε
//! implies ‖(M − I)σ^{1/2}‖_F ≤ √((1+ε)ε) + ε, and ‖(M − I)σ^{1/2}‖_F is
//! √T/2 times ‖∇_A F‖ when whitened, at least √T/(2√λ_max(G)) times
//! ‖∇_B F‖ otherwise. The returned ρ's bound is then computed exactly (an
//! eigen-decomposition), once.
//!
//! Two weaknesses of a factor, and what is done about them. It never
//! reaches an exact zero eigenvalue, and where the data pull weakly on the
//! directions the optimum does not use (many counts of a nearly pure state)
//! the iteration can linger near a saddle of F(B) for a thousand
//! iterations, with ~1e-3 of the trace in those directions. Every
//! [`CHECK_EVERY`] iterations ρ's spectrum is looked at: when the trace under
//! a clear gap has not halved since the last look, the iterate is handed to
//! the projected gradient of [`crate::apg`], whose projection sets those
//! eigenvalues to zero at once. And on noiseless data nothing pulls them to
//! zero at all, so the certificate passes with ~1e-5 of the trace left
//! there: after it passes, [`MleScratch::refine_low_rank`] drops the
//! eigenvalues under a clear gap and iterates on at that rank.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt::factor::{cholesky_in_place, cholesky_in_place_scratch};
use faer::linalg::matmul::matmul;
use faer::reborrow::ReborrowMut;
use faer::{Accum, Mat, MatMut, MatRef, Par};

use crate::apg::Apg;
use crate::eigh::Eigh;
use crate::lbfgs::History;
use crate::likelihood::{Problem, objective, r_matrix};
use crate::projectors::ProjWork;
use crate::vector::{self, dot, scale, step};
use crate::{C64, MathError, Projectors, check_counts, gram};

const ONE: C64 = C64::new(1.0, 0.0);
const ZERO: C64 = C64::new(0.0, 0.0);

/// Correction pairs kept by L-BFGS.
const MEMORY: usize = 6;
/// Trial steps of one line search before it gives up.
const MAX_TRIALS: usize = 40;
/// Iterations between two looks at ρ's spectrum for a saddle plateau.
const CHECK_EVERY: u64 = 100;

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
    /// The docs/reference.md bound N·ln λ_max(G^{-1/2} R G^{-1/2}) at the returned ρ.
    pub bound: f64,
}

/// What [`mle_with_scratch`] returns; ρ itself is in [`MleScratch::rho`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MleStats {
    pub iterations: u64,
    pub converged: bool,
    pub log_likelihood: f64,
    /// The docs/reference.md bound N·ln λ_max(G^{-1/2} R G^{-1/2}) at the returned ρ.
    pub bound: f64,
    /// How many of the iterations were projected-gradient steps
    /// ([`crate::apg`]), for benchmarks.
    pub projected_iterations: u64,
}

/// Which projector set a scratch was made for: its form, n, K, the address
/// and length of its borrowed data, and a fold of up to 16 sampled entries
/// (so that another set that happens to be mapped at the same address is
/// told apart too).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SetId {
    form: u8,
    n: usize,
    k: usize,
    addr: usize,
    len: usize,
    sample: u64,
}

impl SetId {
    fn of(proj: &Projectors) -> SetId {
        let (form, data): (u8, &[C64]) = match *proj {
            Projectors::Nopovm { .. } => (0, &[]),
            Projectors::Kets { kets, .. } => (1, kets),
            Projectors::Dense { data, .. } => (2, data),
        };
        let mut sample = 0u64;
        let step = (data.len() / 16).max(1);
        for z in data.iter().step_by(step).take(16) {
            sample = (sample.rotate_left(5) ^ z.re.to_bits()).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            sample ^= z.im.to_bits();
        }
        SetId {
            form,
            n: proj.dim(),
            k: proj.count(),
            addr: data.as_ptr() as usize,
            len: data.len(),
            sample,
        }
    }
}

/// What stays fixed for one projector set.
struct SetData {
    /// The set this was made for.
    id: SetId,
    n: usize,
    /// G = Σ Π_k.
    g: Mat<C64>,
    /// W = G^{-1/2}.
    w: Mat<C64>,
    /// G^{1/2} (a start B becomes the whitened A = G^{1/2}B).
    winv: Mat<C64>,
    /// Whether the variable is A = G^{1/2}B (else B itself).
    whiten: bool,
    /// ‖(M − I)σ^{1/2}‖_F ≥ screen·√T·‖∇F‖/2 (see the module doc).
    screen: f64,
}

/// Buffers of one evaluation of F and ∇F.
struct Eval {
    /// ρ̃ = BB†; after the probabilities, scratch of the gradient.
    rt: Mat<C64>,
    /// B = W·A (whitened sets).
    b: Mat<C64>,
    /// The weights c_k/(N q_k).
    wt: Vec<f64>,
    work: ProjWork,
}

/// One point of the iteration: the variable, its F, T, q, ∇F and G − R.
/// The variable and the gradient are n×n column-major vectors (the L-BFGS
/// arithmetic runs over them flat), viewed as matrices where multiplied.
struct Point {
    a: Vec<C64>,
    f: f64,
    t: f64,
    q: Vec<f64>,
    grad: Vec<C64>,
    /// ‖∇F‖².
    gg: f64,
    /// G − R.
    gmr: Mat<C64>,
}

impl Point {
    fn new(n: usize, k: usize) -> Self {
        Point {
            a: vec![ZERO; n * n],
            f: 0.0,
            t: 0.0,
            q: vec![0.0; k],
            grad: vec![ZERO; n * n],
            gg: 0.0,
            gmr: Mat::zeros(n, n),
        }
    }
}

/// Every buffer the MLE kernel needs for one projector set, so that
/// [`mle_with_scratch`] allocates nothing. Holds G and W = G^{-1/2} of the
/// set it was made for: reuse it only with that same set (any number of jobs).
pub struct MleScratch {
    set: SetData,
    eval: Eval,
    x: Point,
    xn: Point,
    /// Search direction.
    d: Vec<C64>,
    hist: History,
    chol: Mat<C64>,
    chol_buf: MemBuffer,
    /// Scratch of the exact certificate.
    m: Mat<C64>,
    eig: Eigh,
    /// Eigenvalues of the final ρ (see [`MleScratch::refine_low_rank`]).
    lam: Vec<f64>,
    /// The converged ρ while a low-rank refinement runs.
    saved: Mat<C64>,
    /// The projected-gradient finish (see [`crate::apg`]).
    apg: Apg,
    rho: Mat<C64>,
}

impl MleScratch {
    /// Allocates the buffers for `proj` and computes its G and W = G^{-1/2};
    /// fails when G is not positive definite (the set is not informationally
    /// complete).
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
        // W = (U g^{-1/4})(U g^{-1/4})†.
        let mut b = eig.u.clone();
        for j in 0..n {
            let s = eig.value(j).powf(-0.25);
            for i in 0..n {
                b[(i, j)] *= s;
            }
        }
        let mut w = &b * b.adjoint();
        hermitize_in_place(w.as_mut());
        // G^{1/2} = (U g^{1/4})(U g^{1/4})†.
        for j in 0..n {
            let s = eig.value(j).sqrt();
            for i in 0..n {
                b[(i, j)] *= s;
            }
        }
        let mut winv = &b * b.adjoint();
        hermitize_in_place(winv.as_mut());
        let whiten = !matches!(proj, Projectors::Nopovm { .. });
        let sq = || Mat::<C64>::zeros(n, n);
        Ok(MleScratch {
            set: SetData {
                id: SetId::of(proj),
                n,
                g,
                w,
                winv,
                whiten,
                screen: if whiten { 1.0 } else { 1.0 / gmax.sqrt() },
            },
            eval: Eval {
                rt: sq(),
                b: sq(),
                wt: vec![0.0; k],
                work: ProjWork::new(proj),
            },
            x: Point::new(n, k),
            xn: Point::new(n, k),
            d: vec![ZERO; n * n],
            hist: History::new(n * n, MEMORY),
            chol: sq(),
            chol_buf: MemBuffer::new(cholesky_in_place_scratch::<C64>(
                n,
                Par::Seq,
                Default::default(),
            )),
            m: sq(),
            eig,
            lam: vec![0.0; n],
            saved: sq(),
            apg: Apg::new(n, k),
            rho: sq(),
        })
    }

    /// The ρ of the last [`mle_with_scratch`] call.
    pub fn rho(&self) -> MatRef<'_, C64> {
        self.rho.as_ref()
    }

    /// Whether this scratch was made for `proj` (the same form, n, K and
    /// borrowed data, sampled entries equal).
    pub fn is_for(&self, proj: &Projectors) -> bool {
        self.set.id == SetId::of(proj)
    }
}

/// x ← x / Tr x, Hermitian.
fn normalize(mut x: MatMut<C64>) {
    let tr: f64 = (0..x.nrows()).map(|i| x[(i, i)].re).sum();
    for j in 0..x.ncols() {
        for i in 0..x.nrows() {
            x[(i, j)] /= tr;
        }
    }
    hermitize_in_place(x);
}

/// How many of the (ascending) eigenvalues `lam` lie under a clear gap: all
/// below 1e-3 of the largest, when the next one up is at least 100× the
/// largest of them; None without such a gap.
fn cut_under_gap(lam: &[f64]) -> Option<usize> {
    let lmax = lam[lam.len() - 1];
    let cut = lam.iter().take_while(|&&l| l < 1e-3 * lmax).count();
    (cut > 0 && lam[cut] >= 100.0 * lam[cut - 1].max(0.0)).then_some(cut)
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

/// F, T, q, G − R and ∇F at `p.a`, into `p`; false where F = +∞.
fn evaluate(
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

/// Whether λ_max(WRW) ≤ e^tol at `x`, decided by a Cholesky factorization
/// of e^tol·G − R after the gradient screen (module doc).
fn certified(set: &SetData, x: &Point, tol: f64, chol: &mut Mat<C64>, buf: &mut MemBuffer) -> bool {
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
        Default::default(),
        Par::Seq,
        MemStack::new(buf),
        Default::default(),
    )
    .is_ok()
}

/// One L-BFGS step from `x` into `xn`, its correction pair stored; false
/// when no step along the direction (nor, after dropping the history, along
/// steepest descent) is accepted.
#[allow(clippy::too_many_arguments)]
fn line_search(
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
            let (mut alpha, mut lo, mut hi) = (1.0, 0.0, f64::INFINITY);
            for _ in 0..MAX_TRIALS {
                step(&x.a, alpha, d, &mut xn.a);
                if !evaluate(proj, c, ninv, set, e, xn) {
                    // Outside the domain of ℓ: shorter.
                    hi = alpha;
                    alpha = 0.5 * (lo + hi);
                    continue;
                }
                let dn = dot(&xn.grad, d);
                let decrease = xn.f <= x.f + 1e-4 * alpha * d0;
                // F equal to within its rounding: judge by the slope alone
                // (the "approximate Wolfe" test of Hager & Zhang).
                let flat = xn.f - x.f <= 1e-12 * x.f.abs();
                if dn >= 0.9 * d0 && (decrease || (flat && dn <= -0.8 * d0)) {
                    // s = α·d, y = ∇(xn) − ∇(x); ⟨s, y⟩ = α·(dn − d0)
                    // from the slopes already taken.
                    xn.gg = hist.push(alpha, d, &xn.grad, &x.grad, alpha * (dn - d0));
                    return true;
                }
                if dn < 0.9 * d0 && (decrease || flat) {
                    // Still steep: longer.
                    lo = alpha;
                    alpha = if hi.is_finite() {
                        0.5 * (lo + hi)
                    } else {
                        2.0 * alpha
                    };
                } else {
                    hi = alpha;
                    alpha = 0.5 * (lo + hi);
                }
            }
        }
        if hist.is_empty() {
            return false;
        }
        hist.clear();
    }
}

/// Maximum-likelihood reconstruction (docs/reference.md).
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

/// [`mle`] on caller-provided scratch space; allocates nothing when the
/// scratch was made ([`MleScratch::new`]) for this same `proj`. A scratch
/// holds G and G^{-1/2} of its set, so it is bound to that set: made for
/// another one ([`MleScratch::is_for`] false), it is rebuilt for `proj`
/// first. The result ρ is left in [`MleScratch::rho`].
pub fn mle_with_scratch(
    proj: &Projectors,
    counts: &[f64],
    opts: &MleOptions,
    s: &mut MleScratch,
) -> Result<MleStats, MathError> {
    let (n, k) = (proj.dim(), proj.count());
    if !s.is_for(proj) {
        check_counts(k, counts)?;
        *s = MleScratch::new(proj)?;
    }
    let total = check_counts(k, counts)?;
    let ninv = 1.0 / total;
    let c = counts;
    {
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
        } = &mut *s;

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
                certified(set, xn, opts.tol, chol, chol_buf)
            }
        {
            std::mem::swap(x, xn);
        }
    }

    let mut iterations = 0u64;
    // The Cholesky test's tolerance; halved whenever rounding lets it pass a
    // point whose exact bound does not.
    let mut tol_test = opts.tol;
    let fixed = opts.fixed_iterations;
    // The trace under a clear gap of ρ's spectrum at the last look.
    let mut under_gap: Option<f64> = None;
    loop {
        let until = if fixed {
            opts.max_iters
        } else {
            opts.max_iters.min(iterations + CHECK_EVERY)
        };
        let exit = s.iterate(
            proj,
            c,
            ninv,
            tol_test,
            until - iterations,
            fixed,
            &mut iterations,
        );
        if exit == Exit::Budget && !fixed && iterations < opts.max_iters {
            // A saddle plateau: at least 1e-6 of the trace under a clear
            // spectral gap, not halved in CHECK_EVERY iterations (converging
            // runs shrink it by orders of magnitude). The projected gradient
            // removes it at once.
            s.rho_from_x();
            let now = s.trace_under_gap()?;
            if let (Some(t), Some(before)) = (now, under_gap)
                && t > 1e-6
                && t > 0.5 * before
            {
                let before = iterations;
                s.finish_with_apg(proj, c, ninv, opts, &mut iterations)?;
                let (f, bound) = s.bound_at_rho(proj, c, ninv)?;
                return Ok(MleStats {
                    projected_iterations: iterations - before,
                    iterations,
                    converged: bound <= opts.tol,
                    log_likelihood: -f * total,
                    bound: bound * total,
                });
            }
            under_gap = now;
            continue;
        }
        s.rho_from_x();
        let (mut f, mut bound) = s.bound_at_rho(proj, c, ninv)?;
        if bound <= opts.tol && !fixed {
            s.refine_low_rank(proj, c, ninv, opts, &mut iterations, &mut f, &mut bound)?;
        }
        let converged = bound <= opts.tol;
        if converged || exit == Exit::Stalled || iterations >= opts.max_iters || fixed {
            return Ok(MleStats {
                iterations,
                converged,
                log_likelihood: -f * total,
                bound: bound * total,
                projected_iterations: 0,
            });
        }
        tol_test *= 0.5;
    }
}

/// Why [`MleScratch::iterate`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exit {
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
    fn iterate(
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

    /// The trace of `self.rho` under a clear gap of its spectrum
    /// ([`cut_under_gap`]), or None.
    fn trace_under_gap(&mut self) -> Result<Option<f64>, MathError> {
        self.eig.compute(self.rho.as_ref(), false)?;
        for (i, l) in self.lam.iter_mut().enumerate() {
            *l = self.eig.value(i);
        }
        Ok(cut_under_gap(&self.lam).map(|cut| self.lam[..cut].iter().map(|l| l.max(0.0)).sum()))
    }

    /// Hands the current iterate over to the projected gradient
    /// ([`crate::apg`]) as σ = G^{1/2}ρG^{1/2}/Tr, for the iterations left;
    /// leaves its ρ in `self.rho`.
    fn finish_with_apg(
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

    /// ρ = BB†/Tr(BB†) of the current iterate, Hermitian.
    fn rho_from_x(&mut self) {
        let n = self.set.n;
        let a = MatRef::from_column_major_slice(&self.x.a, n, n);
        let b = if self.set.whiten {
            matmul(
                self.eval.b.as_mut(),
                Accum::Replace,
                self.set.w.as_ref(),
                a,
                ONE,
                Par::Seq,
            );
            self.eval.b.as_ref()
        } else {
            a
        };
        matmul(
            self.rho.as_mut(),
            Accum::Replace,
            b,
            b.adjoint(),
            ONE,
            Par::Seq,
        );
        normalize(self.rho.as_mut());
    }

    /// (F, ln λ_max(WRW)) at `self.rho`, exactly.
    fn bound_at_rho(
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
    fn refine_low_rank(
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

/// (F, ln λ_max(WRW)) at the density matrix `rho`; (+∞, +∞) when a counted
/// projector has probability 0.
#[allow(clippy::too_many_arguments)]
fn exact_bound(
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

/// ℓ(ρ) of docs/reference.md (−∞ when a counted projector has zero probability).
pub fn log_likelihood(proj: &Projectors, counts: &[f64], rho: MatRef<C64>) -> f64 {
    let mut q = vec![0.0; proj.count()];
    match objective(proj, counts, 1.0, rho, &mut q, &mut ProjWork::new(proj)) {
        Some((f, _)) => -f,
        None => f64::NEG_INFINITY,
    }
}

/// The docs/reference.md bound N·ln λ_max(G^{-1/2} R G^{-1/2}) at ρ (+∞ when a
/// counted projector has zero probability).
pub fn certificate(proj: &Projectors, counts: &[f64], rho: MatRef<C64>) -> Result<f64, MathError> {
    let total = check_counts(proj.count(), counts)?;
    let mut s = MleScratch::new(proj)?;
    let (_, bound) = exact_bound(
        proj,
        counts,
        1.0 / total,
        &s.set,
        &mut s.eval,
        &mut s.x.q,
        &mut s.m,
        &mut s.eig,
        rho,
    )?;
    Ok(total * bound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nopovm_ket;
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
                    exact_bound(&proj, &c, ninv, set, eval, &mut xn.q, m, eig, rho.as_ref())
                        .unwrap();
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
}
