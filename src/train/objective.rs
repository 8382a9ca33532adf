//! What the trainer optimizes: anything that maps (parameters, batch) to a
//! loss and its gradient, and parameters and inputs to outputs. Networks
//! implement it through [`Supervised`]; the linearized network of the NTK
//! module implements it too, so both train with the same loop.

use candle_core::{Device, Tensor, Var};

use super::loss::{argmax_rows, Loss};
use crate::data::Dataset;
use crate::models::resnet::{BnStat, BN_CALIBRATION, BN_CALIBRATION_BATCH};
use crate::models::{
    BnStats, ConvNet, ConvWorkspace, Mlp, MlpWorkspace, Network, ResNet, ResNetWorkspace, Vgg, VggWorkspace,
};
use crate::params::{Array, ParamSet};
use crate::{Error, Result};

/// A mini-batch: inputs `x` `[n, d]`, targets `t` `[n, c]`, labels `y` `[n]`.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    pub x: Vec<f32>,
    pub t: Vec<f32>,
    pub y: Vec<u32>,
}

impl Batch {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }
}

/// A trainable model with a loss.
pub trait Trainable: Send {
    /// The loss being minimized.
    fn loss(&self) -> Loss;
    /// Number of outputs per example.
    fn outputs(&self) -> usize;
    /// Mean loss on `batch` and its gradient (written into `grads`, which has
    /// the layout of `params`).
    fn loss_and_grad(&mut self, params: &ParamSet, batch: &Batch, grads: &mut ParamSet) -> Result<f32>;
    /// Outputs `[n, outputs]` for inputs `x` `[n, d]`, written into `out`.
    fn predict(&mut self, params: &ParamSet, x: &[f32], n: usize, out: &mut Vec<f32>) -> Result<()>;
    /// Called by the trainer with its training set before the first step:
    /// a model whose evaluation needs training inputs (BatchNorm
    /// statistics) keeps them unless it already has some.
    fn see_training_set(&mut self, _train: &Dataset) {}
    /// The network, loss and device when this model trains as tensors
    /// resident on a device (see [`super::resident`]); `None` when the
    /// trainer steps it on the host through `loss_and_grad`.
    fn resident(&self) -> Option<Resident> {
        None
    }
}

/// A model that trains as tensors on a device: what the trainer's
/// device-resident path needs to run it.
#[derive(Clone, Debug)]
pub struct Resident {
    pub net: Network,
    pub loss: Loss,
    pub device: Device,
}

/// Loss and accuracy of a model on a data set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    pub loss: f64,
    pub accuracy: f64,
}

/// Mean loss and accuracy of `model` with `params` over `data`, in chunks of `chunk` rows.
pub fn evaluate(model: &mut dyn Trainable, params: &ParamSet, data: &Dataset, chunk: usize) -> Result<Evaluation> {
    let c = model.outputs();
    let loss = model.loss();
    let mut out = Vec::new();
    let mut t = vec![0.0f32; chunk.max(1) * c];
    let mut total = 0.0f64;
    let mut correct = 0usize;
    let d = data.dim();
    let n = data.len();
    let mut start = 0;
    while start < n {
        let end = (start + chunk.max(1)).min(n);
        let k = end - start;
        model.predict(params, &data.x[start * d..end * d], k, &mut out)?;
        for i in 0..k {
            data.target_row(start + i, &mut t[i * c..(i + 1) * c]);
        }
        let y = &data.labels[start..end];
        total += loss.sum(&out, &t[..k * c], y, c);
        correct += argmax_rows(&out, c).zip(y).filter(|(p, &l)| *p == l as usize).count();
        start = end;
    }
    Ok(Evaluation {
        loss: total / n.max(1) as f64,
        accuracy: correct as f64 / n.max(1) as f64,
    })
}

enum Engine {
    /// Hand-written slice forward/backward (MLPs on the CPU).
    Fast { mlp: Mlp, ws: MlpWorkspace, dout: Vec<f32> },
    /// im2col + GEMM forward/backward (conv nets on the CPU).
    FastConv {
        net: ConvNet,
        ws: ConvWorkspace,
        dout: Vec<f32>,
    },
    /// im2col + GEMM with hand-written BatchNorm (ResNets on the CPU).
    FastResNet {
        net: ResNet,
        ws: ResNetWorkspace,
        dout: Vec<f32>,
    },
    /// The same for VGG networks on the CPU.
    FastVgg { net: Vgg, ws: VggWorkspace, dout: Vec<f32> },
    /// Candle autodiff on a device (any model on CUDA; the reference path
    /// on the CPU). `resident`: the trainer keeps the parameters on the device.
    Candle { device: Device, resident: bool },
}

