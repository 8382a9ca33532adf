//! The CIFAR VGG networks with BatchNorm as open_lth builds them
//! (`models/cifar_vgg.py`, `cifar_vgg_{11,13,16,19}`; Simonyan & Zisserman
//! 2015, Table 1, configurations A, B, D, E, with BatchNorm and one output
//! layer, the CIFAR adaptation Frankle & Carbin 2019 and Frankle et al. 2020
//! train): 3x3 "same" convolutions, each followed by BatchNorm and ReLU,
//! with 2x2 max-pools between stages; an average pool to 1x1 (open_lth's
//! `AvgPool2d(2)` on the 2x2 map a 32x32 image leaves; here a global
//! average, the same at 32x32 and defined at any size); one linear layer.
//!
//! Plans (channels, `M` a max-pool):
//! - VGG-11: 64 M 128 M 256 256 M 512 512 M 512 512
//! - VGG-13: 64 64 M 128 128 M 256 256 M 512 512 M 512 512
//! - VGG-16: 64 64 M 128 128 M 256 256 256 M 512 512 512 M 512 512 512
//! - VGG-19: 64 64 M 128 128 M 256 256 256 256 M 512 512 512 512 M 512 512 512 512
//!
//! `width_multiplier` multiplies every stage's channels (1 is the paper's
//! network).
//!
//! Parameters (open_lth's names, the index counting pools as
//! `nn.Sequential` does): `layers.{i}.conv.weight`, `layers.{i}.bn.{weight,bias}`,
//! `fc.{weight,bias}`. Prunable: every convolution and `fc.weight` (open_lth's
//! VGG default ignores `fc.weight` in pruning: `pruning_layers_to_ignore`).
//! Init as open_lth's default for these models: `kaiming_normal` weights,
//! `U(0, 1)` BatchNorm scales, zero shifts and output bias.
//!
//! Named deviations from open_lth: the convolutions have no bias (a bias
//! before BatchNorm is removed by its mean subtraction in training and in the
//! calibrated evaluation of [`super::resnet`], so it never changes an
//! output; open_lth keeps 4,224 such parameters in VGG-16); evaluation
//! normalizes with statistics recomputed over calibration data, as for the
//! ResNet ([`super::resnet`]'s module doc).
//!
//! On the CPU it trains through the slice path below (the ResNet's
//! convolutions and BatchNorm, the conv nets' max-pool); candle's autodiff
//! ([`Vgg::forward_tensor`]) is the reference (tests/vgg.rs) and the path on
//! other devices.

use std::collections::BTreeMap;

use candle_core::Tensor;

use super::conv_fast::{conv_backward, pool_forward, pool_relu_backward};
use super::resnet::{
    batch_norm_names, conv_bn_param_shapes, conv_bn_tensor, conv_prunable, init_with_batch_norm, BnStats, ResConv,
};
use super::resnet_fast::{bn_backward, conv_bn, pool_fc_backward, pool_fc_forward, to_cnhw, After, Before, BnSaved};
use crate::params::ParamSet;
use crate::{Error, Result};

/// A VGG network.
#[derive(Clone, Debug, PartialEq)]
pub struct Vgg {
    /// `(channels, height, width)` of one input.
    pub input_shape: [usize; 3],
    /// 11, 13, 16 or 19.
    pub depth: usize,
    /// Channel multiplier (1: the paper's 64 ... 512).
    pub multiplier: usize,
    pub output_dim: usize,
}

/// A plan entry: a convolution's channels, or a max-pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Spec {
    Conv(usize),
    Pool,
}

impl Vgg {
    /// Errors unless the depth is 11, 13, 16 or 19, the width and classes are
    /// positive, and the image survives the four 2x2 pools (at least 16x16).
    pub fn new(input_shape: [usize; 3], depth: usize, multiplier: usize, output_dim: usize) -> Result<Self> {
        if ![11, 13, 16, 19].contains(&depth) {
            return Err(Error::config("model.depth", "11, 13, 16 or 19 (VGG)", depth));
        }
        if multiplier == 0 {
            return Err(Error::config("model.width_multiplier", "> 0", multiplier));
        }
        if output_dim == 0 || input_shape[0] == 0 {
            return Err(Error::config(
                "VGG input channels and classes",
                "> 0",
                format!("{} channels, {output_dim} classes", input_shape[0]),
            ));
        }
        let [_, h, w] = input_shape;
        if h < 16 || w < 16 {
            return Err(Error::config(
                "input shape",
                format!("images of at least 16x16 for VGG-{depth} (four 2x2 max-pools; CIFAR is 32x32)"),
                format!("{h}x{w}"),
            ));
        }
        Ok(Vgg {
            input_shape,
            depth,
            multiplier,
            output_dim,
        })
    }

