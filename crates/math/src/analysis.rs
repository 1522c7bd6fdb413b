//! What the lab reads off a reconstructed state: overlaps with the generalized
//! Bell basis of two qudits, the dominant eigencomponent in amplitude/phase
//! form, targets given as kets, and the Poisson resampling of a parametric
//! bootstrap.

use faer::{Mat, MatRef};
use rand::SeedableRng;
use rand_distr::{Distribution, Poisson};

use crate::eigh::Eigh;
use crate::{C64, MathError};

/// m with m² = n and m ≥ 2, else the error the Bell analysis gives.
///
/// # Errors
/// [`MathError::NotSquare`] if n is not m² for an m ≥ 2.
pub fn bell_side(n: usize) -> Result<usize, MathError> {
    let m = n.isqrt();
    if m >= 2 && m * m == n {
        Ok(m)
    } else {
        Err(MathError::NotSquare { dim: n })
    }
}

/// ⟨B_{a,b}|ρ|B_{a,b}⟩ for every generalized Bell state of two m-level
/// qudits (n = m²), at index a·m + b:
/// |B_{a,b}⟩ = Σ_{j<m} ω^{a·j} |j⟩|(j+b) mod m⟩ / √m, ω = e^{2πi/m},
/// |i⟩|j⟩ = e_{i·m+j}.
///
/// # Errors
/// [`MathError::RhoShape`] if ρ is not square, [`MathError::NotSquare`] if its
/// dimension is not m² for an m ≥ 2.
pub fn bell_fidelities(rho: MatRef<C64>) -> Result<Vec<f64>, MathError> {
    let n = rho.nrows();
    if rho.ncols() != n {
        return Err(MathError::RhoShape {
            rows: n,
            cols: rho.ncols(),
            n,
        });
    }
    let m = bell_side(n)?;
    // ω^k for k < m.
    let w: Vec<C64> = (0..m)
        .map(|k| C64::from_polar(1.0, 2.0 * std::f64::consts::PI * k as f64 / m as f64))
        .collect();
    let mut out = Vec::with_capacity(n);
    for a in 0..m {
        for b in 0..m {
            let mut s = C64::new(0.0, 0.0);
            for j in 0..m {
                let r = j * m + (j + b) % m;
                for k in 0..m {
                    let c = k * m + (k + b) % m;
                    // conj(ω^{a j}) ω^{a k} = ω^{a (k − j)}
                    let e = (a * (k + m - j)) % m;
                    s += rho[(r, c)] * w[e];
                }
            }
            out.push(s.re / m as f64);
        }
    }
    Ok(out)
}

/// The Bell figures: (max fidelity, its index a·m + b, min fidelity).
///
/// # Errors
/// As [`bell_fidelities`].
pub fn bell_summary(rho: MatRef<C64>) -> Result<(f64, usize, f64), MathError> {
    let f = bell_fidelities(rho)?;
    let mut best = 0;
    let mut min = f64::INFINITY;
    for (i, &x) in f.iter().enumerate() {
        if x > f[best] {
            best = i;
        }
        min = min.min(x);
    }
    Ok((f[best], best, min))
}

/// The dominant component of a Hermitian ρ.
#[derive(Clone, Debug, PartialEq)]
pub struct Dominant {
    /// The largest eigenvalue.
    pub eigenvalue: f64,
    /// |v_j| of its unit eigenvector v.
    pub amplitudes: Vec<f64>,
    /// arg(v_j) − arg(v_r) in units of π, in (−1, 1], where r is the first
    /// component with |v_r| > 1e-6 · max_j |v_j| (its phase is 0).
    pub phases: Vec<f64>,
}

/// A phase in units of π, wrapped into (−1, 1].
#[must_use]
pub fn wrap_phase(x: f64) -> f64 {
    let r = x - 2.0 * f64::midpoint(x, 1.0).floor();
    if r <= -1.0 { r + 2.0 } else { r }
}