/// Training inputs whose BatchNorm statistics normalize every evaluation of
/// a BatchNorm network, and the statistics of the last parameters seen.
struct Calibration {
    x: Vec<f32>,
    n: usize,
    cached: Option<(u64, BnStats)>,
}

impl Calibration {
    /// The first [`BN_CALIBRATION`] inputs of `train` (whole batches of
    /// [`BN_CALIBRATION_BATCH`]; all of a smaller set) for a BatchNorm network, None otherwise.
    fn new(net: &Network, train: &Dataset) -> Option<Self> {
        if !net.has_batch_norm() {
            return None;
        }
        let n = if train.len() >= BN_CALIBRATION_BATCH {
            BN_CALIBRATION.min(train.len()) / BN_CALIBRATION_BATCH * BN_CALIBRATION_BATCH
        } else {
            train.len()
        };
        Some(Calibration {
            x: train.x[..n * train.dim()].to_vec(),
            n,
            cached: None,
        })
    }
}

/// A fingerprint of `params` (their names and bits), to reuse BatchNorm
/// statistics while the parameters do not change (one evaluation runs in chunks).
fn fingerprint(params: &ParamSet) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for (k, a) in params.iter() {
        k.hash(&mut h);
        for v in &a.data {
            v.to_bits().hash(&mut h);
        }
    }
    h.finish()
}

/// Population statistics from per-batch ones (equal batch sizes): the mean
/// of the means, and the mean of `σ² + μ²` less the squared mean.
fn pool_stats(batches: &[BnStats]) -> BnStats {
    let mut out = BnStats::default();
    let Some(first) = batches.first() else {
        return out;
    };
    let k = batches.len() as f64;
    for name in first.0.keys() {
        let c = first.0[name].mean.len();
        let mut mean = vec![0.0f64; c];
        let mut sq = vec![0.0f64; c];
        for b in batches {
            let s = &b.0[name];
            for i in 0..c {
                mean[i] += s.mean[i] as f64 / k;
                sq[i] += (s.var[i] as f64 + (s.mean[i] as f64).powi(2)) / k;
            }
        }
        out.0.insert(
            name.clone(),
            BnStat {
                mean: mean.iter().map(|&m| m as f32).collect(),
                var: sq
                    .iter()
                    .zip(&mean)
                    .map(|(&q, &m)| (q - m * m).max(0.0) as f32)
                    .collect(),
            },
        );
    }
    out
}

/// A network with a loss: the usual supervised objective.
pub struct Supervised {
    pub net: Network,
    pub loss: Loss,
    engine: Engine,
    calibration: Option<Calibration>,
}

impl Supervised {
    /// Uses the fast slice paths for MLPs and conv nets on the CPU, candle autodiff otherwise.
    pub fn new(net: Network, loss: Loss, device: &Device) -> Self {
        let engine = match (&net, device) {
            (Network::Mlp(m), Device::Cpu) => Engine::Fast {
                mlp: m.clone(),
                ws: MlpWorkspace::default(),
                dout: Vec::new(),
            },
            (Network::Conv(c), Device::Cpu) => Engine::FastConv {
                net: c.clone(),
                ws: ConvWorkspace::default(),
                dout: Vec::new(),
            },
            (Network::ResNet(r), Device::Cpu) => Engine::FastResNet {
                net: r.clone(),
                ws: ResNetWorkspace::default(),
                dout: Vec::new(),
            },
            (Network::Vgg(v), Device::Cpu) => Engine::FastVgg {
                net: v.clone(),
                ws: VggWorkspace::default(),
                dout: Vec::new(),
            },
            _ => Engine::Candle {
                device: device.clone(),
                resident: true,
            },
        };
        Supervised {
            net,
            loss,
            engine,
            calibration: None,
        }
    }

