//! The on-disk cache directory: building, checking, listing, verifying and
//! clearing projector files, and validating custom projector files once.
//!
//! Validating a custom file (Hermitian, positive semidefinite slices, an
//! SVD of the K × n² matrix M) takes seconds for a few tens of MB, and the
//! supervisor validates before any worker starts, so it is done once per
//! file *content*, not once per run: the verdict (valid or the reason,
//! rank 1 or not) is recorded in a sidecar `custom-<hash of the path>-n<n>.verdict.json`
//! in the cache directory, written atomically, and reused when the
//! canonical path, size, modification time, n and the XXH3-128 hash of
//! every byte of the file all match (hashing 41 MB takes ~10 ms; the hash
//! catches an edit that keeps the size and the modification time).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime};

use qst_math::Design;
use qst_npy::{C64, MappedC16, NpyError, shape_str};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::{StoreConfig, StoreError};

/// How a built-in set is to be used after [`Store::ensure`].
#[derive(Clone, Debug, PartialEq)]
pub enum Prepared {
    /// The checked file.
    File(PathBuf),
    /// Over the byte budget: no file; runs from kets.
    KetsOnly,
}

/// What [`Store::prepare`] had to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildAction {
    /// The file was there and passed its checks (or another process built it
    /// while this one waited for the lock).
    AlreadyValid,
    /// The file was missing and this process built it.
    Built,
    /// The file failed its checks (the reason) and this process rebuilt it.
    Rebuilt { reason: String },
    /// Over the byte budget: no file is written.
    NotWritten,
    /// The file could not be built, opened or mapped (a full or read-only
    /// file system, a directory in its place, a map refused under a memory
    /// limit, an untrusted lock): the set runs from its kets; the reason.
    FromKets { reason: String },
}

/// The outcome of [`Store::prepare`].
#[derive(Clone, Debug, PartialEq)]
pub struct Preparation {
    pub prepared: Prepared,
    pub action: BuildAction,
}

/// One file of `qst cache ls` / `verify`.
#[derive(Clone, Debug)]
pub struct FileReport {
    pub path: PathBuf,
    pub bytes: u64,
    /// `None` when good, else why it is bad.
    pub problem: Option<String>,
    /// A temporary file left by a build that died (`qst cache clear` and the
    /// next build remove it).
    pub stale_temporary: bool,
}

/// A custom file is identified by its path, size and modification time.
type ValidationKey = (PathBuf, u64, Option<SystemTime>, usize);

/// The sidecar record of one custom file's validation (see the module doc).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Verdict {
    /// The canonical path, as text.
    path: String,
    bytes: u64,
    /// The modification time since the Unix epoch (seconds, nanoseconds).
    mtime: Option<(u64, u32)>,
    n: usize,
    /// XXH3-128 of the whole file (header and data), hex.
    xxh3: String,
    /// `None` when valid, else why not.
    invalid: Option<String>,
    /// Every slice is rank 1 (to rounding): the set runs from its kets.
    rank_one: bool,
}

fn mtime_pair(t: Option<SystemTime>) -> Option<(u64, u32)> {
    let d = t?.duration_since(SystemTime::UNIX_EPOCH).ok()?;
    Some((d.as_secs(), d.subsec_nanos()))
}

/// `O_NOFOLLOW | O_NONBLOCK`: a sidecar that is a link or a FIFO is not read.
fn libc_flags() -> i32 {
    nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK
}

/// XXH3-128 of a mapped file's header and data, hex.
fn content_hash(map: &MappedC16) -> String {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(map.header_bytes());
    h.update(map.data_bytes());
    format!("{:032x}", h.digest128())
}

/// The on-disk cache directory.
///
/// Clones share the record of validated custom files and the counters.
#[derive(Clone, Debug)]
pub struct Store {
    pub config: StoreConfig,
    validated: Arc<Mutex<HashMap<ValidationKey, Result<(), String>>>>,
    builds: Arc<AtomicU64>,
    validations: Arc<AtomicU64>,
    progress: ProgressHook,
}

