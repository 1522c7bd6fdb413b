//! Synthetic batches for `qst gen` and `qst demo`: seeded random states of
//! several dimensions (pure, full-rank mixed, rank-deficient), Poisson counts
//! on the `nopovm` set (docs/reference.md), and each true state as a `.npy` file.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use qst_math::C64;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Poisson, StandardNormal};

use crate::batch::MAX_DIM;

/// What `qst gen` writes.
#[derive(Clone, Debug)]
pub struct GenSpec {
    pub dims: Vec<usize>,
    /// Jobs per dimension.
    pub per_dim: usize,
    /// Mean total count of each job.
    pub shots: f64,
    pub seed: u64,
}

/// The kind of random state of the `i`-th job of a dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateKind {
    /// ψψ† with ψ a normalized complex Gaussian vector.
    Pure,
    /// G G† / Tr(G G†) with G an n×n complex Gaussian matrix (full rank).
    Mixed,
    /// G G† / Tr with G of n × ⌈n/2⌉: rank ⌈n/2⌉ < n for n ≥ 3.
    RankDeficient,
}

impl StateKind {
    /// The kind of the `i`-th job (0-based) of a dimension.
    #[must_use]
    pub fn of(i: usize) -> Self {
        match i % 3 {
            0 => StateKind::Pure,
            1 => StateKind::Mixed,
            _ => StateKind::RankDeficient,
        }
    }
}

/// The id of the `i`-th job (0-based) of dimension `n`: `n{n}-{i:04}`.
#[must_use]
pub fn job_id(n: usize, i: usize) -> String {
    format!("n{n}-{i:04}")
}

fn gaussian(rng: &mut StdRng) -> C64 {
    let re: f64 = StandardNormal.sample(rng);
    let im: f64 = StandardNormal.sample(rng);
    C64::new(re, im)
}

/// A random density matrix of `kind`, n×n row-major.
pub fn random_state(n: usize, kind: StateKind, rng: &mut StdRng) -> Vec<C64> {
    let r = match kind {
        StateKind::Pure => 1,
        StateKind::Mixed => n,
        StateKind::RankDeficient => n.div_ceil(2),
    };
    let g: Vec<C64> = (0..n * r).map(|_| gaussian(rng)).collect();
    let mut rho = vec![C64::new(0.0, 0.0); n * n];
    for a in 0..n {
        for b in 0..n {
            let mut s = C64::new(0.0, 0.0);
            for k in 0..r {
                s += g[a * r + k] * g[b * r + k].conj();
            }
            rho[a * n + b] = s;
        }
    }
    let tr: f64 = (0..n).map(|a| rho[a * n + a].re).sum();
    for z in &mut rho {
        *z /= tr;
    }
    // Exactly Hermitian.
    for a in 0..n {
        rho[a * n + a].im = 0.0;
        for b in a + 1..n {
            rho[b * n + a] = rho[a * n + b].conj();
        }
    }
    rho
}

/// p_k = Tr(Π_k ρ) = ψ_k† ρ ψ_k for every `nopovm` projector (docs/designs.md, 1.3),
/// using the (at most two) non-zero entries of each ket.
#[must_use]
pub fn nopovm_probabilities(n: usize, rho: &[C64]) -> Vec<f64> {
    (0..n * n)
        .map(|k| {
            let ket = qst_math::nopovm_ket(n, k);
            let nz: Vec<(usize, C64)> = ket
                .iter()
                .enumerate()
                .filter(|(_, z)| z.norm_sqr() > 0.0)
                .map(|(i, z)| (i, *z))
                .collect();
            let mut p = C64::new(0.0, 0.0);
            for &(a, pa) in &nz {
                for &(b, pb) in &nz {
                    // Π[a,b] ρ[b,a] with Π[a,b] = ψ[a] conj(ψ[b]).
                    p += pa * pb.conj() * rho[b * n + a];
                }
            }
            p.re.max(0.0)
        })
        .collect()
}

