//! The native part of the Python package `qst` (`qst._qst`): the qst engine
//! in-process on numpy arrays. Projector sets come from one process-wide
//! [`ProjectorCache`] over the same cache directory the `qst` binary uses,
//! handed to Python as read-only views over the memory maps; a caller's own
//! complex128 projector array is borrowed, not copied. Every computation runs
//! with the GIL released and inside `catch_unwind`, so a panic becomes a
//! Python exception, never an abort.
//!
//! The pure-Python layer (`python/qst/__init__.py`) coerces arguments and
//! adds the batch helpers `run` and `load`.

// `clippy::pedantic` is reviewed (docs/ARCHITECTURE.md, "Lints"); these do not fit:
#![allow(
    // A #[pyfunction] takes its numpy arguments by value: that is how pyo3 extracts them.
    clippy::needless_pass_by_value,
    // Doc comments are the Python docstrings: math stays as users read it, not in backticks.
    clippy::doc_markdown,
    // Shapes are named as in docs/reference.md: (K, n, n) is [k, a, b], p a projector set.
    clippy::many_single_char_names
)]

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use numpy::ndarray::{Array2, ArrayView3};
use numpy::{
    IntoPyArray, PyArray2, PyArray3, PyReadonlyArray1, PyReadonlyArray2, PyReadonlyArray3,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use qst_math::{C64, Design, Mat, MatRef, MleOptions, Projectors};
use qst_store::{ProjectorCache, ProjectorHandle, Store, StoreConfig, StoreError};

/// How far a `truth` may be from a density matrix (as for a batch's truth).
const TRUTH_TOL: f64 = 1e-6;

/// An error on its way to Python: one sentence and the exception type.
#[derive(Debug)]
enum Error {
    /// Bad input: `ValueError`.
    Value(String),
    /// A file or directory could not be used: `OSError`.
    Os(String),
    /// A bug (a panic caught at the boundary): `RuntimeError`.
    Internal(String),
}

impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        match e {
            Error::Value(m) => PyValueError::new_err(m),
            Error::Os(m) => PyOSError::new_err(m),
            Error::Internal(m) => PyRuntimeError::new_err(m),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Error {
        match e {
            StoreError::Io { .. } | StoreError::Npy(qst_npy::NpyError::Io { .. }) => {
                Error::Os(format!("failed to {e}"))
            }
            _ => Error::Value(format!("failed to {e}")),
        }
    }
}

fn value(msg: impl Into<String>) -> Error {
    Error::Value(msg.into())
}

fn panic_message(p: &(dyn Any + Send)) -> String {
    let what = p
        .downcast_ref::<&str>()
        .map(ToString::to_string)
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string());
    format!("qst internal error (please report it): {what}")
}

/// Runs `f`, turning a panic into [`Error::Internal`].
fn guarded<T>(f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| Err(Error::Internal(panic_message(&*p))))
}

/// Runs `f` with the GIL released, guarded against panics.
fn compute<T: Send>(py: Python<'_>, f: impl FnOnce() -> Result<T, Error> + Send) -> PyResult<T> {
    py.detach(|| guarded(f)).map_err(PyErr::from)
}

// ---------------------------------------------------------------------------
// The process-wide projector cache.

static CACHE: Mutex<Option<Arc<ProjectorCache>>> = Mutex::new(None);

/// `$QST_MAX_CACHE_BYTES`, if set.
fn env_max_bytes() -> Result<Option<u64>, Error> {
    match std::env::var("QST_MAX_CACHE_BYTES") {
        Ok(v) if !v.trim().is_empty() => v.trim().parse::<u64>().map(Some).map_err(|_| {
            value(format!(
                "QST_MAX_CACHE_BYTES is {v:?}, but must be a whole number of bytes"
            ))
        }),
        _ => Ok(None),
    }
}

fn new_cache(max_bytes: Option<u64>) -> Result<Arc<ProjectorCache>, Error> {
    let max_bytes = match max_bytes {
        Some(b) => Some(b),
        None => env_max_bytes()?,
    };
    let config = StoreConfig::resolve(None, max_bytes);
    Ok(Arc::new(ProjectorCache::new(Store::new(config))))
}

