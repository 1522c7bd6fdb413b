//! An allocation-free Hermitian eigen-decomposition: faer's low-level
//! `self_adjoint_evd` with a workspace allocated once.

use faer::diag::Diag;
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::evd::{self, ComputeEigenvectors};
use faer::{Mat, MatRef, Par, Spec};

use crate::{C64, MathError};

/// Workspace for the eigen-decomposition of n×n Hermitian matrices.
pub(crate) struct Eigh {
    n: usize,
    /// Eigenvectors (columns), valid after `compute(_, true)`.
    pub u: Mat<C64>,
    s: Diag<C64>,
    buf: MemBuffer,
}

impl Eigh {
    pub fn new(n: usize) -> Self {
        let req = evd::self_adjoint_evd_scratch::<C64>(
            n,
            ComputeEigenvectors::Yes,
            Par::Seq,
            Spec::default(),
        );
        Eigh {
            n,
            u: Mat::zeros(n, n),
            s: Diag::zeros(n),
            buf: MemBuffer::new(req),
        }
    }

    /// Decomposes the Hermitian `a` (only its lower triangle is read);
    /// eigenvalues ascend.
    pub fn compute(&mut self, a: MatRef<C64>, vectors: bool) -> Result<(), MathError> {
        let stack = MemStack::new(&mut self.buf);
        let u = if vectors { Some(self.u.as_mut()) } else { None };
        evd::self_adjoint_evd(a, self.s.as_mut(), u, Par::Seq, stack, Spec::default())
            .map_err(|_| MathError::NoConvergence { dim: self.n })
    }

    /// The i-th smallest eigenvalue.
    pub fn value(&self, i: usize) -> f64 {
        self.s[i].re
    }

    pub fn max(&self) -> f64 {
        self.value(self.n - 1)
    }

    pub fn min(&self) -> f64 {
        self.value(0)
    }
}
