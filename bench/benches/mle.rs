//! Criterion benches: one MLE iteration, and a whole MLE job to the default
//! certificate, for `nopovm` at n = 4 … 64 (128 with QST_BENCH_BIG=1).

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use qst_math::{MleOptions, mle};

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
            b.iter(|| mle(&qst_bench::nopovm(n), &counts, &opts))
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
            b.iter(|| mle(&qst_bench::nopovm(n), &counts, &MleOptions::default()))
        });
    }
    g.finish();
}

criterion_group!(benches, iteration, job);
criterion_main!(benches);
