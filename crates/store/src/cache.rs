//! The in-process projector cache: thread-safe, bounded by bytes,
//! single-flight, least-recently-used eviction of entries nobody holds.
//!
//! A custom set whose every slice is rank 1 (to rounding) is given to the
//! math as its kets (`Projectors::Kets`, extracted once when it is loaded:
//! one pass over the map that stops at the first slice of higher rank), so
//! that each MLE iteration reads K·n numbers instead of the K·n² of the map.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::SystemTime;

use qst_math::{C64, Design, Projectors};
use qst_npy::MappedC16;
use tracing::{debug, info, warn};

use crate::disk::{Formula, check_custom_shape};
use crate::{Store, StoreError};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Builtin(Design, usize),
    Custom {
        path: PathBuf,
        bytes: u64,
        mtime: Option<SystemTime>,
        n: usize,
    },
}

/// One loaded projector set.
struct Entry {
    /// The built-in design, `None` for a custom set.
    builtin: Option<Design>,
    n: usize,
    /// What the entry counts against the budget: the mapped file size plus
    /// the kets held in memory (for `nopovm`, the size of its 2-sparse kets
    /// when it has no file).
    bytes: u64,
    /// The checked read-only map; `None` for a built-in set over the budget.
    map: Option<MappedC16>,
    /// A built-in design's kets, or a rank-1 custom set's (empty for
    /// `nopovm` and other custom sets).
    kets: Vec<C64>,
}

impl Entry {
    fn design_name(&self) -> &'static str {
        self.builtin.map_or("custom", Design::name)
    }
}

/// A projector set held from a [`ProjectorCache`]; keeps its mapping alive.
///
/// While any clone of a handle exists its entry is never evicted, and the
/// mapping stays valid even if the file is removed or the cache dropped.
#[derive(Clone)]
pub struct ProjectorHandle {
    entry: Arc<Entry>,
}

impl std::fmt::Debug for ProjectorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectorHandle")
            .field("design", &self.entry.design_name())
            .field("n", &self.entry.n)
            .field("bytes", &self.entry.bytes)
            .field("path", &self.path())
            .finish()
    }
}

impl ProjectorHandle {
    /// The set, for the math, in its fastest form: a built-in design from
    /// its kets (`nopovm` from its formula), a rank-1 custom set from its
    /// kets, another custom set from its map.
    #[must_use]
    pub fn projectors(&self) -> Projectors<'_> {
        let e = &*self.entry;
        match (e.builtin, &e.map) {
            (Some(design), _) => design.projectors(e.n, &e.kets),
            (None, Some(_)) if !e.kets.is_empty() => Projectors::Kets {
                n: e.n,
                kets: &e.kets,
            },
            (None, Some(m)) => Projectors::Dense {
                n: e.n,
                data: m.as_slice(),
            },
            (None, None) => unreachable!("a custom set is always mapped"),
        }
    }

    /// The built-in design, `None` for a custom set.
    #[must_use]
    pub fn builtin(&self) -> Option<Design> {
        self.entry.builtin
    }

    /// The dense set over the mapped file, when there is one (a `nopovm` set
    /// under the byte budget, or a custom set).
    #[must_use]
    pub fn dense(&self) -> Option<Projectors<'_>> {
        self.entry.map.as_ref().map(|m| Projectors::Dense {
            n: self.entry.n,
            data: m.as_slice(),
        })
    }

    /// The checked read-only map, when there is one.
    #[must_use]
    pub fn mapped(&self) -> Option<&MappedC16> {
        self.entry.map.as_ref()
    }

    /// The mapped file, when there is one.
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        self.entry.map.as_ref().map(MappedC16::path)
    }

    /// The design's name, or `custom`.
    #[must_use]
    pub fn design(&self) -> &'static str {
        self.entry.design_name()
    }

    /// The dimension n.
    #[must_use]
    pub fn dim(&self) -> usize {
        self.entry.n
    }

    /// The bytes this set counts against the cache budget.
    #[must_use]
    pub fn bytes(&self) -> u64 {
        self.entry.bytes
    }

    /// Whether two handles hold the very same loaded set (one load, shared).
    #[must_use]
    pub fn same_set(&self, other: &ProjectorHandle) -> bool {
        Arc::ptr_eq(&self.entry, &other.entry)
    }

    /// A reference to this loaded set that does not keep it loaded (the
    /// cache may evict it), for remembering per-set work such as an MLE
    /// scratch.
    #[must_use]
    pub fn downgrade(&self) -> WeakProjectorHandle {
        WeakProjectorHandle {
            entry: Arc::downgrade(&self.entry),
        }
    }
}

