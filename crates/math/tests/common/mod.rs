//! Test helpers, written from the written definitions and independent of the crate's
//! own formulas: the `nopovm` kets, the explicit double sum for p_k, ℓ, and
//! the certificate computed the long way over dense slices.
#![allow(
    // Each test crate uses some of the helpers.
    dead_code,
    // Docs write formulas (p_k, Π_k, Σ_k c_k): math, not code names.
    clippy::doc_markdown
)]

use qst_math::{C64, Mat, MatRef};
use rand::{Rng, SeedableRng, rngs::StdRng};
use rand_distr::{Distribution, Poisson, StandardNormal};

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

pub fn c(re: f64, im: f64) -> C64 {
    C64::new(re, im)
}

fn gauss(rng: &mut impl Rng) -> C64 {
    c(
        rng.sample::<f64, _>(StandardNormal),
        rng.sample::<f64, _>(StandardNormal),
    )
}

/// A random density matrix of the given rank (A·A†/Tr, A Gaussian n×rank).
pub fn random_state(n: usize, rank: usize, rng: &mut impl Rng) -> Mat<C64> {
    let a = Mat::from_fn(n, rank, |_, _| gauss(rng));
    let m = &a * a.adjoint();
    let tr: f64 = (0..n).map(|i| m[(i, i)].re).sum();
    Mat::from_fn(n, n, |i, j| m[(i, j)] / tr)
}

/// docs/designs.md, read literally: e_k, then per pair (i<j) (e_i+e_j)/√2, (e_i − 𝑖e_j)/√2.
pub fn spec_kets(n: usize) -> Vec<Vec<C64>> {
    let s = 1.0 / 2f64.sqrt();
    let mut out = Vec::new();
    for k in 0..n {
        let mut e = vec![c(0.0, 0.0); n];
        e[k] = c(1.0, 0.0);
        out.push(e);
    }
    for i in 0..n {
        for j in i + 1..n {
            let mut a = vec![c(0.0, 0.0); n];
            a[i] = c(s, 0.0);
            a[j] = c(s, 0.0);
            let mut b = vec![c(0.0, 0.0); n];
            b[i] = c(s, 0.0);
            b[j] = c(0.0, -s);
            out.push(a);
            out.push(b);
        }
    }
    out
}

/// Dense (K, n, n) C-order array of Π_k = ψ_k ψ_k† from kets.
pub fn dense_from_kets(n: usize, kets: &[Vec<C64>]) -> Vec<C64> {
    let mut d = Vec::with_capacity(kets.len() * n * n);
    for psi in kets {
        for a in 0..n {
            for b in 0..n {
                d.push(psi[a] * psi[b].conj());
            }
        }
    }
    d
}

pub fn flat(kets: &[Vec<C64>]) -> Vec<C64> {
    kets.iter().flatten().copied().collect()
}

/// K = n² + n random Gaussian unit kets (informationally complete with
/// probability 1; their G is not ∝ I).
pub fn random_kets(n: usize, rng: &mut impl Rng) -> Vec<Vec<C64>> {
    (0..n * n + n)
        .map(|_| {
            let v: Vec<C64> = (0..n).map(|_| gauss(rng)).collect();
            let norm = v.iter().map(C64::norm_sqr).sum::<f64>().sqrt();
            v.iter().map(|z| z / norm).collect()
        })
        .collect()
}

/// K = n² + 3 random rank-2 positive matrices (trace 1): a dense custom set.
pub fn random_dense(n: usize, rng: &mut impl Rng) -> Vec<C64> {
    let mut d = Vec::new();
    for _ in 0..n * n + 3 {
        let a = Mat::from_fn(n, 2, |_, _| gauss(rng));
        let m = &a * a.adjoint();
        let tr: f64 = (0..n).map(|i| m[(i, i)].re).sum();
        for i in 0..n {
            for j in 0..n {
                d.push(m[(i, j)] / tr);
            }
        }
    }
    d
}

/// docs/reference.md literally: p_k = Σ_{a,b} Π_k[a, b]·ρ[b, a] (complex; real for Hermitian ρ).
pub fn explicit_probs(n: usize, dense: &[C64], rho: MatRef<C64>) -> Vec<C64> {
    dense
        .chunks(n * n)
        .map(|pi| {
            let mut s = c(0.0, 0.0);
            for a in 0..n {
                for b in 0..n {
                    s += pi[a * n + b] * rho[(b, a)];
                }
            }
            s
        })
        .collect()
}

/// docs/reference.md literally: Σ_k c_k ln(p_k / Tr(Gρ)), c_k = 0 terms are 0.
pub fn explicit_loglik(n: usize, dense: &[C64], counts: &[f64], rho: MatRef<C64>) -> f64 {
    let p: Vec<f64> = explicit_probs(n, dense, rho).iter().map(|z| z.re).collect();
    let tg: f64 = p.iter().sum(); // Tr(Gρ) = Σ_k Tr(Π_k ρ)
    counts
        .iter()
        .zip(&p)
        .filter(|(c, _)| **c > 0.0)
        .map(|(c, p)| c * (p / tg).ln())
        .sum()
}

/// Poisson counts with mean shots·p_k.
pub fn poisson_counts(p: &[f64], shots: f64, rng: &mut impl Rng) -> Vec<f64> {
    p.iter()
        .map(|&x| {
            let m = x.max(0.0) * shots;
            if m > 0.0 {
                Poisson::new(m).map_or(0.0, |d| d.sample(rng))
            } else {
                0.0
            }
        })
        .collect()
}

pub fn transpose(m: MatRef<C64>) -> Mat<C64> {
    Mat::from_fn(m.ncols(), m.nrows(), |i, j| m[(j, i)])
}

/// Asserts ρ is Hermitian, trace 1 and PSD to `tol` (own checks).
pub fn assert_density(rho: MatRef<C64>, tol: f64) {
    let n = rho.nrows();
    assert_eq!(n, rho.ncols());
    let mut tr = 0.0;
    for i in 0..n {
        tr += rho[(i, i)].re;
        for j in 0..n {
            assert!(
                (rho[(i, j)] - rho[(j, i)].conj()).norm() <= tol,
                "not Hermitian at {i},{j}"
            );
        }
    }
    assert!((tr - 1.0).abs() <= tol, "trace {tr}");
    let h = Mat::from_fn(n, n, |i, j| (rho[(i, j)] + rho[(j, i)].conj()) * 0.5);
    let ev = h.self_adjoint_eigenvalues(faer::Side::Lower).unwrap();
    assert!(ev[0] >= -tol, "negative eigenvalue {}", ev[0]);
}
