//! numpy-compatible `.npy` files (docs/reference.md): little-endian, C order, dtypes
//! `<c16` (matrices, projector sets), `<f8` and `<i8` (counts). Reading checks
//! header, dtype, shape and length and names what is wrong; writing is atomic
//! (temporary file in the same directory, fsync, rename); large arrays are
//! opened as read-only memory maps and handed out as zero-copy views.
//!
//! The header dictionary is parsed by `ndarray-npy` (the Python-literal
//! grammar is its job); this crate guards it first (magic string, version,
//! header length against the bytes actually present, bracket nesting) so that
//! no input, however malformed, can make the parser allocate what the file does
//! not hold, recurse without bound, or panic.

#[cfg(target_endian = "big")]
compile_error!("qst-npy maps little-endian .npy data directly and needs a little-endian target");

mod header;
mod mapped;
mod write;

use std::path::{Path, PathBuf};

pub use header::{NpyHeader, parse_header};
pub use mapped::MappedC16;
pub use num_complex::Complex64 as C64;
pub use write::{
    Durability, c16_file_len, try_write_c16_chunks, write_c16, write_c16_chunks, write_c16_with,
    write_f8, write_i8,
};

/// Errors, each one sentence that reads after "failed to …".
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    #[error("read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("read {path}: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("write {path}: {reason}")]
    Write { path: PathBuf, reason: String },
}

