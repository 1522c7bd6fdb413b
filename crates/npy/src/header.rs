//! The `.npy` header: guarded parsing (never panics, never allocates more than
//! the input holds) and the checks qst applies to every file it reads.

use ndarray_npy::npy::header::{Header, Layout};
use py_literal::Value as PyValue;

use crate::shape_str;

const MAGIC: &[u8] = b"\x93NUMPY";
/// Magic (6) + version (2) + 16-bit header length (2).
pub(crate) const MIN_LEN: usize = 10;
/// The deepest bracket nesting a header may have. numpy's headers for the
/// plain dtypes qst reads nest 2 deep (dict, shape tuple). The limit matters:
/// the Python-literal parser backtracks, and its time grows about tenfold per
/// two levels of unclosed braces (12 levels: seconds), so deeper headers are
/// rejected before it sees them.
const MAX_NESTING: usize = 4;

/// A parsed `.npy` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NpyHeader {
    /// The dtype descriptor, e.g. `<c16` (structured dtypes are rejected).
    pub descr: String,
    pub fortran_order: bool,
    pub shape: Vec<usize>,
    /// Bytes before the data: magic, version, length and the padded dictionary.
    pub data_offset: usize,
}

/// Parses the header at the start of `bytes` (a whole file or a prefix of it
/// holding at least the header). The error is a reason, without the path.
///
/// # Errors
///
/// When `bytes` is too short, lacks the magic string, has an unsupported
/// format version, a truncated or too deeply nested header, a dictionary that
/// does not parse, or a dtype that is not a plain string.
pub fn parse_header(bytes: &[u8]) -> Result<NpyHeader, String> {
    if bytes.len() < MIN_LEN {
        return Err(format!(
            "it is {} bytes long, too short to be a .npy file",
            bytes.len()
        ));
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        return Err("it does not start with the .npy magic string \\x93NUMPY".to_string());
    }
    let (len_bytes, header_len) = match (bytes[6], bytes[7]) {
        (1, 0) => (2, u16::from_le_bytes([bytes[8], bytes[9]]) as usize),
        (2 | 3, 0) => {
            if bytes.len() < 12 {
                return Err(format!(
                    "it is {} bytes long, too short for its format {}.0 header",
                    bytes.len(),
                    bytes[6]
                ));
            }
            let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            (
                4,
                usize::try_from(len).map_err(|_| "its header length overflows".to_string())?,
            )
        }
        (major, minor) => {
            return Err(format!(
                "its .npy format version {major}.{minor} is not supported"
            ));
        }
    };
    let prefix: usize = 8 + len_bytes;
    let total = prefix
        .checked_add(header_len)
        .ok_or_else(|| "its header length overflows".to_string())?;
    if total > bytes.len() {
        return Err(format!(
            "it is truncated: its header says the header is {total} bytes but the file has {}",
            bytes.len()
        ));
    }
    let dict = &bytes[prefix..total];
    let mut depth = 0usize;
    for &b in dict {
        match b {
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(format!(
                        "its header nests brackets deeper than {MAX_NESTING}"
                    ));
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    let mut reader = &bytes[..total];
    let header = Header::from_reader(&mut reader)
        .map_err(|e| format!("its header cannot be parsed: {e}"))?;
    let descr = match &header.type_descriptor {
        PyValue::String(s) => s.clone(),
        other => return Err(format!("its dtype {other} is not a plain numeric dtype")),
    };
    Ok(NpyHeader {
        descr,
        fortran_order: header.layout == Layout::Fortran,
        shape: header.shape,
        data_offset: total,
    })
}

/// The size in bytes of one element of a dtype descriptor qst reads.
fn item_size(descr: &str) -> Option<usize> {
    match descr.get(1..) {
        Some("c16") => Some(16),
        Some("f8" | "i8") => Some(8),
        _ => None,
    }
}

impl NpyHeader {
    /// Checks dtype (one of `descrs`), C order, and that the data after the
    /// header is exactly as long as the shape says in a file of `file_len` bytes.
    ///
    /// # Errors
    ///
    /// When the dtype is not one of `descrs` (big-endian named as such), the
    /// array is in Fortran order, its size overflows, or the data is shorter
    /// or longer than the shape says.
    pub fn check(&self, descrs: &[&str], file_len: u64) -> Result<(), String> {
        if !descrs.contains(&self.descr.as_str()) {
            let wanted = descrs.join(" or ");
            let big = descrs
                .iter()
                .any(|d| d.strip_prefix('<') == self.descr.strip_prefix('>'));
            if big && self.descr.starts_with('>') {
                return Err(format!(
                    "its data is big-endian (dtype {}), but qst reads little-endian {wanted} only",
                    self.descr
                ));
            }
            return Err(format!("its dtype is {}, expected {wanted}", self.descr));
        }
        if self.fortran_order {
            return Err("it is stored in Fortran order, but qst reads C order only (save numpy.ascontiguousarray(a))".to_string());
        }
        let expected = self.data_len().ok_or_else(|| {
            format!(
                "its shape {} is too large to address",
                shape_str(&self.shape)
            )
        })?;
        let actual = file_len.saturating_sub(self.data_offset as u64);
        if actual < expected {
            return Err(format!(
                "it is truncated: its header says {expected} bytes of data for shape {} but the file holds {actual}",
                shape_str(&self.shape)
            ));
        }
        if actual > expected {
            return Err(format!(
                "it has {} bytes after the {expected} bytes of data its header describes",
                actual - expected
            ));
        }
        Ok(())
    }

    /// The number of elements, when it fits in memory.
    #[must_use]
    pub fn element_count(&self) -> Option<usize> {
        let count = self
            .shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))?;
        let bytes = count.checked_mul(item_size(&self.descr).unwrap_or(1))?;
        isize::try_from(bytes).is_ok().then_some(count)
    }

    /// The number of data bytes the header describes.
    #[must_use]
    pub fn data_len(&self) -> Option<u64> {
        let size = item_size(&self.descr)?;
        (self.element_count()? as u64).checked_mul(size as u64)
    }
}

/// The header bytes qst writes for `descr` and `shape` (format 1.0 unless
/// the header needs 2.0; padded to 64 bytes).
pub(crate) fn header_bytes(descr: &str, shape: &[usize]) -> Result<Vec<u8>, String> {
    let header = Header {
        type_descriptor: PyValue::String(descr.to_string()),
        layout: Layout::Standard,
        shape: shape.to_vec(),
    };
    header
        .to_bytes()
        .map_err(|e| format!("its header cannot be formatted: {e}"))
}
