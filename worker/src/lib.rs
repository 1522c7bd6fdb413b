//! The qst worker process: receives jobs over its stdin pipe, reconstructs each
//! one (`mle`, `linear` or `wls`) from a projector set held in its in-process
//! cache, writes `rho/<id>.npy` (renamed into place whole; the supervisor makes
//! a group of them durable before their result lines) and only then replies
//! on its stdout pipe.
//!
//! A worker is the `qst` binary exec'd again by the supervisor with a hidden
//! subcommand; it dies with its supervisor (`PR_SET_PDEATHSIG(SIGKILL)` plus a
//! check that its parent is still the expected PID), runs one math thread and
//! logs every job before computing it, unbuffered, so a killed worker's log
//! still names what it was doing.

#![forbid(unsafe_code)]

use std::fs::OpenOptions;
use std::io::{self, BufReader, BufWriter};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use qst_math::{C64, Mat, MleOptions, Stop, WlsOptions};
use qst_npy::Durability;
use qst_shared::procfs;
use qst_shared::{
    AnalysisFigures, BellFigures, DominantFigures, FromWorker, Job, JobFigures, Method,
    ProjectorSpec, ResampleFigures, ToWorker, read_frame, write_frame,
};
use qst_store::{ProjectorCache, Store, StoreConfig};
use tracing::{info, warn};

mod scratch;

/// What the supervisor tells a worker on its command line.
#[derive(Clone, Debug)]
pub struct WorkerArgs {
    /// The worker's slot (0-based), for its log and its results.
    pub slot: usize,
    /// The supervisor's PID: the worker exits at once if its parent is not it.
    pub supervisor_pid: u32,
    /// The projector cache directory.
    pub cache_dir: PathBuf,
    /// The cache byte budget.
    pub max_cache_bytes: u64,
    /// The slot's log file, opened for append.
    pub log: PathBuf,
}

/// Exit status of a worker whose parent is not the supervisor it was started by.
pub const EXIT_ORPHAN: i32 = 3;

/// Runs a worker until its supervisor sends `Stop` or closes the pipe; returns
/// the process exit status. Errors are one sentence on stderr.
/// Why a worker stopped before its supervisor told it to; each reads after
/// "failed to".
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("set the parent-death signal: {0}")]
    DeathSignal(#[source] nix::Error),
    #[error("start: the parent is PID {parent}, not the supervisor {supervisor} (it has exited)")]
    Orphan { parent: i32, supervisor: u32 },
    #[error("open the worker log {path}: {source}")]
    OpenLog {
        path: std::path::PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("set up the worker log: {0}")]
    SetUpLog(String),
    #[error("talk to the supervisor: {0}")]
    Frame(#[from] qst_shared::FrameError),
}

pub fn run(args: &WorkerArgs) -> i32 {
    if let Err(e) = die_with_parent(args.supervisor_pid) {
        eprintln!("qst worker: failed to {e}");
        return EXIT_ORPHAN;
    }
    if let Err(e) = init_log(&args.log) {
        eprintln!("qst worker: failed to {e}");
        return 2;
    }
    faer::set_global_parallelism(faer::Par::Seq);
    let pid = std::process::id();
    info!(
        "worker started slot={} pid={pid} supervisor={}",
        args.slot, args.supervisor_pid
    );
    match serve(args, pid) {
        Ok(()) => {
            info!("worker stopping slot={} pid={pid}", args.slot);
            0
        }
        Err(e) => {
            warn!("worker failed to {e} slot={} pid={pid}", args.slot);
            eprintln!("qst worker: failed to {e}");
            1
        }
    }
}

/// `PR_SET_PDEATHSIG(SIGKILL)`, then checks that the parent is still the
/// supervisor (it may have died before the call).
fn die_with_parent(supervisor_pid: u32) -> Result<(), WorkerError> {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(WorkerError::DeathSignal)?;
    let parent = nix::unistd::getppid().as_raw();
    if u32::try_from(parent) != Ok(supervisor_pid) {
        return Err(WorkerError::Orphan {
            parent,
            supervisor: supervisor_pid,
        });
    }
    Ok(())
}

fn init_log(path: &Path) -> Result<(), WorkerError> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(|source| WorkerError::OpenLog {
            path: path.to_path_buf(),
            source,
        })?;
    // `File` is unbuffered: each event is formatted, then written with one call.
    tracing_subscriber::fmt()
        .with_writer(file)
        .with_ansi(false)
        .with_target(false)
        .try_init()
        .map_err(|e| WorkerError::SetUpLog(e.to_string()))
}

