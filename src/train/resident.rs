//! Device-resident training: the parameters, gradients, masks and optimizer
//! state of a training call stay on one device as tensors, the training set
//! is uploaded once and each batch is gathered there, in the same seeded
//! order as on the host ([`BatchOrder`]: one epoch's order is uploaded at a
//! time). Between evaluations only the mini-batch losses come back, every
//! [`LOSS_INTERVAL`] steps, to keep the training loss and catch divergence
//! at its exact step; parameters come back only at checkpoints, saves and
//! the end, in the host layout, so checkpoints, rewinding, resuming and the
//! experiments that read them work unchanged.
//!
//! The forward and backward pass are candle's autodiff of
//! [`Network::forward_tensor`]; the updates are the host optimizers' in the
//! same f32 operations ([`TensorOptimizer`]). On candle's CPU device the
//! path runs the same tensor code as on CUDA, which is how it is tested
//! without a GPU. Augmented batches are augmented on the host and uploaded
//! (a batch, not the data set); evaluation of a BatchNorm network computes
//! its statistics through the host model.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor, Var};

use super::objective::{evaluate, Batch, Evaluation, Resident, Trainable};
use super::optim::{DeviceMask, TensorOptimizer};
use super::trainer::{Start, Stepper};
use crate::data::{BatchOrder, Dataset};
use crate::models::Network;
use crate::params::{Array, ParamSet};
use crate::train::Loss;
use crate::Result;

/// Steps between two copies of the mini-batch losses to the host (each copy
/// waits for the device).
pub const LOSS_INTERVAL: usize = 32;

/// A data set on the device: `n` examples, inputs `[n, d]`, targets
/// `[n, c]` (one-hot labels or regression targets), labels `[n]`.
pub(super) struct DeviceData {
    pub n: usize,
    pub x: Tensor,
    pub t: Tensor,
    pub y: Tensor,
}

impl DeviceData {
    /// Copies `data` to `dev` once.
    pub fn upload(data: &Dataset, dev: &Device) -> Result<Self> {
        let n = data.len();
        let c = data.target_dim;
        let mut t = vec![0.0f32; n * c];
        for i in 0..n {
            data.target_row(i, &mut t[i * c..(i + 1) * c]);
        }
        Ok(DeviceData {
            n,
            x: Tensor::from_slice(&data.x, (n, data.dim()), dev)?,
            t: Tensor::from_vec(t, (n, c), dev)?,
            y: Tensor::from_slice(&data.labels, n, dev)?,
        })
    }
}

/// Parameters as device tensors, stepped by candle autodiff and a [`TensorOptimizer`].
pub(super) struct DeviceStepper<'a> {
    model: &'a mut dyn Trainable,
    start: Start<'a>,
    net: Network,
    loss: Loss,
    dev: Device,
    vars: BTreeMap<String, Var>,
    opt: TensorOptimizer,
    masks: BTreeMap<String, DeviceMask>,
    train: DeviceData,
    order: BatchOrder,
    /// The uploaded order of one epoch.
    epoch: Option<(usize, Tensor)>,
    /// Host buffers for augmented batches.
    batch: Batch,
    /// Losses of the steps not yet copied back (scalars on the device).
    pending: Vec<Tensor>,
    /// Evaluation sets uploaded so far, by address (they live for the call).
    eval_sets: Vec<(usize, DeviceData)>,
}

impl<'a> DeviceStepper<'a> {
    pub(super) fn new(model: &'a mut dyn Trainable, r: Resident, start: Start<'a>) -> Result<Self> {
        let dev = r.device;
        let mut vars = BTreeMap::new();
        for (k, a) in start.params.iter() {
            vars.insert(k.clone(), Var::from_tensor(&a.to_tensor(&dev)?)?);
        }
        let mut opt = TensorOptimizer::new(&start.spec.optimizer);
        if let Some(st) = &start.optimizer_state {
            opt.load_state(st, &vars)?;
        }
        let mut masks = BTreeMap::new();
        if let Some(m) = start.mask {
            for (k, mk) in m.0.iter() {
                let keep: Vec<u8> = mk.data.iter().map(|&b| (b != 0.0) as u8).collect();
                let fill = match start.frozen {
                    Some(f) => f.get(k)?.to_tensor(&dev)?,
                    None => Tensor::zeros(mk.shape.as_slice(), DType::F32, &dev)?,
                };
                masks.insert(
                    k.clone(),
                    DeviceMask {
                        keep: Tensor::from_vec(keep, mk.shape.as_slice(), &dev)?,
                        fill,
                    },
                );
            }
        }
        let train = DeviceData::upload(start.train, &dev)?;
        let order = BatchOrder::new(start.train.len(), start.spec.batch_size, start.spec.data_seed)?;
        Ok(DeviceStepper {
            model,
            net: r.net,
            loss: r.loss,
            dev,
            vars,
            opt,
            masks,
            train,
            order,
            epoch: None,
            batch: Batch::default(),
            pending: Vec::new(),
            eval_sets: Vec::new(),
            start,
        })
    }

