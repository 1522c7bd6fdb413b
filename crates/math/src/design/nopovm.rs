//! The `nopovm` design's kets and slices (docs/designs.md): the n basis
//! vectors e_a, then for each pair i < j the kets (e_i + e_j)/√2 and
//! (e_i − 𝑖·e_j)/√2.

use crate::C64;

const ONE: C64 = C64::new(1.0, 0.0);
const ZERO: C64 = C64::new(0.0, 0.0);

/// The pair (i, j), i < j, of `nopovm` projector k ≥ n, and whether it is the
/// (e_i − 𝑖·e_j)/√2 member of the pair.
fn nopovm_pair(n: usize, k: usize) -> (usize, usize, bool) {
    let m = k - n;
    let (mut pair, minus) = (m / 2, m % 2 == 1);
    let mut i = 0;
    while pair >= n - 1 - i {
        pair -= n - 1 - i;
        i += 1;
    }
    (i, i + 1 + pair, minus)
}

/// ψ_k of the `nopovm` set (docs/designs.md), as a dense vector of length n.
///
/// # Panics
/// If `k >= n²`.
#[must_use]
pub fn nopovm_ket(n: usize, k: usize) -> Vec<C64> {
    assert!(k < n * n, "nopovm of dimension {n} has no projector {k}");
    let mut psi = vec![ZERO; n];
    if k < n {
        psi[k] = ONE;
    } else {
        let (i, j, minus) = nopovm_pair(n, k);
        // 1/√2 as numpy's 1/np.sqrt(2) (…475, one ulp below FRAC_1_SQRT_2).
        let s = 1.0 / 2f64.sqrt();
        psi[i] = C64::new(s, 0.0);
        psi[j] = if minus {
            C64::new(0.0, -s)
        } else {
            C64::new(s, 0.0)
        };
    }
    psi
}

/// Writes Π_k of the `nopovm` set into `out` (length n², C order).
///
/// # Panics
/// If `k >= n²` or `out.len() != n²`.
pub fn nopovm_slice(n: usize, k: usize, out: &mut [C64]) {
    assert!(
        out.len() == n * n,
        "nopovm_slice needs an output of length n² = {}",
        n * n
    );
    out.fill(ZERO);
    if k < n {
        out[k * n + k] = ONE;
        return;
    }
    assert!(k < n * n, "nopovm of dimension {n} has no projector {k}");
    // Π[a, b] = ψ[a]·conj(ψ[b]), ψ[i] = 1/√2 and ψ[j] = 1/√2 or −𝑖/√2,
    // multiplied out as written (bit-identical to ψψ† in numpy).
    let psi = nopovm_ket(n, k);
    let (i, j, _) = nopovm_pair(n, k);
    for a in [i, j] {
        for b in [i, j] {
            out[a * n + b] = psi[a] * psi[b].conj();
        }
    }
}