    /// The plan: five stages of 64, 128, 256, 512, 512 channels with this
    /// many convolutions each, a max-pool between stages.
    fn plan(&self) -> Vec<Spec> {
        let per_stage: [usize; 5] = match self.depth {
            11 => [1, 1, 2, 2, 2],
            13 => [2, 2, 2, 2, 2],
            16 => [2, 2, 3, 3, 3],
            _ => [2, 2, 4, 4, 4],
        };
        let mut plan = Vec::new();
        for (stage, (&convs, ch)) in per_stage.iter().zip([64, 128, 256, 512, 512]).enumerate() {
            if stage > 0 {
                plan.push(Spec::Pool);
            }
            plan.extend(std::iter::repeat_n(Spec::Conv(ch), convs));
        }
        plan
    }

    /// Every convolution in order, each marked `pool` when a max-pool follows.
    pub fn convs(&self) -> Vec<ResConv> {
        let plan = self.plan();
        let [mut c, mut h, mut w] = self.input_shape;
        let mut out: Vec<ResConv> = Vec::new();
        for (i, s) in plan.iter().enumerate() {
            match *s {
                Spec::Conv(ch) => {
                    let f = ch * self.multiplier;
                    let name = |s: &str| format!("layers.{i}.{s}");
                    out.push(ResConv::new(name("conv"), name("bn"), c, f, h, w, 3, 1));
                    c = f;
                }
                Spec::Pool => {
                    if let Some(last) = out.last_mut() {
                        last.layer.pool = true;
                    }
                    (h, w) = (h / 2, w / 2);
                }
            }
        }
        out
    }

    /// Channels at the average pool.
    pub fn features(&self) -> usize {
        512 * self.multiplier
    }

    /// Names and shapes of all parameters, in layer order (`fc` last).
    pub fn param_shapes(&self) -> Vec<(String, Vec<usize>)> {
        conv_bn_param_shapes(&self.convs(), self.output_dim, self.features())
    }

    /// Names of BatchNorm parameters (never pruned).
    pub fn batch_norm_params(&self) -> Vec<String> {
        batch_norm_names(&self.convs())
    }

    /// Convolution weights and `fc.weight`, in layer order.
    pub fn prunable(&self) -> Vec<String> {
        conv_prunable(&self.convs())
    }

    /// Kaiming-normal weights, `U(0, 1)` BatchNorm scales, zero shifts and bias.
    pub fn init(&self, rng: &mut crate::rng::Rng) -> ParamSet {
        init_with_batch_norm(self.param_shapes(), &self.batch_norm_params(), rng)
    }

    /// Forward pass in candle ops. `x`: `[n, c·h·w]`; returns `[n, outputs]`.
    /// `stats`: None normalizes by the batch's own statistics (training),
    /// Some by those given (evaluation). With `record`, the statistics used
    /// are written there (copied to the host).
    pub fn forward_tensor(
        &self,
        p: &BTreeMap<String, Tensor>,
        x: &Tensor,
        stats: Option<&BnStats>,
        mut record: Option<&mut BnStats>,
    ) -> Result<Tensor> {
        let get = |k: &str| {
            p.get(k).ok_or_else(|| Error::Param {
                what: format!("missing `{k}`"),
            })
        };
        let n = x.dim(0)?;
        let [c, h, w] = self.input_shape;
        let mut a = x.reshape((n, c, h, w))?;
        for l in self.convs() {
            a = conv_bn_tensor(p, &a, &l, stats, record.as_deref_mut())?.relu()?;
            if l.pool {
                a = super::conv::max_pool_2x2(&a)?;
            }
        }
        let a = a.mean(3)?.mean(2)?;
        Ok(a.matmul(&get("fc.weight")?.t()?)?.broadcast_add(get("fc.bias")?)?)
    }
}

/// Buffers of the CPU forward and backward passes, kept between steps.
#[derive(Clone, Debug, Default)]
pub struct VggWorkspace {
    /// Batch size of the last forward pass.
    pub n: usize,
    /// The input in CNHW.
    x: Vec<f32>,
    /// Per convolution: what its BatchNorm keeps, im2col columns (or the
    /// padded input), the post-ReLU output, and after a pool the pooled
    /// output.
    bn: Vec<BnSaved>,
    cols: Vec<Vec<f32>>,
    act: Vec<Vec<f32>>,
    pooled: Vec<Vec<f32>>,
    /// Averaged features `[n, features]`.
    feat: Vec<f32>,
    /// The network output `[n, outputs]`.
    out: Vec<f32>,
    // Backward scratch.
    d: Vec<f32>,
    d_prev: Vec<f32>,
    dz: Vec<f32>,
    dinp: Vec<f32>,
    dcols: Vec<f32>,
    dfeat: Vec<f32>,
}

