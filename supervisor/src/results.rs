//! Result records and `results.jsonl` (docs/reference.md): one JSON line per batch
//! line, appended and flushed as each job ends; `--resume` support (repairing
//! a torn last line, listing the lines that already have a result) and the
//! batch fingerprint that refuses a resume on a changed batch.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use qst_shared::{Job, JobFigures};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

/// The name of the results file inside the output directory.
pub const RESULTS_FILE: &str = "results.jsonl";
/// The name of the batch fingerprint file inside the output directory.
pub const FINGERPRINT_FILE: &str = "batch.fingerprint";

/// One line of `results.jsonl`.
///
/// An `ok` record always carries `dim`, `design`, `method`, `rho`,
/// `iterations`, `converged`, `log_likelihood`, `purity`, `trace`, `rank`,
/// `min_eigenvalue`, `max_eigenvalue`, `eigenvalue_entropy`, `started` (Unix
/// seconds, when the worker started the job), `seconds` and `worker`
/// (`iterations`/`converged` written as `null` for `linear`; `log_likelihood`
/// written as `null` for −∞, and read back as `None`), and
/// `fidelity` only when a truth was given. An `error` record carries `line`,
/// `id` (null when unknown), `status`, `error`, and `dim`, `design`, `method`,
/// `worker` when known.
#[derive(Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
pub struct ResultRecord {
    pub line: u64,
    pub id: Option<String>,
    /// `"ok"` or `"error"`.
    pub status: String,
    pub dim: Option<usize>,
    pub design: Option<String>,
    pub method: Option<String>,
    /// ρ's file, relative to the output directory.
    pub rho: Option<String>,
    pub iterations: Option<u64>,
    pub converged: Option<bool>,
    /// `None` in an `ok` record means ℓ = −∞.
    pub log_likelihood: Option<f64>,
    pub purity: Option<f64>,
    pub trace: Option<f64>,
    pub rank: Option<usize>,
    pub min_eigenvalue: Option<f64>,
    pub max_eigenvalue: Option<f64>,
    pub eigenvalue_entropy: Option<f64>,
    pub fidelity: Option<f64>,
    /// `wls`: the χ² it minimized.
    pub objective: Option<f64>,
    /// `--bell`: the largest ⟨B_{a,b}|ρ|B_{a,b}⟩, its a·m + b, the smallest.
    pub bell_max_fidelity: Option<f64>,
    pub bell_index: Option<usize>,
    pub bell_min_fidelity: Option<f64>,
    /// `--spectral`: the largest eigenvalue, its eigenvector's amplitudes and
    /// phases (units of π).
    pub dominant_eigenvalue: Option<f64>,
    pub dominant_amplitudes: Option<Vec<f64>>,
    pub dominant_phases: Option<Vec<f64>>,
    /// `--bootstrap`: B, the resamples that failed, and the sample standard
    /// deviations over the others.
    pub bootstrap: Option<u32>,
    pub bootstrap_failed: Option<u32>,
    pub purity_std: Option<f64>,
    pub fidelity_std: Option<f64>,
    pub bell_max_fidelity_std: Option<f64>,
    /// What reading the job changed (e.g. negative counts set to 0).
    pub warnings: Option<Vec<String>>,
    /// When the worker started the job, in Unix seconds.
    pub started: Option<f64>,
    pub seconds: Option<f64>,
    pub worker: Option<usize>,
    pub error: Option<String>,
}

