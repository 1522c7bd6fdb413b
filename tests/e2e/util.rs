//! Helpers of the end-to-end tests: the built `qst` binary, temporary
//! directories with their own projector cache, one builder of qst command
//! lines ([`Qst`], after ripgrep's `TestCommand`) that runs qst to the end
//! ([`Ran`]: exit status, stdout, stderr, the output directory's
//! `results.jsonl` and `summary.json` parsed) or in the background under a
//! guard that kills it ([`Running`]), reading results and logs, polling with
//! a deadline, and `/proc` queries.
#![allow(dead_code)]

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
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
/// started through [`Tmp::qst`] and its shorthands.
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
    /// `qst ARGS…`, run here with `QST_CACHE_DIR` set to this directory's
    /// `cache/`.
    pub fn qst<A: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = A>) -> Qst {
        Qst {
            dir: self.path().to_path_buf(),
            args: Vec::new(),
            envs: Vec::new(),
            out: None,
        }
        .args(args)
    }
    /// `qst run BATCH`; its output directory is `<stem>.qst` beside the
    /// batch until [`Qst::out`] names another.
    pub fn qst_run(&self, batch: impl AsRef<Path>) -> Qst {
        let batch = batch.as_ref();
        let stem = batch.file_stem().expect("a batch file name");
        let mut name = stem.to_os_string();
        name.push(".qst");
        let mut q = self.qst(["run".as_ref(), batch.as_os_str()]);
        q.out = Some(self.path().join(batch).with_file_name(name));
        q
    }
    /// `qst gen --out FILE`.
    pub fn qst_gen(&self, file: impl AsRef<Path>) -> Qst {
        self.qst(["gen".as_ref(), "--out".as_ref(), file.as_ref().as_os_str()])
    }
    /// `qst merge OUT SHARD…`; its output directory is `OUT`.
    pub fn qst_merge<P: AsRef<Path>>(&self, out: &Path, shards: &[P]) -> Qst {
        let mut q = self
            .qst(["merge".as_ref(), out.as_os_str()])
            .args(shards.iter().map(|p| p.as_ref().as_os_str()));
        q.out = Some(self.path().join(out));
        q
    }
    /// `qst report DIR`.
    pub fn qst_report(&self, dir: impl AsRef<Path>) -> Qst {
        let mut q = self.qst(["report".as_ref(), dir.as_ref().as_os_str()]);
        q.out = Some(self.path().join(dir));
        q
    }
    /// `qst demo`; its output directory is `qst-demo/` here until
    /// [`Qst::out`] names another.
    pub fn qst_demo(&self) -> Qst {
        let mut q = self.qst(["demo"]);
        q.out = Some(self.join("qst-demo"));
        q
    }
    /// `qst prebuild --dims DIMS`.
    pub fn qst_prebuild(&self, dims: &str) -> Qst {
        self.qst(["prebuild", "--dims", dims])
    }
    /// `qst ARGS` as a process to start (the older form of [`Tmp::qst`],
    /// kept for tests written against it).
    pub fn cmd(&self, args: &[&str]) -> Command {
        self.qst(args).command()
    }
    /// Runs qst to the end (the older form of [`Qst::output`]).
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args)
            .stdin(Stdio::null())
            .output()
            .expect("run qst")
    }
    /// Starts qst in the background (the older form of [`Qst::spawn`]).
    pub fn spawn(&self, args: &[&str]) -> Running {
        self.qst(args).spawn()
    }
    /// `qst gen` into `name`, returning its path.
    pub fn generate(&self, name: &str, dims: &str, per_dim: usize, seed: u64) -> PathBuf {
        let path = self.join(name);
        self.qst_gen(&path)
            .args(["--dims", dims, "--per-dim", &per_dim.to_string()])
            .args(["--shots", "1000000", "--seed", &seed.to_string()])
            .assert_ok();
        path
    }
}