/// The process-wide cache, made on first use (directory and budget resolved
/// then: `$QST_CACHE_DIR`, … and `$QST_MAX_CACHE_BYTES`).
fn cache() -> Result<Arc<ProjectorCache>, Error> {
    let mut slot = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(c) = slot.as_ref() {
        return Ok(Arc::clone(c));
    }
    let c = new_cache(None)?;
    *slot = Some(Arc::clone(&c));
    Ok(c)
}

fn parse_design(name: &str) -> Result<Design, Error> {
    name.parse::<Design>().map_err(|e| value(e.0))
}

fn builtin_handle(design: Design, n: usize) -> Result<ProjectorHandle, Error> {
    design.check_dim(n).map_err(|e| value(e.0))?;
    Ok(cache()?.builtin(design, n)?)
}

/// Keeps a cached projector set (and its memory map) alive while a numpy
/// array views it; the `base` of the arrays `qst.projectors` returns.
#[pyclass(frozen, module = "qst._qst", name = "MappedProjectors")]
struct MappedProjectors {
    handle: ProjectorHandle,
}

#[pymethods]
impl MappedProjectors {
    /// The mapped cache file.
    #[getter]
    fn path(&self) -> Option<PathBuf> {
        self.handle.path().map(Path::to_path_buf)
    }
    /// The design's name.
    #[getter]
    fn design(&self) -> &'static str {
        self.handle.design()
    }
    /// The dimension n.
    #[getter]
    fn dim(&self) -> usize {
        self.handle.dim()
    }
    fn __repr__(&self) -> String {
        format!(
            "MappedProjectors(design={:?}, dim={}, path={:?})",
            self.handle.design(),
            self.handle.dim(),
            self.handle
                .path()
                .map_or_else(String::new, |p| p.display().to_string())
        )
    }
}

/// The built-in set as a read-only (K, n, n) complex128 array over the
/// memory-mapped cache file (built by the store if missing).
#[pyfunction]
fn projectors<'py>(py: Python<'py>, design: &str, n: usize) -> PyResult<Bound<'py, PyArray3<C64>>> {
    let design = parse_design(design)?;
    let handle = compute(py, || builtin_handle(design, n))?;
    let Some(map) = handle.mapped() else {
        let budget = cache()?.store().config.max_bytes;
        return Err(value(format!(
            "{design} of dimension {n} is {} bytes as a dense file, over the cache budget of {budget} bytes, so it is not written (use qst.kets, or raise the budget with qst.set_cache_limit)",
            Store::file_len(design, n).unwrap_or(u64::MAX)
        ))
        .into());
    };
    let k = design.count(n).unwrap_or(0);
    let view = ArrayView3::from_shape((k, n, n), map.as_slice()).map_err(|e| {
        Error::Internal(format!(
            "qst internal error (please report it): the map of {design}_n{n} does not hold (K, n, n): {e}"
        ))
    })?;
    let container = Bound::new(
        py,
        MappedProjectors {
            handle: handle.clone(),
        },
    )?;
    // SAFETY: the view's memory belongs to the read-only map that `handle`
    // keeps alive; the container holds a clone of it and becomes the array's
    // base, so the map outlives the array.
    let array = unsafe { PyArray3::borrow_from_array(&view, container.into_any()) };
    let kwargs = PyDict::new(py);
    kwargs.set_item("write", false)?;
    array.call_method("setflags", (), Some(&kwargs))?;
    Ok(array)
}

/// The design's kets (K, n), Π_k = ψ_kψ_k† (for `sic`, ψ includes the 1/√2).
#[pyfunction]
fn kets<'py>(py: Python<'py>, design: &str, n: usize) -> PyResult<Bound<'py, PyArray2<C64>>> {
    let design = parse_design(design)?;
    let kets = compute(py, || {
        design.check_dim(n).map_err(|e| value(e.0))?;
        Ok(design.kets(n))
    })?;
    let k = kets.len() / n;
    let a = Array2::from_shape_vec((k, n), kets)
        .map_err(|e| Error::Internal(format!("qst internal error: kets shape: {e}")))?;
    Ok(a.into_pyarray(py))
}

/// Hits, misses, evictions and mapped bytes of the process-wide cache.
#[pyfunction]
fn cache_info(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let c = cache()?;
    let s = c.stats();
    let d = PyDict::new(py);
    d.set_item("hits", s.hits)?;
    d.set_item("misses", s.misses)?;
    d.set_item("evictions", s.evictions)?;
    d.set_item("mapped_bytes", c.resident_bytes())?;
    d.set_item("max_bytes", c.store().config.max_bytes)?;
    d.set_item("dir", c.store().config.dir.clone())?;
    Ok(d)
}

