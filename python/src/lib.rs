//! `lottery_tangent._native`: the Rust functions behind the Python package
//! (`python/lottery_tangent/`), taking and returning NumPy arrays. Long
//! calls release the GIL. The Python modules wrap these with keyword
//! arguments and docstrings; this file only converts types and errors.

use numpy::ndarray::{Array2, ArrayD, IxDyn};
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyReadonlyArrayDyn};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use lottery_tangent::data::Dataset;
use lottery_tangent::models::{Activation, Mlp, Network, Parameterization};
use lottery_tangent::ntk::analytic::InfiniteMlp;
use lottery_tangent::ntk::{mlp_ntk, KernelKind};
use lottery_tangent::params::{Array, Mask, ParamSet};
use lottery_tangent::train::Loss;

#[global_allocator]
static ALLOCATOR: lottery_tangent::Allocator = lottery_tangent::Allocator;

/// A crate error as a Python `ValueError` (its message says what, expected, got).
fn err(e: lottery_tangent::Error) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn bad(what: &str, expected: &str, got: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(format!("{what}: expected {expected}, got {got}"))
}

/// A config-style name (`"relu"`, `"ntk"`, `"snip"`) as one of the crate's enums.
fn parse<T: serde::de::DeserializeOwned>(what: &str, name: &str, expected: &str) -> PyResult<T> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).map_err(|_| bad(what, expected, name))
}

fn rows_f32(x: &PyReadonlyArray2<f64>) -> (Vec<f32>, usize, usize) {
    let a = x.as_array();
    let (n, d) = a.dim();
    (a.iter().map(|&v| v as f32).collect(), n, d)
}

/// A dict of arrays (any shape, converted to f32) as a parameter set.
fn param_set(d: &Bound<'_, PyDict>) -> PyResult<ParamSet> {
    let mut p = ParamSet::new();
    for (k, v) in d.iter() {
        let name: String = k.extract()?;
        let type_name = v.get_type().name()?.to_string();
        let a: PyReadonlyArrayDyn<f32> = v
            .extract()
            .map_err(|_| bad(&format!("array `{name}`"), "a float32 NumPy array", type_name))?;
        let a = a.as_array();
        p.insert(
            name,
            Array {
                shape: a.shape().to_vec(),
                data: a.iter().copied().collect(),
            },
        );
    }
    Ok(p)
}

fn to_dict<'py>(py: Python<'py>, p: &ParamSet) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, a) in p.iter() {
        let arr =
            ArrayD::from_shape_vec(IxDyn(&a.shape), a.data.clone()).map_err(|e| bad(k, "a consistent shape", e))?;
        d.set_item(k, arr.into_pyarray(py))?;
    }
    Ok(d)
}

/// The MLP whose parameters are `fc1.weight`, `fc1.bias`, ... (`[out, in]`
/// weights), with the given activation and parameterization.
fn mlp_of(p: &ParamSet, activation: &str, parameterization: &str, w_std: f64, b_std: f64) -> PyResult<Mlp> {
    let act: Activation = parse("activation", activation, "relu, tanh, erf or identity")?;
    let par: Parameterization = parse("parameterization", parameterization, "standard or ntk")?;
    let mut sizes = Vec::new();
    for l in 1.. {
        match p.get(&format!("fc{l}.weight")) {
            Ok(w) if w.shape.len() == 2 => {
                if l == 1 {
                    sizes.push(w.shape[1]);
                }
                sizes.push(w.shape[0]);
            }
            Ok(w) => {
                return Err(bad(
                    &format!("fc{l}.weight"),
                    "a 2-d [out, in] array",
                    format!("shape {:?}", w.shape),
                ))
            }
            Err(_) => break,
        }
    }
    if sizes.len() < 2 {
        return Err(bad(
            "MLP parameters",
            "fc1.weight, fc1.bias, ... ([out, in] weights)",
            "no fc1.weight",
        ));
    }
    let hidden = sizes[1..sizes.len() - 1].to_vec();
    let mlp = Mlp::new(
        sizes[0],
        hidden,
        sizes[sizes.len() - 1],
        act,
        par,
        w_std as f32,
        b_std as f32,
    )
    .map_err(err)?;
    mlp.check_params(p).map_err(err)?;
    Ok(mlp)
}

