//! `qst demo`: a synthetic batch (dimensions 2 to 32, known truths, simulated
//! counts) written into the output directory and run through the real pool;
//! then a per-dimension table (jobs, mean fidelity, mean seconds).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::errors::Fatal;
use crate::results::RESULTS_FILE;
use crate::run::{RunOptions, RunReport, run};
use crate::synth::{GenSpec, generate};

/// The demo batch's file name inside the output directory.
pub const DEMO_BATCH: &str = "demo.jsonl";

/// The embedded default batch.
pub fn demo_spec() -> GenSpec {
    GenSpec {
        dims: vec![2, 3, 4, 6, 8, 12, 16, 24, 32],
        per_dim: 6,
        shots: 1e6,
        seed: 20_240_601,
    }
}

/// What `qst demo` takes.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    pub out: PathBuf,
    pub workers: Option<usize>,
    pub cache: Option<PathBuf>,
    pub quiet: bool,
}

/// One row of the demo's table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DimRow {
    pub dim: usize,
    pub jobs: u64,
    pub ok: u64,
    pub mean_fidelity: Option<f64>,
    pub mean_seconds: Option<f64>,
}

/// Runs the demo; returns the run's report and the table's rows.
pub fn demo(opts: &DemoOptions) -> Result<(RunReport, Vec<DimRow>), Fatal> {
    prepare_dir(&opts.out)?;
    let batch = opts.out.join(DEMO_BATCH);
    let jobs = generate(&batch, &demo_spec()).map_err(Fatal)?;
    if !opts.quiet {
        crate::say!("qst demo: {jobs} synthetic jobs in {}", batch.display());
    }
    let mut ro = RunOptions::new(&batch);
    ro.out = Some(opts.out.clone());
    ro.workers = opts.workers;
    ro.cache = opts.cache.clone();
    ro.quiet = opts.quiet;
    let report = run(&ro)?;
    let rows = table_rows(&report.out_dir.join(RESULTS_FILE))?;
    Ok((report, rows))
}

/// An existing output directory is reused only if an earlier demo made it
/// (it holds `demo.jsonl`); anything else non-empty is refused.
fn prepare_dir(out: &Path) -> Result<(), Fatal> {
    match fs::read_dir(out) {
        Ok(mut entries) => {
            if out.join(DEMO_BATCH).is_file() {
                fs::remove_dir_all(out).map_err(|e| {
                    Fatal::to(format!("clear the earlier demo in {}: {e}", out.display()))
                })?;
            } else if entries.next().is_some() {
                return Err(Fatal::to(format!(
                    "use {} for the demo: it exists, is not empty and no demo made it; pass another --out",
                    out.display()
                )));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(Fatal::to(format!(
                "read the output directory {}: {e}",
                out.display()
            )));
        }
    }
    fs::create_dir_all(out).map_err(|e| {
        Fatal::to(format!(
            "create the output directory {}: {e}",
            out.display()
        ))
    })
}

/// Per-dimension rows from `results.jsonl`.
pub fn table_rows(results: &Path) -> Result<Vec<DimRow>, Fatal> {
    let f =
        File::open(results).map_err(|e| Fatal::to(format!("read {}: {e}", results.display())))?;
    #[derive(Default)]
    struct Acc {
        jobs: u64,
        ok: u64,
        fid: (f64, u64),
        sec: (f64, u64),
    }
    let mut by_dim: BTreeMap<usize, Acc> = BTreeMap::new();
    for line in BufReader::new(f).lines() {
        let line = line.map_err(|e| Fatal::to(format!("read {}: {e}", results.display())))?;
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let Some(dim) = v.get("dim").and_then(|d| d.as_u64()) else {
            continue;
        };
        let a = by_dim.entry(dim as usize).or_default();
        a.jobs += 1;
        if v.get("status").and_then(|s| s.as_str()) == Some("ok") {
            a.ok += 1;
            if let Some(f) = v.get("fidelity").and_then(|f| f.as_f64()) {
                a.fid.0 += f;
                a.fid.1 += 1;
            }
            if let Some(s) = v.get("seconds").and_then(|s| s.as_f64()) {
                a.sec.0 += s;
                a.sec.1 += 1;
            }
        }
    }
    let mean = |(sum, n): (f64, u64)| (n > 0).then(|| sum / n as f64);
    Ok(by_dim
        .into_iter()
        .map(|(dim, a)| DimRow {
            dim,
            jobs: a.jobs,
            ok: a.ok,
            mean_fidelity: mean(a.fid),
            mean_seconds: mean(a.sec),
        })
        .collect())
}

/// The table `qst demo` prints.
pub fn format_table(rows: &[DimRow]) -> String {
    let mut s = format!(
        "{:>5}  {:>5}  {:>5}  {:>13}  {:>12}\n",
        "dim", "jobs", "ok", "mean fidelity", "mean seconds"
    );
    let opt =
        |x: Option<f64>, prec: usize| x.map_or_else(|| "-".to_string(), |v| format!("{v:.prec$}"));
    for r in rows {
        s += &format!(
            "{:>5}  {:>5}  {:>5}  {:>13}  {:>12}\n",
            r.dim,
            r.jobs,
            r.ok,
            opt(r.mean_fidelity, 5),
            opt(r.mean_seconds, 4)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_average_ok_jobs_per_dimension() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("results.jsonl");
        fs::write(
            &p,
            concat!(
                r#"{"line":2,"id":"a","status":"ok","dim":2,"fidelity":0.9,"seconds":1.0}"#,
                "\n",
                r#"{"line":3,"id":"b","status":"ok","dim":2,"fidelity":0.7,"seconds":3.0}"#,
                "\n",
                r#"{"line":4,"id":"c","status":"error","dim":4,"error":"x"}"#,
                "\n",
                r#"{"line":5,"id":null,"status":"error","error":"not JSON"}"#,
                "\n",
            ),
        )
        .unwrap();
        let rows = table_rows(&p).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].dim, rows[0].jobs, rows[0].ok), (2, 2, 2));
        assert!((rows[0].mean_fidelity.unwrap() - 0.8).abs() < 1e-12);
        assert!((rows[0].mean_seconds.unwrap() - 2.0).abs() < 1e-12);
        assert_eq!(
            (rows[1].dim, rows[1].jobs, rows[1].ok, rows[1].mean_fidelity),
            (4, 1, 0, None)
        );
        let t = format_table(&rows);
        assert!(t.lines().nth(1).unwrap().contains("0.80000"), "{t}");
    }
}
