"""The neural-tangents peer of benches/ntk.rs (ntk_784_512_512_10): the
empirical NTK of a 784-512-512-10 ReLU MLP in the NTK parameterization
(W_std 1.4, b_std 0.1) at N = 128 and 512, traced (trace_axes=(-1,):
N x N, the trace over the 10 outputs) and full (trace_axes=(): N x N x C x C), with its structured implementation
(implementation=3, NtkImplementation.STRUCTURED_DERIVATIVES), jitted, on
the CPU; median of 5 calls after a warm-up, in seconds.
    pip install jax==0.4.25 jaxlib==0.4.25 'numpy<2' neural-tangents==0.6.5
    python3 benches/peers/nt_ntk.py
"""
import time
import jax, jax.numpy as jnp
import neural_tangents as nt
from neural_tangents import stax

init_fn, apply_fn, _ = stax.serial(
    stax.Dense(512, W_std=1.4, b_std=0.1), stax.Relu(),
    stax.Dense(512, W_std=1.4, b_std=0.1), stax.Relu(),
    stax.Dense(10, W_std=1.4, b_std=0.1))
_, params = init_fn(jax.random.PRNGKey(0), (-1, 784))
x = jax.random.uniform(jax.random.PRNGKey(1), (512, 784))
for kind, axes in [("traced", (-1,)), ("full", ())]:
    f = jax.jit(nt.empirical_ntk_fn(apply_fn, trace_axes=axes, vmap_axes=0, implementation=3))
    for n in [128, 512]:
        xs = x[:n]
        f(xs, None, params).block_until_ready()
        ts = []
        for _ in range(5):
            t0 = time.perf_counter()
            f(xs, None, params).block_until_ready()
            ts.append(time.perf_counter() - t0)
        ts.sort()
        print(f"nt {kind} {n}: median {ts[2]:.4f} s (min {ts[0]:.4f}), neural-tangents {nt.__version__}, jax {jax.__version__}")
