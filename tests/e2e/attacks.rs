//! Nothing lost, no one let in: two runs on one output directory, a full
//! disk (a short write, then space frees; ρ files that cannot be written),
//! symbolic links and FIFOs planted at fixed names, shared or foreign output
//! directories, hostile batch lines, signals during a build, bursts of
//! worker deaths. Real processes and files; a full disk is a size-limited
//! tmpfs mounted for the test (tests run as root in CI; without the right to
//! mount, those tests say so on stderr and pass without checking).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::util::*;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A size-limited tmpfs mounted on a directory for the life of the guard.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (mount's syntax: `256k`, `1m`) on `dir`
    /// (created), mode 0755; `None` (and a note on stderr) when mounting is
    /// not allowed here.
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755")])
            .arg("tmpfs")
            .arg(dir)
            .status()
            .is_ok_and(|st| st.success());
        if !ok {
            eprintln!(
                "skipped: cannot mount a tmpfs on {} (needs root)",
                dir.display()
            );
            return None;
        }
        Some(Tmpfs {
            dir: dir.to_path_buf(),
        })
    }

    /// Fills the file system with `filler` until it is full, then gives back
    /// `leave` bytes (rounded to pages).
    fn fill(&self, leave: u64) -> PathBuf {
        let filler = self.dir.join("filler");
        let mut f = fs::File::create(&filler).unwrap();
        let page = vec![0u8; 4096];
        while f.write_all(&page).is_ok() {}
        drop(f);
        let len = fs::metadata(&filler).unwrap().len();
        fs::OpenOptions::new()
            .write(true)
            .open(&filler)
            .unwrap()
            .set_len(len.saturating_sub(leave) / 4096 * 4096)
            .unwrap();
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Every line of results.jsonl is one complete JSON record.
fn assert_every_line_whole(out: &Path) {
    let text = fs::read_to_string(out.join("results.jsonl")).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "a torn last line");
    for (i, l) in text.lines().enumerate() {
        assert!(
            serde_json::from_str::<serde_json::Value>(l).is_ok(),
            "line {} of results.jsonl is not a record: {l:?}",
            i + 1
        );
    }
}

#[test]
fn a_second_run_on_the_same_out_is_refused_naming_the_first() {
    let t = Tmp::new();
    let batch = t.join("b.jsonl");
    write_lines(&batch, &[slow_job("s"), quick_job("q", 1)]);
    let out = t.join("out");
    let run = t.qst_run(&batch).out(&out).workers(1).small_cache();
    let first = run.spawn();
    poll("the slow job to start", LONG, || {
        started_jobs(&out.join("logs/worker-0.log"))
            .contains(&"s".to_string())
            .then_some(())
    });
    let before = fs::read(out.join("results.jsonl")).unwrap();
    for again in [run.clone(), run.clone().resume()] {
        let msg = again.assert_exit(2).stderr;
        assert!(
            msg.contains(&format!("PID {}", first.pid())),
            "the refusal must name the holder: {msg}"
        );
    }
    assert_eq!(fs::read(out.join("results.jsonl")).unwrap(), before);
    assert_eq!(
        worker_pids(&out.join("logs/worker-0.log")).len(),
        1,
        "the refused run started a worker"
    );
    drop(first);
    // The lock dies with its holder: a resume runs.
    let ran = run.resume().job_timeout(1).assert_exit(1);
    assert_eq!(ran.by_line().len(), 2);
}

