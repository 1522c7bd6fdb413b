//! Tests of the projector store with real files, real processes (this test
//! binary re-executed as a child) and real numpy.

#![allow(
    // Test indices and byte counts are far below 2^53: exact as f64.
    clippy::cast_precision_loss,
    // (k, a, b) are the indices Π_k[a, b] of docs/designs.md.
    clippy::many_single_char_names
)]

mod cache;
mod disk;
mod numpy;
mod processes;

use std::path::Path;

use qst_math::C64;
use qst_store::{Store, StoreConfig};

/// A store over `dir` with a budget of `max_bytes`.
pub(crate) fn store(dir: &Path, max_bytes: u64) -> Store {
    Store::new(StoreConfig {
        dir: dir.to_path_buf(),
        max_bytes,
    })
}

/// The kets of docs/designs.md, written out here independently of qst-math.
pub(crate) fn reference_kets(n: usize) -> Vec<Vec<C64>> {
    let s = std::f64::consts::FRAC_1_SQRT_2;
    let mut kets = Vec::new();
    for k in 0..n {
        let mut e = vec![C64::new(0.0, 0.0); n];
        e[k] = C64::new(1.0, 0.0);
        kets.push(e);
    }
    for i in 0..n {
        for j in i + 1..n {
            let mut plus = vec![C64::new(0.0, 0.0); n];
            plus[i] = C64::new(s, 0.0);
            plus[j] = C64::new(s, 0.0);
            let mut minus = vec![C64::new(0.0, 0.0); n];
            minus[i] = C64::new(s, 0.0);
            minus[j] = C64::new(0.0, -s);
            kets.push(plus);
            kets.push(minus);
        }
    }
    kets
}

/// The dense (n², n, n) set built from [`reference_kets`]: Π[a, b] = ψ[a]·conj(ψ[b]).
pub(crate) fn reference_dense(n: usize) -> Vec<C64> {
    let mut out = Vec::with_capacity(n * n * n * n);
    for psi in reference_kets(n) {
        for a in 0..n {
            for b in 0..n {
                out.push(psi[a] * psi[b].conj());
            }
        }
    }
    out
}

/// The largest entrywise difference of two sets.
pub(crate) fn max_diff(a: &[C64], b: &[C64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).norm())
        .fold(0.0, f64::max)
}

/// File names in `dir`, sorted.
pub(crate) fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