/// A qst process running in the background; killed (SIGKILL, then reaped) if
/// still running when dropped, so a failing test leaves nothing behind (its
/// workers follow it by their parent-death signal).
pub struct Running {
    pub child: Option<Child>,
    pub stderr: PathBuf,
    /// The output directory of the command, when it has one.
    pub out: Option<PathBuf>,
    /// The command line, for messages.
    pub what: String,
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
    /// Whether it has exited (it is then reaped).
    pub fn has_exited(&mut self) -> bool {
        let child = self.child.as_mut().expect("child");
        child.try_wait().expect("wait for qst").is_some()
    }
    /// Waits for the exit (up to [`LONG`]); panics unless it exited `code`.
    pub fn assert_exit(&mut self, code: i32) -> Ran {
        let status = self.wait(LONG);
        Ran {
            what: self.what.clone(),
            status,
            stdout: String::new(),
            stderr: self.stderr_text(),
            out: self.out.clone(),
        }
        .expect_exit(code)
    }
    /// The output directory.
    pub fn out(&self) -> &Path {
        self.out
            .as_deref()
            .unwrap_or_else(|| panic!("{} names no output directory", self.what))
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

/// A `qst` command line under construction, after ripgrep's `TestCommand`:
/// made by [`Tmp::qst`] and its `qst_*` shorthands, it runs in the
/// temporary directory with that directory's projector cache, and knows the
/// output directory the command writes (`--out`, else `<stem>.qst` beside
/// the batch) so that what it returns reads `results.jsonl` and
/// `summary.json` from there. Methods take and return it, so a base
/// command is cloned and extended (`run.clone().resume()`):
///
/// ```text
/// let ran = t.qst_run(&batch).out("out").workers(2).assert_exit(1);
/// assert_eq!(ran.by_line()[&3]["status"], "error");
/// let mut bg = t.qst_run(&batch).out("out").small_cache().spawn();
/// bg.signal(Signal::SIGINT);
/// assert!(bg.assert_exit(130).stderr.contains("--resume"));
/// ```
#[derive(Clone, Debug)]
pub struct Qst {
    dir: PathBuf,
    args: Vec<OsString>,
    envs: Vec<(OsString, Option<OsString>)>,
    out: Option<PathBuf>,
}

impl Qst {
    /// One more argument.
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_os_string());
        self
    }
    /// More arguments.
    pub fn args<A: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = A>) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }
    /// `FLAG VALUE`.
    fn flag(self, flag: &str, value: impl AsRef<OsStr>) -> Self {
        self.arg(flag).arg(value)
    }
    /// `--out DIR` (relative to the temporary directory), read back by the
    /// views of the run.
    pub fn out(mut self, dir: impl AsRef<Path>) -> Self {
        self.out = Some(self.dir.join(dir.as_ref()));
        self.flag("--out", dir.as_ref())
    }
    pub fn workers(self, n: usize) -> Self {
        self.flag("--workers", n.to_string())
    }
    pub fn method(self, m: &str) -> Self {
        self.flag("--method", m)
    }
    pub fn design(self, d: &str) -> Self {
        self.flag("--design", d)
    }
    pub fn logs(self, dir: impl AsRef<Path>) -> Self {
        self.flag("--logs", dir.as_ref())
    }
    pub fn max_retries(self, n: usize) -> Self {
        self.flag("--max-retries", n.to_string())
    }
    pub fn job_timeout(self, secs: u64) -> Self {
        self.flag("--job-timeout", secs.to_string())
    }
    pub fn shard(self, spec: &str) -> Self {
        self.flag("--shard", spec)
    }
    pub fn resume(self) -> Self {
        self.arg("--resume")
    }
    /// [`SMALL_CACHE`]: [`slow_job`]'s set runs from its kets.
    pub fn small_cache(self) -> Self {
        self.args(SMALL_CACHE)
    }
    /// An environment variable of the command.
    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Self {
        let v = Some(v.as_ref().to_os_string());
        self.envs.push((k.as_ref().to_os_string(), v));
        self
    }
    /// An environment variable the command must not inherit.
    pub fn env_remove(mut self, k: impl AsRef<OsStr>) -> Self {
        self.envs.push((k.as_ref().to_os_string(), None));
        self
    }
    /// The command line, for messages.
    pub fn describe(&self) -> String {
        let args: Vec<_> = self.args.iter().map(|a| a.to_string_lossy()).collect();
        format!("qst {}", args.join(" "))
    }
    /// The process to start (stdin, stdout and stderr not yet chosen).
    pub fn command(&self) -> Command {
        let mut c = Command::new(qst_bin());
        c.args(&self.args)
            .env("QST_CACHE_DIR", self.dir.join("cache"))
            .current_dir(&self.dir);
        for (k, v) in &self.envs {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c
    }
    /// Runs it to the end (stdin empty).
    pub fn output(&self) -> Ran {
        let o = self
            .command()
            .stdin(Stdio::null())
            .output()
            .expect("run qst");
        Ran {
            what: self.describe(),
            status: o.status,
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            out: self.out.clone(),
        }
    }
    /// Runs it to the end; panics unless it exits 0.
    pub fn assert_ok(&self) -> Ran {
        self.assert_exit(0)
    }
    /// Runs it to the end; panics unless it exits `code`.
    pub fn assert_exit(&self, code: i32) -> Ran {
        self.output().expect_exit(code)
    }
    /// Starts it in the background; its stderr goes to `stderr-<n>.txt`.
    pub fn spawn(&self) -> Running {
        let n = fs::read_dir(&self.dir).map_or(0, std::iter::Iterator::count);
        let err_path = self.dir.join(format!("stderr-{n}.txt"));
        let err = fs::File::create(&err_path).expect("create a stderr file");
        let child = self
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("start qst");
        Running {
            child: Some(child),
            stderr: err_path,
            out: self.out.clone(),
            what: self.describe(),
        }
    }
}

