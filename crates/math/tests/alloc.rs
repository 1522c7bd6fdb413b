//! The MLE kernel allocates nothing per iteration: a counting global
//! allocator sees 0 allocations over 100 fixed iterations of
//! `mle_with_scratch` for the `nopovm`, kets and dense forms (on its first
//! call with a fresh scratch: no warm-up needed).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use qst_math::{MleOptions, MleScratch, Projectors, mle_with_scratch, probabilities};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ON.with(Cell::get) {
            ALLOCS.fetch_add(1, Ordering::SeqCst);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if ON.with(Cell::get) {
            ALLOCS.fetch_add(1, Ordering::SeqCst);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn count_allocs(f: impl FnOnce()) -> usize {
    let before = ALLOCS.load(Ordering::SeqCst);
    ON.with(|on| on.set(true));
    f();
    ON.with(|on| on.set(false));
    ALLOCS.load(Ordering::SeqCst) - before
}

#[test]
fn mle_kernel_allocates_nothing() {
    // The allocator itself is live: a Vec counts.
    assert_eq!(
        count_allocs(|| drop(std::hint::black_box(vec![1u8; 10]))),
        1
    );

    let n = 6;
    let mut r = rng(40);
    let kets = flat(&spec_kets(n));
    let custom = flat(&random_kets(n, &mut r));
    let dense = random_dense(n, &mut r);
    let big = 24;
    for (name, proj) in [
        ("nopovm", Projectors::Nopovm { n }),
        ("nopovm n=24", Projectors::Nopovm { n: big }),
        ("kets", Projectors::Kets { n, kets: &kets }),
        ("custom kets", Projectors::Kets { n, kets: &custom }),
        ("dense", Projectors::Dense { n, data: &dense }),
    ] {
        let truth = random_state(proj.dim(), 2, &mut r);
        let counts = poisson_counts(&probabilities(&proj, truth.as_ref()), 1e3, &mut r);
        let mut scratch = MleScratch::new(&proj).unwrap();
        let opts = MleOptions {
            max_iters: 100,
            fixed_iterations: true,
            ..Default::default()
        };
        let mut stats = None;
        let allocs = count_allocs(|| {
            stats = Some(mle_with_scratch(&proj, &counts, &opts, &mut scratch));
        });
        let stats = stats.unwrap().unwrap();
        assert_eq!(stats.iterations, 100, "{name}");
        assert!(stats.log_likelihood.is_finite(), "{name}");
        assert_density(scratch.rho(), 1e-10);
        assert_eq!(allocs, 0, "{name}: {allocs} allocations in 100 iterations");
    }
}
