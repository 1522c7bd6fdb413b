//! Where the cache lives and how many bytes it may map.

use std::path::{Path, PathBuf};

/// Where the cache lives and how many bytes it may map.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    pub dir: PathBuf,
    pub max_bytes: u64,
}

/// The budget used when physical memory cannot be read (4 GiB).
const FALLBACK_MAX_BYTES: u64 = 4 << 30;

/// Physical memory in bytes (`MemTotal` of `/proc/meminfo`), if readable.
#[must_use]
pub fn physical_memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut parts = line.split_whitespace().skip(1);
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") => value.checked_mul(1024),
        None => Some(value),
        Some(_) => None,
    }
}

fn non_empty_env(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

impl StoreConfig {
    /// `--cache DIR`, else `$QST_CACHE_DIR`, else `$XDG_CACHE_HOME/qst`, else
    /// `~/.cache/qst`; `--max-cache-bytes`, else half of physical memory.
    /// (Without a home directory: `qst-cache` in the system temporary
    /// directory; without `/proc/meminfo`: 4 GiB.)
    pub fn resolve(cache_flag: Option<&Path>, max_bytes_flag: Option<u64>) -> Self {
        let dir = cache_flag
            .map(Path::to_path_buf)
            .or_else(|| non_empty_env("QST_CACHE_DIR"))
            // The XDG spec says relative values are to be ignored.
            .or_else(|| {
                non_empty_env("XDG_CACHE_HOME")
                    .filter(|p| p.is_absolute())
                    .map(|p| p.join("qst"))
            })
            .or_else(|| non_empty_env("HOME").map(|h| h.join(".cache").join("qst")))
            .unwrap_or_else(|| std::env::temp_dir().join("qst-cache"));
        let max_bytes = max_bytes_flag
            .unwrap_or_else(|| physical_memory_bytes().map_or(FALLBACK_MAX_BYTES, |m| m / 2));
        StoreConfig { dir, max_bytes }
    }
}
