//! Times `validate_dense` on the dense `nopovm` set of the given dimensions:
//! `cargo run --release -p qst-math --example validate_timing -- 8 16 32`.

use std::time::Instant;

use qst_math::{C64, nopovm_slice, validate_dense};

fn main() {
    for n in std::env::args()
        .skip(1)
        .filter_map(|s| s.parse::<usize>().ok())
    {
        let nn = n * n;
        let mut data = vec![C64::new(0.0, 0.0); nn * nn];
        for (k, chunk) in data.chunks_mut(nn).enumerate() {
            nopovm_slice(n, k, chunk);
        }
        let t = Instant::now();
        let r = validate_dense(n, &data);
        println!(
            "n={n}: validate_dense {:?} in {:.3}s",
            r.is_ok(),
            t.elapsed().as_secs_f64()
        );
    }
}
