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

use crate::results::{BootstrapRecord, OkRecord, ResultRecord};

/// (purity, fidelity, Bell max fidelity) of a resample.
type ResampleFigures = (f64, Option<f64>, Option<f64>);

/// Tasks per worker and job.
pub const TASKS_PER_WORKER: u64 = 1;

/// The most resamples in one task.
pub const MAX_CHUNK: u32 = 64;

/// Resamples per task: one task per worker and job, so that one job's
/// resamples spread over every worker, while each task carries as much work
/// as it can, making the round trips through the supervisor few (tasks of
/// different jobs interleave, so only the batch's last tasks can leave a
/// worker idle). Two tasks per worker cost 5 % of the 2-worker speed-up in
/// `bench/bootstrap.sh` (1.78× against 1.87×).
#[must_use]
pub fn chunk_size(b: u32, workers: usize) -> u32 {
    let per = u64::from(b).div_ceil(TASKS_PER_WORKER * workers.max(1) as u64);
    #[allow(clippy::cast_possible_truncation)] // at most `b`, a u32
    let per = per as u32;
    per.clamp(1, MAX_CHUNK)
}

/// One job's bootstrap in progress.
struct Group {
    /// The job's result, held back until every resample is in.
    record: OkRecord,
    /// The job as a resample task: `counts` are the Poisson means.
    template: Job,
    /// Tasks (first, count) not yet handed to a worker (retries go first).
    todo: VecDeque<(u32, u32)>,
    /// Tasks handed out, not yet back.
    out: u32,
    /// Per index: the figures of an ok resample.
    figures: Vec<Option<ResampleFigures>>,
    failed: u32,
    /// Per task (its first index): how often its worker died.
    tries: HashMap<u32, u32>,
}

/// Every bootstrap in progress.
pub struct Bootstraps {
    seed: u64,
    workers: usize,
    groups: HashMap<u64, Group>,
    /// Groups with tasks still to hand out, oldest first.
    queue: VecDeque<u64>,
    next_group: u64,
}

impl Bootstraps {
    /// Bootstraps seeded by `--seed`, spread over `workers`.
    #[must_use]
    pub fn new(seed: u64, workers: usize) -> Self {
        Bootstraps {
            seed,
            workers,
            groups: HashMap::new(),
            queue: VecDeque::new(),
            next_group: 0,
        }
    }

    /// Whether no job waits for resamples.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Holds back the ok `record` of `job` and queues its B resamples, whose
    /// Poisson means are `means` (N·q_k of the estimate).
    pub fn start(&mut self, job: &Job, means: Vec<f64>, record: OkRecord) {
        let b = job.analysis.bootstrap;
        let mut template = job.clone();
        template.counts = means;
        template.analysis.spectral = false;
        template.warnings = Vec::new();
        let g = self.next_group;
        self.next_group += 1;
        let chunk = chunk_size(b, self.workers);
        info!(
            "bootstrap line={} id={} method={} resamples={b} per_task={chunk} group={g}",
            job.line,
            job.id,
            job.method.as_str()
        );
        let todo = (0..b)
            .step_by(chunk as usize)
            .map(|first| (first, chunk.min(b - first)))
            .collect();
        self.groups.insert(
            g,
            Group {
                record,
                template,
                todo,
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
            let Some((first, count)) = group.todo.pop_front() else {
                self.queue.pop_front();
                continue;
            };
            if group.todo.is_empty() {
                self.queue.pop_front();
            }
            group.out += 1;
            let mut job = group.template.clone();
            job.analysis.resample = Some(Resample {
                first,
                count,
                seed: self.seed,
            });
            return Some((g, job));
        }
        None
    }

    /// A task came back (`Err`: the whole task failed); `Some(record)` when
    /// it was the group's last: the job's result, ready to append.
    pub fn done(
        &mut self,
        g: u64,
        task: Resample,
        outcome: Result<&JobFigures, &str>,
    ) -> Option<ResultRecord> {
        let group = self.groups.get_mut(&g)?;
        group.out = group.out.saturating_sub(1);
        let per = outcome.map(|f| f.analysis.resamples.as_deref().unwrap_or_default());
        let mut seen = 0;
        if let Ok(per) = per {
            for r in per {
                let in_task = (task.first..task.first + task.count).contains(&r.index);
                let slot = group.figures.get_mut(r.index as usize);
                match (&r.outcome, slot) {
                    (Ok(f), Some(slot)) if in_task && slot.is_none() => {
                        *slot = Some(*f);
                        seen += 1;
                    }
                    (Err(e), _) if in_task => {
                        warn!(
                            "bootstrap resample {} of id={} failed: {e}",
                            r.index, group.template.id
                        );
                        group.failed += 1;
                        seen += 1;
                    }
                    _ => {}
                }
            }
        }
        if seen < task.count {
            let why = match outcome {
                Err(e) => e.to_string(),
                Ok(_) => "the worker returned no figures".to_string(),
            };
            warn!(
                "bootstrap resamples {}..{} of id={}: {} failed: {why}",
                task.first,
                task.first + task.count,
                group.template.id,
                task.count - seen
            );
            group.failed += task.count - seen;
        }
        self.finish_if_complete(g)
    }

    /// The worker running `task` died: it is handed out again, at most
    /// `max_retries` times, then its resamples count as failed.
    pub fn lost(
        &mut self,
        g: u64,
        task: Resample,
        why: &str,
        max_retries: u32,
    ) -> Option<ResultRecord> {
        let group = self.groups.get_mut(&g)?;
        let tries = group.tries.entry(task.first).or_insert(0);
        *tries += 1;
        if *tries > max_retries {
            return self.done(g, task, Err(why));
        }
        group.out = group.out.saturating_sub(1);
        group.todo.push_front((task.first, task.count));
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
        // In index order: the same figures whatever the order they came in.
        let ok: Vec<_> = group.figures.iter().flatten().collect();
        let std_of = |pick: &dyn Fn(&ResampleFigures) -> Option<f64>| {
            let v: Vec<f64> = ok.iter().filter_map(|t| pick(t)).collect();
            qst_math::sample_std(&v)
        };
        rec.bootstrap = Some(BootstrapRecord {
            resamples: group.template.analysis.bootstrap,
            failed: group.failed,
            purity_std: std_of(&|t| Some(t.0)),
            fidelity_std: rec.fidelity.and_then(|_| std_of(&|t| t.1)),
            bell_max_fidelity_std: rec.bell.and_then(|_| std_of(&|t| t.2)),
        });
        info!(
            "bootstrap done id={} method={} ok={} failed={}",
            group.template.id,
            group.template.method.as_str(),
            ok.len(),
            group.failed
        );
        Some(rec.into())
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
    use qst_shared::{Analysis, Design, JobFailure, Method, ProjectorSpec, resample_seed};

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
            analysis: Box::default(),
            started: 0.0,
            seconds: 0.0,
        }
    }

