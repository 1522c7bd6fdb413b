//! `qst run --shard`: one batch spread over many processes (or nodes), each
//! running the job lines j (counted from 0 over the lines that are neither
//! blank nor comments; a CSV's columns) with j mod N = i.
//!
//! A shard spec is `i/N`, `slurm` (a Slurm job array task:
//! `SLURM_ARRAY_TASK_ID` of `SLURM_ARRAY_TASK_COUNT`) or `k8s/N` (a Kubernetes
//! indexed Job: `JOB_COMPLETION_INDEX`). A shard's output directory records
//! which shard it holds in `shard.json`, beside `batch.fingerprint`; `qst
//! merge` ([`crate::merge`]) reads it back.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::batch::MAX_LINE_BYTES;

/// The name of the shard record inside a shard's output directory.
pub const SHARD_FILE: &str = "shard.json";

/// Shard `index` of `count`: the job lines j with j mod count = index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

/// Why a shard spec or a shard's output directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error("failed to read --shard {0:?}: expected i/N (0 <= i < N, e.g. 2/8), slurm, or k8s/N")]
    Syntax(String),
    #[error(
        "failed to read --shard {spec:?}: the shard index {index} is not below the shard count {count}"
    )]
    IndexTooLarge {
        spec: String,
        index: usize,
        count: usize,
    },
    #[error("failed to read --shard {0:?}: the shard count must be at least 1")]
    ZeroCount(String),
    #[error("failed to read --shard {spec}: {var} is not set (is this {what}?)")]
    MissingVar {
        spec: &'static str,
        var: &'static str,
        what: &'static str,
    },
    #[error("failed to read --shard {spec}: {var}={value:?} is not a whole number")]
    BadVar {
        spec: &'static str,
        var: &'static str,
        value: String,
    },
    #[error(
        "failed to read --shard slurm: the array's task IDs are not 0 to {last} (this task's ID is {id}{range}, and the array has {count} tasks; task i runs shard i); submit the array with --array=0-{last}"
    )]
    SlurmIds {
        id: usize,
        count: usize,
        /// ", the IDs run from MIN to MAX" when Slurm says.
        range: String,
        last: usize,
    },
    #[error(
        "failed to read --shard k8s/{count}: JOB_COMPLETION_INDEX={index} is not below {count} (set the Job's completions to {count})"
    )]
    K8sIndex { index: usize, count: usize },
    #[error(
        "failed to resume: {dir} holds shard {was} of this batch, not {now}; pass --shard {was}"
    )]
    OtherShard {
        dir: String,
        was: String,
        now: String,
    },
    #[error(
        "failed to resume: {dir} holds shard {was} of this batch; pass --shard {was} to resume it"
    )]
    ShardDirWithoutShard { dir: String, was: String },
    #[error("failed to resume: {dir} holds the results of a whole (unsharded) run, not of a shard")]
    NotAShardDir { dir: String },
    #[error("failed to {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: io::Error,
    },
    #[error("failed to read {path}: not a shard record ({reason})")]
    BadRecord { path: String, reason: String },
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Parses a `--shard` spec, reading the scheduler's variables through `env`.
    ///
    /// # Errors
    ///
    /// [`ShardError`] when the spec is malformed, out of range, or names a variable that is
    /// unset or invalid.
    pub fn parse(spec: &str, env: impl Fn(&str) -> Option<String>) -> Result<Shard, ShardError> {
        let s = spec.trim();
        if s == "slurm" {
            return slurm(&env);
        }
        if let Some(n) = s.strip_prefix("k8s/") {
            let count = parse_count(spec, n)?;
            let index = var(
                &env,
                "k8s/N",
                "JOB_COMPLETION_INDEX",
                "a Kubernetes indexed Job",
            )?;
            if index >= count {
                return Err(ShardError::K8sIndex { index, count });
            }
            return Ok(Shard { index, count });
        }
        let Some((i, n)) = s.split_once('/') else {
            return Err(ShardError::Syntax(spec.into()));
        };
        let index: usize = i
            .trim()
            .parse()
            .map_err(|_| ShardError::Syntax(spec.into()))?;
        let count = parse_count(spec, n)?;
        if index >= count {
            return Err(ShardError::IndexTooLarge {
                spec: spec.into(),
                index,
                count,
            });
        }
        Ok(Shard { index, count })
    }

    /// Parses a spec against the process's environment.
    ///
    /// # Errors
    ///
    /// As [`Shard::parse`].
    pub fn from_env(spec: &str) -> Result<Shard, ShardError> {
        Shard::parse(spec, |k| std::env::var(k).ok())
    }

    /// Whether job line `j` (0-based over job lines) belongs to this shard.
    #[must_use]
    pub fn holds(&self, j: u64) -> bool {
        j % self.count as u64 == self.index as u64
    }
}

