//! Builds, re-checks and verifies `nopovm` files, printing seconds and the
//! peak resident memory (VmHWM): shows that even n = 128 (4 GiB) is written
//! and verified without holding it in memory.
//!
//! `cargo run --release -p qst-store --example build_timing -- DIR 32 64 128`

use qst_math::Design;
use std::time::Instant;

use qst_store::{Store, StoreConfig};

/// A `/proc/self/status` figure in MiB (`VmHWM`: peak resident, mapped file
/// pages included; `RssAnon`: resident heap and stacks now).
fn status_mib(key: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: build_timing DIR N...")?;
    let store = Store::new(StoreConfig {
        dir: dir.into(),
        max_bytes: u64::MAX,
    });
    for n in args {
        let n: usize = n.parse()?;
        let t = Instant::now();
        let p = store.prepare(Design::Nopovm, n)?;
        let build = t.elapsed().as_secs_f64();
        let peak_after_build = status_mib("VmHWM:");
        let t = Instant::now();
        let again = store.prepare(Design::Nopovm, n)?;
        let check = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let bad = store
            .verify()?
            .into_iter()
            .filter(|r| r.problem.is_some())
            .count();
        let verify = t.elapsed().as_secs_f64();
        println!(
            "n={n} bytes={} first={:?} {build:.2}s; re-check={:?} {check:.4}s; verify(all files)={verify:.2}s bad={bad}; peak RSS after build {peak_after_build:.1} MiB, after verify {:.1} MiB (mapped file pages), RssAnon {:.1} MiB",
            Store::file_len(Design::Nopovm, n).unwrap_or(0),
            p.action,
            again.action,
            status_mib("VmHWM:"),
            status_mib("RssAnon:")
        );
    }
    Ok(())
}
