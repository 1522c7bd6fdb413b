//! `qst report`: turns one output directory (`results.jsonl`, `rho/*.npy`,
//! `summary.json`, `logs/supervisor.log`; any of them missing or cut short)
//! into one self-contained offline page, `report.html`, whose figures are
//! inline SVG drawn by plotters and whose page is an askama template — and,
//! on request, each shown sample's ρ figures as standalone `.svg` files.

#![forbid(unsafe_code)]
// `clippy::pedantic` is reviewed (docs/ARCHITECTURE.md, "Lints"); these do not fit:
#![allow(
    // Counts, indices and byte sizes shown or plotted are far below 2^53: exact as f64.
    clippy::cast_precision_loss,
    // Plot geometry is named as in the figure: (x, z) cell corners, b/t bar bottom/top, v.
    clippy::many_single_char_names
)]

mod data;
mod plots;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use askama::Template;
use serde_json::Value;

pub use data::{Record, Results, bins, mean, median, read_results, sample_order, utc};
pub use plots::{MAX_BARS_DIM, basis_labels, diverging, label_step};

/// What to write.
#[derive(Clone, Debug)]
pub struct ReportOptions {
    /// The output directory of a run (read; `report.html` is written there).
    pub out: PathBuf,
    /// How many samples get their own figures.
    pub max_samples: usize,
    /// Also write each shown sample's figures as `.svg` files here.
    pub svg_dir: Option<PathBuf>,
    /// The version of qst writing the page.
    pub version: String,
}

/// The default of `--max-samples`.
pub const DEFAULT_MAX_SAMPLES: usize = 100;

/// The figures of shown samples stop (the rest show their tables only) once
/// their SVG text passes this many bytes.
pub const FIGURE_BUDGET_BYTES: usize = 32 << 20;

/// What was written.
#[derive(Clone, Debug)]
pub struct Written {
    pub html: PathBuf,
    pub bytes: u64,
    pub samples_shown: usize,
    pub svg_files: usize,
}

struct Row {
    key: String,
    value: String,
}

struct Group {
    title: String,
    jobs: usize,
    ok: usize,
    failed: usize,
    mean_fidelity: String,
    median_fidelity: String,
    mean_purity: String,
    median_purity: String,
    mean_seconds: String,
    iterations_svg: String,
    seconds_svg: String,
}

struct Failure {
    line: u64,
    id: String,
    dim: String,
    message: String,
}

struct Sample {
    anchor: String,
    title: String,
    status: String,
    error: String,
    note: String,
    figures: Vec<String>,
    table: Vec<Row>,
    special: Vec<Row>,
}

#[derive(Template)]
#[template(path = "report.html")]
struct Page {
    title: String,
    header: Vec<Row>,
    notes: Vec<String>,
    failures: Vec<Failure>,
    failures_left_out: usize,
    groups: Vec<Group>,
    timeline_svg: String,
    timeline_note: String,
    samples_intro: String,
    samples: Vec<Sample>,
}

