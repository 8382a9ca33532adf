//! Many networks trained as one computation. Lottery-ticket experiments train
//! many small networks that differ only in initialization, mask or data
//! order (IMP's arms, LMC's pairs of children, seeds): on a GPU each alone is
//! a few small kernels per layer, bound by launches. Here `K` MLPs of one
//! architecture train together: each parameter is one `[K, ...]` tensor, each
//! layer one batched GEMM over the networks, each network with its own
//! parameters, mask (and frozen values), optimizer state and seeded data
//! order ([`BatchOrder`] per network, gathered on the device). Network `k`
//! ends as it would trained alone on the device-resident path
//! ([`super::resident`]) up to float rounding: the networks share no
//! arithmetic, and the sum of their losses has each network's own gradient.
//!
//! [`train_many`] is the entry point for experiments: on a GPU it trains
//! MLPs as one ensemble; on the CPU (where the hand-written fast paths win)
//! and for other networks it trains the networks one by one with
//! [`super::train`], so CPU results are exactly those of sequential training.

use std::collections::BTreeMap;
use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};

use super::objective::Supervised;
use super::optim::{DeviceMask, TensorOptimizer};
use super::resident::DeviceData;
use super::trainer::{train, EvalRecord, TrainOptions, TrainOutcome, TrainSpec};
use super::Loss;
use crate::data::{BatchOrder, Split};
use crate::models::{Mlp, Network};
use crate::params::{Array, Mask, ParamSet};
use crate::{Error, Result};

/// Steps between two copies of the mini-batch losses to the host.
const LOSS_INTERVAL: usize = 32;

/// One network of an ensemble: where it starts and what distinguishes it.
#[derive(Clone, Debug)]
pub struct Member<'a> {
    /// Start parameters (θ0, or θk for a branch started at step k).
    pub init: &'a ParamSet,
    /// Pruning mask: pruned weights start and stay at zero (or `frozen`).
    pub mask: Option<&'a Mask>,
    /// With a mask: the values pruned weights keep (Zhou et al. 2019).
    pub frozen: Option<&'a ParamSet>,
    /// Seed of this network's data order (overrides the spec's).
    pub data_seed: u64,
    /// Start from this optimizer state instead of a fresh one.
    pub optimizer_state: Option<&'a ParamSet>,
}

/// What every network of an ensemble shares.
#[derive(Clone, Debug)]
pub struct Shared<'a> {
    pub net: &'a Network,
    pub loss: Loss,
    pub device: &'a Device,
    pub split: &'a Split,
    /// The training spec; its `data_seed` is replaced by each member's.
    pub spec: &'a TrainSpec,
    /// First step of the schedule and data order (a branch from step k).
    pub start_step: usize,
    /// Keep each network's optimizer state at the checkpoint steps.
    pub keep_optimizer_checkpoints: bool,
    pub progress: bool,
}

/// Whether [`train_many`] trains networks of `net` on `device` as one computation.
pub fn batches(net: &Network, device: &Device) -> bool {
    matches!(net, Network::Mlp(_)) && !matches!(device, Device::Cpu)
}

/// Trains every member, as one computation where [`batches`] says so and
/// one by one otherwise; the outcomes in member order. A network that
/// diverges gets its own error; the others are unaffected.
pub fn train_many(shared: &Shared, members: &[Member]) -> Result<Vec<Result<TrainOutcome>>> {
    if batches(shared.net, shared.device) && members.len() > 1 {
        return train_together(shared, members);
    }
    Ok(members
        .iter()
        .map(|m| {
            let mut model = Supervised::new(shared.net.clone(), shared.loss, shared.device);
            let spec = TrainSpec {
                data_seed: m.data_seed,
                ..shared.spec.clone()
            };
            train(&mut model, m.init, shared.split, &spec, &options(shared, m))
        })
        .collect())
}

