//! Projector sets: validation of custom sets, the
//! zero-copy measurement matrix M, probabilities p_k(ρ) and weighted sums
//! Σ w_k Π_k for each form of [`Projectors`].

use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::reborrow::ReborrowMut;
use faer::{Accum, Mat, MatMut, MatRef, Par, Side};

use crate::mub_fast::MubPlan;
use crate::{C64, MathError, Projectors};

const ONE: C64 = C64::new(1.0, 0.0);
const ZERO: C64 = C64::new(0.0, 0.0);

/// M of docs/reference.md over a dense `(K, n, n)` set: the K × n² row-major view
/// M[k, a·n + b] = Π_k[a, b], without copying.
///
/// # Panics
/// If n is 0 or `data.len()` is not a multiple of n².
#[must_use]
pub fn measurement_matrix(n: usize, data: &[C64]) -> MatRef<'_, C64> {
    let nn = n * n;
    assert!(
        nn > 0 && data.len().is_multiple_of(nn),
        "a dense set needs a multiple of n² entries"
    );
    MatRef::from_row_major_slice(data, data.len() / nn, nn)
}

/// Validates a dense custom set per docs/reference.md (shape, Hermitian, PSD,
/// informationally complete). Expensive: callers remember the result.
///
/// # Errors
/// [`MathError::InvalidProjectors`] saying which property the set lacks.
pub fn validate_dense(n: usize, data: &[C64]) -> Result<(), MathError> {
    let bad = |s: String| Err(MathError::InvalidProjectors(s));
    if n < 2 {
        return bad(format!(
            "the projector set has dimension {n}, but it must be at least 2"
        ));
    }
    let nn = n * n;
    if !data.len().is_multiple_of(nn) {
        return bad(format!(
            "the projector array has {} entries, which is not a whole number of {n}x{n} matrices",
            data.len()
        ));
    }
    let k_count = data.len() / nn;
    if k_count < nn {
        return bad(format!(
            "the projector set has K = {k_count} projectors, fewer than n² = {nn}, so it is not informationally complete"
        ));
    }
    for k in 0..k_count {
        let slice = &data[k * nn..(k + 1) * nn];
        if let Some(i) = slice
            .iter()
            .position(|z| !z.re.is_finite() || !z.im.is_finite())
        {
            return bad(format!(
                "projector {k} has a non-finite entry at [{}, {}]",
                i / n,
                i % n
            ));
        }
        let pi = MatRef::from_row_major_slice(slice, n, n);
        let mut max_abs = 0.0f64;
        let mut max_asym = 0.0f64;
        for a in 0..n {
            for b in 0..n {
                max_abs = max_abs.max(pi[(a, b)].norm());
                max_asym = max_asym.max((pi[(a, b)] - pi[(b, a)].conj()).norm());
            }
        }
        if max_asym > 1e-10 * max_abs {
            return bad(format!(
                "projector {k} is not Hermitian: max|Π − Π†| = {max_asym:.3e}"
            ));
        }
        let ev = pi
            .self_adjoint_eigenvalues(Side::Lower)
            .map_err(|_| MathError::NoConvergence { dim: n })?;
        let (lo, hi) = (ev[0], ev[n - 1]);
        if lo < -1e-10 * hi {
            return bad(format!(
                "projector {k} is not positive semidefinite: λ_min = {lo:.3e} (λ_max = {hi:.3e})"
            ));
        }
    }
    let s = measurement_matrix(n, data)
        .singular_values()
        .map_err(|_| MathError::NoConvergence { dim: nn })?;
    let smax = s.first().copied().unwrap_or(0.0);
    let thresh = (k_count.max(nn) as f64) * f64::EPSILON * smax;
    let rank = s.iter().filter(|&&v| v > thresh).count();
    if rank < nn {
        return bad(format!(
            "the projector set is not informationally complete: M has numerical rank {rank}, not n² = {nn}"
        ));
    }
    Ok(())
}

