//! What [`super::mle_with_scratch`] keeps between calls: the fixed data of
//! one projector set (G, W = G^{-1/2}, G^{1/2}), the buffers of one
//! evaluation and of one iterate, and the small matrix helpers they share.

use faer::dyn_stack::MemBuffer;
use faer::linalg::cholesky::llt::factor::cholesky_in_place_scratch;
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par, Spec};

use crate::apg::Apg;
use crate::eigh::Eigh;
use crate::lbfgs::History;
use crate::projectors::ProjWork;
use crate::{C64, MathError, Projectors, gram};

pub(super) const ONE: C64 = C64::new(1.0, 0.0);
pub(super) const ZERO: C64 = C64::new(0.0, 0.0);

/// Correction pairs kept by L-BFGS.
const MEMORY: usize = 6;

/// Which projector set a scratch was made for: its form, n, K, the address
/// and length of its borrowed data, and a fold of up to 16 sampled entries
/// (so that another set that happens to be mapped at the same address is
/// told apart too).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct SetId {
    form: u8,
    n: usize,
    k: usize,
    addr: usize,
    len: usize,
    sample: u64,
}

impl SetId {
    fn of(proj: &Projectors) -> SetId {
        let (form, data): (u8, &[C64]) = match *proj {
            Projectors::Nopovm { .. } => (0, &[]),
            Projectors::Kets { kets, .. } => (1, kets),
            Projectors::Dense { data, .. } => (2, data),
        };
        let mut sample = 0u64;
        let step = (data.len() / 16).max(1);
        for z in data.iter().step_by(step).take(16) {
            sample = (sample.rotate_left(5) ^ z.re.to_bits()).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            sample ^= z.im.to_bits();
        }
        SetId {
            form,
            n: proj.dim(),
            k: proj.count(),
            addr: data.as_ptr() as usize,
            len: data.len(),
            sample,
        }
    }
}

/// What stays fixed for one projector set.
pub(super) struct SetData {
    /// The set this was made for.
    pub(super) id: SetId,
    pub(super) n: usize,
    /// G = Σ Π_k.
    pub(super) g: Mat<C64>,
    /// W = G^{-1/2}.
    pub(super) w: Mat<C64>,
    /// G^{1/2} (a start B becomes the whitened A = G^{1/2}B).
    pub(super) winv: Mat<C64>,
    /// Whether the variable is A = G^{1/2}B (else B itself).
    pub(super) whiten: bool,
    /// ‖(M − I)σ^{1/2}‖_F ≥ screen·√T·‖∇F‖/2 (see the module doc).
    pub(super) screen: f64,
}

/// Buffers of one evaluation of F and ∇F.
pub(super) struct Eval {
    /// ρ̃ = BB†; after the probabilities, scratch of the gradient.
    pub(super) rt: Mat<C64>,
    /// B = W·A (whitened sets).
    pub(super) b: Mat<C64>,
    /// The weights c_k/(N q_k).
    pub(super) wt: Vec<f64>,
    pub(super) work: ProjWork,
}

/// One point of the iteration: the variable, its F, T, q, ∇F and G − R.
/// The variable and the gradient are n×n column-major vectors (the L-BFGS
/// arithmetic runs over them flat), viewed as matrices where multiplied.
pub(super) struct Point {
    pub(super) a: Vec<C64>,
    pub(super) f: f64,
    pub(super) t: f64,
    pub(super) q: Vec<f64>,
    pub(super) grad: Vec<C64>,
    /// ‖∇F‖².
    pub(super) gg: f64,
    /// G − R.
    pub(super) gmr: Mat<C64>,
}

impl Point {
    pub(super) fn new(n: usize, k: usize) -> Self {
        Point {
            a: vec![ZERO; n * n],
            f: 0.0,
            t: 0.0,
            q: vec![0.0; k],
            grad: vec![ZERO; n * n],
            gg: 0.0,
            gmr: Mat::zeros(n, n),
        }
    }
}

/// Every buffer the MLE kernel needs for one projector set, so that
/// [`mle_with_scratch`] allocates nothing. Holds G and W = G^{-1/2} of the
/// set it was made for: reuse it only with that same set (any number of jobs).
pub struct MleScratch {
    pub(super) set: SetData,
    pub(super) eval: Eval,
    pub(super) x: Point,
    pub(super) xn: Point,
    /// Search direction.
    pub(super) d: Vec<C64>,
    pub(super) hist: History,
    pub(super) chol: Mat<C64>,
    pub(super) chol_buf: MemBuffer,
    /// Scratch of the exact certificate.
    pub(super) m: Mat<C64>,
    pub(super) eig: Eigh,
    /// Eigenvalues of the final ρ (see [`MleScratch::refine_low_rank`]).
    pub(super) lam: Vec<f64>,
    /// The converged ρ while a low-rank refinement runs.
    pub(super) saved: Mat<C64>,
    /// The projected-gradient finish (see [`crate::apg`]).
    pub(super) apg: Apg,
    pub(super) rho: Mat<C64>,
}

