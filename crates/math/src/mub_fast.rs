//! The fast form of a complete set of mutually unbiased bases given by its
//! kets (the `mub` design, docs/designs.md): p_k(ρ) and Σ w_kΠ_k in
//! O(n²·p·log_p n) (O(n³) by two matrix products for prime n) instead of
//! the O(n⁴) of two dense products with the K × n kets.
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
//! (O(n³), once per set and process: the tables are kept for kets with the
//! same bits, found by a hash of them), and a set that fails any of them (a
//! custom set, another design) is left to the dense products.

use faer::linalg::matmul::matmul;
use faer::reborrow::ReborrowMut;
use faer::{Accum, MatMut, MatRef, Par};

use std::sync::{Arc, Mutex, PoisonError};

use crate::C64;
use crate::design::prime_power;

/// How far a quantity of modulus 1 may be from its exact value.
const TOL: f64 = 1e-9;

const ZERO: C64 = C64::new(0.0, 0.0);

/// The fast form of one set: its tables (shared by every plan of the same
/// kets in this process) and the buffers of one evaluation.
pub(crate) struct MubPlan {
    t: Arc<Tables>,
    /// n × n buffers: ρ, then R (column-major); row-major D[a, δ], then
    /// F(D), or V[u, δ], then F(V); S[δ, b] or W[t, b], then F of them
    /// (row-major); the product of a k = 1 transform.
    rho: Vec<C64>,
    d: Vec<C64>,
    s: Vec<C64>,
    tmp: Vec<C64>,
    /// p = 2: S and W are transformed as real matrices (F is real there and
    /// only Re F(S) is used; W is real).
    sr: Vec<f64>,
}

/// The index tables of (Z_p)^k and the set's phases and characters.
struct Tables {
    /// A hash of the kets these were read from, with n.
    key: (usize, u64, u64),
    n: usize,
    p: usize,
    k: u32,
    /// φ_b(δ)/n at δ·n + b.
    phin: Vec<C64>,
    /// u_b(δ)·n + δ at δ·n + b (where F(D)[u_b(δ), δ] is in row-major F(D)).
    gather: Vec<u32>,
    /// t_b(j)·n + b at b·n + j (where F(S_b)[t_b(j)] is in row-major F(S)).
    member: Vec<u32>,
    /// a + δ, row a.
    add: Vec<u16>,
    /// −a.
    neg: Vec<u16>,
    /// The p × p DFT F_p[v, m] = ω^{vm} (row-major); for k = 1 the whole
    /// n × n transform (column-major), applied to n columns at once.
    dft: Vec<C64>,
    /// ω^m, m = 0..p.
    omega: Vec<C64>,
}

/// The tables read most recently in this process (a worker loads each set
/// once, but several functions make their own plan of it).
static RECENT: Mutex<Vec<Arc<Tables>>> = Mutex::new(Vec::new());
/// How many tables [`RECENT`] keeps.
const KEEP: usize = 4;

/// Two 64-bit hashes of every bit of the kets (multiply–xorshift streams
/// with different seeds): O(K·n), a small part of reading the tables.
fn fingerprint(kets: &[C64]) -> (u64, u64) {
    let mix = |h: u64, x: u64, m: u64| {
        let h = (h ^ x).wrapping_mul(m);
        h ^ (h >> 29)
    };
    kets.iter().fold(
        (0x243F_6A88_85A3_08D3, 0x1319_8A2E_0370_7344),
        |(a, b), z| {
            let (re, im) = (z.re.to_bits(), z.im.to_bits());
            let a = mix(mix(a, re, 0x9E37_79B9_7F4A_7C15), im, 0x9E37_79B9_7F4A_7C15);
            let b = mix(mix(b, im, 0xC2B2_AE3D_27D4_EB4F), re, 0xC2B2_AE3D_27D4_EB4F);
            (a, b)
        },
    )
}

/// The base-p digits of a.
fn digits(mut a: usize, p: usize, k: u32) -> impl Iterator<Item = usize> {
    (0..k).map(move |_| {
        let d = a % p;
        a /= p;
        d
    })
}

