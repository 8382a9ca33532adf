//! Models: every model is a function of (parameters, input), with parameters
//! in a named, sorted [`ParamSet`]; masks act on those names.
//!
//! Adding a model touches its own file and the `match`es of [`Network`] and
//! [`ModelConfig`].

pub mod activation;
pub mod conv;
mod conv_direct;
pub mod conv_fast;
pub mod dense;
pub mod mlp;
pub mod resnet;
pub mod resnet_fast;
pub mod vgg;

use std::collections::BTreeMap;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

pub use activation::Activation;
pub use conv::{ConvNet, Padding};
pub use conv_fast::ConvWorkspace;
pub use mlp::{Mlp, MlpWorkspace};
pub use resnet::{BnStats, ResNet, BN_CALIBRATION};
pub use resnet_fast::ResNetWorkspace;
pub use vgg::{Vgg, VggWorkspace};

use crate::params::ParamSet;
use crate::{Error, Result};

/// How weights enter the forward pass (Jacot et al. 2018; Lee et al. 2019).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parameterization {
    /// `z = W h + b` with `W ~ N(0, W_std²/fan_in)`.
    Standard,
    /// `z = W_std/sqrt(fan_in) · W h + b_std · b` with `W, b ~ N(0, 1)`.
    Ntk,
}

/// A model as written in an experiment TOML (`[model]` table, `kind = ...`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ModelConfig {
    /// A fully connected network.
    Mlp {
        hidden: Vec<usize>,
        #[serde(default = "default_activation")]
        activation: Activation,
        #[serde(default = "default_parameterization")]
        parameterization: Parameterization,
        /// Weight std; default sqrt(2) for ReLU, 1 otherwise.
        #[serde(default)]
        w_std: Option<f32>,
        /// Bias std; default 0 (standard) or 0.1 (NTK).
        #[serde(default)]
        b_std: Option<f32>,
    },
    /// LeNet-300-100 (Frankle & Carbin 2019's MNIST network).
    #[serde(rename = "lenet300_100")]
    Lenet300_100,
    /// A plain conv net ([`ConvNet`]): blocks of convolutions, each block
    /// ending in a 2x2 max-pool, then dense layers.
    Conv {
        #[serde(default = "default_channels")]
        channels: Vec<usize>,
        #[serde(default = "default_conv_hidden")]
        hidden: Vec<usize>,
        /// Kernel size (default 3).
        #[serde(default = "default_kernel")]
        kernel: usize,
        /// "same" (default) or "valid".
        #[serde(default)]
        padding: Padding,
        /// Convolutions per block (default 1).
        #[serde(default = "default_convs_per_block")]
        convs_per_block: usize,
    },
    /// LeNet-5 as in PyTorch's MNIST examples: 5x5 valid convolutions with
    /// 6 and 16 channels, each followed by a 2x2 max-pool, then FC 120-84.
    #[serde(rename = "lenet5")]
    Lenet5,
    /// Conv-2 of Frankle & Carbin 2019 (Fig. 2): 64, 64, pool, FC 256-256.
    #[serde(rename = "conv2")]
    Conv2,
    /// Conv-4: 64, 64, pool, 128, 128, pool, FC 256-256.
    #[serde(rename = "conv4")]
    Conv4,
    /// Conv-6: 64, 64, pool, 128, 128, pool, 256, 256, pool, FC 256-256.
    #[serde(rename = "conv6")]
    Conv6,
    /// He et al. 2016's CIFAR ResNet with BatchNorm as open_lth builds it
    /// ([`ResNet`]); depth 20 and width 16 (the defaults) is ResNet-20.
    Resnet {
        /// Total layers, 6n + 2.
        #[serde(default = "default_resnet_depth")]
        depth: usize,
        /// Channels of the first segment (then 2x and 4x; 64 is
        /// ResNet-20 x4).
        #[serde(default = "default_resnet_width")]
        width: usize,
    },
    /// open_lth's CIFAR VGG with BatchNorm ([`Vgg`]): depth 11, 13, 16 or 19.
    Vgg {
        /// 11, 13, 16 (the default) or 19.
        #[serde(default = "default_vgg_depth")]
        depth: usize,
        /// Multiplies every layer's channels (1: the paper's 64 ... 512).
        #[serde(default = "default_one")]
        width_multiplier: usize,
    },
}

