//! numpy opens every projector file with `mmap_mode='r'`, and its contents
//! equal numpy's own construction of docs/designs.md.

use qst_math::Design;
use std::process::Command;

use crate::store;

#[test]
fn numpy_maps_every_file_and_it_equals_numpys_own_construction() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), 1 << 30);
    let dims = [2, 3, 4, 5, 8, 11];
    for n in dims {
        s.ensure(Design::Nopovm, n).unwrap();
    }
    let script = r"
import sys, os
import numpy as np
d = sys.argv[1]
def nopovm(n):
    # docs/designs.md: e_k, then for i < j: (e_i + e_j)/sqrt2, (e_i - 1j e_j)/sqrt2.
    kets = []
    for k in range(n):
        e = np.zeros(n, dtype=complex); e[k] = 1; kets.append(e)
    for i in range(n):
        for j in range(i + 1, n):
            a = np.zeros(n, dtype=complex); a[i] = 1; a[j] = 1
            b = np.zeros(n, dtype=complex); b[i] = 1; b[j] = -1j
            kets += [a / np.sqrt(2), b / np.sqrt(2)]
    return np.array([np.outer(v, v.conj()) for v in kets])
seen = []
for name in sorted(os.listdir(d), key=lambda s: (len(s), s)):
    if not name.endswith('.npy'):
        continue
    n = int(name[len('nopovm_n'):-len('.npy')])
    path = os.path.join(d, name)
    with open(path, 'rb') as fh:
        assert fh.read(8) == b'\x93NUMPY\x01\x00', name
    a = np.load(path, mmap_mode='r')
    assert isinstance(a, np.memmap), (name, type(a))
    assert a.dtype == np.dtype('<c16') and a.shape == (n * n, n, n), (name, a.dtype, a.shape)
    assert a.flags['C_CONTIGUOUS'] and not a.flags['WRITEABLE'], name
    want = nopovm(n)
    err = np.max(np.abs(np.asarray(a) - want))
    assert err <= 1e-15, (name, err)
    # M of docs/reference.md is a zero-copy reshape of the mapped array.
    m = a.reshape(n * n, n * n)
    assert np.shares_memory(m, a)
    seen.append(n)
print('dims', seen)
print('OK')
";
    let python = std::env::var("QST_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let out = Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(dir.path())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("OK"),
        "{python} failed (numpy is required; set QST_PYTHON):\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&format!("dims {dims:?}")), "{stdout}");
}