/// The element of base-p digits `d` (least significant first).
fn from_digits(d: impl DoubleEndedIterator<Item = usize>, p: usize) -> usize {
    d.rev().fold(0, |s, x| s * p + x)
}

/// ⟨u, a⟩ mod p.
fn pairing(u: usize, a: usize, p: usize, k: u32) -> usize {
    digits(u, p, k)
        .zip(digits(a, p, k))
        .fold(0, |s, (x, y)| (s + x * y) % p)
}

/// Whether z is within [`TOL`] of w (false for NaN).
fn near(z: C64, w: C64) -> bool {
    (z - w).norm_sqr() <= TOL * TOL
}

impl MubPlan {
    /// The plan of the set `kets` (n(n+1) kets of length n), when it has the
    /// structure of the module doc to within [`TOL`]; None otherwise. The
    /// tables of kets with the same bits, read before, are reused.
    pub fn detect(n: usize, kets: &[C64]) -> Option<MubPlan> {
        if prime_power(n).is_none() || kets.len() != n * (n + 1) * n {
            return None;
        }
        let (h1, h2) = fingerprint(kets);
        let key = (n, h1, h2);
        let cached = {
            let recent = RECENT.lock().unwrap_or_else(PoisonError::into_inner);
            recent.iter().find(|t| t.key == key).cloned()
        };
        let t = if let Some(t) = cached {
            t
        } else {
            let t = Arc::new(Tables::detect(n, kets, key)?);
            let mut recent = RECENT.lock().unwrap_or_else(PoisonError::into_inner);
            recent.insert(0, Arc::clone(&t));
            recent.truncate(KEEP);
            t
        };
        let zeros = || vec![ZERO; n * n];
        Some(MubPlan {
            sr: vec![0.0; if t.p == 2 { n * n } else { 0 }],
            t,
            rho: zeros(),
            d: zeros(),
            s: zeros(),
            tmp: zeros(),
        })
    }
}

impl Tables {
    /// The tables of `kets`, checked (module doc); None where they fail.
    fn detect(n: usize, kets: &[C64], key: (usize, u64, u64)) -> Option<Tables> {
        let (p, k) = prime_power(n)?;
        if n > usize::from(u16::MAX) {
            return None;
        }
        for (a, psi) in kets.chunks_exact(n).take(n).enumerate() {
            let one = |c| C64::new(if a == c { 1.0 } else { 0.0 }, 0.0);
            if !psi.iter().enumerate().all(|(c, &z)| near(z, one(c))) {
                return None;
            }
        }
        // Elements are below n ≤ u16::MAX (checked above): `try_from` never fails.
        let add = (0..n * n)
            .map(|x| {
                let d = digits(x / n, p, k).zip(digits(x % n, p, k));
                u16::try_from(from_digits(
                    d.map(|(a, b)| (a + b) % p).collect::<Vec<_>>().into_iter(),
                    p,
                ))
                .ok()
            })
            .collect::<Option<_>>()?;
        let neg = (0..n)
            .map(|a| {
                u16::try_from(from_digits(
                    digits(a, p, k)
                        .map(|x| (p - x) % p)
                        .collect::<Vec<_>>()
                        .into_iter(),
                    p,
                ))
                .ok()
            })
            .collect::<Option<_>>()?;
        let omega: Vec<C64> = (0..p)
            .map(|m| C64::from_polar(1.0, 2.0 * std::f64::consts::PI * m as f64 / p as f64))
            .collect();
        let dft = if k == 1 {
            (0..n * n).map(|i| omega[(i / n) * (i % n) % p]).collect()
        } else {
            (0..p * p).map(|i| omega[(i / p) * (i % p) % p]).collect()
        };
        let mut plan = Tables {
            key,
            n,
            p,
            k,
            phin: vec![ZERO; n * n],
            member: vec![0; n * n],
            gather: vec![0; n * n],
            add,
            neg,
            dft,
            omega,
        };
        // ⟨u, a⟩ for every u, a (row u).
        let dot: Vec<u16> = (0..n * n)
            .map(|i| u16::try_from(pairing(i / n, i % n, p, k)).ok())
            .collect::<Option<_>>()?;
        for b in 0..n {
            plan.read_basis(b, &kets[(n + b * n) * n..(n + (b + 1) * n) * n], &dot)?;
        }
        Some(plan)
    }

