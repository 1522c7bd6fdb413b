//! Helpers of the end-to-end tests: the built `qst` binary, temporary
//! directories with their own projector cache, running qst (to the end, or in
//! the background under a guard that kills it), reading results and logs,
//! polling with a deadline, and `/proc` queries.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `qst` binary under test.
pub fn qst_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_qst"))
}

/// A temporary directory; its `cache/` is the projector cache of every qst
/// started through [`Tmp::cmd`].
pub struct Tmp {
    pub dir: tempfile::TempDir,
}

impl Tmp {
    /// In `/dev/shm` when there is one: every ρ file is fsynced (twice), which
    /// on tmpfs costs nothing, keeping batches of thousands of jobs fast.
    pub fn new() -> Self {
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::Builder::new().prefix("qst-e2e-").tempdir_in(shm)
        } else {
            tempfile::Builder::new().prefix("qst-e2e-").tempdir()
        };
        Tmp {
            dir: dir.expect("create a temp dir"),
        }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn join(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    /// `qst ARGS` with `QST_CACHE_DIR` set to this directory's `cache/`.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(qst_bin());
        c.args(args)
            .env("QST_CACHE_DIR", self.join("cache"))
            .current_dir(self.path());
        c
    }
    /// Runs qst to the end.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args)
            .stdin(Stdio::null())
            .output()
            .expect("run qst")
    }
    /// Starts qst in the background; its stderr goes to `stderr-<n>.txt`.
    pub fn spawn(&self, args: &[&str]) -> Running {
        let n = fs::read_dir(self.path()).map(|d| d.count()).unwrap_or(0);
        let err_path = self.join(&format!("stderr-{n}.txt"));
        let err = fs::File::create(&err_path).expect("create a stderr file");
        let child = self
            .cmd(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("start qst");
        Running {
            child: Some(child),
            stderr: err_path,
        }
    }
    /// `qst gen` into `name`, returning its path.
    pub fn generate(&self, name: &str, dims: &str, per_dim: usize, seed: u64) -> PathBuf {
        let path = self.join(name);
        let out = self.run(&[
            "gen",
            "--out",
            path.to_str().unwrap(),
            "--dims",
            dims,
            "--per-dim",
            &per_dim.to_string(),
            "--shots",
            "1000000",
            "--seed",
            &seed.to_string(),
        ]);
        assert!(
            out.status.success(),
            "qst gen failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        path
    }
}

/// A qst process running in the background; killed (SIGKILL, then reaped) if
/// still running when dropped, so a failing test leaves nothing behind (its
/// workers follow it by their parent-death signal).
pub struct Running {
    pub child: Option<Child>,
    pub stderr: PathBuf,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("child").id()
    }
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid() as i32), sig)
            .expect("signal qst");
    }
    /// Waits for the exit, up to `limit` (then kills it and panics).
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("child");
        let start = Instant::now();
        loop {
            if let Some(st) = child.try_wait().expect("wait for qst") {
                self.child = None;
                return st;
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                self.child = None;
                panic!(
                    "qst did not exit within {limit:?}; stderr: {}",
                    self.stderr_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    pub fn stderr_text(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Polls `f` every 20 ms until it returns `Some`, up to `limit`; panics
/// naming `what` on timeout.
pub fn poll<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The generous limit of every wait in these tests (a hang, not a measure).
pub const LONG: Duration = Duration::from_secs(300);

/// Every line of `out/results.jsonl`, parsed (a torn last line is skipped).
pub fn results(out: &Path) -> Vec<Value> {
    let text = fs::read_to_string(out.join("results.jsonl")).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Complete lines in `out/results.jsonl`.
pub fn result_count(out: &Path) -> usize {
    fs::read_to_string(out.join("results.jsonl")).map_or(0, |t| t.matches('\n').count())
}

/// Results by `line`; panics if a line has two.
pub fn results_by_line(out: &Path) -> HashMap<u64, Value> {
    let mut m = HashMap::new();
    for r in results(out) {
        let line = r["line"].as_u64().expect("line");
        assert!(
            m.insert(line, r.clone()).is_none(),
            "line {line} has two results"
        );
    }
    m
}

/// The 1-based numbers of the job lines of a JSON Lines batch (not blank,
/// not `#`).
pub fn job_lines(batch: &Path) -> Vec<u64> {
    let text = fs::read_to_string(batch).expect("read batch");
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, _)| i as u64 + 1)
        .collect()
}

pub fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_default()
}

/// `key=value` of a log line.
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

/// PIDs of the workers a slot's log says started, in order.
pub fn worker_pids(log: &Path) -> Vec<u32> {
    read(log)
        .lines()
        .filter(|l| l.contains("worker started"))
        .filter_map(|l| field(l, "pid")?.parse().ok())
        .collect()
}

/// Job ids a log says it started (`start job=…`), in order.
pub fn started_jobs(log: &Path) -> Vec<String> {
    read(log)
        .lines()
        .filter(|l| l.contains(" start job="))
        .filter_map(|l| field(l, "job").map(str::to_string))
        .collect()
}

/// Whether a process exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state follows the parenthesized command name.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().next());
            !matches!(state, Some("Z") | Some("X") | None)
        }
        Err(_) => false,
    }
}

