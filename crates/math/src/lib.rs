//! The math of qst (the reference section 1): projector sets, probabilities, the profiled
//! likelihood, maximum-likelihood and linear-inversion reconstruction, and the
//! reported figures. Knows nothing of processes or files on disk.
//!
//! Matrices are `faer` matrices of [`C64`] (= `num_complex::Complex<f64>`).
//! Projector sets are borrowed: a dense `(K, n, n)` row-major slice (e.g. a
//! memory map), rank-1 kets `(K, n)`, or the built-in `nopovm` set, which is
//! never materialized.
//!
//! All arithmetic runs on the calling thread (`faer::Par::Seq`).

// `clippy::pedantic` is reviewed (docs/ARCHITECTURE.md, "Lints"); these do not fit:
#![allow(
    // Docs write formulas as in docs/reference.md (p_k, ρ_lin, Σ_k): math, not code names.
    clippy::doc_markdown,
    // Dimensions, counts and indices converted to f64 are far below 2^53: exact as f64.
    clippy::cast_precision_loss,
    // Linear algebra is named as in the reference: n, k, a, b, i, j, p, q, u, v, x, y.
    clippy::many_single_char_names
)]

mod analysis;
mod apg;
mod design;
mod eigh;
mod figures;
mod lbfgs;
mod likelihood;
mod linear;
mod mle;
mod mub_fast;
mod projectors;
mod stop;
mod vector;
mod wls;

pub use faer::{Mat, MatMut, MatRef};
pub use num_complex::Complex64 as C64;

pub use analysis::{
    Dominant, bell_fidelities, bell_side, bell_summary, dominant, ket_density, ket_from_polar,
    poisson_resample, sample_std, wrap_phase,
};
pub use design::{DESIGNS, Design, DesignError, nopovm_ket, nopovm_slice, prime_power};
pub use figures::{Figures, check_density_matrix, fidelity, figures};
pub use linear::{frequencies, linear, project_to_density, project_to_simplex};
pub use mle::{
    MleOptions, MleResult, MleScratch, MleStats, certificate, log_likelihood, mle, mle_with_scratch,
};
pub use projectors::{gram, measurement_matrix, probabilities, rank_one_kets, validate_dense};
pub use stop::Stop;
pub use wls::{WlsOptions, WlsResult, chi2, chi2_gradient, wls};

/// Errors of the math, each one sentence that reads after "failed to …".
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum MathError {
    #[error("counts has {got} entries but the projector set has {expected}")]
    CountsLength { expected: usize, got: usize },
    #[error("counts[{index}] is {value}, but counts must be finite and >= 0")]
    BadCount { index: usize, value: f64 },
    #[error("counts are all zero")]
    AllZero,
    #[error(
        "counts of group {group} (projectors {first}..={last}) are all zero, so its frequencies are undefined"
    )]
    EmptyGroup {
        group: usize,
        first: usize,
        last: usize,
    },
    /// `nopovm` frequencies of `wls` are counts over the computational basis.
    #[error(
        "counts of projectors {first}..={last} (the computational basis, which sets the scale of every frequency) are all zero"
    )]
    EmptyScale { first: usize, last: usize },
    #[error("the matrix is {rows}x{cols}, but the projector set has dimension {n}")]
    RhoShape { rows: usize, cols: usize, n: usize },
    #[error("linear inversion gave a matrix of trace {trace} <= 0")]
    NonPositiveTrace { trace: f64 },
    #[error("{0}")]
    InvalidProjectors(String),
    /// A Hermitian eigen-decomposition did not converge (non-finite input).
    #[error("the eigen-decomposition of a {dim}x{dim} matrix did not converge")]
    NoConvergence { dim: usize },
    /// The Bell analysis needs n = m², m ≥ 2.
    #[error("dimension {dim} is not a square m² (m ≥ 2)")]
    NotSquare { dim: usize },
}

/// A borrowed projector set: Π_k for k = 0..K, each n×n.
#[derive(Clone, Copy, Debug)]
pub enum Projectors<'a> {
    /// The built-in `nopovm` set of docs/designs.md, computed from its 2-sparse kets.
    Nopovm { n: usize },
    /// A rank-1 set Π_k = ψ_k ψ_k†, `kets[k*n..(k+1)*n]` = ψ_k.
    Kets { n: usize, kets: &'a [C64] },
    /// A dense set, `(K, n, n)` in C order: `data[k*n*n + a*n + b]` = Π_k[a, b].
    Dense { n: usize, data: &'a [C64] },
}

impl Projectors<'_> {
    /// The dimension n.
    #[must_use]
    pub fn dim(&self) -> usize {
        match *self {
            Projectors::Nopovm { n } | Projectors::Kets { n, .. } | Projectors::Dense { n, .. } => {
                n
            }
        }
    }
    /// The number of projectors K.
    #[must_use]
    pub fn count(&self) -> usize {
        match *self {
            Projectors::Nopovm { n } => n * n,
            Projectors::Kets { n, kets } => kets.len().checked_div(n).unwrap_or(0),
            Projectors::Dense { n, data } => data.len().checked_div(n * n).unwrap_or(0),
        }
    }
}

/// Checks counts against a set of K projectors (docs/reference.md): right length,
/// finite and ≥ 0, not all zero. Returns N = Σ c_k.
///
/// # Errors
/// [`MathError::CountsLength`] if there are not `k` counts, [`MathError::BadCount`]
/// for the first one that is negative or not finite, [`MathError::AllZero`] if they sum to 0.
pub fn check_counts(k: usize, counts: &[f64]) -> Result<f64, MathError> {
    if counts.len() != k {
        return Err(MathError::CountsLength {
            expected: k,
            got: counts.len(),
        });
    }
    let mut total = 0.0;
    for (index, &value) in counts.iter().enumerate() {
        if !value.is_finite() || value < 0.0 {
            return Err(MathError::BadCount { index, value });
        }
        total += value;
    }
    if total <= 0.0 {
        return Err(MathError::AllZero);
    }
    Ok(total)
}