fn default_vgg_depth() -> usize {
    16
}
fn default_one() -> usize {
    1
}

fn default_resnet_depth() -> usize {
    20
}
fn default_resnet_width() -> usize {
    16
}

fn default_kernel() -> usize {
    3
}
fn default_convs_per_block() -> usize {
    1
}

fn default_activation() -> Activation {
    Activation::Relu
}
fn default_parameterization() -> Parameterization {
    Parameterization::Standard
}
fn default_channels() -> Vec<usize> {
    vec![16, 32]
}
fn default_conv_hidden() -> Vec<usize> {
    vec![128]
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig::Lenet300_100
    }
}

impl ModelConfig {
    /// Builds the network for inputs of `input_shape` `(c, h, w)` and `outputs` classes.
    pub fn build(&self, input_shape: [usize; 3], outputs: usize) -> Result<Network> {
        let input_dim = input_shape.iter().product();
        Ok(match self {
            ModelConfig::Mlp {
                hidden,
                activation,
                parameterization,
                w_std,
                b_std,
            } => {
                if *activation == Activation::Sign {
                    return Err(Error::config(
                        "model.activation",
                        "relu, tanh, erf or identity (sign activations train only in `ltk multi-prize`, with a straight-through estimate)",
                        "sign",
                    ));
                }
                let w = w_std.unwrap_or(if *activation == Activation::Relu {
                    std::f32::consts::SQRT_2
                } else {
                    1.0
                });
                let b = b_std.unwrap_or(match parameterization {
                    Parameterization::Standard => 0.0,
                    Parameterization::Ntk => 0.1,
                });
                Network::Mlp(Mlp::new(
                    input_dim,
                    hidden.clone(),
                    outputs,
                    *activation,
                    *parameterization,
                    w,
                    b,
                )?)
            }
            ModelConfig::Lenet300_100 => Network::Mlp(Mlp::lenet_300_100(input_dim, outputs)?),
            ModelConfig::Conv {
                channels,
                hidden,
                kernel,
                padding,
                convs_per_block,
            } => Network::Conv(ConvNet::with_layout(
                input_shape,
                channels.clone(),
                hidden.clone(),
                outputs,
                *kernel,
                *padding,
                *convs_per_block,
            )?),
            ModelConfig::Lenet5 => Network::Conv(ConvNet::with_layout(
                input_shape,
                vec![6, 16],
                vec![120, 84],
                outputs,
                5,
                Padding::Valid,
                1,
            )?),
            ModelConfig::Conv2 | ModelConfig::Conv4 | ModelConfig::Conv6 => {
                let channels = match self {
                    ModelConfig::Conv2 => vec![64],
                    ModelConfig::Conv4 => vec![64, 128],
                    _ => vec![64, 128, 256],
                };
                Network::Conv(ConvNet::with_layout(
                    input_shape,
                    channels,
                    vec![256, 256],
                    outputs,
                    3,
                    Padding::Same,
                    2,
                )?)
            }
            ModelConfig::Resnet { depth, width } => Network::ResNet(ResNet::new(input_shape, *depth, *width, outputs)?),
            ModelConfig::Vgg {
                depth,
                width_multiplier,
            } => Network::Vgg(Vgg::new(input_shape, *depth, *width_multiplier, outputs)?),
        })
    }
}

/// A built network.
#[derive(Clone, Debug, PartialEq)]
pub enum Network {
    Mlp(Mlp),
    Conv(ConvNet),
    ResNet(ResNet),
    Vgg(Vgg),
}