/// Poisson counts with mean `shots · p_k / Σ p`; redrawn (a few times) if all
/// come out zero.
///
/// # Errors
///
/// [`GenError`] when `p` holds no probability, a mean is out of the Poisson range, or every
/// redraw comes out all zero.
pub fn simulate_counts(p: &[f64], shots: f64, rng: &mut StdRng) -> Result<Vec<u64>, GenError> {
    let total: f64 = p.iter().sum();
    if total.is_nan() || total <= 0.0 {
        return Err(GenError::NoProbability);
    }
    for _ in 0..100 {
        let mut c = Vec::with_capacity(p.len());
        for &pk in p {
            let mean = shots * pk / total;
            if mean > 0.0 {
                let d = Poisson::new(mean).map_err(|source| GenError::Poisson { mean, source })?;
                let x: f64 = d.sample(rng);
                // A Poisson draw is whole and >= 0 (saturating far above any shot count).
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let x = x as u64;
                c.push(x);
            } else {
                c.push(0);
            }
        }
        if c.iter().any(|&x| x > 0) {
            return Ok(c);
        }
    }
    Err(GenError::NoCounts { shots })
}

/// Why a batch could not be generated; reads after "failed to".
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    #[error("generate a batch: --dims names no dimension")]
    NoDims,
    #[error("generate a batch: dimension {0} in --dims is outside 2 to {MAX_DIM}")]
    Dim(usize),
    #[error("generate a batch: --shots {0} is outside 1 to 1e15")]
    Shots(f64),
    #[error("generate a batch: {} has no file name", .0.display())]
    NoFileName(PathBuf),
    #[error("write {}: it exists (pass --force to replace it)", .0.display())]
    Exists(PathBuf),
    #[error("write {}: it exists and qst gen did not write it (pass --force to replace it)", .0.display())]
    Foreign(PathBuf),
    #[error("read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("remove the earlier truth file {}: {source}", path.display())]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("create {}: {source}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Npy(#[from] qst_npy::NpyError),
    #[error("simulate counts: every probability is zero")]
    NoProbability,
    #[error("simulate counts of mean {mean}: {source}")]
    Poisson {
        mean: f64,
        #[source]
        source: rand_distr::PoissonError,
    },
    #[error("simulate counts: {shots} shots gave no counts in 100 draws")]
    NoCounts { shots: f64 },
}

fn write_error(path: &Path) -> impl FnOnce(io::Error) -> GenError + use<> {
    let path = path.to_path_buf();
    move |source| GenError::Write { path, source }
}

/// The manifest of a truth directory: the names of the truth files `qst gen`
/// wrote there, one a line (a later `--force` removes these and no others).
pub const GEN_MANIFEST: &str = ".qst-gen-manifest";

/// [`generate_with`], refusing an existing batch file.
///
/// # Errors
///
/// As [`generate_with`] with `force` false.
pub fn generate(out_file: &Path, spec: &GenSpec) -> Result<usize, GenError> {
    generate_with(out_file, spec, false)
}

/// Writes a JSON Lines batch to `out_file` with random states of each
/// dimension (pure, mixed and rank-deficient in turn), Poisson counts with
/// mean `shots·p_k/Σp` on the `nopovm` set, every fourth job of the batch
/// `linear` and the rest `mle`, and each truth as `<stem>_truth/<id>.npy` beside the batch
/// (named by a relative `truth` path). Returns the number of jobs.
///
/// An existing `out_file`, or a truth file that an earlier `qst gen` did not
/// write (it is not in the directory's `.qst-gen-manifest`), is refused unless
/// `force`. The truth files of the earlier `qst gen` (those its manifest
/// lists) are removed first, so none is left stale; other files are never
/// removed.
///
/// # Errors
///
/// [`GenError`] when the spec is invalid, a file is in the way, or a file cannot be written.
pub fn generate_with(out_file: &Path, spec: &GenSpec, force: bool) -> Result<usize, GenError> {
    check_spec(spec)?;
    let dir = match out_file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let stem = out_file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .ok_or_else(|| GenError::NoFileName(out_file.to_path_buf()))?;
    let truth = TruthDir {
        name: format!("{stem}_truth"),
        path: dir.join(format!("{stem}_truth")),
    };
    if !force && out_file.exists() {
        return Err(GenError::Exists(out_file.to_path_buf()));
    }
    let names: Vec<String> = spec
        .dims
        .iter()
        .flat_map(|&n| (0..spec.per_dim).map(move |i| format!("{}.npy", job_id(n, i))))
        .collect();
    truth.replace_earlier(&names, force)?;

    // A uniquely named temporary (O_EXCL): nothing planted at a fixed name is followed.
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{stem}.gen."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(write_error(out_file))?;
    let mut w = BufWriter::new(tmp.as_file());
    let jobs = write_jobs(&mut w, spec, &truth, out_file)?;
    let f = w
        .into_inner()
        .map_err(|e| write_error(out_file)(e.into_error()))?;
    f.sync_all().map_err(write_error(out_file))?;
    tmp.persist(out_file)
        .map_err(|e| write_error(out_file)(e.error))?;
    Ok(jobs)
}

