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

#[cfg(test)]
mod tests {
    use super::*;
    use qst_math::{Design, mle};
    use qst_store::{ProjectorCache, Store, StoreConfig};

    #[test]
    fn one_scratch_per_set_reused_and_bounded() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let cache = ProjectorCache::new(Store::new(StoreConfig {
            dir: dir.path().to_path_buf(),
            max_bytes: 1 << 30,
        }));
        let opts = MleOptions::default();
        let mut s = Scratches::default();
        let handles: Vec<_> = [3, 4, 5]
            .iter()
            .map(|&n| cache.builtin(Design::Nopovm, n).expect("nopovm"))
            .collect();
        for (i, h) in handles.iter().enumerate() {
            let k = h.projectors().count();
            #[allow(clippy::cast_precision_loss)] // counts in 1..=5
            let counts: Vec<f64> = (0..k).map(|j| ((j * 7 + i) % 5 + 1) as f64).collect();
            let want = mle(&h.projectors(), &counts, &opts).expect("mle");
            for _ in 0..2 {
                let (rho, st) = s.mle(h, &counts, &opts).expect("mle on a scratch");
                assert_eq!(st.log_likelihood.to_bits(), want.log_likelihood.to_bits());
                assert_eq!(rho, want.rho);
            }
            assert!(s.slots[0].0.is(h), "the set just used comes first");
            assert_eq!(s.slots.len(), (i + 1).min(KEEP));
        }
        // Counts of the wrong length fail before any scratch is made.
        assert!(s.mle(&handles[0], &[1.0], &opts).is_err());
    }
}
