//! The training loop: mini-batch steps in a seeded data order, learning-rate
//! schedule, masks kept exactly zero, evaluation at an interval, checkpoints
//! at chosen steps (for rewinding), resumable state, divergence detection.
//!
//! Resuming: the batch order is a pure function of (data seed, step) and the
//! optimizer state is saved exactly, so a run resumed from its last saved
//! state ends bit-identical to an uninterrupted one.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::objective::{evaluate, Batch, Evaluation, Trainable};
use super::optim::{Optimizer, OptimizerConfig};
use super::schedule::Schedule;
use crate::data::augment::Augment;
use crate::data::{BatchOrder, Dataset, Split};
use crate::params::{Mask, ParamSet};
use crate::paths::{write_csv, write_json, RunDir};
use crate::{Error, Result};

/// A checked training specification.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainSpec {
    pub optimizer: OptimizerConfig,
    pub schedule: Schedule,
    pub batch_size: usize,
    /// Total optimizer steps.
    pub steps: usize,
    /// Evaluate every this many steps (and at step 0 and the end); 0 = only at the ends.
    pub eval_every: usize,
    /// Rows per evaluation chunk.
    pub eval_chunk: usize,
    /// Steps at which parameters are kept (and saved) for rewinding.
    pub checkpoint_steps: Vec<usize>,
    /// Save resumable state every this many steps; 0 = only at the end.
    pub save_every: usize,
    /// Seed of the data order (the SGD noise).
    pub data_seed: u64,
    /// Data augmentation of each batch, drawn from `data_seed` and the step.
    #[serde(default, skip_serializing_if = "Augment::is_identity")]
    pub augment: Augment,
}

impl TrainSpec {
    /// Errors on a zero batch size, a checkpoint past the end, or a bad optimizer/schedule.
    pub fn validate(&self, train_len: usize) -> Result<()> {
        self.optimizer.validate()?;
        self.schedule.validate()?;
        if self.batch_size == 0 || self.batch_size > train_len {
            return Err(Error::config(
                "train.batch_size",
                format!("1..={train_len} (the training set size)"),
                self.batch_size,
            ));
        }
        if self.eval_chunk == 0 {
            return Err(Error::config("train.eval_chunk", "> 0", 0));
        }
        if let Some(&s) = self.checkpoint_steps.iter().find(|&&s| s > self.steps) {
            return Err(Error::config(
                "train.checkpoint_at",
                format!("steps <= {} (the run length)", self.steps),
                s,
            ));
        }
        Ok(())
    }
}

/// One evaluation point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    pub step: usize,
    pub epoch: f64,
    pub lr: f64,
    /// Mean mini-batch loss since the previous record (None at step 0).
    pub train_loss: Option<f64>,
    pub test_loss: f64,
    pub test_accuracy: f64,
    pub val_loss: Option<f64>,
    pub val_accuracy: Option<f64>,
}

/// Options of one training call that are not part of the experiment.
#[derive(Clone, Debug, Default)]
pub struct TrainOptions<'a> {
    /// Pruning mask: masked weights are zero at the start and stay exactly zero.
    pub mask: Option<&'a Mask>,
    /// Where to write metrics, checkpoints and resumable state.
    pub run_dir: Option<&'a RunDir>,
    /// Continue from the run directory's saved state if there is one.
    pub resume: bool,
    /// Show a progress bar.
    pub progress: bool,
    /// With a mask: values for the pruned weights (frozen there, receiving no
    /// gradient) instead of zero (Zhou et al. 2019).
    pub frozen: Option<&'a ParamSet>,
    /// Start at this step of the schedule and data order (a branch spawned from
    /// a checkpoint at step k, as in Frankle et al. 2020); the optimizer state starts fresh.
    pub start_step: usize,
    /// Stop (as if killed, without saving) after this many steps; for testing resumption.
    pub stop_after: Option<usize>,
    /// Start from this optimizer state (e.g. the parent's momentum at a spawn
    /// step) instead of a fresh one; a resumed run's saved state takes precedence.
    pub optimizer_state: Option<&'a ParamSet>,
    /// Also keep the optimizer state at each checkpoint step
    /// ([`TrainOutcome::optimizer_checkpoints`]).
    pub keep_optimizer_checkpoints: bool,
}

