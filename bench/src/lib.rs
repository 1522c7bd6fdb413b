//! qst's benchmarks: shared inputs for the criterion benches (`benches/`) and
//! the `mle-iter` timing binary that `bench/iteration.py` compares with numpy.

use qst_math::{C64, Projectors};

/// Noiseless-ish counts of a full-rank state for `nopovm` of dimension n:
/// c_k = 1000·n²·p_k(ρ) for a fixed ρ with complex off-diagonals
/// (deterministic, no RNG, so every run benchmarks the same problem).
pub fn counts_for(n: usize) -> Vec<f64> {
    let mut rho = vec![C64::new(0.0, 0.0); n * n];
    for a in 0..n {
        for b in 0..n {
            // A Hermitian, diagonally dominant (so positive definite) matrix.
            let v = if a == b {
                C64::new(n as f64 + a as f64, 0.0)
            } else {
                let (x, y) = (((a * 7 + b * 3) % 11) as f64, ((a * 5 + b * 13) % 7) as f64);
                let z = C64::new(x / 11.0, y / 7.0) * 0.5;
                if a < b { z } else { z.conj() }
            };
            rho[a * n + b] = v;
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
    let total: f64 = counts.iter().sum();
    counts
        .iter()
        .map(|c| (c * 1000.0 * (n * n) as f64 / total).round())
        .collect()
}

/// The projector set benchmarked: `nopovm` of dimension n, from its kets.
pub fn nopovm(n: usize) -> Projectors<'static> {
    Projectors::Nopovm { n }
}