/// Starts a fresh process-wide cache with this byte budget (`None`:
/// `$QST_MAX_CACHE_BYTES`, else half of physical memory). Arrays already
/// handed out stay valid; the counters start again from zero.
#[pyfunction]
#[pyo3(signature = (max_bytes=None))]
fn set_cache_limit(max_bytes: Option<u64>) -> PyResult<()> {
    let c = new_cache(max_bytes)?;
    *CACHE.lock().unwrap_or_else(PoisonError::into_inner) = Some(c);
    Ok(())
}

// ---------------------------------------------------------------------------
// Reconstruction.

fn square_dim(shape: &[usize], what: &str) -> Result<usize, Error> {
    match shape {
        [a, b] if a == b && *a > 0 => Ok(*a),
        s => Err(value(format!(
            "{what} has shape {}, but must be a square (n, n) matrix",
            qst_npy::shape_str(s)
        ))),
    }
}

fn contiguous<'a, T: numpy::Element, D: numpy::ndarray::Dimension>(
    a: &'a numpy::PyReadonlyArray<'_, T, D>,
    what: &str,
) -> Result<&'a [T], Error> {
    a.as_slice()
        .map_err(|_| value(format!("{what} must be a C-contiguous array")))
}

fn to_mat(n: usize, data: &[C64]) -> Mat<C64> {
    Mat::from_fn(n, n, |a, b| data[a * n + b])
}

fn from_mat(m: MatRef<'_, C64>) -> Vec<C64> {
    let n = m.nrows();
    (0..n * n).map(|i| m[(i / n, i % n)]).collect()
}

/// The result fields of one reconstruction.
struct Info {
    n: usize,
    design: &'static str,
    method: &'static str,
    iterations: Option<u64>,
    converged: Option<bool>,
    log_likelihood: f64,
    figures: qst_math::Figures,
    fidelity: Option<f64>,
    objective: Option<f64>,
    seconds: f64,
}

/// The figures of ρ (`qst_math::figures`) into a result dict.
fn set_figures(d: &Bound<'_, PyDict>, f: &qst_math::Figures) -> PyResult<()> {
    d.set_item("purity", f.purity)?;
    d.set_item("trace", f.trace)?;
    d.set_item("rank", f.rank)?;
    d.set_item("min_eigenvalue", f.min_eigenvalue)?;
    d.set_item("max_eigenvalue", f.max_eigenvalue)?;
    d.set_item("eigenvalue_entropy", f.eigenvalue_entropy)?;
    Ok(())
}

impl Info {
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        let f = &self.figures;
        d.set_item("iterations", self.iterations)?;
        d.set_item("converged", self.converged)?;
        d.set_item("log_likelihood", self.log_likelihood)?;
        set_figures(&d, f)?;
        if let Some(fid) = self.fidelity {
            d.set_item("fidelity", fid)?;
        }
        if let Some(o) = self.objective {
            d.set_item("objective", o)?;
        }
        d.set_item("design", self.design)?;
        d.set_item("dim", self.n)?;
        d.set_item("method", self.method)?;
        d.set_item("seconds", self.seconds)?;
        Ok(d)
    }
}

/// Where the projector set of one call comes from.
enum SetArg<'a> {
    Builtin(Design),
    /// A caller's (K, n, n) array, borrowed.
    Array {
        shape: [usize; 3],
        data: &'a [C64],
    },
    /// A custom `.npy` file, validated once and mapped through the cache.
    File(PathBuf),
}

/// The set to compute with: a cache handle, the caller's array, or the
/// kets of the caller's array when every slice is rank 1 (as a file's set
/// is run by the cache, so an array and its file give the same result).
enum Set<'a> {
    Handle(ProjectorHandle),
    Borrowed(Projectors<'a>),
    Kets { n: usize, kets: Vec<C64> },
}

impl Set<'_> {
    fn projectors(&self) -> Projectors<'_> {
        match self {
            Set::Handle(h) => h.projectors(),
            Set::Borrowed(p) => *p,
            Set::Kets { n, kets } => Projectors::Kets { n: *n, kets },
        }
    }
    fn builtin(&self) -> Option<Design> {
        match self {
            Set::Handle(h) => h.builtin(),
            Set::Borrowed(_) | Set::Kets { .. } => None,
        }
    }
}

