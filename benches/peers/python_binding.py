"""The Python side of the binding overhead: `lottery_tangent.ntk.empirical`
(traced, 784-512-512-10 ReLU MLP in NTK parameterization, N = 1000 random
inputs in [0, 1)), median of 7 calls, against the same kernel timed in Rust by
`cargo bench --bench ntk -- python_peer` (ntk_784_512_512_10_python_peer/traced_1000).
    python3 benches/peers/python_binding.py      (after installing the wheel, README "Python")
"""
import time

import numpy as np

import lottery_tangent as lt

r = np.random.default_rng(0)
sizes = [784, 512, 512, 10]
p = {}
for l in range(1, 4):
    p[f"fc{l}.weight"] = r.normal(size=(sizes[l], sizes[l - 1])).astype(np.float32)
    p[f"fc{l}.bias"] = r.normal(size=sizes[l]).astype(np.float32)
x = r.random((1000, 784), dtype=np.float32)
ts = []
for _ in range(7):
    t0 = time.perf_counter()
    k = lt.ntk.empirical(p, x, kind="traced", parameterization="ntk", w_std=1.4, b_std=0.1)
    ts.append(time.perf_counter() - t0)
ts.sort()
print(f"lottery_tangent.ntk.empirical traced N=1000: median {ts[3]:.4f} s (min {ts[0]:.4f}, max {ts[-1]:.4f}), kernel {k.shape} {k.dtype}")
