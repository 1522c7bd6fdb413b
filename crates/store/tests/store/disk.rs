//! The cache directory: building, checking, rebuilding, verifying, budget,
//! listing and clearing, custom-file validation.

use qst_math::Design;
use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::time::{Duration, SystemTime};

use qst_npy::{C64, MappedC16, write_c16};
use qst_store::{BuildAction, Prepared, Store, StoreError};

use crate::{max_diff, names, reference_dense, store};

#[test]
fn builds_once_then_finds_the_file_valid() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), 1 << 30);
    let p = s.prepare(Design::Nopovm, 4).unwrap();
    assert_eq!(p.prepared, Prepared::File(s.path(Design::Nopovm, 4)));
    assert_eq!(p.action, BuildAction::Built);
    let p = s.prepare(Design::Nopovm, 4).unwrap();
    assert_eq!(p.action, BuildAction::AlreadyValid);
    assert_eq!(s.builds(), 1);
    let map = MappedC16::open(&s.path(Design::Nopovm, 4), Some(&[16, 4, 4])).unwrap();
    assert!(max_diff(map.as_slice(), &reference_dense(4)) < 1e-15);
    assert_eq!(
        fs::metadata(s.path(Design::Nopovm, 4)).unwrap().len(),
        Store::file_len(Design::Nopovm, 4).unwrap()
    );
    // Temporary files never show; the lock file sits beside.
    assert_eq!(names(dir.path()), ["nopovm_n4.npy", "nopovm_n4.npy.lock"]);
}

#[test]
fn dimension_below_two_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = store(dir.path(), 1 << 30)
        .ensure(Design::Nopovm, 1)
        .unwrap_err();
    assert!(err.to_string().contains("at least 2"), "{err}");
}

/// Overwrites `bytes` at `offset` in `path`, in place.
fn patch(path: &std::path::Path, offset: u64, bytes: &[u8]) {
    let mut f = OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(bytes).unwrap();
}

fn header_text(path: &std::path::Path) -> String {
    let b = fs::read(path).unwrap();
    String::from_utf8_lossy(&b[10..128]).into_owned()
}

#[test]
fn truncated_and_wrong_header_files_are_detected_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), 1 << 30);
    s.ensure(Design::Nopovm, 4).unwrap();
    let path = s.path(Design::Nopovm, 4);
    let good = fs::read(&path).unwrap();

    // Truncated.
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(good.len() as u64 - 100).unwrap();
    drop(f);
    let p = s.prepare(Design::Nopovm, 4).unwrap();
    match &p.action {
        BuildAction::Rebuilt { reason } => assert!(reason.contains("truncated"), "{reason}"),
        other => panic!("expected a rebuild, got {other:?}"),
    }
    assert_eq!(fs::read(&path).unwrap(), good);

    // Wrong shape in the header (same length, so only the header is wrong).
    let text = header_text(&path);
    let at = text.find("(16, 4, 4)").unwrap() as u64 + 10;
    patch(&path, at, b"(16, 2, 8)");
    let p = s.prepare(Design::Nopovm, 4).unwrap();
    match &p.action {
        BuildAction::Rebuilt { reason } => {
            assert!(reason.contains("shape is (16, 2, 8)"), "{reason}");
        }
        other => panic!("expected a rebuild, got {other:?}"),
    }
    assert_eq!(fs::read(&path).unwrap(), good);

    // Wrong dtype.
    let at = header_text(&path).find("<c16").unwrap() as u64 + 10;
    patch(&path, at, b">c16");
    let p = s.prepare(Design::Nopovm, 4).unwrap();
    assert!(
        matches!(&p.action, BuildAction::Rebuilt { reason } if reason.contains("big-endian")),
        "{p:?}"
    );
    assert_eq!(fs::read(&path).unwrap(), good);

    // Garbage instead of a header.
    patch(&path, 0, b"not an npy");
    let p = s.prepare(Design::Nopovm, 4).unwrap();
    assert!(
        matches!(&p.action, BuildAction::Rebuilt { reason } if reason.contains("magic")),
        "{p:?}"
    );

    // Wrong data in a slice the open-time spot check always samples (projector 0).
    patch(&path, 128, &2.0f64.to_le_bytes());
    let p = s.prepare(Design::Nopovm, 4).unwrap();
    assert!(
        matches!(&p.action, BuildAction::Rebuilt { reason } if reason.contains("projector 0 differs")),
        "{p:?}"
    );
    assert_eq!(fs::read(&path).unwrap(), good);
    assert_eq!(s.builds(), 6);
    assert_eq!(names(dir.path()), ["nopovm_n4.npy", "nopovm_n4.npy.lock"]);
}

