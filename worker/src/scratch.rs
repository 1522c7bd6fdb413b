//! The worker's MLE scratch spaces, one per projector set, reused across
//! jobs: an [`MleScratch`] holds the buffers of the kernel and G, G^{-1/2}
//! of its set (an eigen-decomposition and, for a dense set, a pass over the
//! whole file), so a worker that gets many jobs of one set builds it once.
//!
//! Keyed by the loaded set ([`WeakProjectorHandle`]: it does not keep the
//! set loaded, so the projector cache may still evict it) and checked again
//! with [`MleScratch::is_for`]; a scratch of another set is never used (and
//! `mle_with_scratch` would rebuild it). Only `mle` keeps a scratch: `linear`
//! and `wls` have no reusable per-set state.

use qst_math::{C64, Mat, MathError, MleOptions, MleScratch, MleStats, mle_with_scratch};
use qst_store::{ProjectorHandle, WeakProjectorHandle};

/// How many sets' scratches a worker keeps (the dispatcher gives a worker
/// the jobs of one set in a row, so the last two cover the switches).
const KEEP: usize = 2;

/// The scratches, most recently used first.
#[derive(Default)]
pub(crate) struct Scratches {
    slots: Vec<(WeakProjectorHandle, MleScratch)>,
}

impl Scratches {
    /// `mle` of `counts` against the set of `handle`, on that set's scratch
    /// (made on first use); returns ρ and the statistics.
    pub(crate) fn mle(
        &mut self,
        handle: &ProjectorHandle,
        counts: &[f64],
        opts: &MleOptions,
    ) -> Result<(Mat<C64>, MleStats), MathError> {
        let proj = handle.projectors();
        qst_math::check_counts(proj.count(), counts)?;
        let found = self
            .slots
            .iter()
            .position(|(w, s)| w.is(handle) && s.is_for(&proj));
        let mut slot = match found {
            Some(i) => self.slots.remove(i),
            None => (handle.downgrade(), MleScratch::new(&proj)?),
        };
        let stats = mle_with_scratch(&proj, counts, opts, &mut slot.1);
        let rho = slot.1.rho().to_owned();
        self.slots.insert(0, slot);
        self.slots.truncate(KEEP);
        stats.map(|s| (rho, s))
    }
}
