//! Real processes: this test binary re-executes itself (`--exact <test>`)
//! with `QST_STORE_CHILD` set, and the same test function then plays the child.

use qst_math::Design;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use qst_store::{BuildAction, ProjectorCache, Store, StoreConfig};

use crate::{names, store};

const CHILD: &str = "QST_STORE_CHILD";
const DIR: &str = "QST_STORE_CHILD_DIR";

/// Starts this test binary as a child running `test` in child mode.
fn spawn_child(test: &str, dir: &Path, envs: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env(DIR, dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

fn child_dir() -> PathBuf {
    PathBuf::from(std::env::var_os(DIR).expect("child mode needs its directory"))
}

/// The value after `key=` on the child's `RESULT` line.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key} in {line:?}"))
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn result_line(child: Child) -> String {
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "child failed: {stdout}");
    // The test harness prints "test <name> ... " on the same line, before ours.
    stdout
        .lines()
        .find_map(|l| l.find("RESULT ").map(|at| l[at..].to_string()))
        .unwrap_or_else(|| panic!("no RESULT in {stdout}"))
}

#[test]
fn four_processes_on_an_empty_cache_build_one_file() {
    const N: usize = 32;
    if std::env::var_os(CHILD).is_some() {
        // Child: announce, wait for the start signal, then race.
        let dir = child_dir();
        std::fs::write(dir.join(format!("ready-{}", std::process::id())), b"").unwrap();
        let deadline = Instant::now() + Duration::from_mins(2);
        while !dir.join("go").exists() {
            assert!(Instant::now() < deadline, "no start signal");
            std::thread::sleep(Duration::from_millis(1));
        }
        let s = store(&dir.join("cache"), 1 << 30);
        let p = s.prepare(Design::Nopovm, N).unwrap();
        let bytes = std::fs::read(s.path(Design::Nopovm, N)).unwrap();
        let action = match p.action {
            BuildAction::Built => "built",
            BuildAction::AlreadyValid => "valid",
            _ => "other",
        };
        println!(
            "RESULT action={action} len={} hash={:016x}",
            bytes.len(),
            fnv1a(&bytes)
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let children: Vec<Child> = (0..4)
        .map(|_| {
            spawn_child(
                "processes::four_processes_on_an_empty_cache_build_one_file",
                dir.path(),
                &[],
            )
        })
        .collect();
    let deadline = Instant::now() + Duration::from_mins(2);
    while names(dir.path())
        .iter()
        .filter(|n| n.starts_with("ready-"))
        .count()
        < 4
    {
        assert!(Instant::now() < deadline, "children did not start");
        std::thread::sleep(Duration::from_millis(1));
    }
    std::fs::write(dir.path().join("go"), b"").unwrap();
    let lines: Vec<String> = children.into_iter().map(result_line).collect();
    let actions: Vec<&str> = lines.iter().map(|l| field(l, "action")).collect();
    assert_eq!(
        actions.iter().filter(|a| **a == "built").count(),
        1,
        "{lines:?}"
    );
    assert_eq!(
        actions.iter().filter(|a| **a == "valid").count(),
        3,
        "{lines:?}"
    );
    let s = store(&dir.path().join("cache"), 1 << 30);
    let file = std::fs::read(s.path(Design::Nopovm, N)).unwrap();
    assert_eq!(
        file.len() as u64,
        Store::file_len(Design::Nopovm, N).unwrap()
    );
    let hash = format!("{:016x}", fnv1a(&file));
    for l in &lines {
        assert_eq!(field(l, "hash"), hash, "{lines:?}");
        assert_eq!(field(l, "len"), file.len().to_string());
    }
    assert!(s.verify().unwrap().iter().all(|r| r.problem.is_none()));
    // One valid file, its lock, and no temporary files.
    assert_eq!(
        names(&dir.path().join("cache")),
        ["nopovm_n32.npy", "nopovm_n32.npy.lock"]
    );
}

/// Sums `Pss` and `Rss` (bytes) over the mappings of `file` in `/proc/pid/smaps`.
fn smaps_of(pid: u32, file: &Path) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let target = file.to_string_lossy();
    let (mut pss, mut rss, mut inside) = (0, 0, false);
    for line in text.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            inside = line.ends_with(target.as_ref());
            continue;
        }
        if !inside {
            continue;
        }
        let kb = |rest: &str| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .unwrap()
                * 1024
        };
        if let Some(rest) = line.strip_prefix("Pss:") {
            pss += kb(rest);
        } else if let Some(rest) = line.strip_prefix("Rss:") {
            rss += kb(rest);
        }
    }
    (pss, rss)
}