/// The result of a training call.
#[derive(Clone, Debug)]
pub struct TrainOutcome {
    pub params: ParamSet,
    pub history: Vec<EvalRecord>,
    /// Parameters at each of the spec's checkpoint steps.
    pub checkpoints: BTreeMap<usize, ParamSet>,
    /// Optimizer state at each checkpoint step (only with
    /// `keep_optimizer_checkpoints`; not restored on resume).
    pub optimizer_checkpoints: BTreeMap<usize, ParamSet>,
    /// The step training started at (`start_step`, or the resumed step).
    pub start_step: usize,
    /// The step training ended at (the spec's `steps` unless stopped early).
    pub steps_done: usize,
    /// False when stopped early by `stop_after`.
    pub completed: bool,
    /// Wall time of this call and its training throughput (excluding evaluation).
    pub seconds: f64,
    pub samples_per_second: f64,
}

impl TrainOutcome {
    /// The last evaluation.
    pub fn last(&self) -> Option<&EvalRecord> {
        self.history.last()
    }

    /// The early-stopping point: the record with the lowest validation loss
    /// (test loss when there is no validation set).
    pub fn early_stop(&self) -> Option<&EvalRecord> {
        self.history.iter().min_by(|a, b| {
            let ka = a.val_loss.unwrap_or(a.test_loss);
            let kb = b.val_loss.unwrap_or(b.test_loss);
            ka.total_cmp(&kb)
        })
    }
}

#[derive(Serialize, Deserialize)]
struct Progress {
    step: usize,
    history: Vec<EvalRecord>,
    loss_sum: f64,
    loss_count: usize,
}

/// How the loop reaches the parameters: on the host through the
/// [`Trainable`]'s own step, or as tensors resident on a device
/// ([`super::resident`]). The loop (schedule, checkpoints, evaluation,
/// saving, divergence) is the same for both.
pub(super) trait Stepper {
    /// One optimizer step on the batch of `step` at learning rate `lr`.
    fn step(&mut self, step: usize, lr: f32) -> Result<()>;
    /// The mini-batch losses of the steps since the last call, in order.
    fn losses(&mut self) -> Result<Vec<f32>>;
    /// Steps the loop may run before it needs their losses (1 on the host;
    /// more on a device, which then synchronizes less often).
    fn loss_interval(&self) -> usize {
        1
    }
    /// A host copy of the parameters.
    fn params(&mut self) -> Result<ParamSet>;
    /// A host copy of the optimizer state, in [`Optimizer::state`]'s layout.
    fn optimizer_state(&mut self) -> Result<ParamSet>;
    /// Loss and accuracy on `data`.
    fn evaluate(&mut self, data: &Dataset, chunk: usize) -> Result<Evaluation>;
    /// The parameters at the end (moved out, without a copy on the host).
    fn into_params(self: Box<Self>) -> Result<ParamSet>;
}

/// What a stepper starts from: the parameters (masked), the optimizer state,
/// the training set and how its batches are drawn.
pub(super) struct Start<'a> {
    pub params: ParamSet,
    pub optimizer_state: Option<ParamSet>,
    pub train: &'a Dataset,
    pub spec: &'a TrainSpec,
    pub mask: Option<&'a Mask>,
    pub frozen: Option<&'a ParamSet>,
    /// Padding value of augmented crops, per channel.
    pub fill: Vec<f32>,
}

impl Start<'_> {
    /// The batch of `step` on the host, augmented.
    pub fn batch(&self, order: &mut BatchOrder, step: usize, batch: &mut Batch) {
        let idx = order.batch(step);
        self.train.gather(idx, &mut batch.x, &mut batch.t, &mut batch.y);
        self.spec
            .augment
            .apply(self.train.shape, &self.fill, self.spec.data_seed, step, &mut batch.x);
    }
}

