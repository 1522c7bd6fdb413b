"""Compares qst's rho with numpy's truth, and with the truth's transpose.

usage: compare_rho.py TRUTH.npy RHO.npy; exits 0 when rho == truth (to 1e-4)
and rho differs from truth^T (by more than 1e-2)."""
import sys

import numpy as np

t = np.load(sys.argv[1], mmap_mode="r")
r = np.load(sys.argv[2], mmap_mode="r")
assert r.dtype == np.complex128 and r.flags.c_contiguous and r.shape == t.shape, (r.dtype, r.shape)
d, dT = abs(r - t).max(), abs(r - t.T).max()
print(f"max|rho - truth| = {d:.2e}, max|rho - truth^T| = {dT:.2e}")
sys.exit(0 if d < 1e-4 and dT > 1e-2 else 1)
