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

use super::conv_fast::{conv_backward, pool_backward, pool_forward};
use super::dense::{matmul_nn, matmul_nt, matmul_tn, relu_backward, sum_f64};
use super::resnet::{conv_bn_tensor, init_with_batch_norm, BnStats, ResConv};
use super::resnet_fast::{bn_backward, conv_bn};
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

    fn plan(&self) -> Vec<Spec> {
        use Spec::{Conv as C, Pool as M};
        let p: &[Spec] = match self.depth {
            11 => &[
                C(64),
                M,
                C(128),
                M,
                C(256),
                C(256),
                M,
                C(512),
                C(512),
                M,
                C(512),
                C(512),
            ],
            13 => &[
                C(64),
                C(64),
                M,
                C(128),
                C(128),
                M,
                C(256),
                C(256),
                M,
                C(512),
                C(512),
                M,
                C(512),
                C(512),
            ],
            16 => &[
                C(64),
                C(64),
                M,
                C(128),
                C(128),
                M,
                C(256),
                C(256),
                C(256),
                M,
                C(512),
                C(512),
                C(512),
                M,
                C(512),
                C(512),
                C(512),
            ],
            _ => &[
                C(64),
                C(64),
                M,
                C(128),
                C(128),
                M,
                C(256),
                C(256),
                C(256),
                C(256),
                M,
                C(512),
                C(512),
                C(512),
                C(512),
                M,
                C(512),
                C(512),
                C(512),
                C(512),
            ],
        };
        p.to_vec()
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
        let mut out = Vec::new();
        for c in self.convs() {
            out.push((format!("{}.weight", c.name), vec![c.c_out, c.c_in, c.k, c.k]));
            out.push((format!("{}.weight", c.bn), vec![c.c_out]));
            out.push((format!("{}.bias", c.bn), vec![c.c_out]));
        }
        out.push(("fc.weight".into(), vec![self.output_dim, self.features()]));
        out.push(("fc.bias".into(), vec![self.output_dim]));
        out
    }

    /// Names of BatchNorm parameters (never pruned).
    pub fn batch_norm_params(&self) -> Vec<String> {
        self.convs()
            .into_iter()
            .flat_map(|c| [format!("{}.weight", c.bn), format!("{}.bias", c.bn)])
            .collect()
    }

    /// Convolution weights and `fc.weight`, in layer order.
    pub fn prunable(&self) -> Vec<String> {
        let mut out: Vec<String> = self.convs().into_iter().map(|c| format!("{}.weight", c.name)).collect();
        out.push("fc.weight".into());
        out
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
    /// Per convolution: x̂ (CNHW), 1/sqrt(σ² + ε), im2col columns (or the
    /// padded input), the post-ReLU output, and after a pool the pooled
    /// output and each window's argmax.
    xhat: Vec<Vec<f32>>,
    inv: Vec<Vec<f32>>,
    cols: Vec<Vec<f32>>,
    act: Vec<Vec<f32>>,
    pooled: Vec<Vec<f32>>,
    arg: Vec<Vec<u8>>,
    /// Averaged features `[n, features]`.
    feat: Vec<f32>,
    /// The network output `[n, outputs]`.
    out: Vec<f32>,
    // Backward scratch.
    d: Vec<f32>,
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
        let [c0, h0, w0] = self.input_shape;
        if n == 0 || x.len() != n * c0 * h0 * w0 {
            return Err(Error::Shape {
                what: "VGG input".into(),
                expected: vec![n.max(1), c0 * h0 * w0],
                got: vec![x.len()],
            });
        }
        ws.n = n;
        let hw = h0 * w0;
        ws.x.resize(x.len(), 0.0);
        for i in 0..n {
            for c in 0..c0 {
                ws.x[(c * n + i) * hw..][..hw].copy_from_slice(&x[(i * c0 + c) * hw..][..hw]);
            }
        }
        let convs = self.convs();
        let k = convs.len();
        for v in [&mut ws.xhat, &mut ws.inv, &mut ws.cols, &mut ws.act, &mut ws.pooled] {
            v.resize(k, Vec::new());
        }
        ws.arg.resize(k, Vec::new());
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
                true,
                &mut ws.xhat[li],
                &mut ws.inv[li],
                &mut ws.cols[li],
                &mut rest[0],
            )?;
            if l.pool {
                pool_forward(l, n, &ws.act[li], &mut ws.pooled[li], &mut ws.arg[li]);
            }
        }
        // Global average pool: CNHW [F, n, h, w] -> [n, F].
        let last = if convs[k - 1].pool {
            &ws.pooled[k - 1]
        } else {
            &ws.act[k - 1]
        };
        let f = self.features();
        let phw = last.len() / (f * n);
        ws.feat.resize(n * f, 0.0);
        for c in 0..f {
            for i in 0..n {
                ws.feat[i * f + c] = (sum_f64(&last[(c * n + i) * phw..][..phw]) / phw as f64) as f32;
            }
        }
        let (wt, bias) = (param(p, "fc.weight")?, param(p, "fc.bias")?);
        ws.out.resize(n * self.output_dim, 0.0);
        matmul_nt(&ws.feat, wt, &mut ws.out, n, self.output_dim, f, 1.0, false);
        for row in ws.out.chunks_exact_mut(self.output_dim) {
            for (v, &b) in row.iter_mut().zip(bias) {
                *v += b;
            }
        }
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
        let dout = &dout[..n * o];
        matmul_tn(
            dout,
            &ws.feat,
            &mut grads.get_mut("fc.weight")?.data,
            o,
            f,
            n,
            1.0,
            false,
        );
        let gb = &mut grads.get_mut("fc.bias")?.data;
        gb.fill(0.0);
        for row in dout.chunks_exact(o) {
            for (g, v) in gb.iter_mut().zip(row) {
                *g += v;
            }
        }
        ws.dfeat.resize(n * f, 0.0);
        matmul_nn(dout, param(p, "fc.weight")?, &mut ws.dfeat, n, f, o, 1.0, false);
        // Through the average pool: ws.d = gradient of the last feature map.
        let last_len = if convs[k - 1].pool {
            ws.pooled[k - 1].len()
        } else {
            ws.act[k - 1].len()
        };
        let phw = last_len / (f * n);
        ws.d.resize(last_len, 0.0);
        for c in 0..f {
            for i in 0..n {
                let g = ws.dfeat[i * f + c] / phw as f32;
                ws.d[(c * n + i) * phw..][..phw].fill(g);
            }
        }
        for (li, l) in convs.iter().enumerate().rev() {
            // ws.d: gradient of this layer's output (pooled when it pools).
            if l.pool {
                let dpooled = std::mem::take(&mut ws.d);
                pool_backward(l, n, &dpooled, &ws.arg[li], &mut ws.d);
            }
            relu_backward(&mut ws.d, &ws.act[li]);
            bn_backward(l, p, n, &ws.d, &ws.xhat[li], &ws.inv[li], grads, &mut ws.dz)?;
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
