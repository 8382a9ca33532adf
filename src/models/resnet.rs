//! He et al. 2016's CIFAR ResNet (Sec. 4.2), as open_lth builds it
//! (`models/cifar_resnet.py`, `cifar_resnet_{depth}_{width}`): a 3x3
//! convolution with `width` channels, BatchNorm, ReLU; then three segments
//! of `(depth − 2) / 6` basic blocks with `width`, `2·width`, `4·width`
//! channels (the first block of segments 2 and 3 halves the image with a
//! stride-2 convolution); global average pooling; a linear output layer.
//! A block is `relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`, the
//! shortcut being the identity, or a 1x1 stride-2 convolution and BatchNorm
//! where the block changes size (open_lth's choice, He et al.'s option B).
//! ResNet-20 is depth 20, width 16. Convolutions have no bias.
//!
//! Parameters (open_lth's names): `conv.weight`, `bn.{weight,bias}`,
//! `blocks.{i}.conv{1,2}.weight`, `blocks.{i}.bn{1,2}.{weight,bias}`,
//! `blocks.{i}.shortcut.conv.weight`, `blocks.{i}.shortcut.bn.{weight,bias}`,
//! `fc.{weight,bias}`. Prunable: every convolution and `fc.weight` (open_lth
//! prunes every `Conv2d` and `Linear` weight); BatchNorm parameters and
//! biases are not. Init as open_lth's defaults for this model
//! (`kaiming_normal`, `batchnorm_init = uniform`): weights `N(0, 2/fan_in)`,
//! BatchNorm scales `U(0, 1)`, shifts and the output bias zero.
//!
//! BatchNorm: in training, each batch is normalized by its own mean and
//! (biased) variance over (examples, rows, columns), eps 1e-5, as PyTorch.
//! For evaluation this crate keeps no running averages (PyTorch's momentum
//! 0.1 buffers): parameters are the whole state, so that rewinding, masks
//! and interpolation act on one thing. Instead, statistics are recomputed at
//! the parameters being evaluated over a fixed calibration set: the first
//! [`BN_CALIBRATION`] training examples (not augmented), in training-mode
//! passes of [`BN_CALIBRATION_BATCH`] whose per-batch statistics are pooled
//! into population ones ("precise BN", Wu & Johnson 2021, "Rethinking
//! 'Batch' in BatchNorm", Sec. 3). This is a named
//! deviation from open_lth. Linear interpolation between two networks needs
//! statistics recomputed at each interpolated point (averaged parameters do
//! not come with meaningful running averages); doing that at every
//! evaluation means an interpolated network is evaluated as its endpoints are.

use std::collections::BTreeMap;

use candle_core::Tensor;
use rand::Rng as _;

use super::conv::ConvLayer;
use crate::params::{Array, ParamSet};
use crate::{Error, Result};

/// BatchNorm's epsilon (PyTorch's default).
pub const BN_EPS: f32 = 1e-5;

/// Training examples whose statistics normalize every evaluation.
pub const BN_CALIBRATION: usize = 2048;

/// Batch size of the calibration passes (open_lth's CIFAR batch size).
pub const BN_CALIBRATION_BATCH: usize = 128;

/// BatchNorm statistics of one forward pass, per BatchNorm layer (its name
/// prefix, e.g. `blocks.0.bn1`): per-channel mean and biased variance.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BnStats(pub BTreeMap<String, BnStat>);

/// Per-channel mean and variance of one BatchNorm layer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BnStat {
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
}

/// One convolution of the ResNet: its sizes (a [`ConvLayer`], never
/// followed by a pool; its fields are reached through `Deref`) and names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResConv {
    /// Parameter name prefix (`conv`, `blocks.3.conv1`, `blocks.3.shortcut.conv`).
    pub name: String,
    /// The BatchNorm that follows it (`bn`, `blocks.3.bn1`, ...).
    pub bn: String,
    pub layer: ConvLayer,
}

impl std::ops::Deref for ResConv {
    type Target = ConvLayer;
    fn deref(&self) -> &ConvLayer {
        &self.layer
    }
}

impl ResConv {
    /// A k x k convolution with "same" padding `(k − 1) / 2` and `stride`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        name: String,
        bn: String,
        c_in: usize,
        c_out: usize,
        h: usize,
        w: usize,
        k: usize,
        stride: usize,
    ) -> Self {
        let pad = (k - 1) / 2;
        let layer = ConvLayer {
            c_in,
            c_out,
            h,
            w,
            ho: (h + 2 * pad - k) / stride + 1,
            wo: (w + 2 * pad - k) / stride + 1,
            k,
            pad,
            stride,
            pool: false,
        };
        ResConv { name, bn, layer }
    }
}

