//! Plain convolutional networks: blocks of `convs_per_block` (k x k
//! convolution, stride 1, "same" or "valid" padding, ReLU), each block ending
//! in a 2x2 max-pool, then fully connected ReLU layers and a linear output.
//! This covers Frankle & Carbin 2019's Conv-2/4/6 (Fig. 2: pairs of 3x3
//! convolutions before each pool, 64/128/256 channels, FC 256-256-10) and
//! LeNet-5 (5x5 valid convolutions 6/16, FC 120-84).
//!
//! Parameters: `conv{i}.weight` `[c_out, c_in, k, k]`, `conv{i}.bias`
//! `[c_out]` (numbered over every convolution), `fc{j}.weight` `[out, in]`,
//! `fc{j}.bias` `[out]`; the features are flattened in (channel, row, column)
//! order as in PyTorch. Kaiming-normal weights (`N(0, 2/fan_in)`), zero
//! biases. On the CPU it trains through the slice path of
//! [`super::conv_fast`] (direct 3x3 convolutions, im2col + GEMM for the
//! others); candle's autodiff is the reference and the path on other devices.

use std::collections::BTreeMap;

use candle_core::Tensor;

use crate::params::{Array, ParamSet};
use crate::{Error, Result};

/// Padding of every convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Padding {
    /// `(k − 1) / 2` on each side: the image keeps its size (odd k).
    #[default]
    Same,
    /// None: each convolution shrinks the image by `k − 1`.
    Valid,
}

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
    /// Kernel size k (k x k convolutions).
    pub kernel: usize,
    pub padding: Padding,
    /// Convolutions per block (each block ends in a 2x2 max-pool).
    pub convs_per_block: usize,
}

/// One convolution of a [`ConvNet`], with the sizes it sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvLayer {
    pub c_in: usize,
    pub c_out: usize,
    /// Input height and width.
    pub h: usize,
    pub w: usize,
    /// Output height and width (before any pool).
    pub ho: usize,
    pub wo: usize,
    pub k: usize,
    pub pad: usize,
    /// Stride (1 in a [`ConvNet`]; 2 in a ResNet's downsampling convolutions).
    pub stride: usize,
    /// Whether a 2x2 max-pool follows.
    pub pool: bool,
}

impl ConvNet {
    /// Builds the network with 3x3 "same" convolutions, one per block;
    /// errors if a size is zero or pooling shrinks the image to nothing.
    pub fn new(input_shape: [usize; 3], channels: Vec<usize>, hidden: Vec<usize>, output_dim: usize) -> Result<Self> {
        Self::with_layout(input_shape, channels, hidden, output_dim, 3, Padding::Same, 1)
    }