/// The kets of a dense set whose every slice is rank 1 to rounding
/// (Π_k = ψ_kψ_k†), or None. Such a set computes p_k and Σ w_kΠ_k from its
/// `(K, n)` kets (K·n numbers read per pass instead of K·n²): the same
/// results, n times less memory traffic.
///
/// Per slice, ψ = Π[:, j]/√Π_jj for j the largest diagonal entry (Π_jj ≥
/// Tr Π/n for a positive semidefinite Π; ψ is ψ_k up to a phase, which ψψ†
/// does not see), accepted when every entry of Π − ψψ† is within 1e-12·Tr Π.
/// That is the test "λ_max ≈ Tr Π" made entrywise: for a positive
/// semidefinite Π it bounds the other eigenvalues, Tr Π − λ_max ≤
/// n·1e-12·Tr Π. O(K·n²), one pass, and it stops at the first slice of
/// higher rank (a full-rank set is refused after reading one slice). Meant
/// for sets that [`validate_dense`] accepted.
#[must_use]
pub fn rank_one_kets(n: usize, data: &[C64]) -> Option<Vec<C64>> {
    let nn = n * n;
    if n == 0 || !data.len().is_multiple_of(nn) {
        return None;
    }
    let k_count = data.len() / nn;
    let mut kets = Vec::with_capacity(k_count * n);
    for slice in data.chunks_exact(nn) {
        let (mut j, mut top, mut trace) = (0, f64::NEG_INFINITY, 0.0);
        for a in 0..n {
            let d = slice[a * n + a].re;
            trace += d;
            if d > top {
                (j, top) = (a, d);
            }
        }
        if !(top > 0.0 && trace.is_finite()) {
            return None;
        }
        let s = 1.0 / top.sqrt();
        let start = kets.len();
        // Column j of Π = ψ·conj(ψ_j): row-major entries Π[a, j].
        kets.extend((0..n).map(|a| slice[a * n + j] * s));
        let psi = &kets[start..];
        let tol = 1e-12 * trace;
        for a in 0..n {
            let pa = psi[a];
            let row = &slice[a * n..(a + 1) * n];
            for (b, &v) in row.iter().enumerate() {
                let r = v - pa * psi[b].conj();
                if r.re.abs() > tol || r.im.abs() > tol {
                    return None;
                }
            }
        }
    }
    Some(kets)
}

/// Buffers for [`probs_into`] and [`weighted_sum_into`], sized for one set.
pub(crate) struct ProjWork {
    /// Kets: K × n.
    y: Mat<C64>,
    /// Dense: n² × 1 (vec of ρ, then of R).
    v: Mat<C64>,
    /// Dense: K × 1 (p, then w).
    kv: Mat<C64>,
    /// Kets of a complete set of mutually unbiased bases: its fast form.
    mub: Option<MubPlan>,
}

impl ProjWork {
    pub fn new(proj: &Projectors) -> Self {
        let (n, k) = (proj.dim(), proj.count());
        match proj {
            Projectors::Nopovm { .. } => ProjWork {
                y: Mat::zeros(0, 0),
                v: Mat::zeros(0, 0),
                kv: Mat::zeros(0, 0),
                mub: None,
            },
            Projectors::Kets { kets, .. } => match MubPlan::detect(n, kets) {
                Some(plan) => ProjWork {
                    y: Mat::zeros(0, 0),
                    v: Mat::zeros(0, 0),
                    kv: Mat::zeros(0, 0),
                    mub: Some(plan),
                },
                None => ProjWork {
                    y: Mat::zeros(k, n),
                    v: Mat::zeros(0, 0),
                    kv: Mat::zeros(0, 0),
                    mub: None,
                },
            },
            Projectors::Dense { .. } => ProjWork {
                y: Mat::zeros(0, 0),
                v: Mat::zeros(n * n, 1),
                kv: Mat::zeros(k, 1),
                mub: None,
            },
        }
    }

    /// Whether the set runs in the fast form of a complete set of mutually
    /// unbiased bases ([`crate::mub_fast`]).
    pub fn is_mub(&self) -> bool {
        self.mub.is_some()
    }
}

/// p_k(ρ) = Σ_{a,b} Π_k[a, b]·ρ[b, a] (real part) for every k, into `out`.
pub(crate) fn probs_into(proj: &Projectors, rho: MatRef<C64>, out: &mut [f64], w: &mut ProjWork) {
    crate::vector::zero_upper();
    let n = proj.dim();
    match *proj {
        Projectors::Nopovm { .. } => {
            for a in 0..n {
                out[a] = rho[(a, a)].re;
            }
            let mut k = n;
            for i in 0..n {
                let rii = rho[(i, i)].re;
                for j in i + 1..n {
                    let d = 0.5 * (rii + rho[(j, j)].re);
                    let (rij, rji) = (rho[(i, j)], rho[(j, i)]);
                    // Π+ = ½[[1, 1], [1, 1]], Π− = ½[[1, 𝑖], [−𝑖, 1]] on (i, j).
                    out[k] = d + 0.5 * (rij.re + rji.re);
                    out[k + 1] = d + 0.5 * (rij.im - rji.im);
                    k += 2;
                }
            }
        }
        Projectors::Kets { .. } if w.mub.is_some() => {
            if let Some(plan) = &mut w.mub {
                plan.probs(rho, out);
            }
        }
        Projectors::Kets { kets, .. } => {
            let kc = kets.len() / n;
            let psi_t = MatRef::from_row_major_slice(kets, kc, n);
            // Y[k, b] = Σ_a conj(ψ_k[a])·ρ[a, b]; p_k = Σ_b Y[k, b]·ψ_k[b] = ψ_k†ρψ_k.
            matmul(
                w.y.as_mut(),
                Accum::Replace,
                psi_t.conjugate(),
                rho,
                ONE,
                Par::Seq,
            );
            crate::vector::zero_upper();
            for (k, o) in out.iter_mut().enumerate().take(kc) {
                let mut s = 0.0;
                for b in 0..n {
                    let (y, p) = (w.y[(k, b)], psi_t[(k, b)]);
                    s += y.re * p.re - y.im * p.im;
                }
                *o = s;
            }
        }
        Projectors::Dense { data, .. } => {
            let m = measurement_matrix(n, data);
            // x[a·n + b] = ρ[b, a]: the column-major order of ρ.
            for a in 0..n {
                for b in 0..n {
                    w.v[(a * n + b, 0)] = rho[(b, a)];
                }
            }
            matmul(
                w.kv.as_mut(),
                Accum::Replace,
                m,
                w.v.as_ref(),
                ONE,
                Par::Seq,
            );
            for (k, o) in out.iter_mut().enumerate().take(m.nrows()) {
                *o = w.kv[(k, 0)].re;
            }
        }
    }
}