impl ResultRecord {
    /// The record of a job that ended well.
    pub fn ok(job: &Job, figures: &JobFigures, worker: usize, out_dir: &Path) -> Self {
        let rho = match job.rho_path.strip_prefix(out_dir) {
            Ok(rel) => rel.to_string_lossy().into_owned(),
            Err(_) => job.rho_path.to_string_lossy().into_owned(),
        };
        let ll = figures.log_likelihood;
        let bell = figures.analysis.bell;
        let dominant = figures.analysis.dominant.as_ref();
        ResultRecord {
            line: job.line,
            id: Some(job.id.clone()),
            status: "ok".into(),
            dim: Some(job.dim),
            design: Some(job.projectors.design_name().into()),
            method: Some(job.method.as_str().into()),
            rho: Some(rho),
            iterations: figures.iterations,
            converged: figures.converged,
            log_likelihood: if ll.is_finite() {
                Some(no_negative_zero(ll))
            } else {
                None
            },
            purity: Some(no_negative_zero(figures.purity)),
            trace: Some(no_negative_zero(figures.trace)),
            rank: Some(figures.rank),
            min_eigenvalue: Some(no_negative_zero(figures.min_eigenvalue)),
            max_eigenvalue: Some(no_negative_zero(figures.max_eigenvalue)),
            eigenvalue_entropy: Some(no_negative_zero(figures.eigenvalue_entropy)),
            fidelity: figures.fidelity.map(no_negative_zero),
            objective: figures.objective.map(no_negative_zero),
            bell_max_fidelity: bell.map(|b| no_negative_zero(b.max_fidelity)),
            bell_index: bell.map(|b| b.index),
            bell_min_fidelity: bell.map(|b| no_negative_zero(b.min_fidelity)),
            dominant_eigenvalue: dominant.map(|d| no_negative_zero(d.eigenvalue)),
            dominant_amplitudes: dominant.map(|d| d.amplitudes.clone()),
            dominant_phases: dominant.map(|d| d.phases.clone()),
            bootstrap: None,
            bootstrap_failed: None,
            purity_std: None,
            fidelity_std: None,
            bell_max_fidelity_std: None,
            warnings: (!job.warnings.is_empty()).then(|| job.warnings.clone()),
            started: Some(figures.started),
            seconds: Some(no_negative_zero(figures.seconds)),
            worker: Some(worker),
            error: None,
        }
    }

    /// The record of a batch line that could not become a job.
    pub fn error(line: u64, id: Option<&str>, message: String) -> Self {
        ResultRecord {
            line,
            id: id.map(str::to_owned),
            status: "error".into(),
            error: Some(message),
            ..Default::default()
        }
    }

    /// The record of a validated job that failed (knows dim, design, method).
    pub fn job_error(job: &Job, message: String) -> Self {
        ResultRecord {
            dim: Some(job.dim),
            design: Some(job.projectors.design_name().into()),
            method: Some(job.method.as_str().into()),
            warnings: (!job.warnings.is_empty()).then(|| job.warnings.clone()),
            ..ResultRecord::error(job.line, Some(&job.id), message)
        }
    }

    /// Whether this is an `ok` record.
    pub fn is_ok(&self) -> bool {
        self.status == "ok"
    }

    /// The record as one JSON line, without the trailing newline.
    pub fn to_json_line(&self) -> String {
        // Serializing plain fields to a String cannot fail.
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(
                "{{\"line\":{},\"status\":\"error\",\"error\":\"failed to serialize the result: {}\"}}",
                self.line,
                e.to_string().replace(['"', '\\'], "'")
            )
        })
    }
}

/// −0 (e.g. an entropy of −0·ln 1) as 0.
fn no_negative_zero(x: f64) -> f64 {
    if x == 0.0 { 0.0 } else { x }
}

fn finite(x: Option<f64>) -> Option<f64> {
    x.filter(|v| v.is_finite())
}

