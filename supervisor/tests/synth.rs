//! `synth::generate` writes batches whose counts follow docs/reference.md for their
//! truths: checked here against p_k computed with the explicit formula
//! p_k = Σ_{a,b} Π_k[a,b] ρ[b,a], with Π_k built from docs/designs.md in this file.

// `clippy::pedantic` is reviewed (docs/ARCHITECTURE.md, "Lints"); these do not fit:
#![allow(
    // Formulas in the docs (p_k, Π_k[a,b]) are math notation, not code.
    clippy::doc_markdown,
    // The dimensions read back are the small ones this file generated.
    clippy::cast_possible_truncation
)]

use std::path::Path;

use qst_supervisor::{GenSpec, StateKind, generate};
use serde_json::Value;

type C = (f64, f64);

fn mul(x: C, y: C) -> C {
    (x.0 * y.0 - x.1 * y.1, x.0 * y.1 + x.1 * y.0)
}

/// The kets of docs/designs.md, built here independently.
fn kets(n: usize) -> Vec<Vec<C>> {
    let s = 1.0 / 2f64.sqrt();
    let mut out = Vec::new();
    for k in 0..n {
        let mut v = vec![(0.0, 0.0); n];
        v[k] = (1.0, 0.0);
        out.push(v);
    }
    for i in 0..n {
        for j in i + 1..n {
            let mut v = vec![(0.0, 0.0); n];
            v[i] = (s, 0.0);
            v[j] = (s, 0.0);
            out.push(v);
            let mut v = vec![(0.0, 0.0); n];
            v[i] = (s, 0.0);
            v[j] = (0.0, -s); // −𝑖/√2
            out.push(v);
        }
    }
    out
}

/// p_k = Σ_{a,b} Π_k[a,b] ρ[b,a] with Π_k[a,b] = ψ[a]·conj(ψ[b]).
fn probs(n: usize, rho: &[C]) -> Vec<f64> {
    kets(n)
        .iter()
        .map(|psi| {
            let mut p = (0.0, 0.0);
            for a in 0..n {
                for b in 0..n {
                    let pi_ab = mul(psi[a], (psi[b].0, -psi[b].1));
                    let t = mul(pi_ab, rho[b * n + a]);
                    p = (p.0 + t.0, p.1 + t.1);
                }
            }
            assert!(p.1.abs() < 1e-12, "p_k must be real, got {p:?}");
            p.0
        })
        .collect()
}

fn read_truth(path: &Path, n: usize) -> Vec<C> {
    qst_npy::read_matrix(path, n)
        .unwrap()
        .iter()
        .map(|z| (z.re, z.im))
        .collect()
}

fn purity(n: usize, rho: &[C]) -> f64 {
    // Tr ρ² = Σ |ρ[a,b]|² for Hermitian ρ.
    let _ = n;
    rho.iter().map(|z| z.0 * z.0 + z.1 * z.1).sum()
}

#[test]
fn generated_counts_follow_spec_probabilities_of_their_truths() {
    let tmp = tempfile::tempdir().unwrap();
    let batch = tmp.path().join("syn.jsonl");
    let shots = 1e10;
    let spec = GenSpec {
        dims: vec![2, 3, 5],
        per_dim: 4,
        shots,
        seed: 42,
    };
    assert_eq!(generate(&batch, &spec).unwrap(), 12);
    let text = std::fs::read_to_string(&batch).unwrap();
    let jobs: Vec<Value> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(jobs.len(), 12);
    let mut linear = 0;
    for (idx, job) in jobs.iter().enumerate() {
        let n = job["dim"].as_u64().unwrap() as usize;
        let i = idx % 4;
        assert_eq!(job["id"], format!("n{n}-{i:04}"));
        if job["method"] == "linear" {
            linear += 1;
        } else {
            assert_eq!(job["method"], "mle");
        }
        let truth_rel = job["truth"].as_str().unwrap();
        assert!(!Path::new(truth_rel).is_absolute());
        let rho = read_truth(&tmp.path().join(truth_rel), n);
        // A density matrix: Hermitian, trace 1.
        let tr: f64 = (0..n).map(|a| rho[a * n + a].0).sum();
        assert!((tr - 1.0).abs() < 1e-12);
        for a in 0..n {
            for b in 0..n {
                let (x, y) = (rho[a * n + b], rho[b * n + a]);
                assert!((x.0 - y.0).abs() < 1e-12 && (x.1 + y.1).abs() < 1e-12);
            }
        }
        let pur = purity(n, &rho);
        match StateKind::of(i) {
            StateKind::Pure => assert!((pur - 1.0).abs() < 1e-9, "pure state purity {pur}"),
            StateKind::Mixed => assert!(pur < 0.999, "mixed state purity {pur}"),
            // Rank ⌈n/2⌉: pure for n = 2, mixed above.
            StateKind::RankDeficient if n == 2 => assert!((pur - 1.0).abs() < 1e-9),
            StateKind::RankDeficient => assert!(pur < 0.999, "rank-deficient purity {pur}"),
        }
        let counts: Vec<f64> = job["counts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_f64().unwrap())
            .collect();
        let p = probs(n, &rho);
        assert_eq!(counts.len(), p.len());
        let total: f64 = p.iter().sum();
        for (k, (&c, &pk)) in counts.iter().zip(&p).enumerate() {
            let mean = shots * pk / total;
            // Poisson: within 6 standard deviations (seeded, so deterministic).
            assert!(
                (c - mean).abs() <= 6.0 * mean.sqrt() + 1.0,
                "job {} count {k}: {c} vs mean {mean}",
                job["id"]
            );
        }
    }
    assert_eq!(linear, 3, "every fourth job is linear");
}

#[test]
fn the_same_seed_gives_the_same_batch_and_another_seed_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = GenSpec {
        dims: vec![2, 4],
        per_dim: 2,
        shots: 1000.0,
        seed: 7,
    };
    let a = tmp.path().join("a.jsonl");
    let b = tmp.path().join("b.jsonl");
    let c = tmp.path().join("c.jsonl");
    generate(&a, &spec).unwrap();
    generate(&b, &spec).unwrap();
    generate(
        &c,
        &GenSpec {
            seed: 8,
            ..spec.clone()
        },
    )
    .unwrap();
    let body = |p: &Path| {
        std::fs::read_to_string(p)
            .unwrap()
            .replace("b_truth/", "a_truth/")
            .replace("c_truth/", "a_truth/")
    };
    assert_eq!(body(&a), body(&b));
    assert_ne!(body(&a), body(&c));
}

#[test]
fn bad_specs_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x.jsonl");
    let e = generate(
        &out,
        &GenSpec {
            dims: vec![1],
            per_dim: 1,
            shots: 10.0,
            seed: 0,
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("dimension 1"), "{e}");
    let e = generate(
        &out,
        &GenSpec {
            dims: vec![2],
            per_dim: 1,
            shots: f64::NAN,
            seed: 0,
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("--shots"), "{e}");
    assert!(!out.exists());
}