#[test]
fn a_short_write_on_a_full_disk_never_leaves_a_fragment_inside_the_results() {
    let t = Tmp::new();
    let out = t.join("out");
    // results.jsonl on a nearly full file system; rho/ on another, roomy one.
    let Some(small) = Tmpfs::mount(&out, "1m") else {
        return;
    };
    let Some(_rho) = Tmpfs::mount(&out.join("rho"), "8m") else {
        return;
    };
    let filler = small.fill(40 << 10);
    let batch = t.join("b.jsonl");
    let mut lines = vec![slow_job("slow")];
    lines.extend((0..300).map(|i| quick_job(&format!("q{i:03}"), i)));
    write_lines(&batch, &lines);
    let logs = t.join("logs");
    let cmd = t
        .qst_run(&batch)
        .out(&out)
        .logs(&logs)
        .workers(2)
        .max_retries(0)
        .small_cache();
    let mut run = cmd.spawn();
    // The disk filled up mid-line while the slow job runs.
    let slow_log = poll("a failed append while the slow job runs", LONG, || {
        let failed = read(&logs.join("supervisor.log")).contains("append to results.jsonl failed");
        let slow = (0..2)
            .map(|i| logs.join(format!("worker-{i}.log")))
            .find(|l| started_jobs(l).contains(&"slow".to_string()));
        slow.filter(|_| failed)
    });
    // Space frees, and then one more result comes: the killed job's error.
    fs::remove_file(&filler).unwrap();
    let worker = worker_pids(&slow_log)[0];
    kill(Pid::from_raw(worker as i32), Signal::SIGKILL).unwrap();
    let ran = run.assert_exit(1);
    assert_every_line_whole(&out);
    assert!(
        ran.results().iter().any(|r| r["error"]
            .as_str()
            .is_some_and(|e| e.contains("worker died"))),
        "the last result was not written once space was free"
    );
    // A resume needs no hand edit, and every line ends with one result.
    let ran = cmd.resume().assert_exit(1);
    assert_every_line_whole(&out);
    let by_line = ran.by_line();
    assert_eq!(by_line.len(), 301);
    assert_eq!(
        by_line.values().filter(|r| r["status"] == "ok").count(),
        300
    );
}

#[test]
fn a_rho_that_cannot_be_written_stops_the_run_and_resume_runs_the_job() {
    let t = Tmp::new();
    let out = t.join("out");
    let rho = out.join("rho");
    let Some(fs_) = Tmpfs::mount(&rho, "64k") else {
        return;
    };
    let filler = fs_.fill(0);
    let batch = t.join("b.jsonl");
    let lines: Vec<String> = (0..6).map(|i| quick_job(&format!("q{i}"), i)).collect();
    write_lines(&batch, &lines);
    let cmd = t.qst_run(&batch).out(&out).workers(1);
    let ran = cmd.assert_exit(1);
    assert!(ran.stderr.contains("--resume"), "{}", ran.stderr);
    let by_line = ran.by_line();
    assert!(
        by_line.len() < 6,
        "the run went on failing job after job: {by_line:?}"
    );
    assert!(
        by_line.values().all(|r| r["status"] == "ok"),
        "an output failure was recorded as the job's: {by_line:?}"
    );
    fs::remove_file(&filler).unwrap();
    let by_line = cmd.resume().assert_ok().by_line();
    assert_eq!(by_line.len(), 6);
    assert!(by_line.values().all(|r| r["status"] == "ok"));
    drop(fs_);
}

#[test]
fn symlinks_at_fixed_names_are_never_followed() {
    let t = Tmp::new();
    let victims = t.join("victims");
    fs::create_dir(&victims).unwrap();
    let victim = |name: &str| {
        let p = victims.join(name);
        fs::write(&p, "precious\n").unwrap();
        p
    };
    let batch = t.join("b.jsonl");
    write_lines(&batch, &[quick_job("a", 1), quick_job("b", 2)]);
    let out = t.join("out");
    fs::create_dir(&out).unwrap();
    for name in [
        "summary.csv.tmp",
        "summary.json.tmp",
        "batch.fingerprint.tmp",
    ] {
        symlink(victim(name), out.join(name)).unwrap();
    }
    let ran = t.qst_run(&batch).out(&out).workers(1).assert_ok();
    assert_eq!(ran.by_line().len(), 2);
    assert!(read(&out.join("summary.csv")).starts_with("id,dim"));

    // A planted log: the run refuses to write through it.
    let out2 = t.join("out2");
    fs::create_dir_all(out2.join("logs")).unwrap();
    symlink(victim("log"), out2.join("logs/supervisor.log")).unwrap();
    let o = t.qst_run(&batch).out(&out2).workers(1).assert_exit(2);
    assert!(o.stderr.contains("supervisor.log"), "{}", o.stderr);

    // A planted worker log or results file: refused too.
    for name in ["logs/worker-0.log", "results.jsonl"] {
        let out3 = t.join(&format!("out3-{}", name.len()));
        fs::create_dir_all(out3.join("logs")).unwrap();
        symlink(victim(&format!("v{}", name.len())), out3.join(name)).unwrap();
        t.qst_run(&batch).out(&out3).workers(1).assert_exit(2);
    }

    // qst gen's temporary.
    symlink(victim("gen"), t.join(".g.gen.tmp")).unwrap();
    let g = t.join("g.jsonl");
    t.qst_gen(&g)
        .args(["--dims", "2", "--per-dim", "2"])
        .assert_ok();
    assert!(fs::symlink_metadata(&g).unwrap().is_file());

    for e in fs::read_dir(&victims).unwrap() {
        let p = e.unwrap().path();
        assert_eq!(read(&p), "precious\n", "{} was overwritten", p.display());
    }
}

