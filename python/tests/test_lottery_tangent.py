"""The Python package against values computed here, independently, from the
closed-form recursions and explicit Jacobians, and against the Rust tool's
own run directories."""
import itertools
import math
import os
import subprocess

import numpy as np
import pytest

import lottery_tangent as lt

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LTK = os.environ.get("LTK_BIN", os.path.join(ROOT, "target", "release", "ltk"))


def relu_ntk(x1, x2, hidden_layers, w, b):
    """The infinite-width NNGP and NTK of a ReLU MLP in NTK parameterization
    (neural-tangents' Dense / Relu recursions), written out here."""
    d = x1.shape[1]
    k12 = w**2 * x1 @ x2.T / d + b**2
    k11 = w**2 * np.sum(x1 * x1, 1) / d + b**2
    k22 = w**2 * np.sum(x2 * x2, 1) / d + b**2
    theta = k12.copy()
    for _ in range(hidden_layers):
        s = np.sqrt(np.outer(k11, k22))
        c = np.clip(k12 / s, -1.0, 1.0)
        t = np.arccos(c)
        e = s * (np.sin(t) + (np.pi - t) * c) / (2 * np.pi)
        edot = (np.pi - t) / (2 * np.pi)
        k12 = w**2 * e + b**2
        theta = k12 + w**2 * edot * theta
        k11 = w**2 * k11 / 2 + b**2
        k22 = w**2 * k22 / 2 + b**2
    return k12, theta


def mlp_params(sizes, seed, ntk=True, w_std=1.0):
    """Parameters named as the project's files; N(0, 1) for NTK parameterization."""
    r = np.random.default_rng(seed)
    p = {}
    for l in range(1, len(sizes)):
        fan_in, fan_out = sizes[l - 1], sizes[l]
        s = 1.0 if ntk else w_std / math.sqrt(fan_in)
        p[f"fc{l}.weight"] = (r.normal(size=(fan_out, fan_in)) * s).astype(np.float32)
        p[f"fc{l}.bias"] = r.normal(size=fan_out).astype(np.float32) * (1.0 if ntk else 0.0)
    return p


