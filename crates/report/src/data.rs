//! Reading an output directory, tolerantly: result lines (a torn or
//! unreadable line is counted, not fatal), the optional `summary.json`, the
//! `run batch=…` lines of `logs/supervisor.log`, and ρ files; and the pure
//! arithmetic of the page (sample order, means, medians, histogram bins).

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

/// One line of `results.jsonl`, every field optional; fields this page does
/// not know (figures added later, such as `bell_max_fidelity`) are kept in
/// `extra`.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct Record {
    pub line: u64,
    pub id: Option<String>,
    pub status: String,
    pub dim: Option<usize>,
    pub design: Option<String>,
    pub method: Option<String>,
    pub rho: Option<String>,
    pub iterations: Option<u64>,
    pub converged: Option<bool>,
    pub log_likelihood: Option<f64>,
    pub purity: Option<f64>,
    pub fidelity: Option<f64>,
    /// When the worker started the job, Unix seconds.
    pub started: Option<f64>,
    pub seconds: Option<f64>,
    pub worker: Option<usize>,
    pub error: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Record {
    /// Whether the job succeeded (`status` is `ok`).
    #[must_use]
    pub fn is_ok(&self) -> bool {
        self.status == "ok"
    }
    /// The id, or `line N` when the line had none.
    #[must_use]
    pub fn label(&self) -> String {
        match &self.id {
            Some(id) => id.clone(),
            None => format!("line {}", self.line),
        }
    }
}

/// What `results.jsonl` held.
#[derive(Debug, Default)]
pub struct Results {
    pub records: Vec<Record>,
    /// Complete lines that were not result records.
    pub unreadable_lines: Vec<u64>,
    /// Whether the file ended in a line without its newline (a run cut short
    /// while writing).
    pub torn_last_line: bool,
    /// Whether the file was there at all.
    pub found: bool,
}

/// Reads `path` (a `results.jsonl`); a missing file is an empty result.
///
/// # Errors
///
/// When the file exists but cannot be opened or read (the message reads
/// after "failed to").
pub fn read_results(path: &Path) -> Result<Results, String> {
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Results::default()),
        Err(e) => return Err(format!("read {}: {e}", path.display())),
    };
    let mut out = Results {
        found: true,
        ..Default::default()
    };
    let mut r = BufReader::with_capacity(1 << 16, file);
    let mut buf = Vec::new();
    let mut number = 0u64;
    loop {
        buf.clear();
        let k = r
            .read_until(b'\n', &mut buf)
            .map_err(|e| format!("read {}: {e}", path.display()))?;
        if k == 0 {
            break;
        }
        number += 1;
        if buf.last() != Some(&b'\n') {
            out.torn_last_line = true;
            break;
        }
        let text = buf.trim_ascii();
        if text.is_empty() {
            continue;
        }
        match serde_json::from_slice::<Record>(text) {
            Ok(rec) => out.records.push(rec),
            Err(_) => out.unreadable_lines.push(number),
        }
    }
    Ok(out)
}

/// `summary.json` as a JSON value, when it is there and readable.
pub fn read_summary(path: &Path) -> Option<Value> {
    let bytes = fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// One `run batch=… out=… workers=…` line of the supervisor's log.
#[derive(Debug, Clone, PartialEq)]
pub struct RunLine {
    pub batch: String,
    pub out: String,
    pub workers: Option<usize>,
    pub resume: bool,
}

/// The `run …` lines of a supervisor log, in order (a missing log: none).
pub fn read_run_lines(path: &Path) -> Vec<RunLine> {
    let Ok(text) = fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines().filter_map(parse_run_line).collect()
}

fn parse_run_line(line: &str) -> Option<RunLine> {
    let start = line.find(" run batch=")?;
    let rest = &line[start + " run ".len()..];
    let field = |key: &str| -> Option<&str> {
        rest.split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
    };
    Some(RunLine {
        batch: field("batch")?.to_string(),
        out: field("out").unwrap_or("").to_string(),
        workers: field("workers").and_then(|w| w.parse().ok()),
        resume: field("resume") == Some("true"),
    })
}

/// The order samples are shown in: failures first (by line), then ok
/// samples by fidelity, lowest first, then those without a fidelity, by line.
#[must_use]
pub fn sample_order(records: &[Record]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..records.len()).collect();
    idx.sort_by(|&a, &b| {
        let (ra, rb) = (&records[a], &records[b]);
        let key = |r: &Record| -> (u8, f64) {
            if r.is_ok() {
                match r.fidelity.filter(|f| f.is_finite()) {
                    Some(f) => (1, f),
                    None => (2, 0.0),
                }
            } else {
                (0, 0.0)
            }
        };
        let (ka, kb) = (key(ra), key(rb));
        ka.0.cmp(&kb.0)
            .then(ka.1.total_cmp(&kb.1))
            .then(ra.line.cmp(&rb.line))
    });
    idx
}

/// The mean of finite values, if any.
#[must_use]
pub fn mean(xs: &[f64]) -> Option<f64> {
    let v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        None
    } else {
        Some(v.iter().sum::<f64>() / v.len() as f64)
    }
}

