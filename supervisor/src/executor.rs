//! The executor: spawns a worker (the `qst` binary exec'd again with the
//! hidden `worker` subcommand, in its own process group), owns the pipe to its
//! stdin, and runs one reader thread per worker that forwards its frames and,
//! at end of stream, reaps it (waitpid) and reports how it ended.
//!
//! Workers die with the thread that spawned them (`PR_SET_PDEATHSIG` fires
//! when that thread exits), so the supervisor spawns from its main thread,
//! which lives as long as the process.

use std::fmt;
use std::io::{self, BufReader, BufWriter};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{ChildStdin, Command, ExitStatus, Stdio};

use crossbeam_channel::Sender;
use qst_shared::{FrameError, FromWorker, ToWorker, read_frame, write_frame};

/// How a worker process ended; written as a result's error message says it
/// (`exit status 1`, `signal 9`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkerExit {
    /// It exited with this status.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
    /// Neither could be told: the wait failed (its error), or the status
    /// names neither.
    Unknown { wait_error: Option<String> },
}

impl WorkerExit {
    /// Exit status 0.
    pub fn is_clean(&self) -> bool {
        *self == WorkerExit::Code(0)
    }
}

impl From<&ExitStatus> for WorkerExit {
    fn from(status: &ExitStatus) -> Self {
        match (status.signal(), status.code()) {
            (Some(sig), _) => WorkerExit::Signal(sig),
            (None, Some(code)) => WorkerExit::Code(code),
            (None, None) => WorkerExit::Unknown { wait_error: None },
        }
    }
}

impl fmt::Display for WorkerExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkerExit::Code(code) => write!(f, "exit status {code}"),
            WorkerExit::Signal(sig) => write!(f, "signal {sig}"),
            WorkerExit::Unknown { wait_error: None } => f.write_str("an unknown status"),
            WorkerExit::Unknown {
                wait_error: Some(e),
            } => write!(f, "an unknown status (waitpid failed: {e})"),
        }
    }
}

/// Why a worker could not be started; reads after "failed to".
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("open the worker log {path}: {source}")]
    OpenLog {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("start a worker from {exe}: {source}")]
    Start {
        exe: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("start a worker: its pipes were not created")]
    NoPipes,
    #[error("start the reader thread of worker {slot}: {source}")]
    ReaderThread {
        slot: usize,
        #[source]
        source: io::Error,
    },
}

/// What a reader thread reports.
#[derive(Debug)]
pub enum WorkerEvent {
    /// A frame from the worker of `slot`, incarnation `incarnation`.
    Frame {
        slot: usize,
        incarnation: u64,
        msg: FromWorker,
    },
    /// The worker's pipe ended and the process was reaped: `how` it
    /// ended; `stream_error` says if the stream was torn or undecodable
    /// rather than closed cleanly.
    Exited {
        slot: usize,
        incarnation: u64,
        how: WorkerExit,
        stream_error: Option<String>,
    },
}

/// How to start workers.
#[derive(Clone, Debug)]
pub struct Spawner {
    /// The `qst` executable.
    pub exe: PathBuf,
    pub cache_dir: PathBuf,
    pub max_cache_bytes: u64,
    pub log_dir: PathBuf,
    pub supervisor_pid: u32,
}

/// A running worker: its PID (= its process group) and the pipe to it.
pub struct WorkerProc {
    pub pid: u32,
    stdin: BufWriter<ChildStdin>,
}

impl WorkerProc {
    /// A process that stands in for a worker in tests (its stdin a pipe).
    #[cfg(test)]
    pub(crate) fn stand_in(pid: u32, stdin: ChildStdin) -> Self {
        WorkerProc {
            pid,
            stdin: BufWriter::new(stdin),
        }
    }

    /// Sends one message; an error means the worker is gone (its reader
    /// thread reports the exit).
    pub fn send(&mut self, msg: &ToWorker) -> Result<(), FrameError> {
        write_frame(&mut self.stdin, msg)
    }
}

impl Spawner {
    /// The hidden subcommand line of a worker.
    pub fn args(&self, slot: usize) -> Vec<String> {
        vec![
            "worker".into(),
            "--slot".into(),
            slot.to_string(),
            "--supervisor-pid".into(),
            self.supervisor_pid.to_string(),
            "--cache".into(),
            self.cache_dir.display().to_string(),
            "--max-cache-bytes".into(),
            self.max_cache_bytes.to_string(),
            "--log".into(),
            self.log_path(slot).display().to_string(),
        ]
    }

    /// `logs/worker-<slot>.log`.
    pub fn log_path(&self, slot: usize) -> PathBuf {
        self.log_dir.join(qst_shared::log_file_name(slot))
    }

    /// Spawns the worker of `slot` and its reader thread, which sends
    /// [`WorkerEvent`]s (wrapped by `wrap`) to `tx`. Call from the main thread.
    pub fn spawn<E: Send + 'static>(
        &self,
        slot: usize,
        incarnation: u64,
        tx: Sender<E>,
        wrap: fn(WorkerEvent) -> E,
    ) -> Result<WorkerProc, SpawnError> {
        let log = self.log_path(slot);
        // The worker's stderr (panics, last words) goes to its own log.
        let stderr = crate::outdir::open_append(&log)
            .map_err(|source| SpawnError::OpenLog { path: log, source })?;
        let mut child = Command::new(&self.exe)
            .args(self.args(slot))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .process_group(0)
            .spawn()
            .map_err(|source| SpawnError::Start {
                exe: self.exe.clone(),
                source,
            })?;
        let pid = child.id();
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(SpawnError::NoPipes);
        };
        let reader = std::thread::Builder::new()
            .name(format!("worker-{slot}"))
            .spawn(move || {
                let mut out = BufReader::new(stdout);
                let stream_error = loop {
                    match read_frame::<_, FromWorker>(&mut out) {
                        Ok(Some(msg)) => {
                            if tx
                                .send(wrap(WorkerEvent::Frame {
                                    slot,
                                    incarnation,
                                    msg,
                                }))
                                .is_err()
                            {
                                break None;
                            }
                        }
                        Ok(None) => break None,
                        Err(e) => break Some(e.to_string()),
                    }
                };
                drop(out);
                let how = match child.wait() {
                    Ok(st) => WorkerExit::from(&st),
                    Err(e) => WorkerExit::Unknown {
                        wait_error: Some(e.to_string()),
                    },
                };
                let _ = tx.send(wrap(WorkerEvent::Exited {
                    slot,
                    incarnation,
                    how,
                    stream_error,
                }));
            });
        if let Err(source) = reader {
            // Without its reader the worker cannot be heard: stop it.
            crate::platform::signal_group(pid, nix::sys::signal::Signal::SIGKILL);
            return Err(SpawnError::ReaderThread { slot, source });
        }
        Ok(WorkerProc {
            pid,
            stdin: BufWriter::new(stdin),
        })
    }
}
