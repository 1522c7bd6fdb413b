//! `wls`: the gradient against central differences, noiseless recovery,
//! noisy data against every other density matrix offered (MLE, linear
//! inversion, random perturbations), the convexity certificate, and the
//! errors of a zero normalizer.

// `clippy::pedantic` is reviewed (docs/ARCHITECTURE.md, "Lints"); these do not fit:
#![allow(
    // Docs write formulas (p_k, ψ_k, ρ_true): math, not code names.
    clippy::doc_markdown,
    // Dimensions, counts and indices are far below 2^53: exact as f64.
    clippy::cast_precision_loss,
    // Linear algebra is named as in the reference: n, k, a, b, i, j, p, q.
    clippy::many_single_char_names
)]

mod common;

use common::*;
use qst_math::{
    C64, Design, Mat, MatRef, MathError, MleOptions, Projectors, WlsOptions, chi2, chi2_gradient,
    fidelity, linear, mle, probabilities, project_to_density, wls,
};
use rand::Rng;
use rand_distr::StandardNormal;

/// One test problem: a set in one of its forms, with its design.
struct Set {
    n: usize,
    design: Option<Design>,
    /// Kets (mub, sic) or dense data (custom); empty for nopovm.
    kets: Vec<C64>,
    dense: Vec<C64>,
}

impl Set {
    fn nopovm(n: usize) -> Set {
        Set {
            n,
            design: Some(Design::Nopovm),
            kets: vec![],
            dense: vec![],
        }
    }
    fn design(d: Design, n: usize) -> Set {
        Set {
            n,
            design: Some(d),
            kets: d.kets(n),
            dense: vec![],
        }
    }
    fn custom(n: usize, rng: &mut impl Rng) -> Set {
        Set {
            n,
            design: None,
            kets: vec![],
            dense: random_dense(n, rng),
        }
    }
    fn proj(&self) -> Projectors<'_> {
        match self.design {
            Some(Design::Nopovm) => Projectors::Nopovm { n: self.n },
            Some(_) => Projectors::Kets {
                n: self.n,
                kets: &self.kets,
            },
            None => Projectors::Dense {
                n: self.n,
                data: &self.dense,
            },
        }
    }
    fn name(&self) -> String {
        format!(
            "{} n={}",
            self.design.map_or("custom", |d| d.name()),
            self.n
        )
    }
    /// Counts with mean `shots`·p_k per basis (per set for one-group sets);
    /// noiseless (the means themselves) when `noisy` is false.
    fn counts(&self, rho: MatRef<C64>, shots: f64, noisy: bool, rng: &mut impl Rng) -> Vec<f64> {
        let p = probabilities(&self.proj(), rho);
        let scale = match self.design {
            Some(Design::Mub | Design::Nopovm) => shots,
            _ => shots / p.iter().sum::<f64>(),
        };
        let p: Vec<f64> = p.iter().map(|x| x * scale / shots).collect();
        if noisy {
            poisson_counts(&p, shots, rng)
        } else {
            p.iter().map(|x| x.max(0.0) * shots).collect()
        }
    }
}

fn chi(set: &Set, counts: &[f64], rho: MatRef<C64>) -> f64 {
    chi2(&set.proj(), counts, set.design, rho).unwrap()
}

fn gauss_herm(n: usize, rng: &mut impl Rng) -> Mat<C64> {
    let a = Mat::from_fn(n, n, |_, _| {
        c(
            rng.sample::<f64, _>(StandardNormal),
            rng.sample::<f64, _>(StandardNormal),
        )
    });
    Mat::from_fn(n, n, |i, j| (a[(i, j)] + a[(j, i)].conj()) * 0.5)
}

fn all_sets(rng: &mut impl Rng) -> Vec<Set> {
    vec![
        Set::nopovm(2),
        Set::nopovm(3),
        Set::nopovm(4),
        Set::design(Design::Mub, 2),
        Set::design(Design::Mub, 3),
        Set::design(Design::Mub, 4),
        Set::design(Design::Mub, 5),
        Set::design(Design::Sic, 2),
        Set::custom(3, rng),
    ]
}