fn serve(args: &WorkerArgs, pid: u32) -> Result<(), WorkerError> {
    let store = Store::new(StoreConfig {
        dir: args.cache_dir.clone(),
        max_bytes: args.max_cache_bytes,
    });
    let cache = ProjectorCache::new(store);
    let mut scratches = scratch::Scratches::default();
    let mut input = BufReader::new(io::stdin().lock());
    let mut output = BufWriter::new(io::stdout().lock());
    write_frame(&mut output, &FromWorker::Hello { pid })?;
    let mut last_usage: Option<Instant> = None;
    loop {
        let msg: Option<ToWorker> = read_frame(&mut input)?;
        let job = match msg {
            None | Some(ToWorker::Stop) => {
                // The last figures, for the summary (the supervisor may
                // already have stopped listening: not an error).
                let _ = send_usage(&mut output);
                return Ok(());
            }
            Some(ToWorker::Run(job)) => job,
        };
        info!(
            "start job={} line={} dim={} method={} design={} pid={pid}",
            job.id,
            job.line,
            job.dim,
            job.method.as_str(),
            job.projectors.design_name()
        );
        let reply = match run_job(&cache, &mut scratches, &job) {
            Ok(figures) => {
                info!(
                    "done job={} line={} dim={} method={} iterations={} seconds={:.6} pid={pid}",
                    job.id,
                    job.line,
                    job.dim,
                    job.method.as_str(),
                    figures
                        .iterations
                        .map_or_else(|| "-".to_string(), |i| i.to_string()),
                    figures.seconds
                );
                FromWorker::Done {
                    line: job.line,
                    outcome: Ok(figures),
                }
            }
            Err(JobFailure::Job(msg)) => {
                warn!(
                    "failed job={} line={} error={msg} pid={pid}",
                    job.id, job.line
                );
                FromWorker::Done {
                    line: job.line,
                    outcome: Err(msg),
                }
            }
            Err(JobFailure::Output(reason)) => {
                warn!(
                    "failed to write rho job={} line={} error={reason} pid={pid}",
                    job.id, job.line
                );
                FromWorker::OutputFailed {
                    line: job.line,
                    reason,
                }
            }
            Err(JobFailure::Projectors(reason)) => {
                warn!(
                    "bad projector file job={} line={} error={reason} pid={pid}",
                    job.id, job.line
                );
                FromWorker::ProjectorFileBad {
                    line: job.line,
                    reason,
                }
            }
        };
        // Memory figures cost two reads of /proc: sent with the first reply
        // and then at most every USAGE_EVERY (the peak is kept by the kernel).
        write_frame(&mut output, &reply)?;
        if last_usage.is_none_or(|t: Instant| t.elapsed() >= USAGE_EVERY) {
            last_usage = Some(Instant::now());
            send_usage(&mut output)?;
        }
    }
}

/// How often a worker measures and sends its memory figures.
const USAGE_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

fn send_usage(output: &mut impl io::Write) -> Result<(), WorkerError> {
    let usage = FromWorker::Usage {
        peak_rss_bytes: procfs::peak_rss_bytes(None).unwrap_or(0),
        pss_bytes: procfs::pss_bytes(None).unwrap_or(0),
    };
    write_frame(output, &usage)?;
    Ok(())
}

