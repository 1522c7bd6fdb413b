//! The built-in designs: named projector sets with a fixed order and groups
//! (`nopovm`, `mub`, `sic`). Everything the rest of qst knows about a design
//! (its name, dimensions, K, groups, cache file name and kets) is here, so a
//! new design touches this module and its tests, not the pipeline.

mod field;
mod mub;
mod nopovm;

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{C64, Projectors};

pub use field::prime_power;
pub use nopovm::{nopovm_ket, nopovm_slice};

/// A built-in design.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Design {
    /// n² rank-1 projectors: the computational basis, then per pair i < j
    /// (e_i + e_j)/√2 and (e_i − 𝑖e_j)/√2. One group.
    Nopovm,
    /// n + 1 mutually unbiased bases (n a prime power ≤ 256), n(n+1) projectors.
    Mub,
    /// The qubit SIC-POVM: 4 elements ψψ†/2 (n = 2). One group.
    Sic,
}

/// Every built-in design, in the order help texts list them.
pub const DESIGNS: [Design; 3] = [Design::Nopovm, Design::Mub, Design::Sic];

/// A design that cannot take a dimension: one sentence.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DesignError(pub String);

impl Design {
    /// The name used in batches, results and file names.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Design::Nopovm => "nopovm",
            Design::Mub => "mub",
            Design::Sic => "sic",
        }
    }

    /// Whether the design exists for dimension n; the error says why not.
    ///
    /// # Errors
    /// A [`DesignError`] naming why the design has no dimension n.
    pub fn check_dim(self, n: usize) -> Result<(), DesignError> {
        let ok = match self {
            Design::Nopovm => n >= 2,
            Design::Mub => prime_power(n).is_some() && n <= field::MAX_ORDER,
            Design::Sic => n == 2,
        };
        if ok {
            return Ok(());
        }
        Err(DesignError(match self {
            Design::Nopovm => format!("nopovm needs a dimension of at least 2, not {n}"),
            Design::Mub if n > field::MAX_ORDER && prime_power(n).is_some() => format!(
                "mub is built in for prime-power dimensions up to {}; {n} is larger (use a custom projector file)",
                field::MAX_ORDER
            ),
            Design::Mub => format!("mub needs a prime-power dimension; {n} is not"),
            Design::Sic => format!("sic is built in for dimension 2 only, not {n}"),
        }))
    }

    /// K, the number of projectors at dimension n (`None` on overflow).
    #[must_use]
    pub fn count(self, n: usize) -> Option<usize> {
        match self {
            Design::Nopovm => n.checked_mul(n),
            Design::Mub => n.checked_mul(n.checked_add(1)?),
            Design::Sic => Some(4),
        }
    }

    /// The dimension whose K is `k`, if any.
    #[must_use]
    pub fn dim_for_count(self, k: usize) -> Option<usize> {
        let n = match self {
            // n² = k, and for `mub` n(n+1) = k: n = ⌊√k⌋ (n² ≤ k < (n+1)²).
            Design::Nopovm | Design::Mub => k.isqrt(),
            Design::Sic => 2,
        };
        (self.count(n) == Some(k) && self.check_dim(n).is_ok()).then_some(n)
    }

    /// The groups (complete bases measured together) as ranges of projector
    /// indices; linear inversion and `wls` normalize counts per group.
    #[must_use]
    pub fn groups(self, n: usize) -> Vec<Range<usize>> {
        match self {
            Design::Nopovm | Design::Sic => {
                std::iter::once(0..self.count(n).unwrap_or(0)).collect()
            }
            Design::Mub => (0..=n).map(|g| g * n..(g + 1) * n).collect(),
        }
    }

    /// The cache file name, `{design}_n{n}.npy`.
    #[must_use]
    pub fn file_name(self, n: usize) -> String {
        format!("{}_n{n}.npy", self.name())
    }

    /// The design and dimension of a cache file name `{design}_n{n}.npy`.
    #[must_use]
    pub fn parse_file_name(name: &str) -> Option<(Design, usize)> {
        let stem = name.strip_suffix(".npy")?;
        let (design, digits) = stem.rsplit_once("_n")?;
        let design: Design = design.parse().ok()?;
        if digits.is_empty()
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || digits.starts_with('0')
        {
            return None;
        }
        Some((design, digits.parse().ok()?))
    }

    /// The kets ψ_k, `kets[k*n..(k+1)*n]`, with Π_k = ψ_kψ_k† (for `sic`
    /// E_k = ψψ†/2 is ψ/√2 here).
    ///
    /// # Panics
    /// If the design lacks dimension n (check with [`Design::check_dim`] first).
    #[must_use]
    pub fn kets(self, n: usize) -> Vec<C64> {
        if let Err(e) = self.check_dim(n) {
            panic!("{e}");
        }
        match self {
            Design::Nopovm => (0..n * n).flat_map(|k| nopovm_ket(n, k)).collect(),
            Design::Mub => match mub::kets(n) {
                Some(k) => k,
                None => unreachable!("check_dim admits only dimensions with a field"),
            },
            Design::Sic => sic_kets(),
        }
    }

    /// Π_k into `out` (n², C order) from this design's `kets`; for `nopovm`
    /// its exact formula (bit-identical to numpy's ψψ†).
    pub fn slice(self, n: usize, kets: &[C64], k: usize, out: &mut [C64]) {
        if self == Design::Nopovm {
            return nopovm_slice(n, k, out);
        }
        let psi = &kets[k * n..(k + 1) * n];
        for (a, row) in out.chunks_exact_mut(n).enumerate() {
            for (b, z) in row.iter_mut().enumerate() {
                *z = psi[a] * psi[b].conj();
            }
        }
    }

    /// The fastest form of the set for the math: `nopovm` as itself (no
    /// kets), the others from `kets` (as returned by [`Design::kets`]).
    #[must_use]
    pub fn projectors(self, n: usize, kets: &[C64]) -> Projectors<'_> {
        match self {
            Design::Nopovm => Projectors::Nopovm { n },
            Design::Mub | Design::Sic => Projectors::Kets { n, kets },
        }
    }

    /// Whether this design keeps kets in memory for [`Design::projectors`].
    #[must_use]
    pub fn needs_kets(self) -> bool {
        self != Design::Nopovm
    }

    /// Whether the set is a complete set of mutually unbiased bases (a tight
    /// frame: Σ_k Tr(Π_k X)Π_k = X + Tr(X)·I), which linear inversion solves
    /// in closed form.
    #[must_use]
    pub fn is_complete_mub(self) -> bool {
        self == Design::Mub
    }
}