/// A [`ProjectorHandle`] that does not keep its set loaded.
#[derive(Clone, Debug)]
pub struct WeakProjectorHandle {
    entry: Weak<Entry>,
}

impl WeakProjectorHandle {
    /// Whether `h` holds the very set this was made from. Sound after an
    /// eviction too: the weak reference keeps the allocation, so no later
    /// load can share its address.
    #[must_use]
    pub fn is(&self, h: &ProjectorHandle) -> bool {
        std::ptr::eq(self.entry.as_ptr(), Arc::as_ptr(&h.entry))
    }
}

/// Hit, miss and eviction counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
}

enum Slot {
    /// Someone is building or opening it; others wait on the condvar.
    Loading,
    Ready {
        entry: Arc<Entry>,
        last_used: u64,
    },
}

#[derive(Default)]
struct Inner {
    slots: HashMap<Key, Slot>,
    clock: u64,
    bytes: u64,
    stats: CacheStats,
}

/// In-process cache: thread-safe, bounded by bytes, single-flight, evicts the
/// least recently used entries nobody holds.
///
/// The budget is the store's `max_bytes`. Entries that callers hold are never
/// evicted, so while handles are held the total may exceed it (logged).
pub struct ProjectorCache {
    store: Store,
    inner: Mutex<Inner>,
    changed: Condvar,
}

/// Removes a `Loading` slot if its loader fails or panics, so that waiters
/// do not wait forever.
struct LoadingGuard<'a> {
    cache: &'a ProjectorCache,
    key: Option<Key>,
}

impl Drop for LoadingGuard<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.cache.lock().slots.remove(&key);
            self.cache.changed.notify_all();
        }
    }
}

/// The memory a built-in set holds besides its map: its kets, or for
/// `nopovm` without a file its 2-sparse kets (two amplitudes per projector).
fn ket_bytes(formula: &Formula, mapped: bool) -> u64 {
    if formula.design.needs_kets() {
        (formula.kets.len() as u64).saturating_mul(16)
    } else if mapped {
        0
    } else {
        (formula.n as u64)
            .saturating_mul(formula.n as u64)
            .saturating_mul(32)
    }
}

impl ProjectorCache {
    /// An empty cache loading from `store`.
    #[must_use]
    pub fn new(store: Store) -> Self {
        ProjectorCache {
            store,
            inner: Mutex::new(Inner::default()),
            changed: Condvar::new(),
        }
    }