struct Request<'a> {
    method: &'a str,
    counts: &'a [f64],
    n: Option<usize>,
    set: SetArg<'a>,
    validate: bool,
    opts: MleOptions,
    truth: Option<(&'a [C64], usize)>,
}

fn counts_mismatch(len: usize, whose: &str, k: usize) -> Error {
    value(format!("counts has {len} entries; {whose} needs {k}"))
}

/// The dimension n of the projector file at `path`, from its (K, n, n) header.
fn file_dim(path: &Path) -> Result<usize, Error> {
    let map = qst_npy::MappedC16::open(path, None).map_err(|e| Error::from(StoreError::from(e)))?;
    match map.shape() {
        [_, a, _] => Ok(*a),
        s => Err(value(format!(
            "{} has shape {}, but a projector set is (K, n, n)",
            path.display(),
            qst_npy::shape_str(s)
        ))),
    }
}

fn resolve_set<'a>(req: &Request<'a>) -> Result<(Set<'a>, usize), Error> {
    let len = req.counts.len();
    match &req.set {
        SetArg::Builtin(design) => {
            let design = *design;
            let n = match req.n {
                Some(n) => n,
                None => design.dim_for_count(len).ok_or_else(|| {
                    let form = match design {
                        Design::Nopovm => "n² entries",
                        Design::Mub => "n(n+1) entries, n a prime power",
                        Design::Sic => "4 entries",
                    };
                    value(format!(
                        "counts has {len} entries, which fits no dimension of {design} ({form}); give n"
                    ))
                })?,
            };
            design.check_dim(n).map_err(|e| value(e.0))?;
            let k = design.count(n).unwrap_or(0);
            if len != k {
                return Err(counts_mismatch(
                    len,
                    &format!("{design} of dimension {n}"),
                    k,
                ));
            }
            Ok((Set::Handle(builtin_handle(design, n)?), n))
        }
        SetArg::Array { shape, data } => {
            let [k, a, b] = *shape;
            if a != b || a == 0 {
                return Err(value(format!(
                    "projectors has shape {}, but must be (K, n, n)",
                    qst_npy::shape_str(shape)
                )));
            }
            let n = a;
            if let Some(want) = req.n.filter(|&want| want != n) {
                return Err(value(format!(
                    "projectors has shape {}, but n is {want}",
                    qst_npy::shape_str(shape)
                )));
            }
            if k < n * n {
                return Err(value(format!(
                    "projectors has shape {}, but dimension {n} needs K >= {} projectors",
                    qst_npy::shape_str(shape),
                    n * n
                )));
            }
            if len != k {
                return Err(counts_mismatch(len, "the custom projector set", k));
            }
            let p = Projectors::Dense { n, data };
            if req.validate {
                qst_math::validate_dense(n, data).map_err(|e| value(format!("projectors: {e}")))?;
            }
            if let Some(kets) = qst_math::rank_one_kets(n, data) {
                return Ok((Set::Kets { n, kets }, n));
            }
            Ok((Set::Borrowed(p), n))
        }
        SetArg::File(path) => {
            let n = match req.n {
                Some(n) => n,
                None => file_dim(path)?,
            };
            let c = cache()?;
            c.store().validate_custom(path, n)?;
            let h = c.custom(path, n)?;
            let k = h.projectors().count();
            if len != k {
                return Err(counts_mismatch(
                    len,
                    &format!("the projector set in {}", path.display()),
                    k,
                ));
            }
            Ok((Set::Handle(h), n))
        }
    }
}

