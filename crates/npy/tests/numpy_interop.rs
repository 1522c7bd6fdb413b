//! Interop with real numpy: files qst writes load with `numpy.load(path,
//! mmap_mode='r')` and equal numpy's own construction; files numpy writes
//! (c16, f8, i8; formats 1.0, 2.0, 3.0) qst reads; malformed files are
//! rejected with the path and the reason. Uses the interpreter in
//! `QST_PYTHON` (else `python3`) and fails without numpy.

// The test arrays' indices are small (< 2^53), so they are exact as f64 and i64.
#![allow(clippy::cast_precision_loss, clippy::cast_possible_wrap)]

use std::path::Path;
use std::process::Command;

use qst_npy::{C64, MappedC16, NpyError, read_counts, read_matrix, write_c16, write_f8, write_i8};

/// Runs `script` with numpy's interpreter and `dir` as its argument; fails
/// the test (with the script's output) unless it exits 0 and prints `OK`.
fn run_python(script: &str, dir: &Path) {
    let python = std::env::var("QST_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let out = Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("OK"),
        "{python} failed (numpy is required; set QST_PYTHON):\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
}

/// The test arrays, defined by formulas whose values are exact in binary
/// floating point, so both sides construct them bit for bit.
fn c_value(i: usize) -> C64 {
    C64::new(i as f64 * 0.25 - 3.0, ((i * 7) % 13) as f64 - 6.0)
}
fn f_value(i: usize) -> f64 {
    i as f64 * 1.5 + 0.125
}
fn i_value(i: usize) -> i64 {
    i as i64 * 1_000_000_007 - 3
}

const PY_FORMULAS: &str = r"
import sys, os
import numpy as np
d = sys.argv[1]
def c_values(shape):
    i = np.arange(int(np.prod(shape)))
    return ((i * 0.25 - 3.0) + 1j * (((i * 7) % 13) - 6.0)).astype('<c16').reshape(shape)
def f_values(k):
    return (np.arange(k) * 1.5 + 0.125).astype('<f8')
def i_values(k):
    return (np.arange(k, dtype=np.int64) * 1000000007 - 3).astype('<i8')
";

#[test]
fn numpy_mmap_loads_what_qst_writes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cube: Vec<C64> = (0..3 * 4 * 5).map(c_value).collect();
    write_c16(&d.join("cube.npy"), &[3, 4, 5], &cube).unwrap();
    let mat: Vec<C64> = (0..16).map(c_value).collect();
    write_c16(&d.join("mat.npy"), &[4, 4], &mat).unwrap();
    write_f8(&d.join("f.npy"), &(0..37).map(f_value).collect::<Vec<_>>()).unwrap();
    write_i8(&d.join("i.npy"), &(0..41).map(i_value).collect::<Vec<_>>()).unwrap();
    write_f8(&d.join("empty.npy"), &[]).unwrap();
    let script = format!(
        "{PY_FORMULAS}{}",
        r"
def load(name, shape, dtype, expected):
    path = os.path.join(d, name)
    with open(path, 'rb') as fh:
        head = fh.read(8)
    assert head[:6] == b'\x93NUMPY' and head[6:8] == b'\x01\x00', (name, head)
    a = np.load(path, mmap_mode='r')
    assert isinstance(a, np.memmap), (name, type(a))
    assert a.dtype == np.dtype(dtype), (name, a.dtype)
    assert a.shape == shape, (name, a.shape)
    assert a.flags['C_CONTIGUOUS'], name
    assert np.array_equal(np.asarray(a), expected), (name, a, expected)
load('cube.npy', (3, 4, 5), '<c16', c_values((3, 4, 5)))
load('mat.npy', (4, 4), '<c16', c_values((4, 4)))
load('f.npy', (37,), '<f8', f_values(37))
load('i.npy', (41,), '<i8', i_values(41))
b = np.load(os.path.join(d, 'empty.npy'))
assert b.shape == (0,) and b.dtype == np.dtype('<f8')
print('OK')
"
    );
    run_python(&script, d);
    // Nothing but the five files: the temporary files were renamed away.
    let mut names: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["cube.npy", "empty.npy", "f.npy", "i.npy", "mat.npy"]
    );
}

fn format_reason(r: Result<impl std::fmt::Debug, NpyError>, path: &Path) -> String {
    match r {
        Err(e @ NpyError::Format { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&path.display().to_string()),
                "error does not name the file: {msg}"
            );
            msg
        }
        other => panic!("{}: expected a format error, got {other:?}", path.display()),
    }
}

/// The files numpy writes for [`qst_reads_what_numpy_writes_and_rejects_malformed_files`]:
/// valid ones in every format version and malformed ones of every kind.
const PY_NUMPY_WRITES: &str = r"
def p(name):
    return os.path.join(d, name)