fn options<'a>(shared: &Shared, m: &Member<'a>) -> TrainOptions<'a> {
    TrainOptions {
        mask: m.mask,
        frozen: m.frozen,
        start_step: shared.start_step,
        optimizer_state: m.optimizer_state,
        keep_optimizer_checkpoints: shared.keep_optimizer_checkpoints,
        progress: shared.progress,
        ..Default::default()
    }
}

/// `[K, ...]` stacks of the members' arrays named `name`.
fn stack(sets: &[&ParamSet], name: &str, dev: &Device) -> Result<Tensor> {
    let first = sets[0].get(name)?;
    let mut data = Vec::with_capacity(first.len() * sets.len());
    for s in sets {
        let a = s.get(name)?;
        a.check_shape(&first.shape, name)?;
        data.extend_from_slice(&a.data);
    }
    let mut shape = vec![sets.len()];
    shape.extend_from_slice(&first.shape);
    Ok(Tensor::from_vec(data, shape, dev)?)
}

/// Member `k`'s slices of stacked tensors, as a host parameter set.
fn unstack(stacked: &BTreeMap<String, Tensor>, k: usize) -> Result<ParamSet> {
    let mut p = ParamSet::new();
    for (name, t) in stacked {
        p.insert(name.clone(), Array::from_tensor(&t.get(k)?)?);
    }
    Ok(p)
}

/// The stacked parameters as tensors (from the variables).
fn tensors(vars: &BTreeMap<String, Var>) -> BTreeMap<String, Tensor> {
    vars.iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect()
}

/// The ensemble: one set of stacked variables, one optimizer over them.
struct Ensemble<'a> {
    mlp: &'a Mlp,
    loss: Loss,
    k: usize,
    vars: BTreeMap<String, Var>,
}

impl Ensemble<'_> {
    /// Each network's loss and accuracy on `data` (`[n, d]` on the device in chunks).
    fn evaluate(&self, data: &DeviceData, chunk: usize) -> Result<Vec<(f64, f64)>> {
        let ts = tensors(&self.vars);
        let n = data.n;
        let mut loss = vec![0.0f64; self.k];
        let mut correct = vec![0u64; self.k];
        let mut s = 0;
        while s < n {
            let m = chunk.max(1).min(n - s);
            let x = data.x.narrow(0, s, m)?.unsqueeze(0)?;
            let f = self.mlp.forward_stacked(&ts, &x)?;
            let c = f.dim(2)?;
            let t = data.t.narrow(0, s, m)?.unsqueeze(0)?.broadcast_as((self.k, m, c))?;
            let y = data.y.narrow(0, s, m)?.unsqueeze(0)?.broadcast_as((self.k, m))?;
            let l = self.loss.per_network(&f, &t.contiguous()?, &y.contiguous()?)?;
            let hit = f
                .argmax(2)?
                .to_dtype(DType::U32)?
                .eq(&y)?
                .to_dtype(DType::U32)?
                .sum(1)?;
            for (i, (v, h)) in l
                .to_dtype(DType::F64)?
                .to_vec1::<f64>()?
                .into_iter()
                .zip(hit.to_vec1::<u32>()?)
                .enumerate()
            {
                loss[i] += v * m as f64;
                correct[i] += h as u64;
            }
            s += m;
        }
        let n = n.max(1) as f64;
        Ok(loss
            .into_iter()
            .zip(correct)
            .map(|(l, c)| (l / n, c as f64 / n))
            .collect())
    }

    fn params(&self, k: usize) -> Result<ParamSet> {
        unstack(&tensors(&self.vars), k)
    }
}

/// Per network: its history, loss accounting, checkpoints and error.
struct Track {
    history: Vec<EvalRecord>,
    loss_sum: f64,
    loss_count: usize,
    checkpoints: BTreeMap<usize, ParamSet>,
    optimizer_checkpoints: BTreeMap<usize, ParamSet>,
    error: Option<Error>,
}