impl VggWorkspace {
    /// The network output `[n, outputs]` of the last forward pass.
    pub fn output(&self) -> &[f32] {
        &self.out
    }
}

fn param<'a>(p: &'a ParamSet, name: &str) -> Result<&'a [f32]> {
    Ok(&p.get(name)?.data)
}

impl Vgg {
    /// Slice forward pass (CNHW inside). `x`: `[n, c·h·w]`; the output is
    /// `ws.output()`. `stats`: None normalizes each BatchNorm by the batch's
    /// statistics (training; then [`Vgg::backward_fast`] may follow), Some by
    /// those given (evaluation). With `record`, the statistics used are written there.
    pub fn forward_fast(
        &self,
        p: &ParamSet,
        x: &[f32],
        n: usize,
        stats: Option<&BnStats>,
        mut record: Option<&mut BnStats>,
        ws: &mut VggWorkspace,
    ) -> Result<()> {
        to_cnhw(self.input_shape, x, n, "VGG input", &mut ws.x)?;
        ws.n = n;
        let convs = self.convs();
        let k = convs.len();
        ws.bn.resize(k, BnSaved::default());
        for v in [&mut ws.cols, &mut ws.act, &mut ws.pooled] {
            v.resize(k, Vec::new());
        }
        for (li, l) in convs.iter().enumerate() {
            let (done, rest) = ws.act.split_at_mut(li);
            let inp: &[f32] = match li {
                0 => &ws.x,
                _ if convs[li - 1].pool => &ws.pooled[li - 1],
                _ => &done[li - 1],
            };
            conv_bn(
                l,
                p,
                inp,
                n,
                stats,
                record.as_deref_mut(),
                After::Relu,
                &mut ws.bn[li],
                &mut ws.cols[li],
                &mut rest[0],
            )?;
            if l.pool {
                pool_forward(l, n, &ws.act[li], &mut ws.pooled[li]);
            }
        }
        let last = if convs[k - 1].pool {
            &ws.pooled[k - 1]
        } else {
            &ws.act[k - 1]
        };
        pool_fc_forward(p, last, n, self.features(), self.output_dim, &mut ws.feat, &mut ws.out)?;
        Ok(())
    }

    /// Slice backward pass after a training-mode [`Vgg::forward_fast`]
    /// (`stats` None) on the same input and `p`: `dout` is the loss gradient
    /// with respect to the outputs `[n, outputs]`; every gradient in `grads`
    /// is overwritten.
    pub fn backward_fast(&self, p: &ParamSet, dout: &[f32], ws: &mut VggWorkspace, grads: &mut ParamSet) -> Result<()> {
        let n = ws.n;
        let (f, o) = (self.features(), self.output_dim);
        let convs = self.convs();
        let k = convs.len();
        let last_len = if convs[k - 1].pool {
            ws.pooled[k - 1].len()
        } else {
            ws.act[k - 1].len()
        };
        pool_fc_backward(p, dout, n, f, o, &ws.feat, last_len, grads, &mut ws.dfeat, &mut ws.d)?;
        for (li, l) in convs.iter().enumerate().rev() {
            // ws.d: gradient of this layer's output (pooled when it pools).
            let before = if l.pool {
                pool_relu_backward(l, n, &ws.d, &ws.act[li], &ws.pooled[li], &mut ws.d_prev);
                std::mem::swap(&mut ws.d, &mut ws.d_prev);
                Before::Nothing
            } else {
                Before::Relu(&ws.act[li])
            };
            bn_backward(l, p, n, &mut ws.d, before, &ws.bn[li], grads, &mut ws.dz)?;
            let inp: &[f32] = match li {
                0 => &ws.x,
                _ if convs[li - 1].pool => &ws.pooled[li - 1],
                _ => &ws.act[li - 1],
            };
            conv_backward(
                &l.layer,
                inp,
                n,
                param(p, &format!("{}.weight", l.name))?,
                &ws.dz,
                &mut grads.get_mut(&format!("{}.weight", l.name))?.data,
                (li > 0).then_some(&mut ws.dinp),
                &mut ws.cols[li],
                &mut ws.dcols,
            );
            std::mem::swap(&mut ws.d, &mut ws.dinp);
        }
        Ok(())
    }
}
