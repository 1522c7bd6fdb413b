//! The finite field GF(p^k) for n = p^k ≤ 256, as the `mub` design numbers it:
//! an element is an integer a in [0, n) whose base-p digits a_0 + a_1·p + …
//! are the coefficients of a_0 + a_1·x + …; addition is digit-wise mod p,
//! multiplication is polynomial multiplication mod p and mod the field
//! polynomial.

/// The field polynomials x^k + f_{k−1}x^{k−1} + … + f_0, as (n, [f_0 … f_{k−1}]).
/// Conway polynomials, except n = 9 (x² + 1, the lab's convention).
const POLYNOMIALS: &[(usize, &[u32])] = &[
    (4, &[1, 1]),                     // x²+x+1
    (8, &[1, 1, 0]),                  // x³+x+1
    (9, &[1, 0]),                     // x²+1
    (16, &[1, 1, 0, 0]),              // x⁴+x+1
    (25, &[2, 4]),                    // x²+4x+2
    (27, &[1, 2, 0]),                 // x³+2x+1
    (32, &[1, 0, 1, 0, 0]),           // x⁵+x²+1
    (49, &[3, 6]),                    // x²+6x+3
    (64, &[1, 1, 0, 1, 1, 0]),        // x⁶+x⁴+x³+x+1
    (81, &[2, 0, 0, 2]),              // x⁴+2x³+2
    (121, &[2, 7]),                   // x²+7x+2
    (125, &[3, 3, 0]),                // x³+3x+3
    (128, &[1, 1, 0, 0, 0, 0, 0]),    // x⁷+x+1
    (169, &[2, 12]),                  // x²+12x+2
    (243, &[1, 2, 0, 0, 0]),          // x⁵+2x+1
    (256, &[1, 0, 1, 1, 1, 0, 0, 0]), // x⁸+x⁴+x³+x²+1
];

/// The largest dimension the field tables cover.
pub const MAX_ORDER: usize = 256;

/// n = p^k with p prime, if it is one (and 2 ≤ n).
#[must_use]
pub fn prime_power(n: usize) -> Option<(usize, u32)> {
    if n < 2 {
        return None;
    }
    let p = (2..=n).find(|d| n.is_multiple_of(*d))?;
    let (mut m, mut k) = (n, 0);
    while m.is_multiple_of(p) {
        m /= p;
        k += 1;
    }
    (m == 1).then_some((p, k))
}

/// GF(p^k) with its multiplication and trace tables.
pub struct Field {
    pub p: u32,
    pub k: u32,
    pub n: usize,
    mul: Vec<u16>,
    trace: Vec<u8>,
}

impl Field {
    /// The field of order n, if n is a prime power ≤ [`MAX_ORDER`].
    pub fn new(n: usize) -> Option<Field> {
        let (p, k) = prime_power(n)?;
        if n > MAX_ORDER {
            return None;
        }
        let p = u32::try_from(p).ok()?; // p ≤ n ≤ MAX_ORDER
        let poly: &[u32] = if k == 1 {
            &[]
        } else {
            POLYNOMIALS.iter().find(|(m, _)| *m == n)?.1
        };
        let mut mul = vec![0u16; n * n];
        for a in 0..n {
            for b in a..n {
                #[allow(clippy::cast_possible_truncation)] // below n ≤ MAX_ORDER = 256
                let c = poly_mul(a, b, p, k, poly) as u16;
                mul[a * n + b] = c;
                mul[b * n + a] = c;
            }
        }
        let mut field = Field {
            p,
            k,
            n,
            mul,
            trace: Vec::new(),
        };
        field.trace = (0..n)
            .map(|a| {
                // Tr(a) = a + a^p + … + a^(p^(k−1)), an element of GF(p).
                let (mut sum, mut pw) = (0, a);
                for _ in 0..k {
                    sum = field.add(sum, pw);
                    pw = field.pow(pw, p);
                }
                u8::try_from(sum).expect("a trace lies in the prime field, below p ≤ 2^8")
            })
            .collect();
        Some(field)
    }

    /// a + b (digit-wise mod p).
    pub fn add(&self, a: usize, b: usize) -> usize {
        let p = self.p as usize;
        let (mut a, mut b, mut out, mut place) = (a, b, 0, 1);
        for _ in 0..self.k {
            out += ((a % p + b % p) % p) * place;
            a /= p;
            b /= p;
            place *= p;
        }
        out
    }

    /// a · b.
    pub fn mul(&self, a: usize, b: usize) -> usize {
        self.mul[a * self.n + b] as usize
    }

    /// a^e.
    pub fn pow(&self, a: usize, e: u32) -> usize {
        (0..e).fold(1, |acc, _| self.mul(acc, a))
    }

    /// Tr(a) in {0 … p−1}.
    pub fn trace(&self, a: usize) -> u32 {
        u32::from(self.trace[a])
    }
}

/// (a · b) mod p mod f, elements as base-p integers.
fn poly_mul(a: usize, b: usize, p: u32, k: u32, f: &[u32]) -> usize {
    let (p, k) = (p as usize, k as usize);
    let digits = |mut x: usize| {
        let mut d = vec![0usize; k];
        for v in &mut d {
            *v = x % p;
            x /= p;
        }
        d
    };
    let (da, db) = (digits(a), digits(b));
    let mut prod = vec![0usize; 2 * k];
    for (i, &x) in da.iter().enumerate() {
        for (j, &y) in db.iter().enumerate() {
            prod[i + j] = (prod[i + j] + x * y) % p;
        }
    }
    // x^k = −(f_0 + f_1 x + … + f_{k−1} x^{k−1}); reduce from the top.
    for d in (k..2 * k).rev() {
        let top = prod[d];
        if top == 0 {
            continue;
        }
        prod[d] = 0;
        for (i, &fi) in f.iter().enumerate() {
            let sub = top * fi as usize % p;
            prod[d - k + i] = (prod[d - k + i] + p - sub) % p;
        }
    }
    prod[..k].iter().rev().fold(0, |acc, &d| acc * p + d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every nonzero element has an inverse: the polynomial is irreducible
    /// and the tables form a field; the trace is additive and onto GF(p).
    #[test]
    fn every_table_is_a_field() {
        for n in 2..=MAX_ORDER {
            let Some(f) = Field::new(n) else {
                assert!(prime_power(n).is_none(), "no field for prime power {n}");
                continue;
            };
            for a in 1..n {
                assert!(
                    (1..n).any(|b| f.mul(a, b) == 1),
                    "{a} has no inverse in GF({n})"
                );
            }
            for a in 0..n {
                for b in 0..n {
                    assert_eq!(f.trace(f.add(a, b)), (f.trace(a) + f.trace(b)) % f.p);
                }
            }
            assert!((0..n).any(|a| f.trace(a) == 1), "trace is zero on GF({n})");
        }
    }

    #[test]
    fn prime_powers() {
        assert_eq!(prime_power(9), Some((3, 2)));
        assert_eq!(prime_power(256), Some((2, 8)));
        assert_eq!(prime_power(7), Some((7, 1)));
        assert_eq!(prime_power(6), None);
        assert_eq!(prime_power(1), None);
        // n = 9: x² = −1, i.e. x·x = 2 (the element 2 + 0·x).
        let f = Field::new(9).unwrap();
        assert_eq!(f.mul(3, 3), 2);
    }
}
