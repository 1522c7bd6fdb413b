//! The MLE's vector arithmetic: n×n complex matrices stored flat (column
//! major) as `[C64]`, with the real inner product ⟨a, b⟩ = Re Tr(a†b) — the
//! L-BFGS dot products and axpys. The kernels run over the interleaved reals,
//! written so that the compiler vectorizes them (eight independent partial
//! sums), and are compiled twice on x86-64: for the baseline and for AVX2,
//! picked at run time. Both compute the same sums in the same order (no fused
//! multiply-add is introduced), so results do not depend on the machine.

use crate::C64;

/// ⟨a, b⟩ = Re Tr(a†b): the real inner product the iteration works in.
pub(crate) fn dot(a: &[C64], b: &[C64]) -> f64 {
    dot_reals(reals(a), reals(b))
}

/// y ← y + s·x.
pub(crate) fn axpy(s: f64, x: &[C64], y: &mut [C64]) {
    axpy_reals(s, reals(x), reals_mut(y));
}

/// y ← y + s·x, and ⟨z, y⟩ of the updated y, in one pass.
pub(crate) fn axpy_dot(s: f64, x: &[C64], y: &mut [C64], z: &[C64]) -> f64 {
    axpy_dot_reals(s, reals(x), reals_mut(y), reals(z))
}

/// out ← s·x.
pub(crate) fn scaled_copy(s: f64, x: &[C64], out: &mut [C64]) {
    for (o, v) in out.iter_mut().zip(x) {
        *o = v * s;
    }
}

/// out ← a − b; returns (‖out‖², ‖a‖²), in one pass.
pub(crate) fn diff_norms(a: &[C64], b: &[C64], out: &mut [C64]) -> (f64, f64) {
    diff_norms_reals(reals(a), reals(b), reals_mut(out))
}

/// A complex slice as its interleaved (re, im) reals.
fn reals(x: &[C64]) -> &[f64] {
    // SAFETY: `Complex<f64>` is `#[repr(C)]` { re, im }: the slice is 2·len
    // f64s with f64's alignment, borrowed for as long as `x`.
    unsafe { std::slice::from_raw_parts(x.as_ptr().cast::<f64>(), 2 * x.len()) }
}

/// [`reals`] of a mutable slice.
fn reals_mut(x: &mut [C64]) -> &mut [f64] {
    // SAFETY: as in `reals`; the borrow of `x` is handed on.
    unsafe { std::slice::from_raw_parts_mut(x.as_mut_ptr().cast::<f64>(), 2 * x.len()) }
}

/// out ← a + s·d.
pub(crate) fn step(a: &[C64], s: f64, d: &[C64], out: &mut [C64]) {
    for ((o, av), dv) in out.iter_mut().zip(a).zip(d) {
        *o = av + dv * s;
    }
}

/// d ← s·d.
pub(crate) fn scale(s: f64, d: &mut [C64]) {
    for v in reals_mut(d) {
        *v *= s;
    }
}

/// Clears the upper halves of the vector registers (`vzeroupper`) when the
/// CPU has AVX. faer's wider kernels can return with them dirty; code
/// compiled for the baseline (SSE encodings) then pays a transition penalty
/// on every vector instruction — at n = 32 it made each `ln` of the
/// likelihood ~10× slower (glibc's `log` is VEX-encoded). Called before the
/// likelihood's scalar loops.
#[inline]
pub(crate) fn zero_upper() {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX (checked just above); vzeroupper only
        // clears the upper halves of registers no live value occupies here.
        unsafe { avx2::zero_upper() }
    }
}

/// Σ x_i·y_i.
fn dot_reals(x: &[f64], y: &[f64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { avx2::dot(x, y) };
    }
    dot_body(x, y)
}

/// Σ x_i (eight partial sums; no dispatch needed).
pub(crate) fn sum(x: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let xc = x.chunks_exact(8);
    for v in xc.remainder() {
        acc[0] += v;
    }
    for v in xc {
        for i in 0..8 {
            acc[i] += v[i];
        }
    }
    sum8(acc)
}

/// y ← y + s·x.
fn axpy_reals(s: f64, x: &[f64], y: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { avx2::axpy(s, x, y) };
    }
    axpy_body(s, x, y);
}

/// y ← y + s·x, then Σ z_i·y_i of the updated y, in one pass.
fn axpy_dot_reals(s: f64, x: &[f64], y: &mut [f64], z: &[f64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { avx2::axpy_dot(s, x, y, z) };
    }
    axpy_dot_body(s, x, y, z)
}

/// out ← a − b; returns (Σ out_i², Σ a_i²), in one pass.
fn diff_norms_reals(a: &[f64], b: &[f64], out: &mut [f64]) -> (f64, f64) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { avx2::diff_norms(a, b, out) };
    }
    diff_norms_body(a, b, out)
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    #[target_feature(enable = "avx")]
    pub(super) fn zero_upper() {
        std::arch::x86_64::_mm256_zeroupper();
    }
    #[target_feature(enable = "avx2")]
    pub(super) fn diff_norms(a: &[f64], b: &[f64], out: &mut [f64]) -> (f64, f64) {
        super::diff_norms_body(a, b, out)
    }
    #[target_feature(enable = "avx2")]
    pub(super) fn dot(x: &[f64], y: &[f64]) -> f64 {
        super::dot_body(x, y)
    }
    #[target_feature(enable = "avx2")]
    pub(super) fn axpy(s: f64, x: &[f64], y: &mut [f64]) {
        super::axpy_body(s, x, y);
    }
    #[target_feature(enable = "avx2")]
    pub(super) fn axpy_dot(s: f64, x: &[f64], y: &mut [f64], z: &[f64]) -> f64 {
        super::axpy_dot_body(s, x, y, z)
    }
}

