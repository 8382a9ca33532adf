//! Pointwise nonlinearities and their derivatives.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::Result;

/// The nonlinearity of a network's hidden layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Relu,
    Tanh,
    Erf,
    /// The identity (a deep linear network).
    Identity,
    /// sign(z) (0 at 0, as `torch.sign`), for binary-activation networks
    /// (multi-prize tickets, [`crate::experiments::multi_prize`]). Its "derivative" is
    /// the straight-through estimate of Bi-Real Net (Liu et al. 2018), the
    /// quadratic spline `2 (1 − |z|)` on |z| < 1 and 0 outside, as in
    /// chrundle/biprop `models/frankle.py` `F_BinAct.backward`: it trains
    /// scores, it is not sign's derivative (0 almost everywhere). Model
    /// configs refuse it; only the multi-prize experiment builds such a net.
    Sign,
}

impl Activation {
    /// phi(z).
    #[inline]
    pub fn apply(self, z: f32) -> f32 {
        match self {
            Activation::Relu => z.max(0.0),
            Activation::Tanh => z.tanh(),
            Activation::Erf => candle_core::cpu::erf::erf_f32(z),
            Activation::Identity => z,
            Activation::Sign => sign(z),
        }
    }

    /// phi'(z).
    #[inline]
    pub fn derivative(self, z: f32) -> f32 {
        match self {
            Activation::Relu => {
                if z > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::Tanh => {
                let t = z.tanh();
                1.0 - t * t
            }
            Activation::Erf => std::f32::consts::FRAC_2_SQRT_PI * (-z * z).exp(),
            Activation::Identity => 1.0,
            Activation::Sign => 2.0 * (1.0 - z.abs()).max(0.0),
        }
    }

    /// `out[i] = phi(z[i])`, with the activation dispatched once per slice
    /// (so each loop is branch-free and vectorizes; ReLU's at the CPU's
    /// widest vector width, [`crate::simd`]).
    pub fn apply_slice(self, z: &[f32], out: &mut [f32]) {
        match self {
            Activation::Relu => relu(z, out),
            Activation::Tanh => out.iter_mut().zip(z).for_each(|(o, &v)| *o = v.tanh()),
            Activation::Erf => out
                .iter_mut()
                .zip(z)
                .for_each(|(o, &v)| *o = candle_core::cpu::erf::erf_f32(v)),
            Activation::Identity => out.copy_from_slice(z),
            Activation::Sign => out.iter_mut().zip(z).for_each(|(o, &v)| *o = sign(v)),
        }
    }

    /// `g[i] *= phi'(z[i])`, dispatched once per slice.
    pub fn mul_derivative_slice(self, z: &[f32], g: &mut [f32]) {
        match self {
            Activation::Relu => relu_mask(z, g),
            Activation::Identity => {}
            other => g.iter_mut().zip(z).for_each(|(g, &v)| *g *= other.derivative(v)),
        }
    }

    /// phi applied to a candle tensor (differentiable by candle's autodiff).
    pub fn apply_tensor(self, z: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Activation::Relu => z.relu()?,
            Activation::Tanh => z.tanh()?,
            Activation::Erf => z.erf()?,
            Activation::Identity => z.clone(),
            // Candle's autodiff would give sign a zero gradient, silently.
            Activation::Sign => return Err(crate::Error::invalid(
                "activation on the candle path",
                "relu, tanh, erf or identity (sign trains only on the slice path, with its straight-through estimate)",
                "sign",
            )),
        })
    }

    /// phi'(z) of a candle tensor (not differentiated further): the
    /// back-propagated derivatives of the structured NTK on a device.
    pub fn derivative_tensor(self, z: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Activation::Relu => z.gt(0.0)?.to_dtype(z.dtype())?,
            Activation::Tanh => {
                let t = z.tanh()?;
                t.sqr()?.affine(-1.0, 1.0)?
            }
            Activation::Erf => (z.sqr()?.neg()?.exp()? * std::f64::consts::FRAC_2_SQRT_PI)?,
            Activation::Identity => z.ones_like()?,
            Activation::Sign => (z.abs()?.affine(-1.0, 1.0)?.relu()? * 2.0)?,
        })
    }

    /// The name used in configs.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
            Activation::Erf => "erf",
            Activation::Identity => "identity",
            Activation::Sign => "sign",
        }
    }
}

/// sign(z), 0 at 0 (as `torch.sign`).
#[inline]
fn sign(z: f32) -> f32 {
    if z > 0.0 {
        1.0
    } else if z < 0.0 {
        -1.0
    } else {
        0.0
    }
}

crate::simd::wide_fn! {
    /// `g = 0` where `z <= 0`: ReLU's derivative applied to a gradient. A select,
    /// no arithmetic, so the result is the same at every vector width; run at
    /// the CPU's widest ([`crate::simd`]).
    fn relu_mask(z: &[f32], g: &mut [f32]) {
        g.iter_mut().zip(z).for_each(|(g, &v)| {
            if v <= 0.0 {
                *g = 0.0
            }
        })
    }
}

crate::simd::wide_fn! {
    /// `out = max(z, 0)`, at the CPU's widest vector width.
    fn relu(z: &[f32], out: &mut [f32]) {
        out.iter_mut().zip(z).for_each(|(o, &v)| *o = v.max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ReLU and its derivative mask give the baseline loop's bits at every
    /// vector width the CPU has (zeros, negative zeros and lengths that are
    /// not multiples of a vector included).
    #[test]
    fn relu_loops_give_the_same_bits_at_every_width() {
        for len in [1usize, 15, 16, 17, 1000] {
            let z: Vec<f32> = (0..len)
                .map(|i| [((i as f32) * 0.37).sin(), 0.0, -0.0][i % 3])
                .collect();
            let g0: Vec<f32> = (0..len).map(|i| ((i as f32) * 0.11).cos()).collect();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let mut want = None;
            crate::simd::at_each_width(|level| {
                let mut out = vec![9.0; len];
                Activation::Relu.apply_slice(&z, &mut out);
                let mut g = g0.clone();
                Activation::Relu.mul_derivative_slice(&z, &mut g);
                let got = (bits(&out), bits(&g));
                match &want {
                    None => want = Some(got),
                    Some(want) => assert!(want == &got, "len {len}, width level {level}"),
                }
            });
        }
    }
}