/// Writes `opts.out/report.html` (atomically) and, with `svg_dir`, the
/// shown samples' `.svg` files. Errors read after "failed to".
///
/// # Errors
///
/// When `opts.out` is not a directory, `results.jsonl` exists but cannot be
/// read, a figure cannot be drawn, or a file cannot be written.
pub fn write_report(opts: &ReportOptions) -> Result<Written, String> {
    let out = &opts.out;
    if !out.is_dir() {
        return Err(format!(
            "read the output directory {}: it is not a directory",
            out.display()
        ));
    }
    let results = read_results(&out.join("results.jsonl"))?;
    let summary = data::read_summary(&out.join("summary.json"));
    let runs = data::read_run_lines(&out.join("logs").join("supervisor.log"));
    let recs = &results.records;

    let span = Span::of(recs);
    let slots_seen = recs.iter().filter_map(|r| r.worker).max().map(|w| w + 1);
    let workers = runs.last().and_then(|r| r.workers).or(slots_seen);
    let header = header_rows(opts, recs, &runs, &span, workers, summary.as_ref());
    let notes = notes(&results, summary.is_some());
    let (failures, failures_left_out) = failures(recs);
    let by_group = by_group(recs);
    let groups = groups(&by_group)?;
    let dims: Vec<usize> = by_group
        .keys()
        .map(|k| k.0)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let (timeline_svg, timeline_note) = timeline(recs, span.first_start, &dims, workers)?;

    // Samples.
    if let Some(dir) = &opts.svg_dir {
        fs::create_dir_all(dir)
            .map_err(|e| format!("create the SVG directory {}: {e}", dir.display()))?;
    }
    let order = sample_order(recs);
    let shown = order.len().min(opts.max_samples);
    let mut samples = Vec::with_capacity(shown);
    let mut budget = FIGURE_BUDGET_BYTES;
    let mut svg_files = 0;
    for &i in &order[..shown] {
        let (s, files) = sample(out, &recs[i], &mut budget, opts.svg_dir.as_deref())?;
        svg_files += files;
        samples.push(s);
    }
    let samples_intro = format!(
        "{shown} of {} samples: failures first, then the lowest fidelity first{}.",
        recs.len(),
        if shown < recs.len() {
            " (--max-samples shows more)"
        } else {
            ""
        }
    );

    let page = Page {
        title: out.file_name().map_or(out.display().to_string(), |n| {
            n.to_string_lossy().into_owned()
        }),
        header,
        notes,
        failures,
        failures_left_out,
        groups,
        timeline_svg,
        timeline_note,
        samples_intro,
        samples,
    };
    let html = page
        .render()
        .map_err(|e| format!("render the report page: {e}"))?;
    let path = out.join("report.html");
    write_atomically(out, &path, html.as_bytes())?;
    Ok(Written {
        html: path,
        bytes: html.len() as u64,
        samples_shown: shown,
        svg_files,
    })
}

/// Writes `path` through a uniquely named temporary file in `dir` (created
/// exclusively, never following a planted link), then renames it into place.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write as _;
    let err = |e: std::io::Error| format!("write {}: {e}", path.display());
    let mut tmp = tempfile::Builder::new()
        .prefix(".report.html.")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(err)?;
    tmp.write_all(bytes).map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

/// When the jobs ran: the first start and the last end.
struct Span {
    first_start: Option<f64>,
    last_end: Option<f64>,
}

impl Span {
    fn of(recs: &[Record]) -> Span {
        Span {
            first_start: recs
                .iter()
                .filter_map(|r| r.started)
                .filter(|s| s.is_finite())
                .reduce(f64::min),
            last_end: recs
                .iter()
                .filter_map(|r| Some(r.started? + r.seconds?))
                .filter(|s| s.is_finite())
                .reduce(f64::max),
        }
    }
}

