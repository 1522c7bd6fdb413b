//! One line of `results.jsonl` (docs/reference.md) as a type: an `ok` record
//! or an `error` record, and the exact JSON each is written as (field order,
//! `null`s, no negative zero) and read back from.

use std::path::Path;

use qst_shared::{Job, JobFigures};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

/// One line of `results.jsonl`, tagged by its `status`.
// A record is built once and moved straight to results.jsonl (or read once):
// boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(try_from = "RawRecord")]
pub enum ResultRecord {
    /// `"status": "ok"`.
    Ok(OkRecord),
    /// `"status": "error"` (any status other than `ok` reads as one).
    Error(ErrorRecord),
}

/// The record of a job that ended well.
///
/// Figures that a worker computed are plain `f64`: one that was not a number
/// is written, like −∞, as `null`, and a `null` reads back as NaN.
#[derive(Clone, Debug, PartialEq)]
pub struct OkRecord {
    pub line: u64,
    pub id: String,
    pub dim: usize,
    pub design: String,
    pub method: String,
    /// ρ's file, relative to the output directory.
    pub rho: String,
    /// `None` for `linear`.
    pub iterations: Option<u64>,
    /// `None` for `linear`.
    pub converged: Option<bool>,
    /// `None` means ℓ = −∞ (written as `null`).
    pub log_likelihood: Option<f64>,
    pub purity: f64,
    pub trace: f64,
    pub rank: usize,
    pub min_eigenvalue: f64,
    pub max_eigenvalue: f64,
    pub eigenvalue_entropy: f64,
    /// Only when a truth was given.
    pub fidelity: Option<f64>,
    /// `wls`: the χ² it minimized.
    pub objective: Option<f64>,
    /// `--bell`.
    pub bell: Option<BellRecord>,
    /// `--spectral`.
    pub spectral: Option<SpectralRecord>,
    /// `--bootstrap`.
    pub bootstrap: Option<BootstrapRecord>,
    /// What reading the job changed (e.g. negative counts set to 0).
    pub warnings: Option<Vec<String>>,
    /// When the worker started the job, in Unix seconds.
    pub started: Option<f64>,
    pub seconds: f64,
    pub worker: usize,
}

/// `--bell`: the largest ⟨B_{a,b}|ρ|B_{a,b}⟩, its a·m + b, the smallest.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BellRecord {
    pub max_fidelity: f64,
    pub index: usize,
    pub min_fidelity: f64,
}

/// `--spectral`: the largest eigenvalue, its eigenvector's amplitudes and
/// phases (units of π).
#[derive(Clone, Debug, PartialEq)]
pub struct SpectralRecord {
    pub eigenvalue: f64,
    pub amplitudes: Vec<f64>,
    pub phases: Vec<f64>,
}

/// `--bootstrap`: B, the resamples that failed, and the sample standard
/// deviations over the others (`None`: fewer than two, written `null`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BootstrapRecord {
    pub resamples: u32,
    pub failed: u32,
    pub purity_std: Option<f64>,
    /// Written only when the record has a `fidelity`.
    pub fidelity_std: Option<f64>,
    /// Written only when the record has the Bell figures.
    pub bell_max_fidelity_std: Option<f64>,
}

/// The record of a line that could not become a job, or of a job that
/// failed: `id` is `None` when unknown, `dim`, `design`, `method`, `worker`
/// and `warnings` are written when known.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ErrorRecord {
    pub line: u64,
    pub id: Option<String>,
    /// One sentence naming the line, the id and the field.
    pub error: String,
    pub dim: Option<usize>,
    pub design: Option<String>,
    pub method: Option<String>,
    pub worker: Option<usize>,
    pub warnings: Option<Vec<String>>,
}

