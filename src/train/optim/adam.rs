//! Adam (Kingma & Ba 2015, Algorithm 1) with coupled L2 weight decay, as in
//! PyTorch's `torch.optim.Adam`: `g ← g + λ w`; `m ← β1 m + (1−β1) g`;
//! `v ← β2 v + (1−β2) g²`; `w ← w − η m̂ / (sqrt(v̂) + ε)`. AdamW
//! (Loshchilov & Hutter 2019, Algorithm 2; `torch.optim.AdamW`) decouples
//! the decay instead: `w ← w (1 − η λ)` before the same update with the raw
//! gradient.

use std::collections::BTreeMap;

use candle_core::{backprop::GradStore, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::params::{Array, ParamSet};
use crate::{Error, Result};

fn b1() -> f64 {
    0.9
}
fn b2() -> f64 {
    0.999
}
fn eps() -> f64 {
    1e-8
}

/// Adam hyperparameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdamConfig {
    pub lr: f64,
    #[serde(default = "b1")]
    pub beta1: f64,
    #[serde(default = "b2")]
    pub beta2: f64,
    #[serde(default = "eps")]
    pub eps: f64,
    #[serde(default)]
    pub weight_decay: f64,
}

/// The Adam optimizer; moments and step counts are keyed by parameter name.
#[derive(Debug)]
pub struct Adam {
    pub config: AdamConfig,
    /// AdamW: decoupled weight decay.
    pub decoupled: bool,
    moments: BTreeMap<String, (Vec<f32>, Vec<f32>, u64)>,
    vars: Vec<Var>,
    lr: f64,
}

impl Adam {
    /// A fresh optimizer.
    pub fn new(config: AdamConfig) -> Self {
        let lr = config.lr;
        Adam {
            config,
            decoupled: false,
            moments: BTreeMap::new(),
            vars: Vec::new(),
            lr,
        }
    }

    /// AdamW: the same moments, weight decay decoupled from the gradient.
    pub fn decoupled(config: AdamConfig) -> Self {
        Adam {
            decoupled: true,
            ..Adam::new(config)
        }
    }

    /// Updates one named parameter slice in place with learning rate `lr`.
    pub fn update(&mut self, name: &str, w: &mut [f32], g: &[f32], lr: f32) {
        let c = &self.config;
        let (b1, b2, eps, wd) = (c.beta1 as f32, c.beta2 as f32, c.eps as f32, c.weight_decay as f32);
        let (m, v, t) = self
            .moments
            .entry(name.to_string())
            .or_insert_with(|| (vec![0.0; w.len()], vec![0.0; w.len()], 0));
        *t += 1;
        let bc1 = 1.0 - (c.beta1).powi(*t as i32);
        let bc2 = 1.0 - (c.beta2).powi(*t as i32);
        let step = (lr as f64 / bc1) as f32;
        let inv_sqrt_bc2 = (1.0 / bc2.sqrt()) as f32;
        let decoupled = self.decoupled;
        let decay = 1.0 - lr * wd;
        let decay = decoupled.then_some(decay);
        super::par_zip4(w, g, m, v, |w, g, m, v| {
            adam_chunk(w, g, m, v, (b1, b2, eps, wd, step, inv_sqrt_bc2), decay)
        });
    }

