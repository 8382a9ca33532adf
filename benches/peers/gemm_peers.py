"""The peers of benches/gemm.rs: f32 `a[m,k] @ b[n,k].T` at the same shapes
with NumPy (its bundled OpenBLAS) and PyTorch (eager, `--threads`), median
of 5 timed blocks, in GFLOP/s.
    python3 benches/peers/gemm_peers.py [--threads 2] [--no-torch]
"""
import argparse, time
import numpy as np
SHAPES = [("square_1024", 1024, 1024, 1024), ("ntk_full_gram_n128", 1280, 1280, 512),
          ("lenet300_fc1_b128", 128, 300, 784), ("resnet20_conv_16x16_b128", 32, 128 * 256, 288),
          ("vgg16_conv_4x4_b128", 512, 128 * 16, 4608), ("vgg16_conv_32x32_b128", 64, 128 * 1024, 576)]
def timeit(f, flops):
    """GFLOP/s of `f` (doing `flops`): median of 5 blocks of about 0.3 s."""
    f()
    ts = []
    for _ in range(5):
        reps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < 0.3:
            f(); reps += 1
        ts.append((time.perf_counter() - t0) / reps)
    ts.sort()
    return flops / ts[2] / 1e9
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    torch = None
    if not args.no_torch:
        import torch
        torch.set_num_threads(args.threads)
    for label, m, n, k in SHAPES:
        a = rng.random((m, k), dtype=np.float32); b = rng.random((n, k), dtype=np.float32)
        line = f"{label} {m}x{n}x{k}: numpy {timeit(lambda: a @ b.T, 2*m*n*k):.1f} GFLOP/s"
        if torch is not None:
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            line += f", torch {timeit(lambda: ta @ tb.T, 2*m*n*k):.1f} GFLOP/s"
        print(line)
if __name__ == "__main__":
    main()
