//! `qst run`: the supervisor's main loop. One thread (the caller's, which
//! must live as long as the process: workers die with the thread that spawned
//! them) owns all state and receives every event on one channel: worker
//! frames and exits from the reader threads, SIGINT/SIGTERM from the signal
//! thread, and a tick (the receive timeout) for timeouts and progress.
//!
//! Before any worker starts: the batch is opened (unreadable → exit 2), the
//! output directory and `results.jsonl` are opened (unwritable, or a changed
//! batch on `--resume` → exit 2), one streaming pass collects the dimensions
//! the batch needs and every projector file is prebuilt. A second streaming
//! pass feeds the dispatcher's bounded window.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossbeam_channel::{RecvTimeoutError, Sender, unbounded};
use nix::sys::signal::Signal;
use qst_shared::{Design, FromWorker, Job, JobFailure, JobFigures, ProjectorSpec, ToWorker};
use qst_store::{Store, StoreConfig};
use tracing::{info, warn};

use crate::batch::{Batch, BatchSettings, Entry, open_batch};
use crate::bootstrap::Bootstraps;
use crate::dispatch::{BinKey, Dispatcher};
use crate::errors::{self, Fatal};
use crate::executor::{Spawner, WorkerEvent, WorkerExit};
use crate::input::InputOptions;
use crate::platform;
use crate::progress::{Progress, build_bar};
use crate::provenance::{Invocation, Provenance, hostname, user, utc_iso8601};
use crate::results::{Done, FINGERPRINT_FILE, OkRecord, ResultRecord, ResultsWriter};
use crate::shard::{Shard, ShardRecord, Sharded};
use crate::summary::{Incarnation, WorkerUsage, write_summaries};

mod slot;
use slot::{Cancel, InFlight, Running, Slot, SlotState, Stopping};

/// How often the loop wakes without events (timeouts, progress lines).
const TICK: Duration = Duration::from_millis(100);
/// Group commit: result lines wait at most this long, or until this many are
/// waiting, before their ρ files are made durable together (one `syncfs`)
/// and the lines are appended with one write.
const GROUP_WAIT: Duration = Duration::from_millis(25);
const GROUP_MAX: usize = 512;
/// The jobs sent behind a running one are at most this big together
/// (estimated, see [`crate::dispatch::job_bytes`]): their frames then fit
/// in the pipe, so a write never waits for the worker to finish a job.
const PIPELINE_MAX_BYTES: usize = 32 << 10;
/// Pipelining: how many jobs a worker holds at most (the one it runs and
/// those sent behind it, which it starts as soon as the one before ends),
/// from how long its last job took: 4 below 1 ms, 2 below 100 ms, else 1.
/// A worker busy with small jobs then never waits for the supervisor
/// between them, while at most about 0.1 s of work waits behind a job that
/// another worker, free sooner, could have taken.
fn pipeline_depth(last_seconds: Option<f64>) -> usize {
    match last_seconds {
        Some(s) if s < 0.001 => 4,
        Some(s) if s < 0.1 => 2,
        _ => 1,
    }
}
/// Between SIGTERM and SIGKILL of a worker over `--job-timeout`.
const TERM_GRACE: Duration = Duration::from_secs(2);
/// Workers that die before saying hello (or cannot be started), in a row,
/// before the run may give up on starting more: it gives up only when, in
/// addition, starts have kept failing for [`GIVE_UP_AFTER`]. Between failed
/// starts, or worker deaths with no job finished in between, a slot waits,
/// doubling from [`FIRST_BACKOFF`] up to [`MAX_BACKOFF`], so that a burst of
/// deaths is waited out rather than failing every job.
const MAX_FAILED_STARTS: u32 = 8;
const GIVE_UP_AFTER: Duration = Duration::from_mins(1);
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The flags of `qst run` (docs/reference.md).
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub batch: PathBuf,
    /// Default: `<batch stem>.qst/` beside the batch.
    pub out: Option<PathBuf>,
    /// Default: the number of available cores.
    pub workers: Option<usize>,
    pub cache: Option<PathBuf>,
    pub max_cache_bytes: Option<u64>,
    pub resume: bool,
    /// Seconds.
    pub job_timeout: Option<f64>,
    pub max_retries: u32,
    /// Default: `<out>/logs`.
    pub logs: Option<PathBuf>,
    /// How the batch is read: defaults for JSON lines, a count matrix's layout.
    pub input: InputOptions,
    /// `--shard i/N`, resolved: only this shard's job lines run.
    pub shard: Option<Shard>,
    /// No progress output at all.
    pub quiet: bool,
    /// The supervisor's log lines on stderr too.
    pub verbose: bool,
    /// Which qst and which command line (for `summary.json`'s provenance).
    pub invocation: Invocation,
}

impl RunOptions {
    /// Defaults for a batch (docs/reference.md).
    pub fn new(batch: impl Into<PathBuf>) -> Self {
        RunOptions {
            batch: batch.into(),
            out: None,
            workers: None,
            cache: None,
            max_cache_bytes: None,
            resume: false,
            job_timeout: None,
            max_retries: 3,
            logs: None,
            input: InputOptions::default(),
            shard: None,
            quiet: false,
            verbose: false,
            invocation: Invocation::default(),
        }
    }

    /// The output directory: `--out`, else `<batch stem>.qst/` beside the batch.
    #[must_use]
    pub fn out_dir(&self) -> PathBuf {
        match &self.out {
            Some(o) => o.clone(),
            None => {
                let stem = self
                    .batch
                    .file_stem()
                    .map_or_else(|| "batch".to_string(), |s| s.to_string_lossy().into_owned());
                self.batch.with_file_name(format!("{stem}.qst"))
            }
        }
    }

    /// The command line that resumes this run.
    pub fn resume_command(&self, out_dir: &Path) -> String {
        let mut cmd = format!(
            "qst run {} --out {} --resume",
            quote(&self.batch),
            quote(out_dir)
        );
        if let Some(s) = self.shard {
            cmd += &format!(" --shard {s}");
        }
        if let Some(w) = self.workers {
            cmd += &format!(" --workers {w}");
        }
        if let Some(c) = &self.cache {
            cmd += &format!(" --cache {}", quote(c));
        }
        if let Some(b) = self.max_cache_bytes {
            cmd += &format!(" --max-cache-bytes {b}");
        }
        if let Some(t) = self.job_timeout {
            cmd += &format!(" --job-timeout {t}");
        }
        if self.max_retries != 3 {
            cmd += &format!(" --max-retries {}", self.max_retries);
        }
        if let Some(l) = &self.logs {
            cmd += &format!(" --logs {}", quote(l));
        }
        cmd += &self.input.args(quote);
        cmd
    }
}

