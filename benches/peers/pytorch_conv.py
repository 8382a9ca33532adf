"""The PyTorch peer of benches/train_throughput.rs (train_step_conv_b128) and
of `ltk train` on a GPU: LeNet-300-100 (batch 60 and 128), LeNet-5, Conv-4
and ResNet-20 (open_lth's cifar_resnet_20: BatchNorm, 1x1 projection
shortcuts) on 28x28x1 inputs at batch 128, SGD momentum 0.9, cross-entropy, eager mode, 2 threads;
median of 5 timed blocks. Then the peer of `ltk train --replicas 16`: 16
LeNet-300-100s, each with its own optimizer and batch, stepped one after
another in a loop (open_lth trains one network per process), as combined
samples/s (skipped with --no-ensemble). Last, the machine's matmul peak as
PyTorch reaches it (1024^3, GFLOP/s).
    pip install torch && python3 benches/peers/pytorch_conv.py
(the PyPI wheel imports only with its CUDA dependencies installed, even on a
CPU-only machine). On a GPU machine, the peer of `ltk train --device cuda`:
    python3 benches/peers/pytorch_conv.py --device cuda
(timed blocks end with torch.cuda.synchronize(); --threads sets the CPU threads).
"""
import argparse, time, torch, torch.nn as nn
ap = argparse.ArgumentParser()
ap.add_argument("--device", default="cpu")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--no-ensemble", action="store_true", help="skip the 16-network ensemble")
args = ap.parse_args()
torch.set_num_threads(args.threads)
dev = torch.device(args.device)
def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize()
def lenet300_100():
    return nn.Sequential(nn.Flatten(), nn.Linear(784,300), nn.ReLU(), nn.Linear(300,100), nn.ReLU(), nn.Linear(100,10))
def lenet5():
    return nn.Sequential(nn.Conv2d(1,6,5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6,16,5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(256,120), nn.ReLU(), nn.Linear(120,84), nn.ReLU(), nn.Linear(84,10))
def conv4():
    return nn.Sequential(nn.Conv2d(1,64,3,padding=1), nn.ReLU(), nn.Conv2d(64,64,3,padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64,128,3,padding=1), nn.ReLU(), nn.Conv2d(128,128,3,padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(6272,256), nn.ReLU(), nn.Linear(256,256), nn.ReLU(), nn.Linear(256,10))
from torch_nets import resnet20
# The CPU kernels' instruction set (ATEN_CPU_CAPABILITY caps it).
where = args.device + (f" ({torch.backends.cpu.get_cpu_capability()})" if args.device == "cpu" else "")
for name, f, reps, bs in [("lenet300_100_b60", lenet300_100, 400, 60), ("lenet300_100", lenet300_100, 200, 128),
                          ("lenet5", lenet5, 200, 128), ("conv4", conv4, 8, 128), ("resnet20", resnet20, 8, 128)]:
    if dev.type == "cuda":
        reps *= 10
    m = f().to(dev); opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(bs,1,28,28, device=dev); y = torch.randint(0,10,(bs,), device=dev); loss = nn.CrossEntropyLoss()
    for _ in range(3):
        opt.zero_grad(); loss(m(x), y).backward(); opt.step()
    ts = []
    sync()
    for r in range(5):
        t0 = time.perf_counter()
        for _ in range(reps):
            opt.zero_grad(); loss(m(x), y).backward(); opt.step()
        sync()
        ts.append((time.perf_counter()-t0)/reps)
    ts.sort()
    print(f"{name}: median {bs/ts[2]:.0f} samples/s (min-max {bs/ts[-1]:.0f}-{bs/ts[0]:.0f}), torch {torch.__version__} on {where}")
K = 16
if not args.no_ensemble:
    ms = [lenet300_100().to(dev) for _ in range(K)]
    opts = [torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9) for m in ms]
    xs = [torch.rand(128,1,28,28, device=dev) for _ in range(K)]; ys = [torch.randint(0,10,(128,), device=dev) for _ in range(K)]
    loss = nn.CrossEntropyLoss()
    def ens_step():
        for m, o, x, y in zip(ms, opts, xs, ys):
            o.zero_grad(); loss(m(x), y).backward(); o.step()
    for _ in range(3):
        ens_step()
    reps = 20 if dev.type == "cpu" else 100
    ts = []
    sync()
    for r in range(5):
        t0 = time.perf_counter()
        for _ in range(reps):
            ens_step()
        sync()
        ts.append((time.perf_counter()-t0)/reps)
    ts.sort()
    print(f"ensemble{K}_lenet300_100: median {K*128/ts[2]:.0f} samples/s (min-max {K*128/ts[-1]:.0f}-{K*128/ts[0]:.0f}), torch {torch.__version__} on {args.device}")
# The machine's matmul peak as PyTorch reaches it: 1024^3, median of 5
# blocks of about 0.3 s (one block moves by tens of percent on a shared
# machine).
a = torch.rand(1024,1024, device=dev); b = torch.rand(1024,1024, device=dev); a@b; sync()
ts = []
for r in range(5):
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 0.3:
        a@b; reps += 1
    sync()
    ts.append((time.perf_counter()-t0)/reps)
ts.sort()
print(f"torch matmul 1024^3: {2*1024**3/ts[2]/1e9:.1f} GFLOP/s (min-max {2*1024**3/ts[-1]/1e9:.1f}-{2*1024**3/ts[0]/1e9:.1f})")
