//! Atomic writing: exact chunked streaming, replacement by rename (a reader
//! keeps the file it mapped), and failures that name the file and leave nothing.

// The test arrays' indices are small (< 2^53), so they are exact as f64.
#![allow(clippy::cast_precision_loss)]

use qst_npy::{C64, MappedC16, NpyError, write_c16, write_c16_chunks, write_f8};

fn value(i: usize) -> C64 {
    C64::new(i as f64, -(i as f64) / 4.0)
}

#[test]
fn chunks_of_any_length_stream_the_array_in_c_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.npy");
    let mut calls = Vec::new();
    write_c16_chunks(&path, &[5, 3], 7, |i, out| {
        calls.push((i, out.len()));
        for (j, z) in out.iter_mut().enumerate() {
            *z = value(i * 7 + j);
        }
    })
    .unwrap();
    assert_eq!(calls, [(0, 7), (1, 7), (2, 1)]);
    let m = MappedC16::open(&path, Some(&[5, 3])).unwrap();
    assert_eq!(
        m.as_slice(),
        (0..15).map(value).collect::<Vec<_>>().as_slice()
    );
    assert_eq!(m.file_len(), 128 + 15 * 16);
}

#[test]
fn a_rewrite_replaces_the_file_while_an_old_map_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.npy");
    write_c16(&path, &[2, 2], &[C64::new(1.0, 0.0); 4]).unwrap();
    let old = MappedC16::open(&path, None).unwrap();
    write_c16(&path, &[3], &[C64::new(2.0, 0.0); 3]).unwrap();
    assert_eq!(old.as_slice(), [C64::new(1.0, 0.0); 4]);
    let new = MappedC16::open(&path, None).unwrap();
    assert_eq!(
        (new.shape(), new.as_slice()),
        (&[3][..], &[C64::new(2.0, 0.0); 3][..])
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["a.npy"]);
}

#[test]
fn failures_name_the_file_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short.npy");
    match write_c16(&path, &[2, 3], &[C64::new(0.0, 0.0); 5]) {
        Err(e @ NpyError::Write { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("short.npy") && msg.contains("needs 6 values but 5 were given"),
                "{msg}"
            );
        }
        other => panic!("expected a write error, got {other:?}"),
    }
    let missing = dir.path().join("no/such/dir/x.npy");
    match write_f8(&missing, &[1.0]) {
        Err(e @ NpyError::Write { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("x.npy") && msg.contains("cannot create a temporary file"),
                "{msg}"
            );
        }
        other => panic!("expected a write error, got {other:?}"),
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