    /// The store this cache loads from.
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The built-in `design` at dimension n: its file built or checked (within
    /// the byte budget), its kets computed.
    ///
    /// # Errors
    ///
    /// [`StoreError::Invalid`] when `design` has no set at dimension n. A
    /// file that cannot be built, opened or mapped is not an error: the set
    /// then runs from its kets.
    pub fn builtin(&self, design: Design, n: usize) -> Result<ProjectorHandle, StoreError> {
        self.get(Key::Builtin(design, n), || {
            let formula = Formula::new(design, n).map_err(|reason| StoreError::Invalid {
                path: self.store.path(design, n),
                reason,
            })?;
            let (map, _action) = self.store.prepare_mapped(&formula)?;
            let bytes =
                map.as_ref().map_or(0, MappedC16::file_len) + ket_bytes(&formula, map.is_some());
            Ok(Entry {
                builtin: Some(design),
                n,
                bytes,
                map,
                kets: formula.kets,
            })
        })
    }

    /// A custom dense set (header-checked, not re-validated: the supervisor
    /// validated it), with its kets when every slice is rank 1.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] when the file cannot be read;
    /// [`StoreError::OverBudget`] when it is larger than the byte budget;
    /// [`StoreError::Npy`] when it cannot be mapped or its header is bad;
    /// [`StoreError::Invalid`] when its shape is not (K, n, n) with K >= n².
    pub fn custom(&self, path: &Path, n: usize) -> Result<ProjectorHandle, StoreError> {
        let meta = std::fs::metadata(path).map_err(|source| StoreError::Io {
            what: "read projector file",
            path: path.to_path_buf(),
            source,
        })?;
        let budget = self.store.config.max_bytes;
        if meta.len() > budget {
            return Err(StoreError::OverBudget {
                path: path.to_path_buf(),
                bytes: meta.len(),
                budget,
            });
        }
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let key = Key::Custom {
            path: canonical,
            bytes: meta.len(),
            mtime: meta.modified().ok(),
            n,
        };
        self.get(key, || {
            let map = MappedC16::open(path, None)?;
            check_custom_shape(&map, n).map_err(|reason| StoreError::Invalid {
                path: path.to_path_buf(),
                reason,
            })?;
            let kets = qst_math::rank_one_kets(n, map.as_slice()).unwrap_or_default();
            Ok(Entry {
                builtin: None,
                n,
                bytes: map.file_len() + (kets.len() as u64).saturating_mul(16),
                map: Some(map),
                kets,
            })
        })
    }

    pub fn stats(&self) -> CacheStats {
        self.lock().stats.clone()
    }

    /// The bytes of every entry now in the cache.
    pub fn resident_bytes(&self) -> u64 {
        self.lock().bytes
    }

    fn get(
        &self,
        key: Key,
        load: impl FnOnce() -> Result<Entry, StoreError>,
    ) -> Result<ProjectorHandle, StoreError> {
        let mut inner = self.lock();
        loop {
            inner.clock += 1;
            let now = inner.clock;
            match inner.slots.get_mut(&key) {
                Some(Slot::Ready { entry, last_used }) => {
                    *last_used = now;
                    let entry = Arc::clone(entry);
                    inner.stats.hits += 1;
                    let s = &inner.stats;
                    debug!(
                        design = entry.design_name(),
                        n = entry.n,
                        hits = s.hits,
                        misses = s.misses,
                        evictions = s.evictions,
                        "projector cache hit"
                    );
                    return Ok(ProjectorHandle { entry });
                }
                Some(Slot::Loading) => {
                    inner = self
                        .changed
                        .wait(inner)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                None => {
                    inner.slots.insert(key.clone(), Slot::Loading);
                    inner.stats.misses += 1;
                    break;
                }
            }
        }
        drop(inner);

        let mut guard = LoadingGuard {
            cache: self,
            key: Some(key),
        };
        let entry = Arc::new(load()?);
        let Some(key) = guard.key.take() else {
            unreachable!("the guard holds the key until here")
        };
        let mut inner = self.lock();
        let budget = self.store.config.max_bytes;
        Self::evict_to_fit(&mut inner, entry.bytes, budget);
        inner.bytes += entry.bytes;
        inner.clock += 1;
        let now = inner.clock;
        inner.slots.insert(
            key,
            Slot::Ready {
                entry: Arc::clone(&entry),
                last_used: now,
            },
        );
        let s = &inner.stats;
        info!(
            design = entry.design_name(),
            n = entry.n,
            bytes = entry.bytes,
            path = %entry.map.as_ref().map_or_else(|| "(kets, no file)".to_string(), |m| m.path().display().to_string()),
            hits = s.hits,
            misses = s.misses,
            evictions = s.evictions,
            cache_bytes = inner.bytes,
            "loaded projector set"
        );
        if inner.bytes > budget {
            warn!(
                cache_bytes = inner.bytes,
                budget, "projector cache over its byte budget: the entries over it are in use"
            );
        }
        drop(inner);
        self.changed.notify_all();
        Ok(ProjectorHandle { entry })
    }

    /// Evicts least recently used entries that nobody holds until `extra`
    /// more bytes fit the budget, or nothing more can go.
    fn evict_to_fit(inner: &mut Inner, extra: u64, budget: u64) {
        while inner.bytes + extra > budget {
            // A handle comes from `get` (under this lock) or is cloned from
            // another handle, and there are no weak upgrades: a count of 1
            // (the cache's own) means nobody holds the entry, and nobody can
            // start to before this lock is released.
            let victim = inner
                .slots
                .iter()
                .filter_map(|(k, s)| match s {
                    Slot::Ready { entry, last_used } if Arc::strong_count(entry) == 1 => {
                        Some((*last_used, k))
                    }
                    _ => None,
                })
                .min_by_key(|(t, _)| *t)
                .map(|(_, k)| k.clone());
            let Some(victim) = victim else { break };
            if let Some(Slot::Ready { entry, .. }) = inner.slots.remove(&victim) {
                inner.bytes -= entry.bytes;
                inner.stats.evictions += 1;
                let s = &inner.stats;
                info!(
                    design = entry.design_name(),
                    n = entry.n,
                    bytes = entry.bytes,
                    hits = s.hits,
                    misses = s.misses,
                    evictions = s.evictions,
                    cache_bytes = inner.bytes,
                    "evicted projector set"
                );
            }
        }
    }
}
