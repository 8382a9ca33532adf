"""The system OpenBLAS's cblas_sgemm (Debian's libopenblas0-pthread, through
ctypes, 2 threads) at the shapes of benches/gemm.rs, median of 5 timed
blocks, in GFLOP/s; checked against NumPy's product.
    python3 benches/peers/gemm_system_openblas.py
"""
import ctypes, numpy as np
lib = ctypes.CDLL("/usr/lib/x86_64-linux-gnu/libopenblas.so.0")
lib.openblas_set_num_threads(2)
sg = lib.cblas_sgemm
P = ctypes.POINTER(ctypes.c_float)
sg.argtypes = [ctypes.c_int]*6 + [ctypes.c_float, P, ctypes.c_int, P, ctypes.c_int, ctypes.c_float, P, ctypes.c_int]
from gemm_peers import SHAPES, timeit
rng = np.random.default_rng(0)
for label, m, n, k in SHAPES:
    a = rng.random((m, k), dtype=np.float32); b = rng.random((n, k), dtype=np.float32); c = np.zeros((m, n), np.float32)
    pa, pb, pc = (x.ctypes.data_as(P) for x in (a, b, c))
    f = lambda: sg(101, 111, 112, m, n, k, 1.0, pa, k, pb, k, 0.0, pc, n)  # row-major, NoTrans, Trans
    gflops = timeit(f, 2 * m * n * k)
    assert np.allclose(c, a @ b.T, rtol=1e-3, atol=1e-2)
    print(f"{label}: system OpenBLAS {gflops:.1f} GFLOP/s")