/// The largest eigenvalue of ρ and its eigenvector as amplitudes and phases
/// (units of π) relative to its first component of amplitude above 1e-6 of
/// the largest.
///
/// # Errors
/// [`MathError::NoConvergence`] if the eigen-decomposition of ρ does not converge.
pub fn dominant(rho: MatRef<C64>) -> Result<Dominant, MathError> {
    let n = rho.nrows();
    let mut e = Eigh::new(n);
    e.compute(rho, true)?;
    let v: Vec<C64> = (0..n).map(|i| e.u[(i, n - 1)]).collect();
    let amplitudes: Vec<f64> = v.iter().map(|z| z.norm()).collect();
    let top = amplitudes.iter().copied().fold(0.0, f64::max);
    let r = amplitudes.iter().position(|&a| a > 1e-6 * top).unwrap_or(0);
    let reference = v[r].arg();
    let phases = v
        .iter()
        .enumerate()
        .map(|(j, z)| {
            if j == r {
                0.0
            } else {
                let p = wrap_phase((z.arg() - reference) / std::f64::consts::PI);
                if p == 0.0 { 0.0 } else { p }
            }
        })
        .collect();
    Ok(Dominant {
        eigenvalue: e.max(),
        amplitudes,
        phases,
    })
}

/// |ψ⟩⟨ψ| / ⟨ψ|ψ⟩ of a ket; `None` for a zero (or non-finite) vector.
#[must_use]
pub fn ket_density(psi: &[C64]) -> Option<Mat<C64>> {
    let norm2: f64 = psi.iter().map(C64::norm_sqr).sum();
    if !(norm2.is_finite() && norm2 > 0.0) {
        return None;
    }
    let n = psi.len();
    Some(Mat::from_fn(n, n, |i, j| psi[i] * psi[j].conj() / norm2))
}

/// The ket ψ_j = a_j · e^{iπ φ_j} of the lab's amplitude/phase form
/// (phases in units of π), not normalized.
#[must_use]
pub fn ket_from_polar(amplitudes: &[f64], phases: &[f64]) -> Vec<C64> {
    amplitudes
        .iter()
        .zip(phases)
        .map(|(&a, &p)| C64::from_polar(a, std::f64::consts::PI * p))
        .collect()
}

/// One parametric resample: c*_k ~ Poisson(λ_k), drawn from a generator
/// seeded by `seed` alone (a λ_k of 0 gives 0).
///
/// # Errors
/// [`MathError::BadCount`] for the first mean that is negative or not finite.
pub fn poisson_resample(means: &[f64], seed: u64) -> Result<Vec<f64>, MathError> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    means
        .iter()
        .enumerate()
        .map(|(index, &l)| {
            if !(l.is_finite() && l >= 0.0) {
                return Err(MathError::BadCount { index, value: l });
            }
            if l == 0.0 {
                return Ok(0.0);
            }
            Poisson::new(l)
                .map(|p| p.sample(&mut rng))
                .map_err(|_| MathError::BadCount { index, value: l })
        })
        .collect()
}

/// The sample standard deviation (n − 1 in the denominator); `None` for
/// fewer than two values.
#[must_use]
pub fn sample_std(x: &[f64]) -> Option<f64> {
    if x.len() < 2 {
        return None;
    }
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0);
    Some(var.sqrt())
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // the expected values are exact in binary floating point
mod tests {
    use super::*;

    fn bell_ket(m: usize, a: usize, b: usize) -> Vec<C64> {
        let mut v = vec![C64::new(0.0, 0.0); m * m];
        for j in 0..m {
            let ph = 2.0 * std::f64::consts::PI * (a * j) as f64 / m as f64;
            v[j * m + (j + b) % m] = C64::from_polar(1.0 / (m as f64).sqrt(), ph);
        }
        v
    }