    /// Moments and step counts as a parameter set (`adam_m.*`, `adam_v.*`, `adam_t.*`).
    /// The same update on device tensors (the trainer's device-resident
    /// path), in the same f32 operations and order as [`Adam::update`]:
    /// `t` is the step count after this step (1 for the first), `m`, `v`
    /// the moments (zero when missing). Returns the new `(w, m, v)`.
    #[allow(clippy::too_many_arguments)]
    pub fn update_tensor(
        config: &AdamConfig,
        decoupled: bool,
        w: &Tensor,
        g: &Tensor,
        m: Option<&Tensor>,
        v: Option<&Tensor>,
        t: u64,
        lr: f32,
    ) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
        let c = config;
        let (b1, b2, eps, wd) = (c.beta1 as f32, c.beta2 as f32, c.eps as f32, c.weight_decay as f32);
        let bc1 = 1.0 - (c.beta1).powi(t as i32);
        let bc2 = 1.0 - (c.beta2).powi(t as i32);
        let step = (lr as f64 / bc1) as f32;
        let inv_sqrt_bc2 = (1.0 / bc2.sqrt()) as f32;
        let (w, gd) = if decoupled {
            (w.affine((1.0 - lr * wd) as f64, 0.0)?, g.clone())
        } else if wd != 0.0 {
            (w.clone(), (g + w.affine(wd as f64, 0.0)?)?)
        } else {
            (w.clone(), g.clone())
        };
        let gm = gd.affine((1.0 - b1) as f64, 0.0)?;
        let m = match m {
            Some(m) => (m.affine(b1 as f64, 0.0)? + gm)?,
            None => gm,
        };
        let gv = (gd.affine((1.0 - b2) as f64, 0.0)? * &gd)?;
        let v = match v {
            Some(v) => (v.affine(b2 as f64, 0.0)? + gv)?,
            None => gv,
        };
        let denom = v.sqrt()?.affine(inv_sqrt_bc2 as f64, eps as f64)?;
        let w = (w - (m.affine(step as f64, 0.0)? / denom)?)?;
        Ok((w, m, v))
    }

    pub fn state(&self) -> ParamSet {
        let mut s = ParamSet::new();
        for (k, (m, v, t)) in &self.moments {
            s.insert(
                format!("adam_m.{k}"),
                Array {
                    shape: vec![m.len()],
                    data: m.clone(),
                },
            );
            s.insert(
                format!("adam_v.{k}"),
                Array {
                    shape: vec![v.len()],
                    data: v.clone(),
                },
            );
            // The step count is stored exactly as two 24-bit halves.
            let (hi, lo) = ((*t >> 24) as f32, (*t & 0xff_ffff) as f32);
            s.insert(
                format!("adam_t.{k}"),
                Array {
                    shape: vec![2],
                    data: vec![hi, lo],
                },
            );
        }
        s
    }

    /// Restores a state saved by [`Adam::state`].
    pub fn load_state(&mut self, s: &ParamSet) -> Result<()> {
        self.moments.clear();
        for (k, a) in s.iter() {
            if let Some(name) = k.strip_prefix("adam_m.") {
                let v = s.get(&format!("adam_v.{name}"))?;
                let t = s.get(&format!("adam_t.{name}"))?;
                if t.data.len() != 2 {
                    return Err(Error::Param {
                        what: format!("Adam step count for `{name}` has {} entries, expected 2", t.data.len()),
                    });
                }
                let steps = ((t.data[0] as u64) << 24) | (t.data[1] as u64);
                self.moments
                    .insert(name.to_string(), (a.data.clone(), v.data.clone(), steps));
            } else if !(k.starts_with("adam_v.") || k.starts_with("adam_t.")) {
                return Err(Error::Param {
                    what: format!("Adam state entry `{k}` (expected adam_m./adam_v./adam_t.)"),
                });
            }
        }
        Ok(())
    }
}

impl candle_nn::Optimizer for Adam {
    type Config = AdamConfig;

    fn new(vars: Vec<Var>, config: AdamConfig) -> candle_core::Result<Self> {
        let mut s = Adam::new(config);
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
    /// Adam's update of one chunk; `coef = (beta1, beta2, eps, weight decay,
    /// step, 1/sqrt(bias correction 2))`, `decay`: AdamW's `1 - lr wd`
    /// (decoupled; then `wd` is not added to the gradient). At the CPU's
    /// widest vector width ([`crate::simd`]; bit-identical to the portable
    /// loop: `sqrt` and division are correctly rounded at every width).
    fn adam_chunk(w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], coef: (f32, f32, f32, f32, f32, f32), decay: Option<f32>) {
        let (b1, b2, eps, wd, step, inv_sqrt_bc2) = coef;
        for (((wi, &gi), mi), vi) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            let gd = match decay {
                Some(decay) => {
                    *wi *= decay;
                    gi
                }
                None => gi + wd * *wi,
            };
            *mi = b1 * *mi + (1.0 - b1) * gd;
            *vi = b2 * *vi + (1.0 - b2) * gd * gd;
            *wi -= step * *mi / (vi.sqrt() * inv_sqrt_bc2 + eps);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adam's chunk update gives the baseline loop's bits at every vector
    /// width the CPU has, coupled and decoupled, on lengths that are not
    /// multiples of a vector.
    #[test]
    fn adam_chunk_gives_the_same_bits_at_every_width() {
        let mut next = crate::simd::test_values(0x1b87_3593, 1.0);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for len in [1, 15, 16, 17, 1000] {
            let w0: Vec<f32> = (0..len).map(|_| next()).collect();
            let g: Vec<f32> = (0..len).map(|_| next()).collect();
            let m0: Vec<f32> = (0..len).map(|_| next() * 0.1).collect();
            let v0: Vec<f32> = (0..len).map(|_| next().abs() * 0.01).collect();
            for decay in [None, Some(0.999)] {
                let coef = (0.9, 0.999, 1e-8, 5e-4, 1e-3, 1.3);
                let mut want = None;
                crate::simd::at_each_width(|level| {
                    let (mut w, mut m, mut v) = (w0.clone(), m0.clone(), v0.clone());
                    adam_chunk(&mut w, &g, &mut m, &mut v, coef, decay);
                    let got = (bits(&w), bits(&m), bits(&v));
                    match &want {
                        None => want = Some(got),
                        Some(want) => assert!(want == &got, "len {len}, decay {decay:?}, width level {level}"),
                    }
                });
            }
        }
    }
}