    /// φ_b, t_b and u_b of basis b (its n kets, row after row), checked.
    fn read_basis(&mut self, b: usize, kets: &[C64], dot: &[u16]) -> Option<()> {
        let n = self.n;
        let scale = (n as f64).sqrt();
        let psi0 = &kets[..n];
        if !psi0.iter().all(|z| (z.norm() * scale - 1.0).abs() <= TOL) {
            return None;
        }
        let phi: Vec<C64> = psi0.iter().map(|&z| z / psi0[0]).collect();
        let mut seen = vec![false; n];
        for (j, psi) in kets.chunks_exact(n).enumerate() {
            // |φ_b(a)| = 1 to within TOL (checked above): 1/φ = conj(φ).
            let r = 1.0 / psi[0];
            let t = self.character_of(dot, |a| psi[a] * r * phi[a].conj())?;
            if std::mem::replace(&mut seen[t], true) {
                return None;
            }
            self.member[b * n + j] = u32::try_from(t * n + b).ok()?; // below n² < 2^32
        }
        for delta in 0..n {
            let (add, back) = (&self.add, phi[delta].conj());
            let u = self.character_of(dot, |a| {
                phi[a].conj() * phi[usize::from(add[a * n + delta])] * back
            })?;
            self.gather[delta * n + b] = u32::try_from(u * n + delta).ok()?;
            self.phin[delta * n + b] = phi[delta] / n as f64;
        }
        Some(())
    }

    /// The u with f(a) = χ_u(a) for every a, if there is one: its digits
    /// from f at the digit unit vectors, then checked everywhere.
    fn character_of(&self, dot: &[u16], f: impl Fn(usize) -> C64) -> Option<usize> {
        let (n, p) = (self.n, self.p);
        let (mut u, mut place) = (0, 1);
        for _ in 0..self.k {
            let turns = f(place).arg() / (2.0 * std::f64::consts::PI) * p as f64;
            if !turns.is_finite() {
                return None;
            }
            // |turns| ≤ p/2 (arg is in [−π, π]) and p ≤ n ≤ u16::MAX: exact in i64.
            #[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
            let digit = (turns.round() as i64).rem_euclid(p as i64) as usize;
            u += digit * place;
            place *= p;
        }
        let dots = &dot[u * n..(u + 1) * n];
        dots.iter()
            .enumerate()
            .all(|(a, &e)| near(f(a), self.omega[usize::from(e)]))
            .then_some(u)
    }
}

impl MubPlan {
    /// ρ into the column-major buffer.
    fn load(&mut self, rho: MatRef<C64>) {
        let n = self.t.n;
        let cols = self.rho.chunks_exact_mut(n).enumerate();
        match rho.try_as_col_major() {
            Some(r) => cols.for_each(|(c, col)| col.copy_from_slice(r.col(c).as_slice())),
            None => cols.for_each(|(c, col)| {
                for (a, z) in col.iter_mut().enumerate() {
                    *z = rho[(a, c)];
                }
            }),
        }
    }