fn sum8(a: [f64; 8]) -> f64 {
    ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))
}

// Inlined into each `avx2` wrapper, so that its body is compiled for AVX2 there.
#[allow(clippy::inline_always)]
#[inline(always)]
fn dot_body(x: &[f64], y: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let (xc, yc) = (x.chunks_exact(8), y.chunks_exact(8));
    for (a, b) in xc.remainder().iter().zip(yc.remainder()) {
        acc[0] += a * b;
    }
    for (a, b) in xc.zip(yc) {
        for i in 0..8 {
            acc[i] += a[i] * b[i];
        }
    }
    sum8(acc)
}

// Inlined into each `avx2` wrapper, so that its body is compiled for AVX2 there.
#[allow(clippy::inline_always)]
#[inline(always)]
fn axpy_body(s: f64, x: &[f64], y: &mut [f64]) {
    for (yv, xv) in y.iter_mut().zip(x) {
        *yv += xv * s;
    }
}

// Inlined into each `avx2` wrapper, so that its body is compiled for AVX2 there.
#[allow(clippy::inline_always)]
#[inline(always)]
fn axpy_dot_body(s: f64, x: &[f64], y: &mut [f64], z: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let (mut yc, xc, zc) = (y.chunks_exact_mut(8), x.chunks_exact(8), z.chunks_exact(8));
    for ((yv, xv), zv) in yc.by_ref().zip(xc.clone()).zip(zc.clone()) {
        let mut t = [0.0f64; 8];
        for i in 0..8 {
            t[i] = yv[i] + xv[i] * s;
            acc[i] += zv[i] * t[i];
        }
        yv.copy_from_slice(&t);
    }
    let rest = yc
        .into_remainder()
        .iter_mut()
        .zip(xc.remainder())
        .zip(zc.remainder());
    for ((yv, xv), zv) in rest {
        *yv += xv * s;
        acc[0] += zv * *yv;
    }
    sum8(acc)
}

// Inlined into each `avx2` wrapper, so that its body is compiled for AVX2 there.
#[allow(clippy::inline_always)]
#[inline(always)]
fn diff_norms_body(a: &[f64], b: &[f64], out: &mut [f64]) -> (f64, f64) {
    let (mut dd, mut aa) = ([0.0f64; 8], [0.0f64; 8]);
    let (mut oc, ac, bc) = (
        out.chunks_exact_mut(8),
        a.chunks_exact(8),
        b.chunks_exact(8),
    );
    for ((ov, av), bv) in oc.by_ref().zip(ac.clone()).zip(bc.clone()) {
        let mut t = [0.0f64; 8];
        for i in 0..8 {
            t[i] = av[i] - bv[i];
            dd[i] += t[i] * t[i];
            aa[i] += av[i] * av[i];
        }
        ov.copy_from_slice(&t);
    }
    let rest = oc
        .into_remainder()
        .iter_mut()
        .zip(ac.remainder())
        .zip(bc.remainder());
    for ((ov, av), bv) in rest {
        *ov = av - bv;
        dd[0] += *ov * *ov;
        aa[0] += av * av;
    }
    (sum8(dd), sum8(aa))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatched_and_baseline_agree_bit_for_bit() {
        for len in [0, 1, 7, 8, 9, 31, 512, 515] {
            let x: Vec<f64> = (0..len).map(|i| (i as f64 * 0.37).sin()).collect();
            let z: Vec<f64> = (0..len).map(|i| (i as f64 * 0.11).cos()).collect();
            let naive: f64 = x.iter().zip(&z).map(|(a, b)| a * b).sum();
            assert!((dot_reals(&x, &z) - naive).abs() <= 1e-12 * (1.0 + naive.abs()));
            assert_eq!(dot_reals(&x, &z).to_bits(), dot_body(&x, &z).to_bits());
            let total: f64 = x.iter().sum();
            assert!((sum(&x) - total).abs() <= 1e-12 * (1.0 + total.abs()));
            let (mut y1, mut y2) = (z.clone(), z.clone());
            let a = axpy_dot_reals(0.5, &x, &mut y1, &x);
            let b = axpy_dot_body(0.5, &x, &mut y2, &x);
            assert_eq!(a.to_bits(), b.to_bits());
            assert_eq!(y1, y2);
            let want: Vec<f64> = z.iter().zip(&x).map(|(zv, xv)| zv + 0.5 * xv).collect();
            assert_eq!(y1, want);
            axpy_reals(-0.5, &x, &mut y1);
            axpy_body(-0.5, &x, &mut y2);
            assert_eq!(y1, y2);
            let (mut o1, mut o2) = (vec![0.0; len], vec![0.0; len]);
            let (d1, a1) = diff_norms_reals(&x, &z, &mut o1);
            let (d2, a2) = diff_norms_body(&x, &z, &mut o2);
            assert_eq!((d1.to_bits(), a1.to_bits()), (d2.to_bits(), a2.to_bits()));
            assert_eq!(o1, o2);
            let want: Vec<f64> = x.iter().zip(&z).map(|(a, b)| a - b).collect();
            assert_eq!(o1, want);
            let dd: f64 = want.iter().map(|v| v * v).sum();
            assert!((d1 - dd).abs() <= 1e-12 * (1.0 + dd));
        }
    }
}