/// A path as one shell word.
pub fn quote(p: &Path) -> String {
    let s = p.display().to_string();
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,".contains(&b))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// How a run ended.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// 0 every job ok, 1 some failed, 130/143 interrupted.
    pub exit_code: i32,
    pub out_dir: PathBuf,
    /// The signal that interrupted the run.
    pub interrupted: Option<i32>,
    /// Result lines written by this run.
    pub results_written: u64,
}

enum Event {
    Worker(WorkerEvent),
    Signal(i32),
}

fn wrap_worker(e: WorkerEvent) -> Event {
    Event::Worker(e)
}

fn wrap_signal(s: i32) -> Event {
    // Runs on the signal thread: a projector build in progress stops at its
    // next slice rather than finishing first.
    qst_store::cancel_builds();
    Event::Signal(s)
}

struct Supervisor {
    opts: RunOptions,
    out_dir: PathBuf,
    store: Store,
    spawner: Spawner,
    tx: Sender<Event>,
    writer: ResultsWriter,
    batch: Option<Sharded<Batch>>,
    done_lines: Done,
    bad_dims: HashMap<(Design, usize), String>,
    dispatcher: Dispatcher,
    slots: Vec<Slot>,
    usage: Vec<WorkerUsage>,
    retries: HashMap<u64, u32>,
    progress: Progress,
    /// Why dispatching stopped, if it did (the strongest reason so far).
    cancel: Option<Cancel>,
    /// The first failed write's message, said at the end (even when a
    /// signal came after it).
    write_error: Option<String>,
    failed_starts: u32,
    /// Workers that died (not a clean exit) with no job finished since.
    deaths: u32,
    /// Since when starts have been failing (reset by a hello).
    failing_since: Option<Instant>,
    written: u64,
    /// Result lines waiting for the next group commit, and since when.
    pending: Vec<ResultRecord>,
    pending_since: Option<Instant>,
    /// The open `rho/` directory, for syncfs.
    rho_dir: Option<File>,
    /// Jobs whose result waits for their bootstrap resamples.
    boots: Bootstraps,
}

/// What the checks before any worker starts opened.
struct Opened {
    out_dir: PathBuf,
    log_dir: PathBuf,
    store_config: StoreConfig,
    store: Store,
    settings: BatchSettings,
    writer: ResultsWriter,
    done_lines: Done,
}

/// Runs a batch through a pool of workers. Must be called from a thread that
/// lives as long as the process (the main thread). `Err` means the command
/// could not run (exit 2): nothing was started.
///
/// # Errors
///
/// [`Fatal`] when the command cannot run: the batch cannot be opened or
/// changed since an earlier run, the output directory cannot be made, locked
/// or resumed, the signal handler or the qst executable cannot be set up.
pub fn run(opts: &RunOptions) -> Result<RunReport, Fatal> {
    let started = std::time::SystemTime::now();
    let (o, batch) = open(opts)?;
    // Signals are caught from here on: one that arrives during the passes
    // over the batch or the prebuild waits in the channel and stops the run
    // before any job is dispatched.
    let (tx, rx) = unbounded();
    let signal_handle = platform::forward_signals(tx.clone(), wrap_signal).map_err(Fatal::to)?;
    let exe = std::env::current_exe()
        .map_err(|e| Fatal::to(format!("find the qst executable to start workers: {e}")))?;
    let workers = opts
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get))
        .max(1);
    info!(
        "run batch={} out={} workers={workers} resume={} already_done={} pid={}",
        opts.batch.display(),
        o.out_dir.display(),
        opts.resume,
        o.done_lines.len(),
        std::process::id()
    );
    let mut provenance = provenance(opts, &o, started, workers);
    let passes = passes(opts, &o, batch, workers)?;
    let out_dir = o.out_dir.clone();
    let mut sup = Supervisor::new(opts, o, exe, tx, passes, workers)?;
    start(&mut sup, &rx);
    event_loop(&mut sup, &rx);
    signal_handle.close();
    Ok(finish(&mut sup, opts, out_dir, &mut provenance))
}

/// What the batch holds, found before any worker starts.
struct Passes {
    /// The batch, open again for the second pass.
    batch: Sharded<Batch>,
    needs: Needs,
    /// The projector sets whose prebuild failed, with their jobs' error.
    bad_dims: HashMap<(Design, usize), String>,
}

/// Pass 1 over the batch (what it needs), the prebuild of every projector
/// file it needs, `shard.json`, and the batch opened again for pass 2.
fn passes(opts: &RunOptions, o: &Opened, batch: Batch, workers: usize) -> Result<Passes, Fatal> {
    let mut batch = Sharded::new(batch, opts.shard);
    let needs = survey(&mut batch, &o.done_lines, workers);
    if batch.seen() == 0 {
        return Err(Fatal(format!(
            "failed to run: no jobs in {} (it holds no job line: every line is blank or a # comment)",
            opts.batch.display()
        )));
    }
    let bad_dims = prebuild(&o.store, &needs.dims, opts.quiet);
    if let Some(shard) = opts.shard {
        write_shard_record(opts, shard, &o.out_dir, &o.log_dir, batch.seen())?;
    }
    let batch = Sharded::new(
        open_batch(&opts.batch, &o.settings, &o.store).map_err(Fatal::from)?,
        opts.shard,
    );
    Ok(Passes {
        batch,
        needs,
        bad_dims,
    })
}

/// The checks and openings before anything is read in full: the output
/// directory, the store, the batch, `results.jsonl` (and `--resume`'s done
/// lines), the log directory and the supervisor's log.
fn open(opts: &RunOptions) -> Result<(Opened, Batch), Fatal> {
    let out_dir = std::path::absolute(opts.out_dir()).map_err(|e| {
        Fatal::to(format!(
            "resolve the output directory {}: {e}",
            opts.out_dir().display()
        ))
    })?;
    check_batch_is_a_file(&opts.batch)?;
    let (store_config, store) = open_store(opts)?;
    let settings = BatchSettings {
        out_dir: out_dir.clone(),
        input: opts.input.clone(),
    };
    let batch = open_batch(&opts.batch, &settings, &store).map_err(Fatal::from)?;
    if let Some(note) = batch.note() {
        if !opts.quiet {
            crate::say!("qst: {note}");
        }
        info!("{note}");
    }
    let (writer, done_lines) =
        ResultsWriter::open(&out_dir, &opts.batch, opts.resume).map_err(Fatal::to)?;
    crate::shard::check_resume(&out_dir, opts.shard, !done_lines.is_empty())
        .map_err(|e| Fatal(e.to_string()))?;
    let log_dir = opts.logs.clone().unwrap_or_else(|| out_dir.join("logs"));
    let log_dir = std::path::absolute(&log_dir).unwrap_or(log_dir);
    crate::outdir::create_dir(&log_dir).map_err(|e| match e {
        crate::outdir::OutDirError::Io { source, .. } => Fatal::to(format!(
            "create the log directory {}: {source}",
            log_dir.display()
        )),
        e => Fatal::to(e),
    })?;
    init_log(&log_dir.join("supervisor.log"), opts.verbose)?;
    let opened = Opened {
        out_dir,
        log_dir,
        store_config,
        store,
        settings,
        writer,
        done_lines,
    };
    Ok((opened, batch))
}