impl Serialize for ResultRecord {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("line", &self.line)?;
        m.serialize_entry("id", &self.id)?;
        m.serialize_entry("status", &self.status)?;
        if self.is_ok() {
            m.serialize_entry("dim", &self.dim)?;
            m.serialize_entry("design", &self.design)?;
            m.serialize_entry("method", &self.method)?;
            m.serialize_entry("rho", &self.rho)?;
            m.serialize_entry("iterations", &self.iterations)?;
            m.serialize_entry("converged", &self.converged)?;
            m.serialize_entry("log_likelihood", &finite(self.log_likelihood))?;
            m.serialize_entry("purity", &self.purity)?;
            if self.fidelity.is_some() {
                m.serialize_entry("fidelity", &self.fidelity)?;
            }
            if self.objective.is_some() {
                m.serialize_entry("objective", &self.objective)?;
            }
            if self.bell_max_fidelity.is_some() {
                m.serialize_entry("bell_max_fidelity", &self.bell_max_fidelity)?;
                m.serialize_entry("bell_index", &self.bell_index)?;
                m.serialize_entry("bell_min_fidelity", &self.bell_min_fidelity)?;
            }
            if self.dominant_eigenvalue.is_some() {
                m.serialize_entry("dominant_eigenvalue", &self.dominant_eigenvalue)?;
                m.serialize_entry("dominant_amplitudes", &self.dominant_amplitudes)?;
                m.serialize_entry("dominant_phases", &self.dominant_phases)?;
            }
            if self.bootstrap.is_some() {
                m.serialize_entry("bootstrap", &self.bootstrap)?;
                m.serialize_entry("bootstrap_failed", &self.bootstrap_failed)?;
                m.serialize_entry("purity_std", &finite(self.purity_std))?;
                if self.fidelity.is_some() {
                    m.serialize_entry("fidelity_std", &finite(self.fidelity_std))?;
                }
                if self.bell_max_fidelity.is_some() {
                    m.serialize_entry(
                        "bell_max_fidelity_std",
                        &finite(self.bell_max_fidelity_std),
                    )?;
                }
            }
            if self.warnings.is_some() {
                m.serialize_entry("warnings", &self.warnings)?;
            }
            if self.started.is_some() {
                m.serialize_entry("started", &self.started)?;
            }
            m.serialize_entry("seconds", &self.seconds)?;
            m.serialize_entry("worker", &self.worker)?;
            m.serialize_entry("trace", &self.trace)?;
            m.serialize_entry("rank", &self.rank)?;
            m.serialize_entry("min_eigenvalue", &self.min_eigenvalue)?;
            m.serialize_entry("max_eigenvalue", &self.max_eigenvalue)?;
            m.serialize_entry("eigenvalue_entropy", &self.eigenvalue_entropy)?;
        } else {
            m.serialize_entry("error", &self.error)?;
            if self.dim.is_some() {
                m.serialize_entry("dim", &self.dim)?;
            }
            if self.design.is_some() {
                m.serialize_entry("design", &self.design)?;
            }
            if self.method.is_some() {
                m.serialize_entry("method", &self.method)?;
            }
            if self.worker.is_some() {
                m.serialize_entry("worker", &self.worker)?;
            }
            if self.warnings.is_some() {
                m.serialize_entry("warnings", &self.warnings)?;
            }
        }
        m.end()
    }
}

/// The (line, method) pairs that already have a result line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Done {
    keys: HashSet<(u64, String)>,
}

impl Done {
    /// Records a result of `line` by `method` (`None`: a record that names no
    /// method, which counts for every method of its line).
    pub fn insert(&mut self, line: u64, method: Option<&str>) {
        self.keys.insert((line, method.unwrap_or("").to_owned()));
    }
    /// Whether (line, method) has a result.
    pub fn has(&self, key: &(u64, String)) -> bool {
        self.keys.contains(key) || self.keys.contains(&(key.0, String::new()))
    }
    pub fn len(&self) -> usize {
        self.keys.len()
    }
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
    /// The lines that have at least one result.
    pub fn lines(&self) -> HashSet<u64> {
        self.keys.iter().map(|k| k.0).collect()
    }
}

/// Appends result lines to `out_dir/results.jsonl`, holding the output
/// directory's lock (one run at a time) for as long as it lives.
pub struct ResultsWriter {
    file: File,
    path: PathBuf,
    /// The length of the file's complete lines: a failed append is cut back to it.
    len: u64,
    /// A failed append could not be cut back: nothing more is appended.
    broken: bool,
    _lock: File,
}

