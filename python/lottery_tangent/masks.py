"""Pruning masks with exact densities: each keeps `round(density * n)` weights
(n: every weight given for scope="global", each layer's for "layerwise").
Masks are dicts of float32 0/1 arrays with the weights' names and shapes.

- `prune`: after training, by a criterion of Frankle & Carbin 2019 (magnitude,
  open_lth's `sparse_global` / layer-wise magnitude pruning) or Zhou et al.
  2019, Sec. 3 (large_init, large_init_large_final, magnitude_increase,
  large_final_same_sign, movement), or random.
- `at_init`: before training (Frankle et al. 2021's comparison): SNIP (Lee et
  al. 2019), GraSP (Wang et al. 2020), SynFlow (Tanaka et al. 2020,
  iterative, data-free; Synaptic-Flow's `SynFlow` pruner), PHEW (Patil &
  Dovrolis 2021, random walks), magnitude or random at init.
"""
from . import _native
from ._arrays import params as _params, rows as _rows

import numpy as np


def prune(weights, density, *, criterion="magnitude", init=None, scope="layerwise", seed=0):
    """The mask keeping the highest-scoring `density` of `weights` (a dict of
    the arrays to prune). `init`: the weights at initialization, for Zhou et
    al.'s criteria that compare with it. `seed` drives the random criterion.
    """
    i = None if init is None else _params(init, "init")
    return _native.prune(_params(weights, "weights"), criterion, float(density), i, scope, int(seed))


def at_init(params, method, density, *, x=None, y=None, activation="relu", parameterization="standard",
            w_std=1.0, b_std=0.0, scope=None, seed=0):
    """The mask of `method` ("snip", "grasp", "synflow", "phew", "magnitude" or
    "random") over the weights of the MLP `params` (named `fc1.weight`,
    `fc1.bias`, ...) at initialization. SNIP and GraSP score on the batch `x`
    (`[n, d]`) with labels `y` (`[n]`, cross-entropy). `scope`: the method's
    own by default (layer-wise for random, global for the others).
    """
    xs = None if x is None else _rows(x, "x")
    ys = None if y is None else np.ascontiguousarray(np.asarray(y, dtype=np.int64).reshape(-1))
    return _native.prune_at_init(_params(params), method, float(density), xs, ys, activation, parameterization,
                                 float(w_std), float(b_std), scope, int(seed))


def density(mask):
    """The fraction of entries a mask keeps (over all its arrays)."""
    kept = sum(float(np.count_nonzero(np.asarray(m))) for m in mask.values())
    total = sum(np.asarray(m).size for m in mask.values())
    return kept / max(total, 1)