/// `summary.json`'s provenance, its end time still open.
fn provenance(
    opts: &RunOptions,
    o: &Opened,
    started: std::time::SystemTime,
    workers: usize,
) -> Provenance {
    Provenance {
        qst_version: opts.invocation.version.clone(),
        commit: opts.invocation.commit.clone(),
        command: opts.invocation.argv.clone(),
        started: utc_iso8601(started),
        ended: None,
        host: hostname(),
        user: user(),
        cache_dir: o.store_config.dir.clone(),
        batch: std::path::absolute(&opts.batch).unwrap_or_else(|_| opts.batch.clone()),
        batch_fingerprint: fs::read_to_string(o.out_dir.join(FINGERPRINT_FILE))
            .ok()
            .map(|s| s.trim().to_string()),
        workers,
        resume: opts.resume,
    }
}

/// Starts every slot's worker, unless a signal came during the prebuild
/// (then none starts); with no slot, records the errors of the bad lines.
fn start(sup: &mut Supervisor, rx: &crossbeam_channel::Receiver<Event>) {
    if qst_store::builds_cancelled() {
        // A signal came during the prebuild: no worker starts.
        while let Ok(ev) = rx.try_recv() {
            if let Event::Signal(sig) = ev {
                sup.on_signal(sig);
            }
        }
    }
    if sup.cancel.is_some() {
        return;
    }
    if sup.slots.is_empty() {
        // Nothing to run: record the errors of the bad lines.
        sup.fill();
    }
    for slot in 0..sup.slots.len() {
        sup.spawn(slot);
    }
}

/// A pipe or device (`qst run /dev/stdin`) would be read once, then found
/// empty by the second pass and the fingerprint: refused, clearly.
fn check_batch_is_a_file(batch: &Path) -> Result<(), Fatal> {
    match fs::metadata(batch) {
        Ok(m) if !m.is_file() && !m.is_dir() => Err(Fatal::to(format!(
            "read the batch {}: it is not a regular file (a pipe or device), but qst reads a batch twice and fingerprints it for --resume; save it to a file first",
            batch.display()
        ))),
        _ => Ok(()),
    }
}

/// The projector store of the run, its directory created up front (one
/// error naming `--cache` rather than a cache error on every job).
fn open_store(opts: &RunOptions) -> Result<(StoreConfig, Store), Fatal> {
    let mut store_config = StoreConfig::resolve(opts.cache.as_deref(), opts.max_cache_bytes);
    store_config.dir = std::path::absolute(&store_config.dir).unwrap_or(store_config.dir);
    fs::create_dir_all(&store_config.dir).map_err(|e| {
        Fatal::to(format!(
            "create the projector cache directory {}: {e}; pass --cache DIR or set QST_CACHE_DIR to a writable directory",
            store_config.dir.display()
        ))
    })?;
    let mut store = Store::new(store_config.clone());
    if let (false, Some(bar)) = (opts.quiet, build_bar()) {
        store = store.with_build_progress(bar);
    }
    Ok((store_config, store))
}

/// What pass 1 found: lines to record, jobs, tasks workers can share (jobs
/// plus bootstrap resample tasks), the built-in sets needed.
struct Needs {
    total: u64,
    jobs: u64,
    tasks: u64,
    dims: BTreeSet<(Design, usize)>,
}

/// Pass 1 over the batch, streamed: what it needs.
fn survey<I: Iterator<Item = Entry>>(batch: &mut Sharded<I>, done: &Done, workers: usize) -> Needs {
    let mut n = Needs {
        total: 0,
        jobs: 0,
        tasks: 0,
        dims: BTreeSet::new(),
    };
    for entry in batch.by_ref() {
        if done.has(&entry.key()) {
            continue;
        }
        n.total += 1;
        if let Entry::Job(job) = entry {
            n.jobs += 1;
            let b = job.analysis.bootstrap;
            n.tasks += 1 + u64::from(b.div_ceil(crate::bootstrap::chunk_size(b, workers)));
            if let ProjectorSpec::Builtin(design) = job.projectors {
                n.dims.insert((design, job.dim));
            }
        }
    }
    n
}

/// Builds (or checks) every projector file before any worker starts; the
/// sets that failed, with the error their jobs get.
fn prebuild(
    store: &Store,
    dims: &BTreeSet<(Design, usize)>,
    quiet: bool,
) -> HashMap<(Design, usize), String> {
    let mut bad_dims = HashMap::new();
    for &(design, n) in dims {
        let t = Instant::now();
        if qst_store::builds_cancelled() {
            break;
        }
        match store.prepare(design, n) {
            Ok(prep) => {
                info!(
                    "prebuilt design={design} dim={n} as {:?} ({:?}) in {:.3} s",
                    prep.prepared,
                    prep.action,
                    t.elapsed().as_secs_f64()
                );
                if let qst_store::BuildAction::FromKets { reason } = &prep.action
                    && !qst_store::builds_cancelled()
                    && !quiet
                {
                    crate::say!(
                        "qst: warning: the projector file of design {design}, dimension {n} cannot be used ({reason}); its jobs run from its kets"
                    );
                }
            }
            Err(e) => {
                warn!("prebuild design={design} dim={n} failed: {e}");
                bad_dims.insert((design, n), format!("projectors: failed to {e}"));
            }
        }
    }
    bad_dims
}

/// A link, FIFO or device planted at a worker's log name is refused up
/// front (it would never be followed, but no worker could start).
fn check_worker_logs(spawner: &Spawner, n_slots: usize) -> Result<(), Fatal> {
    for slot in 0..n_slots {
        let log = spawner.log_path(slot);
        if let Ok(m) = fs::symlink_metadata(&log) {
            let t = m.file_type();
            if !t.is_file() && !t.is_dir() {
                return Err(Fatal::to(format!(
                    "open the worker log {}: it is not a regular file (a symbolic link, FIFO or device); remove it",
                    log.display()
                )));
            }
        }
    }
    Ok(())
}