#[test]
fn an_output_directory_others_can_write_or_own_is_refused() {
    let t = Tmp::new();
    let batch = t.join("b.jsonl");
    write_lines(&batch, &[quick_job("a", 1)]);
    // The default <stem>.qst/, pre-created world-writable by someone else.
    let default_out = t.join("b.qst");
    fs::create_dir(&default_out).unwrap();
    for (mode, what) in [(0o777, "everyone"), (0o775, "group")] {
        fs::set_permissions(&default_out, fs::Permissions::from_mode(mode)).unwrap();
        let o = t.qst_run(&batch).assert_exit(2);
        assert!(o.stderr.contains(what), "{}", o.stderr);
        assert!(!default_out.join("results.jsonl").exists());
    }
    // Sticky (like /tmp): fine.
    fs::set_permissions(&default_out, fs::Permissions::from_mode(0o1777)).unwrap();
    let ran = t.qst_run(&batch).assert_ok();
    assert_eq!(ran.out(), default_out);
    assert_eq!(ran.by_line().len(), 1);
    // Owned by another user.
    let theirs = t.join("theirs");
    fs::create_dir(&theirs).unwrap();
    if std::os::unix::fs::chown(&theirs, Some(65534), None).is_ok() {
        let o = t.qst_run(&batch).out(&theirs).assert_exit(2);
        assert!(o.stderr.contains("owned by user 65534"), "{}", o.stderr);
    }
}

fn mkfifo(p: &Path) {
    let st = Command::new("mkfifo").arg(p).status().unwrap();
    assert!(st.success());
}

/// The hidden temporary files of builds in `cache`.
fn temporaries(cache: &Path) -> Vec<String> {
    fs::read_dir(cache)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with('.') && n.ends_with(".tmp"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_planted_lock_symlink_is_not_followed_and_the_jobs_run_from_kets() {
    let t = Tmp::new();
    let cache = t.join("cache");
    fs::create_dir(&cache).unwrap();
    let target = t.join("created-by-qst");
    symlink(&target, cache.join("nopovm_n2.npy.lock")).unwrap();
    let batch = t.join("b.jsonl");
    write_lines(&batch, &[job_json("a", 2, &[60.0, 40.0, 55.0, 50.0], "")]);
    let o = t.qst_run(&batch).out("out").workers(1).assert_ok();
    assert!(o.stderr.contains("kets"), "one warning: {}", o.stderr);
    assert_eq!(o.stderr.matches("warning").count(), 1, "{}", o.stderr);
    assert_eq!(o.results()[0]["status"], "ok");
    t.qst_prebuild("2").assert_exit(1);
    assert!(
        fs::symlink_metadata(&target).is_err(),
        "qst created a file through the planted link"
    );
}

#[test]
fn a_fifo_at_a_cache_file_name_neither_hangs_nor_passes() {
    let t = Tmp::new();
    let cache = t.join("cache");
    fs::create_dir(&cache).unwrap();
    mkfifo(&cache.join("nopovm_n2.npy"));
    mkfifo(&cache.join("nopovm_n3.npy"));
    let batch = t.join("b.jsonl");
    write_lines(&batch, &[job_json("a", 2, &[60.0, 40.0, 55.0, 50.0], "")]);
    let mut run = t.qst_run(&batch).out("out").workers(1).spawn();
    let ran = run.assert_exit(0);
    assert_eq!(ran.results()[0]["status"], "ok");
    assert!(
        fs::symlink_metadata(cache.join("nopovm_n2.npy"))
            .unwrap()
            .is_file()
    );
    // verify reports the other FIFO (it does not block on it); clear removes it.
    let report = t.qst(["cache", "verify"]).assert_exit(1).stdout;
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("BAD") && l.contains("nopovm_n3.npy")),
        "{report}"
    );
    t.qst(["cache", "clear"]).assert_ok();
    assert!(fs::symlink_metadata(cache.join("nopovm_n3.npy")).is_err());
    // prebuild replaces one.
    mkfifo(&cache.join("nopovm_n3.npy"));
    let o = t.qst_prebuild("3").assert_ok();
    assert!(o.stdout.contains("rebuilt ("), "{}", o.stdout);
}