    /// p_k(ρ) for every k into `out` (module doc). Computed from ρ† (the
    /// same real parts ψ†ρψ), whose rows are ρ's columns.
    pub fn probs(&mut self, rho: MatRef<C64>, out: &mut [f64]) {
        let n = self.t.n;
        self.load(rho);
        for (a, o) in out.iter_mut().enumerate().take(n) {
            *o = self.rho[a * n + a].re;
        }
        // D[a, δ] = ρ†[a, a + δ] = conj(ρ[a + δ, a]).
        let cols = self.rho.chunks_exact(n);
        for (a, (row, col)) in self.d.chunks_exact_mut(n).zip(cols).enumerate() {
            if self.t.p == 2 {
                for (delta, z) in row.iter_mut().enumerate() {
                    *z = col[a ^ delta].conj();
                }
            } else {
                let add = &self.t.add[a * n..(a + 1) * n];
                for (z, &c) in row.iter_mut().zip(add) {
                    *z = col[usize::from(c)].conj();
                }
            }
        }
        self.transform(Buf::D);
        // S[δ, b] = φ_b(δ)·F(D)[u_b(δ), δ]/n.
        if self.t.p == 2 {
            for (s, (ph, &g)) in self
                .sr
                .iter_mut()
                .zip(self.t.phin.iter().zip(&self.t.gather))
            {
                let z = self.d[g as usize];
                *s = ph.re * z.re - ph.im * z.im;
            }
            walsh_hadamard_rows(&mut self.sr, n);
            for (o, &i) in out[n..].iter_mut().zip(&self.t.member) {
                *o = self.sr[i as usize];
            }
            return;
        }
        for (s, (ph, &g)) in self
            .s
            .iter_mut()
            .zip(self.t.phin.iter().zip(&self.t.gather))
        {
            *s = ph * self.d[g as usize];
        }
        self.transform(Buf::S);
        for (o, &i) in out[n..].iter_mut().zip(&self.t.member) {
            *o = self.s[i as usize].re;
        }
    }

    /// out = Σ_k wt_k Π_k (module doc), Hermitian to rounding.
    pub fn weighted_sum(&mut self, wt: &[f64], out: MatMut<C64>) {
        let n = self.t.n;
        // W[t_b(j), b] = w_{b,j}; then H = F(W), H[δ, b] = H_b[δ].
        self.d.fill(ZERO);
        if self.t.p == 2 {
            for (&i, &w) in self.t.member.iter().zip(&wt[n..]) {
                self.sr[i as usize] = w;
            }
            walsh_hadamard_rows(&mut self.sr, n);
            // V[u_b(δ), δ] += conj(φ_b(δ))·H_b[δ]/n (−δ = δ).
            let cells = self.t.phin.iter().zip(&self.t.gather).zip(&self.sr);
            for ((ph, &g), &h) in cells {
                self.d[g as usize] += ph.conj() * h;
            }
        } else {
            self.odd_v(wt);
        }
        self.transform(Buf::D);
        self.assemble(wt, out);
    }

    /// V[u_b(δ), δ] = Σ_b conj(φ_b(δ))·H_b[−δ]/n into `d` (zero), odd p.
    fn odd_v(&mut self, wt: &[f64]) {
        let n = self.t.n;
        for (&i, &w) in self.t.member.iter().zip(&wt[n..]) {
            self.s[i as usize] = C64::new(w, 0.0);
        }
        self.transform(Buf::S);
        let rows = self
            .t
            .phin
            .chunks_exact(n)
            .zip(self.t.gather.chunks_exact(n));
        for (delta, (phin, gather)) in rows.enumerate() {
            let m = if self.t.p == 2 {
                delta
            } else {
                usize::from(self.t.neg[delta])
            };
            let h = &self.s[m * n..(m + 1) * n];
            for ((ph, &g), &hb) in phin.iter().zip(gather).zip(h) {
                self.d[g as usize] += ph.conj() * hb;
            }
        }
    }

