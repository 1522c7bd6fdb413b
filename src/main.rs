//! `qst`: the command line (docs/reference.md), a thin layer over the supervisor and worker crates.

#![forbid(unsafe_code)]
// `clippy::pedantic` is reviewed (docs/ARCHITECTURE.md, "Lints"); these do not fit:
#![allow(
    // The doc comments of the clap types are the `--help` text, where backticks would show.
    clippy::doc_markdown
)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};
use qst_report::DEFAULT_MAX_SAMPLES;
use qst_shared::{Design, Method};
use qst_store::{BuildAction, Store, StoreConfig};
use qst_supervisor::{
    DemoOptions, EXIT_CANNOT_RUN, GenSpec, InputOptions, Invocation, MergeOutcome, Negative,
    RunOptions, Shard, SlurmOptions, demo, digest, format_table, generate_with, merge,
    parse_columns, parse_methods, run, slurm,
};
use qst_supervisor::{say, tell};

/// `0.1.0 (commit abc1234)`: the version and the git commit of the build.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("QST_GIT_COMMIT"),
    ")"
);

/// Batch quantum state tomography: projector counts → density matrices, by a
/// pool of worker processes that memory-map shared projector sets.
#[derive(Parser)]
#[command(name = "qst", version = VERSION, about)]
struct Cli {
    /// Only errors and the final line on stderr (no progress, no notes).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Also write the log lines (supervisor.log) to stderr.
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generates a synthetic batch (dimensions 2 to 32, known truths, simulated
    /// counts), runs it through the worker pool and prints a table with one
    /// row per dimension and method (jobs, mean fidelity, mean seconds).
    /// Needs no input.
    Demo {
        /// Number of worker processes (default: the number of cores).
        #[arg(long, value_parser = parse_workers)]
        workers: Option<usize>,
        /// Output directory; the files an earlier demo wrote there are
        /// replaced, other files are left alone.
        #[arg(long, default_value = "qst-demo")]
        out: PathBuf,
        /// Write into a non-empty output directory that no demo made.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// Writes a synthetic JSON Lines batch (random states, Poisson counts on the
    /// nopovm set) and its truth files (`<stem>_truth/<id>.npy`) to disk.
    Gen {
        /// The batch file to write.
        #[arg(long)]
        out: PathBuf,
        /// Dimensions, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "2,4,8")]
        dims: Vec<usize>,
        /// Jobs per dimension.
        #[arg(long, default_value_t = 10)]
        per_dim: usize,
        /// Mean total count per job.
        #[arg(long, default_value_t = 100_000.0)]
        shots: f64,
        /// Random seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Replace an existing batch file (and truth files qst gen did not
        /// write); the truth files of the earlier qst gen are removed first.
        #[arg(long)]
        force: bool,
    },
    /// Runs a batch (JSON Lines, or the lab's matrix CSV for a `.csv` file)
    /// through a pool of worker processes; results go to `--out`.
    Run(RunArgs),
    /// Merges the output directories of the shards of one batch (`qst run
    /// --shard`) into one: every job line exactly once, in line order.
    Merge {
        /// The merged output directory.
        out: PathBuf,
        /// The shards' output directories.
        #[arg(required = true)]
        shard_dirs: Vec<PathBuf>,
    },
    /// Writes a Slurm job array script (one shard per array task) and a merge
    /// job that runs after it, prebuilding the projector files first; prints
    /// the sbatch commands, or runs them with --submit.
    Slurm(SlurmArgs),
    /// Builds (or re-checks, rebuilding bad ones) the projector files of the
    /// given dimensions ahead of time.
    Prebuild {
        /// Dimensions, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        dims: Vec<usize>,
        /// The built-in design: nopovm, mub or sic.
        #[arg(long, default_value = "nopovm", value_parser = parse_design)]
        design: Design,
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// Writes OUT/report.html: one self-contained offline page (inline SVG, no
    /// network, no JavaScript) with the run's figures, histograms per
    /// dimension and method, a worker timeline and per-sample ρ plots.
    Report {
        /// The output directory of a run (finished or interrupted).
        out: PathBuf,
        /// How many samples get ρ figures (failures and the lowest fidelity first).
        #[arg(long, default_value_t = qst_report::DEFAULT_MAX_SAMPLES)]
        max_samples: usize,
        /// Also write each shown sample's figures as standalone SVG files
        /// (`<id>_Re.svg`, `<id>_Im.svg`, and `<id>_Re_bars.svg`,
        /// `<id>_Im_bars.svg` for n ≤ 16) into this directory.
        #[arg(long, value_name = "DIR")]
        svg: Option<PathBuf>,
        /// Open the page in the desktop's browser (xdg-open) afterwards.
        #[arg(long)]
        open: bool,
    },
    /// Lists, fully verifies or removes the projector cache's files.
    Cache {
        #[command(subcommand)]
        action: CacheAction,
    },
    /// Prints a shell completion script (e.g. `qst completions bash >
    /// ~/.local/share/bash-completion/completions/qst`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Prints the man page (roff), e.g. `qst man > ~/.local/share/man/man1/qst.1`.
    Man,
    /// (internal) A worker process, started by `qst run`.
    #[command(hide = true)]
    Worker {
        #[arg(long)]
        slot: usize,
        #[arg(long)]
        supervisor_pid: u32,
        #[arg(long)]
        cache: PathBuf,
        #[arg(long)]
        max_cache_bytes: u64,
        #[arg(long)]
        log: PathBuf,
    },
}

#[derive(Args, Clone)]
struct CacheArgs {
    /// Projector cache directory (default: $QST_CACHE_DIR, else
    /// $XDG_CACHE_HOME/qst, else ~/.cache/qst).
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Byte budget of the cache (default: half of physical memory).
    #[arg(long)]
    max_cache_bytes: Option<u64>,
}

impl CacheArgs {
    fn store(&self) -> Store {
        Store::new(StoreConfig::resolve(
            self.cache.as_deref(),
            self.max_cache_bytes,
        ))
    }
}

#[derive(Subcommand)]
enum CacheAction {
    /// Lists the cache's files and their sizes.
    Ls(CacheArgs),
    /// Fully checks every file against its formula (exit 1 if any is bad).
    Verify(CacheArgs),
    /// Removes every file of the cache.
    Clear(CacheArgs),
}

#[derive(Args)]
struct RunArgs {
    /// The batch: a JSON Lines file, or a `.csv` in the lab's matrix format.
    batch: PathBuf,
    /// Output directory (default: `<batch stem>.qst/` beside the batch).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Number of worker processes (default: the number of cores).
    #[arg(long, value_parser = parse_workers)]
    workers: Option<usize>,
    #[command(flatten)]
    cache: CacheArgs,
    /// Continue an interrupted run: skip lines that already have a result.
    #[arg(long)]
    resume: bool,
    /// Stop a job that runs longer than this many seconds (it gets an error).
    #[arg(long, value_name = "SECONDS", value_parser = positive_seconds)]
    job_timeout: Option<f64>,
    /// How often a job whose worker died is retried before it gets an error.
    #[arg(long, default_value_t = 3)]
    max_retries: u32,
    /// Log directory (default: `<out>/logs`).
    #[arg(long)]
    logs: Option<PathBuf>,
    #[command(flatten)]
    input: InputArgs,
    /// Run only shard i of N: the job lines j (counted from 0, blank and
    /// comment lines not counted; CSV columns) with j mod N = i. `slurm`: the
    /// Slurm array task's ID and count; `k8s/N`: $JOB_COMPLETION_INDEX of N.
    #[arg(long, value_name = "i/N|slurm|k8s/N")]
    shard: Option<String>,
    /// Write `<out>/report.html` (as `qst report`) when the run ends.
    #[arg(long)]
    report: bool,
}

fn parse_design(s: &str) -> Result<Design, qst_shared::DesignError> {
    s.parse()
}

#[derive(Args)]
struct SlurmArgs {
    /// The batch (JSON Lines, or a `.csv`), on a file system every node sees.
    batch: PathBuf,
    /// Number of shards (array tasks).
    #[arg(long)]
    shards: usize,
    /// CPUs (and so workers) per array task.
    #[arg(long, default_value_t = 1)]
    cpus_per_task: usize,
    /// Slurm's time limit per array task (e.g. 2:00:00).
    #[arg(long)]
    time: Option<String>,
    /// Slurm partition.
    #[arg(long)]
    partition: Option<String>,
    /// The merged output directory (default: `<batch stem>.qst/` beside the
    /// batch); the scripts and the shards go to its `slurm/`.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Projector cache directory, on a file system every node sees (default:
    /// as for `qst run`).
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Byte budget of the cache (default: half of physical memory).
    #[arg(long)]
    max_cache_bytes: Option<u64>,
    /// Passed to each shard's `qst run`.
    #[arg(long, value_name = "SECONDS", value_parser = positive_seconds)]
    job_timeout: Option<f64>,
    /// Passed to each shard's `qst run`.
    #[arg(long, default_value_t = 3)]
    max_retries: u32,
    #[command(flatten)]
    input: InputArgs,
    /// Submit both scripts with sbatch (the merge after the array).
    #[arg(long)]
    submit: bool,
}

/// `--method mle,linear`.
#[derive(Clone)]
struct Methods(Vec<Method>);

/// How a batch is read (`qst run`, `qst slurm`).
#[derive(Args, Clone)]
struct InputArgs {
    /// Methods, comma-separated: mle, linear, wls (several give one result per
    /// sample and method). JSON lines: the default of lines without `method`.
    #[arg(long, value_name = "M[,M…]", value_parser = |s: &str| parse_methods(s).map(Methods))]
    method: Option<Methods>,
    /// The built-in design (nopovm, mub, sic) of a count matrix (default:
    /// from its rows: n² is nopovm, n(n+1) mub) and of JSON lines that name
    /// none (default: nopovm).
    #[arg(long, value_parser = parse_design)]
    design: Option<Design>,
    /// Count matrix: a custom projector file (K, n, n), one row per projector.
    #[arg(long, conflicts_with = "design")]
    projectors: Option<PathBuf>,
    /// The target state (an (n, n) density matrix or (n,) ket `.npy`, or a
    /// text file of n lines `amplitude,phase`) of samples that name none.
    #[arg(long, value_name = "FILE")]
    truth: Option<PathBuf>,
    /// Count matrix: the dimension (default: from the number of rows K, n²
    /// for nopovm, n(n+1) for mub); must agree with the rows.
    #[arg(long)]
    dim: Option<usize>,
    /// Spreadsheet: the sheet, by name or 0-based index (default: the first).
    #[arg(long, value_name = "NAME|INDEX")]
    sheet: Option<String>,
    /// Count matrix: run only columns A to B (1-based, inclusive).
    #[arg(long, value_name = "A:B", value_parser = parse_columns)]
    columns: Option<(usize, usize)>,
    /// A negative count (after background subtraction): `error` for its
    /// sample (default), or `clip` to 0 with a warning in the result.
    #[arg(long, value_name = "error|clip", default_value = "error", value_parser = Negative::parse)]
    negative: Negative,
    /// The generalized Bell analysis (n = m²): bell_max_fidelity, bell_index,
    /// bell_min_fidelity. JSON lines: the default of lines without `bell`.
    #[arg(long)]
    bell: bool,
    /// The dominant eigenvalue and its eigenvector as amplitudes and phases
    /// (units of π). JSON lines: the default of lines without `spectral`.
    #[arg(long)]
    spectral: bool,
    /// Error bars from B parametric bootstrap resamples per job
    /// (purity_std, fidelity_std, bell_max_fidelity_std), spread over all
    /// workers.
    #[arg(long, value_name = "B", default_value_t = 0)]
    bootstrap: u32,
    /// The bootstrap's seed: the same seed gives the same figures, whatever
    /// the number of workers (default 1).
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
}

impl InputArgs {
    fn options(self) -> InputOptions {
        InputOptions {
            dim: self.dim,
            methods: self.method.map(|m| m.0).unwrap_or_default(),
            design: self.design,
            projectors: self.projectors,
            truth: self.truth,
            sheet: self.sheet,
            columns: self.columns,
            negative: self.negative,
            bell: self.bell,
            spectral: self.spectral,
            bootstrap: self.bootstrap,
            seed: self.seed,
        }
    }
}

/// A flag value out of its range; clap prints it after "invalid value …
/// for '--flag': ".
#[derive(Debug)]
enum ValueError {
    Workers(String),
    Seconds(String),
}

impl std::fmt::Display for ValueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ValueError::Workers(s) => write!(
                f,
                "must be a number of worker processes from 1 to 4096, not {s:?}"
            ),
            ValueError::Seconds(s) => write!(f, "must be a number of seconds > 0, not {s:?}"),
        }
    }
}