/// The main loop: events until every slot is done, with group commits.
fn event_loop(sup: &mut Supervisor, rx: &crossbeam_channel::Receiver<Event>) {
    loop {
        if sup.finished() {
            break;
        }
        let wait = sup
            .pending_since
            .map_or(TICK, |t| GROUP_WAIT.saturating_sub(t.elapsed()).min(TICK));
        match rx.recv_timeout(wait) {
            Ok(Event::Worker(ev)) => sup.on_worker(ev),
            Ok(Event::Signal(sig)) => sup.on_signal(sig),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if sup.pending_since.is_some_and(|t| t.elapsed() >= GROUP_WAIT) {
            sup.commit();
        }
        sup.on_tick();
    }
    sup.commit();
}

/// After the loop: summaries, the messages of a failed write or a signal,
/// and the exit status.
fn finish(
    sup: &mut Supervisor,
    opts: &RunOptions,
    out_dir: PathBuf,
    provenance: &mut Provenance,
) -> RunReport {
    sup.progress.finish();
    let peak = platform::peak_rss_bytes(None).unwrap_or(0);
    let mut exit_code = 0;
    provenance.ended = Some(utc_iso8601(std::time::SystemTime::now()));
    for u in &mut sup.usage {
        u.total();
    }
    // Whether any result is an error (unknown when the summaries failed).
    let any_error = match write_summaries(&out_dir, &sup.usage, peak, Some(provenance)) {
        Ok(totals) => totals.failed > 0,
        Err(e) => {
            crate::say!("qst: failed to {e}");
            exit_code = 1;
            true
        }
    };
    if let Some(e) = &sup.write_error {
        crate::say!("qst: {e}");
        exit_code = 1;
    }
    info!(
        "run ended written={} supervisor_peak_rss_bytes={peak}",
        sup.written
    );
    let interrupted = sup.cancel.and_then(Cancel::signal);
    if let Some(sig) = interrupted {
        let name = if sig == Signal::SIGTERM as i32 {
            "SIGTERM"
        } else {
            "SIGINT"
        };
        crate::say!(
            "qst: interrupted by {name}; results so far are in {}. To resume:\n  {}",
            out_dir.display(),
            opts.resume_command(&out_dir)
        );
        exit_code = 128 + sig;
    } else if any_error {
        exit_code = 1;
    }
    RunReport {
        exit_code,
        out_dir,
        interrupted,
        results_written: sup.written,
    }
}

/// `shard.json` beside `batch.fingerprint`: which shard this directory holds.
fn write_shard_record(
    opts: &RunOptions,
    shard: Shard,
    out_dir: &Path,
    log_dir: &Path,
    batch_jobs: u64,
) -> Result<(), Fatal> {
    let fp_path = out_dir.join(FINGERPRINT_FILE);
    let fingerprint = fs::read_to_string(&fp_path)
        .map_err(|e| Fatal::to(format!("read {}: {e}", fp_path.display())))?;
    let batch = std::path::absolute(&opts.batch).unwrap_or_else(|_| opts.batch.clone());
    let record = ShardRecord {
        shard: shard.index,
        of: shard.count,
        resume: RunOptions {
            batch: batch.clone(),
            ..opts.clone()
        }
        .resume_command(out_dir),
        batch,
        fingerprint: fingerprint.trim().to_string(),
        batch_jobs,
        logs: log_dir.to_path_buf(),
    };
    record.write(out_dir).map_err(|e| Fatal(e.to_string()))
}

fn init_log(path: &Path, verbose: bool) -> Result<(), Fatal> {
    use tracing_subscriber::fmt::writer::{BoxMakeWriter, MakeWriterExt};
    let file = crate::outdir::open_append(path)
        .map_err(|e| Fatal::to(format!("open the supervisor log {}: {e}", path.display())))?;
    let writer = if verbose {
        BoxMakeWriter::new(file.and(std::io::stderr))
    } else {
        BoxMakeWriter::new(file)
    };
    // Already set (a second run in one process) is fine: keep the first.
    let _ = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_target(false)
        .try_init();
    Ok(())
}

/// The log lines of commands without a log file (`qst prebuild -v`) on stderr.
pub fn log_to_stderr() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .try_init();
}

impl Supervisor {
    /// The supervisor of a run, its slots not started yet.
    fn new(
        opts: &RunOptions,
        o: Opened,
        exe: PathBuf,
        tx: Sender<Event>,
        passes: Passes,
        workers: usize,
    ) -> Result<Self, Fatal> {
        let spawner = Spawner {
            exe,
            cache_dir: o.store_config.dir.clone(),
            max_cache_bytes: o.store_config.max_bytes,
            log_dir: o.log_dir,
            supervisor_pid: std::process::id(),
        };
        let needs = &passes.needs;
        let n_slots = workers.min(usize::try_from(needs.tasks).unwrap_or(usize::MAX));
        debug_assert!(needs.tasks >= needs.jobs);
        check_worker_logs(&spawner, n_slots)?;
        Ok(Supervisor {
            opts: opts.clone(),
            out_dir: o.out_dir,
            store: o.store,
            spawner,
            tx,
            writer: o.writer,
            batch: Some(passes.batch),
            done_lines: o.done_lines,
            bad_dims: passes.bad_dims,
            dispatcher: Dispatcher::new(),
            slots: (0..n_slots).map(|_| Slot::new()).collect(),
            usage: (0..n_slots)
                .map(|slot| WorkerUsage {
                    slot,
                    ..Default::default()
                })
                .collect(),
            retries: HashMap::new(),
            progress: Progress::new(needs.total, opts.quiet),
            cancel: None,
            write_error: None,
            failed_starts: 0,
            deaths: 0,
            failing_since: None,
            written: 0,
            pending: Vec::new(),
            pending_since: None,
            rho_dir: None,
            boots: Bootstraps::new(opts.input.seed(), workers),
        })
    }

    fn finished(&self) -> bool {
        let stopping = self.cancel.is_some()
            || (self.batch.is_none() && self.dispatcher.is_empty() && self.boots.is_empty());
        stopping && self.slots.iter().all(|s| !s.has_proc())
    }

    /// Stops dispatching for `why`, unless a stronger reason already did.
    fn raise(&mut self, why: Cancel) {
        self.cancel = self.cancel.max(Some(why));
    }