    /// out = R from F(V) in `d` and the computational basis' weights.
    fn assemble(&mut self, wt: &[f64], mut out: MatMut<C64>) {
        let n = self.t.n;
        // R[a, a + δ] = F(V_δ)[−a]; R[a + δ, a] is its conjugate, in column a.
        for (a, col) in self.rho.chunks_exact_mut(n).enumerate() {
            if self.t.p == 2 {
                let e = &self.d[a * n..(a + 1) * n];
                for (delta, &z) in e.iter().enumerate() {
                    col[a ^ delta] = z.conj();
                }
            } else {
                let m = usize::from(self.t.neg[a]);
                let (e, add) = (&self.d[m * n..(m + 1) * n], &self.t.add[a * n..(a + 1) * n]);
                for (&z, &c) in e.iter().zip(add) {
                    col[usize::from(c)] = z.conj();
                }
            }
        }
        for (a, &w) in wt.iter().enumerate().take(n) {
            self.rho[a * n + a] = C64::new(self.rho[a * n + a].re + w, 0.0);
        }
        let cols = self.rho.chunks_exact(n).enumerate();
        match out.rb_mut().try_as_col_major_mut() {
            Some(mut o) => {
                cols.for_each(|(c, col)| o.rb_mut().col_mut(c).as_slice_mut().copy_from_slice(col));
            }
            None => cols.for_each(|(c, col)| {
                for (a, &z) in col.iter().enumerate() {
                    out[(a, c)] = z;
                }
            }),
        }
    }

    /// Each column x of a row-major buffer (x[a] at a·n + c) ← F(x) (module
    /// doc): a length-p DFT along each base-p digit of the row index, whole
    /// rows at a time; butterflies for p = 2 (and p = 3, 5, 7 with k ≥ 2), one
    /// matrix product for k = 1.
    fn transform(&mut self, which: Buf) {
        let (n, p) = (self.t.n, self.t.p);
        let x = match which {
            Buf::D => &mut self.d,
            Buf::S => &mut self.s,
        };
        if p == 2 {
            walsh_hadamard_rows(x, n);
        } else if self.t.k == 1 {
            // Column-major, the buffer is Xᵀ: Xᵀ·F = (F·X)ᵀ (F symmetric).
            matmul(
                MatMut::from_column_major_slice_mut(&mut self.tmp, n, n),
                Accum::Replace,
                MatRef::from_column_major_slice(x, n, n),
                MatRef::from_column_major_slice(&self.t.dft, n, n),
                C64::new(1.0, 0.0),
                Par::Seq,
            );
            x.copy_from_slice(&self.tmp);
        } else {
            digit_dft_rows(x, n, p, &self.t.dft, &mut self.tmp[..2 * p * n]);
        }
    }
}

/// Which n × n buffer [`MubPlan::transform`] works on.
#[derive(Clone, Copy)]
enum Buf {
    D,
    S,
}

/// The Walsh–Hadamard transform (p = 2) of every column of the row-major
/// n-row buffer x: butterflies of whole rows i, i + h.
fn walsh_hadamard_rows<T>(x: &mut [T], n: usize)
where
    T: Copy + std::ops::Add<Output = T> + std::ops::Sub<Output = T>,
{
    let mut h = 1;
    while h < n {
        for blk in x.chunks_exact_mut(2 * h * n) {
            let (lo, hi) = blk.split_at_mut(h * n);
            for (u, v) in lo.iter_mut().zip(hi.iter_mut()) {
                let t = *u;
                *u = t + *v;
                *v = t - *v;
            }
        }
        h *= 2;
    }
}