/// Why a job failed: one sentence naming the field (it reads after
/// "job <id>: "), sent to the supervisor as a [`qst_shared::JobFailure`].
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("projectors: failed to {0}")]
    Projectors(#[source] qst_store::StoreError),
    #[error("counts: failed to reconstruct: {0}")]
    Reconstruct(#[source] qst_math::MathError),
    #[error("bell: failed to {0}")]
    Bell(#[source] qst_math::MathError),
    #[error("spectral: failed to {0}")]
    Spectral(#[source] qst_math::MathError),
    #[error("bootstrap: failed to resample: the estimate's probabilities sum to {0}")]
    Resample(f64),
    #[error("failed to draw the counts: {0}")]
    Draw(#[source] qst_math::MathError),
}

impl From<JobError> for qst_shared::JobFailure {
    fn from(e: JobError) -> Self {
        qst_shared::JobFailure::of(&e)
    }
}

enum JobFailure {
    /// The job fails: one sentence naming the field.
    Job(qst_shared::JobFailure),
    /// The projector file failed its checks when opened: the supervisor rebuilds it.
    Projectors(String),
    /// Writing ρ failed: the output's failure, not the job's.
    Output(String),
}

fn run_job(
    cache: &ProjectorCache,
    scratches: &mut scratch::Scratches,
    job: &Job,
) -> Result<JobFigures, JobFailure> {
    let started = Instant::now();
    let started_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let handle = open_projectors(cache, job)?;
    let n = job.dim;
    let truth = job.truth.as_ref().map(|t| {
        Mat::<C64>::from_fn(n, n, |a, b| {
            let (re, im) = t[a * n + b];
            C64::new(re, im)
        })
    });
    if let Some(r) = job.analysis.resample {
        let resamples = resample(&handle, scratches, job, truth.as_ref(), r);
        return Ok(resample_figures(resamples, started_unix, started));
    }
    // Only ratios of counts matter: counts so large that their sum (or the
    // math's products) would overflow are scaled down first.
    let scaled;
    let counts: &[f64] = match count_scale(&job.counts) {
        Some(scale) => {
            warn!(
                "job={} counts scaled by {scale:e} (their sum overflows) pid={}",
                job.id,
                std::process::id()
            );
            scaled = job.counts.iter().map(|c| c * scale).collect::<Vec<f64>>();
            &scaled
        }
        None => &job.counts,
    };
    let proj = handle.projectors();
    let Reconstruction {
        rho,
        iterations,
        converged,
        stop,
        objective,
    } = reconstruct(&handle, scratches, job, counts).map_err(|e| JobFailure::Job(e.into()))?;
    if let (Some(stop), Some(iterations)) = (stop, iterations)
        && stop != Stop::Certified
    {
        warn!(
            "job={} stopped after {iterations} iterations without its certificate: {stop} (max_iters={}) pid={}",
            job.id,
            job.max_iters,
            std::process::id()
        );
    }
    let log_likelihood = qst_math::log_likelihood(&proj, counts, rho.as_ref());
    let f = qst_math::figures(rho.as_ref());
    let fidelity = truth
        .as_ref()
        .map(|t| qst_math::fidelity(rho.as_ref(), t.as_ref()));
    let analysis =
        analyse(&proj, job, rho.as_ref(), counts).map_err(|e| JobFailure::Job(e.into()))?;
    let data: Vec<C64> = (0..n * n).map(|i| rho[(i / n, i % n)]).collect();
    // Not fsynced here: the supervisor makes a group of ρ files durable
    // at once (syncfs) before it appends their result lines.
    qst_npy::write_c16_with(&job.rho_path, &[n, n], &data, Durability::Deferred)
        .map_err(|e| JobFailure::Output(e.to_string()))?;
    Ok(JobFigures {
        iterations,
        converged,
        log_likelihood,
        purity: f.purity,
        trace: f.trace,
        rank: f.rank,
        min_eigenvalue: f.min_eigenvalue,
        max_eigenvalue: f.max_eigenvalue,
        eigenvalue_entropy: f.eigenvalue_entropy,
        fidelity,
        objective,
        analysis: Box::new(analysis),
        started: started_unix,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The job's projector set from the cache: a built-in file that fails its
/// checks is the supervisor's to rebuild, a custom set that fails is the job's
/// error.
fn open_projectors(
    cache: &ProjectorCache,
    job: &Job,
) -> Result<qst_store::ProjectorHandle, JobFailure> {
    let before = cache.stats().misses;
    let handle = match &job.projectors {
        ProjectorSpec::Builtin(design) => cache.builtin(*design, job.dim),
        ProjectorSpec::Custom { path } => cache.custom(path, job.dim),
    };
    let handle = match (handle, &job.projectors) {
        (Ok(h), _) => h,
        (Err(e), ProjectorSpec::Builtin(_)) => return Err(JobFailure::Projectors(e.to_string())),
        (Err(e), ProjectorSpec::Custom { .. }) => {
            return Err(JobFailure::Job(JobError::Projectors(e).into()));
        }
    };
    if cache.stats().misses > before {
        info!(
            "cache miss: loaded set design={} dim={} job={} pid={}",
            job.projectors.design_name(),
            job.dim,
            job.id,
            std::process::id()
        );
    }
    Ok(handle)
}

/// Bootstrap resamples: counts drawn from the Poisson means the job carries,
/// each from its own seed; figures only, no ρ file.
fn resample(
    handle: &qst_store::ProjectorHandle,
    scratches: &mut scratch::Scratches,
    job: &Job,
    truth: Option<&Mat<C64>>,
    r: qst_shared::Resample,
) -> Vec<ResampleFigures> {
    let n = job.dim;
    (r.first..r.first.saturating_add(r.count))
        .map(|index| {
            let seed = qst_shared::resample_seed(r.seed, &job.id, index);
            let outcome = qst_math::poisson_resample(&job.counts, seed)
                .map_err(JobError::Draw)
                .and_then(|counts| reconstruct(handle, scratches, job, &counts))
                .and_then(|Reconstruction { rho, .. }| {
                    let bell = if job.analysis.bell {
                        let (max, ..) =
                            qst_math::bell_summary(rho.as_ref()).map_err(JobError::Bell)?;
                        Some(max)
                    } else {
                        None
                    };
                    let fidelity = truth.map(|t| qst_math::fidelity(rho.as_ref(), t.as_ref()));
                    // Tr ρ² as Σ|ρ_ij|²: no eigen-decomposition.
                    let purity = (0..n)
                        .flat_map(|i| (0..n).map(move |j| (i, j)))
                        .map(|(i, j)| rho[(i, j)].norm_sqr())
                        .sum::<f64>();
                    Ok((purity, fidelity, bell))
                })
                .map_err(qst_shared::JobFailure::from);
            ResampleFigures { index, outcome }
        })
        .collect()
}

/// The figures of a resample task (only `analysis.resamples` means anything).
fn resample_figures(
    resamples: Vec<ResampleFigures>,
    started_unix: f64,
    started: Instant,
) -> JobFigures {
    JobFigures {
        iterations: None,
        converged: None,
        log_likelihood: f64::NAN,
        purity: f64::NAN,
        trace: f64::NAN,
        rank: 0,
        min_eigenvalue: f64::NAN,
        max_eigenvalue: f64::NAN,
        eigenvalue_entropy: f64::NAN,
        fidelity: None,
        objective: None,
        analysis: Box::new(AnalysisFigures {
            resamples: Some(resamples),
            ..Default::default()
        }),
        started: started_unix,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// The Bell and dominant-component figures the job asks for, and the
/// Poisson means of its bootstrap.
fn analyse(
    proj: &qst_math::Projectors,
    job: &Job,
    rho: qst_math::MatRef<C64>,
    counts: &[f64],
) -> Result<AnalysisFigures, JobError> {
    let bell = if job.analysis.bell {
        let (max_fidelity, index, min_fidelity) =
            qst_math::bell_summary(rho).map_err(JobError::Bell)?;
        Some(BellFigures {
            max_fidelity,
            index,
            min_fidelity,
        })
    } else {
        None
    };
    let dominant = if job.analysis.spectral {
        let d = qst_math::dominant(rho).map_err(JobError::Spectral)?;
        Some(DominantFigures {
            eigenvalue: d.eigenvalue,
            amplitudes: d.amplitudes,
            phases: d.phases,
        })
    } else {
        None
    };
    let mut resample_means = None;
    if job.analysis.bootstrap > 0 {
        // N·q_k(ρ̂), q_k = p_k(ρ̂)/Tr(Gρ̂) = p_k / Σ_j p_j.
        let p = qst_math::probabilities(proj, rho);
        let total: f64 = counts.iter().sum();
        let norm: f64 = p.iter().sum();
        if !(norm.is_finite() && norm > 0.0) {
            return Err(JobError::Resample(norm));
        }
        resample_means = Some(p.iter().map(|&x| (x.max(0.0) / norm) * total).collect());
    }
    Ok(AnalysisFigures {
        bell,
        dominant,
        resample_means,
        resamples: None,
    })
}

/// The factor that brings counts whose total is not safely finite (over
/// 1e150: the math multiplies totals) down to a largest count of 1; `None`
/// for ordinary counts.
fn count_scale(counts: &[f64]) -> Option<f64> {
    let total: f64 = counts.iter().sum();
    if total.is_finite() && total <= 1e150 {
        return None;
    }
    let max = counts.iter().copied().fold(0.0f64, f64::max);
    (max.is_finite() && max > 0.0).then(|| 1.0 / max)
}

/// ρ, iterations, converged and (`wls`) χ², by the job's method; the error
/// is one sentence naming the field.
/// An estimate and what its method reports.
struct Reconstruction {
    rho: Mat<C64>,
    /// `mle`, `wls`: iterations run, whether the certificate held, and why
    /// the iteration stopped.
    iterations: Option<u64>,
    converged: Option<bool>,
    stop: Option<Stop>,
    /// `wls`: χ².
    objective: Option<f64>,
}

fn reconstruct(
    handle: &qst_store::ProjectorHandle,
    scratches: &mut scratch::Scratches,
    job: &Job,
    counts: &[f64],
) -> Result<Reconstruction, JobError> {
    let failed = JobError::Reconstruct;
    let proj = handle.projectors();
    let builtin = handle.builtin();
    Ok(match job.method {
        Method::Mle => {
            let opts = MleOptions {
                max_iters: job.max_iters,
                tol: job.tol,
                fixed_iterations: false,
            };
            let (rho, r) = scratches.mle(handle, counts, &opts).map_err(failed)?;
            Reconstruction {
                rho,
                iterations: Some(r.iterations),
                converged: Some(r.converged),
                stop: Some(r.stop),
                objective: None,
            }
        }
        Method::Linear => {
            let rho = qst_math::linear(&proj, counts, builtin).map_err(failed)?;
            Reconstruction {
                rho,
                iterations: None,
                converged: None,
                stop: None,
                objective: None,
            }
        }
        Method::Wls => {
            let opts = WlsOptions {
                max_iters: job.max_iters,
                ..WlsOptions::default()
            };
            let r = qst_math::wls(&proj, counts, builtin, &opts).map_err(failed)?;
            Reconstruction {
                rho: r.rho,
                iterations: Some(r.iterations),
                converged: Some(r.converged),
                stop: Some(r.stop),
                objective: Some(r.objective),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_errors_read_as_one_sentence_naming_the_field() {
        let e: qst_shared::JobFailure = JobError::Resample(0.0).into();
        assert_eq!(
            e.message,
            "bootstrap: failed to resample: the estimate's probabilities sum to 0"
        );
        let e = JobError::Resample(f64::NAN).to_string();
        assert_eq!(
            e,
            "bootstrap: failed to resample: the estimate's probabilities sum to NaN"
        );
    }
}