    /// A write failed: the first failure's message is said at the end, and
    /// dispatching stops (running jobs finish).
    fn write_failed(&mut self, message: String) {
        if self.write_error.is_none() {
            self.write_error = Some(message);
            self.raise(Cancel::WriteFailed);
            self.stop_idle();
        }
    }

    /// Queues a result line for the next group commit.
    fn record(&mut self, rec: ResultRecord) {
        self.pending.push(rec);
        self.pending_since.get_or_insert_with(Instant::now);
        if self.pending.len() >= GROUP_MAX {
            self.commit();
        }
    }

    /// Makes the ρ files of the waiting ok results durable together (syncfs
    /// of their file system: a result line exists only once its ρ file is
    /// on disk), then appends the waiting lines with one write.
    fn commit(&mut self) {
        self.pending_since = None;
        if self.pending.is_empty() {
            return;
        }
        let recs = std::mem::take(&mut self.pending);
        if recs.iter().any(ResultRecord::is_ok)
            && let Err(e) = self.sync_rho()
        {
            let msg = format!(
                "failed to make the rho files in {} durable: {e}; stopping (rerun with --resume)",
                self.out_dir.join("rho").display()
            );
            if self.write_error.is_none() {
                warn!("syncfs of the rho directory failed: {e}");
            }
            self.write_failed(msg);
            return;
        }
        match self.writer.append_all(&recs) {
            Ok(()) => {
                self.written += recs.len() as u64;
                for r in &recs {
                    self.progress.job_done(r.is_ok());
                }
            }
            Err(e) => {
                let msg = format!(
                    "failed to append to {}: {e}; stopping (rerun with --resume)",
                    self.writer.path().display()
                );
                if self.write_error.is_none() {
                    warn!("append to results.jsonl failed: {e}");
                }
                self.write_failed(msg);
            }
        }
    }

    /// `syncfs` of the file system that holds `rho/`.
    fn sync_rho(&mut self) -> std::io::Result<()> {
        if self.rho_dir.is_none() {
            self.rho_dir = Some(File::open(self.out_dir.join("rho"))?);
        }
        match &self.rho_dir {
            Some(d) => nix::unistd::syncfs(d).map_err(std::io::Error::from),
            None => Ok(()),
        }
    }

    /// Reads the batch into the dispatcher's window; bad lines get their error now.
    fn fill(&mut self) {
        while self.dispatcher.has_room() {
            let Some(batch) = self.batch.as_mut() else {
                return;
            };
            let Some(entry) = batch.next() else {
                self.batch = None;
                return;
            };
            if self.done_lines.has(&entry.key()) {
                continue;
            }
            match entry {
                Entry::Error(rec) => self.record(rec.into()),
                Entry::Job(job) => match job
                    .projectors
                    .builtin()
                    .and_then(|d| self.bad_dims.get(&(d, job.dim)))
                {
                    Some(msg) => {
                        let rec = ResultRecord::job_error(&job, msg.clone());
                        self.record(rec);
                    }
                    _ => self.dispatcher.push(job),
                },
            }
        }
    }

    fn spawn(&mut self, slot: usize) {
        let incarnation = self.slots[slot].incarnation + 1;
        match self
            .spawner
            .spawn(slot, incarnation, self.tx.clone(), wrap_worker)
        {
            Ok(proc_) => {
                info!(
                    "spawned slot={slot} pid={} incarnation={incarnation}",
                    proc_.pid
                );
                self.usage[slot].incarnations.push(Incarnation {
                    pid: proc_.pid,
                    ..Default::default()
                });
                self.slots[slot] = Slot {
                    incarnation,
                    state: SlotState::Starting(proc_),
                    ..Slot::new()
                };
            }
            Err(e) => {
                warn!("spawn slot={slot} failed: {e}");
                self.slots[slot].incarnation = incarnation;
                self.slots[slot].state = SlotState::Exited;
                self.start_failed();
                if self.give_up_starting() {
                    if self.no_worker_left() {
                        self.fail_everything(&format!("failed to {e}"));
                    }
                } else {
                    self.respawn_later(slot);
                }
            }
        }
    }

    /// No slot has a worker, or one about to start.
    fn no_worker_left(&self) -> bool {
        self.slots
            .iter()
            .all(|s| matches!(s.state, SlotState::Exited))
    }

    /// One more start failed in a row.
    fn start_failed(&mut self) {
        self.failed_starts += 1;
        self.failing_since.get_or_insert_with(Instant::now);
    }

    /// Starts have failed often enough, for long enough, to stop trying.
    fn give_up_starting(&self) -> bool {
        self.failed_starts >= MAX_FAILED_STARTS
            && self
                .failing_since
                .is_some_and(|t| t.elapsed() >= GIVE_UP_AFTER)
    }

    /// Starts the slot's worker again after the current backoff (at once when
    /// no start has failed).
    fn respawn_later(&mut self, slot: usize) {
        let in_a_row = self.failed_starts.max(self.deaths);
        if in_a_row == 0 {
            self.spawn(slot);
            return;
        }
        let doublings = (in_a_row - 1).min(16);
        let delay = FIRST_BACKOFF
            .saturating_mul(1u32 << doublings)
            .min(MAX_BACKOFF);
        info!(
            "slot={slot}: {in_a_row} failed starts or deaths in a row; next start in {:.2} s",
            delay.as_secs_f64()
        );
        self.slots[slot].state = SlotState::BackingOff {
            until: Instant::now() + delay,
        };
    }

    /// No worker can run: every remaining job gets this error.
    fn fail_everything(&mut self, msg: &str) {
        crate::say!("qst: {msg}; every remaining job fails");
        loop {
            self.fill();
            let jobs = self.dispatcher.drain();
            if jobs.is_empty() && self.batch.is_none() {
                break;
            }
            for job in jobs {
                self.record(ResultRecord::job_error(&job, msg.to_string()));
            }
        }
        for rec in self.boots.abandon(msg) {
            self.record(rec);
        }
    }

    /// Whether a job's bootstrap is under way or may start (a running job
    /// asked for one): idle workers then wait for its resamples.
    fn bootstrap_pending(&self) -> bool {
        !self.boots.is_empty()
            || self.slots.iter().any(|s| {
                s.jobs()
                    .iter()
                    .any(|r| r.boot.is_none() && r.job.analysis.bootstrap > 0)
            })
    }

    /// Offers work to every idle worker (new resamples), or stops them
    /// when nothing is left.
    fn wake_idle(&mut self) {
        for slot in 0..self.slots.len() {
            if self.slots[slot].is_idle() {
                self.dispatch(slot);
            }
        }
    }