impl Network {
    /// Names and shapes of all parameters, in layer order.
    pub fn param_shapes(&self) -> Vec<(String, Vec<usize>)> {
        match self {
            Network::Mlp(m) => m.param_shapes(),
            Network::Conv(c) => c.param_shapes(),
            Network::ResNet(r) => r.param_shapes(),
            Network::Vgg(v) => v.param_shapes(),
        }
    }

    /// Weights per prunable layer, by parameter name.
    pub fn prunable_counts(&self) -> BTreeMap<String, usize> {
        let prunable = self.prunable();
        self.param_shapes()
            .into_iter()
            .filter(|(k, _)| prunable.contains(k))
            .map(|(k, s)| (k, s.iter().product()))
            .collect()
    }

    /// Names of the parameters pruning acts on (the weights).
    pub fn prunable(&self) -> Vec<String> {
        match self {
            Network::Mlp(m) => m.prunable(),
            Network::Conv(c) => c.prunable(),
            Network::ResNet(r) => r.prunable(),
            Network::Vgg(v) => v.prunable(),
        }
    }

    /// Flattened input size.
    pub fn input_dim(&self) -> usize {
        match self {
            Network::Mlp(m) => m.input_dim,
            Network::Conv(c) => c.input_shape.iter().product(),
            Network::ResNet(r) => r.input_shape.iter().product(),
            Network::Vgg(v) => v.input_shape.iter().product(),
        }
    }

    /// Number of outputs.
    pub fn output_dim(&self) -> usize {
        match self {
            Network::Mlp(m) => m.output_dim,
            Network::Conv(c) => c.output_dim,
            Network::ResNet(r) => r.output_dim,
            Network::Vgg(v) => v.output_dim,
        }
    }

    /// Parameters drawn from the init distribution with `seed` (stream "init").
    pub fn init(&self, seed: u64) -> ParamSet {
        let mut rng = crate::rng::stream(seed, "init");
        match self {
            Network::Mlp(m) => m.init(&mut rng),
            Network::Conv(c) => c.init(&mut rng),
            Network::ResNet(r) => r.init(&mut rng),
            Network::Vgg(v) => v.init(&mut rng),
        }
    }

    /// Errors unless `p` has exactly this network's names and shapes.
    pub fn check_params(&self, p: &ParamSet) -> Result<()> {
        let want = self.param_shapes();
        if p.0.len() != want.len() {
            return Err(Error::Param {
                what: format!(
                    "expected parameters {:?}, got {:?}",
                    want.iter().map(|(n, _)| n).collect::<Vec<_>>(),
                    p.names().collect::<Vec<_>>()
                ),
            });
        }
        check_shapes(p, want)
    }

    /// Differentiable forward pass in candle ops: `x` `[n, input_dim]` to
    /// `[n, outputs]`. BatchNorm layers normalize by the batch's own
    /// statistics (training mode); see [`Network::forward_tensor_eval`].
    pub fn forward_tensor(&self, p: &BTreeMap<String, Tensor>, x: &Tensor) -> Result<Tensor> {
        self.forward_tensor_bn(p, x, None, None)
    }

    /// Forward pass for evaluation: BatchNorm layers use `stats` (required
    /// when the network has BatchNorm, ignored otherwise).
    pub fn forward_tensor_eval(
        &self,
        p: &BTreeMap<String, Tensor>,
        x: &Tensor,
        stats: Option<&BnStats>,
    ) -> Result<Tensor> {
        match (self, stats) {
            (Network::ResNet(_) | Network::Vgg(_), None) => Err(Error::Param {
                what: "a BatchNorm network was evaluated without BatchNorm statistics \
                       (expected statistics from calibration data, got none)"
                    .into(),
            }),
            (_, s) => self.forward_tensor_bn(p, x, s, None),
        }
    }

