//! The likelihood of a projector set and its counts, shared by the L-BFGS
//! iteration ([`crate::mle`]) and the projected-gradient finish
//! ([`crate::apg`]): F = −ℓ/N at an unnormalized ρ̃, the normalized
//! probabilities q_k, and R = Σ (c_k/(N q_k)) Π_k.

use faer::{MatMut, MatRef};

use crate::projectors::{ProjWork, probs_into, weighted_sum_into};
use crate::vector;
use crate::{C64, Projectors};

/// One likelihood problem: a set, its counts c and 1/N, and W = G^{-1/2}.
pub(crate) struct Problem<'a> {
    pub proj: &'a Projectors<'a>,
    pub c: &'a [f64],
    pub ninv: f64,
    /// W = G^{-1/2}.
    pub w: MatRef<'a, C64>,
}

/// F = −Σ (c_k/N) ln q_k at ρ̃ (probabilities q_k = p_k(ρ̃)/T left in `q`),
/// and T = Σ p_k(ρ̃) = Tr(Gρ̃). None when a counted projector has q_k ≤ 0
/// (ℓ = −∞) or T is not a positive number.
pub(crate) fn objective(
    proj: &Projectors,
    c: &[f64],
    ninv: f64,
    rt: MatRef<C64>,
    q: &mut [f64],
    work: &mut ProjWork,
) -> Option<(f64, f64)> {
    probs_into(proj, rt, q, work);
    likelihood(c, ninv, q)
}

/// F and T from the probabilities p_k(ρ̃) in `q`, which become q_k = p_k/T.
fn likelihood(c: &[f64], ninv: f64, q: &mut [f64]) -> Option<(f64, f64)> {
    vector::zero_upper();
    let sum = vector::sum(q);
    if !(sum > 0.0 && sum.is_finite()) {
        return None;
    }
    let inv = 1.0 / sum;
    let mut f = 0.0;
    for (qk, &ck) in q.iter_mut().zip(c) {
        *qk *= inv;
        if ck > 0.0 {
            if qk.is_nan() || *qk <= 0.0 {
                return None;
            }
            f -= ck * ninv * qk.ln();
        }
    }
    Some((f, sum))
}

/// out = Σ_k (c_k/(N q_k)) Π_k = R (terms with c_k = 0 are 0).
pub(crate) fn r_matrix(
    proj: &Projectors,
    c: &[f64],
    ninv: f64,
    q: &[f64],
    wt: &mut [f64],
    out: MatMut<C64>,
    work: &mut ProjWork,
) {
    // Branch-free (it vectorizes): an uncounted projector's weight is
    // 0/max(q, tiny) = 0 even where q_k = 0; counted ones have q_k > 0.
    vector::zero_upper();
    for ((wk, &ck), &qk) in wt.iter_mut().zip(c).zip(q) {
        *wk = ck * ninv / qk.max(f64::MIN_POSITIVE);
    }
    weighted_sum_into(proj, wt, out, work);
}
