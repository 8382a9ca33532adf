"""Data sets as NumPy arrays, read the way the Rust tool reads them.

- `idx(dir, split)`: MNIST / Fashion-MNIST IDX files (`train-images-idx3-ubyte`
  and `-labels-idx1-ubyte`, or `t10k-…`, optionally `.gz`), as images scaled to
  [0, 1] (`[n, 28*28]` float32) and labels (`[n]` int64). Debian's
  `dataset-fashion-mnist` puts them in /usr/share/datasets/fashion-mnist.
"""
import gzip
import os

import numpy as np


def _read(path):
    for p in (path, path + ".gz"):
        if os.path.exists(p):
            opener = gzip.open if p.endswith(".gz") else open
            with opener(p, "rb") as f:
                return f.read()
    raise ValueError(f"IDX file: expected {path} or {path}.gz, found neither")


def idx(directory, split="train"):
    """`(x, y)` of the `split` ("train" or "test") of the IDX files in `directory`."""
    if split not in ("train", "test"):
        raise ValueError(f"split: expected \"train\" or \"test\", got {split!r}")
    prefix = "train" if split == "train" else "t10k"
    img = _read(os.path.join(directory, f"{prefix}-images-idx3-ubyte"))
    lab = _read(os.path.join(directory, f"{prefix}-labels-idx1-ubyte"))
    if int.from_bytes(img[:4], "big") != 2051 or int.from_bytes(lab[:4], "big") != 2049:
        raise ValueError(f"IDX magic numbers in {directory}: expected 2051 (images) and 2049 (labels)")
    n, h, w = (int.from_bytes(img[4 + 4 * i:8 + 4 * i], "big") for i in range(3))
    if int.from_bytes(lab[4:8], "big") != n or len(img) != 16 + n * h * w or len(lab) != 8 + n:
        raise ValueError(f"IDX sizes in {directory}: images and labels disagree or are truncated")
    x = np.frombuffer(img, dtype=np.uint8, offset=16).reshape(n, h * w).astype(np.float32) / 255.0
    y = np.frombuffer(lab, dtype=np.uint8, offset=8).astype(np.int64)
    return x, y