#[test]
fn gradient_matches_central_differences() {
    let mut rng = rng(11);
    for set in [
        Set::nopovm(3),
        Set::nopovm(4),
        Set::design(Design::Mub, 3),
        Set::design(Design::Sic, 2),
        Set::custom(3, &mut rng),
    ] {
        let n = set.n;
        for _ in 0..3 {
            let truth = random_state(n, n, &mut rng);
            let counts = set.counts(truth.as_ref(), 500.0, true, &mut rng);
            let rho = random_state(n, n, &mut rng);
            let s = chi2_gradient(&set.proj(), &counts, set.design, rho.as_ref()).unwrap();
            // Tr(Sρ) = 0: χ² does not see the scale.
            let tr: f64 = (0..n)
                .flat_map(|i| (0..n).map(move |j| (i, j)))
                .map(|(i, j)| (s[(i, j)] * rho[(j, i)]).re)
                .sum();
            assert!(
                tr.abs() < 1e-9 * s.norm_l2(),
                "{}: Tr(Sρ) = {tr}",
                set.name()
            );
            let d = gauss_herm(n, &mut rng);
            let want: f64 = (0..n)
                .flat_map(|i| (0..n).map(move |j| (i, j)))
                .map(|(i, j)| (s[(i, j)] * d[(j, i)]).re)
                .sum();
            let h = 1e-6;
            let at = |t: f64| {
                let r = Mat::from_fn(n, n, |i, j| rho[(i, j)] + d[(i, j)] * t);
                chi(&set, &counts, r.as_ref())
            };
            let got = (at(h) - at(-h)) / (2.0 * h);
            assert!(
                (got - want).abs() <= 1e-6 * (1.0 + want.abs()),
                "{}: central difference {got} vs gradient {want}",
                set.name()
            );
        }
    }
}

#[test]
fn noiseless_data_are_fit_exactly() {
    let mut rng = rng(12);
    for set in all_sets(&mut rng) {
        let n = set.n;
        for rank in [1, 2, n] {
            let truth = random_state(n, rank, &mut rng);
            let counts = set.counts(truth.as_ref(), 1e4, false, &mut rng);
            let r = wls(&set.proj(), &counts, set.design, &WlsOptions::default()).unwrap();
            assert_density(r.rho.as_ref(), 1e-9);
            let fid = fidelity(r.rho.as_ref(), truth.as_ref());
            assert!(
                r.objective < 1e-9 && fid >= 0.9999,
                "{} rank {rank}: χ² {:e}, fidelity {fid}, {} iterations",
                set.name(),
                r.objective,
                r.iterations
            );
        }
    }
}

