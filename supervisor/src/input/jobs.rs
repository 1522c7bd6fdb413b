//! The rules every input format applies to a job: the limits and defaults,
//! what a batch entry is (a job or its error record), valid ids, counts and
//! targets. JSON Lines ([`super::jsonl`]) and count matrices
//! ([`super::matrix`]) both call these, so a rule lives in one place.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use qst_math::{C64, MathError};
use qst_npy::NpyError;
use qst_shared::{Design, DesignError, Job, UnknownMethod};
use qst_store::StoreError;

use super::flags::{InputOptions, Negative};
use crate::results::ErrorRecord;

/// The largest dimension qst accepts.
pub const MAX_DIM: usize = 256;
/// The longest job line read; a longer line is an error for that line.
pub const MAX_LINE_BYTES: u64 = 64 << 20;
/// `max_iters` when a job does not give one (docs/reference.md).
pub const DEFAULT_MAX_ITERS: u64 = 100_000;
/// `tol` when a job does not give one (docs/reference.md).
pub const DEFAULT_TOL: f64 = 1e-8;
/// How far a `truth` may be from a density matrix (docs/reference.md).
pub const TRUTH_TOL: f64 = 1e-6;

/// What `qst run` says about reading a batch.
#[derive(Clone, Debug)]
pub struct BatchSettings {
    /// ρ paths are `out_dir/rho/<id>.npy` (made absolute).
    pub out_dir: PathBuf,
    /// The input flags: defaults for JSON lines, a count matrix's layout.
    pub input: InputOptions,
}

impl BatchSettings {
    #[cfg(test)]
    /// Settings for a batch writing into `out_dir`, with no input flags.
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        BatchSettings {
            out_dir: out_dir.into(),
            input: InputOptions::default(),
        }
    }
}

/// One entry of a batch.
// An error record is rare and moved once, straight to results.jsonl: boxing
// it would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    /// Validated, ready to dispatch.
    Job(Job),
    /// A bad line (or CSV column): its error record, ready to append.
    Error(ErrorRecord),
}

impl Entry {
    /// The batch line (count matrix: column) of this entry.
    #[must_use]
    pub fn line(&self) -> u64 {
        match self {
            Entry::Job(j) => j.line,
            Entry::Error(r) => r.line,
        }
    }

    /// The (line, method) this entry's result line is keyed by.
    #[must_use]
    pub fn key(&self) -> (u64, String) {
        match self {
            Entry::Job(j) => (j.line, j.method.as_str().to_owned()),
            Entry::Error(r) => (r.line, r.method.clone().unwrap_or_default()),
        }
    }
}

/// Whether `id` is a valid job id: 1–128 characters of `[A-Za-z0-9._-]`,
/// not starting with `.` (it names `rho/<id>.npy`: no `.`, `..` or hidden files).
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && !id.starts_with('.') && id.bytes().all(is_id_byte)
}

/// Whether a byte may appear in an id.
#[must_use]
pub fn is_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-'
}

/// Where a count sits, as messages name it: `counts[3]`, or with the cell
/// of a count matrix, `counts[3] (sheet runB, cell C4)`.
#[derive(Clone, Debug, PartialEq)]
pub struct CountAt {
    /// `counts` or `counts_npy`.
    pub field: &'static str,
    /// 0-based.
    pub index: usize,
    /// The cell's name, for a count matrix.
    pub cell: Option<String>,
}

impl fmt::Display for CountAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.field, self.index)?;
        match &self.cell {
            Some(c) => write!(f, " ({c})"),
            None => Ok(()),
        }
    }
}

/// A count that breaks the rules of [`check_count`].
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CountsError {
    #[error("field {at} is {value}, but counts must be finite")]
    NotFinite { at: CountAt, value: f64 },
    #[error(
        "field {at} is {value}, but counts must be >= 0 (pass --negative clip to set negative counts to 0)"
    )]
    Negative { at: CountAt, value: f64 },
    #[error("field {field}: the counts are all zero")]
    AllZero { field: &'static str },
}

/// One count: finite and ≥ 0; a negative one is set to 0 with `--negative
/// clip`, and the warning is returned.
///
/// # Errors
///
/// When the count is not finite, or negative without `--negative clip`.
pub fn check_count(
    c: &mut f64,
    at: impl FnOnce() -> CountAt,
    negative: Negative,
) -> Result<Option<String>, CountsError> {
    let value = *c;
    if !value.is_finite() {
        return Err(CountsError::NotFinite { at: at(), value });
    }
    if value < 0.0 {
        if negative == Negative::Error {
            return Err(CountsError::Negative { at: at(), value });
        }
        *c = 0.0;
        return Ok(Some(format!(
            "{} was {value}, set to 0 (--negative clip)",
            at()
        )));
    }
    Ok(None)
}