    /// Forward pass with BatchNorm layers normalized by `stats` (None: by
    /// the batch's own statistics), writing the statistics used to `record`;
    /// for a network without BatchNorm, its forward pass.
    pub fn forward_tensor_bn(
        &self,
        p: &BTreeMap<String, Tensor>,
        x: &Tensor,
        stats: Option<&BnStats>,
        record: Option<&mut BnStats>,
    ) -> Result<Tensor> {
        match self {
            Network::Mlp(m) => m.forward_tensor(p, x),
            Network::Conv(c) => c.forward_tensor(p, x),
            Network::ResNet(r) => r.forward_tensor(p, x, stats, record),
            Network::Vgg(v) => v.forward_tensor(p, x, stats, record),
        }
    }

    /// Whether the network has BatchNorm layers (evaluation then needs
    /// statistics from calibration data, [`BN_CALIBRATION`]).
    pub fn has_batch_norm(&self) -> bool {
        matches!(self, Network::ResNet(_) | Network::Vgg(_))
    }

    /// Errors if `names` (e.g. a mask's) includes a parameter that is not
    /// prunable here, such as a BatchNorm scale or a bias.
    pub fn check_prunable<'a>(&self, names: impl IntoIterator<Item = &'a String>, what: &str) -> Result<()> {
        let prunable = self.prunable();
        for n in names {
            if !prunable.contains(n) {
                let kind = if n.contains("bn") {
                    "a BatchNorm parameter"
                } else {
                    "not a prunable weight"
                };
                return Err(Error::config(
                    what,
                    format!("masks only on prunable weights {prunable:?}"),
                    format!("`{n}` ({kind})"),
                ));
            }
        }
        Ok(())
    }

    /// A one-line description.
    pub fn describe(&self) -> String {
        match self {
            Network::Mlp(m) => {
                let mut dims = vec![m.input_dim];
                dims.extend(&m.hidden);
                dims.push(m.output_dim);
                let d: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
                format!(
                    "MLP {} ({}, {:?} param.)",
                    d.join("-"),
                    m.activation.name(),
                    m.parameterization
                )
            }
            Network::Conv(c) if c.kernel == 3 && c.padding == Padding::Same && c.convs_per_block == 1 => format!(
                "ConvNet channels {:?}, hidden {:?}, {} outputs",
                c.channels, c.hidden, c.output_dim
            ),
            Network::ResNet(r) => format!(
                "ResNet-{} (width {}, BatchNorm), {} outputs",
                r.depth, r.width, r.output_dim
            ),
            Network::Vgg(v) if v.multiplier == 1 => {
                format!("VGG-{} (BatchNorm), {} outputs", v.depth, v.output_dim)
            }
            Network::Vgg(v) => format!(
                "VGG-{} x{} channels (BatchNorm), {} outputs",
                v.depth, v.multiplier, v.output_dim
            ),
            Network::Conv(c) => format!(
                "ConvNet channels {:?} ({} {}x{} {:?} convolutions per block), hidden {:?}, {} outputs",
                c.channels, c.convs_per_block, c.kernel, c.kernel, c.padding, c.hidden, c.output_dim
            ),
        }
    }
}

/// Kaiming-normal (He et al. 2015) values for a weight of `shape`
/// `[out, in, ...]`: `N(0, 2 / fan_in)` with `fan_in` the product of all but
/// the first dimension (PyTorch's `kaiming_normal_`, fan-in mode, ReLU gain).
pub(crate) fn kaiming_normal(shape: &[usize], rng: &mut crate::rng::Rng) -> Vec<f32> {
    use rand_distr::{Distribution, StandardNormal};
    let fan_in: usize = shape[1..].iter().product();
    let s = (2.0 / fan_in as f32).sqrt();
    (0..shape.iter().product::<usize>())
        .map(|_| {
            let z: f32 = StandardNormal.sample(rng);
            z * s
        })
        .collect()
}

/// Errors unless every named parameter of `shapes` is in `p` with that shape.
fn check_shapes(p: &ParamSet, shapes: Vec<(String, Vec<usize>)>) -> Result<()> {
    for (name, shape) in shapes {
        let a = p.get(&name)?;
        if a.shape != shape {
            return Err(Error::Shape {
                what: name,
                expected: shape,
                got: a.shape.clone(),
            });
        }
    }
    Ok(())
}
