//! `qst merge OUT SHARD_DIR…`: the output directories of the shards of one
//! batch (`qst run --shard i/N`, see [`crate::shard`]) become one output
//! directory, as if one `qst run` had run the whole batch.
//!
//! Checks first, writes nothing until they pass: every directory is a shard
//! (`shard.json`) of the same batch (fingerprint, which must also be the
//! batch file's now) and of the same N, no shard twice; every job line of the
//! batch has exactly one result, in the shard it belongs to. A line without a
//! result is listed with the command that completes its shard (exit 1); a
//! line with two results is named (exit 1).
//!
//! Then OUT gets `results.jsonl` (the shards' lines, verbatim, in line
//! order), `rho/` (hard links to the shards' files, copies across file
//! systems), `summary.csv`/`summary.json` (rebuilt by
//! [`crate::summary::write_summaries`]), `batch.fingerprint`, the shards'
//! logs under `logs/shard-<i>/` and `merge.json`. Everything is built in
//! `OUT/.qst-merge/` and then renamed into place entry by entry; a rerun
//! (after an interruption, or a second merge) starts that directory afresh,
//! so the same shards always give the same OUT. OUT may hold other things
//! (the Slurm scripts and shard directories of `qst slurm`); an OUT holding
//! the results of a plain run is refused.

use std::collections::{HashMap, HashSet};

use qst_shared::Method;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::input::is_matrix;
use crate::results::{
    FINGERPRINT_FILE, RESULTS_FILE, ResultRecord, ResultsError, fingerprint, for_each_record,
};
use crate::run::quote;
use crate::shard::{ShardError, ShardRecord, jsonl_job_lines};
use crate::summary::{Summary, SummaryError, write_summaries};

/// The record of a merge inside OUT.
pub const MERGE_FILE: &str = "merge.json";
/// The staging directory inside OUT.
const STAGING: &str = ".qst-merge";
/// What a merge owns in OUT, in the order they are put in place.
const ENTRIES: [&str; 7] = [
    RESULTS_FILE,
    "summary.csv",
    "summary.json",
    FINGERPRINT_FILE,
    "rho",
    "logs",
    MERGE_FILE,
];
/// Lines named per shard in a message before "and N more".
const SHOWN_LINES: usize = 12;

