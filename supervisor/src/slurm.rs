//! `qst slurm BATCH --shards N`: one batch over a Slurm cluster with
//! Slurm's own job arrays. Prebuilds the batch's projector files on the
//! submitting node (into the shared cache), then writes two scripts under
//! `OUT/slurm/`:
//!
//! - `array.sh`: `#SBATCH --array=0-(N-1)`; task i runs `qst run BATCH
//!   --shard slurm --workers $SLURM_CPUS_PER_TASK --out OUT/slurm/shard-i
//!   --cache CACHE --resume` (so resubmitting it completes what is missing)
//!   and logs to `OUT/slurm/logs/array-<job>_<task>.out`. Exit 1 (the shard
//!   ran, some of its jobs failed, each has its error line) becomes 0 so
//!   that the merge still runs.
//! - `merge.sh`: `qst merge OUT OUT/slurm/shard-0 … shard-(N-1)`, submitted
//!   with `--dependency=afterok:<array job id>`.
//!
//! and prints the two `sbatch` commands, or (`--submit`) runs them. Every
//! path in the scripts is absolute, the qst binary included.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use qst_shared::{Design, ProjectorSpec};
use qst_store::{Store, StoreConfig};

use crate::batch::{BatchSettings, Entry, open_batch};
use crate::input::InputOptions;
use crate::run::{RunOptions, quote};

/// The flags of `qst slurm`.
#[derive(Clone, Debug)]
pub struct SlurmOptions {
    pub batch: PathBuf,
    /// The merged output (default `<batch stem>.qst/`); scripts and shards
    /// go to its `slurm/`.
    pub out: Option<PathBuf>,
    pub shards: usize,
    pub cpus_per_task: usize,
    /// Slurm's `--time`, as given.
    pub time: Option<String>,
    pub partition: Option<String>,
    /// The projector cache, on a file system every node sees.
    pub cache: Option<PathBuf>,
    pub max_cache_bytes: Option<u64>,
    pub job_timeout: Option<f64>,
    pub max_retries: u32,
    /// The input flags, passed to each shard's `qst run`.
    pub input: InputOptions,
    /// Run the two `sbatch` commands.
    pub submit: bool,
}

/// Why `qst slurm` could not do its job (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    #[error("failed to read --shards {0}: it must be at least 1")]
    NoShards(usize),
    #[error("failed to read --cpus-per-task {0}: it must be at least 1")]
    NoCpus(usize),
    #[error("failed to read {flag} {value:?}: it must be one word without quotes")]
    BadWord { flag: &'static str, value: String },
    #[error("failed to {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: io::Error,
    },
    #[error("failed to read the batch: {0}")]
    Batch(#[source] crate::batch::BatchError),
    #[error("failed to prebuild the {design} projector file of dimension {dim}: {reason}")]
    Prebuild {
        design: Design,
        dim: usize,
        reason: String,
    },
    #[error(
        "failed to run sbatch ({0}); the scripts are written: submit them with sbatch on a Slurm submit node"
    )]
    NoSbatch(io::Error),
    #[error("failed to submit {script}: sbatch {status}: {stderr}")]
    Sbatch {
        script: String,
        status: String,
        stderr: String,
    },
}

