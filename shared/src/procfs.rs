//! Memory figures from `/proc`: peak resident set size (`VmHWM`) and
//! proportional set size (`Pss` of `smaps_rollup`), of this process or another.

use std::path::PathBuf;

fn proc_file(pid: Option<u32>, name: &str) -> PathBuf {
    match pid {
        Some(pid) => PathBuf::from(format!("/proc/{pid}/{name}")),
        None => PathBuf::from(format!("/proc/self/{name}")),
    }
}

/// The value in bytes of a `Key:   123 kB` line of a `/proc` file.
fn kb_field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        let kb: u64 = rest.split_whitespace().next()?.parse().ok()?;
        Some(kb * 1024)
    })
}

/// Peak resident set size in bytes (`VmHWM` of `/proc/PID/status`); `None`
/// when the process is gone or the field is missing.
#[must_use]
pub fn peak_rss_bytes(pid: Option<u32>) -> Option<u64> {
    let text = std::fs::read_to_string(proc_file(pid, "status")).ok()?;
    kb_field(&text, "VmHWM")
}

/// Current resident set size in bytes (`VmRSS`).
#[must_use]
pub fn rss_bytes(pid: Option<u32>) -> Option<u64> {
    let text = std::fs::read_to_string(proc_file(pid, "status")).ok()?;
    kb_field(&text, "VmRSS")
}

/// Proportional set size in bytes (`Pss` of `/proc/PID/smaps_rollup`): shared
/// pages are divided among the processes that map them.
#[must_use]
pub fn pss_bytes(pid: Option<u32>) -> Option<u64> {
    let text = std::fs::read_to_string(proc_file(pid, "smaps_rollup")).ok()?;
    kb_field(&text, "Pss")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_figures_are_plausible_and_consistent() {
        // Touch 8 MiB so the figures are well above zero.
        let v = vec![1u8; 8 << 20];
        assert_eq!(v.iter().map(|&b| u64::from(b)).sum::<u64>(), 8 << 20);
        let rss = rss_bytes(None).unwrap();
        let pss = pss_bytes(None).unwrap();
        let peak = peak_rss_bytes(None).unwrap();
        assert!(rss >= 8 << 20, "rss {rss}");
        // The counters are sampled at different moments: allow some slack.
        assert!(rss <= peak + (1 << 20), "rss {rss} > peak {peak}");
        assert!(pss > 0 && pss <= rss + (1 << 20), "pss {pss} rss {rss}");
        assert_eq!(
            kb_field("VmHWM:\t  12 kB\nVmRSS: 3 kB\n", "VmRSS"),
            Some(3072)
        );
        assert_eq!(peak_rss_bytes(Some(u32::MAX)), None);
    }
}