fn parse_count(spec: &str, n: &str) -> Result<usize, ShardError> {
    let count: usize = n
        .trim()
        .parse()
        .map_err(|_| ShardError::Syntax(spec.into()))?;
    if count == 0 {
        return Err(ShardError::ZeroCount(spec.into()));
    }
    Ok(count)
}

fn var(
    env: &impl Fn(&str) -> Option<String>,
    spec: &'static str,
    name: &'static str,
    what: &'static str,
) -> Result<usize, ShardError> {
    let value = env(name).ok_or(ShardError::MissingVar {
        spec,
        var: name,
        what,
    })?;
    value.trim().parse().map_err(|_| ShardError::BadVar {
        spec,
        var: name,
        value,
    })
}

/// A Slurm job array task: its ID must be one of 0 … COUNT−1, and so must
/// the array's (MIN, MAX when Slurm sets them): `--array=3,5,9` has IDs 3, 5
/// and 9 and a COUNT of 3, which would leave shards 1 and 2 unrun.
fn slurm(env: &impl Fn(&str) -> Option<String>) -> Result<Shard, ShardError> {
    const WHAT: &str = "a Slurm job array task";
    let id = var(env, "slurm", "SLURM_ARRAY_TASK_ID", WHAT)?;
    let count = var(env, "slurm", "SLURM_ARRAY_TASK_COUNT", WHAT)?;
    let min = match env("SLURM_ARRAY_TASK_MIN") {
        Some(_) => Some(var(env, "slurm", "SLURM_ARRAY_TASK_MIN", WHAT)?),
        None => None,
    };
    let max = match env("SLURM_ARRAY_TASK_MAX") {
        Some(_) => Some(var(env, "slurm", "SLURM_ARRAY_TASK_MAX", WHAT)?),
        None => None,
    };
    let last = count.max(1) - 1;
    if count == 0 || id >= count || min.is_some_and(|m| m != 0) || max.is_some_and(|m| m != last) {
        let range = match (min, max) {
            (Some(a), Some(b)) => format!(", the IDs run from {a} to {b}"),
            _ => String::new(),
        };
        return Err(ShardError::SlurmIds {
            id,
            count,
            range,
            last,
        });
    }
    Ok(Shard { index: id, count })
}

/// Something with a batch line: the entries of one line (one per method)
/// belong to the same job line.
pub trait OnLine {
    fn batch_line(&self) -> u64;
}

impl OnLine for crate::batch::Entry {
    fn batch_line(&self) -> u64 {
        self.line()
    }
}

/// A batch's entries, only those of one shard (all of them for `None`),
/// counting every job line it passes over.
pub struct Sharded<I> {
    inner: I,
    shard: Option<Shard>,
    seen: u64,
    last_line: Option<u64>,
}

impl<I> Sharded<I> {
    pub fn new(inner: I, shard: Option<Shard>) -> Self {
        Sharded {
            inner,
            shard,
            seen: 0,
            last_line: None,
        }
    }
    /// Entries read so far, in every shard (the batch's job lines, at the end).
    pub fn seen(&self) -> u64 {
        self.seen
    }
}

