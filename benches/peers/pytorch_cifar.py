"""The PyTorch peer of benches/train_throughput.rs (train_step_cifar_b128):
ResNet-20 (open_lth's cifar_resnet_20) and VGG-16 (open_lth's cifar_vgg_16,
with BatchNorm and convolution biases) on 32x32x3 inputs at batch 128, SGD
momentum 0.9, cross-entropy, eager mode, `--threads` CPU threads (default
2); median of 5 timed blocks, as samples/s.
    pip install torch && python3 benches/peers/pytorch_cifar.py [--only resnet20|vgg16]
"""
import argparse, time, torch, torch.nn as nn
ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--only", default=None)
args = ap.parse_args()
torch.set_num_threads(args.threads)
from torch_nets import resnet20 as resnet20_of
def resnet20():
    return resnet20_of(3)
def vgg16():
    plan = [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512]
    layers, f = [], 3
    for s in plan:
        if s == 'M':
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(f, s, 3, padding=1), nn.BatchNorm2d(s), nn.ReLU()]; f = s
    return nn.Sequential(*layers, nn.AvgPool2d(2), nn.Flatten(), nn.Linear(512, 10))
for name, f, reps in [("resnet20", resnet20, 4), ("vgg16", vgg16, 2)]:
    if args.only and name != args.only:
        continue
    m = f(); opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(128, 3, 32, 32); y = torch.randint(0, 10, (128,)); loss = nn.CrossEntropyLoss()
    for _ in range(2):
        opt.zero_grad(); loss(m(x), y).backward(); opt.step()
    ts = []
    for r in range(5):
        t0 = time.perf_counter()
        for _ in range(reps):
            opt.zero_grad(); loss(m(x), y).backward(); opt.step()
        ts.append((time.perf_counter() - t0) / reps)
    ts.sort()
    print(f"{name}: median {128/ts[2]:.0f} samples/s (min-max {128/ts[-1]:.0f}-{128/ts[0]:.0f}), torch {torch.__version__}, {args.threads} threads")
