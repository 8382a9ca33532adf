"""PyTorch networks shared by the peer scripts (benches/peers/pytorch_conv.py,
pytorch_cifar.py): open_lth's cifar_resnet_20 (BatchNorm, 1x1 projection
shortcuts) for `channels`-channel inputs.
"""
import torch, torch.nn as nn
class Block(nn.Module):
    def __init__(self, fi, fo, down):
        super().__init__()
        st = 2 if down else 1
        self.c1 = nn.Conv2d(fi, fo, 3, st, 1, bias=False); self.b1 = nn.BatchNorm2d(fo)
        self.c2 = nn.Conv2d(fo, fo, 3, 1, 1, bias=False); self.b2 = nn.BatchNorm2d(fo)
        self.sc = nn.Sequential(nn.Conv2d(fi, fo, 1, 2, bias=False), nn.BatchNorm2d(fo)) if down or fi != fo else nn.Sequential()
    def forward(self, x):
        o = torch.relu(self.b1(self.c1(x)))
        return torch.relu(self.b2(self.c2(o)) + self.sc(x))
def resnet20(channels=1):
    blocks, f = [], 16
    for seg, w in enumerate([16, 32, 64]):
        for b in range(3):
            blocks.append(Block(f, w, seg > 0 and b == 0)); f = w
    return nn.Sequential(nn.Conv2d(channels, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), *blocks,
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