/// The run header: batch, command, version, dates, workers, totals.
fn header_rows(
    opts: &ReportOptions,
    recs: &[Record],
    runs: &[data::RunLine],
    span: &Span,
    workers: Option<usize>,
    summary: Option<&Value>,
) -> Vec<Row> {
    let mut header = Vec::new();
    let mut row = |k: &str, v: String| {
        header.push(Row {
            key: k.to_string(),
            value: v,
        });
    };
    row("output directory", opts.out.display().to_string());
    let last_run = runs.last();
    row(
        "batch",
        last_run.map_or("(unknown: no logs/supervisor.log)".into(), |r| {
            r.batch.clone()
        }),
    );
    if let Some(r) = last_run {
        let mut cmd = format!("qst run {} --out {}", r.batch, r.out);
        if let Some(w) = r.workers {
            cmd.push_str(" --workers ");
            cmd.push_str(&w.to_string());
        }
        if r.resume {
            cmd += " --resume";
        }
        row("command", cmd);
        if runs.len() > 1 {
            row(
                "runs",
                format!("{} (resumed {} times)", runs.len(), runs.len() - 1),
            );
        }
    }
    row("report by", format!("qst {}", opts.version));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    if let Some(s) = span.first_start {
        row("first job started", utc(s));
    }
    if let Some(e) = span.last_end {
        row("last job ended", utc(e));
    }
    row("report written", utc(now));
    row(
        "workers",
        workers.map_or("(unknown)".into(), |w| w.to_string()),
    );
    let ok = recs.iter().filter(|r| r.is_ok()).count();
    let failed = recs.len() - ok;
    row(
        "results",
        format!("{} jobs: {ok} ok, {failed} failed", recs.len()),
    );
    let busy: f64 = recs
        .iter()
        .filter(|r| r.is_ok())
        .filter_map(|r| r.seconds)
        .filter(|s| s.is_finite())
        .sum();
    row("busy seconds (Σ of ok jobs)", format!("{busy:.3}"));
    if let Some(s) = summary {
        if let Some(rss) = s.get("supervisor_peak_rss_bytes").and_then(Value::as_u64) {
            row(
                "supervisor peak RSS",
                format!("{:.1} MiB", rss as f64 / 1_048_576.0),
            );
        }
        if let Some(ws) = s.get("workers").and_then(Value::as_array) {
            let peak = ws
                .iter()
                .filter_map(|w| w.get("peak_rss_bytes").and_then(Value::as_u64))
                .max();
            if let Some(p) = peak {
                row(
                    "worker peak RSS (largest)",
                    format!("{:.1} MiB", p as f64 / 1_048_576.0),
                );
            }
        }
    }
    header
}

/// What the page says about missing or cut-short inputs.
fn notes(results: &Results, has_summary: bool) -> Vec<String> {
    let mut notes = Vec::new();
    if !results.found {
        notes.push("results.jsonl is missing: no job has a result yet.".to_string());
    }
    if results.torn_last_line {
        notes.push(
            "results.jsonl ends in a torn line (the run was cut short while writing it); it is left out.".into(),
        );
    }
    if !results.unreadable_lines.is_empty() {
        notes.push(format!(
            "{} line(s) of results.jsonl are not result records and are left out (file lines {}).",
            results.unreadable_lines.len(),
            list(&results.unreadable_lines, 20)
        ));
    }
    if !has_summary {
        notes.push("summary.json is missing or unreadable (an interrupted run?): the figures here come from results.jsonl alone.".into());
    }
    notes
}

/// The failures, in line order (at most 1000), and how many were left out.
fn failures(recs: &[Record]) -> (Vec<Failure>, usize) {
    const MAX_FAILURES: usize = 1000;
    let mut failures: Vec<Failure> = recs
        .iter()
        .filter(|r| !r.is_ok())
        .map(|r| Failure {
            line: r.line,
            id: r.id.clone().unwrap_or_default(),
            dim: r.dim.map(|d| d.to_string()).unwrap_or_default(),
            message: r.error.clone().unwrap_or_default(),
        })
        .collect();
    failures.sort_by_key(|f| f.line);
    let left_out = failures.len().saturating_sub(MAX_FAILURES);
    failures.truncate(MAX_FAILURES);
    (failures, left_out)
}

/// The records of each (dimension, method).
fn by_group(recs: &[Record]) -> BTreeMap<(usize, String), Vec<&Record>> {
    let mut by_group: BTreeMap<(usize, String), Vec<&Record>> = BTreeMap::new();
    for r in recs {
        if let Some(d) = r.dim {
            by_group
                .entry((d, r.method.clone().unwrap_or_else(|| "?".into())))
                .or_default()
                .push(r);
        }
    }
    by_group
}