/// What `qst slurm` did.
#[derive(Debug, Clone)]
pub struct SlurmReport {
    pub array_script: PathBuf,
    pub merge_script: PathBuf,
    /// The merged output directory.
    pub out: PathBuf,
    /// Built-in sets (design, dimension) whose files were prebuilt (or checked).
    pub prebuilt: Vec<(Design, usize)>,
    /// The shell commands that submit both scripts.
    pub commands: String,
    /// With `--submit`: the array's and the merge's job ids.
    pub submitted: Option<(String, String)>,
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> SlurmError + use<> {
    let path = path.display().to_string();
    move |source| SlurmError::Io { what, path, source }
}

fn abs(p: &Path) -> Result<PathBuf, SlurmError> {
    std::path::absolute(p).map_err(io_err("resolve", p))
}

/// A value written into an `#SBATCH` line: no spaces or quotes.
fn word(flag: &'static str, v: &str) -> Result<String, SlurmError> {
    if v.is_empty() || v.contains(|c: char| c.is_whitespace() || "'\"\\$`".contains(c)) {
        return Err(SlurmError::BadWord {
            flag,
            value: v.into(),
        });
    }
    Ok(v.to_string())
}

/// Writes the scripts (after prebuilding), and submits them with `submit`.
///
/// # Errors
///
/// [`SlurmError`] when `shards` or `cpus_per_task` is 0, or a path, the prebuild, a script or
/// the submission fails.
pub fn slurm(opts: &SlurmOptions) -> Result<SlurmReport, SlurmError> {
    if opts.shards == 0 {
        return Err(SlurmError::NoShards(0));
    }
    if opts.cpus_per_task == 0 {
        return Err(SlurmError::NoCpus(0));
    }
    let exe =
        std::env::current_exe().map_err(io_err("find the qst executable", Path::new("qst")))?;
    let batch = abs(&opts.batch)?;
    let mut run_opts = RunOptions::new(batch.clone());
    run_opts.out = opts.out.clone();
    let out = abs(&run_opts.out_dir())?;
    let mut config = StoreConfig::resolve(opts.cache.as_deref(), opts.max_cache_bytes);
    config.dir = abs(&config.dir)?;
    let head = sbatch_head(opts)?;
    let prebuilt = prebuild(opts, &batch, &out, &config)?;

    let dir = out.join("slurm");
    let logs = dir.join("logs");
    fs::create_dir_all(&logs).map_err(io_err("create", &logs))?;
    if logs.display().to_string().contains(char::is_whitespace) {
        return Err(SlurmError::BadWord {
            flag: "--out",
            value: out.display().to_string(),
        });
    }
    let scripts = Scripts {
        exe: &exe,
        batch: &batch,
        out: &out,
        dir: &dir,
        logs: &logs,
        cache: &config.dir,
        name: job_name(&batch),
        head,
    };
    let array = scripts.array(opts)?;
    let merge = scripts.merge(opts.shards);
    let array_script = dir.join("array.sh");
    let merge_script = dir.join("merge.sh");
    for (path, text) in [(&array_script, &array), (&merge_script, &merge)] {
        // A uniquely named temporary renamed into place: a link planted at
        // the script's name is replaced, never followed.
        crate::outdir::write_atomic(path, text.as_bytes()).map_err(io_err("write", path))?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o755))
            .map_err(io_err("make executable", path))?;
    }
    let commands = format!(
        "jobid=$(sbatch --parsable {}) && sbatch --dependency=afterok:\"${{jobid%%;*}}\" {}",
        quote(&array_script),
        quote(&merge_script)
    );
    let mut report = SlurmReport {
        array_script,
        merge_script,
        out,
        prebuilt,
        commands,
        submitted: None,
    };
    if opts.submit {
        let array_id = sbatch(&[], &report.array_script)?;
        let merge_id = sbatch(
            &[format!("--dependency=afterok:{array_id}")],
            &report.merge_script,
        )?;
        report.submitted = Some((array_id, merge_id));
    }
    Ok(report)
}

/// The `#SBATCH` lines of `--time` and `--partition`.
fn sbatch_head(opts: &SlurmOptions) -> Result<String, SlurmError> {
    let mut head = String::new();
    if let Some(t) = &opts.time {
        let _ = writeln!(head, "#SBATCH --time={}", word("--time", t)?);
    }
    if let Some(p) = &opts.partition {
        let _ = writeln!(head, "#SBATCH --partition={}", word("--partition", p)?);
    }
    Ok(head)
}

/// The projector files the batch needs, built once here rather than raced
/// for by N tasks.
fn prebuild(
    opts: &SlurmOptions,
    batch: &Path,
    out: &Path,
    config: &StoreConfig,
) -> Result<Vec<(Design, usize)>, SlurmError> {
    let store = Store::new(config.clone());
    let settings = BatchSettings {
        out_dir: out.to_path_buf(),
        input: opts.input.clone(),
    };
    let mut dims = BTreeSet::new();
    for entry in open_batch(batch, &settings, &store).map_err(SlurmError::Batch)? {
        if let Entry::Job(job) = entry
            && let ProjectorSpec::Builtin(design) = job.projectors
        {
            dims.insert((design, job.dim));
        }
    }
    for &(design, dim) in &dims {
        if let Err(e) = store.ensure(design, dim) {
            return Err(SlurmError::Prebuild {
                design,
                dim,
                reason: e.to_string(),
            });
        }
    }
    Ok(dims.into_iter().collect())
}