/// A finished qst command: its exit status, stdout and stderr, and readers
/// of the output directory it wrote.
#[derive(Debug)]
pub struct Ran {
    pub what: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    out: Option<PathBuf>,
}

impl Ran {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
    /// Panics unless the command exited `code`, showing what it said.
    pub fn expect_exit(self, code: i32) -> Self {
        assert_eq!(
            self.status.code(),
            Some(code),
            "{} exited {:?}, not {code}; stdout: {}; stderr: {}",
            self.what,
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }
    /// stdout then stderr.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
    /// The output directory.
    pub fn out(&self) -> &Path {
        self.out
            .as_deref()
            .unwrap_or_else(|| panic!("{} names no output directory", self.what))
    }
    /// Every line of its `results.jsonl`, parsed.
    pub fn results(&self) -> Vec<Value> {
        results(self.out())
    }
    /// Its results by `line`.
    pub fn by_line(&self) -> HashMap<u64, Value> {
        results_by_line(self.out())
    }
    /// Its `summary.json`.
    pub fn summary(&self) -> Value {
        summary(self.out())
    }
}

/// `out/summary.json`, parsed.
pub fn summary(out: &Path) -> Value {
    serde_json::from_str(&read(&out.join("summary.json"))).expect("summary.json")
}

/// The worker processes `summary.json` records, slot by slot: (slot, pid,
/// how it ended), every incarnation across every run of the directory.
pub fn incarnations(out: &Path) -> Vec<(u64, u32, String)> {
    let s = summary(out);
    let mut v = Vec::new();
    for w in s["workers"].as_array().expect("workers") {
        let slot = w["slot"].as_u64().expect("slot");
        for i in w["incarnations"].as_array().expect("incarnations") {
            let pid = i["pid"].as_u64().expect("pid") as u32;
            let exit = i["exit"].as_str().unwrap_or_default().to_string();
            v.push((slot, pid, exit));
        }
    }
    v
}

/// Polls `f` every 20 ms until it returns `Some`, up to `limit`; panics
/// naming `what` on timeout.
pub fn poll<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() <= limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The generous limit of every wait in these tests (a hang, not a measure).
pub const LONG: Duration = Duration::from_mins(5);

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
            !matches!(state, Some("Z" | "X") | None)
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
        if ppid == Some(pid) && !matches!(state, Some("Z" | "X")) {
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

/// The `nopovm` probabilities `p_k` = `Tr(Π_k` ρ) of docs/designs.md/1.3, computed here
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