#[test]
fn verify_finds_a_flipped_data_byte() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), 1 << 30);
    for n in [3, 4, 5] {
        s.ensure(Design::Nopovm, n).unwrap();
    }
    let reports = s.verify().unwrap();
    assert_eq!(reports.len(), 3);
    assert!(reports.iter().all(|r| r.problem.is_none()), "{reports:?}");

    // Flip the lowest mantissa bit of Π_7[1, 1] of n = 4 (a zero becomes the
    // smallest subnormal): invisible to any tolerance, not to verify.
    let path = s.path(Design::Nopovm, 4);
    let (k, a, b) = (7u64, 1u64, 1u64);
    let offset = 128 + (k * 16 + a * 4 + b) * 16;
    let mut byte = [0u8];
    {
        use std::io::Read;
        let mut f = fs::File::open(&path).unwrap();
        f.seek(SeekFrom::Start(offset)).unwrap();
        f.read_exact(&mut byte).unwrap();
    }
    patch(&path, offset, &[byte[0] ^ 1]);
    let reports = s.verify().unwrap();
    let bad: Vec<_> = reports.iter().filter(|r| r.problem.is_some()).collect();
    assert_eq!(bad.len(), 1, "{reports:?}");
    assert_eq!(bad[0].path, path);
    let problem = bad[0].problem.as_deref().unwrap();
    assert!(
        problem.contains("projector 7") && problem.contains(&format!("data byte {offset}")),
        "{problem}"
    );

    // A file that is not one qst builds is reported too.
    fs::write(dir.path().join("other.npy"), b"x").unwrap();
    let reports = s.verify().unwrap();
    assert_eq!(reports.iter().filter(|r| r.problem.is_some()).count(), 2);
}

#[test]
fn over_budget_sets_are_not_written_and_run_from_kets() {
    let dir = tempfile::tempdir().unwrap();
    let len8 = Store::file_len(Design::Nopovm, 8).unwrap();
    assert_eq!(len8, 128 + 16 * 8u64.pow(4));
    let s = store(dir.path(), len8 - 1);
    let p = s.prepare(Design::Nopovm, 8).unwrap();
    assert_eq!(
        (p.prepared, p.action),
        (Prepared::KetsOnly, BuildAction::NotWritten)
    );
    assert!(!s.path(Design::Nopovm, 8).exists());
    assert_eq!(
        s.ensure(Design::Nopovm, 4).unwrap(),
        Prepared::File(s.path(Design::Nopovm, 4))
    );
    let s = store(dir.path(), len8);
    assert_eq!(
        s.ensure(Design::Nopovm, 8).unwrap(),
        Prepared::File(s.path(Design::Nopovm, 8))
    );
}

