//! `summary.csv` and `summary.json` (docs/reference.md), both rebuilt from all of
//! `results.jsonl`, so that a resumed run summarizes the whole batch.
//!
//! `summary.csv` follows RFC 4180: CRLF line ends, a field containing a comma,
//! a double quote, CR or LF is quoted and its quotes doubled. Rows are in
//! batch order (by `line`). ℓ = −∞ is written `-inf`; absent values are
//! empty fields.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use qst_shared::Method;
use serde::{Deserialize, Serialize};

use crate::provenance::Provenance;
use crate::results::{
    ErrorRecord, OkRecord, RESULTS_FILE, ResultRecord, ResultsError, for_each_record,
    read_record_at,
};

/// The header of `summary.csv` (docs/reference.md).
pub const CSV_HEADER: &str = "id,dim,design,method,status,purity,trace,rank,min_eigenvalue,max_eigenvalue,eigenvalue_entropy,log_likelihood,iterations,converged,fidelity,seconds,worker,error,dominant_eigenvalue,bell_max_fidelity,bell_index,purity_std,fidelity_std,bell_max_fidelity_std,bootstrap";

/// One worker slot in `summary.json`: totals over its incarnations (the
/// processes that held the slot, across every run of the output directory:
/// `jobs` and `busy_seconds` are sums, the peaks maxima).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct WorkerUsage {
    pub slot: usize,
    pub jobs: u64,
    pub busy_seconds: f64,
    pub peak_rss_bytes: u64,
    pub peak_pss_bytes: u64,
    pub incarnations: Vec<Incarnation>,
}

/// One worker process of a slot (measured by the process side).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Incarnation {
    pub pid: u32,
    /// Jobs it finished ok, and the seconds it spent on jobs.
    pub jobs: u64,
    pub busy_seconds: f64,
    pub peak_rss_bytes: u64,
    pub peak_pss_bytes: u64,
    /// How it ended (`exit status 0`, `signal 9`); `None` while running.
    pub exit: Option<String>,
}

impl WorkerUsage {
    /// The slot's current (latest) incarnation.
    pub fn current(&mut self) -> Option<&mut Incarnation> {
        self.incarnations.last_mut()
    }

    /// Recomputes the slot's totals from its incarnations.
    pub fn total(&mut self) {
        self.jobs = self.incarnations.iter().map(|i| i.jobs).sum();
        self.busy_seconds = self.incarnations.iter().map(|i| i.busy_seconds).sum();
        self.peak_rss_bytes = self
            .incarnations
            .iter()
            .map(|i| i.peak_rss_bytes)
            .max()
            .unwrap_or(0);
        self.peak_pss_bytes = self
            .incarnations
            .iter()
            .map(|i| i.peak_pss_bytes)
            .max()
            .unwrap_or(0);
    }
}

/// Figures of one dimension in `summary.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct DimensionSummary {
    pub dim: usize,
    pub jobs: u64,
    pub ok: u64,
    pub failed: u64,
    /// Over ok jobs that have a fidelity.
    pub mean_fidelity: Option<f64>,
    pub min_fidelity: Option<f64>,
    /// Over ok jobs.
    pub mean_seconds: Option<f64>,
    /// Σ seconds of ok jobs.
    pub busy_seconds: f64,
    /// Over ok `mle` jobs.
    pub mean_iterations: Option<f64>,
    /// Ok jobs of an iterative method (`mle`, `wls`) written with
    /// `converged: false`: the iteration stopped (at `max_iters`, or
    /// stalled) before its certificate held.
    pub not_converged: u64,
    /// The analysis (`docs/analysis.md`), each a mean over the ok jobs that
    /// have the figure; absent when none has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_dominant_eigenvalue: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_bell_max_fidelity: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_purity_std: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_fidelity_std: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_bell_max_fidelity_std: Option<f64>,
    /// Σ `bootstrap_failed` over ok jobs with a bootstrap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_failed: Option<u64>,
}

