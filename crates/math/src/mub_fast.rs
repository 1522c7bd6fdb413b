//! The fast form of a complete set of mutually unbiased bases given by its
//! kets (the `mub` design, docs/designs.md): p_k(ρ) and Σ w_kΠ_k in
//! O(n²·p·log_p n) instead of the O(n⁴) of two dense products with the
//! K × n kets.
//!
//! The set is n = p^k computational-basis kets e_a, then n bases b of n
//! members j with
//!
//!   ψ_{b,j}[a] = c_{b,j}·φ_b(a)·χ_{t_b(j)}(a)/√n,
//!
//! |c_{b,j}| = 1, φ_b(0) = 1, and χ_u(a) = ω^{⟨u,a⟩} (ω = e^{2π𝑖/p}, ⟨u,a⟩
//! = Σ_i u_i·a_i mod p over base-p digits) the additive characters of
//! GF(p^k) = (Z_p)^k, member j having character t_b(j). The phases are
//! quadratic: conj(φ_b(a))·φ_b(a+δ) = φ_b(δ)·χ_{u_b(δ)}(a) for every a, δ
//! (for odd p, φ_c(a) = ω^{Tr(c·a²)} and u_c(δ) = 2cδ; for p = 2 the
//! stabilizer phases i^{aᵀSa} and u(δ) = Sδ). Then, with
//! D[a, δ] = ρ[a, a+δ] and F the character transform
//! F(x)[u] = Σ_a χ_u(a)·x[a] (a length-p DFT along each digit),
//!
//!   p_{b,j} = F(S_b)[t_b(j)],  S_b[δ] = φ_b(δ)·F(D[·, δ])[u_b(δ)]/n,
//!
//! and R = Σ w_kΠ_k has R[a, a+δ] = F(V_δ)[−a] (plus w_a on the diagonal),
//! V_δ[u] = Σ_{b: u_b(δ)=u} conj(φ_b(δ))·F(W_b)[−δ]/n, W_b[t_b(j)] = w_{b,j}.
//!
//! Nothing of the construction is assumed: [`MubPlan::detect`] reads φ_b,
//! t_b and u_b off the kets and checks every identity above on every entry
//! (O(n³), once per set), and a set that fails any of them (a custom set,
//! another design) is left to the dense products.

use faer::{MatMut, MatRef};

use crate::C64;
use crate::design::prime_power;

/// How far a quantity of modulus 1 may be from its exact value.
const TOL: f64 = 1e-9;

/// The index tables of (Z_p)^k and the buffers of one evaluation.
pub(crate) struct MubPlan {
    n: usize,
    p: usize,
    k: u32,
    /// φ_b(a), row b.
    phi: Vec<C64>,
    /// t_b(j), row b.
    member: Vec<u16>,
    /// u_b(δ), row b.
    shift: Vec<u16>,
    /// a + δ, row a.
    add: Vec<u16>,
    /// −a.
    neg: Vec<u16>,
    /// ω^m, m = 0..p.
    omega: Vec<C64>,
    /// n × n, column δ contiguous: D, then F(D); or V, then F(V).
    d: Vec<C64>,
    /// One basis' vector.
    v: Vec<C64>,
    /// The p outputs of one length-p DFT.
    tmp: Vec<C64>,
}

/// The base-p digits of a.
fn digits(mut a: usize, p: usize, k: u32) -> impl Iterator<Item = usize> {
    (0..k).map(move |_| {
        let d = a % p;
        a /= p;
        d
    })
}

/// ⟨u, a⟩ mod p.
fn pairing(u: usize, a: usize, p: usize, k: u32) -> usize {
    digits(u, p, k)
        .zip(digits(a, p, k))
        .fold(0, |s, (x, y)| (s + x * y) % p)
}

/// Whether z is within [`TOL`] of w (false for NaN).
fn near(z: C64, w: C64) -> bool {
    (z - w).norm() <= TOL
}

impl MubPlan {
    /// The plan of the set `kets` (n(n+1) kets of length n), when it has the
    /// structure of the module doc to within [`TOL`]; None otherwise.
    pub fn detect(n: usize, kets: &[C64]) -> Option<MubPlan> {
        let (p, k) = prime_power(n)?;
        if n > usize::from(u16::MAX) || kets.len() != n * (n + 1) * n {
            return None;
        }
        let p = p as usize;
        for (a, psi) in kets.chunks_exact(n).take(n).enumerate() {
            let ok = psi.iter().enumerate().all(|(c, &z)| {
                near(z, C64::new(if a == c { 1.0 } else { 0.0 }, 0.0))
            });
            if !ok {
                return None;
            }
        }
        let place = |a: usize| digits(a, p, k).collect::<Vec<_>>();
        let add: Vec<u16> = (0..n * n)
            .map(|x| {
                let (da, dd) = (place(x / n), place(x % n));
                let s = da.iter().zip(&dd).rev().fold(0, |s, (x, y)| s * p + (x + y) % p);
                s as u16
            })
            .collect();
        let neg: Vec<u16> = (0..n)
            .map(|a| place(a).iter().rev().fold(0, |s, x| s * p + (p - x) % p) as u16)
            .collect();
        let omega = (0..p)
            .map(|m| C64::from_polar(1.0, 2.0 * std::f64::consts::PI * m as f64 / p as f64))
            .collect();
        let mut plan = MubPlan {
            n,
            p,
            k,
            phi: vec![C64::new(0.0, 0.0); n * n],
            member: vec![0; n * n],
            shift: vec![0; n * n],
            add,
            neg,
            omega,
            d: vec![C64::new(0.0, 0.0); n * n],
            v: vec![C64::new(0.0, 0.0); n],
            tmp: vec![C64::new(0.0, 0.0); p],
        };
        for b in 0..n {
            plan.read_basis(b, &kets[(n + b * n) * n..(n + (b + 1) * n) * n])?;
        }
        Some(plan)
    }