impl OkRecord {
    /// The record of `job`, which ended well with `figures` on worker slot
    /// `worker`; its ρ path relative to `out_dir`.
    pub fn new(job: &Job, figures: &JobFigures, worker: usize, out_dir: &Path) -> Self {
        let rho = match job.rho_path.strip_prefix(out_dir) {
            Ok(rel) => rel.to_string_lossy().into_owned(),
            Err(_) => job.rho_path.to_string_lossy().into_owned(),
        };
        let ll = figures.log_likelihood;
        let bell = figures.analysis.bell.map(|b| BellRecord {
            max_fidelity: no_negative_zero(b.max_fidelity),
            index: b.index,
            min_fidelity: no_negative_zero(b.min_fidelity),
        });
        let spectral = figures.analysis.dominant.as_ref().map(|d| SpectralRecord {
            eigenvalue: no_negative_zero(d.eigenvalue),
            amplitudes: d.amplitudes.clone(),
            phases: d.phases.clone(),
        });
        OkRecord {
            line: job.line,
            id: job.id.clone(),
            dim: job.dim,
            design: job.projectors.design_name().into(),
            method: job.method.as_str().into(),
            rho,
            iterations: figures.iterations,
            converged: figures.converged,
            log_likelihood: ll.is_finite().then(|| no_negative_zero(ll)),
            purity: no_negative_zero(figures.purity),
            trace: no_negative_zero(figures.trace),
            rank: figures.rank,
            min_eigenvalue: no_negative_zero(figures.min_eigenvalue),
            max_eigenvalue: no_negative_zero(figures.max_eigenvalue),
            eigenvalue_entropy: no_negative_zero(figures.eigenvalue_entropy),
            fidelity: figures.fidelity.map(no_negative_zero),
            objective: figures.objective.map(no_negative_zero),
            bell,
            spectral,
            bootstrap: None,
            warnings: warnings_of(job),
            started: Some(figures.started),
            seconds: no_negative_zero(figures.seconds),
            worker,
        }
    }
}

impl ErrorRecord {
    /// The record of line `line` (id `id` when known) that failed with
    /// `message`; nothing else known.
    pub fn new(line: u64, id: Option<&str>, message: String) -> Self {
        ErrorRecord {
            line,
            id: id.map(str::to_owned),
            error: message,
            ..Default::default()
        }
    }
}

impl From<OkRecord> for ResultRecord {
    fn from(r: OkRecord) -> Self {
        ResultRecord::Ok(r)
    }
}

impl From<ErrorRecord> for ResultRecord {
    fn from(r: ErrorRecord) -> Self {
        ResultRecord::Error(r)
    }
}

impl ResultRecord {
    #[cfg(test)]
    /// The record of a job that ended well.
    #[must_use]
    pub fn ok(job: &Job, figures: &JobFigures, worker: usize, out_dir: &Path) -> Self {
        ResultRecord::Ok(OkRecord::new(job, figures, worker, out_dir))
    }

    #[cfg(test)]
    /// The record of a batch line that could not become a job.
    #[must_use]
    pub fn error(line: u64, id: Option<&str>, message: String) -> Self {
        ResultRecord::Error(ErrorRecord::new(line, id, message))
    }

    /// The record of a validated job that failed (knows dim, design, method).
    #[must_use]
    pub fn job_error(job: &Job, message: String) -> Self {
        ResultRecord::Error(ErrorRecord {
            dim: Some(job.dim),
            design: Some(job.projectors.design_name().into()),
            method: Some(job.method.as_str().into()),
            warnings: warnings_of(job),
            ..ErrorRecord::new(job.line, Some(&job.id), message)
        })
    }

    /// Whether this is an `ok` record.
    #[must_use]
    pub fn is_ok(&self) -> bool {
        matches!(self, ResultRecord::Ok(_))
    }

    /// The batch line (a count matrix's column number).
    #[must_use]
    pub fn line(&self) -> u64 {
        match self {
            ResultRecord::Ok(r) => r.line,
            ResultRecord::Error(r) => r.line,
        }
    }

    #[cfg(test)]
    /// The job's id, when known.
    #[must_use]
    pub fn id(&self) -> Option<&str> {
        match self {
            ResultRecord::Ok(r) => Some(&r.id),
            ResultRecord::Error(r) => r.id.as_deref(),
        }
    }

    #[cfg(test)]
    /// n, when known.
    #[must_use]
    pub fn dim(&self) -> Option<usize> {
        match self {
            ResultRecord::Ok(r) => Some(r.dim),
            ResultRecord::Error(r) => r.dim,
        }
    }

