//! qst's benchmarks: shared inputs for the criterion benches (`benches/`) and
//! the `mle-iter` timing binary that `bench/iteration.py` compares with numpy.

#![forbid(unsafe_code)]

use qst_math::{C64, Projectors};

/// Noisy counts of a rank-n/2 state for `nopovm` of dimension n: about
/// 1000·n²·p_k(ρ) for a fixed ρ with complex off-diagonals, with Poisson-like
/// noise from a fixed seed, so every run benchmarks the same problem.
pub fn counts_for(n: usize) -> Vec<f64> {
    // ρ ∝ Σ_{j<r} v_j v_j†, rank r = n/2 (at least 1): a boundary optimum, so
    // the linear estimate is not a state and the MLE has to iterate.
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
    let mut counts = Vec::with_capacity(n * n);
    for k in 0..n * n {
        let psi = qst_math::nopovm_ket(n, k);
        // p_k = ψ†ρψ
        let mut p = C64::new(0.0, 0.0);
        for a in 0..n {
            for b in 0..n {
                p += psi[a].conj() * rho[a * n + b] * psi[b];
            }
        }
        counts.push(p.re.max(0.0));
    }
    // Poisson-like noise (mean m, standard deviation √m) from a fixed
    // xorshift stream and Box–Muller, so the MLE has real work to do.
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
pub fn nopovm(n: usize) -> Projectors<'static> {
    Projectors::Nopovm { n }
}
