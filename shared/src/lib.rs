//! Types both qst processes speak: validated jobs, job outcomes, the IPC
//! messages between supervisor and worker, and their frames (a little-endian
//! u32 length, then a postcard body; see `docs/ipc.md` for why postcard).
//! Also what both sides know of a worker process: its log's name
//! ([`log_file_name`]) and its memory figures ([`procfs`]).

#![forbid(unsafe_code)]
// `clippy::pedantic` is reviewed (docs/ARCHITECTURE.md, "Lints"); these do not fit:
#![allow(
    // Formulas in the docs (N·q_k(ρ̂)) are math notation, not code.
    clippy::doc_markdown
)]

use std::io::{self, Read, Write};
use std::path::PathBuf;

pub use qst_math::{Design, DesignError};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

pub mod procfs;

/// A worker's log file name in the log directory: `worker-<slot>.log`.
#[must_use]
pub fn log_file_name(slot: usize) -> String {
    format!("worker-{slot}.log")
}

/// Reconstruction method (docs/reference.md, 1.5).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Mle,
    Linear,
    Wls,
}

impl Method {
    /// Every method, in the order results list them.
    pub const ALL: [Method; 3] = [Method::Mle, Method::Linear, Method::Wls];

    /// The method named `s`; the error lists the known ones.
    ///
    /// # Errors
    ///
    /// [`UnknownMethod`] when `s` names no method.
    pub fn parse(s: &str) -> Result<Method, UnknownMethod> {
        Method::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| UnknownMethod(s.to_owned()))
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Mle => "mle",
            Method::Linear => "linear",
            Method::Wls => "wls",
        }
    }
}

/// A name that is not a [`Method`]: `unknown method "bayes" (known: "mle",
/// "linear", "wls")`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownMethod(pub String);

impl std::error::Error for UnknownMethod {}

impl std::fmt::Display for UnknownMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown method {:?} (known: ", self.0)?;
        for (i, m) in Method::ALL.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}\"{}\"", m.as_str())?;
        }
        f.write_str(")")
    }
}

/// Which projector set a job uses.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ProjectorSpec {
    /// A built-in design (`nopovm`, `mub`, `sic`).
    Builtin(Design),
    /// A custom dense `(K, n, n)` file, already validated by the supervisor.
    Custom { path: PathBuf },
}

impl ProjectorSpec {
    /// The built-in design, `None` for a custom set.
    #[must_use]
    pub fn builtin(&self) -> Option<Design> {
        match self {
            ProjectorSpec::Builtin(d) => Some(*d),
            ProjectorSpec::Custom { .. } => None,
        }
    }

    /// The `design` field of a result: the design's name, or `custom`.
    #[must_use]
    pub fn design_name(&self) -> &'static str {
        match self {
            ProjectorSpec::Builtin(d) => d.name(),
            ProjectorSpec::Custom { .. } => "custom",
        }
    }
}

/// A validated job, ready for a worker: everything it needs is inline except
/// the projector set, which the worker maps from the store.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Job {
    /// 1-based physical line of the batch (CSV: the column number).
    pub line: u64,
    pub id: String,
    pub dim: usize,
    pub method: Method,
    pub projectors: ProjectorSpec,
    /// K counts (or probabilities), in projector order.
    pub counts: Vec<f64>,
    /// The true ρ, n×n row-major as (re, im) pairs, if given.
    pub truth: Option<Vec<(f64, f64)>>,
    pub max_iters: u64,
    pub tol: f64,
    /// Where the worker writes ρ (absolute), atomically, before replying.
    pub rho_path: PathBuf,
    /// What reading the job changed (e.g. negative counts set to 0), for its
    /// result's `warnings`.
    pub warnings: Vec<String>,
    /// The analysis asked for (`--bell`, `--spectral`, `--bootstrap`);
    /// boxed, to keep the IPC messages small.
    pub analysis: Box<Analysis>,
}

/// What a job is asked for beyond the reconstruction (`docs/analysis.md`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Analysis {
    /// The generalized Bell analysis (n = m², checked by the supervisor).
    pub bell: bool,
    /// The dominant eigencomponent.
    pub spectral: bool,
    /// B: the number of bootstrap resamples (0: none).
    pub bootstrap: u32,
    /// Set on a bootstrap resample task: `counts` then hold the Poisson means
    /// N·q_k(ρ̂); the worker draws each resample's counts from its own seed,
    /// reconstructs, and writes no ρ file.
    pub resample: Option<Resample>,
}

