//! GraSP (Wang et al. 2020, "Picking winning tickets before training by
//! preserving gradient flow", Eq. 8): keep the weights whose removal least
//! reduces the gradient norm, i.e. the largest `θ ⊙ H g`, with `g` the loss
//! gradient and `H` the Hessian on a batch of training data, the outputs
//! divided by a temperature of 200 (Synaptic-Flow `Pruners/pruners.py`,
//! `GraSP`, after alecwangcq/GraSP `pruner/GraSP.py`).
//!
//! Deviation: `H g` is the central difference of gradients
//! `(∇L(θ + εg) − ∇L(θ − εg)) / 2ε`, with `ε‖g‖ = 10⁻³‖θ‖`, instead of a
//! second backward pass (the fast training paths have no double
//! backpropagation); tests check it against a smaller step.

use crate::data::Dataset;
use crate::models::Network;
use crate::params::ParamSet;
use crate::train::Loss;
use crate::{Error, Result};

/// GraSP's temperature on the outputs.
pub const TEMPERATURE: f32 = 200.0;

/// Names of the output layer's weight and bias (dividing them by T divides the outputs by T).
fn output_layer(net: &Network) -> Result<(String, String)> {
    let w = net.prunable().last().cloned().ok_or_else(|| Error::Param {
        what: "a network without prunable layers".into(),
    })?;
    let b = w.trim_end_matches(".weight").to_string() + ".bias";
    Ok((w, b))
}

/// The gradient of `L(f(θ) / T)`: the output layer scaled by 1/T, its gradient by 1/T again (chain rule).
fn tempered_gradient(net: &Network, params: &ParamSet, data: &Dataset, loss: Loss) -> Result<ParamSet> {
    let (w, b) = output_layer(net)?;
    let mut p = params.clone();
    for k in [&w, &b] {
        if let Ok(a) = p.get_mut(k) {
            a.data.iter_mut().for_each(|v| *v /= TEMPERATURE);
        }
    }
    let mut g = super::snip::gradient(net, &p, data, loss)?;
    for k in [&w, &b] {
        if let Ok(a) = g.get_mut(k) {
            a.data.iter_mut().for_each(|v| *v /= TEMPERATURE);
        }
    }
    Ok(g)
}

fn norm(p: &ParamSet) -> f64 {
    p.iter()
        .flat_map(|(_, a)| a.data.iter())
        .map(|&v| (v as f64).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// `H g` by a central difference of tempered gradients, step `ε‖g‖ = rel·‖θ‖`.
pub fn hessian_gradient(
    net: &Network,
    theta0: &ParamSet,
    data: &Dataset,
    loss: Loss,
    rel: f64,
) -> Result<(ParamSet, ParamSet)> {
    let g = tempered_gradient(net, theta0, data, loss)?;
    let gn = norm(&g);
    if gn == 0.0 || !gn.is_finite() {
        return Err(Error::invalid("GraSP gradient norm", "finite and > 0", gn));
    }
    let eps = (rel * norm(theta0) / gn) as f32;
    let shifted = |sign: f32| {
        let mut p = theta0.clone();
        for (k, a) in p.0.iter_mut() {
            if let Ok(gk) = g.get(k) {
                a.data.iter_mut().zip(&gk.data).for_each(|(v, d)| *v += sign * eps * d);
            }
        }
        p
    };
    let gp = tempered_gradient(net, &shifted(1.0), data, loss)?;
    let gm = tempered_gradient(net, &shifted(-1.0), data, loss)?;
    let mut hg = g.zeros_like();
    for (k, a) in hg.0.iter_mut() {
        let (p, m) = (gp.get(k)?, gm.get(k)?);
        a.data
            .iter_mut()
            .zip(p.data.iter().zip(&m.data))
            .for_each(|(h, (x, y))| *h = (x - y) / (2.0 * eps));
    }
    Ok((g, hg))
}

/// `θ ⊙ H g` of each listed layer (higher is kept).
pub fn scores(net: &Network, theta0: &ParamSet, data: &Dataset, loss: Loss, layers: &[String]) -> Result<ParamSet> {
    let (_, hg) = hessian_gradient(net, theta0, data, loss, 1e-3)?;
    super::elementwise(theta0, &hg, layers, |w, h| w * h)
}