impl std::error::Error for ValueError {}

fn parse_workers(s: &str) -> Result<usize, ValueError> {
    match s.parse::<usize>() {
        Ok(n) if (1..=4096).contains(&n) => Ok(n),
        _ => Err(ValueError::Workers(s.to_owned())),
    }
}

fn positive_seconds(s: &str) -> Result<f64, ValueError> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(ValueError::Seconds(s.to_owned())),
    }
}

fn exit(code: i32) -> ExitCode {
    #[allow(clippy::cast_sign_loss, clippy::cast_possible_truncation)] // clamped to [0, 255]
    let code = code.clamp(0, 255) as u8;
    ExitCode::from(code)
}

/// Which qst and which command line, for `summary.json`.
fn invocation() -> Invocation {
    Invocation {
        version: env!("CARGO_PKG_VERSION").to_string(),
        commit: env!("QST_GIT_COMMIT").to_string(),
        argv: std::env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
    }
}

/// Prints the error digest of `out` (nothing when no result is an error).
fn print_digest(out: &std::path::Path) {
    {
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), "{}", digest(out).render(out));
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (quiet, verbose) = (cli.quiet, cli.verbose);
    if verbose && !matches!(cli.command, Command::Run(_) | Command::Demo { .. }) {
        qst_supervisor::log_to_stderr();
    }
    match cli.command {
        Command::Worker {
            slot,
            supervisor_pid,
            cache,
            max_cache_bytes,
            log,
        } => {
            let args = qst_worker::WorkerArgs {
                slot,
                supervisor_pid,
                cache_dir: cache,
                max_cache_bytes,
                log,
            };
            exit(qst_worker::run(&args))
        }
        Command::Run(a) => run_command(a, quiet, verbose),
        Command::Demo {
            workers,
            out,
            cache,
            force,
        } => demo_command(&DemoOptions {
            out,
            workers,
            cache: cache.cache,
            max_cache_bytes: cache.max_cache_bytes,
            quiet,
            force,
            verbose,
            invocation: invocation(),
        }),
        Command::Gen {
            out,
            dims,
            per_dim,
            shots,
            seed,
            force,
        } => {
            let spec = GenSpec {
                dims,
                per_dim,
                shots,
                seed,
            };
            gen_command(&out, &spec, force)
        }
        Command::Prebuild {
            dims,
            design,
            cache,
        } => prebuild_command(&dims, design, &cache, quiet),
        Command::Cache { action } => cache_command(&action),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "qst", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Man => man_command(),
        Command::Merge { out, shard_dirs } => {
            let code = merge_command(&out, &shard_dirs);
            print_digest(&out);
            code
        }
        Command::Slurm(a) => slurm_command(a),
        Command::Report {
            out,
            max_samples,
            svg,
            open,
        } => write_report(&out, max_samples, svg, open).map_or_else(exit, |()| ExitCode::SUCCESS),
    }
}

