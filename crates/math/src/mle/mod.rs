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
//! well-conditioned: λ_max/λ_min ≈ 2.1 for every n) and for `mub` in its
//! fast form ([`crate::mub_fast`]; G = (n+1)·I), P = W for other sets
//! (whitened, so the iteration does not feel an ill-conditioned G; the two
//! extra n³ products are small next to their n⁴ probabilities). Each
//! iteration costs ρ̃ = BB†, the probabilities, R, one product (G − R)·B, and
//! the L-BFGS two-loop recursion: O(n³) for `nopovm` and `mub`, dominated by
//! two n×n products. The step length is found by a line search whose tests use
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

mod certificate;
mod evaluate;
mod finish;
mod iterate;
mod scratch;
mod start;
#[cfg(test)]
mod tests;

use certificate::exact_bound;
use iterate::Exit;
pub use scratch::MleScratch;

use faer::{Mat, MatRef};

use crate::likelihood::objective;
use crate::projectors::ProjWork;
use crate::{C64, MathError, Projectors, Stop, check_counts};

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
    /// Why the iteration stopped.
    pub stop: Stop,
    pub log_likelihood: f64,
    /// The docs/reference.md bound N·ln λ_max(G^{-1/2} R G^{-1/2}) at the returned ρ.
    pub bound: f64,
}

/// What [`mle_with_scratch`] returns; ρ itself is in [`MleScratch::rho`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MleStats {
    pub iterations: u64,
    pub converged: bool,
    /// Why the iteration stopped.
    pub stop: Stop,
    pub log_likelihood: f64,
    /// The docs/reference.md bound N·ln λ_max(G^{-1/2} R G^{-1/2}) at the returned ρ.
    pub bound: f64,
    /// How many of the iterations were projected-gradient steps
    /// ([`crate::apg`]), for benchmarks.
    pub projected_iterations: u64,
}

/// Maximum-likelihood reconstruction (docs/reference.md).
///
/// # Errors
/// Counts that [`check_counts`] rejects, a set that [`MleScratch::new`]
/// rejects, or an eigen-decomposition that does not converge
/// ([`MathError::NoConvergence`]).
pub fn mle(proj: &Projectors, counts: &[f64], opts: &MleOptions) -> Result<MleResult, MathError> {
    check_counts(proj.count(), counts)?;
    let mut scratch = MleScratch::new(proj)?;
    let s = mle_with_scratch(proj, counts, opts, &mut scratch)?;
    Ok(MleResult {
        rho: scratch.rho.clone(),
        iterations: s.iterations,
        converged: s.converged,
        stop: s.stop,
        log_likelihood: s.log_likelihood,
        bound: s.bound,
    })
}

/// [`mle`] on caller-provided scratch space; allocates nothing when the
/// scratch was made ([`MleScratch::new`]) for this same `proj`. A scratch
/// holds G and G^{-1/2} of its set, so it is bound to that set: made for
/// another one ([`MleScratch::is_for`] false), it is rebuilt for `proj`
/// first. The result ρ is left in [`MleScratch::rho`].
///
/// # Errors
/// As [`mle`].
pub fn mle_with_scratch(
    proj: &Projectors,
    counts: &[f64],
    opts: &MleOptions,
    s: &mut MleScratch,
) -> Result<MleStats, MathError> {
    let k = proj.count();
    if !s.is_for(proj) {
        check_counts(k, counts)?;
        *s = MleScratch::new(proj)?;
    }
    let total = check_counts(k, counts)?;
    let ninv = 1.0 / total;
    let c = counts;
    s.start(proj, c, ninv, opts.tol)?;

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
                return finish_projected(proj, c, total, opts, &mut iterations, s);
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
                stop: Stop::of(converged, iterations, opts.max_iters, fixed),
                log_likelihood: -f * total,
                bound: bound * total,
                projected_iterations: 0,
            });
        }
        tol_test *= 0.5;
    }
}

/// The rest of a run by the projected gradient ([`crate::apg`]), from the
/// current iterate, and its statistics.
fn finish_projected(
    proj: &Projectors,
    c: &[f64],
    total: f64,
    opts: &MleOptions,
    iterations: &mut u64,
    s: &mut MleScratch,
) -> Result<MleStats, MathError> {
    let ninv = 1.0 / total;
    let before = *iterations;
    s.finish_with_apg(proj, c, ninv, opts, iterations)?;
    let (f, bound) = s.bound_at_rho(proj, c, ninv)?;
    let converged = bound <= opts.tol;
    Ok(MleStats {
        projected_iterations: *iterations - before,
        iterations: *iterations,
        converged,
        stop: Stop::of(converged, *iterations, opts.max_iters, false),
        log_likelihood: -f * total,
        bound: bound * total,
    })
}

/// ℓ(ρ) of docs/reference.md (−∞ when a counted projector has zero probability).
#[must_use]
pub fn log_likelihood(proj: &Projectors, counts: &[f64], rho: MatRef<C64>) -> f64 {
    let mut q = vec![0.0; proj.count()];
    match objective(proj, counts, 1.0, rho, &mut q, &mut ProjWork::new(proj)) {
        Some((f, _)) => -f,
        None => f64::NEG_INFINITY,
    }
}

/// The docs/reference.md bound N·ln λ_max(G^{-1/2} R G^{-1/2}) at ρ (+∞ when a
/// counted projector has zero probability).
///
/// # Errors
/// As [`mle`].
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