impl fmt::Display for Design {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Design {
    type Err = DesignError;
    fn from_str(s: &str) -> Result<Design, DesignError> {
        DESIGNS.into_iter().find(|d| d.name() == s).ok_or_else(|| {
            let known: Vec<String> = DESIGNS.iter().map(|d| format!("\"{d}\"")).collect();
            DesignError(format!(
                "unknown design {s:?} (known: {})",
                known.join(", ")
            ))
        })
    }
}

/// ψ_0 = |0⟩, ψ_m = (|0⟩ + √2·ω^(m−1)|1⟩)/√3 (ω = e^{2π𝑖/3}), each times
/// 1/√2 so that ψψ† = E_k.
fn sic_kets() -> Vec<C64> {
    let h = 1.0 / 2f64.sqrt();
    let mut out = vec![C64::new(h, 0.0), C64::new(0.0, 0.0)];
    let a = 1.0 / 3f64.sqrt();
    for m in 1..4 {
        let w = C64::from_polar(1.0, 2.0 * std::f64::consts::PI * f64::from(m - 1) / 3.0);
        out.push(C64::new(a * h, 0.0));
        out.push(w * (2f64.sqrt() * a * h));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inner(a: &[C64], b: &[C64]) -> C64 {
        a.iter().zip(b).map(|(x, y)| x.conj() * y).sum()
    }

    /// Orthonormal within each group, unbiased (|⟨ψ|φ⟩|² = 1/n) across groups,
    /// for every supported n up to 32 and a sample above.
    #[test]
    fn mub_bases_are_orthonormal_and_mutually_unbiased() {
        let dims: Vec<usize> = (2..=32)
            .filter(|&n| Design::Mub.check_dim(n).is_ok())
            .chain([49, 64, 81])
            .collect();
        for n in dims {
            let kets = Design::Mub.kets(n);
            let psi = |k: usize| &kets[k * n..(k + 1) * n];
            let k_all = n * (n + 1);
            assert_eq!(kets.len(), k_all * n);
            // Spot every pair for small n, a stride of pairs above.
            let step = if n <= 16 { 1 } else { 7 };
            for i in (0..k_all).step_by(step) {
                for j in (0..k_all).step_by(step) {
                    let v = inner(psi(i), psi(j)).norm_sqr();
                    let want = if i / n != j / n {
                        1.0 / n as f64
                    } else if i == j {
                        1.0
                    } else {
                        0.0
                    };
                    assert!((v - want).abs() < 1e-12, "n={n} ψ{i}·ψ{j}: {v} vs {want}");
                }
            }
        }
    }

    /// The largest fields (p = 2, 3, 5 and prime 251): sampled pairs.
    #[test]
    fn large_mub_sets_are_unbiased_on_sampled_pairs() {
        for n in [125usize, 128, 243, 251, 256] {
            let kets = Design::Mub.kets(n);
            let k_all = n * (n + 1);
            let psi = |k: usize| &kets[k * n..(k + 1) * n];
            let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ n as u64;
            let mut next = || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                usize::try_from(x % k_all as u64).unwrap()
            };
            for _ in 0..3000 {
                let (i, j) = (next(), next());
                // Also a pair inside one group.
                let j2 = (i / n) * n + (j % n);
                for (a, b) in [(i, j), (i, j2)] {
                    let v = inner(psi(a), psi(b)).norm_sqr();
                    let want = if a / n != b / n {
                        1.0 / n as f64
                    } else if a == b {
                        1.0
                    } else {
                        0.0
                    };
                    assert!((v - want).abs() < 1e-12, "n={n} ψ{a}·ψ{b}: {v} vs {want}");
                }
            }
        }
    }

    #[test]
    fn mub_n2_matches_the_written_example() {
        let s = 1.0 / 2f64.sqrt();
        let want = [
            [(1.0, 0.0), (0.0, 0.0)],
            [(0.0, 0.0), (1.0, 0.0)],
            [(s, 0.0), (s, 0.0)],
            [(s, 0.0), (-s, 0.0)],
            [(s, 0.0), (0.0, -s)],
            [(s, 0.0), (0.0, s)],
        ];
        let kets = Design::Mub.kets(2);
        for (k, w) in want.iter().enumerate() {
            for a in 0..2 {
                let z = kets[k * 2 + a];
                assert!(
                    (z.re - w[a].0).abs() < 1e-15 && (z.im - w[a].1).abs() < 1e-15,
                    "ψ{k}[{a}] = {z}"
                );
            }
        }
    }

    #[test]
    fn sic_is_a_povm() {
        let kets = Design::Sic.kets(2);
        let mut g = [C64::new(0.0, 0.0); 4];
        let mut s = [C64::new(0.0, 0.0); 4];
        for k in 0..4 {
            Design::Sic.slice(2, &kets, k, &mut s);
            for i in 0..4 {
                g[i] += s[i];
            }
        }
        for (i, z) in g.iter().enumerate() {
            let want = if i == 0 || i == 3 { 1.0 } else { 0.0 };
            assert!(
                (z.re - want).abs() < 1e-15 && z.im.abs() < 1e-15,
                "ΣE[{i}] = {z}"
            );
        }
    }

    #[test]
    fn dims_counts_names() {
        assert_eq!(Design::Mub.dim_for_count(12), Some(3));
        assert_eq!(Design::Mub.dim_for_count(42), None); // n = 6 is not a prime power
        assert_eq!(Design::Nopovm.dim_for_count(16), Some(4));
        assert_eq!(Design::Nopovm.dim_for_count(12), None);
        assert_eq!(Design::Sic.dim_for_count(4), Some(2));
        assert_eq!(
            Design::Mub.check_dim(6).unwrap_err().0,
            "mub needs a prime-power dimension; 6 is not"
        );
        assert!(Design::Mub.check_dim(257).is_err());
        assert!(Design::Mub.check_dim(512).is_err());
        assert_eq!(
            Design::parse_file_name("mub_n9.npy"),
            Some((Design::Mub, 9))
        );
        assert_eq!(Design::parse_file_name("nopovm_n08.npy"), None);
        assert_eq!("sic".parse::<Design>(), Ok(Design::Sic));
        assert!("mubs".parse::<Design>().unwrap_err().0.contains("\"mub\""));
        assert_eq!(Design::Mub.groups(3), vec![0..3, 3..6, 6..9, 9..12]);
    }
}