/// What a build of a projector file reports to a [`BuildProgress`] hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildEvent<'a> {
    /// The build starts; the file will have `bytes` bytes.
    Started { path: &'a Path, bytes: u64 },
    /// `written` of `bytes` bytes are written (every few MiB).
    Progress {
        path: &'a Path,
        written: u64,
        bytes: u64,
    },
    /// The build ended, built or not.
    Ended { path: &'a Path, ok: bool },
}

/// A callback that follows the builds of a [`Store`] (a progress bar).
pub type BuildProgress = Arc<dyn Fn(BuildEvent<'_>) + Send + Sync>;

/// How often (bytes) a build reports its progress.
const PROGRESS_STEP: u64 = 4 << 20;

#[derive(Clone, Default)]
struct ProgressHook(Option<BuildProgress>);

impl std::fmt::Debug for ProgressHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Some(hook)"
        } else {
            "None"
        })
    }
}

/// Why an existing file cannot be used.
enum Unusable {
    Missing,
    /// Proven bad (header, shape, length, content, not a regular file, an
    /// untrusted owner): rebuilt.
    Bad(String),
    /// Could not be opened or mapped (permissions, a memory limit): not
    /// proven bad, so never rebuilt; the set runs from its kets.
    Unavailable(String),
}

/// Whether files owned by `uid` are trusted: this user's own, or root's.
fn trusted_owner(uid: u32) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    uid == 0 || uid == nix::unistd::geteuid().as_raw()
}

/// Opens (creating) a lock file without following a symbolic link or
/// blocking on a FIFO; refuses anything but a regular file this user (or
/// root) owns.
fn open_lock(path: &Path, create: bool) -> std::io::Result<File> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("it is not a regular file"));
    }
    if !trusted_owner(meta.uid()) {
        return Err(std::io::Error::other(format!(
            "it is owned by user {}, not by you",
            meta.uid()
        )));
    }
    Ok(f)
}

/// The target of a build's temporary file `.{target}.{random}.tmp`.
fn temp_target(name: &str) -> Option<&str> {
    let inner = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (target, _random) = inner.rsplit_once('.')?;
    target.ends_with(".npy").then_some(target)
}

/// Whether a live process holds the build lock of `target` in `dir`.
fn build_in_progress(dir: &Path, target: &str) -> bool {
    match open_lock(&dir.join(format!("{target}.lock")), false) {
        Ok(f) => matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock)),
        Err(_) => false,
    }
}