/// Per dimension × method: counts, means and medians, histograms.
fn groups(by_group: &BTreeMap<(usize, String), Vec<&Record>>) -> Result<Vec<Group>, String> {
    let mut groups = Vec::new();
    for ((d, method), rs) in by_group {
        let oks: Vec<&&Record> = rs.iter().filter(|r| r.is_ok()).collect();
        let col = |f: fn(&Record) -> Option<f64>| -> Vec<f64> {
            oks.iter().filter_map(|r| f(r)).collect()
        };
        let fid = col(|r| r.fidelity);
        let pur = col(|r| r.purity);
        let secs = col(|r| r.seconds);
        let iters = col(|r| r.iterations.map(|i| i as f64));
        let title = format!("n = {d}, {method}");
        let histogram = |values: &[f64], what: &str, axis: &str| -> Result<String, String> {
            if values.is_empty() {
                return Ok(String::new());
            }
            Ok(inline(&plots::histogram(
                &format!("{title}: {what}"),
                axis,
                &bins(values, 20),
            )?))
        };
        groups.push(Group {
            jobs: rs.len(),
            ok: oks.len(),
            failed: rs.len() - oks.len(),
            mean_fidelity: opt(mean(&fid)),
            median_fidelity: opt(median(&fid)),
            mean_purity: opt(mean(&pur)),
            median_purity: opt(median(&pur)),
            mean_seconds: opt(mean(&secs)),
            iterations_svg: histogram(&iters, "iterations", "iterations")?,
            seconds_svg: histogram(&secs, "time", "seconds")?,
            title,
        });
    }
    Ok(groups)
}

/// The worker timeline: one row per slot, a bar per ok job.
fn timeline(
    recs: &[Record],
    first_start: Option<f64>,
    dims: &[usize],
    workers: Option<usize>,
) -> Result<(String, String), String> {
    let Some(t0) = first_start else {
        return Ok((
            String::new(),
            "No result has a started time (results of an older qst): no timeline.".to_string(),
        ));
    };
    let spans: Vec<plots::Span> = recs
        .iter()
        .filter(|r| r.is_ok())
        .filter_map(|r| {
            let (s, secs, slot, d) = (r.started?, r.seconds?, r.worker?, r.dim?);
            if !s.is_finite() || !secs.is_finite() {
                return None;
            }
            Some(plots::Span {
                slot,
                start: s - t0,
                seconds: secs.max(0.0),
                dim_index: dims.iter().position(|&x| x == d)?,
            })
        })
        .collect();
    let slots = spans
        .iter()
        .map(|s| s.slot + 1)
        .max()
        .unwrap_or(1)
        .max(workers.unwrap_or(1));
    Ok((
        inline(&plots::timeline(&spans, slots, dims)?),
        String::new(),
    ))
}

/// An SVG for inlining in HTML: without its XML namespace attribute (HTML
/// knows `<svg>`), so that the page names no URL at all.
fn inline(svg: &str) -> String {
    svg.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1)
}

fn opt(x: Option<f64>) -> String {
    x.map_or("–".into(), num)
}

fn num(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else if x.abs() >= 1e-4 && x.abs() < 1e6 {
        let s = format!("{x:.6}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{x:.4e}")
    }
}

fn list(xs: &[u64], max: usize) -> String {
    let mut s: Vec<String> = xs.iter().take(max).map(ToString::to_string).collect();
    if xs.len() > max {
        s.push("…".into());
    }
    s.join(", ")
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.as_f64().map_or(n.to_string(), num),
        Value::String(s) => s.clone(),
        other => {
            let s = other.to_string();
            if s.chars().count() > 200 {
                s.chars().take(200).collect::<String>() + "…"
            } else {
                s
            }
        }
    }
}

/// Whether a result field belongs to the Bell / dominant-component table.
fn is_special(key: &str) -> bool {
    key.starts_with("bell_") || key.starts_with("dominant_")
}