    /// φ_b, t_b and u_b of basis b (its n kets, row after row), checked.
    fn read_basis(&mut self, b: usize, kets: &[C64]) -> Option<()> {
        let n = self.n;
        let scale = (n as f64).sqrt();
        let psi0 = &kets[..n];
        if !psi0.iter().all(|z| (z.norm() * scale - 1.0).abs() <= TOL) {
            return None;
        }
        let phi: Vec<C64> = psi0.iter().map(|&z| z / psi0[0]).collect();
        let mut seen = vec![false; n];
        for (j, psi) in kets.chunks_exact(n).enumerate() {
            let t = self.character_of(|a| psi[a] / psi[0] / phi[a])?;
            if std::mem::replace(&mut seen[t], true) {
                return None;
            }
            self.member[b * n + j] = t as u16;
        }
        for delta in 0..n {
            let u = self.character_of(|a| {
                phi[a].conj() * phi[usize::from(self.add[a * n + delta])] / phi[delta]
            })?;
            self.shift[b * n + delta] = u as u16;
        }
        self.phi[b * n..(b + 1) * n].copy_from_slice(&phi);
        Some(())
    }

    /// The u with f(a) = χ_u(a) for every a, if there is one: its digits
    /// from f at the digit unit vectors, then checked everywhere.
    fn character_of(&self, f: impl Fn(usize) -> C64) -> Option<usize> {
        let (n, p) = (self.n, self.p);
        let (mut u, mut place) = (0, 1);
        for _ in 0..self.k {
            let turns = f(place).arg() / (2.0 * std::f64::consts::PI) * p as f64;
            if !turns.is_finite() {
                return None;
            }
            u += (turns.round() as i64).rem_euclid(p as i64) as usize * place;
            place *= p;
        }
        (0..n)
            .all(|a| near(f(a), self.omega[pairing(u, a, p, self.k)]))
            .then_some(u)
    }

    /// p_k(ρ) for every k into `out` (module doc).
    pub fn probs(&mut self, rho: MatRef<C64>, out: &mut [f64]) {
        let n = self.n;
        for (a, o) in out.iter_mut().enumerate().take(n) {
            *o = rho[(a, a)].re;
        }
        for (delta, col) in self.d.chunks_exact_mut(n).enumerate() {
            for (a, z) in col.iter_mut().enumerate() {
                *z = rho[(a, usize::from(self.add[a * n + delta]))];
            }
        }
        let (p, k) = (self.p, self.k);
        for col in self.d.chunks_exact_mut(n) {
            transform(col, p, k, &self.omega, &mut self.tmp);
        }
        let inv = 1.0 / n as f64;
        for b in 0..n {
            let (phi, shift) = (&self.phi[b * n..], &self.shift[b * n..]);
            for (delta, v) in self.v.iter_mut().enumerate() {
                *v = phi[delta] * self.d[delta * n + usize::from(shift[delta])] * inv;
            }
            transform(&mut self.v, p, k, &self.omega, &mut self.tmp);
            let members = &self.member[b * n..(b + 1) * n];
            for (o, &t) in out[n + b * n..n + (b + 1) * n].iter_mut().zip(members) {
                *o = self.v[usize::from(t)].re;
            }
        }
    }

    /// out = Σ_k wt_k Π_k (module doc), Hermitian.
    pub fn weighted_sum(&mut self, wt: &[f64], mut out: MatMut<C64>) {
        let (n, p, k) = (self.n, self.p, self.k);
        let inv = 1.0 / n as f64;
        self.d.fill(C64::new(0.0, 0.0));
        for b in 0..n {
            let members = &self.member[b * n..(b + 1) * n];
            for (&t, &w) in members.iter().zip(&wt[n + b * n..n + (b + 1) * n]) {
                self.v[usize::from(t)] = C64::new(w, 0.0);
            }
            transform(&mut self.v, p, k, &self.omega, &mut self.tmp);
            let (phi, shift) = (&self.phi[b * n..], &self.shift[b * n..]);
            for delta in 0..n {
                let h = self.v[usize::from(self.neg[delta])];
                self.d[delta * n + usize::from(shift[delta])] += phi[delta].conj() * h * inv;
            }
        }
        for col in self.d.chunks_exact_mut(n) {
            transform(col, p, k, &self.omega, &mut self.tmp);
        }
        for (delta, col) in self.d.chunks_exact(n).enumerate() {
            for a in 0..n {
                out[(a, usize::from(self.add[a * n + delta]))] = col[usize::from(self.neg[a])];
            }
        }
        for a in 0..n {
            out[(a, a)] = C64::new(out[(a, a)].re + wt[a], 0.0);
            for c in a + 1..n {
                let z = (out[(a, c)] + out[(c, a)].conj()) * 0.5;
                out[(a, c)] = z;
                out[(c, a)] = z.conj();
            }
        }
    }
}