/// Bootstrap resamples `first .. first + count` of a job (one task).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resample {
    /// 0-based, below B.
    pub first: u32,
    pub count: u32,
    /// `--seed`: resample i draws from [`resample_seed`]`(seed, id, i)`.
    pub seed: u64,
}

/// The seed of resample `index` of job `id`: XXH3-64, seeded by `seed`, of
/// the id's bytes, a 0 byte and the index as 4 little-endian bytes. Depends on
/// nothing else (not on the worker, nor on how resamples are grouped in tasks).
#[must_use]
pub fn resample_seed(seed: u64, id: &str, index: u32) -> u64 {
    let mut bytes = Vec::with_capacity(id.len() + 5);
    bytes.extend_from_slice(id.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(&index.to_le_bytes());
    xxhash_rust::xxh3::xxh3_64_with_seed(&bytes, seed)
}

/// What one bootstrap resample gave: (purity, fidelity when a truth is
/// given, Bell max fidelity when asked), or why it failed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ResampleFigures {
    pub index: u32,
    pub outcome: Result<(f64, Option<f64>, Option<f64>), JobFailure>,
}

/// Why a job (or one bootstrap resample) failed: one sentence naming the
/// field, which reads after "job <id>: "; sent as it is over the pipe.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct JobFailure {
    pub message: String,
}

impl JobFailure {
    /// The failure that `cause` describes (its message, without its source
    /// chain: the message already names the cause).
    pub fn of(cause: &impl std::fmt::Display) -> Self {
        JobFailure {
            message: cause.to_string(),
        }
    }
}

/// The figures of a job's analysis.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct AnalysisFigures {
    /// `--bell`.
    pub bell: Option<BellFigures>,
    /// `--spectral`.
    pub dominant: Option<DominantFigures>,
    /// `--bootstrap` (the main job only): N·q_k(ρ̂), the means of the resamples.
    pub resample_means: Option<Vec<f64>>,
    /// A resample task: each resample's figures.
    pub resamples: Option<Vec<ResampleFigures>>,
}

/// The Bell figures of a state.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct BellFigures {
    pub max_fidelity: f64,
    /// a·m + b of the maximum.
    pub index: usize,
    pub min_fidelity: f64,
}

/// The dominant eigencomponent of a state.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct DominantFigures {
    pub eigenvalue: f64,
    pub amplitudes: Vec<f64>,
    /// Units of π, in (−1, 1].
    pub phases: Vec<f64>,
}

/// The figures of a reconstruction (docs/reference.md and 2.4).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct JobFigures {
    /// `None` for `linear`.
    pub iterations: Option<u64>,
    /// `None` for `linear`.
    pub converged: Option<bool>,
    /// May be −∞.
    pub log_likelihood: f64,
    pub purity: f64,
    pub trace: f64,
    pub rank: usize,
    pub min_eigenvalue: f64,
    pub max_eigenvalue: f64,
    pub eigenvalue_entropy: f64,
    pub fidelity: Option<f64>,
    /// `wls`: the χ² it minimized.
    pub objective: Option<f64>,
    /// What the analysis asked for found (boxed, to keep the IPC messages small).
    pub analysis: Box<AnalysisFigures>,
    /// When the worker started the job, in Unix seconds.
    pub started: f64,
    pub seconds: f64,
}

/// Supervisor → worker.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum ToWorker {
    Run(Job),
    /// Finish and exit 0.
    Stop,
}

/// Worker → supervisor.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum FromWorker {
    /// Sent once at start.
    Hello { pid: u32 },
    /// A job ended; `Err` is one sentence naming the field (it reads after
    /// "job <id>: ").
    Done {
        line: u64,
        outcome: Result<JobFigures, JobFailure>,
    },
    /// Resource figures, sent with each `Done`.
    Usage { peak_rss_bytes: u64, pss_bytes: u64 },
    /// The job's built-in projector file failed its checks when the worker
    /// opened it: the supervisor rebuilds the file and dispatches the job again.
    ProjectorFileBad { line: u64, reason: String },
    /// Writing the job's ρ failed (a full disk, a read-only or unwritable
    /// output directory): the machine's failure, not the job's. The supervisor
    /// records no result (a resume runs the job again) and stops the run.
    OutputFailed { line: u64, reason: String },
}