/// One basic block: two 3x3 convolutions and an optional projection shortcut.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResBlock {
    pub conv1: ResConv,
    pub conv2: ResConv,
    pub shortcut: Option<ResConv>,
}

/// The ResNet.
#[derive(Clone, Debug, PartialEq)]
pub struct ResNet {
    /// `(channels, height, width)` of one input.
    pub input_shape: [usize; 3],
    /// Total layers, `6·blocks + 2` (20 for ResNet-20).
    pub depth: usize,
    /// Channels of the first segment (16 for ResNet-20).
    pub width: usize,
    pub output_dim: usize,
}

impl ResNet {
    /// Errors unless depth is `6n + 2` with n >= 1, width and the input are
    /// non-empty (a padded stride-2 convolution never shrinks an image to nothing).
    pub fn new(input_shape: [usize; 3], depth: usize, width: usize, output_dim: usize) -> Result<Self> {
        if depth < 8 || !(depth - 2).is_multiple_of(6) {
            return Err(Error::config(
                "model.depth",
                "6n + 2 with n >= 1 (8, 14, 20, 32, 56, ...)",
                depth,
            ));
        }
        if width == 0 || output_dim == 0 {
            return Err(Error::config("model.width", "> 0", width));
        }
        if input_shape.contains(&0) {
            return Err(Error::config(
                "input shape",
                "(c, h, w) > 0",
                format!("{input_shape:?}"),
            ));
        }
        Ok(ResNet {
            input_shape,
            depth,
            width,
            output_dim,
        })
    }

    /// Basic blocks per segment.
    pub fn blocks_per_segment(&self) -> usize {
        (self.depth - 2) / 6
    }

    /// The first convolution (`conv`, followed by `bn`).
    pub fn stem(&self) -> ResConv {
        let [c, h, w] = self.input_shape;
        ResConv::new("conv".into(), "bn".into(), c, self.width, h, w, 3, 1)
    }

    /// Every block in order, with its sizes.
    pub fn blocks(&self) -> Vec<ResBlock> {
        let stem = self.stem();
        let (mut c, mut h, mut w) = (stem.c_out, stem.ho, stem.wo);
        let mut out = Vec::new();
        let mut i = 0;
        for seg in 0..3 {
            let f = self.width << seg;
            for b in 0..self.blocks_per_segment() {
                let down = seg > 0 && b == 0;
                let stride = if down { 2 } else { 1 };
                let name = |s: &str| format!("blocks.{i}.{s}");
                let conv1 = ResConv::new(name("conv1"), name("bn1"), c, f, h, w, 3, stride);
                let conv2 = ResConv::new(name("conv2"), name("bn2"), f, f, conv1.ho, conv1.wo, 3, 1);
                let shortcut = (down || c != f)
                    .then(|| ResConv::new(name("shortcut.conv"), name("shortcut.bn"), c, f, h, w, 1, stride));
                (c, h, w) = (f, conv2.ho, conv2.wo);
                out.push(ResBlock { conv1, conv2, shortcut });
                i += 1;
            }
        }
        out
    }

    /// Every convolution in forward order (a block's shortcut after its conv2).
    pub fn convs(&self) -> Vec<ResConv> {
        let mut out = vec![self.stem()];
        for b in self.blocks() {
            out.push(b.conv1);
            out.push(b.conv2);
            out.extend(b.shortcut);
        }
        out
    }

    /// Channels at the global average pool.
    pub fn features(&self) -> usize {
        self.width << 2
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
        let mut conv_bn = |a: &Tensor, c: &ResConv| conv_bn_tensor(p, a, c, stats, record.as_deref_mut());
        let n = x.dim(0)?;
        let [c, h, w] = self.input_shape;
        let x = x.reshape((n, c, h, w))?;
        let mut a = conv_bn(&x, &self.stem())?.relu()?;
        for b in self.blocks() {
            let o = conv_bn(&a, &b.conv1)?.relu()?;
            let o = conv_bn(&o, &b.conv2)?;
            let s = match &b.shortcut {
                Some(sc) => conv_bn(&a, sc)?,
                None => a.clone(),
            };
            a = (o + s)?.relu()?;
        }
        let a = a.mean(3)?.mean(2)?;
        Ok(a.matmul(&get("fc.weight")?.t()?)?.broadcast_add(get("fc.bias")?)?)
    }
}