    /// Records the result of a job whose bootstrap just ended.
    fn bootstrap_ended(&mut self, rec: Option<ResultRecord>) {
        if let Some(rec) = rec {
            self.record(rec);
            self.wake_idle();
        }
    }

    /// Whether the slot takes a job now: it is idle, or busy with room for
    /// one behind the job it runs.
    fn takes_a_job(&self, slot: usize) -> bool {
        let s = &self.slots[slot];
        s.is_idle()
            || (self.boots.is_empty() && s.room_behind(pipeline_depth(s.last_seconds)).is_some())
    }

    /// Sends the slot what it can take (one job, or more to a worker whose
    /// last job was quick: [`pipeline_depth`]), or `Stop` to an idle worker
    /// when nothing is left for it.
    fn dispatch(&mut self, slot: usize) {
        while self.takes_a_job(slot) {
            if !self.dispatch_one(slot) {
                return;
            }
        }
    }

    /// Sends the slot one job; false when it got none.
    fn dispatch_one(&mut self, slot: usize) -> bool {
        let idle = self.slots[slot].is_idle();
        if self.cancel.is_some() {
            if idle {
                self.send_stop(slot);
            }
            return false;
        }
        if idle && let Some((g, job)) = self.boots.next_task() {
            self.send_job(slot, job, Some(g));
            return true;
        }
        self.fill();
        if self.cancel.is_some() {
            // Recording the batch's bad lines just failed: stop here.
            if idle {
                self.send_stop(slot);
            }
            return false;
        }
        let slots = &self.slots;
        let served_by_others = |k: &BinKey| {
            slots
                .iter()
                .enumerate()
                .any(|(i, s)| i != slot && s.has_proc() && s.served.contains(k))
        };
        let next = self
            .dispatcher
            .next_for_with(&slots[slot].served, served_by_others);
        let Some(job) = next else {
            if idle && !self.bootstrap_pending() {
                self.send_stop(slot);
            }
            return false;
        };
        let s = &self.slots[slot];
        let waiting = s.room_behind(pipeline_depth(s.last_seconds)).unwrap_or(0);
        if !idle && waiting + crate::dispatch::job_bytes(&job) > PIPELINE_MAX_BYTES {
            // Too big to wait in the pipe: it goes when the worker has room.
            self.dispatcher.push_front(job);
            return false;
        }
        self.send_job(slot, job, None);
        true
    }

    fn send_job(&mut self, slot: usize, job: Job, boot: Option<u64>) {
        match job.analysis.resample {
            Some(r) => info!(
                "dispatch line={} id={} dim={} resamples={}..{} slot={slot}",
                job.line,
                job.id,
                job.dim,
                r.first,
                r.first + r.count
            ),
            None => info!(
                "dispatch line={} id={} dim={} slot={slot}",
                job.line, job.id, job.dim
            ),
        }
        let s = &mut self.slots[slot];
        s.served.insert(BinKey::of(&job));
        let msg = ToWorker::Run(job);
        let sent = s.proc_mut().map(|p| p.send(&msg));
        let ToWorker::Run(job) = msg else { return };
        if let Some(Err(e)) = sent {
            // The worker is gone; its exit event retries the job.
            warn!("send to slot={slot} failed: {e}");
        }
        let run = Running {
            job,
            started: Instant::now(),
            boot,
        };
        match &mut s.state {
            SlotState::Busy(_, f) => f.behind.push_back(run),
            SlotState::Idle(_) => {
                let SlotState::Idle(p) = std::mem::replace(&mut s.state, SlotState::Exited) else {
                    return;
                };
                s.state = SlotState::Busy(
                    p,
                    InFlight {
                        head: run,
                        behind: std::collections::VecDeque::new(),
                    },
                );
            }
            _ => {
                // Not reached: only a slot that takes a job gets one.
                warn!(
                    "slot={slot}: line={} sent to a worker that takes no job",
                    run.job.line
                );
                self.dispatcher.push_front(run.job);
            }
        }
    }

    /// Tells an idle worker to exit.
    fn send_stop(&mut self, slot: usize) {
        let s = &mut self.slots[slot];
        if !s.is_idle() {
            return;
        }
        if let SlotState::Idle(mut p) = std::mem::replace(&mut s.state, SlotState::Exited) {
            let _ = p.send(&ToWorker::Stop);
            s.state = SlotState::Stopping(Stopping {
                proc_: p,
                timed_out: None,
                behind: Vec::new(),
                kill_at: None,
            });
        }
    }

    fn stop_idle(&mut self) {
        for slot in 0..self.slots.len() {
            if self.slots[slot].is_idle() {
                self.send_stop(slot);
            }
        }
    }

    fn on_worker(&mut self, ev: WorkerEvent) {
        match ev {
            WorkerEvent::Frame {
                slot,
                incarnation,
                msg,
            } => {
                if self.slots[slot].incarnation != incarnation {
                    return;
                }
                self.on_frame(slot, msg);
            }
            WorkerEvent::Exited {
                slot,
                incarnation,
                how,
                stream_error,
            } => {
                if self.slots[slot].incarnation != incarnation {
                    return;
                }
                self.on_exit(slot, &how, stream_error.as_deref());
            }
        }
    }

    fn on_frame(&mut self, slot: usize, msg: FromWorker) {
        match msg {
            FromWorker::Hello { pid } => self.on_hello(slot, pid),
            FromWorker::Done { line, outcome } => {
                let Some(run) = self.take_ended(slot, line) else {
                    warn!("slot={slot} reported line={line} but runs no job");
                    return;
                };
                self.on_done(slot, run, outcome);
            }
            FromWorker::Usage {
                peak_rss_bytes,
                pss_bytes,
            } => {
                if let Some(u) = self.usage[slot].current() {
                    u.peak_rss_bytes = u.peak_rss_bytes.max(peak_rss_bytes);
                    u.peak_pss_bytes = u.peak_pss_bytes.max(pss_bytes);
                }
            }
            FromWorker::OutputFailed { line, reason } => {
                if let Some(run) = self.take_ended(slot, line) {
                    self.on_output_failed(slot, run, &reason);
                }
            }
            FromWorker::ProjectorFileBad { line, reason } => {
                if let Some(run) = self.take_ended(slot, line) {
                    self.on_projector_file_bad(slot, run, &reason);
                }
            }
        }
    }

    /// The job the worker of `slot` reports ended (it names `line`).
    fn take_ended(&mut self, slot: usize, line: u64) -> Option<Running> {
        let run = self.slots[slot].take_ended(Instant::now())?;
        if run.job.line != line {
            warn!(
                "slot={slot} reported line={line} but runs line={}",
                run.job.line
            );
        }
        Some(run)
    }

