//! Linear inversion (docs/reference.md) and the projection of a Hermitian matrix onto
//! the density matrices (Smolin, Gambetta, Smith, PRL 108, 070502 (2012)).

use faer::linalg::solvers::SolveLstsq;
use faer::{Mat, MatRef};

use std::ops::Range;

use crate::eigh::Eigh;
use crate::projectors::{ProjWork, weighted_sum_into};
use crate::{C64, Design, MathError, Projectors, check_counts, measurement_matrix};

/// Projects `v` (sorted ascending) onto the probability simplex
/// {λ ≥ 0, Σλ = 1} in the Euclidean norm, in place; the result stays sorted.
pub fn project_to_simplex(v: &mut [f64]) {
    let n = v.len();
    if n == 0 {
        return;
    }
    // Work relative to the largest value, so that huge inputs keep their
    // differences (the largest always stays in the support: τ₁ = v_max − 1).
    let top = v[n - 1];
    let (mut sum, mut tau) = (0.0, -1.0);
    // Largest r such that the r largest values, shifted by τ_r, stay positive.
    for r in 2..=n {
        let x = v[n - r] - top;
        let t = (sum + x - 1.0) / r as f64;
        if x - t > 0.0 {
            sum += x;
            tau = t;
        } else {
            break;
        }
    }
    for x in v.iter_mut() {
        *x = (*x - top - tau).max(0.0);
    }
}

/// The density matrix closest to the Hermitian `x` in Frobenius norm
/// (eigenvalues projected onto the simplex; only the lower triangle is read).
///
/// # Errors
/// [`MathError::NoConvergence`] if the eigen-decomposition of `x` does not converge.
pub fn project_to_density(x: MatRef<C64>) -> Result<Mat<C64>, MathError> {
    let n = x.nrows();
    let mut e = Eigh::new(n);
    e.compute(x, true)?;
    let mut lam: Vec<f64> = (0..n).map(|i| e.value(i)).collect();
    project_to_simplex(&mut lam);
    let mut b = e.u.clone();
    for (j, &l) in lam.iter().enumerate() {
        let s = l.sqrt();
        for i in 0..n {
            b[(i, j)] *= s;
        }
    }
    let rho = &b * b.adjoint();
    Ok(hermitize(rho.as_ref()))
}

/// (X + X†)/2.
pub(crate) fn hermitize(x: MatRef<C64>) -> Mat<C64> {
    let n = x.nrows();
    Mat::from_fn(n, n, |i, j| (x[(i, j)] + x[(j, i)].conj()) * 0.5)
}

/// Linear inversion (docs/reference.md) of a built-in `design`'s set (or a custom set,
/// `None`): counts become frequencies per group (f_k = c_k / N_g), then the
/// least-squares X, made Hermitian, of trace 1, projected onto the states.
///
/// # Errors
/// Counts that [`check_counts`] rejects, a group without counts
/// ([`MathError::EmptyGroup`]), an X of trace ≤ 0 ([`MathError::NonPositiveTrace`])
/// or an eigen-decomposition that does not converge ([`MathError::NoConvergence`]).
pub fn linear(
    proj: &Projectors,
    counts: &[f64],
    design: Option<Design>,
) -> Result<Mat<C64>, MathError> {
    check_counts(proj.count(), counts)?;
    let n = proj.dim();
    let groups = match design {
        Some(d) => d.groups(n),
        None => std::iter::once(0..proj.count()).collect(),
    };
    // One group: the frequencies are the counts up to a scale, which the trace
    // normalization removes; the counts are used as they are.
    let freq = if groups.len() == 1 {
        counts.to_vec()
    } else {
        frequencies(counts, &groups)?
    };
    let x = match *proj {
        Projectors::Nopovm { .. } => nopovm_inverse(n, &freq),
        _ if design.is_some_and(Design::is_complete_mub) => mub_inverse(proj, &freq),
        Projectors::Kets { kets, .. } => {
            let kc = proj.count();
            let mut m = Mat::<C64>::zeros(kc, n * n);
            for k in 0..kc {
                let psi = &kets[k * n..(k + 1) * n];
                for a in 0..n {
                    for b in 0..n {
                        m[(k, a * n + b)] = psi[a] * psi[b].conj();
                    }
                }
            }
            least_squares(m.as_ref(), &freq, n)
        }
        Projectors::Dense { data, .. } => least_squares(measurement_matrix(n, data), &freq, n),
    };
    let x = hermitize(x.as_ref());
    let trace: f64 = (0..n).map(|i| x[(i, i)].re).sum();
    // A trace that is zero up to the rounding of the least squares counts as
    // zero (dividing by it would only amplify the rounding).
    let frob = x.norm_l2();
    if trace.is_nan() || trace <= 1e-12 * frob {
        return Err(MathError::NonPositiveTrace { trace });
    }
    let x = Mat::from_fn(n, n, |i, j| x[(i, j)] / trace);
    project_to_density(x.as_ref())
}