/// F of every column of the row-major n-row buffer x by a length-p DFT
/// (`dft`, row-major p × p) along each base-p digit of the row index in
/// turn, whole rows at a time; `t` holds p rows.
fn digit_dft_rows(x: &mut [C64], n: usize, p: usize, dft: &[C64], t: &mut [C64]) {
    match p {
        5 => return odd_digit_rows::<5, 2>(x, n, dft),
        7 => return odd_digit_rows::<7, 3>(x, n, dft),
        _ => {}
    }
    let mut st = 1;
    while st < n {
        for hi in (0..n).step_by(st * p) {
            for o in hi..hi + st {
                if p == 3 {
                    radix3_rows(&mut x[o * n..(o + 2 * st + 1) * n], n, st);
                    continue;
                }
                let row = |m: usize| (o + m * st) * n..(o + m * st + 1) * n;
                let (out, sd) = t.split_at_mut(p * n);
                // s_m = r_m + r_{p−m}, d_m = r_m − r_{p−m}: ω^{vm}·r_m +
                // ω^{−vm}·r_{p−m} = cos·s_m + 𝑖·sin·d_m.
                for (m, pair) in (1..=p / 2).zip(sd.chunks_exact_mut(2 * n)) {
                    let (sm, dm) = pair.split_at_mut(n);
                    let (a, b) = (&x[row(m)], &x[row(p - m)]);
                    for (((s, d), &a), &b) in sm.iter_mut().zip(dm).zip(a).zip(b) {
                        (*s, *d) = (a + b, a - b);
                    }
                }
                for (v, y) in out.chunks_exact_mut(n).enumerate() {
                    y.copy_from_slice(&x[row(0)]);
                    for (m, pair) in (1..=p / 2).zip(sd.chunks_exact(2 * n)) {
                        let w = dft[v * p + m];
                        let (sm, dm) = pair.split_at(n);
                        for ((y, &s), &d) in y.iter_mut().zip(sm).zip(dm) {
                            *y += C64::new(w.re * s.re - w.im * d.im, w.re * s.im + w.im * d.re);
                        }
                    }
                }
                for (v, y) in out.chunks_exact(n).enumerate() {
                    x[row(v)].copy_from_slice(y);
                }
            }
        }
        st *= p;
    }
}

/// [`digit_dft_rows`] for p = `P` = 2·`H` + 1 (5, 7): a butterfly on
/// whole rows, [`radix_odd_rows`], per p-tuple of rows along each digit.
fn odd_digit_rows<const P: usize, const H: usize>(x: &mut [C64], n: usize, dft: &[C64]) {
    // w[v − 1][m − 1] = ω^{vm}, v, m = 1..=H.
    let w: [[C64; H]; H] =
        std::array::from_fn(|v| std::array::from_fn(|m| dft[(v + 1) * P + m + 1]));
    let mut st = 1;
    while st < n {
        for hi in (0..n).step_by(st * P) {
            for o in hi..hi + st {
                radix_odd_rows::<P, H>(&mut x[o * n..(o + (P - 1) * st + 1) * n], n, st, &w);
            }
        }
        st *= P;
    }
}

/// The length-`P` DFT (odd `P` = 2·`H` + 1) of rows 0, st, …, (P − 1)·st of
/// x (n long each), y_v = Σ_m ω^{vm} r_m, by the symmetric pairs m, P − m:
/// with s_m = r_m + r_{P−m} and d_m = r_m − r_{P−m}, y_0 = r_0 + Σ s_m and
/// y_v, y_{P−v} = A_v ± 𝑖·B_v, A_v = r_0 + Σ cos(2πvm/P)·s_m, B_v = Σ
/// sin(2πvm/P)·d_m (`w` = ω^{vm} for v, m = 1..=H).
#[allow(clippy::needless_range_loop)] // the column c indexes all P rows at once
fn radix_odd_rows<const P: usize, const H: usize>(
    x: &mut [C64],
    n: usize,
    st: usize,
    w: &[[C64; H]; H],
) {
    let mut blocks = x.chunks_mut(st * n);
    let rows: [&mut [C64]; P] =
        std::array::from_fn(|_| blocks.next().map_or(&mut [][..], |b| &mut b[..n]));
    for c in 0..n {
        let r0 = rows[0][c];
        let mut s = [ZERO; H];
        let mut d = [ZERO; H];
        for m in 0..H {
            let (a, b) = (rows[m + 1][c], rows[P - 1 - m][c]);
            (s[m], d[m]) = (a + b, a - b);
        }
        rows[0][c] = s.iter().fold(r0, |y, &s| y + s);
        for (v, wv) in w.iter().enumerate() {
            let (mut a, mut b) = (r0, ZERO);
            for ((wm, &sm), &dm) in wv.iter().zip(&s).zip(&d) {
                a += sm * wm.re;
                b += dm * wm.im;
            }
            let ib = C64::new(-b.im, b.re);
            rows[v + 1][c] = a + ib;
            rows[P - 1 - v][c] = a - ib;
        }
    }
}

