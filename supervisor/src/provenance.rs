//! Where a result directory came from: the `provenance` object of
//! `summary.json` (which qst, which command line, when, where, by whom, with
//! which cache and batch).

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// What the command line knows about itself: the version, the commit it was
/// built from, and its arguments.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Invocation {
    pub version: String,
    pub commit: String,
    pub argv: Vec<String>,
}

/// The `provenance` object of `summary.json`, of the latest run that wrote it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Provenance {
    /// `CARGO_PKG_VERSION` of the qst binary.
    pub qst_version: String,
    /// The short git commit it was built from, `-dirty` when the work tree
    /// had changes, `unknown` when built without git.
    pub commit: String,
    /// The command line (argv), as given.
    pub command: Vec<String>,
    /// When the run started and ended, UTC ISO 8601 (`2026-05-04T09:12:33Z`).
    pub started: String,
    pub ended: Option<String>,
    pub host: String,
    pub user: String,
    /// The projector cache directory (absolute).
    pub cache_dir: PathBuf,
    /// The batch (absolute) and its fingerprint (as in `batch.fingerprint`).
    pub batch: PathBuf,
    pub batch_fingerprint: Option<String>,
    /// Worker processes asked for.
    pub workers: usize,
    /// Whether this run resumed an earlier one.
    pub resume: bool,
}

/// `t` as UTC ISO 8601 with second precision: `2026-05-04T09:12:33Z`.
#[must_use]
pub fn utc_iso8601(t: SystemTime) -> String {
    #[allow(clippy::cast_possible_wrap)] // seconds since 1970: far below 2^63
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// (year, month, day) of a count of days since 1970-01-01 (proleptic
/// Gregorian; H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // The day of the month is in [1, 31], the month in [1, 12].
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let (d, m) = (
        (doy - (153 * mp + 2) / 5 + 1) as u32,
        if mp < 10 { mp + 3 } else { mp - 9 } as u32,
    );
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The host's name (the kernel's, else `$HOSTNAME`, else `unknown`).
#[must_use]
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

/// The user (`$USER`, else `$LOGNAME`, else `uid N`).
#[must_use]
pub fn user() -> String {
    ["USER", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata("/proc/self")
                .map_or_else(|_| "unknown".into(), |m| format!("uid {}", m.uid()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn times_are_utc_iso_8601() {
        assert_eq!(utc_iso8601(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400 + 3661); // 2000-02-29
        assert_eq!(utc_iso8601(t), "2000-02-29T01:01:01Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_777_885_953);
        assert_eq!(utc_iso8601(t), "2026-05-04T09:12:33Z");
    }
}
