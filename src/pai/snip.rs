//! SNIP (Lee et al. 2019, "SNIP: single-shot network pruning based on
//! connection sensitivity", Eq. 6): the sensitivity of the loss to each
//! connection, `|∂L/∂c|` at `c = 1` for `w ⊙ c`, which is `|g ⊙ θ|` with `g`
//! the loss gradient on a batch of training data (Synaptic-Flow
//! `Pruners/pruners.py`, `SNIP`: summed over a loader of 10 examples per
//! class; here one batch of them, the same ranking up to a constant).

use candle_core::Device;

use crate::data::Dataset;
use crate::models::Network;
use crate::params::ParamSet;
use crate::train::objective::Batch;
use crate::train::{Loss, Supervised, Trainable};
use crate::Result;

/// The mean loss gradient of `net` at `params` over all of `data`.
pub(crate) fn gradient(net: &Network, params: &ParamSet, data: &Dataset, loss: Loss) -> Result<ParamSet> {
    let idx: Vec<usize> = (0..data.len()).collect();
    let mut b = Batch::default();
    data.gather(&idx, &mut b.x, &mut b.t, &mut b.y);
    let mut model = Supervised::new(net.clone(), loss, &Device::Cpu);
    let mut g = params.zeros_like();
    model.loss_and_grad(params, &b, &mut g)?;
    Ok(g)
}

/// `|g ⊙ θ|` of each listed layer, `g` the loss gradient on `data`.
pub fn scores(net: &Network, theta0: &ParamSet, data: &Dataset, loss: Loss, layers: &[String]) -> Result<ParamSet> {
    let g = gradient(net, theta0, data, loss)?;
    super::elementwise(theta0, &g, layers, |w, g| (w * g).abs())
}