#[test]
fn two_processes_mapping_a_256_mib_file_share_one_copy() {
    const N: usize = 64; // 64⁴ · 16 bytes = 256 MiB
    if std::env::var_os(CHILD).is_some() {
        // Child: map through the cache, read every byte, report, hold the map until stdin closes.
        let s = Store::new(StoreConfig {
            dir: child_dir(),
            max_bytes: 1 << 30,
        });
        let cache = ProjectorCache::new(s);
        let h = cache.builtin(Design::Nopovm, N).unwrap();
        let data = h.mapped().expect("the file is under budget").data_bytes();
        let sum = data.chunks(4096).fold(0u64, |acc, page| {
            acc.wrapping_add(u64::from(page[0])) ^ u64::from(page[page.len() - 1])
        });
        println!("READY {} {}", data.len(), std::hint::black_box(sum));
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        drop(h);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = dir.path().canonicalize().unwrap().join("cache");
    let s = store(&cache_dir, 1 << 30);
    s.ensure(Design::Nopovm, N).unwrap();
    let path = s.path(Design::Nopovm, N);
    let size = std::fs::metadata(&path).unwrap().len();
    assert_eq!(size, 256 * 1024 * 1024 + 128);

    let mut children: Vec<Child> = (0..2)
        .map(|_| {
            spawn_child(
                "processes::two_processes_mapping_a_256_mib_file_share_one_copy",
                &cache_dir,
                &[],
            )
        })
        .collect();
    let mut readers = Vec::new();
    for c in &mut children {
        let mut r = BufReader::new(c.stdout.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                r.read_line(&mut line).unwrap() > 0,
                "child ended before mapping the file"
            );
            if let Some(at) = line.find("READY ") {
                line = line[at..].to_string();
                break;
            }
        }
        assert_eq!(
            line.split_whitespace().nth(1),
            Some((256u64 * 1024 * 1024).to_string().as_str())
        );
        readers.push(r);
    }
    let figures: Vec<(u64, u64)> = children.iter().map(|c| smaps_of(c.id(), &path)).collect();
    for c in &mut children {
        drop(c.stdin.take());
    }
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    drop(readers);
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let pss: u64 = figures.iter().map(|f| f.0).sum();
    eprintln!(
        "pss per child {:?} MiB, rss per child {:?} MiB, summed pss {:.1} MiB, file {:.1} MiB",
        figures.iter().map(|f| mib(f.0)).collect::<Vec<_>>(),
        figures.iter().map(|f| mib(f.1)).collect::<Vec<_>>(),
        mib(pss),
        mib(size)
    );
    // Each child has the whole file resident...
    for &(_, rss) in &figures {
        assert!(
            rss as f64 >= 0.95 * size as f64,
            "rss {rss} of a {size}-byte file"
        );
    }
    // ...and the two together account for one copy, not two.
    let ratio = pss as f64 / size as f64;
    assert!(
        (0.9..=1.1).contains(&ratio),
        "summed Pss is {ratio:.3}× the file size"
    );
    drop(dir);
}

#[test]
fn cache_directory_and_budget_resolve_in_spec_order() {
    if std::env::var_os(CHILD).is_some() {
        let flag = std::env::var_os("QST_TEST_FLAG").map(PathBuf::from);
        let c = StoreConfig::resolve(flag.as_deref(), None);
        println!("RESULT dir={} max={}", c.dir.display(), c.max_bytes);
        return;
    }
    let here = Path::new("/nonexistent");
    let run = |envs: &[(&str, &str)], remove: &[&str]| {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "processes::cache_directory_and_budget_resolve_in_spec_order",
            "--exact",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .env(DIR, here)
        .stdout(Stdio::piped());
        for k in ["QST_CACHE_DIR", "XDG_CACHE_HOME", "HOME", "QST_TEST_FLAG"] {
            cmd.env_remove(k);
        }
        for (k, v) in envs {
            cmd.env(k, v);
        }
        for k in remove {
            cmd.env_remove(k);
        }
        result_line(cmd.spawn().unwrap())
    };
    let all = [
        ("QST_CACHE_DIR", "/q"),
        ("XDG_CACHE_HOME", "/x"),
        ("HOME", "/h"),
    ];
    assert_eq!(
        field(
            &run(&[&all[..], &[("QST_TEST_FLAG", "/flag")]].concat(), &[]),
            "dir"
        ),
        "/flag"
    );
    assert_eq!(field(&run(&all, &[]), "dir"), "/q");
    assert_eq!(field(&run(&all[1..], &[]), "dir"), "/x/qst");
    assert_eq!(
        field(
            &run(
                &[
                    ("QST_CACHE_DIR", ""),
                    ("XDG_CACHE_HOME", "relative"),
                    ("HOME", "/h")
                ],
                &[]
            ),
            "dir"
        ),
        "/h/.cache/qst"
    );
    // Default budget: half of MemTotal.
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kb: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(field(&run(&all, &[]), "max"), (kb * 1024 / 2).to_string());
}