/// Parameters on the host, stepped by the model's `loss_and_grad` and the host [`Optimizer`].
struct HostStepper<'a> {
    model: &'a mut dyn Trainable,
    start: Start<'a>,
    params: ParamSet,
    grads: ParamSet,
    opt: Optimizer,
    order: BatchOrder,
    batch: Batch,
    losses: Vec<f32>,
}

impl<'a> HostStepper<'a> {
    fn new(model: &'a mut dyn Trainable, mut start: Start<'a>) -> Result<Self> {
        let params = std::mem::take(&mut start.params);
        let mut opt = Optimizer::new(&start.spec.optimizer);
        if let Some(st) = &start.optimizer_state {
            opt.load_state(st)?;
        }
        let order = BatchOrder::new(start.train.len(), start.spec.batch_size, start.spec.data_seed)?;
        Ok(HostStepper {
            model,
            grads: params.zeros_like(),
            params,
            opt,
            order,
            batch: Batch::default(),
            losses: Vec::new(),
            start,
        })
    }
}

impl Stepper for HostStepper<'_> {
    fn step(&mut self, step: usize, lr: f32) -> Result<()> {
        self.start.batch(&mut self.order, step, &mut self.batch);
        let loss = self.model.loss_and_grad(&self.params, &self.batch, &mut self.grads)?;
        self.losses.push(loss);
        if !loss.is_finite() {
            // The loop reports it; do not update with a non-finite gradient.
            return Ok(());
        }
        self.opt.step_with_fill(
            &mut self.params,
            &mut self.grads,
            lr,
            self.start.mask,
            self.start.frozen,
        )
    }

    fn losses(&mut self) -> Result<Vec<f32>> {
        Ok(std::mem::take(&mut self.losses))
    }

    fn params(&mut self) -> Result<ParamSet> {
        Ok(self.params.clone())
    }

    fn optimizer_state(&mut self) -> Result<ParamSet> {
        Ok(self.opt.state())
    }

    fn evaluate(&mut self, data: &Dataset, chunk: usize) -> Result<Evaluation> {
        evaluate(self.model, &self.params, data, chunk)
    }

    fn into_params(self: Box<Self>) -> Result<ParamSet> {
        Ok(self.params)
    }
}

