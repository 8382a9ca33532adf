"""lottery_tangent from Python: the Rust toolkit's kernels, masks, subset-sum
solver and run directories as NumPy arrays (and pandas DataFrames).

    import lottery_tangent as lt
    k = lt.ntk.analytic(x, hidden_layers=2, w_std=1.5, b_std=0.05)["ntk"]
    mask = lt.masks.at_init(params, "synflow", density=0.1)
    run = lt.runs.load("runs/imp_lenet_fashion")

Modules: `ntk` (analytic and empirical kernels, kernel regression), `masks`
(pruning criteria with exact densities), `subset_sum` (the exact solver and
Pensia et al.'s construction), `runs` (summaries, records, metrics and saved
arrays of run directories).
"""
from . import data, masks, ntk, runs, subset_sum
from ._native import __version__, load_safetensors, save_safetensors

__all__ = ["data", "ntk", "masks", "subset_sum", "runs", "load_safetensors", "save_safetensors", "__version__"]