/// `qst demo`: the run, its digest and table.
fn demo_command(opts: &DemoOptions) -> ExitCode {
    match demo(opts) {
        Ok((report, rows)) => {
            print_digest(&report.out_dir);
            {
                use std::io::Write as _;
                let _ = write!(std::io::stdout(), "{}", format_table(&rows));
            }
            tell!("results: {}", report.out_dir.display());
            exit(report.exit_code)
        }
        Err(e) => {
            say!("qst: {e}");
            exit(EXIT_CANNOT_RUN)
        }
    }
}

/// `qst gen`.
fn gen_command(out: &std::path::Path, spec: &GenSpec, force: bool) -> ExitCode {
    match generate_with(out, spec, force) {
        Ok(n) => {
            tell!("wrote {n} jobs to {}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            say!("qst: failed to {e}");
            exit(EXIT_CANNOT_RUN)
        }
    }
}

/// `qst man`.
fn man_command() -> ExitCode {
    let man = clap_mangen::Man::new(Cli::command());
    match man.render(&mut std::io::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say!("qst: failed to write the man page: {e}");
            exit(EXIT_CANNOT_RUN)
        }
    }
}

/// `qst run`.
fn run_command(a: RunArgs, quiet: bool, verbose: bool) -> ExitCode {
    let shard = match a.shard.as_deref().map(Shard::from_env).transpose() {
        Ok(s) => s,
        Err(e) => {
            say!("qst: {e}");
            return exit(EXIT_CANNOT_RUN);
        }
    };
    let opts = RunOptions {
        batch: a.batch,
        out: a.out,
        workers: a.workers,
        cache: a.cache.cache,
        max_cache_bytes: a.cache.max_cache_bytes,
        resume: a.resume,
        job_timeout: a.job_timeout,
        max_retries: a.max_retries,
        logs: a.logs,
        input: a.input.options(),
        shard,
        quiet,
        verbose,
        invocation: invocation(),
    };
    match run(&opts) {
        Ok(report) => {
            print_digest(&report.out_dir);
            say!(
                "qst: {} results written; see {}",
                report.results_written,
                report.out_dir.display()
            );
            if a.report
                && let Err(code) = write_report(&report.out_dir, DEFAULT_MAX_SAMPLES, None, false)
            {
                return exit(code.max(report.exit_code));
            }
            exit(report.exit_code)
        }
        Err(e) => {
            say!("qst: {e}");
            exit(EXIT_CANNOT_RUN)
        }
    }
}