/// The Slurm job name: `qst-<batch stem>`, in safe characters.
fn job_name(batch: &Path) -> String {
    batch
        .file_stem()
        .map_or_else(|| "batch".into(), |s| s.to_string_lossy().into_owned())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// What both scripts are made of (absolute paths).
struct Scripts<'a> {
    exe: &'a Path,
    batch: &'a Path,
    out: &'a Path,
    dir: &'a Path,
    logs: &'a Path,
    cache: &'a Path,
    name: String,
    head: String,
}

impl Scripts<'_> {
    /// `array.sh`: shard i of N in array task i.
    fn array(&self, opts: &SlurmOptions) -> Result<String, SlurmError> {
        let n = opts.shards;
        let mut run = format!(
            "{} run {} --shard slurm --workers \"${{SLURM_CPUS_PER_TASK:-{}}}\" --out {}/shard-\"$SLURM_ARRAY_TASK_ID\" --cache {} --resume",
            quote(self.exe),
            quote(self.batch),
            opts.cpus_per_task,
            quote(self.dir),
            quote(self.cache)
        );
        if let Some(b) = opts.max_cache_bytes {
            let _ = write!(run, " --max-cache-bytes {b}");
        }
        if let Some(t) = opts.job_timeout {
            let _ = write!(run, " --job-timeout {t}");
        }
        if opts.max_retries != 3 {
            let _ = write!(run, " --max-retries {}", opts.max_retries);
        }
        let mut input = opts.input.clone();
        input.projectors = input.projectors.as_deref().map(abs).transpose()?;
        input.truth = input.truth.as_deref().map(abs).transpose()?;
        run += &input.args(quote);
        Ok(format!(
            "#!/bin/bash\n\
             # Written by `qst slurm`: shard i of {n} of {batch_q} in array task i.\n\
             #SBATCH --job-name=qst-{name}\n\
             #SBATCH --array=0-{last}\n\
             #SBATCH --ntasks=1\n\
             #SBATCH --cpus-per-task={cpus}\n\
             {head}\
             #SBATCH --output={logs_q}/array-%A_%a.out\n\
             \n\
             {run}\n\
             rc=$?\n\
             # 1: the shard ran to its end and some of its jobs failed (each has its\n\
             # error line in results.jsonl); the merge still runs.\n\
             if [ \"$rc\" -eq 1 ]; then exit 0; fi\n\
             exit \"$rc\"\n",
            batch_q = quote(self.batch),
            name = self.name,
            head = self.head,
            last = n - 1,
            cpus = opts.cpus_per_task,
            logs_q = self.logs.display(),
        ))
    }

    /// `merge.sh`: `qst merge` of the N shards, after the array.
    fn merge(&self, n: usize) -> String {
        let mut merge = format!("exec {} merge {}", quote(self.exe), quote(self.out));
        for i in 0..n {
            let _ = write!(merge, " {}", quote(&self.dir.join(format!("shard-{i}"))));
        }
        format!(
            "#!/bin/bash\n\
             # Written by `qst slurm`: merges the {n} shards into {out_q} after the array.\n\
             #SBATCH --job-name=qst-{name}-merge\n\
             #SBATCH --ntasks=1\n\
             #SBATCH --cpus-per-task=1\n\
             {head}\
             #SBATCH --output={logs_q}/merge-%j.out\n\
             \n\
             {merge}\n",
            out_q = quote(self.out),
            name = self.name,
            head = self.head,
            logs_q = self.logs.display(),
        )
    }
}

/// `sbatch --parsable [ARGS] SCRIPT` → the job id (before any `;cluster`).
fn sbatch(args: &[String], script: &Path) -> Result<String, SlurmError> {
    let out = Command::new("sbatch")
        .arg("--parsable")
        .args(args)
        .arg(script)
        .output()
        .map_err(SlurmError::NoSbatch)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let id = stdout
        .lines()
        .last()
        .and_then(|l| l.split(';').next())
        .map_or("", str::trim);
    if !out.status.success() || id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SlurmError::Sbatch {
            script: script.display().to_string(),
            status: crate::errors::describe_exit(out.status),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(id.to_string())
}
