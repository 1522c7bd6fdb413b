//! Atomic writing: a temporary file in the same directory (named
//! `.<name>.<random>.tmp`, hidden), written in chunks, fsynced, renamed over
//! the target, then the directory fsynced. A reader never sees half a file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::header::header_bytes;
use crate::{C64, NpyError, shape_str};

fn write_err(path: &Path, reason: impl Into<String>) -> NpyError {
    NpyError::Write {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn element_count(path: &Path, shape: &[usize]) -> Result<usize, NpyError> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| write_err(path, format!("shape {} is too large", shape_str(shape))))
}

/// The size in bytes of the `<c16` file of `shape` that qst writes (header
/// and data), or `None` when it overflows.
#[must_use]
pub fn c16_file_len(shape: &[usize]) -> Option<u64> {
    let header = header_bytes("<c16", shape).ok()?.len() as u64;
    let count = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))?;
    count.checked_mul(16)?.checked_add(header)
}

/// How durable a write is when it returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// On disk: the file and the directory entry are fsynced.
    Synced,
    /// Written and renamed into place (readers never see half a file), but
    /// not fsynced: the caller makes a group of files durable at once (e.g.
    /// `syncfs` of their file system) before anything relies on them.
    Deferred,
}

/// Writes `header` and then whatever `body` writes, atomically, to `path`.
fn write_atomic(
    path: &Path,
    durability: Durability,
    header: &[u8],
    expected_len: u64,
    body: impl FnOnce(&mut BufWriter<&File>) -> std::io::Result<()>,
) -> Result<(), NpyError> {
    let name = path
        .file_name()
        .ok_or_else(|| write_err(path, "the path has no file name"))?
        .to_string_lossy()
        .into_owned();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let prefix = format!(".{name}.");
    let tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(|e| {
            write_err(
                path,
                format!("cannot create a temporary file in {}: {e}", dir.display()),
            )
        })?;
    {
        let cap = usize::try_from(expected_len).map_or(1 << 20, |l| l.clamp(4096, 1 << 20));
        let mut w = BufWriter::with_capacity(cap, tmp.as_file());
        w.write_all(header)
            .map_err(|e| write_err(path, e.to_string()))?;
        body(&mut w).map_err(|e| write_err(path, e.to_string()))?;
        w.flush().map_err(|e| write_err(path, e.to_string()))?;
    }
    let file = tmp.as_file();
    let written = file
        .metadata()
        .map_err(|e| write_err(path, e.to_string()))?
        .len();
    if written != expected_len {
        return Err(write_err(
            path,
            format!("wrote {written} bytes where {expected_len} were expected"),
        ));
    }
    if durability == Durability::Synced {
        file.sync_all()
            .map_err(|e| write_err(path, format!("cannot fsync the temporary file: {e}")))?;
    }
    tmp.persist(path).map_err(|e| {
        write_err(
            path,
            format!("cannot rename the temporary file into place: {}", e.error),
        )
    })?;
    if durability == Durability::Deferred {
        return Ok(());
    }
    // Make the rename itself durable.
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| {
        write_err(
            path,
            format!("cannot fsync directory {}: {e}", dir.display()),
        )
    })?;
    Ok(())
}

fn push_c64(buf: &mut Vec<u8>, z: &C64) {
    buf.extend_from_slice(&z.re.to_le_bytes());
    buf.extend_from_slice(&z.im.to_le_bytes());
}

/// Writes a `<c16` array of `shape` atomically (temp file, fsync, rename).
///
/// # Errors
///
/// [`NpyError::Write`] when the temporary file cannot be created, written,
/// fsynced or renamed into place, or when `data` does not hold exactly the
/// elements `shape` needs.
pub fn write_c16(path: &Path, shape: &[usize], data: &[C64]) -> Result<(), NpyError> {
    write_c16_with(path, shape, data, Durability::Synced)
}