/// Infinite-width NNGP and NTK of an MLP (see `lottery_tangent.ntk.analytic`).
#[pyfunction]
#[pyo3(signature = (x1, x2, hidden_layers, activation, w_std, b_std, parameterization, width))]
#[allow(clippy::too_many_arguments)]
fn analytic<'py>(
    py: Python<'py>,
    x1: PyReadonlyArray2<'py, f64>,
    x2: Option<PyReadonlyArray2<'py, f64>>,
    hidden_layers: usize,
    activation: &str,
    w_std: f64,
    b_std: f64,
    parameterization: &str,
    width: Option<usize>,
) -> PyResult<(Bound<'py, PyArray2<f64>>, Bound<'py, PyArray2<f64>>)> {
    let act: Activation = parse("activation", activation, "relu, erf or identity")?;
    let (a, n1, d) = rows_f32(&x1);
    let (b, n2, d2) = match &x2 {
        Some(x) => rows_f32(x),
        None => (a.clone(), n1, d),
    };
    if d2 != d {
        return Err(bad("x2", &format!("{d} columns (as x1)"), d2));
    }
    let inf = InfiniteMlp::new(hidden_layers + 1, act, w_std, b_std).map_err(err)?;
    let k = match parameterization {
        "ntk" => py.allow_threads(|| inf.kernels(&a, n1, &b, n2, d)),
        "standard" => {
            let w = width.ok_or_else(|| bad("width", "the hidden width for parameterization=\"standard\"", "None"))?;
            py.allow_threads(|| inf.kernels_standard(&vec![w; hidden_layers], &a, n1, &b, n2, d))
        }
        other => return Err(bad("parameterization", "\"ntk\" or \"standard\"", other)),
    }
    .map_err(err)?;
    let m = |v: Vec<f64>| Array2::from_shape_vec((n1, n2), v).map(|a| a.into_pyarray(py));
    Ok((
        m(k.nngp).map_err(|e| bad("nngp", "[n1, n2]", e))?,
        m(k.ntk).map_err(|e| bad("ntk", "[n1, n2]", e))?,
    ))
}

/// Empirical NTK of an MLP at `params` (see `lottery_tangent.ntk.empirical`).
#[pyfunction]
#[pyo3(signature = (params, x1, x2, kind, activation, parameterization, w_std, b_std, mask, block))]
#[allow(clippy::too_many_arguments)]
fn empirical<'py>(
    py: Python<'py>,
    params: &Bound<'py, PyDict>,
    x1: PyReadonlyArray2<'py, f64>,
    x2: Option<PyReadonlyArray2<'py, f64>>,
    kind: &str,
    activation: &str,
    parameterization: &str,
    w_std: f64,
    b_std: f64,
    mask: Option<&Bound<'py, PyDict>>,
    block: usize,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let p = param_set(params)?;
    let mlp = mlp_of(&p, activation, parameterization, w_std, b_std)?;
    let kind: KernelKind = parse("kind", kind, "\"traced\" or \"full\"")?;
    let mask = match mask {
        Some(m) => Some(Mask(param_set(m)?)),
        None => None,
    };
    let (a, n1, d) = rows_f32(&x1);
    let (b, n2, d2) = match &x2 {
        Some(x) => rows_f32(x),
        None => (Vec::new(), n1, d),
    };
    if d2 != d {
        return Err(bad("x2", &format!("{d} columns (as x1)"), d2));
    }
    let own = x2.is_some();
    let k = py
        .allow_threads(|| {
            let right = if own { &b[..] } else { &a[..] };
            mlp_ntk(&mlp, &p, &a, n1, right, n2, kind, mask.as_ref(), block.max(1))
        })
        .map_err(err)?;
    Ok(Array2::from_shape_vec((k.rows, k.cols), k.data)
        .map_err(|e| bad("kernel", "[rows, cols]", e))?
        .into_pyarray(py))
}