    /// The method's name, when known.
    #[must_use]
    pub fn method(&self) -> Option<&str> {
        match self {
            ResultRecord::Ok(r) => Some(&r.method),
            ResultRecord::Error(r) => r.method.as_deref(),
        }
    }

    /// The record as one JSON line, without the trailing newline.
    #[must_use]
    pub fn to_json_line(&self) -> String {
        // Serializing plain fields to a String cannot fail.
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(
                "{{\"line\":{},\"status\":\"error\",\"error\":\"failed to serialize the result: {}\"}}",
                self.line(),
                e.to_string().replace(['"', '\\'], "'")
            )
        })
    }
}

fn warnings_of(job: &Job) -> Option<Vec<String>> {
    (!job.warnings.is_empty()).then(|| job.warnings.clone())
}

/// −0 (e.g. an entropy of −0·ln 1) as 0.
fn no_negative_zero(x: f64) -> f64 {
    if x == 0.0 { 0.0 } else { x }
}

fn finite(x: Option<f64>) -> Option<f64> {
    x.filter(|v| v.is_finite())
}

impl Serialize for ResultRecord {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match self {
            ResultRecord::Ok(r) => r.serialize_fields(&mut m)?,
            ResultRecord::Error(r) => r.serialize_fields(&mut m)?,
        }
        m.end()
    }
}

impl OkRecord {
    /// The fields, in the order `results.jsonl` has always had them.
    fn serialize_fields<M: SerializeMap>(&self, m: &mut M) -> Result<(), M::Error> {
        m.serialize_entry("line", &self.line)?;
        m.serialize_entry("id", &self.id)?;
        m.serialize_entry("status", "ok")?;
        m.serialize_entry("dim", &self.dim)?;
        m.serialize_entry("design", &self.design)?;
        m.serialize_entry("method", &self.method)?;
        m.serialize_entry("rho", &self.rho)?;
        m.serialize_entry("iterations", &self.iterations)?;
        m.serialize_entry("converged", &self.converged)?;
        m.serialize_entry("log_likelihood", &finite(self.log_likelihood))?;
        m.serialize_entry("purity", &self.purity)?;
        if self.fidelity.is_some() {
            m.serialize_entry("fidelity", &self.fidelity)?;
        }
        if self.objective.is_some() {
            m.serialize_entry("objective", &self.objective)?;
        }
        if let Some(b) = &self.bell {
            m.serialize_entry("bell_max_fidelity", &b.max_fidelity)?;
            m.serialize_entry("bell_index", &b.index)?;
            m.serialize_entry("bell_min_fidelity", &b.min_fidelity)?;
        }
        if let Some(d) = &self.spectral {
            m.serialize_entry("dominant_eigenvalue", &d.eigenvalue)?;
            m.serialize_entry("dominant_amplitudes", &d.amplitudes)?;
            m.serialize_entry("dominant_phases", &d.phases)?;
        }
        if let Some(b) = &self.bootstrap {
            self.serialize_bootstrap(b, m)?;
        }
        if self.warnings.is_some() {
            m.serialize_entry("warnings", &self.warnings)?;
        }
        if self.started.is_some() {
            m.serialize_entry("started", &self.started)?;
        }
        m.serialize_entry("seconds", &self.seconds)?;
        m.serialize_entry("worker", &self.worker)?;
        m.serialize_entry("trace", &self.trace)?;
        m.serialize_entry("rank", &self.rank)?;
        m.serialize_entry("min_eigenvalue", &self.min_eigenvalue)?;
        m.serialize_entry("max_eigenvalue", &self.max_eigenvalue)?;
        m.serialize_entry("eigenvalue_entropy", &self.eigenvalue_entropy)
    }

    fn serialize_bootstrap<M: SerializeMap>(
        &self,
        b: &BootstrapRecord,
        m: &mut M,
    ) -> Result<(), M::Error> {
        m.serialize_entry("bootstrap", &b.resamples)?;
        m.serialize_entry("bootstrap_failed", &b.failed)?;
        m.serialize_entry("purity_std", &finite(b.purity_std))?;
        if self.fidelity.is_some() {
            m.serialize_entry("fidelity_std", &finite(b.fidelity_std))?;
        }
        if self.bell.is_some() {
            m.serialize_entry("bell_max_fidelity_std", &finite(b.bell_max_fidelity_std))?;
        }
        Ok(())
    }
}