impl ResultsWriter {
    /// Creates `out_dir` (and `rho/`), opens `results.jsonl` for append.
    ///
    /// Without `resume`, a directory whose `results.jsonl` is not empty is
    /// refused (never truncated). With `resume`, a torn last line is dropped
    /// (every complete line is kept) and the set of `line`s that already have
    /// a result is returned. Either way the batch fingerprint (size and an
    /// XXH3-128 hash of the bytes) is recorded in `out_dir/batch.fingerprint`,
    /// or, when the directory already has results, checked against it.
    pub fn open(
        out_dir: &Path,
        batch_path: &Path,
        resume: bool,
    ) -> Result<(ResultsWriter, Done), String> {
        crate::outdir::create_dir(out_dir).map_err(|e| match e {
            crate::outdir::OutDirError::Io { source, .. } => format!(
                "failed to create the output directory {}: {source}",
                out_dir.display()
            ),
            e => format!("failed to {e}"),
        })?;
        // One run at a time: a second one stops here, before touching anything.
        let lock = crate::outdir::lock_dir(out_dir).map_err(|e| format!("failed to {e}"))?;
        crate::outdir::create_dir(&out_dir.join("rho")).map_err(|e| format!("failed to {e}"))?;
        let fingerprint = fingerprint(batch_path)?;
        let path = out_dir.join(RESULTS_FILE);
        // Never read, cut or append through a link (or to a FIFO) planted there.
        if let Ok(m) = fs::symlink_metadata(&path)
            && !m.is_file()
        {
            return Err(format!(
                "failed to use {}: it is not a regular file (a symbolic link, FIFO or directory)",
                path.display()
            ));
        }
        let has_results = match fs::metadata(&path) {
            Ok(m) => m.len() > 0,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(format!("failed to read {}: {e}", path.display())),
        };
        let fp_path = out_dir.join(FINGERPRINT_FILE);
        let mut done = Done::default();
        if has_results {
            if !resume {
                return Err(format!(
                    "failed to start: {} already has results; pass --resume or another --out",
                    out_dir.display()
                ));
            }
            match fs::read_to_string(&fp_path) {
                Ok(old) if old.trim() != fingerprint.trim() => {
                    return Err(format!(
                        "failed to resume: the batch {} changed since the first run into {}",
                        batch_path.display(),
                        out_dir.display()
                    ));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    write_fingerprint(&fp_path, &fingerprint)?;
                }
                Err(e) => return Err(format!("failed to read {}: {e}", fp_path.display())),
            }
            done = repair_and_scan(&path)?;
        } else {
            write_fingerprint(&fp_path, &fingerprint)?;
        }
        let file = crate::outdir::open_append(&path)
            .map_err(|e| format!("failed to open {} for writing: {e}", path.display()))?;
        let len = file
            .metadata()
            .map_err(|e| format!("failed to read {}: {e}", path.display()))?
            .len();
        Ok((
            ResultsWriter {
                file,
                path,
                len,
                broken: false,
                _lock: lock,
            },
            done,
        ))
    }

    /// Appends one JSON line and flushes it (one `write_all` of the whole
    /// line, newline included).
    ///
    /// A write that fails part-way (a full disk) is cut back to the last
    /// complete line, so that no later line is ever appended after a fragment;
    /// if even that fails, every later append is refused.
    pub fn append(&mut self, rec: &ResultRecord) -> io::Result<()> {
        self.append_all(std::slice::from_ref(rec))
    }

    /// Appends several records with one write and one flush; a failed or
    /// partial write is cut back to the last whole line.
    pub fn append_all(&mut self, recs: &[ResultRecord]) -> io::Result<()> {
        if self.broken {
            return Err(io::Error::other(
                "an earlier write failed and could not be taken back",
            ));
        }
        let mut lines = String::new();
        for rec in recs {
            lines.push_str(&rec.to_json_line());
            lines.push('\n');
        }
        match self
            .file
            .write_all(lines.as_bytes())
            .and_then(|()| self.file.flush())
        {
            Ok(()) => {
                self.len += lines.len() as u64;
                Ok(())
            }
            Err(e) => {
                if let Err(t) = self.file.set_len(self.len) {
                    self.broken = true;
                    return Err(io::Error::new(
                        e.kind(),
                        format!("{e} (and cutting back the partial line failed: {t})"),
                    ));
                }
                Err(e)
            }
        }
    }