/// Trains `model` from `init` on `split.train`; see the module docs. A model
/// that trains as device tensors ([`Trainable::resident`]) keeps its
/// parameters, optimizer state and data on the device for the whole call.
pub fn train(
    model: &mut dyn Trainable,
    init: &ParamSet,
    split: &Split,
    spec: &TrainSpec,
    opts: &TrainOptions,
) -> Result<TrainOutcome> {
    // The loop runs on one of rayon's threads, so that each parallel kernel
    // of a step forks from a worker (the others steal its halves) instead of
    // being injected into the pool from outside and waited on, a wake-up of
    // two threads per kernel: LeNet-300-100's step at batch 128 ran 8-10%
    // faster so on a 2-core Xeon (`benches/train_throughput.rs` runs its
    // steps the same way).
    if rayon::current_thread_index().is_none() {
        return rayon::scope(|_| train(model, init, split, spec, opts));
    }
    spec.validate(split.train.len())?;
    let train = &split.train;
    model.see_training_set(train);
    let mut params = init.clone();
    if let Some(m) = opts.mask {
        m.validate(&params)?;
        match opts.frozen {
            Some(f) => m.apply_fill(&mut params, f)?,
            None => m.apply(&mut params)?,
        }
    }
    let mut optimizer_state = opts.optimizer_state.cloned();
    spec.augment.validate(train.shape)?;
    // Padding of augmented crops: each channel's darkest training value
    // (black, after preprocessing shifted it).
    let fill = if spec.augment.crop_padding > 0 {
        train.channel_min()
    } else {
        vec![0.0; train.shape[0]]
    };
    let per_epoch = BatchOrder::new(train.len(), spec.batch_size, spec.data_seed)?.batches_per_epoch();
    let base_lr = spec.optimizer.lr();

    if opts.start_step > spec.steps {
        return Err(Error::invalid(
            "start step",
            format!("<= {} (the run length)", spec.steps),
            opts.start_step,
        ));
    }
    let mut step = opts.start_step;
    let mut history: Vec<EvalRecord> = Vec::new();
    let mut loss_sum = 0.0f64;
    let mut loss_count = 0usize;
    let mut checkpoints = BTreeMap::new();
    let mut optimizer_checkpoints = BTreeMap::new();

    if let (true, Some(dir)) = (opts.resume, opts.run_dir) {
        if let Some(saved) = super::state::load::<Progress>(dir, |p| p.step)? {
            if saved.step > spec.steps {
                return Err(Error::invalid(
                    "saved state",
                    format!("a step <= {}", spec.steps),
                    saved.step,
                ));
            }
            params.check_same_layout(&saved.params, "resumed parameters")?;
            params = saved.params;
            optimizer_state = Some(saved.optimizer);
            let p = saved.progress;
            step = p.step;
            history = p.history;
            loss_sum = p.loss_sum;
            loss_count = p.loss_count;
            for &s in spec.checkpoint_steps.iter().filter(|&&s| s <= step) {
                checkpoints.insert(s, ParamSet::load(&dir.checkpoint(s))?);
            }
        }
    }

    let start = Start {
        params,
        optimizer_state,
        train,
        spec,
        mask: opts.mask,
        frozen: opts.frozen,
        fill,
    };
    let mut stepper: Box<dyn Stepper + '_> = match model.resident() {
        Some(r) => Box::new(super::resident::DeviceStepper::new(model, r, start)?),
        None => Box::new(HostStepper::new(model, start)?),
    };

    let eval = |stepper: &mut dyn Stepper, step: usize, train_loss: Option<f64>| -> Result<EvalRecord> {
        let t = stepper.evaluate(&split.test, spec.eval_chunk)?;
        let v = match &split.validation {
            Some(v) => Some(stepper.evaluate(v, spec.eval_chunk)?),
            None => None,
        };
        if !t.loss.is_finite() {
            return Err(Error::Diverged {
                step,
                loss: t.loss as f32,
            });
        }
        Ok(EvalRecord {
            step,
            epoch: step as f64 / per_epoch as f64,
            lr: base_lr * spec.schedule.factor(step),
            train_loss,
            test_loss: t.loss,
            test_accuracy: t.accuracy,
            val_loss: v.map(|e| e.loss),
            val_accuracy: v.map(|e| e.accuracy),
        })
    };

    let save_state = |stepper: &mut dyn Stepper, p: &Progress| -> Result<()> {
        if let Some(dir) = opts.run_dir {
            // One atomic unit (see train::state), then the readable history.
            super::state::save(dir, p.step, &stepper.params()?, &stepper.optimizer_state()?, p)?;
            write_history(dir, &p.history)?;
        }
        Ok(())
    };

    let keep = |stepper: &mut dyn Stepper,
                step: usize,
                checkpoints: &mut BTreeMap<usize, ParamSet>,
                optimizer_checkpoints: &mut BTreeMap<usize, ParamSet>|
     -> Result<()> {
        if spec.checkpoint_steps.contains(&step) {
            keep_checkpoint(checkpoints, step, stepper.params()?, opts.run_dir)?;
            if opts.keep_optimizer_checkpoints {
                optimizer_checkpoints.insert(step, stepper.optimizer_state()?);
            }
        }
        Ok(())
    };

    if history.is_empty() {
        history.push(eval(stepper.as_mut(), step, None)?);
        keep(stepper.as_mut(), step, &mut checkpoints, &mut optimizer_checkpoints)?;
    }

    let bar = progress_bar(opts.progress, spec.steps as u64, step as u64);
    let start = Instant::now();
    let mut train_time = 0.0f64;
    let first_step = step;
    // Steps whose losses the stepper still holds.
    let mut pending = 0usize;
    let mut completed = true;
    while step < spec.steps {
        if opts.stop_after.is_some_and(|s| step >= s) {
            completed = false;
            break;
        }
        let t0 = Instant::now();
        let lr = (base_lr * spec.schedule.factor(step)) as f32;
        stepper.step(step, lr)?;
        step += 1;
        pending += 1;
        let at_checkpoint = spec.checkpoint_steps.contains(&step);
        let at_eval = step == spec.steps || (spec.eval_every > 0 && step % spec.eval_every == 0);
        let at_save = step == spec.steps || (spec.save_every > 0 && step % spec.save_every == 0);
        let stopping = opts.stop_after.is_some_and(|s| step >= s);
        if pending >= stepper.loss_interval() || at_checkpoint || at_eval || at_save || stopping {
            let losses = stepper.losses()?;
            let first = step - losses.len();
            for (i, &loss) in losses.iter().enumerate() {
                if !loss.is_finite() {
                    return Err(Error::Diverged {
                        step: first + i + 1,
                        loss,
                    });
                }
                loss_sum += loss as f64;
                loss_count += 1;
            }
            pending = 0;
        }
        train_time += t0.elapsed().as_secs_f64();

        keep(stepper.as_mut(), step, &mut checkpoints, &mut optimizer_checkpoints)?;
        if at_eval {
            let r = eval(stepper.as_mut(), step, Some(loss_sum / loss_count.max(1) as f64))?;
            bar.set_message(format!(
                "loss {:.4}  test acc {:.2}%",
                r.train_loss.unwrap_or(f64::NAN),
                100.0 * r.test_accuracy
            ));
            history.push(r);
            loss_sum = 0.0;
            loss_count = 0;
        }
        if at_save {
            save_state(
                stepper.as_mut(),
                &Progress {
                    step,
                    history: history.clone(),
                    loss_sum,
                    loss_count,
                },
            )?;
        }
        bar.set_position(step as u64);
    }
    bar.finish_and_clear();
    let samples = (step - first_step) * spec.batch_size;
    Ok(TrainOutcome {
        params: stepper.into_params()?,
        history,
        checkpoints,
        optimizer_checkpoints,
        start_step: first_step,
        steps_done: step,
        completed,
        seconds: start.elapsed().as_secs_f64(),
        samples_per_second: if train_time > 0.0 {
            samples as f64 / train_time
        } else {
            0.0
        },
    })
}