/// `qst prebuild`: builds or fully re-checks each file.
fn prebuild_command(dims: &[usize], design: Design, cache: &CacheArgs, quiet: bool) -> ExitCode {
    if let Some(e) = dims.iter().find_map(|&n| design.check_dim(n).err()) {
        say!("qst: --dims: {e}");
        return exit(EXIT_CANNOT_RUN);
    }
    let mut store = cache.store();
    if let (false, Some(bar)) = (quiet, qst_supervisor::build_bar()) {
        store = store.with_build_progress(bar);
    }
    let mut bad = false;
    for &n in dims {
        match store.prepare_verified(design, n) {
            Ok(prep) => {
                if let BuildAction::FromKets { reason } = &prep.action {
                    say!(
                        "qst: {design} dim {n}: failed to build or open its projector file: {reason} (jobs still run from its kets; for a usable cache pass --cache DIR or set QST_CACHE_DIR)"
                    );
                    bad = true;
                    continue;
                }
                let what = match prep.action {
                    BuildAction::AlreadyValid => "checked".to_string(),
                    BuildAction::Built => "built".to_string(),
                    BuildAction::Rebuilt { reason } => format!("rebuilt ({reason})"),
                    BuildAction::NotWritten => {
                        "over the cache byte budget; runs from kets, no file".to_string()
                    }
                    BuildAction::FromKets { reason } => {
                        format!("runs from kets ({reason})")
                    }
                };
                match prep.prepared {
                    qst_store::Prepared::File(p) => {
                        tell!("{design} dim {n}: {what}: {}", p.display());
                    }
                    qst_store::Prepared::KetsOnly => tell!("{design} dim {n}: {what}"),
                }
            }
            Err(e) => {
                say!("qst: {design} dim {n}: failed to {e}");
                bad = true;
            }
        }
    }
    if bad {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Writes `out/report.html` and says where; `Err` holds the exit status.
fn write_report(
    out: &std::path::Path,
    max_samples: usize,
    svg_dir: Option<PathBuf>,
    open: bool,
) -> Result<(), i32> {
    let opts = qst_report::ReportOptions {
        out: out.to_path_buf(),
        max_samples,
        svg_dir,
        version: VERSION.to_string(),
    };
    match qst_report::write_report(&opts) {
        Ok(w) => {
            say!(
                "qst: wrote {} ({} bytes, {} samples shown{})",
                w.html.display(),
                w.bytes,
                w.samples_shown,
                if w.svg_files > 0 {
                    format!(", {} SVG files", w.svg_files)
                } else {
                    String::new()
                }
            );
            if open {
                match std::process::Command::new("xdg-open").arg(&w.html).status() {
                    Ok(st) if st.success() => {}
                    Ok(st) => say!("qst: xdg-open {} ended with {st}", w.html.display()),
                    Err(e) => say!(
                        "qst: failed to start xdg-open to open {}: {e}",
                        w.html.display()
                    ),
                }
            }
            Ok(())
        }
        Err(e) => {
            say!("qst: failed to {e}");
            Err(EXIT_CANNOT_RUN)
        }
    }
}

fn cache_command(action: &CacheAction) -> ExitCode {
    let (args, verb) = match action {
        CacheAction::Ls(a) => (a, "list"),
        CacheAction::Verify(a) => (a, "verify"),
        CacheAction::Clear(a) => (a, "clear"),
    };
    let store = args.store();
    let result = match action {
        CacheAction::Clear(_) => store.clear().map(|n| {
            tell!("removed {n} files from {}", store.config.dir.display());
            true
        }),
        CacheAction::Ls(_) => store.list().map(|files| {
            for f in &files {
                if f.stale_temporary {
                    tell!(
                        "{:>14}  {}  (left by a build that died; qst cache clear removes it)",
                        f.bytes,
                        f.path.display()
                    );
                } else {
                    tell!("{:>14}  {}", f.bytes, f.path.display());
                }
            }
            true
        }),
        CacheAction::Verify(_) => store.verify().map(|files| {
            let mut good = true;
            for f in &files {
                match &f.problem {
                    None => tell!("ok   {:>14}  {}", f.bytes, f.path.display()),
                    Some(p) => {
                        good = false;
                        tell!("BAD  {:>14}  {}: {p}", f.bytes, f.path.display());
                    }
                }
            }
            good
        }),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            say!("qst: cannot {verb} the cache: failed to {e}");
            exit(EXIT_CANNOT_RUN)
        }
    }
}

fn merge_command(out: &std::path::Path, shard_dirs: &[PathBuf]) -> ExitCode {
    match merge(out, shard_dirs) {
        Ok(MergeOutcome::Merged(r)) => {
            tell!(
                "merged {} results into {} ({} rho files linked, {} copied)",
                r.lines,
                r.out.display(),
                r.linked,
                r.copied
            );
            if r.failed > 0 {
                say!(
                    "qst: {} of the {} jobs failed (each has its error line)",
                    r.failed,
                    r.lines
                );
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Ok(MergeOutcome::Incomplete(problems)) => {
            say!("qst: not merged; {} was not written:", out.display());
            for p in problems {
                say!("  {p}");
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            say!("qst: {e}");
            exit(EXIT_CANNOT_RUN)
        }
    }
}

fn slurm_command(a: SlurmArgs) -> ExitCode {
    let opts = SlurmOptions {
        batch: a.batch,
        out: a.out,
        shards: a.shards,
        cpus_per_task: a.cpus_per_task,
        time: a.time,
        partition: a.partition,
        cache: a.cache,
        max_cache_bytes: a.max_cache_bytes,
        job_timeout: a.job_timeout,
        max_retries: a.max_retries,
        input: a.input.options(),
        submit: a.submit,
    };
    match slurm(&opts) {
        Ok(r) => {
            let sets: Vec<String> = r
                .prebuilt
                .iter()
                .map(|(d, n)| format!("{d}_n{n}"))
                .collect();
            tell!("prebuilt projector files: {}", sets.join(","));
            tell!("wrote {}", r.array_script.display());
            tell!("wrote {}", r.merge_script.display());
            if let Some((array, merge)) = &r.submitted {
                tell!(
                    "submitted array job {array} and merge job {merge}; merged output: {}",
                    r.out.display()
                );
            } else {
                tell!(
                    "submit with:\n  {}\nmerged output: {}",
                    r.commands,
                    r.out.display()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            say!("qst: {e}");
            exit(EXIT_CANNOT_RUN)
        }
    }
}