    fn on_hello(&mut self, slot: usize, pid: u32) {
        info!("hello slot={slot} pid={pid}");
        let s = &mut self.slots[slot];
        match std::mem::replace(&mut s.state, SlotState::Exited) {
            SlotState::Starting(p) => s.state = SlotState::Idle(p),
            other => {
                s.state = other;
                warn!("slot={slot} said hello twice");
                return;
            }
        }
        self.failed_starts = 0;
        self.failing_since = None;
        self.dispatch(slot);
    }

    // The ended job is handed over: nothing may keep a `Running` after it.
    #[allow(clippy::needless_pass_by_value)]
    fn on_done(&mut self, slot: usize, run: Running, outcome: Result<JobFigures, JobFailure>) {
        self.deaths = 0;
        if let Some(i) = self.usage[slot].current() {
            match &outcome {
                Ok(fig) => {
                    i.jobs += 1;
                    i.busy_seconds += fig.seconds;
                }
                Err(_) => i.busy_seconds += run.started.elapsed().as_secs_f64(),
            }
        }
        if let Ok(fig) = &outcome {
            self.slots[slot].last_seconds = Some(fig.seconds);
        }
        if let (Some(g), Some(r)) = (run.boot, run.job.analysis.resample) {
            // A bootstrap resample: only its figures count.
            let rec = self
                .boots
                .done(g, r, outcome.as_ref().map_err(|e| e.message.as_str()));
            self.bootstrap_ended(rec);
            self.dispatch(slot);
            return;
        }
        self.retries.remove(&run.job.line);
        match outcome {
            Ok(mut fig) => {
                let rec = OkRecord::new(&run.job, &fig, slot, &self.out_dir);
                match fig.analysis.resample_means.take() {
                    Some(means) if run.job.analysis.bootstrap > 0 => {
                        // Held back until its resamples are in.
                        self.boots.start(&run.job, means, rec);
                        self.wake_idle();
                    }
                    _ => self.record(rec.into()),
                }
            }
            Err(failure) => {
                self.record(ResultRecord::job_error(&run.job, failure.message));
                if run.job.analysis.bootstrap > 0 {
                    // Idle workers waited for its resamples.
                    self.wake_idle();
                }
            }
        }
        self.dispatch(slot);
    }

    /// The machine's failure, not the job's: no result (a resume runs the
    /// job again), and the run stops like on a full results file.
    // The ended job is handed over: nothing may keep a `Running` after it.
    #[allow(clippy::needless_pass_by_value)]
    fn on_output_failed(&mut self, slot: usize, run: Running, reason: &str) {
        let line = run.job.line;
        warn!(
            "slot={slot} line={line} id={}: writing its rho failed: {reason}",
            run.job.id
        );
        self.retries.remove(&line);
        let msg = format!(
            "failed to write the rho of job {} ({reason}); stopping: the output directory {} needs attention (space, permissions), then rerun with --resume",
            run.job.id,
            self.out_dir.display()
        );
        self.write_failed(msg);
        self.dispatch(slot);
    }

    fn on_projector_file_bad(&mut self, slot: usize, run: Running, reason: &str) {
        let line = run.job.line;
        warn!("slot={slot} line={line}: projector file failed its checks: {reason}");
        // Its in-process cache may hold nothing good: a fresh look next time.
        self.slots[slot].served.clear();
        if let (Some(g), Some(r)) = (run.boot, run.job.analysis.resample) {
            if let Some(design) = run.job.projectors.builtin() {
                let _ = self.store.ensure(design, run.job.dim);
            }
            let why = format!("projector file failed its checks: {reason}");
            let rec = self.boots.lost(g, r, &why, self.opts.max_retries.max(1));
            self.bootstrap_ended(rec);
            self.dispatch(slot);
            return;
        }
        self.progress_note(&format!(
            "qst: job {}: projector file failed its checks ({reason}); rebuilding it",
            run.job.id
        ));
        let tries = self.retries.entry(line).or_insert(0);
        *tries += 1;
        let tries = *tries;
        let Some(design) = run.job.projectors.builtin() else {
            // Not sent by qst's own workers (a custom set's failure is the
            // job's error), but a worker that says so still gets its next job.
            let msg = format!("projectors: failed to use the projector file: {reason}");
            self.record(ResultRecord::job_error(&run.job, msg));
            self.dispatch(slot);
            return;
        };
        match self.store.ensure(design, run.job.dim) {
            Ok(_) if tries <= self.opts.max_retries.max(1) => {
                info!(
                    "rebuilt dim={} after a bad file; retrying line={line}",
                    run.job.dim
                );
                self.dispatcher.push_front(run.job);
            }
            Ok(_) => {
                let msg = format!("projectors: failed to use the rebuilt file: {reason}");
                self.record(ResultRecord::job_error(&run.job, msg));
            }
            Err(e) => {
                let msg = format!("projectors: failed to {e}");
                self.record(ResultRecord::job_error(&run.job, msg));
            }
        }
        self.dispatch(slot);
        // Workers idle for a bootstrap that will not come now.
        self.wake_idle();
    }

    fn progress_note(&self, line: &str) {
        if !self.opts.quiet {
            crate::say!("{line}");
        }
    }

    fn on_exit(&mut self, slot: usize, how: &WorkerExit, stream_error: Option<&str>) {
        let left = self.slots[slot].take_exited();
        if let Some(e) = stream_error {
            warn!("slot={slot}: bad stream from worker: {e}");
        }
        if how.is_clean() && left.head.is_none() && left.behind.is_empty() {
            info!("slot={slot} exited cleanly");
        } else {
            warn!("slot={slot} exited with {how}");
            self.deaths += 1;
        }
        if !left.had_hello {
            self.start_failed();
        }
        if let Some(i) = self.usage[slot].current() {
            i.exit = Some(how.to_string());
            if let Some(run) = &left.head {
                i.busy_seconds += run.started.elapsed().as_secs_f64();
            }
        }
        if let Some(run) = left.head {
            self.head_lost(run, left.timed_out, how);
        }
        // Jobs sent behind it never ran there: back to the queue, first,
        // in their order, uncounted.
        for run in left.behind.into_iter().rev() {
            self.behind_lost(run);
        }
        let more = self.batch.is_some() || !self.dispatcher.is_empty() || self.bootstrap_pending();
        if self.cancel.is_none() && more {
            if self.give_up_starting() {
                if self.no_worker_left() {
                    let msg = format!(
                        "failed to start a worker: {} in a row exited before saying hello, the last with {how}",
                        self.failed_starts
                    );
                    self.fail_everything(&msg);
                }
            } else {
                self.respawn_later(slot);
            }
        }
        // Workers idle for a bootstrap: a retried job for them, or nothing
        // left (then they stop).
        self.wake_idle();
    }

