//! One worker slot's state as a type (starting, idle, busy with one or two
//! jobs, being stopped, backing off before a restart, or without a worker),
//! and why the run stops dispatching ([`Cancel`]).

use std::collections::{HashSet, VecDeque};
use std::time::Instant;

use qst_shared::Job;

use crate::dispatch::{BinKey, job_bytes};
use crate::executor::WorkerProc;

/// Why the run stops dispatching, weakest first: a later, stronger reason
/// replaces a weaker one, never the reverse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Cancel {
    /// Writing a ρ file or a result line failed: running jobs finish.
    WriteFailed,
    /// SIGINT or SIGTERM (this one): running jobs finish.
    Signal(i32),
    /// A second signal after the first (which this holds): running workers
    /// are killed and their jobs left without a result.
    SecondSignal(i32),
}

impl Cancel {
    /// The first signal, if a signal stopped the run.
    pub(super) fn signal(self) -> Option<i32> {
        match self {
            Cancel::WriteFailed => None,
            Cancel::Signal(s) | Cancel::SecondSignal(s) => Some(s),
        }
    }
}

/// A job sent to a worker.
pub(super) struct Running {
    pub job: Job,
    /// When the worker started it: when it was sent to an idle worker, or
    /// when the job before it ended.
    pub started: Instant,
    /// A bootstrap resample: its group.
    pub boot: Option<u64>,
}

/// The jobs a busy worker holds: the one it runs and those sent behind it
/// (which it starts, in order, as soon as the one before ends).
pub(super) struct InFlight {
    pub head: Running,
    pub behind: VecDeque<Running>,
}

/// A worker being stopped: `Stop` was sent to it while idle, or it ran over
/// `--job-timeout` and was sent SIGTERM.
pub(super) struct Stopping {
    pub proc_: WorkerProc,
    /// The job over `--job-timeout`; `None` once its result came anyway.
    pub timed_out: Option<Running>,
    /// Jobs sent behind it: back to the queue, uncounted, when it exits.
    pub behind: Vec<Running>,
    /// When to send SIGKILL after the SIGTERM.
    pub kill_at: Option<Instant>,
}

pub(super) enum SlotState {
    /// Spawned; it has not said hello yet.
    Starting(WorkerProc),
    /// Said hello; holds no job.
    Idle(WorkerProc),
    /// Runs a job (and may hold more behind it).
    Busy(WorkerProc, InFlight),
    /// Gets no more jobs; exits soon.
    Stopping(Stopping),
    /// No worker: the next start waits until then (failed starts or deaths
    /// in a row).
    BackingOff { until: Instant },
    /// No worker, and none to start now.
    Exited,
}

/// The jobs a worker held when it exited.
pub(super) struct Left {
    /// Said hello before it exited.
    pub had_hello: bool,
    /// The job it was running: a death counts against it.
    pub head: Option<Running>,
    /// Whether `head` ran over `--job-timeout`.
    pub timed_out: bool,
    /// Jobs sent behind the head: not started, not counted.
    pub behind: Vec<Running>,
}

/// A worker slot.
pub(super) struct Slot {
    /// Which start of this slot the current (or last) worker is.
    pub incarnation: u64,
    pub state: SlotState,
    /// The bins this worker has served (it holds their projector sets).
    pub served: HashSet<BinKey>,
    /// How long the last job this worker finished took (seconds): how many
    /// jobs it may hold at once follows from it.
    pub last_seconds: Option<f64>,
}

impl Slot {
    pub(super) fn new() -> Self {
        Slot {
            incarnation: 0,
            state: SlotState::Exited,
            served: HashSet::new(),
            last_seconds: None,
        }
    }

    /// The worker process, while there is one.
    pub(super) fn proc_mut(&mut self) -> Option<&mut WorkerProc> {
        match &mut self.state {
            SlotState::Starting(p) | SlotState::Idle(p) | SlotState::Busy(p, _) => Some(p),
            SlotState::Stopping(st) => Some(&mut st.proc_),
            SlotState::BackingOff { .. } | SlotState::Exited => None,
        }
    }