#[test]
fn a_cache_on_a_full_file_system_runs_the_jobs_from_kets() {
    let t = Tmp::new();
    let cache = t.join("cache");
    let Some(_fs) = Tmpfs::mount(&cache, "64k") else {
        return;
    };
    let batch = t.join("b.jsonl");
    // nopovm at n = 8 is a 65 664-byte file: it cannot be written here.
    let lines: Vec<String> = (0..3)
        .map(|i| job_json(&format!("e{i}"), 8, &test_counts(8, i, 1e5), ""))
        .collect();
    write_lines(&batch, &lines);
    let o = t.qst_run(&batch).out("out").workers(2).assert_ok();
    assert_eq!(o.stderr.matches("warning").count(), 1, "{}", o.stderr);
    let by_line = o.by_line();
    assert_eq!(by_line.len(), 3);
    assert!(by_line.values().all(|r| r["status"] == "ok"), "{by_line:?}");
    assert!(temporaries(&cache).is_empty());
}

#[test]
fn prebuild_checks_every_byte() {
    let t = Tmp::new();
    t.qst_prebuild("6").assert_ok();
    let file = t.join("cache/nopovm_n6.npy");
    let good = fs::read(&file).unwrap();
    // One flipped byte in a middle slice: a spot check (a few slices) misses
    // it most of the time; prebuild, the explicit check, must not.
    let mut bad = good.clone();
    let at = good.len() / 2 + 3;
    bad[at] ^= 0x10;
    fs::write(&file, &bad).unwrap();
    let said = t.qst_prebuild("6").assert_ok().stdout;
    assert!(said.contains("dim 6: rebuilt ("), "{said}");
    assert_eq!(fs::read(&file).unwrap(), good);
}

/// Starts a build of the 430 MB n = 72 file (by `args`) and returns once its
/// temporary file exists.
fn start_big_build(t: &Tmp, cmd: Qst) -> Running {
    let run = cmd.spawn();
    let cache = t.join("cache");
    poll("the build's temporary file", LONG, || {
        temporaries(&cache)
            .iter()
            .any(|n| n.starts_with(".nopovm_n72.npy."))
            .then_some(())
    });
    run
}

#[test]
fn a_killed_build_leaves_a_temporary_that_ls_shows_and_the_next_build_removes() {
    let t = Tmp::new();
    let mut run = start_big_build(&t, t.qst_prebuild("72"));
    run.signal(Signal::SIGKILL);
    run.wait(LONG);
    let cache = t.join("cache");
    assert_eq!(temporaries(&cache).len(), 1);
    let ls = t.qst(["cache", "ls"]).assert_ok().stdout;
    assert!(
        ls.contains(".nopovm_n72.npy.") && ls.contains("died"),
        "{ls}"
    );
    t.qst_prebuild("2").assert_ok();
    assert!(temporaries(&cache).is_empty(), "{:?}", temporaries(&cache));
}

