//! The rules every input format applies to a job: the limits and defaults,
//! what a batch entry is (a job or its error record), valid ids, counts and
//! targets. JSON Lines ([`crate::batch`]) and count matrices
//! ([`crate::matrix`]) both call these, so a rule lives in one place.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use qst_shared::Job;

use crate::input::{InputOptions, Negative};
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
    pub fn line(&self) -> u64 {
        match self {
            Entry::Job(j) => j.line,
            Entry::Error(r) => r.line,
        }
    }

    /// The (line, method) this entry's result line is keyed by.
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
pub fn is_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-'
}

/// Checks counts: finite, ≥ 0 (negative ones set to 0 with `--negative
/// clip`, each with a warning), not all zero. The error names the field.
pub fn check_counts(
    counts: &mut [f64],
    field: &str,
    negative: Negative,
) -> Result<Vec<String>, String> {
    let mut warnings = Vec::new();
    for (i, c) in counts.iter_mut().enumerate() {
        if !c.is_finite() {
            return Err(format!(
                "field {field}[{i}] is {c}, but counts must be finite"
            ));
        }
        if *c < 0.0 {
            if negative == Negative::Clip {
                warnings.push(format!("{field}[{i}] was {c}, set to 0 (--negative clip)"));
                *c = 0.0;
            } else {
                return Err(format!(
                    "field {field}[{i}] is {c}, but counts must be >= 0 (pass --negative clip to set negative counts to 0)"
                ));
            }
        }
    }
    if counts.iter().all(|&c| c == 0.0) {
        return Err(format!("field {field}: the counts are all zero"));
    }
    Ok(warnings)
}

/// Reads a target state: an (n, n) density matrix `.npy`
/// (checked: Hermitian, PSD, trace 1 to [`TRUTH_TOL`]), an (n,) ket `.npy`, or
/// the lab's text form, n lines `amplitude,phase` with the phase in units of
/// π (ψ_j = a_j·e^{iπ·φ_j}); kets are normalized. A `.npy` file is known by its
/// magic bytes, whatever its name. Returns ρ, n×n row-major.
pub fn read_truth(path: &Path, dim: usize) -> Result<Vec<(f64, f64)>, String> {
    let mut magic = [0u8; 6];
    let is_npy = File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| &magic == b"\x93NUMPY");
    let m = if is_npy {
        let v = qst_npy::read_state(path, dim).map_err(|e| format!("failed to {e}"))?;
        if let Some(bad) = v.iter().find(|z| !z.re.is_finite() || !z.im.is_finite()) {
            return Err(format!("{} holds a non-finite entry {bad}", path.display()));
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
    qst_math::check_density_matrix(mat.as_ref(), TRUTH_TOL)
        .map_err(|e| format!("{} {e}, so it is not a density matrix", path.display()))?;
    Ok(m.iter().map(|z| (z.re, z.im)).collect())
}

/// ψψ†/‖ψ‖², row-major; a zero vector is an error.
fn ket_truth(path: &Path, ket: &[qst_math::C64], what: &str) -> Result<Vec<qst_math::C64>, String> {
    let n = ket.len();
    let rho = qst_math::ket_density(ket).ok_or_else(|| {
        format!(
            "{} holds a zero {what} vector, which cannot be normalized",
            path.display()
        )
    })?;
    Ok((0..n * n).map(|i| rho[(i / n, i % n)]).collect())
}

/// The lab's text form of a target: n lines `amplitude,phase` (phase in
/// units of π); blank lines and `#` comments are skipped.
fn read_polar_text(path: &Path, dim: usize) -> Result<Vec<qst_math::C64>, String> {
    let mut text = String::new();
    File::open(path)
        .and_then(|f| f.take(1 << 20).read_to_string(&mut text))
        .map_err(|e| {
            format!(
                "failed to read {} as text (n lines amplitude,phase, or a .npy file): {e}",
                path.display()
            )
        })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let (mut amp, mut phase) = (Vec::new(), Vec::new());
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let bad = || {
            format!(
                "line {} of {} is {:?}, but a target in text form is n lines amplitude,phase (phase in units of pi)",
                i + 1,
                path.display(),
                l.chars().take(40).collect::<String>()
            )
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
        return Err(format!(
            "{} has {} amplitude,phase lines, but dim {dim} needs {dim}",
            path.display(),
            amp.len()
        ));
    }
    Ok(qst_math::ket_from_polar(&amp, &phase))
}
