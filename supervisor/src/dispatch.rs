//! The dispatcher: the scheduling state machine. Pending jobs sit in bins by
//! (design, dimension); an idle worker gets, in order of preference, a job of
//! a bin it has served before (dimension affinity: it already holds that
//! projector set), else a job of the largest bin no other worker serves, else
//! a job of the largest bin. Larger dimensions go first. The window of
//! pending jobs is bounded so that a huge batch is streamed, not held.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashSet, VecDeque};

#[cfg(test)]
use qst_shared::Design;
use qst_shared::{Job, ProjectorSpec};

/// A bin: largest dimension first, then the projector set.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BinKey {
    pub dim: Reverse<usize>,
    /// `nopovm`, or `custom:<path>`.
    pub set: String,
}

impl BinKey {
    pub fn of(job: &Job) -> Self {
        let set = match &job.projectors {
            ProjectorSpec::Builtin(d) => d.name().to_string(),
            ProjectorSpec::Custom { path } => format!("custom:{}", path.display()),
        };
        BinKey {
            dim: Reverse(job.dim),
            set,
        }
    }
}

/// Most jobs held at once.
pub const WINDOW_JOBS: usize = 50_000;
/// Most (estimated) bytes of jobs held at once.
pub const WINDOW_BYTES: usize = 64 << 20;

/// Rough heap size of a job.
pub fn job_bytes(job: &Job) -> usize {
    256 + job.id.len()
        + job.counts.len() * 8
        + job.truth.as_ref().map_or(0, |t| t.len() * 16)
        + job.rho_path.as_os_str().len()
}

/// Pending jobs, binned.
#[derive(Default)]
pub struct Dispatcher {
    bins: BTreeMap<BinKey, VecDeque<Job>>,
    jobs: usize,
    bytes: usize,
}

impl Dispatcher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the window has room for more jobs from the batch.
    pub fn has_room(&self) -> bool {
        self.jobs < WINDOW_JOBS && self.bytes < WINDOW_BYTES
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.jobs
    }

    pub fn is_empty(&self) -> bool {
        self.jobs == 0
    }

    /// Adds a job from the batch.
    pub fn push(&mut self, job: Job) {
        self.jobs += 1;
        self.bytes += job_bytes(&job);
        self.bins
            .entry(BinKey::of(&job))
            .or_default()
            .push_back(job);
    }

    /// Puts back a job to be retried first.
    pub fn push_front(&mut self, job: Job) {
        self.jobs += 1;
        self.bytes += job_bytes(&job);
        self.bins
            .entry(BinKey::of(&job))
            .or_default()
            .push_front(job);
    }

    #[cfg(test)]
    /// The next job for a worker that has served the bins `mine`, while
    /// other workers serve `others`.
    pub fn next_for(&mut self, mine: &HashSet<BinKey>, others: &HashSet<BinKey>) -> Option<Job> {
        self.next_for_with(mine, |k| others.contains(k))
    }

    /// [`Self::next_for`], with whether other workers serve a bin asked
    /// only when the worker has no bin of its own left (no set to build
    /// for every job).
    pub fn next_for_with(
        &mut self,
        mine: &HashSet<BinKey>,
        served_by_others: impl Fn(&BinKey) -> bool,
    ) -> Option<Job> {
        let key = self
            .bins
            .keys()
            .find(|k| mine.contains(*k))
            .or_else(|| self.bins.keys().find(|k| !served_by_others(k)))
            .or_else(|| self.bins.keys().next())?
            .clone();
        let bin = self.bins.get_mut(&key)?;
        let job = bin.pop_front()?;
        if bin.is_empty() {
            self.bins.remove(&key);
        }
        self.jobs -= 1;
        self.bytes = self.bytes.saturating_sub(job_bytes(&job));
        Some(job)
    }

    /// Removes every pending job (to fail them all).
    pub fn drain(&mut self) -> Vec<Job> {
        self.jobs = 0;
        self.bytes = 0;
        std::mem::take(&mut self.bins)
            .into_values()
            .flatten()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qst_shared::Method;

    fn job(line: u64, dim: usize) -> Job {
        Job {
            line,
            id: format!("j{line}"),
            dim,
            method: Method::Mle,
            projectors: ProjectorSpec::Builtin(Design::Nopovm),
            counts: vec![1.0; dim * dim],
            truth: None,
            max_iters: 10,
            tol: 1e-8,
            warnings: Vec::new(),
            rho_path: format!("/x/{line}.npy").into(),
            analysis: Box::default(),
        }
    }

    fn key(dim: usize) -> BinKey {
        BinKey {
            dim: Reverse(dim),
            set: "nopovm".into(),
        }
    }

    #[test]
    fn largest_first_affinity_and_spreading() {
        let mut d = Dispatcher::new();
        for (line, dim) in [(1, 2), (2, 8), (3, 4), (4, 8), (5, 2), (6, 4)] {
            d.push(job(line, dim));
        }
        assert_eq!(d.len(), 6);
        let none = HashSet::new();
        // A fresh worker takes the largest dimension.
        assert_eq!(d.next_for(&none, &none).unwrap().line, 2);
        // Another fresh worker, while dim 8 is served, takes the next largest
        // bin nobody serves.
        let eight: HashSet<_> = [key(8)].into();
        assert_eq!(d.next_for(&none, &eight).unwrap().line, 3);
        // Affinity: a worker that served dim 2 keeps getting dim 2 while any remain.
        let two: HashSet<_> = [key(2)].into();
        assert_eq!(d.next_for(&two, &eight).unwrap().line, 1);
        assert_eq!(d.next_for(&two, &eight).unwrap().line, 5);
        // A retried job goes first in its bin.
        d.push_front(job(9, 4));
        let four: HashSet<_> = [key(4)].into();
        assert_eq!(d.next_for(&four, &none).unwrap().line, 9);
        // When every bin is served by others, share the largest.
        assert_eq!(d.next_for(&none, &[key(8), key(4)].into()).unwrap().line, 4);
        assert_eq!(d.next_for(&none, &none).unwrap().line, 6);
        assert!(d.is_empty());
        assert!(d.next_for(&none, &none).is_none());
    }

    #[test]
    fn window_is_bounded_by_jobs_and_bytes() {
        let mut d = Dispatcher::new();
        let mut n = 0usize;
        while d.has_room() {
            d.push(job(n as u64, 64));
            n += 1;
        }
        // 64² counts of 8 bytes each: the byte bound stops it first, at the
        // first job that reaches it.
        let each = job_bytes(&job(0, 64));
        assert!(each > 64 * 64 * 8);
        assert_eq!(n, WINDOW_BYTES.div_ceil(each));
        assert!(n < WINDOW_JOBS);
        assert_eq!(d.drain().len(), n);
        assert!(d.has_room());
    }
}