/// x ← F(x): F(x)[u] = Σ_a ω^{⟨u,a⟩}·x[a], a length-p DFT along each
/// base-p digit (butterflies for p = 2).
fn transform(x: &mut [C64], p: usize, k: u32, omega: &[C64], tmp: &mut [C64]) {
    let n = x.len();
    let mut st = 1;
    for _ in 0..k {
        for hi in (0..n).step_by(st * p) {
            for o in hi..hi + st {
                if p == 2 {
                    let (a, b) = (x[o], x[o + st]);
                    x[o] = a + b;
                    x[o + st] = a - b;
                    continue;
                }
                for (v, t) in tmp.iter_mut().enumerate() {
                    *t = (0..p).fold(C64::new(0.0, 0.0), |s, m| {
                        s + omega[v * m % p] * x[o + m * st]
                    });
                }
                for (v, &t) in tmp.iter().enumerate() {
                    x[o + v * st] = t;
                }
            }
        }
        st *= p;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Design;
    use faer::Mat;
    use rand::{Rng, SeedableRng};

    fn random_rho(n: usize, rng: &mut impl Rng) -> Mat<C64> {
        let b = Mat::from_fn(n, n, |_, _| {
            C64::new(rng.random::<f64>() - 0.5, rng.random::<f64>() - 0.5)
        });
        &b * b.adjoint()
    }

    /// For every prime power n ≤ 32 and 49, 64: p_k = ψ_k†ρψ_k and
    /// Σ w_kψ_kψ_k† summed directly from `Design::Mub`'s kets equal the
    /// plan's to 1e-12 relative.
    #[test]
    fn plan_matches_the_kets() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let dims = (2..=32).chain([49, 64]).filter(|&n| prime_power(n).is_some());
        for n in dims {
            let kets = Design::Mub.kets(n);
            let mut plan = MubPlan::detect(n, &kets).unwrap_or_else(|| panic!("n = {n}"));
            let kc = n * (n + 1);
            let rho = random_rho(n, &mut rng);
            let mut got = vec![0.0; kc];
            plan.probs(rho.as_ref(), &mut got);
            let mut scale = 0.0f64;
            let want: Vec<f64> = kets
                .chunks_exact(n)
                .map(|psi| {
                    let mut s = C64::new(0.0, 0.0);
                    for a in 0..n {
                        for c in 0..n {
                            s += psi[a].conj() * rho[(a, c)] * psi[c];
                        }
                    }
                    scale = scale.max(s.re.abs());
                    s.re
                })
                .collect();
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!((g - w).abs() <= 1e-12 * scale, "n = {n}, p_{i}: {g} vs {w}");
            }
            let wt: Vec<f64> = (0..kc).map(|_| rng.random::<f64>() * 3.0).collect();
            let mut r = Mat::<C64>::zeros(n, n);
            plan.weighted_sum(&wt, r.as_mut());
            let mut direct = Mat::<C64>::zeros(n, n);
            for (psi, &w) in kets.chunks_exact(n).zip(&wt) {
                for a in 0..n {
                    for c in 0..n {
                        direct[(a, c)] += psi[a] * psi[c].conj() * w;
                    }
                }
            }
            let scale = direct.norm_max();
            let err = (&r - &direct).norm_max();
            assert!(err <= 1e-12 * scale, "n = {n}: Σ w Π off by {err:e}");
        }
    }

    /// Sets without the structure are refused: `nopovm`'s kets, a `mub`
    /// set with one phase changed, one with two members swapped across bases.
    #[test]
    fn other_sets_are_refused() {
        let n = 8;
        assert!(MubPlan::detect(n, &Design::Nopovm.kets(n)).is_none());
        let mut kets = Design::Mub.kets(n);
        kets[(n + 3) * n + 5] *= C64::new(0.0, 1.0);
        assert!(MubPlan::detect(n, &kets).is_none());
        let mut kets = Design::Mub.kets(n);
        for a in 0..n {
            kets.swap((n + 1) * n + a, (2 * n + 1) * n + a);
        }
        assert!(MubPlan::detect(n, &kets).is_none());
        assert!(MubPlan::detect(n, &Design::Mub.kets(n)).is_some());
    }
}
