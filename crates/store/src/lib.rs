//! The projector store (SPEC 2.1): one `.npy` file per (design, dimension) in a
//! cache directory, built once and atomically (cross-process lock, temporary
//! file, fsync, rename), checked on open and rebuilt when bad, memory-mapped
//! read-only and shared through the page cache; plus [`ProjectorCache`], the
//! in-process, byte-bounded, single-flight LRU cache that long-lived processes
//! (workers) get their projector sets from.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use qst_math::Projectors;

/// Errors, each one sentence that reads after "failed to …".
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Npy(#[from] qst_npy::NpyError),
    #[error("use projector file {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("use projector file {path}: it is {bytes} bytes, over the cache budget of {budget} bytes")]
    OverBudget { path: PathBuf, bytes: u64, budget: u64 },
    #[error("{what} {path}: {source}")]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
}

/// Where the cache lives and how many bytes it may map.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    pub dir: PathBuf,
    pub max_bytes: u64,
}

impl StoreConfig {
    /// `--cache DIR`, else `$QST_CACHE_DIR`, else `$XDG_CACHE_HOME/qst`, else
    /// `~/.cache/qst`; `--max-cache-bytes`, else half of physical memory.
    pub fn resolve(cache_flag: Option<&Path>, max_bytes_flag: Option<u64>) -> Self {
        let _ = (cache_flag, max_bytes_flag);
        todo!()
    }
}

/// How a built-in set is to be used after [`Store::ensure_nopovm`].
#[derive(Clone, Debug, PartialEq)]
pub enum Prepared {
    /// The checked file.
    File(PathBuf),
    /// Over the byte budget: no file; runs from kets.
    KetsOnly,
}

/// The on-disk cache directory.
#[derive(Clone, Debug)]
pub struct Store {
    pub config: StoreConfig,
}

/// One file of `qst cache ls` / `verify`.
#[derive(Clone, Debug)]
pub struct FileReport {
    pub path: PathBuf,
    pub bytes: u64,
    /// `None` when good, else why it is bad.
    pub problem: Option<String>,
}

impl Store {
    pub fn new(config: StoreConfig) -> Self {
        Store { config }
    }
    /// `<dir>/nopovm_n{n}.npy`.
    pub fn nopovm_path(&self, n: usize) -> PathBuf {
        self.config.dir.join(format!("nopovm_n{n}.npy"))
    }
    /// Builds the file if missing (one process builds, racers wait), or checks
    /// header, length and sampled slices if present, rebuilding a bad file.
    pub fn ensure_nopovm(&self, n: usize) -> Result<Prepared, StoreError> {
        let _ = n;
        todo!()
    }
    /// Lists the files in the cache with sizes (no checks).
    pub fn list(&self) -> Result<Vec<FileReport>, StoreError> {
        todo!()
    }
    /// Checks every byte of every file against its formula.
    pub fn verify(&self) -> Result<Vec<FileReport>, StoreError> {
        todo!()
    }
    /// Removes every file of the cache; returns how many.
    pub fn clear(&self) -> Result<usize, StoreError> {
        todo!()
    }
    /// Validates a custom projector file (SPEC 1.2) once per (path, size,
    /// mtime) in this process; over the byte budget is an error.
    pub fn validate_custom(&self, path: &Path, n: usize) -> Result<(), StoreError> {
        let _ = (path, n);
        todo!()
    }
}

/// A projector set held from a [`ProjectorCache`]; keeps its mapping alive.
#[derive(Clone)]
pub struct ProjectorHandle {
    _inner: Arc<()>,
}

impl ProjectorHandle {
    /// The set, for the math (the fastest form: `nopovm` from kets).
    pub fn projectors(&self) -> Projectors<'_> {
        todo!()
    }
}

/// Hit, miss and eviction counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
}

/// In-process cache: thread-safe, bounded by bytes, single-flight, evicts the
/// least recently used entries nobody holds.
pub struct ProjectorCache {
    _store: Store,
}

impl ProjectorCache {
    pub fn new(store: Store) -> Self {
        ProjectorCache { _store: store }
    }
    /// The `nopovm` set of dimension n.
    pub fn nopovm(&self, n: usize) -> Result<ProjectorHandle, StoreError> {
        let _ = n;
        todo!()
    }
    /// A custom dense set (header-checked, not re-validated: the supervisor
    /// validated it).
    pub fn custom(&self, path: &Path, n: usize) -> Result<ProjectorHandle, StoreError> {
        let _ = (path, n);
        todo!()
    }
    pub fn stats(&self) -> CacheStats {
        todo!()
    }
}