/// Checks counts: each by [`check_count`], and not all zero. The error
/// names the field.
///
/// # Errors
///
/// When a count fails [`check_count`], or all are zero.
pub fn check_counts(
    counts: &mut [f64],
    field: &'static str,
    negative: Negative,
) -> Result<Vec<String>, CountsError> {
    let mut warnings = Vec::new();
    for (index, c) in counts.iter_mut().enumerate() {
        let at = || CountAt {
            field,
            index,
            cell: None,
        };
        warnings.extend(check_count(c, at, negative)?);
    }
    check_not_all_zero(counts, field)?;
    Ok(warnings)
}

/// The counts of a job must not all be zero.
///
/// # Errors
///
/// [`CountsError`] when every count is zero.
pub fn check_not_all_zero(counts: &[f64], field: &'static str) -> Result<(), CountsError> {
    if counts.iter().all(|&c| c == 0.0) {
        return Err(CountsError::AllZero { field });
    }
    Ok(())
}

/// A custom projector file that a job cannot use.
#[derive(Debug, thiserror::Error)]
pub enum CustomError {
    #[error("failed to read projector file {}: {source}", .path.display())]
    Metadata { path: PathBuf, source: io::Error },
    #[error("failed to {0}")]
    Store(#[from] StoreError),
    #[error("failed to {0}")]
    Npy(#[from] NpyError),
    #[error(
        "{} has shape {shape:?}, but dim {dim} needs (K, {dim}, {dim}) with K >= {}",
        .path.display(),
        .dim * .dim
    )]
    Shape {
        path: PathBuf,
        shape: Vec<usize>,
        dim: usize,
    },
}

/// A target state that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TruthError {
    #[error("failed to {0}")]
    Npy(#[from] NpyError),
    #[error("{} holds a non-finite entry {entry}", .path.display())]
    NonFinite { path: PathBuf, entry: C64 },
    #[error("{} holds a zero {what} vector, which cannot be normalized", .path.display())]
    Zero { path: PathBuf, what: &'static str },
    #[error(
        "failed to read {} as text (n lines amplitude,phase, or a .npy file): {source}",
        .path.display()
    )]
    Text { path: PathBuf, source: io::Error },
    #[error(
        "line {line} of {} is {text:?}, but a target in text form is n lines amplitude,phase (phase in units of pi)",
        .path.display()
    )]
    BadLine {
        line: usize,
        path: PathBuf,
        text: String,
    },
    #[error("{} has {lines} amplitude,phase lines, but dim {dim} needs {dim}", .path.display())]
    LineCount {
        path: PathBuf,
        lines: usize,
        dim: usize,
    },
    #[error("{} {why}, so it is not a density matrix", .path.display())]
    NotDensity { path: PathBuf, why: String },
}

/// What a projector set needs, in messages: `dim 4 (design nopovm)`, `the
/// custom projector set`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SetNeeds {
    Design { dim: usize, design: Design },
    Custom,
}

impl fmt::Display for SetNeeds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetNeeds::Design { dim, design } => write!(f, "dim {dim} (design {design})"),
            SetNeeds::Custom => f.write_str("the custom projector set"),
        }
    }
}