/// A mask keeping exactly `round(density · n)` weights by a magnitude-family
/// or random criterion (see `lottery_tangent.masks.prune`).
#[pyfunction]
#[pyo3(signature = (weights, criterion, density, init, scope, seed))]
fn prune<'py>(
    py: Python<'py>,
    weights: &Bound<'py, PyDict>,
    criterion: &str,
    density: f64,
    init: Option<&Bound<'py, PyDict>>,
    scope: &str,
    seed: u64,
) -> PyResult<Bound<'py, PyDict>> {
    use lottery_tangent::prune::{self, Criterion, Scope};
    let trained = param_set(weights)?;
    let init = match init {
        Some(i) => param_set(i)?,
        None => trained.clone(),
    };
    let criterion: Criterion = parse(
        "criterion",
        criterion,
        "magnitude, large_init, large_init_large_final, magnitude_increase, large_final_same_sign, movement or random",
    )?;
    let scope: Scope = parse("scope", scope, "\"layerwise\" or \"global\"")?;
    let layers: Vec<String> = trained.names().cloned().collect();
    let mask = py
        .allow_threads(|| -> lottery_tangent::Result<Mask> {
            let scores = prune::scores(criterion, &init, &trained, &layers, seed)?;
            let ones = Mask::ones(&trained, &layers)?;
            lottery_tangent::pai::keep_top(&ones, &scores, density, scope)
        })
        .map_err(err)?;
    to_dict(py, &mask.0)
}

/// A mask at initialization by SNIP, GraSP, SynFlow, PHEW, magnitude or
/// random (see `lottery_tangent.masks.at_init`).
#[pyfunction]
#[pyo3(signature = (params, method, density, x, y, activation, parameterization, w_std, b_std, scope, seed))]
#[allow(clippy::too_many_arguments)]
fn prune_at_init<'py>(
    py: Python<'py>,
    params: &Bound<'py, PyDict>,
    method: &str,
    density: f64,
    x: Option<PyReadonlyArray2<'py, f64>>,
    y: Option<PyReadonlyArray1<'py, i64>>,
    activation: &str,
    parameterization: &str,
    w_std: f64,
    b_std: f64,
    scope: Option<&str>,
    seed: u64,
) -> PyResult<Bound<'py, PyDict>> {
    use lottery_tangent::pai::{self, PaiMethod, PaiSpec};
    let p = param_set(params)?;
    let mlp = mlp_of(&p, activation, parameterization, w_std, b_std)?;
    let method: PaiMethod = parse("method", method, "random, magnitude, snip, grasp, synflow or phew")?;
    let d = mlp.input_dim;
    let c = mlp.output_dim;
    let (xs, n) = match &x {
        Some(x) => {
            let (v, n, dx) = rows_f32(x);
            if dx != d {
                return Err(bad("x", &format!("{d} columns (the network's input size)"), dx));
            }
            (v, n)
        }
        None if matches!(method, PaiMethod::Snip | PaiMethod::Grasp) => {
            return Err(bad("x, y", "a batch of examples for SNIP and GraSP", "None"))
        }
        None => (vec![0.0; d], 1),
    };
    let labels: Vec<u32> = match &y {
        Some(y) => y
            .as_array()
            .iter()
            .map(|&v| {
                if v >= 0 && (v as usize) < c {
                    Ok(v as u32)
                } else {
                    Err(bad("label in y", &format!("0..{c} (the network's outputs)"), v))
                }
            })
            .collect::<PyResult<_>>()?,
        None => vec![0; n],
    };
    if labels.len() != n {
        return Err(bad("y", &format!("{n} labels (one per row of x)"), labels.len()));
    }
    let data = Dataset {
        name: "python".into(),
        x: xs,
        labels,
        targets: None,
        target_dim: c,
        shape: [1, 1, d],
        num_classes: c,
    };
    let mut spec = PaiSpec::new(method, density, seed);
    if let Some(s) = scope {
        spec.scope = Some(parse("scope", s, "\"layerwise\" or \"global\"")?);
    }
    spec.data_examples = Some(n);
    let net = Network::Mlp(mlp);
    let mask = py
        .allow_threads(|| pai::prune_at_init(&net, &p, &data, Loss::CrossEntropy, &spec))
        .map_err(err)?;
    to_dict(py, &mask.0)
}