fn sample(
    out: &Path,
    r: &Record,
    budget: &mut usize,
    svg_dir: Option<&Path>,
) -> Result<(Sample, usize), String> {
    let mut s = sample_text(r);
    if !r.is_ok() {
        return Ok((s, 0));
    }
    let (Some(n), Some(rel)) = (r.dim, r.rho.as_ref()) else {
        s.note = "no ρ file is named in its result.".into();
        return Ok((s, 0));
    };
    if *budget == 0 {
        s.note =
            "figures left out: the page's figure budget is spent (lower --max-samples).".into();
        return Ok((s, 0));
    }
    let path = out.join(rel);
    let rho = match qst_npy::read_matrix(&path, n) {
        Ok(m) => m,
        Err(e) => {
            s.note = format!("ρ could not be read: {e}");
            return Ok((s, 0));
        }
    };
    // Standalone files are named after the ρ file: `<id>_Re.svg`, or
    // `<id>.<method>_Re.svg` when a sample ran several methods.
    let id = r.id.clone().unwrap_or_else(|| format!("line-{}", r.line));
    let per_method = r.method.as_ref().map(|m| format!("{id}.{m}"));
    let stem = match per_method {
        Some(pm) if Path::new(rel).file_stem().is_some_and(|x| *x == *pm) => pm,
        _ => id,
    };
    let re: Vec<f64> = rho.iter().map(|c| c.re).collect();
    let im: Vec<f64> = rho.iter().map(|c| c.im).collect();
    let vmax = plots::scale_of(&re, &im);
    let mut figs = vec![
        ("Re", plots::heatmap("Re ρ", &re, n, vmax)?),
        ("Im", plots::heatmap("Im ρ", &im, n, vmax)?),
    ];
    if n <= MAX_BARS_DIM {
        figs.push(("Re_bars", plots::bars("Re ρ", &re, n, vmax)?));
        figs.push(("Im_bars", plots::bars("Im ρ", &im, n, vmax)?));
    }
    let mut files = 0;
    if let Some(dir) = svg_dir {
        for (suffix, svg) in &figs {
            let p = dir.join(format!("{stem}_{suffix}.svg"));
            fs::write(&p, svg).map_err(|e| format!("write {}: {e}", p.display()))?;
            files += 1;
        }
    }
    let figs: Vec<String> = figs.iter().map(|(_, svg)| inline(svg)).collect();
    let size: usize = figs.iter().map(String::len).sum();
    *budget = budget.saturating_sub(size);
    s.figures = figs;
    Ok((s, files))
}

/// A sample's title, status and figures table (no plots yet).
fn sample_text(r: &Record) -> Sample {
    let label = r.label();
    let mut table = Vec::new();
    let mut add = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            table.push(Row {
                key: k.into(),
                value: v,
            });
        }
    };
    add("line", Some(r.line.to_string()));
    add("dim", r.dim.map(|d| d.to_string()));
    add("design", r.design.clone());
    add("method", r.method.clone());
    add("iterations", r.iterations.map(|x| x.to_string()));
    add("converged", r.converged.map(|x| x.to_string()));
    add(
        "log_likelihood",
        r.is_ok().then(|| r.log_likelihood.map_or("−∞".into(), num)),
    );
    add("purity", r.purity.map(num));
    add("fidelity", r.fidelity.map(num));
    add("started", r.started.map(utc));
    add("seconds", r.seconds.map(num));
    add("worker", r.worker.map(|w| w.to_string()));
    let mut special = Vec::new();
    for (k, v) in &r.extra {
        let row = Row {
            key: k.clone(),
            value: value_text(v),
        };
        if is_special(k) {
            special.push(row);
        } else {
            table.push(row);
        }
    }
    Sample {
        anchor: format!(
            "line-{}{}",
            r.line,
            r.method.as_ref().map_or(String::new(), |m| format!("-{m}"))
        ),
        title: format!(
            "{label}{}",
            match (r.dim, &r.method) {
                (Some(d), Some(m)) => format!(" — n = {d}, {m}"),
                (Some(d), None) => format!(" — n = {d}"),
                _ => String::new(),
            }
        ),
        status: r.status.clone(),
        error: r.error.clone().unwrap_or_default(),
        note: String::new(),
        figures: Vec::new(),
        table,
        special,
    }
}
