//! `qst demo`: a synthetic batch (dimensions 2 to 32, known truths, simulated
//! counts) written into the output directory and run through the real pool;
//! then a table with one row per dimension and method (jobs, mean fidelity,
//! mean seconds).
//!
//! The output directory is marked as the demo's by a `.qst-demo` file. A
//! later demo into it removes only the files a demo writes (the batch, the
//! truth files its manifest lists, results, ρ files named by the results,
//! summaries, logs); a directory that is not empty and has no marker is
//! refused unless `--force`. Files the user put there are never removed.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::errors::Fatal;
use crate::results::RESULTS_FILE;
use crate::run::{RunOptions, RunReport, run};
use crate::synth::{GenSpec, generate_with};

/// The demo batch's file name inside the output directory.
pub const DEMO_BATCH: &str = "demo.jsonl";

/// The file that marks a directory as the demo's output.
pub const DEMO_MARKER: &str = ".qst-demo";

/// The embedded default batch.
#[must_use]
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
    /// `--max-cache-bytes`, passed on to the run.
    pub max_cache_bytes: Option<u64>,
    pub quiet: bool,
    /// Use a non-empty directory that no demo marked.
    pub force: bool,
    /// Passed on to the run.
    pub verbose: bool,
    pub invocation: crate::provenance::Invocation,
}

/// One row of the demo's table: a dimension and a method.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DimRow {
    pub dim: usize,
    pub method: String,
    pub jobs: u64,
    pub ok: u64,
    pub mean_fidelity: Option<f64>,
    pub mean_seconds: Option<f64>,
}

/// Runs the demo; returns the run's report and the table's rows.
///
/// # Errors
///
/// [`Fatal`] when the output directory cannot be prepared, the demo batch cannot be written, or
/// the run cannot start.
pub fn demo(opts: &DemoOptions) -> Result<(RunReport, Vec<DimRow>), Fatal> {
    prepare_dir(&opts.out, opts.force)?;
    let batch = opts.out.join(DEMO_BATCH);
    let jobs = generate_with(&batch, &demo_spec(), true).map_err(Fatal::to)?;
    if !opts.quiet {
        crate::say!("qst demo: {jobs} synthetic jobs in {}", batch.display());
    }
    let mut ro = RunOptions::new(&batch);
    ro.out = Some(opts.out.clone());
    ro.workers = opts.workers;
    ro.cache = opts.cache.clone();
    ro.max_cache_bytes = opts.max_cache_bytes;
    ro.quiet = opts.quiet;
    ro.verbose = opts.verbose;
    ro.invocation = opts.invocation.clone();
    let report = run(&ro)?;
    let rows = table_rows(&report.out_dir.join(RESULTS_FILE))?;
    Ok((report, rows))
}

/// An existing output directory is reused only if an earlier demo marked it
/// (or with `force`); only the files a demo writes are removed from it.
fn prepare_dir(out: &Path, force: bool) -> Result<(), Fatal> {
    match fs::read_dir(out) {
        Ok(mut entries) => {
            let marked = out.join(DEMO_MARKER).is_file();
            if !marked && !force && entries.next().is_some() {
                return Err(Fatal::to(format!(
                    "use {} for the demo: it is not empty and no demo made it (no {DEMO_MARKER} in it); pass another --out, or --force to write into it",
                    out.display()
                )));
            }
            remove_demo_files(out)?;
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
    })?;
    let marker = out.join(DEMO_MARKER);
    fs::write(
        &marker,
        "This directory is qst demo's output; a later qst demo replaces the files it wrote here.\n",
    )
    .map_err(|e| Fatal::to(format!("write {}: {e}", marker.display())))
}

/// Removes what an earlier demo wrote in `out` (a missing file is fine):
/// the files of a run, the ρ files its results name, the worker and
/// supervisor logs. The batch and its truth files are replaced by
/// [`generate_with`], which removes only the truth files of its manifest.
fn remove_demo_files(out: &Path) -> Result<(), Fatal> {
    let mut files: Vec<PathBuf> = Vec::new();
    if let Ok(f) = File::open(out.join(RESULTS_FILE)) {
        for line in BufReader::new(f).lines().map_while(Result::ok) {
            let rho = serde_json::from_str::<serde_json::Value>(&line)
                .ok()
                .and_then(|v| v.get("rho").and_then(|r| r.as_str()).map(str::to_string));
            // Only plain names inside rho/.
            if let Some(name) = rho.as_deref().and_then(|r| r.strip_prefix("rho/"))
                && !name.is_empty()
                && !name.contains('/')
                && !name.starts_with('.')
            {
                files.push(out.join("rho").join(name));
            }
        }
    }
    for name in [
        RESULTS_FILE,
        crate::results::FINGERPRINT_FILE,
        "summary.csv",
        "summary.json",
        "report.html",
    ] {
        files.push(out.join(name));
    }
    if let Ok(logs) = fs::read_dir(out.join("logs")) {
        for e in logs.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == "supervisor.log" || name.starts_with("worker-") && name.ends_with(".log") {
                files.push(e.path());
            }
        }
    }
    for f in &files {
        match fs::remove_file(f) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Fatal::to(format!(
                    "remove {} of the earlier demo: {e}",
                    f.display()
                )));
            }
        }
    }
    Ok(())
}

