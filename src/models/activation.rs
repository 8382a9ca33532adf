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
        }
    }

    /// `out[i] = phi(z[i])`, with the activation dispatched once per slice
    /// (so each loop is branch-free and vectorizes).
    pub fn apply_slice(self, z: &[f32], out: &mut [f32]) {
        match self {
            Activation::Relu => out.iter_mut().zip(z).for_each(|(o, &v)| *o = v.max(0.0)),
            Activation::Tanh => out.iter_mut().zip(z).for_each(|(o, &v)| *o = v.tanh()),
            Activation::Erf => out
                .iter_mut()
                .zip(z)
                .for_each(|(o, &v)| *o = candle_core::cpu::erf::erf_f32(v)),
            Activation::Identity => out.copy_from_slice(z),
        }
    }

    /// `g[i] *= phi'(z[i])`, dispatched once per slice.
    pub fn mul_derivative_slice(self, z: &[f32], g: &mut [f32]) {
        match self {
            Activation::Relu => g.iter_mut().zip(z).for_each(|(g, &v)| {
                if v <= 0.0 {
                    *g = 0.0
                }
            }),
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
        })
    }

    /// The name used in configs.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
            Activation::Erf => "erf",
            Activation::Identity => "identity",
        }
    }
}
