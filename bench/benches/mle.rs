//! Criterion benches, `nopovm` at n = 4 … 64 (128 with `QST_BENCH_BIG=1`):
//! MLE iterations without set-up (the time of 20 fixed iterations minus
//! that of 10, on a reused scratch: 10 iterations), 10 fixed iterations of
//! `mle()` with its set-up, and a whole job to the default certificate.

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use qst_math::{MleOptions, MleScratch, mle, mle_with_scratch};

fn dims() -> Vec<usize> {
    let mut d = vec![4, 8, 16, 32, 64];
    if std::env::var_os("QST_BENCH_BIG").is_some() {
        d.push(128);
    }
    d
}

fn iteration(c: &mut Criterion) {
    let mut g = c.benchmark_group("mle_10_iterations");
    g.sample_size(10);
    for n in dims() {
        let counts = qst_bench::counts_for(n);
        let opts = MleOptions {
            max_iters: 10,
            fixed_iterations: true,
            ..Default::default()
        };
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| mle(&qst_bench::nopovm(n), &counts, &opts));
        });
    }
    g.finish();
}

fn iterations_without_setup(c: &mut Criterion) {
    let mut g = c.benchmark_group("mle_10_iterations_without_setup");
    g.sample_size(10);
    for n in dims() {
        let counts = qst_bench::counts_for(n);
        let proj = qst_bench::nopovm(n);
        let mut scratch = MleScratch::new(&proj).expect("nopovm is informationally complete");
        let fixed = |k| MleOptions {
            max_iters: k,
            fixed_iterations: true,
            ..Default::default()
        };
        let (ten, twenty) = (fixed(10), fixed(20));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter_custom(|reps| {
                let mut total = Duration::ZERO;
                for _ in 0..reps {
                    let t = Instant::now();
                    let _ = mle_with_scratch(&proj, &counts, &twenty, &mut scratch);
                    let long = t.elapsed();
                    let t = Instant::now();
                    let _ = mle_with_scratch(&proj, &counts, &ten, &mut scratch);
                    total += long.saturating_sub(t.elapsed());
                }
                total
            });
        });
    }
    g.finish();
}

fn job(c: &mut Criterion) {
    let mut g = c.benchmark_group("mle_job");
    g.sample_size(10);
    for n in dims() {
        let counts = qst_bench::counts_for(n);
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| mle(&qst_bench::nopovm(n), &counts, &MleOptions::default()));
        });
    }
    g.finish();
}

criterion_group!(benches, iterations_without_setup, iteration, job);
criterion_main!(benches);
