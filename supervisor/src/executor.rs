//! The executor: spawns a worker (the `qst` binary exec'd again with the
//! hidden `worker` subcommand, in its own process group), owns the pipe to its
//! stdin, and runs one reader thread per worker that forwards its frames and,
//! at end of stream, reaps it (waitpid) and reports how it ended.
//!
//! Workers die with the thread that spawned them (`PR_SET_PDEATHSIG` fires
//! when that thread exits), so the supervisor spawns from its main thread,
//! which lives as long as the process.

use std::io::{BufReader, BufWriter};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{ChildStdin, Command, Stdio};

use crossbeam_channel::Sender;
use qst_shared::{FromWorker, ToWorker, read_frame, write_frame};

use crate::errors::describe_exit;

/// What a reader thread reports.
#[derive(Debug)]
pub enum WorkerEvent {
    /// A frame from the worker of `slot`, incarnation `incarnation`.
    Frame {
        slot: usize,
        incarnation: u64,
        msg: FromWorker,
    },
    /// The worker's pipe ended and the process was reaped: `how` is
    /// `signal 9`, `exit status 0`, …; `stream_error` says if the stream was
    /// torn or undecodable rather than closed cleanly.
    Exited {
        slot: usize,
        incarnation: u64,
        how: String,
        clean: bool,
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
    /// Sends one message; an error means the worker is gone (its reader
    /// thread reports the exit).
    pub fn send(&mut self, msg: &ToWorker) -> Result<(), String> {
        write_frame(&mut self.stdin, msg).map_err(|e| e.to_string())
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
    ) -> Result<WorkerProc, String> {
        let log = self.log_path(slot);
        // The worker's stderr (panics, last words) goes to its own log.
        let stderr = crate::outdir::open_append(&log)
            .map_err(|e| format!("open the worker log {}: {e}", log.display()))?;
        let mut child = Command::new(&self.exe)
            .args(self.args(slot))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .env("RAYON_NUM_THREADS", "1")
            .process_group(0)
            .spawn()
            .map_err(|e| format!("start a worker from {}: {e}", self.exe.display()))?;
        let pid = child.id();
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("start a worker: its pipes were not created".to_string());
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
                let (how, clean) = match child.wait() {
                    Ok(st) => (describe_exit(&st), st.success()),
                    Err(e) => (format!("an unknown status (waitpid failed: {e})"), false),
                };
                let _ = tx.send(wrap(WorkerEvent::Exited {
                    slot,
                    incarnation,
                    how,
                    clean,
                    stream_error,
                }));
            });
        if let Err(e) = reader {
            // Without its reader the worker cannot be heard: stop it.
            crate::platform::signal_group(pid, nix::sys::signal::Signal::SIGKILL);
            return Err(format!("start the reader thread of worker {slot}: {e}"));
        }
        Ok(WorkerProc {
            pid,
            stdin: BufWriter::new(stdin),
        })
    }
}