/// The direct children of `pid` that are alive.
pub fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(child) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut it = rest.split_whitespace();
        let state = it.next();
        let ppid = it.next().and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) && !matches!(state, Some("Z") | Some("X")) {
            out.push(child);
        }
    }
    out
}

/// `/proc/PID/cmdline` as its arguments.
pub fn cmdline(pid: u32) -> Vec<String> {
    fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// The `nopovm` probabilities p_k = Tr(Π_k ρ) of docs/designs.md/1.3, computed here
/// from the kets, independently of the code under test. ρ is n×n row-major
/// (re, im).
pub fn nopovm_probs(n: usize, rho: &[(f64, f64)]) -> Vec<f64> {
    let r = |a: usize, b: usize| rho[a * n + b];
    let mut p: Vec<f64> = (0..n).map(|a| r(a, a).0).collect();
    for i in 0..n {
        for j in i + 1..n {
            let (rii, rjj, rij) = (r(i, i).0, r(j, j).0, r(i, j));
            // ψ = (e_i + e_j)/√2: ψ†ρψ = (ρii + ρjj + 2 Re ρij)/2.
            p.push((rii + rjj + 2.0 * rij.0) / 2.0);
            // ψ = (e_i − 𝑖e_j)/√2: ψ†ρψ = (ρii + ρjj − 𝑖ρij + 𝑖ρji)/2 = (ρii + ρjj + 2 Im ρij)/2.
            p.push((rii + rjj + 2.0 * rij.1) / 2.0);
        }
    }
    p
}

/// A JSON Lines job line.
pub fn job_json(id: &str, n: usize, counts: &[f64], extra: &str) -> String {
    let counts: Vec<String> = counts.iter().map(|c| format!("{c}")).collect();
    format!(
        r#"{{"id":"{id}","dim":{n},"counts":[{}]{extra}}}"#,
        counts.join(",")
    )
}

/// A deterministic mixed state: ρ ∝ diag(1..n) plus a coherence between
/// levels 0 and 1, row-major (re, im).
pub fn test_state(n: usize, seed: u64) -> Vec<(f64, f64)> {
    let mut rho = vec![(0.0, 0.0); n * n];
    let tr: f64 = (1..=n).map(|k| k as f64).sum();
    for a in 0..n {
        rho[a * n + a] = ((a + 1) as f64 / tr, 0.0);
    }
    let c = 0.3 * (1.0 / tr) * (1.0 + (seed % 5) as f64 / 10.0);
    rho[1] = (c, c / 2.0);
    rho[n] = (c, -c / 2.0);
    rho
}

/// Noiseless counts of `test_state(n, seed)` with `shots` in total.
pub fn test_counts(n: usize, seed: u64, shots: f64) -> Vec<f64> {
    let p = nopovm_probs(n, &test_state(n, seed));
    let s: f64 = p.iter().sum();
    p.iter().map(|x| (x / s * shots).round()).collect()
}

/// The dimension of [`slow_job`].
pub const SLOW_DIM: usize = 64;

/// Flags that keep [`SLOW_DIM`]'s projector set from being written as a
/// dense file (it runs from kets): the cache byte budget.
pub const SMALL_CACHE: [&str; 2] = ["--max-cache-bytes", "50000000"];

/// A job line that runs for a long time (seconds to minutes): a large
/// dimension and a tolerance it practically never reaches.
pub fn slow_job(id: &str) -> String {
    job_json(
        id,
        SLOW_DIM,
        &test_counts(SLOW_DIM, 1, 1e7),
        r#","max_iters":1000000000,"tol":1e-300"#,
    )
}

/// A quick job line (n = 4).
pub fn quick_job(id: &str, seed: u64) -> String {
    job_json(id, 4, &test_counts(4, seed, 1e5), "")
}

/// Writes a batch of these lines.
pub fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    fs::write(path, text).expect("write batch");
}
