//! Result records and `results.jsonl` (docs/reference.md): one JSON line per batch
//! line, appended and flushed as each job ends; `--resume` support (repairing
//! a torn last line, listing the lines that already have a result) and the
//! batch fingerprint that refuses a resume on a changed batch.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use crate::outdir::OutDirError;

pub use crate::record::{BootstrapRecord, ErrorRecord, OkRecord, ResultRecord};

/// The name of the results file inside the output directory.
pub const RESULTS_FILE: &str = "results.jsonl";
/// The name of the batch fingerprint file inside the output directory.
pub const FINGERPRINT_FILE: &str = "batch.fingerprint";

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
    #[must_use]
    pub fn has(&self, key: &(u64, String)) -> bool {
        self.keys.contains(key) || self.keys.contains(&(key.0, String::new()))
    }
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
    #[cfg(test)]
    /// The lines that have at least one result.
    #[must_use]
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
    ///
    /// # Errors
    ///
    /// [`ResultsError`] when the results or fingerprint files cannot be read or written, or the
    /// fingerprint does not match.
    pub fn open(
        out_dir: &Path,
        batch_path: &Path,
        resume: bool,
    ) -> Result<(ResultsWriter, Done), ResultsError> {
        crate::outdir::create_dir(out_dir).map_err(|e| match e {
            OutDirError::Io { source, .. } => ResultsError::CreateOutDir {
                path: out_dir.to_path_buf(),
                source,
            },
            e => e.into(),
        })?;
        // One run at a time: a second one stops here, before touching anything.
        let lock = crate::outdir::lock_dir(out_dir)?;
        crate::outdir::create_dir(&out_dir.join("rho"))?;
        let fingerprint = fingerprint(batch_path)?;
        let path = out_dir.join(RESULTS_FILE);
        // Never read, cut or append through a link (or to a FIFO) planted there.
        if let Ok(m) = fs::symlink_metadata(&path)
            && !m.is_file()
        {
            return Err(ResultsError::NotAFile { path });
        }
        let has_results = match fs::metadata(&path) {
            Ok(m) => m.len() > 0,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(source) => return Err(ResultsError::Read { path, source }),
        };
        let fp_path = out_dir.join(FINGERPRINT_FILE);
        let mut done = Done::default();
        if has_results {
            if !resume {
                return Err(ResultsError::HasResults {
                    dir: out_dir.to_path_buf(),
                });
            }
            check_fingerprint(&fp_path, &fingerprint, batch_path, out_dir)?;
            done = repair_and_scan(&path)?;
        } else {
            write_fingerprint(&fp_path, &fingerprint)?;
        }
        let file =
            crate::outdir::open_append(&path).map_err(|source| ResultsError::OpenAppend {
                path: path.clone(),
                source,
            })?;
        let len = file
            .metadata()
            .map_err(|source| ResultsError::Read {
                path: path.clone(),
                source,
            })?
            .len();
        let writer = ResultsWriter {
            file,
            path,
            len,
            broken: false,
            _lock: lock,
        };
        Ok((writer, done))
    }

    #[cfg(test)]
    /// Appends one JSON line and flushes it (one `write_all` of the whole
    /// line, newline included).
    ///
    /// A write that fails part-way (a full disk) is cut back to the last
    /// complete line, so that no later line is ever appended after a fragment;
    /// if even that fails, every later append is refused.
    ///
    /// # Errors
    ///
    /// When the write fails, or an earlier one left the file unrepaired.
    pub fn append(&mut self, rec: &ResultRecord) -> io::Result<()> {
        self.append_all(std::slice::from_ref(rec))
    }

    /// Appends several records with one write and one flush; a failed or
    /// partial write is cut back to the last whole line.
    ///
    /// # Errors
    ///
    /// When the write fails, or an earlier one left the file unrepaired.
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
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Why `results.jsonl` or the batch fingerprint could not be used; reads
/// after "failed to".
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("create the output directory {}: {source}", path.display())]
    CreateOutDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    OutDir(#[from] OutDirError),
    #[error("read the batch {}: {source}", path.display())]
    ReadBatch {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("use {}: it is not a regular file (a symbolic link, FIFO or directory)", path.display())]
    NotAFile { path: PathBuf },
    #[error("read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("start: {} already has results; pass --resume or another --out", dir.display())]
    HasResults { dir: PathBuf },
    #[error(
        "resume: the batch {} changed since the first run into {}",
        batch.display(),
        dir.display()
    )]
    BatchChanged { batch: PathBuf, dir: PathBuf },
    #[error("write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("resume: line {number} of {} is not a result record ({source})", path.display())]
    NotAResumeRecord {
        number: u64,
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("repair {}: {source}", path.display())]
    OpenRepair {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("repair the torn last line of {}: {source}", path.display())]
    Repair {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("open {} for writing: {source}", path.display())]
    OpenAppend {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("read line {number} of {}: not a result record ({source})", path.display())]
    NotARecord {
        number: u64,
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("read the record at byte {offset} of {}: {source}", path.display())]
    RecordAt {
        offset: u64,
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

fn read_error(path: &Path) -> impl FnOnce(io::Error) -> ResultsError + use<> {
    let path = path.to_path_buf();
    move |source| ResultsError::Read { path, source }
}

/// The fingerprint of a batch file: its size and an XXH3-128 hash of its
/// bytes, as one line of text.
///
/// # Errors
///
/// [`ResultsError`] when the batch file cannot be read.
pub fn fingerprint(batch_path: &Path) -> Result<String, ResultsError> {
    let read_batch = |source| ResultsError::ReadBatch {
        path: batch_path.to_path_buf(),
        source,
    };
    let f = File::open(batch_path).map_err(read_batch)?;
    let mut r = BufReader::with_capacity(1 << 16, f);
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let mut size: u64 = 0;
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_batch(e)),
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

fn write_fingerprint(path: &Path, fp: &str) -> Result<(), ResultsError> {
    crate::outdir::write_atomic(path, fp.as_bytes()).map_err(|source| ResultsError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// On a resume: the batch must be the one of the first run (a directory
/// without a fingerprint gets one now).
fn check_fingerprint(
    fp_path: &Path,
    fingerprint: &str,
    batch_path: &Path,
    out_dir: &Path,
) -> Result<(), ResultsError> {
    match fs::read_to_string(fp_path) {
        Ok(old) if old.trim() != fingerprint.trim() => Err(ResultsError::BatchChanged {
            batch: batch_path.to_path_buf(),
            dir: out_dir.to_path_buf(),
        }),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => write_fingerprint(fp_path, fingerprint),
        Err(e) => Err(read_error(fp_path)(e)),
    }
}

/// Drops a torn last line of `results.jsonl` (bytes after the last newline)
/// and returns the `line`s of every complete record.
fn repair_and_scan(path: &Path) -> Result<Done, ResultsError> {
    let f = File::open(path).map_err(read_error(path))?;
    let mut r = BufReader::with_capacity(1 << 16, f);
    let mut done = Done::default();
    let mut buf = Vec::new();
    let mut complete_len: u64 = 0;
    let mut number: u64 = 0;
    let mut torn = false;
    loop {
        buf.clear();
        let k = r.read_until(b'\n', &mut buf).map_err(read_error(path))?;
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
        let rec: ResultRecord =
            serde_json::from_slice(text).map_err(|source| ResultsError::NotAResumeRecord {
                number,
                path: path.to_path_buf(),
                source,
            })?;
        done.insert(rec.line(), rec.method());
    }
    if torn {
        cut_to(path, complete_len)?;
    }
    Ok(done)
}

/// Cuts `path` back to its first `len` bytes, durably.
fn cut_to(path: &Path, len: u64) -> Result<(), ResultsError> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|source| ResultsError::OpenRepair {
            path: path.to_path_buf(),
            source,
        })?;
    f.set_len(len)
        .and_then(|()| f.sync_all())
        .map_err(|source| ResultsError::Repair {
            path: path.to_path_buf(),
            source,
        })
}

/// Streams every record of `out_dir/results.jsonl` with its byte offset, in
/// file order. A torn (newline-less) last line is skipped.
pub(crate) fn for_each_record(
    path: &Path,
    mut f: impl FnMut(u64, ResultRecord),
) -> Result<(), ResultsError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(read_error(path)(e)),
    };
    let mut r = BufReader::with_capacity(1 << 16, file);
    let mut buf = Vec::new();
    let mut offset: u64 = 0;
    let mut number: u64 = 0;
    loop {
        buf.clear();
        let k = r.read_until(b'\n', &mut buf).map_err(read_error(path))?;
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
        let rec: ResultRecord =
            serde_json::from_slice(text).map_err(|source| ResultsError::NotARecord {
                number,
                path: path.to_path_buf(),
                source,
            })?;
        f(start, rec);
    }
    Ok(())
}