    /// The worker's PID, while there is one.
    pub(super) fn pid(&self) -> Option<u32> {
        match &self.state {
            SlotState::Starting(p) | SlotState::Idle(p) | SlotState::Busy(p, _) => Some(p.pid),
            SlotState::Stopping(st) => Some(st.proc_.pid),
            SlotState::BackingOff { .. } | SlotState::Exited => None,
        }
    }

    pub(super) fn has_proc(&self) -> bool {
        self.pid().is_some()
    }

    pub(super) fn is_idle(&self) -> bool {
        matches!(self.state, SlotState::Idle(_))
    }

    /// The jobs the worker holds, the one it runs first.
    pub(super) fn jobs(&self) -> Vec<&Running> {
        match &self.state {
            SlotState::Busy(_, f) => std::iter::once(&f.head).chain(&f.behind).collect(),
            SlotState::Stopping(st) => st.timed_out.iter().chain(&st.behind).collect(),
            _ => Vec::new(),
        }
    }

    /// Busy, and allowed one more job behind those it holds (`depth` in
    /// all), none of which starts a bootstrap (whose resamples go to
    /// whichever worker is free): the estimated bytes of the jobs behind.
    pub(super) fn room_behind(&self, depth: usize) -> Option<usize> {
        match &self.state {
            SlotState::Busy(_, f)
                if 1 + f.behind.len() < depth
                    && std::iter::once(&f.head)
                        .chain(&f.behind)
                        .all(|r| r.job.analysis.bootstrap == 0) =>
            {
                Some(f.behind.iter().map(|r| job_bytes(&r.job)).sum())
            }
            _ => None,
        }
    }

    /// Takes a job the worker reports ended (normally the one it runs; the
    /// one behind it starts now). `None`: it holds no job.
    pub(super) fn take_ended(&mut self, now: Instant) -> Option<Running> {
        match std::mem::replace(&mut self.state, SlotState::Exited) {
            SlotState::Busy(p, mut f) => {
                self.state = match f.behind.pop_front() {
                    Some(mut next) => {
                        next.started = now;
                        SlotState::Busy(
                            p,
                            InFlight {
                                head: next,
                                behind: f.behind,
                            },
                        )
                    }
                    None => SlotState::Idle(p),
                };
                Some(f.head)
            }
            SlotState::Stopping(mut st) => {
                // Over the timeout but finished as it was being stopped:
                // the result stands.
                let run = match st.timed_out.take() {
                    Some(run) => Some(run),
                    None if !st.behind.is_empty() => Some(st.behind.remove(0)),
                    None => None,
                };
                self.state = SlotState::Stopping(st);
                run
            }
            other => {
                self.state = other;
                None
            }
        }
    }