fn keep_checkpoint(
    map: &mut BTreeMap<usize, ParamSet>,
    step: usize,
    params: ParamSet,
    dir: Option<&RunDir>,
) -> Result<()> {
    if let Some(d) = dir {
        params.save(&d.checkpoint(step))?;
    }
    map.insert(step, params);
    Ok(())
}

/// Writes the evaluation history as `metrics.csv` and `metrics.json`.
pub fn write_history(dir: &RunDir, history: &[EvalRecord]) -> Result<()> {
    let opt = |v: Option<f64>| v.map(|x| format!("{x}")).unwrap_or_default();
    let rows: Vec<Vec<String>> = history
        .iter()
        .map(|r| {
            vec![
                r.step.to_string(),
                format!("{}", r.epoch),
                format!("{}", r.lr),
                opt(r.train_loss),
                format!("{}", r.test_loss),
                format!("{}", r.test_accuracy),
                opt(r.val_loss),
                opt(r.val_accuracy),
            ]
        })
        .collect();
    write_csv(
        &dir.metrics_csv(),
        &[
            "step",
            "epoch",
            "lr",
            "train_loss",
            "test_loss",
            "test_accuracy",
            "val_loss",
            "val_accuracy",
        ],
        &rows,
    )?;
    write_json(&dir.metrics_json(), &history)
}

/// A progress bar (hidden when `show` is false).
pub fn progress_bar(show: bool, len: u64, pos: u64) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    let style = indicatif::ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} steps (eta {eta}) {msg}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_position(pos);
    bar
}
