//! The projector store (docs/reference.md): one `.npy` file per (design, dimension) in a
//! cache directory, built once and atomically (cross-process lock, temporary
//! file, fsync, rename), checked on open and rebuilt when bad, memory-mapped
//! read-only and shared through the page cache; plus [`ProjectorCache`], the
//! in-process, byte-bounded, single-flight LRU cache that long-lived processes
//! (workers) get their projector sets from.

#![forbid(unsafe_code)]
// `clippy::pedantic` is reviewed (docs/ARCHITECTURE.md, "Lints"); these do not fit:
#![allow(
    // The cache's file names are qst's own, exact and lower-case (`.npy`, `.tmp`):
    // `X.NPY` is not one of them and must not be listed, verified or removed.
    clippy::case_sensitive_file_extension_comparisons
)]

mod cache;
mod config;
mod disk;

use std::path::PathBuf;

pub use cache::{CacheStats, ProjectorCache, ProjectorHandle, WeakProjectorHandle};
pub use config::{StoreConfig, physical_memory_bytes};
pub use disk::{
    BuildAction, BuildEvent, BuildProgress, FileReport, Formula, Preparation, Prepared, Store,
    builds_cancelled, cancel_builds,
};

/// Errors, each one sentence that reads after "failed to …".
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Npy(#[from] qst_npy::NpyError),
    #[error("use projector file {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error(
        "use projector file {path}: it is {bytes} bytes, over the cache budget of {budget} bytes"
    )]
    OverBudget {
        path: PathBuf,
        bytes: u64,
        budget: u64,
    },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}