    /// The path of `results.jsonl`.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The fingerprint of a batch file: its size and an XXH3-128 hash of its
/// bytes, as one line of text.
pub fn fingerprint(batch_path: &Path) -> Result<String, String> {
    let f = File::open(batch_path)
        .map_err(|e| format!("failed to read the batch {}: {e}", batch_path.display()))?;
    let mut r = BufReader::with_capacity(1 << 16, f);
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let mut size: u64 = 0;
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(format!(
                    "failed to read the batch {}: {e}",
                    batch_path.display()
                ));
            }
        };
        if buf.is_empty() {
            break;
        }
        h.update(buf);
        let k = buf.len();
        size += k as u64;
        r.consume(k);
    }
    Ok(format!("size {size} xxh3-128 {:032x}\n", h.digest128()))
}

fn write_fingerprint(path: &Path, fp: &str) -> Result<(), String> {
    crate::outdir::write_atomic(path, fp.as_bytes())
        .map_err(|e| format!("failed to write {}: {e}", path.display()))
}

/// Drops a torn last line of `results.jsonl` (bytes after the last newline)
/// and returns the `line`s of every complete record.
fn repair_and_scan(path: &Path) -> Result<Done, String> {
    let f = File::open(path).map_err(|e| format!("failed to read {}: {e}", path.display()))?;
    let mut r = BufReader::with_capacity(1 << 16, f);
    let mut done = Done::default();
    let mut buf = Vec::new();
    let mut complete_len: u64 = 0;
    let mut number: u64 = 0;
    let mut torn = false;
    loop {
        buf.clear();
        let k = r
            .read_until(b'\n', &mut buf)
            .map_err(|e| format!("failed to read {}: {e}", path.display()))?;
        if k == 0 {
            break;
        }
        number += 1;
        if buf.last() != Some(&b'\n') {
            torn = true;
            break;
        }
        complete_len += k as u64;
        let text = &buf[..buf.len() - 1];
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let rec: ResultRecord = serde_json::from_slice(text).map_err(|e| {
            format!(
                "failed to resume: line {number} of {} is not a result record ({e})",
                path.display()
            )
        })?;
        done.insert(rec.line, rec.method.as_deref());
    }
    if torn {
        let f = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| format!("failed to repair {}: {e}", path.display()))?;
        f.set_len(complete_len)
            .and_then(|_| f.sync_all())
            .map_err(|e| {
                format!(
                    "failed to repair the torn last line of {}: {e}",
                    path.display()
                )
            })?;
    }
    Ok(done)
}

/// Streams every record of `out_dir/results.jsonl` with its byte offset, in
/// file order. A torn (newline-less) last line is skipped.
pub(crate) fn for_each_record(
    path: &Path,
    mut f: impl FnMut(u64, ResultRecord) -> Result<(), String>,
) -> Result<(), String> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("failed to read {}: {e}", path.display())),
    };
    let mut r = BufReader::with_capacity(1 << 16, file);
    let mut buf = Vec::new();
    let mut offset: u64 = 0;
    let mut number: u64 = 0;
    loop {
        buf.clear();
        let k = r
            .read_until(b'\n', &mut buf)
            .map_err(|e| format!("failed to read {}: {e}", path.display()))?;
        if k == 0 || buf.last() != Some(&b'\n') {
            break;
        }
        number += 1;
        let start = offset;
        offset += k as u64;
        let text = &buf[..buf.len() - 1];
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let rec: ResultRecord = serde_json::from_slice(text).map_err(|e| {
            format!(
                "failed to read line {number} of {}: not a result record ({e})",
                path.display()
            )
        })?;
        f(start, rec)?;
    }
    Ok(())
}

