//! The figures of docs/reference.md and the density-matrix check used on a job's truth.

use faer::{Mat, MatRef};

use crate::C64;
use crate::eigh::Eigh;

/// The figures of docs/reference.md (all but fidelity and ℓ).
#[derive(Clone, Debug, PartialEq)]
pub struct Figures {
    pub purity: f64,
    pub trace: f64,
    pub rank: usize,
    pub min_eigenvalue: f64,
    pub max_eigenvalue: f64,
    pub eigenvalue_entropy: f64,
}

fn eigenvalues(rho: MatRef<C64>) -> Vec<f64> {
    let n = rho.nrows();
    let mut e = Eigh::new(n);
    match e.compute(rho, false) {
        Ok(()) => (0..n).map(|i| e.value(i)).collect(),
        Err(_) => vec![f64::NAN; n],
    }
}

/// Computes [`Figures`] of a Hermitian ρ (eigenvalues from its lower triangle).
#[must_use]
pub fn figures(rho: MatRef<C64>) -> Figures {
    let n = rho.nrows();
    let ev = eigenvalues(rho);
    let mut purity = 0.0;
    let mut trace = 0.0;
    for i in 0..n {
        trace += rho[(i, i)].re;
        for j in 0..n {
            purity += (rho[(i, j)] * rho[(j, i)]).re;
        }
    }
    Figures {
        purity,
        trace,
        rank: ev.iter().filter(|&&l| l > 1e-10).count(),
        min_eigenvalue: ev.first().copied().unwrap_or(f64::NAN),
        max_eigenvalue: ev.last().copied().unwrap_or(f64::NAN),
        eigenvalue_entropy: -ev
            .iter()
            .filter(|&&l| l > 1e-15)
            .map(|&l| l * l.ln())
            .sum::<f64>(),
    }
}

/// √ρ of a Hermitian ρ, negative eigenvalues (rounding) treated as 0.
fn sqrt_psd(rho: MatRef<C64>) -> Mat<C64> {
    let n = rho.nrows();
    let mut e = Eigh::new(n);
    if e.compute(rho, true).is_err() {
        return Mat::from_fn(n, n, |_, _| C64::new(f64::NAN, 0.0));
    }
    let mut b = e.u.clone();
    for j in 0..n {
        let s = e.value(j).max(0.0).sqrt().sqrt();
        for i in 0..n {
            b[(i, j)] *= s;
        }
    }
    &b * b.adjoint()
}

/// F(ρ, σ) = (Tr √(√ρ σ √ρ))².
///
/// Computed as ‖√ρ·√σ‖²_tr (the squared sum of singular values), which equals
/// the definition and stays accurate for pure states; tiny negative
/// eigenvalues of either argument are treated as 0.
#[must_use]
pub fn fidelity(rho: MatRef<C64>, sigma: MatRef<C64>) -> f64 {
    let a = sqrt_psd(rho);
    let b = sqrt_psd(sigma);
    let p = &a * &b;
    match p.singular_values() {
        Ok(s) => {
            let t: f64 = s.iter().sum();
            t * t
        }
        Err(_) => f64::NAN,
    }
}

/// Checks that ρ is a density matrix (Hermitian, PSD, trace 1) to `tol`;
/// the error says which property fails, as a phrase that follows the
/// matrix's name (e.g. "is not Hermitian: max|ρ − ρ†| = 3.0e-3 > 1e-6").
///
/// # Errors
/// The phrase naming the first property that fails: shape, finiteness,
/// Hermiticity, trace or positivity.
pub fn check_density_matrix(rho: MatRef<C64>, tol: f64) -> Result<(), String> {
    let (r, c) = (rho.nrows(), rho.ncols());
    if r != c || r == 0 {
        return Err(format!("is {r}x{c}, not a square matrix"));
    }
    let n = r;
    let mut asym = 0.0f64;
    for i in 0..n {
        for j in 0..n {
            let z = rho[(i, j)];
            if !z.re.is_finite() || !z.im.is_finite() {
                return Err(format!("has a non-finite entry at [{i}, {j}]"));
            }
            asym = asym.max((z - rho[(j, i)].conj()).norm());
        }
    }
    if asym > tol {
        return Err(format!(
            "is not Hermitian: max|ρ − ρ†| = {asym:.3e} > {tol:e}"
        ));
    }
    let trace: f64 = (0..n).map(|i| rho[(i, i)].re).sum();
    if (trace - 1.0).abs() > tol {
        return Err(format!("has trace {trace}, not 1 (to {tol:e})"));
    }
    let ev = eigenvalues(rho);
    let lmin = ev.first().copied().unwrap_or(f64::NAN);
    if lmin.is_nan() || lmin < -tol {
        return Err(format!(
            "is not positive semidefinite: its smallest eigenvalue is {lmin:.3e}"
        ));
    }
    Ok(())
}