#[test]
fn list_and_clear_cover_the_cache_files_and_stale_temporaries_only() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir.path().join("cache"), 1 << 30);
    assert!(s.list().unwrap().is_empty());
    assert_eq!(s.clear().unwrap(), 0);
    for n in [5, 2, 12] {
        s.ensure(Design::Nopovm, n).unwrap();
    }
    // A temporary file left by a build that died.
    fs::write(
        dir.path().join("cache/.nopovm_n7.npy.abc123.tmp"),
        b"partial",
    )
    .unwrap();
    let listed = s.list().unwrap();
    // Listed, marked as a stale temporary (nobody holds its lock).
    let stale: Vec<_> = listed.iter().filter(|f| f.stale_temporary).collect();
    assert_eq!(stale.len(), 1);
    assert!(stale[0].path.ends_with(".nopovm_n7.npy.abc123.tmp"));
    let got: Vec<(String, u64)> = listed
        .iter()
        .filter(|f| !f.stale_temporary)
        .map(|f| {
            (
                f.path.file_name().unwrap().to_string_lossy().into_owned(),
                f.bytes,
            )
        })
        .collect();
    let want: Vec<(String, u64)> = [2, 5, 12]
        .iter()
        .map(|&n| {
            (
                format!("nopovm_n{n}.npy"),
                Store::file_len(Design::Nopovm, n).unwrap(),
            )
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(s.clear().unwrap(), 3);
    assert!(names(&dir.path().join("cache")).is_empty());
}

/// Writes the reference nopovm set of dimension n as a custom file.
fn write_custom(path: &std::path::Path, n: usize) {
    write_c16(path, &[n * n, n, n], &reference_dense(n)).unwrap();
}

#[test]
fn custom_files_are_validated_once_per_path_size_and_mtime() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), 1 << 30);
    let good = dir.path().join("good.npy");
    write_custom(&good, 3);
    s.validate_custom(&good, 3).unwrap();
    s.validate_custom(&good, 3).unwrap();
    s.clone().validate_custom(&good, 3).unwrap();
    assert_eq!(s.validations(), 1);
    // A changed modification time means a new file: validated again.
    let f = OpenOptions::new().write(true).open(&good).unwrap();
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000))
        .unwrap();
    drop(f);
    s.validate_custom(&good, 3).unwrap();
    assert_eq!(s.validations(), 2);

    // Not Hermitian: Π_4[0, 1] made different from conj(Π_4[1, 0]).
    let mut data = reference_dense(3);
    data[4 * 9 + 1] = C64::new(0.5, 0.25);
    let bad = dir.path().join("bad.npy");
    write_c16(&bad, &[9, 3, 3], &data).unwrap();
    let e1 = s.validate_custom(&bad, 3).unwrap_err();
    let e2 = s.validate_custom(&bad, 3).unwrap_err();
    assert_eq!(s.validations(), 3, "an invalid file is remembered too");
    assert!(matches!(e1, StoreError::Invalid { .. }), "{e1:?}");
    assert_eq!(e1.to_string(), e2.to_string());
    assert!(e1.to_string().contains("bad.npy"), "{e1}");

    // Too few projectors to be informationally complete by shape.
    let small = dir.path().join("small.npy");
    write_c16(&small, &[8, 3, 3], &reference_dense(3)[..72]).unwrap();
    let e = s.validate_custom(&small, 3).unwrap_err().to_string();
    assert!(
        e.contains("shape is (8, 3, 3)") && e.contains("K >= 9"),
        "{e}"
    );
    // The wrong dimension.
    let e = s.validate_custom(&good, 2).unwrap_err().to_string();
    assert!(e.contains("dimension 2"), "{e}");
    // Over the budget.
    let tight = store(dir.path(), 1000);
    match tight.validate_custom(&good, 3) {
        Err(StoreError::OverBudget { bytes, budget, .. }) => {
            assert_eq!((bytes, budget), (128 + 81 * 16, 1000));
        }
        other => panic!("expected over budget, got {other:?}"),
    }
    // Missing.
    let e = s
        .validate_custom(&dir.path().join("none.npy"), 3)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("read projector file") && e.contains("none.npy"),
        "{e}"
    );
}

#[test]
fn absurd_dimensions_are_handled_without_panics() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), 1 << 30);
    // n² overflows: no file, kets only (the math then rejects the job's counts).
    assert_eq!(
        s.ensure(Design::Nopovm, 1 << 33).unwrap(),
        Prepared::KetsOnly
    );
    assert_eq!(Store::file_len(Design::Nopovm, 1 << 33), None);
    // A cache file whose name claims such a dimension is reported bad.
    fs::write(dir.path().join("nopovm_n8589934592.npy"), b"\x93NUMPY").unwrap();
    fs::write(dir.path().join("nopovm_n70000.npy"), b"\x93NUMPY").unwrap();
    let reports = s.verify().unwrap();
    assert_eq!(reports.len(), 2);
    assert!(reports.iter().all(|r| r.problem.is_some()), "{reports:?}");
    assert!(
        reports[1].problem.as_deref().unwrap().contains("too large"),
        "{reports:?}"
    );
}

