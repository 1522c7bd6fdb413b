//! Weighted least squares as the lab's tool defines it: the density matrix
//! that minimizes Pearson's
//!
//!   χ²(ρ) = Σ_k (f_k − q_k(ρ))² / max(q_k(ρ), 1e-12),
//!
//! with frequencies f_k = c_k/N_g per basis for `mub` (N_g the total of k's
//! basis), f_k = c_k/(c_0 + … + c_{n−1}) for `nopovm` (the computational
//! basis sets the scale of every frequency) and q_k = p_k(ρ) = Tr(Π_kρ); for
//! `sic` and custom sets f_k = c_k/N and q_k = p_k(ρ)/Tr(Gρ), G = Σ_k Π_k.
//! It is not maximum likelihood.
//!
//! Write q_k = Tr(Π_kρ̃)/Tr(Hρ̃) with H = I (`mub`, `nopovm`) or H = G: χ²
//! is then unchanged by ρ̃ → sρ̃ and equals the definition at trace-1 ρ̃.
//! With ρ̃ = BB† (B any n×n complex matrix, T = Tr(Hρ̃)) it is a smooth
//! function of B without constraints. With the weights
//! w_k = ∂χ²/∂q_k = 1 − f_k²/q_k² (q_k > 1e-12, else −2(f_k − q_k)/1e-12),
//!
//!   ∇_ρ̃ χ² = S̃ = (Σ_k w_kΠ_k − (Σ_k w_k q_k)·H)/T,   ∇_B χ² = 2·S̃·B
//!
//! in the real inner product Re Tr(X†Y). The factor is minimized by L-BFGS
//! with a line search on the (approximate) Wolfe conditions: its tests use
//! directional derivatives as well as values, since close to the optimum χ²
//! is flat to within its own rounding long before the certificate passes.
//!
//! Certificate. At ρ = ρ̃/Tr ρ̃ the gradient S = ∂χ²/∂ρ has Tr(Sρ) = 0
//! (scale invariance). For `mub` and `nopovm` q is linear in ρ on the
//! trace-1 states and (f − q)²/q = f²/q − 2f + q is convex, so χ² is convex
//! there and, for every state σ, χ²(σ) ≥ χ²(ρ) + Tr(S(σ − ρ)) ≥
//! χ²(ρ) + λ_min(S): the Frank–Wolfe gap −λ_min(S) bounds χ²(ρ) − min χ².
//! (The floor 1e-12 bends φ(q) concavely only where q < 1e-12, by at most
//! 1e-12/4 per projector.) The iteration stops when
//! −λ_min(S) ≤ tol·χ² + 1e-15, looked at every [`CHECK_EVERY`] iterations
//! (an eigen-decomposition). For `sic` and custom sets the same number is a
//! first-order stationarity test (q is a ratio there, χ² not convex).
//! Where the data are fit exactly (χ² ≤ 1e-25, rounding level) χ² ≥ 0 is
//! itself the bound, and counts as converged; below χ² = 1e-12 the absolute
//! 1e-15 of the rule is not small next to χ², so the iteration polishes on
//! to rounding level or until it stalls.
//!
//! A factor never reaches an exact zero eigenvalue, and for nearly pure
//! states the directions the optimum does not use decay slowly. When the
//! L-BFGS iteration stalls or runs out of its share of iterations without
//! the certificate, a projected-gradient finish takes over: ρ ← P(ρ − t·S)
//! with P the projection onto density matrices (eigenvalues projected onto
//! the simplex), backtracking on χ², with momentum restarted whenever χ²
//! rises. The better of the two end points is returned.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};

use crate::eigh::Eigh;
use crate::lbfgs::{Bracket, History};
use crate::linear::{hermitize, project_to_simplex};
use crate::projectors::{ProjWork, probs_into, weighted_sum_into};
use crate::vector::{dot, scale, step};
use crate::{C64, Design, MathError, Projectors, check_counts, frequencies, gram, linear};

const ONE: C64 = C64::new(1.0, 0.0);
const ZERO: C64 = C64::new(0.0, 0.0);

