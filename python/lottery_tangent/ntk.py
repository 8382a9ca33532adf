"""Neural tangent kernels of MLPs: infinite-width (analytic) and empirical,
and kernel regression with them.

- `analytic`: the NNGP and NTK of an MLP in the infinite-width limit
  (Jacot et al. 2018; Lee et al. 2019, Sec. 2; the recursions of
  neural-tangents' `stax.Dense` / `stax.Relu` / `stax.Erf`). The
  neural-tangents equivalent of `analytic(x, hidden_layers=2, w_std=s,
  b_std=b)` is `stax.serial(Dense(512, s, b), Relu(), Dense(512, s, b),
  Relu(), Dense(1, s, b))[2](x, None, ("nngp", "ntk"))`.
- `empirical`: `Θ(x, x') = J(x) J(x')^T` of a finite network at given
  parameters (Jacot et al. 2018, Eq. 1), without forming J (per-layer
  Gram products); neural-tangents' `empirical_ntk_fn(..., trace_axes=())`
  (kind="full") or its default trace over outputs, divided by C
  (kind="traced").
- `predict`: the mean prediction of kernel regression / of gradient flow to
  convergence on MSE (Lee et al. 2019, Eq. 9), neural-tangents'
  `predict.gradient_descent_mse_ensemble(...)(x_test, "ntk", t=None)` for
  targets `y` and a kernel; with `f0` the linearized network's outputs at
  init.
"""
import numpy as np

from . import _native
from ._arrays import params as _params, rows as _rows


def init_mlp(sizes, *, activation="relu", parameterization="ntk", w_std=1.0, b_std=0.0, seed=0):
    """Parameters of an MLP with layer sizes `sizes` ([input, hidden..., output])
    at initialization, drawn as `ltk` draws them for that seed (NTK
    parameterization: N(0, 1) entries, scaled in the forward pass by
    w_std/sqrt(fan_in) and b_std; standard: N(0, w_std²/fan_in) weights, biases
    N(0, b_std²)). A dict `fc1.weight` `[out, in]`, `fc1.bias`, ..., float32;
    pass the same activation, parameterization, w_std and b_std to `empirical`.
    """
    return _native.init_mlp([int(s) for s in sizes], activation, parameterization, float(w_std), float(b_std), int(seed))


def analytic(x1, x2=None, *, hidden_layers, activation="relu", w_std, b_std, parameterization="ntk", width=None):
    """Infinite-width kernels of an MLP with `hidden_layers` hidden layers and a
    scalar output: `{"nngp": [n1, n2], "ntk": [n1, n2]}` (float64).

    activation: "relu", "erf" or "identity" (closed-form Gaussian expectations).
    parameterization: "ntk" (the limit is width-free) or "standard" (then the NTK
    grows with `width`, the hidden width, as neural-tangents' standard Dense).
    """
    a = _rows(x1, "x1")
    b = None if x2 is None else _rows(x2, "x2")
    nngp, ntk = _native.analytic(a, b, hidden_layers, activation, float(w_std), float(b_std), parameterization, width)
    return {"nngp": nngp, "ntk": ntk}


def empirical(params, x1, x2=None, *, kind="traced", activation="relu", parameterization="standard",
              w_std=1.0, b_std=0.0, mask=None, block=256):
    """Empirical NTK of the MLP whose parameters are `params` (named as this
    project's safetensors files: `fc1.weight` `[out, in]`, `fc1.bias`, ...).

    kind="traced": `[n1, n2]`, the mean over the C outputs of the diagonal
    blocks; kind="full": `[n1*C, n2*C]`, row `i*C + c`. With `mask` (a dict of
    0/1 arrays over some weights), only unmasked weights contribute.
    parameterization / w_std / b_std as the network was built ("ntk" scales
    each layer by w_std/sqrt(fan_in)); float32 results.
    """
    m = None if mask is None else _params(mask, "mask")
    a = _rows(x1, "x1")
    b = None if x2 is None else _rows(x2, "x2")
    return _native.empirical(_params(params), a, b, kind, activation, parameterization, float(w_std), float(b_std), m, int(block))


def predict(k_train_train, k_test_train, y_train, *, ridge=0.0, f0_train=None, f0_test=None):
    """Kernel regression: `f(x_test) = f0_test + K_te,tr (K_tr,tr + ridge I)^{-1} (y - f0_train)`,
    the end of gradient flow on MSE for the linearized network (Lee et al. 2019,
    Eq. 9; without f0, the NNGP/NTK posterior mean). `y_train` is `[n]` or
    `[n, C]`; returns the test predictions with the same trailing shape.
    """
    k = np.asarray(k_train_train, dtype=np.float64)
    kt = np.asarray(k_test_train, dtype=np.float64)
    y = np.asarray(y_train, dtype=np.float64)
    n = k.shape[0]
    if k.shape != (n, n) or kt.ndim != 2 or kt.shape[1] != n or y.shape[0] != n:
        raise ValueError(f"kernel shapes: expected [n, n], [m, n] and y with n rows, got {k.shape}, {kt.shape}, {y.shape}")
    r = y - (0.0 if f0_train is None else np.asarray(f0_train, dtype=np.float64))
    alpha = np.linalg.solve(k + ridge * np.eye(n), r)
    out = kt @ alpha
    return out + (0.0 if f0_test is None else np.asarray(f0_test, dtype=np.float64))