/// The validation of a custom file is recorded in the cache directory and
/// reused by another process (another `Store`) for the same content; an edit
/// that keeps the size and the modification time is caught by the hash.
#[test]
fn custom_validation_is_recorded_once_per_content() {
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = dir.path().join("cache");
    let good = dir.path().join("good.npy");
    write_custom(&good, 3);
    let first = store(&cache_dir, 1 << 30);
    first.validate_custom(&good, 3).unwrap();
    assert_eq!(first.validations(), 1);
    let sidecars: Vec<String> = names(&cache_dir)
        .into_iter()
        .filter(|n| n.ends_with(".verdict.json"))
        .collect();
    assert_eq!(sidecars.len(), 1, "{sidecars:?}");
    let text = fs::read_to_string(cache_dir.join(&sidecars[0])).unwrap();
    assert!(text.contains("\"rank_one\": true"), "{text}");

    // A second run: no validation.
    let second = store(&cache_dir, 1 << 30);
    second.validate_custom(&good, 3).unwrap();
    assert_eq!(second.validations(), 0);

    // One byte different (Π_4[0, 1] no longer conj(Π_4[1, 0])), same size,
    // same modification time: validated again, and refused.
    let mtime = fs::metadata(&good).unwrap().modified().unwrap();
    let map = MappedC16::open(&good, None).unwrap();
    let at = map.header_bytes().len() as u64 + (4 * 9 + 1) * 16 + 15;
    drop(map);
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&good)
        .unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    let mut byte = [0u8];
    std::io::Read::read_exact(&mut f, &mut byte).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&[byte[0] ^ 0x01]).unwrap();
    f.set_modified(mtime).unwrap();
    drop(f);
    assert_eq!(fs::metadata(&good).unwrap().modified().unwrap(), mtime);
    let third = store(&cache_dir, 1 << 30);
    let e = third.validate_custom(&good, 3).unwrap_err().to_string();
    assert_eq!(third.validations(), 1);
    assert!(e.contains("not Hermitian"), "{e}");
    // The refusal is recorded too.
    let fourth = store(&cache_dir, 1 << 30);
    let e2 = fourth.validate_custom(&good, 3).unwrap_err().to_string();
    assert_eq!((fourth.validations(), e2), (0, e));
    // `qst cache clear` removes the records.
    fourth.clear().unwrap();
    assert!(names(&cache_dir).is_empty(), "{:?}", names(&cache_dir));
}

/// A rank-1 custom set is handed to the math as kets, another as its map.
#[test]
fn rank_one_custom_sets_run_from_kets() {
    let dir = tempfile::tempdir().unwrap();
    let kets_file = dir.path().join("kets.npy");
    write_custom(&kets_file, 3);
    let mut mixed = reference_dense(3);
    // Slice 0 becomes I/2 + Π_0/2: full rank, still a valid projector set.
    for a in 0..3 {
        mixed[a * 3 + a] = C64::new(if a == 0 { 1.0 } else { 0.5 }, 0.0);
    }
    let dense_file = dir.path().join("dense.npy");
    write_c16(&dense_file, &[9, 3, 3], &mixed).unwrap();
    let s = store(&dir.path().join("cache"), 1 << 30);
    s.validate_custom(&dense_file, 3).unwrap();
    let cache = qst_store::ProjectorCache::new(s);
    let h = cache.custom(&kets_file, 3).unwrap();
    match h.projectors() {
        qst_math::Projectors::Kets { n: 3, kets } => {
            assert_eq!(kets.len(), 27);
            let back = qst_math::Projectors::Kets { n: 3, kets };
            let rho = qst_math::Mat::<C64>::from_fn(3, 3, |i, j| {
                C64::new(if i == j { 0.5 } else { 0.1 }, (i as f64 - j as f64) * 0.05)
            });
            let (p, q) = (
                qst_math::probabilities(&back, rho.as_ref()),
                qst_math::probabilities(&h.dense().unwrap(), rho.as_ref()),
            );
            for (a, b) in p.iter().zip(&q) {
                assert!((a - b).abs() < 1e-15, "{a} vs {b}");
            }
        }
        other => panic!("expected kets, got {other:?}"),
    }
    assert!(h.bytes() > h.mapped().unwrap().file_len());
    let d = cache.custom(&dense_file, 3).unwrap();
    assert!(matches!(d.projectors(), qst_math::Projectors::Dense { .. }));
}

/// A sidecar replaced by a FIFO is neither waited on nor trusted: the file
/// is validated again and the record rewritten.
#[test]
fn a_fifo_at_the_validation_record_does_not_block() {
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = dir.path().join("cache");
    let good = dir.path().join("good.npy");
    write_custom(&good, 3);
    store(&cache_dir, 1 << 30)
        .validate_custom(&good, 3)
        .unwrap();
    let sidecar = names(&cache_dir)
        .into_iter()
        .find(|n| n.ends_with(".verdict.json"))
        .unwrap();
    let path = cache_dir.join(&sidecar);
    fs::remove_file(&path).unwrap();
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let s = store(&cache_dir, 1 << 30);
    s.validate_custom(&good, 3).unwrap();
    assert_eq!(s.validations(), 1);
    assert!(fs::symlink_metadata(&path).unwrap().is_file());
}
