//! `qst report` and `qst run --report`: the page is rendered by a real
//! headless chromium (installed by test.sh; its absence fails these tests),
//! whose screenshot must show figures and whose DOM must hold one figure per
//! shown sample and no reference to the network.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::util::*;

const CHROMIUM: &str = "/usr/bin/chromium";

/// Runs headless chromium on `page` with a fresh profile; `mode` is
/// `--dump-dom` or `--screenshot=PATH`.
fn chromium(page: &Path, mode: &str, size: (u32, u32)) -> Output {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: test.sh installs Debian's chromium (apt-get install chromium)"
    );
    let profile = tempfile::tempdir().expect("create a chromium profile dir");
    let out = Command::new("timeout")
        .arg("180")
        .arg(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--window-size={},{}", size.0, size.1))
        .arg(mode)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("start chromium");
    assert!(
        out.status.success(),
        "chromium {mode} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The DOM chromium built from the page.
fn page_dom(page: &Path) -> String {
    let out = chromium(page, "--dump-dom", (1400, 1000));
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        dom.contains("</html>"),
        "chromium dumped no DOM: {dom:.300}"
    );
    dom
}

/// RGB pixels of a screenshot of the page.
fn screenshot(page: &Path, dir: &Path, size: (u32, u32)) -> Vec<[u8; 3]> {
    let png_path = dir.join("shot.png");
    chromium(page, &format!("--screenshot={}", png_path.display()), size);
    let decoder = png::Decoder::new(fs::File::open(&png_path).expect("open the screenshot"));
    let mut reader = decoder.read_info().expect("read the screenshot's header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("decode the screenshot");
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let step = info.color_type.samples();
    assert!(step >= 3, "screenshot colour type {:?}", info.color_type);
    assert_eq!((info.width, info.height), size);
    buf[..info.buffer_size()]
        .chunks_exact(step)
        .map(|p| [p[0], p[1], p[2]])
        .collect()
}

/// Every `<figure class="sample…">` of a DOM.
fn sample_figures(dom: &str) -> usize {
    dom.matches("<figure class=\"sample").count()
}

/// No URL at all, and no element loading anything.
fn assert_offline(dom: &str) {
    for bad in [
        "http://", "https://", " src=", " href=", "<script", "<link", "url(",
    ] {
        assert!(!dom.contains(bad), "the page contains {bad:?}");
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn run_with_report_renders_in_chromium_with_one_figure_per_sample() {
    let t = Tmp::new();
    let batch = t.generate("b.jsonl", "2,4,9", 3, 5);
    // One failing line among them.
    let mut text = fs::read_to_string(&batch).unwrap();
    text.push_str("{\"id\":\"broken\",\"dim\":4,\"counts\":[1,2]}\n");
    fs::write(&batch, text).unwrap();
    let before = now();
    let ran = t.qst_run(&batch).workers(2).arg("--report").output();
    let after = now();
    let ran = ran.expect_exit(1);
    let out = t.join("b.qst");
    assert_eq!(ran.out(), out);
    let page = out.join("report.html");
    assert!(page.is_file(), "no report.html after run --report");

    // Every ok line has `started`, when the job ran, just before `seconds`.
    let raw = fs::read_to_string(out.join("results.jsonl")).unwrap();
    let mut ok = 0;
    for line in raw.lines().filter(|l| l.contains("\"status\":\"ok\"")) {
        ok += 1;
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let s = v["started"].as_f64().expect("started");
        assert!(
            s >= before - 1.0 && s <= after,
            "started {s} not in the run"
        );
        let (a, b) = (
            line.find("\"started\"").unwrap(),
            line.find("\"seconds\"").unwrap(),
        );
        assert!(a < b && line.find("\"fidelity\"").unwrap() < a, "{line}");
    }
    assert_eq!(ok, 9);
    assert_eq!(ran.summary()["ok"], 9);

    let html = fs::read_to_string(&page).unwrap();
    assert_offline(&html);
    let dom = page_dom(&page);
    assert_offline(&dom);
    assert_eq!(
        sample_figures(&dom),
        10,
        "one figure per sample, failure included"
    );
    // The failure comes first, with its message, in the failures table too.
    let first = dom.find("<figure class=\"sample").unwrap();
    assert!(
        dom[first..first + 400].contains("broken"),
        "{}",
        &dom[first..first + 400]
    );
    assert!(dom.contains("counts"), "the failure's message is shown");
    // |ij⟩ labels for n = 9, the timeline, the histograms, 3-D bars.
    assert!(dom.contains("|12⟩"));
    assert!(dom.contains("worker timeline") && dom.contains("worker 1"));
    assert!(dom.contains("n = 9, mle: iterations"));
    assert!(dom.matches("<polygon").count() > 9 * 16);

    // The screenshot is not blank and shows the heatmaps' end colours.
    let px = screenshot(&page, t.path(), (1400, 6000));
    let distinct: std::collections::HashSet<[u8; 3]> = px.iter().copied().collect();
    let non_white = px.iter().filter(|p| **p != [255, 255, 255]).count();
    assert!(distinct.len() > 50, "only {} colours", distinct.len());
    assert!(
        non_white * 50 > px.len(),
        "{non_white} of {} pixels not white",
        px.len()
    );
    assert!(
        px.iter()
            .any(|p| *p == [178, 24, 43] || *p == [33, 102, 172]),
        "no heatmap cell at the end of the colour scale"
    );
}

#[test]
fn report_of_an_interrupted_directory_shows_what_is_there() {
    let t = Tmp::new();
    let batch = t.generate("b.jsonl", "4,8", 3, 7);
    let ran = t.qst_run(&batch).workers(1).assert_ok();
    let out = t.join("b.qst");
    assert_eq!(ran.out(), out);
    // A run cut short: no summary, a torn last line, a lost ρ file, and a
    // line with figures of a later qst (Bell, dominant component).
    fs::remove_file(out.join("summary.json")).unwrap();
    let recs = ran.results();
    let mut bell = recs[0].clone();
    bell["line"] = 99.into();
    bell["id"] = "bell-0".into();
    bell["fidelity"] = 0.01.into();
    bell["bell_max_fidelity"] = 0.93.into();
    bell["bell_index"] = 2.into();
    bell["bell_min_fidelity"] = 0.02.into();
    bell["dominant_eigenvalue"] = 0.97.into();
    let lost = recs[1]["rho"].as_str().unwrap().to_string();
    fs::remove_file(out.join(&lost)).unwrap();
    let mut text = fs::read_to_string(out.join("results.jsonl")).unwrap();
    text.push_str(&bell.to_string());
    text.push_str("\n{\"line\":100,\"id\":\"torn");
    fs::write(out.join("results.jsonl"), text).unwrap();

    let svg = t.join("svg");
    t.qst_report(&out)
        .args(["--max-samples", "7", "--svg"])
        .arg(&svg)
        .assert_ok();
    let page = out.join("report.html");
    let dom = page_dom(&page);
    assert_offline(&dom);
    assert_eq!(sample_figures(&dom), 7);
    assert!(dom.contains("torn line"));
    assert!(dom.contains("summary.json is missing"));
    assert!(
        dom.contains("ρ could not be read"),
        "the lost ρ file is named"
    );
    // The Bell line has the lowest fidelity: first, with its own table.
    let first = dom.find("<figure class=\"sample").unwrap();
    assert!(dom[first..first + 300].contains("bell-0"));
    assert!(dom.contains("Bell and dominant component") && dom.contains("bell_max_fidelity"));
    assert!(dom.contains("dominant_eigenvalue"));
    // Standalone SVG files: each with its namespace, for papers.
    let files: Vec<PathBuf> = fs::read_dir(&svg)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(svg.join("bell-0_Re.svg").is_file() && svg.join("bell-0_Im.svg").is_file());
    // 6 samples with a ρ file (7 shown, one lost), Re and Im, heatmap and bars.
    assert_eq!(files.len(), 6 * 4, "{files:?}");
    for f in &files {
        let s = fs::read_to_string(f).unwrap();
        assert!(s.starts_with("<svg") && s.contains("xmlns") && s.trim_end().ends_with("</svg>"));
    }
    let px = screenshot(&page, t.path(), (1200, 900));
    let distinct: std::collections::HashSet<[u8; 3]> = px.iter().copied().collect();
    assert!(distinct.len() > 20, "only {} colours", distinct.len());

    // Not an output directory: exit 2, one sentence.
    let e = t.qst_report(t.join("nowhere")).assert_exit(2).stderr;
    assert!(e.contains("failed to read the output directory"), "{e}");
    // An empty directory: a page that says so.
    let empty = t.join("empty");
    fs::create_dir(&empty).unwrap();
    t.qst_report(&empty).assert_ok();
    let d = page_dom(&empty.join("report.html"));
    assert_eq!(sample_figures(&d), 0);
    assert!(d.contains("results.jsonl is missing"));
}
