"""Subset sum for strong lottery tickets.

- `solve`: the subset of `candidates` whose sum is nearest `target`, exactly
  (meet in the middle, Horowitz & Sahni 1974; up to 48 candidates). Lueker
  1998 shows that O(log 1/eps) random candidates approximate any target in
  [-1, 1] within eps, which is what Pensia et al. 2020 build on.
- `pensia`: Pensia et al. 2020 (Thm. 1, Sec. 3): a random network twice as deep
  that, pruned, approximates the given target MLP; each target weight is a
  subset sum over `paths` random two-layer paths.
"""
from . import _native
from ._arrays import params as _params


def solve(candidates, target):
    """`{"indices": [...], "sum": float, "error": float}` of the best subset."""
    idx, s, e = _native.subset_sum([float(c) for c in candidates], float(target))
    return {"indices": idx, "sum": s, "error": e}


def pensia(params, *, paths=20, seed=0, activation="relu", parameterization="standard"):
    """The construction for the target MLP `params` (`fc1.weight`, ...; ReLU):
    `{"random": dict, "mask": dict, "stats": dict}` — the random network's
    weights, the mask that prunes it into the approximation, and its sizes and
    weight errors.
    """
    random, mask, stats = _native.pensia(_params(params), int(paths), int(seed), activation, parameterization)
    return {"random": random, "mask": mask, "stats": stats}