impl NpyError {
    pub(crate) fn format(path: &Path, reason: impl Into<String>) -> Self {
        NpyError::Format {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        NpyError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
    /// The reason alone (without the path), for callers that add their own context.
    #[must_use]
    pub fn reason(&self) -> String {
        match self {
            NpyError::Io { source, .. } => source.to_string(),
            NpyError::Format { reason, .. } | NpyError::Write { reason, .. } => reason.clone(),
        }
    }
}

/// Formats a shape as numpy prints it: `(3,)`, `(4, 4)`.
#[must_use]
pub fn shape_str(shape: &[usize]) -> String {
    if let [one] = shape {
        format!("({one},)")
    } else {
        let parts: Vec<String> = shape.iter().map(ToString::to_string).collect();
        format!("({})", parts.join(", "))
    }
}

/// Opens `path` for reading without blocking (a FIFO planted at its name
/// cannot hang the open), never through a final symbolic link when
/// `nofollow`, and only if it is a regular file.
fn open_regular(path: &Path, nofollow: bool) -> Result<(std::fs::File, u64), NpyError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut flags = libc_flags::O_NONBLOCK;
    if nofollow {
        flags |= libc_flags::O_NOFOLLOW;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .map_err(|e| {
            if nofollow && e.raw_os_error() == Some(libc_flags::ELOOP) {
                NpyError::format(path, "it is a symbolic link")
            } else {
                NpyError::io(path, e)
            }
        })?;
    let meta = file.metadata().map_err(|e| NpyError::io(path, e))?;
    if !meta.is_file() {
        return Err(NpyError::format(
            path,
            "it is not a regular file (a directory, FIFO, socket or device)",
        ));
    }
    Ok((file, meta.len()))
}

use nix::libc as libc_flags;

/// Maps `path` read-only and checks its header against one of `descrs` and
/// its length; returns the map and the header.
fn map_checked(path: &Path, descrs: &[&str]) -> Result<(memmap2::Mmap, NpyHeader), NpyError> {
    map_checked_with(path, descrs, false)
}

fn map_checked_with(
    path: &Path,
    descrs: &[&str],
    nofollow: bool,
) -> Result<(memmap2::Mmap, NpyHeader), NpyError> {
    let (file, len) = open_regular(path, nofollow)?;
    if len < header::MIN_LEN as u64 {
        return Err(NpyError::format(
            path,
            format!("it is {len} bytes long, too short to be a .npy file"),
        ));
    }
    // SAFETY: the map is read-only; qst never modifies a file in place (files
    // are replaced by rename), so the mapped bytes stay as they were checked.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| NpyError::io(path, e))?;
    let header = parse_header(&map).map_err(|reason| NpyError::format(path, reason))?;
    header
        .check(descrs, map.len() as u64)
        .map_err(|reason| NpyError::format(path, reason))?;
    Ok((map, header))
}

/// The length of a 1-D `<f8` or `<i8` counts file, from its header (checked
/// against the file's size; no data is read).
///
/// # Errors
///
/// [`NpyError::Io`] when the file cannot be opened or mapped;
/// [`NpyError::Format`] when it is not a regular file, its header is
/// malformed, its dtype is neither `<f8` nor `<i8`, its length disagrees with
/// its header, or it is not 1-D.
pub fn counts_len(path: &Path) -> Result<usize, NpyError> {
    let (_map, header) = map_checked(path, &["<f8", "<i8"])?;
    match header.shape.as_slice() {
        [k] => Ok(*k),
        other => Err(NpyError::format(
            path,
            format!(
                "its shape is {}, but counts must be a 1-D array",
                shape_str(other)
            ),
        )),
    }
}

/// Reads a 1-D `<f8` or `<i8` counts file, converted to f64 (an `<i8`
/// count beyond 2^53 rounds to the nearest f64, as numpy's `astype` does).
///
/// # Errors
///
/// As [`counts_len`].
pub fn read_counts(path: &Path) -> Result<Vec<f64>, NpyError> {
    read_counts_checked(path, None)
}

/// [`read_counts`], refusing (from the header, before anything is read or
/// allocated) a file whose length is not `expected`.
///
/// # Errors
///
/// As [`counts_len`], and [`NpyError::Format`] when the length is not
/// `expected`.
pub fn read_counts_checked(path: &Path, expected: Option<usize>) -> Result<Vec<f64>, NpyError> {
    let (map, header) = map_checked(path, &["<f8", "<i8"])?;
    if header.shape.len() != 1 {
        return Err(NpyError::format(
            path,
            format!(
                "its shape is {}, but counts must be a 1-D array",
                shape_str(&header.shape)
            ),
        ));
    }
    if let Some(k) = expected
        && header.shape[0] != k
    {
        return Err(NpyError::format(
            path,
            format!("it has {} entries, but {k} are needed", header.shape[0]),
        ));
    }
    let data = &map[header.data_offset..];
    let is_float = header.descr == "<f8";
    Ok(data
        .chunks_exact(8)
        .map(|b| {
            let bytes: [u8; 8] = [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]];
            if is_float {
                f64::from_le_bytes(bytes)
            } else {
                count_to_f64(i64::from_le_bytes(bytes))
            }
        })
        .collect())
}

/// An `<i8` count as f64: exact up to 2^53, beyond that rounded to the
/// nearest f64 (what numpy's `astype(np.float64)` gives).
#[allow(clippy::cast_precision_loss)] // rounding huge counts is the documented conversion
fn count_to_f64(count: i64) -> f64 {
    count as f64
}

/// Reads an (n, n) `<c16` matrix (C order) into memory.
///
/// # Errors
///
/// [`NpyError::Io`] when the file cannot be opened or mapped;
/// [`NpyError::Format`] when it is not a regular file, its header is
/// malformed, its dtype is not `<c16`, its length disagrees with its header,
/// or its shape is not (n, n).
pub fn read_matrix(path: &Path, n: usize) -> Result<Vec<C64>, NpyError> {
    let (map, header) = map_checked(path, &["<c16"])?;
    if header.shape != [n, n] {
        return Err(NpyError::format(
            path,
            format!(
                "its shape is {}, expected ({n}, {n})",
                shape_str(&header.shape)
            ),
        ));
    }
    Ok(map[header.data_offset..]
        .chunks_exact(16)
        .map(c64_from_le)
        .collect())
}

/// Reads a state: an (n,) ket or an (n, n) matrix (C order), `<c16` or
/// `<f8` (real), into memory: n or n² entries.
///
/// # Errors
///
/// As [`read_matrix`], with `<f8` also accepted and (n,) as well as (n, n).
pub fn read_state(path: &Path, n: usize) -> Result<Vec<C64>, NpyError> {
    let (map, header) = map_checked(path, &["<c16", "<f8"])?;
    if header.shape != [n] && header.shape != [n, n] {
        return Err(NpyError::format(
            path,
            format!(
                "its shape is {}, expected ({n},) for a ket or ({n}, {n}) for a density matrix",
                shape_str(&header.shape)
            ),
        ));
    }
    let data = &map[header.data_offset..];
    Ok(if header.descr == "<c16" {
        data.chunks_exact(16).map(c64_from_le).collect()
    } else {
        data.chunks_exact(8)
            .map(|b| {
                let bytes: [u8; 8] = [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]];
                C64::new(f64::from_le_bytes(bytes), 0.0)
            })
            .collect()
    })
}

/// Decodes one little-endian complex128 from 16 bytes.
pub(crate) fn c64_from_le(b: &[u8]) -> C64 {
    let mut re = [0u8; 8];
    let mut im = [0u8; 8];
    re.copy_from_slice(&b[..8]);
    im.copy_from_slice(&b[8..16]);
    C64::new(f64::from_le_bytes(re), f64::from_le_bytes(im))
}