/// [`write_c16`] with the given durability.
///
/// # Errors
///
/// As [`write_c16`].
pub fn write_c16_with(
    path: &Path,
    shape: &[usize],
    data: &[C64],
    durability: Durability,
) -> Result<(), NpyError> {
    let count = element_count(path, shape)?;
    if count != data.len() {
        return Err(write_err(
            path,
            format!(
                "shape {} needs {count} values but {} were given",
                shape_str(shape),
                data.len()
            ),
        ));
    }
    let header = header_bytes("<c16", shape).map_err(|r| write_err(path, r))?;
    let expected = c16_file_len(shape)
        .ok_or_else(|| write_err(path, format!("shape {} is too large", shape_str(shape))))?;
    write_atomic(path, durability, &header, expected, |w| {
        let mut bytes = Vec::with_capacity(data.len().min(1 << 16) * 16);
        for chunk in data.chunks(1 << 16) {
            bytes.clear();
            for z in chunk {
                push_c64(&mut bytes, z);
            }
            w.write_all(&bytes)?;
        }
        Ok(())
    })
}

/// Writes a `<c16` array of `shape` atomically without holding it in memory:
/// `fill(i, chunk)` fills chunk `i` (elements `i*chunk_len ..`, the last one
/// possibly shorter) in C order. Memory use is one chunk plus the write buffer.
///
/// # Errors
///
/// [`NpyError::Write`] when the temporary file cannot be created, written,
/// fsynced or renamed into place, or when `chunk_len` is 0 or `shape`
/// is too large.
pub fn write_c16_chunks(
    path: &Path,
    shape: &[usize],
    chunk_len: usize,
    mut fill: impl FnMut(usize, &mut [C64]),
) -> Result<(), NpyError> {
    try_write_c16_chunks(path, shape, chunk_len, |i, out| {
        fill(i, out);
        Ok(())
    })
}

/// [`write_c16_chunks`] whose `fill` may stop the write (an error, e.g. on
/// cancellation): the temporary file is removed and nothing is renamed.
///
/// # Errors
///
/// As [`write_c16_chunks`], and [`NpyError::Write`] with `fill`'s error.
pub fn try_write_c16_chunks(
    path: &Path,
    shape: &[usize],
    chunk_len: usize,
    mut fill: impl FnMut(usize, &mut [C64]) -> std::io::Result<()>,
) -> Result<(), NpyError> {
    if chunk_len == 0 {
        return Err(write_err(path, "the chunk length is 0"));
    }
    let count = element_count(path, shape)?;
    let header = header_bytes("<c16", shape).map_err(|r| write_err(path, r))?;
    let expected = c16_file_len(shape)
        .ok_or_else(|| write_err(path, format!("shape {} is too large", shape_str(shape))))?;
    write_atomic(path, Durability::Synced, &header, expected, |w| {
        let mut values = vec![C64::new(0.0, 0.0); chunk_len.min(count)];
        let mut bytes = Vec::with_capacity(values.len() * 16);
        let mut done = 0;
        let mut i = 0;
        while done < count {
            let n = chunk_len.min(count - done);
            let chunk = &mut values[..n];
            chunk.fill(C64::new(0.0, 0.0));
            fill(i, chunk)?;
            bytes.clear();
            for z in chunk.iter() {
                push_c64(&mut bytes, z);
            }
            w.write_all(&bytes)?;
            done += n;
            i += 1;
        }
        Ok(())
    })
}

fn write_8byte(
    path: &Path,
    descr: &str,
    data: impl ExactSizeIterator<Item = [u8; 8]>,
) -> Result<(), NpyError> {
    let len = data.len();
    let header = header_bytes(descr, &[len]).map_err(|r| write_err(path, r))?;
    let expected = header.len() as u64 + 8 * len as u64;
    write_atomic(path, Durability::Synced, &header, expected, |w| {
        for b in data {
            w.write_all(&b)?;
        }
        Ok(())
    })
}

/// Writes a 1-D `<f8` array atomically.
///
/// # Errors
///
/// [`NpyError::Write`] when the temporary file cannot be created, written,
/// fsynced or renamed into place.
pub fn write_f8(path: &Path, data: &[f64]) -> Result<(), NpyError> {
    write_8byte(path, "<f8", data.iter().map(|x| x.to_le_bytes()))
}

/// Writes a 1-D `<i8` array atomically.
///
/// # Errors
///
/// As [`write_f8`].
pub fn write_i8(path: &Path, data: &[i64]) -> Result<(), NpyError> {
    write_8byte(path, "<i8", data.iter().map(|x| x.to_le_bytes()))
}