#[test]
fn noisy_data_beat_every_offered_state() {
    let mut rng = rng(13);
    for set in all_sets(&mut rng) {
        let n = set.n;
        for rank in [1, n] {
            let truth = random_state(n, rank, &mut rng);
            let counts = set.counts(truth.as_ref(), 1e3, true, &mut rng);
            let proj = set.proj();
            let r = wls(&proj, &counts, set.design, &WlsOptions::default()).unwrap();
            let name = format!("{} rank {rank}", set.name());
            assert_density(r.rho.as_ref(), 1e-9);
            assert!(r.converged, "{name}: gap {:e}, χ² {:e}", r.gap, r.objective);
            let own = chi(&set, &counts, r.rho.as_ref());
            assert!(
                (own - r.objective).abs() <= 1e-12 * own,
                "{name}: objective {} but χ² {own}",
                r.objective
            );
            // 1e-9 relative, and rounding where χ² can reach 0 (n² counts of
            // n² unknowns).
            let beats = |x: f64| r.objective <= x * (1.0 + 1e-9) + 1e-25;
            let m = mle(&proj, &counts, &MleOptions::default()).unwrap();
            let l = linear(&proj, &counts, set.design).unwrap();
            for (what, other) in [("mle", m.rho), ("linear", l)] {
                let x = chi(&set, &counts, other.as_ref());
                assert!(beats(x), "{name}: χ²(wls) {} > χ²({what}) {x}", r.objective);
                // The certificate bounds the distance to the optimum.
                if matches!(set.design, Some(Design::Mub | Design::Nopovm)) {
                    assert!(r.objective - x <= r.gap, "{name}: certificate vs {what}");
                }
            }
            for i in 0..200 {
                let eps = [1e-2, 1e-4, 1e-6][i % 3];
                let d = gauss_herm(n, &mut rng);
                let x = Mat::from_fn(n, n, |a, b| r.rho[(a, b)] + d[(a, b)] * eps);
                let p = project_to_density(x.as_ref()).unwrap();
                let v = chi(&set, &counts, p.as_ref());
                assert!(
                    beats(v),
                    "{name}: perturbation {i} (ε {eps}) has χ² {v} < {}",
                    r.objective
                );
            }
        }
    }
}

#[test]
fn certificate_bounds_the_gap_to_random_states() {
    let mut rng = rng(14);
    for set in [
        Set::nopovm(3),
        Set::nopovm(5),
        Set::design(Design::Mub, 3),
        Set::design(Design::Mub, 4),
    ] {
        let n = set.n;
        let truth = random_state(n, 1, &mut rng);
        let counts = set.counts(truth.as_ref(), 2e3, true, &mut rng);
        // A loose tolerance: the bound must hold at any iterate.
        let loose = WlsOptions {
            max_iters: 100_000,
            tol: 1e-2,
        };
        for opts in [loose, WlsOptions::default()] {
            let r = wls(&set.proj(), &counts, set.design, &opts).unwrap();
            let g = chi2_gradient(&set.proj(), &counts, set.design, r.rho.as_ref()).unwrap();
            let ev = g.self_adjoint_eigenvalues(faer::Side::Lower).unwrap();
            assert!((-ev[0] - r.gap).abs() <= 1e-9 * (r.gap + 1e-12) + 1e-14);
            for rank in [1, 2, n] {
                let s = random_state(n, rank, &mut rng);
                let x = chi(&set, &counts, s.as_ref());
                assert!(r.objective - x <= r.gap * (1.0 + 1e-9));
            }
        }
    }
}

#[test]
fn zero_normalizers_are_errors() {
    let set = Set::design(Design::Mub, 3);
    let mut counts = vec![5.0; 12];
    for c in &mut counts[6..9] {
        *c = 0.0;
    }
    let e = wls(&set.proj(), &counts, set.design, &WlsOptions::default()).unwrap_err();
    assert_eq!(
        e,
        MathError::EmptyGroup {
            group: 2,
            first: 6,
            last: 8
        }
    );
    assert!(e.to_string().contains("projectors 6..=8"), "{e}");

    let set = Set::nopovm(3);
    let mut counts = vec![5.0; 9];
    for c in &mut counts[..3] {
        *c = 0.0;
    }
    let e = wls(&set.proj(), &counts, set.design, &WlsOptions::default()).unwrap_err();
    assert_eq!(e, MathError::EmptyScale { first: 0, last: 2 });
    assert!(e.to_string().contains("projectors 0..=2"), "{e}");
    let rho = random_state(3, 3, &mut rng(1));
    assert!(chi2(&set.proj(), &counts, set.design, rho.as_ref()).is_err());
    assert!(matches!(
        wls(&set.proj(), &[1.0; 4], set.design, &WlsOptions::default()),
        Err(MathError::CountsLength { .. })
    ));
    let wrong = Mat::<C64>::zeros(2, 2);
    assert!(matches!(
        chi2(&set.proj(), &[1.0; 9], set.design, wrong.as_ref()),
        Err(MathError::RhoShape { .. })
    ));
}