/// Reads the one record that starts at `offset` of `file`.
pub(crate) fn read_record_at(
    r: &mut BufReader<File>,
    offset: u64,
    path: &Path,
) -> Result<ResultRecord, String> {
    use std::io::Seek;
    r.seek(io::SeekFrom::Start(offset))
        .map_err(|e| format!("failed to read {}: {e}", path.display()))?;
    let mut buf = Vec::new();
    r.by_ref()
        .read_until(b'\n', &mut buf)
        .map_err(|e| format!("failed to read {}: {e}", path.display()))?;
    serde_json::from_slice(buf.trim_ascii_end()).map_err(|e| {
        format!(
            "failed to read the record at byte {offset} of {}: {e}",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use qst_shared::{Method, ProjectorSpec};

    fn job(out: &Path, method: Method) -> Job {
        Job {
            line: 3,
            id: "a-1".into(),
            dim: 2,
            method,
            projectors: ProjectorSpec::Builtin(qst_shared::Design::Nopovm),
            counts: vec![1.0; 4],
            truth: None,
            max_iters: 10,
            tol: 1e-8,
            warnings: Vec::new(),
            rho_path: out.join("rho").join("a-1.npy"),
            analysis: Default::default(),
        }
    }

    fn figures(ll: f64, linear: bool) -> JobFigures {
        JobFigures {
            iterations: if linear { None } else { Some(12) },
            converged: if linear { None } else { Some(true) },
            log_likelihood: ll,
            purity: 0.75,
            trace: 1.0,
            rank: 2,
            min_eigenvalue: 0.25,
            max_eigenvalue: 0.75,
            eigenvalue_entropy: 0.56,
            objective: None,
            fidelity: None,
            analysis: Default::default(),
            started: 1_700_000_000.25,
            seconds: 0.01,
        }
    }

    #[test]
    fn ok_record_json_has_spec_fields_and_nulls() {
        let out = Path::new("/tmp/out");
        let rec = ResultRecord::ok(
            &job(out, Method::Linear),
            &figures(f64::NEG_INFINITY, true),
            1,
            out,
        );
        let v: serde_json::Value = serde_json::from_str(&rec.to_json_line()).unwrap();
        assert_eq!(v["rho"], "rho/a-1.npy");
        assert_eq!(v["status"], "ok");
        assert_eq!(v["method"], "linear");
        assert_eq!(v["design"], "nopovm");
        assert!(v["log_likelihood"].is_null());
        assert!(v["iterations"].is_null() && v.get("iterations").is_some());
        assert!(v["converged"].is_null() && v.get("converged").is_some());
        assert!(v.get("fidelity").is_none());
        assert!(v.get("error").is_none());
        assert_eq!(v["worker"], 1);
        assert_eq!(v["started"], 1_700_000_000.25);
        let back: ResultRecord = serde_json::from_value(v).unwrap();
        assert_eq!(back, rec);

        let rec = ResultRecord::ok(&job(out, Method::Mle), &figures(-3.5, false), 0, out);
        let v: serde_json::Value = serde_json::from_str(&rec.to_json_line()).unwrap();
        assert_eq!(v["log_likelihood"], -3.5);
        assert_eq!(v["iterations"], 12);
        assert_eq!(v["converged"], true);
    }

    #[test]
    fn error_record_json_names_known_fields_only() {
        let v: serde_json::Value = serde_json::from_str(
            &ResultRecord::error(4, None, "line 4: not valid JSON".into()).to_json_line(),
        )
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"line": 4, "id": null, "status": "error", "error": "line 4: not valid JSON"})
        );
        let out = Path::new("/o");
        let v: serde_json::Value = serde_json::from_str(
            &ResultRecord::job_error(&job(out, Method::Mle), "bad".into()).to_json_line(),
        )
        .unwrap();
        assert_eq!(v["dim"], 2);
        assert_eq!(v["method"], "mle");
        assert_eq!(v["id"], "a-1");
        assert!(v.get("rho").is_none());
    }

    fn write_batch(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("b.jsonl");
        fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn fresh_open_refuses_existing_results_and_resume_repairs_torn_line() {
        let tmp = tempfile::tempdir().unwrap();
        let batch = write_batch(tmp.path(), "{}\n{}\n{}\n");
        let out = tmp.path().join("out");
        let (mut w, done) = ResultsWriter::open(&out, &batch, false).unwrap();
        assert!(done.is_empty());
        assert!(out.join("rho").is_dir());
        w.append(&ResultRecord::error(1, Some("x"), "one".into()))
            .unwrap();
        w.append(&ResultRecord::error(2, Some("y"), "two".into()))
            .unwrap();
        drop(w);
        // A crash mid-write: half of the third line.
        let mut f = OpenOptions::new()
            .append(true)
            .open(out.join(RESULTS_FILE))
            .unwrap();
        f.write_all(b"{\"line\":3,\"id\":\"z\",\"sta").unwrap();
        drop(f);

        let err = ResultsWriter::open(&out, &batch, false).err().unwrap();
        assert!(err.contains("already has results"), "{err}");
        // Refusing did not touch the file.
        assert!(
            fs::read_to_string(out.join(RESULTS_FILE))
                .unwrap()
                .ends_with("\"sta")
        );

        let (mut w, done) = ResultsWriter::open(&out, &batch, true).unwrap();
        assert_eq!(done.lines(), HashSet::from([1, 2]));
        w.append(&ResultRecord::error(3, Some("z"), "three".into()))
            .unwrap();
        let text = fs::read_to_string(out.join(RESULTS_FILE)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        for (i, l) in lines.iter().enumerate() {
            let r: ResultRecord = serde_json::from_str(l).unwrap();
            assert_eq!(r.line, i as u64 + 1);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn resume_keeps_every_complete_line_whatever_the_cut(cut_frac in 0.0f64..1.0) {
            let tmp = tempfile::tempdir().unwrap();
            let batch = write_batch(tmp.path(), "x\n");
            let out = tmp.path().join("out");
            let (mut w, _) = ResultsWriter::open(&out, &batch, false).unwrap();
            for line in 1..=6 {
                w.append(&ResultRecord::error(line, Some("a,\"b\""), format!("error {line}"))).unwrap();
            }
            drop(w);
            let path = out.join(RESULTS_FILE);
            let full = fs::read(&path).unwrap();
            let cut = ((full.len() as f64) * cut_frac) as usize;
            fs::write(&path, &full[..cut]).unwrap();
            let whole = full[..cut].iter().filter(|&&b| b == b'\n').count();
            let (_, done) = ResultsWriter::open(&out, &batch, true).unwrap();
            proptest::prop_assert_eq!(done.lines(), (1..=whole as u64).collect::<HashSet<u64>>());
            let kept = fs::read(&path).unwrap();
            let end = full[..cut].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            proptest::prop_assert_eq!(&kept[..], &full[..end]);
        }
    }

    #[test]
    fn resume_refuses_a_changed_batch() {
        let tmp = tempfile::tempdir().unwrap();
        let batch = write_batch(tmp.path(), "{\"id\":\"a\"}\n");
        let out = tmp.path().join("out");
        let (mut w, _) = ResultsWriter::open(&out, &batch, false).unwrap();
        w.append(&ResultRecord::error(1, Some("a"), "x".into()))
            .unwrap();
        drop(w);
        // Same size, one byte different.
        write_batch(tmp.path(), "{\"id\":\"b\"}\n");
        let err = ResultsWriter::open(&out, &batch, true).err().unwrap();
        assert!(err.contains("changed"), "{err}");
        // Restored: resume works again.
        write_batch(tmp.path(), "{\"id\":\"a\"}\n");
        let (_, done) = ResultsWriter::open(&out, &batch, true).unwrap();
        assert_eq!(done.lines(), HashSet::from([1]));
    }

    #[test]
    fn unreadable_batch_or_unwritable_out_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let err = ResultsWriter::open(
            &tmp.path().join("o"),
            &tmp.path().join("missing.jsonl"),
            false,
        )
        .err()
        .unwrap();
        assert!(err.starts_with("failed to read the batch"), "{err}");
        let batch = write_batch(tmp.path(), "\n");
        // A file where the output directory should be.
        let blocker = tmp.path().join("blocker");
        fs::write(&blocker, "x").unwrap();
        let err = ResultsWriter::open(&blocker.join("out"), &batch, false)
            .err()
            .unwrap();
        assert!(
            err.starts_with("failed to create the output directory"),
            "{err}"
        );
    }
}