/// out = Σ_k wt_k Π_k (Hermitian for real weights).
pub(crate) fn weighted_sum_into(
    proj: &Projectors,
    wt: &[f64],
    mut out: MatMut<C64>,
    w: &mut ProjWork,
) {
    let n = proj.dim();
    match *proj {
        Projectors::Nopovm { .. } => {
            out.fill(ZERO);
            for a in 0..n {
                out[(a, a)].re = wt[a];
            }
            let mut k = n;
            for i in 0..n {
                for j in i + 1..n {
                    let (wp, wm) = (wt[k], wt[k + 1]);
                    let d = 0.5 * (wp + wm);
                    out[(i, i)].re += d;
                    out[(j, j)].re += d;
                    out[(i, j)] = C64::new(0.5 * wp, 0.5 * wm);
                    out[(j, i)] = C64::new(0.5 * wp, -0.5 * wm);
                    k += 2;
                }
            }
        }
        Projectors::Kets { .. } if w.mub.is_some() => {
            if let Some(plan) = &mut w.mub {
                plan.weighted_sum(wt, out);
            }
        }
        Projectors::Kets { kets, .. } => kets_weighted_sum(n, kets, wt, out, &mut w.y),
        Projectors::Dense { data, .. } => {
            let m = measurement_matrix(n, data);
            for (k, &wk) in wt.iter().enumerate().take(m.nrows()) {
                w.kv[(k, 0)] = C64::new(wk, 0.0);
            }
            // vec_rowmajor(R) = Mᵀ·w.
            matmul(
                w.v.as_mut(),
                Accum::Replace,
                m.transpose(),
                w.kv.as_ref(),
                ONE,
                Par::Seq,
            );
            for a in 0..n {
                for b in 0..n {
                    out[(a, b)] = w.v[(a * n + b, 0)];
                }
            }
        }
    }
}

/// out = Σ_k wt_k ψ_kψ_k† from the kets (`y`: K × n scratch).
fn kets_weighted_sum(n: usize, kets: &[C64], wt: &[f64], mut out: MatMut<C64>, y: &mut Mat<C64>) {
    let kc = kets.len() / n;
    let psi_t = MatRef::from_row_major_slice(kets, kc, n);
    // Z = diag(w)·conj(Ψᵀ); out[a, b] = Σ_k ψ_k[a]·w_k·conj(ψ_k[b]).
    // The sum is Hermitian: only its lower triangle is multiplied
    // out (half the flops of this product), the upper one mirrored.
    for k in 0..kc {
        for b in 0..n {
            y[(k, b)] = psi_t[(k, b)].conj() * wt[k];
        }
    }
    triangular::matmul(
        out.rb_mut(),
        BlockStructure::TriangularLower,
        Accum::Replace,
        psi_t.transpose(),
        BlockStructure::Rectangular,
        y.as_ref(),
        BlockStructure::Rectangular,
        ONE,
        Par::Seq,
    );
    crate::vector::zero_upper();
    for j in 0..n {
        for i in j + 1..n {
            out[(j, i)] = out[(i, j)].conj();
        }
    }
}

/// p_k(ρ) = Tr(Π_k ρ) = Σ_{a,b} Π_k[a, b]·ρ[b, a] (real part) for k = 0..K.
#[must_use]
pub fn probabilities(proj: &Projectors, rho: MatRef<C64>) -> Vec<f64> {
    let mut out = vec![0.0; proj.count()];
    probs_into(proj, rho, &mut out, &mut ProjWork::new(proj));
    out
}

/// G = Σ_k Π_k.
#[must_use]
pub fn gram(proj: &Projectors) -> Mat<C64> {
    let n = proj.dim();
    let mut g = Mat::zeros(n, n);
    let ones = vec![1.0; proj.count()];
    weighted_sum_into(proj, &ones, g.as_mut(), &mut ProjWork::new(proj));
    g
}