/// Frame errors.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("read or write a frame: {0}")]
    Io(#[from] io::Error),
    #[error("decode a frame: {0}")]
    Decode(#[from] postcard::Error),
    #[error("read a frame: length {0} is over the limit of {MAX_FRAME} bytes")]
    TooLong(usize),
}

/// The largest frame accepted (a job of n = 256 holds 65 536 counts plus a
/// 256×256 truth: about 1.6 MB).
pub const MAX_FRAME: usize = 64 << 20;

/// Writes one frame and flushes.
///
/// # Errors
///
/// [`FrameError`] when `msg` cannot be encoded, is over [`MAX_FRAME`], or cannot be written.
pub fn write_frame<W: Write, T: Serialize>(w: &mut W, msg: &T) -> Result<(), FrameError> {
    let body = postcard::to_stdvec(msg)?;
    if body.len() > MAX_FRAME {
        return Err(FrameError::TooLong(body.len()));
    }
    #[allow(clippy::cast_possible_truncation)] // at most MAX_FRAME (checked above), below 2^32
    let len = body.len() as u32;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(&body)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame; `Ok(None)` on a clean end of stream before a frame starts.
///
/// # Errors
///
/// [`FrameError`] when the stream fails or ends inside a frame, or a frame is over
/// [`MAX_FRAME`] or cannot be decoded.
pub fn read_frame<R: Read, T: DeserializeOwned>(r: &mut R) -> Result<Option<T>, FrameError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLong(len));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(Some(postcard::from_bytes(&body)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_method_lists_the_known_ones() {
        assert_eq!(Method::parse("wls"), Ok(Method::Wls));
        assert_eq!(
            Method::parse("bayes").unwrap_err().to_string(),
            r#"unknown method "bayes" (known: "mle", "linear", "wls")"#
        );
    }

    #[test]
    fn frames_round_trip_and_detect_eof() {
        let job = Job {
            line: 7,
            id: "q4-0007".into(),
            dim: 2,
            method: Method::Mle,
            projectors: ProjectorSpec::Builtin(Design::Nopovm),
            counts: vec![1.0, 2.0, 3.0, 4.0],
            truth: Some(vec![(0.5, 0.0), (0.0, 0.5), (0.0, -0.5), (0.5, 0.0)]),
            max_iters: 10,
            tol: 1e-8,
            rho_path: "/tmp/x.npy".into(),
            warnings: vec!["w".into()],
            analysis: Box::new(Analysis {
                bell: true,
                spectral: false,
                bootstrap: 3,
                resample: Some(Resample {
                    first: 2,
                    count: 3,
                    seed: 9,
                }),
            }),
        };
        let mut buf = Vec::new();
        let failed = FromWorker::Done {
            line: 7,
            outcome: Err(JobFailure::of(&"counts: failed to reconstruct: x")),
        };
        write_frame(&mut buf, &failed).unwrap();
        let mut r = &buf[..];
        assert_eq!(read_frame::<_, FromWorker>(&mut r).unwrap(), Some(failed));
        buf.clear();
        write_frame(&mut buf, &ToWorker::Run(job.clone())).unwrap();
        write_frame(&mut buf, &ToWorker::Stop).unwrap();
        let mut r = &buf[..];
        assert_eq!(
            read_frame::<_, ToWorker>(&mut r).unwrap(),
            Some(ToWorker::Run(job))
        );
        assert_eq!(
            read_frame::<_, ToWorker>(&mut r).unwrap(),
            Some(ToWorker::Stop)
        );
        assert_eq!(read_frame::<_, ToWorker>(&mut r).unwrap(), None);
        // A torn frame is an error, not a clean end.
        let mut torn = &buf[..buf.len() - 1];
        let _ = read_frame::<_, ToWorker>(&mut torn).unwrap();
        assert!(read_frame::<_, ToWorker>(&mut torn).is_err());
    }
}
