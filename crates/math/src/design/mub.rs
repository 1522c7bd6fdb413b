//! The `mub` design's kets: n + 1 mutually unbiased bases for n = p^k.
//!
//! Group 0 is the computational basis. For odd p, group 1 + c holds
//! ψ_{c,γ}[α] = ω^{Tr(c·α² + γ·α)}/√n (γ = 0 … n−1, ω = e^{2π𝑖/p}). For
//! p = 2, group 1 + a holds the joint eigenvectors of k commuting Pauli
//! operators P_j = P(e_j, S(a)e_j), S(a) = Γ·M(a) over GF(2), member s having
//! eigenvalue (−1)^{bit j of s} for P_j.

use super::field::Field;
use crate::C64;

const ZERO: C64 = C64::new(0.0, 0.0);

/// All n(n+1) kets, row after row (`kets[k*n..(k+1)*n]` = ψ_k).
pub(super) fn kets(n: usize) -> Option<Vec<C64>> {
    let field = Field::new(n)?;
    let mut out = vec![ZERO; n * (n + 1) * n];
    for (a, row) in out.chunks_exact_mut(n).take(n).enumerate() {
        row[a] = C64::new(1.0, 0.0);
    }
    let rest = &mut out[n * n..];
    if field.p == 2 {
        qubit_groups(&field, rest);
    } else {
        odd_groups(&field, rest);
    }
    Some(out)
}

/// Groups 1 … n for odd p: the quadratic-phase bases.
fn odd_groups(f: &Field, out: &mut [C64]) {
    let (n, p) = (f.n, f.p);
    let amp = 1.0 / (n as f64).sqrt();
    let omega: Vec<C64> = (0..p)
        .map(|t| {
            C64::from_polar(
                amp,
                2.0 * std::f64::consts::PI * f64::from(t) / f64::from(p),
            )
        })
        .collect();
    let squares: Vec<usize> = (0..n).map(|a| f.mul(a, a)).collect();
    for c in 0..n {
        for g in 0..n {
            let psi = &mut out[(c * n + g) * n..(c * n + g + 1) * n];
            for (alpha, z) in psi.iter_mut().enumerate() {
                let arg = f.add(f.mul(c, squares[alpha]), f.mul(g, alpha));
                *z = omega[f.trace(arg) as usize];
            }
        }
    }
}

/// Groups 1 … n for p = 2: joint eigenvectors of commuting Pauli operators.
fn qubit_groups(f: &Field, out: &mut [C64]) {
    let (n, k) = (f.n, f.k as usize);
    // Γ[i][j] = Tr(x^i · x^j) over GF(2), 0 or 1.
    let xp: Vec<usize> = (0..k).map(|i| 1 << i).collect();
    let gamma: Vec<Vec<u8>> = (0..k)
        .map(|i| {
            (0..k)
                .map(|j| u8::from(f.trace(f.mul(xp[i], xp[j])) != 0))
                .collect()
        })
        .collect();
    let scale = (n as f64).sqrt();
    let mut v = vec![ZERO; n];
    let mut w = vec![ZERO; n];
    for a in 0..n {
        // M(a)[i][j] = bit i of a·x^j; S(a) = Γ·M(a) mod 2.
        let m: Vec<Vec<u8>> = (0..k)
            .map(|i| {
                (0..k)
                    .map(|j| u8::from((f.mul(a, xp[j]) >> i) & 1 != 0))
                    .collect()
            })
            .collect();
        let s_col = |j: usize| -> Vec<u8> {
            (0..k)
                .map(|q| (0..k).fold(0, |acc, r| acc ^ (gamma[q][r] & m[r][j])))
                .collect()
        };
        let paulis: Vec<Pauli> = (0..k)
            .map(|j| {
                let mut u = vec![0u8; k];
                u[j] = 1;
                Pauli::new(&u, &s_col(j))
            })
            .collect();
        for s in 0..n {
            // Π e_0 with Π = Π_j (I + (−1)^{s_j} P_j)/2; Π = ψψ† and |ψ[0]|² = 1/n
            // (the group is unbiased to the computational basis), so ψ = √n·Π e_0
            // (the phase making ψ[0] real and positive).
            v.fill(ZERO);
            v[0] = C64::new(1.0, 0.0);
            for (j, pj) in paulis.iter().enumerate() {
                let sign = if (s >> j) & 1 == 1 { -1.0 } else { 1.0 };
                pj.apply(&v, &mut w);
                for (x, y) in v.iter_mut().zip(&w) {
                    *x = (*x + y * sign) * 0.5;
                }
            }
            let psi = &mut out[(a * n + s) * n..(a * n + s + 1) * n];
            for (o, x) in psi.iter_mut().zip(&v) {
                *o = x * scale;
            }
        }
    }
}

/// P(u, v) = σ(u_0, v_0) ⊗ σ(u_1, v_1) ⊗ …, qubit 0 leftmost (the most
/// significant bit of a basis index), σ(0,0) = I, σ(1,0) = X, σ(0,1) = Z,
/// σ(1,1) = 𝑖·Z·X.
struct Pauli {
    /// The bits that X flips, as a mask of basis indices.
    flip: usize,
    /// The bits where Z acts (after the flip), as a mask.
    zmask: usize,
    /// 𝑖^(number of qubits with u = v = 1).
    phase: C64,
}

impl Pauli {
    fn new(u: &[u8], v: &[u8]) -> Pauli {
        let k = u.len();
        let (mut flip, mut zmask, mut ys) = (0, 0, 0);
        for q in 0..k {
            let bit = 1 << (k - 1 - q);
            if u[q] == 1 {
                flip |= bit;
            }
            if v[q] == 1 {
                zmask |= bit;
            }
            if u[q] == 1 && v[q] == 1 {
                ys += 1;
            }
        }
        let phase = [
            C64::new(1.0, 0.0),
            C64::new(0.0, 1.0),
            C64::new(-1.0, 0.0),
            C64::new(0.0, -1.0),
        ][ys % 4];
        Pauli { flip, zmask, phase }
    }

    /// out = P·v. σ(u, v)|b⟩ = 𝑖^{uv}·(−1)^{v·(b⊕u)}|b⊕u⟩ on each qubit.
    fn apply(&self, v: &[C64], out: &mut [C64]) {
        for (x, &vx) in v.iter().enumerate() {
            let y = x ^ self.flip;
            let odd = (y & self.zmask).count_ones() % 2 == 1;
            let z = vx * self.phase;
            out[y] = if odd { -z } else { z };
        }
    }
}