/// f_k = c_k / N_g, N_g the total of k's group; an empty group is an error.
///
/// # Errors
/// [`MathError::EmptyGroup`] for the first group whose counts sum to 0.
pub fn frequencies(counts: &[f64], groups: &[Range<usize>]) -> Result<Vec<f64>, MathError> {
    let mut f = counts.to_vec();
    for (g, r) in groups.iter().enumerate() {
        let total: f64 = counts[r.clone()].iter().sum();
        if total <= 0.0 {
            return Err(MathError::EmptyGroup {
                group: g,
                first: r.start,
                last: r.end.saturating_sub(1),
            });
        }
        for v in &mut f[r.clone()] {
            *v /= total;
        }
    }
    Ok(f)
}

/// The least-squares X of a complete set of MUBs in closed form: the set is a
/// tight frame, Σ_k Tr(Π_k X)·Π_k = X + Tr(X)·I, so with A = Σ_k f_k Π_k the
/// solution is X = A − Tr(A)/(n+1)·I.
fn mub_inverse(proj: &Projectors, f: &[f64]) -> Mat<C64> {
    let n = proj.dim();
    let mut a = Mat::<C64>::zeros(n, n);
    weighted_sum_into(proj, f, a.as_mut(), &mut ProjWork::new(proj));
    let shift: f64 = f.iter().sum::<f64>() / (n + 1) as f64;
    for i in 0..n {
        a[(i, i)].re -= shift;
    }
    a
}

/// argmin ‖M·x − c‖₂ with x[a·n + b] = X[b, a], as X.
fn least_squares(m: MatRef<C64>, counts: &[f64], n: usize) -> Mat<C64> {
    let c = Mat::from_fn(counts.len(), 1, |k, _| C64::new(counts[k], 0.0));
    let sol = m.qr().solve_lstsq(&c);
    Mat::from_fn(n, n, |b, a| sol[(a * n + b, 0)])
}

/// The exact inverse of `nopovm`'s square M: X_aa = c_a and, for i < j with
/// counts c₊ of (e_i + e_j)/√2 and c₋ of (e_i − 𝑖e_j)/√2,
/// Re X_ij = c₊ − (X_ii + X_jj)/2, Im X_ij = c₋ − (X_ii + X_jj)/2.
fn nopovm_inverse(n: usize, c: &[f64]) -> Mat<C64> {
    let mut x = Mat::<C64>::zeros(n, n);
    for a in 0..n {
        x[(a, a)] = C64::new(c[a], 0.0);
    }
    let mut k = n;
    for i in 0..n {
        for j in i + 1..n {
            let d = 0.5 * (c[i] + c[j]);
            let z = C64::new(c[k] - d, c[k + 1] - d);
            x[(i, j)] = z;
            x[(j, i)] = z.conj();
            k += 2;
        }
    }
    x
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // the expected values are exact in binary floating point
mod tests {
    use super::*;

    /// τ with Σ max(v − τ, 0) = 1, by bisection (independent of the sort-based rule).
    fn tau_bisect(v: &[f64]) -> f64 {
        let (mut lo, mut hi) = (
            v.iter().copied().fold(f64::INFINITY, f64::min) - 1.0,
            v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        );
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            let s: f64 = v.iter().map(|x| (x - mid).max(0.0)).sum();
            if s > 1.0 { lo = mid } else { hi = mid }
        }
        0.5 * (lo + hi)
    }

    #[test]
    fn simplex_projection_matches_bisection() {
        let cases: [&[f64]; 8] = [
            &[0.25, 0.25, 0.5],
            &[-0.3, 0.1, 1.2],
            &[-2.0, -1.0, 0.0, 3.0],
            &[0.1, 0.1, 0.1],
            &[-1e-17, 1e-17, 1.0],
            &[5.0],
            // Huge values (a long gradient step): only differences count.
            &[1e200, 3e204, 5e204],
            &[-1e300, 1e300 - 1e285, 1e300],
        ];
        for v in cases {
            let mut got = v.to_vec();
            project_to_simplex(&mut got);
            if v[v.len() - 1] < 1e100 {
                let tau = tau_bisect(v);
                for (g, x) in got.iter().zip(v.iter()) {
                    assert!((g - (x - tau).max(0.0)).abs() < 1e-12, "{v:?} -> {got:?}");
                }
            } else {
                assert_eq!(got[v.len() - 1], 1.0, "{v:?} -> {got:?}");
            }
            assert!((got.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            assert!(got.windows(2).all(|w| w[0] <= w[1]));
        }
    }

    #[test]
    fn density_projection_of_a_diagonal_matrix() {
        // diag(0.9, 0.4, −0.3): eigenvalues projected to (0.75, 0.25, 0).
        let x = Mat::from_fn(3, 3, |i, j| {
            if i == j {
                C64::new([0.9, 0.4, -0.3][i], 0.0)
            } else {
                C64::new(0.0, 0.0)
            }
        });
        let p = project_to_density(x.as_ref()).unwrap();
        for (i, want) in [0.75, 0.25, 0.0].iter().enumerate() {
            assert!((p[(i, i)].re - want).abs() < 1e-14);
        }
        assert!((0..3).all(|i| (0..3).all(|j| i == j || p[(i, j)].norm() < 1e-14)));
    }
}