/// Rows by (dimension, method) from `results.jsonl`.
///
/// # Errors
///
/// [`Fatal`] when `results` cannot be read.
pub fn table_rows(results: &Path) -> Result<Vec<DimRow>, Fatal> {
    #[derive(Default)]
    struct Acc {
        jobs: u64,
        ok: u64,
        fid: (f64, u64),
        sec: (f64, u64),
    }
    let f =
        File::open(results).map_err(|e| Fatal::to(format!("read {}: {e}", results.display())))?;
    let mut by_dim: BTreeMap<(usize, String), Acc> = BTreeMap::new();
    for line in BufReader::new(f).lines() {
        let line = line.map_err(|e| Fatal::to(format!("read {}: {e}", results.display())))?;
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let Some(dim) = v
            .get("dim")
            .and_then(serde_json::Value::as_u64)
            .and_then(|d| usize::try_from(d).ok())
        else {
            continue;
        };
        let method = v
            .get("method")
            .and_then(|m| m.as_str())
            .unwrap_or("-")
            .to_string();
        let a = by_dim.entry((dim, method)).or_default();
        a.jobs += 1;
        if v.get("status").and_then(|s| s.as_str()) == Some("ok") {
            a.ok += 1;
            if let Some(f) = v.get("fidelity").and_then(serde_json::Value::as_f64) {
                a.fid.0 += f;
                a.fid.1 += 1;
            }
            if let Some(s) = v.get("seconds").and_then(serde_json::Value::as_f64) {
                a.sec.0 += s;
                a.sec.1 += 1;
            }
        }
    }
    let mean = |(sum, n): (f64, u64)| (n > 0).then(|| sum / n as f64);
    Ok(by_dim
        .into_iter()
        .map(|((dim, method), a)| DimRow {
            dim,
            method,
            jobs: a.jobs,
            ok: a.ok,
            mean_fidelity: mean(a.fid),
            mean_seconds: mean(a.sec),
        })
        .collect())
}

/// The table `qst demo` prints.
#[must_use]
pub fn format_table(rows: &[DimRow]) -> String {
    let mut s = format!(
        "{:>5}  {:<6}  {:>5}  {:>5}  {:>13}  {:>12}\n",
        "dim", "method", "jobs", "ok", "mean fidelity", "mean seconds"
    );
    let opt =
        |x: Option<f64>, prec: usize| x.map_or_else(|| "-".to_string(), |v| format!("{v:.prec$}"));
    for r in rows {
        s += &format!(
            "{:>5}  {:<6}  {:>5}  {:>5}  {:>13}  {:>12}\n",
            r.dim,
            r.method,
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
                r#"{"line":2,"id":"a","status":"ok","dim":2,"method":"mle","fidelity":0.9,"seconds":1.0}"#,
                "\n",
                r#"{"line":3,"id":"b","status":"ok","dim":2,"method":"mle","fidelity":0.7,"seconds":3.0}"#,
                "\n",
                r#"{"line":6,"id":"l","status":"ok","dim":2,"method":"linear","fidelity":0.1,"seconds":5.0}"#,
                "\n",
                r#"{"line":4,"id":"c","status":"error","dim":4,"error":"x"}"#,
                "\n",
                r#"{"line":5,"id":null,"status":"error","error":"not JSON"}"#,
                "\n",
            ),
        )
        .unwrap();
        let rows = table_rows(&p).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!((rows[0].dim, rows[0].method.as_str()), (2, "linear"));
        assert!((rows[0].mean_fidelity.unwrap() - 0.1).abs() < 1e-12);
        assert_eq!((rows[1].dim, rows[1].jobs, rows[1].ok), (2, 2, 2));
        assert_eq!(rows[1].method, "mle");
        assert!((rows[1].mean_fidelity.unwrap() - 0.8).abs() < 1e-12);
        assert!((rows[1].mean_seconds.unwrap() - 2.0).abs() < 1e-12);
        assert_eq!(
            (rows[2].dim, rows[2].jobs, rows[2].ok, rows[2].mean_fidelity),
            (4, 1, 0, None)
        );
        let t = format_table(&rows);
        assert!(t.lines().nth(2).unwrap().contains("0.80000"), "{t}");
        assert!(t.lines().nth(2).unwrap().contains(" mle "), "{t}");
    }
}