def test_analytic_equals_the_closed_form_recursion():
    x = np.random.default_rng(1).normal(size=(6, 4))
    y = np.random.default_rng(2).normal(size=(3, 4))
    for layers in [1, 2, 3]:
        k = lt.ntk.analytic(x, y, hidden_layers=layers, w_std=1.5, b_std=0.1)
        nngp, ntk = relu_ntk(x, y, layers, 1.5, 0.1)
        assert k["ntk"].shape == (6, 3) and k["ntk"].dtype == np.float64
        np.testing.assert_allclose(k["nngp"], nngp, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(k["ntk"], ntk, rtol=1e-5, atol=1e-6)
    # x2 = None is the kernel of x with itself.
    k = lt.ntk.analytic(x, hidden_layers=1, w_std=1.5, b_std=0.1)
    np.testing.assert_allclose(k["ntk"], relu_ntk(x, x, 1, 1.5, 0.1)[1], rtol=1e-5, atol=1e-6)


def test_analytic_errors_name_the_culprit():
    with pytest.raises(ValueError, match="activation"):
        lt.ntk.analytic(np.ones((2, 2)), hidden_layers=1, activation="softplus", w_std=1, b_std=0)
    with pytest.raises(ValueError, match="width"):
        lt.ntk.analytic(np.ones((2, 2)), hidden_layers=1, w_std=1, b_std=0, parameterization="standard")


def test_empirical_equals_the_explicit_jacobian():
    """One hidden ReLU layer, standard parameterization: J written out by hand."""
    p = mlp_params([4, 7, 3], 0, ntk=False, w_std=1.4)
    x = np.random.default_rng(3).normal(size=(5, 4))
    w1, b1, w2 = (p["fc1.weight"].astype(np.float64), p["fc1.bias"].astype(np.float64), p["fc2.weight"].astype(np.float64))
    rows = []
    for xi in x:
        z = w1 @ xi + b1
        h = np.maximum(z, 0)
        for c in range(3):
            g_w2 = np.zeros_like(w2)
            g_w2[c] = h
            g_b2 = np.eye(3)[c]
            g_z = w2[c] * (z > 0)
            rows.append(np.concatenate([np.outer(g_z, xi).ravel(), g_z, g_w2.ravel(), g_b2]))
    j = np.array(rows)
    full = j @ j.T
    k = lt.ntk.empirical(p, x, kind="full")
    assert k.shape == (15, 15)
    np.testing.assert_allclose(k, full, rtol=1e-4, atol=1e-4 * np.abs(full).max())
    traced = lt.ntk.empirical(p, x, kind="traced")
    expected = np.array([[np.trace(full[3 * i:3 * i + 3, 3 * j_:3 * j_ + 3]) / 3 for j_ in range(5)] for i in range(5)])
    np.testing.assert_allclose(traced, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_empirical_approaches_analytic_with_width_and_masks_remove_weights():
    x = np.random.default_rng(4).normal(size=(4, 6))
    inf = lt.ntk.analytic(x, hidden_layers=1, w_std=1.0, b_std=1.0)["ntk"]
    err = []
    for width in [64, 4096]:
        p = mlp_params([6, width, 1], 10)
        k = lt.ntk.empirical(p, x, parameterization="ntk", w_std=1.0, b_std=1.0)
        err.append(np.abs(k - inf).max() / np.abs(inf).max())
    assert err[1] < 0.1 and err[1] < err[0], err
    p = mlp_params([6, 8, 2], 1)
    dense = lt.ntk.empirical(p, x)
    none_kept = {"fc1.weight": np.zeros((8, 6), np.float32)}
    masked = lt.ntk.empirical(p, x, mask=none_kept)
    assert np.all(np.diag(masked) < np.diag(dense))


def test_predict_interpolates_the_training_targets():
    x = np.random.default_rng(5).normal(size=(8, 3))
    k = lt.ntk.analytic(x, hidden_layers=2, w_std=1.4, b_std=0.1)["ntk"]
    y = np.sin(x[:, 0])
    np.testing.assert_allclose(lt.ntk.predict(k, k, y), y, atol=1e-6)


def test_prune_keeps_exact_counts_of_the_largest_weights():
    r = np.random.default_rng(6)
    w = {"a": r.normal(size=(10, 10)).astype(np.float32), "b": r.normal(size=(7,)).astype(np.float32)}
    m = lt.masks.prune(w, 0.3)
    assert m["a"].shape == (10, 10) and int(m["a"].sum()) == 30 and int(m["b"].sum()) == round(0.3 * 7)
    kept = np.abs(w["a"][m["a"] == 1])
    gone = np.abs(w["a"][m["a"] == 0])
    assert kept.min() >= gone.max()
    g = lt.masks.prune(w, 0.5, scope="global")
    assert int(g["a"].sum() + g["b"].sum()) == round(0.5 * 107)
    # Zhou et al.'s movement criterion needs the weights at init.
    init = {k: v + r.normal(size=v.shape).astype(np.float32) for k, v in w.items()}
    mv = lt.masks.prune(w, 0.2, criterion="movement", init=init)
    moved = np.abs(w["a"] - init["a"])
    assert moved[mv["a"] == 1].min() >= moved[mv["a"] == 0].max()
    with pytest.raises(ValueError, match="criterion"):
        lt.masks.prune(w, 0.2, criterion="largest")


def test_masks_at_init():
    p = mlp_params([16, 32, 24, 4], 7, ntk=False, w_std=1.4)
    for method in ["synflow", "magnitude", "random", "phew"]:
        m = lt.masks.at_init(p, method, 0.2)
        assert set(m) == {"fc1.weight", "fc2.weight", "fc3.weight"}
        # PHEW may keep up to (layers - 1) more weights than asked.
        assert abs(lt.masks.density(m) - 0.2) < 0.01, (method, lt.masks.density(m))
    x = np.random.default_rng(8).normal(size=(12, 16))
    y = np.arange(12) % 4
    for method in ["snip", "grasp"]:
        m = lt.masks.at_init(p, method, 0.2, x=x, y=y)
        assert abs(lt.masks.density(m) - 0.2) < 0.01
    with pytest.raises(ValueError, match="SNIP"):
        lt.masks.at_init(p, "snip", 0.2)
    with pytest.raises(ValueError, match="label"):
        lt.masks.at_init(p, "snip", 0.2, x=x, y=y + 4)


def test_subset_sum_equals_brute_force():
    r = np.random.default_rng(9)
    c = r.uniform(-1, 1, size=10)
    for target in [0.37, -0.81, 2.5]:
        best = min((abs(sum(c[list(s)]) - target), s) for n in range(11) for s in itertools.combinations(range(10), n))
        got = lt.subset_sum.solve(c, target)
        assert abs(got["error"] - best[0]) < 1e-12
        assert abs(sum(c[got["indices"]]) - got["sum"]) < 1e-12


def test_pensia_construction_approximates_the_target():
    p = mlp_params([5, 4, 3], 11, ntk=False, w_std=0.5)
    for k in p:
        if k.endswith("bias"):
            p[k] = np.zeros_like(p[k])
    few, many = (lt.subset_sum.pensia(p, paths=n, seed=0) for n in (4, 24))
    s = many["stats"]
    assert s["target_weights"] == 5 * 4 + 4 * 3 and s["kept_weights"] < s["random_weights"]
    # More random paths per weight approximate each target weight better (Pensia et al., Thm. 1).
    assert s["mean_weight_error"] < few["stats"]["mean_weight_error"] / 5, (few["stats"], s)
    assert set(many["mask"]) <= set(many["random"])


@pytest.mark.skipif(not os.path.exists(LTK), reason="the ltk binary is not built")
def test_runs_read_a_training_run_and_an_imp_run(tmp_path):
    subprocess.run([LTK, "train", "--iterations", "40", "--quiet", "--name", "t", "--out", str(tmp_path)], check=True)
    run = lt.runs.load(tmp_path / "t")
    assert run.summary["steps"] == 40
    assert run.config["train"]["iterations"] == 40
    m = run.metrics
    assert list(m["step"])[-1] == 40 and "test_accuracy" in m
    final = run.arrays("final.safetensors")
    assert final["fc1.weight"].shape == (300, 64) and final["fc1.weight"].dtype == np.float32
    subprocess.run([LTK, "imp", "--config", os.path.join(ROOT, "experiments", "imp_digits.toml"), "--rounds", "1",
                    "--seeds", "0", "--iterations", "60", "--quiet", "--name", "i", "--out", str(tmp_path)], check=True)
    imp = lt.runs.load(tmp_path / "i")
    assert "verdicts" in imp.summary
    rec = imp.records
    assert "unit" in rec and len(rec["unit"]) == 2  # rounds 0 and 1 of seed 0
    assert list(rec["round"]) == [0, 1]
    mask = imp.arrays("seed_0/round_01/mask.safetensors")
    assert 0.0 < lt.masks.density(mask) < 1.0
    assert "seed_0/round_01/mask.safetensors" in imp.files()
    with pytest.raises(ValueError, match="run directory"):
        lt.runs.load(tmp_path)


def test_idx_reader_reads_the_format_and_names_bad_files(tmp_path):
    import gzip as gz
    imgs = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 12)
    head = (2051).to_bytes(4, "big") + (2).to_bytes(4, "big") + (3).to_bytes(4, "big") + (4).to_bytes(4, "big")
    with gz.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(head + imgs.tobytes())
    (tmp_path / "train-labels-idx1-ubyte").write_bytes((2049).to_bytes(4, "big") + (2).to_bytes(4, "big") + bytes([7, 1]))
    x, y = lt.data.idx(tmp_path)
    assert x.shape == (2, 12) and x.dtype == np.float32 and x[1, 0] == 12 / 255.0
    assert list(y) == [7, 1]
    with pytest.raises(ValueError, match="t10k-images"):
        lt.data.idx(tmp_path, "test")


def test_init_mlp_draws_as_ltk_and_its_kernel_approaches_the_limit():
    x = np.random.default_rng(12).normal(size=(5, 8))
    p = lt.ntk.init_mlp([8, 2048, 2048, 1], w_std=1.4, b_std=0.1, seed=3)
    assert p["fc2.weight"].shape == (2048, 2048) and p["fc2.weight"].dtype == np.float32
    assert abs(p["fc2.weight"].std() - 1.0) < 0.01  # NTK parameterization: N(0, 1) entries
    assert lt.ntk.init_mlp([8, 4, 1], seed=3)["fc1.weight"].tolist() == lt.ntk.init_mlp([8, 4, 1], seed=3)["fc1.weight"].tolist()
    k = lt.ntk.empirical(p, x, parameterization="ntk", w_std=1.4, b_std=0.1)
    inf = lt.ntk.analytic(x, hidden_layers=2, w_std=1.4, b_std=0.1)["ntk"]
    assert np.abs(k - inf).max() / np.abs(inf).max() < 0.1