    fn back(task: &Job, purity: impl Fn(u32) -> Result<f64, JobFailure>) -> JobFigures {
        let r = task.analysis.resample.unwrap();
        let mut f = figs(0.0);
        f.analysis.resamples = Some(
            (r.first..r.first + r.count)
                .map(|index| qst_shared::ResampleFigures {
                    index,
                    outcome: purity(index).map(|p| (p, None, None)),
                })
                .collect(),
        );
        f
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
    fn chunks_spread_a_job_over_the_workers() {
        assert_eq!(chunk_size(40, 2), 20);
        assert_eq!(chunk_size(100, 2), 50);
        assert_eq!(chunk_size(200, 16), 13);
        assert_eq!(chunk_size(3, 16), 1);
        assert_eq!(chunk_size(100_000, 2), MAX_CHUNK);
    }

    #[test]
    fn a_group_is_written_once_when_every_resample_is_back() {
        // B = 10 over 5 workers: tasks of 2.
        let mut b = Bootstraps::new(1, 5);
        let j = job(10);
        b.start(
            &j,
            vec![2.0; 4],
            OkRecord::new(&j, &figs(1.0), 0, std::path::Path::new("/o")),
        );
        let tasks: Vec<(u64, Job)> = std::iter::from_fn(|| b.next_task()).collect();
        assert_eq!(tasks.len(), 5);
        assert!(tasks.iter().all(|(_, t)| t.counts == vec![2.0; 4]));
        let r = |t: &Job| t.analysis.resample.unwrap();
        // Out of order; task 0 lost once (retried); resample 3 fails; task 4 fails whole.
        assert!(
            b.done(
                0,
                r(&tasks[2].1),
                Ok(&back(&tasks[2].1, |i| Ok(f64::from(i))))
            )
            .is_none()
        );
        assert!(b.lost(0, r(&tasks[0].1), "died", 3).is_none());
        let (_, again) = b.next_task().unwrap();
        assert_eq!(r(&again), r(&tasks[0].1));
        let odd = |i: u32| {
            if i == 3 {
                Err(JobFailure::of(&"bad"))
            } else {
                Ok(f64::from(i))
            }
        };
        assert!(
            b.done(0, r(&tasks[1].1), Ok(&back(&tasks[1].1, odd)))
                .is_none()
        );
        assert!(b.done(0, r(&tasks[4].1), Err("worker said no")).is_none());
        assert!(
            b.done(
                0,
                r(&tasks[3].1),
                Ok(&back(&tasks[3].1, |i| Ok(f64::from(i))))
            )
            .is_none()
        );
        let rec = b
            .done(0, r(&again), Ok(&back(&again, |i| Ok(f64::from(i)))))
            .unwrap();
        let ResultRecord::Ok(rec) = rec else {
            panic!("not an ok record: {rec:?}")
        };
        let boot = rec.bootstrap.unwrap();
        assert_eq!((boot.resamples, boot.failed), (10, 3));
        // purities 0, 1, 2, 4, 5, 6, 7
        let v = [0.0, 1.0, 2.0, 4.0, 5.0, 6.0, 7.0];
        assert_eq!(boot.purity_std, qst_math::sample_std(&v));
        assert_eq!(
            (boot.fidelity_std, boot.bell_max_fidelity_std),
            (None, None)
        );
        assert!(b.is_empty());
        assert!(b.next_task().is_none());
    }
}