    fn tensors(&self) -> BTreeMap<String, Tensor> {
        self.vars
            .iter()
            .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
            .collect()
    }

    /// The inputs, targets and labels of the batch of `step`.
    fn batch(&mut self, step: usize) -> Result<(Tensor, Tensor, Tensor)> {
        let bs = self.start.spec.batch_size;
        let bpe = self.order.batches_per_epoch();
        let e = step / bpe;
        if self.epoch.as_ref().map(|(k, _)| *k) != Some(e) {
            let idx: Vec<u32> = self.order.epoch(e).iter().map(|&i| i as u32).collect();
            let n = idx.len();
            self.epoch = Some((e, Tensor::from_vec(idx, n, &self.dev)?));
        }
        let Some((_, order)) = &self.epoch else {
            unreachable!("the epoch's order was uploaded above")
        };
        let idx = order.narrow(0, (step % bpe) * bs, bs)?;
        let t = self.train.t.index_select(&idx, 0)?;
        let y = self.train.y.index_select(&idx, 0)?;
        let x = if self.start.spec.augment.is_identity() {
            self.train.x.index_select(&idx, 0)?
        } else {
            self.start.batch(&mut self.order, step, &mut self.batch);
            Tensor::from_slice(&self.batch.x, (bs, self.start.train.dim()), &self.dev)?
        };
        Ok((x, t, y))
    }
}

impl Stepper for DeviceStepper<'_> {
    fn step(&mut self, step: usize, lr: f32) -> Result<()> {
        let (x, t, y) = self.batch(step)?;
        let f = self.net.forward_tensor(&self.tensors(), &x)?;
        let loss = self.loss.tensor(&f, &t, &y)?;
        let grads = loss.backward()?;
        self.opt.step(&self.vars, &grads, lr, &self.masks)?;
        self.pending.push(loss.detach());
        Ok(())
    }

    fn loss_interval(&self) -> usize {
        LOSS_INTERVAL
    }

    fn losses(&mut self) -> Result<Vec<f32>> {
        if self.pending.is_empty() {
            return Ok(Vec::new());
        }
        let all = Tensor::stack(&std::mem::take(&mut self.pending), 0)?;
        Ok(all.to_dtype(DType::F32)?.to_vec1::<f32>()?)
    }

    fn params(&mut self) -> Result<ParamSet> {
        let mut p = ParamSet::new();
        for (k, v) in &self.vars {
            p.insert(k.clone(), Array::from_tensor(v.as_tensor())?);
        }
        Ok(p)
    }

    fn optimizer_state(&mut self) -> Result<ParamSet> {
        self.opt.state()
    }

    fn evaluate(&mut self, data: &Dataset, chunk: usize) -> Result<Evaluation> {
        if self.net.has_batch_norm() {
            let p = self.params()?;
            return evaluate(self.model, &p, data, chunk);
        }
        let key = data as *const Dataset as usize;
        if !self.eval_sets.iter().any(|(k, _)| *k == key) {
            self.eval_sets.push((key, DeviceData::upload(data, &self.dev)?));
        }
        let Some((_, d)) = self.eval_sets.iter().find(|(k, _)| *k == key) else {
            unreachable!("the evaluation set was uploaded above")
        };
        let ts = self.tensors();
        let n = data.len();
        let mut total = 0.0f64;
        let mut correct = 0u64;
        let mut s = 0;
        while s < n {
            let k = chunk.max(1).min(n - s);
            let x = d.x.narrow(0, s, k)?;
            let t = d.t.narrow(0, s, k)?;
            let y = d.y.narrow(0, s, k)?;
            let f = self.net.forward_tensor(&ts, &x)?;
            let l = self.loss.tensor(&f, &t, &y)?;
            total += l.to_dtype(DType::F64)?.to_scalar::<f64>()? * k as f64;
            let hit = f.argmax(1)?.to_dtype(DType::U32)?.eq(&y)?;
            correct += hit.to_dtype(DType::U32)?.sum_all()?.to_scalar::<u32>()? as u64;
            s += k;
        }
        Ok(Evaluation {
            loss: total / n.max(1) as f64,
            accuracy: correct as f64 / n.max(1) as f64,
        })
    }

    fn into_params(mut self: Box<Self>) -> Result<ParamSet> {
        self.params()
    }
}