/// The floor of the denominator of χ².
const FLOOR: f64 = 1e-12;
/// Correction pairs kept by L-BFGS.
const MEMORY: usize = 8;
/// Trial steps of one line search before it gives up.
const MAX_TRIALS: usize = 50;
/// Iterations between two looks at the certificate.
const CHECK_EVERY: u64 = 10;
/// The factored iteration hands over to the projected gradient when the gap
/// has not halved over this many iterations.
const LINGER: u64 = 100;
/// χ² at which the data are fit exactly to rounding.
const EXACT_FIT: f64 = 1e-25;
/// Below this χ² the iteration polishes on (see [`done`]).
const POLISH: f64 = 1e-12;

/// Options of [`wls`].
#[derive(Clone, Debug)]
pub struct WlsOptions {
    pub max_iters: u64,
    /// Relative certificate: stop when −λ_min(S) ≤ tol·χ² + 1e-15.
    pub tol: f64,
}

impl Default for WlsOptions {
    fn default() -> Self {
        WlsOptions {
            max_iters: 100_000,
            tol: 1e-10,
        }
    }
}

/// What [`wls`] returns.
#[derive(Clone, Debug)]
pub struct WlsResult {
    /// The estimate (Hermitian, trace 1, positive semidefinite).
    pub rho: Mat<C64>,
    /// χ² at `rho`.
    pub objective: f64,
    pub iterations: u64,
    /// Whether `gap` ≤ tol·χ² + 1e-15.
    pub converged: bool,
    /// Why the iteration stopped.
    pub stop: crate::Stop,
    /// −λ_min(∂χ²/∂ρ) at `rho`: for `mub` and `nopovm` a bound on
    /// χ²(rho) − min χ²; for other sets a stationarity measure.
    pub gap: f64,
}

/// The fixed part of one problem: the frequencies and H.
struct Problem {
    f: Vec<f64>,
    /// G for `sic` and custom sets; `None` for H = I.
    h: Option<Mat<C64>>,
}

/// The frequencies f_k and H of a set and its counts (checked).
fn problem(
    proj: &Projectors,
    counts: &[f64],
    design: Option<Design>,
) -> Result<Problem, MathError> {
    let (n, k) = (proj.dim(), proj.count());
    let total = check_counts(k, counts)?;
    if let Some(d) = design
        && d.count(n) != Some(k)
    {
        return Err(MathError::InvalidProjectors(format!(
            "the {d} design of dimension {n} has {} projectors, but the set has {k}",
            d.count(n)
                .map_or_else(|| "too many".to_string(), |c| c.to_string())
        )));
    }
    Ok(match design {
        Some(Design::Mub) => Problem {
            f: frequencies(counts, &Design::Mub.groups(n))?,
            h: None,
        },
        Some(Design::Nopovm) => {
            let scale: f64 = counts[..n].iter().sum();
            if scale <= 0.0 {
                return Err(MathError::EmptyScale {
                    first: 0,
                    last: n - 1,
                });
            }
            Problem {
                f: counts.iter().map(|c| c / scale).collect(),
                h: None,
            }
        }
        Some(Design::Sic) | None => Problem {
            f: counts.iter().map(|c| c / total).collect(),
            h: Some(gram(proj)),
        },
    })
}

/// Buffers of one evaluation.
struct Work {
    /// p_k(ρ̃), then q_k.
    q: Vec<f64>,
    wt: Vec<f64>,
    pw: ProjWork,
}

impl Work {
    fn new(proj: &Projectors) -> Self {
        let k = proj.count();
        Work {
            q: vec![0.0; k],
            wt: vec![0.0; k],
            pw: ProjWork::new(proj),
        }
    }
}

fn trace(x: MatRef<C64>) -> f64 {
    (0..x.nrows()).map(|i| x[(i, i)].re).sum()
}

