use qst_math::{C64, Mat, MleOptions, Projectors, fidelity, mle, probabilities};
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
fn main() {
    let a: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|s| s.parse().ok())
        .collect();
    let (n, rank, iters, seed) = (
        a[0],
        a[1],
        a[2] as u64,
        a.get(3).copied().unwrap_or(7) as u64,
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let m = Mat::from_fn(n, rank, |_, _| {
        C64::new(
            rng.sample::<f64, _>(StandardNormal),
            rng.sample::<f64, _>(StandardNormal),
        )
    });
    let m = &m * m.adjoint();
    let tr: f64 = (0..n).map(|i| m[(i, i)].re).sum();
    let truth = Mat::from_fn(n, n, |i, j| m[(i, j)] / tr);
    let proj = Projectors::Nopovm { n };
    let p: Vec<f64> = probabilities(&proj, truth.as_ref())
        .iter()
        .map(|x| x.max(0.0))
        .collect();
    let r = mle(
        &proj,
        &p,
        &MleOptions {
            max_iters: iters,
            ..Default::default()
        },
    )
    .unwrap();
    println!(
        "iters={} conv={} bound={:.3e} F={:.10}",
        r.iterations,
        r.converged,
        r.bound,
        fidelity(r.rho.as_ref(), truth.as_ref())
    );
}