/// Convolution `c` of `a` then its BatchNorm, in candle ops: normalized by
/// the batch's own statistics (`stats` None; training) or by `stats`
/// (evaluation). With `record`, the statistics used are written there.
pub(super) fn conv_bn_tensor(
    p: &BTreeMap<String, Tensor>,
    a: &Tensor,
    c: &ResConv,
    stats: Option<&BnStats>,
    record: Option<&mut BnStats>,
) -> Result<Tensor> {
    let get = |k: &str| {
        p.get(k).ok_or_else(|| Error::Param {
            what: format!("missing `{k}`"),
        })
    };
    let z = a.conv2d(get(&format!("{}.weight", c.name))?, c.pad, c.stride, 1, 1)?;
    let (mean, var) = match stats {
        None => {
            let mean = z.mean_keepdim(3)?.mean_keepdim(2)?.mean_keepdim(0)?;
            let var = z
                .broadcast_sub(&mean)?
                .sqr()?
                .mean_keepdim(3)?
                .mean_keepdim(2)?
                .mean_keepdim(0)?;
            (mean, var)
        }
        Some(s) => {
            let st = s.0.get(&c.bn).ok_or_else(|| Error::Param {
                what: format!("BatchNorm statistics for `{}` missing", c.bn),
            })?;
            let dev = z.device();
            (
                Tensor::from_slice(&st.mean, (1, c.c_out, 1, 1), dev)?,
                Tensor::from_slice(&st.var, (1, c.c_out, 1, 1), dev)?,
            )
        }
    };
    if let Some(r) = record {
        r.0.insert(
            c.bn.clone(),
            BnStat {
                mean: mean.flatten_all()?.to_vec1()?,
                var: var.flatten_all()?.to_vec1()?,
            },
        );
    }
    let g = get(&format!("{}.weight", c.bn))?.reshape((1, c.c_out, 1, 1))?;
    let b = get(&format!("{}.bias", c.bn))?.reshape((1, c.c_out, 1, 1))?;
    let inv = (var + BN_EPS as f64)?.sqrt()?.recip()?;
    Ok(z.broadcast_sub(&mean)?
        .broadcast_mul(&inv.broadcast_mul(&g)?)?
        .broadcast_add(&b)?)
}

/// open_lth's init of a network with BatchNorm (`kaiming_normal`,
/// `batchnorm_init = uniform`), drawn in the order of `shapes`: weights
/// `N(0, 2/fan_in)`, BatchNorm scales (`bn`, with their shifts) `U(0, 1)`,
/// shifts and biases zero.
pub(super) fn init_with_batch_norm(
    shapes: Vec<(String, Vec<usize>)>,
    bn: &[String],
    rng: &mut crate::rng::Rng,
) -> ParamSet {
    let mut p = ParamSet::new();
    for (name, shape) in shapes {
        let n: usize = shape.iter().product();
        let data = if bn.contains(&name) {
            if name.ends_with(".weight") {
                (0..n).map(|_| rng.gen::<f32>()).collect()
            } else {
                vec![0.0; n]
            }
        } else if name.ends_with(".weight") {
            super::kaiming_normal(&shape, rng)
        } else {
            vec![0.0; n]
        };
        p.insert(name, Array { shape, data });
    }
    p
}

/// Parameters of a network of convolutions each followed by BatchNorm, then
/// an output layer `fc` on `features` inputs (the ResNet's and the VGG's).
pub(super) fn conv_bn_param_shapes(convs: &[ResConv], outputs: usize, features: usize) -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    for c in convs {
        out.push((format!("{}.weight", c.name), vec![c.c_out, c.c_in, c.k, c.k]));
        out.push((format!("{}.weight", c.bn), vec![c.c_out]));
        out.push((format!("{}.bias", c.bn), vec![c.c_out]));
    }
    out.push(("fc.weight".into(), vec![outputs, features]));
    out.push(("fc.bias".into(), vec![outputs]));
    out
}

/// The BatchNorm parameters of `convs`' BatchNorms.
pub(super) fn batch_norm_names(convs: &[ResConv]) -> Vec<String> {
    convs
        .iter()
        .flat_map(|c| [format!("{}.weight", c.bn), format!("{}.bias", c.bn)])
        .collect()
}

/// The convolution weights and `fc.weight`, in layer order.
pub(super) fn conv_prunable(convs: &[ResConv]) -> Vec<String> {
    let mut out: Vec<String> = convs.iter().map(|c| format!("{}.weight", c.name)).collect();
    out.push("fc.weight".into());
    out
}