/// Reads the one record that starts at `offset` of `file`.
pub(crate) fn read_record_at(
    r: &mut BufReader<File>,
    offset: u64,
    path: &Path,
) -> Result<ResultRecord, ResultsError> {
    use std::io::Seek;
    r.seek(io::SeekFrom::Start(offset))
        .map_err(read_error(path))?;
    let mut buf = Vec::new();
    r.by_ref()
        .read_until(b'\n', &mut buf)
        .map_err(read_error(path))?;
    serde_json::from_slice(buf.trim_ascii_end()).map_err(|source| ResultsError::RecordAt {
        offset,
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use qst_shared::{Job, JobFigures, Method, ProjectorSpec};

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
            analysis: Box::default(),
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
            analysis: Box::default(),
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

        let err = ResultsWriter::open(&out, &batch, false)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("already has results"), "{err}");
        // Refusing did not touch the file.
        assert!(
            fs::read_to_string(out.join(RESULTS_FILE))
                .unwrap()
                .ends_with("\"sta")
        );

        let (mut w, done) = reopen(&out, &batch);
        assert_eq!(done.lines(), HashSet::from([1, 2]));
        w.append(&ResultRecord::error(3, Some("z"), "three".into()))
            .unwrap();
        let text = fs::read_to_string(out.join(RESULTS_FILE)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        for (i, l) in lines.iter().enumerate() {
            let r: ResultRecord = serde_json::from_str(l).unwrap();
            assert_eq!(r.line(), i as u64 + 1);
        }
    }

    /// `ResultsWriter::open(.., resume)` just after a writer of this process
    /// was dropped. The run lock is a `flock` on an open file: a child that
    /// another test thread is forking at that moment holds a copy of the
    /// descriptor until its `exec` closes it (close-on-exec), so the lock can
    /// stay taken, by this very process, for that instant. Only that case
    /// (Busy, our own pid) is tried again.
    fn reopen(out: &Path, batch: &Path) -> (ResultsWriter, Done) {
        open_resume(out, batch).unwrap()
    }

    /// [`reopen`], with the error of an open that fails for another reason.
    fn open_resume(out: &Path, batch: &Path) -> Result<(ResultsWriter, Done), ResultsError> {
        let me = std::process::id().to_string();
        for _ in 0..200 {
            match ResultsWriter::open(out, batch, true) {
                Err(ResultsError::OutDir(crate::outdir::OutDirError::Busy { pid, .. }))
                    if pid == me =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                other => return other,
            }
        }
        panic!(
            "the run lock of {} stayed taken by this process",
            out.display()
        )
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
            // In [0, len]: `cut_frac` is in [0, 1].
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let cut = ((full.len() as f64) * cut_frac) as usize;
            fs::write(&path, &full[..cut]).unwrap();
            #[allow(clippy::naive_bytecount)] // a test's few hundred bytes
            let whole = full[..cut].iter().filter(|&&b| b == b'\n').count();
            let (_, done) = reopen(&out, &batch);
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
        let err = open_resume(&out, &batch).err().unwrap().to_string();
        assert!(err.contains("changed"), "{err}");
        // Restored: resume works again.
        write_batch(tmp.path(), "{\"id\":\"a\"}\n");
        let (_, done) = reopen(&out, &batch);
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
        .unwrap()
        .to_string();
        assert!(err.starts_with("read the batch"), "{err}");
        let batch = write_batch(tmp.path(), "\n");
        // A file where the output directory should be.
        let blocker = tmp.path().join("blocker");
        fs::write(&blocker, "x").unwrap();
        let err = ResultsWriter::open(&blocker.join("out"), &batch, false)
            .err()
            .unwrap()
            .to_string();
        assert!(err.starts_with("create the output directory"), "{err}");
    }
}