#[test]
fn sigint_during_a_projector_build_stops_it() {
    let t = Tmp::new();
    let batch = t.join("b.jsonl");
    write_lines(&batch, &[job_json("big", 72, &test_counts(72, 1, 1e7), "")]);
    let out = t.join("out");
    let mut run = start_big_build(&t, t.qst_run(&batch).out(&out));
    run.signal(Signal::SIGINT);
    let said = run.assert_exit(130).stderr;
    assert!(
        !t.join("cache/nopovm_n72.npy").exists(),
        "the build ran to its end after the signal"
    );
    assert!(temporaries(&t.join("cache")).is_empty());
    assert_eq!(result_count(&out), 0);
    assert!(said.contains("--resume"), "{said}");
}

/// A `.npy` header (format 1.0) for `descr` and `shape` (Python syntax),
/// padded to 64 bytes.
fn npy_header(descr: &str, shape: &str) -> Vec<u8> {
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut h = b"\x93NUMPY\x01\x00".to_vec();
    h.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h
}

/// A sparse `.npy` file whose header declares `shape` (`elems` elements of
/// `size` bytes): huge on paper, nothing on disk.
fn sparse_npy(path: &Path, descr: &str, shape: &str, elems: u64, size: u64) {
    let h = npy_header(descr, shape);
    let mut f = fs::File::create(path).unwrap();
    f.write_all(&h).unwrap();
    f.set_len(h.len() as u64 + elems * size).unwrap();
}

#[test]
fn huge_declared_arrays_are_refused_from_their_headers() {
    let t = Tmp::new();
    // 1.34e9 counts (10.7 GB on paper) for a job that needs 4.
    sparse_npy(
        &t.join("huge.npy"),
        "<f8",
        "(1340000000,)",
        1_340_000_000,
        8,
    );
    // A 1 GiB custom projector set of dimension 2 (K = 2^24) for 4 counts.
    let k: u64 = 1 << 24;
    sparse_npy(
        &t.join("set.npy"),
        "<c16",
        &format!("({k}, 2, 2)"),
        k * 4,
        16,
    );
    let batch = t.join("b.jsonl");
    write_lines(
        &batch,
        &[
            r#"{"id":"a","dim":2,"counts_npy":"huge.npy"}"#.to_string(),
            r#"{"id":"b","dim":2,"counts":[1,2,3,4],"projectors":"set.npy"}"#.to_string(),
            quick_job("c", 1),
        ],
    );
    let out = t.join("out");
    let mut run = t.qst_run(&batch).out(&out).workers(1).spawn();
    let by_line = run.assert_exit(1).by_line();
    let msg = |l: u64| by_line[&l]["error"].as_str().unwrap_or("").to_string();
    assert!(msg(1).contains("has 1340000000 entries, but"), "{}", msg(1));
    assert!(
        msg(2).contains("field counts has 4 entries, but"),
        "{}",
        msg(2)
    );
    assert_eq!(by_line[&3]["status"], "ok");
}

#[test]
fn overflowing_counts_are_scaled_not_trusted() {
    let t = Tmp::new();
    let batch = t.join("b.jsonl");
    // Equal counts on the four n = 2 projectors: the state is I/2.
    write_lines(&batch, &[job_json("big", 2, &[1e308; 4], "")]);
    let r = &t
        .qst_run(&batch)
        .out("out")
        .workers(1)
        .assert_ok()
        .results()[0];
    assert_eq!(r["status"], "ok", "{r}");
    let purity = r["purity"].as_f64().unwrap();
    assert!((purity - 0.5).abs() < 1e-6, "purity {purity} of I/2: {r}");
}