/// Set by a signal handler (`qst run`): builds stop between slices.
static CANCELLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Asks every build in this process to stop at its next slice (called from
/// a signal handler's thread); the build's temporary file is removed.
pub fn cancel_builds() {
    CANCELLED.store(true, Ordering::SeqCst);
}

/// Whether [`cancel_builds`] was called.
pub fn builds_cancelled() -> bool {
    CANCELLED.load(Ordering::SeqCst)
}

/// A built-in set's formula: what every slice of its file must hold.
pub struct Formula {
    pub design: Design,
    pub n: usize,
    /// The design's kets (empty for `nopovm`, whose slices have their own formula).
    pub kets: Vec<C64>,
}

impl Formula {
    /// The formula of `design` at dimension n (computes its kets).
    ///
    /// # Errors
    ///
    /// The reason when `design` has no set at dimension n.
    pub fn new(design: Design, n: usize) -> Result<Formula, String> {
        design.check_dim(n).map_err(|e| e.to_string())?;
        let kets = if design.needs_kets() {
            design.kets(n)
        } else {
            Vec::new()
        };
        Ok(Formula { design, n, kets })
    }

    /// K, the number of projectors (0 if it overflows).
    #[must_use]
    pub fn count(&self) -> usize {
        self.design.count(self.n).unwrap_or(0)
    }

    /// The shape (K, n, n) of the dense file (`None` if it overflows).
    #[must_use]
    pub fn shape(&self) -> Option<[usize; 3]> {
        Some([self.design.count(self.n)?, self.n, self.n])
    }

    /// `Π_k` into `values`.
    pub fn slice(&self, k: usize, values: &mut [C64]) {
        self.design.slice(self.n, &self.kets, k, values);
    }

    /// The little-endian bytes of `Π_k`, into `bytes`.
    fn slice_bytes(&self, k: usize, values: &mut [C64], bytes: &mut Vec<u8>) {
        self.slice(k, values);
        bytes.clear();
        for z in values.iter() {
            bytes.extend_from_slice(&z.re.to_le_bytes());
            bytes.extend_from_slice(&z.im.to_le_bytes());
        }
    }

    /// Compares slice k of a mapped file with the formula, byte for byte.
    fn slice_problem(
        &self,
        map: &MappedC16,
        k: usize,
        values: &mut [C64],
        bytes: &mut Vec<u8>,
    ) -> Option<String> {
        let n = self.n;
        self.slice_bytes(k, values, bytes);
        let start = k * bytes.len();
        let got = &map.data_bytes()[start..start + bytes.len()];
        if got == bytes.as_slice() {
            return None;
        }
        let at = got
            .iter()
            .zip(bytes.iter())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        let entry = at / 16;
        Some(format!(
            "projector {k} differs from the {} formula at entry [{}, {}] (data byte {})",
            self.design,
            entry / n,
            entry % n,
            map.header_bytes().len() + start + at
        ))
    }
}

/// A few slices to spot-check: the first and last of each kind, plus three
/// that vary from one open to the next.
fn sample_slices(n: usize, k_all: usize) -> Vec<usize> {
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()))
        ^ u64::from(std::process::id()).rotate_left(32);
    let mut x = seed | 1;
    let mut ks = vec![0, n - 1, n, n + 1, k_all - 2, k_all - 1];
    for _ in 0..3 {
        // xorshift64
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        #[allow(clippy::cast_possible_truncation)] // below k_all, which is a usize
        let k = (x % k_all as u64) as usize;
        ks.push(k);
    }
    ks.retain(|&k| k < k_all);
    ks.sort_unstable();
    ks.dedup();
    ks
}

