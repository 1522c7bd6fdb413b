//! One batch over many processes: `qst run --shard` (i/N, from Slurm's and
//! Kubernetes' variables, refusals) and `qst merge` (every job line exactly
//! once, missing lines named with the command that completes their shard,
//! a line in two shards, another batch, merging twice, hard links).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::util::*;

const SCHEDULER_VARS: [&str; 5] = [
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_COUNT",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_MAX",
    "JOB_COMPLETION_INDEX",
];

/// Environment variables of one case.
type Env<'a> = Vec<(&'a str, &'a str)>;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `cmd` without any scheduler variable of the test's environment, plus
/// `env`.
fn scheduled(cmd: Qst, env: &[(&str, &str)]) -> Qst {
    let cmd = SCHEDULER_VARS
        .iter()
        .fold(cmd, super::util::Qst::env_remove);
    env.iter().fold(cmd, |c, (k, v)| c.env(k, v))
}

/// `qst run BATCH --out OUT`, no scheduler variable set.
fn run_into(t: &Tmp, batch: &Path, out: &Path) -> Qst {
    scheduled(t.qst_run(batch).out(out), &[])
}

/// `qst merge OUT SHARD…`, no scheduler variable set.
fn merge<P: AsRef<Path>>(t: &Tmp, out: &Path, shards: &[P]) -> Qst {
    scheduled(t.qst_merge(out, shards), &[])
}

