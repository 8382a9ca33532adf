//! SynFlow (Tanaka et al. 2020, "Pruning neural networks without any data
//! by iteratively conserving synaptic flow", Alg. 1): with every parameter
//! replaced by its absolute value and an all-ones input, `R = 1ᵀ f(1)` is the
//! total synaptic flow and the score of a weight is `|∂R/∂θ ⊙ θ|`; the mask
//! is recomputed `iterations` times (100 by default) at densities
//! `d^(k/iterations)`, k = 1..iterations (the exponential schedule),
//! scoring the masked network each time (Synaptic-Flow `Pruners/pruners.py`,
//! `SynFlow`, and `prune.py`, `prune_loop`). Data-free.
//!
//! The gradient is candle's autodiff on the reference forward pass, in f32
//! (the authors note double precision for deep networks; a flow that
//! overflows is an error, not a mask). Networks with BatchNorm are refused:
//! the authors score them in evaluation mode with running statistics, which
//! this crate does not keep.

use std::collections::BTreeMap;

use candle_core::{Device, Tensor, Var};

use super::keep_top;
use crate::models::Network;
use crate::params::{Array, Mask, ParamSet};
use crate::prune::Scope;
use crate::{Error, Result};

/// The synaptic-flow scores `|∂R/∂θ ⊙ θ|` of the weights `mask` lists, at
/// `|θ| ⊙ mask` (pruned weights score 0).
pub fn scores(net: &Network, abs: &ParamSet, mask: &Mask) -> Result<ParamSet> {
    let mut p = abs.clone();
    mask.apply(&mut p)?;
    let dev = Device::Cpu;
    let mut vars = BTreeMap::new();
    for (k, a) in p.iter() {
        vars.insert(k.clone(), Var::from_tensor(&a.to_tensor(&dev)?)?);
    }
    let ts = vars.iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
    let x = Tensor::ones((1, net.input_dim()), candle_core::DType::F32, &dev)?;
    let r = net.forward_tensor(&ts, &x)?.sum_all()?;
    let flow = r.to_scalar::<f32>()?;
    if !flow.is_finite() {
        return Err(Error::invalid(
            "SynFlow's total synaptic flow R",
            "a finite f32 (the network is too deep or too wide for f32 flow)",
            flow,
        ));
    }
    let g = r.backward()?;
    let mut s = ParamSet::new();
    for k in mask.0.names() {
        let w = p.get(k)?;
        let grad = match g.get(vars[k].as_tensor()) {
            Some(t) => Array::from_tensor(t)?.data,
            None => vec![0.0; w.len()],
        };
        s.insert(
            k.clone(),
            Array {
                shape: w.shape.clone(),
                data: w.data.iter().zip(&grad).map(|(a, b)| (a * b).abs()).collect(),
            },
        );
    }
    Ok(s)
}

/// The SynFlow mask at `density` after `iterations` rounds, starting from `full`.
pub fn mask(
    net: &Network,
    theta0: &ParamSet,
    full: &Mask,
    density: f64,
    iterations: usize,
    scope: Scope,
) -> Result<Mask> {
    if net.has_batch_norm() {
        return Err(Error::config(
            "pai.method",
            "a method other than synflow for a BatchNorm network (it needs running statistics)",
            "synflow",
        ));
    }
    let mut abs = theta0.clone();
    for a in abs.0.values_mut() {
        a.data.iter_mut().for_each(|v| *v = v.abs());
    }
    let mut m = full.clone();
    for k in 1..=iterations {
        let d = density.powf(k as f64 / iterations as f64);
        let s = scores(net, &abs, &m)?;
        m = keep_top(&m, &s, d, scope)?;
    }
    Ok(m)
}