/// Why a merge could not run at all (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("failed to merge: give at least one shard output directory")]
    NoShards,
    #[error("failed to merge: {0} has no shard.json, so it is not the output of `qst run --shard`")]
    NotAShard(String),
    #[error(transparent)]
    Shard(#[from] ShardError),
    #[error(
        "failed to merge: {dir} ran a different batch than {first} (batch fingerprints {theirs:?} and {ours:?})"
    )]
    OtherBatch {
        dir: String,
        first: String,
        theirs: String,
        ours: String,
    },
    #[error(
        "failed to merge: {dir} is shard {theirs} but {first} is shard {ours}: every shard must split the batch into the same number of shards"
    )]
    OtherCount {
        dir: String,
        first: String,
        theirs: String,
        ours: String,
    },
    #[error("failed to merge: {first} and {dir} both hold shard {shard}; give one of them")]
    SameShard {
        first: String,
        dir: String,
        shard: String,
    },
    #[error(
        "failed to merge: the batch {batch} changed since its shards ran (it has {now} job lines and fingerprint {fp:?}; the shards ran {then} job lines)"
    )]
    BatchChanged {
        batch: String,
        now: usize,
        then: u64,
        fp: String,
    },
    #[error(
        "failed to merge into {0}: it holds the results of a run, not of a merge; choose another OUT"
    )]
    OutIsARun(String),
    #[error("failed to merge into {out}: it is one of the shard directories")]
    OutIsAShard { out: String },
    #[error("failed to {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: io::Error,
    },
    #[error("failed to merge: failed to {0}")]
    Results(#[source] ResultsError),
    #[error("failed to merge: failed to {0}")]
    Summary(#[source] SummaryError),
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> MergeError + use<> {
    let path = path.display().to_string();
    move |source| MergeError::Io { what, path, source }
}

/// How a merge ended.
#[derive(Debug)]
pub enum MergeOutcome {
    /// OUT was written.
    Merged(MergeReport),
    /// Lines without a result, or with two: nothing was written. One
    /// sentence per problem (a missing shard's names its rerun command).
    Incomplete(Vec<String>),
}

/// A written merge.
#[derive(Debug, Clone)]
pub struct MergeReport {
    pub out: PathBuf,
    /// Result lines written.
    pub lines: u64,
    /// Of them, `error` results.
    pub failed: u64,
    /// ρ files hard-linked and copied.
    pub linked: u64,
    pub copied: u64,
}

/// `OUT/merge.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MergeRecord {
    pub batch: PathBuf,
    pub fingerprint: String,
    pub shards: usize,
    /// The shard directories, by shard index.
    pub shard_dirs: Vec<PathBuf>,
    pub lines: u64,
}

struct ShardIn {
    dir: PathBuf,
    rec: ShardRecord,
}

/// Where one result line is.
struct Found {
    line: u64,
    /// The method's place in `Method::ALL` (a sample's methods in that order).
    method_rank: usize,
    shard: usize,
    offset: u64,
    ok: bool,
    rho: Option<String>,
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Merges `shard_dirs` into `out`.
///
/// # Errors
///
/// [`MergeError`] when a shard directory cannot be read or does not fit the others, or `out`
/// cannot be written.
pub fn merge(out: &Path, shard_dirs: &[PathBuf]) -> Result<MergeOutcome, MergeError> {
    if shard_dirs.is_empty() {
        return Err(MergeError::NoShards);
    }
    let out = absolute(out);
    let shards = read_shards(&out, shard_dirs)?;
    let first = &shards[0];
    let n = first.rec.of;
    let batch = first.rec.batch.clone();
    let fp = first.rec.fingerprint.clone();
    let job_lines = batch_job_lines(first)?;
    let shard_of: HashMap<u64, usize> = job_lines
        .iter()
        .enumerate()
        .map(|(j, &line)| (line, j % n))
        .collect();
    let (mut found, mut problems) = collect_results(&shards, &shard_of, &batch, n)?;
    let seen: HashSet<u64> = found.iter().map(|f| f.line).collect();
    problems.extend(missing(&shards, &job_lines, &seen, n));
    if !problems.is_empty() {
        return Ok(MergeOutcome::Incomplete(problems));
    }
    found.sort_by_key(|f| (f.line, f.method_rank));
    let record = MergeRecord {
        batch,
        fingerprint: fp,
        shards: n,
        shard_dirs: shards.iter().map(|s| s.dir.clone()).collect(),
        lines: found.len() as u64,
    };
    write_out(&out, &shards, &found, &record)
}

/// The shards' records, sorted by shard, checked to be of one batch and one
/// N, each shard once.
fn read_shards(out: &Path, shard_dirs: &[PathBuf]) -> Result<Vec<ShardIn>, MergeError> {
    let mut shards: Vec<ShardIn> = Vec::new();
    for d in shard_dirs {
        let dir = absolute(d);
        if dir == out {
            return Err(MergeError::OutIsAShard {
                out: out.display().to_string(),
            });
        }
        let rec = ShardRecord::read(&dir)?
            .ok_or_else(|| MergeError::NotAShard(dir.display().to_string()))?;
        shards.push(ShardIn { dir, rec });
    }
    shards.sort_by(|a, b| (a.rec.shard, &a.dir).cmp(&(b.rec.shard, &b.dir)));
    let first = &shards[0];
    for s in &shards[1..] {
        if s.rec.fingerprint != first.rec.fingerprint {
            return Err(MergeError::OtherBatch {
                dir: s.dir.display().to_string(),
                first: first.dir.display().to_string(),
                theirs: s.rec.fingerprint.clone(),
                ours: first.rec.fingerprint.clone(),
            });
        }
        if s.rec.of != first.rec.of {
            return Err(MergeError::OtherCount {
                dir: s.dir.display().to_string(),
                first: first.dir.display().to_string(),
                theirs: s.rec.shard().to_string(),
                ours: first.rec.shard().to_string(),
            });
        }
    }
    for w in shards.windows(2) {
        if w[0].rec.shard == w[1].rec.shard {
            return Err(MergeError::SameShard {
                first: w[0].dir.display().to_string(),
                dir: w[1].dir.display().to_string(),
                shard: w[0].rec.shard().to_string(),
            });
        }
    }
    Ok(shards)
}

/// The batch's job lines, in order (job line j is in shard j mod N), after
/// checking that the batch has not changed since the shards ran.
fn batch_job_lines(first: &ShardIn) -> Result<Vec<u64>, MergeError> {
    let batch = &first.rec.batch;
    let now_fp = fingerprint(batch).map_err(MergeError::Results)?;
    let job_lines: Vec<u64> = if is_matrix(batch) {
        (1..=first.rec.batch_jobs).collect()
    } else {
        jsonl_job_lines(batch).map_err(io_err("read the batch", batch))?
    };
    if now_fp.trim() != first.rec.fingerprint || job_lines.len() as u64 != first.rec.batch_jobs {
        return Err(MergeError::BatchChanged {
            batch: batch.display().to_string(),
            now: job_lines.len(),
            then: first.rec.batch_jobs,
            fp: now_fp.trim().to_string(),
        });
    }
    Ok(job_lines)
}

/// Every result line of every shard, keyed by (line, method): each must be
/// in its own shard and there once.
fn collect_results(
    shards: &[ShardIn],
    shard_of: &HashMap<u64, usize>,
    batch: &Path,
    n: usize,
) -> Result<(Vec<Found>, Vec<String>), MergeError> {
    let mut problems = Vec::new();
    let mut found: Vec<Found> = Vec::new();
    let mut seen: HashMap<(u64, String), usize> = HashMap::new();
    for (si, s) in shards.iter().enumerate() {
        let path = s.dir.join(RESULTS_FILE);
        for_each_record(&path, |offset, rec| {
            let line = rec.line();
            match shard_of.get(&line) {
                None => problems.push(format!(
                    "{} has a result for line {}, which is not a job line of the batch {}",
                    path.display(),
                    line,
                    batch.display()
                )),
                Some(&k) if k != s.rec.shard => problems.push(format!(
                    "{} (shard {}) has a result for line {}, which belongs to shard {k}/{n}",
                    path.display(),
                    s.rec.shard(),
                    line
                )),
                Some(_) => {
                    let method = rec.method().unwrap_or_default().to_owned();
                    let key = (line, method.clone());
                    if let Some(&other) = seen.get(&key) {
                        let where_ = if other == si {
                            format!("twice in {}", path.display())
                        } else {
                            format!(
                                "in {} and in {}",
                                shards[other].dir.join(RESULTS_FILE).display(),
                                path.display()
                            )
                        };
                        let by = if method.is_empty() {
                            String::new()
                        } else {
                            format!(" by {method}")
                        };
                        problems.push(format!("line {line}{by} has two results: {where_}"));
                    } else {
                        seen.insert(key, si);
                        found.push(Found {
                            line,
                            method_rank: Method::parse(&method)
                                .ok()
                                .and_then(|m| Method::ALL.iter().position(|x| *x == m))
                                .unwrap_or(usize::MAX),
                            shard: si,
                            offset,
                            ok: rec.is_ok(),
                            rho: match &rec {
                                ResultRecord::Ok(r) => Some(r.rho.clone()),
                                ResultRecord::Error(_) => None,
                            },
                        });
                    }
                }
            }
        })
        .map_err(MergeError::Results)?;
    }
    Ok((found, problems))
}

/// One sentence per shard with lines that have no result.
fn missing(shards: &[ShardIn], job_lines: &[u64], seen: &HashSet<u64>, n: usize) -> Vec<String> {
    let mut by_shard: Vec<Vec<u64>> = vec![Vec::new(); n];
    for (j, line) in job_lines.iter().enumerate() {
        if !seen.contains(line) {
            by_shard[j % n].push(*line);
        }
    }
    let mut out = Vec::new();
    for (k, lines) in by_shard.iter().enumerate() {
        if lines.is_empty() {
            continue;
        }
        let mut list: Vec<String> = lines.iter().take(SHOWN_LINES).map(u64::to_string).collect();
        if lines.len() > SHOWN_LINES {
            list.push(format!("and {} more", lines.len() - SHOWN_LINES));
        }
        let plural = if lines.len() == 1 { "line" } else { "lines" };
        let list = list.join(", ");
        match shards.iter().find(|s| s.rec.shard == k) {
            Some(s) => out.push(format!(
                "shard {k}/{n} ({}): {} {plural} without a result ({plural} {list}); complete it with: {}",
                s.dir.display(),
                lines.len(),
                s.rec.resume
            )),
            None => out.push(format!(
                "shard {k}/{n}: no output directory was given for it, so {} {plural} have no result ({plural} {list}); run it with: qst run {} --shard {k}/{n} --out {}",
                lines.len(),
                quote(&shards[0].rec.batch),
                guess_dir(shards, k)
            )),
        }
    }
    out
}

/// `PARENT/shard-k` when the given directories are named `shard-<i>` in one
/// parent, else `DIR`.
fn guess_dir(shards: &[ShardIn], k: usize) -> String {
    let parent = shards[0].dir.parent();
    let regular = shards.iter().all(|s| {
        s.dir.parent() == parent
            && s.dir.file_name().and_then(|f| f.to_str()) == Some(&format!("shard-{}", s.rec.shard))
    });
    match (regular, parent) {
        (true, Some(p)) => quote(&p.join(format!("shard-{k}"))),
        _ => "DIR".into(),
    }
}

fn write_out(
    out: &Path,
    shards: &[ShardIn],
    found: &[Found],
    record: &MergeRecord,
) -> Result<MergeOutcome, MergeError> {
    // OUT must be this user's own (not writable by others), like a run's.
    crate::outdir::create_dir(out)
        .map_err(|e| io_err("use", out)(io::Error::other(e.to_string())))?;
    let staging = out.join(STAGING);
    let ours =
        !out.join(RESULTS_FILE).exists() || out.join(MERGE_FILE).exists() || staging.exists();
    if !ours {
        return Err(MergeError::OutIsARun(out.display().to_string()));
    }
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(io_err("remove the unfinished merge", &staging))?;
    }
    let new = staging.join("new");
    let old = staging.join("old");
    for d in [new.join("rho"), new.join("logs"), old.clone()] {
        fs::create_dir_all(&d).map_err(io_err("create", &d))?;
    }

    let report = copy_results(out, shards, found, &new)?;

    // The summaries, rebuilt from the merged results.
    let peak = shards
        .iter()
        .filter_map(|s| {
            let b = fs::read(s.dir.join("summary.json")).ok()?;
            serde_json::from_slice::<Summary>(&b).ok()
        })
        .map(|s| s.supervisor_peak_rss_bytes)
        .max()
        .unwrap_or(0);
    write_summaries(&new, &[], peak, None).map_err(MergeError::Summary)?;

    let fp_path = new.join(FINGERPRINT_FILE);
    fs::write(&fp_path, format!("{}\n", record.fingerprint)).map_err(io_err("write", &fp_path))?;
    for s in shards {
        if s.rec.logs.is_dir() {
            copy_tree(
                &s.rec.logs,
                &new.join("logs").join(format!("shard-{}", s.rec.shard)),
            )?;
        }
    }
    let mj = new.join(MERGE_FILE);
    let mut text = serde_json::to_string_pretty(record)
        .map_err(|e| io_err("write", &mj)(io::Error::other(e)))?;
    text.push('\n');
    fs::write(&mj, text).map_err(io_err("write", &mj))?;

    // Into place, entry by entry; merge.json last.
    for name in ENTRIES {
        let target = out.join(name);
        if fs::symlink_metadata(&target).is_ok() {
            fs::rename(&target, old.join(name)).map_err(io_err("move aside", &target))?;
        }
        fs::rename(new.join(name), &target).map_err(io_err("put in place", &target))?;
    }
    fs::remove_dir_all(&staging).map_err(io_err("remove", &staging))?;
    Ok(MergeOutcome::Merged(report))
}

/// `results.jsonl`, the shards' lines verbatim in `found`'s order, into
/// `new`, with their ρ files beside it (hard links, else copies).
fn copy_results(
    out: &Path,
    shards: &[ShardIn],
    found: &[Found],
    new: &Path,
) -> Result<MergeReport, MergeError> {
    let mut readers: Vec<BufReader<File>> = Vec::new();
    for s in shards {
        let p = s.dir.join(RESULTS_FILE);
        let f = File::open(&p).map_err(io_err("read", &p))?;
        readers.push(BufReader::with_capacity(1 << 16, f));
    }
    let results = new.join(RESULTS_FILE);
    let f = File::create(&results).map_err(io_err("write", &results))?;
    let mut w = BufWriter::new(f);
    let mut report = MergeReport {
        out: out.to_path_buf(),
        lines: 0,
        failed: 0,
        linked: 0,
        copied: 0,
    };
    let mut buf = Vec::new();
    for f in found {
        let s = &shards[f.shard];
        let src_results = s.dir.join(RESULTS_FILE);
        let r = &mut readers[f.shard];
        buf.clear();
        r.seek(io::SeekFrom::Start(f.offset))
            .and_then(|_| r.read_until(b'\n', &mut buf))
            .map_err(io_err("read", &src_results))?;
        w.write_all(&buf).map_err(io_err("write", &results))?;
        report.lines += 1;
        if !f.ok {
            report.failed += 1;
        }
        if let (true, Some(rho)) = (f.ok, &f.rho)
            && Path::new(rho).is_relative()
        {
            let src = s.dir.join(rho);
            let dst = new.join(rho);
            if let Some(parent) = dst.parent() {
                fs::create_dir_all(parent).map_err(io_err("create", parent))?;
            }
            match fs::hard_link(&src, &dst) {
                Ok(()) => report.linked += 1,
                Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
                    fs::copy(&src, &dst).map_err(io_err("copy", &src))?;
                    report.copied += 1;
                }
                Err(e) => return Err(io_err("link", &src)(e)),
            }
        }
    }
    let f = w
        .into_inner()
        .map_err(|e| io_err("write", &results)(e.into_error()))?;
    f.sync_all().map_err(io_err("write", &results))?;

    Ok(report)
}

/// Copies a directory tree (files and directories).
fn copy_tree(from: &Path, to: &Path) -> Result<(), MergeError> {
    fs::create_dir_all(to).map_err(io_err("create", to))?;
    let mut entries: Vec<_> = fs::read_dir(from)
        .map_err(io_err("read", from))?
        .collect::<Result<_, _>>()
        .map_err(io_err("read", from))?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for e in entries {
        let src = e.path();
        let dst = to.join(e.file_name());
        let ty = e.file_type().map_err(io_err("read", &src))?;
        if ty.is_dir() {
            copy_tree(&src, &dst)?;
        } else if ty.is_file() {
            fs::copy(&src, &dst).map_err(io_err("copy", &src))?;
        }
    }
    Ok(())
}