/// χ² and T = Tr(Hρ̃) at the Hermitian ρ̃, and
/// `m` = Σ_k w_kΠ_k − (Σ_k w_k q_k)·H (= T·∇_ρ̃ χ²). `None` where T is not a
/// positive number or χ² is not finite.
fn evaluate(
    proj: &Projectors,
    pr: &Problem,
    rt: MatRef<C64>,
    work: &mut Work,
    mut m: MatMut<C64>,
) -> Option<(f64, f64)> {
    probs_into(proj, rt, &mut work.q, &mut work.pw);
    let t = match pr.h {
        None => trace(rt),
        // Tr(Gρ̃) = Σ_k p_k(ρ̃).
        Some(_) => work.q.iter().sum(),
    };
    if !(t > 0.0 && t.is_finite()) {
        return None;
    }
    let inv = 1.0 / t;
    let (mut chi, mut wq) = (0.0, 0.0);
    for ((q, w), &f) in work.q.iter_mut().zip(work.wt.iter_mut()).zip(&pr.f) {
        *q *= inv;
        let d = f - *q;
        if *q > FLOOR {
            chi += d * d / *q;
            // 1 − f²/q², accurate where q ≈ f (q − f is then exact).
            *w = (*q - f) * (*q + f) / (*q * *q);
        } else {
            chi += d * d / FLOOR;
            *w = -2.0 * d / FLOOR;
        }
        wq += *w * *q;
    }
    if !chi.is_finite() {
        return None;
    }
    weighted_sum_into(proj, &work.wt, m.as_mut(), &mut work.pw);
    let n = m.nrows();
    match &pr.h {
        None => {
            for i in 0..n {
                m[(i, i)].re -= wq;
            }
        }
        Some(h) => {
            for j in 0..n {
                for i in 0..n {
                    m[(i, j)] -= h[(i, j)] * wq;
                }
            }
        }
    }
    Some((chi, t))
}

fn check_shape(proj: &Projectors, rho: MatRef<C64>) -> Result<(), MathError> {
    let n = proj.dim();
    if rho.nrows() != n || rho.ncols() != n {
        return Err(MathError::RhoShape {
            rows: rho.nrows(),
            cols: rho.ncols(),
            n,
        });
    }
    Ok(())
}

/// χ² of ρ (see the module doc). ρ's scale does not matter: q_k is
/// p_k(ρ)/Tr(Hρ), which is p_k(ρ) for a trace-1 ρ of `mub` or `nopovm`.
/// +∞ where Tr(Hρ) ≤ 0 (no density matrix).
///
/// # Errors
/// [`MathError::RhoShape`] if ρ is not n×n; counts that [`check_counts`] rejects,
/// a group without counts ([`MathError::EmptyGroup`], [`MathError::EmptyScale`]),
/// or a `design` whose K differs from the set's ([`MathError::InvalidProjectors`]).
pub fn chi2(
    proj: &Projectors,
    counts: &[f64],
    design: Option<Design>,
    rho: MatRef<C64>,
) -> Result<f64, MathError> {
    check_shape(proj, rho)?;
    let pr = problem(proj, counts, design)?;
    let n = proj.dim();
    let mut m = Mat::<C64>::zeros(n, n);
    let h = hermitize(rho);
    Ok(
        evaluate(proj, &pr, h.as_ref(), &mut Work::new(proj), m.as_mut())
            .map_or(f64::INFINITY, |(chi, _)| chi),
    )
}

/// ∂χ²/∂ρ at a trace-1 ρ (Hermitian n×n), for tests and the certificate:
/// the S with dχ² = Tr(S·dρ), of χ² extended to every scale of ρ (so that
/// Tr(Sρ) = 0). Where Tr(Hρ) ≤ 0 every entry is NaN.
///
/// # Errors
/// As [`chi2`].
pub fn chi2_gradient(
    proj: &Projectors,
    counts: &[f64],
    design: Option<Design>,
    rho: MatRef<C64>,
) -> Result<Mat<C64>, MathError> {
    check_shape(proj, rho)?;
    let pr = problem(proj, counts, design)?;
    let n = proj.dim();
    let mut m = Mat::<C64>::zeros(n, n);
    let h = hermitize(rho);
    match evaluate(proj, &pr, h.as_ref(), &mut Work::new(proj), m.as_mut()) {
        Some((_, t)) => Ok(Mat::from_fn(n, n, |i, j| m[(i, j)] / t)),
        None => Ok(Mat::from_fn(n, n, |_, _| C64::new(f64::NAN, f64::NAN))),
    }
}

