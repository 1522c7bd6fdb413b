//! Writes `DIR/cases.json`: `wls` runs on simulated data (nopovm n = 2, 3, 4
//! and mub n = 3; noisy, pure, nearly pure and mixed states) for
//! `tests/py/wls_check.py`, an independent scipy minimizer, to check.
//!
//! `cargo run --release -p qst-math --example wls_cases -- DIR`
//!
//! Each case: `design` ("nopovm"/"mub"), `n`, `counts`, `rho` as
//! `[[[re, im], …], …]` (row major), `objective` (χ² at `rho`),
//! `converged`, `iterations`.

// `clippy::pedantic` is reviewed (docs/ARCHITECTURE.md, "Lints"); these do not fit:
#![allow(
    // Dimensions, counts and indices are far below 2^53: exact as f64.
    clippy::cast_precision_loss
)]

use std::fmt::Write as _;
use std::process::ExitCode;

use qst_math::{C64, Design, Mat, WlsOptions, probabilities, wls};
use rand::{Rng, SeedableRng, rngs::StdRng};
use rand_distr::{Distribution, Poisson, StandardNormal};

/// ρ = (1 − mix)·AA†/Tr + mix·I/n, A Gaussian n×rank.
fn state(n: usize, rank: usize, mix: f64, rng: &mut StdRng) -> Mat<C64> {
    let a = Mat::from_fn(n, rank, |_, _| {
        C64::new(
            rng.sample::<f64, _>(StandardNormal),
            rng.sample::<f64, _>(StandardNormal),
        )
    });
    let m = &a * a.adjoint();
    let tr: f64 = (0..n).map(|i| m[(i, i)].re).sum();
    Mat::from_fn(n, n, |i, j| {
        let d = if i == j { mix / n as f64 } else { 0.0 };
        m[(i, j)] * ((1.0 - mix) / tr) + C64::new(d, 0.0)
    })
}

fn json_f64(x: f64) -> String {
    // Rust's shortest round-trip form; JSON has no NaN or infinity.
    if x.is_finite() {
        format!("{x:?}")
    } else {
        "null".to_string()
    }
}

fn main() -> ExitCode {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: wls_cases DIR");
        return ExitCode::from(2);
    };
    let mut rng = StdRng::seed_from_u64(20_240_611);
    // (design, n, rank, mix, shots per basis)
    let cases = [
        (Design::Nopovm, 2, 2, 0.0, 1000.0),
        (Design::Nopovm, 3, 1, 0.0, 2000.0),
        (Design::Nopovm, 3, 3, 0.0, 500.0),
        (Design::Nopovm, 4, 1, 0.02, 3000.0),
        (Design::Nopovm, 4, 4, 0.0, 1000.0),
        (Design::Mub, 3, 1, 0.0, 2000.0),
        (Design::Mub, 3, 3, 0.0, 500.0),
        (Design::Mub, 3, 1, 0.01, 100.0),
    ];
    let mut out = String::from("[\n");
    for (i, &(design, n, rank, mix, shots)) in cases.iter().enumerate() {
        let truth = state(n, rank, mix, &mut rng);
        let kets = design.kets(n);
        let proj = design.projectors(n, &kets);
        let p = probabilities(&proj, truth.as_ref());
        let counts: Vec<f64> = p
            .iter()
            .map(|&x| {
                let m = x.max(0.0) * shots;
                if m > 0.0 {
                    Poisson::new(m).map_or(0.0, |d| d.sample(&mut rng))
                } else {
                    0.0
                }
            })
            .collect();
        let r = match wls(&proj, &counts, Some(design), &WlsOptions::default()) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("case {i}: wls failed: {e}");
                return ExitCode::FAILURE;
            }
        };
        let counts_s: Vec<String> = counts.iter().map(|&c| json_f64(c)).collect();
        let rows: Vec<String> = (0..n)
            .map(|a| {
                let row: Vec<String> = (0..n)
                    .map(|b| {
                        let z = r.rho[(a, b)];
                        format!("[{}, {}]", json_f64(z.re), json_f64(z.im))
                    })
                    .collect();
                format!("[{}]", row.join(", "))
            })
            .collect();
        let _ = writeln!(
            out,
            "  {{\"design\": \"{}\", \"n\": {n}, \"counts\": [{}], \"rho\": [{}], \"objective\": {}, \"converged\": {}, \"iterations\": {}}}{}",
            design.name(),
            counts_s.join(", "),
            rows.join(", "),
            json_f64(r.objective),
            r.converged,
            r.iterations,
            if i + 1 < cases.len() { "," } else { "" }
        );
    }
    out.push_str("]\n");
    let path = std::path::Path::new(&dir).join("cases.json");
    if let Err(e) = std::fs::write(&path, out) {
        eprintln!("could not write {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    println!("wrote {} cases to {}", cases.len(), path.display());
    ExitCode::SUCCESS
}