    #[test]
    fn bell_states_are_found_and_fidelities_sum_to_one() {
        for m in [2, 3, 4] {
            for (a, b) in [(0, 0), (1, 0), (m - 1, 1), (1, m - 1)] {
                let rho = ket_density(&bell_ket(m, a, b)).unwrap();
                let f = bell_fidelities(rho.as_ref()).unwrap();
                assert_eq!(f.len(), m * m);
                // The Bell basis is orthonormal: the overlaps of a density
                // matrix sum to its trace.
                assert!((f.iter().sum::<f64>() - 1.0).abs() < 1e-12);
                let (max, idx, min) = bell_summary(rho.as_ref()).unwrap();
                assert!((max - 1.0).abs() < 1e-12, "m={m} a={a} b={b}: {f:?}");
                assert_eq!(idx, a * m + b);
                assert!(min.abs() < 1e-12);
            }
        }
        // The maximally mixed state: 1/n each.
        let n = 9;
        let mixed = Mat::from_fn(n, n, |i, j| {
            C64::new(if i == j { 1.0 / n as f64 } else { 0.0 }, 0.0)
        });
        for f in bell_fidelities(mixed.as_ref()).unwrap() {
            assert!((f - 1.0 / 9.0).abs() < 1e-12);
        }
    }

    #[test]
    fn non_square_dimensions_are_refused() {
        for n in [2, 3, 6, 8] {
            let rho = Mat::<C64>::zeros(n, n);
            let e = bell_fidelities(rho.as_ref()).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("dimension {n} is not a square m² (m ≥ 2)")
            );
        }
        assert_eq!(bell_side(16), Ok(4));
    }

    #[test]
    fn dominant_component_of_a_mixture() {
        // 0.7 |ψ⟩⟨ψ| + 0.3 I/3 with ψ ∝ (0, 1, e^{iπ/2}·2): r = 1.
        let psi = ket_from_polar(&[0.0, 1.0, 2.0], &[0.3, -0.25, 0.25]);
        let p = ket_density(&psi).unwrap();
        let rho = Mat::from_fn(3, 3, |i, j| {
            p[(i, j)] * 0.7 + C64::new(if i == j { 0.1 } else { 0.0 }, 0.0)
        });
        let d = dominant(rho.as_ref()).unwrap();
        assert!((d.eigenvalue - 0.8).abs() < 1e-12);
        let s = 5f64.sqrt();
        for (a, want) in d.amplitudes.iter().zip([0.0, 1.0 / s, 2.0 / s]) {
            assert!((a - want).abs() < 1e-10, "{:?}", d.amplitudes);
        }
        assert_eq!(d.phases[1], 0.0);
        assert!((d.phases[2] - 0.5).abs() < 1e-10, "{:?}", d.phases);
    }

    #[test]
    fn phases_wrap_into_the_half_open_interval() {
        assert_eq!(wrap_phase(1.0), 1.0);
        assert_eq!(wrap_phase(-1.0), 1.0);
        assert!((wrap_phase(1.5) + 0.5).abs() < 1e-15);
        assert!((wrap_phase(-2.25) + 0.25).abs() < 1e-15);
        assert_eq!(wrap_phase(0.0), 0.0);
    }

    #[test]
    fn resamples_are_seeded_and_poisson() {
        let means = [0.0, 5.0, 100.0, 2500.0];
        let a = poisson_resample(&means, 42).unwrap();
        assert_eq!(a, poisson_resample(&means, 42).unwrap());
        assert_ne!(a, poisson_resample(&means, 43).unwrap());
        assert_eq!(a[0], 0.0);
        // Mean and variance of 2000 draws of Poisson(100).
        let draws: Vec<f64> = (0..2000)
            .map(|s| poisson_resample(&[100.0], s).unwrap()[0])
            .collect();
        let mean = draws.iter().sum::<f64>() / 2000.0;
        let sd = sample_std(&draws).unwrap();
        assert!((mean - 100.0).abs() < 1.5, "{mean}");
        assert!((sd - 10.0).abs() < 1.0, "{sd}");
        assert!(poisson_resample(&[-1.0], 1).is_err());
        assert_eq!(sample_std(&[1.0]), None);
        assert!((sample_std(&[1.0, 3.0]).unwrap() - 2f64.sqrt()).abs() < 1e-15);
    }
}