    /// The job a worker was running when it exited: its timeout error, or
    /// a retry (or its error, after too many deaths), or nothing after a
    /// second signal.
    fn head_lost(&mut self, run: Running, timed_out: bool, how: &WorkerExit) {
        let hard_stop = matches!(self.cancel, Some(Cancel::SecondSignal(_)));
        if let (Some(g), Some(r)) = (run.boot, run.job.analysis.resample) {
            let rec = if timed_out {
                let secs = self.opts.job_timeout.unwrap_or(0.0);
                self.boots.done(g, r, Err(&errors::job_timed_out(secs)))
            } else if hard_stop {
                None
            } else {
                self.boots.lost(
                    g,
                    r,
                    &format!("its worker died with {how}"),
                    self.opts.max_retries,
                )
            };
            self.bootstrap_ended(rec);
        } else if timed_out {
            let secs = self.opts.job_timeout.unwrap_or(0.0);
            self.record(ResultRecord::job_error(
                &run.job,
                errors::job_timed_out(secs),
            ));
        } else if hard_stop {
            info!(
                "line={} left without a result (stopped by a second signal)",
                run.job.line
            );
        } else {
            let tries = self.retries.entry(run.job.line).or_insert(0);
            *tries += 1;
            let tries = *tries;
            if tries > self.opts.max_retries {
                self.retries.remove(&run.job.line);
                let msg = errors::worker_died(tries, how);
                self.record(ResultRecord::job_error(&run.job, msg));
            } else {
                info!(
                    "line={} retry {tries} after its worker died with {how}",
                    run.job.line
                );
                self.dispatcher.push_front(run.job);
            }
        }
    }

    /// A job sent behind the one its worker ran when it exited: it goes
    /// back to the queue, first, with no death counted against it (nothing
    /// after a second signal).
    fn behind_lost(&mut self, run: Running) {
        if matches!(self.cancel, Some(Cancel::SecondSignal(_))) {
            info!(
                "line={} left without a result (stopped by a second signal)",
                run.job.line
            );
            return;
        }
        match (run.boot, run.job.analysis.resample) {
            (Some(g), Some(r)) => {
                // Not reached (resamples are never sent behind a job): lost like a head.
                let rec = self
                    .boots
                    .lost(g, r, "its worker exited", self.opts.max_retries);
                self.bootstrap_ended(rec);
            }
            _ => {
                info!(
                    "line={} back to the queue (sent behind a job whose worker exited)",
                    run.job.line
                );
                self.dispatcher.push_front(run.job);
            }
        }
    }

    fn on_signal(&mut self, sig: i32) {
        match self.cancel {
            None | Some(Cancel::WriteFailed) => {
                self.raise(Cancel::Signal(sig));
                let running: usize = self.slots.iter().map(|s| s.jobs().len()).sum();
                info!("signal {sig}: stop dispatching, {running} jobs running");
                self.progress_note(&format!(
                    "qst: stopping: letting {running} running jobs finish (signal again to stop them now)"
                ));
                self.stop_idle();
            }
            Some(Cancel::Signal(first)) => {
                self.raise(Cancel::SecondSignal(first));
                info!("second signal {sig}: killing running workers");
                for s in &self.slots {
                    if let (Some(pid), false) = (s.pid(), s.jobs().is_empty()) {
                        platform::signal_group(pid, Signal::SIGKILL);
                    }
                }
            }
            Some(Cancel::SecondSignal(_)) => {}
        }
    }

    fn on_tick(&mut self) {
        self.progress.tick();
        let now = Instant::now();
        let more = self.batch.is_some() || !self.dispatcher.is_empty();
        let go_on = self.cancel.is_none() && more;
        for slot in 0..self.slots.len() {
            let s = &mut self.slots[slot];
            if let SlotState::BackingOff { until } = s.state
                && now >= until
            {
                s.state = SlotState::Exited;
                if go_on {
                    self.spawn(slot);
                }
            }
        }
        for slot in 0..self.slots.len() {
            self.check_timeout(slot, now);
        }
    }

    /// SIGTERM to a worker whose job runs over `--job-timeout`; SIGKILL
    /// once the grace after it has passed.
    fn check_timeout(&mut self, slot: usize, now: Instant) {
        let s = &mut self.slots[slot];
        if let (Some(limit), SlotState::Busy(_, f)) = (self.opts.job_timeout, &s.state)
            && f.head.started.elapsed().as_secs_f64() > limit
        {
            let SlotState::Busy(p, f) = std::mem::replace(&mut s.state, SlotState::Exited) else {
                return;
            };
            warn!(
                "line={} id={} over --job-timeout: stopping slot={slot}",
                f.head.job.line, f.head.job.id
            );
            platform::signal_group(p.pid, Signal::SIGTERM);
            s.state = SlotState::Stopping(Stopping {
                proc_: p,
                timed_out: Some(f.head),
                behind: f.behind.into(),
                kill_at: Some(now + TERM_GRACE),
            });
        }
        if let SlotState::Stopping(st) = &mut s.state
            && st.kill_at.is_some_and(|t| now >= t)
        {
            st.kill_at = None;
            platform::signal_group(st.proc_.pid, Signal::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_depth_follows_the_last_jobs_time() {
        assert_eq!(pipeline_depth(None), 1);
        assert_eq!(pipeline_depth(Some(0.000_07)), 4);
        assert_eq!(pipeline_depth(Some(0.01)), 2);
        assert_eq!(pipeline_depth(Some(0.5)), 1);
    }

    #[test]
    fn default_out_dir_and_resume_command() {
        let mut o = RunOptions::new("/data/run 1/b.jsonl");
        assert_eq!(o.out_dir(), PathBuf::from("/data/run 1/b.qst"));
        o.workers = Some(2);
        o.max_retries = 7;
        assert_eq!(
            o.resume_command(&o.out_dir()),
            "qst run '/data/run 1/b.jsonl' --out '/data/run 1/b.qst' --resume --workers 2 --max-retries 7"
        );
        let mut c = RunOptions::new("x/lab.csv");
        assert_eq!(
            c.resume_command(Path::new("o")),
            "qst run x/lab.csv --out o --resume"
        );
        c.input.design = Some(Design::Mub);
        assert_eq!(
            c.resume_command(Path::new("o")),
            "qst run x/lab.csv --out o --resume --design mub"
        );
    }
}