    /// The worker exited: the slot holds no worker now; what it held.
    pub(super) fn take_exited(&mut self) -> Left {
        let mut left = Left {
            had_hello: true,
            head: None,
            timed_out: false,
            behind: Vec::new(),
        };
        match std::mem::replace(&mut self.state, SlotState::Exited) {
            SlotState::Starting(_) | SlotState::BackingOff { .. } | SlotState::Exited => {
                left.had_hello = false;
            }
            SlotState::Idle(_) => {}
            SlotState::Busy(_, f) => {
                left.head = Some(f.head);
                left.behind.extend(f.behind);
            }
            SlotState::Stopping(st) => {
                left.timed_out = st.timed_out.is_some();
                left.head = st.timed_out;
                left.behind = st.behind;
            }
        }
        self.served.clear();
        left
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qst_shared::{Design, Method, ProjectorSpec};
    use std::process::{Command, Stdio};
    use std::time::Duration;

    fn running(line: u64, bootstrap: u32, started: Instant) -> Running {
        let mut job = Job {
            line,
            id: format!("j{line}"),
            dim: 2,
            method: Method::Mle,
            projectors: ProjectorSpec::Builtin(Design::Nopovm),
            counts: vec![1.0; 4],
            truth: None,
            max_iters: 10,
            tol: 1e-8,
            warnings: Vec::new(),
            rho_path: format!("/x/{line}.npy").into(),
            analysis: Box::default(),
        };
        job.analysis.bootstrap = bootstrap;
        Running {
            job,
            started,
            boot: None,
        }
    }

    /// A slot busy with `lines` (the first running), its worker `cat`.
    fn busy(lines: &[u64]) -> (Slot, std::process::Child) {
        let mut child = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let proc_ = WorkerProc::stand_in(child.id(), child.stdin.take().unwrap());
        let t = Instant::now().checked_sub(Duration::from_secs(5)).unwrap();
        let head = running(lines[0], 0, t);
        let behind = lines[1..].iter().map(|&l| running(l, 0, t)).collect();
        let mut slot = Slot::new();
        slot.state = SlotState::Busy(proc_, InFlight { head, behind });
        (slot, child)
    }

    #[test]
    fn cancel_reasons_are_ordered_and_the_stronger_wins() {
        assert!(Cancel::WriteFailed < Cancel::Signal(15));
        assert!(Cancel::Signal(15) < Cancel::SecondSignal(2));
        let first = Some(Cancel::Signal(2));
        assert_eq!(first.max(Some(Cancel::WriteFailed)), first);
        assert_eq!(Cancel::SecondSignal(2).signal(), Some(2));
        assert_eq!(Cancel::WriteFailed.signal(), None);
    }

    #[test]
    fn an_ended_job_hands_over_to_the_one_behind_it_which_starts_then() {
        let (mut slot, mut child) = busy(&[1, 2, 3]);
        assert_eq!(slot.jobs().len(), 3);
        let now = Instant::now();
        assert_eq!(slot.take_ended(now).unwrap().job.line, 1);
        let SlotState::Busy(_, f) = &slot.state else {
            panic!("not busy")
        };
        assert_eq!((f.head.job.line, f.head.started), (2, now));
        assert_eq!(f.behind.len(), 1);
        assert_eq!(slot.take_ended(now).unwrap().job.line, 2);
        assert_eq!(slot.take_ended(now).unwrap().job.line, 3);
        assert!(slot.is_idle());
        assert!(slot.take_ended(now).is_none());
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn room_behind_follows_the_depth_and_bootstraps_and_counts_bytes() {
        let (mut slot, mut child) = busy(&[1, 2]);
        assert_eq!(slot.room_behind(1), None);
        assert_eq!(slot.room_behind(2), None);
        let bytes = slot.room_behind(3).unwrap();
        assert_eq!(bytes, job_bytes(&running(2, 0, Instant::now()).job));
        if let SlotState::Busy(_, f) = &mut slot.state {
            f.head.job.analysis.bootstrap = 10;
        }
        assert_eq!(slot.room_behind(4), None, "a bootstrap's job runs alone");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn an_exit_counts_against_the_running_job_only() {
        let (mut slot, mut child) = busy(&[7, 8, 9]);
        slot.served
            .insert(BinKey::of(&running(7, 0, Instant::now()).job));
        let left = slot.take_exited();
        assert!(left.had_hello && !left.timed_out);
        assert_eq!(left.head.unwrap().job.line, 7);
        let behind: Vec<u64> = left.behind.iter().map(|r| r.job.line).collect();
        assert_eq!(behind, [8, 9]);
        assert!(!slot.has_proc() && slot.served.is_empty());
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn a_timed_out_job_that_ends_anyway_keeps_its_result_and_the_rest_go_back() {
        let (mut slot, mut child) = busy(&[4, 5]);
        let SlotState::Busy(p, f) = std::mem::replace(&mut slot.state, SlotState::Exited) else {
            panic!("not busy")
        };
        slot.state = SlotState::Stopping(Stopping {
            proc_: p,
            timed_out: Some(f.head),
            behind: f.behind.into(),
            kill_at: None,
        });
        assert_eq!(slot.take_ended(Instant::now()).unwrap().job.line, 4);
        let left = slot.take_exited();
        assert!(left.head.is_none() && !left.timed_out);
        assert_eq!(left.behind.len(), 1);
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
