//! numpy-compatible `.npy` files (SPEC 2): little-endian, C order, dtypes
//! `<c16` (matrices, projector sets), `<f8` and `<i8` (counts). Reading checks
//! header, dtype, shape and length and names what is wrong; writing is atomic
//! (temporary file in the same directory, fsync, rename); large arrays are
//! opened as read-only memory maps and handed out as zero-copy views.

use std::path::{Path, PathBuf};

pub use num_complex::Complex64 as C64;

/// Errors, each one sentence that reads after "failed to …".
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    #[error("read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("read {path}: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("write {path}: {reason}")]
    Write { path: PathBuf, reason: String },
}

/// A read-only memory map of a `<c16` array, header checked.
pub struct MappedC16 {
    _private: (),
}

impl MappedC16 {
    /// Maps `path` read-only; the shape must equal `shape` when given.
    pub fn open(path: &Path, shape: Option<&[usize]>) -> Result<Self, NpyError> {
        let _ = (path, shape);
        todo!()
    }
    pub fn shape(&self) -> &[usize] {
        todo!()
    }
    /// The data as a zero-copy slice over the map (C order).
    pub fn as_slice(&self) -> &[C64] {
        todo!()
    }
    /// The data as a zero-copy ndarray view over the map.
    pub fn view(&self) -> ndarray::ArrayViewD<'_, C64> {
        todo!()
    }
}

/// Reads a 1-D `<f8` or `<i8` counts file, converted to f64.
pub fn read_counts(path: &Path) -> Result<Vec<f64>, NpyError> {
    let _ = path;
    todo!()
}

/// Reads an (n, n) `<c16` matrix (C order) into memory.
pub fn read_matrix(path: &Path, n: usize) -> Result<Vec<C64>, NpyError> {
    let _ = (path, n);
    todo!()
}

/// Writes a `<c16` array of `shape` atomically (temp file, fsync, rename).
pub fn write_c16(path: &Path, shape: &[usize], data: &[C64]) -> Result<(), NpyError> {
    let _ = (path, shape, data);
    todo!()
}

/// Writes a 1-D `<f8` array atomically.
pub fn write_f8(path: &Path, data: &[f64]) -> Result<(), NpyError> {
    let _ = (path, data);
    todo!()
}

/// Writes a 1-D `<i8` array atomically.
pub fn write_i8(path: &Path, data: &[i64]) -> Result<(), NpyError> {
    let _ = (path, data);
    todo!()
}
