//! The in-process cache: single flight, byte budget, held entries, LRU order.

use qst_math::Design;
use std::sync::{Arc, Barrier};

use qst_math::Projectors;
use qst_npy::{C64, write_c16};
use qst_store::{CacheStats, ProjectorCache, Store};

use crate::{max_diff, reference_dense, store};

#[test]
fn eight_threads_asking_for_one_dimension_build_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(ProjectorCache::new(store(dir.path(), 1 << 30)));
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (cache, barrier) = (Arc::clone(&cache), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                cache.builtin(Design::Nopovm, 16).unwrap()
            })
        })
        .collect();
    let got: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(cache.store().builds(), 1);
    assert_eq!(
        cache.stats(),
        CacheStats {
            hits: 7,
            misses: 1,
            evictions: 0
        }
    );
    assert!(got.iter().all(|h| h.same_set(&got[0])));
    let h = &got[0];
    assert!(matches!(h.projectors(), Projectors::Nopovm { n: 16 }));
    match h.dense() {
        Some(Projectors::Dense { n: 16, data }) => {
            assert!(max_diff(data, &reference_dense(16)) < 1e-15);
        }
        _ => panic!("expected the dense map of the file"),
    }
    assert_eq!(h.bytes(), Store::file_len(Design::Nopovm, 16).unwrap());
    assert_eq!(
        h.path(),
        Some(cache.store().path(Design::Nopovm, 16).as_path())
    );
}

#[test]
fn eight_threads_on_the_store_alone_build_once() {
    // No in-process cache: the file lock alone serializes them.
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), 1 << 30);
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (s, barrier) = (s.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                s.ensure(Design::Nopovm, 12).unwrap()
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(s.builds(), 1);
}

/// Writes a custom (4, 2, 2) file (384 bytes) whose values encode `tag`.
fn custom_file(dir: &std::path::Path, tag: usize) -> std::path::PathBuf {
    let path = dir.join(format!("custom{tag}.npy"));
    let data: Vec<C64> = (0..16)
        .map(|i| C64::new(tag as f64, f64::from(i)))
        .collect();
    write_c16(&path, &[4, 2, 2], &data).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 384);
    path
}

fn first_value(h: &qst_store::ProjectorHandle) -> C64 {
    match h.projectors() {
        Projectors::Dense { data, .. } => data[0],
        _ => panic!("a custom set is dense"),
    }
}

#[test]
fn byte_budget_lru_order_and_held_entries() {
    let dir = tempfile::tempdir().unwrap();
    let f: Vec<_> = (1..=4).map(|t| custom_file(dir.path(), t)).collect();
    // Room for two 384-byte entries.
    let cache = ProjectorCache::new(store(&dir.path().join("cache"), 800));
    let stats = |h, m, e| CacheStats {
        hits: h,
        misses: m,
        evictions: e,
    };

    drop(cache.custom(&f[0], 2).unwrap());
    drop(cache.custom(&f[1], 2).unwrap());
    assert_eq!(
        (cache.stats(), cache.resident_bytes()),
        (stats(0, 2, 0), 768)
    );
    drop(cache.custom(&f[0], 2).unwrap()); // f1 is now more recent than f2
    assert_eq!(cache.stats(), stats(1, 2, 0));
    drop(cache.custom(&f[2], 2).unwrap()); // evicts f2, the least recently used
    assert_eq!(
        (cache.stats(), cache.resident_bytes()),
        (stats(1, 3, 1), 768)
    );
    drop(cache.custom(&f[0], 2).unwrap()); // f1 stayed
    assert_eq!(cache.stats(), stats(2, 3, 1));
    drop(cache.custom(&f[1], 2).unwrap()); // f2 was evicted; now f3 goes
    assert_eq!(cache.stats(), stats(2, 4, 2));
    drop(cache.custom(&f[0], 2).unwrap()); // f1 still there
    assert_eq!(cache.stats(), stats(3, 4, 2));

    // Held entries are never evicted, even when that breaks the budget.
    let h1 = cache.custom(&f[0], 2).unwrap();
    let h2 = cache.custom(&f[1], 2).unwrap();
    let h3 = cache.custom(&f[2], 2).unwrap();
    assert_eq!(
        (cache.stats(), cache.resident_bytes()),
        (stats(5, 5, 2), 1152)
    );
    assert_eq!(
        (first_value(&h1), first_value(&h2), first_value(&h3)),
        (C64::new(1.0, 0.0), C64::new(2.0, 0.0), C64::new(3.0, 0.0))
    );
    drop((h1, h2));
    // h3 is still held: loading f4 evicts f1 and f2 (least recent first), not f3.
    let h4 = cache.custom(&f[3], 2).unwrap();
    assert_eq!(
        (cache.stats(), cache.resident_bytes()),
        (stats(5, 6, 4), 768)
    );
    assert_eq!(first_value(&h3), C64::new(3.0, 0.0));
    assert_eq!(first_value(&h4), C64::new(4.0, 0.0));
    drop(cache.custom(&f[2], 2).unwrap());
    assert_eq!(cache.stats(), stats(6, 6, 4));
}

#[test]
fn a_handle_keeps_its_mapping_alive() {
    let dir = tempfile::tempdir().unwrap();
    let path = custom_file(dir.path(), 9);
    let cache = ProjectorCache::new(store(&dir.path().join("cache"), 1 << 20));
    let h = cache.custom(&path, 2).unwrap();
    drop(cache);
    std::fs::remove_file(&path).unwrap();
    match h.projectors() {
        Projectors::Dense { n: 2, data } => {
            let want: Vec<C64> = (0..16).map(|i| C64::new(9.0, f64::from(i))).collect();
            assert_eq!(data, want.as_slice());
        }
        _ => panic!("a custom set is dense"),
    }
}

#[test]
fn over_budget_nopovm_runs_from_kets_and_custom_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let budget = Store::file_len(Design::Nopovm, 8).unwrap() - 1;
    let cache = ProjectorCache::new(store(&dir.path().join("cache"), budget));
    let h = cache.builtin(Design::Nopovm, 8).unwrap();
    assert!(matches!(h.projectors(), Projectors::Nopovm { n: 8 }));
    assert!(h.dense().is_none() && h.path().is_none());
    assert_eq!(h.bytes(), 64 * 2 * 16);
    assert!(!cache.store().path(Design::Nopovm, 8).exists());

    let big = dir.path().join("big.npy");
    write_c16(&big, &[64, 8, 8], &reference_dense(8)).unwrap();
    let e = cache.custom(&big, 8).expect_err("over budget").to_string();
    assert!(
        e.contains("over the cache budget") && e.contains("big.npy"),
        "{e}"
    );
    // A wrong shape is an error naming the file.
    let small = custom_file(dir.path(), 1);
    let e = cache
        .custom(&small, 3)
        .expect_err("wrong shape")
        .to_string();
    assert!(e.contains("custom1.npy") && e.contains("(K, 3, 3)"), "{e}");
    // Failed loads are not cached: asking again tries again.
    assert_eq!(cache.stats().misses, 2);
    assert!(cache.custom(&small, 3).is_err());
    assert_eq!(cache.stats().misses, 3);
}
