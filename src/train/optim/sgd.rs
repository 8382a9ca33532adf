//! SGD with momentum, Nesterov momentum and (coupled) weight decay, with
//! PyTorch's update rule: `g ← g + λ w`; `b ← μ b + g`; `g ← g + μ b` (Nesterov) or
//! `g ← b`; `w ← w − η g`. Candle's own SGD has no momentum or weight decay.

use std::collections::BTreeMap;

use candle_core::{backprop::GradStore, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::params::{Array, ParamSet};
use crate::{Error, Result};

/// SGD hyperparameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SgdConfig {
    pub lr: f64,
    #[serde(default)]
    pub momentum: f64,
    #[serde(default)]
    pub weight_decay: f64,
    #[serde(default)]
    pub nesterov: bool,
}

/// The SGD optimizer; momentum buffers are keyed by parameter name.
#[derive(Debug)]
pub struct Sgd {
    pub config: SgdConfig,
    buffers: BTreeMap<String, Vec<f32>>,
    /// Variables bound through candle's [`candle_nn::Optimizer`] interface.
    vars: Vec<Var>,
    lr: f64,
}

impl Sgd {
    /// A fresh optimizer.
    pub fn new(config: SgdConfig) -> Self {
        let lr = config.lr;
        Sgd {
            config,
            buffers: BTreeMap::new(),
            vars: Vec::new(),
            lr,
        }
    }

    /// Updates one named parameter slice in place with learning rate `lr`.
    pub fn update(&mut self, name: &str, w: &mut [f32], g: &[f32], lr: f32) {
        let mu = self.config.momentum as f32;
        let wd = self.config.weight_decay as f32;
        if mu == 0.0 {
            super::par_zip2(w, g, |w, g| {
                for (wi, &gi) in w.iter_mut().zip(g) {
                    *wi -= lr * (gi + wd * *wi);
                }
            });
            return;
        }
        let buf = self
            .buffers
            .entry(name.to_string())
            .or_insert_with(|| vec![0.0; w.len()]);
        let nesterov = self.config.nesterov;
        super::par_zip3(w, g, buf, |w, g, buf| momentum_step(w, g, buf, (mu, wd, lr), nesterov));
    }

    /// Momentum buffers as a parameter set (names prefixed `momentum.`).
    /// The same update on device tensors (the trainer's device-resident
    /// path), in the same f32 operations and order as [`Sgd::update`]:
    /// returns the new weights and momentum buffer (none without momentum;
    /// a missing buffer starts at zero, as on the host).
    pub fn update_tensor(
        config: &SgdConfig,
        w: &Tensor,
        g: &Tensor,
        buf: Option<&Tensor>,
        lr: f32,
    ) -> candle_core::Result<(Tensor, Option<Tensor>)> {
        let mu = config.momentum as f32;
        let wd = config.weight_decay as f32;
        let gd = if wd != 0.0 {
            (g + w.affine(wd as f64, 0.0)?)?
        } else {
            g.clone()
        };
        if mu == 0.0 {
            return Ok(((w - gd.affine(lr as f64, 0.0)?)?, None));
        }
        let b = match buf {
            Some(b) => (b.affine(mu as f64, 0.0)? + &gd)?,
            None => gd.clone(),
        };
        let step = if config.nesterov {
            (&gd + b.affine(mu as f64, 0.0)?)?
        } else {
            b.clone()
        };
        Ok(((w - step.affine(lr as f64, 0.0)?)?, Some(b)))
    }

    pub fn state(&self) -> ParamSet {
        let mut s = ParamSet::new();
        for (k, v) in &self.buffers {
            s.insert(
                format!("momentum.{k}"),
                Array {
                    shape: vec![v.len()],
                    data: v.clone(),
                },
            );
        }
        s
    }

    /// Restores buffers saved by [`Sgd::state`].
    pub fn load_state(&mut self, s: &ParamSet) -> Result<()> {
        self.buffers.clear();
        for (k, a) in s.iter() {
            let name = k.strip_prefix("momentum.").ok_or_else(|| Error::Param {
                what: format!("SGD state entry `{k}` (expected names starting with `momentum.`)"),
            })?;
            self.buffers.insert(name.to_string(), a.data.clone());
        }
        Ok(())
    }
}

impl candle_nn::Optimizer for Sgd {
    type Config = SgdConfig;

    fn new(vars: Vec<Var>, config: SgdConfig) -> candle_core::Result<Self> {
        let mut s = Sgd::new(config);
        s.vars = vars.into_iter().filter(|v| v.dtype().is_float()).collect();
        Ok(s)
    }

    fn step(&mut self, grads: &GradStore) -> candle_core::Result<()> {
        let lr = self.lr as f32;
        let vars = self.vars.clone();
        super::step_vars(&vars, grads, |name, w, g| self.update(name, w, g, lr))
    }

    fn learning_rate(&self) -> f64 {
        self.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr;
    }
}

crate::simd::wide_fn! {
    /// One momentum step over a chunk: `b = mu b + (g + wd w)`, `w -= lr step`
    /// with `step = b` or, Nesterov, `g + wd w + mu b`, at the CPU's widest
    /// vector width ([`crate::simd`]; bit-identical to the portable loop).
    fn momentum_step(w: &mut [f32], g: &[f32], buf: &mut [f32], coef: (f32, f32, f32), nesterov: bool) {
        momentum_step_portable(w, g, buf, coef, nesterov)
    }
}

#[inline(always)]
fn momentum_step_portable(w: &mut [f32], g: &[f32], buf: &mut [f32], (mu, wd, lr): (f32, f32, f32), nesterov: bool) {
    let it = w.iter_mut().zip(g).zip(buf.iter_mut());
    if nesterov {
        for ((wi, &gi), bi) in it {
            let gd = gi + wd * *wi;
            *bi = mu * *bi + gd;
            *wi -= lr * (gd + mu * *bi);
        }
    } else {
        for ((wi, &gi), bi) in it {
            *bi = mu * *bi + (gi + wd * *wi);
            *wi -= lr * *bi;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dispatched step gives the portable loop's bits at every vector
    /// width the CPU has, with and without Nesterov, on lengths that are not
    /// multiples of a vector.
    #[test]
    fn momentum_step_matches_the_portable_loop_bit_for_bit() {
        let mut next = crate::simd::test_values(0x2545_f491, 1.0);
        for len in [1, 15, 16, 17, 1000] {
            let w0: Vec<f32> = (0..len).map(|_| next()).collect();
            let g: Vec<f32> = (0..len).map(|_| next()).collect();
            let b0: Vec<f32> = (0..len).map(|_| next()).collect();
            for nesterov in [false, true] {
                let coef = (0.9, 5e-4, 0.1);
                let (mut w2, mut b2) = (w0.clone(), b0.clone());
                momentum_step_portable(&mut w2, &g, &mut b2, coef, nesterov);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                crate::simd::at_each_width(|level| {
                    let (mut w1, mut b1) = (w0.clone(), b0.clone());
                    momentum_step(&mut w1, &g, &mut b1, coef, nesterov);
                    let at = format!("len {len}, nesterov {nesterov}, width level {level}");
                    assert_eq!(bits(&w1), bits(&w2), "weights, {at}");
                    assert_eq!(bits(&b1), bits(&b2), "buffer, {at}");
                });
            }
        }
    }
}