/// Why one job (a JSON line, a count matrix column) cannot run: one
/// sentence naming the field, rendered after `line 7 (id "q4"): ` where its
/// error record is made.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("the line is longer than {MAX_LINE_BYTES} bytes")]
    TooLong,
    #[error("failed to read the batch {}: {source}", .path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("not valid JSON ({0})")]
    Json(#[source] serde_json::Error),
    #[error(
        "field {0} holds a number out of range (beyond ±1.8e308, the largest finite double), so the line is not valid JSON"
    )]
    OutOfRange(String),
    #[error("not a JSON object (a job line is {{\"id\": …, \"dim\": …, …}})")]
    NotAnObject,
    #[error("field {0} is missing")]
    Missing(&'static str),
    /// A field of the wrong type or out of range; `value` as the line wrote it.
    #[error("field {field} must be {expected}, not {value}")]
    Value {
        field: &'static str,
        expected: &'static str,
        value: String,
    },
    #[error(
        "field id must be 1 to 128 characters of A-Z, a-z, 0-9, '.', '_' and '-', not starting with '.'"
    )]
    BadId,
    #[error("field id: duplicate id, first used on line {0}")]
    DuplicateId(u64),
    #[error("field {name}: unknown field{}; the fields are {}", did_you_mean(*.nearest), .known.join(", "))]
    UnknownField {
        /// As the line wrote it, quoted.
        name: String,
        nearest: Option<&'static str>,
        known: &'static [&'static str],
    },
    #[error("field method: the list of methods is empty")]
    NoMethods,
    #[error("field method: must be a method name or a list of them, not {0}")]
    NotAMethodName(String),
    #[error("field method: {0}")]
    Method(#[from] UnknownMethod),
    #[error("field method: method {0:?} is named twice")]
    MethodTwice(String),
    #[error("field design: {0}, or \"custom\" with a \"projectors\" file")]
    Design(#[source] DesignError),
    #[error("field projectors is missing, but design \"custom\" needs it")]
    CustomWithoutFile,
    #[error("field projectors names a custom set, but field design says \"{0}\"")]
    FileAndDesign(Design),
    #[error("field projectors: {0}")]
    Projectors(#[source] Arc<CustomError>),
    #[error("field dim: {0}")]
    Dim(#[source] DesignError),
    #[error("field {field}: {} is not a file", .path.display())]
    NotAFile { field: &'static str, path: PathBuf },
    #[error("field {field}: file {} does not exist", .path.display())]
    NoSuchFile { field: &'static str, path: PathBuf },
    #[error("field {field}: failed to read {}: {source}", .path.display())]
    Unreadable {
        field: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("fields counts and counts_npy are both given; give one")]
    BothCounts,
    #[error("field counts is missing (give counts or counts_npy)")]
    NoCounts,
    #[error("field counts has {len} entries, but {needs} needs {expected}")]
    CountsLen {
        len: usize,
        needs: SetNeeds,
        expected: usize,
    },
    #[error("field counts_npy: {} has {len} entries, but {needs} needs {expected}", .path.display())]
    NpyLen {
        path: PathBuf,
        len: usize,
        needs: SetNeeds,
        expected: usize,
    },
    #[error("field counts_npy: failed to {0}")]
    CountsNpy(#[source] NpyError),
    #[error("field counts[{index}] is {value}, not a number")]
    NotANumber { index: usize, value: String },
    #[error(transparent)]
    Counts(#[from] CountsError),
    /// An empty cell of a count matrix (`sheet`: a spreadsheet's).
    #[error("field {at} is empty{}", empty_cell_hint(*.sheet))]
    EmptyCell { at: CountAt, sheet: bool },
    /// A cell of a count matrix that is not a number, as shown.
    #[error("field {at} is {text}, not a number")]
    TextCell { at: CountAt, text: String },
    #[error("field bell: {0}")]
    Bell(#[source] MathError),
    #[error("field truth: {0}")]
    Truth(#[source] Arc<TruthError>),
}

/// ` (did you mean "dim"?)`, or nothing.
fn did_you_mean(nearest: Option<&str>) -> String {
    nearest.map_or_else(String::new, |k| format!(" (did you mean {k:?}?)"))
}

/// Why a spreadsheet cell may read as empty.
fn empty_cell_hint(sheet: bool) -> &'static str {
    if sheet {
        " (a formula saved without its value reads as empty: save the file from its spreadsheet program)"
    } else {
        ""
    }
}

/// Reads a target state: an (n, n) density matrix `.npy`
/// (checked: Hermitian, PSD, trace 1 to [`TRUTH_TOL`]), an (n,) ket `.npy`, or
/// the lab's text form, n lines `amplitude,phase` with the phase in units of
/// π (ψ_j = a_j·e^{iπ·φ_j}); kets are normalized. A `.npy` file is known by its
/// magic bytes, whatever its name. Returns ρ, n×n row-major.
///
/// # Errors
///
/// [`TruthError`] when the file cannot be read or parsed, has the wrong shape, or is not a
/// state.
pub fn read_truth(path: &Path, dim: usize) -> Result<Vec<(f64, f64)>, TruthError> {
    let mut magic = [0u8; 6];
    let is_npy = File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| &magic == b"\x93NUMPY");
    let m = if is_npy {
        let v = qst_npy::read_state(path, dim)?;
        if let Some(bad) = v.iter().find(|z| !z.re.is_finite() || !z.im.is_finite()) {
            return Err(TruthError::NonFinite {
                path: path.to_path_buf(),
                entry: *bad,
            });
        }
        if v.len() == dim {
            ket_truth(path, &v, "ket")?
        } else {
            v
        }
    } else {
        let ket = read_polar_text(path, dim)?;
        ket_truth(path, &ket, "state")?
    };
    let mat = qst_math::Mat::from_fn(dim, dim, |i, j| m[i * dim + j]);
    qst_math::check_density_matrix(mat.as_ref(), TRUTH_TOL).map_err(|e| {
        TruthError::NotDensity {
            path: path.to_path_buf(),
            why: e.clone(),
        }
    })?;
    Ok(m.iter().map(|z| (z.re, z.im)).collect())
}

/// ψψ†/‖ψ‖², row-major; a zero vector is an error.
fn ket_truth(path: &Path, ket: &[C64], what: &'static str) -> Result<Vec<C64>, TruthError> {
    let n = ket.len();
    let rho = qst_math::ket_density(ket).ok_or_else(|| TruthError::Zero {
        path: path.to_path_buf(),
        what,
    })?;
    Ok((0..n * n).map(|i| rho[(i / n, i % n)]).collect())
}

/// The lab's text form of a target: n lines `amplitude,phase` (phase in
/// units of π); blank lines and `#` comments are skipped.
fn read_polar_text(path: &Path, dim: usize) -> Result<Vec<C64>, TruthError> {
    let mut text = String::new();
    File::open(path)
        .and_then(|f| f.take(1 << 20).read_to_string(&mut text))
        .map_err(|source| TruthError::Text {
            path: path.to_path_buf(),
            source,
        })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let (mut amp, mut phase) = (Vec::new(), Vec::new());
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let bad = || TruthError::BadLine {
            line: i + 1,
            path: path.to_path_buf(),
            text: l.chars().take(40).collect(),
        };
        let mut parts = l.split(',').map(str::trim);
        let (Some(a), Some(p), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let (Ok(a), Ok(p)) = (a.parse::<f64>(), p.parse::<f64>()) else {
            return Err(bad());
        };
        if !a.is_finite() || !p.is_finite() {
            return Err(bad());
        }
        amp.push(a);
        phase.push(p);
    }
    if amp.len() != dim {
        return Err(TruthError::LineCount {
            path: path.to_path_buf(),
            lines: amp.len(),
            dim,
        });
    }
    Ok(qst_math::ket_from_polar(&amp, &phase))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_rules_name_the_field_and_the_cell() {
        let mut c = vec![1.0, -2.0, 0.0];
        let e = check_counts(&mut c, "counts", Negative::Error).unwrap_err();
        assert_eq!(
            e.to_string(),
            "field counts[1] is -2, but counts must be >= 0 (pass --negative clip to set negative counts to 0)"
        );
        let w = check_counts(&mut c, "counts_npy", Negative::Clip).unwrap();
        assert_eq!(w, vec!["counts_npy[1] was -2, set to 0 (--negative clip)"]);
        assert_eq!(c, vec![1.0, 0.0, 0.0]);
        let e = check_counts(&mut [0.0, f64::NAN], "counts", Negative::Clip).unwrap_err();
        assert_eq!(
            e.to_string(),
            "field counts[1] is NaN, but counts must be finite"
        );
        let e = check_counts(&mut [0.0, -0.0], "counts", Negative::Clip).unwrap_err();
        assert_eq!(e.to_string(), "field counts: the counts are all zero");
        let at = || CountAt {
            field: "counts",
            index: 2,
            cell: Some("sheet runB, cell C3".into()),
        };
        let mut inf = f64::INFINITY;
        let e = check_count(&mut inf, at, Negative::Clip).unwrap_err();
        assert_eq!(
            e.to_string(),
            "field counts[2] (sheet runB, cell C3) is inf, but counts must be finite"
        );
    }

    #[test]
    fn job_errors_read_as_one_sentence() {
        let e = JobError::UnknownField {
            name: "\"metod\"".into(),
            nearest: Some("method"),
            known: &["id", "method"],
        };
        assert_eq!(
            e.to_string(),
            "field \"metod\": unknown field (did you mean \"method\"?); the fields are id, method"
        );
        let e = JobError::CountsLen {
            len: 3,
            needs: SetNeeds::Design {
                dim: 2,
                design: Design::Nopovm,
            },
            expected: 4,
        };
        assert_eq!(
            e.to_string(),
            "field counts has 3 entries, but dim 2 (design nopovm) needs 4"
        );
        let e = JobError::EmptyCell {
            at: CountAt {
                field: "counts",
                index: 0,
                cell: Some("row 1, column 2".into()),
            },
            sheet: false,
        };
        assert_eq!(e.to_string(), "field counts[0] (row 1, column 2) is empty");
        let e = JobError::Projectors(Arc::new(CustomError::Shape {
            path: "p.npy".into(),
            shape: vec![3, 2, 2],
            dim: 2,
        }));
        assert_eq!(
            e.to_string(),
            "field projectors: p.npy has shape [3, 2, 2], but dim 2 needs (K, 2, 2) with K >= 4"
        );
        assert_eq!(
            JobError::TooLong.to_string(),
            format!("the line is longer than {MAX_LINE_BYTES} bytes")
        );
    }
}