np.save(p('mat.npy'), c_values((5, 5)))
np.save(p('cube.npy'), c_values((9, 3, 3)))
np.save(p('f8.npy'), f_values(23))
np.save(p('i8.npy'), i_values(29))
for v in [(2, 0), (3, 0)]:
    with open(p('mat_v%d.npy' % v[0]), 'wb') as fh:
        np.lib.format.write_array(fh, c_values((5, 5)), version=v)
np.save(p('fortran.npy'), np.asfortranarray(c_values((5, 5))))
assert np.load(p('fortran.npy')).flags['F_CONTIGUOUS']
np.save(p('bigendian.npy'), c_values((5, 5)).astype('>c16'))
np.save(p('bigendian_f8.npy'), f_values(23).astype('>f8'))
np.save(p('c8.npy'), c_values((5, 5)).astype('<c8'))
np.save(p('i4.npy'), i_values(29).astype('<i4'))
np.save(p('f4.npy'), f_values(23).astype('<f4'))
np.save(p('shape45.npy'), c_values((4, 5)))
np.save(p('counts2d.npy'), f_values(24).reshape(4, 6))
np.save(p('scalar.npy'), np.float64(3.0))
np.save(p('truncated.npy'), c_values((5, 5)))
size = os.path.getsize(p('truncated.npy'))
with open(p('truncated.npy'), 'r+b') as fh:
    fh.truncate(size - 24)
np.save(p('headeronly.npy'), c_values((5, 5)))
with open(p('headeronly.npy'), 'r+b') as fh:
    fh.truncate(64)
np.save(p('extra.npy'), f_values(23))
with open(p('extra.npy'), 'ab') as fh:
    fh.write(b'\0' * 8)
with open(p('notnpy.npy'), 'wb') as fh:
    fh.write(b'just some text, not an array\n')
print('OK')
";

#[test]
fn qst_reads_what_numpy_writes_and_rejects_malformed_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let script = format!("{PY_FORMULAS}{PY_NUMPY_WRITES}");
    run_python(&script, d);

    let c25: Vec<C64> = (0..25).map(c_value).collect();
    assert_eq!(read_matrix(&d.join("mat.npy"), 5).unwrap(), c25);
    assert_eq!(read_matrix(&d.join("mat_v2.npy"), 5).unwrap(), c25);
    assert_eq!(read_matrix(&d.join("mat_v3.npy"), 5).unwrap(), c25);
    let cube = MappedC16::open(&d.join("cube.npy"), Some(&[9, 3, 3])).unwrap();
    assert_eq!(cube.shape(), [9, 3, 3]);
    assert_eq!(
        cube.as_slice(),
        (0..81).map(c_value).collect::<Vec<_>>().as_slice()
    );
    assert_eq!(cube.view()[[4, 1, 2]], c_value(4 * 9 + 3 + 2));
    assert_eq!(
        read_counts(&d.join("f8.npy")).unwrap(),
        (0..23).map(f_value).collect::<Vec<_>>()
    );
    assert_eq!(
        read_counts(&d.join("i8.npy")).unwrap(),
        (0..29).map(|i| i_value(i) as f64).collect::<Vec<_>>()
    );

    let cases: &[(&str, &str)] = &[
        ("fortran.npy", "Fortran order"),
        ("bigendian.npy", "big-endian"),
        ("c8.npy", "dtype is <c8, expected <c16"),
        ("shape45.npy", "shape is (4, 5), expected (5, 5)"),
        ("truncated.npy", "truncated"),
        ("headeronly.npy", "truncated"),
        ("notnpy.npy", "magic string"),
        ("f8.npy", "dtype is <f8, expected <c16"),
    ];
    for (name, reason) in cases {
        let path = d.join(name);
        let msg = format_reason(read_matrix(&path, 5), &path);
        assert!(
            msg.contains(reason),
            "{name}: {msg:?} does not say {reason:?}"
        );
        let msg = format_reason(MappedC16::open(&path, Some(&[5, 5])), &path);
        assert!(
            msg.contains(reason),
            "{name} (mapped): {msg:?} does not say {reason:?}"
        );
    }
    let cases: &[(&str, &str)] = &[
        ("bigendian_f8.npy", "big-endian"),
        ("i4.npy", "dtype is <i4, expected <f8 or <i8"),
        ("f4.npy", "dtype is <f4"),
        (
            "counts2d.npy",
            "shape is (4, 6), but counts must be a 1-D array",
        ),
        ("scalar.npy", "shape is ()"),
        ("extra.npy", "8 bytes after"),
        ("mat.npy", "dtype is <c16, expected <f8 or <i8"),
    ];
    for (name, reason) in cases {
        let path = d.join(name);
        let msg = format_reason(read_counts(&path), &path);
        assert!(
            msg.contains(reason),
            "{name}: {msg:?} does not say {reason:?}"
        );
    }
    match read_counts(&d.join("missing.npy")) {
        Err(e @ NpyError::Io { .. }) => assert!(e.to_string().contains("missing.npy"), "{e}"),
        other => panic!("expected an I/O error, got {other:?}"),
    }
}