/// `summary.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    /// Result lines (one per job line of the batch that has run).
    pub jobs: u64,
    pub ok: u64,
    pub failed: u64,
    /// Failed lines whose dimension is unknown (not JSON, no valid `dim`).
    pub failed_without_dim: u64,
    pub by_dimension: Vec<DimensionSummary>,
    /// The supervisor's peak RSS during the latest run.
    pub supervisor_peak_rss_bytes: u64,
    /// One entry per worker slot, its incarnations nested, across every run
    /// of this output directory (a resumed run adds its incarnations).
    pub workers: Vec<WorkerUsage>,
    /// Which qst ran the latest run, how, when, where (absent after `qst merge`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
}

/// What the run's exit status needs from its summaries: how many results
/// there are, how many ended ok and how many failed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub jobs: u64,
    pub ok: u64,
    pub failed: u64,
}

/// Why the summaries could not be written; reads after "failed to".
#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error("{0}")]
    Results(#[from] ResultsError),
    #[error("write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("serialize summary.json: {0}")]
    Serialize(#[source] serde_json::Error),
}

fn write_error(path: &Path) -> impl FnOnce(io::Error) -> SummaryError + use<> {
    let path = path.to_path_buf();
    move |source| SummaryError::Write { path, source }
}

#[derive(Default)]
struct DimAcc {
    jobs: u64,
    ok: u64,
    failed: u64,
    fid_sum: f64,
    fid_n: u64,
    fid_min: Option<f64>,
    sec_sum: f64,
    sec_n: u64,
    it_sum: f64,
    it_n: u64,
    not_converged: u64,
    /// `dominant_eigenvalue`, `bell_max_fidelity`, `purity_std`, `fidelity_std`,
    /// `bell_max_fidelity_std`: (Σ, n).
    analysis: [(f64, u64); 5],
    bootstrap_failed: Option<u64>,
}

impl DimAcc {
    fn add_ok(&mut self, r: &OkRecord) {
        self.ok += 1;
        if let Some(f) = r.fidelity.filter(|f| f.is_finite()) {
            self.fid_sum += f;
            self.fid_n += 1;
            self.fid_min = Some(self.fid_min.map_or(f, |m: f64| m.min(f)));
        }
        if r.seconds.is_finite() {
            self.sec_sum += r.seconds;
            self.sec_n += 1;
        }
        if let Some(i) = r.iterations {
            self.it_sum += i as f64;
            self.it_n += 1;
        }
        if r.converged == Some(false) {
            self.not_converged += 1;
        }
        let boot = r.bootstrap.as_ref();
        let figs = [
            r.spectral.as_ref().map(|d| d.eigenvalue),
            r.bell.map(|b| b.max_fidelity),
            boot.and_then(|b| b.purity_std),
            boot.and_then(|b| b.fidelity_std),
            boot.and_then(|b| b.bell_max_fidelity_std),
        ];
        for (acc, x) in self.analysis.iter_mut().zip(figs) {
            if let Some(x) = x.filter(|x| x.is_finite()) {
                acc.0 += x;
                acc.1 += 1;
            }
        }
        if let Some(b) = boot {
            self.bootstrap_failed = Some(self.bootstrap_failed.unwrap_or(0) + u64::from(b.failed));
        }
    }

    fn summary(self, dim: usize) -> DimensionSummary {
        let mean = |(sum, n): (f64, u64)| if n > 0 { Some(sum / n as f64) } else { None };
        DimensionSummary {
            dim,
            jobs: self.jobs,
            ok: self.ok,
            failed: self.failed,
            mean_fidelity: mean((self.fid_sum, self.fid_n)),
            min_fidelity: self.fid_min,
            mean_seconds: mean((self.sec_sum, self.sec_n)),
            busy_seconds: self.sec_sum,
            mean_iterations: mean((self.it_sum, self.it_n)),
            not_converged: self.not_converged,
            mean_dominant_eigenvalue: mean(self.analysis[0]),
            mean_bell_max_fidelity: mean(self.analysis[1]),
            mean_purity_std: mean(self.analysis[2]),
            mean_fidelity_std: mean(self.analysis[3]),
            mean_bell_max_fidelity_std: mean(self.analysis[4]),
            bootstrap_failed: self.bootstrap_failed,
        }
    }
}

/// Rebuilds `summary.csv` and `summary.json` from all of
/// `out_dir/results.jsonl`, and returns their totals.
///
/// `workers` is the usage of this run's workers, `provenance` this run's.
/// Called again in the same run (the same `provenance.started`, or without
/// provenance the same pids), it replaces this run's incarnations rather than
/// adding them twice; called in a resumed run, it adds them to the
/// incarnations of the earlier runs kept in the previous `summary.json`.
///
/// # Errors
///
/// [`SummaryError`] when the results cannot be read or a summary file cannot be written.
pub fn write_summaries(
    out_dir: &Path,
    workers: &[WorkerUsage],
    supervisor_peak_rss_bytes: u64,
    provenance: Option<&Provenance>,
) -> Result<Totals, SummaryError> {
    let results = out_dir.join(RESULTS_FILE);
    let (mut s, order) = tally(&results)?;
    write_csv(out_dir, &results, &order)?;
    s.supervisor_peak_rss_bytes = supervisor_peak_rss_bytes;
    let json_path = out_dir.join("summary.json");
    let earlier = earlier_workers(&json_path, workers, provenance);
    s.workers = merge_usage(&earlier, workers);
    s.provenance = provenance.cloned();
    let text = serde_json::to_string_pretty(&s).map_err(SummaryError::Serialize)?;
    crate::outdir::write_atomic(&json_path, text.as_bytes()).map_err(write_error(&json_path))?;
    Ok(Totals {
        jobs: s.jobs,
        ok: s.ok,
        failed: s.failed,
    })
}

/// The totals and per-dimension figures of every record of `results`, and
/// the records' places in batch order (by line, then by method in the order
/// methods are listed in).
fn tally(results: &Path) -> Result<(Summary, Vec<(RowKey, u64)>), SummaryError> {
    let mut order: Vec<(RowKey, u64)> = Vec::new();
    let mut dims: BTreeMap<usize, DimAcc> = BTreeMap::new();
    let mut s = Summary::default();
    for_each_record(results, |offset, rec| {
        let rank = rec
            .method()
            .and_then(|m| Method::parse(m).ok())
            .and_then(|m| Method::ALL.iter().position(|x| *x == m))
            .unwrap_or(usize::MAX);
        order.push(((rec.line(), rank), offset));
        s.jobs += 1;
        match &rec {
            ResultRecord::Ok(r) => {
                s.ok += 1;
                let a = dims.entry(r.dim).or_default();
                a.jobs += 1;
                a.add_ok(r);
            }
            ResultRecord::Error(r) => {
                s.failed += 1;
                match r.dim {
                    Some(d) => {
                        let a = dims.entry(d).or_default();
                        a.jobs += 1;
                        a.failed += 1;
                    }
                    None => s.failed_without_dim += 1,
                }
            }
        }
    })?;
    order.sort_unstable();
    s.by_dimension = dims.into_iter().map(|(dim, a)| a.summary(dim)).collect();
    Ok((s, order))
}

/// The worker usage of earlier runs kept in the previous `summary.json`
/// (without this run's incarnations when it was written by this same run).
fn earlier_workers(
    json_path: &Path,
    workers: &[WorkerUsage],
    provenance: Option<&Provenance>,
) -> Vec<WorkerUsage> {
    let previous: Option<Summary> = fs::read(json_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    previous.map_or_else(Vec::new, |p| {
        let this_pids: HashSet<u32> = workers
            .iter()
            .flat_map(|w| w.incarnations.iter().map(|i| i.pid))
            .collect();
        let same_run = match (&p.provenance, provenance) {
            (Some(a), Some(b)) => a.started == b.started && a.command == b.command,
            _ => p
                .workers
                .iter()
                .flat_map(|w| &w.incarnations)
                .any(|i| this_pids.contains(&i.pid)),
        };
        let mut kept = p.workers;
        if same_run {
            for w in &mut kept {
                w.incarnations.retain(|i| !this_pids.contains(&i.pid));
            }
        }
        kept
    })
}

/// Joins two sets of per-slot usage: the incarnations of each slot in order,
/// the totals recomputed.
fn merge_usage(a: &[WorkerUsage], b: &[WorkerUsage]) -> Vec<WorkerUsage> {
    let mut m: BTreeMap<usize, WorkerUsage> = BTreeMap::new();
    for u in a.iter().chain(b) {
        let e = m.entry(u.slot).or_insert_with(|| WorkerUsage {
            slot: u.slot,
            ..Default::default()
        });
        e.incarnations.extend(u.incarnations.iter().cloned());
    }
    m.into_values()
        .map(|mut w| {
            w.total();
            w
        })
        .collect()
}

/// A summary row's place: (batch line, method rank).
type RowKey = (u64, usize);

fn write_csv(out_dir: &Path, results: &Path, order: &[(RowKey, u64)]) -> Result<(), SummaryError> {
    let path = out_dir.join("summary.csv");
    let tmp = tempfile::Builder::new()
        .prefix(".summary.csv.")
        .suffix(".tmp")
        .tempfile_in(out_dir)
        .map_err(write_error(&path))?;
    let mut w = BufWriter::new(tmp.as_file());
    w.write_all(CSV_HEADER.as_bytes())
        .and_then(|()| w.write_all(b"\r\n"))
        .map_err(write_error(&path))?;
    if !order.is_empty() {
        write_rows(&mut w, &path, results, order)?;
    }
    let f = w
        .into_inner()
        .map_err(|e| write_error(&path)(e.into_error()))?;
    f.sync_all().map_err(write_error(&path))?;
    tmp.persist(&path)
        .map(drop)
        .map_err(|e| write_error(&path)(e.error))
}

/// The rows of `order`, read back from `results`; the same (line, method)
/// twice (should not happen) keeps the last record.
fn write_rows(
    w: &mut impl Write,
    path: &Path,
    results: &Path,
    order: &[(RowKey, u64)],
) -> Result<(), SummaryError> {
    let file = File::open(results).map_err(|source| ResultsError::Read {
        path: results.to_path_buf(),
        source,
    })?;
    let mut r = BufReader::with_capacity(1 << 16, file);
    let mut row = String::new();
    let mut seen: HashMap<RowKey, u64> = HashMap::new();
    for &(line, off) in order {
        seen.insert(line, off);
    }
    for &(line, off) in order {
        if seen.get(&line) != Some(&off) {
            continue;
        }
        let rec = read_record_at(&mut r, off, results)?;
        row.clear();
        csv_row(&rec, &mut row);
        w.write_all(row.as_bytes()).map_err(write_error(path))?;
    }
    Ok(())
}

/// Quotes one field per RFC 4180 when it contains a comma, quote, CR or LF.
pub fn csv_field(s: &str, out: &mut String) {
    if s.contains([',', '"', '\r', '\n']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

fn num(x: Option<f64>) -> String {
    match x {
        Some(v) if v == f64::NEG_INFINITY => "-inf".into(),
        Some(v) if v == f64::INFINITY => "inf".into(),
        Some(v) if v.is_nan() => "nan".into(),
        // Shortest round-trip form, with an exponent for tiny and huge
        // values (as in results.jsonl); −0 as 0.
        Some(v) => serde_json::to_string(&if v == 0.0 { 0.0 } else { v })
            .unwrap_or_else(|_| format!("{v:e}")),
        None => String::new(),
    }
}

/// A figure that reads back as NaN (written `null`) is an empty field.
fn fig(x: f64) -> String {
    num(Some(x).filter(|v| v.is_finite()))
}

fn opt<T: ToString>(x: Option<T>) -> String {
    x.map(|x| x.to_string()).unwrap_or_default()
}

/// One CSV row (CRLF-terminated) of a record, in [`CSV_HEADER`] order.
pub fn csv_row(r: &ResultRecord, out: &mut String) {
    let fields = match r {
        ResultRecord::Ok(r) => ok_fields(r),
        ResultRecord::Error(r) => error_fields(r),
    };
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(f, out);
    }
    out.push_str("\r\n");
}

fn ok_fields(r: &OkRecord) -> [String; 25] {
    let boot = r.bootstrap.as_ref();
    [
        r.id.clone(),
        r.dim.to_string(),
        r.design.clone(),
        r.method.clone(),
        "ok".into(),
        fig(r.purity),
        fig(r.trace),
        r.rank.to_string(),
        fig(r.min_eigenvalue),
        fig(r.max_eigenvalue),
        fig(r.eigenvalue_entropy),
        r.log_likelihood
            .map_or_else(|| "-inf".into(), |ll| num(Some(ll))),
        opt(r.iterations),
        opt(r.converged),
        num(r.fidelity),
        fig(r.seconds),
        r.worker.to_string(),
        String::new(),
        num(r.spectral.as_ref().map(|d| d.eigenvalue)),
        num(r.bell.map(|b| b.max_fidelity)),
        opt(r.bell.map(|b| b.index)),
        num(boot.and_then(|b| b.purity_std)),
        num(boot.and_then(|b| b.fidelity_std)),
        num(boot.and_then(|b| b.bell_max_fidelity_std)),
        opt(boot.map(|b| b.resamples)),
    ]
}

fn error_fields(r: &ErrorRecord) -> [String; 25] {
    let mut f: [String; 25] = Default::default();
    f[0] = r.id.clone().unwrap_or_default();
    f[1] = opt(r.dim);
    f[2] = r.design.clone().unwrap_or_default();
    f[3] = r.method.clone().unwrap_or_default();
    f[4] = "error".into();
    f[16] = opt(r.worker);
    f[17] = r.error.clone();
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::ResultsWriter;

    fn ok_rec(line: u64, dim: usize, fid: Option<f64>, worker: usize, secs: f64) -> ResultRecord {
        ResultRecord::Ok(OkRecord {
            line,
            id: format!("j{line}"),
            dim,
            design: "nopovm".into(),
            method: "mle".into(),
            rho: format!("rho/j{line}.npy"),
            iterations: Some(10 * line),
            converged: Some(true),
            log_likelihood: None,
            purity: 1.0,
            trace: 1.0,
            rank: 1,
            min_eigenvalue: 0.0,
            max_eigenvalue: 1.0,
            eigenvalue_entropy: 0.0,
            fidelity: fid,
            objective: None,
            bell: None,
            spectral: None,
            bootstrap: None,
            warnings: None,
            started: None,
            seconds: secs,
            worker,
        })
    }

    #[test]
    #[allow(clippy::unreadable_literal)] // the literal is written as the expected text
    fn numbers_are_written_in_shortest_round_trip_form() {
        assert_eq!(num(Some(-4.090828323181354e-17)), "-4.090828323181354e-17");
        assert_eq!(num(Some(-0.0)), "0.0");
        assert_eq!(num(Some(0.25)), "0.25");
        assert_eq!(num(Some(f64::NEG_INFINITY)), "-inf");
        assert_eq!(num(None), "");
    }

    #[test]
    fn csv_quoting_follows_rfc_4180() {
        let mut s = String::new();
        csv_field("plain", &mut s);
        s.push('|');
        csv_field("a,b", &mut s);
        s.push('|');
        csv_field("say \"hi\"", &mut s);
        s.push('|');
        csv_field("two\r\nlines", &mut s);
        assert_eq!(s, "plain|\"a,b\"|\"say \"\"hi\"\"\"|\"two\r\nlines\"");
    }

    #[test]
    fn summaries_are_rebuilt_in_batch_order_with_per_dimension_figures() {
        let tmp = tempfile::tempdir().unwrap();
        let batch = tmp.path().join("b.jsonl");
        fs::write(&batch, "x\n").unwrap();
        let out = tmp.path().join("out");
        let (mut w, _) = ResultsWriter::open(&out, &batch, false).unwrap();
        // Completion order differs from batch order.
        w.append(&ok_rec(3, 2, Some(0.5), 1, 2.0)).unwrap();
        w.append(&ok_rec(1, 2, Some(1.0), 0, 4.0)).unwrap();
        w.append(&ResultRecord::error(
            2,
            None,
            "line 2: not valid JSON, at \"x\"".into(),
        ))
        .unwrap();
        w.append(&ok_rec(4, 4, None, 0, 1.0)).unwrap();
        drop(w);
        let inc = |pid, jobs, busy, rss, pss| Incarnation {
            pid,
            jobs,
            busy_seconds: busy,
            peak_rss_bytes: rss,
            peak_pss_bytes: pss,
            exit: Some("exit status 0".into()),
        };
        let slot0 = |incs: Vec<Incarnation>| {
            let mut w = WorkerUsage {
                slot: 0,
                incarnations: incs,
                ..Default::default()
            };
            w.total();
            w
        };
        let usage = vec![slot0(vec![inc(11, 2, 5.5, 100, 50)])];
        // Three ok records and one error, as appended above.
        let totals = write_summaries(&out, &usage, 999, None).unwrap();
        assert_eq!(
            totals,
            Totals {
                jobs: 4,
                ok: 3,
                failed: 1
            }
        );
        let csv = fs::read_to_string(out.join("summary.csv")).unwrap();
        let rows: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(rows[0], CSV_HEADER);
        assert!(rows[1].starts_with("j1,2,nopovm,mle,ok,"), "{}", rows[1]);
        assert!(rows[1].contains(",-inf,10,true,1.0,4.0,0,"), "{}", rows[1]);
        assert_eq!(
            rows[2],
            ",,,,error,,,,,,,,,,,,,\"line 2: not valid JSON, at \"\"x\"\"\",,,,,,,"
        );
        assert!(rows[3].starts_with("j3,"));
        assert!(rows[4].starts_with("j4,4,"));
        assert_eq!(rows[5], "");
        assert_eq!(rows.len(), 6);

        let s: Summary =
            serde_json::from_slice(&fs::read(out.join("summary.json")).unwrap()).unwrap();
        assert_eq!((s.jobs, s.ok, s.failed, s.failed_without_dim), (4, 3, 1, 1));
        assert_eq!(s.supervisor_peak_rss_bytes, 999);
        let d2 = &s.by_dimension[0];
        assert_eq!((d2.dim, d2.jobs, d2.ok), (2, 2, 2));
        assert_eq!(d2.mean_fidelity, Some(0.75));
        assert_eq!(d2.mean_seconds, Some(3.0));
        assert_eq!(d2.mean_iterations, Some(20.0));
        assert_eq!(s.by_dimension[1].mean_fidelity, None);
        assert_eq!(s.workers, usage);
        assert_eq!((s.workers[0].jobs, s.workers[0].busy_seconds), (2, 5.5));

        // Same run again: not counted twice. A resumed run (new pids): added.
        write_summaries(&out, &usage, 999, None).unwrap();
        let s: Summary =
            serde_json::from_slice(&fs::read(out.join("summary.json")).unwrap()).unwrap();
        assert_eq!(s.workers, usage);
        let next = vec![slot0(vec![inc(12, 1, 1.0, 300, 20)])];
        write_summaries(&out, &next, 5, None).unwrap();
        let s: Summary =
            serde_json::from_slice(&fs::read(out.join("summary.json")).unwrap()).unwrap();
        let both = slot0(vec![inc(11, 2, 5.5, 100, 50), inc(12, 1, 1.0, 300, 20)]);
        assert_eq!(s.workers, vec![both.clone()]);
        assert_eq!(
            (
                s.workers[0].jobs,
                s.workers[0].busy_seconds,
                s.workers[0].peak_rss_bytes
            ),
            (3, 6.5, 300)
        );

        // With provenance: the same run is known by its start.
        let prov = Provenance {
            started: "2026-01-01T00:00:00Z".into(),
            ..Default::default()
        };
        let third = vec![slot0(vec![inc(13, 1, 1.0, 1, 1)])];
        write_summaries(&out, &third, 5, Some(&prov)).unwrap();
        let mut third_again = third.clone();
        third_again[0].incarnations[0].jobs = 2;
        write_summaries(&out, &third_again, 5, Some(&prov)).unwrap();
        let s: Summary =
            serde_json::from_slice(&fs::read(out.join("summary.json")).unwrap()).unwrap();
        assert_eq!(s.workers[0].incarnations.len(), 3);
        assert_eq!(s.workers[0].jobs, 5);
        assert_eq!(s.provenance, Some(prov));
    }
}
