"""Conversions shared by the modules: inputs as float64 2-d arrays, parameter
dicts as float32 C-contiguous arrays (the layout of this project's files)."""
import numpy as np


def rows(x, name):
    a = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        a = a.reshape(a.shape[0], -1)
    if a.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one row, got shape {a.shape}")
    return a


def params(d, name="params"):
    if not isinstance(d, dict) or not d:
        raise ValueError(f"{name}: expected a non-empty dict of arrays, got {type(d).__name__}")
    return {str(k): np.ascontiguousarray(np.asarray(v, dtype=np.float32)) for k, v in d.items()}