    /// For a BatchNorm network, keeps the first [`BN_CALIBRATION`] training
    /// inputs of `train` (whole batches of [`BN_CALIBRATION_BATCH`]; all of a
    /// smaller set) to normalize evaluations with; other networks ignore it.
    /// Without it a BatchNorm network's evaluation is an error.
    pub fn calibrated(mut self, train: &Dataset) -> Self {
        self.calibration = Calibration::new(&self.net, train);
        self
    }

    /// The BatchNorm statistics of `params` over the calibration inputs
    /// (training-mode passes in batches, pooled), reused while `params` are unchanged.
    pub fn batch_norm_stats(&mut self, params: &ParamSet) -> Result<BnStats> {
        let Some(cal) = self.calibration.as_mut() else {
            return Err(Error::Param {
                what: "a BatchNorm network was evaluated without calibration inputs \
                       (expected Supervised::calibrated with the training set, got none)"
                    .into(),
            });
        };
        let key = fingerprint(params);
        if let Some((k, s)) = &cal.cached {
            if *k == key {
                return Ok(s.clone());
            }
        }
        let d = self.net.input_dim();
        let mut batches = Vec::new();
        for xs in cal.x[..cal.n * d].chunks(BN_CALIBRATION_BATCH * d) {
            let k = xs.len() / d;
            let mut rec = BnStats::default();
            match &mut self.engine {
                Engine::FastResNet { net, ws, .. } => net.forward_fast(params, xs, k, None, Some(&mut rec), ws)?,
                Engine::FastVgg { net, ws, .. } => net.forward_fast(params, xs, k, None, Some(&mut rec), ws)?,
                Engine::Candle { device: dev, .. } => {
                    if !self.net.has_batch_norm() {
                        return Err(Error::Param {
                            what: "BatchNorm statistics of a network without BatchNorm".into(),
                        });
                    }
                    let ts = params.to_tensors(dev)?;
                    let xt = Tensor::from_slice(xs, (k, d), dev)?;
                    self.net.forward_tensor_bn(&ts, &xt, None, Some(&mut rec))?;
                }
                _ => {
                    return Err(Error::Param {
                        what: "BatchNorm statistics of a network without BatchNorm".into(),
                    })
                }
            }
            batches.push(rec);
        }
        let stats = pool_stats(&batches);
        cal.cached = Some((key, stats.clone()));
        Ok(stats)
    }

    /// Always uses candle autodiff (the reference path) on `device`, one
    /// step at a time through `loss_and_grad` with host parameters.
    pub fn with_autodiff(net: Network, loss: Loss, device: &Device) -> Self {
        Supervised {
            net,
            loss,
            engine: Engine::Candle {
                device: device.clone(),
                resident: false,
            },
            calibration: None,
        }
    }

    /// Trains as tensors resident on `device` (candle autodiff; what
    /// [`Supervised::new`] chooses on a GPU), also on the CPU device.
    pub fn on_device(net: Network, loss: Loss, device: &Device) -> Self {
        Supervised {
            net,
            loss,
            engine: Engine::Candle {
                device: device.clone(),
                resident: true,
            },
            calibration: None,
        }
    }
}

impl Trainable for Supervised {
    fn loss(&self) -> Loss {
        self.loss
    }

    fn outputs(&self) -> usize {
        self.net.output_dim()
    }