impl ErrorRecord {
    /// The fields, in the order `results.jsonl` has always had them.
    fn serialize_fields<M: SerializeMap>(&self, m: &mut M) -> Result<(), M::Error> {
        m.serialize_entry("line", &self.line)?;
        m.serialize_entry("id", &self.id)?;
        m.serialize_entry("status", "error")?;
        m.serialize_entry("error", &self.error)?;
        if let Some(dim) = &self.dim {
            m.serialize_entry("dim", dim)?;
        }
        if let Some(design) = &self.design {
            m.serialize_entry("design", design)?;
        }
        if let Some(method) = &self.method {
            m.serialize_entry("method", method)?;
        }
        if let Some(worker) = &self.worker {
            m.serialize_entry("worker", worker)?;
        }
        if let Some(warnings) = &self.warnings {
            m.serialize_entry("warnings", warnings)?;
        }
        Ok(())
    }
}

/// A line as read, every field optional: [`ResultRecord`]'s `try_from`
/// decides which record it is and checks that an `ok` one is whole.
#[derive(Deserialize, Default)]
#[serde(default)]
struct RawRecord {
    line: u64,
    id: Option<String>,
    status: String,
    dim: Option<usize>,
    design: Option<String>,
    method: Option<String>,
    rho: Option<String>,
    iterations: Option<u64>,
    converged: Option<bool>,
    log_likelihood: Option<f64>,
    purity: Option<f64>,
    trace: Option<f64>,
    rank: Option<usize>,
    min_eigenvalue: Option<f64>,
    max_eigenvalue: Option<f64>,
    eigenvalue_entropy: Option<f64>,
    fidelity: Option<f64>,
    objective: Option<f64>,
    bell_max_fidelity: Option<f64>,
    bell_index: Option<usize>,
    bell_min_fidelity: Option<f64>,
    dominant_eigenvalue: Option<f64>,
    dominant_amplitudes: Option<Vec<f64>>,
    dominant_phases: Option<Vec<f64>>,
    bootstrap: Option<u32>,
    bootstrap_failed: Option<u32>,
    purity_std: Option<f64>,
    fidelity_std: Option<f64>,
    bell_max_fidelity_std: Option<f64>,
    warnings: Option<Vec<String>>,
    started: Option<f64>,
    seconds: Option<f64>,
    worker: Option<usize>,
    error: Option<String>,
}