    /// Builds the network with `convs_per_block` k x k convolutions per
    /// block; errors if a size is zero, k is even with "same" padding, or
    /// the convolutions and pools shrink the image to nothing.
    pub fn with_layout(
        input_shape: [usize; 3],
        channels: Vec<usize>,
        hidden: Vec<usize>,
        output_dim: usize,
        kernel: usize,
        padding: Padding,
        convs_per_block: usize,
    ) -> Result<Self> {
        if kernel == 0 || (padding == Padding::Same && kernel.is_multiple_of(2)) {
            return Err(Error::config(
                "model.kernel",
                "an odd kernel size >= 1 with \"same\" padding (any size >= 1 with \"valid\")",
                kernel,
            ));
        }
        if convs_per_block == 0 {
            return Err(Error::config("model.convs_per_block", ">= 1", 0));
        }
        if input_shape.contains(&0) {
            return Err(Error::config(
                "input shape",
                "(c, h, w) > 0",
                format!("{input_shape:?}"),
            ));
        }
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
            kernel,
            padding,
            convs_per_block,
        };
        if net.layers().is_none() {
            return Err(Error::config(
                "model.channels",
                format!(
                    "few enough conv blocks for {}x{} inputs ({} convolutions of {k}x{k} with {padding:?} padding, then a 2x2 pool, per block)",
                    input_shape[1],
                    input_shape[2],
                    convs_per_block,
                    k = kernel
                ),
                format!("{} blocks, which shrink the image to nothing", net.channels.len()),
            ));
        }
        Ok(net)
    }

    /// Every convolution with its sizes; None when the image shrinks to nothing.
    fn layers(&self) -> Option<Vec<ConvLayer>> {
        let [mut c_in, mut h, mut w] = self.input_shape;
        let k = self.kernel;
        let pad = match self.padding {
            Padding::Same => (k - 1) / 2,
            Padding::Valid => 0,
        };
        let mut out = Vec::new();
        for &c in &self.channels {
            for j in 0..self.convs_per_block {
                let (ho, wo) = ((h + 2 * pad).checked_sub(k - 1)?, (w + 2 * pad).checked_sub(k - 1)?);
                if ho == 0 || wo == 0 {
                    return None;
                }
                let pool = j + 1 == self.convs_per_block;
                out.push(ConvLayer {
                    c_in,
                    c_out: c,
                    h,
                    w,
                    ho,
                    wo,
                    k,
                    pad,
                    stride: 1,
                    pool,
                });
                c_in = c;
                (h, w) = if pool { (ho / 2, wo / 2) } else { (ho, wo) };
                if h == 0 || w == 0 {
                    return None;
                }
            }
        }
        Some(out)
    }

    /// Every convolution with its sizes.
    pub fn conv_layers(&self) -> Vec<ConvLayer> {
        self.layers().unwrap_or_default()
    }

    /// Size of the flattened features after the last pool.
    pub fn flat_dim(&self) -> usize {
        match self.conv_layers().last() {
            Some(l) => l.c_out * (l.ho / 2) * (l.wo / 2),
            None => self.input_shape.iter().product(),
        }
    }

    /// Names and shapes of all parameters.
    pub fn param_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let mut out = Vec::new();
        for (i, l) in self.conv_layers().iter().enumerate() {
            out.push((format!("conv{}.weight", i + 1), vec![l.c_out, l.c_in, l.k, l.k]));
            out.push((format!("conv{}.bias", i + 1), vec![l.c_out]));
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
                super::kaiming_normal(&shape, rng)
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
        for (i, l) in self.conv_layers().iter().enumerate() {
            let wt = get(format!("conv{}.weight", i + 1))?;
            let b = get(format!("conv{}.bias", i + 1))?;
            a = a.conv2d(wt, l.pad, 1, 1, 1)?;
            a = a.broadcast_add(&b.reshape((1, b.dim(0)?, 1, 1))?)?;
            a = a.relu()?;
            if l.pool {
                a = max_pool_2x2(&a)?;
            }
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

/// 2x2 max-pool with stride 2 of `[n, c, h, w]` (an odd last row or column
/// is dropped), whose gradient goes to one maximum of each window, the
/// first in PyTorch's scan order (as PyTorch's `max_pool2d` and this
/// crate's CPU path): the window's argmax, then a gather. Not candle's
/// `max_pool2d`: its backward pass in candle 0.11 (`backprop.rs`,
/// `Op::MaxPool2D`) multiplies the gradient by the window's average of the
/// max mask, so a unique max gets 1/4 of its gradient (found by this
/// crate's finite-difference check, tests/conv_fast.rs). Nor a max
/// reduction: its backward gives every tied maximum the whole gradient,
/// which a window of equal values (the constant padding of a cropped
/// image) has (tests/vgg.rs).
pub fn max_pool_2x2(a: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = a.dims4()?;
    let (ph, pw) = (h / 2, w / 2);
    let a = a.narrow(2, 0, 2 * ph)?.narrow(3, 0, 2 * pw)?.contiguous()?;
    let windows = a
        .reshape((n, c, ph, 2, pw, 2))?
        .permute((0, 1, 2, 4, 3, 5))?
        .contiguous()?
        .reshape((n, c, ph, pw, 4))?;
    let first_max = windows.argmax_keepdim(4)?;
    Ok(windows.gather(&first_max, 4)?.squeeze(4)?)
}