#[test]
fn first_contact_mistakes_get_clear_answers() {
    let t = Tmp::new();
    let batch = t.join("b.jsonl");
    let long_id = "x".repeat(1 << 20);
    write_lines(
        &batch,
        &[
            quick_job("ok", 1),
            r#"{"id":"big","dim":2,"counts":[1e400,1,1,1]}"#.to_string(),
            quick_job(".", 2),
            quick_job("..", 3),
            quick_job(".hidden", 4),
            quick_job(&long_id, 5),
        ],
    );
    // A pipe as the batch: refused, not run as an empty batch.
    let mut child = t
        .qst_run("/dev/stdin")
        .out("piped")
        .command()
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(&fs::read(&batch).unwrap());
    drop(stdin);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a regular file"), "{}", stderr(&o));

    // A closed stderr never stops a run.
    let out = t.join("out");
    let mut child = t
        .qst_run(&batch)
        .out(&out)
        .workers(1)
        .command()
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(1), "the run did not end normally");
    assert!(out.join("summary.csv").is_file() && out.join("summary.json").is_file());
    let by_line = results_by_line(&out);
    assert_eq!(by_line.len(), 6);
    assert_eq!(by_line[&1]["status"], "ok");
    let e2 = by_line[&2]["error"].as_str().unwrap();
    assert!(e2.contains("field counts"), "{e2}");
    for l in 3..=5 {
        let e = by_line[&l]["error"].as_str().unwrap();
        assert!(e.contains("field id"), "{e}");
    }
    let e6 = by_line[&6]["error"].as_str().unwrap();
    assert!(e6.len() < 1000, "the long id is repeated in the message");
    let rho: Vec<String> = fs::read_dir(out.join("rho"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(rho, vec!["ok.npy".to_string()]);

    // No usable home for the cache: one up-front error naming the ways out.
    let o = t
        .qst_run(&batch)
        .out("o3")
        .env_remove("QST_CACHE_DIR")
        .env_remove("XDG_CACHE_HOME")
        .env("HOME", "/proc/qst-no-home")
        .assert_exit(2);
    assert!(
        o.stderr.contains("--cache") && o.stderr.contains("QST_CACHE_DIR"),
        "{}",
        o.stderr
    );
}

#[test]
fn workers_that_cannot_start_for_a_while_are_waited_out() {
    let t = Tmp::new();
    let batch = t.join("b.jsonl");
    let lines: Vec<String> = (0..5).map(|i| quick_job(&format!("q{i}"), i)).collect();
    write_lines(&batch, &lines);
    let out = t.join("out");
    let logs = t.join("logs");
    // The worker's log cannot be opened (a directory at its name): every
    // start fails until it is removed.
    fs::create_dir_all(logs.join("worker-0.log")).unwrap();
    let mut run = t.qst_run(&batch).out(&out).logs(&logs).workers(1).spawn();
    poll("nine failed starts in a row", LONG, || {
        let failed = read(&logs.join("supervisor.log"))
            .matches("spawn slot=0 failed")
            .count();
        (failed >= 9 || run.has_exited()).then_some(())
    });
    fs::remove_dir(logs.join("worker-0.log")).unwrap();
    let by_line = run.assert_exit(0).by_line();
    assert_eq!(by_line.len(), 5);
    assert!(by_line.values().all(|r| r["status"] == "ok"), "{by_line:?}");
}

/// Workers killed as they appear: whatever the burst hits (starting workers
/// or running jobs), every job ends ok. (Which deaths land before a worker's
/// hello depends on timing; the start failures themselves are tested
/// deterministically by `workers_that_cannot_start_for_a_while_are_waited_out`.)
#[test]
fn a_burst_of_worker_deaths_is_waited_out() {
    let t = Tmp::new();
    let batch = t.join("b.jsonl");
    // Jobs of a few hundred milliseconds, so that the batch outlasts the burst.
    let slow = r#","max_iters":3000,"tol":1e-300"#;
    let lines: Vec<String> = (0..10)
        .map(|i| job_json(&format!("j{i}"), 16, &test_counts(16, i, 1e6), slow))
        .collect();
    write_lines(&batch, &lines);
    let out = t.join("out");
    let mut run = t
        .qst_run(&batch)
        .out(&out)
        .workers(2)
        .max_retries(100)
        .spawn();
    let sup = run.pid();
    // Kill every worker the moment it appears, ten times in a row.
    let mut kills = 0;
    while kills < 10 {
        let ended = poll("a worker to kill", LONG, || {
            if run.has_exited() {
                return Some(true);
            }
            let w = children(sup);
            for pid in &w {
                if kill(Pid::from_raw(*pid as i32), Signal::SIGKILL).is_ok() {
                    kills += 1;
                }
            }
            (!w.is_empty()).then_some(false)
        });
        if ended {
            break;
        }
    }
    assert!(kills >= 10, "the batch ended after {kills} kills");
    let by_line = run.assert_exit(0).by_line();
    assert_eq!(by_line.len(), 10);
    assert!(by_line.values().all(|r| r["status"] == "ok"), "{by_line:?}");
}

#[test]
fn a_map_refused_under_a_memory_limit_runs_from_kets_and_keeps_the_file() {
    let t = Tmp::new();
    t.qst_prebuild("64").assert_ok();
    let file = t.join("cache/nopovm_n64.npy");
    let before = fs::metadata(&file).unwrap();
    let batch = t.join("b.jsonl");
    let n = 64;
    write_lines(
        &batch,
        &[job_json(
            "a",
            n,
            &vec![1000.0; n * n],
            r#","method":"linear""#,
        )],
    );
    let out = t.join("out");
    // 200 MB of address space: enough to run, not to map the 268 MB file.
    let script = format!(
        "ulimit -v 200000 && exec {} run {} --out {} --workers 1",
        s(&qst_bin()),
        s(&batch),
        s(&out)
    );
    let o = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .env("QST_CACHE_DIR", t.join("cache"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o).matches("warning").count(), 1, "{}", stderr(&o));
    assert_eq!(results(&out)[0]["status"], "ok");
    let after = fs::metadata(&file).unwrap();
    assert_eq!(
        after.modified().unwrap(),
        before.modified().unwrap(),
        "a valid file was rewritten"
    );
}

/// On a terminal (a pty from util-linux `script`), Ctrl-C leaves the progress
/// bar at the jobs actually done, not at the total.
#[test]
fn after_sigint_the_progress_bar_shows_what_was_done() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: util-linux script (for a pty) is not installed");
        return;
    }
    let t = Tmp::new();
    let batch = t.join("b.jsonl");
    let slow = r#","max_iters":10000,"tol":1e-300"#;
    let lines: Vec<String> = (0..40)
        .map(|i| job_json(&format!("j{i}"), 16, &test_counts(16, i, 1e6), slow))
        .collect();
    write_lines(&batch, &lines);
    let out = t.join("out");
    let screen = t.join("screen.txt");
    let inner = format!(
        "exec {} run {} --out {} --workers 1",
        s(&qst_bin()),
        s(&batch),
        s(&out)
    );
    let mut script = Running {
        child: Some(
            Command::new("script")
                .args(["-qefc", &inner, "/dev/null"])
                .env("QST_CACHE_DIR", t.join("cache"))
                .stdin(std::process::Stdio::null())
                .stdout(fs::File::create(&screen).unwrap())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        ),
        stderr: screen.clone(),
        out: Some(out.clone()),
        what: inner.clone(),
    };
    poll("three results", LONG, || {
        (result_count(&out) >= 3).then_some(())
    });
    let qst = poll("qst under script", LONG, || {
        children(script.pid()).first().copied()
    });
    kill(Pid::from_raw(qst as i32), Signal::SIGINT).unwrap();
    let st = script.wait(LONG);
    let done = result_count(&out);
    assert!(done < 40, "the batch ended before the signal");
    let text = read(&screen);
    assert!(
        st.code() == Some(130) || text.contains("interrupted"),
        "{st:?} {text}"
    );
    assert!(
        text.contains("/40 jobs"),
        "no progress bar on the pty: {text}"
    );
    assert!(
        !text.contains("40/40"),
        "the bar claims every job after Ctrl-C: {text}"
    );
}