fn reconstruct_in(req: &Request<'_>) -> Result<(Vec<C64>, Info), Error> {
    let started = Instant::now();
    let method = match req.method {
        "mle" => "mle",
        "linear" => "linear",
        "wls" => "wls",
        m => {
            return Err(value(format!(
                "unknown method {m:?} (known: \"mle\", \"linear\", \"wls\")"
            )));
        }
    };
    let (set, n) = resolve_set(req)?;
    let truth = match req.truth {
        None => None,
        Some((data, tn)) => {
            if tn != n {
                return Err(value(format!(
                    "truth is {tn}x{tn}, but the state is {n}x{n}"
                )));
            }
            if let Some(bad) = data.iter().find(|z| !z.re.is_finite() || !z.im.is_finite()) {
                return Err(value(format!("truth holds a non-finite entry {bad}")));
            }
            let t = to_mat(n, data);
            qst_math::check_density_matrix(t.as_ref(), TRUTH_TOL)
                .map_err(|e| value(format!("truth {e}, so it is not a density matrix")))?;
            Some(t)
        }
    };
    let proj = set.projectors();
    let mut objective = None;
    let (rho, iterations, converged) = if method == "mle" {
        let r = qst_math::mle(&proj, req.counts, &req.opts).map_err(|e| value(e.to_string()))?;
        (r.rho, Some(r.iterations), Some(r.converged))
    } else if method == "wls" {
        let opts = qst_math::WlsOptions {
            max_iters: req.opts.max_iters,
            ..qst_math::WlsOptions::default()
        };
        let r = qst_math::wls(&proj, req.counts, set.builtin(), &opts)
            .map_err(|e| value(e.to_string()))?;
        objective = Some(r.objective);
        (r.rho, Some(r.iterations), Some(r.converged))
    } else {
        let rho =
            qst_math::linear(&proj, req.counts, set.builtin()).map_err(|e| value(e.to_string()))?;
        (rho, None, None)
    };
    let log_likelihood = qst_math::log_likelihood(&proj, req.counts, rho.as_ref());
    let figures = qst_math::figures(rho.as_ref());
    let fidelity = truth.map(|t| qst_math::fidelity(rho.as_ref(), t.as_ref()));
    let design = match &set {
        Set::Handle(h) => h.design(),
        Set::Borrowed(_) | Set::Kets { .. } => "custom",
    };
    Ok((
        from_mat(rho.as_ref()),
        Info {
            n,
            design,
            method,
            iterations,
            converged,
            log_likelihood,
            figures,
            fidelity,
            objective,
            seconds: started.elapsed().as_secs_f64(),
        },
    ))
}

/// One reconstruction; the Python wrappers `qst.mle` / `qst.linear` coerce
/// the arguments first.
#[pyfunction]
#[pyo3(signature = (method, counts, n, design, projectors, projectors_path, tol, max_iters, truth, validate))]
#[allow(clippy::too_many_arguments)]
fn reconstruct<'py>(
    py: Python<'py>,
    method: &str,
    counts: PyReadonlyArray1<'py, f64>,
    n: Option<usize>,
    design: &str,
    projectors: Option<PyReadonlyArray3<'py, C64>>,
    projectors_path: Option<PathBuf>,
    tol: f64,
    max_iters: u64,
    truth: Option<PyReadonlyArray2<'py, C64>>,
    validate: bool,
) -> PyResult<(Bound<'py, PyArray2<C64>>, Bound<'py, PyDict>)> {
    let counts_s = contiguous(&counts, "counts")?;
    let set = match (&projectors, projectors_path) {
        (Some(p), _) => {
            let s = p.shape();
            SetArg::Array {
                shape: [s[0], s[1], s[2]],
                data: contiguous(p, "projectors")?,
            }
        }
        (None, Some(path)) => SetArg::File(path),
        (None, None) => SetArg::Builtin(parse_design(design)?),
    };
    let truth_s = match &truth {
        Some(t) => Some((contiguous(t, "truth")?, square_dim(t.shape(), "truth")?)),
        None => None,
    };
    if !(tol.is_finite() && tol > 0.0) {
        return Err(value(format!("tol is {tol}, but must be finite and > 0")).into());
    }
    if max_iters == 0 {
        return Err(value("max_iters is 0, but must be at least 1").into());
    }
    let req = Request {
        method,
        counts: counts_s,
        n,
        set,
        validate,
        opts: MleOptions {
            max_iters,
            tol,
            fixed_iterations: false,
        },
        truth: truth_s,
    };
    let (rho, info) = compute(py, || reconstruct_in(&req))?;
    let n = info.n;
    let rho = Array2::from_shape_vec((n, n), rho)
        .map_err(|e| Error::Internal(format!("qst internal error: rho shape: {e}")))?;
    Ok((rho.into_pyarray(py), info.to_dict(py)?))
}

/// F(a, b) = (Tr √(√a b √a))² of two density matrices.
#[pyfunction]
fn fidelity(
    py: Python<'_>,
    a: PyReadonlyArray2<'_, C64>,
    b: PyReadonlyArray2<'_, C64>,
) -> PyResult<f64> {
    let (na, nb) = (square_dim(a.shape(), "a")?, square_dim(b.shape(), "b")?);
    if na != nb {
        return Err(value(format!("a is {na}x{na} but b is {nb}x{nb}")).into());
    }
    let (sa, sb) = (contiguous(&a, "a")?, contiguous(&b, "b")?);
    compute(py, || {
        Ok(qst_math::fidelity(
            to_mat(na, sa).as_ref(),
            to_mat(nb, sb).as_ref(),
        ))
    })
}