/// One point of the factored iteration (B and ∇_B χ² flat, column major).
struct Point {
    b: Vec<C64>,
    f: f64,
    t: f64,
    grad: Vec<C64>,
    /// T·∇_ρ̃ χ².
    m: Mat<C64>,
}

impl Point {
    fn new(n: usize) -> Self {
        Point {
            b: vec![ZERO; n * n],
            f: 0.0,
            t: 0.0,
            grad: vec![ZERO; n * n],
            m: Mat::zeros(n, n),
        }
    }
}

/// Everything one factored evaluation needs.
struct Ctx<'a, 'p> {
    proj: &'a Projectors<'p>,
    pr: &'a Problem,
    work: Work,
    rt: Mat<C64>,
}

impl Ctx<'_, '_> {
    /// χ², T, M and ∇_B χ² at `p.b`; false where χ² is not finite.
    fn eval(&mut self, p: &mut Point) -> bool {
        let n = self.rt.nrows();
        let b = MatRef::from_column_major_slice(&p.b, n, n);
        matmul(
            self.rt.as_mut(),
            Accum::Replace,
            b,
            b.adjoint(),
            ONE,
            Par::Seq,
        );
        let Some((f, t)) = evaluate(
            self.proj,
            self.pr,
            self.rt.as_ref(),
            &mut self.work,
            p.m.as_mut(),
        ) else {
            return false;
        };
        p.f = f;
        p.t = t;
        matmul(
            MatMut::from_column_major_slice_mut(&mut p.grad, n, n),
            Accum::Replace,
            p.m.as_ref(),
            b,
            C64::new(2.0 / t, 0.0),
            Par::Seq,
        );
        true
    }
}

/// d = −H·∇ by the two-loop recursion; without history, steepest descent
/// scaled to a step of norm ‖B‖/10.
fn direction(x: &Point, hist: &mut History, d: &mut [C64]) {
    d.copy_from_slice(&x.grad);
    if hist.is_empty() {
        let gg = dot(&x.grad, &x.grad);
        if gg > 0.0 {
            scale(-0.1 * (dot(&x.b, &x.b) / gg).sqrt(), d);
        }
        return;
    }
    hist.two_loop(d);
}