/// The median of finite values, if any (the mean of the middle two for an
/// even count).
#[must_use]
pub fn median(xs: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        f64::midpoint(v[m - 1], v[m])
    })
}

/// Equal-width bins over [min, max] of the finite values: `(lo, hi, count)`
/// each; one bin of width 1 around the value when all values are equal; none
/// for no values.
#[must_use]
pub fn bins(xs: &[f64], count: usize) -> Vec<(f64, f64, u64)> {
    let v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    let count = count.max(1);
    let (Some(lo), Some(hi)) = (
        v.iter().copied().reduce(f64::min),
        v.iter().copied().reduce(f64::max),
    ) else {
        return Vec::new();
    };
    if hi <= lo {
        let half = if lo == 0.0 { 0.5 } else { lo.abs() * 0.05 };
        return vec![(lo - half, lo + half, v.len() as u64)];
    }
    let w = (hi - lo) / count as f64;
    let mut out: Vec<(f64, f64, u64)> = (0..count)
        .map(|k| (lo + w * k as f64, lo + w * (k + 1) as f64, 0))
        .collect();
    for x in v {
        // x >= lo, so the bin is >= 0; the float-to-int cast saturates and
        // `min` keeps x = hi (and rounding just above it) in the last bin.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let k = (((x - lo) / w) as usize).min(count - 1);
        out[k].2 += 1;
    }
    out
}

/// A UTC date and time, `YYYY-MM-DD HH:MM:SS UTC`, of Unix seconds.
#[must_use]
pub fn utc(unix: f64) -> String {
    // Saturating, as float-to-int casts are: any real date is far inside i64.
    #[allow(clippy::cast_possible_truncation)]
    let secs = unix.floor() as i64;
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    // Days since 1970-01-01 to a civil date (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    )
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // the expected values are exact in binary floating point
mod tests {
    use super::*;

    fn rec(line: u64, status: &str, fid: Option<f64>) -> Record {
        Record {
            line,
            status: status.into(),
            fidelity: fid,
            ..Default::default()
        }
    }

    #[test]
    fn samples_are_failures_first_then_lowest_fidelity() {
        let r = vec![
            rec(1, "ok", Some(0.99)),
            rec(2, "ok", None),
            rec(3, "error", None),
            rec(4, "ok", Some(0.5)),
            rec(5, "ok", Some(f64::NAN)),
            rec(6, "error", None),
            rec(7, "ok", Some(0.7)),
        ];
        let lines: Vec<u64> = sample_order(&r).iter().map(|&i| r[i].line).collect();
        assert_eq!(lines, vec![3, 6, 4, 7, 1, 2, 5]);
    }

    #[test]
    fn mean_median_and_bins() {
        assert_eq!(mean(&[]), None);
        assert_eq!(mean(&[1.0, 2.0, f64::NAN, 6.0]), Some(3.0));
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        let b = bins(&[0.0, 1.0, 2.0, 3.0, 4.0], 4);
        assert_eq!(b.len(), 4);
        assert_eq!(b.iter().map(|x| x.2).collect::<Vec<_>>(), vec![1, 1, 1, 2]);
        assert_eq!(b[0].0, 0.0);
        assert_eq!(b[3].1, 4.0);
        assert_eq!(bins(&[2.0, 2.0], 10), vec![(1.9, 2.1, 2)]);
        assert_eq!(bins(&[0.0], 10), vec![(-0.5, 0.5, 1)]);
        assert!(bins(&[f64::NAN], 3).is_empty());
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0.0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400.0), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000.7), "2023-11-14 22:13:20 UTC");
    }

    #[test]
    fn results_tolerate_torn_and_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("results.jsonl");
        assert!(!read_results(&p).unwrap().found);
        fs::write(
            &p,
            "{\"line\":1,\"id\":\"a\",\"status\":\"ok\",\"dim\":2,\"bell_index\":3}\n\
             not json\n\n{\"line\":3,\"id\":\"c\",\"status\":\"error\",\"error\":\"bad\"}\n{\"line\":4,",
        )
        .unwrap();
        let r = read_results(&p).unwrap();
        assert!(r.found && r.torn_last_line);
        assert_eq!(r.unreadable_lines, vec![2]);
        assert_eq!(r.records.len(), 2);
        assert_eq!(r.records[0].extra["bell_index"], 3);
        assert_eq!(r.records[1].error.as_deref(), Some("bad"));
    }

    #[test]
    fn run_lines_of_the_supervisor_log() {
        let l = parse_run_line(
            "2026-01-01T00:00:00Z  INFO qst_supervisor::run: run batch=/x/b.jsonl out=/x/b.qst workers=4 resume=false already_done=0 pid=9",
        )
        .unwrap();
        assert_eq!(l.batch, "/x/b.jsonl");
        assert_eq!(l.out, "/x/b.qst");
        assert_eq!(l.workers, Some(4));
        assert!(!l.resume);
        assert_eq!(parse_run_line("hello slot=1"), None);
    }
}