/// The subset of `candidates` whose sum is nearest `target` (exact).
#[pyfunction]
fn subset_sum(py: Python<'_>, candidates: Vec<f64>, target: f64) -> PyResult<(Vec<usize>, f64, f64)> {
    let s = py
        .allow_threads(|| lottery_tangent::strong::subset_sum::exact(&candidates, target))
        .map_err(err)?;
    let idx = (0..candidates.len()).filter(|&i| s.subset >> i & 1 == 1).collect();
    Ok((idx, s.sum, s.error))
}

/// Pensia et al.'s construction of a target MLP inside a random one.
#[pyfunction]
#[pyo3(signature = (params, paths, seed, activation, parameterization))]
fn pensia<'py>(
    py: Python<'py>,
    params: &Bound<'py, PyDict>,
    paths: usize,
    seed: u64,
    activation: &str,
    parameterization: &str,
) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyDict>, Bound<'py, PyDict>)> {
    let p = param_set(params)?;
    let mlp = mlp_of(&p, activation, parameterization, 1.0, 0.0)?;
    let c = py
        .allow_threads(|| lottery_tangent::strong::pensia::construct(&mlp, &p, paths, seed, &candle_core::Device::Cpu))
        .map_err(err)?;
    let stats = PyDict::new(py);
    let s = &c.stats;
    stats.set_item("paths", s.paths)?;
    stats.set_item("target_weights", s.target_weights)?;
    stats.set_item("random_weights", s.random_weights)?;
    stats.set_item("kept_weights", s.kept_weights)?;
    stats.set_item("max_weight_error", s.max_weight_error)?;
    stats.set_item("mean_weight_error", s.mean_weight_error)?;
    stats.set_item("hidden", c.mlp.hidden.clone())?;
    Ok((to_dict(py, &c.random)?, to_dict(py, &c.mask.0)?, stats))
}

/// Parameters of an MLP at initialization, drawn as the Rust tool draws them
/// (`Network::init(seed)`), named `fc1.weight`, `fc1.bias`, ...
#[pyfunction]
#[pyo3(signature = (sizes, activation, parameterization, w_std, b_std, seed))]
fn init_mlp<'py>(
    py: Python<'py>,
    sizes: Vec<usize>,
    activation: &str,
    parameterization: &str,
    w_std: f64,
    b_std: f64,
    seed: u64,
) -> PyResult<Bound<'py, PyDict>> {
    if sizes.len() < 2 {
        return Err(bad("sizes", "[input, hidden..., output]", format!("{sizes:?}")));
    }
    let act: Activation = parse("activation", activation, "relu, tanh, erf or identity")?;
    let par: Parameterization = parse("parameterization", parameterization, "standard or ntk")?;
    let mlp = Mlp::new(
        sizes[0],
        sizes[1..sizes.len() - 1].to_vec(),
        sizes[sizes.len() - 1],
        act,
        par,
        w_std as f32,
        b_std as f32,
    )
    .map_err(err)?;
    to_dict(py, &Network::Mlp(mlp).init(seed))
}

/// The arrays of a safetensors file written by this project (parameters,
/// masks, checkpoints), by name.
#[pyfunction]
fn load_safetensors<'py>(py: Python<'py>, path: std::path::PathBuf) -> PyResult<Bound<'py, PyDict>> {
    let p = ParamSet::load(&path).map_err(err)?;
    to_dict(py, &p)
}

/// Writes a dict of float32 arrays as a safetensors file in this project's layout.
#[pyfunction]
fn save_safetensors(arrays: &Bound<'_, PyDict>, path: std::path::PathBuf) -> PyResult<()> {
    param_set(arrays)?.save(&path).map_err(err)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(analytic, m)?)?;
    m.add_function(wrap_pyfunction!(empirical, m)?)?;
    m.add_function(wrap_pyfunction!(prune, m)?)?;
    m.add_function(wrap_pyfunction!(prune_at_init, m)?)?;
    m.add_function(wrap_pyfunction!(subset_sum, m)?)?;
    m.add_function(wrap_pyfunction!(pensia, m)?)?;
    m.add_function(wrap_pyfunction!(init_mlp, m)?)?;
    m.add_function(wrap_pyfunction!(load_safetensors, m)?)?;
    m.add_function(wrap_pyfunction!(save_safetensors, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