fn check_spec(spec: &GenSpec) -> Result<(), GenError> {
    if spec.dims.is_empty() {
        return Err(GenError::NoDims);
    }
    if let Some(&bad) = spec.dims.iter().find(|d| !(2..=MAX_DIM).contains(*d)) {
        return Err(GenError::Dim(bad));
    }
    if !(spec.shots.is_finite() && spec.shots >= 1.0 && spec.shots <= 1e15) {
        return Err(GenError::Shots(spec.shots));
    }
    Ok(())
}

/// The truth directory beside a generated batch.
struct TruthDir {
    /// `<stem>_truth`, as the batch's `truth` paths name it.
    name: String,
    path: PathBuf,
}

impl TruthDir {
    /// Refuses (unless `force`) to overwrite a truth file that an earlier
    /// `qst gen` did not write, removes the ones it did, and lists `names` in
    /// the manifest (first: a gen cut short still lists what it wrote).
    fn replace_earlier(&self, names: &[String], force: bool) -> Result<(), GenError> {
        let manifest = self.path.join(GEN_MANIFEST);
        let earlier: Vec<String> = match fs::read_to_string(&manifest) {
            Ok(text) => text
                .lines()
                .map(str::trim)
                // Only plain names inside the truth directory.
                .filter(|l| !l.is_empty() && !l.contains('/') && !l.starts_with('.'))
                .map(str::to_string)
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(GenError::Read {
                    path: manifest,
                    source,
                });
            }
        };
        if !force
            && let Some(foreign) = names
                .iter()
                .find(|n| self.path.join(n).exists() && !earlier.contains(n))
        {
            return Err(GenError::Foreign(self.path.join(foreign)));
        }
        for old in &earlier {
            match fs::remove_file(self.path.join(old)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(GenError::Remove {
                        path: self.path.join(old),
                        source,
                    });
                }
            }
        }
        fs::create_dir_all(&self.path).map_err(|source| GenError::Create {
            path: self.path.clone(),
            source,
        })?;
        let mut list = names.join("\n");
        list.push('\n');
        fs::write(&manifest, list).map_err(write_error(&manifest))
    }
}

/// Writes the header and one line per job to `w` (the batch `out_file`),
/// each job's truth into `truth`; returns the number of jobs.
fn write_jobs(
    w: &mut impl Write,
    spec: &GenSpec,
    truth: &TruthDir,
    out_file: &Path,
) -> Result<usize, GenError> {
    writeln!(
        w,
        "# qst gen: dims {:?}, {} per dimension, {} shots, seed {}",
        spec.dims, spec.per_dim, spec.shots, spec.seed
    )
    .map_err(write_error(out_file))?;
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let mut jobs = 0;
    for &n in &spec.dims {
        for i in 0..spec.per_dim {
            let id = job_id(n, i);
            let rho = random_state(n, StateKind::of(i), &mut rng);
            qst_npy::write_c16(&truth.path.join(format!("{id}.npy")), &[n, n], &rho)?;
            let p = nopovm_probabilities(n, &rho);
            let counts = simulate_counts(&p, spec.shots, &mut rng)?;
            let method = if jobs % 4 == 3 { "linear" } else { "mle" };
            let line = serde_json::json!({
                "id": id,
                "dim": n,
                "method": method,
                "counts": counts,
                "truth": format!("{}/{id}.npy", truth.name),
            });
            writeln!(w, "{line}").map_err(write_error(out_file))?;
            jobs += 1;
        }
    }
    Ok(jobs)
}