impl<I: Iterator> Iterator for Sharded<I>
where
    I::Item: OnLine,
{
    type Item = I::Item;
    fn next(&mut self) -> Option<I::Item> {
        loop {
            let item = self.inner.next()?;
            let line = item.batch_line();
            if self.last_line != Some(line) {
                self.last_line = Some(line);
                self.seen += 1;
            }
            let j = self.seen - 1;
            if self.shard.is_none_or(|s| s.holds(j)) {
                return Some(item);
            }
        }
    }
}

/// `shard.json`: what a shard's output directory holds.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ShardRecord {
    /// This shard's index (0-based).
    pub shard: usize,
    /// The number of shards.
    pub of: usize,
    /// The batch file, absolute.
    pub batch: PathBuf,
    /// The batch's fingerprint (as in `batch.fingerprint`).
    pub fingerprint: String,
    /// Job lines in the whole batch (every shard's).
    pub batch_jobs: u64,
    /// The log directory of the shard's runs, absolute.
    pub logs: PathBuf,
    /// The command that resumes (or completes) this shard.
    pub resume: String,
}

impl ShardRecord {
    #[must_use]
    pub fn shard(&self) -> Shard {
        Shard {
            index: self.shard,
            count: self.of,
        }
    }

    /// Reads `dir/shard.json`; `Ok(None)` when there is none.
    ///
    /// # Errors
    ///
    /// [`ShardError`] when the file cannot be read or parsed.
    pub fn read(dir: &Path) -> Result<Option<ShardRecord>, ShardError> {
        let path = dir.join(SHARD_FILE);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(ShardError::Io {
                    what: "read",
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ShardError::BadRecord {
                path: path.display().to_string(),
                reason: e.to_string(),
            })
    }

    /// Writes `dir/shard.json` atomically.
    ///
    /// # Errors
    ///
    /// [`ShardError`] when the file cannot be written.
    pub fn write(&self, dir: &Path) -> Result<(), ShardError> {
        let path = dir.join(SHARD_FILE);
        let io_err = |source| ShardError::Io {
            what: "write",
            path: path.display().to_string(),
            source,
        };
        let mut text = serde_json::to_string_pretty(self).map_err(|e| io_err(e.into()))?;
        text.push('\n');
        crate::outdir::write_atomic(&path, text.as_bytes()).map_err(io_err)
    }
}

/// Before a run into `out_dir`: a resumed shard must be the same shard, and
/// a shard's directory is resumed as that shard. `had_results`: the
/// directory already held results.
///
/// # Errors
///
/// [`ShardError`] when the directory belongs to another shard, or its record cannot be read or
/// written.
pub fn check_resume(
    out_dir: &Path,
    shard: Option<Shard>,
    had_results: bool,
) -> Result<(), ShardError> {
    let dir = out_dir.display().to_string();
    let old = ShardRecord::read(out_dir)?;
    match (old, shard) {
        (Some(old), Some(now)) if old.shard() != now && had_results => {
            Err(ShardError::OtherShard {
                dir,
                was: old.shard().to_string(),
                now: now.to_string(),
            })
        }
        (Some(old), None) if had_results => Err(ShardError::ShardDirWithoutShard {
            dir,
            was: old.shard().to_string(),
        }),
        (None, Some(_)) if had_results => Err(ShardError::NotAShardDir { dir }),
        (Some(_), None) => {
            // A stale record of an attempt that wrote nothing.
            fs::remove_file(out_dir.join(SHARD_FILE)).map_err(|source| ShardError::Io {
                what: "remove",
                path: out_dir.join(SHARD_FILE).display().to_string(),
                source,
            })
        }
        _ => Ok(()),
    }
}

/// The 1-based batch line of every job line of a JSON Lines batch, in order
/// (the lines `qst run` makes an entry of: neither blank nor `#` comments,
/// an over-long line included).
///
/// # Errors
///
/// When the batch cannot be read.
pub fn jsonl_job_lines(path: &Path) -> io::Result<Vec<u64>> {
    let f = File::open(path)?;
    let mut r = BufReader::with_capacity(1 << 16, f);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut line = 0u64;
    loop {
        buf.clear();
        let k = r
            .by_ref()
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut buf)?;
        if k == 0 {
            break;
        }
        line += 1;
        let long = buf.last() != Some(&b'\n') && (k as u64) > MAX_LINE_BYTES;
        if long {
            // The rest of the line.
            let mut sink = Vec::new();
            r.read_until(b'\n', &mut sink)?;
            out.push(line);
            continue;
        }
        let mut text: &[u8] = &buf;
        if line == 1 {
            text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
        }
        let t = text.trim_ascii();
        if !t.is_empty() && !t.starts_with(b"#") {
            out.push(line);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let v: Vec<(String, String)> = vars
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        move |k| v.iter().find(|(a, _)| a == k).map(|(_, b)| b.clone())
    }

    #[test]
    fn parses_specs_and_refuses_bad_ones() {
        let none = env(&[]);
        assert_eq!(
            Shard::parse("2/8", &none).unwrap(),
            Shard { index: 2, count: 8 }
        );
        assert!(matches!(
            Shard::parse("8/8", &none),
            Err(ShardError::IndexTooLarge { .. })
        ));
        assert!(matches!(
            Shard::parse("0/0", &none),
            Err(ShardError::ZeroCount(_))
        ));
        for bad in ["", "2", "a/3", "1/b", "-1/3", "1/3/4", "slurm/3", "k8s/"] {
            assert!(Shard::parse(bad, &none).is_err(), "{bad}");
        }
        let slurm = env(&[
            ("SLURM_ARRAY_TASK_ID", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_MAX", "2"),
        ]);
        assert_eq!(
            Shard::parse("slurm", &slurm).unwrap(),
            Shard { index: 1, count: 3 }
        );
        let gaps = env(&[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
            ("SLURM_ARRAY_TASK_MIN", "3"),
            ("SLURM_ARRAY_TASK_MAX", "9"),
        ]);
        let e = Shard::parse("slurm", &gaps).unwrap_err().to_string();
        assert!(e.contains("--array=0-2"), "{e}");
        assert!(matches!(
            Shard::parse("slurm", &none),
            Err(ShardError::MissingVar { .. })
        ));
        let k8s = env(&[("JOB_COMPLETION_INDEX", "4")]);
        assert_eq!(
            Shard::parse("k8s/5", &k8s).unwrap(),
            Shard { index: 4, count: 5 }
        );
        assert!(matches!(
            Shard::parse("k8s/4", &k8s),
            Err(ShardError::K8sIndex { .. })
        ));
    }

    impl OnLine for u32 {
        fn batch_line(&self) -> u64 {
            u64::from(*self)
        }
    }

    #[test]
    fn sharded_keeps_a_lines_entries_together() {
        let s = Shard { index: 1, count: 2 };
        // Lines 1, 1, 2, 2, 3: job lines 0, 1, 2 — shard 1 holds line 2.
        let got: Vec<u32> = Sharded::new([1u32, 1, 2, 2, 3].into_iter(), Some(s)).collect();
        assert_eq!(got, vec![2, 2]);
    }

    #[test]
    fn sharded_takes_every_nth_and_counts_all() {
        let s = Shard { index: 1, count: 3 };
        let mut it = Sharded::new(0..10u32, Some(s));
        let got: Vec<u32> = it.by_ref().collect();
        assert_eq!(got, vec![1, 4, 7]);
        assert_eq!(it.seen(), 10);
        let all: Vec<u32> = Sharded::new(0..4u32, None).collect();
        assert_eq!(all, vec![0, 1, 2, 3]);
    }

    #[test]
    fn job_lines_skip_blank_and_comment_lines() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("b.jsonl");
        fs::write(&p, "\u{feff}# c\n{}\n\n  \t\n x\n#\n{\"a\":1}").unwrap();
        assert_eq!(jsonl_job_lines(&p).unwrap(), vec![2, 5, 7]);
    }
}
