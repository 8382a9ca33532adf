//! A small LeNet-5-style convolutional network: `k` blocks of
//! (3x3 convolution, padding 1, ReLU, 2x2 max-pool), then fully connected ReLU
//! layers and a linear output (in the spirit of the Conv-2/4/6 networks of
//! Frankle & Carbin 2019, sized for 8x8 and 28x28 images).
//!
//! Parameters: `conv{i}.weight` `[c_out, c_in, 3, 3]`, `conv{i}.bias` `[c_out]`,
//! `fc{j}.weight` `[out, in]`, `fc{j}.bias` `[out]`. Kaiming-normal weights
//! (`N(0, 2/fan_in)`), zero biases. Trained through candle's autodiff.

use std::collections::BTreeMap;

use candle_core::Tensor;
use rand_distr::{Distribution, StandardNormal};

use crate::params::{Array, ParamSet};
use crate::{Error, Result};

/// The convolutional network.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvNet {
    /// `(channels, height, width)` of one input.
    pub input_shape: [usize; 3],
    /// Output channels of each conv block.
    pub channels: Vec<usize>,
    /// Widths of the fully connected hidden layers.
    pub hidden: Vec<usize>,
    pub output_dim: usize,
}

impl ConvNet {
    /// Builds the network; errors if a size is zero or pooling shrinks the image to nothing.
    pub fn new(input_shape: [usize; 3], channels: Vec<usize>, hidden: Vec<usize>, output_dim: usize) -> Result<Self> {
        if channels.is_empty() || channels.contains(&0) {
            return Err(Error::config(
                "model.channels",
                "a non-empty list of counts > 0",
                format!("{channels:?}"),
            ));
        }
        if hidden.contains(&0) || output_dim == 0 {
            return Err(Error::config("model.hidden", "widths > 0", format!("{hidden:?}")));
        }
        let net = ConvNet {
            input_shape,
            channels,
            hidden,
            output_dim,
        };
        let (h, w) = net.feature_hw();
        if h == 0 || w == 0 {
            return Err(Error::config(
                "model.channels",
                format!(
                    "at most {} conv blocks for {}x{} inputs (each halves the image)",
                    max_blocks(input_shape),
                    input_shape[1],
                    input_shape[2]
                ),
                net.channels.len(),
            ));
        }
        Ok(net)
    }

    fn feature_hw(&self) -> (usize, usize) {
        let mut h = self.input_shape[1];
        let mut w = self.input_shape[2];
        for _ in &self.channels {
            h /= 2;
            w /= 2;
        }
        (h, w)
    }

    fn flat_dim(&self) -> usize {
        let (h, w) = self.feature_hw();
        h * w * self.channels.last().copied().unwrap_or(1)
    }

    /// Names and shapes of all parameters.
    pub fn param_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let mut out = Vec::new();
        let mut c_in = self.input_shape[0];
        for (i, &c) in self.channels.iter().enumerate() {
            out.push((format!("conv{}.weight", i + 1), vec![c, c_in, 3, 3]));
            out.push((format!("conv{}.bias", i + 1), vec![c]));
            c_in = c;
        }
        let mut d_in = self.flat_dim();
        let mut widths = self.hidden.clone();
        widths.push(self.output_dim);
        for (j, &d) in widths.iter().enumerate() {
            out.push((format!("fc{}.weight", j + 1), vec![d, d_in]));
            out.push((format!("fc{}.bias", j + 1), vec![d]));
            d_in = d;
        }
        out
    }

    /// Weight tensors (conv kernels and dense matrices).
    pub fn prunable(&self) -> Vec<String> {
        self.param_shapes()
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| n.ends_with(".weight"))
            .collect()
    }

    /// Kaiming-normal weights, zero biases.
    pub fn init(&self, rng: &mut crate::rng::Rng) -> ParamSet {
        let mut p = ParamSet::new();
        for (name, shape) in self.param_shapes() {
            let n: usize = shape.iter().product();
            let data = if name.ends_with(".weight") {
                let fan_in: usize = shape[1..].iter().product();
                let s = (2.0 / fan_in as f32).sqrt();
                (0..n)
                    .map(|_| {
                        let z: f32 = StandardNormal.sample(rng);
                        z * s
                    })
                    .collect()
            } else {
                vec![0.0; n]
            };
            p.insert(name, Array { shape, data });
        }
        p
    }

    /// Forward pass. `x`: `[n, c*h*w]` or `[n, c, h, w]`; returns `[n, output_dim]`.
    pub fn forward_tensor(&self, p: &BTreeMap<String, Tensor>, x: &Tensor) -> Result<Tensor> {
        let get = |k: String| {
            p.get(&k).ok_or_else(|| Error::Param {
                what: format!("missing `{k}`"),
            })
        };
        let n = x.dim(0)?;
        let [c, h, w] = self.input_shape;
        let mut a = x.reshape((n, c, h, w))?;
        for i in 1..=self.channels.len() {
            let wt = get(format!("conv{i}.weight"))?;
            let b = get(format!("conv{i}.bias"))?;
            a = a.conv2d(wt, 1, 1, 1, 1)?;
            a = a.broadcast_add(&b.reshape((1, b.dim(0)?, 1, 1))?)?;
            a = a.relu()?.max_pool2d(2)?;
        }
        let mut a = a.flatten_from(1)?;
        let layers = self.hidden.len() + 1;
        for j in 1..=layers {
            let wt = get(format!("fc{j}.weight"))?;
            let b = get(format!("fc{j}.bias"))?;
            a = a.matmul(&wt.t()?)?.broadcast_add(b)?;
            if j < layers {
                a = a.relu()?;
            }
        }
        Ok(a)
    }
}

fn max_blocks(shape: [usize; 3]) -> usize {
    let m = shape[1].min(shape[2]).max(1);
    (usize::BITS - 1 - m.leading_zeros()) as usize
}
