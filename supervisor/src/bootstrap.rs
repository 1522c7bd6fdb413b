//! The parametric bootstrap (`--bootstrap B`): after a job's main result, its
//! result record is held back and B resample tasks are queued; any idle
//! worker takes the next one (so one job's resamples spread over every
//! worker), draws c*_k ~ Poisson(N·q_k(ρ̂)) from a seed derived from
//! (`--seed`, job id, resample index) alone, reconstructs by the job's method
//! and returns only the figures. When every resample is back, the record gets
//! the sample standard deviations and is written: nothing of a job reaches
//! `results.jsonl` before that, so a crash or an interrupt reruns it whole.

use std::collections::{HashMap, VecDeque};

use qst_shared::{Job, JobFigures, Resample};
use tracing::{info, warn};

use crate::results::ResultRecord;

/// The seed of resample `index` of job `id`: XXH3-64, seeded by `seed`, of
/// the id's bytes, a 0 byte and the index as 4 little-endian bytes. Depends on
/// nothing else (not on the worker, nor on the order of the tasks).
pub fn resample_seed(seed: u64, id: &str, index: u32) -> u64 {
    let mut bytes = Vec::with_capacity(id.len() + 5);
    bytes.extend_from_slice(id.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(&index.to_le_bytes());
    xxhash_rust::xxh3::xxh3_64_with_seed(&bytes, seed)
}

/// (purity, fidelity, Bell max fidelity) of a resample.
type ResampleFigures = (f64, Option<f64>, Option<f64>);

/// One job's bootstrap in progress.
struct Group {
    /// The job's result, held back until every resample is in.
    record: ResultRecord,
    /// The job as a resample task: `counts` are the Poisson means.
    template: Job,
    /// Indices not yet handed to a worker (retries go first).
    todo: VecDeque<u32>,
    /// Handed out, not yet back.
    out: u32,
    /// Per index: the figures of an ok resample.
    figures: Vec<Option<ResampleFigures>>,
    failed: u32,
    tries: HashMap<u32, u32>,
}

/// Every bootstrap in progress.
pub struct Bootstraps {
    seed: u64,
    groups: HashMap<u64, Group>,
    /// Groups with tasks still to hand out, oldest first.
    queue: VecDeque<u64>,
    next_group: u64,
}

impl Bootstraps {
    pub fn new(seed: u64) -> Self {
        Bootstraps {
            seed,
            groups: HashMap::new(),
            queue: VecDeque::new(),
            next_group: 0,
        }
    }

    /// Whether no job waits for resamples.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Holds back the ok `record` of `job` and queues its B resamples, whose
    /// Poisson means are `means` (N·q_k of the estimate).
    pub fn start(&mut self, job: &Job, means: Vec<f64>, mut record: ResultRecord) {
        let b = job.analysis.bootstrap;
        record.bootstrap = Some(b);
        let mut template = job.clone();
        template.counts = means;
        template.analysis.spectral = false;
        template.warnings = Vec::new();
        let g = self.next_group;
        self.next_group += 1;
        info!(
            "bootstrap line={} id={} method={} resamples={b} group={g}",
            job.line,
            job.id,
            job.method.as_str()
        );
        self.groups.insert(
            g,
            Group {
                record,
                template,
                todo: (0..b).collect(),
                out: 0,
                figures: vec![None; b as usize],
                failed: 0,
                tries: HashMap::new(),
            },
        );
        self.queue.push_back(g);
    }

    /// The next resample task, with its group.
    pub fn next_task(&mut self) -> Option<(u64, Job)> {
        while let Some(&g) = self.queue.front() {
            let Some(group) = self.groups.get_mut(&g) else {
                self.queue.pop_front();
                continue;
            };
            let Some(index) = group.todo.pop_front() else {
                self.queue.pop_front();
                continue;
            };
            if group.todo.is_empty() {
                self.queue.pop_front();
            }
            group.out += 1;
            let mut job = group.template.clone();
            job.analysis.resample = Some(Resample {
                index,
                seed: resample_seed(self.seed, &job.id, index),
            });
            return Some((g, job));
        }
        None
    }

    /// A resample came back; `Some(record)` when it was the group's last:
    /// the job's result, ready to append.
    pub fn done(
        &mut self,
        g: u64,
        index: u32,
        outcome: Result<&JobFigures, &str>,
    ) -> Option<ResultRecord> {
        let group = self.groups.get_mut(&g)?;
        group.out = group.out.saturating_sub(1);
        match outcome {
            Ok(f) => {
                if let Some(slot) = group.figures.get_mut(index as usize) {
                    *slot = Some((
                        f.purity,
                        f.fidelity,
                        f.analysis.bell.map(|b| b.max_fidelity),
                    ));
                }
            }
            Err(e) => {
                warn!(
                    "bootstrap resample {index} of id={} failed: {e}",
                    group.template.id
                );
                group.failed += 1;
            }
        }
        self.finish_if_complete(g)
    }

    /// The worker running resample `index` died: it is handed out again, at
    /// most `max_retries` times, then counted as failed.
    pub fn lost(
        &mut self,
        g: u64,
        index: u32,
        why: &str,
        max_retries: u32,
    ) -> Option<ResultRecord> {
        let group = self.groups.get_mut(&g)?;
        let tries = group.tries.entry(index).or_insert(0);
        *tries += 1;
        if *tries > max_retries {
            return self.done(g, index, Err(why));
        }
        group.out = group.out.saturating_sub(1);
        group.todo.push_front(index);
        if !self.queue.contains(&g) {
            self.queue.push_front(g);
        }
        None
    }

    fn finish_if_complete(&mut self, g: u64) -> Option<ResultRecord> {
        let group = self.groups.get(&g)?;
        if group.out > 0 || !group.todo.is_empty() {
            return None;
        }
        let group = self.groups.remove(&g)?;
        let mut rec = group.record;
        let ok: Vec<_> = group.figures.iter().flatten().collect();
        let std_of = |pick: &dyn Fn(&ResampleFigures) -> Option<f64>| {
            let v: Vec<f64> = ok.iter().filter_map(|t| pick(t)).collect();
            qst_math::sample_std(&v)
        };
        rec.purity_std = std_of(&|t| Some(t.0));
        if rec.fidelity.is_some() {
            rec.fidelity_std = std_of(&|t| t.1);
        }
        if rec.bell_max_fidelity.is_some() {
            rec.bell_max_fidelity_std = std_of(&|t| t.2);
        }
        rec.bootstrap_failed = Some(group.failed);
        info!(
            "bootstrap done id={} method={} ok={} failed={}",
            group.template.id,
            group.template.method.as_str(),
            ok.len(),
            group.failed
        );
        Some(rec)
    }

    /// Gives up on every bootstrap in progress (no worker can run): the
    /// jobs' error records, with `msg`.
    pub fn abandon(&mut self, msg: &str) -> Vec<ResultRecord> {
        self.queue.clear();
        let mut groups: Vec<(u64, Group)> = self.groups.drain().collect();
        groups.sort_by_key(|(g, _)| *g);
        groups
            .into_iter()
            .map(|(_, group)| ResultRecord::job_error(&group.template, msg.to_string()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qst_shared::{Analysis, Design, Method, ProjectorSpec};

    fn job(b: u32) -> Job {
        Job {
            line: 1,
            id: "j".into(),
            dim: 2,
            method: Method::Mle,
            projectors: ProjectorSpec::Builtin(Design::Nopovm),
            counts: vec![1.0; 4],
            truth: None,
            max_iters: 10,
            tol: 1e-8,
            rho_path: "/o/rho/j.npy".into(),
            warnings: vec![],
            analysis: Box::new(Analysis {
                bootstrap: b,
                ..Default::default()
            }),
        }
    }

    fn figs(purity: f64) -> JobFigures {
        JobFigures {
            iterations: None,
            converged: None,
            log_likelihood: 0.0,
            purity,
            trace: 1.0,
            rank: 1,
            min_eigenvalue: 0.0,
            max_eigenvalue: 1.0,
            eigenvalue_entropy: 0.0,
            fidelity: None,
            objective: None,
            analysis: Default::default(),
            started: 0.0,
            seconds: 0.0,
        }
    }

    #[test]
    fn seeds_depend_on_seed_id_and_index_only() {
        let a = resample_seed(1, "q4-0007", 3);
        assert_eq!(a, resample_seed(1, "q4-0007", 3));
        assert_ne!(a, resample_seed(2, "q4-0007", 3));
        assert_ne!(a, resample_seed(1, "q4-0008", 3));
        assert_ne!(a, resample_seed(1, "q4-0007", 4));
    }

    #[test]
    fn a_group_is_written_once_when_every_resample_is_back() {
        let mut b = Bootstraps::new(1);
        let j = job(3);
        b.start(
            &j,
            vec![2.0; 4],
            ResultRecord::error(1, Some("j"), "x".into()),
        );
        let tasks: Vec<(u64, Job)> = std::iter::from_fn(|| b.next_task()).collect();
        assert_eq!(tasks.len(), 3);
        assert!(tasks.iter().all(|(_, t)| t.counts == vec![2.0; 4]));
        let idx = |t: &Job| t.analysis.resample.map(|r| r.index).unwrap();
        // Out of order, one lost once (retried), one failed.
        assert!(b.done(0, idx(&tasks[2].1), Ok(&figs(0.5))).is_none());
        assert!(b.lost(0, idx(&tasks[0].1), "died", 3).is_none());
        let (_, again) = b.next_task().unwrap();
        assert_eq!(idx(&again), 0);
        assert!(b.done(0, 1, Err("bad")).is_none());
        let rec = b.done(0, 0, Ok(&figs(0.7))).unwrap();
        assert_eq!(rec.bootstrap, Some(3));
        assert_eq!(rec.bootstrap_failed, Some(1));
        assert!((rec.purity_std.unwrap() - 0.02f64.sqrt()).abs() < 1e-12);
        assert!(b.is_empty());
        assert!(b.next_task().is_none());
    }
}
