//! Read-only memory maps of `<c16` files, handed out as zero-copy views.

use std::path::{Path, PathBuf};

use crate::{C64, NpyError, map_checked_with, shape_str};

/// A read-only memory map of a `<c16` array, header checked.
///
/// The data is never copied: [`MappedC16::as_slice`] and [`MappedC16::view`]
/// borrow the mapped pages, which the OS page cache shares between every
/// process that maps the same file.
pub struct MappedC16 {
    path: PathBuf,
    map: memmap2::Mmap,
    shape: Vec<usize>,
    offset: usize,
    len: usize,
}

impl std::fmt::Debug for MappedC16 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedC16")
            .field("path", &self.path)
            .field("shape", &self.shape)
            .field("file_len", &self.map.len())
            .finish_non_exhaustive()
    }
}

impl MappedC16 {
    /// Maps `path` read-only; the shape must equal `shape` when given.
    ///
    /// # Errors
    ///
    /// [`NpyError::Io`] when the file cannot be opened or mapped;
    /// [`NpyError::Format`] when it is not a regular file, its header is
    /// malformed, its dtype is not `<c16`, its length disagrees with its
    /// header, its shape is not `shape`, or its data is not 8-byte aligned.
    pub fn open(path: &Path, shape: Option<&[usize]>) -> Result<Self, NpyError> {
        Self::open_with(path, shape, false)
    }

    /// [`MappedC16::open`], refusing a symbolic link at `path` (for files at
    /// fixed names in a directory others may write, such as a shared cache).
    ///
    /// # Errors
    ///
    /// As [`MappedC16::open`], and [`NpyError::Format`] when `path` is a
    /// symbolic link.
    pub fn open_nofollow(path: &Path, shape: Option<&[usize]>) -> Result<Self, NpyError> {
        Self::open_with(path, shape, true)
    }

    fn open_with(path: &Path, shape: Option<&[usize]>, nofollow: bool) -> Result<Self, NpyError> {
        let (map, header) = map_checked_with(path, &["<c16"], nofollow)?;
        if let Some(want) = shape
            && header.shape != want
        {
            return Err(NpyError::format(
                path,
                format!(
                    "its shape is {}, expected {}",
                    shape_str(&header.shape),
                    shape_str(want)
                ),
            ));
        }
        // `check` succeeded, so the element count fits and the data is exactly this long.
        let len = (map.len() - header.data_offset) / std::mem::size_of::<C64>();
        let start = map.as_ptr() as usize + header.data_offset;
        if !start.is_multiple_of(std::mem::align_of::<C64>()) {
            return Err(NpyError::format(
                path,
                format!(
                    "its data starts at byte {}, which is not aligned to 8 bytes and cannot be viewed in place",
                    header.data_offset
                ),
            ));
        }
        Ok(MappedC16 {
            path: path.to_path_buf(),
            map,
            shape: header.shape,
            offset: header.data_offset,
            len,
        })
    }

    /// The array's shape, as its header gives it.
    #[must_use]
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The file this maps.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The size of the mapped file in bytes (header and data).
    #[must_use]
    pub fn file_len(&self) -> u64 {
        self.map.len() as u64
    }

    /// The bytes of the header (everything before the data).
    #[must_use]
    pub fn header_bytes(&self) -> &[u8] {
        &self.map[..self.offset]
    }

    /// The raw little-endian data bytes, zero-copy.
    #[must_use]
    pub fn data_bytes(&self) -> &[u8] {
        &self.map[self.offset..]
    }

    /// The data as a zero-copy slice over the map (C order).
    #[must_use]
    pub fn as_slice(&self) -> &[C64] {
        #[allow(clippy::cast_ptr_alignment)] // `open` checked the alignment (below)
        let data = self.data_bytes().as_ptr().cast::<C64>();
        // SAFETY: `open` checked that the data after the header is exactly
        // `len` complex128 values, that its start is aligned for `C64`
        // (`#[repr(C)]` pair of f64, every bit pattern valid), and the target
        // is little-endian like the `<c16` data. The map lives as long as `self`.
        unsafe { std::slice::from_raw_parts(data, self.len) }
    }

    /// The data as a zero-copy ndarray view over the map.
    #[must_use]
    pub fn view(&self) -> ndarray::ArrayViewD<'_, C64> {
        ndarray::ArrayViewD::from_shape(ndarray::IxDyn(&self.shape), self.as_slice())
            .unwrap_or_else(|_| {
                unreachable!("the shape was checked against the data length on open")
            })
    }
}