    fn loss_and_grad(&mut self, params: &ParamSet, batch: &Batch, grads: &mut ParamSet) -> Result<f32> {
        let n = batch.len();
        let c = self.net.output_dim();
        match &mut self.engine {
            Engine::Fast { mlp: m, ws, dout } => {
                m.forward_fast(params, &batch.x, n, ws)?;
                dout.resize(n * c, 0.0);
                let l = self.loss.value_and_grad(ws.output(), &batch.t, &batch.y, c, dout);
                m.backward_fast(params, &batch.x, dout, ws, grads)?;
                Ok(l)
            }
            Engine::FastConv { net, ws, dout } => {
                net.forward_fast(params, &batch.x, n, ws)?;
                dout.resize(n * c, 0.0);
                let l = self.loss.value_and_grad(ws.output(), &batch.t, &batch.y, c, dout);
                net.backward_fast(params, dout, ws, grads)?;
                Ok(l)
            }
            Engine::FastResNet { net, ws, dout } => {
                net.forward_fast(params, &batch.x, n, None, None, ws)?;
                dout.resize(n * c, 0.0);
                let l = self.loss.value_and_grad(ws.output(), &batch.t, &batch.y, c, dout);
                net.backward_fast(params, dout, ws, grads)?;
                Ok(l)
            }
            Engine::FastVgg { net, ws, dout } => {
                net.forward_fast(params, &batch.x, n, None, None, ws)?;
                dout.resize(n * c, 0.0);
                let l = self.loss.value_and_grad(ws.output(), &batch.t, &batch.y, c, dout);
                net.backward_fast(params, dout, ws, grads)?;
                Ok(l)
            }
            Engine::Candle { device: dev, .. } => {
                let net = &self.net;
                let mut vars = std::collections::BTreeMap::new();
                for (k, a) in params.iter() {
                    vars.insert(k.clone(), Var::from_tensor(&a.to_tensor(dev)?)?);
                }
                let ts = vars.iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
                let x = Tensor::from_slice(&batch.x, (n, self.net.input_dim()), dev)?;
                let t = Tensor::from_slice(&batch.t, (n, c), dev)?;
                let y = Tensor::from_slice(&batch.y, n, dev)?;
                let f = net.forward_tensor(&ts, &x)?;
                let loss = self.loss.tensor(&f, &t, &y)?;
                let g = loss.backward()?;
                for (k, v) in &vars {
                    let dst = grads.get_mut(k)?;
                    match g.get(v.as_tensor()) {
                        Some(gt) => *dst = Array::from_tensor(gt)?,
                        None => dst.data.iter_mut().for_each(|x| *x = 0.0),
                    }
                }
                Ok(loss.to_dtype(candle_core::DType::F32)?.to_scalar::<f32>()?)
            }
        }
    }

    fn see_training_set(&mut self, train: &Dataset) {
        if self.calibration.is_none() {
            self.calibration = Calibration::new(&self.net, train);
        }
    }

    fn resident(&self) -> Option<Resident> {
        match &self.engine {
            Engine::Candle { device, resident: true } => Some(Resident {
                net: self.net.clone(),
                loss: self.loss,
                device: device.clone(),
            }),
            _ => None,
        }
    }

    fn predict(&mut self, params: &ParamSet, x: &[f32], n: usize, out: &mut Vec<f32>) -> Result<()> {
        let stats = if self.net.has_batch_norm() {
            Some(self.batch_norm_stats(params)?)
        } else {
            None
        };
        match &mut self.engine {
            Engine::Fast { mlp: m, ws, .. } => {
                m.forward_fast(params, x, n, ws)?;
                out.clear();
                out.extend_from_slice(ws.output());
            }
            Engine::FastConv { net, ws, .. } => {
                // In slices of 256 examples: activations of a whole
                // evaluation chunk would take c·h·w floats per example per layer.
                out.clear();
                let d = net.input_shape.iter().product::<usize>();
                for (i, xs) in x[..n * d].chunks(256 * d).enumerate() {
                    let k = xs.len() / d;
                    net.forward_fast(params, xs, k, ws)?;
                    debug_assert_eq!(i * 256 * self.net.output_dim(), out.len());
                    out.extend_from_slice(ws.output());
                }
            }
            Engine::FastResNet { net, ws, .. } => {
                out.clear();
                let d = net.input_shape.iter().product::<usize>();
                for xs in x[..n * d].chunks(256 * d) {
                    net.forward_fast(params, xs, xs.len() / d, stats.as_ref(), None, ws)?;
                    out.extend_from_slice(ws.output());
                }
            }
            Engine::FastVgg { net, ws, .. } => {
                out.clear();
                let d = net.input_shape.iter().product::<usize>();
                for xs in x[..n * d].chunks(256 * d) {
                    net.forward_fast(params, xs, xs.len() / d, stats.as_ref(), None, ws)?;
                    out.extend_from_slice(ws.output());
                }
            }
            Engine::Candle { device: dev, .. } => {
                let net = &self.net;
                let ts = params.to_tensors(dev)?;
                let xt = Tensor::from_slice(x, (n, self.net.input_dim()), dev)?;
                let f = net.forward_tensor_eval(&ts, &xt, stats.as_ref())?;
                *out = f.flatten_all()?.to_vec1::<f32>()?;
            }
        }
        Ok(())
    }
}