/// An `ok` line that lacks a field every `ok` record has.
#[derive(Debug, thiserror::Error)]
#[error("an ok record has no {0}")]
pub struct MissingField(&'static str);

fn need<T>(x: Option<T>, name: &'static str) -> Result<T, MissingField> {
    x.ok_or(MissingField(name))
}

/// A figure written as `null` (not a number) reads back as NaN.
fn figure(x: Option<f64>) -> f64 {
    x.unwrap_or(f64::NAN)
}

impl TryFrom<RawRecord> for ResultRecord {
    type Error = MissingField;

    fn try_from(r: RawRecord) -> Result<Self, MissingField> {
        if r.status != "ok" {
            return Ok(ResultRecord::Error(ErrorRecord {
                line: r.line,
                id: r.id,
                error: r.error.unwrap_or_default(),
                dim: r.dim,
                design: r.design,
                method: r.method,
                worker: r.worker,
                warnings: r.warnings,
            }));
        }
        let bell = match r.bell_max_fidelity {
            Some(max) => Some(BellRecord {
                max_fidelity: max,
                index: need(r.bell_index, "bell_index")?,
                min_fidelity: figure(r.bell_min_fidelity),
            }),
            None => None,
        };
        let spectral = match r.dominant_eigenvalue {
            Some(eigenvalue) => Some(SpectralRecord {
                eigenvalue,
                amplitudes: need(r.dominant_amplitudes, "dominant_amplitudes")?,
                phases: need(r.dominant_phases, "dominant_phases")?,
            }),
            None => None,
        };
        let bootstrap = match r.bootstrap {
            Some(resamples) => Some(BootstrapRecord {
                resamples,
                failed: need(r.bootstrap_failed, "bootstrap_failed")?,
                purity_std: r.purity_std,
                fidelity_std: r.fidelity_std,
                bell_max_fidelity_std: r.bell_max_fidelity_std,
            }),
            None => None,
        };
        Ok(ResultRecord::Ok(OkRecord {
            line: r.line,
            id: need(r.id, "id")?,
            dim: need(r.dim, "dim")?,
            design: need(r.design, "design")?,
            method: need(r.method, "method")?,
            rho: need(r.rho, "rho")?,
            iterations: r.iterations,
            converged: r.converged,
            log_likelihood: r.log_likelihood,
            purity: figure(r.purity),
            trace: figure(r.trace),
            rank: need(r.rank, "rank")?,
            min_eigenvalue: figure(r.min_eigenvalue),
            max_eigenvalue: figure(r.max_eigenvalue),
            eigenvalue_entropy: figure(r.eigenvalue_entropy),
            fidelity: r.fidelity,
            objective: r.objective,
            bell,
            spectral,
            bootstrap,
            warnings: r.warnings,
            started: r.started,
            seconds: figure(r.seconds),
            worker: need(r.worker, "worker")?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines written by qst before records were typed (ok and error lines;
    /// `--bell`, `--spectral`, `--bootstrap`, `wls`, `--negative clip`
    /// warnings, timeouts, ℓ = −∞), each exactly as it was written.
    const WRITTEN: &str = include_str!("../testdata/results.jsonl");

    #[test]
    fn written_lines_read_back_and_are_written_again_byte_for_byte() {
        let mut kinds = [0; 6];
        for line in WRITTEN.lines() {
            let rec: ResultRecord = serde_json::from_str(line).unwrap();
            assert_eq!(rec.to_json_line(), line);
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(rec.is_ok(), v["status"] == "ok", "{line}");
            assert_eq!(Some(rec.line()), v["line"].as_u64());
            assert_eq!(rec.id(), v["id"].as_str());
            assert_eq!(rec.method(), v["method"].as_str());
            assert_eq!(rec.dim().map(|d| d as u64), v["dim"].as_u64());
            match &rec {
                ResultRecord::Ok(r) => {
                    kinds[0] += 1;
                    assert_eq!(r.bell.is_some(), v.get("bell_max_fidelity").is_some());
                    assert_eq!(r.spectral.is_some(), v.get("dominant_eigenvalue").is_some());
                    assert_eq!(r.bootstrap.is_some(), v.get("bootstrap").is_some());
                    kinds[1] += usize::from(r.bell.is_some());
                    kinds[2] += usize::from(r.spectral.is_some());
                    kinds[3] += usize::from(r.bootstrap.is_some());
                    kinds[4] += usize::from(r.log_likelihood.is_none());
                    assert_eq!(r.purity.to_bits(), v["purity"].as_f64().unwrap().to_bits());
                    assert_eq!(r.rank as u64, v["rank"].as_u64().unwrap());
                }
                ResultRecord::Error(r) => {
                    kinds[5] += 1;
                    assert_eq!(r.error, v["error"].as_str().unwrap());
                    assert!(v.get("rho").is_none());
                }
            }
        }
        // Every kind of line is there.
        assert!(kinds.iter().all(|&k| k > 0), "{kinds:?}");
    }

    #[test]
    fn an_ok_line_missing_a_field_every_ok_line_has_is_refused() {
        let line = WRITTEN
            .lines()
            .find(|l| l.contains("\"status\":\"ok\""))
            .unwrap();
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        v.as_object_mut().unwrap().remove("rho");
        let e = serde_json::from_value::<ResultRecord>(v).unwrap_err();
        assert!(e.to_string().contains("an ok record has no rho"), "{e}");
    }

    #[test]
    fn bootstrap_std_of_fewer_than_two_resamples_is_null() {
        let line = WRITTEN
            .lines()
            .find(|l| l.contains("\"purity_std\":null"))
            .unwrap();
        let ResultRecord::Ok(r) = serde_json::from_str(line).unwrap() else {
            panic!("{line}")
        };
        let b = r.bootstrap.unwrap();
        assert_eq!((b.resamples, b.failed, b.purity_std), (5, 5, None));
    }
}