/// A batch of `jobs` quick jobs with a comment first, a blank line and a
/// comment in the middle (they are not job lines).
fn batch(t: &Tmp, name: &str, jobs: u64, seed: u64) -> PathBuf {
    let mut lines = vec!["# a comment".to_string()];
    for k in 0..jobs {
        if k == 3 {
            lines.push(String::new());
            lines.push("   # another".into());
        }
        lines.push(quick_job(&format!("j{k}"), seed + k));
    }
    let p = t.join(name);
    write_lines(&p, &lines);
    p
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Runs shard `i/n` of `batch` into `out`; asserts exit 0.
fn run_shard(t: &Tmp, batch: &Path, out: &Path, i: usize, n: usize) {
    run_into(t, batch, out)
        .workers(2)
        .shard(&format!("{i}/{n}"))
        .assert_ok();
}

/// The `line`s of `out/results.jsonl`, sorted.
fn lines_of(out: &Path) -> Vec<u64> {
    let mut v: Vec<u64> = results(out)
        .iter()
        .map(|r| r["line"].as_u64().expect("line"))
        .collect();
    v.sort_unstable();
    v
}

/// The job lines of shard i of n.
fn expected(batch: &Path, i: usize, n: usize) -> Vec<u64> {
    job_lines(batch)
        .into_iter()
        .enumerate()
        .filter(|(j, _)| j % n == i)
        .map(|(_, l)| l)
        .collect()
}

fn shard_json(out: &Path) -> Value {
    serde_json::from_str(&read(&out.join("shard.json"))).expect("shard.json")
}

/// Every file under `dir`, relative path → bytes.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, d: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in fs::read_dir(d).expect("read dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).expect("under root").to_path_buf();
                out.insert(rel, fs::read(&p).expect("read file"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// A result without the fields that depend on who ran it and when.
fn comparable(mut r: Value) -> Value {
    if let Some(m) = r.as_object_mut() {
        for k in ["seconds", "worker", "started"] {
            m.remove(k);
        }
    }
    r
}

#[test]
fn three_shards_merge_into_the_plain_runs_output_exactly_once() {
    let t = Tmp::new();
    let b = batch(&t, "b.jsonl", 8, 1);
    let plain = t.join("plain");
    run_into(&t, &b, &plain).workers(2).assert_ok();

    let dirs: Vec<PathBuf> = (0..3)
        .map(|i| t.join(&format!("shards/shard-{i}")))
        .collect();
    for (i, d) in dirs.iter().enumerate() {
        run_shard(&t, &b, d, i, 3);
        assert_eq!(lines_of(d), expected(&b, i, 3), "shard {i}/3");
        let sj = shard_json(d);
        assert_eq!(
            (sj["shard"].as_u64(), sj["of"].as_u64()),
            (Some(i as u64), Some(3))
        );
        assert_eq!(sj["batch_jobs"], 8);
        assert_eq!(
            sj["fingerprint"].as_str().unwrap(),
            read(&d.join("batch.fingerprint")).trim()
        );
        let resume = sj["resume"].as_str().unwrap();
        assert!(resume.contains(&format!("--shard {i}/3")), "{resume}");
        assert!(resume.contains("--resume"), "{resume}");
    }
    // Together they hold every job line once.
    let mut all: Vec<u64> = dirs.iter().flat_map(|d| lines_of(d)).collect();
    all.sort_unstable();
    assert_eq!(all, job_lines(&b));

    let out = t.join("merged");
    let ran = merge(&t, &out, &dirs).assert_ok();
    // Results in line order, the same as the plain run's.
    let merged = ran.results();
    let lines: Vec<u64> = merged.iter().map(|r| r["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, job_lines(&b));
    let plain_by_line = results_by_line(&plain);
    for r in &merged {
        let line = r["line"].as_u64().unwrap();
        assert_eq!(
            comparable(r.clone()),
            comparable(plain_by_line[&line].clone())
        );
        let rho = r["rho"].as_str().unwrap();
        assert_eq!(
            fs::read(out.join(rho)).unwrap(),
            fs::read(plain.join(rho)).unwrap(),
            "{rho} differs from the plain run's"
        );
        // A hard link to the shard's file (one file system here).
        let shard = &dirs[job_lines(&b).iter().position(|&l| l == line).unwrap() % 3];
        let (a, m) = (
            fs::metadata(out.join(rho)).unwrap(),
            fs::metadata(shard.join(rho)).unwrap(),
        );
        assert_eq!(
            (a.dev(), a.ino()),
            (m.dev(), m.ino()),
            "{rho} is not a hard link"
        );
    }
    assert!(ran.stdout.contains("8 rho files linked, 0 copied"));
    // On another file system the ρ files are copies.
    let elsewhere = tempfile::tempdir().unwrap();
    if fs::metadata(elsewhere.path()).unwrap().dev() != fs::metadata(t.path()).unwrap().dev() {
        let other = elsewhere.path().join("merged");
        let o = merge(&t, &other, &dirs).assert_ok();
        assert!(o.stdout.contains("0 rho files linked, 8 copied"));
        assert_eq!(
            fs::read(other.join("rho/j0.npy")).unwrap(),
            fs::read(plain.join("rho/j0.npy")).unwrap()
        );
    }
    // Summaries rebuilt from all lines; logs per shard.
    let csv = read(&out.join("summary.csv"));
    assert_eq!(csv.matches("\r\n").count(), 9, "{csv}");
    let summary = ran.summary();
    assert_eq!(
        (summary["jobs"].as_u64(), summary["ok"].as_u64()),
        (Some(8), Some(8))
    );
    for i in 0..3 {
        let log = out.join(format!("logs/shard-{i}/supervisor.log"));
        assert!(read(&log).contains("run batch="), "{}", log.display());
        assert!(out.join(format!("logs/shard-{i}/worker-0.log")).is_file());
    }
    assert_eq!(
        read(&out.join("batch.fingerprint")),
        read(&dirs[0].join("batch.fingerprint"))
    );

    // Merging again (shards in another order) gives the same OUT, byte for byte.
    let before = tree(&out);
    let reversed: Vec<&PathBuf> = dirs.iter().rev().collect();
    let again = merge(&t, &out, &reversed);
    again.assert_ok();
    assert_eq!(tree(&out), before, "a second merge changed OUT");
    // An interrupted merge (its staging directory left behind, one entry
    // moved aside) is redone by a rerun, to the same OUT.
    fs::create_dir_all(out.join(".qst-merge/old")).unwrap();
    fs::rename(
        out.join("results.jsonl"),
        out.join(".qst-merge/old/results.jsonl"),
    )
    .unwrap();
    fs::remove_file(out.join("merge.json")).unwrap();
    again.assert_ok();
    assert_eq!(
        tree(&out),
        before,
        "rerunning an interrupted merge changed OUT"
    );
    assert!(!out.join(".qst-merge").exists());

    // A plain run's output is never merged over.
    let o = merge(&t, &plain, &dirs).assert_exit(2);
    assert!(o.stderr.contains("not of a merge"), "{}", o.stderr);
}

#[test]
fn shard_slurm_and_k8s_read_the_schedulers_variables_and_bad_specs_are_refused() {
    let t = Tmp::new();
    let b = batch(&t, "b.jsonl", 5, 3);
    let out = t.join("slurm-1");
    let env = [
        ("SLURM_ARRAY_TASK_ID", "1"),
        ("SLURM_ARRAY_TASK_COUNT", "2"),
        ("SLURM_ARRAY_TASK_MIN", "0"),
        ("SLURM_ARRAY_TASK_MAX", "1"),
    ];
    scheduled(t.qst_run(&b).out(&out).shard("slurm"), &env).assert_ok();
    assert_eq!(lines_of(&out), expected(&b, 1, 2));
    let sj = shard_json(&out);
    assert_eq!(
        (sj["shard"].as_u64(), sj["of"].as_u64()),
        (Some(1), Some(2))
    );
    // Its resume command names the resolved shard (it runs outside Slurm too).
    assert!(sj["resume"].as_str().unwrap().contains("--shard 1/2"));

    let out = t.join("k8s-0");
    let k8s = t.qst_run(&b).out(&out).shard("k8s/3");
    scheduled(k8s, &[("JOB_COMPLETION_INDEX", "0")]).assert_ok();
    assert_eq!(lines_of(&out), expected(&b, 0, 3));

    // Refusals: exit 2, one sentence, nothing created.
    let gaps = [
        ("SLURM_ARRAY_TASK_ID", "5"),
        ("SLURM_ARRAY_TASK_COUNT", "3"),
        ("SLURM_ARRAY_TASK_MIN", "3"),
        ("SLURM_ARRAY_TASK_MAX", "9"),
    ];
    let low_gap = [
        ("SLURM_ARRAY_TASK_ID", "0"),
        ("SLURM_ARRAY_TASK_COUNT", "3"),
        ("SLURM_ARRAY_TASK_MIN", "0"),
        ("SLURM_ARRAY_TASK_MAX", "5"),
    ];
    let cases: Vec<(&str, Env, &str)> = vec![
        ("slurm", gaps.to_vec(), "--array=0-2"),
        ("slurm", low_gap.to_vec(), "--array=0-2"),
        ("slurm", vec![], "SLURM_ARRAY_TASK_ID is not set"),
        (
            "slurm",
            vec![
                ("SLURM_ARRAY_TASK_ID", "x"),
                ("SLURM_ARRAY_TASK_COUNT", "2"),
            ],
            "not a whole number",
        ),
        ("k8s/3", vec![("JOB_COMPLETION_INDEX", "3")], "not below 3"),
        ("k8s/3", vec![], "JOB_COMPLETION_INDEX is not set"),
        ("3/3", vec![], "not below the shard count"),
        ("1/0", vec![], "at least 1"),
        ("two/3", vec![], "expected i/N"),
        ("1-3", vec![], "expected i/N"),
    ];
    for (k, (spec, env, says)) in cases.iter().enumerate() {
        let out = t.join(&format!("refused-{k}"));
        let o = scheduled(t.qst_run(&b).out(&out).shard(spec), env).output();
        let err = &o.stderr;
        assert_eq!(o.code(), Some(2), "--shard {spec} {env:?}: {err}");
        assert!(err.contains(says), "--shard {spec} {env:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(!out.exists(), "--shard {spec} created {}", out.display());
    }

    // A shard's directory resumes only as that shard.
    let out = t.join("slurm-1");
    let resume = run_into(&t, &b, &out).resume();
    let o = resume.clone().shard("0/2").assert_exit(2);
    assert!(o.stderr.contains("holds shard 1/2"), "{}", o.stderr);
    let o = resume.clone().assert_exit(2);
    assert!(o.stderr.contains("pass --shard 1/2"), "{}", o.stderr);
    resume.shard("1/2").assert_ok();
    assert_eq!(lines_of(&out), expected(&b, 1, 2));
}

#[test]
fn merge_names_missing_lines_with_the_command_that_completes_their_shard() {
    let t = Tmp::new();
    let b = batch(&t, "b.jsonl", 7, 5);
    let d0 = t.join("sh/shard-0");
    let d1 = t.join("sh/shard-1");
    run_shard(&t, &b, &d0, 0, 2);
    run_shard(&t, &b, &d1, 1, 2);
    let out = t.join("out");

    // Shard 1 not given: its lines are named, with a command that runs it.
    let err = merge(&t, &out, &[&d0]).assert_exit(1).stderr;
    let want: Vec<String> = expected(&b, 1, 2).iter().map(u64::to_string).collect();
    assert!(
        err.contains(&format!("(lines {})", want.join(", "))),
        "{err}"
    );
    assert!(
        err.contains(&format!("qst run {} --shard 1/2 --out {}", s(&b), s(&d1))),
        "{err}"
    );
    assert!(!out.exists(), "an incomplete merge wrote {}", out.display());

    // Shard 1 interrupted (its last result lost): that line, and its resume command.
    let results_1 = d1.join("results.jsonl");
    let text = read(&results_1);
    let mut kept: Vec<&str> = text.lines().collect();
    let lost: Value = serde_json::from_str(kept.pop().unwrap()).unwrap();
    fs::write(&results_1, kept.join("\n") + "\n").unwrap();
    let err = merge(&t, &out, &[&d0, &d1]).assert_exit(1).stderr;
    assert!(
        err.contains(&format!("1 line without a result (line {})", lost["line"])),
        "{err}"
    );
    let resume = shard_json(&d1)["resume"].as_str().unwrap().to_string();
    assert!(err.contains(&resume), "{err}");
    assert!(!out.exists());

    // That command completes the shard; then the merge goes through.
    let words: Vec<&str> = resume.split_whitespace().collect();
    assert_eq!(words[0], "qst");
    scheduled(t.qst(&words[1..]), &[]).assert_ok();
    let lines: Vec<u64> = merge(&t, &out, &[&d0, &d1])
        .assert_ok()
        .results()
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, job_lines(&b));
}

#[test]
fn merge_refuses_a_line_in_two_shards_other_batches_and_other_shard_counts() {
    let t = Tmp::new();
    let b = batch(&t, "b.jsonl", 6, 7);
    let d0 = t.join("shard-0");
    let d1 = t.join("shard-1");
    run_shard(&t, &b, &d0, 0, 2);
    run_shard(&t, &b, &d1, 1, 2);
    let out = t.join("out");

    // A line of shard 0 in shard 1's results as well.
    let stray = read(&d0.join("results.jsonl"))
        .lines()
        .next()
        .unwrap()
        .to_string();
    let line: Value = serde_json::from_str(&stray).unwrap();
    let d1x = t.join("shard-1x");
    fs::create_dir_all(&d1x).unwrap();
    for f in ["results.jsonl", "shard.json", "batch.fingerprint"] {
        fs::copy(d1.join(f), d1x.join(f)).unwrap();
    }
    let mut text = read(&d1x.join("results.jsonl"));
    text.push_str(&stray);
    text.push('\n');
    fs::write(d1x.join("results.jsonl"), text).unwrap();
    let err = merge(&t, &out, &[&d0, &d1x]).assert_exit(1).stderr;
    assert!(
        err.contains(&format!(
            "result for line {}, which belongs to shard 0/2",
            line["line"]
        )),
        "{err}"
    );
    assert!(!out.exists());
    // The same shard twice.
    let err = merge(&t, &out, &[&d1, &d1x, &d0]).assert_exit(2).stderr;
    assert!(err.contains("both hold shard 1/2"), "{err}");

    // A shard of another batch.
    let other = batch(&t, "other.jsonl", 6, 100);
    let o1 = t.join("other-1");
    run_shard(&t, &other, &o1, 1, 2);
    let err = merge(&t, &out, &[&d0, &o1]).assert_exit(2).stderr;
    assert!(err.contains("ran a different batch"), "{err}");

    // Another number of shards.
    let t3 = t.join("three-1");
    run_shard(&t, &b, &t3, 1, 3);
    let err = merge(&t, &out, &[&d0, &t3]).assert_exit(2).stderr;
    assert!(err.contains("same number of shards"), "{err}");

    // Not a shard at all.
    let plain = t.join("plain");
    run_into(&t, &b, &plain).assert_ok();
    let err = merge(&t, &out, &[&d0, &plain]).assert_exit(2).stderr;
    assert!(err.contains("has no shard.json"), "{err}");

    // The batch changed after its shards ran.
    let mut text = read(&b);
    text.push_str(&quick_job("late", 9));
    text.push('\n');
    fs::write(&b, text).unwrap();
    let err = merge(&t, &out, &[&d0, &d1]).assert_exit(2).stderr;
    assert!(err.contains("changed since its shards ran"), "{err}");
    assert!(!out.exists());
}

#[test]
fn csv_columns_are_sharded_from_zero_and_merge_back() {
    let t = Tmp::new();
    let cols: Vec<Vec<String>> = (1..=5u64)
        .map(|seed| {
            test_counts(2, seed, 1e5)
                .iter()
                .map(|c| format!("{c}"))
                .collect()
        })
        .collect();
    let mut text = String::new();
    for r in 0..cols[0].len() {
        let row: Vec<&str> = cols.iter().map(|c| c[r].as_str()).collect();
        text.push_str(&row.join(","));
        text.push('\n');
    }
    let b = t.join("lab.csv");
    fs::write(&b, text).unwrap();
    let d0 = t.join("c0");
    let d1 = t.join("c1");
    run_shard(&t, &b, &d0, 0, 2);
    run_shard(&t, &b, &d1, 1, 2);
    assert_eq!(lines_of(&d0), vec![1, 3, 5]);
    assert_eq!(lines_of(&d1), vec![2, 4]);
    let out = t.join("out");
    let ids: Vec<String> = merge(&t, &out, &[&d1, &d0])
        .assert_ok()
        .results()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["lab-1", "lab-2", "lab-3", "lab-4", "lab-5"]);
}

#[test]
fn qst_slurm_prebuilds_and_writes_scripts_that_run_the_shards_and_the_merge() {
    let t = Tmp::new();
    let b = batch(&t, "b.jsonl", 7, 11);
    let cache = t.join("shared-cache");
    let slurm = t.qst(["slurm".as_ref(), b.as_os_str()]);
    let say = scheduled(slurm, &[])
        .args(["--shards", "3", "--cpus-per-task", "2", "--time", "0:30:00"])
        .args(["--partition", "short", "--cache", s(&cache)])
        .assert_ok()
        .stdout;
    // Prebuilt on the submitting node.
    assert!(cache.join("nopovm_n4.npy").is_file());
    let dir = t.join("b.qst/slurm");
    let array = read(&dir.join("array.sh"));
    for want in [
        "#SBATCH --array=0-2\n",
        "#SBATCH --cpus-per-task=2\n",
        "#SBATCH --time=0:30:00\n",
        "#SBATCH --partition=short\n",
        &format!("#SBATCH --output={}/logs/array-%A_%a.out\n", s(&dir)),
        &format!("{} run {} --shard slurm", s(&qst_bin()), s(&b)),
        &format!("--cache {} --resume", s(&cache)),
    ] {
        assert!(array.contains(want), "array.sh lacks {want:?}:\n{array}");
    }
    let merge = read(&dir.join("merge.sh"));
    assert!(merge.contains(&format!(
        "{} merge {} {}/shard-0 {}/shard-1 {}/shard-2\n",
        s(&qst_bin()),
        s(&t.join("b.qst")),
        s(&dir),
        s(&dir),
        s(&dir)
    )));
    assert!(
        say.contains("sbatch --parsable") && say.contains("--dependency=afterok:"),
        "{say}"
    );

    // The scripts themselves, run as Slurm would run them (its variables set).
    for i in 0..3 {
        let id = i.to_string();
        let o = Command::new("bash")
            .arg(dir.join("array.sh"))
            .env("SLURM_ARRAY_TASK_ID", &id)
            .env("SLURM_ARRAY_TASK_COUNT", "3")
            .env("SLURM_ARRAY_TASK_MIN", "0")
            .env("SLURM_ARRAY_TASK_MAX", "2")
            .env("SLURM_CPUS_PER_TASK", "2")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "task {i}: {}", stderr(&o));
        assert_eq!(
            lines_of(&dir.join(format!("shard-{i}"))),
            expected(&b, i, 3)
        );
    }
    let o = Command::new("bash")
        .arg(dir.join("merge.sh"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines: Vec<u64> = results(&t.join("b.qst"))
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, job_lines(&b));

    // Bad flags: exit 2, one sentence. No sbatch: exit 2, the scripts stay.
    for (args, says) in [
        (vec!["--shards", "0"], "at least 1"),
        (vec!["--shards", "2", "--time", "1 h"], "one word"),
        (vec!["--shards", "2", "--submit"], "failed to run sbatch"),
    ] {
        let a = vec!["slurm", s(&b), "--out", "o2", "--cache", s(&cache)];
        let cmd = scheduled(t.qst(a).args(&args), &[("PATH", "/nonexistent")]);
        let err = cmd.assert_exit(2).stderr;
        assert!(err.contains(says), "{}: {err}", cmd.describe());
    }
}

/// Shards of a batch run with several methods merge into one result per
/// (line, method), in line order with a sample's methods side by side.
#[test]
fn shards_with_several_methods_merge_per_line_and_method() {
    let t = Tmp::new();
    let b = batch(&t, "multi.jsonl", 5, 9);
    for i in 0..2 {
        let out = t.join(&format!("s{i}"));
        run_into(&t, &b, &out)
            .shard(&format!("{i}/2"))
            .method("mle,linear")
            .workers(1)
            .assert_ok();
    }
    let merged = t.join("merged");
    let rs = merge(&t, &merged, &[t.join("s0"), t.join("s1")])
        .assert_ok()
        .results();
    assert_eq!(rs.len(), 10, "5 lines × 2 methods");
    let keys: Vec<(u64, String)> = rs
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["method"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 10, "each (line, method) once");
    for pair in keys.chunks(2) {
        assert_eq!(pair[0].0, pair[1].0);
        assert_eq!((pair[0].1.as_str(), pair[1].1.as_str()), ("mle", "linear"));
    }
    for r in &rs {
        assert!(merged.join(r["rho"].as_str().unwrap()).is_file(), "{r}");
    }
}