/// The figures of a density matrix: purity, trace, rank, extreme
/// eigenvalues, eigenvalue entropy.
#[pyfunction]
fn figures<'py>(py: Python<'py>, rho: PyReadonlyArray2<'py, C64>) -> PyResult<Bound<'py, PyDict>> {
    let n = square_dim(rho.shape(), "rho")?;
    let s = contiguous(&rho, "rho")?;
    let f = compute(py, || Ok(qst_math::figures(to_mat(n, s).as_ref())))?;
    let d = PyDict::new(py);
    set_figures(&d, &f)?;
    Ok(d)
}

/// The generalized Bell analysis of a two-qudit state (n = m²): every
/// overlap ⟨B_{a,b}|ρ|B_{a,b}⟩ at index a·m + b, the largest with its index,
/// and the smallest.
#[pyfunction]
fn bell<'py>(py: Python<'py>, rho: PyReadonlyArray2<'py, C64>) -> PyResult<Bound<'py, PyDict>> {
    let n = square_dim(rho.shape(), "rho")?;
    let s = contiguous(&rho, "rho")?;
    let (all, (max, index, min)) = compute(py, || {
        let r = to_mat(n, s);
        let all = qst_math::bell_fidelities(r.as_ref()).map_err(|e| value(format!("bell: {e}")))?;
        let summary =
            qst_math::bell_summary(r.as_ref()).map_err(|e| value(format!("bell: {e}")))?;
        Ok((all, summary))
    })?;
    let d = PyDict::new(py);
    d.set_item("bell_fidelities", all)?;
    d.set_item("bell_max_fidelity", max)?;
    d.set_item("bell_index", index)?;
    d.set_item("bell_min_fidelity", min)?;
    Ok(d)
}

/// The dominant component: the largest eigenvalue and its eigenvector as
/// amplitudes and phases (units of π, relative to the first component of
/// amplitude above 1e-6 of the largest).
#[pyfunction]
fn spectral<'py>(py: Python<'py>, rho: PyReadonlyArray2<'py, C64>) -> PyResult<Bound<'py, PyDict>> {
    let n = square_dim(rho.shape(), "rho")?;
    let s = contiguous(&rho, "rho")?;
    let d = compute(py, || {
        qst_math::dominant(to_mat(n, s).as_ref()).map_err(|e| value(format!("spectral: {e}")))
    })?;
    let out = PyDict::new(py);
    out.set_item("dominant_eigenvalue", d.eigenvalue)?;
    out.set_item("dominant_amplitudes", d.amplitudes)?;
    out.set_item("dominant_phases", d.phases)?;
    Ok(out)
}

/// The address of the buffer `reconstruct` computes from for this
/// projector array (it borrows the array through the same path), so a test
/// can check that no copy is made.
#[pyfunction]
fn _buffer_address(projectors: PyReadonlyArray3<'_, C64>) -> PyResult<usize> {
    Ok(contiguous(&projectors, "projectors")?.as_ptr() as usize)
}

#[pymodule]
fn _qst(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // One math thread per calling thread, as in the workers: Python threads
    // are the parallelism, and results match the CLI's bit for bit.
    faer::set_global_parallelism(faer::Par::Seq);
    m.add_class::<MappedProjectors>()?;
    m.add_function(wrap_pyfunction!(projectors, m)?)?;
    m.add_function(wrap_pyfunction!(kets, m)?)?;
    m.add_function(wrap_pyfunction!(cache_info, m)?)?;
    m.add_function(wrap_pyfunction!(set_cache_limit, m)?)?;
    m.add_function(wrap_pyfunction!(reconstruct, m)?)?;
    m.add_function(wrap_pyfunction!(fidelity, m)?)?;
    m.add_function(wrap_pyfunction!(figures, m)?)?;
    m.add_function(wrap_pyfunction!(bell, m)?)?;
    m.add_function(wrap_pyfunction!(spectral, m)?)?;
    m.add_function(wrap_pyfunction!(_buffer_address, m)?)?;
    Ok(())
}
