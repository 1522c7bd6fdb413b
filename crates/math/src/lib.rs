//! The math of qst (SPEC section 1): projector sets, probabilities, the profiled
//! likelihood, maximum-likelihood and linear-inversion reconstruction, and the
//! reported figures. Knows nothing of processes or files on disk.
//!
//! Matrices are `faer` matrices of [`C64`] (= `num_complex::Complex<f64>`).
//! Projector sets are borrowed: a dense `(K, n, n)` row-major slice (e.g. a
//! memory map), rank-1 kets `(K, n)`, or the built-in `nopovm` set, which is
//! never materialized.

pub use faer::{Mat, MatMut, MatRef};
pub use num_complex::Complex64 as C64;

/// Errors of the math, each one sentence that reads after "failed to …".
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum MathError {
    #[error("counts has {got} entries but the projector set has {expected}")]
    CountsLength { expected: usize, got: usize },
    #[error("counts[{index}] is {value}, but counts must be finite and >= 0")]
    BadCount { index: usize, value: f64 },
    #[error("counts are all zero")]
    AllZero,
    #[error("linear inversion gave a matrix of trace {trace} <= 0")]
    NonPositiveTrace { trace: f64 },
    #[error("{0}")]
    InvalidProjectors(String),
}

/// A borrowed projector set: Π_k for k = 0..K, each n×n.
#[derive(Clone, Copy, Debug)]
pub enum Projectors<'a> {
    /// The built-in `nopovm` set of SPEC 1.1, computed from its 2-sparse kets.
    Nopovm { n: usize },
    /// A rank-1 set Π_k = ψ_k ψ_k†, `kets[k*n..(k+1)*n]` = ψ_k.
    Kets { n: usize, kets: &'a [C64] },
    /// A dense set, `(K, n, n)` in C order: `data[k*n*n + a*n + b]` = Π_k[a, b].
    Dense { n: usize, data: &'a [C64] },
}

impl Projectors<'_> {
    /// The dimension n.
    pub fn dim(&self) -> usize {
        todo!()
    }
    /// The number of projectors K.
    pub fn count(&self) -> usize {
        todo!()
    }
}

/// ψ_k of the `nopovm` set (SPEC 1.1), as a dense vector of length n.
pub fn nopovm_ket(n: usize, k: usize) -> Vec<C64> {
    let _ = (n, k);
    todo!()
}

/// Writes Π_k of the `nopovm` set into `out` (length n², C order).
pub fn nopovm_slice(n: usize, k: usize, out: &mut [C64]) {
    let _ = (n, k, out);
    todo!()
}

/// Validates a dense custom set per SPEC 1.2 (shape, Hermitian, PSD,
/// informationally complete). Expensive: callers remember the result.
pub fn validate_dense(n: usize, data: &[C64]) -> Result<(), MathError> {
    let _ = (n, data);
    todo!()
}

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
        MleOptions { max_iters: 100_000, tol: 1e-8, fixed_iterations: false }
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

/// Maximum-likelihood reconstruction (SPEC 1.4).
pub fn mle(proj: &Projectors, counts: &[f64], opts: &MleOptions) -> Result<MleResult, MathError> {
    let _ = (proj, counts, opts);
    todo!()
}

/// Linear inversion (SPEC 1.5).
pub fn linear(proj: &Projectors, counts: &[f64]) -> Result<Mat<C64>, MathError> {
    let _ = (proj, counts);
    todo!()
}

/// ℓ(ρ) of SPEC 1.4 (−∞ when a counted projector has zero probability).
pub fn log_likelihood(proj: &Projectors, counts: &[f64], rho: MatRef<C64>) -> f64 {
    let _ = (proj, counts, rho);
    todo!()
}

/// The figures of SPEC 1.6 (all but fidelity and ℓ).
#[derive(Clone, Debug, PartialEq)]
pub struct Figures {
    pub purity: f64,
    pub trace: f64,
    pub rank: usize,
    pub min_eigenvalue: f64,
    pub max_eigenvalue: f64,
    pub eigenvalue_entropy: f64,
}

/// Computes [`Figures`] of a Hermitian ρ.
pub fn figures(rho: MatRef<C64>) -> Figures {
    let _ = rho;
    todo!()
}

/// F(ρ, σ) = (Tr √(√ρ σ √ρ))².
pub fn fidelity(rho: MatRef<C64>, sigma: MatRef<C64>) -> f64 {
    let _ = (rho, sigma);
    todo!()
}

/// Checks that ρ is a density matrix (Hermitian, PSD, trace 1) to `tol`;
/// the error says which property fails.
pub fn check_density_matrix(rho: MatRef<C64>, tol: f64) -> Result<(), String> {
    let _ = (rho, tol);
    todo!()
}
