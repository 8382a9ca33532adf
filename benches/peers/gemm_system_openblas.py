"""The system OpenBLAS's cblas_sgemm (Debian's libopenblas0-pthread, through
ctypes, 2 threads) at the shapes of benches/gemm.rs, median of 5 timed
blocks, in GFLOP/s; checked against NumPy's product.
    python3 benches/peers/gemm_system_openblas.py
"""
import ctypes, time, numpy as np
lib = ctypes.CDLL("/usr/lib/x86_64-linux-gnu/libopenblas.so.0")
lib.openblas_set_num_threads(2)
sg = lib.cblas_sgemm
P = ctypes.POINTER(ctypes.c_float)
sg.argtypes = [ctypes.c_int]*6 + [ctypes.c_float, P, ctypes.c_int, P, ctypes.c_int, ctypes.c_float, P, ctypes.c_int]
SHAPES = [("square_1024", 1024, 1024, 1024), ("ntk_full_gram_n128", 1280, 1280, 512),
          ("lenet300_fc1_b128", 128, 300, 784), ("resnet20_conv_16x16_b128", 32, 128 * 256, 288),
          ("vgg16_conv_4x4_b128", 512, 128 * 16, 4608), ("vgg16_conv_32x32_b128", 64, 128 * 1024, 576)]
rng = np.random.default_rng(0)
for label, m, n, k in SHAPES:
    a = rng.random((m, k), dtype=np.float32); b = rng.random((n, k), dtype=np.float32); c = np.zeros((m, n), np.float32)
    pa, pb, pc = (x.ctypes.data_as(P) for x in (a, b, c))
    f = lambda: sg(101, 111, 112, m, n, k, 1.0, pa, k, pb, k, 0.0, pc, n)  # row-major, NoTrans, Trans
    f(); ts = []
    for _ in range(5):
        reps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < 0.3:
            f(); reps += 1
        ts.append((time.perf_counter() - t0) / reps)
    ts.sort()
    assert np.allclose(c, a @ b.T, rtol=1e-3, atol=1e-2)
    print(f"{label}: system OpenBLAS 0.3.21 {2*m*n*k/ts[2]/1e9:.1f} GFLOP/s")