impl MleScratch {
    /// Allocates the buffers for `proj` and computes its G and W = G^{-1/2};
    /// fails when G is not positive definite (the set is not informationally
    /// complete).
    ///
    /// # Errors
    /// [`MathError::InvalidProjectors`] for an empty set or one whose G is not
    /// positive definite, [`MathError::NoConvergence`] if G's eigen-decomposition
    /// does not converge.
    pub fn new(proj: &Projectors) -> Result<Self, MathError> {
        let (n, k) = (proj.dim(), proj.count());
        if n == 0 || k == 0 {
            return Err(MathError::InvalidProjectors(format!(
                "the projector set has dimension {n} and {k} projectors, but needs at least one of each"
            )));
        }
        let g = gram(proj);
        let mut eig = Eigh::new(n);
        eig.compute(g.as_ref(), true)?;
        let (gmin, gmax) = (eig.min(), eig.max());
        if gmin.is_nan() || gmin <= gmax * 1e-14 {
            return Err(MathError::InvalidProjectors(format!(
                "the projector set is not informationally complete: Σ Π_k has eigenvalue {gmin:.3e} (largest {gmax:.3e})"
            )));
        }
        // W = (U g^{-1/4})(U g^{-1/4})†.
        let mut b = eig.u.clone();
        for j in 0..n {
            let s = eig.value(j).powf(-0.25);
            for i in 0..n {
                b[(i, j)] *= s;
            }
        }
        let mut w = &b * b.adjoint();
        hermitize_in_place(w.as_mut());
        // G^{1/2} = (U g^{1/4})(U g^{1/4})†.
        for j in 0..n {
            let s = eig.value(j).sqrt();
            for i in 0..n {
                b[(i, j)] *= s;
            }
        }
        let mut winv = &b * b.adjoint();
        hermitize_in_place(winv.as_mut());
        let work = ProjWork::new(proj);
        // `nopovm` (G well-conditioned) and the fast `mub` form (G = (n+1)·I,
        // a tight frame) iterate on B itself: whitening would only scale it.
        let whiten = !matches!(proj, Projectors::Nopovm { .. }) && !work.is_mub();
        let sq = || Mat::<C64>::zeros(n, n);
        Ok(MleScratch {
            set: SetData {
                id: SetId::of(proj),
                n,
                g,
                w,
                winv,
                whiten,
                screen: if whiten { 1.0 } else { 1.0 / gmax.sqrt() },
            },
            eval: Eval {
                rt: sq(),
                b: sq(),
                wt: vec![0.0; k],
                work,
            },
            x: Point::new(n, k),
            xn: Point::new(n, k),
            d: vec![ZERO; n * n],
            hist: History::new(n * n, MEMORY),
            chol: sq(),
            chol_buf: MemBuffer::new(cholesky_in_place_scratch::<C64>(
                n,
                Par::Seq,
                Spec::default(),
            )),
            m: sq(),
            eig,
            lam: vec![0.0; n],
            saved: sq(),
            apg: Apg::new(n, k),
            rho: sq(),
        })
    }

    /// The ρ of the last [`mle_with_scratch`] call.
    #[must_use]
    pub fn rho(&self) -> MatRef<'_, C64> {
        self.rho.as_ref()
    }

    /// Whether this scratch was made for `proj` (the same form, n, K and
    /// borrowed data, sampled entries equal).
    #[must_use]
    pub fn is_for(&self, proj: &Projectors) -> bool {
        self.set.id == SetId::of(proj)
    }
}

/// x ← x / Tr x, Hermitian.
pub(super) fn normalize(mut x: MatMut<C64>) {
    let tr: f64 = (0..x.nrows()).map(|i| x[(i, i)].re).sum();
    for j in 0..x.ncols() {
        for i in 0..x.nrows() {
            x[(i, j)] /= tr;
        }
    }
    hermitize_in_place(x);
}

fn hermitize_in_place(mut x: MatMut<C64>) {
    let n = x.nrows();
    for j in 0..n {
        x[(j, j)].im = 0.0;
        for i in j + 1..n {
            let v = (x[(i, j)] + x[(j, i)].conj()) * 0.5;
            x[(i, j)] = v;
            x[(j, i)] = v.conj();
        }
    }
}

impl MleScratch {
    /// ρ = BB†/Tr(BB†) of the current iterate, Hermitian.
    pub(super) fn rho_from_x(&mut self) {
        let n = self.set.n;
        let a = MatRef::from_column_major_slice(&self.x.a, n, n);
        let b = if self.set.whiten {
            matmul(
                self.eval.b.as_mut(),
                Accum::Replace,
                self.set.w.as_ref(),
                a,
                ONE,
                Par::Seq,
            );
            self.eval.b.as_ref()
        } else {
            a
        };
        matmul(
            self.rho.as_mut(),
            Accum::Replace,
            b,
            b.adjoint(),
            ONE,
            Par::Seq,
        );
        normalize(self.rho.as_mut());
    }
}