/// One L-BFGS step from `x` into `xn` (its pair stored when the curvature
/// is positive); false when no step is accepted, even along steepest descent.
fn line_search(
    ctx: &mut Ctx,
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
                step(&x.b, bracket.alpha, d, &mut xn.b);
                if !ctx.eval(xn) {
                    bracket.outside();
                    continue;
                }
                let dn = dot(&xn.grad, d);
                if bracket.accept(x.f, d0, xn.f, dn) {
                    let alpha = bracket.alpha;
                    hist.push(alpha, d, &xn.grad, &x.grad, alpha * (dn - d0));
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

/// −λ_min(S) at ρ = ρ̃/Tr ρ̃ of the point (S = M·Tr ρ̃/T).
fn point_gap(x: &Point, eig: &mut Eigh) -> Result<f64, MathError> {
    eig.compute(x.m.as_ref(), false)?;
    let tr = dot(&x.b, &x.b);
    Ok((-eig.min() * tr / x.t).max(0.0))
}

/// The stopping rule: the gap relative to χ², or χ² itself at rounding
/// level (χ² ≥ 0 also bounds the distance to the minimum).
fn passes(gap: f64, chi: f64, tol: f64) -> bool {
    gap <= tol * chi.max(1e-300) + 1e-15 || chi <= EXACT_FIT
}

/// When to stop iterating: [`passes`], except that a χ² under [`POLISH`]
/// (data fit nearly exactly, where the absolute 1e-15 of the rule is not
/// small next to χ²) is driven on to rounding level or until it stalls.
fn done(gap: f64, chi: f64, tol: f64) -> bool {
    chi <= EXACT_FIT || gap <= tol * chi || (chi >= POLISH && passes(gap, chi, tol))
}

/// χ², the gap and S of a trace-1 ρ.
fn state_figures(
    proj: &Projectors,
    pr: &Problem,
    rho: MatRef<C64>,
    work: &mut Work,
    s: &mut Mat<C64>,
    eig: &mut Eigh,
) -> Result<Option<(f64, f64)>, MathError> {
    let Some((chi, t)) = evaluate(proj, pr, rho, work, s.as_mut()) else {
        return Ok(None);
    };
    let n = rho.nrows();
    for j in 0..n {
        for i in 0..n {
            s[(i, j)] /= t;
        }
    }
    eig.compute(s.as_ref(), false)?;
    Ok(Some((chi, (-eig.min()).max(0.0))))
}

/// The density matrix U·diag(λ)·U† of eigenvectors `u` and eigenvalues `lam`.
fn from_spectrum(u: &Mat<C64>, lam: &[f64]) -> Mat<C64> {
    let n = u.nrows();
    let b = Mat::from_fn(n, n, |i, j| u[(i, j)] * lam[j].max(0.0).sqrt());
    hermitize((&b * b.adjoint()).as_ref())
}

/// P(x): the density matrix nearest the Hermitian x.
fn project(x: MatRef<C64>, eig: &mut Eigh, lam: &mut [f64]) -> Result<Mat<C64>, MathError> {
    eig.compute(x, true)?;
    for (i, l) in lam.iter_mut().enumerate() {
        *l = eig.value(i);
    }
    project_to_simplex(lam);
    Ok(from_spectrum(&eig.u, lam))
}

/// The backtracking step of the projected gradient from y (S_y its
/// gradient, χ²(y) = `fy`): the projected point and its χ², accepted when
/// χ² falls by the quadratic model (or, at rounding level, does not rise);
/// None when 60 halvings of `t` find no such step.
#[allow(clippy::too_many_arguments)]
fn backtrack(
    proj: &Projectors,
    pr: &Problem,
    y: &Mat<C64>,
    sy: &Mat<C64>,
    fy: f64,
    t: &mut f64,
    work: &mut Work,
    eig: &mut Eigh,
    lam: &mut [f64],
) -> Result<Option<(Mat<C64>, f64)>, MathError> {
    let n = y.nrows();
    for _ in 0..60 {
        let z = Mat::from_fn(n, n, |i, j| y[(i, j)] - sy[(i, j)] * *t);
        let xn = project(z.as_ref(), eig, lam)?;
        let mut m = Mat::<C64>::zeros(n, n);
        if let Some((fxn, _)) = evaluate(proj, pr, xn.as_ref(), work, m.as_mut()) {
            let diff = Mat::from_fn(n, n, |i, j| xn[(i, j)] - y[(i, j)]);
            let lin: f64 = (0..n)
                .flat_map(|j| (0..n).map(move |i| (i, j)))
                .map(|(i, j)| (sy[(j, i)] * diff[(i, j)]).re)
                .sum();
            let dd = diff.squared_norm_l2();
            if fxn <= fy + lin + dd / (2.0 * *t) + 1e-15 * fy.abs() {
                return Ok(Some((xn, fxn)));
            }
        }
        *t *= 0.5;
    }
    Ok(None)
}

/// Whether χ² made no relative progress over the LINGER iterations since
/// `mark` (iteration, χ²): a stall; moves the mark on every LINGER iterations.
fn lingered(iterations: u64, fx: f64, mark: &mut (u64, f64)) -> bool {
    if iterations < mark.0 + LINGER {
        return false;
    }
    if fx >= mark.1 * (1.0 - 1e-13) {
        return true;
    }
    *mark = (iterations, fx);
    false
}

/// The projected-gradient finish from the state `rho` (module doc); returns
/// the best state seen, its χ² and gap.
#[allow(clippy::too_many_arguments)]
fn projected_gradient(
    proj: &Projectors,
    pr: &Problem,
    rho: Mat<C64>,
    tol: f64,
    budget: u64,
    iterations: &mut u64,
    work: &mut Work,
    eig: &mut Eigh,
) -> Result<(Mat<C64>, f64, f64), MathError> {
    let n = rho.nrows();
    let mut lam = vec![0.0; n];
    let mut s = Mat::<C64>::zeros(n, n);
    let mut sy = Mat::<C64>::zeros(n, n);
    let Some((mut fx, mut gap)) = state_figures(proj, pr, rho.as_ref(), work, &mut s, eig)? else {
        return Ok((rho, f64::INFINITY, f64::INFINITY));
    };
    let mut x = rho;
    let mut y = x.clone();
    let mut fy = fx;
    sy.copy_from(&s);
    // A first step of length comparable to the state over the gradient.
    let snorm = s.norm_l2();
    let mut t = if snorm > 0.0 { 0.1 / snorm } else { 1.0 };
    let mut theta = 1.0f64;
    let mut stalls = 0;
    let mut mark = (*iterations, fx);
    for _ in 0..budget {
        if done(gap, fx, tol) || lingered(*iterations, fx, &mut mark) {
            break;
        }
        *iterations += 1;
        let accepted = backtrack(proj, pr, &y, &sy, fy, &mut t, work, eig, &mut lam)?;
        let Some((xn, fxn)) = accepted else {
            break;
        };
        if fxn > fx {
            // Momentum made it worse: restart from x.
            // θ is exactly 1 at the start and after a restart, above 1 after a momentum step.
            #[allow(clippy::float_cmp)]
            let restarted = theta == 1.0;
            if restarted {
                stalls += 1;
                if stalls > 3 {
                    break;
                }
            }
            theta = 1.0;
            y.copy_from(&x);
            let Some((f, _)) = state_figures(proj, pr, y.as_ref(), work, &mut sy, eig)? else {
                break;
            };
            fy = f;
            continue;
        }
        stalls = 0;
        let theta_n = 0.5 * (1.0 + (1.0 + 4.0 * theta * theta).sqrt());
        let beta = (theta - 1.0) / theta_n;
        theta = theta_n;
        y = Mat::from_fn(n, n, |i, j| xn[(i, j)] + (xn[(i, j)] - x[(i, j)]) * beta);
        x = xn;
        let Some((f, g)) = state_figures(proj, pr, x.as_ref(), work, &mut s, eig)? else {
            break;
        };
        fx = f;
        gap = g;
        // y may leave the states' cone: evaluate there (projecting if needed).
        if let Some((f, _)) = state_figures(proj, pr, y.as_ref(), work, &mut sy, eig)? {
            fy = f;
        } else {
            y.copy_from(&x);
            sy.copy_from(&s);
            fy = fx;
        }
        // Let the step grow again after backtracking.
        t *= 1.5;
    }
    Ok((x, fx, gap))
}

/// Weighted least squares (module doc) of the set `proj` with `design`
/// (`None` for a custom set).
///
/// # Errors
/// Counts that [`check_counts`] rejects, a `design` whose K differs from the
/// set's or a set that is zero on every state ([`MathError::InvalidProjectors`]),
/// a group without counts ([`MathError::EmptyGroup`], [`MathError::EmptyScale`]),
/// or an eigen-decomposition that does not converge ([`MathError::NoConvergence`]).
pub fn wls(
    proj: &Projectors,
    counts: &[f64],
    design: Option<Design>,
    opts: &WlsOptions,
) -> Result<WlsResult, MathError> {
    let pr = problem(proj, counts, design)?;
    let n = proj.dim();
    let mut eig = Eigh::new(n);
    let mut x = start_point(proj, counts, design, &mut eig)?;
    let mut ctx = Ctx {
        proj,
        pr: &pr,
        work: Work::new(proj),
        rt: Mat::zeros(n, n),
    };
    if !ctx.eval(&mut x) {
        // Only a projector that is zero on every state.
        return Err(MathError::InvalidProjectors(
            "the projector set gives Tr(Gρ) = 0 at the maximally mixed state".to_string(),
        ));
    }
    let mut iterations = factored(&mut ctx, &mut x, opts, &mut eig)?;

    let n_f = n as f64;
    let tr = dot(&x.b, &x.b);
    let b = MatRef::from_column_major_slice(&x.b, n, n);
    let rho = Mat::from_fn(n, n, |i, j| {
        (0..n).map(|l| b[(i, l)] * b[(j, l)].conj()).sum::<C64>() / tr
    });
    let mut rho = hermitize(rho.as_ref());
    let mut s = Mat::<C64>::zeros(n, n);
    let (mut chi, mut gap) =
        state_figures(proj, &pr, rho.as_ref(), &mut ctx.work, &mut s, &mut eig)?
            .unwrap_or((f64::INFINITY, f64::INFINITY));
    if !done(gap, chi, opts.tol) {
        let budget = opts.max_iters.saturating_sub(iterations).max(1000);
        let start = if chi.is_finite() {
            rho.clone()
        } else {
            Mat::from_fn(n, n, |i, j| {
                if i == j {
                    C64::new(1.0 / n_f, 0.0)
                } else {
                    ZERO
                }
            })
        };
        let (r2, c2, g2) = projected_gradient(
            proj,
            &pr,
            start,
            opts.tol,
            budget,
            &mut iterations,
            &mut ctx.work,
            &mut eig,
        )?;
        // An exact tie in χ² is broken by the gap.
        #[allow(clippy::float_cmp)]
        let better = c2 < chi || (c2 == chi && g2 < gap);
        if better {
            rho = r2;
            chi = c2;
            gap = g2;
        }
    }
    let converged = passes(gap, chi, opts.tol);
    Ok(WlsResult {
        rho,
        objective: chi,
        iterations,
        converged,
        stop: crate::Stop::of(converged, iterations, opts.max_iters, false),
        gap,
    })
}

/// The start B₀ = ρ₀^{1/2}, ρ₀ = 0.9·ρ_lin + 0.1·I/n (I/n without ρ_lin).
fn start_point(
    proj: &Projectors,
    counts: &[f64],
    design: Option<Design>,
    eig: &mut Eigh,
) -> Result<Point, MathError> {
    let n = proj.dim();
    let rho0 = match linear(proj, counts, design) {
        Ok(r) => Mat::from_fn(n, n, |i, j| {
            r[(i, j)] * 0.9
                + if i == j {
                    C64::new(0.1 / n as f64, 0.0)
                } else {
                    ZERO
                }
        }),
        Err(_) => Mat::from_fn(n, n, |i, j| {
            if i == j {
                C64::new(1.0 / n as f64, 0.0)
            } else {
                ZERO
            }
        }),
    };
    eig.compute(rho0.as_ref(), true)?;
    let mut x = Point::new(n);
    for j in 0..n {
        let s = eig.value(j).max(0.0).sqrt();
        for i in 0..n {
            x.b[j * n + i] = eig.u[(i, j)] * s;
        }
    }
    Ok(x)
}

/// The factored L-BFGS iteration from the evaluated `x` until the stopping
/// rule, a saddle plateau, a stall, or its share of the budget; returns the
/// iterations taken, the last point left in `x`.
fn factored(
    ctx: &mut Ctx,
    x: &mut Point,
    opts: &WlsOptions,
    eig: &mut Eigh,
) -> Result<u64, MathError> {
    let n = ctx.rt.nrows();
    let mut xn = Point::new(n);
    let mut hist = History::new(n * n, MEMORY);
    let mut d = vec![ZERO; n * n];
    let mut iterations = 0u64;
    // The factored iteration gets most of the budget; the projected-gradient
    // finish the rest.
    let lbfgs_budget = opts.max_iters - opts.max_iters / 4;
    // The gap at the last multiple of LINGER iterations.
    let mut mark = f64::INFINITY;
    loop {
        if iterations.is_multiple_of(CHECK_EVERY) {
            let gap = point_gap(x, eig)?;
            if done(gap, x.f, opts.tol) {
                break;
            }
            if iterations.is_multiple_of(LINGER) {
                // Lingering near a saddle of the factor (module doc): hand
                // over to the projected gradient.
                if iterations >= 2 * LINGER && gap > 0.5 * mark {
                    break;
                }
                mark = gap;
            }
        }
        if iterations >= lbfgs_budget || !line_search(ctx, x, &mut xn, &mut d, &mut hist) {
            break;
        }
        std::mem::swap(x, &mut xn);
        iterations += 1;
        // Keep ‖B‖ near 1 (χ² does not see the scale; the steps, orthogonal
        // to B, make it grow slowly).
        let bb = dot(&x.b, &x.b);
        if !(0.25..=4.0).contains(&bb) {
            let s = 1.0 / bb.sqrt();
            scale(s, &mut x.b);
            hist.clear();
            if !ctx.eval(x) {
                break;
            }
        }
    }
    Ok(iterations)
}