fn io_err(what: &'static str, path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

impl Store {
    /// A store over `config`'s directory and byte budget (nothing is read
    /// or created until a set is asked for).
    #[must_use]
    pub fn new(config: StoreConfig) -> Self {
        Store {
            config,
            validated: Arc::default(),
            builds: Arc::default(),
            validations: Arc::default(),
            progress: ProgressHook::default(),
        }
    }

    /// This store, with `hook` told of every build's start, progress and end.
    #[must_use]
    pub fn with_build_progress(mut self, hook: BuildProgress) -> Self {
        self.progress = ProgressHook(Some(hook));
        self
    }

    /// `<dir>/{design}_n{n}.npy`.
    #[must_use]
    pub fn path(&self, design: Design, n: usize) -> PathBuf {
        self.config.dir.join(design.file_name(n))
    }

    /// The lock file beside `{design}_n{n}.npy` that serializes building it.
    #[must_use]
    pub fn lock_path(&self, design: Design, n: usize) -> PathBuf {
        self.config
            .dir
            .join(format!("{}.lock", design.file_name(n)))
    }

    /// The size of the dense file of `design` at dimension n (header and data).
    #[must_use]
    pub fn file_len(design: Design, n: usize) -> Option<u64> {
        qst_npy::c16_file_len(&[design.count(n)?, n, n])
    }

    /// Whether the dense file of `design` at dimension n fits the byte budget.
    #[must_use]
    pub fn fits_budget(&self, design: Design, n: usize) -> bool {
        Self::file_len(design, n).is_some_and(|len| len <= self.config.max_bytes)
    }

    /// How many files this store (and its clones) has built, for logs and tests.
    #[must_use]
    pub fn builds(&self) -> u64 {
        self.builds.load(Ordering::SeqCst)
    }

    /// How many full validations of custom files this store (and its clones)
    /// has run, for logs and tests.
    #[must_use]
    pub fn validations(&self) -> u64 {
        self.validations.load(Ordering::SeqCst)
    }

    /// Builds the file if missing (one process builds, racers wait), or checks
    /// header, length and sampled slices if present, rebuilding a bad file.
    ///
    /// # Errors
    ///
    /// [`StoreError::Invalid`] when `design` has no set at dimension n. A
    /// file that cannot be built, opened or mapped is not an error: the set
    /// then runs from its kets.
    pub fn ensure(&self, design: Design, n: usize) -> Result<Prepared, StoreError> {
        self.prepare(design, n).map(|p| p.prepared)
    }

    /// [`Store::ensure`], also saying what it had to do.
    ///
    /// # Errors
    ///
    /// As [`Store::ensure`].
    pub fn prepare(&self, design: Design, n: usize) -> Result<Preparation, StoreError> {
        let formula = Formula::new(design, n).map_err(|reason| StoreError::Invalid {
            path: self.path(design, n),
            reason,
        })?;
        let (map, action) = self.prepare_mapped(&formula)?;
        let prepared = match map {
            Some(m) => Prepared::File(m.path().to_path_buf()),
            None => Prepared::KetsOnly,
        };
        Ok(Preparation { prepared, action })
    }

    /// [`Store::prepare`], checking every byte of a file that exists (what
    /// `qst prebuild` does: it is the explicit check).
    ///
    /// # Errors
    ///
    /// As [`Store::ensure`].
    pub fn prepare_verified(&self, design: Design, n: usize) -> Result<Preparation, StoreError> {
        let formula = Formula::new(design, n).map_err(|reason| StoreError::Invalid {
            path: self.path(design, n),
            reason,
        })?;
        let (map, action) = self.prepare_mapped_with(&formula, true)?;
        let prepared = match map {
            Some(m) => Prepared::File(m.path().to_path_buf()),
            None => Prepared::KetsOnly,
        };
        Ok(Preparation { prepared, action })
    }

    /// The work of [`Store::prepare`], handing back the checked map.
    pub(crate) fn prepare_mapped(
        &self,
        formula: &Formula,
    ) -> Result<(Option<MappedC16>, BuildAction), StoreError> {
        self.prepare_mapped_with(formula, false)
    }

    /// Opens and checks the file (every slice when `full`, else a sample);
    /// builds it when missing and rebuilds it when proven bad. A file that
    /// cannot be built, opened or mapped is not an error: the set then runs
    /// from its kets (`BuildAction::FromKets`, with one warning).
    fn prepare_mapped_with(
        &self,
        formula: &Formula,
        full: bool,
    ) -> Result<(Option<MappedC16>, BuildAction), StoreError> {
        let (design, n) = (formula.design, formula.n);
        let path = self.path(design, n);
        let len = Self::file_len(design, n);
        if len.is_none_or(|len| len > self.config.max_bytes) {
            info!(
                design = design.name(),
                n,
                bytes = len,
                budget = self.config.max_bytes,
                "projector file over the cache byte budget: not written, the set runs from its kets"
            );
            return Ok((None, BuildAction::NotWritten));
        }
        let from_kets = |reason: String| {
            warn!(
                design = design.name(),
                n,
                path = %path.display(),
                %reason,
                "projector file cannot be used; the set runs from its kets"
            );
            Ok((None, BuildAction::FromKets { reason }))
        };
        match Self::open_checked(formula, &path, full) {
            Ok(map) => return Ok((Some(map), BuildAction::AlreadyValid)),
            Err(Unusable::Missing) => {}
            Err(Unusable::Bad(reason)) => {
                warn!(path = %path.display(), %reason, "projector file failed its checks; it will be rebuilt");
            }
            Err(Unusable::Unavailable(reason)) => return from_kets(reason),
        }
        if let Err(e) = fs::create_dir_all(&self.config.dir) {
            return from_kets(
                io_err("create the cache directory", &self.config.dir, e).to_string(),
            );
        }
        let lock_path = self.lock_path(design, n);
        let lock = match open_lock(&lock_path, true) {
            Ok(l) => l,
            Err(e) => return from_kets(io_err("open the lock file", &lock_path, e).to_string()),
        };
        if let Err(e) = lock.lock() {
            return from_kets(io_err("lock", &lock_path, e).to_string());
        }
        // Another process may have built (or rebuilt) it while this one waited.
        let action = match Self::open_checked(formula, &path, full) {
            Ok(map) => return Ok((Some(map), BuildAction::AlreadyValid)),
            Err(Unusable::Missing) => BuildAction::Built,
            Err(Unusable::Bad(reason)) => BuildAction::Rebuilt { reason },
            Err(Unusable::Unavailable(reason)) => return from_kets(reason),
        };
        self.remove_stale_temporaries(&design.file_name(n));
        if let Err(e) = self.build(formula, &path) {
            return from_kets(e.to_string());
        }
        let map = match MappedC16::open_nofollow(&path, Some(&[formula.count(), n, n])) {
            Ok(m) => m,
            Err(e) => return from_kets(e.to_string()),
        };
        drop(lock);
        Ok((Some(map), action))
    }

    /// Removes the temporary files of builds that died: those of `own` (whose
    /// lock the caller holds) and of any target whose lock nobody holds.
    fn remove_stale_temporaries(&self, own: &str) {
        let Ok(entries) = fs::read_dir(&self.config.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(target) = temp_target(&name) else {
                continue;
            };
            if target == own || !build_in_progress(&self.config.dir, target) {
                match fs::remove_file(entry.path()) {
                    Ok(()) => {
                        info!(file = %name, "removed the temporary file of a build that died");
                    }
                    Err(e) => {
                        warn!(file = %name, error = %e, "could not remove a stale temporary file");
                    }
                }
            }
        }
    }

    /// Writes `{design}_n{n}.npy` one slice at a time (temporary file, fsync,
    /// rename), stopping between slices if the builds are cancelled. The
    /// caller holds the lock.
    fn build(&self, formula: &Formula, path: &Path) -> Result<(), StoreError> {
        let (design, n) = (formula.design, formula.n);
        let started = Instant::now();
        let k_all = formula.count();
        let bytes = Self::file_len(design, n).unwrap_or(0);
        info!(
            design = design.name(),
            n,
            bytes,
            path = %path.display(),
            "building projector file"
        );
        let hook = self.progress.0.as_deref();
        if let Some(h) = hook {
            h(BuildEvent::Started { path, bytes });
        }
        let slice_bytes = (n * n * 16) as u64;
        let header = bytes.saturating_sub(k_all as u64 * slice_bytes);
        let mut next = PROGRESS_STEP;
        let written = qst_npy::try_write_c16_chunks(path, &[k_all, n, n], n * n, |k, out| {
            if builds_cancelled() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::Interrupted,
                    "the build was interrupted by a signal",
                ));
            }
            formula.slice(k, out);
            let written = header + (k as u64 + 1) * slice_bytes;
            if let (Some(h), true) = (hook, written >= next) {
                h(BuildEvent::Progress {
                    path,
                    written,
                    bytes,
                });
                next = written + PROGRESS_STEP;
            }
            Ok(())
        });
        if let Some(h) = hook {
            h(BuildEvent::Ended {
                path,
                ok: written.is_ok(),
            });
        }
        written?;
        self.builds.fetch_add(1, Ordering::SeqCst);
        info!(
            design = design.name(),
            n,
            bytes = Self::file_len(design, n),
            path = %path.display(),
            seconds = started.elapsed().as_secs_f64(),
            "built projector file"
        );
        Ok(())
    }

    /// Opens `path` (never through a symbolic link, never blocking on a FIFO)
    /// with type, owner, header, dtype, shape and length checked, then
    /// compares sampled slices (every slice when `full`) with the formula.
    fn open_checked(formula: &Formula, path: &Path, full: bool) -> Result<MappedC16, Unusable> {
        use std::os::unix::fs::MetadataExt;
        let n = formula.n;
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(Unusable::Bad("it is a symbolic link".into()));
            }
            Ok(meta) if !meta.is_file() => {
                return Err(Unusable::Bad(
                    "it is not a regular file (a directory, FIFO, socket or device)".into(),
                ));
            }
            Ok(meta) if !trusted_owner(meta.uid()) => {
                return Err(Unusable::Bad(format!(
                    "it is owned by user {}, not by you, so it is not trusted",
                    meta.uid()
                )));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Unusable::Missing),
            Err(e) => return Err(Unusable::Unavailable(e.to_string())),
        }
        // Callers checked the budget, so the shape fits.
        let map = match MappedC16::open_nofollow(path, Some(&[formula.count(), n, n])) {
            Ok(m) => m,
            Err(NpyError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(Unusable::Missing);
            }
            Err(NpyError::Io { source, .. }) => {
                return Err(Unusable::Unavailable(format!(
                    "cannot open or map it: {source}"
                )));
            }
            Err(e) => return Err(Unusable::Bad(e.reason())),
        };
        let mut values = vec![C64::new(0.0, 0.0); n * n];
        let mut bytes = Vec::with_capacity(n * n * 16);
        let ks: Vec<usize> = if full {
            (0..formula.count()).collect()
        } else {
            sample_slices(n, formula.count())
        };
        for k in ks {
            if let Some(problem) = formula.slice_problem(&map, k, &mut values, &mut bytes) {
                return Err(Unusable::Bad(problem));
            }
        }
        Ok(map)
    }

    /// Lists the files in the cache with sizes (no checks): every `.npy`
    /// name (a FIFO or link there too: `verify` reports it), and the
    /// temporary files of builds that died (`stale_temporary`). Lock files
    /// and the temporary files of builds in progress are not listed.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] when the cache directory (other than a missing
    /// one) or an entry's metadata cannot be read.
    pub fn list(&self) -> Result<Vec<FileReport>, StoreError> {
        let dir = &self.config.dir;
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("list the cache directory", dir, e)),
        };
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_err("list the cache directory", dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let stale = match temp_target(&name) {
                Some(target) => !build_in_progress(dir, target),
                None => false,
            };
            if !stale && (name.starts_with('.') || !name.ends_with(".npy")) {
                continue;
            }
            let meta = entry
                .metadata()
                .map_err(|e| io_err("read", &entry.path(), e))?;
            if !meta.is_dir() {
                files.push(FileReport {
                    path: entry.path(),
                    bytes: meta.len(),
                    problem: None,
                    stale_temporary: stale,
                });
            }
        }
        files.sort_by_key(|f| {
            let name = f
                .path
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let key = Design::parse_file_name(&name).map(|(d, n)| (n, d));
            (key.is_none(), key, name)
        });
        Ok(files)
    }

    /// Checks every byte of every file against its formula (a bad file is
    /// reported in its [`FileReport::problem`], not as an error).
    ///
    /// # Errors
    ///
    /// As [`Store::list`].
    pub fn verify(&self) -> Result<Vec<FileReport>, StoreError> {
        let mut files = self.list()?;
        files.retain(|f| !f.stale_temporary);
        for f in &mut files {
            let name = f
                .path
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            f.problem = match Design::parse_file_name(&name) {
                Some((design, n)) => Self::verify_file(&f.path, design, n).err(),
                None => Some(
                    "it is not a file qst builds ({design}_n{n}.npy for a built-in design)"
                        .to_string(),
                ),
            };
            match &f.problem {
                None => info!(path = %f.path.display(), bytes = f.bytes, "projector file verified"),
                Some(p) => warn!(path = %f.path.display(), problem = %p, "projector file is bad"),
            }
        }
        Ok(files)
    }

    fn verify_file(path: &Path, design: Design, n: usize) -> Result<(), String> {
        let formula = Formula::new(design, n)?;
        let shape = formula
            .shape()
            .ok_or_else(|| format!("its dimension {n} is too large"))?;
        // Opening checks the shape against the file's length before anything is allocated.
        let map = MappedC16::open_nofollow(path, Some(&shape)).map_err(|e| e.reason())?;
        let mut values = vec![C64::new(0.0, 0.0); n * n];
        let mut bytes = Vec::with_capacity(n * n * 16);
        for k in 0..formula.count() {
            if let Some(problem) = formula.slice_problem(&map, k, &mut values, &mut bytes) {
                return Err(problem);
            }
        }
        Ok(())
    }

    /// Removes every file of the cache; returns how many `.npy` files. Also
    /// removes lock files, and temporary files left by builds that died
    /// (those of a build in progress, whose lock is held, stay).
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] when the cache directory (other than a missing
    /// one) cannot be listed or a file in it cannot be removed.
    pub fn clear(&self) -> Result<usize, StoreError> {
        let dir = &self.config.dir;
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io_err("list the cache directory", dir, e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_err("list the cache directory", dir, e))?;
            // Anything but a directory: files, and links or FIFOs planted
            // at a cache file's name.
            if !entry
                .file_type()
                .map_err(|e| io_err("read", &entry.path(), e))?
                .is_dir()
            {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        let remove = |name: &str| {
            let path = dir.join(name);
            fs::remove_file(&path).or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Ok(()),
                _ => Err(io_err("remove", &path, e)),
            })
        };
        // Temporary files first, while their lock files still exist.
        for name in names
            .iter()
            .filter(|n| n.starts_with('.') && n.ends_with(".tmp"))
        {
            let Some(target) = temp_target(name) else {
                continue;
            };
            if build_in_progress(dir, target) {
                info!(file = %name, "left the temporary file of a build in progress");
            } else {
                remove(name)?;
            }
        }
        let mut count = 0;
        for name in &names {
            if name.starts_with('.') {
                continue;
            }
            if name.ends_with(".npy") {
                remove(name)?;
                count += 1;
            } else if name.ends_with(".npy.lock") || name.ends_with(".verdict.json") {
                remove(name)?;
            }
        }
        info!(dir = %dir.display(), files = count, "cleared the projector cache");
        Ok(count)
    }

    /// The sidecar of a custom file (canonical path) at dimension n.
    fn verdict_path(&self, canonical: &Path, n: usize) -> PathBuf {
        let h = xxhash_rust::xxh3::xxh3_64(canonical.as_os_str().as_encoded_bytes());
        self.config
            .dir
            .join(format!("custom-{h:016x}-n{n}.verdict.json"))
    }

    /// The recorded verdict for exactly this file and content, if any. The
    /// sidecar is opened without following a link or blocking on a FIFO,
    /// and only a regular file of at most 64 KiB is read.
    fn read_verdict(&self, want: &Verdict, canonical: &Path) -> Option<Verdict> {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let f = OpenOptions::new()
            .read(true)
            .custom_flags(libc_flags())
            .open(self.verdict_path(canonical, want.n))
            .ok()?;
        let meta = f.metadata().ok()?;
        if !meta.is_file() || meta.len() > 64 << 10 {
            return None;
        }
        #[allow(clippy::cast_possible_truncation)] // at most 64 KiB (checked above)
        let mut text = Vec::with_capacity(meta.len() as usize);
        f.take(64 << 10).read_to_end(&mut text).ok()?;
        let got: Verdict = serde_json::from_slice(&text).ok()?;
        let same = got.path == want.path
            && got.bytes == want.bytes
            && got.mtime == want.mtime
            && got.n == want.n
            && got.xxh3 == want.xxh3;
        same.then_some(got)
    }

    /// Writes the sidecar atomically (temporary file, rename); a failure is
    /// logged, not an error (the next run validates again).
    fn write_verdict(&self, v: &Verdict, canonical: &Path) {
        let path = self.verdict_path(canonical, v.n);
        let write = || -> Result<(), String> {
            fs::create_dir_all(&self.config.dir).map_err(|e| e.to_string())?;
            let text = serde_json::to_vec_pretty(v).map_err(|e| e.to_string())?;
            let mut tmp = tempfile::Builder::new()
                .prefix(".verdict.")
                .suffix(".tmp")
                .tempfile_in(&self.config.dir)
                .map_err(|e| e.to_string())?;
            std::io::Write::write_all(&mut tmp, &text).map_err(|e| e.to_string())?;
            tmp.as_file().sync_all().map_err(|e| e.to_string())?;
            tmp.persist(&path).map_err(|e| e.error.to_string())?;
            Ok(())
        };
        if let Err(reason) = write() {
            warn!(path = %path.display(), %reason, "could not record the validation of a custom projector file");
        }
    }

    /// Validates a custom projector file (docs/reference.md) once per (path, size,
    /// mtime) in this process, and once per content across processes (the
    /// sidecar of the module doc); over the byte budget is an error.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] when the file's metadata cannot be read;
    /// [`StoreError::OverBudget`] when it is larger than the byte budget;
    /// [`StoreError::Npy`] when it cannot be opened or mapped;
    /// [`StoreError::Invalid`] when it is not a valid projector set of
    /// dimension n (the reason says why).
    pub fn validate_custom(&self, path: &Path, n: usize) -> Result<(), StoreError> {
        let meta = fs::metadata(path).map_err(|e| io_err("read projector file", path, e))?;
        let bytes = meta.len();
        if bytes > self.config.max_bytes {
            return Err(StoreError::OverBudget {
                path: path.to_path_buf(),
                bytes,
                budget: self.config.max_bytes,
            });
        }
        let canonical = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let key = (canonical, bytes, meta.modified().ok(), n);
        let known = self
            .validated
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .cloned();
        if let Some(result) = known {
            return result.map_err(|reason| StoreError::Invalid {
                path: path.to_path_buf(),
                reason,
            });
        }
        self.validate_uncached(key, path)
    }

    /// [`Store::validate_custom`] of a file not validated before in this
    /// process: from its sidecar when that records this very content, else
    /// in full (and the sidecar written).
    fn validate_uncached(&self, key: ValidationKey, path: &Path) -> Result<(), StoreError> {
        let (bytes, n) = (key.1, key.3);
        let started = Instant::now();
        let map = match MappedC16::open(path, None) {
            Ok(m) => m,
            // Not remembered: the file may become readable.
            Err(e @ NpyError::Io { .. }) => return Err(e.into()),
            Err(e) => return self.remember(key, Err(e.reason()), path, started),
        };
        let mut verdict = Verdict {
            path: key.0.to_string_lossy().into_owned(),
            bytes,
            mtime: mtime_pair(key.2),
            n,
            xxh3: content_hash(&map),
            invalid: None,
            rank_one: false,
        };
        if let Some(v) = self.read_verdict(&verdict, &key.0) {
            info!(
                path = %path.display(),
                rank_one = v.rank_one,
                seconds = started.elapsed().as_secs_f64(),
                "custom projector file validated before (same content)"
            );
            let r = v.invalid.map_or(Ok(()), Err);
            self.validated
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(key, r.clone());
            return r.map_err(|reason| StoreError::Invalid {
                path: path.to_path_buf(),
                reason,
            });
        }
        let r = check_custom_shape(&map, n)
            .and_then(|()| qst_math::validate_dense(n, map.as_slice()).map_err(|e| e.to_string()));
        self.validations.fetch_add(1, Ordering::SeqCst);
        verdict.rank_one = r.is_ok() && qst_math::rank_one_kets(n, map.as_slice()).is_some();
        verdict.invalid = r.clone().err();
        self.write_verdict(&verdict, &key.0);
        if verdict.rank_one {
            info!(path = %path.display(), "custom projector set is rank 1: it runs from its kets");
        }
        self.remember(key, r, path, started)
    }

    fn remember(
        &self,
        key: ValidationKey,
        result: Result<(), String>,
        path: &Path,
        started: Instant,
    ) -> Result<(), StoreError> {
        match &result {
            Ok(()) => info!(
                path = %path.display(),
                seconds = started.elapsed().as_secs_f64(),
                "validated custom projector file"
            ),
            Err(reason) => {
                warn!(path = %path.display(), %reason, "custom projector file is invalid");
            }
        }
        self.validated
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, result.clone());
        result.map_err(|reason| StoreError::Invalid {
            path: path.to_path_buf(),
            reason,
        })
    }
}

/// A custom set must be (K, n, n) with K >= n².
pub(crate) fn check_custom_shape(map: &MappedC16, n: usize) -> Result<(), String> {
    match map.shape() {
        [k, a, b] if *a == n && *b == n && *k >= n * n => Ok(()),
        other => Err(format!(
            "its shape is {}, but a projector set of dimension {n} must be (K, {n}, {n}) with K >= {}",
            shape_str(other),
            n * n
        )),
    }
}