/// The length-3 DFT of rows 0, st and 2·st of x (n long each):
/// y_v = Σ_m ω^{vm} r_m, ω = e^{2π𝑖/3} = −1/2 + 𝑖·√3/2.
fn radix3_rows(x: &mut [C64], n: usize, st: usize) {
    let h = 0.75f64.sqrt();
    let (r0, rest) = x.split_at_mut(st * n);
    let (r1, r2) = rest.split_at_mut(st * n);
    let rows = r0[..n].iter_mut().zip(&mut r1[..n]).zip(&mut r2[..n]);
    for ((a, b), c) in rows {
        let (sum, d) = (*b + *c, *b - *c);
        let m = *a - sum * 0.5;
        let id = C64::new(-h * d.im, h * d.re);
        *a += sum;
        *b = m + id;
        *c = m - id;
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
        let dims = (2..=32)
            .chain([49, 64])
            .filter(|&n| prime_power(n).is_some());
        for n in dims {
            assert_plan_matches(n, &mut rng);
        }
    }

    /// n = 125 = 5³: the radix-5 butterfly over three digits.
    #[test]
    fn plan_matches_the_kets_125() {
        assert_plan_matches(125, &mut rand::rngs::StdRng::seed_from_u64(12));
    }

    /// p_k and Σ w_kΠ_k of the plan against the direct sums over
    /// `Design::Mub`'s kets at n, to 1e-12 relative.
    fn assert_plan_matches(n: usize, rng: &mut impl Rng) {
        let kets = Design::Mub.kets(n);
        let mut plan = MubPlan::detect(n, &kets).unwrap_or_else(|| panic!("n = {n}"));
        let kc = n * (n + 1);
        let rho = random_rho(n, rng);
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

#[cfg(test)]
mod timing {
    use super::*;
    use crate::Design;
    use faer::Mat;
    use std::time::Instant;

    /// Milliseconds to read the tables (the first plan of a set), seconds
    /// per `probs`, per `weighted_sum`, and per n×n product:
    /// `cargo test --release -p qst-math --lib mub_fast::timing -- --ignored --nocapture`.
    #[test]
    #[ignore = "a timing report, not a check: run with --ignored --nocapture"]
    fn timing() {
        for n in [9, 16, 25, 27, 31, 32, 64, 128, 256] {
            let kets = Design::Mub.kets(n);
            let t = Instant::now();
            let Some(mut plan) = MubPlan::detect(n, &kets) else {
                panic!("n = {n}");
            };
            println!("n = {n}: detect {:.2} ms", t.elapsed().as_secs_f64() * 1e3);
            let rho = Mat::from_fn(n, n, |i, j| C64::new((i + j) as f64, i as f64 - j as f64));
            let mut out = vec![0.0; n * (n + 1)];
            let reps = 200_000 / n;
            let t = Instant::now();
            for _ in 0..reps {
                plan.probs(rho.as_ref(), &mut out);
            }
            let tp = t.elapsed().as_secs_f64() / reps as f64;
            let mut r = Mat::<C64>::zeros(n, n);
            let t = Instant::now();
            for _ in 0..reps {
                plan.weighted_sum(&out, r.as_mut());
            }
            let tw = t.elapsed().as_secs_f64() / reps as f64;
            let mut m = Mat::<C64>::zeros(n, n);
            let t = Instant::now();
            for _ in 0..reps {
                faer::linalg::matmul::matmul(
                    m.as_mut(),
                    faer::Accum::Replace,
                    rho.as_ref(),
                    r.as_ref(),
                    C64::new(1.0, 0.0),
                    faer::Par::Seq,
                );
            }
            let tm = t.elapsed().as_secs_f64() / reps as f64;
            println!(
                "n = {n}: probs {:.2} µs, weighted sum {:.2} µs, n×n product {:.2} µs",
                tp * 1e6,
                tw * 1e6,
                tm * 1e6
            );
        }
    }
}