/// Trains the members as one computation on any device (also the CPU's,
/// for tests and benchmarks); experiments call [`train_many`]. MLPs only,
/// without augmentation, resuming or saving (a unit's results are saved by
/// its experiment).
pub fn train_together(shared: &Shared, members: &[Member]) -> Result<Vec<Result<TrainOutcome>>> {
    let Network::Mlp(mlp) = shared.net else {
        return Err(Error::invalid(
            "network of an ensemble",
            "an MLP",
            "a conv net or ResNet (train them one by one)",
        ));
    };
    if members.is_empty() {
        return Ok(Vec::new());
    }
    let spec = shared.spec;
    let split = shared.split;
    let train_set = &split.train;
    spec.validate(train_set.len())?;
    if !spec.augment.is_identity() {
        return Err(Error::invalid(
            "augmentation of an ensemble",
            "none (MLPs train on unaugmented inputs)",
            "train.augment set",
        ));
    }
    if shared.start_step > spec.steps {
        return Err(Error::invalid(
            "start step",
            format!("<= {} (the run length)", spec.steps),
            shared.start_step,
        ));
    }
    let dev = shared.device.clone();
    let k = members.len();
    // Start parameters, masked as the host loop masks them.
    let mut starts = Vec::with_capacity(k);
    for m in members {
        let mut p = m.init.clone();
        if let Some(mask) = m.mask {
            mask.validate(&p)?;
            match m.frozen {
                Some(f) => mask.apply_fill(&mut p, f)?,
                None => mask.apply(&mut p)?,
            }
        }
        members[0].init.check_same_layout(&p, "ensemble member parameters")?;
        starts.push(p);
    }
    let refs: Vec<&ParamSet> = starts.iter().collect();
    let mut vars = BTreeMap::new();
    for name in members[0].init.names() {
        vars.insert(name.clone(), Var::from_tensor(&stack(&refs, name, &dev)?)?);
    }
    // Masks: a parameter masked in any member is masked in all (kept
    // everywhere in the members without a mask there).
    let mut masks = BTreeMap::new();
    let masked: std::collections::BTreeSet<&String> = members
        .iter()
        .filter_map(|m| m.mask)
        .flat_map(|m| m.0.names())
        .collect();
    for name in masked {
        let shape = &members[0].init.get(name)?.shape;
        let numel: usize = shape.iter().product();
        let mut keep = Vec::with_capacity(numel * k);
        let mut fill = Vec::with_capacity(numel * k);
        for m in members {
            match m.mask.and_then(|mk| mk.0.get(name).ok()) {
                Some(a) => {
                    keep.extend(a.data.iter().map(|&b| (b != 0.0) as u8));
                    match m.frozen {
                        Some(f) => fill.extend_from_slice(&f.get(name)?.data),
                        None => fill.extend(std::iter::repeat_n(0.0f32, numel)),
                    }
                }
                None => {
                    keep.extend(std::iter::repeat_n(1u8, numel));
                    fill.extend(std::iter::repeat_n(0.0f32, numel));
                }
            }
        }
        let mut s = vec![k];
        s.extend_from_slice(shape);
        masks.insert(
            name.clone(),
            DeviceMask {
                keep: Tensor::from_vec(keep, s.as_slice(), &dev)?,
                fill: Tensor::from_vec(fill, s.as_slice(), &dev)?,
            },
        );
    }
    let mut opt = TensorOptimizer::new(&spec.optimizer);
    let states: Vec<Option<&ParamSet>> = members.iter().map(|m| m.optimizer_state).collect();
    match (states.iter().all(|s| s.is_some()), states.iter().any(|s| s.is_some())) {
        (true, _) => {
            let sets: Vec<&ParamSet> = states.iter().flatten().copied().collect();
            let mut stacked = ParamSet::new();
            for name in sets[0].names() {
                if name.starts_with("adam_t.") {
                    // One step count for all: the networks step together.
                    let t = sets[0].get(name)?;
                    if sets.iter().any(|s| s.get(name).map(|u| u != t).unwrap_or(true)) {
                        return Err(Error::invalid(
                            format!("Adam step counts `{name}` of an ensemble"),
                            "the same for every network",
                            "different counts",
                        ));
                    }
                    stacked.insert(name.clone(), t.clone());
                    continue;
                }
                let t = stack(&sets, name, &Device::Cpu)?;
                stacked.insert(name.clone(), Array::from_tensor(&t.flatten_all()?)?);
            }
            opt.load_state(&stacked, &vars)?;
        }
        (false, true) => {
            return Err(Error::invalid(
                "optimizer states of an ensemble",
                "one for every network or for none",
                format!("{} of {k}", states.iter().filter(|s| s.is_some()).count()),
            ))
        }
        _ => {}
    }
    let ens = Ensemble {
        mlp,
        loss: shared.loss,
        k,
        vars,
    };
    let train_data = DeviceData::upload(train_set, &dev)?;
    let test_data = DeviceData::upload(&split.test, &dev)?;
    let val_data = match &split.validation {
        Some(v) => Some(DeviceData::upload(v, &dev)?),
        None => None,
    };
    let mut orders: Vec<BatchOrder> = members
        .iter()
        .map(|m| BatchOrder::new(train_set.len(), spec.batch_size, m.data_seed))
        .collect::<Result<_>>()?;
    let bpe = orders[0].batches_per_epoch();
    let bs = spec.batch_size;
    let base_lr = spec.optimizer.lr();
    let mut tracks: Vec<Track> = (0..k)
        .map(|_| Track {
            history: Vec::new(),
            loss_sum: 0.0,
            loss_count: 0,
            checkpoints: BTreeMap::new(),
            optimizer_checkpoints: BTreeMap::new(),
            error: None,
        })
        .collect();

    let record = |ens: &Ensemble, step: usize, tracks: &mut [Track], train_loss: bool| -> Result<()> {
        let test = ens.evaluate(&test_data, spec.eval_chunk)?;
        let val = match &val_data {
            Some(v) => Some(ens.evaluate(v, spec.eval_chunk)?),
            None => None,
        };
        for (i, tr) in tracks.iter_mut().enumerate() {
            if tr.error.is_some() {
                continue;
            }
            let (test_loss, test_accuracy) = test[i];
            if !test_loss.is_finite() {
                tr.error = Some(Error::Diverged {
                    step,
                    loss: test_loss as f32,
                });
                continue;
            }
            tr.history.push(EvalRecord {
                step,
                epoch: step as f64 / bpe as f64,
                lr: base_lr * spec.schedule.factor(step),
                train_loss: train_loss.then(|| tr.loss_sum / tr.loss_count.max(1) as f64),
                test_loss,
                test_accuracy,
                val_loss: val.as_ref().map(|v| v[i].0),
                val_accuracy: val.as_ref().map(|v| v[i].1),
            });
            tr.loss_sum = 0.0;
            tr.loss_count = 0;
        }
        Ok(())
    };
    let keep = |ens: &Ensemble, opt: &TensorOptimizer, step: usize, tracks: &mut [Track]| -> Result<()> {
        if !spec.checkpoint_steps.contains(&step) {
            return Ok(());
        }
        let all = tensors(&ens.vars);
        let state = if shared.keep_optimizer_checkpoints {
            Some(opt.state()?)
        } else {
            None
        };
        for (i, tr) in tracks.iter_mut().enumerate() {
            tr.checkpoints.insert(step, unstack(&all, i)?);
            if let Some(st) = &state {
                let mut s = ParamSet::new();
                for (name, a) in st.iter() {
                    let n = a.data.len() / k;
                    let data = if name.starts_with("adam_t.") {
                        a.data.clone()
                    } else {
                        a.data[i * n..(i + 1) * n].to_vec()
                    };
                    s.insert(
                        name.clone(),
                        Array {
                            shape: vec![data.len()],
                            data,
                        },
                    );
                }
                tr.optimizer_checkpoints.insert(step, s);
            }
        }
        Ok(())
    };

    let mut step = shared.start_step;
    record(&ens, step, &mut tracks, false)?;
    keep(&ens, &opt, step, &mut tracks)?;
    let bar = super::trainer::progress_bar(shared.progress, spec.steps as u64, step as u64);
    let start = Instant::now();
    let mut train_time = 0.0f64;
    let first_step = step;
    let mut pending: Vec<Tensor> = Vec::new();
    let mut epoch: Option<(usize, Tensor)> = None;
    while step < spec.steps {
        let t0 = Instant::now();
        let e = step / bpe;
        if epoch.as_ref().map(|(i, _)| *i) != Some(e) {
            let mut idx: Vec<u32> = Vec::with_capacity(k * bpe * bs);
            for o in orders.iter_mut() {
                idx.extend(o.epoch(e).iter().map(|&i| i as u32));
            }
            epoch = Some((e, Tensor::from_vec(idx, (k, bpe * bs), &dev)?));
        }
        let Some((_, order)) = &epoch else {
            unreachable!("the epoch's order was uploaded above")
        };
        let idx = order.narrow(1, (step % bpe) * bs, bs)?.flatten_all()?;
        let x = train_data.x.index_select(&idx, 0)?.reshape((k, bs, ()))?;
        let t = train_data.t.index_select(&idx, 0)?.reshape((k, bs, ()))?;
        let y = train_data.y.index_select(&idx, 0)?.reshape((k, bs))?;
        let f = mlp.forward_stacked(&tensors(&ens.vars), &x)?;
        let per = shared.loss.per_network(&f, &t, &y)?;
        let grads = per.sum_all()?.backward()?;
        let lr = (base_lr * spec.schedule.factor(step)) as f32;
        opt.step(&ens.vars, &grads, lr, &masks)?;
        pending.push(per.detach());
        step += 1;
        let at_checkpoint = spec.checkpoint_steps.contains(&step);
        let at_eval = step == spec.steps || (spec.eval_every > 0 && step % spec.eval_every == 0);
        if pending.len() >= LOSS_INTERVAL || at_checkpoint || at_eval {
            let rows = Tensor::stack(&std::mem::take(&mut pending), 0)?
                .to_dtype(DType::F32)?
                .to_vec2::<f32>()?;
            let first = step - rows.len();
            for (j, row) in rows.iter().enumerate() {
                for (tr, &l) in tracks.iter_mut().zip(row) {
                    if tr.error.is_some() {
                        continue;
                    }
                    if !l.is_finite() {
                        tr.error = Some(Error::Diverged {
                            step: first + j + 1,
                            loss: l,
                        });
                        continue;
                    }
                    tr.loss_sum += l as f64;
                    tr.loss_count += 1;
                }
            }
        }
        train_time += t0.elapsed().as_secs_f64();
        keep(&ens, &opt, step, &mut tracks)?;
        if at_eval {
            record(&ens, step, &mut tracks, true)?;
        }
        bar.set_position(step as u64);
    }
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let samples = (step - first_step) * bs;
    tracks
        .into_iter()
        .enumerate()
        .map(|(i, tr)| {
            Ok(match tr.error {
                Some(e) => Err(e),
                None => Ok(TrainOutcome {
                    params: ens.params(i)?,
                    history: tr.history,
                    checkpoints: tr.checkpoints,
                    optimizer_checkpoints: tr.optimizer_checkpoints,
                    start_step: first_step,
                    steps_done: step,
                    completed: true,
                    seconds,
                    samples_per_second: if train_time > 0.0 {
                        samples as f64 / train_time
                    } else {
                        0.0
                    },
                }),
            })
        })
        .collect()
}