/// Iterations and time per job (`cargo test --release -p qst-math --test wls
/// -- --ignored --nocapture`).
#[test]
#[ignore = "a timing report, not a check: run with --ignored --nocapture"]
fn timing() {
    let mut rng = rng(15);
    for n in [4usize, 8, 16, 32] {
        let mut sets = vec![Set::nopovm(n)];
        if Design::Mub.check_dim(n).is_ok() {
            sets.push(Set::design(Design::Mub, n));
        }
        for set in sets {
            for (label, rank) in [("pure", 1), ("mixed", n)] {
                let truth = random_state(n, rank, &mut rng);
                let k = set.proj().count() as f64;
                let groups = match set.design {
                    Some(Design::Mub) => (n + 1) as f64,
                    _ => k / n as f64,
                };
                // ~1e4 counts in all.
                let counts = set.counts(truth.as_ref(), 1e4 / groups, true, &mut rng);
                let t0 = std::time::Instant::now();
                let r = wls(&set.proj(), &counts, set.design, &WlsOptions::default()).unwrap();
                let dt = t0.elapsed().as_secs_f64();
                println!(
                    "{:>10} {label:>5}: {:6} iterations, {:8.3} ms, converged {}, χ² {:.6e}, gap {:.1e}, F {:.4}",
                    set.name(),
                    r.iterations,
                    dt * 1e3,
                    r.converged,
                    r.objective,
                    r.gap,
                    fidelity(r.rho.as_ref(), truth.as_ref())
                );
            }
        }
    }
}

/// Many random problems: every one converges and beats the MLE's and the
/// linear ρ (`-- --ignored --nocapture stress`).
#[test]
#[ignore = "slow: many random problems, run with --ignored --nocapture stress"]
fn stress() {
    let mut rng = rng(16);
    let mut worst = 0u64;
    let mut sets = all_sets(&mut rng);
    sets.extend([
        Set::nopovm(8),
        Set::nopovm(16),
        Set::design(Design::Mub, 8),
        Set::design(Design::Mub, 16),
        Set::custom(4, &mut rng),
    ]);
    for set in &sets {
        let n = set.n;
        let mut sum_it = 0u64;
        let mut slow = 0.0f64;
        for trial in 0..12 {
            let rank = [1, 1, 2, n][trial % 4];
            let truth = random_state(n, rank, &mut rng);
            let noisy = trial % 3 != 0;
            let shots = [100.0, 1e4, 1e6][trial % 3];
            let counts = set.counts(truth.as_ref(), shots, noisy, &mut rng);
            let proj = set.proj();
            let t0 = std::time::Instant::now();
            let r = wls(&proj, &counts, set.design, &WlsOptions::default()).unwrap();
            slow = slow.max(t0.elapsed().as_secs_f64());
            let name = format!("{} trial {trial} rank {rank} noisy {noisy}", set.name());
            if !r.converged {
                println!(
                    "not converged: {name}: gap {:e}, χ² {:e}, {} it",
                    r.gap, r.objective, r.iterations
                );
            }
            let m = mle(&proj, &counts, &MleOptions::default()).unwrap();
            let l = linear(&proj, &counts, set.design).unwrap();
            for other in [m.rho, l] {
                let x = chi(set, &counts, other.as_ref());
                assert!(
                    r.objective <= x * (1.0 + 1e-9) + 1e-25,
                    "{name}: {} > {x}",
                    r.objective
                );
            }
            if !noisy {
                assert!(fidelity(r.rho.as_ref(), truth.as_ref()) >= 0.9999, "{name}");
            }
            sum_it += r.iterations;
            worst = worst.max(r.iterations);
        }
        println!(
            "{:>12}: mean {:6.0} iterations, slowest {:8.2} ms",
            set.name(),
            sum_it as f64 / 12.0,
            slow * 1e3
        );
    }
    println!("most iterations: {worst}");
}
