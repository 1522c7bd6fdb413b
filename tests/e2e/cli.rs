//! The command line a physicist keeps using: `--version` with the commit,
//! provenance and one workers list in `summary.json`, the error digest,
//! `--quiet`/`--verbose`, demo and gen that never remove foreign files, the
//! demo table per (dimension, method), completions and the man page, and the
//! progress of a projector file's build.

use std::fs;
use std::process::{Command, Stdio};

use crate::util::*;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
fn is_utc_iso8601(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

#[test]
fn version_names_the_commit() {
    let text = Tmp::new().qst(["--version"]).assert_ok().stdout;
    let rest = text
        .trim()
        .strip_prefix(&format!("qst {} (commit ", env!("CARGO_PKG_VERSION")))
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{text:?}"));
    let hash = rest.strip_suffix("-dirty").unwrap_or(rest);
    assert!(
        hash == "unknown" || (hash.len() >= 4 && hash.bytes().all(|b| b.is_ascii_hexdigit())),
        "{text:?}"
    );
}

#[test]
fn summary_json_has_provenance_and_one_entry_per_worker_slot() {
    let t = Tmp::new();
    let batch = t.join("b.jsonl");
    let lines: Vec<String> = (0..6).map(|i| quick_job(&format!("q{i}"), i)).collect();
    write_lines(&batch, &lines);
    let ran = t.qst_run("b.jsonl").workers(2).assert_ok();
    let out = t.join("b.qst");
    assert_eq!(ran.out(), out);
    let s = ran.summary();
    let p = &s["provenance"];
    assert_eq!(p["qst_version"], env!("CARGO_PKG_VERSION"));
    let version = t.qst(["--version"]).assert_ok().stdout;
    let commit = p["commit"].as_str().unwrap();
    assert!(
        version.contains(&format!("(commit {commit})")),
        "{version} {p}"
    );
    let argv: Vec<&str> = p["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(&argv[1..], ["run", "b.jsonl", "--workers", "2"]);
    for k in ["started", "ended"] {
        assert!(is_utc_iso8601(p[k].as_str().unwrap()), "{k}: {p}");
    }
    assert!(p["started"].as_str() <= p["ended"].as_str());
    assert!(!p["host"].as_str().unwrap().is_empty());
    assert!(!p["user"].as_str().unwrap().is_empty());
    assert_eq!(p["cache_dir"], t.join("cache").to_str().unwrap());
    assert_eq!(p["batch"], batch.to_str().unwrap());
    assert_eq!(
        p["batch_fingerprint"].as_str().unwrap(),
        read(&out.join("batch.fingerprint")).trim()
    );
    assert_eq!(p["workers"], 2);
    assert_eq!(p["resume"], false);

    // One list, one entry per slot, its incarnations nested.
    for gone in [
        "workers_from_results",
        "latest_run_workers",
        "earlier_runs_workers",
    ] {
        assert!(s.get(gone).is_none(), "{gone} is still there");
    }
    let workers = s["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2, "{s}");
    let mut jobs = 0;
    for (i, w) in workers.iter().enumerate() {
        assert_eq!(w["slot"], i);
        let incs = w["incarnations"].as_array().unwrap();
        assert_eq!(incs.len(), 1, "{w}");
        assert_eq!(incs[0]["exit"], "exit status 0");
        assert!(incs[0]["pid"].as_u64().unwrap() > 0);
        assert_eq!(w["jobs"], incs[0]["jobs"]);
        assert!(w["peak_rss_bytes"].as_u64().unwrap() > 0);
        assert!(w["peak_pss_bytes"].is_u64());
        assert!(w["busy_seconds"].as_f64().unwrap() >= 0.0);
        jobs += w["jobs"].as_u64().unwrap();
    }
    assert_eq!(jobs, 6);

    // A resumed run adds its incarnations; provenance is the latest run's.
    let text = read(&out.join("results.jsonl"));
    let kept: Vec<&str> = text.lines().take(4).collect();
    fs::write(out.join("results.jsonl"), kept.join("\n") + "\n").unwrap();
    let s = t
        .qst_run("b.jsonl")
        .workers(1)
        .resume()
        .assert_ok()
        .summary();
    assert_eq!(s["provenance"]["resume"], true);
    assert_eq!(s["provenance"]["workers"], 1);
    let incs: usize = s["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["incarnations"].as_array().unwrap().len())
        .sum();
    assert_eq!(incs, 3, "{s}");
    let jobs: u64 = s["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["jobs"].as_u64().unwrap())
        .sum();
    assert_eq!(jobs, 8, "6 jobs, then 2 again: {s}");
}

/// A batch of one good job and errors of seven kinds, the first most often.
fn failing_batch(t: &Tmp) -> std::path::PathBuf {
    let mut lines = vec![quick_job("good", 1)];
    for i in 0..7 {
        lines.push(format!(
            r#"{{"id":"short{i}","dim":4,"counts":[{}]}}"#,
            vec!["1"; i + 1].join(",")
        ));
    }
    lines.push("not json".into());
    lines.push("not json either".into());
    lines.push(r#"{"id":"b1","dim":1,"counts":[1]}"#.into());
    lines.push(r#"{"id":"c1","dim":2,"counts":[1,-2,3,4]}"#.into());
    lines.push(r#"{"id":"d1","dim":2}"#.into());
    lines.push(r#"{"id":"e1","dim":2,"counts":[1,2,3,4],"method":"magic"}"#.into());
    lines.push(r#"{"id":"f1","dim":2,"counts":[1,2,3,4],"bogus":1}"#.into());
    let batch = t.join("bad.jsonl");
    write_lines(&batch, &lines);
    batch
}

#[test]
fn a_run_with_failures_ends_with_an_error_digest() {
    let t = Tmp::new();
    failing_batch(&t);
    let out = t.join("bad.qst");
    let ran = t.qst_run("bad.jsonl").workers(1).assert_exit(1);
    // The digest counts what results.jsonl holds: 15 results, 14 errors.
    let rs = ran.results();
    assert_eq!(rs.len(), 15);
    assert_eq!(rs.iter().filter(|r| r["status"] == "error").count(), 14);
    let err = ran.stderr;
    let lines: Vec<&str> = err.lines().collect();
    let head = lines
        .iter()
        .position(|l| l.contains("of 15 results are errors"))
        .unwrap_or_else(|| panic!("no digest in {err}"));
    assert!(
        lines[head].contains("(7 kinds); the 5 most frequent"),
        "{err}"
    );
    // The most frequent kind first, with its count and one example.
    assert_eq!(
        lines[head + 1].trim(),
        "7 × field counts has N entries, but dim N (design nopovm) needs N"
    );
    assert!(
        lines[head + 2]
            .trim()
            .starts_with("e.g. line 2 (id \"short0\"): field counts has 1 entries"),
        "{err}"
    );
    assert!(
        lines[head + 3].trim().starts_with("2 × not valid JSON"),
        "{err}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.contains(" × ")).count(),
        5,
        "{err}"
    );
    let results = out.join("results.jsonl");
    let csv = out.join("summary.csv");
    assert!(
        err.contains(&results.display().to_string()) && err.contains(&csv.display().to_string()),
        "{err}"
    );
    // The final line comes last.
    assert!(lines.last().unwrap().contains("results written"), "{err}");

    // A run without errors has no digest.
    let t2 = Tmp::new();
    write_lines(&t2.join("g.jsonl"), &[quick_job("g", 1)]);
    let o = t2.qst_run("g.jsonl").workers(1).assert_ok();
    assert!(!o.stderr.contains("errors"), "{}", o.stderr);
}

#[test]
fn quiet_prints_only_errors_and_the_final_line_and_verbose_adds_the_log() {
    let t = Tmp::new();
    failing_batch(&t);
    let err = t
        .qst_run("bad.jsonl")
        .workers(1)
        .arg("--quiet")
        .assert_exit(1)
        .stderr;
    assert!(!err.contains("jobs done"), "no progress: {err}");
    assert!(
        err.contains("results are errors"),
        "the digest stays: {err}"
    );
    assert!(
        err.trim_end()
            .lines()
            .last()
            .unwrap()
            .contains("15 results written")
    );
    t.qst_run("bad.jsonl").arg("-q").out("q2").assert_exit(1);

    let err = t
        .qst_run("bad.jsonl")
        .workers(1)
        .arg("-v")
        .out("v")
        .assert_exit(1)
        .stderr;
    assert!(err.contains("run batch="), "{err}");
    assert!(err.contains("spawned slot=0"), "{err}");
    assert!(read(&t.join("v/logs/supervisor.log")).contains("run batch="));

    // --quiet and --verbose conflict.
    t.qst_run("bad.jsonl").args(["-q", "-v"]).assert_exit(2);
}

#[test]
fn gen_refuses_to_overwrite_and_force_removes_only_its_own_truth_files() {
    let t = Tmp::new();
    let gen_ = t
        .qst_gen("b.jsonl")
        .args(["--dims", "2,4", "--per-dim", "2"]);
    gen_.assert_ok();
    let first = read(&t.join("b.jsonl"));
    let truth = t.join("b_truth");
    fs::write(truth.join("my-notes.txt"), "mine").unwrap();

    let o = gen_.args(["--seed", "2"]).assert_exit(2);
    assert!(o.stderr.contains("--force"), "{}", o.stderr);
    assert_eq!(read(&t.join("b.jsonl")), first, "not overwritten");

    t.qst_gen("b.jsonl")
        .args(["--dims", "2", "--per-dim", "1", "--force"])
        .assert_ok();
    let mut names: Vec<String> = fs::read_dir(&truth)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [".qst-gen-manifest", "my-notes.txt", "n2-0000.npy"],
        "stale truth files removed, the foreign one kept"
    );
    assert_eq!(read(&truth.join("my-notes.txt")), "mine");

    // A truth file that qst gen did not write is not overwritten either.
    fs::create_dir(t.join("c_truth")).unwrap();
    fs::write(t.join("c_truth/n2-0000.npy"), "theirs").unwrap();
    let o = t
        .qst_gen("c.jsonl")
        .args(["--dims", "2", "--per-dim", "1"])
        .assert_exit(2);
    assert!(
        o.stderr.contains("qst gen did not write it"),
        "{}",
        o.stderr
    );
    assert_eq!(read(&t.join("c_truth/n2-0000.npy")), "theirs");
    assert!(!t.join("c.jsonl").exists());
}

#[test]
fn demo_never_removes_foreign_files_and_refuses_a_directory_it_did_not_make() {
    let t = Tmp::new();
    let out = t.join("qst-demo");
    fs::create_dir(&out).unwrap();
    fs::write(out.join("thesis.tex"), "mine").unwrap();
    let o = t.qst_demo().workers(2).assert_exit(2);
    assert!(o.stderr.contains("--force"), "{}", o.stderr);
    assert_eq!(fs::read_dir(&out).unwrap().count(), 1);

    let o = t
        .qst_demo()
        .workers(2)
        .args(["--force", "--quiet"])
        .assert_ok();
    assert_eq!(o.out(), out);
    assert!(out.join(".qst-demo").is_file());
    let jobs = result_count(&out);
    assert!(jobs > 0);
    // The table: one row per (dimension, method).
    let table = &o.stdout;
    let rows: Vec<Vec<&str>> = table
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("results:"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    let mut keys: Vec<(&str, &str)> = rows.iter().map(|r| (r[0], r[1])).collect();
    let n = keys.len();
    keys.dedup();
    assert_eq!(keys.len(), n, "{table}");
    assert!(
        keys.contains(&("2", "mle")) && keys.contains(&("2", "linear")),
        "{table}"
    );

    // Again: the marker says the demo owns its files; foreign ones stay,
    // even inside the directories the demo writes to.
    fs::write(out.join("rho/keep.npy"), "mine").unwrap();
    fs::write(out.join("logs/notes.txt"), "mine").unwrap();
    fs::write(out.join("demo_truth/notes.txt"), "mine").unwrap();
    t.qst_demo().workers(2).arg("--quiet").assert_ok();
    assert_eq!(result_count(&out), jobs, "results replaced, not appended");
    for f in [
        "thesis.tex",
        "rho/keep.npy",
        "logs/notes.txt",
        "demo_truth/notes.txt",
    ] {
        assert_eq!(read(&out.join(f)), "mine", "{f}");
    }
}

#[test]
fn completions_and_the_man_page_come_from_the_command_definitions() {
    let t = Tmp::new();
    for shell in ["bash", "zsh", "fish"] {
        let text = t.qst(["completions", shell]).assert_ok().stdout;
        assert!(text.len() > 100, "{shell}: {text}");
        assert!(text.contains("run") && text.contains("workers"), "{shell}");
        if shell == "bash" {
            assert!(text.contains("--workers"), "{text}");
            let path = t.join("qst.bash");
            fs::write(&path, &text).unwrap();
            if let Ok(st) = Command::new("bash")
                .arg("-n")
                .arg(&path)
                .stdin(Stdio::null())
                .status()
            {
                assert!(st.success(), "bash -n rejects the completion script");
            }
        }
    }
    t.qst(["completions", "tcsh"]).assert_exit(2);

    let man = t.qst(["man"]).assert_ok().stdout;
    assert!(man.lines().any(|l| l.starts_with(".TH qst 1")), "{man}");
    assert!(man.contains("demo") && man.contains("completions"), "{man}");

    // Help is wrapped at the terminal's width ($COLUMNS without a terminal).
    let help = t
        .qst(["run", "--help"])
        .env("COLUMNS", "60")
        .output()
        .stdout;
    assert!(help.contains("--workers"));
    assert!(help.lines().all(|l| l.chars().count() <= 60), "{help}");
}

#[test]
fn a_projector_build_is_logged_and_shows_its_bytes_on_a_terminal() {
    let t = Tmp::new();
    write_lines(
        &t.join("b.jsonl"),
        &[job_json("x", 16, &test_counts(16, 1, 1e6), "")],
    );
    let ran = t.qst_run("b.jsonl").workers(1).assert_ok();
    let log = read(&ran.out().join("logs/supervisor.log"));
    let start = log
        .find("building projector file")
        .unwrap_or_else(|| panic!("{log}"));
    let end = log
        .find("built projector file")
        .unwrap_or_else(|| panic!("{log}"));
    assert!(start < end, "{log}");
    assert!(log[start..].contains("bytes=1048704"), "{log}");

    // On a terminal (a pseudo-terminal from script(1), where there is one):
    // a bar of bytes written.
    if Command::new("script").arg("--version").output().is_err() {
        return;
    }
    let cmd = format!("{} prebuild --dims 32", qst_bin().display());
    let o = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .env("QST_CACHE_DIR", t.join("cache"))
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = stdout(&o);
    assert!(o.status.success(), "{text}");
    assert!(text.contains("building nopovm_n32.npy"), "{text:?}");
    assert!(text.contains("16.00 MiB/16.00 MiB"), "{text:?}");
    assert!(text.contains("nopovm_n32.npy (built)"), "{text:?}");
    // Not on a terminal: no bar.
    let o = t.qst_prebuild("24").assert_ok();
    assert!(!o.stderr.contains("building"), "{}", o.stderr);
}

/// The projector files (`*.npy`) in a cache directory.
fn cached_sets(cache: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(cache)
        .map(|d| {
            d.filter_map(std::result::Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".npy"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn demo_passes_max_cache_bytes_to_its_run() {
    let t = Tmp::new();
    let cache = t.join("cache");
    // A budget of one byte: no projector file fits, every job runs from kets.
    let tiny = t
        .qst_demo()
        .workers(2)
        .args(["--quiet", "--max-cache-bytes", "1"])
        .out(t.join("tiny"))
        .assert_ok();
    let jobs = tiny.results().len();
    assert!(jobs > 0);
    assert_eq!(cached_sets(&cache), Vec::<String>::new());
    // The default budget: the same demo writes its projector files.
    let default = t
        .qst_demo()
        .workers(2)
        .arg("--quiet")
        .out(t.join("default"))
        .assert_ok();
    assert_eq!(default.results().len(), jobs);
    assert!(
        cached_sets(&cache).contains(&"nopovm_n2.npy".to_string()),
        "{:?}",
        cached_sets(&cache)
    );
}
