//! qst's benchmarks: shared inputs for the criterion benches (`benches/`) and
//! the `mle-iter` timing binary that `bench/iteration.py` compares with numpy,
//! and `mub-iter`, which times `mub` against `nopovm` per iteration.

#![forbid(unsafe_code)]
// `clippy::pedantic` is reviewed (docs/ARCHITECTURE.md, "Lints"); these do not fit:
#![allow(
    // Docs write formulas (p_k, v_j): math, not code names.
    clippy::doc_markdown,
    // Dimensions and indices are far below 2^53, and a 53-bit draw is exact as f64.
    clippy::cast_precision_loss
)]

use qst_math::{C64, Projectors};

/// Noisy counts of a rank-n/2 state for `nopovm` of dimension n: about
/// 1000·n²·p_k(ρ) for a fixed ρ with complex off-diagonals, with Poisson-like
/// noise from a fixed seed, so every run benchmarks the same problem.
#[must_use]
pub fn counts_for(n: usize) -> Vec<f64> {
    let rho = state_for(n);
    let exact: Vec<f64> = (0..n * n)
        .map(|k| expectation(&qst_math::nopovm_ket(n, k), &rho))
        .collect();
    noisy(n, &exact)
}

/// The same state's noisy counts for the `mub` set of dimension n (its
/// kets, `Design::Mub.kets(n)`), about 1000·n² counts in all.
#[must_use]
pub fn mub_counts_for(n: usize, kets: &[C64]) -> Vec<f64> {
    let rho = state_for(n);
    let exact: Vec<f64> = kets
        .chunks_exact(n)
        .map(|psi| expectation(psi, &rho))
        .collect();
    noisy(n, &exact)
}

/// ρ ∝ Σ_{j<r} v_j v_j†, rank r = n/2 (at least 1), row-major: a boundary
/// optimum, so the linear estimate is not a state and the MLE has to iterate.
fn state_for(n: usize) -> Vec<C64> {
    let r = (n / 2).max(1);
    let mut rho = vec![C64::new(0.0, 0.0); n * n];
    for j in 0..r {
        let v: Vec<C64> = (0..n)
            .map(|a| {
                C64::from_polar(
                    1.0 + ((a * 7 + j * 3) % 5) as f64,
                    (a * (j + 1)) as f64 * 0.7,
                )
            })
            .collect();
        for a in 0..n {
            for b in 0..n {
                rho[a * n + b] += v[a] * v[b].conj();
            }
        }
    }
    rho
}

/// ψ†ρψ, clipped at 0 (ρ row-major).
fn expectation(psi: &[C64], rho: &[C64]) -> f64 {
    let n = psi.len();
    let mut p = C64::new(0.0, 0.0);
    for a in 0..n {
        for b in 0..n {
            p += psi[a].conj() * rho[a * n + b] * psi[b];
        }
    }
    p.re.max(0.0)
}

/// Counts of mean 1000·n²·p_k/Σp with Poisson-like noise (mean m, standard
/// deviation √m) from a fixed xorshift stream and Box–Muller, so the MLE has
/// real work to do.
fn noisy(n: usize, counts: &[f64]) -> Vec<f64> {
    let total: f64 = counts.iter().sum();
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ n as u64;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    counts
        .iter()
        .map(|c| {
            let m = c * 1000.0 * (n * n) as f64 / total;
            let z = (-2.0 * uniform().ln()).sqrt() * (std::f64::consts::TAU * uniform()).cos();
            (m + m.sqrt() * z).round().max(0.0)
        })
        .collect()
}

/// The projector set benchmarked: `nopovm` of dimension n, from its kets.
#[must_use]
pub fn nopovm(n: usize) -> Projectors<'static> {
    Projectors::Nopovm { n }
}
